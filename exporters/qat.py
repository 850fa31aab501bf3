"""Quantization-aware training with tensorflow-model-optimization, then full-integer int8 conversion.

tfmot 0.8.1 only accepts tf_keras (Keras 2) models, so the same preset architecture is built with
`tf_keras`, the trained Keras 3 weights are copied in, fake quantization is inserted, and the model is
fine-tuned and converted in this process (reloading a QAT model from disk is fragile). Importing tfmot
sets TF_USE_LEGACY_KERAS=1, which silently turns TensorFlow's own Keras alias into Keras 2; this project
never goes through that alias (it imports `keras` or `tf_keras` by name), and tfmot is imported only here.

As a control, the float Keras 3 model is fine-tuned with exactly the same schedule, so the accuracy
change can be split into "more training" and "quantization awareness".
"""

from __future__ import annotations

import time

import numpy as np

from fmnist_edge.errors import stop_if_signalled
from fmnist_edge.models import get_preset

from .builders import builder, fine_tune_note, fine_tuned
from .config import QATConfig
from .errors import ExportError
from .tflite import to_int8

# Weightless layers a model file may carry (or its export wrapper adds) that tfmot has no quantization
# recipe for; they compute the same with or without fake quantization around them.
PASSTHROUGH = ("Rescaling", "Reshape", "Flatten", "Identity", "InputLayer", "Dropout")


class QATUnsupported(ExportError):
    """This model cannot go through tensorflow-model-optimization (QAT, pruning or clustering); that variant
    is skipped, with this reason."""


def _plain_layers(model) -> list:
    """The model's layers in order, nested models expanded (whether they form a plain stack is checked
    numerically by tf_keras_clone)."""
    layers = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        if getattr(layer, "layers", None):
            layers += _plain_layers(layer)
        else:
            layers.append(layer)
    return layers


def _tf_keras_layer(layer):
    """The same layer built with tf_keras from its Keras 3 config (initializers, regularizers and
    constraints dropped: the weights are copied over)."""
    import inspect

    import tf_keras

    cls = getattr(tf_keras.layers, type(layer).__name__, None)
    if cls is None:
        raise QATUnsupported(f"layer {layer.name!r} ({type(layer).__name__}) has no tf_keras equivalent")
    allowed = (set(inspect.signature(cls.__init__).parameters) | {"name", "trainable"}) - {"dtype"}
    cfg = {k: v for k, v in layer.get_config().items() if k in allowed and not k.endswith(("_initializer",
                                                                                          "_regularizer", "_constraint"))}
    try:
        return cls(**cfg)
    except Exception as exc:  # tf_keras validates configs with many exception types
        raise QATUnsupported(f"layer {layer.name!r} ({type(layer).__name__}) could not be rebuilt in tf_keras: {exc}") from None


def tf_keras_clone(model, x_check: np.ndarray):
    """A tf_keras copy of a plain stack of layers with the trained weights, checked to compute the same."""
    import tf_keras

    layers = _plain_layers(model)
    clone = tf_keras.Sequential([tf_keras.Input((28, 28, 1)), *(_tf_keras_layer(layer) for layer in layers)])
    for src, dst in zip(layers, clone.layers):
        dst.set_weights(src.get_weights())
    want = np.asarray(model.predict(x_check, verbose=0))
    got = clone.predict(x_check, verbose=0)
    if got.shape != want.shape or not np.allclose(got, want, atol=1e-4):
        raise QATUnsupported("the model is not a plain stack of layers (branches or shared inputs): its tf_keras "
                             "rebuild computes something else")
    return clone


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
        raise QATUnsupported(f"tensorflow-model-optimization cannot quantize this model: {str(exc).splitlines()[0][:300]}") from None


def tf_keras_copy(model, model_name: str | None, x_check: np.ndarray):
    """The model in tf_keras with its trained weights: the preset rebuilt by name, or (`model_name` None, a
    model file) rebuilt layer by layer and checked numerically."""
    import tf_keras

    if model_name is None:
        return tf_keras_clone(model, x_check)
    clone = get_preset(model_name).build(tf_keras)
    clone.set_weights(model.get_weights())
    return clone


def loss_for(targets: np.ndarray) -> str:
    """Class indices: sparse cross-entropy; per-class targets (smoothed labels, as the run trained on): cross-entropy."""
    return "categorical_crossentropy" if np.ndim(targets) == 2 else "sparse_categorical_crossentropy"


def fit(model, x_fit, y_fit, cfg, callbacks=()) -> float:
    """Fine-tune a compiled tf_keras model with `cfg`'s schedule; returns the seconds it took."""
    import tf_keras

    model.compile(optimizer=tf_keras.optimizers.Adam(cfg.learning_rate), loss=loss_for(y_fit))
    t0 = time.perf_counter()
    # Stops at the next batch on SIGTERM, even where tf_keras swallowed the handler's SystemExit.
    stop = tf_keras.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: stop_if_signalled())
    model.fit(x_fit, y_fit, batch_size=cfg.batch_size, epochs=cfg.epochs, shuffle=True, verbose=0,
              callbacks=[*callbacks, stop])
    return time.perf_counter() - t0


def tuned_result(model, x_test, calibration, seconds: float, **extra) -> dict:
    """What every fine-tuned variant hands the pipeline: the full-integer int8 file of the tuned tf_keras
    model, the tuned model's own test outputs (the file is checked against them) and the fit time."""
    return {"tflite": to_int8(model, calibration), "tuned_probs": model.predict(x_test, batch_size=1024, verbose=0),
            "fit_seconds": seconds, **extra}


def fine_tune_qat(model, model_name: str | None, x_fit, y_fit, x_test, calibration, cfg: QATConfig) -> dict:
    """`model_name`: the preset the model was trained as (rebuilt with tf_keras by name), or None for a
    model file, whose layers are rebuilt one by one (QATUnsupported when that is not possible)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras

    tf_keras.utils.set_random_seed(cfg.seed)
    clone = tf_keras_copy(model, model_name, x_test[:64])
    qmodel = tfmot.quantization.keras.quantize_model(clone) if model_name is not None else _quantize_any(clone)
    seconds = fit(qmodel, x_fit, y_fit, cfg)
    # Fake-quant nodes carry the activation ranges; the converter still insists on a representative
    # dataset for int8-only builtins, so it gets the same calibration images as post-training int8.
    return tuned_result(qmodel, x_test, calibration, seconds)


def fine_tune_float_control(model, x_fit, y_fit, x_test, cfg) -> np.ndarray:
    """The same schedule (`cfg`'s epochs, learning rate, batch size, seed) on the float Keras 3 model;
    returns its test probabilities."""
    import keras

    keras.utils.set_random_seed(cfg.seed)
    control = keras.models.clone_model(model)
    control.set_weights(model.get_weights())
    control.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss_for(y_fit))
    control.fit(x_fit, y_fit, batch_size=cfg.batch_size, epochs=cfg.epochs, shuffle=True, verbose=0)
    return control.predict(x_test, batch_size=1024, verbose=0)


@builder("tflite_int8_qat")  # exporters.builders
def build_int8_qat(exp, tmp):
    q = exp.cfg.qat
    exp.console.print(f"  QAT: fine-tuning under fake quantization ({q.epochs} epoch(s), lr {q.learning_rate:g}, "
                      f"batch {q.batch_size}, {fine_tune_note(exp)})")
    res = fine_tune_qat(exp.model, exp.preset_name, exp.fine_tune["x"], exp.fine_tune["y"], exp.x_test, exp.calibration, q)
    built = fine_tuned(exp, tmp, "qat", q, res, {})
    built.extra["qat"]["fake_quant_keras_accuracy"] = built.extra["qat"]["tuned_keras_accuracy"]  # name kept from earlier releases
    return built
