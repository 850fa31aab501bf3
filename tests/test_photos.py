"""Photos as people take them: the dataset's own conversion (runtime.photo) on rendered shop and phone photos of
test-split garments (scripts/make_photo_benchmark.py, a small N here), measured by `bench --photos` the way users run
it, and each step shown to carry its weight."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fmnist_edge import cli

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "artifacts" / "reference"
N = 120  # ten photos per condition: enough to catch a broken step, too few for the recorded 1,200-photo claims
runner = CliRunner()


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("photos")
    subprocess.run([sys.executable, str(ROOT / "scripts/make_photo_benchmark.py"), str(out), "--n", str(N),
                    "--seed", "1"], check=True, capture_output=True, timeout=600)
    return out


@pytest.fixture(scope="module")
def photo_inputs(bench_dir):
    """Each photo decoded once (sRGB pixels), its label and its raw 28x28 twin's label."""
    from runtime.images import decode

    record = json.loads((bench_dir / "photos.json").read_text())
    pixels = [decode(bench_dir / p["file"]) for p in record["photos"]]
    return pixels, np.array([p["label"] for p in record["photos"]]), record


def accuracy(pixels, labels, params=None) -> float:
    import runtime
    from runtime.photo import NoGarmentError, to_fmnist

    clf = runtime.load(RELEASE / "tflite-int8")
    x = []
    for rgb in pixels:
        try:
            x.append(to_fmnist(rgb, params))
        except NoGarmentError:
            x.append(np.zeros((28, 28), np.uint8))
    return float((clf.predict(np.stack(x)) == labels).mean())


def test_the_benchmark_is_test_split_seeded_and_covers_every_condition(bench_dir, photo_inputs):
    from PIL import Image

    _, labels, record = photo_inputs
    conditions = [p["condition"] for p in record["photos"]]
    assert len(record["photos"]) == N and set(conditions) == set(record["conditions"]) and len(set(conditions)) == 12
    assert record["split"] == "test" and len({p["test_index"] for p in record["photos"]}) == N
    phone = next(p for p in record["photos"] if p["condition"].startswith("phone"))
    assert Image.open(bench_dir / phone["file"]).size == (3000, 4000)
    again = subprocess.run([sys.executable, str(ROOT / "scripts/make_photo_benchmark.py"), str(bench_dir.parent / "again"),
                            "--n", "3", "--seed", "1"], check=True, capture_output=True, timeout=300)
    assert again.returncode == 0  # same seed, same photos: the first three are byte-identical
    for p in record["photos"][:3]:
        assert (bench_dir.parent / "again" / p["file"]).read_bytes() == (bench_dir / p["file"]).read_bytes()


def test_bench_photos_puts_photo_accuracy_beside_test_accuracy(bench_dir, tmp_path):
    result = runner.invoke(cli.app, ["bench", str(RELEASE), "--photos", str(bench_dir), "--variant", "tflite-int8",
                                     "--variant", "onnx-float32", "--runs", "20", "--warmup", "2", "--keras", "recorded",
                                     "--no-compute-floor", "--batch-size", "8", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["photos"]["photos"] == N and len(saved["photos"]["conditions"]) == 12
    for row in saved["rows"][1:]:
        p = row["extra"]["photos"]
        assert p["photos"] == N and sum(c["photos"] for c in p["conditions"].values()) == N
        # Small N: the recorded 1,200-photo run holds the 2-point claim; here the conversion must not lose 6.
        assert p["accuracy"] >= p["raw_accuracy"] - 0.06 and p["raw_accuracy"] > 0.85, (row["name"], p)
    assert "photos − raw pts" in result.output and "per photo condition" in (tmp_path / "bench.md").read_text()


@pytest.mark.parametrize("step", ["trim", "level"])
def test_trimming_and_levelling_each_carry_photo_accuracy(photo_inputs, monkeypatch, step):
    """Remove one step and photo accuracy falls far: each step is needed, and this test fails if one goes."""
    import runtime.photo as photo

    pixels, labels, _ = photo_inputs
    full = accuracy(pixels, labels)
    if step == "trim":  # the whole frame fitted into 28x28, as before this conversion
        monkeypatch.setattr(photo, "trim_box", lambda d, threshold, fraction, *edge: (0, d.shape[0] - 1, 0, d.shape[1] - 1))
    else:  # no background model: negated luma, off-white background left grey
        def luma_only(rgb, p):
            y = photo.ycbcr(photo.shrink(rgb, p["work_side"]))[..., 0]
            band = photo.band_mask(*y.shape, p["border_band"])
            return (255 - y if np.median(y[band]) > 127 else y), 0.0
        monkeypatch.setattr(photo, "garment_map", luma_only)
    assert accuracy(pixels, labels) < full - 0.15, step


def test_a_photo_without_a_garment_is_named_never_classified(tmp_path, photo_inputs, bench_dir):
    from PIL import Image

    wall = tmp_path / "shop: wall.jpg"  # ": " in a name must not confuse the message
    Image.new("RGB", (640, 480), (238, 233, 224)).save(wall, quality=80)
    record = photo_inputs[2]
    garment = bench_dir / record["photos"][0]["file"]
    result = runner.invoke(cli.app, ["predict", str(garment), str(wall), "--model", str(RELEASE / "tflite-int8")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    flat = result.output.replace("\n", " ")
    assert re.search(r"wall\.jpg.*no garment found", flat), result.output
    assert flat.count("wall.jpg") == 1, result.output  # named once, by predict
    assert "1 of 2 photo(s) had no garment" in result.output and re.search(r"\d\.\d%", result.output)  # the other one ran


def test_both_languages_read_the_one_parameter_file():
    from runtime.photo import PARAMS

    answer_lines = {"about", "not_sure_below", "unknown_below", "unknown_correlation_below"}
    steps = set(PARAMS) - answer_lines  # the app's "not sure" and out-of-class lines are the answer's, not steps
    static = ROOT / "fmnist_edge/browser/static"
    js = (static / "preprocess.mjs").read_text() + (static / "photo-objects.mjs").read_text()
    used = set(re.findall(r"\bp\.([a-z_]+)", js))
    assert used == steps, used ^ steps
    py = (ROOT / "runtime/photo.py").read_text() + (ROOT / "runtime/photo_objects.py").read_text()
    assert all(f'p["{k}"]' in py for k in steps), [k for k in steps if f'p["{k}"]' not in py]
    app = (ROOT / "fmnist_edge/browser/static/app.mjs").read_text()
    assert all(f"release.photo.{k}" in app for k in answer_lines - {"about"})
    assert all(f'p["{k}"]' in (ROOT / "runtime/out_of_class.py").read_text() for k in ("unknown_below",
               "unknown_correlation_below"))
    # The line is measured, not chosen: the photo study's cut, where answers are right less than two times in three.
    study = json.loads((ROOT / "artifacts/photo_study.json").read_text())
    assert PARAMS["not_sure_below"] == study["confidence"]["not_sure_below"]


@pytest.mark.parametrize("release", ["reference", "edge"])
def test_the_recorded_photo_benchmarks_meet_the_target(release):
    """The shipped releases' recorded `bench --photos` (1,200 photos): each int8 file users run (tflite-int8, the
    app's tflite-int8-web, onnx-int8) within 2 points of the same garments' raw accuracy on average, and no
    condition more than 5 points below it."""
    saved = json.loads((ROOT / "artifacts" / release / "photo-bench.json").read_text())
    assert saved["photos"]["photos"] >= 1000 and len(saved["photos"]["conditions"]) == 12
    rows = {r["name"]: r["extra"]["photos"] for r in saved["rows"] if "photos" in r["extra"]}
    for variant in ("tflite-int8", "tflite-int8-web", "onnx-int8"):
        p = rows[variant]
        assert p["accuracy"] >= p["raw_accuracy"] - 0.02 - 1e-9, (variant, p["accuracy"], p["raw_accuracy"])
        for name, c in p["conditions"].items():
            assert c["accuracy"] >= c["raw_accuracy"] - 0.05 - 1e-9, (variant, name, c)
