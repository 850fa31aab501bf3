"""Per-class precision/recall/F1 and the confusion matrix, checked against hand-computed values."""

import numpy as np
import pytest

from fmnist_edge.metrics import classification_report, confusion_matrix


def test_confusion_matrix_orientation():
    cm = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]  # rows: truth, columns: prediction


def test_report_hand_computed():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    rep = classification_report(y_true, y_pred)
    c0, c1, c2, c3 = rep["per_class"][:4]
    assert rep["accuracy"] == pytest.approx(4 / 6)
    assert (c0["precision"], c0["recall"], c0["support"]) == (1.0, pytest.approx(2 / 3), 3)
    assert c0["f1"] == pytest.approx(0.8)
    assert (c1["precision"], c1["recall"]) == (0.5, 0.5)
    assert (c2["precision"], c2["recall"]) == (0.5, 1.0)
    # A class that never occurs and is never predicted gets zeros, not NaN.
    assert (c3["precision"], c3["recall"], c3["f1"], c3["support"]) == (0.0, 0.0, 0.0, 0)
    assert c0["class"] == "T-shirt/top" and rep["per_class"][9]["class"] == "Ankle boot"
    assert np.array(rep["confusion_matrix"]).sum() == 6
