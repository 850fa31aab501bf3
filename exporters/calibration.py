"""Representative images for int8 calibration: class-balanced, seeded, from the training split only."""

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
