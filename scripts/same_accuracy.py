"""Fail unless two bench.json files (the same release and test images, two CPUs) give every variant the same
accuracy, agreement and flipped images: what scripts/arm64_check.sh asks of the emulated Raspberry Pi bench.

    python scripts/same_accuracy.py HOST_BENCH.json OTHER_BENCH.json
"""

from __future__ import annotations

import sys
from pathlib import Path

from fmnist_edge.errors import FmnistEdgeError  # noqa: E402
from fmnist_edge.report import load_result  # noqa: E402


def rows(path: str) -> dict[str, dict]:
    """Each artifact's metrics in a bench.json, checked to be one by the loader `bench --results` uses."""
    return {r["name"]: r["metrics"] or {} for r in load_result(Path(path))["rows"] if r["kind"] == "artifact"}


def differences(host: dict[str, dict], other: dict[str, dict]) -> list[str]:
    bad = [f"{name}: missing on one side" for name in sorted(set(host) ^ set(other))]
    for name in sorted(set(host) & set(other)):
        for key in ("accuracy", "agreement", "flipped_indices"):
            if host[name].get(key) != other[name].get(key):
                bad.append(f"{name}: {key} {other[name].get(key)} here, {host[name].get(key)} on the host")
    return bad


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        host, other = rows(argv[0]), rows(argv[1])
    except FmnistEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bad = differences(host, other)
    for line in bad:
        print(f"error: {line}", file=sys.stderr)
    if not bad:
        print(f"same accuracy, agreement and flipped images as the host for {len(host)} variants")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
