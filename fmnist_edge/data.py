"""Find, read and verify the real Fashion-MNIST dataset (the four original IDX files), offline first.

Search order (first match wins): an explicit directory (`--data-dir`), the `FMNIST_DATA_DIR`
environment variable, the Keras cache (`~/.keras/datasets/fashion-mnist`), the Debian/Ubuntu package
(`/usr/share/datasets/fashion-mnist`), and finally a download through Keras when the network allows.
An explicit directory or `FMNIST_DATA_DIR` is authoritative: if it is given but wrong we stop there
instead of silently using another copy.

Everything loaded is verified: IDX magic numbers, dimensions, counts (60,000 / 10,000), label range,
and the sha256 of the decompressed bytes (the Debian package recompresses the .gz files, so the
compressed bytes differ from Zalando's while the content is identical).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
NUM_CLASSES = 10

# name -> (kind, expected count, sha256 of the decompressed IDX bytes)
FILES = {
    "train-images-idx3-ubyte": ("images", 60_000, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte": ("labels", 60_000, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte": ("images", 10_000, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte": ("labels", 10_000, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}

ENV_VAR = "FMNIST_DATA_DIR"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

HOW_TO_GET = (
    "Get the data in one of three ways:\n"
    "  1. sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu; files land in /usr/share/datasets/fashion-mnist)\n"
    "  2. put the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,\n"
    "     t10k-labels-idx1-ubyte.gz) in a directory and pass --data-dir DIR or set FMNIST_DATA_DIR=DIR\n"
    "  3. on a machine with internet: python -c \"import keras; keras.datasets.fashion_mnist.load_data()\"\n"
    "     (caches them in ~/.keras/datasets/fashion-mnist)"
)


def keras_cache_dir() -> Path:
    # Keras honours KERAS_HOME for its cache; mirror that so we find what Keras downloaded.
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return home / "datasets" / "fashion-mnist"


@dataclass(frozen=True)
class Dataset:
    """The verified dataset: uint8 images (N, 28, 28) and uint8 labels (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # directory the files were read from
    checksums: dict  # file name -> sha256 of decompressed bytes


def _open_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """Read a file, decompressing it if it is gzip (by magic bytes, not by name). With `max_bytes`, a file
    that is, or decompresses to, more than that is refused before it is held in memory (a gzip bomb
    named like a dataset file would otherwise exhaust a small device)."""
    too_big = (f"{path}: larger than the {max_bytes:,} bytes this Fashion-MNIST file has; it is not the original "
               f"file (or is a decompression bomb). Get the original again.\n{HOW_TO_GET}")
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise DataError(too_big)
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}).\n{HOW_TO_GET}") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            data = f.read(-1 if max_bytes is None else max_bytes + 1)
        if max_bytes is not None and len(data) > max_bytes:
            raise DataError(too_big)
        return data
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(
            f"{path}: the gzip stream is truncated or corrupted ({exc}). Delete the file and get it again.\n{HOW_TO_GET}"
        ) from None


def parse_idx(data: bytes, expected_magic: int, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into a uint8 array, checking the magic number and that the size matches the header."""
    ndim = 3 if expected_magic == IMAGE_MAGIC else 1
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: only {len(data)} bytes, shorter than the {header}-byte IDX header; the file is truncated.")
    magic = int.from_bytes(data[0:4], "big")
    if magic != expected_magic:
        what = "image" if expected_magic == IMAGE_MAGIC else "label"
        raise DataError(
            f"{name}: wrong IDX magic number {magic} (expected {expected_magic} for an {what} file); "
            "this is not the file its name says."
        )
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected_len = header + math.prod(dims)  # Python ints: a hostile header cannot overflow the check
    if len(data) != expected_len:
        state = "truncated" if len(data) < expected_len else "longer than its header says"
        raise DataError(
            f"{name}: header says shape {tuple(dims)} ({expected_len} bytes) but the content has {len(data)} bytes; "
            f"the file is {state}."
        )
    try:
        return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
    except ValueError as e:  # no items, but sides no array can have (numpy refuses the shape itself)
        raise DataError(f"{name}: header says shape {tuple(dims)}, which no array can have ({e}); the file is "
                        "corrupt: download it again.") from None


def _find_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def read_file(directory: Path, stem: str, verify_checksum: bool = True) -> tuple[np.ndarray, str]:
    """Read and verify one of the four files from `directory`; returns (array, sha256)."""
    kind, count, sha = FILES[stem]
    path = _find_file(directory, stem)
    if path is None:
        raise DataError(f"{directory / (stem + '.gz')}: missing (also looked for {stem} uncompressed).\n{HOW_TO_GET}")
    data = _open_bytes(path, (16 + count * 28 * 28) if kind == "images" else (8 + count))
    arr = parse_idx(data, IMAGE_MAGIC if kind == "images" else LABEL_MAGIC, str(path))
    if arr.shape[0] != count:
        raise DataError(f"{path}: holds {arr.shape[0]} {kind}, expected {count:,}. Get the original file again.\n{HOW_TO_GET}")
    if kind == "images" and arr.shape[1:] != (28, 28):
        raise DataError(f"{path}: images are {arr.shape[1]}x{arr.shape[2]}, expected 28x28.")
    if kind == "labels" and arr.size and int(arr.max()) >= NUM_CLASSES:
        raise DataError(f"{path}: label {int(arr.max())} is out of range; Fashion-MNIST labels are 0..9.")
    digest = hashlib.sha256(data).hexdigest()
    if verify_checksum and digest != sha:
        raise DataError(
            f"{path}: content checksum {digest[:16]}... does not match the original Fashion-MNIST ({sha[:16]}...); "
            f"the file is corrupted or is a different dataset.\n{HOW_TO_GET}"
        )
    return arr, digest


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """Where we look, in order, as (label, path). An explicit choice or the env var replaces the defaults."""
    if data_dir is not None:
        return [("--data-dir", Path(data_dir))]
    if os.environ.get(ENV_VAR):
        return [(ENV_VAR, Path(os.environ[ENV_VAR]))]
    return [("Keras cache", keras_cache_dir()), ("Debian package", DEBIAN_DIR)]


def _has_any(directory: Path) -> bool:
    try:
        return directory.is_dir() and any(_find_file(directory, stem) for stem in FILES)
    except OSError:  # an unreadable directory on the search path holds nothing we can use: look further
        return False


def _download_with_keras() -> Path:
    """Let Keras download into its cache; returns the cache directory. Raises DataError offline."""
    try:
        import keras
    except ImportError:
        raise DataError(f"Fashion-MNIST not found locally and Keras is not installed to download it.\n{HOW_TO_GET}") from None
    try:
        keras.datasets.fashion_mnist.load_data()
    except Exception as exc:  # network errors come in many types (URLError, socket errors, HTTP errors)
        raise DataError(
            f"Fashion-MNIST not found locally and the download through Keras failed ({type(exc).__name__}: {exc}).\n{HOW_TO_GET}"
        ) from None
    return keras_cache_dir()


def locate(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return the directory to read from, following the documented search order."""
    candidates = candidate_dirs(data_dir)
    for label, directory in candidates:
        if _has_any(directory):
            return directory
        if label in ("--data-dir", ENV_VAR):
            raise DataError(f"{label} points to {directory}, which holds none of the Fashion-MNIST files.\n{HOW_TO_GET}")
    looked = ", ".join(f"{label} ({path})" for label, path in candidates)
    if not download:
        raise DataError(f"Fashion-MNIST not found. Looked in: {looked}; download disabled.\n{HOW_TO_GET}")
    return _download_with_keras()


def load(data_dir: str | os.PathLike | None = None, download: bool = True, train: bool = True) -> Dataset:
    """Locate and load the verified dataset. `train=False` skips the 47 MB training images (x_train and
    y_train are then empty), which matters on a small device that only needs the test set."""
    directory = locate(data_dir, download)
    arrays, sums = {}, {}
    for stem in FILES:
        if train or stem.startswith("t10k"):
            arrays[stem], sums[stem] = read_file(directory, stem)
    empty = np.zeros((0, 28, 28), np.uint8)
    return Dataset(
        x_train=arrays.get("train-images-idx3-ubyte", empty),
        y_train=arrays.get("train-labels-idx1-ubyte", empty[:, 0, 0]),
        x_test=arrays["t10k-images-idx3-ubyte"],
        y_test=arrays["t10k-labels-idx1-ubyte"],
        source=str(directory),
        checksums=sums,
    )


def split(n: int, validation: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded shuffle of range(n) into (train, validation) index arrays.

    `validation` is a fraction in [0, 1) or an absolute count. The same (n, validation, seed) always
    gives the same split, independent of the Keras backend.
    """
    n_val = int(round(validation * n)) if isinstance(validation, float) else int(validation)
    if not 0 <= n_val < n:
        raise ValueError(f"validation size {n_val} must be in [0, {n}).")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def subset(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Seeded, class-balanced choice of `limit` indices (for quick smoke runs)."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in range(NUM_CLASSES)]
    # Round-robin over classes so every class is represented even for small limits.
    picked = [idx for row in zip(*per_class) for idx in row][:limit] if limit < len(labels) else list(range(len(labels)))
    return np.sort(np.asarray(picked, dtype=np.int64))


def run_test_subset(y_test: np.ndarray, limit: int | None, seed: int | None) -> np.ndarray:
    """Which test images a run was judged on: all of them, or its --limit subset drawn with the run's seed (seed 0
    for an exported model file, which has none). Training, export and bench all select them here."""
    return subset(y_test, limit, 0 if seed is None else seed) if limit else np.arange(len(y_test))


def to_model_input(images: np.ndarray) -> np.ndarray:
    """The preprocessing contract: uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1]."""
    return (images.astype(np.float32) / np.float32(255.0)).reshape(-1, 28, 28, 1)


def run_split(data_dir, download: bool, limit: int | None, seed: int, validation) -> dict:
    """A run's data: load, subset (quick mode, `limit`) and split by `validation` (a fraction, a count or
    "test"), seeded; returns model-input arrays plus a description for the manifest. Training and export
    (which rebuilds the run's training split for calibration and fine-tuning) both call it."""
    ds = load(data_dir, download)
    x_train, y_train, x_test, y_test = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    if limit is not None:
        if limit < 20:
            raise ConfigError(f"--limit must be at least 20 images (2 per class), got {limit}.")
        tr = subset(y_train, limit, seed)
        te = run_test_subset(y_test, limit, seed)
        x_train, y_train, x_test, y_test = x_train[tr], y_train[tr], x_test[te], y_test[te]
    val = validation
    if val == "test":
        fit_idx, val_idx = np.arange(len(y_train)), None
    else:
        if isinstance(val, int) and limit is not None:
            val = val / len(ds.y_train)  # keep the recipe's proportion when only a subset is used
        try:
            fit_idx, val_idx = split(len(y_train), val, seed)
        except ValueError as exc:
            raise ConfigError(f"--validation: {exc}") from None
    x_val, y_val = (x_test, y_test) if val_idx is None else (x_train[val_idx], y_train[val_idx])
    return {
        "x_fit": to_model_input(x_train[fit_idx]),
        "y_fit": y_train[fit_idx],
        "x_val": to_model_input(x_val) if len(y_val) else None,
        "y_val": y_val,
        "x_test": to_model_input(x_test),
        "y_test": y_test,
        "describe": {
            "source": ds.source,
            "sha256_decompressed": ds.checksums,
            "train_images": int(len(fit_idx)),
            "validation_images": int(len(y_val)),
            "validation_source": "test set (seed's recipe)" if val_idx is None else f"seeded split of the training set (seed {seed})",
            "test_images": int(len(y_test)),
            "limit": limit,
        },
    }
