"""PyTorch users' networks (tests/pytorch_models.py) through the whole ONNX path, as a PyTorch user takes them: trained
on the whole real training split, written as torch.onnx.export writes them, exported with the default options (every
test image, 500 calibration images, the portability proof) and benched; for the "From PyTorch" guide.

    python scripts/pytorch_study.py [--json artifacts/from_pytorch.json] [--runs 500]

Each row: the file's own accuracy as its user measures it (NCHW pixels / 255 in onnxruntime), the exported float and
int8 files' accuracy, agreement and size, batch-1 latency (one thread, this machine) and the export's time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]

from fmnist_edge import data as fdata  # noqa: E402
from fmnist_edge.host import provenance  # noqa: E402

CLI = str(Path(sys.executable).parent / "fmnist-edge")
# (network, epochs, the batch its file declares: a dynamic axis, or the example input's 1 without dynamic_axes)
STUDY = (("quickstart", 5, "batch", "PyTorch's quickstart: Flatten, Linear 784-512, ReLU, Linear 512-512, ReLU, "
          "Linear 512-10; exported with dynamic_axes"),
         ("cnn", 3, 1, "The usual Fashion-MNIST CNN: Conv 16, pool, Conv 32, pool, Linear 64, Linear 10; exported "
          "without dynamic_axes (batch fixed at 1)"))


def _models():
    spec = importlib.util.spec_from_file_location("pytorch_models", ROOT / "tests" / "pytorch_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def study(pm, name: str, epochs: int, batch, what: str, ds, tmp: Path, runs: int) -> dict:
    model = pm.train(name, ds.x_train, ds.y_train, epochs=epochs)
    path = pm.write_onnx(name, model, tmp / f"{name}.onnx", batch=batch)
    run = tmp / f"{name}-run"
    t0 = time.perf_counter()
    proc = subprocess.run([CLI, "export", str(path), "--out", str(run)], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"export of {name} failed ({proc.returncode}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    bench_json = tmp / f"{name}-bench.json"
    subprocess.run([CLI, "bench", str(run), "--runs", str(runs), "--no-compute-floor", "--json", str(bench_json),
                    "--markdown", str(tmp / "b.md"), "--plot", str(tmp / "b.png")], check=True, capture_output=True)
    latency = {r["name"]: r["latency"]["p50_us"] for r in json.loads(bench_json.read_text())["rows"] if r.get("latency")}
    float32, int8 = (json.loads((run / v / "manifest.json").read_text()) for v in ("onnx-float32", "onnx-int8"))
    return {"model": name, "what": what, "epochs": epochs, "declared_batch": batch, "file_kib": path.stat().st_size / 1024,
            "params": json.loads((run / "manifest.json").read_text())["params"],
            "pytorch_accuracy": pm.nchw_accuracy(path, ds.x_test, ds.y_test),
            "float32_accuracy": float32["fidelity"]["accuracy"], "int8_accuracy": int8["fidelity"]["accuracy"],
            "int8_drop": float32["fidelity"]["accuracy"] - int8["fidelity"]["accuracy"],
            "int8_agreement": int8["fidelity"]["agreement_with_keras"],
            "float32_kib": float32["file"]["bytes"] / 1024, "int8_kib": int8["file"]["bytes"] / 1024,
            "float32_p50_us": latency["onnx-float32"], "int8_p50_us": latency["onnx-int8"],
            "int8_speedup": latency["onnx-float32"] / latency["onnx-int8"],
            "portable_on": ", ".join(int8["portability"]["checked_on"]), "export_seconds": seconds,
            "test_images": int8["fidelity"]["test_images"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=ROOT / "artifacts" / "from_pytorch.json")
    ap.add_argument("--runs", type=int, default=500)
    args = ap.parse_args()
    pm, ds = _models(), fdata.load(download=False)
    rows = []
    with tempfile.TemporaryDirectory(prefix="fmnist-edge-pytorch-") as tmp:
        for name, epochs, batch, what in STUDY:
            rows.append(study(pm, name, epochs, batch, what, ds, Path(tmp), args.runs))
            r = rows[-1]
            print(f"{name:12s} float {r['float32_accuracy']:.4f}  int8 {r['int8_accuracy']:.4f}  agreement "
                  f"{r['int8_agreement']:.2%}  {r['float32_kib']:.0f} -> {r['int8_kib']:.0f} KiB  p50 "
                  f"{r['float32_p50_us']:.0f} -> {r['int8_p50_us']:.0f} us  export {r['export_seconds']:.0f}s", flush=True)
    command = "python scripts/pytorch_study.py" + (f" --runs {args.runs}" if args.runs != 500 else "")
    args.json.write_text(json.dumps({"command": command, "rows": rows,
                                     **provenance("onnx", "onnxruntime", "keras", "numpy")}, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
