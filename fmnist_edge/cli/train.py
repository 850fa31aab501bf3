"""`fmnist-edge train`: a preset on the real Fashion-MNIST, with its named recipe and any override."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..models import PRESETS
from ._app import app, console, quiet_tensorflow, require_train_extra, user_errors


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
    from ..models import get_preset, parse_validation

    preset = get_preset(model)  # validate the name before the slow imports
    recipe = preset.named_recipe(recipe_name).with_overrides(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, optimizer=optimizer,
        validation=parse_validation(validation) if validation is not None else None,
        schedule=schedule, augment=augment, distill=distill, temperature=temperature, label_weight=label_weight,
        teacher_outputs=teacher_outputs, label_smoothing=label_smoothing, weight_decay=weight_decay,
    )
    require_train_extra()
    quiet_tensorflow()
    from ..train import TrainConfig, train as run_training

    cfg = TrainConfig(model=model, seed=seed, recipe=recipe, limit=limit,
                      data_dir=str(data_dir) if data_dir else None, download=download, out=str(out) if out else None,
                      devices=devices, teacher=str(teacher) if teacher else None)
    run_training(cfg, console=console)
