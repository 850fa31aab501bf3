"""Every artifact variant, declared once: name, format, CLI group, gates, how it is built and fine-tuned, what helps
when it fails, and which browser runtime runs it.

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
    group: str  # the CLI flag that selects it with its group (GROUPS)
    min_agreement: float  # top-1 agreement with the Keras model it was converted from, checked at export
    max_abs_diff: float | None = None  # and max |probability difference|, where it applies
    full_integer: bool = False  # int8 input, output and kernels: what TFLite Micro and NPUs need
    int8_kernels: bool = False  # integer arithmetic somewhere: outputs may differ per instruction set
    fine_tune: str | None = None  # converted from a fine-tuned copy: the ExportConfig field holding that schedule
    remedy: str | None = None  # what would help when it misses its gate, where the shared rules (exporters.gate) say too little
    web_runtime: str | None = None  # the browser runtime the web app runs it with (None: not a web variant)
    # trained compression: the most its zlib-9 file may be, as a share of the float32 file's zlib-9 size
    size_target: float | None = None
    # post-training int8 of the run's own Keras model, calibrated on its images: what `explain` analyses and
    # export's repair ladder mends (exporters.explain_target, exporters.repair)
    calibrated_int8: bool = False

    @property
    def builder(self) -> str:
        """The @builder(name) function that writes the model file (exporters.builders)."""
        return self.name.replace("-", "_")

    @property
    def fine_tuned(self) -> bool:
        return self.fine_tune is not None

    @property
    def file_name(self) -> str:
        return f"model.{self.format}"


def _more_fine_tuning(epochs_flag: str, extra: str = "") -> str:
    return f"more fine-tuning ({epochs_flag} 2 or more), a lower learning rate{extra}"


_ALL = (
    Variant("tflite-float32", "tflite", "TFLite float32", "float", 1.0, 1e-4),
    Variant("tflite-float16", "tflite", "TFLite float16 weights, float32 compute and I/O", "compress", 0.999),
    Variant("tflite-dynamic-int8", "tflite", "TFLite dynamic-range: int8 weights, float activations and I/O",
            "compress", 0.995, int8_kernels=True,
            remedy="dynamic-range weights are quantized without calibration, so no option changes them: use "
                   "tflite-float16 for smaller float weights or tflite-int8-qat (--qat), which trains the model for int8"),
    Variant("tflite-int8", "tflite", "TFLite int8, post-training full-integer (int8 input and output)", "int8",
            0.985, full_integer=True, int8_kernels=True, calibrated_int8=True),
    Variant("tflite-int8-qat", "tflite", "TFLite int8, quantization-aware training (int8 input and output)", "qat",
            # 99%: tfmot rounds in float where the file computes in integers, which moves images whose top two
            # classes are a few output steps apart: 99.92% on `reference`, 99.46% on the distilled `edge`, whose
            # outputs are softer (median per-image max |dp| there: 0.0037, one int8 output step).
            0.99, full_integer=True, int8_kernels=True, fine_tune="qat", remedy=_more_fine_tuning("--qat-epochs")),
    Variant("tflite-int8-pruned", "tflite", "TFLite int8 full-integer after trained magnitude pruning (tfmot)",
            "compress", 0.985, full_integer=True, int8_kernels=True, fine_tune="pruning",
            remedy=_more_fine_tuning("--prune-epochs", ", a lower --prune-sparsity"), size_target=0.10),
    Variant("tflite-int8-clustered", "tflite", "TFLite int8 full-integer after trained weight clustering (tfmot)",
            "compress", 0.985, full_integer=True, int8_kernels=True, fine_tune="clustering",
            remedy=_more_fine_tuning("--cluster-epochs", ", more --clusters"), size_target=0.15),
    # LiteRT.js (the web app's TFLite runtime) takes neither int8 tensors at a model's boundary nor a dynamic batch.
    Variant("tflite-int8-web", "tflite", "TFLite int8 for the browser (LiteRT.js): full-integer kernels, float32 "
            "input and output, a static batch of 1", "web", 0.985, int8_kernels=True, web_runtime="litertjs",
            calibrated_int8=True),
    Variant("onnx-float32", "onnx", "ONNX float32, dynamic batch", "onnx", 1.0, 1e-4, web_runtime="onnxruntime-web"),
    Variant("onnx-int8", "onnx", "ONNX int8, static QDQ, per-channel (onnxruntime quantization)", "onnx",
            0.985, int8_kernels=True, web_runtime="onnxruntime-web", calibrated_int8=True),
)

VARIANTS: dict[str, Variant] = {v.name: v for v in _ALL}
# Each group is an export flag (--float, --int8, ...) selecting its variants; the CLI generates the flags from this.
GROUPS = {
    "float": "TFLite float32.",
    "int8": "TFLite int8, post-training full-integer.",
    "qat": "TFLite int8 from quantization-aware training.",
    "onnx": "ONNX float32 and ONNX int8 (QDQ).",
    "compress": "TFLite float16, dynamic-range int8, and int8 after trained pruning and after trained weight clustering.",
    "web": "TFLite int8 for the browser (LiteRT.js in the web app): float32 I/O, batch 1.",
}
# What the web app can run, int8 first: smaller downloads, and faster in Chromium (docs/guides/web-app.md).
WEB_VARIANTS = tuple(sorted((v.name for v in _ALL if v.web_runtime), key=lambda n: not VARIANTS[n].int8_kernels))


def get(name: str) -> Variant | None:
    return VARIANTS.get(name)
