"""Garment augmentation for training: what changes a photo of a garment without changing its class.

Fashion-MNIST images are centred, upright and lit alike, so rotations, vertical flips and colour changes
would teach the model images it never sees. What does vary: left and right (a shirt mirrored is a
shirt), a pixel or two of placement, and parts of a garment hidden or missing (random erasing, which
Zhong et al. measured on this dataset). Done in numpy per batch, backend-neutral and cheap next to the
model's own work (an earlier probe with Keras's augmentation layers spent most of each epoch in them).
"""

from __future__ import annotations

import numpy as np

MAX_SHIFT = 2  # pixels, each direction
ERASE_PROB = 0.5
ERASE_AREA = (0.02, 0.2)  # share of the image
ERASE_ASPECT = (0.3, 3.3)


def augment_batch(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A new array of (N, 28, 28, 1) float images, each flipped, shifted and partly erased at random."""
    n, h, w, _ = x.shape
    out = np.where(rng.random(n)[:, None, None, None] < 0.5, x[:, :, ::-1], x)
    # Shift by padding with background (0) and cropping at a random offset.
    padded = np.pad(out, ((0, 0), (MAX_SHIFT, MAX_SHIFT), (MAX_SHIFT, MAX_SHIFT), (0, 0)))
    dy, dx = rng.integers(0, 2 * MAX_SHIFT + 1, size=(2, n))
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    # Random erasing: a rectangle of noise in half of the images.
    area = rng.uniform(*ERASE_AREA, n) * h * w
    aspect = np.exp(rng.uniform(*np.log(ERASE_ASPECT), n))
    eh = np.clip(np.round(np.sqrt(area * aspect)), 1, h).astype(int)
    ew = np.clip(np.round(np.sqrt(area / aspect)), 1, w).astype(int)
    y0 = rng.integers(0, h - eh + 1)
    x0 = rng.integers(0, w - ew + 1)
    yy, xx = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    box = (yy >= y0[:, None, None]) & (yy < (y0 + eh)[:, None, None]) & (xx >= x0[:, None, None]) & (xx < (x0 + ew)[:, None, None])
    box &= (rng.random(n) < ERASE_PROB)[:, None, None]
    out = np.where(box[..., None], rng.random(out.shape, dtype=np.float32), out)
    return out.astype(x.dtype, copy=False)


def augmented_batches(keras, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
    """A Keras PyDataset that reshuffles every epoch and augments every batch anew (seeded)."""

    class GarmentBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(y))

        def __len__(self):
            return int(np.ceil(len(y) / batch_size))

        def __getitem__(self, i):
            idx = self.order[i * batch_size:(i + 1) * batch_size]
            return augment_batch(x[idx], self.rng), y[idx]

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(y))

    return GarmentBatches()
