"""`fmnist-edge explain TARGET`: resolve the target (a run, an exported artifact, a Keras model file) and analyse its
post-training int8 file with the TFLite (exporters.explain) or ONNX (exporters.explain_onnx) explainer."""

from __future__ import annotations

from runtime.variants import VARIANTS

# post-training int8 of the run's own Keras model (onnx-int8: exporters.explain_onnx)
EXPLAINED = tuple(v.name for v in VARIANTS.values() if v.calibrated_int8)


def explain_variant(ctx, variant: str, model) -> dict:
    """The explain report for `variant` of `model`, with the context's calibration and test images: ONNX Runtime's
    quantizer for onnx-int8 (its scheme and opset from ctx.cfg), TFLite's otherwise."""
    from .explain import explain
    from .explain_onnx import explain_onnx

    if variant == "onnx-int8":
        return explain_onnx(model, ctx.calibration, ctx.x_test, ctx.y_test, ctx.keras_probs, ctx.cfg.onnx_int8_scheme,
                            ctx.cfg.opset)
    return explain(model, ctx.calibration, ctx.x_test, ctx.y_test, ctx.keras_probs)


def explain_target(target, variant: str | None, cfg_options: dict, model_file: dict, console) -> dict:
    """`fmnist-edge explain TARGET`: TARGET is a run directory, an exported artifact (its release is the run) or a
    Keras model file (prepared as export prepares one, in a temporary directory: nothing is written). Analyses
    without writing an artifact, so it works on a variant export refused."""
    import json
    import tempfile
    from pathlib import Path

    from .config import ExportConfig
    from .context import load_context
    from .contract import resolve
    from .errors import ExportError
    from .external import ExternalModel, is_model_file, prepare
    from .onnx_source import is_onnx_file

    target = Path(target)
    shown = str(target)
    manifest = target / "manifest.json"
    if target.is_dir() and manifest.is_file() and json.loads(manifest.read_text()).get("kind") == "artifact":
        artifact = json.loads(manifest.read_text())
        variant = variant or artifact["variant"]
        if variant == artifact["variant"] and "quantization_scheme" in artifact:  # the scheme that file was made with
            cfg_options = {"onnx_int8_scheme": artifact["quantization_scheme"]["name"], **cfg_options}
        target = target.parent
    variant = variant or "tflite-int8"
    if variant not in EXPLAINED:
        raise ExportError(f"explain analyses post-training int8 ({', '.join(EXPLAINED)}); {variant} is not one. "
                          "QAT, pruned and clustered files come from fine-tuned copies of the model: their manifests "
                          "record how they were tuned (pruning and clustering: every setting the search tried, with "
                          "its accuracy and size). Explain the run's tflite-int8 to see which layers quantize badly.")
    if is_onnx_file(target) or ((target / "model.onnx").is_file() and not (target / "model.keras").is_file()):
        raise ExportError(f"{shown}: explain measures a Keras model's layers one at a time; a model brought as ONNX is "
                          "checked as a whole (the export's table, `fmnist-edge verify`, `bench`). To see which layer "
                          "loses accuracy in int8, rebuild the network in Keras and explain that .keras file.")
    cfg = ExportConfig(variants=(variant,), **cfg_options)
    with tempfile.TemporaryDirectory(prefix="fmnist-edge-explain-") as scratch:
        if target.is_file() or is_model_file(target):
            spec = ExternalModel(resolve(model_file.get("input_range"), model_file.get("input_norm"),
                                         model_file.get("input_scale")), model_file.get("output", "auto"),
                                 fit=model_file.get("input_fit", "auto"))
            target = prepare(target, Path(scratch) / target.stem, spec, model_file.get("limit"), cfg.data_dir,
                             cfg.download, False, console)
        elif not (target / "model.keras").is_file():
            raise ExportError(f"{target}: not a run directory (no model.keras), an exported artifact or a Keras model file.")
        ctx = load_context(target, cfg, console)
        report = explain_variant(ctx, variant, ctx.model)
    from .gate import tolerance

    gate = tolerance(variant)
    return {"variant": variant, "target": shown, "gate": gate,
            "passes_gate": report["int8"]["agreement"] >= gate["min_agreement"], **report}


