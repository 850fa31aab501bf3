"""How long a default `fmnist-edge export` of a trained run takes, whole and per variant: exports a copy of the run
(every variant, default options, portability checks included) in a fresh process, times the command, and reads
each variant's `export_seconds` from its manifest. Prints a table and writes JSON:

    python scripts/export_time.py artifacts/reference --json artifacts/export_time.json [--onednn-isa AVX2]

`--onednn-isa AVX2` caps oneDNN (TensorFlow's CPU kernels, where fine-tuning spends its time) at AVX2 on a machine
that has AVX-512: a stand-in for an AVX2 CPU for the training part only (LiteRT's XNNPACK and ONNX Runtime still
use every instruction the host has), so the JSON records it and it is no substitute for a real AVX2 machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fmnist_edge.host import host_cpu  # noqa: E402
from runtime.variants import VARIANTS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--onednn-isa", help="ONEDNN_MAX_CPU_ISA for the export process (e.g. AVX2)")
    ap.add_argument("--data-dir")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    env = {**os.environ, **({"ONEDNN_MAX_CPU_ISA": args.onednn_isa} if args.onednn_isa else {})}
    with tempfile.TemporaryDirectory(prefix="export-time-") as tmp:
        copy = Path(tmp) / args.run.name
        copy.mkdir()
        for f in ("model.keras", "manifest.json", "metrics.json"):
            shutil.copy(args.run / f, copy / f)
        command = [str(Path(sys.executable).parent / "fmnist-edge"), "export", str(copy),
                   *(["--data-dir", args.data_dir] if args.data_dir else [])]
        t0 = time.perf_counter()
        subprocess.run(command, check=True, env=env)
        wall = time.perf_counter() - t0
        variants = {v: json.loads((copy / v / "manifest.json").read_text()) for v in VARIANTS if (copy / v).is_dir()}
    rows = [{"variant": v, "export_seconds": m["export_seconds"],
             "fit_seconds": next((m[k]["fit_seconds"] for k in ("qat", "pruning", "clustering") if k in m), None),
             "accuracy": m["fidelity"]["accuracy"], "agreement_with_keras": m["fidelity"]["agreement_with_keras"]}
            for v, m in variants.items()]
    table = Table(title=f"fmnist-edge export {args.run} (defaults): {wall:.0f} s")
    for col in ("variant", "export s", "of which fine-tuning s", "accuracy", "agreement"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["variant"], f"{r['export_seconds']:.0f}", f"{r['fit_seconds']:.0f}" if r["fit_seconds"] else "-",
                      f"{r['accuracy']:.4f}", f"{r['agreement_with_keras']:.2%}")
    Console().print(table)
    if args.json:
        cmd = " ".join(["python scripts/export_time.py", str(args.run), *(["--onednn-isa", args.onednn_isa] if args.onednn_isa else []),
                        "--json", str(args.json)])
        args.json.write_text(json.dumps({"command": cmd, "host": host_cpu(), "onednn_max_cpu_isa": args.onednn_isa,
                                         "cpu_count": os.cpu_count(), "wall_seconds": round(wall, 1),
                                         "wall_minutes": round(wall / 60, 2), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
