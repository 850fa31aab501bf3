"""Every artifact variant, declared once: name, format, CLI group, tolerances and how it is built.

The name is the registry key, the CLI choice, the manifest's `variant` and the directory name. Export,
bench, verify, micro, the CPU matrix and the CLI all read this table (it lives in the runtime tier so a
device can use it without TensorFlow); `exporters.builders` maps `builder` to the function that builds it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    name: str
    format: str  # "tflite" or "onnx": which runtime backend runs it
    description: str
    group: str  # CLI group flag selecting it: float, int8, qat, compress, onnx
    builder: str  # the @builder(name) function that writes the model file (exporters.builders)
    min_agreement: float  # top-1 agreement with the Keras model it was converted from, checked at export
    max_abs_diff: float | None = None  # and max |probability difference|, where it applies
    full_integer: bool = False  # int8 input, output and kernels: what TFLite Micro and NPUs need
    int8_kernels: bool = False  # integer arithmetic somewhere: outputs may differ per instruction set
    fine_tuned: bool = False  # converted from a fine-tuned copy, not from the Keras model itself

    @property
    def file_name(self) -> str:
        return f"model.{self.format}"


_ALL = (
    Variant("tflite-float32", "tflite", "TFLite float32", "float", "tflite_float32", 1.0, 1e-4),
    Variant("tflite-float16", "tflite", "TFLite float16 weights, float32 compute and I/O", "compress",
            "tflite_float16", 0.999),
    Variant("tflite-dynamic-int8", "tflite", "TFLite dynamic-range: int8 weights, float activations and I/O",
            "compress", "tflite_dynamic_int8", 0.995, int8_kernels=True),
    Variant("tflite-int8", "tflite", "TFLite int8, post-training full-integer (int8 input and output)", "int8",
            "tflite_int8", 0.985, full_integer=True, int8_kernels=True),
    Variant("tflite-int8-qat", "tflite", "TFLite int8, quantization-aware training (int8 input and output)", "qat",
            # 99%: tfmot rounds in float where the file computes in integers, which moves images whose top two
            # classes are a few output steps apart: 99.92% on `reference`, 99.46% on the distilled `edge`, whose
            # outputs are softer (median per-image max |dp| there: 0.0037, one int8 output step).
            "tflite_int8_qat", 0.99, full_integer=True, int8_kernels=True, fine_tuned=True),
    Variant("tflite-int8-pruned", "tflite", "TFLite int8 full-integer after trained magnitude pruning (tfmot)",
            "compress", "tflite_int8_pruned", 0.985, full_integer=True, int8_kernels=True, fine_tuned=True),
    Variant("tflite-int8-clustered", "tflite", "TFLite int8 full-integer after trained weight clustering (tfmot)",
            "compress", "tflite_int8_clustered", 0.985, full_integer=True, int8_kernels=True, fine_tuned=True),
    # LiteRT.js (the web app's TFLite runtime) takes neither int8 tensors at a model's boundary nor a dynamic batch.
    Variant("tflite-int8-web", "tflite", "TFLite int8 for the browser (LiteRT.js): full-integer kernels, float32 "
            "input and output, a static batch of 1", "web", "tflite_int8_web", 0.985, int8_kernels=True),
    Variant("onnx-float32", "onnx", "ONNX float32, dynamic batch", "onnx", "onnx_float32", 1.0, 1e-4),
    Variant("onnx-int8", "onnx", "ONNX int8, static QDQ, per-channel (onnxruntime quantization)", "onnx",
            "onnx_int8", 0.985, int8_kernels=True),
)

VARIANTS: dict[str, Variant] = {v.name: v for v in _ALL}
GROUPS = ("float", "int8", "qat", "compress", "web", "onnx")


def get(name: str) -> Variant | None:
    return VARIANTS.get(name)
