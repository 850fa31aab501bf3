"""The builder registry: the function that writes each variant's model file, keyed by `runtime.variants`'
`builder` name.

Each builder lives next to the converter it calls (tflite, onnx_export, qat, compress) and is registered
with `@builder("name")`. It receives the Exporter (the Keras model, data, Keras outputs, calibration
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

    from .pipeline import Exporter

# The modules that hold builders; `registry()` imports them so their decorators run.
MODULES = ("exporters.tflite", "exporters.onnx_export", "exporters.qat", "exporters.compress")
_BUILDERS: dict[str, Callable[[Exporter, Path], Built]] = {}


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


def registry() -> dict[str, Callable[[Exporter, Path], Built]]:
    """Every registered builder, by name (imports the modules that define them)."""
    for module in MODULES:
        importlib.import_module(module)
    return dict(_BUILDERS)


def fine_tuned(exp: Exporter, tmp: Path, what: str, cfg, res: dict, details: dict) -> Built:
    """Write a fine-tuned variant's file (QAT, pruning, clustering); its manifest says how it was trained, how
    the tuned float model and a float control with the same schedule score, and how it agrees with the original."""
    from .check import compare
    from .qat import fine_tune_float_control

    (tmp / "model.tflite").write_bytes(res["tflite"])
    tuned = res["tuned_probs"]
    vs_original = compare(tuned, exp.keras_probs, exp.y_test)
    if exp.cfg.controls:  # the float Keras model fine-tuned with the same schedule: what extra training alone does
        control = compare(fine_tune_float_control(exp.model, exp.fine_tune["x"], exp.fine_tune["y"], exp.x_test, cfg),
                          exp.keras_probs, exp.y_test)
        control = {"float_control_accuracy": control["accuracy"],
                   "float_control_agreement_with_original": control["agreement"]}
    else:
        control = {"float_control": "not run (export --controls runs it)"}
    return Built("model.tflite", tuned, {"calibration": exp.calibration_record, what: {
        **details, "epochs": cfg.epochs, "learning_rate": cfg.learning_rate, "batch_size": cfg.batch_size,
        "seed": cfg.seed, "fit_seconds": round(res["fit_seconds"], 1),
        "fine_tune_images": int(len(exp.fine_tune["y"])), "fine_tune_source": exp.fine_tune["source"],
        "label_smoothing": exp.fine_tune["label_smoothing"],
        "tuned_keras_accuracy": vs_original["accuracy"],
        "tuned_keras_agreement_with_original": vs_original["agreement"], **control,
        "checked_against": f"the fine-tuned {TUNED[what]} Keras (tf_keras) model it was converted from",
    }})


def fine_tune_note(exp: Exporter) -> str:
    """What a fine-tuned variant trains on, for the progress line."""
    return f"{len(exp.fine_tune['y']):,} images" + ("; and a float control with the same schedule" if exp.cfg.controls else "")


TUNED = {"qat": "fake-quantized", "pruning": "pruned", "clustering": "clustered"}
