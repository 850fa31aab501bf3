"""Fashion-MNIST classifiers as PyTorch users bring them: ONNX files written the way `torch.onnx.export` writes them.

No CPU torch wheel installs on these machines (STACK.md), so each network is trained in Keras on the real data with
PyTorch's loss (cross-entropy on logits, inputs `ToTensor()` pixels in [0, 1]), and its weights are written with the
onnx helper API into the graph the TorchScript exporter (opset 17) produces for the same `nn.Module`: NCHW input named
`input`, output `logits`, `Flatten` then `Gemm` with transB=1 for `nn.Linear` (weight (out, in)), NCHW `Conv` with
(out, in, kh, kw) weights, initializers named after the module's parameters, producer "pytorch".
    - `quickstart`: PyTorch's own quickstart (Flatten, Linear 784-512, ReLU, Linear 512-512, ReLU, Linear 512-10);
    - `cnn`: the two-conv network of the usual "Fashion-MNIST CNN in PyTorch" tutorials.
tests/test_from_pytorch.py takes them through every command; scripts/pytorch_study.py records their export
(artifacts/from_pytorch.json, rendered by the "From PyTorch" guide).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OPSET = 17


def _keras_quickstart(k):
    return k.Sequential([k.Input((28, 28, 1)), k.layers.Flatten(), k.layers.Dense(512, activation="relu"),
                         k.layers.Dense(512, activation="relu"), k.layers.Dense(10)])


def _keras_cnn(k):
    return k.Sequential([k.Input((28, 28, 1)), k.layers.Conv2D(16, 3, padding="same", activation="relu"),
                         k.layers.MaxPooling2D(), k.layers.Conv2D(32, 3, padding="same", activation="relu"),
                         k.layers.MaxPooling2D(), k.layers.Flatten(), k.layers.Dense(64, activation="relu"),
                         k.layers.Dense(10)])


NETWORKS = {"quickstart": _keras_quickstart, "cnn": _keras_cnn}


def train(name: str, pixels: np.ndarray, labels: np.ndarray, epochs: int = 1, seed: int = 0):
    """The network's weights trained on uint8 (N, 28, 28) pixels / 255 with cross-entropy on logits."""
    import keras

    keras.utils.set_random_seed(seed)
    model = NETWORKS[name](keras)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(pixels[..., None].astype(np.float32) / 255, labels, epochs=epochs, batch_size=64, verbose=0)
    return model


def _linear(helper, numpy_helper, prefix: str, x: str, kernel: np.ndarray, bias: np.ndarray, out: str, relu: bool):
    """nn.Linear as Gemm(transB=1) with its (out, in) weight, and the ReLU after it."""
    inits = [numpy_helper.from_array(np.ascontiguousarray(kernel.T, np.float32), f"{prefix}.weight"),
             numpy_helper.from_array(bias.astype(np.float32), f"{prefix}.bias")]
    gemm_out = f"/{prefix}/Gemm_output_0" if relu else out
    nodes = [helper.make_node("Gemm", [x, f"{prefix}.weight", f"{prefix}.bias"], [gemm_out], name=f"/{prefix}/Gemm",
                              alpha=1.0, beta=1.0, transB=1)]
    if relu:
        nodes.append(helper.make_node("Relu", [gemm_out], [out], name=f"/{prefix}/Relu"))
    return nodes, inits


def _cnn_nodes(helper, numpy_helper, weights: list[np.ndarray]):
    """conv1, pool, conv2, pool, flatten (NCHW order), fc1, fc2 as the exporter writes them."""
    (k1, b1, k2, b2, w1, c1, w2, c2), nodes, inits, x = weights, [], [], "input"
    for i, (kernel, bias) in enumerate(((k1, b1), (k2, b2)), 1):
        inits += [numpy_helper.from_array(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)), f"conv{i}.weight"),
                  numpy_helper.from_array(bias, f"conv{i}.bias")]
        nodes += [helper.make_node("Conv", [x, f"conv{i}.weight", f"conv{i}.bias"], [f"/conv{i}/Conv_output_0"],
                                   name=f"/conv{i}/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
                  helper.make_node("Relu", [f"/conv{i}/Conv_output_0"], [f"/Relu_{i}_output_0"], name=f"/Relu_{i}"),
                  helper.make_node("MaxPool", [f"/Relu_{i}_output_0"], [f"/pool{i}/MaxPool_output_0"],
                                   name=f"/pool{i}/MaxPool", kernel_shape=[2, 2], strides=[2, 2])]
        x = f"/pool{i}/MaxPool_output_0"
    nodes.append(helper.make_node("Flatten", [x], ["/Flatten_output_0"], name="/Flatten", axis=1))
    # Keras flattens (H, W, C), PyTorch (C, H, W): the first Linear's rows follow PyTorch's order
    w1 = w1.reshape(7, 7, 32, -1).transpose(2, 0, 1, 3).reshape(7 * 7 * 32, -1)
    for prefix, x, kernel, bias, out, relu in (("fc1", "/Flatten_output_0", w1, c1, "/fc1/Relu_output_0", True),
                                               ("fc2", "/fc1/Relu_output_0", w2, c2, "logits", False)):
        more, params = _linear(helper, numpy_helper, prefix, x, kernel, bias, out, relu)
        nodes, inits = nodes + more, inits + params
    return nodes, inits


def _quickstart_nodes(helper, numpy_helper, weights: list[np.ndarray]):
    nodes = [helper.make_node("Flatten", ["input"], ["/flatten/Flatten_output_0"], name="/flatten/Flatten", axis=1)]
    inits, x = [], "/flatten/Flatten_output_0"
    for i, (kernel, bias) in enumerate(zip(weights[::2], weights[1::2])):
        prefix, last = f"linear_relu_stack.{2 * i}", i == 2
        out = "logits" if last else f"/{prefix}/Relu_output_0"
        more, params = _linear(helper, numpy_helper, prefix, x, kernel, bias, out, not last)
        nodes, inits, x = nodes + more, inits + params, out
    return nodes, inits


def write_onnx(name: str, model, path: Path, batch: int | str = "batch", softmax: bool = False) -> Path:
    """The trained network as torch.onnx.export writes it: `batch` a dynamic axis name (dynamic_axes given) or 1 (the
    exporter's default: the example input's batch); `softmax`: forward ends in torch.softmax (probabilities)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = [np.asarray(w, np.float32) for w in model.get_weights()]
    nodes, inits = (_quickstart_nodes if name == "quickstart" else _cnn_nodes)(helper, numpy_helper, weights)
    output = "logits"
    if softmax:
        nodes[-1].output[0] = "/Gemm_logits"
        nodes.append(helper.make_node("Softmax", ["/Gemm_logits"], ["probabilities"], name="/Softmax", axis=1))
        output = "probabilities"
    graph = helper.make_graph(nodes, "main_graph",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 1, 28, 28])],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, [batch, 10])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8,
                              producer_name="pytorch", producer_version="2.5.1")
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return path


def nchw_accuracy(path: Path, pixels: np.ndarray, labels: np.ndarray) -> float:
    """The file's own accuracy as its PyTorch user measures it: NCHW pixels / 255, batch by batch, onnxruntime."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = pixels[:, None].astype(np.float32) / 255
    fixed = session.get_inputs()[0].shape[0] == 1
    step = 1 if fixed else 1000
    scores = np.concatenate([session.run(None, {"input": x[i:i + step]})[0] for i in range(0, len(x), step)])
    return float((scores.argmax(1) == labels).mean())
