"""Exporters: turn a trained Keras run into edge artifacts, each checked numerically against Keras.

Variants are declared once, in `runtime.variants` (name, format, CLI group, gate, remedy, fine-tuning
schedule); this package builds them. Files are named after the pipeline's steps: context (what every variant
shares), calibration (representative images), tflite / onnx_export / qat / compress (conversions), finetune (what
QAT, pruning and clustering share), gate (parity against Keras, and what would help), pipeline (one variant's
build, check, manifest and proof; the export's outcome). Needs the `train` extra; nothing here is imported by the runtime.

Notebook API: `exporters.export(model_or_path, variants=..., out=...)` -> {variant: directory}; a run
directory, a `.keras` / `.h5` file or an in-memory Keras model (see exporters.pipeline.export).
"""



def __getattr__(name):
    # Lazy: the CLI imports this package at start-up, which must import neither TensorFlow nor numpy.
    if name == "export":
        from .pipeline import export

        return export
    if name == "VARIANTS":
        from runtime.variants import VARIANTS

        return VARIANTS
    raise AttributeError(f"module 'exporters' has no attribute {name!r}")
