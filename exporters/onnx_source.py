"""Bring a classifier as ONNX (PyTorch's `torch.onnx.export`, or any other tool's): check it, fold the export contract
into the graph, and write a run directory (lineage "external", `model.onnx`) that export treats like any run.

The same contract as a Keras model file (exporters.external): the exported graph takes float32 (N, 28, 28, 1) in
[0, 1] named `image` and gives softmax probabilities (N, 10) named `probabilities`. It is built by graph surgery on
the user's file, never by retraining:
    image -> [Mul, Add: the input contract] -> [Transpose to NCHW | Reshape to (28, 28) or 784 | nothing for NHWC]
          -> the user's graph -> [Softmax if it outputs logits]
The input convention ([0, 1], raw pixels, [-1, 1], standardised) is told apart on real test images as for Keras,
logits from probabilities by the last operator and the outputs themselves. Such a run gets `onnx-float32` and
`onnx-int8` (onnxruntime's static quantization calibrated on the real training split): TFLite files need a Keras
model (TFLITE_NEEDS_KERAS says why no ONNX-to-TFLite converter is used).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fmnist_edge import data as fdata
from fmnist_edge.manifest import sha256_file

from . import contract as input_contract
from .contract import InputContract
from .errors import ExportError
from .external import ExternalModel, check_probabilities, check_spec, check_target, external_data, write_run

SUFFIX = ".onnx"
# The per-image shape of the graph's input -> its layout; the wrapper turns (N, 28, 28, 1) into each.
LAYOUTS = {(1, 28, 28): "NCHW", (28, 28, 1): "NHWC", (28, 28): "HW", (784,): "flat"}
SQUASHING = ("Sigmoid", "HardSigmoid", "Tanh", "Softsign")
# Last operators whose outputs are scores a softmax turns into probabilities (LogSoftmax: softmax(log p) = p).
SCORES = ("Gemm", "MatMul", "Add", "Conv", "Flatten", "Reshape", "Squeeze", "LogSoftmax", "GlobalAveragePool")
MIN_OPSET = 7
TFLITE_NEEDS_KERAS = (
    "TFLite needs a Keras model; an ONNX model gets onnx-float32 and onnx-int8. The maintained ONNX-to-TFLite converter "
    "(onnx2tf 1.29) would replace this toolkit's TensorFlow 2.21, onnx 1.23, onnxruntime 1.32 and numpy 2 with older "
    "ones and pull in some 40 packages, so it is not used. For TFLite files, rebuild the network in Keras (a Linear "
    "layer's weight transposed is a Dense kernel), save it and export the .keras file.")
DYNAMIC_BATCH_FIX = ("If forward reshapes to a fixed size (x.view(1, -1)), use x.view(x.size(0), -1) or nn.Flatten(); "
                     "export it again with a dynamic batch, e.g. torch.onnx.export(model, x, 'model.onnx', "
                     "input_names=['input'], output_names=['logits'], dynamic_axes={'input': {0: 'batch'}, "
                     "'logits': {0: 'batch'}}), and export that file.")


def is_onnx_file(path: Path) -> bool:
    return Path(path).suffix.lower() == SUFFIX


def load_graph(path: Path):
    """The ONNX model in `path`, checked by onnx's own checker; ExportError in plain words otherwise."""
    import onnx

    if not Path(path).is_file():
        raise ExportError(f"{path}: no such model file.")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError...
        raise ExportError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {str(exc)[:200]}). Expected a "
                          "file written by torch.onnx.export or another ONNX exporter. Nothing was exported.") from None
    return model


def opset_of(model) -> int:
    """The model's default-domain (ai.onnx) opset; 0 when it declares none."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _dims(value_info) -> tuple:
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim)


def _graph_input(graph):
    initializers = {t.name for t in graph.initializer}
    return [i for i in graph.input if i.name not in initializers]


def check_graph(model, source: str) -> str:
    """The input layout ("NCHW", "NHWC", "HW" or "flat") of a single-input classifier of 10 classes, or a refusal."""
    from onnx import TensorProto

    graph, opset = model.graph, opset_of(model)
    inputs = _graph_input(graph)
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ExportError(f"{source}: the graph has {len(inputs)} input(s) and {len(graph.output)} output(s); "
                          "supported: one image input and one output of 10 class scores.")
    if opset < MIN_OPSET:
        raise ExportError(f"{source}: ONNX opset {opset}; at least {MIN_OPSET} is needed. Export it again with "
                          "opset_version=17.")
    if inputs[0].type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ExportError(f"{source}: the input {inputs[0].name!r} is not float32; a classifier of pixel values takes "
                          "float32 (torch.float32). Export the float model, and let fmnist-edge quantize it.")
    shape, out = _dims(inputs[0]), _dims(graph.output[0])
    if tuple(shape[1:]) not in LAYOUTS or len(out) != 2 or out[1] != 10:
        raise ExportError(f"{source}: input {inputs[0].name!r} {_shown(shape)} and output {_shown(out)} are not "
                          "supported; expected a Fashion-MNIST classifier of grey 28x28 images: input (N, 1, 28, 28) as "
                          "PyTorch writes it, (N, 28, 28, 1), (N, 28, 28) or (N, 784), and output (N, 10).")
    return LAYOUTS[tuple(shape[1:])]


def _shown(dims: tuple) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in dims) + ")"


def _rename(graph, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in (*graph.input, *graph.output):
        if value.name == old:
            value.name = new


def wrap(model, layout: str, contract: InputContract, output: str | None):
    """The user's graph inside the export contract (module docstring); `output` None keeps its raw output (the checks
    score the bare model through it, with a dynamic batch whatever the file declares)."""
    from onnx import TensorProto, helper, numpy_helper

    wrapped = type(model)()
    wrapped.CopyFrom(model)
    graph = wrapped.graph
    source_in, source_out = _graph_input(graph)[0].name, graph.output[0].name
    for name, reserved in ((source_in, "image"), (source_out, "probabilities")):
        if name == reserved:  # the wrapper's own names
            _rename(graph, name, f"{name}__source")
    source_in, source_out = _graph_input(graph)[0].name, graph.output[0].name
    head, constants, x = [], [], "image"
    if not contract.is_identity:
        constants += [numpy_helper.from_array(np.array(contract.scale, np.float32), "fmnist_edge/contract_scale"),
                      numpy_helper.from_array(np.array(contract.offset, np.float32), "fmnist_edge/contract_offset")]
        head += [helper.make_node("Mul", [x, "fmnist_edge/contract_scale"], ["fmnist_edge/scaled"], name="contract_scale"),
                 helper.make_node("Add", ["fmnist_edge/scaled", "fmnist_edge/contract_offset"], ["fmnist_edge/contract"],
                                  name="contract_offset")]
        x = "fmnist_edge/contract"
    if layout == "NCHW":
        head.append(helper.make_node("Transpose", [x], [source_in], perm=[0, 3, 1, 2], name="to_nchw"))
    elif layout == "NHWC":
        head.append(helper.make_node("Identity", [x], [source_in], name="to_input"))
    else:
        shape = [-1, 28, 28] if layout == "HW" else [-1, 784]
        constants.append(numpy_helper.from_array(np.array(shape, np.int64), "fmnist_edge/input_shape"))
        head.append(helper.make_node("Reshape", [x, "fmnist_edge/input_shape"], [source_in], name="to_input"))
    tail_op = "Softmax" if output == "logits" else "Identity"
    tail = helper.make_node(tail_op, [source_out], ["probabilities"], name="probabilities",
                            **({"axis": 1} if tail_op == "Softmax" else {}))
    nodes = [*head, *graph.node, tail]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(constants)
    kept = [i for i in graph.input if i.name != source_in]
    del graph.input[:]
    graph.input.extend([helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 28, 28, 1]), *kept])
    del graph.output[:]
    graph.output.extend([helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])])
    del graph.value_info[:]  # shapes recorded for a fixed batch of 1 would contradict the dynamic batch
    return wrapped


class OnnxModel:
    """An ONNX float graph where export expects a Keras model: `predict` (onnxruntime, CPU), `proto`, `path`, `name`."""

    def __init__(self, path: Path | None = None, proto=None, name: str = "model"):
        import onnx
        import onnxruntime as ort

        self.path, self.name = path, name
        self.proto = proto if proto is not None else onnx.load(str(path))
        options = ort.SessionOptions()
        options.log_severity_level = 4  # ORT's notices and errors: a failure is raised, and said in plain words
        self._session = ort.InferenceSession(self.proto.SerializeToString(), options,
                                             providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def predict(self, x: np.ndarray, batch_size: int = 1000, verbose: int = 0) -> np.ndarray:
        x = np.asarray(x, np.float32)
        return np.concatenate([self._session.run(None, {self._input: x[i:i + batch_size]})[0]
                               for i in range(0, len(x), batch_size)])


def flops_per_image(model) -> int:
    """Forward FLOPs of one image (a multiply-add counts 2) of the Conv, Gemm and MatMul nodes with weights."""
    import onnx
    from onnx import numpy_helper

    inferred = onnx.shape_inference.infer_shapes(model)
    weights = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    shapes = {v.name: _dims(v) for v in (*inferred.graph.value_info, *inferred.graph.output)}
    total = 0
    for node in model.graph.node:
        w = next((weights[n] for n in node.input[1:2] if n in weights), None)
        if w is None:
            continue
        if node.op_type in ("Gemm", "MatMul"):
            total += 2 * int(np.prod(w))
        elif node.op_type == "Conv" and all(shapes.get(node.output[0], (None,))[2:]):
            total += 2 * int(np.prod(w)) * int(np.prod(shapes[node.output[0]][2:]))
    return total


def _last_op(graph) -> str:
    producers = {o: n for n in graph.node for o in n.output}
    node = producers.get(graph.output[0].name)
    while node is not None and node.op_type == "Identity":
        node = producers.get(node.input[0])
    return node.op_type if node is not None else "none"


def detect_output(graph, declared: str, raw: np.ndarray, source: str) -> str:
    """'probabilities' or 'logits', from the last operator and the raw outputs on real images; a squashing head
    (one independent score per class) is refused, as for Keras."""
    last = _last_op(graph)
    if last in SQUASHING:
        raise ExportError(f"{source}: not a single-label softmax classifier: its last operator is {last}, one "
                          "independent score per class, so its outputs are neither probabilities of one class nor "
                          "logits. If it was trained on one label per image, its largest score is the class: export "
                          "the scores before the sigmoid (return them from forward, as nn.CrossEntropyLoss expects) and "
                          "export that file with --output logits; the softmax folded in keeps the top-1 and gives "
                          "probabilities that sum to 1. Nothing was exported.")
    if declared != "auto":
        return declared
    sums_to_one = bool(raw.min() >= 0 and raw.max() <= 1 and np.allclose(raw.sum(1), 1.0, atol=1e-3))
    if last == "Softmax" or sums_to_one:
        return "probabilities"
    if last in SCORES:
        return "logits"
    raise ExportError(f"{source}: cannot tell whether it outputs probabilities or logits: its last operator is {last} "
                      "and its outputs do not sum to 1. Declare it with --output probabilities or --output logits.")


def _bare(model, layout: str, source: str) -> OnnxModel:
    """The user's graph behind the layout change only, with a dynamic batch; refused when it cannot run a batch."""
    bare = OnnxModel(proto=wrap(model, layout, input_contract.CONVENTIONS["[0,1]"], None))
    try:
        out = bare.predict(np.zeros((2, 28, 28, 1), np.float32))
    except Exception as exc:  # onnxruntime's Fail / InvalidArgument / RuntimeException
        node = re.search(r"node\. Name:'([^']+)'", str(exc))
        raise ExportError(f"{source}: it does not run on a batch of 2 images"
                          f"{f' (its node {node.group(1)!r} fails on it)' if node else ''}: its graph fixes the batch "
                          f"size. {DYNAMIC_BATCH_FIX} Nothing was exported.") from None
    if out.shape != (2, 10):
        raise ExportError(f"{source}: it gives outputs of shape {out.shape[1:]} per image, expected (10,). Nothing was "
                          "exported.")
    return bare


def prepare(path: Path, out: Path, spec: ExternalModel, limit: int | None, data_dir: str | None, download: bool,
            overwrite: bool, console) -> Path:
    """Check and wrap the ONNX model at `path`, measure it on the real test set, write the run directory `out`."""
    check_target(out, overwrite)
    check_spec(spec, limit)
    if spec.fit != "auto":
        raise ExportError(f"--input-fit {spec.fit}: {path} takes 28x28 images already; nothing to fit.")
    model = load_graph(path)
    layout = check_graph(model, str(path))
    bare = _bare(model, layout, str(path))
    d = external_data(limit, data_dir, download)
    x_test, y_test = d["x_test"], d["y_test"]
    sample = fdata.subset(y_test, input_contract.SAMPLE_IMAGES, 0)
    checked = input_contract.choose_contract(bare.predict, x_test[sample], y_test[sample], spec.contract, str(path))
    contract = spec.contract or input_contract.CONVENTIONS["[0,1]"]
    output = detect_output(model.graph, spec.output, bare.predict(contract.apply(x_test[sample])), str(path))
    wrapped = wrap(model, layout, contract, output)
    probs = OnnxModel(proto=wrapped).predict(x_test)
    check_probabilities(probs, output, path)
    accuracy = float((probs.argmax(1) == y_test).mean())
    console.print(f"{path.name}: ONNX, input {layout} {_shown(_dims(_graph_input(model.graph)[0]))}, {output}, inputs "
                  f"{contract.describe()} ({'declared' if spec.contract else 'assumed, and checked'}); onnxruntime test "
                  f"accuracy {accuracy:.4f} on {len(y_test):,} real test images under that contract")
    source_model = {"name": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size, "format": "onnx",
                    "producer": f"{model.producer_name} {model.producer_version}".strip() or None, "opset": opset_of(model),
                    "nodes": len(model.graph.node)}
    conventions = {"input_shape": [None, *_dims(_graph_input(model.graph)[0])[1:]], "input_layout": layout,
                   "output": output, "output_declared": spec.output != "auto",
                   "wrapped_as": "image [0,1] -> image * scale + offset (the input contract) -> Transpose to NCHW or "
                                 "Reshape to the model's input -> the ONNX graph -> Softmax if logits"}
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == 1)
    import onnx

    return write_run(out, "model.onnx", lambda file: onnx.save(wrapped, str(file)), source_model, conventions, checked,
                     None, spec, params, d, limit, accuracy, ("onnx", "onnxruntime", "numpy"))
