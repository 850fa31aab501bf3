"""The trade-off curve behind the pruning and clustering defaults: accuracy and zlib-9 size of the int8
file for several sparsities / cluster counts and layer shares, fine-tuned exactly as `fmnist-edge export`
does (exporters.compress), on the run's full test set. Prints a table and writes JSON.

    python scripts/compression_sweep.py artifacts/reference --json artifacts/compression_sweep.json \
        --prune 0.8:0.25 0.95:0.25 0.85:0.02 --cluster 4:0.02 16:0.02 16:0.25

Each pruning point takes ~5 min on 2 AVX2 cores (3 epochs), each clustering point ~2 min (1 epoch).
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

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from exporters import compress, search  # noqa: E402
from exporters.config import ClusterConfig, PruneConfig  # noqa: E402
from exporters.config import ExportConfig  # noqa: E402
from exporters.context import ExportContext, load_context  # noqa: E402
from fmnist_edge.host import host_cpu  # noqa: E402
from runtime.compare import compare  # noqa: E402
from runtime.weights import compressed_size  # noqa: E402


def evaluate(exp: ExportContext, tflite: bytes, tmp: Path) -> dict:
    import runtime

    path = tmp / "model.tflite"
    path.write_bytes(tflite)
    probs = runtime.load(path).predict_proba(exp.x_test, batch_size=1000)
    c = compare(probs, exp.keras_probs, exp.y_test)
    return {"int8_accuracy": c["accuracy"], "drop_points": round(100 * (c["reference_accuracy"] - c["accuracy"]), 3),
            "agreement_with_original": c["agreement"], "bytes": len(tflite), "zlib9_bytes": compressed_size(path)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--prune", nargs="*", default=[], help="SPARSITY:LAYER_SHARE points")
    ap.add_argument("--cluster", nargs="*", default=[], help="CLUSTERS:LAYER_SHARE points")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--longer", action="store_true", help="the search's longer budget (exporters.search.ladder's "
                    "second rung): on the whole training split, at least 4 epochs, 3x the rate decayed to 0")
    args = ap.parse_args()
    console = Console()
    exp = load_context(args.run_dir, ExportConfig(variants=()), console)
    float32 = args.run_dir / "tflite-float32" / "model.tflite"
    f32_zlib = compressed_size(float32) if float32.is_file() else None
    points = [("pruning", PruneConfig(sparsity=float(s), min_share=float(m)))
              for s, m in (p.split(":") for p in args.prune)]
    points += [("clustering", ClusterConfig(clusters=int(k), min_share=float(m)))
               for k, m in (p.split(":") for p in args.cluster)]
    if args.longer:
        points = [(kind, search.ladder(cfg, 2)[1][0]) for kind, cfg in points]
    rows = []
    scratch = tempfile.TemporaryDirectory(prefix="compression-sweep-")
    tmp = Path(scratch.name)
    for kind, cfg in points:
        console.print(f"{kind}: {cfg}")
        t0 = time.perf_counter()
        fn = compress.prune if kind == "pruning" else compress.cluster
        res = fn(exp.model, exp.preset_name, exp.x_fit, exp.y_fit, exp.x_test, exp.calibration, cfg)
        row = {"kind": kind, "setting": cfg.sparsity if kind == "pruning" else cfg.clusters, "layer_share": cfg.min_share,
               "layers": list(res["details"]["layers"]), "epochs": cfg.epochs, "learning_rate": cfg.learning_rate,
               "cosine_decay": cfg.cosine_decay,
               **evaluate(exp, res["tflite"], tmp), "seconds": round(time.perf_counter() - t0, 1)}
        row["zlib9_over_float32"] = round(row["zlib9_bytes"] / f32_zlib, 4) if f32_zlib else None
        rows.append(row)
        console.print(row)
    table = Table(title=f"int8 after trained compression, {args.run_dir} (Keras {exp.keras_accuracy:.4f}); {host_cpu()['class']}")
    for col in ("kind", "setting", "layers", "int8 accuracy", "drop (pts)", "agreement", "zlib-9 KB", "/ float32 zlib-9"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["kind"], str(r["setting"]), ", ".join(r["layers"]), f"{r['int8_accuracy']:.4f}",
                      f"{r['drop_points']:+.2f}", f"{r['agreement_with_original']:.2%}", f"{r['zlib9_bytes'] / 1000:,.0f}",
                      f"{r['zlib9_over_float32']:.1%}" if r["zlib9_over_float32"] else "-")
    scratch.cleanup()
    console.print(table)
    if args.json:
        command = " ".join(["python scripts/compression_sweep.py", str(args.run_dir), *(["--prune", *args.prune] if args.prune else []),
                            *(["--cluster", *args.cluster] if args.cluster else []), *(["--longer"] if args.longer else []),
                            "--json", str(args.json)])
        args.json.write_text(json.dumps({"command": command, "run": str(args.run_dir), "keras_accuracy": exp.keras_accuracy,
                                         "float32_zlib9_bytes": f32_zlib, "host": host_cpu(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
