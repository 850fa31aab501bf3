"""Read a photo or scan (PNG/JPEG/...) as the model's 28x28 uint8 input: `load_image(path_or_bytes)`. Needs Pillow.

Decoding makes the pixels a browser would show: first frame only; turned upright by the EXIF orientation tag (phone
photos are stored sideways with a tag saying how to display them); an embedded colour profile (Display P3, Adobe
RGB, CMYK) converted to sRGB, as the browser's canvas does; 16-bit scaled to 8-bit by value (v / 257, as browsers
do); alpha composited onto white. photo.py then converts those pixels as the dataset's own conversion did.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np

from .errors import RuntimeArtifactError
from .photo import NoGarmentError, to_fmnist

# A photo is decoded at full size up to MAX_PIXELS; a larger one (a phone's 50 MP mode) is scaled down to it right
# after decoding, as the web app does (preprocess.mjs: decodePhoto); one over LARGEST_PIXELS is refused (a
# decompression bomb, or no photo a camera takes), well before it exhausts a small device's memory.
MAX_PIXELS = 40_000_000
LARGEST_PIXELS = 120_000_000
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")

__all__ = ["ImageError", "NoGarmentError", "load_image", "decode", "MAX_PIXELS", "LARGEST_PIXELS", "fitted_size"]


class ImageError(RuntimeArtifactError):
    """An input image cannot be read or used."""


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise ImageError("Reading images needs Pillow: pip install pillow.") from None
    return Image


def load_image(source: str | Path | bytes) -> np.ndarray:
    """A photo (a file path, or the file's bytes) -> (28, 28) uint8, light garment on black as in Fashion-MNIST.
    ImageError for what cannot be read; NoGarmentError (a RuntimeArtifactError, as ImageError is) for a photo
    with no garment in it."""
    pixels = decode(source)
    try:
        return to_fmnist(pixels)
    except NoGarmentError as exc:
        raise NoGarmentError(exc.reason, _name(source)) from None


def _name(source) -> str:
    return "the image" if isinstance(source, (bytes, bytearray, memoryview)) else str(source)


def decode(source: str | Path | bytes) -> np.ndarray:
    """A photo -> (H, W, 3) uint8 sRGB, upright, alpha on white: what a browser draws on its canvas."""
    Image = _pil()
    name = _name(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        fp = io.BytesIO(bytes(source))
    else:
        fp = Path(source)
        if not fp.is_file():
            raise ImageError(f"{fp}: no such file.")
    Image.MAX_IMAGE_PIXELS = LARGEST_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                im.seek(0)  # animated GIF/PNG/WebP: the first frame
                w, h = im.size
                if w == 0 or h == 0:
                    raise ImageError(f"{name}: the image is empty ({w}x{h}).")
                if w * h > LARGEST_PIXELS:
                    raise ImageError(f"{name}: {w}x{h} pixels is over the {LARGEST_PIXELS:,}-pixel limit. "
                                     "Use a smaller photo.")
                if w * h > MAX_PIXELS:
                    size = fitted_size(w, h, MAX_PIXELS)
                    im.draft("RGB", size)  # a JPEG decodes at 1/2, 1/4 or 1/8 scale where that still covers `size`
                    im = im.resize(size, Image.Resampling.BOX)
                im.load()
                return srgb_pixels(upright(im))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name}: refused as a possible decompression bomb ({exc}).") from None
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's UnidentifiedImageError is an OSError
        raise ImageError(f"{name}: not a readable image ({exc}). Expected a PNG, JPEG or similar picture.") from None


def fitted_size(w: int, h: int, limit: int) -> tuple[int, int]:
    """The size a w x h photo over `limit` pixels is scaled to: one factor on both sides (preprocess.mjs: fittedSize)."""
    f = math.sqrt(w * h / limit)
    return max(1, math.floor(w / f)), max(1, math.floor(h / f))


def upright(im):
    """The image as a viewer shows it: EXIF orientations 2-8 (rotations and mirrors) applied."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(im)
    except (ValueError, TypeError, KeyError, SyntaxError):  # a malformed EXIF block: use the pixels as stored
        return im


def to_srgb(im):
    """An image with an embedded ICC profile -> RGB in sRGB (perceptual intent, as the browser renders it)."""
    from PIL import ImageCms

    icc = im.info.get("icc_profile")
    if not icc or im.mode not in ("RGB", "RGBA", "CMYK", "L", "LA"):
        return im
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        mode = "RGBA" if "A" in im.mode else "RGB"
        return ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode=mode)
    except (ImageCms.PyCMSError, OSError, ValueError):  # a broken profile: use the pixels as they are, as browsers do
        return im


def srgb_pixels(im) -> np.ndarray:
    Image = _pil()
    if im.mode in SIXTEEN_BIT:  # 16-bit grayscale: 0..65535 -> 0..255 by value, as a browser decodes it
        arr = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(np.floor(arr / 257 + 0.5), 0, 255).astype(np.uint8), "L")
    im = to_srgb(im)
    if im.mode in ("P", "PA", "LA", "RGBA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)
