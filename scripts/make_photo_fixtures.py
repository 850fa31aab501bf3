"""Write tests/fixtures/photos: real-style photos of Fashion-MNIST garments for the preprocessing parity tests
(Python runtime/images.py vs the web app's preprocess.mjs).

Each photo is a real test-set garment made photo-like: enlarged, on a textured light or dark background
with uneven lighting and sensor noise, in colour. The set covers what phones and scanners produce:
- JPEGs stored sideways with each EXIF orientation 1-8 (the pixels are stored so that applying the tag
  shows the garment upright, as a phone does);
- a PNG with transparency (a cut-out garment, soft edges);
- a phone-sized 3000x4000 JPEG;
- light and dark backgrounds;
- a grayscale scan (8-bit PNG, mode L) and a 16-bit grayscale PNG (browsers scale 16-bit by value);
- a saturated colour garment on a beige floor (contrast in colour more than in luma);
- a CMYK JPEG (print workflows; browsers and Pillow must convert it alike);
- a JPEG tagged with a Display P3 colour profile (as iPhones save them): both sides convert it to sRGB.

    python scripts/make_photo_fixtures.py tests/fixtures/photos
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from fmnist_edge import data as fdata  # noqa: E402

# EXIF orientation k: the transpose that turns the upright image into the stored one (its inverse is what a
# viewer applies). Pillow's ImageOps.exif_transpose applies these methods to the stored image.
STORE = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
         5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
         8: Image.Transpose.ROTATE_270}


def display_p3_profile() -> bytes:
    """An ICC v2 display profile with Display P3's primaries (D50-adapted, as ICC wants) and the sRGB tone curve
    (1024-point table): what a P3 phone photo carries. Written here because Pillow's ImageCms builds only sRGB."""
    def s15(v):
        return struct.pack(">i", round(v * 65536))

    def xyz(x, y, z):
        return b"XYZ " + bytes(4) + s15(x) + s15(y) + s15(z)

    v = np.linspace(0, 1, 1024)
    linear = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    trc = b"curv" + bytes(4) + struct.pack(">I", 1024) + b"".join(struct.pack(">H", round(x * 65535)) for x in linear)
    name = b"Display P3 (test fixture)\0"
    tags = [(b"desc", b"desc" + bytes(4) + struct.pack(">I", len(name)) + name + bytes(8 + 3 + 67)),
            (b"wtpt", xyz(0.964203, 1.0, 0.824905)), (b"rXYZ", xyz(0.515102, 0.241182, -0.00104941)),
            (b"gXYZ", xyz(0.291965, 0.692236, 0.0418818)), (b"bXYZ", xyz(0.157153, 0.0665819, 0.784378)),
            (b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc), (b"cprt", b"text" + bytes(4) + b"No copyright\0")]
    table, data, start = b"", b"", 128 + 4 + 12 * len(tags)
    for sig, body in tags:
        data += bytes(-(start + len(data)) % 4)  # tags start on 4-byte boundaries
        table += sig + struct.pack(">II", start + len(data), len(body))
        data += body
    body = struct.pack(">I", len(tags)) + table + data
    header = (struct.pack(">I", 128 + len(body)) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acspAPPL" + bytes(24) + s15(0.9642) + s15(1.0) + s15(0.8249)
              + bytes(48))
    return header + body


def photo(garment: np.ndarray, size: tuple[int, int], light: bool, rng, colour=(0.9, 0.55, 0.35)) -> Image.Image:
    """A 28x28 garment as an RGB photo of `size` (w, h): the garment fills 95% of the short side."""
    w, h = size
    side = int(0.95 * min(w, h))
    g = np.asarray(Image.fromarray(garment).resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    lighting = 0.88 + 0.12 * (xx / w) * (1 - 0.5 * yy / h)  # light falling from one side
    weave = 0.03 * np.sin(xx / 3.0) * np.sin(yy / 4.0)  # a fabric-like background texture
    base = (0.88 if light else 0.1) + weave
    mask = np.zeros((h, w), np.float32)
    top, left = (h - side) // 2, (w - side) // 2
    mask[top:top + side, left:left + side] = g
    level = 0.08 if light else 0.95  # a dark garment on a light floor, a light one on a dark cloth
    rgb = np.empty((h, w, 3), np.float32)
    for c, tint in enumerate(colour):
        rgb[..., c] = (base + (level * (0.7 + 0.3 * tint) - base) * mask) * lighting
    rgb += rng.normal(0, 0.015, rgb.shape)  # sensor noise
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8), "RGB")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ds = fdata.load(None, download=False, train=False)
    rng = np.random.default_rng(0)
    pick = {c: int(np.flatnonzero(ds.y_test == c)[0]) for c in range(10)}  # the first test image of each class
    names = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
    for k, transpose in STORE.items():  # the upright photo is portrait 600x640, as phones take them
        up = photo(ds.x_test[pick[k % 10]], (600, 640), light=True, rng=rng)
        stored = up.transpose(transpose) if transpose is not None else up
        exif = Image.Exif()
        exif[0x0112] = k
        stored.save(out / f"{names[k % 10]}-exif{k}.jpg", quality=90, exif=exif)
    # A cut-out garment: alpha is the garment itself (soft edges), the colour a flat red.
    g = Image.fromarray(ds.x_test[pick[8]]).resize((600, 600), Image.Resampling.BICUBIC)
    rgba = Image.new("RGBA", (600, 600), (200, 40, 40, 0))
    rgba.putalpha(g)
    rgba.save(out / "bag-transparent.png")
    photo(ds.x_test[pick[7]], (3000, 4000), light=True, rng=rng).save(out / "sneaker-phone-3000x4000.jpg", quality=80)
    photo(ds.x_test[pick[3]], (800, 600), light=False, rng=rng, colour=(0.3, 0.5, 0.9)).save(
        out / "dress-dark-background.jpg", quality=92)
    photo(ds.x_test[pick[4]], (640, 640), light=True, rng=rng, colour=(0.5, 0.5, 0.5)).save(out / "coat-light-background.png")
    scan = photo(ds.x_test[pick[6]], (700, 900), light=True, rng=rng).convert("L")
    scan.save(out / "shirt-scan-gray.png")
    deep = photo(ds.x_test[pick[1]], (500, 700), light=True, rng=rng).convert("L")
    Image.fromarray(np.asarray(deep, np.uint16) * 257 + rng.integers(0, 257, (700, 500)).astype(np.uint16)).save(
        out / "trouser-16bit-gray.png")
    a = np.asarray(Image.fromarray(ds.x_test[pick[0]]).resize((560, 560), Image.Resampling.BICUBIC), np.float32)[..., None] / 255
    beige, magenta = np.array((224, 208, 182), np.float32), np.array((205, 45, 150), np.float32)
    colour = np.pad(beige * (1 - a) + magenta * a, ((70, 70), (70, 70), (0, 0)), mode="edge")
    colour = np.where(np.pad(a, ((70, 70), (70, 70), (0, 0))) > 0, colour, beige) + rng.normal(0, 2, (700, 700, 3))
    Image.fromarray(np.clip(colour, 0, 255).round().astype(np.uint8)).save(out / "tshirt-colour.jpg", quality=88)
    # The same pixel values tagged Display P3: the garment shown (and converted to sRGB) in wider-gamut colours.
    Image.open(out / "tshirt-colour.jpg").save(out / "tshirt-display-p3.jpg", quality=88, icc_profile=display_p3_profile())
    photo(ds.x_test[pick[9]], (600, 600), light=True, rng=rng).convert("CMYK").save(out / "boot-cmyk.jpg", quality=90)
    print("\n".join(sorted(f"{p.name}: {p.stat().st_size:,} bytes" for p in out.iterdir())))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/photos"))
