"""Bring your own model: Keras classifiers built the way users build them, trained for seconds on real
data, exported from their files and checked numerically, like the presets."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402
from rich.console import Console  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import exporters  # noqa: E402
import runtime  # noqa: E402
from exporters.errors import ExportError  # noqa: E402
from fmnist_edge import CLASS_NAMES, cli  # noqa: E402
from fmnist_edge import data as fdata  # noqa: E402
from fmnist_edge.errors import ModelFileError  # noqa: E402
from fmnist_edge.manifest import sha256_file  # noqa: E402
from runtime import manifest as rmf  # noqa: E402

L = keras.layers
QUIET = Console(quiet=True)
FAST = {"limit": 2000, "calibration_images": 500, "console": QUIET}
NO_EMULATION = {**FAST, "portability_cpus": ()}  # proven elsewhere; keeps these tests quick


@pytest.fixture(scope="module")
def train_data():
    ds = fdata.load(download=False)
    idx = fdata.subset(ds.y_train, 3000, 1)
    return ds.x_train[idx], ds.y_train[idx]


def fit(model, x, y, logits=False, epochs=3, learning_rate=1e-3):
    keras.utils.set_random_seed(0)
    model.compile(keras.optimizers.Adam(learning_rate), keras.losses.SparseCategoricalCrossentropy(from_logits=logits))
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model


def keras_probs(model, x01, scale=1.0, logits=False, squeeze=False):
    x = x01 * scale
    out = model.predict(x[..., 0] if squeeze else x, verbose=0)
    return keras.ops.convert_to_numpy(keras.ops.softmax(out)) if logits else out


def test_functional_bn_model_exports_every_variant_and_runs_everywhere(train_data, tmp_path):
    x, y = train_data
    inp = keras.Input((28, 28, 1))
    h = L.Conv2D(16, 3, padding="same")(inp)
    h = L.BatchNormalization(momentum=0.9)(h)  # folded into the conv at export; fast-moving stats for a short fit
    h = L.ReLU()(h)
    h = L.MaxPooling2D()(h)
    h = L.Flatten()(h)
    out = L.Dense(10, activation="softmax")(h)
    model = fit(keras.Model(inp, out, name="bn_gap"), x / 255.0, y, epochs=4)
    path = tmp_path / "bn_gap.keras"
    model.save(path)
    done = exporters.export(path, out=tmp_path / "run", **FAST)
    assert sorted(done) == sorted(exporters.VARIANTS)
    run = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert run["lineage"] == "external" and run["recipe"] is None
    assert run["source_model"]["name"] == "bn_gap.keras" and run["source_model"]["sha256"] == sha256_file(path)
    assert run["conventions"]["output"] == "probabilities" and run["conventions"]["input_scale"] == 1.0
    ds = fdata.load(download=False, train=False)
    te = fdata.subset(ds.y_test, 2000, 0)
    expected_acc = float((keras_probs(model, fdata.to_model_input(ds.x_test[te])).argmax(1) == ds.y_test[te]).mean())
    assert run["test_accuracy"] == pytest.approx(expected_acc, abs=1e-9)
    for variant, directory in done.items():
        m = rmf.read(directory / "manifest.json")
        assert m["lineage"]["lineage"] == "external" and m["lineage"]["source_model"]["sha256"] == sha256_file(path)
        assert m["check"]["passed"] and m["class_names"] == list(CLASS_NAMES)
    # the float files compute the Keras model; the int8 ones stay close and were proven on emulated x86
    clf = runtime.load(done["tflite-float32"])
    probe = ds.x_test[te[:200]]
    np.testing.assert_allclose(clf.predict_proba(probe), keras_probs(model, fdata.to_model_input(probe)), atol=1e-4)
    assert rmf.read(done["onnx-int8"] / "manifest.json")["portability"]["rows"]["Haswell-v4"]["passed"]
    assert rmf.read(done["tflite-int8-qat"] / "manifest.json")["qat"]["fine_tune_images"] == 2000
    runner = CliRunner()
    for args in (["verify", str(tmp_path / "run")],
                 ["bench", str(tmp_path / "run"), "--runs", "10", "--warmup", "1", "--batch-size", "8",
                  "--no-compute-floor", "--json", str(tmp_path / "b.json"), "--markdown", str(tmp_path / "b.md"),
                  "--plot", str(tmp_path / "b.png")],
                 ["c-source", str(done["tflite-int8"]), "--out", str(tmp_path / "c"), "--name", "bn_gap"]):
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 0, (args[0], result.output)
    bench = json.loads((tmp_path / "b.json").read_text())
    assert {r["name"] for r in bench["rows"]} == {"keras", *exporters.VARIANTS}


def test_global_average_pooling_model_float_variants_compute_the_keras_model(train_data, tmp_path):
    x, y = train_data
    model = fit(keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(),
                                  L.Conv2D(32, 3, activation="relu"), L.GlobalAveragePooling2D(),
                                  L.Dense(10, activation="softmax")], name="gap"), x / 255.0, y, epochs=2)
    done = exporters.export(model, ["tflite-float32", "onnx-float32"], out=tmp_path / "run", **NO_EMULATION)
    images = fdata.load(download=False, train=False).x_test[:300]
    want = keras_probs(model, fdata.to_model_input(images))
    for directory in done.values():
        np.testing.assert_allclose(runtime.load(directory).predict_proba(images), want, atol=1e-4)


def test_raw_pixel_model_with_its_own_rescaling_and_28x28_input(train_data, tmp_path):
    x, y = train_data
    model = fit(keras.Sequential([keras.Input((28, 28)), L.Rescaling(1 / 255.0), L.Reshape((28, 28, 1)),
                                  L.Conv2D(8, 3, activation="relu"), L.MaxPooling2D(), L.Flatten(),
                                  L.Dense(10)], name="rawpix"), x.astype("float32"), y, logits=True)
    path = tmp_path / "rawpix.keras"
    model.save(path)
    # Undeclared, [0, 1] inputs would be fed to a raw-pixel model: refused, saying what to pass.
    with pytest.raises(ExportError, match=r"It was trained on \[0,255\] inputs: pass --input-range 0,255"):
        exporters.export(path, out=tmp_path / "wrong", **NO_EMULATION)
    assert not (tmp_path / "wrong").exists() and not list(tmp_path.glob(".wrong.partial*"))
    done = exporters.export(path, ["tflite-float32", "onnx-int8"], out=tmp_path / "run", input_scale=255, **NO_EMULATION)
    run = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert run["conventions"] == {**run["conventions"], "input_shape": [None, 28, 28], "input_scale": 255.0,
                                  "input_scale_declared": True, "output": "logits", "output_declared": False}
    m = rmf.read(done["tflite-float32"] / "manifest.json")
    assert m["preprocessing"]["model_input_scale"] == 255.0 and m["output"]["shape"] == [None, 10]
    ds = fdata.load(download=False, train=False)
    images = ds.x_test[fdata.subset(ds.y_test, 2000, 0)]  # the images export's gate ran on (--limit 2000)
    want = keras_probs(model, fdata.to_model_input(images), scale=255.0, logits=True, squeeze=True)
    for variant in done:  # uint8 pixels in, probabilities out, whatever the model expected inside
        got = runtime.load(done[variant]).predict_proba(images)
        np.testing.assert_allclose(got.sum(1), 1.0, atol=0.02)
        assert (got.argmax(1) == want.argmax(1)).mean() >= exporters.VARIANTS[variant].min_agreement, variant
    np.testing.assert_allclose(runtime.load(done["tflite-float32"]).predict_proba(images), want, atol=1e-4)


def test_a_layer_without_a_qat_recipe_trains_in_float_and_is_recorded(train_data, tmp_path):
    """tfmot has no fake quantization for LayerNormalization: QAT still runs, that layer trains without fake quantization
    and is quantized by the converter's calibration, and the manifest names it."""
    x, y = train_data
    model = fit(keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(8, 3, activation="relu"), L.Flatten(),
                                  L.LayerNormalization(), L.Dense(10, activation="softmax")]), x / 255.0, y, epochs=2)
    done = exporters.export(model, ["tflite-int8-qat", "tflite-float32"], out=tmp_path / "run", **NO_EMULATION)
    assert sorted(done) == ["tflite-float32", "tflite-int8-qat"]
    qat = rmf.read(done["tflite-int8-qat"] / "manifest.json")["qat"]
    assert qat["layers_without_fake_quantization"] == ["layer_normalization", "probabilities"]


def test_layer_with_no_keras2_equivalent_skips_the_fine_tuned_variants_in_plain_words(train_data, tmp_path):
    """RMSNormalization is Keras 3 only: tensorflow-model-optimization (Keras 2) cannot hold it, so QAT, pruning and
    clustering are skipped with the layer named, and export exits 0 with the other variants written."""
    x, y = train_data
    model = fit(keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(8, 3, activation="relu"), L.Flatten(),
                                  L.RMSNormalization(), L.Dense(10, activation="softmax")]), x / 255.0, y, epochs=2)
    path = tmp_path / "rms.keras"
    model.save(path)
    result = CliRunner().invoke(cli.app, ["export", str(path), "--variant", "tflite-float32", "--variant", "tflite-int8-qat",
                                          "--variant", "tflite-int8-pruned", "--limit", "2000", "--no-portability-check",
                                          "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    skipped = json.loads((tmp_path / "run" / "keras-outputs" / "manifest.json").read_text())["skipped_variants"]
    assert sorted(skipped) == ["tflite-int8-pruned", "tflite-int8-qat"]
    for reason in skipped.values():
        assert "rms_normalization" in reason and "RMSNormalization" in reason and "Keras 2" in reason
        assert "Traceback" not in reason and "QuantizeConfig" not in reason
    assert (tmp_path / "run" / "tflite-float32" / "model.tflite").is_file()


def test_legacy_h5_model_with_labels_through_the_cli(train_data, tmp_path):
    x, y = train_data
    model = fit(keras.Sequential([keras.Input((28, 28, 1)), L.Flatten(), L.Dense(32, activation="relu"),
                                  L.Dense(10, activation="softmax")], name="notebook"), x / 255.0, y)
    path = tmp_path / "notebook.h5"
    model.save(path)
    names = [f"class {i}" for i in range(10)]
    (tmp_path / "labels.txt").write_text("\n".join(names) + "\n")
    result = CliRunner().invoke(cli.app, ["export", str(path), "--int8", "--labels", str(tmp_path / "labels.txt"),
                                          "--limit", "2000", "--calibration-images", "100", "--no-portability-check",
                                          "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    m = rmf.read(tmp_path / "run" / "tflite-int8" / "manifest.json")
    assert m["class_names"] == names and m["lineage"]["source_model"]["format"] == "h5"
    assert (tmp_path / "run" / "tflite-int8" / "labels.txt").read_text().splitlines() == names
    assert runtime.load(tmp_path / "run" / "tflite-int8").top_k(np.zeros((1, 28, 28), np.uint8), 1)[0][0][0] in names


@pytest.mark.parametrize("build, message", [
    (lambda: keras.Sequential([keras.Input((28, 28, 2)), L.Flatten(), L.Dense(10, activation="softmax")]),
     r"input shape \(None, 28, 28, 2\) is not supported.*\(None, H, W, 1\) or \(None, H, W, 3\)"),
    (lambda: keras.Sequential([keras.Input((1024, 1024, 1)), L.GlobalAveragePooling2D(), L.Dense(10, activation="softmax")]),
     r"input shape \(None, 1024, 1024, 1\) is not supported.*8 to 512 pixels"),
    (lambda: keras.Sequential([keras.Input((28, 28, 1)), L.Flatten(), L.Dense(5, activation="softmax")]),
     r"output shape \(None, 5\) is not supported; expected \(None, 10\)"),
    (lambda: keras.Sequential([keras.Input((28, 28, 1)), L.Flatten(), L.Dense(10, activation="sigmoid")]),
     "not a single-label softmax classifier: its last layer is Dense with activation sigmoid.*activations.softmax"),
    (lambda: keras.Sequential([keras.Input((28, 28, 1)), L.Flatten(), L.Dense(10), L.Activation("tanh")]),
     "not a single-label softmax classifier: its last layer is Activation with activation tanh"),
])
def test_models_outside_the_supported_bounds_are_refused(tmp_path, build, message):
    path = tmp_path / "m.keras"
    build().save(path)
    with pytest.raises(ExportError, match=message):
        exporters.export(path, out=tmp_path / "run", **NO_EMULATION)
    assert not (tmp_path / "run").exists()


def test_lambda_layers_are_refused_in_both_formats_with_the_same_error(tmp_path):
    model = keras.Sequential([keras.Input((28, 28, 1)), L.Lambda(lambda t: t * 2.0), L.Flatten(),
                              L.Dense(10, activation="softmax")])
    model.save(tmp_path / "lam.keras")
    model.save(tmp_path / "lam.h5")
    with pytest.raises(ModelFileError, match="refused. It contains a Lambda layer"):
        exporters.export(tmp_path / "lam.keras", out=tmp_path / "a", **NO_EMULATION)
    with pytest.raises(ModelFileError, match="refused. It contains a Lambda layer"):
        exporters.export(tmp_path / "lam.h5", out=tmp_path / "b", **NO_EMULATION)


def test_cli_errors_for_model_files(tmp_path):
    runner = CliRunner()
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "fake.h5").write_text("not hdf5")
    (tmp_path / "bad-labels.txt").write_text("a\nb\n")
    keras.Sequential([keras.Input((28, 28, 1)), L.Flatten(), L.Dense(10, activation="softmax")]).save(tmp_path / "m.keras")
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("keep me")
    cases = [
        (["export", str(tmp_path / "fake.h5")], "not an HDF5 file"),
        (["export", str(tmp_path / "missing.keras")], "no such model file"),
        (["export", str(tmp_path / "m.keras"), "--labels", str(tmp_path / "bad-labels.txt")], "expected 10 class names"),
        (["export", str(tmp_path / "m.keras"), "--input-scale", "-1"], "--input-scale must be a positive number"),
        (["export", str(tmp_path / "m.keras"), "--output", "scores"], "--output must be one of"),
        (["export", str(tmp_path / "m.keras"), "--out", str(tmp_path / "precious"), "--overwrite"], "refusing to replace it"),
    ]
    for args, message in cases:
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output, (args, result.output)
    assert (tmp_path / "precious" / "thesis.tex").read_text() == "keep me"
