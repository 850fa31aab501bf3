"""The shipped `edge` release (artifacts/edge/) against issue 12's budget, measured here on the files
themselves: compute, int8 file size, TFLite Micro arena, int8 accuracy next to the float model, and the
generated C source compiled for a Cortex-M4."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fmnist_edge import cli
from fmnist_edge import data as fdata

EDGE = Path(__file__).resolve().parents[1] / "artifacts" / "edge"
FLASH_BUDGET = 64 * 1024
ARENA_BUDGET = 32 * 1024


def test_the_edge_model_costs_at_most_5_mflop_and_is_the_preset():
    import keras

    from fmnist_edge.models import build, flops_per_image, get_preset, preset_name_of_run

    model = keras.saving.load_model(EDGE / "model.keras", compile=False)
    assert model.count_params() == get_preset("edge").params == 43_930
    assert flops_per_image(model) <= 5_000_000
    manifest = json.loads((EDGE / "manifest.json").read_text())  # trained as `edge-full-conv`, edge's earlier name
    assert preset_name_of_run(manifest["model"], manifest["params"]) == "edge"
    preset = build("edge")
    assert [type(x).__name__ for x in model.layers] == [type(x).__name__ for x in preset.layers]
    assert [w.shape for w in model.weights] == [w.shape for w in preset.weights]


@pytest.mark.parametrize("variant", ["tflite-int8", "tflite-int8-qat"])
def test_int8_fits_the_flash_budget_and_stays_within_0_2_points_of_float(variant):
    import runtime

    ds = fdata.load(download=False)
    clf = runtime.load(EDGE / variant)
    assert (EDGE / variant / "model.tflite").stat().st_size <= FLASH_BUDGET
    accuracy = float(np.mean(clf.predict(ds.x_test) == ds.y_test))  # all 10,000 test images
    keras_accuracy = json.loads((EDGE / "manifest.json").read_text())["test_accuracy"]
    assert abs(accuracy - keras_accuracy) <= 0.002, (accuracy, keras_accuracy)


def test_tflite_micro_runs_it_within_the_arena_budget(tmp_path):
    pytest.importorskip("tflite_micro", reason="optional extra `micro` (pip install --pre tflite-micro)")
    out = tmp_path / "micro.json"
    result = CliRunner().invoke(cli.app, ["micro", str(EDGE / "tflite-int8"), "--test-images", "500", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["runs_on_tflite_micro"] and report["tensor_arena_bytes"] <= ARENA_BUDGET
    assert report["flash_bytes"] <= FLASH_BUDGET and report["agreement_with_litert"] >= 0.99
    assert report["accuracy"] >= 0.9  # 500 class-balanced test images on the reference kernels


@pytest.mark.skipif(shutil.which("arm-none-eabi-g++") is None,
                    reason="needs gcc-arm-none-eabi (scripts/setup.sh installs it; CI always has it)")
def test_its_c_source_compiles_for_a_cortex_m4_within_64_kib_of_flash(tmp_path):
    from fmnist_edge.micro import compile_for_cortex_m4

    shipped = EDGE / "tflite-int8" / "c" / "fmnist_model.cc"
    assert shipped.is_file(), "the release ships its C source (fmnist-edge export --c-source)"
    source = tmp_path / shipped.name
    shutil.copy(shipped, source)
    shutil.copy(shipped.with_suffix(".h"), tmp_path)
    fp = compile_for_cortex_m4(source)
    attrs = subprocess.run(["arm-none-eabi-readelf", "-A", fp["object"]], capture_output=True, text=True, check=True).stdout
    assert "Tag_CPU_arch: v7E-M" in attrs and "Tag_CPU_arch_profile: Microcontroller" in attrs
    model_bytes = (EDGE / "tflite-int8" / "model.tflite").stat().st_size
    assert model_bytes <= fp["flash_bytes"] <= FLASH_BUDGET and fp["ram_bytes"] == 0
