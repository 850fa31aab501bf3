"""Parity of an exported artifact against the Keras model it came from, with the registry's per-variant
tolerances (runtime.variants) and the runtime's comparison (runtime.compare)."""

from __future__ import annotations

import numpy as np

from runtime.compare import compare
from runtime.variants import VARIANTS

from .errors import ParityError


def tolerance(variant: str) -> dict:
    """The variant's export-time tolerance, as declared in the registry."""
    spec = VARIANTS[variant]
    return {"min_agreement": spec.min_agreement,
            **({"max_abs_diff": spec.max_abs_diff} if spec.max_abs_diff is not None else {})}


def check(variant: str, probs: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict:
    """Compare and enforce the variant's tolerance; raises ParityError (nothing is written then)."""
    result = compare(probs, reference, labels)
    tol = tolerance(variant)
    if result["agreement"] < tol["min_agreement"] or result["max_abs_diff"] > tol.get("max_abs_diff", np.inf):
        shown = {"agreement": round(result["agreement"], 5), "max_abs_diff": f"{result['max_abs_diff']:.3g}",
                 "images": result["images"]}
        raise ParityError(variant, shown, {"agreement >=": tol["min_agreement"],
                                           **({"max_abs_diff <=": tol["max_abs_diff"]} if "max_abs_diff" in tol else {})})
    return {**result, "tolerance": tol, "passed": True}
