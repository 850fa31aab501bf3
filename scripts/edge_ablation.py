"""What each training option of the `edge-separable` preset (the first edge design) contributes: distillation on/off x augmentation on/off,
each over several seeds, everything else the preset's recipe. Prints a table and writes JSON.

    python scripts/edge_ablation.py --json artifacts/edge_ablation.json --runs artifacts/runs/edge-ablation

Each (options, seed) is one `fmnist-edge train --model edge-separable` run (the first
edge design, `edge` when these runs were made) in its own process, written to
RUNS/<cell>-s<seed>/. A run directory that already holds a finished run is read, not retrained, so the
ablation resumes where it stopped (one run is ~15 min on 2 AVX2 cores); one trained otherwise (another
architecture, strength of augmentation, number of epochs or images) is refused.
"""

from __future__ import annotations

import argparse
import json
import statistics
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fmnist_edge.atomic import write_json  # noqa: E402
from fmnist_edge.host import host_cpu  # noqa: E402
from fmnist_edge.augment import AUGMENTATIONS  # noqa: E402
from fmnist_edge.models import Recipe, get_preset  # noqa: E402

CELLS = {  # name: (distill, augment); augmentation "on" is --augment's strength (flip)
    "distill+augment": (True, True),
    "distill": (True, False),
    "augment": (False, True),
    "neither": (False, False),
}


def expected(cell: str, args) -> dict:
    """What the run of `cell` must have been trained with, as its manifest records it."""
    preset = get_preset("edge-separable")
    distill, augment = CELLS[cell]
    return {"params": preset.params, "distill": distill, "augment": args.augment if augment else "none",
            "epochs": args.epochs or preset.recipe.epochs, "limit": args.limit}


def recorded(m: dict) -> dict:
    recipe = Recipe(**m["recipe"])  # reads the bool of runs from before augmentation strengths
    return {"params": m["params"], "distill": recipe.distill, "augment": recipe.augment, "epochs": recipe.epochs,
            "limit": m["data"]["limit"]}


def read_run(out: Path, want: dict) -> dict:
    """The run in `out`, refused unless it was trained as `want` says: an earlier ablation's run (another model
    or recipe) must not stand in for this one."""
    m = json.loads((out / "manifest.json").read_text())
    got = recorded(m)
    if got != want:
        diff = ", ".join(f"{k} {got[k]} (wanted {want[k]})" for k in want if got[k] != want[k])
        sys.exit(f"error: {out} holds a run trained with {diff}. Move it away to retrain it, or pass another --runs.")
    return m


def run_once(cell: str, seed: int, args) -> dict:
    out = args.runs / f"{cell}-s{seed}"
    want = expected(cell, args)
    if not (out / "manifest.json").is_file():
        cmd = [sys.executable, "-m", "fmnist_edge", "train", "--model", "edge-separable", "--seed", str(seed), "--out", str(out),
               "--distill" if want["distill"] else "--no-distill", "--augment", want["augment"]]
        cmd += ["--teacher", str(args.teacher)] if want["distill"] and args.teacher else []
        cmd += ["--epochs", str(args.epochs)] if args.epochs else []
        cmd += ["--limit", str(args.limit)] if args.limit else []
        cmd += ["--data-dir", str(args.data_dir)] if args.data_dir else []
        sys.stdout.write(f"$ {' '.join(cmd)}\n")  # one write: runs side by side print from threads
        sys.stdout.flush()
        if args.jobs == 1:
            subprocess.run(cmd, check=True)
        else:  # runs side by side share the cores (TensorFlow would give each all of them) and log to files
            threads = str(max(1, (os.cpu_count() or 1) // args.jobs))
            args.runs.mkdir(parents=True, exist_ok=True)
            with open(args.runs / f"{cell}-s{seed}.log", "w") as log:
                subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1"})
    m = read_run(out, want)
    return {"cell": cell, "seed": seed, "distill": m["recipe"]["distill"], "augment": want["augment"],
            "epochs": m["recipe"]["epochs"], "test_accuracy": m["test_accuracy"], "test_images": m["data"]["test_images"],
            "fit_seconds": m["training"]["fit_seconds"], "teacher_logits_seconds": m["training"].get("teacher_logits_seconds"),
            "teacher": (m.get("teacher") or {}).get("run"), "run": str(out)}


def summarize(rows: list[dict]) -> dict:
    cells = {}
    for cell in CELLS:
        acc = [r["test_accuracy"] for r in rows if r["cell"] == cell]
        if acc:
            cells[cell] = {"seeds": len(acc), "mean": statistics.fmean(acc), "min": min(acc), "max": max(acc),
                           "stdev": statistics.stdev(acc) if len(acc) > 1 else None}
    full = cells.get("distill+augment", {}).get("mean")
    for cell, s in cells.items():
        s["vs_full_points"] = None if full is None else round(100 * (s["mean"] - full), 3)
    return cells


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, default=Path("artifacts/runs/edge-ablation"), help="where the run directories go")
    p.add_argument("--json", type=Path, default=Path("artifacts/edge_ablation.json"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS))
    p.add_argument("--teacher", type=Path, help="teacher run directory (default: train's, artifacts/reference)")
    p.add_argument("--augment", default="flip", choices=[a for a in AUGMENTATIONS if a != "none"],
                   help="the augmentation of the cells that augment (default: flip)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs (the shipped numbers use the recipe's)")
    p.add_argument("--limit", type=int, help="quick mode: at most this many train and test images")
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--jobs", type=int, default=1, help="train this many runs side by side, the cores split between "
                   "them (for machines with many cores: on 2 cores, 2 single-threaded runs took 66 s per epoch each "
                   "against 35 s for one run on both, no gain)")
    args = p.parse_args()
    if args.jobs < 1:
        p.error(f"--jobs must be at least 1, got {args.jobs}")

    todo = [(cell, seed) for cell in args.cells for seed in args.seeds]
    for cell, seed in todo:  # refuse a stale run before spending time on any training
        if (args.runs / f"{cell}-s{seed}" / "manifest.json").is_file():
            read_run(args.runs / f"{cell}-s{seed}", expected(cell, args))
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda job: run_once(*job, args), todo))
    summary = summarize(rows)
    write_json(args.json, {"command": "python " + " ".join(sys.argv), "host": host_cpu(), "runs": rows, "cells": summary})

    table = Table(title=f"edge ablation ({rows[0]['test_images']:,} test images, {rows[0]['epochs']} epochs)")
    for col in ("distill", "augment", *(f"seed {s}" for s in args.seeds), "mean", "vs all on (points)"):
        table.add_column(col, justify="right")
    for cell, s in summary.items():
        acc = {r["seed"]: r["test_accuracy"] for r in rows if r["cell"] == cell}
        level = next(r["augment"] for r in rows if r["cell"] == cell)
        table.add_row("yes" if CELLS[cell][0] else "no", level, *(f"{acc[seed]:.4f}" for seed in args.seeds),
                      f"{s['mean']:.4f}", "" if s["vs_full_points"] is None else f"{s['vs_full_points']:+.2f}")
    Console().print(table)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
