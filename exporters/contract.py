"""The input contract of a model the toolkit did not train: what it expects its pixels to be.

A device always feeds the exported graph plain pixels as `uint8 / 255` (the `image` input, in [0, 1]). A
model trained on other inputs -- raw 0-255 pixels, [-1, 1] (`x / 127.5 - 1`, MobileNet style), or pixels
standardised with a mean and standard deviation -- gets that conversion folded into the exported graph as
one affine layer, `model_input = image * scale + offset`, where

    model_input = (LO + (HI - LO) * image - MEAN) / STD        (--input-range LO,HI --input-norm MEAN,STD)

so the preprocessing is the same for every artifact and every device, and the manifest records which
contract was folded in. Because a wrong contract exports without any error (every variant agrees with the
Keras model, which is fed the same wrong inputs), the model is also evaluated on real test images under
each common convention before anything is written, and refused when the declared one is clearly worse.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .errors import ExportError

# Fashion-MNIST's training pixels, in [0, 1] units (72.94 and 90.02 in 0-255 units); a test recomputes them.
FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530
# Refuse when another convention beats the declared one by more than this on the sample (a model evaluated
# on its own convention is never 3 points worse than on a wrong one; sampling noise on 1,000 paired images
# is well under 1 point).
MARGIN = 0.03
SAMPLE_IMAGES = 1000  # class-balanced real test images each convention is scored on


@dataclass(frozen=True)
class InputContract:
    """Pixels mapped to [low, high], then standardised with (mean, std) in those units."""

    low: float = 0.0
    high: float = 1.0
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self):
        values = (self.low, self.high, self.mean, self.std)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise ExportError(f"the input contract must be finite numbers, got range {self.low},{self.high} and "
                              f"norm {self.mean},{self.std}.")
        if not self.low < self.high:
            raise ExportError(f"--input-range LO,HI needs LO < HI, got {self.low:g},{self.high:g} (e.g. 0,255 or -1,1).")
        if not self.std > 0:
            raise ExportError(f"--input-norm MEAN,STD needs a positive STD, got {self.std:g}.")

    @property
    def scale(self) -> float:
        return (self.high - self.low) / self.std

    @property
    def offset(self) -> float:
        return (self.low - self.mean) / self.std

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0

    def apply(self, image01: np.ndarray) -> np.ndarray:
        """What the model receives for `image01` (pixels / 255): the folded layer's arithmetic, in float32."""
        return image01 * np.float32(self.scale) + np.float32(self.offset)

    @property
    def options(self) -> str:
        """The export options that declare this contract."""
        parts = [] if (self.low, self.high) == (0.0, 1.0) else [f"--input-range {self.low:g},{self.high:g}"]
        if (self.mean, self.std) != (0.0, 1.0):
            parts.append(f"--input-norm {self.mean:g},{self.std:g}")
        return " ".join(parts) or "--input-range 0,1"

    def describe(self) -> str:
        text = f"[{self.low:g}, {self.high:g}]"
        return text if (self.mean, self.std) == (0.0, 1.0) else f"{text} standardised (mean {self.mean:g}, std {self.std:g})"

    def to_dict(self) -> dict:
        return {**asdict(self), "scale": self.scale, "offset": self.offset, "description": self.describe()}


CONVENTIONS = {
    "[0,1]": InputContract(),
    "[0,255]": InputContract(0.0, 255.0),
    "[-1,1]": InputContract(-1.0, 1.0),
    "fashion-mnist mean/std": InputContract(mean=FMNIST_MEAN, std=FMNIST_STD),
}


def _pair(text: str, option: str, example: str) -> tuple[float, float]:
    try:
        a, b = (float(part) for part in str(text).split(","))
    except ValueError:
        raise ExportError(f"{option} expects two numbers separated by a comma, e.g. {option} {example}; got {text!r}.") from None
    return a, b


def resolve(input_range: str | None = None, input_norm: str | None = None, input_scale: float | None = None) -> InputContract | None:
    """The contract the user declared (None: nothing declared, [0, 1] is assumed and checked)."""
    if input_scale is not None:
        if input_range is not None:
            raise ExportError("--input-scale S is shorthand for --input-range 0,S; give one of them, not both.")
        if not (isinstance(input_scale, (int, float)) and math.isfinite(input_scale) and input_scale > 0):
            raise ExportError(f"--input-scale must be a positive number (255 for a model trained on raw 0-255 pixels), "
                              f"got {input_scale}.")
        input_range = f"0,{input_scale!r}"
    if input_range is None and input_norm is None:
        return None
    low, high = _pair(input_range, "--input-range", "-1,1") if input_range is not None else (0.0, 1.0)
    mean, std = _pair(input_norm, "--input-norm", f"{FMNIST_MEAN},{FMNIST_STD}") if input_norm is not None else (0.0, 1.0)
    return InputContract(low, high, mean, std)


def score(predict, x01: np.ndarray, y: np.ndarray, contracts: dict[str, InputContract]) -> dict[str, float]:
    """Top-1 accuracy of `predict` (model inputs -> scores) on x01 under each contract."""
    return {name: float((np.asarray(predict(c.apply(x01))).argmax(1) == y).mean()) for name, c in contracts.items()}


def choose_contract(predict, x01: np.ndarray, y: np.ndarray, declared: InputContract | None, source: str) -> dict:
    """Score the model under the common conventions (and the declared contract); refuse a clearly worse one.

    Returns what the manifest records: the contract used, whether it was declared, and every score."""
    used = declared or CONVENTIONS["[0,1]"]
    candidates = dict(CONVENTIONS)
    used_name = next((name for name, c in CONVENTIONS.items() if c == used), "declared")
    if used_name == "declared":
        candidates["declared"] = used
    scores = score(predict, x01, y, candidates)
    best = max(scores, key=scores.get)
    if scores[best] > scores[used_name] + MARGIN:
        table = ", ".join(f"{name} {acc:.3f}" for name, acc in scores.items())
        what = f"declared as {used.describe()}" if declared else f"assumed to be {used.describe()} (nothing was declared)"
        # Affine conventions can score alike ([-1, 1] and mean/std differ little): name every one near the best.
        near = [n for n in sorted(scores, key=scores.get, reverse=True) if n in CONVENTIONS and scores[n] >= scores[best] - MARGIN]
        fix = (f"It was trained on {near[0]} inputs: pass {CONVENTIONS[near[0]].options}." if len(near) == 1 else
               "It was trained on one of " + ", ".join(near) + ": pass the one it was trained with ("
               + "; ".join(f"{n}: {CONVENTIONS[n].options}" for n in near) + ").")
        raise ExportError(
            f"{source}: its inputs are {what}, but it scores {scores[used_name]:.3f} that way and {scores[best]:.3f} on "
            f"{CONVENTIONS[best].describe()} inputs ({len(y):,} class-balanced real test images: {table}). {fix} "
            "Nothing was exported.")
    return {"contract": used.to_dict(), "declared": declared is not None, "convention": used_name,
            "accuracy_by_convention": {name: round(acc, 4) for name, acc in scores.items()},
            "sample_images": int(len(y))}
