"""Training on small real subsets: the run directory's contents, determinism, and atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from fmnist_edge import train as ftrain  # noqa: E402
from fmnist_edge.errors import ConfigError  # noqa: E402
from fmnist_edge.keras_io import load_trained_model  # noqa: E402
from fmnist_edge.host import cpu_features  # noqa: E402
from fmnist_edge.manifest import sha256_file  # noqa: E402
from fmnist_edge.models import get_preset  # noqa: E402

QUICK = get_preset("reference").recipe.with_overrides(epochs=2, batch_size=64)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "reference-quick"
    ftrain.train(ftrain.TrainConfig(model="reference", seed=7, recipe=QUICK, limit=600, out=str(out)))
    return out


def test_run_directory_is_complete_and_consistent(quick_run):
    assert sorted(p.name for p in quick_run.iterdir()) == ["curves.png", "manifest.json", "metrics.json", "model.keras"]
    manifest = json.loads((quick_run / "manifest.json").read_text())
    metrics = json.loads((quick_run / "metrics.json").read_text())
    assert manifest["model_file"]["sha256"] == sha256_file(quick_run / "model.keras")
    assert manifest["model"] == "reference" and manifest["seed"] == 7 and manifest["params"] == 503_690
    assert manifest["recipe"]["epochs"] == 2 and manifest["recipe"]["batch_size"] == 64
    assert manifest["recipe"]["name"] == "custom (from seed)"  # the seed's recipe with overrides
    # Whatever trained it (a CPU here, a GPU elsewhere) is what the manifest names, with the CPU's ISA features.
    assert manifest["training"]["backend"] == "tensorflow"
    assert {k: manifest["training"][k] for k in ("device", "device_name")} == {
        k: ftrain.describe_device()[k] for k in ("device", "device_name")}
    assert manifest["host"]["features"] == cpu_features() and "node" not in manifest["host"]
    assert manifest["versions"]["tensorflow"] and manifest["versions"]["keras"].startswith("3.")
    assert manifest["data"]["train_images"] == 540 and manifest["data"]["validation_images"] == 60
    assert manifest["class_names"][0] == "T-shirt/top" and manifest["input"]["shape"] == [None, 28, 28, 1]
    assert metrics["test_images"] == 600 and len(metrics["per_class"]) == 10
    assert np.array(metrics["confusion_matrix"]).sum() == 600
    assert len(metrics["history"]["accuracy"]) == 2 and len(metrics["history"]["val_loss"]) == 2
    # Two epochs on 540 images already beat chance (0.10) by far; the metrics agree with the model file.
    assert metrics["test_accuracy"] > 0.4
    assert (quick_run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_saved_model_reproduces_recorded_accuracy(quick_run):
    from fmnist_edge import data as fdata

    ds = fdata.load(download=False)
    idx = fdata.subset(ds.y_test, 600, seed=7)
    model = load_trained_model(quick_run / "model.keras")
    probs = model.predict(fdata.to_model_input(ds.x_test[idx]), verbose=0)
    recorded = json.loads((quick_run / "metrics.json").read_text())["test_accuracy"]
    assert (probs.argmax(1) == ds.y_test[idx]).mean() == pytest.approx(recorded, abs=1e-9)


def test_training_is_deterministic_with_a_seed(tmp_path):
    recipe = get_preset("paper").recipe.with_overrides(epochs=1, batch_size=32)
    weights = []
    for i in range(2):
        out = tmp_path / f"run{i}"
        ftrain.train(ftrain.TrainConfig(model="paper", seed=11, recipe=recipe, limit=300, out=str(out)))
        weights.append(load_trained_model(out / "model.keras").get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ftrain, "plot_curves", boom)
    out = tmp_path / "runs" / "mlp-x"
    recipe = get_preset("mlp").recipe.with_overrides(epochs=1)
    with pytest.raises(KeyboardInterrupt):
        ftrain.train(ftrain.TrainConfig(model="mlp", recipe=recipe, limit=100, out=str(out)))
    assert list((tmp_path / "runs").iterdir()) == []


def test_existing_output_is_not_overwritten(quick_run):
    before = sha256_file(quick_run / "model.keras")
    with pytest.raises(ConfigError, match="already exists"):
        ftrain.train(ftrain.TrainConfig(model="mlp", limit=100, out=str(quick_run)))
    assert sha256_file(quick_run / "model.keras") == before


def test_validation_on_the_test_set_and_scaled_counts(tmp_path):
    # l2-vgg's recipe monitors on the test set; paper's 10,000-image count scales down with --limit.
    d = ftrain.prepare_data(ftrain.TrainConfig(model="l2-vgg", limit=200), get_preset("l2-vgg").recipe)
    assert d["describe"]["train_images"] == 200 and d["describe"]["validation_source"].startswith("test set")
    d = ftrain.prepare_data(ftrain.TrainConfig(model="paper", limit=600), get_preset("paper").recipe)
    assert (d["describe"]["train_images"], d["describe"]["validation_images"]) == (500, 100)


def test_label_smoothing_and_weight_decay_train_what_they_say(tmp_path):
    """Smoothing trains, and the test loss reported stays the plain cross-entropy (recomputed here from the saved
    model's outputs); weight decay is decoupled: a step with a zero gradient shrinks a weight by lr * decay."""
    import keras

    base = get_preset("mlp").recipe.with_overrides(epochs=2, validation=0.0)
    for name, recipe in (("plain", base), ("smoothed", base.with_overrides(label_smoothing=0.2))):
        out = tmp_path / name
        ftrain.train(ftrain.TrainConfig(model="mlp", seed=3, recipe=recipe, limit=500, out=str(out)))
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["recipe"]["name"] == "custom (from seed)"
        model = load_trained_model(out / "model.keras")
        if name == "smoothed":  # the test loss reported is the plain cross-entropy, comparable across recipes
            from fmnist_edge import data as fdata

            ds = fdata.load(download=False, train=False)
            idx = fdata.subset(ds.y_test, 500, seed=3)
            probs = model.predict(fdata.to_model_input(ds.x_test[idx]), verbose=0)
            plain = -np.log(np.clip(probs[np.arange(len(idx)), ds.y_test[idx]], 1e-7, 1)).mean()
            assert manifest["recipe"]["label_smoothing"] == 0.2
            assert manifest["test_loss"] == pytest.approx(plain, rel=1e-3)
    for optimizer in ("adam", "rmsprop"):
        recipe = base.with_overrides(optimizer=optimizer, learning_rate=0.01, weight_decay=0.1)
        opt = ftrain._optimizer(keras, recipe, steps_per_epoch=10)
        w = keras.Variable(np.ones(4, np.float32))
        opt.apply([keras.ops.zeros(4)], [w])
        np.testing.assert_allclose(keras.ops.convert_to_numpy(w), 1 - 0.01 * 0.1, rtol=1e-6)
    with pytest.raises(ConfigError, match="--label-smoothing must be from 0 to below 1"):
        base.with_overrides(label_smoothing=1.0)
    with pytest.raises(ConfigError, match="use one"):
        get_preset("edge").recipe.with_overrides(label_smoothing=0.1)
    with pytest.raises(ConfigError, match="--weight-decay must be from 0"):
        base.with_overrides(weight_decay=-1e-4)
    keras.utils.clear_session()


def test_named_recipes_are_chosen_by_name_and_unknown_ones_listed():
    preset = get_preset("reference")
    assert preset.named_recipe(None) is preset.recipe and preset.named_recipe("seed") is preset.recipe
    assert preset.recipe.name == "seed" and (preset.recipe.epochs, preset.recipe.batch_size) == (30, 512)
    for recipe in preset.recipes:
        assert preset.named_recipe(recipe.name) is recipe
    with pytest.raises(ConfigError, match="--recipe 'fast' is not a recipe of reference; choose one of: seed, tuned"):
        preset.named_recipe("fast")
    # The tuned recipe: the seed's layers and batch, the ablation's winning cell (artifacts/fidelity.json).
    tuned = preset.named_recipe("tuned")
    assert (tuned.epochs, tuned.batch_size, tuned.learning_rate, tuned.validation) == (60, 512, 1e-3, 0.0)
    assert (tuned.schedule, tuned.augment, tuned.label_smoothing, tuned.weight_decay) == ("cosine", "flip", 0.1, 0.0)
    assert tuned.extras() == "cosine, augment flip, label smoothing 0.1" and preset.recipe.extras() == ""
    # A run trained with overrides equal to a named recipe is reported under that recipe's name.
    from fmnist_edge import fidelity

    overridden = preset.recipe.with_overrides(epochs=60, validation=0, schedule="cosine", augment="flip",
                                              label_smoothing=0.1)
    assert overridden.name == "custom (from seed)"
    assert fidelity.recipe_name({"model": "reference", "recipe": overridden.to_dict()}) == "tuned"
    # The first tuned runs held 10% out: they are custom now, named by what differs from the seed's recipe.
    held_out = overridden.to_dict() | {"validation": 0.1}
    assert fidelity.recipe_name({"model": "reference", "recipe": held_out}) == \
        "custom: epochs 60, schedule cosine, augment flip, label_smoothing 0.1"
    assert fidelity.recipe_name({"model": "reference", "recipe": preset.recipe.with_overrides(epochs=45).to_dict()}) == \
        "custom: epochs 45"
