"""Nothing silently wrong: inputs that used to give a confident wrong answer with exit 0 (hardening round 2,
groups 1-5). Each group is tested at its shared mechanism, over the whole kind of input, not one example."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

import runtime
from fmnist_edge import cli
from fmnist_edge import data as fdata
from fmnist_edge.bench import throughput
from fmnist_edge.errors import ConfigError
from fmnist_edge.models import get_preset
from runtime.errors import ManifestError, RuntimeArtifactError
from runtime.images import load_image
from runtime.verify import verify

RELEASE = Path(__file__).parent / "fixtures" / "micro-release"
runner = CliRunner()
# How a viewer turns the stored pixels upright for each EXIF orientation, and the inverse a camera stored.
STORED = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
          4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
          7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}


@pytest.fixture
def release(tmp_path):
    shutil.copytree(RELEASE, tmp_path / "release")
    return tmp_path / "release"


@pytest.fixture(scope="module")
def garments():
    ds = fdata.load(train=False)
    return [ds.x_test[np.flatnonzero(ds.y_test == c)[0]] for c in (0, 1, 7, 9)]  # shirt, trouser, sneaker, boot


# --- 1. photos are read upright, whatever EXIF orientation the camera stored -------------------------

@pytest.mark.parametrize("orientation", sorted(STORED))
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_exif_orientation_is_applied(tmp_path, garments, orientation, fmt):
    for i, g in enumerate(garments):
        # A 3:2 photo of a light garment on a dark ground, large like a phone picture.
        photo = Image.fromarray(g).resize((84, 84), Image.Resampling.BICUBIC)
        canvas = Image.new("L", (126, 84), 0)
        canvas.paste(photo, (21, 0))
        upright = tmp_path / f"upright{i}.png"
        canvas.save(upright)
        stored = canvas.transpose(STORED[orientation]) if STORED[orientation] is not None else canvas
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}_{i}.{fmt.lower()}"
        stored.save(path, format=fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
        got, want = load_image(path).astype(int), load_image(upright).astype(int)
        if fmt == "PNG":
            assert np.array_equal(got, want), orientation
        else:  # JPEG is lossy: the same picture up to compression noise, not a rotated one
            assert np.abs(got - want).mean() < 4, orientation


# --- 2. the model file, not the manifest, decides quantization; class names are held by verify -----

@given(scale=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10)),
       zero_point=st.one_of(st.integers(-(2**40), 2**40), st.none()), which=st.sampled_from(["input", "output"]),
       drop=st.booleans())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_manifest_quantization_that_disagrees_with_the_file_is_refused(release, scale, zero_point, which, drop):
    path = release / "tflite-int8" / "manifest.json"
    original = json.loads(path.read_text())
    m = json.loads(json.dumps(original))
    m[which]["quantization"] = None if drop else {"scale": scale, "zero_point": zero_point}
    path.write_text(json.dumps(m))
    try:
        clf = runtime.load(release / "tflite-int8")
    except (ManifestError, RuntimeArtifactError) as exc:
        assert "quantization" in str(exc)
    else:  # only the file's own values load
        assert clf.manifest[which]["quantization"] == original[which]["quantization"]
    finally:
        path.write_text(json.dumps(original))


def test_float_onnx_manifest_claiming_quantization_is_refused(release):
    path = release / "onnx-int8" / "manifest.json"
    m = json.loads(path.read_text())
    m["input"]["quantization"] = {"scale": 1 / 255, "zero_point": 0}
    path.write_text(json.dumps(m))
    with pytest.raises(RuntimeArtifactError, match="the manifest declares input quantization"):
        runtime.load(release / "onnx-int8")


@pytest.mark.parametrize("tamper", ["reverse", "swap", "rename", "labels_file"])
def test_tampered_class_names_fail_verify(release, tamper):
    art = release / "tflite-int8"
    m = json.loads((art / "manifest.json").read_text())
    names = m["class_names"]
    if tamper == "reverse":
        m["class_names"] = names[::-1]
    elif tamper == "swap":
        m["class_names"] = [names[1], names[0], *names[2:]]
    elif tamper == "rename":
        m["class_names"] = [*names[:9], "Handbag"]
    (art / "manifest.json").write_text(json.dumps(m))
    if tamper == "labels_file":
        (art / "labels.txt").write_text("\n".join(names[::-1]) + "\n")
    r = verify(art)
    assert not r.passed and any("class_names" in p or "labels.txt" in p for p in r.problems)
    assert verify(release / "tflite-float32").passed  # the others are untouched


# --- 3. throughput counts only images that ran; batch sizes are checked ---------------------------

@given(n_images=st.integers(1, 40), batch=st.integers(1, 300))
@settings(max_examples=30, deadline=None)
def test_throughput_runs_every_image_it_counts(n_images, batch):
    images = np.zeros((n_images, 28, 28), np.uint8)
    seen = []
    throughput(lambda x: seen.append(len(x)), images, [batch], min_seconds=0.0)
    assert set(seen) == {batch}  # every call got a full batch, never a truncated one


@pytest.mark.parametrize("batch", [1, 8, 256])
def test_throughput_counts_timed_images_over_timed_seconds(batch, monkeypatch):
    # A fake clock: every call of the model takes exactly 0.1 s and nothing else takes time, so the only right
    # answer is batch / 0.1 images/s (the untimed warm-up call must not count, nor any call twice).
    from fmnist_edge import bench

    clock, calls = [0.0], []

    def model(x):
        calls.append(len(x))
        clock[0] += 0.1

    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    result = throughput(model, np.zeros((5, 28, 28), np.uint8), [batch], min_seconds=0.5)
    assert result[str(batch)] == pytest.approx(batch / 0.1)
    assert len(calls) >= 1 + 5  # the warm-up, then at least 0.5 s of timed calls


@pytest.mark.parametrize("value", ["-5", "0", "100000"])
def test_impossible_batch_sizes_are_refused(value):
    result = runner.invoke(cli.app, ["bench", str(RELEASE), "--batch-size", value])
    assert result.exit_code == 1 and "--batch-size must be between 1 and 4,096" in result.output


# --- 4. recorded Keras outputs are checked before they are believed --------------------------------

@pytest.mark.parametrize("damage", ["shift", "swap_file", "truncate", "manifest_without_sha"])
def test_recorded_keras_outputs_are_verified(release, tmp_path, damage):
    ref = release / "keras-outputs"
    probs = np.load(ref / "test_probs.npy")
    if damage == "shift":
        np.save(ref / "test_probs.npy", np.roll(probs, 1, axis=0))
    elif damage == "swap_file":
        np.save(ref / "test_probs.npy", probs[:, ::-1].copy())
    elif damage == "truncate":
        (ref / "test_probs.npy").write_bytes((ref / "test_probs.npy").read_bytes()[:500])
    else:
        m = json.loads((ref / "manifest.json").read_text())
        del m["files"]["test_probs.npy"]["sha256"]
        (ref / "manifest.json").write_text(json.dumps(m))
    result = runner.invoke(cli.app, ["bench", str(release), "--keras", "recorded", "--runs", "10",
                                     "--json", str(tmp_path / "b.json")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert ("sha256 does not match keras-outputs/manifest.json" in result.output
            or "missing or malformed" in result.output)
    assert not (tmp_path / "b.json").exists()


@pytest.mark.parametrize("evil", ["../../../etc/passwd", "/etc/passwd", "sub/../../model.keras"])
def test_run_manifest_cannot_point_outside_the_run(tmp_path, evil):
    from fmnist_edge.errors import RunError
    from fmnist_edge.runs import read_run

    pytest.importorskip("tensorflow")
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"schema_version": 1, "kind": "keras-run",
                                                   "model_file": {"path": evil, "sha256": "0" * 64}}))
    with pytest.raises(RunError, match="model_file must name a file inside"):
        read_run(run)


# --- 5. numeric options cannot switch off what they guard -----------------------------------------

@pytest.mark.parametrize("flag, value", [("--max-drop", "nan"), ("--min-agreement", "nan"), ("--max-drop", "inf"),
                                         ("--min-agreement", "-0.5"), ("--min-agreement", "1.5"), ("--max-drop", "-1")])
def test_gate_thresholds_must_be_real_numbers(flag, value):
    result = runner.invoke(cli.app, ["bench", str(RELEASE), flag, value])
    assert result.exit_code == 1 and f"{flag} must be a number between" in result.output


def test_gate_fails_on_nan_metrics():
    from fmnist_edge.report import gate

    row = {"kind": "artifact", "status": "ok", "name": "x", "metrics": {"accuracy_delta_points": math.nan, "agreement": math.nan}}
    assert len(gate({"rows": [row]}, 0.5, 0.99)) == 2


@pytest.mark.parametrize("lr", [math.inf, -math.inf, math.nan, 0.0, -1e-3, 1e3])
def test_learning_rates_that_cannot_train_are_refused(lr):
    with pytest.raises(ConfigError, match="--learning-rate must be a positive number"):
        get_preset("mlp").recipe.with_overrides(learning_rate=lr)


def test_json_files_are_strict(tmp_path):
    from fmnist_edge.atomic import write_json

    with pytest.raises(ValueError):
        write_json(tmp_path / "x.json", {"accuracy": math.nan})
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_diverging_training_saves_nothing(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    from fmnist_edge.models import PRESETS, Preset, Recipe
    from fmnist_edge.train import TrainConfig, train

    def diverges(keras):  # a model whose loss is NaN from the first step, as an exploding one ends up
        return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Rescaling(float("nan")),
                                 keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])

    monkeypatch.setitem(PRESETS, "nan", Preset("nan", "tests", 0.0, 7_850, Recipe(3, 64, "adam", 1e-3, 0.1), diverges, ""))
    with pytest.raises(ConfigError, match="training diverged: the loss became nan after 1 epoch"):
        train(TrainConfig(model="nan", seed=0, limit=300, out=str(tmp_path / "run")))
    assert not list(tmp_path.iterdir())
