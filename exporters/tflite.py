"""Keras -> TFLite: float32, and full-integer int8 by post-training quantization.

`TFLiteConverter.from_keras_model` works for Keras 3 models on TF 2.21 (it goes through a SavedModel).
int8 uses a representative dataset, int8-only builtins and int8 input/output tensors; weights are
quantized per channel (the converter's default for conv and dense kernels).
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np

from .builders import Built, builder


@contextlib.contextmanager
def quiet():
    """The converter prints its SavedModel signature to stdout, and warns that a tf_keras model's int8 input
    has no recorded statistics (the representative dataset provides them); keep the user's terminal readable."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        yield


# What TensorFlow's quantization debugger and MLIR quantizer write to stderr on every call: progress, deprecation
# and debugging notices about the tools themselves, not about the user's model.
NATIVE_NOISE = (b"fully_quantize:", b"INFO: Created TensorFlow Lite", b"WARNING: All log messages before absl",
                b"W0000", b"I0000")


@contextlib.contextmanager
def quiet_debugger():
    """`quiet`, plus the quantization debugger's Python warnings and its native NATIVE_NOISE lines on stderr
    dropped (anything else still reaches the terminal)."""
    from runtime.backends import filtered_stderr

    with quiet(), warnings.catch_warnings(), filtered_stderr(*NATIVE_NOISE):
        warnings.filterwarnings("ignore", message=r".*tf\.lite\.Interpreter is deprecated")
        warnings.filterwarnings("ignore", message=r".*experimental_preserve_all_tensors")
        yield


def convert(converter) -> bytes:
    """The converter's file, with its Python output and its native NATIVE_NOISE lines (the MLIR quantizer's
    `fully_quantize: 0, ...` once per int8 conversion) kept off the terminal."""
    from runtime.backends import filtered_stderr

    with quiet(), filtered_stderr(*NATIVE_NOISE):
        return converter.convert()


def to_float32(model) -> bytes:
    import tensorflow as tf

    return convert(tf.lite.TFLiteConverter.from_keras_model(model))


def int8_converter(converter, calibration: np.ndarray, integer_io: bool = True):
    """Configure a converter for full-integer int8 kernels, with int8 input and output (or float32 ones, which the
    converter quantizes and dequantizes inside the file, when not `integer_io`)."""
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def representative():
        for i in range(len(calibration)):
            yield [calibration[i : i + 1]]

    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if integer_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter


def to_int8(model, calibration: np.ndarray) -> bytes:
    import tensorflow as tf

    return convert(int8_converter(tf.lite.TFLiteConverter.from_keras_model(model), calibration))


def to_int8_web(model, calibration: np.ndarray) -> bytes:
    """Full-integer int8 kernels with float32 input/output and a static batch of 1: what LiteRT.js runs (it has no
    resize call and no int8 tensor type at a model's boundary; STACK.md)."""
    import keras
    import tensorflow as tf

    image = keras.Input(batch_shape=(1, 28, 28, 1), name="image")
    fixed = keras.Model(image, model(image), name=f"{model.name}_batch1")
    return convert(int8_converter(tf.lite.TFLiteConverter.from_keras_model(fixed), calibration, integer_io=False))


def to_float16(model) -> bytes:
    """float16 weights (half the size); the interpreter dequantizes them to float32 at load."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return convert(converter)


def to_dynamic_int8(model) -> bytes:
    """Dynamic-range quantization: int8 weights, activations quantized on the fly, float32 I/O. No
    representative dataset, which is why it is the option users reach for first."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return convert(converter)


# -- builders (exporters.builders): the Keras model as it is, converted
@builder("tflite_float32")
def build_float32(ctx, tmp):
    (tmp / "model.tflite").write_bytes(to_float32(ctx.model))
    return Built("model.tflite", ctx.keras_probs)


@builder("tflite_float16")
def build_float16(ctx, tmp):
    (tmp / "model.tflite").write_bytes(to_float16(ctx.model))
    return Built("model.tflite", ctx.keras_probs, {"weights": "float16 (dequantized to float32 at load)"})


@builder("tflite_dynamic_int8")
def build_dynamic_int8(ctx, tmp):
    (tmp / "model.tflite").write_bytes(to_dynamic_int8(ctx.model))
    return Built("model.tflite", ctx.keras_probs, {
        "weights": "int8 per channel (the converter keeps tensors under 1,024 weights in float32); activations "
                   "quantized on the fly per inference; float32 I/O"})


@builder("tflite_int8")
def build_int8(ctx, tmp):
    (tmp / "model.tflite").write_bytes(to_int8(ctx.model, ctx.calibration))
    return Built("model.tflite", ctx.keras_probs, {"calibration": ctx.calibration_record})


@builder("tflite_int8_web")
def build_int8_web(ctx, tmp):
    (tmp / "model.tflite").write_bytes(to_int8_web(ctx.model, ctx.calibration))
    return Built("model.tflite", ctx.keras_probs, {"calibration": ctx.calibration_record,
                                                   "runtime": "LiteRT.js (@litertjs/core) in the web app; any LiteRT"})
