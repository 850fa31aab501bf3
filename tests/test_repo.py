"""Repository-wide rules."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tf_keras_is_written_nowhere():
    # tfmot flips `tf.keras` to Keras 2 for the whole process (STACK.md): import keras or tf_keras explicitly.
    pattern = re.compile(r"tf\.keras")
    offenders = [
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("*.py")
        if ".venv" not in p.parts and p.name != "test_repo.py" and pattern.search(p.read_text())
    ]
    assert offenders == []
