"""The `fmnist-edge` command line.

Heavy libraries (TensorFlow, Keras, matplotlib) are imported inside the commands that need them, so
`fmnist-edge --help` starts fast and works on a device with only the base install.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import FmnistEdgeError, MissingExtraError

app = typer.Typer(
    help="Train a Fashion-MNIST classifier, export it for the edge, and prove nothing was lost.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def user_errors(fn):
    """Turn the project's own errors into a clear message and exit code 1 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FmnistEdgeError as exc:
            # The message is plain text: rich markup would swallow things like "fmnist-edge[train]".
            err_console.print(Text("error: ", style="bold red") + Text(str(exc)), highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def require_train_extra() -> None:
    # Training needs Keras, the chosen backend's library and matplotlib; TensorFlow only if it is the backend
    # (a GPU box may train under JAX or PyTorch without it).
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    missing = [m for m in ("keras", backend, "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(
            f"This command needs the training stack ({', '.join(missing)} not installed). "
            "Install it with: pip install 'fmnist-edge[train]'  (from a checkout: pip install -e '.[train]')"
        )


@app.command()
@user_errors
def train(
    model: str = typer.Option("reference", "--model", "-m", help="Preset to train (see `fmnist-edge models`)."),
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
):
    """Train a preset on the real Fashion-MNIST and write a run directory (model, manifest, metrics, curves)."""
    from .models import get_preset, parse_validation

    preset = get_preset(model)  # validate the name before the slow imports
    recipe = preset.recipe.with_overrides(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, optimizer=optimizer,
        validation=parse_validation(validation) if validation is not None else None,
    )
    require_train_extra()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the output
    from .train import TrainConfig, train as run_training

    cfg = TrainConfig(model=model, seed=seed, recipe=recipe, limit=limit,
                      data_dir=str(data_dir) if data_dir else None, download=download, out=str(out) if out else None)
    run_training(cfg, console=console)


def latest_run(root: Path = Path("artifacts")) -> Path:
    """The newest training run under artifacts/ (by its manifest's creation time)."""
    import json

    runs = []
    for manifest in root.glob("*/manifest.json"):
        try:
            m = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        if m.get("kind") == "keras-run":
            runs.append((m.get("created_at", ""), manifest.parent))
    if not runs:
        raise FmnistEdgeError(f"No training run found under {root}/. Train one with `fmnist-edge train` or pass RUN_DIR.")
    return max(runs)[1]


@app.command()
@user_errors
def export(
    run_dir: Optional[Path] = typer.Argument(None, help="Training run directory (default: the newest under artifacts/)."),
    float_: bool = typer.Option(False, "--float", help="TFLite float32."),
    int8: bool = typer.Option(False, "--int8", help="TFLite int8, post-training full-integer."),
    qat: bool = typer.Option(False, "--qat", help="TFLite int8 from quantization-aware training."),
    onnx: bool = typer.Option(False, "--onnx", help="ONNX float32 and ONNX int8 (QDQ)."),
    variant: Optional[list[str]] = typer.Option(None, "--variant", help="A variant by name (repeatable)."),
    calibration_images: int = typer.Option(500, help="Calibration images for int8, class-balanced from the training split."),
    calibration_seed: int = typer.Option(0, help="Seed for choosing the calibration images."),
    qat_epochs: int = typer.Option(1, help="QAT fine-tuning epochs."),
    qat_learning_rate: float = typer.Option(3e-5, help="QAT fine-tuning learning rate (Adam)."),
    qat_batch_size: int = typer.Option(256, help="QAT fine-tuning batch size."),
    opset: int = typer.Option(17, help="ONNX opset (tf2onnx 1.17 supports up to 18)."),
    out: Optional[Path] = typer.Option(None, help="Where to write the variant directories (default: the run directory)."),
    overwrite: bool = typer.Option(False, help="Replace existing variant directories (atomically)."),
    data_dir: Optional[Path] = typer.Option(None, help="Directory with the four Fashion-MNIST IDX files."),
):
    """Export a trained run to TFLite float32/int8/int8-QAT and ONNX float32/int8, each checked against Keras."""
    from exporters import VARIANTS

    chosen = [v for v, (_, _, group) in VARIANTS.items()
              if {"float": float_, "int8": int8, "qat": qat, "onnx": onnx}[group]]
    for name in variant or []:
        if name not in VARIANTS:
            raise FmnistEdgeError(f"Unknown variant {name!r}. Choose from: {', '.join(VARIANTS)}.")
        chosen.append(name)
    chosen = list(dict.fromkeys(chosen)) or list(VARIANTS)
    if opset < 13 or opset > 18:
        raise FmnistEdgeError(f"--opset must be between 13 and 18 (tf2onnx 1.17), got {opset}.")
    if qat_epochs < 1 or qat_batch_size < 1 or not qat_learning_rate > 0:
        raise FmnistEdgeError("--qat-epochs and --qat-batch-size must be >= 1 and --qat-learning-rate > 0.")
    require_train_extra()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from exporters.pipeline import ExportConfig, export_run
    from exporters.qat import QATConfig

    run = run_dir or latest_run()
    cfg = ExportConfig(
        variants=tuple(chosen), calibration_images=calibration_images, calibration_seed=calibration_seed,
        qat=QATConfig(qat_epochs, qat_learning_rate, qat_batch_size), opset=opset, overwrite=overwrite,
        out=str(out) if out else None, data_dir=str(data_dir) if data_dir else None,
    )
    export_run(run, cfg, console)


@app.command()
@user_errors
def models():
    """List the model presets with their seeds' recipes and reported accuracies."""
    from .models import PRESETS

    table = Table(title="Model presets")
    for col in ("name", "seed", "params", "epochs", "batch", "optimizer", "validation", "seed's test acc"):
        table.add_column(col)
    for p in PRESETS.values():
        r = p.recipe
        table.add_row(p.name, p.seed_docs, f"{p.params:,}", str(r.epochs), str(r.batch_size),
                      f"{r.optimizer} {r.learning_rate:g}", str(r.validation), f"{p.reported_accuracy:.4f}")
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
