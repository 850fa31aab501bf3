"""What compression left in a TFLite file itself: per-kernel sparsity and distinct values, and the
file's compressed size. Read with the interpreter (no TensorFlow), so a release can be audited anywhere."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from .backends import tflite_interpreter_class

# ops whose second input is the weight tensor
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def compressed_size(path: str | Path, level: int = 9) -> int:
    """zlib level-9 size of a file: roughly what a download or an over-the-air update carries."""
    return len(zlib.compress(Path(path).read_bytes(), level))


def kernel_stats(path: str | Path) -> list[dict]:
    """One row per weighted op, in graph order: op, shape, dtype, sparsity (fraction of exact zeros) and
    distinct values. Quantized int8 kernels store zeros as the integer 0 (symmetric weights)."""
    it = tflite_interpreter_class()(model_path=str(path))
    it.allocate_tensors()
    rows = []
    for op in it._get_ops_details():  # the public API lists tensors, not which op reads them
        if op["op_name"] not in WEIGHTED_OPS or len(op["inputs"]) < 2:
            continue
        w = it.get_tensor(int(op["inputs"][1]))
        rows.append({"op": op["op_name"], "shape": list(w.shape), "dtype": str(w.dtype), "weights": int(w.size),
                     "sparsity": round(float((w == 0).mean()), 4), "distinct_values": int(len(np.unique(w)))})
    return rows
