"""The model zoo (tests/zoo.py: classifiers written the way users write them) through every command, as a user runs
them: `fmnist-edge export MODEL_FILE`, then bench, verify, predict on a photo and app; explain on the one whose layers
are named like the product's. Each model's outcome is asserted (what is written, what is skipped or refused and why),
and no command gives a traceback or a library's exception text. Trained for seconds on the real data, so the
accuracies are low; the full exports are recorded by scripts/zoo_study.py (artifacts/zoo.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from typer.testing import CliRunner  # noqa: E402

from fmnist_edge import cli  # noqa: E402
from fmnist_edge import data as fdata  # noqa: E402

from zoo import ZOO, train_and_save  # noqa: E402

FINE_TUNED = ("tflite-int8-qat", "tflite-int8-pruned", "tflite-int8-clustered")
PHOTO = Path(__file__).parent / "fixtures" / "photos" / "trouser-exif1.jpg"
# Seconds, not minutes: a 1,000-image test subset, fine-tuning on 300 images for one epoch, one search rung; the
# portability proof is the CPU matrix tests' (the zoo study runs it for every model).
QUICK = ("--limit", "1000", "--no-portability-check", "--calibration-images", "200", "--fine-tune-images", "300",
         "--prune-epochs", "1", "--prune-ramp-epochs", "1", "--cluster-epochs", "1", "--compression-attempts", "1",
         "--repair", "none")  # the repair ladder is tests/test_explain.py's
# (training images, epochs): the models whose tests are about a model that learned
LONGER = {"keras2-h5-conv-bn-dropout": (6000, 3), "mobilenet-style": (6000, 4), "residual": (4000, 3)}
LIBRARY_TEXT = ("Traceback", "QuantizeConfig", "quantize_annotate_layer", "tf_keras.src", "keras.src", "tfmot.")
runner = CliRunner()


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory):
    """Every zoo model trained for two epochs on 2,000 real training images and saved as its user would; those whose
    tests need a model that learned (an int8 file as accurate as it is, fine-tuned variants that pass), longer."""
    ds = fdata.load(download=False)
    out = tmp_path_factory.mktemp("zoo")
    files = {}
    for name, entry in ZOO.items():
        images, epochs = LONGER.get(name, (2000, 2))
        idx = fdata.subset(ds.y_train, images, 1)
        files[name] = train_and_save(entry, ds.x_train[idx], ds.y_train[idx], out, epochs=epochs)
    return files


def export(path: Path, out: Path, *variants: str, extra: tuple[str, ...] = ()):
    """`fmnist-edge export MODEL_FILE` with the options its user would pass (the zoo entry's export_args)."""
    entry = ZOO.get(path.stem)
    args = ["export", str(path), "--out", str(out), *QUICK, *(entry.export_args if entry else ()), *extra]
    for v in variants:
        args += ["--variant", v]
    result = runner.invoke(cli.app, args)
    assert result.exit_code in (0, 1, 3), result.output[-3000:]
    assert not any(text in result.output for text in LIBRARY_TEXT), result.output[-3000:]
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def outcome(run: Path) -> dict:
    record = json.loads((run / "keras-outputs" / "manifest.json").read_text())
    written = sorted(p.name for p in run.iterdir() if (p / "manifest.json").is_file() and p.name != "keras-outputs")
    return {"written": written, "skipped": record.get("skipped_variants", {}), "refused": record.get("refused_variants", {})}


def device_side(run: Path, tmp_path: Path, variant: str = "tflite-int8") -> None:
    """bench, verify and predict of the written run, and the app built from it: what a device user runs."""
    bench = runner.invoke(cli.app, ["bench", str(run), "--variant", variant, "--runs", "20", "--warmup", "2",
                                    "--no-compute-floor", "--out", str(tmp_path / "bench")])
    assert bench.exit_code == 0, bench.output
    assert variant in bench.output
    verify = runner.invoke(cli.app, ["verify", str(run / variant)])
    assert verify.exit_code == 0 and "Traceback" not in verify.output, verify.output
    predict = runner.invoke(cli.app, ["predict", str(PHOTO), "--model", str(run / variant), "--top-k", "3"])
    assert predict.exit_code == 0, predict.output
    shares = [float(v) for v in __import__("re").findall(r"(\d+(?:\.\d+)?)%", predict.output)]
    assert shares and all(0 <= v <= 100 for v in shares) and sum(shares) <= 100.5, predict.output


@pytest.mark.slow
@pytest.mark.parametrize("name", ["residual", "mobilenet-style"])
def test_branching_and_mobilenet_style_models_get_every_fine_tuned_variant(zoo_files, name, tmp_path):
    run = tmp_path / "run"
    result = export(zoo_files[name], run, "tflite-int8", *FINE_TUNED)
    got = outcome(run)
    # QAT, pruning and clustering rebuild the user's graph as a graph: none is skipped for its topology or names
    assert not got["skipped"], got["skipped"]
    assert set(got["written"]) | set(got["refused"]) == {"tflite-int8", *FINE_TUNED}
    assert result.exit_code == (3 if got["refused"] else 0), result.output
    assert set(FINE_TUNED) <= set(got["written"]) | {v for v, r in got["refused"].items() if r["kind"] == "ParityError"}
    qat = json.loads((run / "tflite-int8-qat" / "manifest.json").read_text())["qat"] if "tflite-int8-qat" in got[
        "written"] else None
    if qat is not None and name == "mobilenet-style":  # the user's depthwise_conv2d beside tfmot's own: no clash
        assert "depthwise_conv2d" not in qat["layers_without_fake_quantization"]
    device_side(run, tmp_path, got["written"][0])


@pytest.mark.slow
def test_augmentation_and_dropout_are_left_out_of_fine_tuning_and_recorded(zoo_files, tmp_path):
    run = tmp_path / "run"
    result = export(zoo_files["augmentation-inside"], run, "tflite-int8", "tflite-int8-qat")
    assert result.exit_code in (0, 3), result.output
    qat = json.loads((run / "tflite-int8-qat" / "manifest.json").read_text())["qat"]
    assert qat["training_only_layers_left_out"] == ["random_flip", "random_translation", "random_rotation", "dropout"]
    device_side(run, tmp_path, "tflite-int8-qat")


@pytest.mark.slow
def test_keras2_conv_bn_dropout_h5_gets_its_full_integer_file(zoo_files, tmp_path):
    """Conv(relu) -> BatchNormalization -> Dropout, a Keras 2 .h5: its int8 file is as accurate as Keras, so it is
    written (by the plain gate or, agreeing less on near-tied images, by the accuracy rule, which is then recorded)."""
    run = tmp_path / "run"
    result = export(zoo_files["keras2-h5-conv-bn-dropout"], run, "tflite-int8", "tflite-int8-web",
                    extra=("--limit", "2000"))  # 200 test images a class: the rule's per-class check needs them
    assert result.exit_code == 0, result.output
    m = json.loads((run / "tflite-int8" / "manifest.json").read_text())
    assert m["fidelity"]["accuracy"] >= m["fidelity"]["keras_accuracy"] - 0.005
    if m["check"]["agreement"] < m["check"]["tolerance"]["min_agreement"]:
        assert m["check"]["passed_by"] == "accuracy rule" and m["check"]["accuracy_rule"]["holds"]
        assert "accepted by the accuracy rule" in result.output
    device_side(run, tmp_path)
    micro = runner.invoke(cli.app, ["micro", str(run / "tflite-int8"), "--test-images", "50"])
    assert micro.exit_code == 0, micro.output


@pytest.mark.slow
def test_a_sigmoid_head_is_refused_in_plain_words_and_the_way_out_works(zoo_files, tmp_path):
    import keras

    for declared in ((), ("--output", "probabilities"), ("--output", "logits")):
        result = export(zoo_files["sigmoid-head"], tmp_path / "run", "tflite-int8", extra=declared)
        assert result.exit_code == 1 and "not a single-label softmax classifier" in result.output, result.output
        assert not (tmp_path / "run").exists()
    # the way out the message gives: the same scores through a softmax
    model = keras.saving.load_model(zoo_files["sigmoid-head"])
    model.layers[-1].activation = keras.activations.softmax
    model.save(tmp_path / "softmax.keras")
    result = export(tmp_path / "softmax.keras", tmp_path / "fixed", "tflite-int8")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "fixed" / "manifest.json").read_text())["conventions"]["output"] == "probabilities"
    device_side(tmp_path / "fixed", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name, fit, tiled", [("rgb-input", None, True), ("padded-32x32", "pad", False)])
def test_rgb_and_32x32_inputs_are_folded_in_and_devices_feed_28x28(zoo_files, name, fit, tiled, tmp_path):
    run = tmp_path / "run"
    result = export(zoo_files[name], run, "tflite-int8", "tflite-int8-web", "onnx-int8", "tflite-int8-qat")
    assert result.exit_code in (0, 3), result.output
    got = outcome(run)
    assert {"tflite-int8", "tflite-int8-web"} <= set(got["written"]) and not got["skipped"], got
    run_manifest = json.loads((run / "manifest.json").read_text())
    fitted = run_manifest["conventions"]["input_fit"]
    assert fitted["fit"] == fit and fitted["tiled_to_rgb"] is tiled
    if fit:  # chosen on real test images: the padding it was trained with scores better than resizing
        scores = fitted["accuracy_by_fit"]
        assert scores["pad"]["[0,1]"] > scores["resize"]["[0,1]"]
    art = json.loads((run / "tflite-int8" / "manifest.json").read_text())
    assert art["input"]["shape"][1:] == [28, 28, 1]  # every device still feeds plain 28x28 pixels
    assert art["preprocessing"]["model_input_fit"]["to"] == list(ZOO[name].inputs(np.zeros((1, 28, 28))).shape[1:])
    import runtime

    lone = tmp_path / "lone.tflite"  # the file alone says what it folds in
    lone.write_bytes((run / "tflite-int8" / "model.tflite").read_bytes())
    assert runtime.load(lone).manifest["preprocessing"]["model_input_fit"] == art["preprocessing"]["model_input_fit"]
    device_side(run, tmp_path)
    app = runner.invoke(cli.app, ["app", str(run), "--out", str(tmp_path / "app")])
    assert app.exit_code == 0, app.output
    if name == "padded-32x32":
        in_browser(tmp_path / "app")


def in_browser(app: Path) -> None:
    """The app answers a photo in Chromium with the folded model (LiteRT.js runs its PAD op)."""
    pytest.importorskip("selenium")
    from test_web import answer_in_browser

    answer_in_browser(app, PHOTO)


@pytest.mark.slow
def test_explain_and_qat_on_layers_named_like_the_products(zoo_files, tmp_path):
    """Layers named input, scale, image, input_contract, reshape_input, logits and probabilities: explain names them by
    the user's names, and QAT's rebuild does not collide with the wrapper's own layers."""
    result = runner.invoke(cli.app, ["explain", str(zoo_files["named-like-the-product"]), "--limit", "1000",
                                     "--json", str(tmp_path / "ex.json")])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    layers = {r["layer"] for r in json.loads((tmp_path / "ex.json").read_text())["layers"]}
    assert {"input_contract", "logits", "image"} <= layers, layers
    run = tmp_path / "run"
    export_result = export(zoo_files["named-like-the-product"], run, "tflite-int8", "tflite-int8-qat")
    assert export_result.exit_code == 0, export_result.output
    device_side(run, tmp_path, "tflite-int8-qat")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp-logits", "rescaling-0-255", "separate-softmax"])
def test_tutorial_models_export_and_run(zoo_files, name, tmp_path):
    run = tmp_path / "run"
    result = export(zoo_files[name], run, "tflite-int8", "onnx-int8")
    assert result.exit_code == 0, result.output
    conventions = json.loads((run / "manifest.json").read_text())["conventions"]
    assert conventions["output"] == ("logits" if name == "mlp-logits" else "probabilities")
    device_side(run, tmp_path, "onnx-int8")


def test_the_flat_rebuild_keeps_the_models_name_and_can_be_wrapped_again():
    """explain and the repair ladder work on flat_keras's rebuild, which the web builder then wraps in a batch-1 input
    named `image`: the rebuild's own input must not take the model's name (a residual model's tflite-int8-web repair
    once failed on 'The name "image" is used 2 times')."""
    import keras

    from exporters.rebuild import flat_keras

    inp = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="image_conv")(inp)
    x = keras.layers.Add()([x, keras.layers.Conv2D(4, 1, name="skip")(inp)])
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x)), name="user")
    flat = flat_keras(model)
    assert flat.name == "user" and [l.name for l in flat.layers if l.name != "image"] == [
        l.name for l in model.layers if l.name != "image"]
    image = keras.Input(batch_shape=(1, 28, 28, 1), name="image")
    wrapped = keras.Model(image, flat(image))
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    assert np.allclose(wrapped.predict(x[:1], verbose=0), model.predict(x[:1], verbose=0), atol=1e-6)
