"""Repairs for a post-training int8 file that misses its gate (`export --repair auto`), tried in order, each
checked again by the variant's gate and portability proof; refusal stays the last step.

1. Cross-layer equalization (Nagel et al., 2019): between two consecutive conv/dense layers joined through ReLU
   (or nothing, max-pooling, flatten, dropout), output channel c of the first is divided by s_c and the matching
   input channel of the second multiplied by it, which keeps the function (ReLU(x / s) = ReLU(x) / s for s > 0)
   while giving both the same per-channel weight range. A channel scaled up after BatchNormalization folding, or
   in a model trained without normalization, no longer dominates its tensor's single int8 scale. The file stays
   fully integer.
2. Higher precision where `explain` points: the layers that win back the most agreement are kept in float (TFLite:
   denylisted in an int8-I/O file, which is then not full-integer: the manifest says so and `micro` and `c-source`
   refuse it with that reason; ONNX: their nodes excluded from quantization). Not for tflite-int8-web, whose
   LiteRT.js build needs every kernel in int8.
"""

from __future__ import annotations

import numpy as np

SCALABLE = ("Conv2D", "Dense", "DepthwiseConv2D")
PASS_THROUGH = ("ReLU", "MaxPooling2D", "Dropout", "Flatten", "SpatialDropout2D")  # s-homogeneous per channel
EQUALIZE_SWEEPS = 4


def _relu_or_linear(layer) -> bool:
    name = getattr(getattr(layer, "activation", None), "__name__", "linear")
    return name in ("linear", "relu")


def _only_consumer(layer):
    """The one layer this layer's output feeds, or None (the model's output, or a branch: a skip connection or a
    concatenation also reads it, and rescaling it would change what they compute)."""
    consumers = [node.operation for node in getattr(layer, "_outbound_nodes", [])]
    return consumers[0] if len(consumers) == 1 else None


def pairs(model) -> list[tuple]:
    """(first, second, flatten_from) for every pair equalization may rescale, in model order, following the graph:
    the second reads only the first's output through per-channel pass-through layers; flatten_from is the (H, W, C)
    shape a Flatten between them unrolls (None without one)."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    found = []
    for first in layers:
        if type(first).__name__ not in SCALABLE or not _relu_or_linear(first) or not first.use_bias:
            continue
        if type(first).__name__ == "DepthwiseConv2D" and first.depth_multiplier != 1:
            continue
        flatten_from = None
        nxt = _only_consumer(first)
        while nxt is not None:
            kind = type(nxt).__name__
            if kind == "Flatten":
                flatten_from = tuple(int(d) for d in first.output.shape[1:])
            elif kind == "ReLU" and (nxt.max_value is not None or nxt.negative_slope or nxt.threshold):
                break  # ReLU6 and leaky ReLU do not commute with scaling
            elif kind in SCALABLE:
                found.append((first, nxt, flatten_from))
                break
            elif kind not in PASS_THROUGH:
                break
            nxt = _only_consumer(nxt)
    return found


def _output_axis(layer, kernel: np.ndarray) -> np.ndarray:
    """Per output channel max |w| of the first layer's kernel."""
    if type(layer).__name__ == "DepthwiseConv2D":
        return np.abs(kernel).max(axis=(0, 1, 3))
    return np.abs(kernel.reshape(-1, kernel.shape[-1])).max(0)


def _input_view(layer, kernel: np.ndarray, flatten_from) -> np.ndarray:
    """The second layer's kernel as (channels of the first, everything else), to scale per input channel."""
    if flatten_from is not None:  # Dense after Flatten of (H, W, C): rows h*W*C + w*C + c belong to channel c
        channels = flatten_from[-1]
        return kernel.reshape(-1, channels, kernel.shape[-1]).transpose(1, 0, 2).reshape(channels, -1)
    if type(layer).__name__ == "Dense":
        return kernel.reshape(kernel.shape[0], -1)
    axis = 2  # conv (kh, kw, C_in, C_out), depthwise (kh, kw, C, multiplier)
    return np.moveaxis(kernel, axis, 0).reshape(kernel.shape[axis], -1)


def _scale_input(layer, kernel: np.ndarray, flatten_from, s: np.ndarray) -> np.ndarray:
    if flatten_from is not None:
        channels = flatten_from[-1]
        return (kernel.reshape(-1, channels, kernel.shape[-1]) * s[None, :, None]).reshape(kernel.shape)
    if type(layer).__name__ == "Dense":
        return kernel * s[:, None]
    shape = [1] * kernel.ndim
    shape[2] = -1
    return kernel * s.reshape(shape)


def equalize(model, sweeps: int = EQUALIZE_SWEEPS):
    """A copy of the model with cross-layer equalization applied; returns (model, record). The record lists each
    pair and its largest channel scale; no pair leaves the model unchanged (record['pairs'] empty)."""
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    before = {first.name: _output_axis(first, first.get_weights()[0]) for first, _, _ in pairs(clone)}
    for _ in range(sweeps):
        for first, second, flatten_from in pairs(clone):
            w1, b1, *rest1 = first.get_weights()
            w2, *rest2 = second.get_weights()
            r1, r2 = _output_axis(first, w1), np.abs(_input_view(second, w2, flatten_from)).max(1)
            ok = (r1 > 0) & (r2 > 0)
            s = np.where(ok, np.sqrt(np.where(ok, r1, 1) / np.where(ok, r2, 1)), 1.0).astype(w1.dtype)
            shape = [1] * (w1.ndim - 2) + ([-1, 1] if type(first).__name__ == "DepthwiseConv2D" else [1, -1])
            first.set_weights([w1 / s.reshape(shape), b1 / s, *rest1])
            second.set_weights([_scale_input(second, w2, flatten_from, s), *rest2])
    record = []
    for first, second, _ in pairs(clone):
        ratio = before[first.name] / np.maximum(_output_axis(first, first.get_weights()[0]), 1e-30)
        record.append({"layers": f"{first.name} -> {second.name}",
                       "largest_channel_scale": round(float(np.max(np.maximum(ratio, 1 / ratio))), 3)})
    return clone, {"pairs": record}


MAX_FLOAT_LAYERS = 3
FUNCTION_TOLERANCE = 1e-3  # max |dp| between the equalized and the original Keras model: the same function


def selective_int8(model, calibration: np.ndarray, float_tensors: list[str]) -> bytes:
    """Full-integer int8 I/O and kernels except the ops writing `float_tensors`, kept in float (selective
    quantization through the converter's calibrated model)."""
    import tensorflow as tf
    from tensorflow.lite.python import convert

    from .explain import debugger
    from .tflite import quiet_debugger as quiet

    dbg = debugger(model, calibration)
    with quiet():
        return convert.mlir_quantize(dbg.calibrated_model, fully_quantize=True, input_data_type=tf.int8,
                                     output_data_type=tf.int8, denylisted_nodes=list(float_tensors))


def helpful_layers(report: dict) -> list[dict]:
    """Explain's rows whose layer alone in float wins agreement back, most first, at most MAX_FLOAT_LAYERS and never
    every weighted layer (a file with every conv and dense in float is a float model)."""
    from .explain import WEIGHTED
    from .onnx_export import WEIGHTED_ONNX

    budget = min(MAX_FLOAT_LAYERS, sum(r["op"] in WEIGHTED or r["op"] in WEIGHTED_ONNX for r in report["layers"]) - 1)
    return sorted((r for r in report["layers"] if r.get("float_only", {}).get("agreement_gain_points", 0) > 0),
                  key=lambda r: -r["float_only"]["agreement_gain_points"])[:max(budget, 0)]


def _float_layers_builder(variant: str, model, chosen: list[dict]):
    """build(ctx, tmp) writing the variant's file with the `chosen` explain rows kept in float: TFLite by
    denylisting their tensors, ONNX by excluding their nodes from quantization."""
    from .builders import Built

    def build(c, tmp):
        if variant == "onnx-int8":
            from . import onnx_export

            return onnx_export.build_int8(c, tmp, tuple(r["node_index"] for r in chosen))
        (tmp / "model.tflite").write_bytes(selective_int8(model, c.calibration, [r["tensor"] for r in chosen]))
        return Built("model.tflite", c.keras_probs, {"calibration": c.calibration_record})
    return build


def ladder(ctx, variant: str, first: Exception, attempt):
    """Try the repairs in order after `first` (the ParityError of the plain conversion). `attempt(ctx, build)`
    builds with `build(ctx, tmp)` (None: the variant's own builder), checks the gate and returns the checked
    result, or raises ParityError. Returns (result, repair record); raises RepairFailed naming explain's top
    layers when nothing passes."""
    from dataclasses import replace

    from .errors import ParityError, RepairFailed
    from .explain import flattened
    from .explain_target import explain_variant

    tried = [{"step": "plain post-training int8", **first.numbers}]
    model = flattened(ctx.model)
    equalized, record = equalize(model)
    if record["pairs"]:
        drift = float(np.abs(equalized.predict(ctx.calibration, verbose=0) - ctx.model.predict(ctx.calibration, verbose=0)).max())
        if drift <= FUNCTION_TOLERANCE:
            model = equalized
            ctx.console.print(f"  {variant}: missed its gate; trying cross-layer equalization of "
                              f"{', '.join(p['layers'] for p in record['pairs'])}")
            try:
                return attempt(replace(ctx, model=equalized), None), {"equalized": record["pairs"], "tried": tried}
            except ParityError as exc:
                tried.append({"step": "cross-layer equalization", **exc.numbers})
    report = explain_variant(ctx, variant, model)
    helpful = helpful_layers(report)
    if variant != "tflite-int8-web":  # the web file's LiteRT.js build needs every kernel in int8
        for k in range(1, len(helpful) + 1):
            chosen = helpful[:k]
            ctx.console.print(f"  {variant}: trying {', '.join(r['layer'] for r in chosen)} in float")
            try:
                result = attempt(replace(ctx, model=model), _float_layers_builder(variant, model, chosen))
            except ParityError as exc:
                tried.append({"step": f"{k} layer(s) in float", **exc.numbers})
                continue
            return result, {**({"equalized": record["pairs"]} if model is equalized else {}),
                            "float_layers": [r["layer"] for r in chosen], "tried": tried,
                            # an ONNX int8 file has float I/O anyway; a TFLite one loses what TFLite Micro needs
                            **({"full_integer": False} if variant == "tflite-int8" else {})}
    raise RepairFailed(variant, first, tried, [r["layer"] for r in report["layers"][:3]])


def summary(record: dict | None) -> str:
    """One line for the export summary and bench: what was repaired."""
    if not record:
        return ""
    parts = []
    if record.get("equalized"):
        parts.append(f"cross-layer equalized ({len(record['equalized'])} pair(s))")
    if record.get("float_layers"):
        parts.append(f"{', '.join(record['float_layers'])} kept in float"
                     + (" (not full-integer)" if record.get("full_integer") is False else ""))
    return "repaired: " + "; ".join(parts)
