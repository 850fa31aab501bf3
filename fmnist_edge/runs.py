"""Runs and releases: where they are (the shipped release, the newest training run under artifacts/) and what a
run directory's manifest.json says, read and checked in one place for training, export, model files and bench."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runtime import manifest as rmf

from .errors import FmnistEdgeError, RunError

if TYPE_CHECKING:
    import numpy as np

SHIPPED_RUN = Path("artifacts/reference")


@dataclass(frozen=True)
class RunManifest:
    """A run directory's manifest.json (a run trained here, or one `export` wrote for a model file), checked."""

    dir: Path
    fields: dict  # the manifest as written

    @property
    def model_file(self) -> Path:
        return rmf.inside(self.fields["model_file"]["path"], self.dir)

    @property
    def external(self) -> bool:
        """Written for a model file the toolkit did not train (no recipe, no seed)."""
        return self.fields.get("lineage") == "external"

    @property
    def limit(self) -> int | None:
        return self.fields["data"]["limit"]

    @property
    def seed(self) -> int | None:
        return self.fields.get("seed")

    def test_indices(self, y_test: np.ndarray) -> np.ndarray:
        """Which of the test split's images this run was judged on (all, or its --limit subset)."""
        from .data import run_test_subset

        return run_test_subset(y_test, self.limit, self.seed)


def read_run(run_dir: str | Path, need_model: bool = True) -> RunManifest:
    """The run's manifest, checked: schema 1, kind keras-run, a data.limit, and a model file inside the run. With
    `need_model` the model file must be there with the sha256 the manifest records (a release copied to a device
    may leave it out: bench then uses the outputs recorded at export)."""
    run_dir = Path(run_dir)
    path = run_dir / "manifest.json"
    if not path.is_file():
        raise RunError(f"{run_dir}: no manifest.json; expected a run directory written by `fmnist-edge train`.")
    try:
        m = rmf.read_json(path)
    except rmf.ManifestError as exc:
        raise RunError(str(exc)) from None
    if not isinstance(m, dict) or m.get("kind") != "keras-run" or m.get("schema_version") != 1:
        raise RunError(f"{path}: not a run manifest (schema 1, kind keras-run; found kind="
                       f"{m.get('kind') if isinstance(m, dict) else type(m).__name__}).")
    try:  # the model must be a plain file inside the run directory, whatever the manifest says
        run = RunManifest(run_dir, m)
        model, sha256 = run.model_file, m["model_file"]["sha256"]
    except (KeyError, TypeError, rmf.ManifestError) as exc:
        raise RunError(f"{path}: model_file must name a file inside {run_dir} with its sha256 ({exc}).") from None
    data = m.get("data")
    limit = data.get("limit") if isinstance(data, dict) else "missing"
    if limit is not None and not (isinstance(limit, int) and not isinstance(limit, bool) and limit > 0):
        raise RunError(f"{path}: not a run manifest (needs data.limit: null or a positive count); expected a run "
                       "directory written by `fmnist-edge train` or `export`.")
    if need_model and not model.is_file():
        raise RunError(f"{model}: the run's Keras model is missing.")
    if need_model and rmf.sha256_file(model) != sha256:
        raise RunError(f"{model}: sha256 does not match the run manifest; the model was modified or corrupted.")
    return run


def latest_run(root: Path = Path("artifacts")) -> Path:
    """The newest training run under artifacts/ (by its manifest's creation time)."""
    runs = []
    for manifest in root.glob("*/manifest.json"):
        try:
            m = json.loads(manifest.read_text())
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(m, dict) and m.get("kind") == "keras-run":
            runs.append((m.get("created_at", ""), manifest.parent))
    if not runs:
        raise FmnistEdgeError(f"No training run found under {root}/. Train one with `fmnist-edge train` or pass RUN_DIR.")
    return max(runs)[1]


def default_release() -> Path:
    """The shipped reference release if present, else the newest training run."""
    return SHIPPED_RUN if (SHIPPED_RUN / "manifest.json").is_file() else latest_run()


def shipped_artifact(given: Path | None, variant: str | None, command: str) -> Path:
    """What a command runs on: the path given, else the shipped reference release (or its `variant`), which only
    a source checkout has; anywhere else, say so and what to pass instead of a bare "no such artifact"."""
    if given is not None:
        return given
    default = SHIPPED_RUN / variant if variant else SHIPPED_RUN
    if not (default / "manifest.json").is_file():
        what = "an artifact directory or a lone .tflite/.onnx file" if variant else "a release directory"
        raise FmnistEdgeError(f"No artifact given, and the default {default} is not in {Path.cwd()} (it is in a source "
                              f"checkout). Pass {what}, e.g. `fmnist-edge {command} ...` with a release copied here.")
    return default
