"""Shared fixtures: a tiny CNN preset trained for seconds on real data, and its exports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Keras reads its backend once, at its first import: the converters need TensorFlow, so the whole suite runs on it.
os.environ["KERAS_BACKEND"] = "tensorflow"  # (a shell left on jax after GPU training must not change the suite)
# The suite reads the real data from the Debian package (or the Keras cache) and never downloads: a developer's
# $FMNIST_DATA_DIR must not change what the tests see.
os.environ.pop("FMNIST_DATA_DIR", None)


# --- a skip is not a pass: in CI (CI set, as `.ci/run` runs) every skipped check fails, naming what was missing ---

def _strict() -> bool:
    return bool(os.environ.get("CI"))


def _fail_skip(report, when: str) -> None:
    reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"skipped {when} in CI, where every check must run: {reason}\n"
                       "Install what is missing (bash scripts/setup.sh installs the extras train,test,micro, g++, qemu "
                       "and the Arm compiler) or fix the test; a skip is not a pass.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _strict() and report.skipped and not hasattr(report, "wasxfail"):
        _fail_skip(report, "at " + report.when)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if _strict() and report.skipped:  # a module-level importorskip skips the whole file
        _fail_skip(report, "while collecting")


def _tiny(keras):
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), name="image"),
            L.Conv2D(8, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(10, activation="softmax", name="probabilities"),
        ],
        name="tiny",
    )


@pytest.fixture(scope="session")
def tiny_preset():
    """Register a 13,610-parameter CNN as preset `tiny` (exporters rebuild presets by name for QAT)."""
    from fmnist_edge.models import PRESETS, Preset, Recipe

    PRESETS["tiny"] = Preset("tiny", "tests", 0.0, 13_610, Recipe(4, 64, "adam", 3e-3, 0.1), _tiny, "test model")
    yield "tiny"
    del PRESETS["tiny"]


@pytest.fixture(scope="session")
def tiny_run(tiny_preset, tmp_path_factory):
    from fmnist_edge.train import TrainConfig, train

    out = tmp_path_factory.mktemp("tiny") / "artifacts" / "tiny-run"
    train(TrainConfig(model="tiny", seed=0, limit=3000, out=str(out), download=False))
    return out


def int8_kernel_sparsity(path) -> dict:
    """{kernel shape: fraction of exact zeros} for every int8 weight tensor of rank >= 2 in a .tflite file."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    out = {}
    for t in it.get_tensor_details():
        if t["dtype"] == np.int8 and len(t["shape"]) >= 2 and not t["name"].startswith(("serving", "image")):
            try:
                w = it.get_tensor(t["index"])
            except ValueError:  # activations have no data outside invoke
                continue
            out[tuple(int(d) for d in t["shape"])] = float((w == 0).mean())
    return out


def copy_run(run: Path, dst: Path) -> Path:
    """A training run's model and manifests copied to `dst`, to export into or break without touching `run`."""
    dst.mkdir(parents=True)
    for name in ("model.keras", "manifest.json", "metrics.json"):
        shutil.copy(run / name, dst / name)
    return dst


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A fresh copy of the session's trained run under tmp_path/artifacts/run."""
    return copy_run(tiny_run, tmp_path / "artifacts" / "run")


MICRO_RELEASE = Path(__file__).parent / "fixtures" / "micro-release"
# What the base install (`pip install fmnist-edge`, as on a Raspberry Pi) lacks: the [train] extra's libraries.
BASE_INSTALL_LACKS = ("tensorflow", "keras", "tf_keras", "tensorflow_model_optimization", "tf2onnx", "onnx", "matplotlib")
BLOCK = f"import sys\nfor m in {BASE_INSTALL_LACKS!r}: sys.modules[m] = None\n"


def run_cli_without_tensorflow(*args: str) -> subprocess.CompletedProcess:
    """The real CLI in a fresh process where importing TensorFlow, Keras or tf2onnx fails (a device)."""
    code = BLOCK + f"sys.argv = ['fmnist-edge', *{list(args)!r}]\nfrom fmnist_edge.cli import app\napp()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def bench_result(tmp_path_factory):
    """`fmnist-edge bench` of the committed micro release without TensorFlow: (result, markdown, stdout)."""
    out = tmp_path_factory.mktemp("bench")
    proc = run_cli_without_tensorflow("bench", str(MICRO_RELEASE), "--runs", "20", "--warmup", "2", "--batch-size", "16",
                                      "--json", str(out / "b.json"), "--markdown", str(out / "b.md"),
                                      "--plot", str(out / "b.png"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((out / "b.json").read_text()), (out / "b.md").read_text(), proc.stdout
