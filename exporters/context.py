"""What every variant of one export needs, read once: the run, its Keras model, the data, the Keras outputs, the
calibration and fine-tuning sets, and the golden images a device is judged on.

`load_context(run_dir, cfg)` builds it; builders and the scripts that study one step (compression sweep, ONNX
int8 schemes and calibration) read it and never change it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmnist_edge import data as fdata
from fmnist_edge.keras_io import load_trained_model
from fmnist_edge.manifest import class_names
from fmnist_edge.models import Recipe, flops_per_image, preset_name_of_run
from fmnist_edge.runs import RunManifest, read_run

from . import external
from .onnx_source import OnnxModel, is_onnx_file
from .onnx_source import flops_per_image as onnx_flops
from .calibration import calibration_set, fine_tune_set
from .config import ExportConfig
from .errors import ExportError


@dataclass(frozen=True)
class ExportContext:
    run_dir: Path
    cfg: ExportConfig
    console: Any  # a rich Console: builders print their progress lines on it
    run: dict  # the run's manifest
    model: Any  # the trained Keras model (an OnnxModel for a run written from an ONNX file)
    preset_name: str | None  # fine-tuned variants rebuild a preset by name in tf_keras; None: a model file
    class_names: list[str]
    x_fit: np.ndarray
    y_fit: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    keras_probs: np.ndarray  # the Keras model's outputs on x_test: what every variant is checked against
    keras_accuracy: float
    calibration: np.ndarray
    calibration_record: dict
    fine_tune: dict  # what QAT, pruning and clustering (and their float controls) fine-tune on
    golden_idx: np.ndarray  # test indices of the golden images
    golden_pixels: np.ndarray  # those images as uint8 pixels: exactly what a device receives (x = uint8 / 255)
    lineage: dict  # what every artifact's manifest says it came from

    @property
    def from_onnx(self) -> bool:
        """A run written from an ONNX file: only the ONNX variants, built from its graph (no Keras model)."""
        return isinstance(self.model, OnnxModel)

    @property
    def reference(self) -> str:
        """What every variant is checked against, in the export's lines."""
        return "ONNX float" if self.from_onnx else "Keras"


def load_model(path: Path):
    """The run's model: a Keras model, or for a run written from an ONNX file its float graph (OnnxModel)."""
    return OnnxModel(path, name=path.parent.name) if is_onnx_file(path) else load_trained_model(path)


def _data(manifest: RunManifest, cfg: ExportConfig) -> dict:
    run = manifest.fields
    if manifest.external:  # a model file exported as is: no recipe, the whole training split
        return external.external_data(manifest.limit, cfg.data_dir, cfg.download)
    return fdata.run_split(cfg.data_dir, cfg.download, manifest.limit, run["seed"], Recipe(**run["recipe"]).validation)


def _lineage(manifest: RunManifest, model, keras_accuracy: float, test_images: int) -> dict:
    run_dir, run = manifest.dir, manifest.fields
    flops = onnx_flops(model.proto) if isinstance(model, OnnxModel) else flops_per_image(model)
    return {
        "run": run_dir.name, "model": run["model"], "keras_model_sha256": run["model_file"]["sha256"],
        "keras_test_accuracy": keras_accuracy, "test_images": test_images, "recipe": run["recipe"],
        "seed": run["seed"], "params": run["params"], "flops_per_image": flops,
        **({"lineage": "external", "source_model": run["source_model"], "conventions": run["conventions"]}
           if manifest.external else {}),
    }


def load_context(run_dir: str | Path, cfg: ExportConfig, console=None, manifest: RunManifest | None = None
                 ) -> ExportContext:
    """Read a run directory (or take its `manifest`, already read) and compute everything its variants share (the
    Keras model's test outputs once)."""
    from rich.console import Console

    run_dir = Path(run_dir)
    manifest = manifest or read_run(run_dir)
    run, external_ = manifest.fields, manifest.external
    model = load_model(manifest.model_file)
    data = _data(manifest, cfg)
    x_test, y_test = data["x_test"], data["y_test"]
    keras_probs = model.predict(x_test, batch_size=1024, verbose=0)
    if not np.isfinite(keras_probs).all():
        raise ExportError(f"{run_dir}: the Keras model outputs NaN or infinite values on the test images (it did not "
                          "train properly); nothing was exported. Retrain it, e.g. with a lower --learning-rate.")
    keras_accuracy = float((keras_probs.argmax(1) == y_test).mean())
    calibration, record = calibration_set(data["x_fit"], data["y_fit"], cfg.calibration_images, cfg.calibration_seed)
    smoothing = 0.0 if external_ else float(run["recipe"].get("label_smoothing", 0.0))
    golden_idx = np.sort(np.random.default_rng(0).choice(len(y_test), min(cfg.golden_images, len(y_test)), replace=False))
    return ExportContext(
        run_dir=run_dir, cfg=cfg, console=console or Console(quiet=True), run=run, model=model,
        preset_name=None if external_ else preset_name_of_run(run["model"], run["params"]),
        class_names=list(run.get("class_names") or class_names()),
        x_fit=data["x_fit"], y_fit=data["y_fit"], x_test=x_test, y_test=y_test,
        keras_probs=keras_probs, keras_accuracy=keras_accuracy, calibration=calibration, calibration_record=record,
        fine_tune=fine_tune_set(data["x_fit"], data["y_fit"], cfg.fine_tune_images, cfg.calibration_seed, smoothing),
        golden_idx=golden_idx, golden_pixels=np.round(x_test[golden_idx, ..., 0] * 255).astype(np.uint8),
        lineage=_lineage(manifest, model, keras_accuracy, int(len(y_test))),
    )
