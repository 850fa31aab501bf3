"""The builder registry: the function that writes each variant's model file, keyed by `runtime.variants`'
`builder` name.

Each builder lives next to the converter it calls (tflite, onnx_export, qat, compress) and is registered
with `@builder("name")`. It receives the ExportContext (the Keras model, data, Keras outputs, calibration
images, options) and a staging directory, writes its model file there and returns a `Built`. Adding a
variant is a row in runtime/variants.py plus one decorated function (CONTRIBUTING.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import numpy as np

    from .context import ExportContext

# The modules that hold builders; `registry()` imports them so their decorators run.
MODULES = ("exporters.tflite", "exporters.onnx_export", "exporters.qat", "exporters.compress")
_BUILDERS: dict[str, Callable[[ExportContext, Path], Built]] = {}


@dataclass(frozen=True)
class Built:
    file_name: str  # the model file written into the staging directory
    reference: np.ndarray  # outputs of the Keras model it was converted from (what its parity is checked against)
    extra: dict[str, Any] = field(default_factory=dict)  # manifest fields only this variant has


def builder(name: str):
    """Register the decorated function as the builder called `name` in runtime/variants.py."""

    def register(fn):
        if name in _BUILDERS and _BUILDERS[name] is not fn:
            raise ValueError(f"two builders are registered as {name!r}: {_BUILDERS[name].__module__} and {fn.__module__}")
        _BUILDERS[name] = fn
        return fn

    return register


def registry() -> dict[str, Callable[[ExportContext, Path], Built]]:
    """Every registered builder, by name (imports the modules that define them)."""
    for module in MODULES:
        importlib.import_module(module)
    return dict(_BUILDERS)
