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
from .finetune import fine_tune_note, fine_tuned, fit, tf_keras_copy, tuned_result

# Weightless layers a model file may carry (or its export wrapper adds) that tfmot has no quantization
# recipe for; they compute the same with or without fake quantization around them.
PASSTHROUGH = ("Rescaling", "Reshape", "Flatten", "Identity", "InputLayer", "Dropout")


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


def _quantize_any(clone):
    """tfmot's quantize_model, with weightless preprocessing layers annotated to stay as they are."""
    import tensorflow_model_optimization as tfmot
    import tf_keras

    q = tfmot.quantization.keras
    noop = type("NoOpQuantizeConfig", (NoOpQuantizeConfig, q.QuantizeConfig), {})
    annotated = tf_keras.Sequential([tf_keras.Input((28, 28, 1))] + [
        q.quantize_annotate_layer(layer, noop() if type(layer).__name__ in PASSTHROUGH else None)
        for layer in clone.layers])
    try:
        with q.quantize_scope({"NoOpQuantizeConfig": noop}):
            return q.quantize_apply(annotated)
    except (RuntimeError, ValueError, TypeError, KeyError) as exc:
        raise FineTuneUnsupported(f"tensorflow-model-optimization cannot quantize this model: {str(exc).splitlines()[0][:300]}") from None


def fine_tune_qat(model, model_name: str | None, x_fit, y_fit, x_test, calibration, cfg: QATConfig) -> dict:
    """`model_name`: the preset the model was trained as (rebuilt with tf_keras by name), or None for a
    model file, whose layers are rebuilt one by one (FineTuneUnsupported when that is not possible)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras

    tf_keras.utils.set_random_seed(cfg.seed)
    clone = tf_keras_copy(model, model_name, x_test[:64])
    qmodel = tfmot.quantization.keras.quantize_model(clone) if model_name is not None else _quantize_any(clone)
    seconds = fit(qmodel, x_fit, y_fit, cfg)
    # Fake-quant nodes carry the activation ranges; the converter still insists on a representative
    # dataset for int8-only builtins, so it gets the same calibration images as post-training int8.
    return tuned_result(qmodel, x_test, calibration, seconds)


@builder("tflite_int8_qat")  # exporters.builders
def build_int8_qat(ctx, tmp):
    q = ctx.cfg.qat
    ctx.console.print(f"  QAT: fine-tuning under fake quantization ({q.epochs} epoch(s), lr {q.learning_rate:g}, "
                      f"batch {q.batch_size}, {fine_tune_note(ctx)})")
    res = fine_tune_qat(ctx.model, ctx.preset_name, ctx.fine_tune["x"], ctx.fine_tune["y"], ctx.x_test, ctx.calibration, q)
    built = fine_tuned(ctx, tmp, "tflite-int8-qat", res, {})
    built.extra["qat"]["fake_quant_keras_accuracy"] = built.extra["qat"]["tuned_keras_accuracy"]  # name kept from earlier releases
    return built
