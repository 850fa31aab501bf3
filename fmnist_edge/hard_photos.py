"""Photos round 2: the hard conditions phone users meet (a tilt, hard and soft shadows, wrinkles, a hanger or a hand
in the frame, busy backgrounds, perspective, low light, motion blur, a garment cut by the frame, two garments), as
two sets for `bench --photos`: a **tuning** set, on which the conversion's parameters are chosen, and a
**held-out** set it is reported on, rendered from other test-split garments, with other seeds, with each
condition's free choices (shadow direction, background print, skin tone, perspective side, blur direction) drawn
from other ranges, and with two combined conditions the tuning set does not have.

Photo i of a set depends on (set, seed, i) only. Each photo's label is its main garment's; in a two-garment photo
that is the larger one, which the conversion keeps (runtime/photo.py's largest-object rule).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .photo_bench import background, garment_alpha

SETS = {"tuning": 101, "held-out": 202}  # the default seed of each set
# Where a set's free choices come from: the held-out set never sees the tuning set's ranges.
STYLE = {
    "tuning": {"shadow_angles": (20, 70), "print": "stripes", "skin": (224, 172, 140), "keystone": "top",
               "blur_angles": (-30, 30), "cut_sides": ("left", "bottom")},
    "held-out": {"shadow_angles": (110, 250), "print": "checks", "skin": (141, 85, 60), "keystone": "bottom",
                 "blur_angles": (60, 120), "cut_sides": ("right", "top")},
}
# name: (what it shows, the effects it combines); the last two are the held-out set's alone.
CONDITIONS = {
    "tilt-20": ("tilted up to 20 degrees", ("tilt",)),
    "hard-shadow": ("a hard shadow cast by a lamp", ("hard_shadow",)),
    "soft-shadow": ("a soft shadow from a window", ("soft_shadow",)),
    "wrinkled": ("a wrinkled, textured garment", ("wrinkles",)),
    "hanger": ("on a wire hanger (shoes and bags: on a hook)", ("hanger",)),
    "hand": ("held up by a hand, the arm leaving the frame", ("hand",)),
    "busy-background": ("on a printed background (stripes; checks in the held-out set)", ("print",)),
    "perspective": ("photographed from above at an angle", ("perspective",)),
    "low-light": ("in low light: dim, amplified sensor noise", ("low_light",)),
    "motion-blur": ("moved while shooting: motion blur", ("motion",)),
    "cut-by-edge": ("cut by the frame's edge (8-15% outside)", ("cut",)),
    "two-garments": ("two garments in one photo; the label is the larger's", ("second",)),
    "tilt-shadow-print": ("tilted, a hard shadow, on a printed background", ("tilt", "hard_shadow", "print")),
    "dim-and-moving": ("low light and motion blur", ("low_light", "motion")),
}
HELD_OUT_ONLY = ("tilt-shadow-print", "dim-and-moving")
FRAME = (720, 720)


def conditions(which: str) -> list[str]:
    return [c for c in CONDITIONS if which == "held-out" or c not in HELD_OUT_ONLY]


def _print(w: int, h: int, kind: str, rng) -> np.ndarray:
    """A printed fabric or wallpaper: a brightness pattern of 12-20% amplitude."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(0.03, 0.06) * w
    if kind == "stripes":
        a = rng.uniform(0, np.pi)
        pattern = np.sign(np.sin((np.cos(a) * xx + np.sin(a) * yy) * 2 * np.pi / period))
    else:
        pattern = np.sign(np.sin(xx * 2 * np.pi / period)) * np.sign(np.sin(yy * 2 * np.pi / period))
    return 1 + rng.uniform(0.06, 0.10) * pattern[..., None]


def _shadow(a: np.ndarray, w: int, h: int, angle: float, soft: bool) -> np.ndarray:
    """How much light a shadow of the garment leaves (1 = none), offset along `angle` degrees."""
    s = Image.fromarray((a * 255).astype(np.uint8), "L")
    if soft:
        s = s.filter(ImageFilter.GaussianBlur(0.03 * w))
    dist = (0.045 if soft else 0.03) * w
    dy, dx = int(dist * np.sin(np.radians(angle))), int(dist * np.cos(np.radians(angle)))
    s = np.roll(np.asarray(s, np.float32) / 255, (dy, dx), axis=(0, 1))
    return 1 - (0.3 if soft else 0.42) * np.clip(s, 0, 1)


def _place(alpha: np.ndarray, w: int, h: int, left: int, top: int) -> np.ndarray:
    """The garment's opacity on a (h, w) frame, its top-left at (left, top); parts outside the frame cut off."""
    a = np.zeros((h, w), np.float32)
    ah, aw = alpha.shape
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(h, top + ah), min(w, left + aw)
    if y1 > y0 and x1 > x0:
        a[y0:y1, x0:x1] = alpha[y0 - top:y1 - top, x0 - left:x1 - left]
    return a


def _layout(alpha: np.ndarray, w: int, h: int, effects, style, rng) -> tuple[int, int]:
    ah, aw = alpha.shape
    left, top = (w - aw) // 2 + int(rng.uniform(-0.04, 0.04) * w), (h - ah) // 2 + int(rng.uniform(-0.04, 0.04) * h)
    if "cut" in effects:  # 8-15% of the garment's width or height outside the frame
        side = style["cut_sides"][int(rng.integers(2))]
        out = rng.uniform(0.08, 0.15)
        left = {"left": -int(out * aw), "right": w - aw + int(out * aw)}.get(side, left)
        top = {"top": -int(out * ah), "bottom": h - ah + int(out * ah)}.get(side, top)
    if "second" in effects:  # the main garment to one side, leaving room for the other
        left = int(0.04 * w)
    return left, top


HANGS = {0, 1, 2, 3, 4, 6}  # the classes a shop hangs on a hanger (tops, trousers, dresses, coats, shirts)


def _props(img: np.ndarray, a: np.ndarray, effects, style, rng, w: int, h: int, hangs: bool) -> np.ndarray:
    """A hanger's wire (a hook for shoes and bags) above the garment, or a hand and arm from the top of the frame
    holding the garment up, drawn over the photo."""
    canvas = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(canvas)
    ys, xs = np.nonzero(a > 0.3)
    if len(ys) and "hanger" in effects:
        cx, top = int(np.median(xs[ys < ys.min() + 5])), int(ys.min())
        half, lift, width = int(0.22 * (xs.max() - xs.min())), int(0.06 * h), max(2, w // 160)
        wire = tuple(int(v) for v in rng.integers(60, 130, 3))
        if hangs:
            d.line([(cx - half, top + 4), (cx, top - lift), (cx + half, top + 4)], fill=wire, width=width)
        else:
            d.line([(cx, top + 2), (cx, top - lift)], fill=wire, width=width)
        d.arc([cx - lift // 2, top - 2 * lift, cx + lift // 2, top - lift], 180, 90, fill=wire, width=width)
    if len(ys) and "hand" in effects:  # fingers over the garment's top edge, the arm leaving the frame
        top_row = xs[ys < ys.min() + 0.05 * (ys.max() - ys.min()) + 1]
        x = int(rng.uniform(top_row.min(), top_row.max()))
        y = int(ys.min())
        r = int(0.06 * w)
        skin = tuple(int(c + rng.uniform(-12, 12)) for c in style["skin"])
        d.rectangle([x - int(0.6 * r), 0, x + int(0.6 * r), y], fill=skin)
        d.ellipse([x - r, y - int(0.8 * r), x + r, y + int(0.8 * r)], fill=skin)
    return np.asarray(canvas, np.float32)


def render(x28: np.ndarray, label: int, other: np.ndarray, condition: str, which: str, rng) -> tuple[Image.Image, int]:
    """One photo of garment `x28` (class `label`) under `condition` (`other`: the second garment, if any)."""
    effects = CONDITIONS[condition][1]
    style = STYLE[which]
    w, h = FRAME
    bg = background("off-white" if rng.uniform() < 0.5 else "white", w, h, rng)
    if "print" in effects:
        bg = bg * _print(w, h, style["print"], rng)
    fill = 0.5 if "second" in effects else 0.72
    alpha = garment_alpha(x28, (int(fill * w), int(fill * h)), rng.uniform(-20, 20) if "tilt" in effects else 0)
    a = _place(alpha, w, h, *_layout(alpha, w, h, effects, style, rng))
    if "second" in effects:  # another garment, 60-75% of the first's size, on the other side
        small = garment_alpha(other, (int(0.32 * w), int(0.32 * h)), 0)
        a = np.maximum(a, _place(small, w, h, int(0.62 * w), int(rng.uniform(0.2, 0.5) * h)))
    for kind in ("hard_shadow", "soft_shadow"):
        if kind in effects:
            bg = bg * _shadow(a, w, h, rng.uniform(*style["shadow_angles"]), kind == "soft_shadow")[..., None]
    colour = np.array((28, 28, 32), np.float32) + rng.uniform(0, 40)
    if "wrinkles" in effects:  # folds: slow light and dark bands across the garment, and a weave
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = rng.uniform(0, np.pi)
        folds = np.sin((np.cos(t) * xx + np.sin(t) * yy) / (0.02 * w) + 2 * np.sin(yy / (0.05 * h)))
        a = a * (1 - 0.25 * (folds > 0.6)) * (1 - 0.08 * np.sin(xx / 2.1) * np.sin(yy / 2.3))
    img = _props(bg * (1 - a[..., None]) + colour * a[..., None], a, effects, style, rng, w, h, label in HANGS)
    if "low_light" in effects:  # a quarter of the light, sensor noise, then the phone's gain brings it back
        img = (img * 0.25 + rng.normal(0, 3.0, img.shape)) * 3.6 * np.array((0.95, 1.0, 1.08), np.float32)
    photo = Image.fromarray(np.clip(img + rng.normal(0, 2.5, img.shape), 0, 255).round().astype(np.uint8), "RGB")
    if "motion" in effects:
        photo = _motion_blur(photo, rng.uniform(0.02, 0.035) * w, rng.uniform(*style["blur_angles"]))
    if "perspective" in effects:  # from above at an angle: one side of the frame nearer than the other
        k = rng.uniform(0.12, 0.2) * w
        # The source quad (upper left, lower left, lower right, upper right): its wide edge is the far one.
        near = [-k, 0, 0, h, w, h, w + k, 0] if style["keystone"] == "top" else [0, 0, -k, h, w + k, h, w, 0]
        photo = photo.transform((w, h), Image.QUAD, near, Image.BICUBIC, fillcolor=tuple(int(v) for v in bg[0, 0]))
    return photo, int(rng.integers(70, 91))


def _motion_blur(photo: Image.Image, length: float, angle: float) -> Image.Image:
    """The photo averaged over `length` pixels along `angle` degrees (a straight camera shake)."""
    x = np.asarray(photo, np.float32)
    steps = max(2, int(length))
    dy, dx = np.sin(np.radians(angle)), np.cos(np.radians(angle))
    acc = sum(np.roll(x, (int(round((i - steps / 2) * dy)), int(round((i - steps / 2) * dx))), axis=(0, 1))
              for i in range(steps)) / steps
    return Image.fromarray(acc.round().astype(np.uint8), "RGB")


def photo_set(images: np.ndarray, labels: np.ndarray, which: str, seed: int):
    """(JPEG bytes, condition, index of the main garment) for a set; conditions take turns."""
    names = conditions(which)
    for i in range(len(images)):
        rng = np.random.default_rng([seed, i])
        condition = names[i % len(names)]
        others = np.flatnonzero(labels != labels[i])
        other = images[others[int(rng.integers(len(others)))]]
        photo, quality = render(images[i], int(labels[i]), other, condition, which, rng)
        buf = io.BytesIO()
        photo.save(buf, "JPEG", quality=quality)
        yield buf.getvalue(), condition


def set_indices(which: str, n_test: int, n: int, seed: int | None = None) -> np.ndarray:
    """The test-split indices of set `which`'s n garments: the tuning set draws from the first half of a fixed
    permutation of the split, the held-out set from the second, so no garment is in both."""
    order = np.random.default_rng(7).permutation(n_test)
    half = order[:n_test // 2] if which == "tuning" else order[n_test // 2:]
    return np.random.default_rng(SETS[which] if seed is None else seed).permutation(half)[:n]


def make_set(out: Path, x_test: np.ndarray, y_test: np.ndarray, which: str, n: int, seed: int | None = None) -> dict:
    """Write set `which`'s n photos and out/photos.json (read by `bench --photos`)."""
    seed = SETS[which] if seed is None else seed
    indices = set_indices(which, len(y_test), n, seed)
    out.mkdir(parents=True, exist_ok=True)
    photos = []
    for i, (jpeg, condition) in enumerate(photo_set(x_test[indices], y_test[indices], which, seed)):
        file = f"{i:04d}-{condition}.jpg"
        (out / file).write_bytes(jpeg)
        photos.append({"file": file, "label": int(y_test[indices[i]]), "test_index": int(indices[i]),
                       "condition": condition})
    record = {"command": f"python scripts/make_photo_benchmark.py {out} --set {which} --n {n} --seed {seed}",
              "set": which, "seed": seed, "split": "test",
              "conditions": {c: CONDITIONS[c][0] for c in conditions(which)}, "photos": photos}
    (out / "photos.json").write_text(json.dumps(record, indent=1) + "\n")
    return record
