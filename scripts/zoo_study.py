"""The model zoo (tests/zoo.py) through the whole export, as a stranger's models would go: each trained on real
training images, saved as its user saves it, and exported to every variant;
what each variant became (written, by which check, skipped or refused, and why) is recorded for the own-model guide.

    python scripts/zoo_study.py [--train-images 6000] [--limit 2000] [--portability-check] [--json artifacts/zoo.json]
                                [NAME ...]

The portability proof (each int8 file under emulated x86 CPUs) is off by default: it multiplies the study's time, and
the CPU matrix of the shipped releases covers the same kernels.
"""

from __future__ import annotations

import argparse
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
from runtime.variants import VARIANTS  # noqa: E402


def _zoo():
    """tests/zoo.py, the zoo the tests take through every command (a module of the test suite, not of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("zoo", ROOT / "tests" / "zoo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["zoo"] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


_ZOO = _zoo()
ZOO, train_and_save = _ZOO.ZOO, _ZOO.train_and_save

CLI = str(Path(sys.executable).parent / "fmnist-edge")


def variant_cell(name: str, run: Path, record: dict) -> dict:
    """What export did with one variant of one zoo model."""
    if name in record.get("skipped_variants", {}):
        return {"status": "skipped", "why": record["skipped_variants"][name]}
    if name in record.get("refused_variants", {}):
        r = record["refused_variants"][name]
        return {"status": "refused", "why": r["reason"], "remedy": r["remedy"]}
    if not (run / name / "manifest.json").is_file():  # the export stopped before it (its message is the row's)
        return {"status": "missing", "why": "the export ended before this variant"}
    m = json.loads((run / name / "manifest.json").read_text())
    rule = m["check"].get("passed_by") == "accuracy rule"
    return {"status": "written", "accuracy": m["fidelity"]["accuracy"], "agreement": m["fidelity"]["agreement_with_keras"],
            "by": "accuracy rule" if rule else "gate", **({"accuracy_rule": m["check"]["accuracy_rule"]} if rule else {}),
            "repaired": "repair" in m}


def short(cell: dict) -> str:
    if cell["status"] == "written":
        return f"{cell['accuracy']:.4f}" + (" (accuracy rule)" if cell["by"] == "accuracy rule" else "") + (
            " (repaired)" if cell["repaired"] else "")
    return cell["status"]


def study(name: str, pixels, labels, limit: int, work: Path, portability: bool) -> dict:
    entry = ZOO[name]
    t0 = time.perf_counter()
    path = train_and_save(entry, pixels, labels, work)
    trained = time.perf_counter() - t0
    run = work / f"run-{name}"
    options = ["--limit", str(limit), *(() if portability else ("--no-portability-check",)), *entry.export_args]
    cmd = [CLI, "export", str(path), "--out", str(run), *options]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    row = {"model": name, "what": entry.what, "file": path.name, "train_seconds": round(trained, 1),
           "export_command": " ".join(["fmnist-edge export", path.name, *options]),
           "export_exit_code": proc.returncode, "export_seconds": round(time.perf_counter() - t0, 1),
           "export_error": proc.stderr.strip().splitlines()[-1][:400] if proc.returncode not in (0, 3) and proc.stderr.strip()
           else None}
    if not (run / "manifest.json").is_file():  # refused as a whole (e.g. a sigmoid head): the message is the result
        return {**row, "refused_model": proc.stderr.strip().removeprefix("error: ")[:600], "keras_accuracy": None,
                "input": None, "input_fit": None, "output": None, "written": 0, "variants": {},
                **{v: "model refused" for v in VARIANTS}, "traceback": "Traceback" in proc.stdout + proc.stderr}
    manifest = json.loads((run / "manifest.json").read_text())
    record = json.loads((run / "keras-outputs" / "manifest.json").read_text())
    cells = {v: variant_cell(v, run, record) for v in VARIANTS}
    return {**row, "keras_accuracy": manifest["test_accuracy"], "input": manifest["conventions"]["input_shape"],
            "input_fit": manifest["conventions"]["input_fit"]["fit"], "output": manifest["conventions"]["output"],
            "variants": cells, **{v: short(c) for v, c in cells.items()},
            "written": sum(c["status"] == "written" for c in cells.values()),
            "traceback": "Traceback" in proc.stdout + proc.stderr}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", default=list(ZOO))
    ap.add_argument("--train-images", type=int, default=6000)
    ap.add_argument("--limit", type=int, default=2000, help="export --limit: calibration, fine-tuning and test subset")
    ap.add_argument("--portability-check", action="store_true")
    ap.add_argument("--json", type=Path, default=ROOT / "artifacts" / "zoo.json")
    args = ap.parse_args()
    ds = fdata.load(download=False)
    idx = fdata.subset(ds.y_train, args.train_images, 1)
    # rows of models not named this time are kept from an earlier run of the study (re-run one model at a time)
    kept = {r["model"]: r for r in json.loads(args.json.read_text())["rows"]} if args.json.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="fmnist-edge-zoo-") as tmp:
        for name in args.names:
            r = kept[name] = study(name, ds.x_train[idx], ds.y_train[idx], args.limit, Path(tmp), args.portability_check)
            print(f"{name:28s} exit {r['export_exit_code']}  {r.get('written', 0)} written  "
                  f"{r.get('refused_model', '')[:80]}", flush=True)
            write(args, [kept[n] for n in ZOO if n in kept])  # after each model: a stop loses nothing done
    print(f"wrote {args.json}")


def write(args, rows: list[dict]) -> None:
    from exporters import gate

    command = (f"python scripts/zoo_study.py --train-images {args.train_images} --limit {args.limit}"
               + (" --portability-check" if args.portability_check else ""))
    rule = {"accuracy_budget": gate.ACCURACY_BUDGET, "class_budget": gate.CLASS_BUDGET, "confident": gate.CONFIDENT,
            "min_confident": gate.MIN_CONFIDENT, "agreement_floor": gate.AGREEMENT_FLOOR}
    rule_rows = [{"model": r["model"], "variant": v, **{k: c["accuracy_rule"][k] for k in (
        "accuracy_drop", "worst_class_drop", "confident_share", "confident_agreement", "agreement")}}
        for r in rows for v, c in r["variants"].items() if c.get("by") == "accuracy rule"]
    args.json.write_text(json.dumps({"command": command, "rule": rule, "rule_rows": rule_rows, "rows": rows,
                                     **provenance("tensorflow", "keras", "tf-keras", "tensorflow-model-optimization")},
                                    indent=1) + "\n")


if __name__ == "__main__":
    main()
