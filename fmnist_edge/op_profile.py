"""Where an artifact's batch-1 time goes, per op, without TensorFlow (`fmnist-edge bench --profile`).

- ONNX: ONNX Runtime's own profiler (`SessionOptions.enable_profiling`): every node's kernel time on every
  run, averaged; the whole is its `model_run` events, so the table says how much of it the nodes cover.
- TFLite: LiteRT's Python interpreter exposes no op profiler, so time is measured by **cumulative prefixes**:
  the file is rewritten (the flatbuffer schema that ships with ai-edge-litert) into N models holding its
  first 1..N ops, each timed in interleaved rounds with XNNPACK as the runtime uses it, and op k gets
  p50(prefix k) - p50(prefix k-1), after making the prefixes' p50s non-decreasing (noise could otherwise make a
  cheap op negative). The differences add up to the last prefix by construction; the table compares that with
  the unmodified file's own p50, and reports the noise floor (how far a prefix's p50 moves between rounds): an
  op below it cannot be told from zero. A prefix LiteRT cannot run (XNNPACK refuses a graph ending in a
  constant, such as a float16 file's DEQUANTIZE) is counted in the next op that runs.
Each row: op, output shape, time (µs), share of the whole, MFLOP and MFLOP/s (conv and dense ops).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

import runtime
from runtime.backends import tflite_interpreter_class, without_delegate_notice
from runtime.manifest import keras_outputs_dir

from .bench import interleaved_rounds
from .errors import FmnistEdgeError

WARMUP_RUNS = 20  # ONNX Runtime runs whose profile events are dropped
# ONNX Runtime's kernels for conv and dense nodes, its fused ones (Conv/Gemm + activation) included
ONNX_CONV = ("Conv", "FusedConv", "NhwcFusedConv", "ConvInteger", "QLinearConv")
ONNX_DENSE = ("Gemm", "FusedGemm", "QGemm", "MatMul", "MatMulInteger", "QLinearMatMul")


def _flops(kind: str, weight_shape, out_shape) -> int | None:
    """Multiply-adds x 2 of a conv or dense op from its weight and output shapes (NHWC/NCHW alike)."""
    if weight_shape is None or out_shape is None:
        return None
    out = [int(d) for d in out_shape]
    w = [int(d) for d in weight_shape]
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(w) == 4 and len(out) == 4:
        # TFLite: conv (C_out, kh, kw, C_in); depthwise (1, kh, kw, C_out)
        per_output = w[1] * w[2] * (w[3] if kind == "CONV_2D" else 1)
        return 2 * out[1] * out[2] * out[3] * per_output
    if kind == "FULLY_CONNECTED" and len(w) == 2:  # (units, inputs), per image
        return 2 * w[0] * w[1]
    if kind in ONNX_CONV and len(w) == 4 and len(out) == 4:
        # ONNX: weight (C_out, C_in / groups, kh, kw). ONNX Runtime's output is NHWC for its NHWC kernels, else NCHW
        # with the channels padded to its blocked layout (NCHWc): C_out comes from the weight.
        spatial = out[1] * out[2] if kind in ("QLinearConv", "NhwcFusedConv") else out[2] * out[3]
        return 2 * spatial * w[0] * w[1] * w[2] * w[3]
    if kind in ONNX_DENSE and len(w) == 2:
        return 2 * w[0] * w[1]
    return None


def _rows(ops: list[dict], whole_us: float) -> list[dict]:
    total = sum(o["us"] for o in ops)
    for o in ops:
        o["share"] = o["us"] / whole_us if whole_us else None
        o["mflop_per_s"] = (o["flops"] / 1e6) / (o["us"] / 1e6) if o.get("flops") and o["us"] > 0 else None
        o["mflop"] = o["flops"] / 1e6 if o.get("flops") else None
    return [*ops, {"op": "(sum of ops)", "us": total, "share": total / whole_us if whole_us else None}]


# --- ONNX Runtime --------------------------------------------------------------------------------------------

def profile_onnx(path: Path, image: np.ndarray, runs: int, threads: int = 1) -> dict:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="fmnist-edge-profile-") as tmp:
        opts = ort.SessionOptions()
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "ort")
        opts.intra_op_num_threads = opts.inter_op_num_threads = threads
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: image}
        for _ in range(WARMUP_RUNS + runs):  # the warm-up's events are dropped below
            sess.run(None, feed)
        events = json.loads(Path(sess.end_profiling()).read_text())
        weights = _onnx_weights(path)
    model_runs = [e["dur"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"][WARMUP_RUNS:]
    nodes: dict[str, dict] = {}
    seen_runs = 0
    for e in events:
        if e.get("cat") == "Session" and e.get("name") == "model_run":
            seen_runs += 1
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time") or seen_runs <= WARMUP_RUNS:
            continue
        name = e["name"][: -len("_kernel_time")]
        args = e.get("args", {})
        if name not in nodes:
            op = args.get("op_name", "?")
            queue = weights["conv"] if op in ONNX_CONV else weights["dense"] if op in ONNX_DENSE else None
            # ONNX Runtime prepacks weights and drops them from the profile's input shapes: take them in graph order
            nodes[name] = {"op": op, "name": name, "durs": [], "shape": _first_shape(args.get("output_type_shape")),
                           "weight": queue.pop(0) if queue else None}
        row = nodes[name]
        row["durs"].append(e["dur"])
    ops = [{"op": r["op"], "name": r["name"], "shape": r["shape"], "us": float(np.mean(r["durs"])),
            "flops": _flops(r["op"], r["weight"], r["shape"])} for r in nodes.values()]
    whole = float(np.mean(model_runs)) if model_runs else sum(o["us"] for o in ops)
    return {"method": "onnxruntime profiler (enable_profiling): mean kernel time per node over the timed runs; "
                      "whole = mean model_run", "runs": runs, "whole_us": whole, "ops": _rows(ops, whole)}


def _onnx_graph_reader():
    """A reader for the part of ONNX's ModelProto the profile needs (its nodes' op types and inputs, and its
    initializers' names and dims), built on protobuf, which the base install has through onnxruntime; the `onnx`
    package is only in [train]. Field numbers are those of onnx.proto, which ONNX keeps wire-compatible; fields not
    declared here are skipped by protobuf as unknown."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FieldDescriptorProto
    spec = {"TensorProto": [("dims", 1, f.TYPE_INT64, None, True), ("name", 8, f.TYPE_STRING, None, False)],
            "NodeProto": [("input", 1, f.TYPE_STRING, None, True), ("output", 2, f.TYPE_STRING, None, True),
                          ("op_type", 4, f.TYPE_STRING, None, False)],
            "GraphProto": [("node", 1, f.TYPE_MESSAGE, "NodeProto", True),
                           ("initializer", 5, f.TYPE_MESSAGE, "TensorProto", True)],
            "ModelProto": [("graph", 7, f.TYPE_MESSAGE, "GraphProto", False)]}
    file = descriptor_pb2.FileDescriptorProto(name="fmnist_edge_onnx_subset.proto", package="fmnist_edge_onnx",
                                              syntax="proto2")
    for message, fields in spec.items():
        m = file.message_type.add(name=message)
        for name, number, kind, type_name, repeated in fields:
            m.field.add(name=name, number=number, type=kind, type_name=f".fmnist_edge_onnx.{type_name}" if type_name else None,
                        label=f.LABEL_REPEATED if repeated else f.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("fmnist_edge_onnx.ModelProto"))


def _onnx_weights(path: Path) -> dict[str, list]:
    """Conv (4-D) and dense (2-D) weight shapes in the order the graph's nodes use them (directly, or through
    the DequantizeLinear of a QDQ file)."""
    graph = _onnx_graph_reader().FromString(path.read_bytes()).graph
    dims = {i.name: list(i.dims) for i in graph.initializer}
    via_dq = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    out = {"conv": [], "dense": []}
    for node in graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul") and len(node.input) > 1:
            shape = dims.get(via_dq.get(node.input[1], node.input[1]))
            if shape is not None:
                out["conv" if node.op_type == "Conv" else "dense"].append(shape)
    return out


def _first_shape(io) -> list | None:
    for item in io or []:
        for shape in item.values():
            return shape
    return None


# --- LiteRT (cumulative prefixes) ----------------------------------------------------------------------------

def _prefix_models(path: Path) -> list[tuple[dict, bytes]]:
    """(op record, the model cut after that op) for every op of the main subgraph, in execution order."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    buf = path.read_bytes()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(buf, 0))
    graph = model.subgraphs[0]
    codes = {i: c for i, c in enumerate(model.operatorCodes)}
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    ops, out = list(graph.operators), []
    for k, op in enumerate(ops):
        code = codes[op.opcodeIndex]
        kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")
        tensor = graph.tensors[op.outputs[0]]
        weight = graph.tensors[op.inputs[1]].shape if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
        record = {"op": kind, "name": (tensor.name or b"").decode(errors="replace"),
                  "shape": [int(d) for d in tensor.shape] if tensor.shape is not None else None,
                  "weight": [int(d) for d in weight] if weight is not None else None}
        graph.operators = ops[: k + 1]
        saved_outputs = graph.outputs
        graph.outputs = [op.outputs[0]]
        builder = flatbuffers.Builder(len(buf) + 1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        out.append((record, bytes(builder.Output())))
        graph.outputs = saved_outputs
    graph.operators = ops
    return out


def _prefix_interpreter(Interpreter, file: Path, threads: int, image: np.ndarray):
    """An interpreter for one prefix file, invoked once; None when LiteRT cannot run the model cut there (XNNPACK
    refuses a graph whose output is a constant, e.g. a float16 file's DEQUANTIZE of a weight)."""
    try:
        with without_delegate_notice():
            it = Interpreter(model_path=str(file), num_threads=threads)
            inp = it.get_input_details()[0]
            it.resize_tensor_input(inp["index"], [1, 28, 28, 1])
            it.allocate_tensors()
            it.set_tensor(inp["index"], image.astype(inp["dtype"]))
            it.invoke()
    except (RuntimeError, ValueError):
        return None
    return it


def monotone(values: list[float]) -> list[float]:
    """The closest non-decreasing sequence (least squares; pool adjacent violators): a longer prefix cannot take
    less time, so noise that says otherwise is averaged out instead of becoming a negative op time."""
    blocks: list[list[float]] = []  # [sum, count]
    for v in values:
        blocks.append([v, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    return [total / count for total, count in blocks for _ in range(int(count))]


def profile_tflite(path: Path, image: np.ndarray, runs: int, threads: int = 1, rounds: int = 10) -> dict:
    Interpreter = tflite_interpreter_class()
    with tempfile.TemporaryDirectory(prefix="fmnist-edge-profile-") as tmp:
        prefixes = _prefix_models(path)
        interpreters = []
        for k, (_, data) in enumerate([*prefixes, (None, path.read_bytes())]):
            file = Path(tmp) / f"prefix{k}.tflite"
            file.write_bytes(data)
            interpreters.append(_prefix_interpreter(Interpreter, file, threads, image))
        if interpreters[-1] is None:
            raise FmnistEdgeError(f"{path}: LiteRT cannot run this file at batch 1 with XNNPACK; nothing to profile.")
        per_round = max(10, runs // rounds)
        timed = [k for k, it in enumerate(interpreters) if it is not None]
        # (prefix, round): each prefix's p50 µs in each round
        samples = np.array([[np.median(r) / 1e3 for r in rounds_ns] for rounds_ns in
                            interleaved_rounds({k: interpreters[k].invoke for k in timed}, rounds, per_round).values()])
    p50 = dict(zip(timed, samples.mean(axis=1) if rounds < 3 else np.median(samples, axis=1)))
    whole = float(p50.pop(len(prefixes)))
    # The noise floor: how far one prefix's p50 moves from round to round (median over prefixes of the
    # interquartile range); an op below it cannot be told from zero on this machine.
    q75, q25 = np.percentile(samples[:-1], [75, 25], axis=1) if len(timed) > 1 else (np.zeros(1), np.zeros(1))
    noise = float(np.median(q75 - q25))
    cumulative = dict(zip(p50, monotone(list(p50.values()))))
    ops, previous, pending = [], 0.0, []
    for k, (record, _) in enumerate(prefixes):
        row = {"op": record["op"], "name": record["name"], "shape": record["shape"],
               "flops": _flops(record["op"], record["weight"], record["shape"])}
        ops.append(row)
        if k not in cumulative:  # not runnable alone: its time is counted in the next op that is
            row.update(us=0.0, note="cannot run as a prefix (XNNPACK); its time is in the next op's")
            pending.append(k)
            continue
        row["us"] = float(cumulative[k] - previous)
        row["below_noise"] = bool(row["us"] < noise)
        if pending:
            row["note"] = f"includes the {len(pending)} op(s) before it"
            pending = []
        previous = cumulative[k]
    return {"method": "cumulative prefixes: the file cut after each op (LiteRT schema), p50 of each in interleaved "
                      "rounds with XNNPACK, made non-decreasing (a longer prefix cannot be faster); op k = p50(prefix "
                      "k) - p50(prefix k-1); whole = the unmodified file's p50. LiteRT's Python API has no op profiler.",
            "runs": per_round * rounds, "whole_us": whole, "noise_floor_us": noise, "ops": _rows(ops, whole)}


def profile_artifact(directory: Path, runs: int = 500, threads: int = 1) -> dict:
    """Per-op profile of one artifact at batch 1, on one real-shaped image (a golden one when the release has them)."""
    clf = runtime.load(directory, num_threads=threads)
    golden = keras_outputs_dir(directory.parent) / "golden.npz"
    pixels = np.load(golden)["images"][:1] if golden.is_file() else np.full((1, 28, 28), 128, np.uint8)
    image = clf.model_input(pixels)
    fn = profile_onnx if clf.manifest["format"] == "onnx" else profile_tflite
    result = fn(clf.path, image, runs, threads)
    return {"variant": clf.variant, "format": clf.manifest["format"], "threads": threads, **result}


def artifact_dirs(run: Path, variants=None) -> list[Path]:
    """What `bench --profile RUN` profiles: RUN itself if it is one artifact, else its variant directories."""
    from .bench import ARTIFACT_DIRS

    if (run / "manifest.json").is_file() and any((run / f"model.{fmt}").exists() for fmt in ("tflite", "onnx")):
        return [run]
    dirs = [run / v for v in (variants or ARTIFACT_DIRS) if (run / v / "manifest.json").is_file()]
    if not dirs:
        raise FmnistEdgeError(f"{run}: no exported artifact to profile (expected VARIANT/manifest.json inside it).")
    return dirs
