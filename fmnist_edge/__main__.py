"""`python -m fmnist_edge ...` runs the CLI (for environments without the console script, e.g. emulated sysroots)."""

from .cli import app

app(prog_name="fmnist-edge")
