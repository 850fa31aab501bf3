"""The "this does not look like one of the ten" rule: its class means are the training split's, it flags rendered
photos of other things far more often than real garments, and the web app (app.mjs) applies it as Python does."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("selenium")

import runtime
from fmnist_edge import CLASS_NAMES, data
from fmnist_edge.out_of_class import out_of_class_photos
from fmnist_edge.photo_bench import benchmark_photos
from runtime.images import load_image
from runtime.out_of_class import MEANS, out_of_class
from test_web import app_dir, browser  # noqa: F401 (fixtures)

RELEASE_ART = "artifacts/reference/tflite-int8-web"


def test_the_class_means_are_the_training_splits():
    ds = data.load(download=False)
    record = json.loads(MEANS.read_text())
    assert record["class_names"] == list(CLASS_NAMES)
    for c, stored in enumerate(record["means"]):
        mean = np.frombuffer(base64.b64decode(stored), np.uint8).reshape(28, 28).astype(int)
        assert np.abs(mean - np.round(ds.x_train[ds.y_train == c].mean(0))).max() == 0, CLASS_NAMES[c]


def flagged(photos, clf) -> list[bool]:
    out = []
    for jpeg in photos:
        x = load_image(jpeg)
        out.append(out_of_class(x, clf.predict_proba(x[None])[0]))
    return out


def test_other_things_are_flagged_far_more_often_than_garments():
    """On photos unlike the study's (other seeds): objects (empty photos say "no garment found" before the rule)."""
    clf = runtime.load(Path(__file__).resolve().parents[1] / RELEASE_ART)
    ds = data.load(download=False, train=False)
    objects = [b for b, kind in out_of_class_photos(60, seed=11) if kind not in ("bare wall", "lighting gradient",
                                                                                   "sensor noise", "cloth", "random texture")]
    garments = [b for b, _ in benchmark_photos(ds.x_test[5000:5060], seed=11)]
    on_objects, on_garments = np.mean(flagged(objects, clf)), np.mean(flagged(garments, clf))
    assert on_objects >= 0.3 and on_garments <= 0.1, (on_objects, on_garments)


def test_the_web_app_says_so_as_python_decides(app_dir, browser, tmp_path):
    from fmnist_edge.browser.chromium import serve
    from test_web import RELEASE, STATUS, classify, ready

    clf = runtime.load(RELEASE / "tflite-int8-web")
    ds = data.load(download=False, train=False)
    photos = [b for b, _ in out_of_class_photos(5, seed=12)] + [b for b, _ in benchmark_photos(ds.x_test[:3], 12)]
    expected = flagged(photos, clf)
    assert any(expected) and not all(expected), expected
    answers, said = [], []
    with serve(app_dir) as url:
        ready(browser, url)
        for i, jpeg in enumerate(photos):
            (tmp_path / f"photo-{i}.jpg").write_bytes(jpeg)
            browser.execute_script("window.fmnistLast = null")
            answers.append(classify(browser, tmp_path / f"photo-{i}.jpg"))
            said.append(browser.execute_script(STATUS))
        classes = browser.execute_script("return document.getElementById('classes').textContent")
    assert all("error" not in a for a in answers), answers
    assert [a["unknown"] for a in answers] == expected, said
    assert [s.startswith("This does not look like one of the 10 kinds of garment it knows") for s in said] == expected
    assert "It says so when a photo looks like none of them" in classes, classes


def test_a_model_of_other_classes_gets_no_such_rule():
    from fmnist_edge.browser.app import class_means

    assert len(class_means([n.upper() for n in CLASS_NAMES])) == 10 * 28 * 28
    assert class_means(["cat", "dog"]) is None
