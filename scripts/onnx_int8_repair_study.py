"""Would reduce-range plus the layers `explain` points at make a better ONNX int8 default? For each release and each
portable reduce-range scheme (and the default, u8u8, as the baseline): the plain file, then the nodes explain's
leave-one-out helps most kept in float, one more at a time (up to 3). Each file is scored on the three criteria
of issue 36, all on this CPU in one run:

- portable: its golden outputs under every emulated x86 CPU (qemu) give the same answers as natively, within one
  int8 output step (the CPU matrix's rule);
- at least 99.5% top-1 agreement with Keras on the 10,000 test images;
- batch-1 p50 at most 0.5x of ONNX float32's (bare session calls, interleaved rounds: a ratio of the same conditions).

    python scripts/onnx_int8_repair_study.py artifacts/reference artifacts/edge [--json artifacts/onnx_int8_repair_study.json]

Prints a table and writes JSON with this CPU's class (int8 speed depends on it).
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
from exporters.explain import flattened  # noqa: E402
from exporters.explain_onnx import explain_onnx  # noqa: E402
from exporters.repair import helpful_layers  # noqa: E402
from fmnist_edge import cpumatrix  # noqa: E402
from fmnist_edge.bench import interleaved_p50  # noqa: E402
from fmnist_edge.host import host_cpu, library_versions  # noqa: E402
from runtime.compare import compare  # noqa: E402

SCHEMES = ("u8u8", "s8s8-reduce-range", "u8s8-reduce-range")
MIN_AGREEMENT, MAX_RATIO = 0.995, 0.5
STEP = 1 / 256  # one output step of the quantized softmax


def files_for(ctx, tmp: Path, console) -> dict[str, dict]:
    """{label: {"path", "scheme", "float_layers"}} for every scheme, plain and with 1-3 explain-chosen nodes in float."""
    model = flattened(ctx.model)
    onnx_export.to_float32(model, tmp / "float.onnx", 17)
    files = {}
    for scheme in SCHEMES:
        report = explain_onnx(model, ctx.calibration, ctx.x_test, ctx.y_test, ctx.keras_probs, scheme, 17)
        helpful = helpful_layers(report)  # what export's repair ladder would keep in float, in its order
        for k in range(len(helpful) + 1):
            label = scheme + ("" if k == 0 else f" + {k} in float")
            path = tmp / f"{scheme}-{k}.onnx"
            onnx_export.to_int8(tmp / "float.onnx", path, ctx.calibration, tmp, scheme,
                                exclude_weighted=[r["node_index"] for r in helpful[:k]] or None)
            files[label] = {"path": path, "scheme": scheme, "float_layers": [r["layer"] for r in helpful[:k]]}
            console.print(f"  {label}: {', '.join(files[label]['float_layers']) or 'every node int8'}")
    return files


def study(release: Path, rounds: int, runs: int, console) -> dict:
    ctx = load_context(release, ExportConfig(variants=("onnx-int8",)), console)
    with tempfile.TemporaryDirectory(prefix="onnx-int8-repair-study-") as d:
        tmp = Path(d)
        files = files_for(ctx, tmp, console)
        paths = {"float32": tmp / "float.onnx", **{k: v["path"] for k, v in files.items()}}
        clfs = {k: runtime.load(p) for k, p in paths.items()}
        one = ctx.x_test[:1]
        p50 = interleaved_p50({k: c.backend.raw_invoker(c.model_input(one)) for k, c in clfs.items()}, rounds, runs)
        native = {k: c.predict_proba(ctx.x_test, batch_size=1000) for k, c in clfs.items()}
        # only the int8 files: float kernels run in software under qemu (seconds per image) and are not in question
        emulated = {cpu: dict(zip(files, cpumatrix.probe(cpu, [f["path"] for f in files.values()], ctx.golden_pixels)))
                    for cpu in cpumatrix.X86_CPUS}
    rows = {}
    for label, f in files.items():
        c = compare(native[label], ctx.keras_probs, ctx.y_test)
        golden = native[label][ctx.golden_idx]
        # the CPU matrix's rule: the same top-1 answers, probabilities within one int8 output step (layers kept in
        # float round differently per instruction set; integer kernels must not differ at all beyond that)
        portable = all((emulated[cpu][label].argmax(1) == golden.argmax(1)).all()
                       and np.abs(emulated[cpu][label] - golden).max() <= STEP for cpu in emulated)
        row = {"scheme": f["scheme"], "float_layers": f["float_layers"],
               "in_float": ", ".join(f["float_layers"]) or "none", "accuracy": c["accuracy"],
               "agreement": c["agreement"], "p50_us": round(p50[label], 1),
               "p50_over_float32": round(p50[label] / p50["float32"], 3), "portable": portable,
               "identical_under": [cpu for cpu in emulated if np.array_equal(emulated[cpu][label], golden)]}
        row["meets_all_three"] = bool(portable and row["agreement"] >= MIN_AGREEMENT
                                      and row["p50_over_float32"] <= MAX_RATIO)
        rows[label] = row
    return {"keras_accuracy": ctx.keras_accuracy, "float32_p50_us": round(p50["float32"], 1), "files": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("releases", type=Path, nargs="+")
    ap.add_argument("--json", type=Path, default=Path("artifacts/onnx_int8_repair_study.json"))
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    console = Console()
    results = {str(r): study(r, args.rounds, args.runs, console) for r in args.releases}
    cpu = host_cpu()
    table = Table(title=f"ONNX int8: reduce-range and explain's layers in float; host {cpu['class']}, batch 1, 1 thread")
    for col in ("release", "file", "accuracy", "agreement", "p50 / float32", "portable", "all three"):
        table.add_column(col, justify="left" if col in ("release", "file") else "right")
    for release, res in results.items():
        for label, r in res["files"].items():
            table.add_row(Path(release).name, f"{label}" + (f" ({', '.join(r['float_layers'])})" if r["float_layers"] else ""),
                          f"{r['accuracy']:.4f}", f"{r['agreement']:.2%}", f"{r['p50_over_float32']:.2f}",
                          "yes" if r["portable"] else "no", "[green]yes[/]" if r["meets_all_three"] else "no")
    console.print(table)
    winners = {rel: [k for k, r in res["files"].items() if r["meets_all_three"]] for rel, res in results.items()}
    args.json.write_text(json.dumps({
        "command": "python scripts/onnx_int8_repair_study.py " + " ".join(map(str, args.releases)),
        "criteria": {"portable": "same top-1 and |dp| <= 1/256 on the golden images under " + ", ".join(cpumatrix.X86_CPUS),
                     "min_agreement": MIN_AGREEMENT, "max_p50_over_float32": MAX_RATIO},
        "latency": f"batch 1, bare ONNX Runtime session call, {args.rounds} interleaved rounds of {args.runs}",
        "host": cpu, "versions": library_versions("onnxruntime", "onnx", "tf2onnx", "numpy"),
        "releases": results, "meets_all_three": winners}, indent=2) + "\n")
    console.print(f"meets all three: {winners}\nwrote {args.json}")


if __name__ == "__main__":
    main()
