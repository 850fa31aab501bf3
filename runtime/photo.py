"""A photo's pixels -> the model's 28x28 input, following the way Fashion-MNIST itself was made from product photos
(trim to the garment, fit the longest side to 28, sharpen, centre, negate), made robust for shop and phone photos:

1. shrink by whole-block averaging to at most `work_side` pixels on the long side (a 12 MP photo costs little);
2. model the background from a band along the border: a plane per YCbCr channel (a lighting gradient is a plane)
   refitted `background_refits` times to the band pixels near the last model (not those a garment or a shadow
   covers), started from a plane fitted to the whole band and from the band's median colour (which a garment lying
   across one side does not pull); the start that leaves the border quieter is kept;
3. the garment map: each pixel's colour distance from that background (luma and, weighted, chroma: a red garment on
   a beige floor keeps its contrast in grayscale). This is the negation step: background 0, garment bright,
   whether the garment is darker or lighter than the background;
4. the noise floor: a high quantile of the band's distances (JPEG noise, cloth texture);
5. keep the largest object and turn it upright (photo_objects.py: a second garment, a stray sock cleared; a tilt
   undone), then trim to the rows and columns holding enough garment pixels, above a threshold that clears noise
   and soft shadows, and where the box meets the frame's edge, past lines far narrower than the garment (an arm);
6. level: background to 0 and the garment's bright end to 255, as in the dataset (92% of its images reach 255);
7. fit the longest side to 28 by area averaging, keeping the aspect ratio, centred on a black 28x28 canvas;
8. sharpen (unsharp mask, 3x3 Gaussian of sigma 1, as the dataset's conversion did), round.

Every parameter is in photo.json, which the web app's preprocess.mjs reads too: it is this file, step for step.
numpy only (the runtime's rule: no TensorFlow here).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .errors import RuntimeArtifactError
from .photo_objects import largest_object, rotate, skew

PARAMS = json.loads((Path(__file__).with_name("photo.json")).read_text())


class NoGarmentError(RuntimeArtifactError):  # images.ImageError's sibling; images.py re-exports it
    """The photo holds nothing that stands out from its background. `reason` is the message without the photo's
    name, for a caller that names the photo itself (predict's one line per photo)."""

    def __init__(self, reason: str, source: str | None = None):
        super().__init__(f"{source}: {reason}" if source else reason)
        self.reason = reason


def quantile(values: np.ndarray, q: float) -> float:
    """The value at rank floor(q * (n - 1)) of the sorted values (one definition both languages compute alike)."""
    s = np.sort(values, axis=None)
    return float(s[int(math.floor(q * (len(s) - 1)))])


def shrink(rgb: np.ndarray, work_side: int) -> np.ndarray:
    """Float RGB averaged over k x k blocks, k the smallest whole factor that brings the long side to work_side
    or below (rows and columns left over at the far edges are dropped)."""
    h, w = rgb.shape[:2]
    k = max(1, math.ceil(max(h, w) / work_side))
    x = rgb.astype(np.float64)
    if k == 1:
        return x
    hh, ww = h // k, w // k
    return x[:hh * k, :ww * k].reshape(hh, k, ww, k, 3).mean(axis=(1, 3))


def ycbcr(x: np.ndarray) -> np.ndarray:
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    return np.stack([0.299 * r + 0.587 * g + 0.114 * b,
                     -0.168736 * r - 0.331264 * g + 0.5 * b,
                     0.5 * r - 0.418688 * g - 0.081312 * b], axis=-1)


def band_mask(h: int, w: int, fraction: float) -> np.ndarray:
    b = max(1, math.floor(fraction * min(h, w) + 0.5))
    m = np.zeros((h, w), bool)
    m[:b], m[-b:], m[:, :b], m[:, -b:] = True, True, True, True
    return m


def fit_plane(ycc: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Least-squares plane a + b*u + c*v per channel over the pixels in `keep` (u, v in [-1, 1]); (h, w, 3)."""
    h, w = keep.shape
    v, u = np.mgrid[0:h, 0:w]
    u = u * (2 / max(1, w - 1)) - 1
    v = v * (2 / max(1, h - 1)) - 1
    design = np.stack([np.ones(keep.sum()), u[keep], v[keep]], axis=1)
    coef = np.linalg.solve(design.T @ design + 1e-9 * np.eye(3), design.T @ ycc[keep])  # (3, channels)
    return coef[0] + u[..., None] * coef[1] + v[..., None] * coef[2]


def distance(ycc: np.ndarray, background: np.ndarray, chroma_weight: float) -> np.ndarray:
    d = ycc - background
    return np.sqrt(d[..., 0] ** 2 + chroma_weight ** 2 * (d[..., 1] ** 2 + d[..., 2] ** 2))


def garment_map(rgb: np.ndarray, p: dict) -> tuple[np.ndarray, float]:
    """(distance of each pixel from the modelled background, the border's noise level)."""
    ycc = ycbcr(shrink(rgb, p["work_side"]))
    h, w = ycc.shape[:2]
    band = band_mask(h, w, p["border_band"])
    # Two starting models, each refitted to the band pixels near it: a plane fitted to the whole band (a lighting
    # gradient) and the band's median colour (which a garment lying across one side does not tilt). The one that
    # leaves the border quieter models the background better.
    median = np.array([quantile(ycc[..., c][band], 0.5) for c in range(3)])
    fits = [refit(ycc, band, distance(ycc, start, p["chroma_weight"]), p)
            for start in (fit_plane(ycc, band), np.broadcast_to(median, ycc.shape))]
    return min(fits, key=lambda fit: fit[1])


def refit(ycc: np.ndarray, band: np.ndarray, d: np.ndarray, p: dict) -> tuple[np.ndarray, float]:
    """(distances, noise level) after `background_refits` planes, each fitted to the band pixels near the last model
    (a garment touching the edge, a shadow left out)."""
    for _ in range(p["background_refits"]):
        keep = band & (d <= p["background_refit_k"] * quantile(d[band], 0.5) + 1.0)
        if keep.sum() < 3:
            break
        band = keep
        d = distance(ycc, fit_plane(ycc, band), p["chroma_weight"])
    return d, quantile(d[band], p["noise_quantile"])


def trim_box(d: np.ndarray, threshold: float, line_fraction: float, edge_fraction: float = 0.0,
             fills: float = 1.0) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), inclusive, of the rows/columns with enough pixels above threshold. Where the box
    reaches the frame's edge, lines there with under `edge_fraction` of the widest line's pixels are trimmed too:
    something narrower than the garment runs off the frame (an arm holding it up), unless the box spans `fills` of
    that side (a garment filling the frame, a scan)."""
    m = d > threshold
    h, w = m.shape
    row_counts, col_counts = m.sum(1), m.sum(0)
    rows = np.flatnonzero(row_counts >= max(1.0, line_fraction * w))
    cols = np.flatnonzero(col_counts >= max(1.0, line_fraction * h))
    if not len(rows) or not len(cols):
        return None
    top, bottom = _off_the_edge(row_counts, int(rows[0]), int(rows[-1]), edge_fraction, fills)
    left, right = _off_the_edge(col_counts, int(cols[0]), int(cols[-1]), edge_fraction, fills)
    return top, bottom, left, right


def _off_the_edge(counts: np.ndarray, lo: int, hi: int, fraction: float, fills: float) -> tuple[int, int]:
    if hi - lo + 1 >= fills * len(counts):
        return lo, hi  # the garment fills the frame (a scan, a shoe toe to heel): nothing runs off one side
    limit = fraction * counts.max()
    if lo <= 1:
        while lo < hi and counts[lo] < limit:
            lo += 1
    if hi >= len(counts) - 2:
        while hi > lo and counts[hi] < limit:
            hi -= 1
    return lo, hi


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in): output i averages source [i*s, (i+1)*s), s = n_in/n_out, each pixel by its overlap."""
    s = n_in / n_out
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        lo, hi = i * s, (i + 1) * s
        for j in range(int(math.floor(lo)), min(n_in, int(math.ceil(hi)))):
            m[i, j] = (min(hi, j + 1) - max(lo, j)) / s
    return m


def sharpen(x: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    g = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * sigma * sigma))
    k = np.outer(g, g) / np.outer(g, g).sum()
    pad = np.pad(x, 1)
    blur = sum(k[dy, dx] * pad[dy:dy + x.shape[0], dx:dx + x.shape[1]] for dy in range(3) for dx in range(3))
    return x + amount * (x - blur)


def centre_offset(small: np.ndarray, side: int, how: str) -> tuple[int, int]:
    """Where the fitted garment goes on the canvas: its box centred (the dataset's way), or its centre of mass
    on the canvas's centre as far as the canvas allows."""
    sh, sw = small.shape
    if how == "box" or small.sum() <= 0:
        return (side - sh) // 2, (side - sw) // 2
    ys, xs = np.arange(sh), np.arange(sw)
    cy = float((small.sum(1) * ys).sum() / small.sum())
    cx = float((small.sum(0) * xs).sum() / small.sum())
    oy = min(side - sh, max(0, math.floor((side - 1) / 2 - cy + 0.5)))
    ox = min(side - sw, max(0, math.floor((side - 1) / 2 - cx + 0.5)))
    return oy, ox


def to_fmnist(rgb: np.ndarray, params: dict | None = None) -> np.ndarray:
    """(H, W, 3) uint8 sRGB -> (side, side) uint8, Fashion-MNIST-like; NoGarmentError for a blank photo."""
    p = params or PARAMS
    side = p["side"]
    d, noise = garment_map(rgb, p)
    threshold = max(p["min_threshold"], p["noise_threshold_mult"] * noise)
    garment = d[d > threshold]
    if garment.size < p["min_garment_fraction"] * d.size:
        raise NoGarmentError(
            "no garment found: nothing in the photo stands out from its background. Photograph one garment on a "
            "plain background, filling most of the frame.")
    peak = quantile(garment, p["stretch_quantile"])
    trim_at = max(threshold, p["trim_relative"] * peak)
    if p["object_cell"]:  # the largest object alone, upright (photo_objects.py)
        d, kept, _ = largest_object(d, threshold, p)
        d = rotate(d, skew(kept, p))
    box = trim_box(d, trim_at, p["trim_line_fraction"], p["edge_line_fraction"], p["edge_fills_frame"])
    if box is None:
        raise NoGarmentError("no garment found: what stands out from the background is only specks or lines. "
                             "Photograph one garment on a plain background, filling most of the frame.")
    top, bottom, left, right = box
    crop = d[top:bottom + 1, left:right + 1]
    levelled = np.clip((crop - threshold / 2) / max(1e-6, peak - threshold / 2), 0, 1) * 255
    ch, cw = levelled.shape
    scale = side / max(ch, cw)
    sh, sw = max(1, math.floor(ch * scale + 0.5)), max(1, math.floor(cw * scale + 0.5))
    small = area_weights(ch, sh) @ levelled @ area_weights(cw, sw).T
    canvas = np.zeros((side, side))
    oy, ox = centre_offset(small, side, p["centre"])
    canvas[oy:oy + sh, ox:ox + sw] = small
    out = sharpen(canvas, p["sharpen_sigma"], p["sharpen_amount"])
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
