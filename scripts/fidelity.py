"""Fidelity table: each trained run against its seed's reported test accuracy.

Reads only run directories written by `fmnist-edge train` (their manifest.json and metrics.json), prints a
Markdown table and writes the same rows as JSON:

    python scripts/fidelity.py artifacts/reference artifacts/paper ... --json artifacts/fidelity.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fmnist_edge.fidelity import markdown, row, summary  # noqa: F401  (row: tests recompute fidelity.json with it)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()
    rows = [row(r) for r in args.runs]
    print(markdown(rows) + "\n" + summary(rows), end="")
    if args.json:  # the command that wrote it, so the docs can show how to regenerate the table
        command = " ".join(["python scripts/fidelity.py", *map(str, args.runs), "--json", str(args.json)])
        args.json.write_text(json.dumps({"command": command, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
