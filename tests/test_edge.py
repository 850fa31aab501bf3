"""The edge preset's training options: garment augmentation, distillation from a teacher run, and the
teacher's checks (issue 12)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fmnist_edge import cli
from fmnist_edge.augment import MAX_SHIFT, augment_batch
from fmnist_edge.distill import check_teacher
from fmnist_edge.errors import ConfigError
from fmnist_edge.models import get_preset

runner = CliRunner()


def _explains(src: np.ndarray, out: np.ndarray) -> bool:
    """Whether `out` is `src` flipped or not, shifted by at most MAX_SHIFT (background fill), and changed
    only inside one rectangle of at most 20% of the image (the erasing)."""
    h, w = src.shape
    padded = np.pad(src, MAX_SHIFT)
    for img in (padded, padded[:, ::-1]):
        for dy in range(2 * MAX_SHIFT + 1):
            for dx in range(2 * MAX_SHIFT + 1):
                diff = np.argwhere(img[dy:dy + h, dx:dx + w] != out)
                if not len(diff):
                    return True
                (y0, x0), (y1, x1) = diff.min(0), diff.max(0)
                if (y1 - y0 + 1) * (x1 - x0 + 1) <= 0.2 * h * w + 2 * (h + w):  # rounding of the box's sides
                    return True
    return False


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_augmented_image_is_its_garment_flipped_shifted_and_partly_erased(seed):
    rng = np.random.default_rng(seed)
    x = rng.random((16, 28, 28, 1), dtype=np.float32) * (rng.random((16, 28, 28, 1)) < 0.7)
    out = augment_batch(x, np.random.default_rng(seed))
    assert out.shape == x.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    assert all(_explains(a[..., 0], b[..., 0]) for a, b in zip(x, out))
    assert np.array_equal(out, augment_batch(x, np.random.default_rng(seed)))  # seeded: runs reproduce


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_weaker_augmentations_only_flip_or_only_flip_and_shift(seed):
    rng = np.random.default_rng(seed)
    x = rng.random((16, 28, 28, 1), dtype=np.float32) * (rng.random((16, 28, 28, 1)) < 0.7)
    flipped = augment_batch(x, np.random.default_rng(seed), "flip")
    assert all(np.array_equal(b, a) or np.array_equal(b, a[:, ::-1]) for a, b in zip(x, flipped))
    shifted = augment_batch(x, np.random.default_rng(seed), "flip+shift")
    h, w = 28, 28
    assert all(any(np.array_equal(img[dy:dy + h, dx:dx + w], b[..., 0])  # no erasing: an exact crop of the padded garment
                   for img in (np.pad(a[..., 0], MAX_SHIFT), np.pad(a[..., 0], MAX_SHIFT)[:, ::-1])
                   for dy in range(2 * MAX_SHIFT + 1) for dx in range(2 * MAX_SHIFT + 1)) for a, b in zip(x, shifted))
    none = augment_batch(x, np.random.default_rng(seed), "none")
    assert np.array_equal(none, x) and none is not x
    with pytest.raises(ValueError, match="must be one of none, flip"):
        augment_batch(x, rng, "rotate")


def test_augmented_training_sees_a_new_view_every_epoch_and_keeps_the_schedule():
    # fit_augmented calls fit once per epoch; the optimizer's step count (hence a cosine schedule) must carry on,
    # and each epoch must get different images.
    keras = pytest.importorskip("keras")
    from fmnist_edge.augment import fit_augmented

    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(int(self.model.optimizer.iterations.numpy()))

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    calls = []
    fit = model.fit
    model.fit = lambda x, *a, **k: calls.append(x.copy()) or fit(x, *a, **k)
    model.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).random((64, 28, 28, 1), dtype=np.float32)
    history = fit_augmented(model, x, np.arange(64) % 10, "flip", 0, epochs=3, batch_size=32, verbose=0, callbacks=[Record()])
    assert len(history["loss"]) == 3 and len(calls) == 3
    assert seen == list(range(6))  # 2 steps per epoch, counted on across the three fit calls
    assert not np.array_equal(calls[0], calls[1]) and not np.array_equal(calls[1], calls[2])


def test_augmentation_rates():
    # Flip and erasing each hit about half the images; a vertical flip never happens.
    x = np.zeros((2000, 28, 28, 1), np.float32)
    x[:, :, :10] = 1.0  # left third bright: a flip moves it right
    out = augment_batch(x, np.random.default_rng(1))
    flipped = out[:, :, 14:].sum((1, 2, 3)) > out[:, :, :14].sum((1, 2, 3))
    erased = ((out > 0) & (out < 1)).reshape(len(x), -1).any(1)
    assert 0.45 < flipped.mean() < 0.55 and 0.45 < erased.mean() < 0.55
    upper, lower = out[:, :14].sum((1, 2, 3)), out[:, 14:].sum((1, 2, 3))
    assert np.abs(upper - lower).max() < 0.25 * 28 * 28  # rows are never flipped (erasing moves at most 20%)


def test_distillation_loss_is_the_kl_of_softened_outputs():
    # Keras 3.15.1's default LogitsDistillation computes 0 (see fmnist_edge.distill); ours must equal
    # T^2 * KL(softmax(teacher/T) || softmax(student/T)) computed by hand.
    keras = pytest.importorskip("keras")
    from fmnist_edge.distill import distiller

    recipe = get_preset("edge").recipe
    keras.utils.set_random_seed(0)
    teacher = get_preset("mlp").build(keras)
    student = get_preset("edge").build(keras)
    trainer = distiller(keras, teacher, student, recipe, keras.optimizers.Adam())
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    t = np.log(np.maximum(teacher.predict(x, verbose=0), 1e-12)) / recipe.temperature
    s = keras.Model(student.inputs, student.get_layer("logits").output).predict(x, verbose=0) / recipe.temperature
    p, q = (np.exp(v - v.max(1, keepdims=True)) for v in (t, s))
    p, q = p / p.sum(1, keepdims=True), q / q.sum(1, keepdims=True)
    expected = recipe.temperature**2 * np.mean(np.sum(p * np.log(p / q), 1))
    got = float(trainer.distillation_losses[0].compute_loss(trainer.teacher(x), trainer.student(x)))
    assert expected > 0.01 and got == pytest.approx(expected, rel=1e-3)


def test_cached_teacher_outputs_give_the_distillers_loss():
    # The cached path must optimise exactly what keras.distillation does on the same images:
    # label_weight * CE(labels) + (1 - label_weight) * T^2 * KL(teacher || student), softened by T.
    keras = pytest.importorskip("keras")
    from fmnist_edge.distill import cached_trainer, distiller, pack_targets, teacher_logits

    recipe = get_preset("edge").recipe.with_overrides(label_weight=0.3, temperature=3.0)
    keras.utils.set_random_seed(0)
    teacher, student = get_preset("mlp").build(keras), get_preset("edge").build(keras)
    rng = np.random.default_rng(1)
    x, y = rng.random((16, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 16)
    packed = pack_targets(y, teacher_logits(keras, teacher, x))
    assert packed.shape == (16, 11) and (packed[:, 0] == y).all()
    cached = cached_trainer(keras, student, recipe, keras.optimizers.Adam())
    live = distiller(keras, teacher, student, recipe, keras.optimizers.Adam())
    got = cached.evaluate(x, packed, batch_size=16, verbose=0, return_dict=True)
    want = live.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    s = cached.predict(x, verbose=0)
    ce = np.mean(np.log(np.exp(s - s.max(1, keepdims=True)).sum(1)) + s.max(1) - s[np.arange(16), y])
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-4)
    assert got["loss"] > 0.3 * ce * 1.001  # the teacher's term is in it, not the labels' alone
    assert got["accuracy"] == pytest.approx(np.mean(s.argmax(1) == y))


def test_teacher_checks(tiny_run, tmp_path):
    assert check_teacher(tiny_run).record["model"] == "tiny"
    with pytest.raises(ConfigError, match="--teacher: .*no manifest.json.*--no-distill"):
        check_teacher(tmp_path / "nowhere")
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("tflite-*", "onnx-*"))
    with open(run / "model.keras", "ab") as f:
        f.write(b"x")
    with pytest.raises(ConfigError, match="sha256 does not match the run manifest"):
        check_teacher(run)
    (run / "manifest.json").write_text(json.dumps({"kind": "release"}))
    with pytest.raises(ConfigError, match="not a run manifest"):
        check_teacher(run)


def test_train_refuses_a_bad_teacher_before_training(tmp_path):
    for args, message in ((["--teacher", str(tmp_path / "none")], "--teacher"),
                          (["--no-distill", "--teacher", str(tmp_path)], "only used when distilling")):
        out = tmp_path / "out"
        result = runner.invoke(cli.app, ["train", "--model", "edge", "--limit", "300", *args, "--out", str(out)])
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output, result.output
        assert not out.exists()


def test_edge_trains_distilled_and_augmented_and_records_its_teacher(tiny_run, tmp_path):
    out = tmp_path / "edge"
    result = runner.invoke(cli.app, ["train", "--model", "edge", "--limit", "300", "--epochs", "2", "--teacher", str(tiny_run),
                                     "--validation", "0.2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["params"] == get_preset("edge").params and m["teacher"]["model"] == "tiny" and m["teacher"]["run"] == str(tiny_run)
    assert {k: m["recipe"][k] for k in ("schedule", "augment", "distill")} == {"schedule": "cosine", "augment": get_preset("edge").recipe.augment, "distill": True}
    assert m["recipe"]["teacher_outputs"] == "cached" and m["training"]["teacher_logits_seconds"] > 0
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert len(history["loss"]) == 2 and all(v > 0 for v in history["loss"]) and "accuracy" in history
    assert len(history["val_loss"]) == 2 and all(v > 0 for v in history["val_loss"])  # validation gets soft targets too
    _loads_without_optimizer_mismatch(out / "model.keras")


def test_edge_trains_with_the_teacher_seeing_every_augmented_batch(tiny_run, tmp_path):
    out = tmp_path / "edge"
    result = runner.invoke(cli.app, ["train", "--model", "edge", "--limit", "300", "--epochs", "1", "--teacher", str(tiny_run),
                                     "--teacher-outputs", "live", "--out", str(out)])
    assert result.exit_code == 0, result.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["recipe"]["teacher_outputs"] == "live" and m["training"]["teacher_logits_seconds"] is None
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert all(v > 0 for v in history["distillation_loss"])
    _loads_without_optimizer_mismatch(out / "model.keras")


def _loads_without_optimizer_mismatch(path: Path) -> None:
    # The saved optimizer must be the one that trained the weights, or every load warns about its variables.
    import warnings

    import keras

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keras.saving.load_model(path)
    assert not [w for w in caught if "optimizer" in str(w.message)], [str(w.message) for w in caught]


def test_ablation_script_trains_each_cell_once_and_resumes(tiny_run, tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "scripts" / "edge_ablation.py"
    cmd = [sys.executable, str(script), "--runs", str(tmp_path / "runs"), "--json", str(tmp_path / "a.json"), "--seeds", "0",
           "--cells", "distill", "neither", "--epochs", "1", "--limit", "300", "--teacher", str(tiny_run), "--jobs", "2"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("$ ") == 2
    for cell in ("distill", "neither"):  # side by side, each run's output in its own log
        assert "Test accuracy" in (tmp_path / "runs" / f"{cell}-s0.log").read_text()
    a = json.loads((tmp_path / "a.json").read_text())
    assert [(r["cell"], r["distill"], r["augment"], r["epochs"]) for r in a["runs"]] == [("distill", True, "none", 1), ("neither", False, "none", 1)]
    assert a["runs"][0]["teacher"] == str(tiny_run) and a["runs"][1]["teacher"] is None
    assert a["cells"]["neither"]["mean"] == a["runs"][1]["test_accuracy"] and a["cells"]["neither"]["vs_full_points"] is None
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "$ " not in again.stdout, again.stdout + again.stderr  # read back, not retrained
    assert json.loads((tmp_path / "a.json").read_text())["runs"] == a["runs"]
    # A run trained otherwise (here: fewer epochs) must not stand in for the one asked for.
    other = subprocess.run([*cmd, "--epochs", "2"], capture_output=True, text=True, timeout=600)
    assert other.returncode == 1 and "$ " not in other.stdout, other.stdout + other.stderr
    assert "holds a run trained with epochs 1 (wanted 2)" in other.stderr and "Traceback" not in other.stderr


def test_architecture_script_measures_a_candidate_against_the_budget(tmp_path):
    import subprocess
    import sys

    pytest.importorskip("tflite_micro", reason="optional extra `micro` (pip install --pre tflite-micro)")
    script = Path(__file__).resolve().parents[1] / "scripts" / "edge_architectures.py"
    out = tmp_path / "arch.json"
    done = subprocess.run([sys.executable, str(script), "conv14-flat", "--json", str(out)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["name"], row["params"], row["mflop"]) == ("conv14-flat", 26_778, 4.023)
    # int8: about a byte per weight plus per-channel quantization parameters; arena: the 28x28x16 int8 output and more
    assert 26_778 < row["int8_bytes"] < 2 * 26_778 and 28 * 28 * 16 < row["arena_bytes"] < 32 * 1024 and row["fits"]
    bad = subprocess.run([sys.executable, str(script), "resnet"], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "unknown architecture(s) resnet" in bad.stderr and "Traceback" not in bad.stderr
