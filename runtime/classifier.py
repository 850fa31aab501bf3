"""`load(path) -> Classifier`: run an exported artifact with numpy + LiteRT and/or ONNX Runtime only.

The Classifier applies the manifest's preprocessing contract (uint8 28x28, light garment on dark
background -> float32 / 255) and the int8 quantization of the model's input and output itself, so
callers hand it images and get probabilities back, whatever the variant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import manifest as mf
from . import metadata
from .backends import open_backend
from .errors import RuntimeArtifactError

MANIFEST_NAME = "manifest.json"
# For bare model files without a manifest. The runtime may not import fmnist_edge, so this mirrors
# fmnist_edge.CLASS_NAMES; a test keeps the two equal.
DEFAULT_CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                       "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float -> int8 with the tensor's (scale, zero_point): clip(round(x / scale + zp), -128, 127)."""
    return np.clip(np.round(x / np.float32(scale) + zero_point), -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def check_images(images) -> np.ndarray:
    """Validate images; returns them as (N, 28, 28), uint8 or float32 in [0, 1].

    Accepts uint8 in 0..255 or floats already in [0, 1]; (N, 28, 28), (N, 28, 28, 1) or a single (28, 28).
    """
    x = np.asarray(images)
    if x.ndim == 2 or x.shape == (28, 28, 1):  # one image, with or without its channel axis
        x = x.reshape(1, 28, 28) if x.size == 28 * 28 else x[None]
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"expected images of shape (N, 28, 28) or (N, 28, 28, 1), got {np.asarray(images).shape}.")
    if x.shape[0] == 0:
        raise ValueError("expected at least one image, got an empty batch.")
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise ValueError("images contain NaN or infinite values.")
        if x.min() < 0.0 or x.max() > 1.0:
            raise ValueError(
                f"float images must be in [0, 1] (uint8 / 255), got range [{x.min():.3g}, {x.max():.3g}]; "
                "pass uint8 pixels or divide by 255."
            )
        return x.astype(np.float32, copy=False)
    raise ValueError(f"expected uint8 pixels or float32 values in [0, 1], got dtype {x.dtype}.")


def to_float_images(images) -> np.ndarray:
    """The preprocessing contract: validated images -> float32 (N, 28, 28, 1) in [0, 1]."""
    x = check_images(images)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255.0)
    return x[..., None]


@dataclass
class Classifier:
    """A loaded artifact. `predict_proba` returns float32 (N, 10) probabilities."""

    path: Path
    manifest: dict
    backend: object

    def __post_init__(self):
        self._qin = self.manifest["input"].get("quantization")
        self._qout = self.manifest["output"].get("quantization")
        # uint8 pixels have only 256 values: precompute what each becomes (through exactly the float
        # path: /255, then quantize), so the hot path is one table lookup instead of five array passes.
        pixels = np.arange(256, dtype=np.float32) / np.float32(255.0)
        self._lut = quantize(pixels, self._qin["scale"], self._qin["zero_point"]) if self._qin else pixels
        if self._qout:  # likewise every int8 output value, indexed by its bit pattern as uint8
            codes = np.arange(256, dtype=np.uint8).view(np.int8)
            self._dequant_lut = dequantize(codes, self._qout["scale"], self._qout["zero_point"])

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["class_names"])

    @property
    def variant(self) -> str:
        return self.manifest["variant"]

    @property
    def folded_contract(self) -> str | None:
        """What the model inside expects when export folded an input contract into its graph (e.g. "[-1, 1]"),
        else None; either way the caller feeds pixels."""
        folded = self.manifest["preprocessing"].get("model_input")
        return folded.get("description") if folded and (folded["scale"], folded["offset"]) != (1.0, 0.0) else None

    def model_input(self, images) -> np.ndarray:
        """Validated, preprocessed and (for int8 inputs) quantized: exactly what the interpreter receives."""
        x = check_images(images)
        if x.dtype == np.uint8:
            return self._lut[x][..., None]
        x = x[..., None]
        return quantize(x, self._qin["scale"], self._qin["zero_point"]) if self._qin else x

    def predict_proba(self, images, batch_size: int | None = None) -> np.ndarray:
        """Probabilities for any number of images; `batch_size` bounds the interpreter's batch (memory)."""
        if batch_size is not None:
            if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
                raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
            x = check_images(images)  # batch over images, never over the rows of one image
            if len(x) > batch_size:
                return np.concatenate([self.predict_proba(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
            images = x
        y = self.backend.run(self.model_input(images))
        return self._dequant_lut[y.view(np.uint8)] if self._qout else y.astype(np.float32, copy=False)

    def predict(self, images) -> np.ndarray:
        """Top-1 class indices. int8 outputs are coarse (1/256 steps): ties go to the lowest class index."""
        return self.predict_proba(images).argmax(axis=1)

    def top_k(self, images, k: int = 3) -> list[list[tuple[str, float]]]:
        n = len(self.class_names)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
            raise ValueError(f"k must be an integer from 1 to {n}, got {k!r}.")
        probs = self.predict_proba(images)
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return [[(self.class_names[j], float(p[j])) for j in row] for p, row in zip(probs, order)]


def _manifest_from_file(model: Path, backend) -> dict:
    """A lone model file: described by the metadata export embedded in it (labels, contract, lineage), or, for a
    file without any (another tool's, or exported before they were embedded), by the defaults."""
    entries = backend.metadata()
    doc = metadata.parse(entries, str(model))
    manifest = mf.validate({
        "schema_version": mf.ARTIFACT_SCHEMA_VERSION,
        "variant": doc["variant"] if doc else model.stem,
        "format": backend.format,
        "file": {"path": model.name, "sha256": mf.sha256_file(model), "bytes": model.stat().st_size},
        "input": {**backend.tensor("input"), "quantization": backend.quantization("input")},
        "output": {**backend.tensor("output"), "quantization": backend.quantization("output")},
        "preprocessing": doc["input"]["preprocessing"] if doc else
        {"steps": ["cast to float32", "divide by 255.0", "reshape to (N, 28, 28, 1)"]},
        "class_names": doc["labels"] if doc else list(DEFAULT_CLASS_NAMES),
        **({"lineage": doc["run"], "photo": doc["photo"],
            "embedded_metadata": metadata.record(backend.format, entries)} if doc else {}),
    }, str(model))
    if doc:
        for which in ("input", "output"):
            check_quantization(model, which, backend.quantization(which), doc["quantization"].get(which),
                               "its embedded metadata")
    return manifest


def load(path, num_threads: int = 1, verify_checksum: bool = True) -> Classifier:
    """Load an artifact from its directory, its manifest.json, or a bare .tflite/.onnx file.

    With a manifest, the model file's sha256 is checked before loading (skip with verify_checksum=False)
    and a tampered or truncated file is refused.
    """
    path = Path(path)
    if path.is_dir():
        manifest_path = path / MANIFEST_NAME
    elif path.name == MANIFEST_NAME or path.suffix == ".json":
        manifest_path = path
    elif path.is_file():
        beside = path.parent / MANIFEST_NAME
        manifest_path = beside if beside.is_file() else None
    else:
        raise RuntimeArtifactError(f"{path}: no such artifact (expected a directory, a manifest.json or a model file).")
    if manifest_path is None:
        backend = open_backend(path, num_threads)
        clf = Classifier(path, _manifest_from_file(path, backend), backend)
        if "embedded_metadata" not in clf.manifest:
            check_bare_file(path, clf)
        return clf
    if not manifest_path.is_file():
        raise RuntimeArtifactError(f"{path}: no {MANIFEST_NAME} found; is this an exported artifact directory?")
    manifest = mf.read(manifest_path)
    model = mf.model_path(manifest, manifest_path.parent)
    if not model.is_file():
        raise RuntimeArtifactError(f"{model}: the model file named by {manifest_path} is missing.")
    if verify_checksum:
        digest = mf.sha256_file(model)
        if digest != manifest["file"]["sha256"]:
            raise RuntimeArtifactError(
                f"{model}: sha256 {digest[:16]}... does not match the manifest ({manifest['file']['sha256'][:16]}...); "
                "the file was modified or truncated. Re-copy the artifact (or pass verify_checksum=False to override)."
            )
    backend = open_backend(model, num_threads)
    if backend.format != manifest["format"]:
        raise RuntimeArtifactError(f"{model}: the file is {backend.format} but the manifest says {manifest['format']}.")
    for which in ("input", "output"):
        actual, declared = backend.tensor(which), manifest[which]
        # The batch dimension may be fixed in the file and dynamic in the manifest; the rest must agree.
        if actual["shape"][1:] != declared["shape"][1:] or actual["dtype"] != declared["dtype"]:
            raise RuntimeArtifactError(
                f"{model}: the model's {which} is {actual['dtype']} {actual['shape']} but its manifest declares "
                f"{declared['dtype']} {declared['shape']}; the file and manifest do not belong together."
            )
        check_quantization(model, which, backend.quantization(which), declared.get("quantization"))
    metadata.refuse_contradictions(model, metadata.parse(backend.metadata(), str(model)), manifest)
    return Classifier(model, manifest, backend)


BARE_INPUT = ([None, 28, 28, 1], [1, 28, 28, 1])  # what a file with no metadata is fed: pixels / 255, NHWC


def check_bare_file(model: Path, clf: Classifier) -> None:
    """A model file with neither fmnist-edge's metadata nor a manifest is taken to take (N, 28, 28, 1) float pixels in
    [0, 1] and give probabilities. That is checked, not assumed: another layout is refused before any tensor reaches
    it, and outputs that are not probabilities (logits, scores) are refused on probe images, instead of being printed
    as 802% or -79%. The manifest records what was assumed and checked."""
    how = (f"Export it with `fmnist-edge export {model.name if model.suffix == '.onnx' else 'MODEL.keras'}` (an ONNX "
           "file, e.g. from torch.onnx.export, a Keras model file or a run), which folds its layout, input contract and "
           "softmax into the file and embeds what it expects, or give the artifact directory with its manifest.json.")
    shape = clf.manifest["input"]["shape"]
    if shape not in BARE_INPUT:
        raise RuntimeArtifactError(
            f"{model}: its input is {clf.manifest['input']['dtype']} {shape} and the file says nothing else about itself "
            "(no fmnist-edge metadata, no manifest.json beside it); this runtime feeds (N, 28, 28, 1) pixels / 255. "
            + how)
    rng = np.random.default_rng(0)
    probe = np.concatenate([np.zeros((1, 28, 28), np.uint8), np.full((1, 28, 28), 128, np.uint8),
                            rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)])
    out = clf.predict_proba(probe)
    # int8 softmax outputs come in 1/256 steps (QDQ ONNX too, inside a float boundary): ten of them round to within
    # a few hundredths of 1; logits or scores are nowhere near
    if out.shape[1:] != (len(clf.class_names),) or out.min() < 0 or out.max() > 1 or np.abs(out.sum(1) - 1).max() > 0.05:
        raise RuntimeArtifactError(
            f"{model}: its outputs are not class probabilities (on probe images: values from {out.min():.3g} to "
            f"{out.max():.3g}, rows summing to {out.sum(1).min():.3g}..{out.sum(1).max():.3g}), and the file says nothing "
            "else about itself (no fmnist-edge metadata, no manifest.json beside it): they may be logits. " + how)
    clf.manifest["assumed"] = ("no fmnist-edge metadata and no manifest: input taken as (N, 28, 28, 1) pixels / 255 in "
                               "[0, 1], output as probabilities in label order (checked on 4 probe images), Fashion-MNIST's "
                               "labels")


def check_quantization(model: Path, which: str, actual: dict | None, declared: dict | None,
                       by: str = "the manifest") -> None:
    """The file is the authority on its tensors' quantization: a manifest that says otherwise (edited,
    corrupted, or from another file) is refused, since it would turn every output into a wrong number."""
    if not metadata.same_quantization(declared, actual):
        raise RuntimeArtifactError(
            f"{model}: {by} declares {which} quantization {declared!r} but the model's tensor has {actual!r}; "
            f"{by} was edited or does not belong to this file. Re-copy the artifact directory.")
