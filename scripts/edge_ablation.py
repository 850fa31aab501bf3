"""What each training option of the `edge` preset contributes: distillation on/off x augmentation on/off,
each over several seeds, everything else the preset's recipe. Prints a table and writes JSON.

    python scripts/edge_ablation.py --json artifacts/edge_ablation.json --runs artifacts/runs/edge-ablation

Each (options, seed) is one `fmnist-edge train --model edge` run in its own process, written to
RUNS/<cell>-s<seed>/. A run directory that already holds a finished run is read, not retrained, so the
ablation resumes where it stopped (one run is ~15 min on 2 AVX2 cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fmnist_edge.manifest import host_cpu, write_json  # noqa: E402

CELLS = {  # name: (distill, augment)
    "distill+augment": (True, True),
    "distill": (True, False),
    "augment": (False, True),
    "neither": (False, False),
}


def run_once(cell: str, seed: int, args) -> dict:
    out = args.runs / f"{cell}-s{seed}"
    if not (out / "manifest.json").is_file():
        distill, augment = CELLS[cell]
        cmd = [sys.executable, "-m", "fmnist_edge", "train", "--model", "edge", "--seed", str(seed), "--out", str(out),
               "--distill" if distill else "--no-distill", "--augment" if augment else "--no-augment"]
        cmd += ["--teacher", str(args.teacher)] if distill and args.teacher else []
        cmd += ["--epochs", str(args.epochs)] if args.epochs else []
        cmd += ["--limit", str(args.limit)] if args.limit else []
        cmd += ["--data-dir", str(args.data_dir)] if args.data_dir else []
        print(f"$ {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True)
    m = json.loads((out / "manifest.json").read_text())
    return {"cell": cell, "seed": seed, "distill": m["recipe"]["distill"], "augment": m["recipe"]["augment"],
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
    p.add_argument("--epochs", type=int, help="override the recipe's epochs (the shipped numbers use the recipe's)")
    p.add_argument("--limit", type=int, help="quick mode: at most this many train and test images")
    p.add_argument("--data-dir", type=Path)
    args = p.parse_args()

    rows = [run_once(cell, seed, args) for cell in args.cells for seed in args.seeds]
    summary = summarize(rows)
    write_json(args.json, {"command": "python " + " ".join(sys.argv), "host": host_cpu(), "runs": rows, "cells": summary})

    table = Table(title=f"edge ablation ({rows[0]['test_images']:,} test images, {rows[0]['epochs']} epochs)")
    for col in ("distill", "augment", *(f"seed {s}" for s in args.seeds), "mean", "vs all on (points)"):
        table.add_column(col, justify="right")
    for cell, s in summary.items():
        acc = {r["seed"]: r["test_accuracy"] for r in rows if r["cell"] == cell}
        table.add_row(*("yes" if on else "no" for on in CELLS[cell]), *(f"{acc[seed]:.4f}" for seed in args.seeds),
                      f"{s['mean']:.4f}", "" if s["vs_full_points"] is None else f"{s['vs_full_points']:+.2f}")
    Console().print(table)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
