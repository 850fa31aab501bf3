"""Which steps of the photo conversion (runtime/photo.py) carry photo accuracy, and which choice is better where
the dataset's recipe leaves one open: each variant of the conversion on a photo benchmark, one artifact, one table.

    python scripts/photo_conversion_study.py PHOTO_DIR [--release artifacts/reference] [--variant tflite-int8]
        [--json artifacts/photo_study.json]

Also how sure the model is on photos: accuracy by top-1 probability under the shipped conversion, and the highest
probability below which the answers are right less than two times in three (the web app says "not sure" there:
photo.json's `not_sure_below`).

Variants: the shipped parameters; centring by mass instead of by box; no sharpening; no contrast stretch; and two
ablations, no trimming (the whole frame fitted into 28x28) and no background model (negated luma, as before).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from unittest import mock

import numpy as np

import runtime
import runtime.photo as photo
from fmnist_edge import data as fdata
from fmnist_edge.host import provenance
from runtime.images import decode


def luma_only(rgb, p):
    """The ablation of the background model: negated luma where the border is light, no levelling."""
    y = photo.ycbcr(photo.shrink(rgb, p["work_side"]))[..., 0]
    band = photo.band_mask(*y.shape, p["border_band"])
    return (255 - y if np.median(y[band]) > 127 else y), 0.0


def whole_frame(d, threshold, fraction, *edge):
    return 0, d.shape[0] - 1, 0, d.shape[1] - 1


VARIANTS = {
    "shipped (photo.json)": ({}, {}),
    "centre by mass": ({"centre": "mass"}, {}),
    "no sharpening": ({"sharpen_amount": 0.0}, {}),
    "no contrast stretch": ({"stretch_quantile": 1.0}, {}),
    "no trimming": ({}, {"trim_box": whole_frame}),
    "no background model": ({"min_threshold": 0.0}, {"garment_map": luma_only}),
}


def confidence_table(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy in bins of top-1 probability, and the highest cut (in steps of 0.05) under which the photos
    below it are right less than two times in three."""
    top, right = probs.max(1), probs.argmax(1) == labels
    edges = np.round(np.arange(0.0, 1.01, 0.1), 2)
    bins = [{"from": float(lo), "to": float(hi), "photos": int(m.sum()), "accuracy": round(float(right[m].mean()), 4) if m.any() else None}
            for lo, hi in zip(edges[:-1], edges[1:]) for m in [(top >= lo) & (top < hi if hi < 1 else top <= hi)]]
    cut = max((float(t) for t in np.round(np.arange(0.2, 0.95, 0.05), 2)
               if (top < t).any() and right[top < t].mean() < 2 / 3), default=None)
    return {"bins": bins, "not_sure_below": cut, "photos_below": int((top < cut).sum()) if cut else 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos", type=Path)
    ap.add_argument("--release", type=Path, default=Path("artifacts/reference"))
    ap.add_argument("--variant", default="tflite-int8")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    record = json.loads((args.photos / "photos.json").read_text())
    labels = np.array([p["label"] for p in record["photos"]])
    clf = runtime.load(args.release / args.variant)
    raw = fdata.load(None, download=False, train=False).x_test[[p["test_index"] for p in record["photos"]]]
    # Decoded and shrunk once: every variant starts from the same working-size pixels.
    pixels = [photo.shrink(decode(args.photos / p["file"]), photo.PARAMS["work_side"]) for p in record["photos"]]
    rows, shipped = [], None
    for name, (params, patches) in VARIANTS.items():
        with mock.patch.multiple(photo, **patches) if patches else mock.patch.dict({}):
            x = []
            for rgb in pixels:
                try:
                    x.append(photo.to_fmnist(rgb, {**photo.PARAMS, **params}))
                except photo.NoGarmentError:
                    x.append(np.zeros((28, 28), np.uint8))
        probs = clf.predict_proba(np.stack(x))
        shipped = probs if shipped is None else shipped
        acc = float((probs.argmax(1) == labels).mean())
        rows.append({"conversion": name, "accuracy": acc})
        print(f"{name:24s} {acc:.4f}", flush=True)
    raw_acc = float((clf.predict(raw) == labels).mean())
    confidence = confidence_table(shipped, labels)
    for c in confidence["bins"]:
        print(f"top-1 p in [{c['from']:.1f}, {c['to']:.1f}): {c['photos']:5d} photos, accuracy {c['accuracy']}")
    print(f"right less than two times in three below p = {confidence['not_sure_below']}")
    print(f"{'raw 28x28 (same garments)':24s} {raw_acc:.4f}")
    if args.json:
        args.json.write_text(json.dumps({
            "command": f"python scripts/photo_conversion_study.py {args.photos} --release {args.release} "
                       f"--variant {args.variant} --json {args.json}",
            "benchmark": record["command"], "photos": len(labels), "artifact": f"{args.release}/{args.variant}",
            "raw_accuracy": raw_acc, "rows": rows, "confidence": confidence, **provenance("numpy", "pillow")}, indent=2) + "\n")


if __name__ == "__main__":
    main()
