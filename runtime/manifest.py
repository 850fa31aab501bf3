"""The artifact manifest: the contract between `fmnist-edge export` and everything that runs an artifact.

Validated here with the standard library only, so a device can check an artifact without TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

from .errors import ManifestError

ARTIFACT_SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)
FORMATS = ("tflite", "onnx")

# field -> expected type(s); nested specs are checked by _check_tensor
REQUIRED = {
    "schema_version": int,
    "variant": str,
    "format": str,
    "file": dict,
    "input": dict,
    "output": dict,
    "preprocessing": dict,
    "class_names": list,
}


def _check_tensor(where: str, spec: dict) -> None:
    for key, typ in (("name", str), ("shape", list), ("dtype", str)):
        if not isinstance(spec.get(key), typ):
            raise ManifestError(f"manifest field {where}.{key} must be a {typ.__name__}, got {spec.get(key)!r}.")
    q = spec.get("quantization")
    if q is not None:
        if not (isinstance(q, dict) and isinstance(q.get("scale"), (int, float)) and isinstance(q.get("zero_point"), int)
                and not isinstance(q.get("zero_point"), bool)):
            raise ManifestError(f"manifest field {where}.quantization must be {{'scale': float, 'zero_point': int}}, got {q!r}.")
        # int8/uint8 tensors: a zero point outside 8 bits or a scale no real quantizer produces is corruption.
        if not (math.isfinite(q["scale"]) and 1e-12 < q["scale"] < 1e6):
            raise ManifestError(f"manifest field {where}.quantization.scale must be a finite positive number, got {q['scale']}.")
        if not -128 <= q["zero_point"] <= 255:
            raise ManifestError(f"manifest field {where}.quantization.zero_point must fit 8 bits, got {q['zero_point']}.")


def validate(manifest: object, source: str = "manifest") -> dict:
    """Check a parsed manifest; return it unchanged or raise ManifestError saying what is wrong."""
    if not isinstance(manifest, dict):
        raise ManifestError(f"{source}: expected a JSON object, got {type(manifest).__name__}.")
    for key, typ in REQUIRED.items():
        if key not in manifest:
            raise ManifestError(f"{source}: required field {key!r} is missing.")
        if not isinstance(manifest[key], typ) or (typ is int and isinstance(manifest[key], bool)):
            raise ManifestError(f"{source}: field {key!r} must be {typ.__name__}, got {type(manifest[key]).__name__}.")
    version = manifest["schema_version"]
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise ManifestError(
            f"{source}: schema_version {version} is not supported by this runtime (supports {SUPPORTED_SCHEMA_VERSIONS}); "
            "upgrade fmnist-edge or re-export the artifact."
        )
    if manifest["format"] not in FORMATS:
        raise ManifestError(f"{source}: format must be one of {FORMATS}, got {manifest['format']!r}.")
    f = manifest["file"]
    if not isinstance(f.get("path"), str) or not isinstance(f.get("sha256"), str) or not isinstance(f.get("bytes"), int):
        raise ManifestError(f"{source}: field 'file' needs path (str), sha256 (str) and bytes (int).")
    _check_tensor("input", manifest["input"])
    _check_tensor("output", manifest["output"])
    for which, rank in (("input", 4), ("output", 2)):
        shape = manifest[which]["shape"]
        if len(shape) != rank or not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in shape):
            raise ManifestError(f"{source}: {which}.shape must be {rank} positive ints or null, got {shape!r}.")
    check_preprocessing(manifest["preprocessing"], source)
    n_classes = manifest["output"]["shape"][-1]
    names = manifest["class_names"]
    if len(names) != n_classes or not all(isinstance(c, str) for c in names):
        raise ManifestError(f"{source}: class_names must be {n_classes} strings.")
    return manifest


def check_preprocessing(pre: dict, source: str) -> None:
    """The runtime feeds every artifact pixels / 255, in [0, 1]: a model's own input contract (raw pixels,
    [-1, 1], mean/std) must be folded into its graph at export and only recorded in `model_input`. A
    manifest that asks for other inputs at the boundary would get wrong answers silently, so it is refused."""
    rng = pre.get("input_range", [0.0, 1.0])
    if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, (int, float)) for v in rng)) or list(rng) != [0, 1]:
        raise ManifestError(f"{source}: preprocessing.input_range is {rng!r}, but this runtime feeds every artifact "
                            "pixels / 255 in [0, 1]; re-export the model with its input contract (--input-range, "
                            "--input-norm) folded into the graph.")
    contract = pre.get("model_input")
    if contract is not None and not (isinstance(contract, dict) and all(
            isinstance(contract.get(k), (int, float)) and math.isfinite(contract[k]) for k in ("scale", "offset"))):
        raise ManifestError(f"{source}: preprocessing.model_input must record the folded contract's scale and offset, "
                            f"got {contract!r}.")


def read_json(path: str | os.PathLike):
    """Parse a JSON file of a release, or raise ManifestError naming it (unreadable, not UTF-8, invalid)."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ManifestError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ManifestError(f"{path}: not valid JSON ({type(exc).__name__}: {str(exc)[:200]}).") from None


def read(path: str | os.PathLike) -> dict:
    return validate(read_json(path), str(path))


# A release's folder of Keras outputs (golden images, Keras's test outputs, their manifest), beside its variants.
KERAS_OUTPUTS = "keras-outputs"
LEGACY_KERAS_OUTPUTS = "reference"  # its name in releases exported before it was renamed; still read


def compression_search(manifest: dict) -> dict | None:
    """What export's pruning or clustering search tried and chose (exporters.search), if this artifact had one:
    the `search` entry of the section its variant's fine-tuning writes (runtime.variants)."""
    from .variants import VARIANTS

    spec = VARIANTS.get(manifest.get("variant"))
    section = manifest.get(spec.fine_tune) if spec and spec.fine_tune else None
    return section.get("search") if isinstance(section, dict) else None


def keras_outputs_dir(release: Path) -> Path:
    """The release's Keras-outputs folder: keras-outputs/, or reference/ in a release exported before the rename."""
    release = Path(release)
    new, old = release / KERAS_OUTPUTS, release / LEGACY_KERAS_OUTPUTS
    return old if not new.is_dir() and (old / "manifest.json").is_file() else new


def model_path(manifest: dict, artifact_dir: Path) -> Path:
    """Resolve manifest['file']['path'] inside the artifact directory; refuse anything that escapes it."""
    return inside(manifest["file"]["path"], artifact_dir)


def inside(rel: str, artifact_dir: Path) -> Path:
    """Resolve a path named by a manifest within the artifact directory, refusing escapes and symlinks."""
    if not isinstance(rel, str) or not rel or "\x00" in rel or os.path.isabs(rel) or ".." in Path(rel).parts:
        raise ManifestError(f"manifest file path {rel!r} must be a plain name inside the artifact directory.")
    candidate = artifact_dir / rel
    if candidate.is_symlink() or not candidate.resolve().is_relative_to(artifact_dir.resolve()):
        raise ManifestError(f"manifest file path {rel!r} resolves outside the artifact directory; refused.")
    return candidate


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
