"""The run manifest's schema: its version, the input contract and output spec every model follows, the
class names. (Host facts: `host`; atomic writes: `atomic`; output-path checks: `paths`.)

The artifact on disk is the interface between stages (train -> export -> bench), so each file carries a
schema version and enough lineage to be judged on its own.
"""

from __future__ import annotations

from runtime.manifest import sha256_file  # noqa: F401  (one implementation, shared with the device)

from . import CLASS_NAMES

RUN_SCHEMA_VERSION = 1

# How a uint8 28x28 image becomes model input; every model of every backend follows it.
PREPROCESSING = {
    "source": "uint8 grayscale image, 28x28, light garment on dark background (0 = background), as in Fashion-MNIST",
    "steps": ["cast to float32", "divide by 255.0", "reshape to (N, 28, 28, 1)"],
    "input_range": [0.0, 1.0],
}

INPUT_SPEC = {"name": "image", "shape": [None, 28, 28, 1], "dtype": "float32", "layout": "NHWC"}
OUTPUT_SPEC = {"name": "probabilities", "shape": [None, 10], "dtype": "float32", "meaning": "softmax probabilities"}


def class_names() -> list[str]:
    return list(CLASS_NAMES)
