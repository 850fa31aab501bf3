"""Keras -> ONNX float32 (tf2onnx) and ONNX int8 (onnxruntime static QDQ quantization).

`tf2onnx.convert.from_keras` fails on Keras 3 models (KeyError 'keras_tensor_NN'); converting a
tf.function that calls the model with an explicit input signature works (STACK.md). The input keeps a
dynamic batch dimension and the names `image` / `probabilities`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .builders import Built, builder
from .config import ONNX_INT8_SCHEMES, ExportConfig, option_default
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


# The schemes and why u8u8 is the default: exporters.config.
SCHEMES = ONNX_INT8_SCHEMES
DEFAULT_SCHEME = option_default(ExportConfig, "onnx_int8_scheme")


WEIGHTED_ONNX = ("Conv", "Gemm", "MatMul")


def weighted_nodes(path: Path) -> list[tuple[str, str, str]]:
    """(node name, op type, the tensor its block writes) for every weighted node, in graph order. The block's tensor
    is the node's output, or that of a Relu right after it (the quantizer folds the two into one QDQ output)."""
    import onnx

    graph = onnx.load(str(path)).graph
    initializers = {t.name for t in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found = []
    for node in graph.node:
        if node.op_type in WEIGHTED_ONNX and any(name in initializers for name in node.input[1:]):
            after = consumers.get(node.output[0], [])
            tensor = after[0].output[0] if len(after) == 1 and after[0].op_type == "Relu" else node.output[0]
            found.append((node.name, node.op_type, tensor))
    return found


CALIBRATION_METHODS = ("MinMax", "Entropy", "Percentile")  # onnxruntime.quantization.CalibrationMethod names


def to_int8(float_path: Path, path: Path, calibration: np.ndarray, tmp: Path, scheme: str = DEFAULT_SCHEME,
            method: str = "MinMax", per_channel: bool = True, nodes_to_quantize=None, nodes_to_exclude=None,
            exclude_weighted=None) -> list[str]:
    """Static QDQ quantization; `nodes_to_quantize` (only those) and `nodes_to_exclude` (kept in float) name nodes
    of the pre-processed graph (exporters.explain_onnx measures one node at a time with them). `exclude_weighted`
    names weighted nodes by position instead (weighted_nodes order): tf2onnx numbers its nodes per conversion, so a
    name from another conversion of the same model may not exist in this one. Returns the nodes kept in float."""
    import onnx

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
    names = {n.name for n in onnx.load(str(prepped)).graph.node}
    if exclude_weighted:
        weighted = [name for name, _, _ in weighted_nodes(prepped)]
        nodes_to_exclude = [*(nodes_to_exclude or []), *(weighted[i] for i in exclude_weighted)]
    unknown = [n for n in (nodes_to_quantize or []) + (nodes_to_exclude or []) if n not in names]
    if unknown:  # the quantizer would silently quantize everything
        raise ValueError(f"nodes not in the graph: {unknown}")
    quantize_static(
        str(prepped), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
        activation_type=QuantType[spec["activation"]], weight_type=QuantType[spec["weight"]],
        reduce_range=spec["reduce_range"], calibrate_method=CalibrationMethod[method],
        nodes_to_quantize=nodes_to_quantize, nodes_to_exclude=nodes_to_exclude,
    )
    prepped.unlink()
    return list(nodes_to_exclude or [])


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


# -- builders (exporters.builders)
def float_graph(ctx, path: Path) -> int:
    """The float graph every ONNX variant starts from, written to `path`: tf2onnx's conversion of the Keras model, or
    the run's own graph for a run written from an ONNX file; returns its opset."""
    if ctx.from_onnx:
        import onnx

        onnx.save(ctx.model.proto, str(path))
        from .onnx_source import opset_of

        return opset_of(ctx.model.proto)
    to_float32(ctx.model, path, ctx.cfg.opset)
    return ctx.cfg.opset


@builder("onnx_float32")
def build_float32(ctx, tmp):
    opset = float_graph(ctx, tmp / "model.onnx")
    return Built("model.onnx", ctx.keras_probs, {"opset": opset})


@builder("onnx_int8")
def build_int8(ctx, tmp, exclude: tuple[int, ...] = ()):
    """The onnx-int8 file; `exclude` are weighted nodes kept in float, by position (the repair ladder's second step)."""
    float_path = tmp / "float.onnx"
    opset = float_graph(ctx, float_path)
    scheme = ctx.cfg.onnx_int8_scheme
    excluded = to_int8(float_path, tmp / "model.onnx", ctx.calibration, tmp, scheme, exclude_weighted=list(exclude) or None)
    float_path.unlink()
    spec = SCHEMES[scheme]
    return Built("model.onnx", ctx.keras_probs, {**({"excluded_nodes": excluded} if excluded else {}),
        "opset": opset, "calibration": ctx.calibration_record,
        "qdq_graph_io_quantization": qdq_io_params(tmp / "model.onnx"),
        "quantization_scheme": {"name": scheme, "activations": spec["activation"], "weights": spec["weight"],
                                "reduce_range": spec["reduce_range"], "per_channel": True, "format": "QDQ",
                                "why": spec["why"], "chosen_by": "scripts/onnx_int8_schemes.py; docs/results/export.md#onnx-int8-schemes"}})
