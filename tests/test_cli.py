"""The command line through typer's test runner: help, clear errors for user mistakes, no TensorFlow at start-up."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from fmnist_edge import cli

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(cli.app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "models", "data"):
        assert command in result.output


def test_help_does_not_import_tensorflow():
    code = ("import sys; from typer.testing import CliRunner; from fmnist_edge.cli import app; "
            "r = CliRunner().invoke(app, ['train', '--help']); assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib', 'jax', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_models_table():
    result = runner.invoke(cli.app, ["models"])
    assert result.exit_code == 0
    assert "503,690" in result.output and "l2-vgg" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--model", "resnet"], "Unknown model 'resnet'"),
        (["train", "--epochs", "0"], "--epochs must be at least 1"),
        (["train", "--validation", "lots"], "--validation must be a fraction"),
        (["train", "--optimizer", "sgdx"], "--optimizer must be one of adam, rmsprop"),
    ],
)
def test_bad_options_give_clear_errors(args, message):
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_data_dir_is_a_clear_error(tmp_path):
    result = runner.invoke(cli.app, ["data", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "holds none of the Fashion-MNIST files" in result.output and "apt-get install" in result.output
    assert "Traceback" not in result.output


def test_data_command_verifies_the_real_files():
    result = runner.invoke(cli.app, ["data"], env={"FMNIST_DATA_DIR": "/usr/share/datasets/fashion-mnist"})
    assert result.exit_code == 0, result.output
    assert "checksums match" in result.output


def test_missing_train_extra_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "tensorflow" else real(name))
    result = runner.invoke(cli.app, ["train", "--limit", "100"])
    assert result.exit_code == 1
    assert "pip install 'fmnist-edge[train]'" in result.output


def test_train_quick_mode_end_to_end(tmp_path):
    pytest.importorskip("tensorflow")
    out = tmp_path / "run"
    result = runner.invoke(cli.app, ["train", "--model", "mlp", "--limit", "200", "--epochs", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "mlp" and manifest["data"]["limit"] == 200
    assert "Test accuracy" in result.output


def test_export_forces_the_tensorflow_backend(monkeypatch, tmp_path):
    # A shell left with KERAS_BACKEND=jax (after GPU training) must still export through TensorFlow.
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli.app, ["export", str(tmp_path / "missing-run")])
    assert result.exit_code == 1 and "no manifest.json" in result.output
    assert os.environ["KERAS_BACKEND"] == "tensorflow"
