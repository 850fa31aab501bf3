"""The speed claims of issue 26 as ratios, measured in one run on this CPU: batch-1 p50 of the shipped releases'
files, timed in interleaved rounds (every file once per round, then the median over all rounds), so drift
on a shared machine hits them alike. Prints a table and writes JSON, naming the CPU class.

    python scripts/speed_ratios.py [--rounds 15] [--runs 200] [--json artifacts/speed_ratios.json]

Ratios (a target where the issue sets one):
- edge int8 / edge float32 (target < 1: int8 must be the faster file);
- edge int8 / reference int8 (target <= 0.5);
- reference ONNX int8 / ONNX float32 (target <= 0.5);
- reference TFLite int8 / float32, and each web file / its int8 counterpart (for the record).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import runtime  # noqa: E402
from runtime.manifest import keras_outputs_dir  # noqa: E402
from fmnist_edge.bench import interleaved_p50  # noqa: E402
from fmnist_edge.host import host_cpu, library_versions  # noqa: E402

FILES = [(release, variant) for release in ("reference", "edge")
         for variant in ("tflite-float32", "tflite-int8", "tflite-int8-web", "onnx-float32", "onnx-int8")]
RATIOS = [  # (name, numerator, denominator, target: ratio must be < or <= this, or None)
    ("edge int8 / edge float32 (TFLite)", "edge/tflite-int8", "edge/tflite-float32", ("<", 1.0)),
    ("edge int8 / reference int8 (TFLite)", "edge/tflite-int8", "reference/tflite-int8", ("<=", 0.5)),
    ("reference ONNX int8 / ONNX float32", "reference/onnx-int8", "reference/onnx-float32", ("<=", 0.5)),
    ("reference int8 / float32 (TFLite)", "reference/tflite-int8", "reference/tflite-float32", None),
    ("edge ONNX int8 / ONNX float32", "edge/onnx-int8", "edge/onnx-float32", None),
    ("reference int8-web / int8 (TFLite)", "reference/tflite-int8-web", "reference/tflite-int8", None),
    ("edge int8-web / int8 (TFLite)", "edge/tflite-int8-web", "edge/tflite-int8", None),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--runs", type=int, default=200, help="timed calls per file per round")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    image = np.load(keras_outputs_dir(args.artifacts / "reference") / "golden.npz")["images"][:1]
    calls = {}
    for release, variant in FILES:
        path = args.artifacts / release / variant
        if (path / "manifest.json").is_file():
            clf = runtime.load(path, num_threads=1)
            calls[f"{release}/{variant}"] = lambda clf=clf: clf.predict_proba(image)
    p50 = interleaved_p50(calls, rounds=args.rounds, runs_per_round=args.runs)
    host = host_cpu()
    print(f"batch 1, 1 thread, p50 of {args.rounds} interleaved rounds x {args.runs} calls; {host['model']} ({host['class']})")
    for name, us in p50.items():
        print(f"  {name:28s} {us:9.1f} µs")
    rows = []
    for name, num, den, target in RATIOS:
        if num not in p50 or den not in p50:
            continue
        ratio = p50[num] / p50[den]
        ok = None if target is None else (ratio < target[1] if target[0] == "<" else ratio <= target[1])
        rows.append({"ratio": name, "value": round(ratio, 3), "target": f"{target[0]} {target[1]}" if target else None,
                     "met": ok})
        verdict = "" if ok is None else ("  met" if ok else "  MISSED")
        print(f"  {name:40s} {ratio:6.2f}  {'(target ' + rows[-1]['target'] + ')' if target else ''}{verdict}")
    if args.json:
        command = (f"python scripts/speed_ratios.py --rounds {args.rounds} --runs {args.runs} --json {args.json}"
                   + ("" if args.artifacts == Path("artifacts") else f" --artifacts {args.artifacts}"))
        args.json.write_text(json.dumps({
            "command": command, "host": host, "versions": library_versions("numpy", "ai-edge-litert", "onnxruntime"),
            "method": {"batch": 1, "threads": 1, "rounds": args.rounds, "runs_per_round": args.runs,
                       "statistic": "median of all timed calls, files interleaved per round",
                       "call": "runtime.load(path).predict_proba(one golden image)"},
            "p50_us": {k: round(v, 2) for k, v in p50.items()}, "ratios": rows}, indent=2) + "\n")
        print(f"Wrote {args.json}")


if __name__ == "__main__":
    main()
