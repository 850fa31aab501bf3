"""Render Fashion-MNIST test-split garments as shop and phone photos, under named conditions, for
`fmnist-edge bench RUN --photos DIR`. Test images only (never training ones); seeded, so the same command makes
the same photos. `--set shop` (the default) is the first benchmark's ten conditions (fmnist_edge/photo_bench.py);
`--set tuning` and `--set held-out` are the hard photo sets (fmnist_edge/hard_photos.py): the conversion's
parameters are chosen on the first and reported on the second, which has other garments, seeds and conditions.

    python scripts/make_photo_benchmark.py DIR [--set shop|tuning|held-out] [--n 1200] [--seed S] [--data DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fmnist_edge import data as fdata
from fmnist_edge import hard_photos
from fmnist_edge.photo_bench import make_benchmark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--set", dest="which", choices=["shop", *hard_photos.SETS], default="shop")
    ap.add_argument("--n", type=int, default=1200, help="photos (at least 1,000 for the recorded results)")
    ap.add_argument("--seed", type=int, default=None, help="default: 0 for shop, the set's own seed otherwise")
    ap.add_argument("--data", type=Path, default=None, help="the dataset's directory (default: the usual places)")
    args = ap.parse_args()
    ds = fdata.load(args.data, download=False, train=False)
    if args.which == "shop":
        record = make_benchmark(args.out, ds.x_test, ds.y_test, args.n, args.seed or 0)
    else:
        record = hard_photos.make_set(args.out, ds.x_test, ds.y_test, args.which, args.n, args.seed)
    print(f"{len(record['photos'])} photos in {args.out} ({args.which} set, {len(record['conditions'])} conditions)")


if __name__ == "__main__":
    main()
