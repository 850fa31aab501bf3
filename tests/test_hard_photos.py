"""Photos round 2: the hard photo sets (fmnist_edge/hard_photos.py) and the conversion's object steps
(runtime/photo_objects.py: the largest object, deskew; runtime/photo.py: a background model a garment across the
frame's side does not pull, lines run off the frame trimmed), each on photos made for the case, and the browser's
preprocess.mjs within 1 grey level of Python on the hard photos."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import runtime.photo as photo
from fmnist_edge import data as fdata
from fmnist_edge import hard_photos
from fmnist_edge.photo_bench import garment_alpha
from runtime.photo_objects import largest_object, skew

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "artifacts" / "reference"
P = photo.PARAMS


@pytest.fixture(scope="module")
def test_split():
    ds = fdata.load(None, download=False, train=False)
    return ds.x_test, ds.y_test


def first(y, cls: int, k: int = 0) -> int:
    return int(np.flatnonzero(y == cls)[k])


def plain_photo(x28, tilt: float = 0.0, left: int | None = None, size: float = 0.7, second=None, side: int = 480):
    """A dark garment on a flat light background (`left`: where its box starts, negative: cut by the frame;
    `second`: another garment, 0.3 of the frame, to the right)."""
    a = np.zeros((side, side))
    for x, box, at in ((x28, size, left), (second, 0.3, int(0.66 * side))):
        if x is None:
            continue
        g = garment_alpha(x, (int(box * side), int(box * side)), tilt if x is x28 else 0)
        top = (side - g.shape[0]) // 2 if x is x28 else int(0.35 * side)
        at = (side - g.shape[1]) // 2 if at is None else at
        y0, x0 = max(0, top), max(0, at)
        part = g[y0 - top:, x0 - at:][:side - y0, :side - x0]
        where = (slice(y0, y0 + part.shape[0]), slice(x0, x0 + part.shape[1]))
        a[where] = np.maximum(a[where], part)
    grey = (235 * (1 - a) + 40 * a).round().astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def kept_cells(rgb):
    d, noise = photo.garment_map(rgb, P)
    threshold = max(P["min_threshold"], P["noise_threshold_mult"] * noise)
    trim_at = max(threshold, P["trim_relative"] * photo.quantile(d[d > threshold], P["stretch_quantile"]))
    return largest_object(d, trim_at, P)


def test_the_larger_of_two_garments_is_the_one_converted(test_split):
    x, y = test_split
    trouser, bag = x[first(y, 1)], x[first(y, 8)]
    alone = plain_photo(trouser, left=20, size=0.6)
    two = plain_photo(trouser, left=20, size=0.6, second=bag)
    assert kept_cells(two)[2] == 1  # one other object, as large as a fifth of the garment, cleared
    assert np.array_equal(photo.to_fmnist(two), photo.to_fmnist(alone))
    without = {**P, "object_cell": 0}  # the rule off: the bag is trimmed in with the trouser
    assert np.abs(photo.to_fmnist(two, without).astype(int) - photo.to_fmnist(alone, without)).mean() > 20


def test_one_garment_in_several_pieces_is_kept_whole(test_split):
    """Sandals (straps apart), bags (a handle), trousers (two legs): the rule leaves a single garment's photo as it
    was; at most a faint edge pixel moves (cleared specks outside the kept cells)."""
    import runtime

    x, y = test_split
    clf = runtime.load(RELEASE / "tflite-int8")
    idx = np.concatenate([np.flatnonzero(y == c)[:12] for c in range(10)])
    rule_on = {**P, "deskew_max_degrees": 0}
    rule_off = {**P, "object_cell": 0}
    on = np.stack([photo.to_fmnist(plain_photo(x[i]), rule_on) for i in idx])
    off = np.stack([photo.to_fmnist(plain_photo(x[i]), rule_off) for i in idx])
    per_photo = np.abs(on.astype(int) - off).mean(axis=(1, 2))
    assert per_photo.max() < 4, (idx[per_photo.argmax()], per_photo.max())
    assert (clf.predict(on) == clf.predict(off)).mean() >= 0.97


@pytest.mark.parametrize("cls, degrees", [(1, 12), (1, -18), (3, 15)])
def test_a_tilted_garment_is_turned_upright(test_split, cls, degrees):
    x, y = test_split
    garment = x[first(y, cls)]
    tilted = plain_photo(garment, tilt=degrees)
    assert abs(skew(kept_cells(tilted)[1], P) + degrees) <= 3  # the turn that undoes the tilt
    upright = photo.to_fmnist(plain_photo(garment)).astype(int)
    with_deskew = np.abs(photo.to_fmnist(tilted).astype(int) - upright).mean()
    without = np.abs(photo.to_fmnist(tilted, {**P, "deskew_max_degrees": 0}).astype(int) - upright).mean()
    assert with_deskew < 0.5 * without, (with_deskew, without)


def test_an_upright_garment_is_left_as_it_is(test_split):
    x, y = test_split
    for cls in range(10):
        assert skew(kept_cells(plain_photo(x[first(y, cls)]))[1], P) == 0, cls


def test_a_garment_across_the_frames_side_does_not_pull_the_background(test_split):
    """A trouser leg running down the whole left edge covers much of the border band the background is modelled
    on: the model starts from the band's median colour, so the noise floor stays that of the background."""
    x, y = test_split
    cut = plain_photo(x[first(y, 1)], left=-40, size=0.9)
    assert (cut[:, 0, 0] < 100).mean() > 0.5  # the garment is on most of the left edge
    _, noise = photo.garment_map(cut, P)
    assert noise < P["min_threshold"] / P["noise_threshold_mult"]
    out = photo.to_fmnist(cut)
    assert (out > 100).any(axis=1).sum() >= 24  # the trouser, top to bottom


def test_the_two_sets_share_no_garment_and_the_held_out_one_has_its_own_conditions():
    tuning, held_out = (set(hard_photos.set_indices(w, 10_000, 5_000).tolist()) for w in ("tuning", "held-out"))
    assert len(tuning) == len(held_out) == 5_000 and not tuning & held_out
    extra = set(hard_photos.conditions("held-out")) - set(hard_photos.conditions("tuning"))
    assert extra == set(hard_photos.HELD_OUT_ONLY)
    assert len(hard_photos.conditions("tuning")) == 12
    for key in hard_photos.STYLE["tuning"]:
        assert hard_photos.STYLE["tuning"][key] != hard_photos.STYLE["held-out"][key], key


@pytest.fixture(scope="module")
def held_out_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("held-out")
    subprocess.run([sys.executable, str(ROOT / "scripts/make_photo_benchmark.py"), str(out), "--set", "held-out",
                    "--n", "14"], check=True, capture_output=True, timeout=300)
    return out


def test_make_photo_benchmark_writes_a_set_bench_reads(held_out_dir, test_split):
    from typer.testing import CliRunner

    from fmnist_edge import cli

    _, y = test_split
    record = json.loads((held_out_dir / "photos.json").read_text())
    assert record["set"] == "held-out" and record["seed"] == hard_photos.SETS["held-out"]
    assert [p["condition"] for p in record["photos"]] == hard_photos.conditions("held-out")
    assert all(y[p["test_index"]] == p["label"] for p in record["photos"])
    result = CliRunner().invoke(cli.app, ["bench", str(RELEASE), "--photos", str(held_out_dir), "--variant",
                                          "tflite-int8", "--runs", "10", "--warmup", "1", "--keras", "recorded",
                                          "--no-compute-floor", "--out", str(held_out_dir / "bench")])
    assert result.exit_code == 0, result.output
    saved = json.loads((held_out_dir / "bench" / "bench.json").read_text())
    assert saved["photos"]["photos"] == 14
    assert set(saved["photos"]["conditions"]) == set(hard_photos.conditions("held-out"))


def test_the_browser_converts_hard_photos_as_python_does(test_split):
    """Both sets, every condition (a hanger, a hand, two garments, a cut, a tilt): preprocess.mjs and
    photo-objects.mjs in Chromium against runtime.photo, within 1 grey level, the same answers."""
    from fmnist_edge.browser.photos import photo_parity

    x, y = test_split
    photos = []
    for which in hard_photos.SETS:
        idx = hard_photos.set_indices(which, len(y), len(hard_photos.conditions(which)))
        photos += [(f"{which}-{c}.jpg", jpeg) for jpeg, c in hard_photos.photo_set(x[idx], y[idx], which, 5)]
    parity = photo_parity(RELEASE, photos)
    assert parity["photos"] == 26 and parity["max_grey_diff"] <= 1 and parity["top1_agreement"] == 1.0, parity


def test_the_round2_study_reports_both_sets_and_every_ablation(tmp_path):
    out = tmp_path / "round2.json"
    done = subprocess.run([sys.executable, str(ROOT / "scripts/photo_round2_study.py"), "--per-condition", "1",
                           "--json", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(out.read_text())
    assert set(record["sets"]) == {"tuning", "held-out"}
    for which, block in record["sets"].items():
        assert block["photos"] == len(hard_photos.conditions(which))
        for ablation in block["conversions"].values():
            for table in ablation.values():
                assert set(table["conditions"]) == set(hard_photos.conditions(which))
                assert 0 <= table["accuracy"] <= 1 and 0 <= table["raw_accuracy"] <= 1
