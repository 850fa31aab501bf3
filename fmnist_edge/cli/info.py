"""Information commands: `fmnist-edge models` (presets and recipes) and `fmnist-edge data` (find and verify the dataset)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..models import PRESETS
from ._app import app, console, user_errors


@app.command()
@user_errors
def models():
    """List the model presets and their named recipes (`train --recipe`), with the seeds' reported accuracies."""
    table = Table(title="Model presets")
    for col in ("name", "recipe", "seed", "params", "MFLOP", "epochs", "batch", "optimizer", "validation", "extras",
                "seed's test acc"):
        table.add_column(col)
    for p in PRESETS.values():
        for r in (p.recipe, *p.recipes):
            extras = r.extras()
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
    from .. import data as fdata

    ds = fdata.load(data_dir, download)
    console.print(f"Fashion-MNIST verified in [bold]{ds.source}[/]: "
                  f"{len(ds.y_train):,} training and {len(ds.y_test):,} test images, checksums match.")
