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
from dataclasses import dataclass

import numpy as np

from fmnist_edge.models import get_preset

from .tflite import convert, int8_converter


@dataclass(frozen=True)
class QATConfig:
    epochs: int = 1
    learning_rate: float = 3e-5
    batch_size: int = 256
    seed: int = 0


def fine_tune_qat(model, model_name: str, x_fit, y_fit, x_test, calibration, cfg: QATConfig) -> dict:
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    tf_keras.utils.set_random_seed(cfg.seed)
    clone = get_preset(model_name).build(tf_keras)
    clone.set_weights(model.get_weights())
    qmodel = tfmot.quantization.keras.quantize_model(clone)
    qmodel.compile(optimizer=tf_keras.optimizers.Adam(cfg.learning_rate), loss="sparse_categorical_crossentropy",
                   metrics=["accuracy"])
    t0 = time.perf_counter()
    qmodel.fit(x_fit, y_fit, batch_size=cfg.batch_size, epochs=cfg.epochs, shuffle=True, verbose=0)
    seconds = time.perf_counter() - t0
    fake_quant_probs = qmodel.predict(x_test, batch_size=1024, verbose=0)
    # Fake-quant nodes carry the activation ranges; the converter still insists on a representative
    # dataset for int8-only builtins, so it gets the same calibration images as post-training int8.
    tflite = convert(int8_converter(tf.lite.TFLiteConverter.from_keras_model(qmodel), calibration))
    return {"tflite": tflite, "fake_quant_probs": fake_quant_probs, "fit_seconds": seconds}


def fine_tune_float_control(model, x_fit, y_fit, x_test, cfg: QATConfig) -> np.ndarray:
    """The same schedule on the float Keras 3 model; returns its test probabilities."""
    import keras

    keras.utils.set_random_seed(cfg.seed)
    control = keras.models.clone_model(model)
    control.set_weights(model.get_weights())
    control.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="sparse_categorical_crossentropy")
    control.fit(x_fit, y_fit, batch_size=cfg.batch_size, epochs=cfg.epochs, shuffle=True, verbose=0)
    return control.predict(x_test, batch_size=1024, verbose=0)
