"""The photo conversion's object steps (runtime/photo.py calls them between finding the garment and trimming to it):

1. the largest object: the garment map is cut into `object_cell`-pixel cells, a cell counting where at least
   `object_cell_fill` of its pixels stand out above the noise floor (a hanger's wire is thinner and drops out; a
   light garment's faint middle still joins its sleeves); cells join into objects (8-neighbour, pieces up to
   `object_join` cells apart joined); the largest object is kept with every
   object reaching into its box grown by `object_gap` of its size (a sandal's straps), and the map outside the kept
   cells' box is cleared (a second garment, a stray sock, a hanger's hook);
2. deskew: the kept object is turned, within `deskew_max_degrees`, to the angle at which its bounding box is smallest
   (the dataset's garments are upright and square to the frame), if that saves at least `deskew_min_gain` of the
   box's area.

The web app's preprocess.mjs does the same, step for step. numpy only.
"""

from __future__ import annotations

import math

import numpy as np


def cells(mask: np.ndarray, k: int, fill: float) -> np.ndarray:
    """(ceil(h/k), ceil(w/k)) bool: the k x k blocks with at least `fill` of their pixels set."""
    h, w = mask.shape
    hh, ww = -(-h // k), -(-w // k)
    padded = np.zeros((hh * k, ww * k))
    padded[:h, :w] = mask
    return padded.reshape(hh, k, ww, k).mean(axis=(1, 3)) >= fill - 1e-9


def _shift(a: np.ndarray, dy: int, dx: int, fill) -> np.ndarray:
    out = np.full_like(a, fill)
    h, w = a.shape
    to = (slice(max(0, dy), h + min(0, dy)), slice(max(0, dx), w + min(0, dx)))
    out[to] = a[max(0, -dy):h + min(0, -dy), max(0, -dx):w + min(0, -dx)]
    return out


def components(on: np.ndarray) -> np.ndarray:
    """Each on cell's object: the smallest raster index among the cells 8-connected to it; -1 for off cells."""
    big = on.size
    labels = np.where(on, np.arange(big).reshape(on.shape), big)
    while True:
        best = labels
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    best = np.minimum(best, _shift(labels, dy, dx, big))
        best = np.where(on, best, big)
        if np.array_equal(best, labels):
            return np.where(on, labels, -1)
        labels = best


def dilate(on: np.ndarray, r: int) -> np.ndarray:
    """Grown by r cells in every direction (a square)."""
    out = on.copy()
    for _ in range(r):
        grown = out.copy()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                grown |= _shift(out, dy, dx, False)
        out = grown
    return out


def largest_object(d: np.ndarray, threshold: float, p: dict) -> tuple[np.ndarray, np.ndarray, int]:
    """(the map with everything but the largest object cleared, its cells, how many other objects as large as a
    fifth of it were cleared)."""
    k = p["object_cell"]
    on = cells(d > threshold, k, p["object_cell_fill"])
    # Pieces closer than object_join cells are one object (a patterned garment's light parts fall below threshold).
    labels = np.where(on, components(dilate(on, p["object_join"])), -1)
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    if not len(ids):
        return d, on, 0
    largest = int(ids[np.argmax(counts)])  # ties: the first in raster order, as np.argmax takes the first
    ys, xs = np.nonzero(labels == largest)
    # Its box grown by object_gap of its size: a piece reaching into it belongs to it (a sandal's strap, a coat's
    # far edge when its light middle falls below threshold); a second garment lies beside it.
    g = math.ceil(p["object_gap"] * (max(np.ptp(ys), np.ptp(xs)) + 1))
    reach = np.zeros_like(on)
    reach[max(0, ys.min() - g):ys.max() + g + 1, max(0, xs.min() - g):xs.max() + g + 1] = True
    kept_ids = np.unique(labels[reach & (labels >= 0)])
    kept = np.isin(labels, kept_ids)
    others = int(sum(c >= 0.2 * counts.max() for i, c in zip(ids, counts) if i not in kept_ids))
    # Everything outside the kept cells' box (and a cell around it) is cleared: the other objects with their faint
    # parts (a bag's thin handle has no cell of its own), a hanger's hook. Inside the box, the haze between a
    # garment's parts stays (clearing it cost photos of lone garments).
    ky, kx = np.nonzero(kept)
    box = np.zeros(d.shape, bool)
    box[max(0, (ky.min() - 1) * k):(ky.max() + 2) * k, max(0, (kx.min() - 1) * k):(kx.max() + 2) * k] = True
    return np.where(box, d, 0.0), kept, others


def skew(kept: np.ndarray, p: dict) -> float:
    """The turn in degrees (counter-clockwise on screen: positive) that makes the kept cells' bounding box
    smallest, 0 where none saves deskew_min_gain of its area."""
    ys, xs = np.nonzero(kept)
    if len(ys) < 3 or p["deskew_max_degrees"] <= 0:
        return 0.0
    y, x = ys - ys.mean(), xs - xs.mean()

    def area(deg: float) -> float:
        c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        u, v = c * x + s * y, -s * x + c * y
        return (np.ptp(u) + 1) * (np.ptp(v) + 1)

    angles = range(-int(p["deskew_max_degrees"]), int(p["deskew_max_degrees"]) + 1)
    best = min(angles, key=lambda a: (area(a), abs(a)))
    return float(best) if area(best) <= (1 - p["deskew_min_gain"]) * area(0) else 0.0


def rotate(d: np.ndarray, deg: float) -> np.ndarray:
    """The map turned by `deg` degrees about its centre (bilinear, zero outside), the same size."""
    if deg == 0:
        return d
    h, w = d.shape
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    # Where each output pixel comes from: the inverse turn.
    sx = c * (xx - cx) - s * (yy - cy) + cx
    sy = s * (xx - cx) + c * (yy - cy) + cy
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = sx - x0, sy - y0
    padded = np.pad(d, 1)

    def at(yi, xi):
        inside = (yi >= -1) & (yi <= h) & (xi >= -1) & (xi <= w)
        return np.where(inside, padded[np.clip(yi + 1, 0, h + 1), np.clip(xi + 1, 0, w + 1)], 0.0)

    return ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
            + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)))
