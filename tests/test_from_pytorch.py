"""PyTorch users bring a Fashion-MNIST classifier as ONNX (tests/pytorch_models.py writes it as torch.onnx.export does,
trained on the real data): `export model.onnx` folds the contract into the graph and writes onnx-float32 and onnx-int8,
gated and proven portable; bench, verify, predict and the app work on the run; what cannot work is refused in plain
words with the way out."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

onnx = pytest.importorskip("onnx")
pytest.importorskip("keras")

import pytorch_models as pm  # noqa: E402
from conftest import run_cli_without_tensorflow  # noqa: E402

import runtime  # noqa: E402
from fmnist_edge import CLASS_NAMES, cli  # noqa: E402
from fmnist_edge import data as fdata  # noqa: E402

PHOTO = Path(__file__).parent / "fixtures" / "photos" / "trouser-exif1.jpg"
LIMIT = ("--limit", "2000")
runner = CliRunner()


@pytest.fixture(scope="module")
def data():
    return fdata.load(download=False)


@pytest.fixture(scope="module")
def networks(data, tmp_path_factory):
    """The quickstart network trained for one epoch on the whole training split, the CNN on 10,000 images: trained
    weights (the Keras models) and their ONNX files as torch.onnx.export writes them (dynamic batch)."""
    out = tmp_path_factory.mktemp("pytorch")
    idx = fdata.subset(data.y_train, 10000, 1)
    trained = {"quickstart": pm.train("quickstart", data.x_train, data.y_train, epochs=1),
               "cnn": pm.train("cnn", data.x_train[idx], data.y_train[idx], epochs=1)}
    return {name: (model, pm.write_onnx(name, model, out / f"{name}.onnx")) for name, model in trained.items()}


def export(path: Path, out: Path, *extra: str):
    result = runner.invoke(cli.app, ["export", str(path), "--out", str(out), *LIMIT, *extra])
    assert "Traceback" not in result.output and "ONNXRuntimeError" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


@pytest.mark.slow
def test_the_quickstart_network_exports_int8_within_a_point_gated_and_portable(networks, data, tmp_path):
    run = tmp_path / "run"
    result = export(networks["quickstart"][1], run)
    assert result.exit_code == 0, result.output
    assert "TFLite needs a Keras model" in result.output and "onnx2tf" in result.output
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["keras-outputs", "onnx-float32", "onnx-int8"]
    source = manifest(run)
    assert source["source_model"]["format"] == "onnx" and source["source_model"]["producer"].startswith("pytorch")
    assert source["conventions"]["input_layout"] == "NCHW" and source["conventions"]["output"] == "logits"
    assert source["conventions"]["input_check"]["convention"] == "[0,1]"
    # the folded graph computes what the user's file computes on NCHW pixels / 255: nothing transposed wrongly
    test = fdata.run_test_subset(data.y_test, 2000, None)
    own = pm.nchw_accuracy(networks["quickstart"][1], data.x_test[test], data.y_test[test])
    assert source["test_accuracy"] == pytest.approx(own, abs=1e-9)
    float32, int8 = manifest(run / "onnx-float32"), manifest(run / "onnx-int8")
    assert float32["fidelity"]["agreement_with_keras"] == 1.0
    assert int8["fidelity"]["accuracy"] >= float32["fidelity"]["accuracy"] - 0.01
    assert int8["check"]["agreement"] >= int8["check"]["tolerance"]["min_agreement"]
    assert int8["portability"]["checked_on"][0] == "native" and len(int8["portability"]["checked_on"]) >= 3
    assert int8["calibration"]["count"] > 0 and int8["lineage"]["flops_per_image"] == 2 * (784 * 512 + 512 * 512 + 5120)
    # the int8 file copied alone describes itself: class names and probabilities
    alone = shutil.copy(run / "onnx-int8" / "model.onnx", tmp_path / "alone.onnx")
    clf = runtime.load(alone)
    probs = clf.predict_proba(data.x_test[:20])
    # (int8 outputs come in steps of 1/255: their sums are within a few steps of 1)
    assert clf.class_names[1] == "Trouser" and probs.min() >= 0 and np.allclose(probs.sum(1), 1, atol=0.02)

    bench = runner.invoke(cli.app, ["bench", str(run), "--runs", "20", "--warmup", "2", "--no-compute-floor",
                                    "--out", str(tmp_path / "bench")])
    assert bench.exit_code == 0 and "onnx-int8" in bench.output, bench.output
    rows = {r["name"]: r for r in json.loads((tmp_path / "bench" / "bench.json").read_text())["rows"]}
    assert rows["onnx-int8"]["metrics"]["accuracy"] == pytest.approx(int8["fidelity"]["accuracy"], abs=0.002)
    verify = run_cli_without_tensorflow("verify", str(run))  # the base install, as on a device
    assert verify.returncode == 0 and verify.stdout.count("PASS") == 2, verify.stdout + verify.stderr
    predict = run_cli_without_tensorflow("predict", str(PHOTO), "--model", str(run / "onnx-int8"), "--top-k", "3")
    assert predict.returncode == 0 and predict.stdout.startswith(f"{PHOTO}: Trouser"), predict.stdout + predict.stderr
    shares = [float(v) for v in re.findall(r"(\d+(?:\.\d+)?)%", predict.stdout)]
    assert len(shares) == 3 and sum(shares) <= 100.5
    app = runner.invoke(cli.app, ["app", str(run), "--out", str(tmp_path / "app")])
    assert app.exit_code == 0 and "onnx-int8 on onnxruntime-web" in app.output, app.output
    in_browser(tmp_path / "app", "Trouser")


def in_browser(app: Path, expected: str) -> None:
    """The app answers the photo in Chromium (onnxruntime-web) with the class the CLI gave."""
    pytest.importorskip("selenium")
    from test_web import answer_in_browser

    got = answer_in_browser(app, PHOTO)
    assert CLASS_NAMES[int(np.argmax(got["probs"]))] == expected, got


@pytest.mark.slow
def test_a_conv_net_in_nchw_and_a_softmax_head_export_as_they_are(networks, data, tmp_path):
    """Conv in NCHW behind the folded Transpose; a forward ending in softmax is taken as probabilities (no second
    softmax): the same accuracy as the file on NCHW pixels either way."""
    run = tmp_path / "cnn"
    result = export(networks["cnn"][1], run, "--no-portability-check")
    assert result.exit_code == 0, result.output
    test = fdata.run_test_subset(data.y_test, 2000, None)
    assert manifest(run)["test_accuracy"] == pytest.approx(
        pm.nchw_accuracy(networks["cnn"][1], data.x_test[test], data.y_test[test]), abs=1e-9)
    assert manifest(run / "onnx-int8")["fidelity"]["agreement_with_keras"] >= 0.98
    softmax = pm.write_onnx("quickstart", networks["quickstart"][0], tmp_path / "softmax.onnx", softmax=True)
    run = tmp_path / "softmax"
    result = export(softmax, run, "--variant", "onnx-float32")
    assert result.exit_code == 0, result.output
    assert manifest(run)["conventions"]["output"] == "probabilities"
    assert manifest(run)["test_accuracy"] == pytest.approx(
        pm.nchw_accuracy(softmax, data.x_test[test], data.y_test[test]), abs=1e-9)


@pytest.mark.slow
def test_a_fixed_batch_file_works_and_a_hard_coded_batch_is_refused_with_the_fix(networks, tmp_path):
    """torch.onnx.export without dynamic_axes fixes the batch at the example's 1: the wrapper's own dynamic input makes
    Flatten/Gemm run any batch. A `x.view(1, -1)` in forward cannot, and is refused naming dynamic_axes."""
    fixed = pm.write_onnx("quickstart", networks["quickstart"][0], tmp_path / "fixed.onnx", batch=1)
    result = export(fixed, tmp_path / "fixed", "--variant", "onnx-float32")
    assert result.exit_code == 0, result.output
    proto = onnx.load(str(fixed))
    flatten = proto.graph.node[0]
    shape = onnx.numpy_helper.from_array(np.array([1, 784], np.int64), "/Constant_output_0")
    proto.graph.initializer.append(shape)
    proto.graph.node.remove(flatten)
    proto.graph.node.insert(0, onnx.helper.make_node("Reshape", ["input", "/Constant_output_0"], list(flatten.output),
                                                     name="/Reshape"))
    onnx.save(proto, str(tmp_path / "view.onnx"))
    result = export(tmp_path / "view.onnx", tmp_path / "view")
    assert result.exit_code == 1 and "'/Reshape' fails on it" in result.output and "x.view(x.size(0), -1)" in result.output
    assert "dynamic_axes" in result.output
    assert not (tmp_path / "view").exists()


@pytest.mark.slow
def test_files_that_cannot_work_are_refused_in_plain_words(networks, tmp_path):
    model = networks["quickstart"][0]
    cases = {}
    sigmoid = onnx.load(str(networks["quickstart"][1]))
    sigmoid.graph.node[-1].output[0] = "scores"
    sigmoid.graph.node.append(onnx.helper.make_node("Sigmoid", ["scores"], ["logits"]))
    onnx.save(sigmoid, str(tmp_path / "sigmoid.onnx"))
    cases["sigmoid.onnx"] = "not a single-label softmax classifier: its last operator is Sigmoid"
    (tmp_path / "notes.onnx").write_bytes(b"these are not protobuf bytes \x00\xff" * 10)
    cases["notes.onnx"] = "not a readable ONNX model"
    rgb = onnx.load(str(networks["quickstart"][1]))
    rgb.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 3
    onnx.save(rgb, str(tmp_path / "rgb.onnx"))
    cases["rgb.onnx"] = r"input 'input' \(N, 3, 28, 28\) and output \(N, 10\) are not supported"
    for name, message in cases.items():
        result = export(tmp_path / name, tmp_path / f"out-{name}")
        assert result.exit_code == 1 and re.search(message, result.output), (name, result.output)
        assert "Nothing was exported" in result.output or "not supported" in result.output
        assert not (tmp_path / f"out-{name}").exists()
    pm.write_onnx("quickstart", model, tmp_path / "q.onnx")
    # the file as PyTorch wrote it, given to predict, is refused naming the export that makes it work (the first test)
    bare = runner.invoke(cli.app, ["predict", str(PHOTO), "--model", str(tmp_path / "q.onnx")])
    assert bare.exit_code == 1 and "fmnist-edge export q.onnx" in bare.output, bare.output
    explain = runner.invoke(cli.app, ["explain", str(tmp_path / "q.onnx")])
    assert explain.exit_code == 1 and "rebuild the network in Keras" in explain.output, explain.output
