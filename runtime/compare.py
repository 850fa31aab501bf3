"""Agreement, accuracy and flipped images of one set of outputs against another: computed here once, in
the lowest tier, and used by export's parity check, bench, verify, the CPU matrix and the micro report."""

from __future__ import annotations

import numpy as np


def compare(probs: np.ndarray, reference: np.ndarray, labels: np.ndarray | None = None, keep: int = 100) -> dict:
    """Top-1 agreement and max |probability difference| of `probs` against `reference` (same images, same
    order), the indices of the first `keep` flipped predictions, and both accuracies when labels are given.
    Predictions may be passed instead of probabilities (1-D); max_abs_diff is then None."""
    probs, reference = np.asarray(probs), np.asarray(reference)
    if len(probs) != len(reference) or probs.ndim != reference.ndim:
        raise ValueError(f"cannot compare outputs of shape {probs.shape} with {reference.shape}")
    pred = probs.argmax(1) if probs.ndim == 2 else probs
    ref = reference.argmax(1) if reference.ndim == 2 else reference
    flipped = np.flatnonzero(pred != ref)
    n = max(len(pred), 1)
    out = {
        "images": int(len(pred)),
        "agreement": float(1.0 - len(flipped) / n),
        "max_abs_diff": float(np.abs(probs.astype(np.float64) - reference).max()) if probs.ndim == 2 and probs.size else None,
        "flipped": int(len(flipped)),
        "flipped_indices": flipped[:keep].tolist(),
    }
    if labels is not None:
        out["accuracy"] = float((pred == labels).mean())
        out["reference_accuracy"] = float((ref == labels).mean())
    return out
