"""What a user's terminal shows: `train`, `export` and `bench` print the project's own lines, not the libraries'
notices about themselves (oneDNN, the CUDA stub on a CPU-only machine, absl's pre-init warning, the MLIR
quantizer's `fully_quantize` line per int8 conversion), which users read as errors. `--verbose` keeps them.
Run as a user runs the installed command: a fresh process, no TF_CPP_MIN_LOG_LEVEL of our own in its environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FMNIST_EDGE = str(Path(sys.executable).parent / "fmnist-edge")
NOISE = ("oneDNN custom operations", "Could not find cuda drivers", "cudart_stub", "absl::InitializeLog",
         "fully_quantize", "I0000 ", "W0000 ")
USER_ENV = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "FMNIST_EDGE_VERBOSE")}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([FMNIST_EDGE, *args], capture_output=True, text=True, env=USER_ENV, timeout=600)


def noise_in(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if any(n in line for n in NOISE)]


@pytest.mark.slow
def test_train_export_and_bench_print_no_library_chatter_and_verbose_keeps_it(tmp_path):
    run_dir = tmp_path / "run"
    train = run("train", "--epochs", "1", "--limit", "2000", "--out", str(run_dir))
    assert train.returncode == 0, train.stderr
    assert "Test accuracy" in train.stdout and not noise_in(train), noise_in(train)
    # an int8 conversion (the quantizer's line) and a float one; a one-epoch model may be refused: that is exit 3
    export = run("export", str(run_dir), "--variant", "tflite-float32", "--variant", "tflite-int8", "--repair", "none")
    assert export.returncode in (0, 3), export.stderr
    assert "tflite-float32" in export.stdout and not noise_in(export), noise_in(export)
    bench = run("bench", str(run_dir), "--keras", "live", "--runs", "20", "--warmup", "2", "--out", str(tmp_path / "b"))
    assert bench.returncode in (0, 1), bench.stderr  # 1: the gate, when the int8 file was refused
    assert "tflite-float32" in bench.stdout and not noise_in(bench), noise_in(bench)
    # The same export with --verbose shows what was hidden (so the filter, not a quiet library, made the difference).
    loud = run("--verbose", "export", str(run_dir), "--variant", "tflite-int8", "--repair", "none", "--out",
               str(tmp_path / "loud"))
    assert any("fully_quantize" in line for line in noise_in(loud)), loud.stderr[-2000:]
