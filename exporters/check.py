"""Parity of an exported artifact against the Keras model it came from, with per-variant tolerances."""

from __future__ import annotations

import numpy as np

from .errors import ParityError

# variant -> minimum top-1 agreement with the model it was converted from, and max |dp| where it applies.
TOLERANCES = {
    "tflite-float32": {"min_agreement": 1.0, "max_abs_diff": 1e-4},
    "onnx-float32": {"min_agreement": 1.0, "max_abs_diff": 1e-4},
    "tflite-int8": {"min_agreement": 0.985},
    "onnx-int8": {"min_agreement": 0.985},
    # compared with the fine-tuned fake-quantized Keras model it was converted from
    "tflite-int8-qat": {"min_agreement": 0.995},
}


def compare(probs: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict:
    """Agreement, max abs probability difference, accuracies and the indices of flipped predictions."""
    pred, ref = probs.argmax(1), reference.argmax(1)
    flipped = np.flatnonzero(pred != ref)
    return {
        "images": int(len(labels)),
        "agreement": float(1.0 - len(flipped) / len(labels)),
        "max_abs_diff": float(np.abs(probs.astype(np.float64) - reference).max()),
        "accuracy": float((pred == labels).mean()),
        "reference_accuracy": float((ref == labels).mean()),
        "flipped": int(len(flipped)),
        "flipped_indices": flipped[:100].tolist(),
    }


def check(variant: str, probs: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict:
    """Compare and enforce the variant's tolerance; raises ParityError (nothing is written then)."""
    result = compare(probs, reference, labels)
    limits = TOLERANCES[variant]
    ok = result["agreement"] >= limits["min_agreement"] and result["max_abs_diff"] <= limits.get("max_abs_diff", np.inf)
    if not ok:
        shown = {"agreement": round(result["agreement"], 5), "max_abs_diff": f"{result['max_abs_diff']:.3g}",
                 "images": result["images"]}
        raise ParityError(variant, shown, {"agreement >=": limits["min_agreement"],
                                           **({"max_abs_diff <=": limits["max_abs_diff"]} if "max_abs_diff" in limits else {})})
    return {**result, "tolerance": limits, "passed": True}
