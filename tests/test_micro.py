"""Microcontroller path: TFLite Micro interpreter report and the C/C++ source export, on the micro release."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fmnist_edge import cli
from fmnist_edge import data as fdata
from fmnist_edge.errors import FmnistEdgeError
from fmnist_edge.micro import write_c_source
from runtime.variants import VARIANTS

RELEASE = Path(__file__).parent / "fixtures" / "micro-release"


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs a C++ compiler")
def test_c_source_compiles_and_holds_the_exact_model(tmp_path):
    header, source = write_c_source(RELEASE / "tflite-int8", tmp_path, "fmnist_model")
    (tmp_path / "main.cc").write_text(
        '#include <cstdio>\n#include "fmnist_model.h"\n'
        "int main() { fwrite(fmnist_model, 1, fmnist_model_len, stdout);\n"
        '  fprintf(stderr, "%g %d %g %d %s", FMNIST_MODEL_IN_SCALE, FMNIST_MODEL_IN_ZERO_POINT, FMNIST_MODEL_OUT_SCALE,\n'
        "          FMNIST_MODEL_OUT_ZERO_POINT, fmnist_model_class_names[9]);\n"
        "  return ((unsigned long)fmnist_model % 16) != 0; }\n")
    subprocess.run(["g++", "-std=c++17", "-o", str(tmp_path / "dump"), str(tmp_path / "main.cc"), str(source)],
                   check=True, cwd=tmp_path)
    out = subprocess.run([str(tmp_path / "dump")], capture_output=True, check=True)
    assert out.stdout == (RELEASE / "tflite-int8" / "model.tflite").read_bytes()  # 16-byte aligned, exact bytes
    in_scale, in_zp, out_scale, out_zp, last = out.stderr.decode().split(" ", 4)
    import runtime

    m = runtime.load(RELEASE / "tflite-int8").manifest
    assert float(in_scale) == pytest.approx(m["input"]["quantization"]["scale"], rel=1e-5)
    assert int(in_zp) == m["input"]["quantization"]["zero_point"] and int(out_zp) == m["output"]["quantization"]["zero_point"]
    assert float(out_scale) == pytest.approx(m["output"]["quantization"]["scale"], rel=1e-5) and last == "Ankle boot"


def test_c_source_refuses_float_models_and_bad_names(tmp_path):
    for variant in ("tflite-float32", "tflite-float16", "tflite-dynamic-int8", "onnx-int8"):
        with pytest.raises(FmnistEdgeError, match=r"full-integer int8 TFLite artifact \(tflite-int8, tflite-int8-qat, "
                                                  r"tflite-int8-pruned, tflite-int8-clustered\)"):
            write_c_source(RELEASE / variant, tmp_path)
    with pytest.raises(FmnistEdgeError, match="use a C identifier"):
        write_c_source(RELEASE / "tflite-int8", tmp_path, "3-bad name")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("variant", [v.name for v in VARIANTS.values() if v.full_integer])
def test_tflite_micro_report_matches_litert(tmp_path, variant):
    pytest.importorskip("tflite_micro", reason="optional extra `micro` (pip install --pre tflite-micro)")
    out = tmp_path / "micro.json"
    result = CliRunner().invoke(cli.app, ["micro", str(RELEASE / variant), "--test-images", "200", "--json", str(out)])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(out.read_text())
    assert report["runs_on_tflite_micro"] and report["images"] == 200
    assert report["agreement_with_litert"] >= 0.99  # reference kernels vs XNNPACK: at most rounding ties
    assert abs(report["accuracy"] - report["litert_accuracy"]) <= 0.01
    assert 0 < report["tensor_arena_bytes"] < 1_000_000
    assert report["flash_bytes"] == (RELEASE / variant / "model.tflite").stat().st_size and report["artifact"] == variant
    ds = fdata.load(download=False)
    assert np.bincount(ds.y_test[fdata.subset(ds.y_test, 200, 0)]).tolist() == [20] * 10


@pytest.mark.skipif(shutil.which("arm-none-eabi-g++") is None,
                    reason="needs gcc-arm-none-eabi (scripts/setup.sh installs it; CI always has it)")
@pytest.mark.parametrize("variant", ["tflite-int8", "tflite-int8-pruned"])
def test_c_source_compiles_for_a_cortex_m4_and_reports_its_flash_footprint(tmp_path, variant):
    result = CliRunner().invoke(cli.app, ["c-source", str(RELEASE / variant), "--out", str(tmp_path), "--cortex-m4"])
    assert result.exit_code == 0, result.output
    obj = tmp_path / "fmnist_model.cortex-m4.o"
    attrs = subprocess.run(["arm-none-eabi-readelf", "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    assert "Tag_CPU_arch: v7E-M" in attrs and "Tag_CPU_arch_profile: Microcontroller" in attrs and "Thumb-2" in attrs
    from fmnist_edge.micro import compile_for_cortex_m4

    fp = compile_for_cortex_m4(tmp_path / "fmnist_model.cc")
    model_bytes = (RELEASE / variant / "model.tflite").stat().st_size
    # the model array (16-byte aligned) plus the class names and the length, all in flash; nothing in RAM
    assert model_bytes <= fp["flash_bytes"] <= model_bytes + 512 and fp["ram_bytes"] == 0
    assert f"{fp['flash_bytes']:,} bytes of flash" in result.output.replace("\n", " ")
