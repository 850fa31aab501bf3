"""Choose the ONNX int8 scheme by measurement: quantize a run's model with every scheme in
exporters.onnx_export.SCHEMES and report, per scheme, full-test-set accuracy and agreement with Keras,
batch-1 latency on this CPU, and whether the golden outputs are identical under emulated x86 CPUs.

    python scripts/onnx_int8_schemes.py artifacts/reference [--json artifacts/onnx_int8_schemes.json]
        [--calibration-images 500] [--cpus Nehalem-v1,Haswell-v4]

Prints a table and writes JSON (with this CPU's class and features: int8 numbers depend on them).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import runtime  # noqa: E402
from exporters import onnx_export  # noqa: E402
from exporters.config import ExportConfig  # noqa: E402
from exporters.context import load_context  # noqa: E402
from fmnist_edge import cpumatrix  # noqa: E402
from fmnist_edge.bench import percentiles, time_calls  # noqa: E402
from fmnist_edge.host import host_cpu, library_versions  # noqa: E402
from runtime.compare import compare  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--json", type=Path, default=Path("artifacts/onnx_int8_schemes.json"))
    ap.add_argument("--calibration-images", type=int, default=500)
    ap.add_argument("--cpus", default=",".join(cpumatrix.X86_CPUS))
    ap.add_argument("--runs", type=int, default=2000)
    args = ap.parse_args()
    console = Console()
    cpus = tuple(c for c in args.cpus.split(",") if c)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        exp = load_context(args.run_dir, ExportConfig(variants=("onnx-int8",), calibration_images=args.calibration_images),
                           console)
        onnx_export.to_float32(exp.model, tmp / "float.onnx", 17)
        files = {"float32": tmp / "float.onnx"}
        for name in onnx_export.SCHEMES:
            files[name] = tmp / f"{name}.onnx"
            onnx_export.to_int8(tmp / "float.onnx", files[name], exp.calibration, tmp, name)
        rows = {}
        for name, path in files.items():
            clf = runtime.load(path)
            probs = clf.predict_proba(exp.x_test, batch_size=1000)
            c = compare(probs, exp.keras_probs, exp.y_test)
            one = clf.model_input(exp.x_test[:1])
            lat = percentiles(time_calls(clf.backend.raw_invoker(one), 200, args.runs))
            rows[name] = {"accuracy": c["accuracy"], "agreement": c["agreement"],
                          "drop_points": round(100 * (c["reference_accuracy"] - c["accuracy"]), 3),
                          "max_abs_diff": c["max_abs_diff"],
                          "p50_us": round(lat["p50_us"], 1), "p99_us": round(lat["p99_us"], 1),
                          "golden": probs[exp.golden_idx]}
            console.print(f"{name}: accuracy {rows[name]['accuracy']:.4f}, agreement {rows[name]['agreement']:.2%}, "
                          f"p50 {lat['p50_us']:.0f} us")
        for cpu in cpus:
            console.print(f"emulating {cpu} ...")
            got = cpumatrix.probe(cpu, list(files.values()), exp.golden_pixels)
            for (name, row), g in zip(rows.items(), got):
                c = compare(g, row["golden"])
                row.setdefault("emulated", {})[cpu] = {"identical": bool(np.array_equal(g, row["golden"])),
                                                       "max_abs_diff": c["max_abs_diff"], "agreement": c["agreement"]}
    table = Table(title=f"ONNX Runtime int8 schemes on {args.run_dir} ({len(exp.y_test):,} test images; "
                        f"Keras {exp.keras_accuracy:.4f}); host {host_cpu()['class']}")
    for col in ("scheme", "accuracy", "drop (pts)", "agreement", "p50 µs", "p99 µs", *(f"same as native under {c}" for c in cpus)):
        table.add_column(col, justify="right")
    for name, r in rows.items():
        table.add_row(name, f"{r['accuracy']:.4f}", f"{r['drop_points']:+.2f}", f"{r['agreement']:.2%}",
                      f"{r['p50_us']:.0f}", f"{r['p99_us']:.0f}",
                      *("yes" if r["emulated"][c]["identical"] else f"no ({r['emulated'][c]['agreement']:.1%}, "
                        f"|Δp| {r['emulated'][c]['max_abs_diff']:.2f})" for c in cpus))
    console.print(table)
    for r in rows.values():
        r.pop("golden")
    args.json.write_text(json.dumps({
        "command": f"python scripts/onnx_int8_schemes.py {args.run_dir} --calibration-images {args.calibration_images}",
        "run": str(args.run_dir), "keras_accuracy": exp.keras_accuracy, "test_images": int(len(exp.y_test)),
        "golden_images": int(len(exp.golden_idx)), "calibration_images": args.calibration_images,
        "latency": "batch 1, 1 thread, bare ONNX Runtime session call", "host": host_cpu(),
        "versions": library_versions("onnxruntime", "onnx", "tf2onnx", "numpy"),
        "schemes": {n: {**onnx_export.SCHEMES.get(n, {}), **r} for n, r in rows.items()}}, indent=2) + "\n")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
