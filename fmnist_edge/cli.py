"""The `fmnist-edge` command line.

Heavy libraries (TensorFlow, Keras, matplotlib) are imported inside the commands that need them, so
`fmnist-edge --help` starts fast and works on a device with only the base install.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from exporters.settings import ClusterConfig, PruneConfig

from .cpumatrix import ALL_CPUS
from .errors import FmnistEdgeError, MissingExtraError, signalled, stop_if_signalled
from .models import PRESETS

app = typer.Typer(
    help="Train a Fashion-MNIST classifier, export it for the edge, and prove nothing was lost.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Wide tables stay readable in logs and pipes (rich assumes 80 columns when not on a terminal).
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def user_errors(fn):
    """Turn the project's own errors into a clear message and exit code 1 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _terminate)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            if signalled:
                # A SIGTERM's SystemExit raised inside a library callback (the TFLite converter calls the
                # representative dataset from C++) comes back as some other error, e.g. a TypeError that
                # export reports as a failed conversion: the process was stopped, so exit as stopped.
                raise SystemExit(128 + signalled[0]) from None
            if not isinstance(exc, FmnistEdgeError) and not _is_runtime_error(exc):
                raise
            # The message is plain text: rich markup would swallow things like "fmnist-edge[train]".
            err_console.print(Text("error: ", style="bold red") + Text(str(exc)), highlight=False, soft_wrap=True)
            raise typer.Exit(getattr(exc, "exit_code", 1)) from None
        stop_if_signalled()  # a stop that a library swallowed entirely still exits as stopped
        return result

    return wrapper


def _terminate(signum, frame):
    # `timeout`, systemd and CI cancellation send SIGTERM: unwind like Ctrl-C, so that every staged or
    # partial output is removed on the way out, and exit with the conventional 128 + signal number.
    signalled.append(signum)
    raise SystemExit(128 + signum)


def _is_runtime_error(exc: Exception) -> bool:
    # The runtime cannot depend on this package, so its errors have their own base class; imported
    # only here, when something already failed, to keep start-up light.
    from runtime.errors import RuntimeArtifactError

    return isinstance(exc, RuntimeArtifactError)


def require_train_extra(backend: str | None = None) -> None:
    # Training needs Keras, the chosen backend's library and matplotlib; TensorFlow only if it is the backend
    # (a GPU box may train under JAX or PyTorch without it).
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    missing = [m for m in ("keras", backend, "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(
            f"This command needs the training stack ({', '.join(missing)} not installed). "
            "Install it with: pip install 'fmnist-edge[train]'  (from a checkout: pip install -e '.[train]')"
        )


@app.command()
@user_errors
def train(
    model: str = typer.Option("reference", "--model", "-m", help=f"Preset to train: {', '.join(PRESETS)} "
                              "(details: `fmnist-edge models`)."),
    recipe_name: Optional[str] = typer.Option(None, "--recipe", help="A named recipe of the preset: seed (the seed's own, "
                                              "the default) or another the preset lists (`fmnist-edge models`)."),
    epochs: Optional[int] = typer.Option(None, help="Override the recipe's number of epochs."),
    batch_size: Optional[int] = typer.Option(None, help="Override the recipe's batch size."),
    learning_rate: Optional[float] = typer.Option(None, help="Override the recipe's learning rate."),
    optimizer: Optional[str] = typer.Option(None, help="Override the recipe's optimizer: adam or rmsprop."),
    validation: Optional[str] = typer.Option(
        None, help="Validation data: a fraction of the training set (0.1), a count (10000) or 'test'."
    ),
    seed: int = typer.Option(0, help="Seed for the split, weight initialisation and shuffling."),
    limit: Optional[int] = typer.Option(
        None, help="Quick mode: use a seeded class-balanced subset of at most N train and N test images."
    ),
    data_dir: Optional[Path] = typer.Option(
        None, help="Directory with the four Fashion-MNIST IDX files (default: $FMNIST_DATA_DIR, Keras cache, Debian package)."
    ),
    download: bool = typer.Option(True, help="Allow a download through Keras when no local copy is found."),
    out: Optional[Path] = typer.Option(None, help="Run directory to create (default: artifacts/<model>-<timestamp>)."),
    devices: int = typer.Option(1, help="Train data-parallel over N devices (GPUs, or CPU devices) with Keras's "
                                "distribution API; needs KERAS_BACKEND=jax and a batch size divisible by N."),
    schedule: Optional[str] = typer.Option(None, help="Override the recipe's learning-rate schedule: constant or cosine."),
    augment: Optional[str] = typer.Option(None, help="Override the recipe's garment augmentation, new every epoch: none, "
                                          "flip (mirror half the images), flip+shift (and move by up to 2 px) or "
                                          "flip+shift+erase (and hide a random patch in half of them)."),
    distill: Optional[bool] = typer.Option(None, "--distill/--no-distill",
                                           help="Override the recipe: also learn from a teacher run's model."),
    teacher: Optional[Path] = typer.Option(None, help="Run directory to distil from (default: artifacts/reference)."),
    temperature: Optional[float] = typer.Option(None, help="Override the recipe's distillation temperature."),
    label_weight: Optional[float] = typer.Option(None, help="Override the recipe's weight of the labels' loss when "
                                                 "distilling (0-1; the teacher's loss gets the rest)."),
    teacher_outputs: Optional[str] = typer.Option(None, help="Override the recipe: 'cached' (the teacher's logits on each "
                                                  "training image, computed once) or 'live' (the teacher sees every "
                                                  "augmented batch; about twice the time per epoch)."),
    label_smoothing: Optional[float] = typer.Option(None, help="Override the recipe's label smoothing (0-1; e.g. 0.1)."),
    weight_decay: Optional[float] = typer.Option(None, help="Override the recipe's decoupled weight decay (e.g. 1e-4)."),
):
    """Train a preset on the real Fashion-MNIST and write a run directory (model, manifest, metrics, curves)."""
    from .models import get_preset, parse_validation

    preset = get_preset(model)  # validate the name before the slow imports
    recipe = preset.named_recipe(recipe_name).with_overrides(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, optimizer=optimizer,
        validation=parse_validation(validation) if validation is not None else None,
        schedule=schedule, augment=augment, distill=distill, temperature=temperature, label_weight=label_weight,
        teacher_outputs=teacher_outputs, label_smoothing=label_smoothing, weight_decay=weight_decay,
    )
    require_train_extra()
    # TensorFlow logs error-level lines on every CPU-only machine (cuInit, NodeDef attributes) that users read as
    # failures; our own errors are raised in Python, so level 3 hides nothing a user needs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from .train import TrainConfig, train as run_training

    cfg = TrainConfig(model=model, seed=seed, recipe=recipe, limit=limit,
                      data_dir=str(data_dir) if data_dir else None, download=download, out=str(out) if out else None,
                      devices=devices, teacher=str(teacher) if teacher else None)
    run_training(cfg, console=console)


def latest_run(root: Path = Path("artifacts")) -> Path:
    """The newest training run under artifacts/ (by its manifest's creation time)."""
    import json

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


@app.command()
@user_errors
def export(
    run_dir: Optional[Path] = typer.Argument(None, metavar="PATH", help="A training run directory (default: the newest under "
                                             "artifacts/), or a Keras model file (.keras, or a Keras 2 .h5) the toolkit did not train."),
    float_: bool = typer.Option(False, "--float", help="TFLite float32."),
    int8: bool = typer.Option(False, "--int8", help="TFLite int8, post-training full-integer."),
    qat: bool = typer.Option(False, "--qat", help="TFLite int8 from quantization-aware training."),
    onnx: bool = typer.Option(False, "--onnx", help="ONNX float32 and ONNX int8 (QDQ)."),
    compress: bool = typer.Option(False, "--compress", help="TFLite float16, dynamic-range int8, and int8 after trained "
                                  "pruning and after trained weight clustering."),
    variant: Optional[list[str]] = typer.Option(None, "--variant", help="A variant by name (repeatable)."),
    calibration_images: int = typer.Option(500, help="Calibration images for int8, class-balanced from the training split."),
    calibration_seed: int = typer.Option(0, help="Seed for choosing the calibration images."),
    qat_epochs: int = typer.Option(1, help="QAT fine-tuning epochs."),
    qat_learning_rate: float = typer.Option(3e-5, help="QAT fine-tuning learning rate (Adam)."),
    qat_batch_size: int = typer.Option(256, help="QAT fine-tuning batch size."),
    prune_sparsity: float = typer.Option(PruneConfig.sparsity, help="Pruning: target fraction of zero weights per pruned layer."),
    prune_epochs: int = typer.Option(PruneConfig.epochs, help="Pruning: fine-tuning epochs."),
    prune_ramp_epochs: int = typer.Option(PruneConfig.ramp_epochs, help="Pruning: epochs over which sparsity rises to the target."),
    prune_learning_rate: float = typer.Option(PruneConfig.learning_rate, help="Pruning: fine-tuning learning rate (Adam)."),
    prune_min_share: float = typer.Option(PruneConfig.min_share, help="Pruning: only layers holding at least this share of "
                                          "the model's weights (0-1)."),
    clusters: int = typer.Option(ClusterConfig.clusters, help="Clustering: centroids per clustered layer (2-256)."),
    cluster_epochs: int = typer.Option(ClusterConfig.epochs, help="Clustering: fine-tuning epochs."),
    cluster_learning_rate: float = typer.Option(ClusterConfig.learning_rate, help="Clustering: fine-tuning learning rate (Adam)."),
    cluster_min_share: float = typer.Option(ClusterConfig.min_share, help="Clustering: only layers holding at least this "
                                            "share of the model's weights (0-1)."),
    opset: int = typer.Option(17, help="ONNX opset (tf2onnx 1.17 supports up to 18)."),
    out: Optional[Path] = typer.Option(None, help="Where to write the variant directories (default: the run directory)."),
    overwrite: bool = typer.Option(False, help="Replace existing variant directories (atomically)."),
    data_dir: Optional[Path] = typer.Option(None, help="Directory with the four Fashion-MNIST IDX files."),
    c_source: bool = typer.Option(False, "--c-source", help="Also write each int8 TFLite model as C/C++ source (VARIANT/c/)."),
    onnx_int8_scheme: str = typer.Option("u8u8", help="ONNX Runtime int8 scheme: u8u8 (default, portable), s8s8-reduce-range, "
                                         "u8s8-reduce-range, or s8s8 (differs per CPU; needs --no-portability-check)."),
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
    limit: Optional[int] = typer.Option(None, help="Model file: use a seeded class-balanced subset of the real data (quick check)."),
):
    """Export a trained run, or a Keras model file, to every variant (TFLite float32, float16, dynamic-range,
    int8, int8-QAT, int8-pruned, int8-clustered; ONNX float32, int8), each checked against Keras. For a model
    file, --out is the run directory to create (default artifacts/NAME); its input contract is folded into the
    exported graph and checked on real images first. A variant that misses its gate is refused and not written,
    the others are: exit code 3 then (1: the export failed as a whole)."""
    from runtime.variants import VARIANTS

    groups = {"float": float_, "int8": int8, "qat": qat, "compress": compress, "onnx": onnx}
    chosen = [v.name for v in VARIANTS.values() if groups[v.group]]
    for name in variant or []:
        if name not in VARIANTS:
            raise FmnistEdgeError(f"Unknown variant {name!r}. Choose from: {', '.join(VARIANTS)}.")
        chosen.append(name)
    chosen = list(dict.fromkeys(chosen)) or list(VARIANTS)
    if not 0 <= calibration_seed < 2**32:
        raise FmnistEdgeError(f"--calibration-seed must be an integer from 0 to 2**32 - 1, got {calibration_seed}.")
    if opset < 13 or opset > 18:
        raise FmnistEdgeError(f"--opset must be between 13 and 18 (tf2onnx 1.17), got {opset}.")
    if qat_epochs < 1 or qat_batch_size < 1 or not qat_learning_rate > 0:
        raise FmnistEdgeError("--qat-epochs and --qat-batch-size must be >= 1 and --qat-learning-rate > 0.")
    # checked before TensorFlow loads: a bad option costs nothing
    pruning = PruneConfig(prune_sparsity, prune_min_share, prune_epochs, prune_ramp_epochs, prune_learning_rate)
    clustering = ClusterConfig(clusters, cluster_min_share, cluster_epochs, cluster_learning_rate)
    from exporters.contract import resolve

    resolve(input_range, input_norm, input_scale)
    require_train_extra("tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # see train()
    # The converters need the model in TensorFlow, whatever backend trained it (JAX/PyTorch .keras files load).
    os.environ["KERAS_BACKEND"] = "tensorflow"
    from exporters.errors import VariantsRefused
    from exporters.external import read_labels
    from exporters.pipeline import ExportConfig
    from exporters.pipeline import export as export_model
    from exporters.qat import QATConfig

    refused = None
    try:
        done = export_model(
            run_dir or latest_run(), chosen, out, input_range=input_range, input_norm=input_norm,
            input_scale=input_scale, output=output,
            labels=read_labels(labels) if labels else None, limit=limit, console=console,
            calibration_images=calibration_images, calibration_seed=calibration_seed,
            qat=QATConfig(qat_epochs, qat_learning_rate, qat_batch_size), pruning=pruning, clustering=clustering,
            opset=opset, overwrite=overwrite,
            data_dir=str(data_dir) if data_dir else None, onnx_int8_scheme=onnx_int8_scheme,
            portability_cpus=ExportConfig.portability_cpus if portability_check else (),
        )
    except VariantsRefused as exc:  # the written variants still get their C source; then exit 3
        done, refused = exc.written, exc
    if c_source:
        from .micro import write_c_source

        for variant in (v.name for v in VARIANTS.values() if v.full_integer):
            if variant in done:
                header, _ = write_c_source(done[variant], done[variant] / "c", "fmnist_model")
                console.print(f"C source for {variant}: {header.parent}/")
    if refused is not None:
        raise refused


SHIPPED_RUN = Path("artifacts/reference")
MAX_BATCH = 4096  # throughput batches: beyond this a small device runs out of memory long before it gets faster


def default_release() -> Path:
    """The shipped reference release if present, else the newest training run."""
    return SHIPPED_RUN if (SHIPPED_RUN / "manifest.json").is_file() else latest_run()


@app.command()
@user_errors
def bench(
    run_dir: Optional[Path] = typer.Argument(None, help="Run with exported artifacts (default: artifacts/reference)."),
    threads: int = typer.Option(1, help="Threads for every interpreter (and TensorFlow)."),
    batch_size: Optional[list[int]] = typer.Option(None, "--batch-size", help="Throughput batch sizes (repeatable; default 32 and 256)."),
    runs: int = typer.Option(500, help="Timed batch-1 runs per model."),
    warmup: int = typer.Option(50, help="Warm-up runs before timing."),
    variant: Optional[list[str]] = typer.Option(None, "--variant", help="Only these artifacts (repeatable)."),
    keras: str = typer.Option("auto", help="Keras row: auto (live if TensorFlow is installed), live, recorded."),
    max_drop: Optional[float] = typer.Option(None, help="Fail if an artifact loses more accuracy than this (points); "
                                             "in a constraint query, a constraint instead."),
    min_agreement: Optional[float] = typer.Option(None, help="Fail if top-1 agreement with Keras is below this (0-1); "
                                                  "in a constraint query, a constraint instead."),
    max_size: Optional[str] = typer.Option(None, help="Constraint query: compressed (zlib-9) size at most this, e.g. 200KB. "
                                           "Names the best variant that fits, or which constraint binds."),
    max_raw_size: Optional[str] = typer.Option(None, help="Constraint query: file size (flash) at most this, e.g. 512KiB."),
    max_latency: Optional[str] = typer.Option(None, help="Constraint query: batch-1 p50 latency on this CPU at most this, e.g. 300us."),
    results: Optional[Path] = typer.Option(None, help="Answer from a saved bench.json instead of measuring again "
                                           "(e.g. artifacts/reference/bench.json)."),
    out: Optional[Path] = typer.Option(None, help="Directory for bench.json, bench.md and bench.png (default: "
                                       "bench-results/RUN_NAME; the release itself is never written unless named here)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="JSON result (default: OUT/bench.json)."),
    markdown_out: Optional[Path] = typer.Option(None, "--markdown", help="Markdown table (default: OUT/bench.md)."),
    plot_out: Optional[Path] = typer.Option(None, "--plot", help="PNG plot (default: OUT/bench.png)."),
    data_dir: Optional[Path] = typer.Option(None, help="Directory with the four Fashion-MNIST IDX files."),
    test_images: Optional[int] = typer.Option(None, help="Use a seeded class-balanced subset of N test images (default: all)."),
    compute_floor: bool = typer.Option(True, help="Measure the CPU's float32 matmul peak to show each model's compute floor."),
    profile: bool = typer.Option(False, "--profile", help="Instead: where each artifact's batch-1 time goes, per op (ONNX "
                                 "Runtime's profiler; for TFLite, timed cumulative prefixes of the file). Writes OUT/profile.json."),
):
    """Accuracy, agreement, size (raw and compressed) and latency of every artifact of a run next to the Keras
    original, with the Pareto-optimal variants marked. With --max-size/--max-raw-size/--max-latency it answers a
    constraint query: the best variant that fits, or which constraint binds."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from runtime.backends import MAX_THREADS

    from . import report, tradeoff
    from .bench import ARTIFACT_DIRS, BenchConfig, run_bench
    from .manifest import check_output_dir, check_output_file, write_atomic, write_json

    if keras not in ("auto", "live", "recorded"):
        raise FmnistEdgeError(f"--keras must be auto, live or recorded; got {keras!r}.")
    if test_images is not None and test_images < 10:
        raise FmnistEdgeError(f"--test-images must be at least 10 (one per class), got {test_images}.")
    if not 1 <= threads <= MAX_THREADS or runs < 10 or warmup < 0:
        raise FmnistEdgeError(f"--threads must be from 1 to {MAX_THREADS}, --runs >= 10 and --warmup >= 0.")
    bad_batches = [b for b in batch_size or () if not 1 <= b <= MAX_BATCH]
    if bad_batches:
        raise FmnistEdgeError(f"--batch-size must be between 1 and {MAX_BATCH:,}, got {bad_batches}.")
    for name, value, low, high in (("--max-drop", max_drop, 0.0, 100.0), ("--min-agreement", min_agreement, 0.0, 1.0)):
        # NaN compares false with everything, so an unchecked NaN would silently switch the gate off.
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            raise FmnistEdgeError(f"{name} must be a number between {low:g} and {high:g}, got {value}.")
    try:
        cons = tradeoff.Constraints(
            max_size=tradeoff.parse_size(max_size) if max_size is not None else None,
            max_raw_size=tradeoff.parse_size(max_raw_size) if max_raw_size is not None else None,
            max_latency_us=tradeoff.parse_latency(max_latency) if max_latency is not None else None,
            max_drop=max_drop, min_agreement=min_agreement)
    except ValueError as exc:
        raise FmnistEdgeError(f"{exc}.") from None
    querying = any(v is not None for v in (max_size, max_raw_size, max_latency))
    if results is not None:
        result = saved_result(results)
        console.print(report.rich_table(result))
        return answer_query(result, cons) if querying else gate_or_fail(report.gate(result, max_drop, min_agreement))
    if keras == "live":
        require_train_extra("tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # see train()
    os.environ["KERAS_BACKEND"] = "tensorflow"  # the live Keras row times a compiled tf.function
    run = run_dir or default_release()
    unknown = [v for v in variant or () if v not in ARTIFACT_DIRS]
    if unknown:  # also keeps --variant ../x from reaching outside the run
        raise FmnistEdgeError(f"--variant: unknown {unknown}; choose from {', '.join(ARTIFACT_DIRS)}.")
    # Every output is checked before the benchmark runs, so a bad path cannot waste it.
    out = check_output_dir(out or Path("bench-results") / run.resolve().name, "--out")
    if profile:
        return profile_run(run, variant, runs, threads, check_output_file(json_out, "--json") if json_out else out / "profile.json")
    json_out, markdown_out, plot_out = ((p or out / name) for p, name in
                                        ((json_out, "bench.json"), (markdown_out, "bench.md"), (plot_out, "bench.png")))
    for option, path in (("--json", json_out), ("--markdown", markdown_out), ("--plot", plot_out)):
        if path.parent != out or out.exists():
            check_output_file(path, option)
    cfg = BenchConfig(threads=threads, batch_sizes=tuple(batch_size or (32, 256)), warmup=warmup, runs=runs,
                      variants=tuple(variant) if variant else None, keras=keras,
                      data_dir=str(data_dir) if data_dir else None, test_images=test_images,
                      compute_floor=compute_floor)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("bench", total=None)
        result = run_bench(run, cfg, progress=lambda msg: progress.update(task, description=f"benchmarking {msg}"))
    console.print(report.rich_table(result))
    if out in (json_out.parent, markdown_out.parent, plot_out.parent):
        out.mkdir(parents=True, exist_ok=True)
    write_json(json_out, result)
    write_atomic(markdown_out, lambda tmp: tmp.write_text(report.markdown(result)))
    plotted = report.can_plot()
    if plotted:
        write_atomic(plot_out, lambda tmp: report.plot(result, tmp))
    console.print(f"Wrote {json_out}, {markdown_out}" + (f", {plot_out}" if plotted else " (no plot: matplotlib not installed)"))
    if querying:
        return answer_query(result, cons)
    gate_or_fail(report.gate(result, max_drop, min_agreement))


def profile_run(run: Path, variants, runs: int, threads: int, json_out: Path) -> None:
    """`bench --profile`: a per-op table for each artifact of a run (or one artifact directory), and JSON."""
    from .bench import ARTIFACT_DIRS
    from .manifest import host_cpu, write_json
    from .profile import profile_artifact

    if (run / "manifest.json").is_file() and any((run / f"model.{fmt}").exists() for fmt in ("tflite", "onnx")):
        dirs = [run]  # one artifact
    else:
        dirs = [run / v for v in (variants or ARTIFACT_DIRS) if (run / v / "manifest.json").is_file()]
    if not dirs:
        raise FmnistEdgeError(f"{run}: no exported artifact to profile (expected VARIANT/manifest.json inside it).")
    host = host_cpu()
    results = []
    for d in dirs:
        r = profile_artifact(d, runs=runs, threads=threads)
        results.append(r)
        table = Table(title=f"{r['variant']}: batch 1, {threads} thread(s), {host['class']}; whole {r['whole_us']:.1f} µs",
                      caption=r["method"], caption_justify="left")
        for col in ("op", "output shape", "µs", "share", "MFLOP", "MFLOP/s"):
            table.add_column(col, justify="left" if col in ("op", "output shape") else "right")
        for o in r["ops"]:
            table.add_row(o["op"], str(o.get("shape") or ""), f"{o['us']:.1f}",
                          f"{o['share']:.1%}" if o.get("share") is not None else "",
                          f"{o['mflop']:.3f}" if o.get("mflop") else "",
                          f"{o['mflop_per_s']:,.0f}" if o.get("mflop_per_s") else "")
        console.print(table)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    write_json(json_out, {"run": str(run), "host": host, "runs": runs, "threads": threads, "artifacts": results})
    console.print(f"Wrote {json_out}")


def gate_or_fail(bad: list[str]) -> None:
    if bad:
        raise FmnistEdgeError("gating failed:\n  " + "\n  ".join(bad))


def saved_result(path: Path) -> dict:
    """A bench.json written by `fmnist-edge bench`, checked enough to be queried."""
    from runtime.manifest import ManifestError, read_json

    try:
        result = read_json(path)
    except ManifestError as exc:
        raise FmnistEdgeError(str(exc)) from None
    if not (isinstance(result, dict) and isinstance(result.get("rows"), list) and isinstance(result.get("method"), dict)
            and all(isinstance(r, dict) and {"name", "kind", "status", "metrics", "latency"} <= set(r) for r in result["rows"])):
        raise FmnistEdgeError(f"{path}: not a bench result (expected the bench.json written by `fmnist-edge bench`).")
    return result


def answer_query(result: dict, cons) -> None:
    """Print the best variant within the constraints; exit 1 naming the binding constraint when none fits."""
    from . import tradeoff

    answer = tradeoff.query(result, cons)
    text = tradeoff.explain(answer)
    if not answer["fits"]:
        raise FmnistEdgeError(text)
    console.print(f"[green]{text}[/]")


@app.command()
@user_errors
def verify(
    artifact: Optional[Path] = typer.Argument(None, help="Artifact directory, or a run to verify all its artifacts (default: artifacts/reference)."),
    threads: int = typer.Option(1, help="Interpreter threads."),
    cpu_matrix: bool = typer.Option(False, "--cpu-matrix", help="Also run the golden set under emulated CPUs (qemu): "
                                    "x86 SSE4.2 and AVX2, arm64 Cortex-A72/A76; one column per CPU."),
    cpus: str = typer.Option(",".join(ALL_CPUS), help="CPUs for --cpu-matrix, comma-separated."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="With --cpu-matrix: also write the matrix as JSON."),
):
    """On this device, run the golden images and compare with the outputs recorded at export."""
    from runtime.errors import RuntimeArtifactError
    from runtime.verify import verify as verify_one

    from .bench import ARTIFACT_DIRS

    target = artifact or default_release()
    is_run = any((target / n).is_dir() for n in ARTIFACT_DIRS)  # a run holds variant directories
    targets = [target / n for n in ARTIFACT_DIRS if (target / n).is_dir()] if is_run else [target]
    if not targets:
        raise FmnistEdgeError(f"{target}: no artifacts to verify (expected variant directories such as tflite-int8/).")
    if cpu_matrix:
        return verify_cpu_matrix(targets, tuple(c.strip() for c in cpus.split(",") if c.strip()), json_out)
    if json_out:
        raise FmnistEdgeError("--json is written by --cpu-matrix; add --cpu-matrix or drop --json.")
    from .manifest import host_cpu

    host = host_cpu()
    table = Table(title=f"verify: this device ({host['model']}, {host['class']}) vs. the outputs recorded at export")
    for col in ("artifact", "images", "agree w/ export", "max |Δp| (allowed)", "agree w/ Keras", "accuracy", "result"):
        table.add_column(col)
    failures = []
    for t in targets:
        try:
            r = verify_one(t, num_threads=threads)
        except RuntimeArtifactError as exc:  # one broken artifact must not hide the verdicts on the others
            table.add_row(t.name, "-", "-", "-", "-", "-", "[red]ERROR[/]")
            failures.append(f"{t.name}: {exc}")
            continue
        table.add_row(r.variant, str(r.images), f"{r.agreement_with_export:.2%}",
                      f"{r.max_abs_diff_vs_export:.2g} ({r.tolerance_abs:.2g})", f"{r.agreement_with_keras:.2%}",
                      f"{r.accuracy:.4f} (Keras {r.keras_accuracy:.4f})", "[green]PASS[/]" if r.passed else "[red]FAIL[/]")
        failures += [f"{r.variant}: {p}" for p in r.problems]
    console.print(table)
    if failures:
        raise FmnistEdgeError(
            "this device's results differ from those recorded at export:\n  " + "\n  ".join(failures) +
            "\nLikely causes: a different LiteRT/ONNX Runtime version, kernels that compute differently on this CPU "
            "(e.g. an emulator advertising SVE/SME), or a corrupted copy. Check the versions against the manifest."
        )


def verify_cpu_matrix(targets: list[Path], cpus: tuple[str, ...], json_out: Optional[Path]) -> None:
    """The golden set of every artifact on this CPU and on emulated ones; a table of artifact x CPU."""
    from .cpumatrix import ALL_CPUS, ARM_CPUS, EMULATED_FLOAT_IMAGES, X86_CPUS, run_matrix
    from .manifest import check_output_file, host_cpu, write_json

    unknown = [c for c in cpus if c not in ALL_CPUS]
    if unknown or not cpus:
        raise FmnistEdgeError(f"--cpus: unknown {unknown or 'empty list'}; choose from {', '.join(ALL_CPUS)}.")
    if json_out:
        check_output_file(json_out, "--json")
    host = host_cpu()
    label = {"native": f"native: {host['model']}, {host['class']}", **X86_CPUS, **ARM_CPUS}
    with console.status("") as status:
        matrix = run_matrix(targets, cpus, progress=lambda cpu: status.update(f"running the golden set as {label[cpu]}"))
    table = Table(title="CPU matrix: each CPU's outputs on the golden images vs. those recorded at export")
    table.add_column("artifact")
    for cpu in cpus:
        table.add_column(f"{cpu}\n({label[cpu]})" if cpu != "native" else label[cpu], justify="center")
    variants = list(matrix[cpus[0]])
    for v in variants:
        table.add_row(v, *(("[green]✓[/]" if (c := matrix[cpu][v]).passed else "[red]✗[/]") +
                           f" {c.agreement:.0%} |Δp| {c.max_abs_diff:.1g} ({c.images} img)" for cpu in cpus))
    console.print(table)
    console.print("Rule: 100% top-1 agreement; |Δp| within one int8 output step (int8) or 1e-4 (float). "
                  f"Emulated CPUs run float kernels on {EMULATED_FLOAT_IMAGES} of the golden images (qemu runs FMA "
                  "in software: seconds per image), int8 kernels on all. "
                  "qemu cannot emulate AVX-512, so the native column is the only one that covers it.", highlight=False)
    if json_out:
        write_json(json_out, {"host": host, "cpus": {c: label[c] for c in cpus},
                              "results": {cpu: {v: {**vars(cell), "passed": cell.passed} for v, cell in row.items()}
                                          for cpu, row in matrix.items()}})
    failures = [f"{v} on {cpu}: {'; '.join(cell.problems)}" for cpu, row in matrix.items() for v, cell in row.items()
                if not cell.passed]
    if failures:
        raise FmnistEdgeError("the CPU matrix failed:\n  " + "\n  ".join(failures))


@app.command()
@user_errors
def predict(
    images: list[Path] = typer.Argument(..., help="PNG/JPEG photos or scans of garments."),
    model: Optional[Path] = typer.Option(None, "--model", help="Artifact directory or model file (default: artifacts/reference/tflite-int8)."),
    top_k: int = typer.Option(3, "--top-k", help="How many labels to show per image."),
    threads: int = typer.Option(1, help="Interpreter threads."),
):
    """Classify real photos: grayscale, fit to 28x28 keeping aspect, match Fashion-MNIST polarity, show top-k."""
    import numpy as np

    import runtime
    from runtime.images import load_image

    if not 1 <= top_k <= 10:
        raise FmnistEdgeError(f"--top-k must be between 1 and 10, got {top_k}.")
    clf = runtime.load(model or SHIPPED_RUN / "tflite-int8", num_threads=threads)
    batch = np.stack([load_image(p) for p in images])  # all images are checked before any is classified
    if clf.folded_contract:
        console.print(f"{clf.variant}: the model's input contract, {clf.folded_contract}, is applied inside its graph", highlight=False)
    for path, ranked in zip(images, clf.top_k(batch, top_k)):
        console.print(f"[bold]{path}[/]: " + ", ".join(f"{name} {p:.1%}" for name, p in ranked), highlight=False)


@app.command()
@user_errors
def micro(
    artifact: Optional[Path] = typer.Argument(None, help="Full-integer int8 TFLite artifact (default: artifacts/reference/tflite-int8)."),
    test_images: int = typer.Option(1000, help="Seeded class-balanced test images to run (reference kernels are slow)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON."),
    data_dir: Optional[Path] = typer.Option(None, help="Directory with the four Fashion-MNIST IDX files."),
):
    """Run an int8 artifact on the TensorFlow Lite Micro interpreter: accuracy there, tensor-arena RAM, flash size."""
    from . import data as fdata
    from .manifest import check_output_file, write_json
    from .micro import micro_report

    if test_images < 10:
        raise FmnistEdgeError(f"--test-images must be at least 10, got {test_images}.")
    if json_out:
        check_output_file(json_out, "--json")
    ds = fdata.load(data_dir, download=False, train=False)
    idx = fdata.subset(ds.y_test, test_images, 0)
    report = micro_report(artifact or SHIPPED_RUN / "tflite-int8", ds.x_test[idx], ds.y_test[idx])
    table = Table(title=f"TensorFlow Lite Micro: {report['artifact']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in report.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value))
    console.print(table)
    if json_out:
        write_json(json_out, report)


@app.command("c-source")
@user_errors
def c_source(
    artifact: Optional[Path] = typer.Argument(None, help="Full-integer int8 TFLite artifact (default: artifacts/reference/tflite-int8)."),
    out: Path = typer.Option(Path("."), help="Directory for NAME.h and NAME.cc."),
    name: str = typer.Option("fmnist_model", help="C identifier and file name stem."),
    cortex_m4: bool = typer.Option(False, "--cortex-m4", help="Also compile NAME.cc for a Cortex-M4 (gcc-arm-none-eabi) "
                                   "and report its flash and RAM footprint."),
):
    """Emit an int8 model as a C/C++ source/header pair for firmware (TFLite Micro)."""
    from .micro import compile_for_cortex_m4, write_c_source

    header, source = write_c_source(artifact or SHIPPED_RUN / "tflite-int8", out, name)
    console.print(f"Wrote {header} and {source}")
    if cortex_m4:
        fp = compile_for_cortex_m4(source)
        console.print(f"{fp['target']}: {fp['flash_bytes']:,} bytes of flash, {fp['ram_bytes']:,} bytes of RAM in "
                      f"{fp['object']} ({fp['compiler']}); TFLite Micro's tensor arena and interpreter come on top "
                      "(`fmnist-edge micro` measures the arena).")


@app.command()
@user_errors
def models():
    """List the model presets and their named recipes (`train --recipe`), with the seeds' reported accuracies."""
    from .models import PRESETS

    table = Table(title="Model presets")
    for col in ("name", "recipe", "seed", "params", "MFLOP", "epochs", "batch", "optimizer", "validation", "extras",
                "seed's test acc"):
        table.add_column(col)
    for p in PRESETS.values():
        for r in (p.recipe, *p.recipes):
            extras = ", ".join(x for x, on in ((r.schedule, r.schedule != "constant"), (f"augment {r.augment}", r.augment != "none"),
                                               (f"distill T={r.temperature:g}", r.distill),
                                               (f"label smoothing {r.label_smoothing:g}", r.label_smoothing),
                                               (f"weight decay {r.weight_decay:g}", r.weight_decay)) if on)
            table.add_row(p.name, r.name, p.seed_docs, f"{p.params:,}", f"{p.mflop:.2f}" if p.mflop else "-", str(r.epochs),
                          str(r.batch_size), f"{r.optimizer} {r.learning_rate:g}", str(r.validation), extras or "-",
                          f"{p.reported_accuracy:.4f}" if p.reported_accuracy else "- (designed here)")
    console.print(table)


@app.command()
@user_errors
def data(
    data_dir: Optional[Path] = typer.Option(None, help="Directory with the four IDX files."),
    download: bool = typer.Option(False, help="Allow a download through Keras when no local copy is found."),
):
    """Find and verify the Fashion-MNIST files (magic numbers, counts, checksums) and say where they are."""
    from . import data as fdata

    ds = fdata.load(data_dir, download)
    console.print(f"Fashion-MNIST verified in [bold]{ds.source}[/]: "
                  f"{len(ds.y_train):,} training and {len(ds.y_test):,} test images, checksums match.")
