"""Train a preset on the real Fashion-MNIST and write a self-describing run directory.

A run directory holds `model.keras`, `manifest.json` (what was trained, how, on what, with which
libraries and device, sha256 of the model), `metrics.json` (test accuracy/loss, per-class
precision/recall/F1, confusion matrix, training history) and `curves.png`. It is built in a temporary
sibling directory and renamed into place only when complete, so an interrupted run leaves nothing that
looks valid. Works on any Keras 3 backend (KERAS_BACKEND=tensorflow|jax|torch).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data as fdata
from . import distill
from .augment import fit_augmented
from .errors import ConfigError, stop_if_signalled
from .atomic import committed_dir, write_json
from .host import cpu_name, provenance
from .manifest import INPUT_SPEC, OUTPUT_SPEC, PREPROCESSING, RUN_SCHEMA_VERSION, class_names, sha256_file
from .paths import check_output_dir
from .keras_io import load_trained_model
from .metrics import classification_report
from .models import Recipe, get_preset


@dataclass(frozen=True)
class TrainConfig:
    model: str = "reference"
    seed: int = 0
    recipe: Recipe | None = None  # None: the preset's own recipe
    limit: int | None = None  # quick mode: use at most this many train and test images
    data_dir: str | None = None
    download: bool = True
    out: str | None = None  # run directory; default artifacts/<model>-<timestamp>
    teacher: str | None = None  # run directory to distil from when the recipe distils (default artifacts/reference)
    devices: int = 1  # > 1: data-parallel over that many accelerators (or CPU devices) with Keras's distribution API

    def resolved_recipe(self) -> Recipe:
        recipe = self.recipe or get_preset(self.model).recipe
        recipe.validate()
        return recipe


def describe_device() -> dict:
    """Which backend and device Keras trains on (the first accelerator if any, else the CPU)."""
    import keras

    backend = keras.backend.backend()
    info = {"backend": backend, "device": "CPU", "device_name": cpu_name()}
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            info.update(device="GPU", device_name=details.get("device_name", gpus[0].name))
    elif backend == "jax":
        import jax

        dev = jax.devices()[0]
        if dev.platform != "cpu":
            info.update(device=dev.platform.upper(), device_name=getattr(dev, "device_kind", str(dev)))
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            info.update(device="GPU", device_name=torch.cuda.get_device_name(0))
    info["cpu_count"] = os.cpu_count()
    return info


def seed_everything(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # Bitwise-reproducible CPU training; costs a little speed.
        tf.config.experimental.enable_op_determinism()


def _optimizer(keras, recipe: Recipe, steps_per_epoch: int):
    cls = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}[recipe.optimizer]
    lr = recipe.learning_rate
    if recipe.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=recipe.epochs * steps_per_epoch)
    # Keras 3 applies weight_decay decoupled from the gradient for every optimizer (Adam + it = AdamW).
    return cls(learning_rate=lr, weight_decay=recipe.weight_decay or None)


def _loss(keras, recipe: Recipe):
    """The labels' loss: plain sparse cross-entropy, or with smoothed targets (on one-hot labels: Keras's sparse
    loss has no smoothing)."""
    if recipe.label_smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
    return "sparse_categorical_crossentropy"


def _targets(y: np.ndarray, recipe: Recipe) -> np.ndarray:
    return np.eye(10, dtype=np.float32)[y] if recipe.label_smoothing else y


def prepare_data(cfg: TrainConfig, recipe: Recipe) -> dict:
    """The run's data (fmnist_edge.data.run_split) for this config and recipe."""
    return fdata.run_split(cfg.data_dir, cfg.download, cfg.limit, cfg.seed, recipe.validation)


def _progress_callback(keras, console, epochs: int, steps: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    class RichProgress(keras.callbacks.Callback):
        """Rich progress bar for batches within an epoch plus one log line per epoch."""

        def __init__(self):
            super().__init__()
            self.epoch_times = []  # across fit calls: augmented training calls fit once per epoch

        def on_train_begin(self, logs=None):
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=console, transient=True,
            )
            self.progress.start()

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()
            self.task = self.progress.add_task(f"epoch {epoch + 1}/{epochs}", total=steps)

        def on_train_batch_end(self, batch, logs=None):
            stop_if_signalled()  # Keras swallows a SystemExit raised while it converts the batch's logs
            self.progress.advance(self.task)

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_times.append(time.perf_counter() - self.t0)
            self.progress.remove_task(self.task)
            shown = "  ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items() if k != "learning_rate")
            console.print(f"epoch {epoch + 1}/{epochs}  {shown}  ({self.epoch_times[-1]:.1f}s)")

        def on_train_end(self, logs=None):
            self.progress.stop()

    return RichProgress()


def plot_curves(history: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("accuracy", "loss")):
        epochs = range(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def default_run_dir(model: str) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("artifacts") / f"{model}-{stamp}"


def train(cfg: TrainConfig, console=None) -> Path:
    """Run training end to end and return the finished run directory."""
    from rich.console import Console

    console = console or Console()
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or not 0 <= cfg.seed < 2**32:
        raise ConfigError(f"--seed must be an integer from 0 to 2**32 - 1 (numpy's and Keras's seed range), got {cfg.seed}.")
    preset = get_preset(cfg.model)
    recipe = cfg.resolved_recipe()
    check_devices(cfg.devices, recipe.batch_size)
    out = Path(cfg.out) if cfg.out else default_run_dir(cfg.model)
    if out.exists():
        raise ConfigError(f"Output directory {out} already exists; choose another --out or remove it.")
    check_output_dir(out, "--out")  # before training, not after it
    teacher = distill.check_teacher(cfg.teacher) if recipe.distill else None
    if cfg.teacher and not recipe.distill:
        raise ConfigError("--teacher is only used when distilling; drop it or pass --distill.")
    with reserved(out):
        return _train(cfg, preset, recipe, out, console, teacher)


def check_devices(devices: int, batch_size: int) -> list:
    """The devices to train on for --devices N (empty for one device), or a ConfigError saying what to change."""
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ConfigError(f"--devices must be a positive integer, got {devices!r}.")
    if devices == 1:
        return []
    if batch_size % devices:
        raise ConfigError(f"--batch-size {batch_size} does not divide evenly over --devices {devices}: each device gets "
                          f"an equal share of every batch. Use a multiple of {devices}, e.g. {batch_size + devices - batch_size % devices}.")
    import keras

    if keras.backend.backend() != "jax":
        raise ConfigError(f"--devices {devices} uses Keras's distribution API, which trains data-parallel on the JAX "
                          f"backend; this process uses {keras.backend.backend()!r}. Run with KERAS_BACKEND=jax.")
    found = keras.distribution.list_devices()
    if len(found) < devices:
        raise ConfigError(f"--devices {devices}: only {len(found)} device(s) visible ({', '.join(found)}). On a CPU, "
                          f"set XLA_FLAGS=--xla_force_host_platform_device_count={devices} before starting.")
    return found[:devices]


@contextmanager
def data_parallel(devices: list):
    """Keras's DataParallel over `devices` while training (nothing for one device), then back to one."""
    if not devices:
        yield
        return
    import keras

    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    try:
        yield
    finally:
        keras.distribution.set_distribution(None)


def _even(x, y, devices: int):
    """Every batch, the last one included, must split evenly over the devices: drop at most devices - 1 images."""
    n = len(y) - len(y) % devices
    return x[:n], y[:n], len(y) - n


@contextmanager
def reserved(out: Path):
    """Hold `out` as an empty directory while training, so a second training into the same --out fails
    at once instead of after its work; removed again if training does not finish."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.mkdir()
    except FileExistsError:
        raise ConfigError(f"Output directory {out} already exists; choose another --out or remove it.") from None
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create it ({exc.strerror or exc}).") from None
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            out.rmdir()  # only while still empty: never a finished run
        raise


def _trainer(keras, model, recipe: Recipe, optimizer, teacher, x_fit, y_fit, validation, console):
    """What `fit` is called on, and with which targets: the model on its labels; or, distilling, a trainer that
    also learns from the teacher (its outputs computed live on every batch, or once and cached as targets).
    Returns (trainer, y_fit, validation, seconds the cached teacher outputs took or None)."""
    if teacher is None:
        return model, y_fit, validation, None
    teacher_model = load_trained_model(teacher.model_file)
    if recipe.teacher_outputs == "live":
        return distill.distiller(keras, teacher_model, model, recipe, optimizer), y_fit, validation, None
    t0 = time.perf_counter()
    y_fit = distill.soft_targets(keras, teacher_model, x_fit, y_fit)
    if validation is not None:
        validation = (validation[0], distill.soft_targets(keras, teacher_model, *validation))
    seconds = round(time.perf_counter() - t0, 2)
    console.print(f"Teacher's logits on {len(y_fit):,} training images computed in {seconds:.0f}s")
    return distill.cached_trainer(keras, model, recipe, optimizer), y_fit, validation, seconds


def _recipe_note(recipe: Recipe, teacher) -> str:
    """The recipe's name and what it adds to plain training, for the line that starts a run."""
    parts = ((f"recipe {recipe.name}", True), (f"augmentation {recipe.augment}", recipe.augment != "none"),
             (f"{recipe.schedule} schedule", True),
             (f"label smoothing {recipe.label_smoothing:g}", recipe.label_smoothing),
             (f"weight decay {recipe.weight_decay:g}", recipe.weight_decay),
             (f"distilled from {teacher and teacher.run} ({recipe.teacher_outputs} teacher outputs)", teacher))
    return "".join(f", {name}" for name, on in parts if on)


def _run_manifest(cfg: TrainConfig, preset, recipe: Recipe, model, model_file: Path, data: dict, test_accuracy: float,
                  test_loss: float, training: dict, teacher) -> dict:
    """The run's manifest.json: what was trained, how, on what data and device, with which libraries."""
    return {
        "schema_version": RUN_SCHEMA_VERSION,
        "kind": "keras-run",
        "model": cfg.model,
        "model_file": {"path": "model.keras", "sha256": sha256_file(model_file), "bytes": model_file.stat().st_size},
        "params": int(model.count_params()),
        "input": INPUT_SPEC,
        "output": OUTPUT_SPEC,
        "preprocessing": PREPROCESSING,
        "class_names": class_names(),
        "recipe": recipe.to_dict(),
        "seed": cfg.seed,
        "data": data,
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "training": training,
        **provenance("keras", "numpy", "tensorflow", "jax", "jaxlib", "torch", system=platform.system()),
        "seed_reported_accuracy": preset.reported_accuracy,
        "teacher": teacher.record if teacher else None,
        "notes": preset.notes,
    }


def _train(cfg: TrainConfig, preset, recipe: Recipe, out: Path, console, teacher) -> Path:
    import keras

    t_start = time.perf_counter()
    d = prepare_data(cfg, recipe)
    seed_everything(cfg.seed)
    device = describe_device()
    devices = check_devices(cfg.devices, recipe.batch_size)
    n_dev = max(1, len(devices))
    x_fit, y_fit, dropped = _even(d["x_fit"], d["y_fit"], n_dev)
    validation = _even(d["x_val"], d["y_val"], n_dev)[:2] if d["x_val"] is not None else None
    # The model's variables are created under the distribution; evaluation and prediction below run after it,
    # on one device, over every test image.
    with data_parallel(devices):
        model = preset.build(keras)
        steps = int(np.ceil(len(y_fit) / recipe.batch_size))
        # One optimizer, shared with a distillation trainer, so that the saved model's optimizer state is the one
        # that trained it (an unused one makes every later load warn that its variables do not match).
        optimizer = _optimizer(keras, recipe, steps)
        model.compile(optimizer=optimizer, loss=_loss(keras, recipe), metrics=["accuracy"])
        if recipe.label_smoothing:
            y_fit = _targets(y_fit, recipe)
            validation = (validation[0], _targets(validation[1], recipe)) if validation is not None else None
        trainer, y_fit, validation, teacher_seconds = _trainer(keras, model, recipe, optimizer, teacher, x_fit, y_fit,
                                                               validation, console)
        console.print(
            f"Training [bold]{cfg.model}[/] ({model.count_params():,} params) on {len(y_fit):,} images, "
            f"{recipe.epochs} epochs, batch {recipe.batch_size}, {recipe.optimizer} lr {recipe.learning_rate}"
            f"{_recipe_note(recipe, teacher)}, backend {device['backend']} on {n_dev} x {device['device']} "
            f"({device['device_name']})"
        )
        progress = _progress_callback(keras, console, recipe.epochs, steps)
        fit_kwargs = dict(epochs=recipe.epochs, batch_size=recipe.batch_size, validation_data=validation, verbose=0,
                          callbacks=[progress, keras.callbacks.TerminateOnNaN()])
        t_fit = time.perf_counter()
        if recipe.augment != "none":
            raw_history = fit_augmented(trainer, x_fit, y_fit, recipe.augment, cfg.seed, **fit_kwargs)
        else:
            raw_history = trainer.fit(x_fit, y_fit, shuffle=True, **fit_kwargs).history
    fit_seconds = time.perf_counter() - t_fit
    if recipe.label_smoothing:  # evaluated, and saved, with the plain loss: test loss stays comparable across recipes
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    test_loss, _ = model.evaluate(d["x_test"], d["y_test"], batch_size=1024, verbose=0)
    probs = model.predict(d["x_test"], batch_size=1024, verbose=0)
    if not (np.isfinite(test_loss) and np.isfinite(probs).all()):
        losses = raw_history.get("loss", [])
        raise ConfigError(f"training diverged: the loss became {losses[-1] if losses else test_loss} after "
                          f"{len(losses)} epoch(s), so the model computes NaN. Nothing was saved; lower --learning-rate "
                          f"(was {recipe.learning_rate:g}).")
    report = classification_report(d["y_test"], probs.argmax(axis=1))
    history = {k: [float(x) for x in v] for k, v in raw_history.items()}
    history["epoch_seconds"] = [round(t, 3) for t in progress.epoch_times]

    with committed_dir(out) as tmp:  # renamed onto the empty placeholder `reserved` holds, once complete
        model.save(tmp / "model.keras")
        plot_curves(history, tmp / "curves.png", f"{cfg.model}: test accuracy {report['accuracy']:.4f}")
        metrics = {
            "schema_version": RUN_SCHEMA_VERSION,
            "model": cfg.model,
            "test_images": len(d["y_test"]),
            "test_accuracy": report["accuracy"],
            "test_loss": float(test_loss),
            **{k: report[k] for k in ("per_class", "macro_avg", "confusion_matrix")},
            "history": history,
        }
        write_json(tmp / "metrics.json", metrics)
        training = {**device, "devices": n_dev, "distribution": "keras.distribution.DataParallel" if devices else None,
                    "device_list": [str(x) for x in devices] or None, "dropped_for_even_sharding": dropped,
                    "fit_seconds": round(fit_seconds, 2), "teacher_logits_seconds": teacher_seconds,
                    "wall_seconds": round(time.perf_counter() - t_start, 2)}
        manifest = _run_manifest(cfg, preset, recipe, model, tmp / "model.keras", d["describe"], report["accuracy"],
                                 float(test_loss), training, teacher)
        write_json(tmp / "manifest.json", manifest)
    console.print(
        f"Test accuracy [bold]{report['accuracy']:.4f}[/] (loss {test_loss:.4f}) on {len(d['y_test']):,} images; "
        f"fit {fit_seconds:.1f}s. Run written to [bold]{out}[/]"
    )
    return out
