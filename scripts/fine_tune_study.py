"""What fine-tuning on a subset of the training split costs the fine-tuned variants (QAT, pruned, clustered), and
what it saves: for each setting, export the three from one run (no portability check, no float controls: neither
changes the files) and record each file's accuracy and agreement with the original Keras model on the full test
set, the fit time and the whole variant's export time. Prints a table and writes JSON:

    python scripts/fine_tune_study.py artifacts/reference --json artifacts/fine_tune_study.json \\
        --setting all:0:3e-5:1e-4:3e-5 --setting third-lr-x3:18000:1e-4:3e-4:1e-4

A setting is NAME:FINE_TUNE_IMAGES:QAT_LR:PRUNE_LR:CLUSTER_LR (0 images: the whole training split).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from exporters.config import ClusterConfig, ExportConfig, PruneConfig, QATConfig  # noqa: E402
from exporters.pipeline import export_run  # noqa: E402
from fmnist_edge.host import host_cpu, library_versions  # noqa: E402

VARIANTS = {"tflite-int8-qat": "qat", "tflite-int8-pruned": "pruning", "tflite-int8-clustered": "clustering"}


def run_setting(run: Path, name: str, images: int, qat_lr: float, prune_lr: float, cluster_lr: float,
                data_dir: str | None) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="fine-tune-study-") as tmp:
        copy = Path(tmp) / run.name
        copy.mkdir()
        for f in ("model.keras", "manifest.json", "metrics.json"):
            shutil.copy(run / f, copy / f)
        cfg = ExportConfig(variants=tuple(VARIANTS), portability_cpus=(), fine_tune_images=images, data_dir=data_dir,
                           qat=QATConfig(learning_rate=qat_lr), pruning=PruneConfig(learning_rate=prune_lr),
                           clustering=ClusterConfig(learning_rate=cluster_lr))
        t0 = time.perf_counter()
        export_run(copy, cfg, Console(quiet=True))
        rows = []
        for variant, key in VARIANTS.items():
            m = json.loads((copy / variant / "manifest.json").read_text())
            rows.append({"setting": name, "variant": variant, "fine_tune_images": m[key]["fine_tune_images"],
                         "learning_rate": m[key]["learning_rate"], "accuracy": m["fidelity"]["accuracy"],
                         "agreement_with_original": m["fidelity"]["agreement_with_keras"],
                         "check_agreement": m["check"]["agreement"], "fit_seconds": m[key]["fit_seconds"],
                         "export_seconds": m["export_seconds"]})
        print(f"{name}: {time.perf_counter() - t0:.0f} s")
        return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--setting", action="append", required=True, help="NAME:IMAGES:QAT_LR:PRUNE_LR:CLUSTER_LR")
    ap.add_argument("--data-dir")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    for s in args.setting:
        name, images, *lrs = s.split(":")
        rows += run_setting(args.run, name, int(images), *map(float, lrs), args.data_dir)
    base = {r["variant"]: r for r in rows if r["setting"] == rows[0]["setting"]}
    for r in rows:  # against the first setting, the reference point
        r["accuracy_vs_first_points"] = round(100 * (r["accuracy"] - base[r["variant"]]["accuracy"]), 2)
        r["agreement_vs_first_points"] = round(100 * (r["agreement_with_original"] - base[r["variant"]]["agreement_with_original"]), 2)
    table = Table(title=f"Fine-tuning on a subset: {args.run}")
    for col in ("setting", "variant", "images", "lr", "accuracy", "Δ pts", "agreement", "Δ pts", "fit s", "export s"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["setting"], r["variant"], f"{r['fine_tune_images']:,}", f"{r['learning_rate']:g}", f"{r['accuracy']:.4f}",
                      f"{r['accuracy_vs_first_points']:+.2f}", f"{r['agreement_with_original']:.2%}",
                      f"{r['agreement_vs_first_points']:+.2f}", f"{r['fit_seconds']:.0f}", f"{r['export_seconds']:.0f}")
    Console().print(table)
    if args.json:
        command = " ".join(["python scripts/fine_tune_study.py", str(args.run), *(f"--setting {s}" for s in args.setting),
                            "--json", str(args.json)])
        args.json.write_text(json.dumps({"command": command, "host": host_cpu(), "versions": library_versions("tensorflow", "keras", "tensorflow-model-optimization", "numpy"),
                                         "run": str(args.run), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
