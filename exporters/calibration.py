"""Representative images for int8 calibration, and the fine-tuning set: class-balanced, seeded, from the training
split only."""

from __future__ import annotations

import numpy as np

from fmnist_edge import data as fdata


def calibration_set(x_fit: np.ndarray, y_fit: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, dict]:
    """Pick `count` images (float32 model input) round-robin over classes; returns them and a record."""
    idx = fdata.subset(y_fit, count, seed)
    return x_fit[idx], {
        "count": int(len(idx)),
        "seed": seed,
        "source": "training split of the run (never validation or test), class-balanced",
        "per_class": np.bincount(y_fit[idx], minlength=10).tolist(),
    }


def fine_tune_set(x_fit: np.ndarray, y_fit: np.ndarray, count: int, seed: int, label_smoothing: float) -> dict:
    """What QAT, pruning and clustering fine-tune on: `count` class-balanced images (0: all), and targets in the
    run's own loss. A model trained on smoothed labels is fine-tuned on them too: plain cross-entropy sharpens its
    outputs (it cost the tuned reference's pruned file 0.3 points more)."""
    idx = fdata.subset(y_fit, count or len(y_fit), seed)
    y = y_fit[idx]
    targets = np.eye(10, dtype=np.float32)[y] * (1 - label_smoothing) + label_smoothing / 10 if label_smoothing else y
    return {"x": x_fit[idx], "y": targets, "label_smoothing": label_smoothing,
            "source": "the run's training split" + ("" if len(idx) == len(y_fit) else
                                                    f", a seeded class-balanced subset of {len(idx):,}")}
