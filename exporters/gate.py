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


# The accuracy rule: an int8 file that agrees less than its gate can still be as good as the model. A model with
# flat decision boundaries (undertrained, or BatchNormalization after ReLU) has many images whose top two classes are
# near-tied; int8 rounding flips those both ways, so agreement drops while accuracy does not. Such a file is accepted
# when it (1) loses at most ACCURACY_BUDGET of accuracy overall, (2) loses at most CLASS_BUDGET on any one class beyond
# the chance movement of that class's own flipped images (no class is sacrificed for the others), (3) agrees with the
# model to the gate's own bar on the images the model is sure of (top-1 probability >= CONFIDENT), which are at least
# MIN_CONFIDENT of the test images, and (4) still agrees AGREEMENT_FLOOR overall. The shipped releases pass the plain gate and never use it; docs/guides/own-model.md gives
# the zoo's numbers.
ACCURACY_BUDGET = 0.005
CLASS_BUDGET = 0.04
CONFIDENT = 0.9
MIN_CONFIDENT = 0.3
AGREEMENT_FLOOR = 0.95


def accuracy_rule(probs: np.ndarray, reference: np.ndarray, labels: np.ndarray, min_agreement: float) -> dict:
    """The accuracy rule's numbers for an int8 file's outputs against its model's, and whether it holds."""
    pred, ref = probs.argmax(1), reference.argmax(1)
    sure = reference.max(1) >= CONFIDENT
    # each class's drop beyond what its own flips allow by chance (two standard errors: a class of n images with f of
    # them flipped either way moves by up to 2 * sqrt(f) / n without any bias)
    excess = {}
    for c in np.unique(labels):
        mine = labels == c
        drop = float((ref[mine] == c).mean() - (pred[mine] == c).mean())
        excess[int(c)] = drop - 2 * np.sqrt(float((pred[mine] != ref[mine]).sum())) / mine.sum()
    numbers = {
        "accuracy_drop": round(float((ref == labels).mean() - (pred == labels).mean()), 5),
        "worst_class_drop": round(max(0.0, max(excess.values())), 5),
        "confident_share": round(float(sure.mean()), 4),
        "confident_agreement": round(float((pred[sure] == ref[sure]).mean()) if sure.any() else 0.0, 5),
        "agreement": round(float((pred == ref).mean()), 5),
    }
    holds = (numbers["accuracy_drop"] <= ACCURACY_BUDGET and numbers["worst_class_drop"] <= CLASS_BUDGET
             and numbers["confident_share"] >= MIN_CONFIDENT and numbers["confident_agreement"] >= min_agreement
             and numbers["agreement"] >= AGREEMENT_FLOOR)
    return {**numbers, "holds": bool(holds),
            "rule": f"accuracy drop <= {ACCURACY_BUDGET:.1%}, no class down more than {CLASS_BUDGET:.0%} beyond the "
                    "noise of its own flips (2 standard errors), agreement >= "
                    f"{min_agreement:.1%} on the images the model gives >= {CONFIDENT:.0%} (at least {MIN_CONFIDENT:.0%} "
                    f"of them), agreement >= {AGREEMENT_FLOOR:.0%} overall"}


def passes_gate(variant: str, probs: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict:
    """Compare and enforce the variant's tolerance; raises ParityError (nothing is written then). An int8 variant that
    misses only its agreement bar passes by the accuracy rule when that holds; the result then says so."""
    result = compare(probs, reference, labels)
    tol = tolerance(variant)
    diff_ok = result["max_abs_diff"] <= tol.get("max_abs_diff", np.inf)
    if result["agreement"] >= tol["min_agreement"] and diff_ok:
        return {**result, "tolerance": tol, "passed": True}
    rule = accuracy_rule(probs, reference, labels, tol["min_agreement"]) if VARIANTS[variant].int8_kernels else None
    if rule is not None and rule["holds"] and diff_ok:
        return {**result, "tolerance": tol, "passed": True, "passed_by": "accuracy rule", "accuracy_rule": rule}
    shown = {"agreement": round(result["agreement"], 5), "accuracy": round(result["accuracy"], 5),
             "model_accuracy": round(result["reference_accuracy"], 5),
             "max_abs_diff": f"{result['max_abs_diff']:.3g}", "images": result["images"]}
    if rule is not None:
        shown["accuracy_rule"] = {k: v for k, v in rule.items() if k != "rule"}
    raise ParityError(variant, shown, {"agreement >=": tol["min_agreement"],
                                       **({"max_abs_diff <=": tol["max_abs_diff"]} if "max_abs_diff" in tol else {})})


MORE_CALIBRATION = 2000  # calibration images past which more of them is not advice: the ranges have settled


def remedy(variant: str, exc: Exception, calibration_images: int, qat: str | None = None, keras: bool = True) -> str:
    """What would help a variant that was refused, in the terms of the export command's options: only remedies this
    export did not already try and that can apply to this model. `qat`: what this export did with tflite-int8-qat
    ('written', 'skipped', 'refused'; None: not asked for); `keras`: False for a model brought as ONNX (explain, the
    repairs and QAT need a Keras model)."""
    from .errors import RepairFailed

    spec = VARIANTS[variant]
    leave_out = "or leave it out (name the others with --variant)"
    if isinstance(exc, PortabilityError):
        return ("choose a portable scheme (for ONNX: --onnx-int8-scheme u8u8 or u8s8-reduce-range), " + leave_out)
    if isinstance(exc, ConversionError):
        return f"the converter cannot build this model as {variant}; rebuild the model from supported layers, {leave_out}"
    if spec.remedy:
        return f"{spec.remedy}, {leave_out}"
    if spec.int8_kernels:
        steps = []
        if spec.calibrated_int8 and keras:
            steps.append(f"see which layer loses it (fmnist-edge explain RUN --variant {variant})" +
                         ("" if isinstance(exc, RepairFailed) else " and let export repair it (--repair auto)"))
        if calibration_images < MORE_CALIBRATION:
            steps.append(f"more calibration images (--calibration-images {MORE_CALIBRATION}; this export used "
                         f"{calibration_images})")
        if spec.format == "onnx":
            steps.append("another --onnx-int8-scheme")
        if qat == "written":
            steps.append("use tflite-int8-qat, which this export wrote (trained for int8)")
        elif qat is None and variant != "tflite-int8-qat" and keras:
            steps.append("the QAT variant (--qat), which trains the model for int8")
        return ", or ".join(steps + [leave_out.removeprefix("or ")])
    return ("a float variant should compute the Keras model exactly; this points at a converter problem: report it "
            f"with the run's manifest.json, {leave_out}")
