"""A bare model file (no fmnist-edge metadata, no manifest beside it: another tool's file, e.g. PyTorch's
`torch.onnx.export`) is never misread: a layout other than (N, 28, 28, 1) is refused before any tensor reaches it,
outputs that are not probabilities are refused instead of printed as 802%, and what a file that passes was taken
to be is recorded. Built with the `onnx` helper API as torch.onnx.export writes it (Gemm with transB=1, opset 17)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import runtime  # noqa: E402
from fmnist_edge import cli  # noqa: E402
from runtime.errors import RuntimeArtifactError  # noqa: E402

PHOTO = "tests/fixtures/photos/trouser-exif1.jpg"


def quickstart_like(path, layout: str = "nchw", softmax: bool = False):
    """Flatten -> Linear(784, 10) as torch.onnx.export writes it, input NCHW `input` (or NHWC), output `logits`."""
    rng = np.random.default_rng(0)
    shape = ["N", 1, 28, 28] if layout == "nchw" else ["N", 28, 28, 1]
    w = numpy_helper.from_array((rng.normal(size=(10, 784)) * 0.5).astype(np.float32), "fc.weight")
    b = numpy_helper.from_array(np.zeros(10, np.float32), "fc.bias")
    nodes = [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["scores" if softmax else "logits"], transB=1)]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["scores"], ["logits"], axis=1))
    graph = helper.make_graph(nodes, "quickstart", [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, path)
    return path


def test_a_channels_first_file_is_refused_before_any_tensor_reaches_it(tmp_path):
    path = quickstart_like(tmp_path / "model.onnx", "nchw")
    with pytest.raises(RuntimeArtifactError, match=r"input is float32 \[None, 1, 28, 28\].*fmnist-edge export"):
        runtime.load(path)
    result = CliRunner().invoke(cli.app, ["predict", PHOTO, "--model", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output and "(N, 28, 28, 1)" in result.output


def test_logits_are_refused_instead_of_printed_as_percentages(tmp_path):
    path = quickstart_like(tmp_path / "model.onnx", "nhwc")
    with pytest.raises(RuntimeArtifactError, match="not class probabilities.*may be logits"):
        runtime.load(path)
    result = CliRunner().invoke(cli.app, ["predict", PHOTO, "--model", str(path)])
    assert result.exit_code == 1 and "%" not in result.output.split("error:")[0]


def test_a_bare_file_that_gives_probabilities_loads_and_says_what_was_assumed(tmp_path):
    path = quickstart_like(tmp_path / "model.onnx", "nhwc", softmax=True)
    clf = runtime.load(path)
    assert "no fmnist-edge metadata" in clf.manifest["assumed"]
    probs = clf.predict_proba(np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8))
    assert probs.min() >= 0 and np.allclose(probs.sum(1), 1, atol=1e-5)
