"""On-device check of an artifact against the outputs recorded when it was exported.

Runs the golden images shipped with a release (`<run>/reference/golden.npz`) through the artifact on
this device and compares with (1) the artifact's own outputs recorded at export on the exporting
machine, which must match to within float noise or one int8 output step, and (2) the Keras outputs,
reported as agreement. A mismatch means a wrong runtime version, wrong quantization handling, a
corrupted file or kernels that compute differently here (e.g. emulated CPU features).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import manifest as mf
from .classifier import Classifier, load
from .errors import RuntimeArtifactError

# Agreement with the export-time outputs of the same artifact. int8 outputs are coarse (1/256 steps), and
# another CPU's kernels may round one step differently, which can flip an exact tie.
MIN_AGREEMENT = {"float32": 1.0, "int8": 0.99}


@dataclass
class VerifyResult:
    variant: str
    images: int
    agreement_with_export: float
    max_abs_diff_vs_export: float
    tolerance_abs: float
    agreement_with_keras: float
    accuracy: float
    keras_accuracy: float
    passed: bool
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _load_checked(path: Path, sha256: str | None) -> dict | np.ndarray:
    if not path.is_file():
        raise RuntimeArtifactError(f"{path}: missing; the release is incomplete (re-copy the whole run directory).")
    if sha256 is not None and mf.sha256_file(path) != sha256:
        raise RuntimeArtifactError(f"{path}: checksum does not match its manifest; the file was modified or truncated.")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise RuntimeArtifactError(f"{path}: unreadable ({exc}).") from None


def golden_set(reference_dir: Path) -> dict:
    """The golden images, labels and Keras outputs, checked against reference/manifest.json."""
    ref_manifest = reference_dir / "manifest.json"
    if not ref_manifest.is_file():
        raise RuntimeArtifactError(f"{ref_manifest}: missing; `verify` needs the reference outputs written by export.")
    files = json.loads(ref_manifest.read_text()).get("files", {})
    g = _load_checked(reference_dir / "golden.npz", files.get("golden.npz", {}).get("sha256"))
    return {k: g[k] for k in ("images", "labels", "keras_probs")}


def verify(artifact, num_threads: int = 1) -> VerifyResult:
    clf: Classifier = artifact if isinstance(artifact, Classifier) else load(artifact, num_threads=num_threads)
    m = clf.manifest
    rec = m.get("golden_outputs")
    if not rec:
        raise RuntimeArtifactError(f"{clf.path}: its manifest records no golden outputs; re-export it with this version.")
    art_dir = clf.path.parent
    expected = _load_checked(mf.inside(rec["path"], art_dir), rec["sha256"])
    g = golden_set(art_dir.parent / "reference")
    got = clf.predict_proba(g["images"])
    quant = m["output"].get("quantization")
    kind = "int8" if quant or "int8" in m["variant"] else "float32"
    # One int8 output step (plus float slack); float kernels may differ by rounding only.
    step = quant["scale"] if quant else 1.0 / 255
    tol = step * 1.01 if kind == "int8" else 1e-4
    agreement = float((got.argmax(1) == expected.argmax(1)).mean())
    diff = float(np.abs(got - expected).max())
    problems = []
    if agreement < MIN_AGREEMENT[kind]:
        problems.append(f"top-1 agreement with the export-time outputs is {agreement:.2%} (need >= {MIN_AGREEMENT[kind]:.0%})")
    if diff > tol:
        problems.append(f"max |probability difference| vs export-time outputs is {diff:.3g} (allowed {tol:.3g})")
    return VerifyResult(
        variant=m["variant"], images=int(len(got)), agreement_with_export=agreement, max_abs_diff_vs_export=diff,
        tolerance_abs=tol, agreement_with_keras=float((got.argmax(1) == g["keras_probs"].argmax(1)).mean()),
        accuracy=float((got.argmax(1) == g["labels"]).mean()),
        keras_accuracy=float((g["keras_probs"].argmax(1) == g["labels"]).mean()),
        passed=not problems, problems=problems,
    )
