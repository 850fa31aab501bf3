"""Photos of things that are not one of Fashion-MNIST's ten classes, for measuring the app's "this does not look
like one of the ten" rule: everyday objects (a cap, a mug, a ball, a book, a phone, a bottle, glasses, an umbrella,
a key, a plate, a lamp, a chair) drawn as 28x28 silhouettes with some shading and rendered as photos under the
photo benchmark's conditions (photo_bench.render), and photos with nothing in them (a bare wall, a lighting
gradient, sensor noise, a textured cloth, a random texture). Photo i depends on (seed, i) only.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .photo_bench import CONDITIONS, render

S = 112  # drawn at 4x, then averaged down to 28x28 as the dataset's images were


def _cap(d, r):
    d.pieslice([20, 30 + r(8), 92, 100], 180, 360, fill=255)
    d.rectangle([20 if r(1) > 0 else 8, 62, 104 if r(1) > 0 else 92, 72], fill=200)


def _mug(d, r):
    d.rectangle([24, 24, 76, 96], fill=230)
    d.ellipse([64, 40, 100, 80], outline=230, width=9)


def _ball(d, r):
    k = r(10)
    d.ellipse([14 + k, 14 + k, 98 - k, 98 - k], fill=240)
    d.arc([14 + k, 30, 98 - k, 80], 0, 180, fill=120, width=4)


def _book(d, r):
    d.rectangle([22 + r(6), 12, 90 - r(6), 100], fill=220)
    d.line([30, 12, 30, 100], fill=140, width=4)


def _phone(d, r):
    d.rounded_rectangle([34, 8, 78, 104], radius=10, fill=235)
    d.rounded_rectangle([38, 16, 74, 94], radius=4, fill=110)


def _bottle(d, r):
    d.rectangle([48, 6, 64, 34], fill=230)
    d.rounded_rectangle([32, 30, 80, 106], radius=12, fill=230)


def _glasses(d, r):
    d.ellipse([8, 40, 52, 78], outline=240, width=7)
    d.ellipse([60, 40, 104, 78], outline=240, width=7)
    d.line([50, 56, 62, 56], fill=240, width=6)


def _umbrella(d, r):
    d.pieslice([8, 14, 104, 86], 180, 360, fill=230)
    d.line([56, 50, 56, 98], fill=230, width=6)
    d.arc([40, 86, 58, 106], 0, 180, fill=230, width=6)


def _key(d, r):
    d.ellipse([8, 36, 48, 76], outline=240, width=10)
    d.rectangle([46, 52, 104, 60], fill=240)
    for x in (80, 92):
        d.rectangle([x, 60, x + 6, 72], fill=240)


def _plate(d, r):
    d.ellipse([10, 10, 102, 102], fill=235)
    d.ellipse([30, 30, 82, 82], fill=190)


def _lamp(d, r):
    d.polygon([(36, 10), (76, 10), (94, 48), (18, 48)], fill=235)
    d.rectangle([52, 48, 60, 92], fill=200)
    d.rectangle([30, 92, 82, 102], fill=220)


def _chair(d, r):
    d.rectangle([30, 8, 40, 104], fill=225)
    d.rectangle([30, 56, 84, 64], fill=225)
    d.rectangle([76, 56, 84, 104], fill=225)


OBJECTS = {"cap": _cap, "mug": _mug, "ball": _ball, "book": _book, "phone": _phone, "bottle": _bottle,
           "glasses": _glasses, "umbrella": _umbrella, "key": _key, "plate": _plate, "lamp": _lamp, "chair": _chair}
EMPTY = ("bare wall", "lighting gradient", "sensor noise", "cloth", "random texture")
PHOTO_CONDITIONS = [c for c in CONDITIONS if not c.startswith("phone-")]  # small frames: a quick set


def silhouette(name: str, rng) -> np.ndarray:
    """An object as a 28x28 uint8 image like the dataset's (light object on black), jittered in size and angle."""
    im = Image.new("L", (S, S), 0)
    OBJECTS[name](ImageDraw.Draw(im), lambda k: int(rng.integers(-k, k + 1)) if k else 0)
    im = im.rotate(float(rng.uniform(-12, 12)), resample=Image.BILINEAR)
    im = im.filter(ImageFilter.GaussianBlur(1.2))
    shade = np.linspace(1.0, float(rng.uniform(0.7, 1.0)), S)[None, :]
    return np.asarray(Image.fromarray((np.asarray(im) * shade).astype(np.uint8)).resize((28, 28), Image.BOX))


def empty_photo(kind: str, rng) -> Image.Image:
    """A photo with no object in it."""
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.array(rng.uniform(150, 245, 3), np.float32)
    img = np.broadcast_to(base, (h, w, 3)).copy()
    if kind == "lighting gradient":
        img *= (0.7 + 0.3 * xx / w)[..., None]
    elif kind == "sensor noise":
        img = img * 0.4 + rng.normal(0, 25, (h, w, 3))
    elif kind == "cloth":
        img += (8 * np.sin(xx / 5) * np.sin(yy / 6.5))[..., None]
    elif kind == "random texture":
        blobs = np.asarray(Image.fromarray(rng.normal(0, 1, (12, 16)).astype(np.float32)).resize((w, h), Image.BICUBIC))
        img += (30 * blobs)[..., None]
    return Image.fromarray(np.clip(img + rng.normal(0, 2.5, (h, w, 3)), 0, 255).astype(np.uint8), "RGB")


def out_of_class_photos(n: int, seed: int):
    """(JPEG bytes, what it shows) for n photos, mostly objects: photo i shows object i % 12, except every sixth
    (i % 6 == 5), which shows entry i % 17 of the objects followed by the empty kinds (11 empty photos in the
    first 240)."""
    kinds = [*OBJECTS, *EMPTY]
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        kind = kinds[i % len(kinds)] if i % 6 == 5 else kinds[i % len(OBJECTS)]
        if kind in EMPTY:
            kind = EMPTY[(i // 6) % len(EMPTY)]
            photo, quality = empty_photo(kind, rng), 85
        else:
            photo, quality = render(silhouette(kind, rng), PHOTO_CONDITIONS[i % len(PHOTO_CONDITIONS)], rng)
        buf = io.BytesIO()
        photo.save(buf, "JPEG", quality=quality)
        yield buf.getvalue(), kind
