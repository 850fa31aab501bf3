"""Repository-wide rules."""

import os
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


def test_ci_turns_every_skip_into_a_failure_naming_what_is_missing(tmp_path):
    """`.ci/run` sets CI: a check skipped because TensorFlow, tflite_micro or g++ is missing must fail the run."""
    import shutil
    import subprocess
    import sys

    shutil.copy(Path(__file__).parent / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n"
        "def test_needs_a_compiler():\n    pytest.skip('no C++ compiler')\n"
        "def test_runs():\n    assert True\n")
    (tmp_path / "test_module_skip.py").write_text("import pytest\npytest.importorskip('no_such_module_xyz')\n")

    def run(name: str, ci: bool):
        env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": "true"} if ci else {})
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                               str(tmp_path / name)], capture_output=True, text=True, timeout=120, env=env)

    assert run("test_skips.py", ci=False).returncode == 0  # a developer's machine without an extra: skipped
    strict = run("test_skips.py", ci=True)
    assert strict.returncode == 1 and "1 failed, 1 passed" in strict.stdout, strict.stdout
    assert "skipped at call in CI" in strict.stdout and "no C++ compiler" in strict.stdout
    assert run("test_module_skip.py", ci=False).returncode == 5  # pytest: no test ran (the module was skipped)
    strict = run("test_module_skip.py", ci=True)
    assert strict.returncode != 0 and "could not import 'no_such_module_xyz'" in strict.stdout, strict.stdout


def test_fidelity_json_is_what_its_command_computes_from_the_runs_manifests():
    """Numbers are not copied by hand: fidelity.json's rows are scripts/fidelity.py's rows of the runs its recorded
    command names (the docs render the table from it), and every accuracy is the one the run's manifest recorded."""
    import importlib.util
    import json
    import shlex

    spec = importlib.util.spec_from_file_location("fidelity", ROOT / "scripts" / "fidelity.py")
    fidelity = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fidelity)
    recorded = json.loads((ROOT / "artifacts" / "fidelity.json").read_text())
    words = shlex.split(recorded["command"])
    runs = words[2:words.index("--json")]
    assert [r["run"] for r in recorded["rows"]] == runs
    for run, r in zip(runs, recorded["rows"]):
        assert fidelity.row(ROOT / run) | {"run": run} == r, run
        manifest = json.loads((ROOT / run / "manifest.json").read_text())
        assert round(manifest["test_accuracy"], 4) == r["test_accuracy"] and manifest["seed"] == r["seed"], run