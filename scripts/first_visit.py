"""What a phone's first visit to each release's app downloads, counted at the server (precompressed files, the
page's and the service worker's requests), against the budgets of fmnist_edge.browser.first_visit.

    python scripts/first_visit.py [--json artifacts/first_visit.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from fmnist_edge.browser.app import build_app
from fmnist_edge.browser.first_visit import BUDGETS, measure
from fmnist_edge.host import provenance

ROOT = Path(__file__).resolve().parents[1]
BUILDS = (("reference", "tflite-int8-web"), ("edge", "tflite-int8-web"), ("reference", "onnx-int8"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=ROOT / "artifacts" / "first_visit.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fmnist-edge-visit-") as tmp:
        for release, artifact in BUILDS:
            app = Path(tmp) / f"{release}-{artifact}"
            built = build_app(ROOT / "artifacts" / release, app, artifact=artifact)
            got = measure(app)
            budget = BUDGETS[release] if artifact == "tflite-int8-web" else None
            biggest = sorted(got["files"].items(), key=lambda kv: -kv[1]["bytes"])[:3]
            rows.append({"release": release, "artifact": artifact, "first_visit_bytes": got["bytes"],
                         "budget_bytes": budget, "within_budget": None if budget is None else got["bytes"] <= budget,
                         "folder_bytes": sum(p.stat().st_size for p in app.rglob("*") if p.is_file()),
                         "model_bytes": built["artifacts"][artifact]["bytes"], "requests": sum(
                             f["requests"] for f in got["files"].values()),
                         "downloaded_twice": got["downloaded_twice"], "status": got["status"],
                         "largest": {p: f["bytes"] for p, f in biggest}})
    print(f"{'release':10s} {'artifact':16s} {'first visit':>12s} {'budget':>10s} {'folder':>10s} twice")
    for r in rows:
        budget = f"{r['budget_bytes'] / 1e6:.1f} MB" if r["budget_bytes"] else "-"
        print(f"{r['release']:10s} {r['artifact']:16s} {r['first_visit_bytes'] / 1e6:9.2f} MB {budget:>10s} "
              f"{r['folder_bytes'] / 1e6:7.1f} MB {', '.join(r['downloaded_twice']) or 'none'}")
    args.json.write_text(json.dumps({"command": "python scripts/first_visit.py", "rows": rows,
                                     **provenance("numpy")}, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
