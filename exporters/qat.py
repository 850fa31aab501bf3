"""Quantization-aware training with tensorflow-model-optimization, then full-integer int8 conversion.

tfmot 0.8.1 only accepts tf_keras (Keras 2) models, so the model is rebuilt in tf_keras with its trained
weights (exporters.finetune), fake quantization is inserted, and the model is fine-tuned and converted in this
process (reloading a QAT model from disk is fragile). Importing tfmot
sets TF_USE_LEGACY_KERAS=1, which silently turns TensorFlow's own Keras alias into Keras 2; this project
never goes through that alias (it imports `keras` or `tf_keras` by name), and tfmot is imported only here.

As a control, the float Keras 3 model is fine-tuned with exactly the same schedule, so the accuracy
change can be split into "more training" and "quantization awareness".
"""

from __future__ import annotations

from .builders import builder
from .config import QATConfig
from .errors import FineTuneUnsupported
from .rebuild import library_detail, source_name
from .finetune import fine_tune_note, fine_tuned, fit, tf_keras_copy, tuned_result

# Layers tfmot's default 8-bit scheme takes through a layout transform rather than its registry: a separable conv
# is split into depthwise + pointwise, a BatchNormalization right after a conv or dense layer is folded into it.
TRANSFORMED = ("SeparableConv2D",)
FOLDS_BATCHNORM = ("Conv2D", "DepthwiseConv2D", "Dense")


class NoOpQuantizeConfig:  # tfmot's QuantizeConfig interface, for layers left in float
    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


def _inbound(layer) -> list:
    node = layer.inbound_nodes[0] if layer.inbound_nodes else None
    inbound = node.inbound_layers if node is not None else []
    return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]


def _has_recipe(registry, layer) -> bool:
    kind = type(layer).__name__
    if kind == "BatchNormalization":  # folded only right after a conv or dense layer with no activation of its own
        before = _inbound(layer)
        return (len(before) == 1 and type(before[0]).__name__ in FOLDS_BATCHNORM
                and getattr(getattr(before[0], "activation", None), "__name__", "linear") == "linear")
    return kind in TRANSFORMED or registry.supports(layer)


def _quantize_any(clone):
    """tfmot's quantize_apply on the clone's own graph: fake quantization wherever tfmot has a recipe for the layer;
    a layer it has none for (Rescaling, a BatchNormalization after an activation, LayerNormalization, ...) is trained
    without fake quantization and quantized by the converter's calibration like post-training int8. Returns (the QAT
    model, the layers left without fake quantization)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry_module)

    q = tfmot.quantization.keras
    registry = registry_module.Default8BitQuantizeRegistry()
    noop = type("NoOpQuantizeConfig", (NoOpQuantizeConfig, q.QuantizeConfig), {})
    without = []

    def annotate(layer):
        if isinstance(layer, tf_keras.layers.InputLayer):
            return layer
        if _has_recipe(registry, layer):
            return q.quantize_annotate_layer(layer)
        without.append(source_name(layer.name))
        return q.quantize_annotate_layer(layer, noop())

    try:
        annotated = tf_keras.models.clone_model(clone, clone_function=annotate)
        annotated.set_weights(clone.get_weights())
        with q.quantize_scope({"NoOpQuantizeConfig": noop}):
            return q.quantize_apply(annotated), without
    except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise FineTuneUnsupported(
            "tensorflow-model-optimization 0.8.1 could not insert fake quantization into this model's graph, so there "
            f"is no QAT variant{library_detail(exc)}. Post-training int8 (tflite-int8) does not need it; pruning and "
            "clustering are tried on their own.") from None


def fine_tune_qat(model, model_name: str | None, x_fit, y_fit, x_test, calibration, cfg: QATConfig) -> dict:
    """`model_name`: the preset the model was trained as (rebuilt with tf_keras by name), or None for a
    model file, whose layers are rebuilt one by one (FineTuneUnsupported when that is not possible)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras

    tf_keras.utils.set_random_seed(cfg.seed)
    clone, dropped = tf_keras_copy(model, model_name, x_test[:64])
    if model_name is not None:
        qmodel, without = tfmot.quantization.keras.quantize_model(clone), []
    else:
        qmodel, without = _quantize_any(clone)
    seconds = fit(qmodel, x_fit, y_fit, cfg)
    # Fake-quant nodes carry the activation ranges; the converter still insists on a representative
    # dataset for int8-only builtins, so it gets the same calibration images as post-training int8.
    return tuned_result(qmodel, x_test, calibration, seconds,
                        details={"training_only_layers_left_out": dropped, "layers_without_fake_quantization": without})


@builder("tflite_int8_qat")  # exporters.builders
def build_int8_qat(ctx, tmp):
    q = ctx.cfg.qat
    ctx.console.print(f"  QAT: fine-tuning under fake quantization ({q.epochs} epoch(s), lr {q.learning_rate:g}, "
                      f"batch {q.batch_size}, {fine_tune_note(ctx)})")
    res = fine_tune_qat(ctx.model, ctx.preset_name, ctx.fine_tune["x"], ctx.fine_tune["y"], ctx.x_test, ctx.calibration, q)
    built = fine_tuned(ctx, tmp, "tflite-int8-qat", res, res["details"])
    built.extra["qat"]["fake_quant_keras_accuracy"] = built.extra["qat"]["tuned_keras_accuracy"]  # name kept from earlier releases
    return built
