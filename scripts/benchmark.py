"""Performance targets of the runtime and CLI, measured in one run (ratios, since these machines are noisy).

Runs `fmnist-edge bench RUN_DIR` with default settings (timing the whole command), then times start-up
(`fmnist-edge --help`, `import runtime`) in fresh processes, checks neither imports TensorFlow, and
prints each target with its measured value; writes everything as JSON.

    python scripts/benchmark.py artifacts/reference --json artifacts/targets.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def best_wall(cmd: list[str], repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def imports_tensorflow(code: str) -> bool:
    probe = code + "\nimport sys; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "True"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    bench_json = args.run / "bench.json"
    t0 = time.perf_counter()
    # --out RUN: this script deliberately regenerates the release's own bench.json/.md/.png
    subprocess.run([str(BIN / "fmnist-edge"), "bench", str(args.run), "--out", str(args.run)], check=True)
    bench_seconds = time.perf_counter() - t0
    result = json.loads(bench_json.read_text())
    rows = {r["name"]: r for r in result["rows"]}
    p50 = {name: r["latency"].get("p50_us") for name, r in rows.items()}

    help_s = best_wall([str(BIN / "fmnist-edge"), "--help"])
    import_s = best_wall([sys.executable, "-c", "import runtime"])
    help_tf = imports_tensorflow("from typer.testing import CliRunner; from fmnist_edge.cli import app; CliRunner().invoke(app, ['--help'])")
    runtime_tf = imports_tensorflow("import runtime")

    targets = []

    def target(name, value, limit, ok, unit=""):
        targets.append({"target": name, "measured": value, "limit": limit, "unit": unit, "met": bool(ok)})

    from runtime.variants import VARIANTS

    for name in VARIANTS:
        if name in rows and rows[name]["status"] == "ok":
            ov = rows[name]["latency"]["runtime_overhead_p50"]
            target(f"runtime overhead over the raw interpreter call, {name} (p50 ratio)", round(ov, 3), "<= 1.10", ov <= 1.10)
    if p50.get("tflite-int8") and p50.get("tflite-float32"):
        r = p50["tflite-int8"] / p50["tflite-float32"]
        target("TFLite int8 p50 / TFLite float32 p50", round(r, 3), "<= 0.25", r <= 0.25)
    if rows.get("keras", {}).get("kind") == "keras-live" and p50.get("tflite-int8"):
        r = p50["keras"] / p50["tflite-int8"]
        target("compiled Keras (XLA) p50 / TFLite int8 p50", round(r, 1), ">= 10", r >= 10)
    target("`fmnist-edge --help` wall time (best of 5)", round(help_s, 3), "< 0.5 s", help_s < 0.5, "s")
    target("`import runtime` wall time (best of 5)", round(import_s, 3), "< 0.3 s", import_s < 0.3, "s")
    target("--help / import runtime load TensorFlow or Keras", help_tf or runtime_tf, "False", not (help_tf or runtime_tf))
    target("`fmnist-edge bench` all variants, default settings", round(bench_seconds, 1), "< 120 s", bench_seconds < 120, "s")

    print("\n| target | measured | limit | met |\n|---|---|---|---|")
    for t in targets:
        print(f"| {t['target']} | {t['measured']}{' ' + t['unit'] if t['unit'] else ''} | {t['limit']} | {'yes' if t['met'] else 'NO'} |")
    if args.json:
        args.json.write_text(json.dumps({"targets": targets, "bench": str(bench_json), "host": result["host"],
                                         "method": result["method"]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
