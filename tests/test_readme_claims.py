"""What the README says the CLI does, checked from the files it writes: export's flags (--float, --qat*,
--opset, --onnx-int8-scheme, --compress), the full-integer int8 file's contents, a model file's declared
--output, `verify` with no argument, predict's tie-break, and the ONNX int8 scheme study script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import MICRO_RELEASE, int8_kernel_sparsity
from fmnist_edge import cli
from runtime import manifest as rmf
from runtime.variants import VARIANTS

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def written(run: Path) -> list[str]:
    return sorted(p.name for p in run.iterdir() if p.name in VARIANTS and (p / "manifest.json").is_file())


def test_export_flags_for_float_qat_opset_and_onnx_scheme_do_what_they_say(run_copy):
    import onnx

    result = runner.invoke(cli.app, ["export", str(run_copy), "--float", "--qat", "--onnx", "--opset", "15",
                                     "--onnx-int8-scheme", "u8s8-reduce-range", "--qat-epochs", "2",
                                     "--qat-learning-rate", "1e-4", "--qat-batch-size", "128",
                                     "--calibration-images", "100", "--no-portability-check"])
    assert result.exit_code == 0, result.output
    assert written(run_copy) == ["onnx-float32", "onnx-int8", "tflite-float32", "tflite-int8-qat"]
    for variant in ("onnx-float32", "onnx-int8"):  # the opset read from the files themselves
        model = onnx.load(str(run_copy / variant / "model.onnx"))
        assert {o.domain: o.version for o in model.opset_import}[""] == 15, variant
    graph = onnx.load(str(run_copy / "onnx-int8" / "model.onnx")).graph
    zero_points = {t.name: t.data_type for t in graph.initializer if "zero_point" in t.name}
    # u8s8: uint8 activations, int8 weights (int32: quantized biases)
    assert set(zero_points.values()) - {onnx.TensorProto.INT32} == {onnx.TensorProto.UINT8, onnx.TensorProto.INT8}
    qat = rmf.read(run_copy / "tflite-int8-qat" / "manifest.json")["qat"]
    assert (qat["epochs"], qat["learning_rate"], qat["batch_size"]) == (2, 1e-4, 128)


def test_export_compress_writes_the_four_compression_variants_with_what_their_files_hold(run_copy):
    from ai_edge_litert.interpreter import Interpreter

    result = runner.invoke(cli.app, ["export", str(run_copy), "--compress", "--prune-sparsity", "0.5",
                                     "--prune-epochs", "1", "--prune-ramp-epochs", "1", "--clusters", "8",
                                     "--cluster-epochs", "1", "--calibration-images", "100", "--no-portability-check",
                                     "--compression-attempts", "1"])
    assert result.exit_code == 0, result.output
    assert written(run_copy) == ["tflite-dynamic-int8", "tflite-float16", "tflite-int8-clustered", "tflite-int8-pruned"]
    fc = (10, 1352)  # the tiny model's classifier kernel
    assert abs(int8_kernel_sparsity(run_copy / "tflite-int8-pruned" / "model.tflite")[fc] - 0.5) < 0.02
    it = Interpreter(model_path=str(run_copy / "tflite-int8-clustered" / "model.tflite"))
    it.allocate_tensors()
    kernel = next(it.get_tensor(t["index"]) for t in it.get_tensor_details() if tuple(t["shape"]) == fc)
    assert max(len(np.unique(row)) for row in kernel) <= 8  # 8 centroids per output channel
    f16 = Interpreter(model_path=str(run_copy / "tflite-float16" / "model.tflite"))
    assert any(t["dtype"] == np.float16 for t in f16.get_tensor_details())


def test_the_full_integer_int8_file_holds_only_int8_builtins_with_per_channel_weights(run_copy):
    from ai_edge_litert.interpreter import Interpreter

    result = runner.invoke(cli.app, ["export", str(run_copy), "--int8", "--calibration-images", "100",
                                     "--no-portability-check"])
    assert result.exit_code == 0, result.output
    from ai_edge_litert.interpreter import OpResolverType

    it = Interpreter(model_path=str(run_copy / "tflite-int8" / "model.tflite"),  # the file's own ops, no XNNPACK node
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    ops = {op["op_name"] for op in it._get_ops_details()}
    # the model's layers, and the int32 shape arithmetic of a dynamic-batch Flatten; no QUANTIZE/DEQUANTIZE, no float op
    assert ops <= {"CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX", "SHAPE", "STRIDED_SLICE", "PACK"}, ops
    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= ops
    details = it.get_tensor_details()
    for t in details:  # every tensor int8, but the int32 biases (and the int32 reshape shape)
        assert t["dtype"] in (np.int8, np.int32), (t["name"], t["dtype"])
    conv = next(t for t in details if len(t["shape"]) == 4 and t["shape"][0] == 8 and t["dtype"] == np.int8
                and tuple(t["shape"][1:]) == (3, 3, 1))
    assert len(conv["quantization_parameters"]["scales"]) == 8  # one scale per output channel


@pytest.mark.parametrize("declared", ["logits", "probabilities"])
def test_a_declared_output_is_taken_as_declared(tmp_path, declared):
    import keras

    from fmnist_edge import data as fdata

    ds = fdata.load(fdata.DEBIAN_DIR, download=False)
    idx = fdata.subset(ds.y_train, 3000, 1)
    keras.utils.set_random_seed(0)
    L = keras.layers
    # A ReLU on the scores hides what they are: export cannot detect it and asks for a declaration.
    model = keras.Sequential([keras.Input((28, 28, 1)), L.Flatten(), L.Dense(10), L.Activation("relu")])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(ds.x_train[idx, ..., None] / 255.0, ds.y_train[idx], epochs=3, verbose=0)
    model.save(tmp_path / "m.keras")
    args = ["export", str(tmp_path / "m.keras"), "--float", "--limit", "2000", "--no-portability-check",
            "--out", str(tmp_path / "run")]
    undeclared = runner.invoke(cli.app, args)
    assert undeclared.exit_code == 1 and "Declare it with --output probabilities or --output logits" in undeclared.output
    result = runner.invoke(cli.app, [*args, "--output", declared])
    if declared == "probabilities":  # its outputs do not sum to 1: refused rather than exported wrong
        words = " ".join(result.output.split())
        assert result.exit_code == 1 and "not probabilities of one class" in words and "pass --output logits" in words
        return
    assert result.exit_code == 0, result.output
    import runtime

    images = ds.x_test[:200]
    scores = model.predict(images[..., None] / 255.0, verbose=0)
    want = np.exp(scores - scores.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    np.testing.assert_allclose(runtime.load(tmp_path / "run" / "tflite-float32").predict_proba(images), want, atol=1e-4)


def test_verify_with_no_argument_checks_the_shipped_release_of_the_current_directory(tmp_path, monkeypatch):
    shutil.copytree(MICRO_RELEASE, tmp_path / "artifacts" / "reference")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli.app, ["verify"])
    assert result.exit_code == 0, result.output
    assert result.output.count("PASS") == len(VARIANTS)
    monkeypatch.chdir(tmp_path / "artifacts")  # nothing to verify here: a clear error, not a traceback
    result = runner.invoke(cli.app, ["verify"])
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_predict_breaks_ties_toward_the_lowest_class_index(tmp_path, monkeypatch):
    import runtime
    from PIL import Image

    clf = runtime.load(MICRO_RELEASE / "tflite-int8")
    tie = np.zeros((1, 10), np.float32)
    tie[0, [7, 2, 5]] = 0.3125  # three classes on the same int8 step
    tie[0, 9] = 0.0625
    monkeypatch.setattr(clf, "predict_proba", lambda images, batch_size=None: np.repeat(tie, len(images), 0))
    assert clf.predict(np.zeros((2, 28, 28), np.uint8)).tolist() == [2, 2]
    assert [name for name, _ in clf.top_k(np.zeros((1, 28, 28), np.uint8), 4)[0]] == [
        clf.class_names[i] for i in (2, 5, 7, 9)]
    monkeypatch.setattr(runtime, "load", lambda *a, **k: clf)
    garment = Image.new("L", (56, 56), 0)
    garment.paste(220, (12, 8, 44, 50))  # predict reads a photo with something in it (a blank one has no garment)
    garment.save(tmp_path / "x.png")
    result = runner.invoke(cli.app, ["predict", str(tmp_path / "x.png"), "--top-k", "3"])
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    names = [clf.class_names[i] for i in (2, 5, 7)]
    assert line.index(names[0]) < line.index(names[1]) < line.index(names[2]), line


def test_the_onnx_int8_scheme_study_runs_on_a_tiny_run(run_copy, tmp_path):
    out = tmp_path / "schemes.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "onnx_int8_schemes.py"), str(run_copy),
                           "--json", str(out), "--calibration-images", "100", "--cpus", "", "--runs", "20"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    study = json.loads(out.read_text())
    text = json.dumps(study)
    for scheme in ("u8u8", "s8s8", "u8s8-reduce-range", "s8s8-reduce-range"):
        assert scheme in text, scheme


def test_the_onnx_int8_calibration_study_runs_on_a_tiny_run(run_copy, tmp_path):
    out = tmp_path / "calibration.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "onnx_int8_calibration.py"), str(run_copy),
                           "--json", str(out), "--schemes", "u8s8-reduce-range", "--methods", "MinMax,Entropy",
                           "--sizes", "100", "--cpus", "Haswell-v4", "--rounds", "2", "--runs-per-round", "20"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    study = json.loads(out.read_text())
    cells = study["cells"]
    assert set(cells) == {"float32", "u8s8-reduce-range MinMax 100", "u8s8-reduce-range Entropy 100"}
    for name in ("u8s8-reduce-range MinMax 100", "u8s8-reduce-range Entropy 100"):
        c = cells[name]
        # the reduce-range scheme cannot saturate: bit-identical under the emulated AVX2 CPU
        assert c["identical_on"] == {"Haswell-v4": True} and 0.9 < c["agreement"] <= 1.0 and c["p50_us"] > 0
        assert c["passes"] == (c["agreement"] >= 0.995 and c["drop_points"] <= 0.2 and c["latency_vs_float"] <= 0.5)
    assert study["passing"] == [n for n in study["passing"] if cells[n]["passes"]]
