"""Does a photo look like one of Fashion-MNIST's ten classes? A photo of something else (a cap, a mug) still gets
the nearest class, often with a middling probability. The rule (the web app's, app.mjs `outOfClass`, and this
module's): the model is unsure (top probability under photo.json's `unknown_below`) and the 28x28 input looks little
like the average training image of the class it chose (Pearson correlation under `unknown_correlation_below`).
Both thresholds were chosen on a tuning set of rendered photos and the rates reported on a held-out one
(scripts/out_of_class_study.py -> artifacts/out_of_class.json). The class means (class_means.json) are the training
split's, rounded to uint8."""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from .photo import PARAMS

MEANS = Path(__file__).with_name("class_means.json")


@lru_cache(maxsize=1)
def class_means() -> tuple[list[str], np.ndarray]:
    """(class names, (10, 28, 28) uint8 mean training image of each)."""
    record = json.loads(MEANS.read_text())
    means = np.stack([np.frombuffer(base64.b64decode(m), np.uint8).reshape(28, 28) for m in record["means"]])
    return record["class_names"], means


def correlation(x: np.ndarray, mean: np.ndarray) -> float:
    """Pearson correlation of two images' pixels (0 where either is flat)."""
    a, b = x.astype(np.float64).ravel(), mean.astype(np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def out_of_class(x: np.ndarray, probs: np.ndarray, params: dict | None = None) -> bool:
    """Whether the (28, 28) uint8 input `x`, answered with `probs` (Fashion-MNIST's ten classes, in order), does not
    look like one of the ten."""
    p = params or PARAMS
    c = int(np.argmax(probs))
    return bool(probs[c] < p["unknown_below"] and correlation(x, class_means()[1][c]) < p["unknown_correlation_below"])
