"""Keras -> ONNX float32 (tf2onnx) and ONNX int8 (onnxruntime static QDQ quantization).

`tf2onnx.convert.from_keras` fails on Keras 3 models (KeyError 'keras_tensor_NN'); converting a
tf.function that calls the model with an explicit input signature works (STACK.md). The input keeps a
dynamic batch dimension and the names `image` / `probabilities`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .tflite import quiet

INPUT_NAME, OUTPUT_NAME = "image", "probabilities"


def to_float32(model, path: Path, opset: int) -> None:
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec((None, 28, 28, 1), tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=spec)
    def serve(image):
        return {OUTPUT_NAME: model(image, training=False)}

    with quiet():
        tf2onnx.convert.from_function(serve, input_signature=spec, opset=opset, output_path=str(path))


# ONNX Runtime int8 schemes (QDQ, per-channel weights). On x86 without AVX-512 VNNI, ORT runs int8 x int8
# products through a saturating 16-bit intermediate (signed activations are shifted to uint8 first), so the
# same S8S8 file computes differently on AVX2, SSE4.2 and VNNI CPUs. 7-bit weights (`reduce_range`) or
# uint8 x uint8 operands cannot saturate: every CPU computes the exact integer result. The default was
# chosen by measurement (scripts/onnx_int8_schemes.py; README "ONNX int8 on every CPU").
SCHEMES = {
    "s8s8": {"activation": "QInt8", "weight": "QInt8", "reduce_range": False,
             "portable": False, "why": "int8 x int8; saturates a 16-bit intermediate on x86 without VNNI"},
    "s8s8-reduce-range": {"activation": "QInt8", "weight": "QInt8", "reduce_range": True,
                          "portable": True, "why": "7-bit weights: products cannot saturate the 16-bit intermediate"},
    "u8s8-reduce-range": {"activation": "QUInt8", "weight": "QInt8", "reduce_range": True,
                          "portable": True, "why": "ORT's recommended x86 scheme: uint8 activations, 7-bit weights"},
    "u8u8": {"activation": "QUInt8", "weight": "QUInt8", "reduce_range": False,
             "portable": True, "why": "uint8 x uint8 operands are widened exactly to 16 bits before accumulation"},
}
DEFAULT_SCHEME = "u8u8"


CALIBRATION_METHODS = ("MinMax", "Entropy", "Percentile")  # onnxruntime.quantization.CalibrationMethod names


def to_int8(float_path: Path, path: Path, calibration: np.ndarray, tmp: Path, scheme: str = DEFAULT_SCHEME,
            method: str = "MinMax", per_channel: bool = True) -> None:
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(calibration[i : i + 1] for i in range(len(calibration)))

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {INPUT_NAME: x}

    spec = SCHEMES[scheme]
    prepped = tmp / "preprocessed.onnx"
    # Symbolic shape inference needs sympy; these CNNs have static shapes apart from the batch.
    quant_pre_process(str(float_path), str(prepped), skip_symbolic_shape=True)
    quantize_static(
        str(prepped), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
        activation_type=QuantType[spec["activation"]], weight_type=QuantType[spec["weight"]],
        reduce_range=spec["reduce_range"], calibrate_method=CalibrationMethod[method],
    )
    prepped.unlink()


def qdq_io_params(path: Path) -> dict:
    """Read back the scale/zero-point of the QuantizeLinear fed by the graph input and of the last
    DequantizeLinear before the graph output (the values the quantizer chose, from the file itself)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    graph_in, graph_out = m.graph.input[0].name, m.graph.output[0].name
    out = {}
    nodes = list(m.graph.node)
    # Walk forward from the input through layout ops (tf2onnx puts a Transpose to NCHW first).
    consumers = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    tensor = graph_in
    while consumers.get(tensor):
        node = consumers[tensor][0]
        if node.op_type == "QuantizeLinear":
            out["input"] = {"scale": float(inits[node.input[1]]), "zero_point": int(inits[node.input[2]])}
            break
        if node.op_type not in ("Transpose", "Reshape", "Identity"):
            break
        tensor = node.output[0]
    # Walk back from the output through non-quantized ops (e.g. Softmax) to the last DequantizeLinear.
    producers = {o: n for n in nodes for o in n.output}
    tensor = graph_out
    while tensor in producers:
        node = producers[tensor]
        if node.op_type == "DequantizeLinear":
            out["output"] = {"scale": float(inits[node.input[1]]), "zero_point": int(inits[node.input[2]])}
            break
        tensor = node.input[0]
    return out
