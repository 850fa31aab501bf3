"""Exporters: turn a trained Keras run into edge artifacts, each checked numerically against Keras.

One name per variant, used as registry key, CLI choice, manifest field and directory name. Files are
named after the pipeline's steps: calibration (representative images), tflite / onnx_export / qat
(conversions), check (parity against Keras), pipeline (orchestration, manifests, atomic writes).
Needs the `train` extra; nothing here is imported by the runtime.

Notebook API: `exporters.export(model_or_path, variants=..., out=...)` -> {variant: directory}; a run
directory, a `.keras` / `.h5` file or an in-memory Keras model (see exporters.pipeline.export).
"""

# variant -> (format, what it is, CLI group flag)
VARIANTS = {
    "tflite-float32": ("tflite", "TFLite float32", "float"),
    "tflite-int8": ("tflite", "TFLite int8, post-training full-integer (int8 input and output)", "int8"),
    "tflite-int8-qat": ("tflite", "TFLite int8, quantization-aware training (int8 input and output)", "qat"),
    "onnx-float32": ("onnx", "ONNX float32, dynamic batch", "onnx"),
    "onnx-int8": ("onnx", "ONNX int8, static QDQ, per-channel (onnxruntime quantization)", "onnx"),
}


def __getattr__(name):
    # Lazy: `exporters.VARIANTS` is read by the CLI at start-up, which must not import TensorFlow.
    if name == "export":
        from .pipeline import export

        return export
    raise AttributeError(f"module 'exporters' has no attribute {name!r}")
