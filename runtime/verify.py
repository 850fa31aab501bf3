"""On-device check of an artifact against the outputs recorded when it was exported.

Runs the golden images shipped with a release (`<run>/keras-outputs/golden.npz`) through the artifact on
this device and compares with (1) the artifact's own outputs recorded at export on the exporting
machine, which must match to within float noise or one int8 output step, and (2) the Keras outputs,
reported as agreement. A mismatch means a wrong runtime version, wrong quantization handling, a
corrupted file or kernels that compute differently here (e.g. emulated CPU features).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import manifest as mf
from . import variants
from .classifier import Classifier, load
from .compare import compare
from .errors import RuntimeArtifactError

# Agreement with the export-time outputs of the same artifact. Every kernel this project ships computes the
# same top-1 on every CPU it was proven on (docs/results/cpu-matrix.md), so nothing less than all
# golden images may agree; the probabilities may differ by float rounding, or by one int8 output step.
MIN_AGREEMENT = 1.0
FLOAT_TOLERANCE = 1e-4


def output_tolerance(manifest: dict) -> tuple[str, float]:
    """("int8", one output step) for a quantized output, ("float32", FLOAT_TOLERANCE) otherwise."""
    # QDQ ONNX keeps float I/O; its graph quantizes the softmax output inside (recorded at export).
    quant = manifest["output"].get("quantization") or (manifest.get("qdq_graph_io_quantization") or {}).get("output")
    spec = variants.get(manifest["variant"])
    if quant or (spec is not None and spec.int8_kernels):  # float outputs of int8 kernels: one step of 1/255
        return "int8", (quant["scale"] if quant else 1.0 / 255) * 1.01  # one step, plus float slack
    return "float32", FLOAT_TOLERANCE


def compare_with_export(got: np.ndarray, expected: np.ndarray, tolerance: float) -> tuple[float, float, list[str]]:
    """(top-1 agreement, max |dp|, problems) of outputs computed here against those recorded at export."""
    if got.shape != expected.shape:
        return 0.0, float("inf"), [f"outputs have shape {got.shape}, the recorded ones {expected.shape}"]
    c = compare(got, expected)
    agreement, diff = c["agreement"], c["max_abs_diff"]
    problems = []
    if agreement < MIN_AGREEMENT:
        problems.append(f"top-1 agreement with the export-time outputs is {agreement:.2%} (need {MIN_AGREEMENT:.0%})")
    if diff > tolerance:
        problems.append(f"max |probability difference| vs export-time outputs is {diff:.3g} (allowed {tolerance:.3g})")
    return agreement, diff, problems


@dataclass(frozen=True)
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


def load_verified(path: Path, sha256, recorded_in: str = "its manifest") -> dict | np.ndarray:
    """A release's .npy/.npz, after its checksum (recorded in `recorded_in`): every array of an .npz is read
    here, so a damaged file fails now, naming itself, rather than later as a traceback."""
    if not isinstance(sha256, str):
        raise RuntimeArtifactError(f"{path}: its manifest records no sha256 for it; re-export the release.")
    if not path.is_file():
        raise RuntimeArtifactError(f"{path}: missing; the release is incomplete (re-copy the whole run directory).")
    if mf.sha256_file(path) != sha256:
        raise RuntimeArtifactError(f"{path}: sha256 does not match {recorded_in}; the file was modified or truncated.")
    try:
        loaded = np.load(path, allow_pickle=False)
        return {k: loaded[k] for k in loaded.files} if hasattr(loaded, "files") else loaded
    except Exception as exc:  # numpy and zipfile raise ValueError, OSError, BadZipFile, EOFError, ...
        raise RuntimeArtifactError(f"{path}: unreadable ({type(exc).__name__}: {exc}).") from None


def probabilities(arr, path: Path, rows: int | None = None) -> np.ndarray:
    """`arr` if it is finite float probabilities of shape (rows, 10), else an error naming `path`."""
    if not (isinstance(arr, np.ndarray) and arr.ndim == 2 and arr.shape[1] == 10 and arr.dtype.kind == "f"
            and (rows is None or len(arr) == rows) and np.isfinite(arr).all()):
        shape = getattr(arr, "shape", None)
        raise RuntimeArtifactError(f"{path}: expected finite float probabilities of shape ({rows or 'N'}, 10), got "
                                   f"{getattr(arr, 'dtype', type(arr).__name__)} {shape}; re-export the release.")
    return arr


def golden_set(reference_dir: Path) -> dict:
    """The golden images, labels and Keras outputs, checked against the Keras-outputs folder's manifest.json."""
    ref_manifest = reference_dir / "manifest.json"
    if not ref_manifest.is_file():
        raise RuntimeArtifactError(f"{ref_manifest}: missing; `verify` needs the Keras outputs written by export.")
    ref = mf.read_json(ref_manifest)
    if not isinstance(ref, dict) or not isinstance(ref.get("files"), dict) or not isinstance(ref["files"].get("golden.npz"), dict):
        raise RuntimeArtifactError(f"{ref_manifest}: expected an object with files.golden.npz (its sha256); re-export the release.")
    path = reference_dir / "golden.npz"
    g = load_verified(path, ref["files"]["golden.npz"].get("sha256"))
    missing = [k for k in ("images", "labels", "keras_probs") if not isinstance(g, dict) or k not in g]
    if missing:
        raise RuntimeArtifactError(f"{path}: lacks {missing}; re-export the release.")
    images, labels = g["images"], g["labels"]
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) == 0:
        raise RuntimeArtifactError(f"{path}: images must be uint8 (N, 28, 28), got {images.dtype} {images.shape}.")
    if labels.shape != (len(images),) or labels.dtype.kind not in "iu" or (labels.size and not 0 <= labels.min() <= labels.max() <= 9):
        raise RuntimeArtifactError(f"{path}: labels must be {len(images)} integers in 0..9, got {labels.dtype} {labels.shape}.")
    names = ref.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise RuntimeArtifactError(f"{ref_manifest}: class_names must be a list of strings.")
    return {"images": images, "labels": labels, "keras_probs": probabilities(g["keras_probs"], path, len(images)),
            "class_names": names}


def class_name_problems(clf: Classifier, recorded: list | None) -> list[str]:
    """Class names are the one fact a model file cannot vouch for: they must equal those export recorded
    in the release's keras-outputs/manifest.json, and the labels.txt an app bundles must say the same."""
    problems = []
    if recorded is not None and list(recorded) != clf.class_names:
        problems.append(f"class_names in the manifest {clf.class_names} differ from those recorded at export {list(recorded)}")
    labels = clf.path.parent / "labels.txt"
    if labels.is_file() and labels.read_text(encoding="utf-8", errors="replace").splitlines() != clf.class_names:
        problems.append("labels.txt does not list the manifest's class_names in order")
    return problems


def expected_outputs(clf: Classifier) -> np.ndarray:
    """The artifact's own outputs on the golden images, recorded at export (checksum-checked)."""
    rec = clf.manifest.get("golden_outputs")
    if not isinstance(rec, dict) or not isinstance(rec.get("path"), str):
        raise RuntimeArtifactError(f"{clf.path}: its manifest records no golden outputs; re-export it with this version.")
    path = mf.inside(rec["path"], clf.path.parent)
    return probabilities(load_verified(path, rec.get("sha256")), path)


def verify(artifact, num_threads: int = 1) -> VerifyResult:
    clf: Classifier = artifact if isinstance(artifact, Classifier) else load(artifact, num_threads=num_threads)
    m = clf.manifest
    art_dir = clf.path.parent
    expected = expected_outputs(clf)
    g = golden_set(mf.keras_outputs_dir(art_dir.parent))
    got = clf.predict_proba(g["images"])
    _, tol = output_tolerance(m)
    agreement, diff, problems = compare_with_export(got, expected, tol)
    problems += class_name_problems(clf, g["class_names"])
    vs_keras = compare(got, g["keras_probs"], g["labels"])
    return VerifyResult(
        variant=m["variant"], images=int(len(got)), agreement_with_export=agreement, max_abs_diff_vs_export=diff,
        tolerance_abs=tol, agreement_with_keras=vs_keras["agreement"], accuracy=vs_keras["accuracy"],
        keras_accuracy=vs_keras["reference_accuracy"],
        passed=not problems, problems=problems,
    )
