"""The export gate's accuracy rule and its advice, on constructed outputs (exporters.gate): an int8 file that flips
near-tied images both ways passes, one that loses accuracy, sacrifices a class or disagrees where the model is sure
does not; a refusal shows the accuracy beside the agreement and names only remedies not yet tried."""

from __future__ import annotations

import numpy as np
import pytest

from exporters import gate
from exporters.errors import ParityError, RepairFailed

N, CLASSES = 2000, 10


def model_outputs(sure_share: float, seed: int = 0):
    """(probabilities, labels, sure): `sure_share` of images at 0.95 on their top class, the rest near-tied (0.46 and
    0.44) between the top class and a second one, which is the label where the top is wrong; 90% of tops are right."""
    rng = np.random.default_rng(seed)
    labels = np.arange(N) % CLASSES
    top = np.where(rng.random(N) < 0.9, labels, (labels + 1) % CLASSES)
    second = np.where(top == labels, (top + 1) % CLASSES, labels)
    probs = np.full((N, CLASSES), 0.01)
    sure = rng.random(N) < sure_share
    probs[np.arange(N), top] = np.where(sure, 0.95, 0.46)
    probs[np.arange(N), second] = np.where(sure, 0.01, 0.44)
    return probs / probs.sum(1, keepdims=True), labels, sure


def flipped(probs, idx):
    """The same outputs with images `idx` flipped to their second class."""
    out = probs.copy()
    order = np.argsort(-probs, axis=1)
    top, second = order[:, 0], order[:, 1]
    out[idx, top[idx]], out[idx, second[idx]] = probs[idx, second[idx]], probs[idx, top[idx]]
    return out


def test_near_tied_flips_both_ways_pass_by_the_accuracy_rule_and_say_so():
    probs, labels, sure = model_outputs(0.6)
    unsure = np.flatnonzero(~sure)
    right = unsure[probs[unsure].argmax(1) == labels[unsure]][:30]  # 30 right -> wrong ...
    wrong = unsure[probs[unsure].argmax(1) != labels[unsure]][:30]  # ... and 30 wrong -> right: accuracy unchanged
    got = flipped(probs, np.concatenate([right, wrong]))
    result = gate.passes_gate("tflite-int8", got, probs, labels)
    assert result["agreement"] == pytest.approx(1 - 60 / N) and result["agreement"] < 0.985
    assert result["passed_by"] == "accuracy rule" and result["accuracy_rule"]["accuracy_drop"] == 0
    assert result["accuracy_rule"]["confident_agreement"] == 1.0


@pytest.mark.parametrize("case", ["accuracy lost", "a class sacrificed", "sure images flipped", "few sure images"])
def test_the_accuracy_rule_refuses_what_it_must_and_the_refusal_shows_the_accuracy(case):
    probs, labels, sure = model_outputs(0.1 if case == "few sure images" else 0.6)
    right = np.flatnonzero(probs.argmax(1) == labels)
    pool = right[~sure[right]] if case != "sure images flipped" else right[sure[right]]
    if case == "a class sacrificed":  # 30 of class 3 lost, 30 of the others won: accuracy unchanged overall
        wrong = np.flatnonzero((probs.argmax(1) != labels) & ~sure & (labels != 3))[:30]
        idx = np.concatenate([pool[labels[pool] == 3][:30], wrong])
    else:
        idx = pool[:40]
    with pytest.raises(ParityError) as exc:
        gate.passes_gate("tflite-int8", flipped(probs, idx), probs, labels)
    text = str(exc.value)
    assert "accuracy=" in text and "model_accuracy=" in text and "nor by the accuracy rule" in text
    rule = exc.value.numbers["accuracy_rule"]
    assert not rule["holds"]
    assert {"accuracy lost": rule["accuracy_drop"] > gate.ACCURACY_BUDGET,
            "a class sacrificed": rule["worst_class_drop"] > gate.CLASS_BUDGET,
            "sure images flipped": rule["confident_agreement"] < 0.985,
            "few sure images": rule["confident_share"] < gate.MIN_CONFIDENT}[case]


def test_float_variants_have_no_accuracy_rule():
    probs, labels, sure = model_outputs(0.6)
    with pytest.raises(ParityError) as exc:
        gate.passes_gate("tflite-float32", flipped(probs, np.flatnonzero(~sure)[:2]), probs, labels)
    assert "accuracy_rule" not in exc.value.numbers


def test_remedies_name_only_what_was_not_tried():
    plain = ParityError("tflite-int8", {"agreement": 0.97}, {"agreement >=": 0.985})
    repaired = RepairFailed("tflite-int8", plain, [{"step": "plain post-training int8", "agreement": 0.97}], [])
    first = gate.remedy("tflite-int8", plain, 500)
    assert "--repair auto" in first and "--calibration-images 2000" in first and "--qat" in first
    after = gate.remedy("tflite-int8", repaired, 2000, qat="skipped")
    assert "--repair auto" not in after and "--calibration-images" not in after and "qat" not in after.lower()
    assert "fmnist-edge explain" in after and "leave it out" in after
    assert "tflite-int8-qat, which this export wrote" in gate.remedy("tflite-int8", repaired, 500, qat="written")
