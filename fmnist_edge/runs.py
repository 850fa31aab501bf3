"""Where runs and releases are: the shipped release, the newest training run under artifacts/."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import FmnistEdgeError

SHIPPED_RUN = Path("artifacts/reference")


def latest_run(root: Path = Path("artifacts")) -> Path:
    """The newest training run under artifacts/ (by its manifest's creation time)."""
    runs = []
    for manifest in root.glob("*/manifest.json"):
        try:
            m = json.loads(manifest.read_text())
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(m, dict) and m.get("kind") == "keras-run":
            runs.append((m.get("created_at", ""), manifest.parent))
    if not runs:
        raise FmnistEdgeError(f"No training run found under {root}/. Train one with `fmnist-edge train` or pass RUN_DIR.")
    return max(runs)[1]


def default_release() -> Path:
    """The shipped reference release if present, else the newest training run."""
    return SHIPPED_RUN if (SHIPPED_RUN / "manifest.json").is_file() else latest_run()
