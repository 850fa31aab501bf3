"""Photo accuracy for `fmnist-edge bench RUN --photos DIR`: each artifact's accuracy on photos of garments, through
`runtime.load_image` (the path `predict` and the web app take), next to its accuracy on the same garments' raw
28x28 test images, overall and per named condition.

DIR is either a photo benchmark (`photos.json` from scripts/make_photo_benchmark.py: each photo's label, test
index and condition), or your own photos sorted into one folder per class (`DIR/Sneaker/*.jpg`, named as the
release's class names; no raw twin, one condition per folder tree).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import FmnistEdgeError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
OWN = "your photos"


@dataclass(frozen=True)
class PhotoSet:
    root: Path
    files: tuple[Path, ...]
    labels: np.ndarray
    conditions: tuple[str, ...]
    test_indices: np.ndarray | None  # each photo's garment in the test split (None: the user's own photos)
    described: dict  # condition -> what it shows


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def read_photo_set(root: Path, class_names: list[str]) -> PhotoSet:
    """DIR's photos and labels (photos.json, or one folder per class); FmnistEdgeError saying what DIR needs."""
    root = Path(root)
    if not root.is_dir():
        raise FmnistEdgeError(f"--photos {root}: not a directory. Give a folder made by "
                              "`python scripts/make_photo_benchmark.py DIR`, or one holding a folder of photos per class.")
    index = root / "photos.json"
    if index.is_file():
        try:
            record = json.loads(index.read_text())
            photos = record["photos"]
            files = tuple(root / p["file"] for p in photos)
            labels = np.array([int(p["label"]) for p in photos])
            test = np.array([int(p["test_index"]) for p in photos])
            conditions = tuple(str(p["condition"]) for p in photos)
        except (ValueError, KeyError, TypeError) as exc:
            raise FmnistEdgeError(f"{index}: not a photo benchmark index ({exc}); remake it with "
                                  "`python scripts/make_photo_benchmark.py`.") from None
        missing = [str(f) for f in files if not f.is_file()]
        if missing or not files:
            raise FmnistEdgeError(f"{index}: {len(missing)} photo(s) missing (first: {missing[:1]}) or none listed; "
                                  "remake the benchmark.")
        return PhotoSet(root, files, labels, conditions, test, dict(record.get("conditions", {})))
    by_key = {_key(n): i for i, n in enumerate(class_names)}
    files, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if _key(folder.name) not in by_key:
            raise FmnistEdgeError(f"--photos: folder {folder.name!r} is not a class name; name each folder after one "
                                  f"of {', '.join(class_names)}.")
        for f in sorted(folder.rglob("*")):
            if f.suffix.lower() in PHOTO_SUFFIXES:
                files.append(f)
                labels.append(by_key[_key(folder.name)])
    if not files:
        raise FmnistEdgeError(f"--photos {root}: no photos.json and no photos in class folders ({', '.join(class_names)}).")
    return PhotoSet(root, tuple(files), np.array(labels), (OWN,) * len(files), None, {OWN: f"photos in {root}"})


def preprocess(photos: PhotoSet) -> tuple[np.ndarray, np.ndarray]:
    """Every photo through runtime.load_image: (N, 28, 28) uint8 and a mask of those where no garment was found
    (their input is blank and they count as wrong). An unreadable photo stops the benchmark, naming it."""
    from runtime.images import NoGarmentError, load_image

    images = np.zeros((len(photos.files), 28, 28), np.uint8)
    found = np.ones(len(photos.files), bool)
    for i, f in enumerate(photos.files):
        try:
            images[i] = load_image(f)
        except NoGarmentError:
            found[i] = False
    return images, found


def photo_block(photo_probs: np.ndarray, found: np.ndarray, photos: PhotoSet, raw_probs: np.ndarray | None) -> dict:
    """A variant's photo accuracy, overall and per condition, beside the raw 28x28 accuracy of the same garments."""
    right = (photo_probs.argmax(1) == photos.labels) & found
    raw = None if raw_probs is None else raw_probs.argmax(1) == photos.labels
    conditions = np.array(photos.conditions)

    def part(mask) -> dict:
        return {"photos": int(mask.sum()), "accuracy": float(right[mask].mean()),
                "raw_accuracy": None if raw is None else float(raw[mask].mean()),
                "no_garment": int((~found[mask]).sum())}

    block = part(np.ones(len(right), bool))
    block["conditions"] = {c: part(conditions == c) for c in dict.fromkeys(photos.conditions)}
    return block
