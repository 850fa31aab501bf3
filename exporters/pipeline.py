"""Export a trained run to every selected variant, each checked against Keras and written atomically.

Layout (next to the run's model.keras):
    <run>/<variant>/{model.tflite|model.onnx, manifest.json}
    <run>/reference/{manifest.json, test_probs.npy, golden.npz}   Keras outputs for judging on a device

Each variant is built in a hidden temporary directory, run through the TensorFlow-free runtime on the
test images, compared with the Keras model it came from, and renamed into place only if the check
passes. An interrupted or failed export leaves no directory that looks like an artifact.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import runtime
from fmnist_edge import cpumatrix
from fmnist_edge import data as fdata
from fmnist_edge.errors import stop_if_signalled
from fmnist_edge.keras_io import load_trained_model
from fmnist_edge.atomic import committed_dir, write_json
from fmnist_edge.host import host_cpu, library_versions
from fmnist_edge.manifest import PREPROCESSING, class_names, sha256_file
from fmnist_edge.paths import check_output_dir
from fmnist_edge.models import Recipe, flops_per_image, preset_name_of_run
from runtime import manifest as rmf
from runtime.verify import output_tolerance
from runtime.variants import VARIANTS
from runtime.weights import compressed_size

from . import contract, external
from .builders import registry
from .calibration import calibration_set, fine_tune_set
from .check import check, compare, remedy
from .config import ExportConfig
from .errors import ConversionError, ExportError, ParityError, PortabilityError, VariantsRefused
from .qat import QATUnsupported

BUILDERS = registry()

VERSIONS = ("tensorflow", "keras", "tf-keras", "tensorflow-model-optimization", "tf2onnx", "onnx", "onnxruntime",
            "ai-edge-litert", "numpy")


def read_run(run_dir: Path) -> dict:
    path = run_dir / "manifest.json"
    if not path.is_file():
        raise ExportError(f"{run_dir}: no manifest.json; expected a run directory written by `fmnist-edge train`.")
    try:
        m = rmf.read_json(path)
    except rmf.ManifestError as exc:
        raise ExportError(str(exc)) from None
    if not isinstance(m, dict) or m.get("kind") != "keras-run" or m.get("schema_version") != 1:
        raise ExportError(f"{path}: not a schema-1 training run manifest (kind={m.get('kind') if isinstance(m, dict) else m!r}).")
    try:  # the model must be a plain file inside the run directory, whatever the manifest says
        model = rmf.inside(m["model_file"]["path"], run_dir)
        m["model_file"]["sha256"]
    except (KeyError, TypeError, rmf.ManifestError) as exc:
        raise ExportError(f"{path}: model_file must name a file inside {run_dir} with its sha256 ({exc}).") from None
    if not model.is_file():
        raise ExportError(f"{model}: the run's Keras model is missing.")
    if sha256_file(model) != m["model_file"]["sha256"]:
        raise ExportError(f"{model}: sha256 does not match the run manifest; the model was modified or corrupted.")
    return m


def tensor_spec(clf, which: str) -> dict:
    # A bare model file's Classifier describes its tensors (and quantization) as read from the file itself.
    return {**clf.manifest[which], "layout": "NHWC" if which == "input" else "NC"}


class Exporter:
    """Holds what every variant needs: the Keras model, data, Keras outputs, calibration images."""

    def __init__(self, run_dir: Path, cfg: ExportConfig, console):
        self.run_dir, self.cfg, self.console = run_dir, cfg, console
        self.run = read_run(run_dir)
        self.out = check_output_dir(Path(cfg.out) if cfg.out else run_dir, "--out")
        existing = [v for v in cfg.variants if (self.out / v).exists()]
        if existing and not cfg.overwrite:
            raise ExportError(f"{', '.join(str(self.out / v) for v in existing)} already exist(s); pass --overwrite to replace.")
        self.model = load_trained_model(rmf.inside(self.run["model_file"]["path"], run_dir))
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"--out {self.out}: cannot create it ({exc.strerror or exc}).") from None
        self.external = self.run.get("lineage") == "external"
        # fine-tuned variants rebuild a preset by name in tf_keras; a model file is rebuilt layer by layer
        self.preset_name = None if self.external else preset_name_of_run(self.run["model"], self.run["params"])
        if self.external:  # a model file exported as is: no recipe, the whole training split
            self.data = external.external_data(self.run["data"]["limit"], cfg.data_dir, cfg.download)
        else:
            self.data = fdata.run_split(cfg.data_dir, cfg.download, self.run["data"]["limit"], self.run["seed"],
                                        Recipe(**self.run["recipe"]).validation)
        self.class_names = list(self.run.get("class_names") or class_names())
        self.skipped: dict[str, str] = {}
        self.refused: dict[str, dict] = {}
        self.written: dict[str, dict] = {}  # variant -> its manifest's fidelity and size, for the summary
        self.x_test, self.y_test = self.data["x_test"], self.data["y_test"]
        self.keras_probs = self.model.predict(self.x_test, batch_size=1024, verbose=0)
        if not np.isfinite(self.keras_probs).all():
            raise ExportError(f"{run_dir}: the Keras model outputs NaN or infinite values on the test images (it did not "
                              "train properly); nothing was exported. Retrain it, e.g. with a lower --learning-rate.")
        self.calibration, self.calibration_record = calibration_set(
            self.data["x_fit"], self.data["y_fit"], cfg.calibration_images, cfg.calibration_seed)
        # What QAT, pruning and clustering fine-tune on: chosen once, shared by the three (and their controls).
        self.fine_tune = fine_tune_set(self.data["x_fit"], self.data["y_fit"], cfg.fine_tune_images, cfg.calibration_seed,
                                       0.0 if self.external else float(self.run["recipe"].get("label_smoothing", 0.0)))
        self.keras_accuracy = float((self.keras_probs.argmax(1) == self.y_test).mean())
        n_golden = min(cfg.golden_images, len(self.y_test))
        self.golden_idx = np.sort(np.random.default_rng(0).choice(len(self.y_test), n_golden, replace=False))
        # Golden images are stored as uint8 pixels: exactly what a device receives (x = uint8 / 255).
        self.golden_pixels = np.round(self.x_test[self.golden_idx, ..., 0] * 255).astype(np.uint8)
        self.lineage = {
            "run": self.run_dir.name,
            "model": self.run["model"],
            "keras_model_sha256": self.run["model_file"]["sha256"],
            "keras_test_accuracy": self.keras_accuracy,
            "test_images": int(len(self.y_test)),
            "recipe": self.run["recipe"],
            "seed": self.run["seed"],
            "params": self.run["params"],
            "flops_per_image": flops_per_image(self.model),
            **({"lineage": "external", "source_model": self.run["source_model"],
                "conventions": self.run["conventions"]} if self.external else {}),
        }

    def _portability(self, variant: str, model_file: Path, golden: np.ndarray, manifest: dict) -> dict:
        """Prove an int8 file computes the same under other CPUs' instruction sets, or refuse it."""
        cpus = self.cfg.portability_cpus
        if not VARIANTS[variant].int8_kernels:
            return {"checked_on": [], "note": "float kernels: outputs may differ by rounding only (verify --cpu-matrix)"}
        if not cpus:
            return {"checked_on": [], "note": "NOT checked at export (--no-portability-check); run `fmnist-edge verify --cpu-matrix`"}
        self.console.print(f"  {variant}: checking the same outputs under emulated {', '.join(cpus)}")
        rows = cpumatrix.check_portable(model_file, self.golden_pixels, golden, output_tolerance(manifest)[1], cpus)
        bad = {cpu: r for cpu, r in rows.items() if not r["passed"]}
        if bad:
            raise PortabilityError(variant, host_cpu()["class"], bad)
        return {"checked_on": ["native", *cpus], "images": int(len(golden)), "rows": rows,
                "rule": "100% top-1 agreement and max |dp| within one output step of the outputs computed here"}

    def export_variant(self, variant: str) -> Path:
        target = self.out / variant
        t0 = time.perf_counter()
        with committed_dir(target, replace=self.cfg.overwrite) as tmp:
            spec = VARIANTS[variant]
            try:
                built = BUILDERS[spec.builder](self, tmp)
            except (ValueError, RuntimeError, TypeError, KeyError) as exc:
                # Converters report unsupported graphs/options this way; name the variant instead of a traceback.
                raise ConversionError(variant, f"{variant}: conversion failed ({type(exc).__name__}: {exc}). "
                                               "No artifact was written.") from exc
            file_name, reference = built.file_name, built.reference
            clf = runtime.load(tmp / file_name)  # the device's own code path, read back from the file
            probs = clf.predict_proba(self.x_test, batch_size=1000)
            result = check(variant, probs, reference, self.y_test)
            vs_keras = result if reference is self.keras_probs else compare(probs, self.keras_probs, self.y_test)
            model_file = tmp / file_name
            # This artifact's own outputs on the golden images, as produced here: `verify` on a device compares
            # against them (catches wrong kernels or runtimes) as well as against Keras.
            np.save(tmp / "golden_outputs.npy", probs[self.golden_idx].astype(np.float32))
            # One class name per line, in output order: what a mobile app bundles beside the model.
            (tmp / "labels.txt").write_text("\n".join(self.class_names) + "\n")
            manifest = {
                "schema_version": rmf.ARTIFACT_SCHEMA_VERSION,
                "kind": "artifact",
                "variant": variant,
                "format": spec.format,
                "description": spec.description,
                "file": {"path": file_name, "bytes": model_file.stat().st_size, "sha256": sha256_file(model_file),
                         # what a download or an over-the-air update carries
                         "zlib9_bytes": compressed_size(model_file)},
                "input": tensor_spec(clf, "input"),
                "output": tensor_spec(clf, "output"),
                "preprocessing": self.run.get("preprocessing", PREPROCESSING),
                "class_names": self.class_names,
                "lineage": self.lineage,
                **built.extra,
                "golden_outputs": {"path": "golden_outputs.npy", "sha256": sha256_file(tmp / "golden_outputs.npy"),
                                   "images": int(len(self.golden_idx)), "reference": "../reference/golden.npz"},
                "check": result,
                "fidelity": {
                    "test_images": vs_keras["images"],
                    "accuracy": vs_keras["accuracy"],
                    "keras_accuracy": self.keras_accuracy,
                    "accuracy_drop_points": round(100 * (self.keras_accuracy - vs_keras["accuracy"]), 4),
                    "agreement_with_keras": vs_keras["agreement"],
                    "max_abs_diff_vs_keras": vs_keras["max_abs_diff"],
                    "flipped_vs_keras": vs_keras["flipped"],
                },
                "versions": library_versions(*VERSIONS),
                "host": host_cpu(),
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            }
            manifest["portability"] = self._portability(variant, model_file, probs[self.golden_idx], manifest)
            manifest["export_seconds"] = round(time.perf_counter() - t0, 1)
            write_json(tmp / "manifest.json", rmf.validate(manifest, f"{variant} manifest"))
        f = manifest["fidelity"]
        self.written[variant] = {**f, "bytes": manifest["file"]["bytes"]}
        self.console.print(
            f"[green]✓[/] {variant:16s} {manifest['file']['bytes'] / 1024:8.1f} KiB  accuracy {f['accuracy']:.4f} "
            f"(Keras {self.keras_accuracy:.4f})  agreement {f['agreement_with_keras']:.2%}  "
            f"check {result['agreement']:.2%} vs {'its fine-tuned Keras model' if spec.fine_tuned else 'Keras'}  "
            f"{manifest['export_seconds']:.0f}s"
        )
        return target

    def refuse(self, variant: str, exc: ExportError) -> None:
        """Record a variant that missed its gate (or could not be built or proven portable): not written."""
        numbers = {"parity": getattr(exc, "numbers", None), "required": getattr(exc, "limits", None),
                   "portability": getattr(exc, "failures", None)}
        self.refused[variant] = {"reason": str(exc), "kind": type(exc).__name__,
                                 **{k: v for k, v in numbers.items() if v is not None},
                                 "remedy": remedy(variant, exc, self.cfg.calibration_images)}
        self.console.print(f"[red]✗[/] {variant:16s} refused: {exc}")

    def record_outcome(self) -> None:
        """Say in reference/manifest.json which variants were not exported and why."""
        path = self.out / "reference" / "manifest.json"
        record = {k: v for k, v in (("skipped_variants", self.skipped), ("refused_variants", self.refused)) if v}
        write_json(path, {**json.loads(path.read_text()), **record})

    def summary(self):
        """A table of every variant asked for: written (with its numbers), refused and why, skipped and why."""
        from rich.table import Table

        table = Table(title=f"Export of {self.run_dir} (Keras {self.keras_accuracy:.4f})", title_justify="left")
        for col in ("variant", "result", "accuracy", "agreement", "KiB", "why / what would help"):
            table.add_column(col, justify="right" if col in ("accuracy", "agreement", "KiB") else "left")
        for v in self.cfg.variants:
            if v in self.written:
                w = self.written[v]
                table.add_row(v, "[green]written[/]", f"{w['accuracy']:.4f}", f"{w['agreement_with_keras']:.2%}",
                              f"{w['bytes'] / 1024:.1f}", "")
            elif v in self.refused:
                r = self.refused[v]
                parity = r.get("parity") or {}
                agreement = f"{parity['agreement']:.2%}" if "agreement" in parity else ""
                table.add_row(v, "[red]refused[/]", "", agreement, "", f"{r['reason']} -> {r['remedy']}")
            elif v in self.skipped:
                table.add_row(v, "[yellow]skipped[/]", "", "", "", self.skipped[v])
        return table

    def write_reference(self) -> Path:
        """Keras outputs a device needs to judge artifacts without TensorFlow (same for every variant)."""
        target = self.out / "reference"
        golden_idx, pixels = self.golden_idx, self.golden_pixels
        with committed_dir(target, replace=True) as tmp:
            np.save(tmp / "test_probs.npy", self.keras_probs.astype(np.float16))
            np.savez_compressed(tmp / "golden.npz", images=pixels, labels=self.y_test[golden_idx],
                                keras_probs=self.keras_probs[golden_idx].astype(np.float32), test_indices=golden_idx)
            files = {name: {"sha256": sha256_file(tmp / name), "bytes": (tmp / name).stat().st_size}
                     for name in ("test_probs.npy", "golden.npz")}
            write_json(tmp / "manifest.json", {
                "schema_version": 1, "kind": "reference-outputs", "lineage": self.lineage, "files": files,
                # What `verify` holds every artifact's class_names to (a model file cannot vouch for them).
                "class_names": self.class_names,
                "test_probs": {"shape": list(self.keras_probs.shape), "dtype": "float16",
                               "order": "the test images in IDX order" if self.run["data"]["limit"] is None
                               else "the run's --limit subset of the test set"},
                "golden": {"count": int(len(golden_idx)), "selection": "seeded (0) random test images",
                           "keras_accuracy": float((self.keras_probs[golden_idx].argmax(1) == self.y_test[golden_idx]).mean())},
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            })
        return target


def export_run(run_dir: str | Path, cfg: ExportConfig, console) -> dict[str, Path]:
    """Export a run directory (trained here, or written from a model file) to `cfg.variants`; returns the
    written variant directories. A variant the model cannot support (QAT on a layer tfmot cannot quantize)
    is skipped with its reason; one that misses its gate, cannot be converted or is not portable is refused
    with its numbers and what would help. Neither is written, both are recorded in reference/manifest.json
    (`skipped_variants`, `refused_variants`), and the others still export. Refusals raise VariantsRefused at
    the end, after everything else was written."""
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    exp = Exporter(run_dir, cfg, console)
    console.print(f"Exporting {run_dir} ({exp.run['model']}, Keras test accuracy {exp.keras_accuracy:.4f} on "
                  f"{len(exp.y_test):,} images) to: {', '.join(cfg.variants)}")
    exp.write_reference()
    done = {}
    for v in cfg.variants:
        try:
            done[v] = exp.export_variant(v)
        except QATUnsupported as exc:
            exp.skipped[v] = str(exc)
            console.print(f"[yellow]–[/] {v:16s} skipped: {exc}")
        except (ParityError, PortabilityError, ConversionError) as exc:
            stop_if_signalled()  # a stop that a converter turned into an error is a stop, not a refusal
            exp.refuse(v, exc)
    if exp.skipped or exp.refused:
        exp.record_outcome()
    if len(cfg.variants) > 1 or exp.refused or exp.skipped:
        console.print(exp.summary())
    console.print(f"Done in {time.perf_counter() - t0:.0f}s; artifacts in {exp.out}")
    if exp.refused:
        raise VariantsRefused(done, exp.refused)
    return done


def export(model_or_path, variants=None, out=None, *, input_range: str | None = None, input_norm: str | None = None,
           input_scale: float | None = None, output: str = "auto", labels=None, limit: int | None = None, console=None,
           **options) -> dict[str, Path]:
    """Export a Keras classifier to edge artifacts, each checked against it; returns {variant: directory}.

    `model_or_path`: a run directory written by `fmnist-edge train` (or by an earlier export of a model
    file), a `.keras` / `.h5` file, or an in-memory Keras model (e.g. in a notebook). For a model, `out` is
    the run directory to create (default `artifacts/<name>`); its input contract (`input_range` "LO,HI",
    `input_norm` "MEAN,STD", or `input_scale` S for range 0,S; see exporters.contract), `output` ("auto",
    "probabilities" or "logits"), `labels` (10 class names) and `limit` (a seeded subset of the real data, for
    quick checks) describe it. `options` are ExportConfig fields.

    A variant that misses its gate or fails to convert is not written and the others still are; then
    `VariantsRefused` is raised, holding what was written (`.written`) and what was refused (`.refused`).
    """
    from rich.console import Console

    console = console or Console()
    variants = tuple(variants) if variants else tuple(VARIANTS)
    source = model_or_path
    with tempfile.TemporaryDirectory(prefix="fmnist-edge-model-") as scratch:
        if not isinstance(source, (str, os.PathLike)):  # an in-memory model: saved as it is, then read back
            name = getattr(source, "name", None) or "model"
            source = Path(scratch) / f"{name}.keras"
            model_or_path.save(source)
        source = Path(source)
        if source.is_file() or external.is_model_file(source):
            declared = contract.resolve(input_range, input_norm, input_scale)
            spec = external.ExternalModel(declared, output, tuple(labels) if labels else None)
            run_dir = external.prepare(source, Path(out) if out else Path("artifacts") / source.stem, spec, limit,
                                       options.get("data_dir"), options.get("download", True),
                                       options.get("overwrite", False), console)
            return export_run(run_dir, ExportConfig(variants=variants, **{**options, "overwrite": True}), console)
    if any(v is not None for v in (input_range, input_norm, input_scale, limit)) or output != "auto" or labels:
        raise ExportError(f"{source}: --input-range, --input-norm, --input-scale, --output, --labels and --limit "
                          "describe a model file; a run directory already records them.")
    return export_run(source, ExportConfig(variants=variants, out=str(out) if out else None, **options), console)
