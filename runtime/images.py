"""Turn a real photo or scan (PNG/JPEG/...) into a Fashion-MNIST-like uint8 28x28 image. Needs Pillow.

Steps: first frame only; turned upright by its EXIF orientation tag (phone photos are stored sideways
with a tag saying how to display them); alpha composited onto white; 16-bit scaled to 8-bit; grayscale; fitted into
28x28 keeping the aspect ratio (longest side 28, centred, padded with the background); and matched to
Fashion-MNIST's polarity (light garment on a dark background) by inverting when the border is light.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .errors import RuntimeArtifactError

MAX_PIXELS = 40_000_000  # refuse decompression bombs well before they exhaust a small device's memory


class ImageError(RuntimeArtifactError):
    """An input image cannot be read or used."""


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise ImageError("Reading images needs Pillow: pip install pillow.") from None
    return Image


def load_image(path: str | Path) -> np.ndarray:
    Image = _pil()
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file.")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.seek(0)  # animated GIF/PNG/WebP: the first frame
                w, h = im.size
                if w == 0 or h == 0:
                    raise ImageError(f"{path}: the image is empty ({w}x{h}).")
                if w * h > MAX_PIXELS:
                    raise ImageError(f"{path}: {w}x{h} pixels is over the {MAX_PIXELS:,}-pixel limit.")
                im.load()
                return to_fmnist(upright(im))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: refused as a possible decompression bomb ({exc}).") from None
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's UnidentifiedImageError is an OSError
        raise ImageError(f"{path}: not a readable image ({exc}). Expected a PNG, JPEG or similar picture.") from None


def upright(im):
    """The image as a viewer shows it: EXIF orientations 2-8 (rotations and mirrors) applied."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(im)
    except (ValueError, TypeError, KeyError, SyntaxError):  # a malformed EXIF block: use the pixels as stored
        return im


def to_fmnist(im) -> np.ndarray:
    Image = _pil()
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = arr.max() or 1.0
        im = Image.fromarray((arr / top * 255).round().astype(np.uint8))
    if im.mode in ("P", "PA", "LA", "RGBA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    gray = im.convert("L")
    arr = np.asarray(gray)
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    if np.median(border) > 127:  # light background: invert to Fashion-MNIST's dark background
        gray = Image.fromarray(255 - arr)
    w, h = gray.size
    scale = 28 / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = gray.resize(size, Image.Resampling.LANCZOS)
    canvas = Image.new("L", (28, 28), 0)
    canvas.paste(small, ((28 - size[0]) // 2, (28 - size[1]) // 2))
    return np.asarray(canvas, dtype=np.uint8)
