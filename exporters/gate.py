"""The variant's gate: parity of an exported artifact against the Keras model it came from, with the registry's
per-variant tolerances (runtime.variants) and the runtime's comparison (runtime.compare), and what would help when
it is missed."""

from __future__ import annotations

import numpy as np

from runtime.compare import compare
from runtime.variants import VARIANTS

from .errors import ConversionError, ParityError, PortabilityError


def tolerance(variant: str) -> dict:
    """The variant's export-time tolerance, as declared in the registry."""
    spec = VARIANTS[variant]
    return {"min_agreement": spec.min_agreement,
            **({"max_abs_diff": spec.max_abs_diff} if spec.max_abs_diff is not None else {})}


def passes_gate(variant: str, probs: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict:
    """Compare and enforce the variant's tolerance; raises ParityError (nothing is written then)."""
    result = compare(probs, reference, labels)
    tol = tolerance(variant)
    if result["agreement"] < tol["min_agreement"] or result["max_abs_diff"] > tol.get("max_abs_diff", np.inf):
        shown = {"agreement": round(result["agreement"], 5), "max_abs_diff": f"{result['max_abs_diff']:.3g}",
                 "images": result["images"]}
        raise ParityError(variant, shown, {"agreement >=": tol["min_agreement"],
                                           **({"max_abs_diff <=": tol["max_abs_diff"]} if "max_abs_diff" in tol else {})})
    return {**result, "tolerance": tol, "passed": True}


def remedy(variant: str, exc: Exception, calibration_images: int) -> str:
    """What would help a variant that was refused, in the terms of the export command's options."""
    spec = VARIANTS[variant]
    leave_out = "or leave it out (name the others with --variant)"
    if isinstance(exc, PortabilityError):
        return ("choose a portable scheme (for ONNX: --onnx-int8-scheme u8u8 or u8s8-reduce-range), " + leave_out)
    if isinstance(exc, ConversionError):
        return f"the converter cannot build this model as {variant}; rebuild the model from supported layers, {leave_out}"
    if spec.remedy:
        return f"{spec.remedy}, {leave_out}"
    if spec.int8_kernels:
        more = max(2000, 4 * calibration_images)
        scheme = " or another --onnx-int8-scheme" if spec.format == "onnx" else ""
        explain = (f"see which layer loses it (fmnist-edge explain RUN --variant {variant}) and let export repair it "
                   "(--repair auto), or " if spec.calibrated_int8 else "")
        return (f"{explain}more calibration images (--calibration-images {more}; this export used {calibration_images})"
                f"{scheme}, or the QAT variant (--qat), which trains the model for int8, {leave_out}")
    return ("a float variant should compute the Keras model exactly; this points at a converter problem: report it "
            f"with the run's manifest.json, {leave_out}")
