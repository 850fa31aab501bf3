"""`explain` for `onnx-int8`: which Keras layer ONNX Runtime's static QDQ quantization loses the accuracy in.

ONNX Runtime has no per-op verifier like TFLite's NumericVerify; its `qdq_loss_debug` matches every tensor of
the fully quantized model against float, where errors pile up downstream. So each weighted node (Conv, Gemm,
MatMul) is measured on its own, with the quantizer's own switches:

- the error its quantization adds: the model with only that node quantized (`nodes_to_quantize`: its input,
  weights and output in QDQ), its output tensor against the float model's on the calibration images, as
  whole-tensor and mean per-channel relative RMSE (the ranking key, as for TFLite);
- the agreement with only that node kept in float (`nodes_to_exclude`), on the test images.

Nodes are named by Keras layer through the same structural matching as the TFLite explain (weighted nodes in graph
order to weighted Keras layers in model order, checked by count). The scheme is export's (--onnx-int8-scheme).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np

from . import onnx_export
from .explain import flattened, keras_blocks, ranges
from .onnx_export import weighted_nodes


def _outputs(path: Path, tensors: list[str], out: Path) -> Path:
    """A copy of the model that also outputs `tensors` (ONNX Runtime computes any tensor named a graph output)."""
    import onnx

    model = onnx.load(str(path))
    present = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None)
                              for t in tensors if t not in present)
    onnx.save(model, str(out))
    return out


def _run(path: Path, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = [n for n in names if n in {o.name for o in sess.get_outputs()}]
    got = [sess.run(wanted, {onnx_export.INPUT_NAME: x[i : i + 500]}) for i in range(0, len(x), 500)]
    return [np.concatenate([g[k] for g in got]) for k in range(len(wanted))]


def _errors(f: np.ndarray, q: np.ndarray) -> dict:
    """Whole-tensor and mean per-channel relative RMSE (channels: axis 1, NCHW inside ONNX, or features)."""
    f, q = f.astype(np.float64), q.astype(np.float64)
    whole = math.sqrt(((q - f) ** 2).sum() / (f ** 2).sum()) if (f ** 2).sum() > 0 else 0.0
    e = np.moveaxis((q - f) ** 2, 1, 0).reshape(f.shape[1], -1).sum(1)
    r = np.moveaxis(f ** 2, 1, 0).reshape(f.shape[1], -1).sum(1)
    live = r > 0
    return {"rel_rmse": whole, "channel_rel_rmse": float(np.mean(np.sqrt(e[live] / r[live]))) if live.any() else whole}


def _quantized_tensor(path: Path, tensor: str) -> str:
    """The tensor as the quantized model's consumers see it: after its QuantizeLinear -> DequantizeLinear, if any."""
    import onnx

    names = {o for node in onnx.load(str(path)).graph.node for o in node.output}
    return f"{tensor}_DequantizeLinear_Output" if f"{tensor}_DequantizeLinear_Output" in names else tensor


def _score(path: Path, x: np.ndarray, y: np.ndarray, keras_probs: np.ndarray) -> dict:
    top = _run(path, x, [onnx_export.OUTPUT_NAME])[0].argmax(1)
    return {"accuracy": float((top == y).mean()), "agreement": float((top == keras_probs.argmax(1)).mean())}


def explain_onnx(model, calibration: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, keras_probs: np.ndarray,
                 scheme: str, opset: int) -> dict:
    """Every weighted node of the model's onnx-int8 file by its Keras name, ranked worst first (module docstring)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = flattened(model)
    with tempfile.TemporaryDirectory(prefix="fmnist-edge-explain-onnx-") as d:
        tmp = Path(d)
        onnx_export.to_float32(model, tmp / "float.onnx", opset)
        quant_pre_process(str(tmp / "float.onnx"), str(tmp / "prepped.onnx"), skip_symbolic_shape=True)
        nodes = weighted_nodes(tmp / "prepped.onnx")
        blocks = [layers for kind, layers in keras_blocks(model) if kind == "weighted"]
        names = ([" + ".join(layer.name for layer in layers) for layers in blocks] if len(blocks) == len(nodes)
                 else [name for name, _, _ in nodes])
        float_outs = dict(zip([t for _, _, t in nodes], _run(_outputs(tmp / "prepped.onnx", [t for _, _, t in nodes],
                                                                        tmp / "float-all.onnx"), calibration,
                                                               [t for _, _, t in nodes])))

        def quantize(name: str, **select) -> Path:
            path = tmp / f"{name}.onnx"
            onnx_export.to_int8(tmp / "float.onnx", path, calibration, tmp, scheme, **select)
            return path

        base = _score(quantize("int8"), x_test, y_test, keras_probs)
        rows = []
        for index, ((node, op, tensor), layer, rng) in enumerate(zip(
                nodes, names, ranges(model, blocks, calibration) if len(blocks) == len(nodes) else [{}] * len(nodes))):
            only = quantize("only", nodes_to_quantize=[node])
            seen = _quantized_tensor(only, tensor)
            err = _errors(float_outs[tensor], _run(_outputs(only, [seen], tmp / "only-out.onnx"), calibration, [seen])[0])
            alone = _score(quantize("without", nodes_to_exclude=[node]), x_test, y_test, keras_probs)
            rows.append({"layer": layer, "op": op, "node": node, "node_index": index,
                         "tensor": tensor, **err,
                         "snr_db": -20 * math.log10(err["rel_rmse"]) if err["rel_rmse"] > 0 else None,
                         "float_only": {**alone, "agreement_gain_points": round(100 * (alone["agreement"] - base["agreement"]), 2),
                                        "accuracy_gain_points": round(100 * (alone["accuracy"] - base["accuracy"]), 2)},
                         "ranges": rng})
    rows.sort(key=lambda r: -r["channel_rel_rmse"])
    return {"int8": base, "scheme": scheme, "calibration_images": int(len(calibration)), "test_images": int(len(x_test)),
            "keras_accuracy": float((keras_probs.argmax(1) == y_test).mean()), "layers": rows,
            "method": "error added: the model with only that node quantized (nodes_to_quantize), its output against "
                      "float on the calibration images; float_only: every node but that one quantized "
                      "(nodes_to_exclude) on the test images; ranked by the error added per channel, worst first"}
