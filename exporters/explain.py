"""Which layer loses int8 accuracy, by its Keras name (`fmnist-edge explain`).

For post-training full-integer int8 (`tflite-int8`, `tflite-int8-web`), per layer of the file:
- the error its own quantization adds: TensorFlow Lite's QuantizationDebugger puts a NumericVerify op after every
  quantized op, which compares the op's int8 output with the same op computed in float on the same (dequantized)
  input, on the calibration images; reported as relative RMSE and SNR;
- the accuracy and agreement with Keras with only that layer kept in float (leave one out: the converter's
  selective quantization, `denylisted_nodes`), on the test images;
- the ranges that explain it, from the Keras model on the calibration images: the output's min/max, per channel
  too, and the outlier ratio (largest channel range over the median one), and the same for the weights.
Layers are ranked worst first by the error added per channel: a channel scaled up (after BatchNormalization folding,
or in a model trained without normalization) takes its tensor's one int8 scale and crushes the other channels,
which the whole-tensor error hides and keeping that one layer in float does not cure (the next op quantizes the
same tensor); leave-one-out shows what float would win back, for the repair that keeps layers in float.
TFLite fuses a convolution with the BatchNormalization and activation after it: such a row names the three.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .tflite import int8_converter, quiet_debugger as quiet

WEIGHTED = {"CONV_2D": ("Conv2D", "SeparableConv2D"), "DEPTHWISE_CONV_2D": ("DepthwiseConv2D", "SeparableConv2D"),
            "FULLY_CONNECTED": ("Dense",)}
OTHERS = {"MAX_POOL_2D": ("MaxPooling2D",), "AVERAGE_POOL_2D": ("AveragePooling2D",), "ADD": ("Add",),
          "MEAN": ("GlobalAveragePooling2D",), "CONCATENATION": ("Concatenate",), "RESHAPE": ("Flatten", "Reshape"),
          "SOFTMAX": ("Softmax",)}
FUSED = ("BatchNormalization", "ReLU", "Activation")  # folded into the op before them by the converter


@dataclass
class Op:
    index: int
    kind: str
    tensor: str  # the op's output tensor: what denylisted_nodes names


def file_ops(model_bytes: bytes) -> list[Op]:
    """The ops of a quantized file in execution order, skipping the boundary QUANTIZE/DEQUANTIZE."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=model_bytes,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    return [Op(op["index"], op["op_name"], names[op["outputs"][0]]) for op in it._get_ops_details()
            if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE", "DELEGATE")]


def flattened(model):
    """The model as one flat graph of its own layers (exporters.rebuild.flat_keras: an exported model file is wrapped
    in the export contract; training-only layers, absent from the file, are left out), so each layer has its own
    name and output here, and no name the wrapper adds can take a user's."""
    from .errors import FineTuneUnsupported
    from .rebuild import flat_keras

    try:
        return flat_keras(model)
    except FineTuneUnsupported:  # no layer graph to replay: the model as it is (its layers then name the ops)
        return model


def keras_blocks(model) -> list[tuple[str, list]]:
    """(kind, [layer, fused layers...]) for each Keras layer that becomes an op, in model order."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    blocks = []
    for i, layer in enumerate(layers):
        kind = type(layer).__name__
        if kind in FUSED and blocks and blocks[-1][0] == "weighted":
            blocks[-1][1].append(layer)
            continue
        if kind == "SeparableConv2D":  # one Keras layer, two ops
            blocks += [("weighted", [layer]), ("weighted", [layer])]
        elif any(kind in v for v in WEIGHTED.values()):
            blocks.append(("weighted", [layer]))
        elif any(kind in v for v in OTHERS.values()):
            blocks.append((kind, [layer]))
    return blocks


def _scope_layers(tensor: str, by_name: dict) -> list:
    """The Keras layers an op's output tensor is named after, in model order. The converter names a tensor after the
    TensorFlow ops it fused, `model_scope/layer_scope/Op` joined by ';', where a layer's scope is its name plus a
    `_N` that TensorFlow adds to keep scopes unique (`conv2d_1` -> `conv2d_1_1`)."""
    found = []
    for part in tensor.split(";"):
        pieces = part.split("/")
        if len(pieces) < 3:
            continue
        scope = pieces[1]
        stripped = re.sub(r"_\d+$", "", scope)
        layer = by_name.get(stripped) or by_name.get(scope)
        if layer is not None and layer not in found:
            found.append(layer)
    return found


def _by_tensor_name(op: Op, by_name: dict, order: dict) -> tuple[str, list] | None:
    """(name, layers) of an op from its tensor's name: the layer of the op's own kind first, then those fused into it."""
    layers = sorted(_scope_layers(op.tensor, by_name), key=order.get)
    kinds = WEIGHTED.get(op.kind) or OTHERS.get(op.kind) or ()
    main = [layer for layer in layers if type(layer).__name__ in kinds]
    if not main and len(layers) == 1:  # an op the layer became (a BatchNormalization after Dense: MUL and ADD)
        return f"{layers[0].name} ({op.kind})", layers
    if len(main) != 1:
        return None
    fused = [layer for layer in layers if layer is not main[0] and type(layer).__name__ in FUSED]
    group = [main[0], *fused]
    return (" + ".join(layer.name for layer in group) if op.kind in WEIGHTED else main[0].name), group


def name_ops(ops: list[Op], model) -> dict[int, tuple[str, list]]:
    """{op index: (Keras name, its layers)}: each op by the layers its tensor is named after (exact in a branching
    graph, where the converter's op order need not be Keras's); failing that, weighted ops to weighted Keras layers
    in order (checked by count), the rest to layers of the matching kind in order; an op with no Keras counterpart
    keeps its TFLite name."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    by_name, order = {layer.name: layer for layer in layers}, {layer: i for i, layer in enumerate(layers)}
    named = {op.index: found for op in ops if (found := _by_tensor_name(op, by_name, order)) is not None}
    used = {id(layer) for _, group in named.values() for layer in group}
    blocks = [b for b in keras_blocks(model) if not any(id(layer) in used for layer in b[1])]
    weighted = [b for b in blocks if b[0] == "weighted"]
    weighted_ops = [op for op in ops if op.kind in WEIGHTED and op.index not in named]
    if len(weighted) == len(weighted_ops):
        for op, (_, group) in zip(weighted_ops, weighted):
            named[op.index] = (" + ".join(layer.name for layer in group), group)
    pools = {kind: [b[1] for b in blocks if b[0] in keras_kinds] for kind, keras_kinds in OTHERS.items()}
    for op in ops:
        if op.index not in named and pools.get(op.kind):
            group = pools[op.kind].pop(0)
            named[op.index] = (group[0].name, group)
    last_dense = next((layer for layer in reversed(model.layers) if type(layer).__name__ == "Dense"), None)
    for op in ops:
        if op.index not in named:
            softmax = op.kind == "SOFTMAX" and last_dense is not None
            named[op.index] = (f"{last_dense.name} (softmax)" if softmax else f"{op.kind} {op.tensor}", [])
    return named


def _ratio(channel_ranges: np.ndarray) -> float:
    median = float(np.median(channel_ranges))
    return float(channel_ranges.max() / median) if median > 0 else math.inf


def _softmax_dense(layer) -> bool:
    return type(layer).__name__ == "Dense" and getattr(layer.activation, "__name__", "") == "softmax"


def ranges(model, blocks: list[list], calibration: np.ndarray) -> list[dict]:
    """Each block's output range (per tensor and per channel) on the calibration images, and its weights', from
    one multi-output pass of the Keras model. A Dense with softmax: its logits' range (`output_is`)."""
    import keras

    ends = [layers[-1] for layers in blocks if layers]
    # A Dense with softmax: the file's op writes the logits (SOFTMAX is an op of its own), so that is the range its
    # quantization sees; taken from the layer's input and weights, as the softmax-ed output is always within [0, 1].
    fetch = [layer.input if _softmax_dense(layer) else layer.output for layer in ends]
    outputs = keras.Model(model.inputs, fetch).predict(calibration, batch_size=256, verbose=0)
    outputs = dict(zip((layer.name for layer in ends), outputs if len(ends) > 1 else [outputs]))
    records = []
    for layers in blocks:
        if not layers:
            records.append({})
            continue
        out = outputs[layers[-1].name]
        if _softmax_dense(layers[-1]):
            kernel, *bias = layers[-1].get_weights()
            out = out @ kernel + (bias[0] if bias else 0)
        flat = out.reshape(-1, out.shape[-1])
        ch_min, ch_max = flat.min(0), flat.max(0)
        record = {"output_min": float(flat.min()), "output_max": float(flat.max()),
                  "channel_min": [round(float(v), 4) for v in ch_min], "channel_max": [round(float(v), 4) for v in ch_max],
                  "output_outlier_ratio": _ratio(ch_max - ch_min),
                  "output_is": "logits (before softmax)" if _softmax_dense(layers[-1]) else "the layer's output"}
        kernel = next((w for w in layers[0].get_weights() if w.ndim >= 2), None)
        if kernel is not None:  # per output channel (the last axis; depthwise: channel x multiplier)
            depthwise = type(layers[0]).__name__ == "DepthwiseConv2D"
            per_channel = np.abs(kernel.reshape(-1, kernel.shape[-2] * kernel.shape[-1]) if depthwise
                                 else kernel.reshape(-1, kernel.shape[-1])).max(0)
            record |= {"weight_min": float(kernel.min()), "weight_max": float(kernel.max()),
                       "weight_outlier_ratio": _ratio(per_channel)}
        records.append(record)
    return records


def debugger(model, calibration: np.ndarray):
    """TFLite's QuantizationDebugger for the model's full-integer int8 conversion (float I/O inside the file)."""
    import tensorflow as tf

    converter = int8_converter(tf.lite.TFLiteConverter.from_keras_model(model), calibration, integer_io=False)
    with quiet():
        return tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=_images(calibration))


def _images(x: np.ndarray):
    def dataset():
        for i in range(len(x)):
            yield [x[i : i + 1]]
    return dataset


def quantized(dbg, denylist=()) -> bytes:
    """The int8 file with the ops writing `denylist` (tensor names) kept in float (selective quantization)."""
    import tensorflow as tf

    with quiet():  # setting options re-quantizes (and makes an interpreter): as noisy as the rest
        dbg.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(denylist) or None)
        return dbg.get_nondebug_quantized_model()


def layer_errors(dbg, ops: list[Op], calibration: np.ndarray) -> dict[int, dict]:
    """{op index: the error its own quantization adds}, from the NumericVerify ops of the debug model (read in a
    second debugger over the debug model itself: only that one keeps every tensor to compare). `rel_rmse` is over
    the whole tensor; `channel_rel_rmse` is the mean over output channels of each channel's own relative RMSE,
    which sees the small channels a large one crushes under a shared scale (the whole-tensor number does not)."""
    import tensorflow as tf

    def deq(q, scale, zero_point):
        return (q.astype(np.float64) - zero_point) * scale

    def err2(f, q, scale, zero_point):
        return float(np.sum((deq(q, scale, zero_point) - f) ** 2))

    def ref2(f, q, scale, zero_point):
        return float(np.sum(f.astype(np.float64) ** 2))

    def channel(f, q, scale, zero_point):
        e = ((deq(q, scale, zero_point) - f) ** 2).reshape(-1, f.shape[-1]).sum(0)
        r = (f.astype(np.float64) ** 2).reshape(-1, f.shape[-1]).sum(0)
        live = r > 0
        return float(np.mean(np.sqrt(e[live] / r[live]))) if live.any() else float("nan")

    with quiet():
        dbg.options = tf.lite.experimental.QuantizationDebugOptions()
        verify = tf.lite.experimental.QuantizationDebugger(
            quant_debug_model_content=dbg.get_debug_quantized_model(), debug_dataset=_images(calibration),
            debug_options=tf.lite.experimental.QuantizationDebugOptions(
                layer_direct_compare_metrics={"err2": err2, "ref2": ref2, "channel": channel}))
        verify.run()
    out = {}
    for name, stats in verify.layer_statistics.items():
        stem = name.removeprefix("NumericVerify/")
        op = max((o for o in ops if stem.startswith(o.tensor)), key=lambda o: len(o.tensor), default=None)
        if op is not None:
            whole = math.sqrt(stats["err2"] / stats["ref2"]) if stats["ref2"] > 0 else 0.0
            per_channel = float(stats["channel"]) if math.isfinite(stats["channel"]) else whole
            out[op.index] = {"rel_rmse": whole, "channel_rel_rmse": per_channel}
    return out


def score(model_bytes: bytes, x: np.ndarray, y: np.ndarray, keras_probs: np.ndarray) -> dict:
    """Accuracy, and top-1 agreement with Keras, of a float-I/O TFLite file on images x."""
    from ai_edge_litert.interpreter import Interpreter

    from runtime.backends import without_delegate_notice

    with without_delegate_notice():  # the delegate is applied, and announced, when the tensors are allocated
        it = Interpreter(model_content=model_bytes)
        inp, out = it.get_input_details()[0], it.get_output_details()[0]
        it.resize_tensor_input(inp["index"], [500, *x.shape[1:]])
        it.allocate_tensors()
    probs = []
    for i in range(0, len(x), 500):
        batch = x[i : i + 500]
        if len(batch) < 500:
            batch = np.concatenate([batch, np.zeros((500 - len(batch), *x.shape[1:]), x.dtype)])
        it.set_tensor(inp["index"], batch.astype(np.float32))
        it.invoke()
        probs.append(it.get_tensor(out["index"]).copy())
    top = np.concatenate(probs)[: len(x)].argmax(1)
    return {"accuracy": float((top == y).mean()), "agreement": float((top == keras_probs.argmax(1)).mean())}


def explain(model, calibration: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, keras_probs: np.ndarray) -> dict:
    """Every op of the model's int8 file by its Keras name, ranked worst first (module docstring)."""
    model = flattened(model)
    dbg = debugger(model, calibration)
    plain = quantized(dbg)
    ops = file_ops(plain)
    names = name_ops(ops, model)
    errors = layer_errors(dbg, ops, calibration)
    base = score(plain, x_test, y_test, keras_probs)
    measured = [op for op in ops if op.index in errors]
    rows = []
    for op, rng in zip(measured, ranges(model, [names[op.index][1] for op in measured], calibration)):
        err = errors[op.index]
        row = {"layer": names[op.index][0], "op": op.kind, "tensor": op.tensor, **err,
               "snr_db": -20 * math.log10(err["rel_rmse"]) if err["rel_rmse"] > 0 else None}
        if err["rel_rmse"] > 0:
            alone = score(quantized(dbg, [op.tensor]), x_test, y_test, keras_probs)
            row["float_only"] = {**alone, "agreement_gain_points": round(100 * (alone["agreement"] - base["agreement"]), 2),
                                 "accuracy_gain_points": round(100 * (alone["accuracy"] - base["accuracy"]), 2)}
        rows.append({**row, "ranges": rng})
    rows.sort(key=lambda r: -r["channel_rel_rmse"])
    return {"int8": base, "calibration_images": int(len(calibration)), "test_images": int(len(x_test)),
            "keras_accuracy": float((keras_probs.argmax(1) == y_test).mean()), "layers": rows,
            "method": "error added: NumericVerify (TFLite QuantizationDebugger) on the calibration images; float_only: "
                      "the file with only that layer in float (denylisted_nodes) on the test images; ranked by the "
                      "error added per channel (channel_rel_rmse), worst first"}
