"""Run artifacts on a fixed set of images and save their raw probabilities: the worker that the CPU
matrix (`fmnist-edge verify --cpu-matrix`) and export's portability gate start under emulation.

    python -m runtime.probe IMAGES.npy OUT.npz ARTIFACT [ARTIFACT ...]

IMAGES.npy holds uint8 (N, 28, 28) pixels; each ARTIFACT is a directory, manifest or bare model file.
OUT.npz gets one float32 (N, 10) array per artifact, in order, as `out0`, `out1`, .... Kept free of
everything but numpy and the interpreters, like the rest of the runtime.
"""

from __future__ import annotations

import sys

import numpy as np

from .classifier import load


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    images = np.load(argv[0], allow_pickle=False)
    outputs = {f"out{i}": load(path).predict_proba(images, batch_size=100) for i, path in enumerate(argv[2:])}
    np.savez(argv[1], **outputs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
