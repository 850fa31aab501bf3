"""Thin wrappers over the two interpreters an edge device has: LiteRT (TFLite) and ONNX Runtime.

Each backend takes model-ready arrays (already quantized for int8 inputs) and returns the raw output
array; the Classifier does preprocessing and (de)quantization. Interpreters are imported lazily so a
device with only one of them installed can still run the other format.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from .errors import RuntimeArtifactError
from .metadata import read_tflite

TFLITE_MAGIC = b"TFL3"  # flatbuffer file identifier at bytes 4..8
# LiteRT's C++ logs this to the process's stderr for every interpreter it creates (no setting silences it,
# TF_CPP_MIN_LOG_LEVEL included): noise on every predict and verify that users read as something happening.
DELEGATE_NOTICE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


VERBOSE_ENV = "FMNIST_EDGE_VERBOSE"  # set to 1 (`fmnist-edge --verbose`): the libraries' native log lines stay


@contextlib.contextmanager
def filtered_stderr(*drop: bytes):
    """Capture file descriptor 2 (where LiteRT's and TensorFlow's C++ write) for the block, then pass on every line
    except those starting with one of `drop` (a real warning or error from the C++ side still reaches the terminal).
    With FMNIST_EDGE_VERBOSE=1 nothing is captured."""
    if os.environ.get(VERBOSE_ENV) == "1":
        yield
        return
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            rest = b"".join(line for line in captured.read().splitlines(keepends=True) if not line.startswith(drop))
            if rest:
                os.write(2, rest)


def without_delegate_notice():
    """While an interpreter is created: everything on stderr but DELEGATE_NOTICE."""
    return filtered_stderr(DELEGATE_NOTICE)


def sniff_format(path: Path) -> str:
    """Tell a .tflite from an .onnx by content, not by name (a renamed file must not be misread)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) >= 8 and head[4:8] == TFLITE_MAGIC:
        return "tflite"
    if head[:1] == b"\x08":  # ONNX ModelProto starts with field 1 (ir_version), varint
        return "onnx"
    raise RuntimeArtifactError(f"{path}: neither a TFLite flatbuffer nor an ONNX model (first bytes {head!r}).")


def tflite_interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:  # older devices ship the previous standalone package
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise RuntimeArtifactError(
                "Running .tflite needs the LiteRT interpreter: pip install ai-edge-litert (or tflite-runtime)."
            ) from None
    return Interpreter


class TFLiteBackend:
    """LiteRT interpreter. Not thread-safe by itself, so calls are serialised with a lock."""

    format = "tflite"

    def __init__(self, path: Path, num_threads: int = 1):
        Interpreter = tflite_interpreter_class()
        try:
            with without_delegate_notice():
                self._it = Interpreter(model_path=str(path), num_threads=num_threads)
                self._it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise RuntimeArtifactError(f"{path}: LiteRT could not load the model ({exc}).") from None
        self._in = self._it.get_input_details()[0]
        self._out = self._it.get_output_details()[0]
        self._batch = int(self._in["shape"][0])
        # A file made for a runtime without resizing (LiteRT.js: `tflite-int8-web`) has a static batch that
        # XNNPack cannot reshape: such a file runs `batch` images per call, as the browser runs it.
        signature = self._in.get("shape_signature")
        self._static_batch = int(signature[0]) if signature is not None and len(signature) and signature[0] > 0 else None
        self._lock = threading.Lock()
        self._path = Path(path)

    def metadata(self) -> dict[str, str]:
        """The file's fmnist_edge.* metadata entries (runtime.metadata), as text."""
        return read_tflite(self._path)

    def quantization(self, which: str) -> dict | None:
        detail = self._in if which == "input" else self._out
        scale, zero_point = detail["quantization"]
        return {"scale": float(scale), "zero_point": int(zero_point)} if scale else None

    def tensor(self, which: str) -> dict:
        d = self._in if which == "input" else self._out
        sig = d.get("shape_signature", d["shape"])
        return {"name": d["name"], "shape": [None if s < 0 else int(s) for s in sig], "dtype": np.dtype(d["dtype"]).name}

    def raw_invoker(self, x: np.ndarray):
        """A bare interpreter call on a fixed, model-ready input (no lock, no checks): the floor that
        benchmarks compare the Classifier's overhead against."""
        self.run(x)  # resize/allocate for this batch size once
        it, i_in, i_out = self._it, self._in["index"], self._out["index"]

        def call():
            it.set_tensor(i_in, x)
            it.invoke()
            return it.get_tensor(i_out)

        return call

    def run(self, x: np.ndarray) -> np.ndarray:
        b = self._static_batch
        if b is not None and x.shape[0] != b:
            if x.shape[0] % b:
                raise RuntimeArtifactError(f"this model takes batches of exactly {b} image(s); got {x.shape[0]}.")
            return np.concatenate([self.run(x[i:i + b]) for i in range(0, len(x), b)])
        with self._lock:
            if x.shape[0] != self._batch:
                self._it.resize_tensor_input(self._in["index"], list(x.shape))
                self._it.allocate_tensors()
                self._batch = x.shape[0]
            self._it.set_tensor(self._in["index"], x)
            self._it.invoke()
            return self._it.get_tensor(self._out["index"]).copy()


class OnnxBackend:
    """ONNX Runtime session on the CPU. `InferenceSession.run` is thread-safe."""

    format = "onnx"

    def __init__(self, path: Path, num_threads: int = 1):
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeArtifactError("Running .onnx needs ONNX Runtime: pip install onnxruntime.") from None
        opts = ort.SessionOptions()
        # ORT otherwise picks its own thread count; make it explicit and comparable with LiteRT.
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        try:
            self._sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... classes
            raise RuntimeArtifactError(f"{path}: ONNX Runtime could not load the model ({type(exc).__name__}: {exc}).") from None
        self._in = self._sess.get_inputs()[0]
        self._out = self._sess.get_outputs()[0]

    def metadata(self) -> dict[str, str]:
        """The file's metadata_props, as ONNX Runtime reads them (no `onnx` package needed on a device)."""
        return dict(self._sess.get_modelmeta().custom_metadata_map)

    def quantization(self, which: str) -> dict | None:
        return None  # QDQ models keep float32 inputs and outputs; quantization lives inside the graph

    def tensor(self, which: str) -> dict:
        t = self._in if which == "input" else self._out
        dtype = {"tensor(float)": "float32", "tensor(int8)": "int8", "tensor(uint8)": "uint8"}.get(t.type, t.type)
        return {"name": t.name, "shape": [s if isinstance(s, int) else None for s in t.shape], "dtype": dtype}

    def raw_invoker(self, x: np.ndarray):
        sess, names, feed = self._sess, [self._out.name], {self._in.name: x}
        return lambda: sess.run(names, feed)[0]

    def run(self, x: np.ndarray) -> np.ndarray:
        return self._sess.run([self._out.name], {self._in.name: x})[0]


# More interpreter threads than this only oversubscribes any edge CPU; ONNX Runtime would accept 0, negative
# or 10,000 threads silently (10,000 hung a 2-core machine), so both backends are held to the same range.
MAX_THREADS = 64


def open_backend(path: Path, num_threads: int = 1):
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or not 1 <= num_threads <= MAX_THREADS:
        raise RuntimeArtifactError(f"num_threads (--threads) must be an integer from 1 to {MAX_THREADS}, got {num_threads!r}.")
    fmt = sniff_format(path)
    return (TFLiteBackend if fmt == "tflite" else OnnxBackend)(path, num_threads)
