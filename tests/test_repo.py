"""Repository-wide rules."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Assembled so that this file does not contain the forbidden spelling itself.
FORBIDDEN = re.compile("tf" + r"\.keras")


def test_tensorflow_keras_alias_is_written_nowhere():
    # tfmot silently swaps TensorFlow's Keras alias for Keras 2 in the whole process (STACK.md), so the
    # code must import `keras` or `tf_keras` by name. Checked in code, docs and scripts alike.
    files = [p for ext in ("*.py", "*.md", "*.sh", "*.toml") for p in ROOT.rglob(ext)]
    offenders = [str(p.relative_to(ROOT)) for p in files
                 if ".venv" not in p.parts and FORBIDDEN.search(p.read_text(errors="replace"))]
    assert offenders == []
