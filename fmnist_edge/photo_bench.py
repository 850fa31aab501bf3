"""Render Fashion-MNIST test-split garments as shop and phone photos under named conditions: the photo benchmark
(`scripts/make_photo_benchmark.py`, read by `bench --photos`) and the photos `verify --browser` runs through the web
app's own preprocessing. Each photo uses a garment's 28x28 intensity as its opacity (the dataset is the negated
photo) on a background, in a frame, under a condition; sensor noise; JPEG at quality 60-90. Photo i depends on
(seed, i) only, so a smaller set is the start of a larger one, byte for byte.
"""

from __future__ import annotations

import colorsys
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

WHITE, OFF_WHITE, BEIGE, DARK = (250, 250, 250), (242, 239, 232), (224, 208, 182), (38, 38, 44)
# name: (what it shows, background, frame (w, h), garment's share of the frame, extras)
CONDITIONS = {
    "white-square-90": ("white background, square, garment fills 90%", "white", (640, 640), 0.9, {}),
    "off-white-square-60": ("off-white background, square, 60%", "off-white", (640, 640), 0.6, {}),
    "beige-portrait-70": ("beige background, portrait 3:4, 70%", "beige", (600, 800), 0.7, {}),
    "gradient-landscape-80": ("a lighting gradient, landscape 4:3, 80%", "gradient", (800, 600), 0.8, {}),
    "cloth-square-70": ("textured cloth background, square, 70%", "cloth", (700, 700), 0.7, {}),
    "dark-light-garment-75": ("a light garment on a dark background, square, 75%", "dark", (640, 640), 0.75, {}),
    "colour-garment-80": ("a colour garment on off-white, portrait, 80%", "off-white", (600, 800), 0.8, {"colour": True}),
    "off-centre-portrait-40": ("off-centre, portrait, garment fills 40%", "off-white", (600, 800), 0.4, {"offset": 0.8}),
    "tilt-shadow-square-75": ("tilted up to 10 degrees with a soft shadow, square, 75%", "white", (700, 700), 0.75,
                              {"tilt": 10, "shadow": True}),
    "blur-landscape-70": ("out of focus, landscape, 70%", "off-white", (800, 600), 0.7, {"blur": 0.006}),
    "jpeg60-square-65": ("JPEG quality 60, square, 65%", "beige", (600, 600), 0.65, {"quality": 60}),
    "phone-3000x4000-70": ("phone resolution 3000x4000, 70%", "off-white", (3000, 4000), 0.7, {}),
}


def background(kind: str, w: int, h: int, rng) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = {"white": WHITE, "off-white": OFF_WHITE, "beige": BEIGE, "gradient": OFF_WHITE, "cloth": (196, 188, 170),
            "dark": DARK}[kind]
    bg = np.broadcast_to(np.array(base, np.float32), (h, w, 3)).copy()
    if kind == "gradient":  # light from one side: 25% darker across the frame in a random direction
        a = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(a) * xx / w + np.sin(a) * yy / h)
        bg *= (0.78 + 0.25 * (ramp - ramp.min()) / max(1e-6, np.ptp(ramp)))[..., None]
    if kind == "cloth":  # a weave and slow blotches
        period = 0.008 * max(w, h)
        weave = 7 * np.sin(xx / period) * np.sin(yy / (1.3 * period))
        blotch = np.asarray(Image.fromarray(rng.normal(0, 1, (8, 8)).astype(np.float32)).resize((w, h), Image.BICUBIC))
        bg += (weave + 5 * blotch)[..., None]
    return bg


def garment_alpha(x28: np.ndarray, box: tuple[int, int], tilt: float) -> np.ndarray:
    """The garment's opacity, its own bounding box fitted into `box` (w, h), optionally rotated."""
    ys, xs = np.nonzero(x28)
    if not len(ys):  # a blank image: the whole frame (it renders as a photo with no garment)
        ys, xs = np.array([0, x28.shape[0] - 1]), np.array([0, x28.shape[1] - 1])
    g = x28[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32) / 255
    scale = min(box[0] / g.shape[1], box[1] / g.shape[0])
    size = (max(1, round(g.shape[1] * scale)), max(1, round(g.shape[0] * scale)))
    im = Image.fromarray(g, "F").resize(size, Image.BICUBIC)
    if tilt:
        im = im.rotate(tilt, resample=Image.BICUBIC, expand=True)
    return np.clip(np.asarray(im), 0, 1)


def render(x28: np.ndarray, condition: str, rng, scale: float = 1.0) -> tuple[Image.Image, int]:
    _, kind, (w, h), fill, extra = CONDITIONS[condition]
    w, h = max(64, int(w * scale)), max(64, int(h * scale))
    bg = background(kind, w, h, rng)
    alpha = garment_alpha(x28, (int(fill * w), int(fill * h)), rng.uniform(-1, 1) * extra.get("tilt", 0))
    ah, aw = alpha.shape[:2]
    free_x, free_y = max(0, w - aw), max(0, h - ah)
    shift = extra.get("offset", 0.0) * rng.uniform(-0.5, 0.5, 2)
    left, top = int(free_x * (0.5 + shift[0])), int(free_y * (0.5 + shift[1]))
    a = np.zeros((h, w), np.float32)
    a[top:top + ah, left:left + aw] = alpha[:h - top, :w - left]
    if extra.get("shadow"):  # a soft shadow down and to the right of the garment
        s = Image.fromarray((a * 255).astype(np.uint8), "L").filter(ImageFilter.GaussianBlur(0.02 * w))
        s = np.roll(np.asarray(s, np.float32) / 255, (int(0.025 * h), int(0.02 * w)), axis=(0, 1))
        bg *= (1 - 0.3 * np.clip(s, 0, 1))[..., None]
    if kind == "dark":
        colour = np.array((236, 234, 228), np.float32)
    elif extra.get("colour"):
        colour = np.array(colorsys.hsv_to_rgb(rng.uniform(0, 1), 0.75, 0.6), np.float32) * 255
    else:
        colour = np.array((28, 28, 32), np.float32) + rng.uniform(0, 30)
    img = bg * (1 - a[..., None]) + colour * a[..., None] + rng.normal(0, 2.5, (h, w, 3))
    photo = Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8), "RGB")
    if extra.get("blur"):
        photo = photo.filter(ImageFilter.GaussianBlur(extra["blur"] * max(w, h)))
    return photo, int(extra.get("quality", rng.integers(60, 91)))


def benchmark_photos(images: np.ndarray, seed: int, scale: float = 1.0):
    """(JPEG bytes, condition) for each uint8 28x28 image, the conditions taking turns; `scale` < 1 shrinks the
    frames (a quick set for a browser check)."""
    names = list(CONDITIONS)
    for i, x in enumerate(images):
        condition = names[i % len(names)]
        photo, quality = render(x, condition, np.random.default_rng([seed, i]), scale)
        buf = io.BytesIO()
        photo.save(buf, "JPEG", quality=quality)
        yield buf.getvalue(), condition


def make_benchmark(out: Path, x_test: np.ndarray, y_test: np.ndarray, n: int, seed: int) -> dict:
    """Write n photos of test images (a seeded permutation's first n) and out/photos.json; returns the record."""
    indices = np.random.default_rng(seed).permutation(len(y_test))[:n]
    out.mkdir(parents=True, exist_ok=True)
    photos = []
    for i, (jpeg, condition) in enumerate(benchmark_photos(x_test[indices], seed)):
        file = f"{i:04d}-{condition}.jpg"
        (out / file).write_bytes(jpeg)
        photos.append({"file": file, "label": int(y_test[indices[i]]), "test_index": int(indices[i]), "condition": condition})
    record = {"command": f"python scripts/make_photo_benchmark.py {out} --n {n} --seed {seed}", "seed": seed,
              "split": "test", "conditions": {k: v[0] for k, v in CONDITIONS.items()}, "photos": photos}
    (out / "photos.json").write_text(json.dumps(record, indent=1) + "\n")
    return record
