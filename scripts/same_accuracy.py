"""Fail unless two bench.json files (the same release and test images, two CPUs) give every variant the same
accuracy, agreement and flipped images: what scripts/arm64_check.sh asks of the emulated Raspberry Pi bench.

    python scripts/same_accuracy.py HOST_BENCH.json OTHER_BENCH.json
"""

from __future__ import annotations

import sys
from pathlib import Path

from fmnist_edge.errors import FmnistEdgeError
from fmnist_edge.report import accuracy_differences, artifact_metrics


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        host, other = artifact_metrics(Path(argv[0])), artifact_metrics(Path(argv[1]))
    except FmnistEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bad = accuracy_differences(host, other)
    for line in bad:
        print(f"error: {line}", file=sys.stderr)
    if not bad:
        print(f"same accuracy, agreement and flipped images as the host for {len(host)} variants")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
