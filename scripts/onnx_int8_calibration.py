"""Vary ONNX int8 calibration to find a scheme that is portable, faithful and fast (issue: "ONNX int8 portable
and fast"): for each portable scheme x calibration method (MinMax, Entropy, Percentile) x number of calibration
images x per-channel weights, quantize a run's model and measure, in one run on this CPU,

- accuracy and top-1 agreement with Keras on the full test set, and the accuracy drop;
- batch-1 p50 latency against ONNX float32, timed in interleaved rounds (one thread, bare session call);
- whether its golden outputs are bit-identical under emulated x86 CPUs (qemu: SSE4.2, AVX2 without VNNI).

A cell passes when it is identical on every emulated CPU, agrees >= 99.5%, drops <= 0.2 points and runs in at
most 0.5x the float32 p50. Prints a table and writes JSON:

    python scripts/onnx_int8_calibration.py artifacts/reference --json artifacts/onnx_int8_calibration.json
        [--schemes u8s8-reduce-range,s8s8-reduce-range] [--methods MinMax,Entropy,Percentile]
        [--sizes 500,2000,5000] [--per-tensor] [--cpus Nehalem-v1,Haswell-v4]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import runtime  # noqa: E402
from exporters import onnx_export  # noqa: E402
from exporters.calibration import calibration_set  # noqa: E402
from exporters.config import ExportConfig  # noqa: E402
from exporters.context import load_context  # noqa: E402
from fmnist_edge import cpumatrix  # noqa: E402
from fmnist_edge.bench import interleaved_p50  # noqa: E402
from fmnist_edge.host import host_cpu, library_versions  # noqa: E402
from runtime.compare import compare  # noqa: E402

GATES = {"min_agreement": 0.995, "max_drop_points": 0.2, "max_latency_vs_float": 0.5}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--json", type=Path, default=Path("artifacts/onnx_int8_calibration.json"))
    ap.add_argument("--schemes", default="u8s8-reduce-range,s8s8-reduce-range")
    ap.add_argument("--methods", default=",".join(onnx_export.CALIBRATION_METHODS))
    ap.add_argument("--sizes", default="500,2000,5000")
    ap.add_argument("--per-tensor", action="store_true", help="also try per-tensor weights (MinMax only)")
    ap.add_argument("--cpus", default=",".join(cpumatrix.X86_CPUS))
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--runs-per-round", type=int, default=200)
    args = ap.parse_args()
    console = Console(width=200)  # the cell names stay on one line in logs
    cpus = tuple(c for c in args.cpus.split(",") if c)
    cells = [(s, m, int(n), True) for s in args.schemes.split(",") for m in args.methods.split(",")
             for n in args.sizes.split(",")]
    if args.per_tensor:
        cells += [(s, "MinMax", int(n), False) for s in args.schemes.split(",") for n in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        exp = load_context(args.run_dir, ExportConfig(variants=("onnx-int8",)), console)
        onnx_export.to_float32(exp.model, tmp / "float.onnx", 17)
        files = {"float32": tmp / "float.onnx"}
        meta = {"float32": {}}
        for scheme, method, n, per_channel in cells:
            name = f"{scheme} {method} {n}{'' if per_channel else ' per-tensor'}"
            calib, _ = calibration_set(exp.x_fit, exp.y_fit, n, 0)
            t0 = time.perf_counter()
            files[name] = tmp / f"cell{len(files)}.onnx"
            onnx_export.to_int8(tmp / "float.onnx", files[name], calib, tmp, scheme, method, per_channel)
            meta[name] = {"scheme": scheme, "method": method, "calibration_images": n, "per_channel": per_channel,
                          "quantize_seconds": round(time.perf_counter() - t0, 1)}
            console.print(f"quantized {name} in {meta[name]['quantize_seconds']:.0f}s")
        clfs = {name: runtime.load(path) for name, path in files.items()}
        rows = {}
        for name, clf in clfs.items():
            probs = clf.predict_proba(exp.x_test, batch_size=1000)
            c = compare(probs, exp.keras_probs, exp.y_test)
            rows[name] = {**meta[name], "accuracy": c["accuracy"], "agreement": c["agreement"],
                          "drop_points": round(100 * (c["reference_accuracy"] - c["accuracy"]), 3),
                          "golden": probs[exp.golden_idx]}
        calls = {name: clf.backend.raw_invoker(clf.model_input(exp.x_test[:1])) for name, clf in clfs.items()}
        p50 = interleaved_p50(calls, args.rounds, args.runs_per_round, warmup=5)
        for name in rows:
            rows[name]["p50_us"] = round(p50[name], 1)
            rows[name]["latency_vs_float"] = round(p50[name] / p50["float32"], 3)
        for cpu in cpus:
            console.print(f"emulating {cpu} ...")
            got = cpumatrix.probe(cpu, list(files.values()), exp.golden_pixels)
            for (name, row), g in zip(rows.items(), got):
                row.setdefault("identical_on", {})[cpu] = bool(np.array_equal(g, row["golden"]))
    for name, r in rows.items():
        r.pop("golden")
        r["passes"] = name != "float32" and all(r["identical_on"].values()) and r["agreement"] >= GATES["min_agreement"] \
            and r["drop_points"] <= GATES["max_drop_points"] and r["latency_vs_float"] <= GATES["max_latency_vs_float"]
    host = host_cpu()
    table = Table(title=f"ONNX int8 calibration study on {args.run_dir} ({len(exp.y_test):,} test images, Keras "
                        f"{exp.keras_accuracy:.4f}); {host['class']}, batch 1, 1 thread")
    for col in ("cell", "accuracy", "drop", "agreement", "p50 µs", "x float", *cpus, "passes"):
        table.add_column(col, justify="left" if col == "cell" else "right", no_wrap=col == "cell")
    for name, r in rows.items():
        table.add_row(name, f"{r['accuracy']:.4f}", f"{r['drop_points']:+.2f}", f"{r['agreement']:.2%}",
                      f"{r['p50_us']:.0f}", f"{r['latency_vs_float']:.2f}",
                      *("same" if r["identical_on"][c] else "DIFFERS" for c in cpus), "yes" if r["passes"] else "")
    console.print(table)
    passing = sorted((n for n, r in rows.items() if r["passes"]), key=lambda n: (-rows[n]["agreement"], rows[n]["p50_us"]))
    console.print(f"passing cells: {', '.join(passing) or 'none'}")
    args.json.write_text(json.dumps({
        "command": "python scripts/onnx_int8_calibration.py " + " ".join(
            [str(args.run_dir), "--schemes", args.schemes, "--methods", args.methods, "--sizes", args.sizes,
             *(["--per-tensor"] if args.per_tensor else []), "--cpus", args.cpus or '""']),
        "run": str(args.run_dir), "keras_accuracy": exp.keras_accuracy, "test_images": int(len(exp.y_test)),
        "golden_images": int(len(exp.golden_idx)), "gates": GATES, "host": host,
        "latency": f"batch 1, 1 thread, bare session call, p50 of {args.rounds} interleaved rounds x {args.runs_per_round}",
        "versions": library_versions("onnxruntime", "onnx", "tf2onnx", "numpy"),
        "cells": rows, "passing": passing}, indent=2) + "\n")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
