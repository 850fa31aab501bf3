"""`fmnist-edge export`: a trained run or a Keras model file to every variant, each checked against Keras. Defaults,
help texts and checks of the options live in exporters.config; this module maps flags onto them and calls export.
"""

from __future__ import annotations

import functools
import inspect
import os
from pathlib import Path
from typing import Optional

import typer

from exporters.config import (INPUT_FIT_HELP, ClusterConfig, ExportConfig, PruneConfig, QATConfig, option_default,
                              option_help)

from ..errors import FmnistEdgeError
from ._app import app, console, quiet_tensorflow, require_train_extra, user_errors


def print_summary(outcome) -> None:
    """A table of every variant asked for (exporters.pipeline.ExportOutcome): written with its numbers, refused
    and what would help, skipped and why. Shown when more than one variant was asked for or any was not written."""
    from rich.table import Table

    from exporters.pipeline import written_note

    if len(outcome.variants) <= 1 and not (outcome.refused or outcome.skipped):
        return
    table = Table(title=f"Export of {outcome.run_dir} ({outcome.reference} {outcome.keras_accuracy:.4f})", title_justify="left")
    for col in ("variant", "result", "accuracy", "agreement", "KiB", "why / what would help"):
        table.add_column(col, justify="right" if col in ("accuracy", "agreement", "KiB") else "left")
    for v in outcome.variants:
        if v in outcome.written:
            w = outcome.written[v]
            table.add_row(v, "[green]written[/]", f"{w['accuracy']:.4f}", f"{w['agreement_with_keras']:.2%}",
                          f"{w['bytes'] / 1024:.1f}", written_note(w))
        elif v in outcome.refused:
            r = outcome.refused[v]
            parity = r.get("parity") or {}
            agreement = f"{parity['agreement']:.2%}" if "agreement" in parity else ""
            table.add_row(v, "[red]refused[/]", "", agreement, "", f"{r['reason']} -> {r['remedy']}")
        elif v in outcome.skipped:
            table.add_row(v, "[yellow]skipped[/]", "", "", "", outcome.skipped[v])
    console.print(table)


def with_group_flags(fn):
    """One boolean flag per variant group of runtime.variants.GROUPS (--float, --int8, ...), placed after the
    command's PATH argument; the command receives them together as `groups` ({group: given})."""
    from runtime.variants import GROUPS

    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.name != "groups"]
    flags = [inspect.Parameter(f"group_{g}", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=bool,
                               default=typer.Option(False, f"--{g}", help=text)) for g, text in GROUPS.items()]

    @functools.wraps(fn)
    def command(**kwargs):
        return fn(groups={g: kwargs.pop(f"group_{g}") for g in GROUPS}, **kwargs)

    command.__signature__ = sig.replace(parameters=[params[0], *flags, *params[1:]])
    return command


def opt(cls, name: str, *flags: str):
    """A typer option whose default and help text are exporters.config's."""
    return typer.Option(option_default(cls, name), *flags, help=option_help(cls, name))


@app.command()
@user_errors
@with_group_flags
def export(
    groups: dict,
    run_dir: Optional[Path] = typer.Argument(None, metavar="PATH", help="A training run directory (default: the newest under artifacts/), "
                                             "or a model file: Keras (.keras, a Keras 2 .h5) or ONNX (torch.onnx.export)."),
    variant: Optional[list[str]] = typer.Option(None, "--variant", help="A variant by name (repeatable)."),
    calibration_images: int = opt(ExportConfig, "calibration_images"),
    calibration_seed: int = opt(ExportConfig, "calibration_seed"),
    qat_epochs: int = opt(QATConfig, "epochs", "--qat-epochs"),
    qat_learning_rate: float = opt(QATConfig, "learning_rate", "--qat-learning-rate"),
    qat_batch_size: int = opt(QATConfig, "batch_size", "--qat-batch-size"),
    prune_sparsity: float = opt(PruneConfig, "sparsity", "--prune-sparsity"),
    prune_epochs: int = opt(PruneConfig, "epochs", "--prune-epochs"),
    prune_ramp_epochs: int = opt(PruneConfig, "ramp_epochs", "--prune-ramp-epochs"),
    prune_learning_rate: float = opt(PruneConfig, "learning_rate", "--prune-learning-rate"),
    prune_min_share: float = opt(PruneConfig, "min_share", "--prune-min-share"),
    clusters: int = opt(ClusterConfig, "clusters", "--clusters"),
    cluster_epochs: int = opt(ClusterConfig, "epochs", "--cluster-epochs"),
    cluster_learning_rate: float = opt(ClusterConfig, "learning_rate", "--cluster-learning-rate"),
    cluster_min_share: float = opt(ClusterConfig, "min_share", "--cluster-min-share"),
    fine_tune_images: int = opt(ExportConfig, "fine_tune_images"),
    compression_max_drop: float = opt(ExportConfig, "compression_max_drop"),
    compression_attempts: int = opt(ExportConfig, "compression_attempts"),
    controls: bool = opt(ExportConfig, "controls", "--controls/--no-controls"),
    opset: int = opt(ExportConfig, "opset"),
    out: Optional[Path] = typer.Option(None, help="Where to write the variant directories (default: the run directory)."),
    overwrite: bool = typer.Option(False, help="Replace existing variant directories (atomically)."),
    data_dir: Optional[Path] = typer.Option(None, help="Directory with the four Fashion-MNIST IDX files."),
    c_source: bool = typer.Option(False, "--c-source", help="Also write each int8 TFLite model as C/C++ source (VARIANT/c/)."),
    onnx_int8_scheme: str = opt(ExportConfig, "onnx_int8_scheme"),
    repair: str = opt(ExportConfig, "repair"),
    portability_check: bool = typer.Option(True, "--portability-check/--no-portability-check",
                                           help="Prove each int8 variant gives the same outputs under emulated x86 SSE4.2 and "
                                                "AVX2 CPUs (qemu-user-static) before writing it."),
    input_range: Optional[str] = typer.Option(None, help="Model file: the range LO,HI the model was trained on, pixels mapped "
                                              "linearly: 0,1 (the default, checked), 0,255 (raw pixels) or -1,1 (x / 127.5 - 1)."),
    input_norm: Optional[str] = typer.Option(None, help="Model file: MEAN,STD the model standardised its inputs with, in the "
                                             "units of --input-range (Fashion-MNIST in [0, 1]: 0.286,0.353)."),
    input_scale: Optional[float] = typer.Option(None, help="Model file: shorthand for --input-range 0,S (255 for raw pixels)."),
    output: str = typer.Option("auto", help="Model file: its output is 'probabilities' or 'logits' (auto: detected from "
                               "the last layer)."),
    labels: Optional[Path] = typer.Option(None, help="Model file: 10 class names, one per line in output order "
                                          "(default: Fashion-MNIST's)."),
    input_fit: str = typer.Option("auto", help=INPUT_FIT_HELP),
    limit: Optional[int] = typer.Option(None, help="Model file: use a seeded class-balanced subset of the real data (quick check)."),
):
    """Export a trained run, or a Keras model file, to every variant (TFLite float32, float16, dynamic-range,
    int8, int8-QAT, int8-pruned, int8-clustered, int8-web; ONNX float32, int8), each checked against Keras; an ONNX
    model file (PyTorch's torch.onnx.export) to ONNX float32 and int8, each checked against it. For a model
    file, --out is the run directory to create (default artifacts/NAME); its input contract is folded into the
    exported graph and checked on real images first. A variant that misses its gate is refused and not written,
    the others are: exit code 3 then (1: the export failed as a whole)."""
    from exporters.contract import resolve

    from ..runs import latest_run

    variants = chosen_variants(groups, variant)
    # Every option is checked (by constructing its config) before TensorFlow loads: a bad option costs nothing.
    options = dict(
        calibration_images=calibration_images, calibration_seed=calibration_seed,
        qat=QATConfig(epochs=qat_epochs, learning_rate=qat_learning_rate, batch_size=qat_batch_size),
        pruning=PruneConfig(sparsity=prune_sparsity, min_share=prune_min_share, epochs=prune_epochs,
                            ramp_epochs=prune_ramp_epochs, learning_rate=prune_learning_rate),
        clustering=ClusterConfig(clusters=clusters, min_share=cluster_min_share, epochs=cluster_epochs,
                                 learning_rate=cluster_learning_rate),
        fine_tune_images=fine_tune_images, compression_max_drop=compression_max_drop,
        compression_attempts=compression_attempts, controls=controls, opset=opset, overwrite=overwrite,
        data_dir=str(data_dir) if data_dir else None, onnx_int8_scheme=onnx_int8_scheme, repair=repair,
        portability_cpus=option_default(ExportConfig, "portability_cpus") if portability_check else (),
    )
    ExportConfig(**({"variants": variants} if variants else {}), **options)
    resolve(input_range, input_norm, input_scale)
    require_train_extra("tensorflow")
    quiet_tensorflow()
    # The converters need the model in TensorFlow, whatever backend trained it (JAX/PyTorch .keras files load).
    os.environ["KERAS_BACKEND"] = "tensorflow"
    from exporters.external import read_labels

    model_file = dict(input_range=input_range, input_norm=input_norm, input_scale=input_scale, output=output,
                      labels=read_labels(labels) if labels else None, limit=limit, input_fit=input_fit)
    run_export(run_dir or latest_run(), variants, out, model_file, options, c_source)


def run_export(path: Path, variants: tuple[str, ...], out: Path | None, model_file: dict, options: dict,
               c_source: bool) -> None:
    """Export, print the summary, and with --c-source write the full-integer files as C source, refused variants
    or not (then exit 3 after)."""
    from exporters.errors import VariantsRefused
    from exporters.pipeline import export as export_model

    refused = None
    try:
        done = export_model(path, variants, out, console=console, summary=print_summary, **model_file, **options)
    except VariantsRefused as exc:
        done, refused = exc.written, exc
    if c_source:
        write_c_sources(done)
    if refused is not None:
        raise refused


def chosen_variants(groups: dict[str, bool], names: list[str] | None) -> tuple[str, ...]:
    """The variants of every group flag given and every --variant named, in the table's order."""
    from runtime.variants import VARIANTS

    chosen = [v.name for v in VARIANTS.values() if groups[v.group]]
    for name in names or []:
        if name not in VARIANTS:
            raise FmnistEdgeError(f"Unknown variant {name!r}. Choose from: {', '.join(VARIANTS)}.")
        chosen.append(name)
    return tuple(dict.fromkeys(chosen))  # none chosen: export picks (every variant; the ONNX ones for an ONNX model)


def write_c_sources(done: dict[str, Path]) -> None:
    """`--c-source`: each written full-integer TFLite file as C/C++ source in VARIANT/c/."""
    from runtime.variants import VARIANTS

    from ..micro import write_c_source

    for name in (v.name for v in VARIANTS.values() if v.full_integer):
        if name in done:
            try:
                header, _ = write_c_source(done[name], done[name] / "c", "fmnist_model")
            except FmnistEdgeError as exc:  # a file repaired with float layers is not for a microcontroller
                console.print(f"[yellow]–[/] no C source for {name}: {exc}")
                continue
            console.print(f"C source for {name}: {header.parent}/")
