"""Render Fashion-MNIST test-split garments as shop and phone photos, under named conditions, for
`fmnist-edge bench RUN --photos DIR`. Test images only (never training ones); seeded, so the same command makes
the same photos (fmnist_edge/photo_bench.py renders them; its CONDITIONS name what each shows).

    python scripts/make_photo_benchmark.py DIR [--n 1200] [--seed 0] [--data DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fmnist_edge import data as fdata
from fmnist_edge.photo_bench import CONDITIONS, make_benchmark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=1200, help="photos (at least 1,000 for the recorded results)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=None, help="the dataset's directory (default: the usual places)")
    args = ap.parse_args()
    ds = fdata.load(args.data, download=False, train=False)
    record = make_benchmark(args.out, ds.x_test, ds.y_test, args.n, args.seed)
    print(f"{len(record['photos'])} photos in {args.out} ({len(CONDITIONS)} conditions)")


if __name__ == "__main__":
    main()
