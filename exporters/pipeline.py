"""Export a trained run to every selected variant, each checked against Keras and written atomically.

The context every variant shares is exporters.context; what one variant's build, check, manifest and proof
are is `export_variant`; `export_run` tries every variant asked for and reports an ExportOutcome.

Layout (next to the run's model.keras):
    <run>/<variant>/{model.tflite|model.onnx, manifest.json}
    <run>/keras-outputs/{manifest.json, test_probs.npy, golden.npz}   Keras outputs for judging on a device

Each variant is built in a hidden temporary directory, run through the TensorFlow-free runtime on the
test images, compared with the Keras model it came from, and renamed into place only if the check
passes. An interrupted or failed export leaves no directory that looks like an artifact.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

import runtime
from fmnist_edge import cpumatrix
from fmnist_edge.atomic import committed_dir, write_json
from fmnist_edge.errors import stop_if_signalled
from fmnist_edge.host import host_cpu, provenance, utc_now
from fmnist_edge.manifest import PREPROCESSING, sha256_file
from fmnist_edge.paths import check_output_dir
from fmnist_edge.runs import read_run
from runtime import manifest as rmf
from runtime import metadata
from runtime.manifest import KERAS_OUTPUTS
from runtime.photo import PARAMS as PHOTO
from runtime.variants import VARIANTS
from runtime.verify import output_tolerance
from runtime.weights import compressed_size

from . import contract, external, onnx_source, repair, search
from .builders import Built, registry
from .gate import compare, passes_gate, remedy
from .config import ExportConfig
from .context import ExportContext, load_context
from .embed import embed
from .errors import (ConversionError, ExportError, FineTuneUnsupported, ParityError, PortabilityError,
                     VariantsRefused, rule_numbers)

BUILDERS = registry()
ONNX_VARIANTS = tuple(v.name for v in VARIANTS.values() if v.format == "onnx")  # what an ONNX model exports to

VERSIONS = ("tensorflow", "keras", "tf-keras", "tensorflow-model-optimization", "tf2onnx", "onnx", "onnxruntime",
            "ai-edge-litert", "numpy")


def tensor_spec(clf, which: str) -> dict:
    # A bare model file's Classifier describes its tensors (and quantization) as read from the file itself.
    return {**clf.manifest[which], "layout": "NHWC" if which == "input" else "NC"}


@dataclass
class ExportOutcome:
    """What one export did with each variant asked for: written (its fidelity numbers and size), refused (why, and
    what would help) or skipped (why). The CLI renders it as the summary table."""

    run_dir: Path
    out: Path
    variants: tuple[str, ...]
    keras_accuracy: float
    reference: str = "Keras"  # what the variants were checked against (ExportContext.reference)
    written: dict[str, dict] = field(default_factory=dict)
    refused: dict[str, dict] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    directories: dict[str, Path] = field(default_factory=dict)


def artifact_manifest(ctx: ExportContext, variant: str, built: Built, clf, result: dict, vs_keras: dict,
                      staged: Path) -> dict:
    """The manifest of a variant staged in `staged` (its model file and golden outputs already there), before the
    portability proof and export time are added."""
    spec = VARIANTS[variant]
    model_file = staged / built.file_name
    return {
        "schema_version": rmf.ARTIFACT_SCHEMA_VERSION,
        "kind": "artifact",
        "variant": variant,
        "format": spec.format,
        "description": spec.description,
        "file": {"path": built.file_name, "bytes": model_file.stat().st_size, "sha256": sha256_file(model_file),
                 # what a download or an over-the-air update carries
                 "zlib9_bytes": compressed_size(model_file)},
        "input": tensor_spec(clf, "input"),
        "output": tensor_spec(clf, "output"),
        "preprocessing": ctx.run.get("preprocessing", PREPROCESSING),
        "class_names": ctx.class_names,
        "lineage": ctx.lineage,
        **built.extra,
        "golden_outputs": {"path": "golden_outputs.npy", "sha256": sha256_file(staged / "golden_outputs.npy"),
                           "images": int(len(ctx.golden_idx)), "reference": f"../{KERAS_OUTPUTS}/golden.npz"},
        "check": result,
        "fidelity": {
            "test_images": vs_keras["images"],
            "accuracy": vs_keras["accuracy"],
            "keras_accuracy": ctx.keras_accuracy,
            "accuracy_drop_points": round(100 * (ctx.keras_accuracy - vs_keras["accuracy"]), 4),
            "agreement_with_keras": vs_keras["agreement"],
            "max_abs_diff_vs_keras": vs_keras["max_abs_diff"],
            "flipped_vs_keras": vs_keras["flipped"],
        },
        **provenance(*VERSIONS),
    }


def portability(ctx: ExportContext, variant: str, model_file: Path, golden: np.ndarray, manifest: dict) -> dict:
    """Prove an int8 file computes the same under other CPUs' instruction sets, or refuse it."""
    cpus = ctx.cfg.portability_cpus
    if not VARIANTS[variant].int8_kernels:
        return {"checked_on": [], "note": "float kernels: outputs may differ by rounding only (verify --cpu-matrix)"}
    if not cpus:
        return {"checked_on": [], "note": "NOT checked at export (--no-portability-check); run `fmnist-edge verify --cpu-matrix`"}
    ctx.console.print(f"  {variant}: checking the same outputs under emulated {', '.join(cpus)}")
    rows = cpumatrix.portability_rows(model_file, ctx.golden_pixels, golden, output_tolerance(manifest)[1], cpus)
    bad = {cpu: r for cpu, r in rows.items() if not r["passed"]}
    if bad:
        raise PortabilityError(variant, host_cpu()["class"], bad)
    return {"checked_on": ["native", *cpus], "images": int(len(golden)), "rows": rows,
            "rule": "100% top-1 agreement and max |dp| within one output step of the outputs computed here"}


def stamp(ctx: ExportContext, variant: str, model_file: Path) -> dict[str, str]:
    """Embed the labels, input contract, boundary quantization, photo parameters and lineage in the model file
    itself (runtime.metadata), so the file copied alone still describes itself; returns the entries."""
    bare = runtime.load(model_file)  # its tensors and quantization, as the file has them
    entries = metadata.describe({"variant": variant, "class_names": ctx.class_names, "lineage": ctx.lineage,
                                 "preprocessing": ctx.run.get("preprocessing", PREPROCESSING),
                                 "input": tensor_spec(bare, "input"), "output": tensor_spec(bare, "output")}, PHOTO)
    embed(model_file, VARIANTS[variant].format, entries)
    return entries


def checked(ctx: ExportContext, variant: str, tmp: Path, build=None) -> tuple:
    """Build the model file (with the variant's builder, or `build`), embed its metadata, read it back through the
    runtime (the device's own code path) and hold it to the variant's gate: (built, embedded, clf, probs, result)."""
    built = build(ctx, tmp) if build else _build(ctx, variant, tmp)
    embedded = stamp(ctx, variant, tmp / built.file_name)
    clf = runtime.load(tmp / built.file_name)
    probs = clf.predict_proba(ctx.x_test, batch_size=1000)
    return built, embedded, clf, probs, passes_gate(variant, probs, built.reference, ctx.y_test)


def build_checked(ctx: ExportContext, variant: str, tmp: Path) -> tuple[tuple, dict | None]:
    """`checked`, and when a post-training int8 file misses its gate, the repair ladder (exporters.repair) unless
    --repair none: (the checked result, the repair record or None)."""
    try:
        return checked(ctx, variant, tmp), None
    except ParityError as exc:
        # the repairs rescale or keep Keras layers in float: a graph brought as ONNX has none
        if ctx.cfg.repair == "none" or not VARIANTS[variant].calibrated_int8 or ctx.from_onnx:
            raise
        return repair.ladder(ctx, variant, exc, lambda c, build: checked(c, variant, tmp, build))


def _build(ctx: ExportContext, variant: str, staged: Path) -> Built:
    try:
        return BUILDERS[VARIANTS[variant].builder](ctx, staged)
    except (ValueError, RuntimeError, TypeError, KeyError) as exc:
        # Converters report unsupported graphs/options this way; name the variant instead of a traceback.
        raise ConversionError(variant, f"{variant}: conversion failed ({type(exc).__name__}: {exc}). "
                                       "No artifact was written.") from exc


def written_entry(manifest: dict) -> dict:
    """A written variant in the export's outcome: its fidelity and size, and its repair and search records if any."""
    return {**manifest["fidelity"], "bytes": manifest["file"]["bytes"],
            **({"accuracy_rule": manifest["check"]["accuracy_rule"]} if manifest["check"].get("passed_by") else {}),
            **({"repair": manifest["repair"]} if "repair" in manifest else {}),
            **({"search": searched} if (searched := rmf.compression_search(manifest)) else {})}


def written_note(written: dict) -> str:
    """What export did beyond converting a written variant: the repair ladder's steps, the compression search's choice."""
    rule = written.get("accuracy_rule")
    accepted = f"agreement under its gate, accepted by the accuracy rule ({rule_numbers(rule)})" if rule else ""
    return "; ".join(s for s in (accepted, repair.summary(written.get("repair")),
                                 search.summary(written["search"]) if written.get("search") else "") if s)


def export_variant(ctx: ExportContext, out: Path, variant: str) -> tuple[Path, dict]:
    """Build one variant in a staging directory, check it against Keras and prove it portable, then move it
    into `out/<variant>`; returns its directory and manifest. Nothing is written when a check fails."""
    target = out / variant
    t0 = time.perf_counter()
    with committed_dir(target, replace=ctx.cfg.overwrite) as tmp:
        (built, embedded, clf, probs, result), repaired = build_checked(ctx, variant, tmp)
        if repaired:
            built = replace(built, extra={**built.extra, "repair": repaired})
        vs_keras = result if built.reference is ctx.keras_probs else compare(probs, ctx.keras_probs, ctx.y_test)
        # This artifact's own outputs on the golden images, as produced here: `verify` on a device compares
        # against them (catches wrong kernels or runtimes) as well as against Keras.
        np.save(tmp / "golden_outputs.npy", probs[ctx.golden_idx].astype(np.float32))
        # One class name per line, in output order: what a mobile app bundles beside the model.
        (tmp / "labels.txt").write_text("\n".join(ctx.class_names) + "\n")
        manifest = artifact_manifest(ctx, variant, built, clf, result, vs_keras, tmp)
        manifest["embedded_metadata"] = metadata.record(VARIANTS[variant].format, embedded)
        manifest["portability"] = portability(ctx, variant, tmp / built.file_name, probs[ctx.golden_idx], manifest)
        manifest["export_seconds"] = round(time.perf_counter() - t0, 1)
        write_json(tmp / "manifest.json", rmf.validate(manifest, f"{variant} manifest"))
    f = manifest["fidelity"]
    note = written_note(written_entry(manifest))
    ctx.console.print(
        f"[green]✓[/] {variant:16s} {manifest['file']['bytes'] / 1024:8.1f} KiB  accuracy {f['accuracy']:.4f} "
        f"({ctx.reference} {ctx.keras_accuracy:.4f})  agreement {f['agreement_with_keras']:.2%}  "
        f"check {result['agreement']:.2%} vs {'its fine-tuned Keras model' if VARIANTS[variant].fine_tuned else ctx.reference}  "
        f"{manifest['export_seconds']:.0f}s" + ("" if not note else f"  [yellow]{note}[/]" if "repair" in manifest
                                                 else f"  {note}")
    )
    return target, manifest


def refusal(variant: str, exc: ExportError, calibration_images: int, qat: str | None = None, keras: bool = True) -> dict:
    """The record of a variant that missed its gate (or could not be built or proven portable): not written. `qat`:
    what this export did with tflite-int8-qat, so the remedy names only what was not tried; `keras`: False for a run
    written from an ONNX file (no explain, repair or QAT to suggest)."""
    numbers = {"parity": getattr(exc, "numbers", None), "required": getattr(exc, "limits", None),
               "portability": getattr(exc, "failures", None)}
    return {"reason": str(exc), "kind": type(exc).__name__, **{k: v for k, v in numbers.items() if v is not None},
            "remedy": remedy(variant, exc, calibration_images, qat, keras)}


def qat_status(outcome: ExportOutcome, refused) -> str | None:
    """What this export did with tflite-int8-qat: written, skipped or refused (one of `refused`; None: not asked for)."""
    name = "tflite-int8-qat"
    return ("written" if name in outcome.written else "skipped" if name in outcome.skipped
            else "refused" if name in refused else None)


def record_outcome(outcome: ExportOutcome) -> None:
    """Say in keras-outputs/manifest.json which variants were not exported and why."""
    path = outcome.out / KERAS_OUTPUTS / "manifest.json"
    record = {k: v for k, v in (("skipped_variants", outcome.skipped), ("refused_variants", outcome.refused)) if v}
    write_json(path, {**json.loads(path.read_text()), **record})


def write_reference(ctx: ExportContext, out: Path) -> Path:
    """Keras outputs a device needs to judge artifacts without TensorFlow (same for every variant)."""
    target = out / KERAS_OUTPUTS
    golden_idx, probs, y = ctx.golden_idx, ctx.keras_probs, ctx.y_test
    with committed_dir(target, replace=True) as tmp:
        np.save(tmp / "test_probs.npy", probs.astype(np.float16))
        np.savez_compressed(tmp / "golden.npz", images=ctx.golden_pixels, labels=y[golden_idx],
                            keras_probs=probs[golden_idx].astype(np.float32), test_indices=golden_idx)
        files = {name: {"sha256": sha256_file(tmp / name), "bytes": (tmp / name).stat().st_size}
                 for name in ("test_probs.npy", "golden.npz")}
        write_json(tmp / "manifest.json", {
            "schema_version": 1, "kind": "reference-outputs", "lineage": ctx.lineage, "files": files,
            # What `verify` holds every artifact's class_names to (a model file cannot vouch for them).
            "class_names": ctx.class_names,
            "test_probs": {"shape": list(probs.shape), "dtype": "float16",
                           "order": "the test images in IDX order" if ctx.run["data"]["limit"] is None
                           else "the run's --limit subset of the test set"},
            "golden": {"count": int(len(golden_idx)), "selection": "seeded (0) random test images",
                       "keras_accuracy": float((probs[golden_idx].argmax(1) == y[golden_idx]).mean())},
            "created_at": utc_now(),
        })
    return target


def output_dir(run_dir: Path, cfg: ExportConfig) -> Path:
    """Where the variants go (the run directory unless --out), checked before anything slow: a variant already
    there needs --overwrite."""
    out = check_output_dir(Path(cfg.out) if cfg.out else run_dir, "--out")
    existing = [v for v in cfg.variants if (out / v).exists()]
    if existing and not cfg.overwrite:
        raise ExportError(f"{', '.join(str(out / v) for v in existing)} already exist(s); pass --overwrite to replace.")
    return out


def export_run(run_dir: str | Path, cfg: ExportConfig, console, summary: Callable[[ExportOutcome], None] | None = None
               ) -> dict[str, Path]:
    """Export a run directory (trained here, or written from a model file) to `cfg.variants`; returns the
    written variant directories. A variant the model cannot support (QAT on a layer tfmot cannot quantize)
    is skipped with its reason; one that misses its gate, cannot be converted or is not portable is refused
    with its numbers and what would help. Neither is written, both are recorded in keras-outputs/manifest.json
    (`skipped_variants`, `refused_variants`), and the others still export. `summary`, if given, receives the
    ExportOutcome once every variant was tried (the CLI renders it as a table). Refusals raise VariantsRefused at
    the end, after everything else was written."""
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    run = read_run(run_dir)  # before anything slow: a bad run or --out costs nothing
    out = output_dir(run_dir, cfg)
    ctx = load_context(run_dir, cfg, console, run)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"--out {out}: cannot create it ({exc.strerror or exc}).") from None
    console.print(f"Exporting {run_dir} ({ctx.run['model']}, {ctx.reference} test accuracy {ctx.keras_accuracy:.4f} on "
                  f"{len(ctx.y_test):,} images) to: {', '.join(cfg.variants)}")
    write_reference(ctx, out)
    outcome = ExportOutcome(run_dir, out, tuple(cfg.variants), ctx.keras_accuracy, reference=ctx.reference)
    errors = {}
    for v in cfg.variants:
        if ctx.from_onnx and VARIANTS[v].format != "onnx":
            outcome.skipped[v] = onnx_source.TFLITE_NEEDS_KERAS
            console.print(f"[yellow]–[/] {v:16s} skipped: {onnx_source.TFLITE_NEEDS_KERAS}")
            continue
        try:
            outcome.directories[v], manifest = export_variant(ctx, out, v)
            outcome.written[v] = written_entry(manifest)
        except FineTuneUnsupported as exc:
            outcome.skipped[v] = str(exc)
            console.print(f"[yellow]–[/] {v:16s} skipped: {exc}")
        except (ParityError, PortabilityError, ConversionError) as exc:
            stop_if_signalled()  # a stop that a converter turned into an error is a stop, not a refusal
            errors[v] = exc
            console.print(f"[red]✗[/] {v:16s} refused: {exc}")
    # what would help each refused one, now that every variant was tried (QAT's outcome included)
    outcome.refused = {v: refusal(v, exc, cfg.calibration_images, qat_status(outcome, errors), not ctx.from_onnx)
                       for v, exc in errors.items()}
    if outcome.skipped or outcome.refused:
        record_outcome(outcome)
    if summary is not None:
        summary(outcome)
    console.print(f"Done in {time.perf_counter() - t0:.0f}s; artifacts in {out}")
    if outcome.refused:
        raise VariantsRefused(outcome.directories, outcome.refused)
    return outcome.directories


def _onnx_run(source) -> bool:
    """A run directory written from an ONNX file (its model is model.onnx)."""
    try:
        return isinstance(source, (str, os.PathLike)) and onnx_source.is_onnx_file(read_run(source).model_file)
    except Exception:  # not a readable run: export_run says why
        return False


def export(model_or_path, variants=None, out=None, *, input_range: str | None = None, input_norm: str | None = None,
           input_scale: float | None = None, output: str = "auto", labels=None, limit: int | None = None,
           input_fit: str = "auto", console=None,
           summary: Callable[[ExportOutcome], None] | None = None, **options) -> dict[str, Path]:
    """Export a Keras classifier to edge artifacts, each checked against it; returns {variant: directory}.

    `model_or_path`: a run directory written by `fmnist-edge train` (or by an earlier export of a model
    file), a `.keras` / `.h5` file, an `.onnx` file (e.g. PyTorch's torch.onnx.export: exported to the ONNX
    variants only, see exporters.onnx_source), or an in-memory Keras model (e.g. in a notebook). For a model, `out` is
    the run directory to create (default `artifacts/<name>`); its input contract (`input_range` "LO,HI",
    `input_norm` "MEAN,STD", or `input_scale` S for range 0,S; see exporters.contract), `output` ("auto",
    "probabilities" or "logits"), `input_fit` ("auto", "pad" or "resize", for an input side other than 28), `labels`
    (10 class names) and `limit` (a seeded subset of the real data, for quick checks) describe it. `options` are
    ExportConfig fields.

    A variant that misses its gate or fails to convert is not written and the others still are; then
    `VariantsRefused` is raised, holding what was written (`.written`) and what was refused (`.refused`).
    """
    from rich.console import Console

    console = console or Console()
    source = model_or_path
    from_onnx = isinstance(source, (str, os.PathLike)) and onnx_source.is_onnx_file(Path(source))
    onnx_default = not variants and (from_onnx or _onnx_run(source))
    variants = ONNX_VARIANTS if onnx_default else tuple(variants) if variants else tuple(VARIANTS)
    with tempfile.TemporaryDirectory(prefix="fmnist-edge-model-") as scratch:
        if not isinstance(source, (str, os.PathLike)):  # an in-memory model: saved as it is, then read back
            name = getattr(source, "name", None) or "model"
            source = Path(scratch) / f"{name}.keras"
            model_or_path.save(source)
        source = Path(source)
        if source.is_file() or external.is_model_file(source) or from_onnx:
            declared = contract.resolve(input_range, input_norm, input_scale)
            spec = external.ExternalModel(declared, output, tuple(labels) if labels else None, input_fit)
            run_dir = (onnx_source if from_onnx else external).prepare(
                source, Path(out) if out else Path("artifacts") / source.stem, spec, limit, options.get("data_dir"),
                options.get("download", True), options.get("overwrite", False), console)
            _say_onnx_variants(console, onnx_default)
            return export_run(run_dir, ExportConfig(variants=variants, **{**options, "overwrite": True}), console, summary)
    if (any(v is not None for v in (input_range, input_norm, input_scale, limit)) or output != "auto" or labels
            or input_fit != "auto"):
        raise ExportError(f"{source}: --input-range, --input-norm, --input-scale, --input-fit, --output, --labels and --limit "
                          "describe a model file; a run directory already records them.")
    _say_onnx_variants(console, onnx_default)
    return export_run(source, ExportConfig(variants=variants, out=str(out) if out else None, **options), console, summary)


def _say_onnx_variants(console, onnx_default: bool) -> None:
    if onnx_default:
        console.print(f"TFLite variants: none for an ONNX model. {onnx_source.TFLITE_NEEDS_KERAS}")
