"""bench, verify and predict on the committed micro release (no TensorFlow needed), through the real CLI."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import run_cli_without_tensorflow
from fmnist_edge import cli, report
from fmnist_edge.bench import ARTIFACT_DIRS
from fmnist_edge.cpumatrix import EMULATED_FLOAT_IMAGES, float_subset
from runtime import manifest as rmf
from runtime.verify import verify as verify_artifact
from runtime.variants import VARIANTS as REGISTRY

RELEASE = Path(__file__).parent / "fixtures" / "micro-release"
VARIANTS = list(REGISTRY)  # the fixture holds every registered variant
runner = CliRunner()


def test_bench_without_tensorflow_covers_every_artifact(bench_result):
    result, md, stdout = bench_result
    rows = {r["name"]: r for r in result["rows"]}
    assert list(rows) == ["keras", *VARIANTS]
    assert rows["keras"]["kind"] == "keras-recorded" and result["method"]["keras"] == "recorded"
    assert all(rows[v]["status"] == "ok" for v in VARIANTS)
    assert result["test_images"] == 1000 and result["method"]["threads"] == 1
    for v in VARIANTS:
        lat = rows[v]["latency"]
        assert lat["runs"] == 20 and 0 < lat["p50_us"] <= lat["p90_us"] <= lat["p99_us"]
        assert lat["load_ms"] > 0 and lat["first_inference_ms"] > 0 and lat["runtime_overhead_p50"] > 0
        assert set(rows[v]["throughput"]) == {"16"}
    assert re.search(r"\| tflite-int8( ★)? \|", md) and "tflite-int8-qat" in stdout


def test_bench_accuracy_equals_what_export_recorded(bench_result):
    # Same images, same runtime code: bench must reproduce the export's own fidelity numbers exactly
    # (the Keras side is the float16 recording, so agreement may differ only on float16-rounding ties).
    result, _, _ = bench_result
    rows = {r["name"]: r for r in result["rows"]}
    for v in VARIANTS:
        fid = rmf.read(RELEASE / v / "manifest.json")["fidelity"]
        assert rows[v]["metrics"]["accuracy"] == pytest.approx(fid["accuracy"], abs=1e-12)
        assert rows[v]["metrics"]["agreement"] == pytest.approx(fid["agreement_with_keras"], abs=0.002)
    assert rows["keras"]["metrics"]["accuracy"] == pytest.approx(fid["keras_accuracy"], abs=0.002)


def test_gating_names_the_offending_rows(bench_result):
    result, _, _ = bench_result
    bad = report.gate(result, max_drop=None, min_agreement=1.0)
    int8 = {v for v in VARIANTS if "int8" in v}
    offenders = {line.split(":")[0] for line in bad}
    expected = {r["name"] for r in result["rows"] if r["kind"] == "artifact" and r["metrics"]["agreement"] < 1.0}
    assert offenders == expected and expected <= int8 and expected
    assert report.gate(result, max_drop=100.0, min_agreement=0.0) == []


def test_bench_gating_exit_code_through_the_cli(tmp_path):
    proc = run_cli_without_tensorflow("bench", str(RELEASE), "--variant", "tflite-int8", "--runs", "10",
                                      "--warmup", "0", "--batch-size", "8", "--min-agreement", "1.0",
                                      "--json", str(tmp_path / "b.json"), "--markdown", str(tmp_path / "b.md"),
                                      "--plot", str(tmp_path / "b.png"))
    assert proc.returncode == 1
    assert "gating failed" in proc.stderr and "tflite-int8: agreement" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_verify_passes_on_the_release_without_tensorflow():
    proc = run_cli_without_tensorflow("verify", str(RELEASE))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASS") == len(VARIANTS)


def test_a_release_exported_before_the_keras_outputs_rename_still_verifies_and_benches(tmp_path):
    # Releases made before keras-outputs/ was named so hold the same files in reference/: still read, not rewritten.
    import shutil

    old = tmp_path / "old-release"
    shutil.copytree(RELEASE, old)
    (old / "keras-outputs").rename(old / "reference")
    proc = run_cli_without_tensorflow("verify", str(old))
    assert proc.returncode == 0 and proc.stdout.count("PASS") == len(VARIANTS), proc.stdout + proc.stderr
    proc = run_cli_without_tensorflow("bench", str(old), "--variant", "tflite-int8", "--runs", "10", "--warmup", "0",
                                      "--batch-size", "8", "--no-compute-floor", "--out", str(tmp_path / "bench"))
    assert proc.returncode == 0 and (tmp_path / "bench" / "bench.json").is_file(), proc.stdout + proc.stderr
    assert not (old / "keras-outputs").exists()


def test_verify_fails_loudly_when_the_device_computes_differently(tmp_path):
    # Simulate a device whose int8 kernels differ: the recorded export-time outputs no longer match.
    release = tmp_path / "release"
    shutil.copytree(RELEASE, release)
    art = release / "tflite-int8"
    expected = np.load(art / "golden_outputs.npy")
    np.save(art / "golden_outputs.npy", np.roll(expected, 1, axis=1))
    m = json.loads((art / "manifest.json").read_text())
    m["golden_outputs"]["sha256"] = rmf.sha256_file(art / "golden_outputs.npy")
    (art / "manifest.json").write_text(json.dumps(m))
    result = runner.invoke(cli.app, ["verify", str(release)])
    assert result.exit_code == 1
    assert "tflite-int8: top-1 agreement with the export-time outputs" in result.output
    assert "Likely causes" in result.output and result.output.count("PASS") == len(VARIANTS) - 1
    assert "x86-64" in result.output or "arm64" in result.output  # bench/verify name the CPU class


def _drift_golden(release, variant: str, steps: float) -> np.ndarray:
    """Move each recorded golden output's least likely class by `steps` output steps (1/256 for int8 softmax),
    keeping every top-1 as it was; returns the new recorded outputs."""
    art = release / variant
    expected = np.load(art / "golden_outputs.npy")
    step = rmf.read(art / "manifest.json")["output"]["quantization"]["scale"]
    drifted = expected.copy()
    rows = np.arange(len(drifted))
    drifted[rows, expected.argmin(1)] += np.float32(steps * step)
    assert (drifted.argmax(1) == expected.argmax(1)).all()
    np.save(art / "golden_outputs.npy", drifted)
    m = json.loads((art / "manifest.json").read_text())
    m["golden_outputs"]["sha256"] = rmf.sha256_file(art / "golden_outputs.npy")
    (art / "manifest.json").write_text(json.dumps(m))
    return drifted


@pytest.mark.parametrize("steps, passes", [(2.0, False), (0.5, True)])
def test_verify_holds_int8_outputs_to_one_output_step_even_when_top1_agrees(tmp_path, steps, passes):
    # Same top-1 on every image, so only the probability half of the contract can catch this drift.
    release = tmp_path / "release"
    shutil.copytree(RELEASE, release)
    _drift_golden(release, "tflite-int8", steps)
    result = verify_artifact(release / "tflite-int8")
    assert result.agreement_with_export == 1.0
    assert result.passed is passes, result.problems
    if not passes:
        assert any("max |probability difference| vs export-time outputs" in p for p in result.problems)
        assert result.max_abs_diff_vs_export == pytest.approx(2.0 / 256, rel=0.02)


def test_verify_refuses_a_tampered_model(tmp_path):
    art = tmp_path / "release"
    shutil.copytree(RELEASE, art)
    model = art / "onnx-int8" / "model.onnx"
    model.write_bytes(model.read_bytes()[:-10])
    result = runner.invoke(cli.app, ["verify", str(art / "onnx-int8")])
    assert result.exit_code == 1 and "does not match the manifest" in result.output and "Traceback" not in result.output


# --- predict on real pictures ---

from PIL import Image as PIL  # noqa: E402  (a base dependency: missing, this fails loudly)


def golden_images(n=10):
    g = np.load(RELEASE / "keras-outputs" / "golden.npz")
    return g["images"][:n], g["labels"][:n]


def test_predict_on_png_scans_matches_the_runtime(tmp_path):
    import runtime

    images, _ = golden_images()
    paths = []
    for i, img in enumerate(images):
        # As a user would photograph it: dark garment on white paper, larger than 28x28.
        big = PIL.fromarray(255 - img).resize((112, 112), PIL.Resampling.NEAREST)
        paths.append(tmp_path / f"img{i}.png")
        big.save(paths[-1])
    result = runner.invoke(cli.app, ["predict", *map(str, paths), "--model", str(RELEASE / "tflite-float32"), "--top-k", "2"])
    assert result.exit_code == 0, result.output
    clf = runtime.load(RELEASE / "tflite-float32")
    from runtime.images import load_image

    preprocessed = np.stack([load_image(p) for p in paths])
    # Negated, trimmed and fitted back to 28x28: the garment where it was, its pixels close (the conversion sharpens
    # again what the dataset already sharpened: 16.6 grey levels apart on average when written).
    for got, want in zip(preprocessed, images):
        for axis in (0, 1):
            g, w = np.flatnonzero(got.max(axis) > 0), np.flatnonzero(want.max(axis) > 0)
            assert abs(g[0] - w[0]) <= 1 and abs(g[-1] - w[-1]) <= 1
    assert np.abs(preprocessed.astype(int) - images.astype(int)).mean() < 20
    assert (clf.predict(preprocessed) == clf.predict(images)).mean() >= 0.9
    for path, pred in zip(paths, clf.predict(preprocessed)):
        line = next(line for line in result.output.splitlines() if str(path.name) in line)
        assert clf.class_names[pred] in line


def test_image_preprocessing_keeps_aspect_and_handles_modes(tmp_path):
    from runtime.images import NoGarmentError, load_image

    wide = np.full((60, 120), 250, np.uint8)
    wide[5:55, 10:110] = 30  # a dark 2:1 garment on white paper
    PIL.fromarray(wide).save(tmp_path / "wide.png")
    out = load_image(tmp_path / "wide.png")
    assert out.shape == (28, 28) and out.dtype == np.uint8
    rows = np.flatnonzero(out.max(1) > 0)  # trimmed, fitted to 28 wide, 14 high, centred: aspect kept
    assert (rows[0], rows[-1]) == (7, 20) and out[:, 0].max() > 200 and out[:, -1].max() > 200, rows
    rgba = PIL.new("RGBA", (40, 40), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (12, 5, 28, 35))  # a black 16x30 garment on a transparent background
    rgba.save(tmp_path / "rgba.png")
    out = load_image(tmp_path / "rgba.png")
    assert out[14, 14] > 200 and out[14, 0] == 0  # composited on white, negated: light garment, dark ground
    # 16-bit: scaled by value (v / 257, as browsers decode it), so it reads as its 8-bit twin.
    PIL.fromarray(wide.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    assert PIL.open(tmp_path / "deep.png").mode.startswith("I")
    assert np.abs(load_image(tmp_path / "deep.png").astype(int) - load_image(tmp_path / "wide.png")).max() <= 1
    rgba.convert("P").save(tmp_path / "palette.png")
    assert np.array_equal(load_image(tmp_path / "palette.png"), load_image(tmp_path / "rgba.png"))
    frames = [PIL.fromarray(wide), PIL.new("L", (120, 60), 255)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert np.array_equal(load_image(tmp_path / "anim.gif"), load_image(tmp_path / "wide.png"))  # the first frame
    assert np.array_equal(load_image((tmp_path / "wide.png").read_bytes()), load_image(tmp_path / "wide.png"))
    for blank in (PIL.new("RGB", (300, 400), (240, 236, 228)),  # a plain wall, a black frame, sensor noise only
                  PIL.new("L", (64, 64), 0),
                  PIL.fromarray(np.random.default_rng(0).normal(200, 3, (480, 640, 3)).clip(0, 255).astype(np.uint8))):
        buf = io.BytesIO()
        blank.save(buf, "PNG")
        with pytest.raises(NoGarmentError, match="no garment found"):
            load_image(buf.getvalue())


@pytest.mark.parametrize("name, content, message", [
    ("notes.png", b"this is text, not a picture", "not a readable image"),
    ("empty.jpg", b"", "not a readable image"),
])
def test_predict_rejects_non_images(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    result = runner.invoke(cli.app, ["predict", str(tmp_path / name), "--model", str(RELEASE / "tflite-int8")])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_predict_refuses_decompression_bombs(tmp_path):
    PIL.new("1", (12000, 11000)).save(tmp_path / "bomb.png")  # 132 Mpx, tiny file
    result = runner.invoke(cli.app, ["predict", str(tmp_path / "bomb.png"), "--model", str(RELEASE / "tflite-int8")])
    assert result.exit_code == 1 and ("decompression bomb" in result.output or "pixel limit" in result.output)


def test_bench_on_a_test_subset_uses_matching_recorded_outputs(tmp_path):
    from fmnist_edge.bench import BenchConfig, run_bench

    result = run_bench(RELEASE, BenchConfig(runs=10, warmup=0, batch_sizes=(4,), variants=("tflite-float32",),
                                            keras="recorded", test_images=200)).to_dict()
    rows = {r["name"]: r for r in result["rows"]}
    assert result["test_images"] == 200
    # float32 artifact vs the float16 recording of the same images: only float16 rounding apart.
    assert rows["tflite-float32"]["metrics"]["max_abs_diff"] < 1e-3


def test_bench_json_schema(bench_result):
    result, _, _ = bench_result
    assert result["schema_version"] == 1 and result["model"] == "micro"
    assert set(result["method"]) >= {"threads", "latency_batch", "warmup", "runs", "throughput_batches", "keras",
                                     "timer", "percentiles", "peak_gflops_float32_matmul", "flops_per_image"}
    assert set(result["host"]) >= {"machine", "cpu", "cpu_count", "system", "python", "class", "features"}
    from fmnist_edge.host import cpu_features

    assert result["host"]["features"] == cpu_features()
    assert result["versions"]["numpy"] and result["versions"]["ai-edge-litert"] and result["versions"]["onnxruntime"]
    for row in result["rows"]:
        assert set(row) == {"name", "kind", "status", "reason", "format", "file_bytes", "compressed_bytes", "metrics",
                            "latency", "throughput", "extra"}
        assert row["kind"] in ("keras-live", "keras-recorded", "artifact") and row["status"] in ("ok", "error")
    artifact = next(r for r in result["rows"] if r["name"] == "tflite-int8")
    assert len(artifact["metrics"]["per_class_recall_delta_points"]) == 10
    # A float32 matmul peak is a floor for float rows only; int8 rows get none.
    assert artifact["extra"]["flops_per_image"] > 0 and "compute_floor_us" not in artifact["extra"]
    assert next(r for r in result["rows"] if r["name"] == "tflite-float32")["extra"]["compute_floor_us"] > 0
    json.dumps(result, allow_nan=False)  # strict JSON: no NaN sneaks in


def test_cpu_matrix_on_native_and_emulated_x86(tmp_path):
    proc = run_cli_without_tensorflow("verify", str(RELEASE), "--cpu-matrix", "--cpus", "native,Haswell-v4",
                                      "--json", str(tmp_path / "matrix.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    matrix = json.loads((tmp_path / "matrix.json").read_text())
    assert list(matrix["cpus"]) == ["native", "Haswell-v4"] and matrix["host"]["class"]
    golden = len(np.load(RELEASE / "keras-outputs" / "golden.npz")["labels"])
    assert golden > EMULATED_FLOAT_IMAGES  # else the subset would be the whole set and prove nothing here
    for cpu in ("native", "Haswell-v4"):
        assert set(matrix["results"][cpu]) == set(VARIANTS)
        for v, cell in matrix["results"][cpu].items():
            assert cell["passed"] and cell["agreement"] == 1.0 and cell["max_abs_diff"] <= cell["tolerance"], (cpu, v)
            # int8 kernels (which differ per instruction set) on every golden image, everywhere; float kernels on
            # a spread-out subset under emulation only.
            full = cpu == "native" or REGISTRY[v].int8_kernels
            assert cell["images"] == (golden if full else EMULATED_FLOAT_IMAGES), (cpu, v, cell["images"])
    assert "native: " in proc.stdout and "✓" in proc.stdout


def test_emulated_cpus_detect_themselves_whatever_kernel_the_host_pins(tmp_path, monkeypatch):
    """A machine that pins OpenBLAS's kernels for its own CPU (OPENBLAS_CORETYPE=Haswell) must not hand that to an
    emulated Nehalem: numpy's import runs AVX2 code there and dies of SIGILL, failing every cell."""
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    proc = run_cli_without_tensorflow("verify", str(RELEASE), "--cpu-matrix", "--cpus", "Nehalem-v1",
                                      "--json", str(tmp_path / "matrix.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cells = json.loads((tmp_path / "matrix.json").read_text())["results"]["Nehalem-v1"]
    assert set(cells) == set(VARIANTS) and all(c["passed"] and c["agreement"] == 1.0 for c in cells.values())


def test_cpu_matrix_fails_naming_the_artifact_and_cpu(tmp_path):
    release = tmp_path / "release"
    shutil.copytree(RELEASE, release)
    art = release / "onnx-int8"
    np.save(art / "golden_outputs.npy", np.roll(np.load(art / "golden_outputs.npy"), 1, axis=1))
    m = json.loads((art / "manifest.json").read_text())
    m["golden_outputs"]["sha256"] = rmf.sha256_file(art / "golden_outputs.npy")
    (art / "manifest.json").write_text(json.dumps(m))
    result = runner.invoke(cli.app, ["verify", str(release), "--cpu-matrix", "--cpus", "native"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "the CPU matrix failed" in result.output and "onnx-int8 on native: top-1 agreement" in result.output
    assert "tflite-int8 on native" not in result.output


def test_matrix_columns_run_two_at_a_time_in_order_and_arm64_ones_one_at_a_time(monkeypatch):
    """Columns run in two lanes (CI's two cores), results in the CPUs' order; the arm64 probes share one sysroot
    (its /proc/cpuinfo names the CPU), so probe() never lets two of them overlap."""
    import subprocess
    import threading
    import time

    from fmnist_edge import cpumatrix

    running, peak, arm_overlap, lock = set(), [0], [False], threading.Lock()

    def fake_run(cmd, **kwargs):  # stands in for the emulator process: records who runs alongside whom
        cpu, images, out, n_artifacts = cmd[0], cmd[3], cmd[4], len(cmd) - 5
        with lock:
            running.add(cpu)
            peak[0] = max(peak[0], len(running))
            arm_overlap[0] |= len(running & set(cpumatrix.ARM_CPUS)) > 1
        time.sleep(0.2)
        with lock:
            running.discard(cpu)
        n = len(np.load(images))
        np.savez(out, **{f"out{i}": np.full((n, 10), 0.1, np.float32) for i in range(n_artifacts)})
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(cpumatrix, "probe_command", lambda cpu: ([cpu], {}))
    monkeypatch.setattr(cpumatrix.subprocess, "run", fake_run)
    monkeypatch.setattr(cpumatrix.os, "cpu_count", lambda: 2)
    cpus = ["cortex-a72", "cortex-a76", "Nehalem-v1", "Haswell-v4"]  # the two arm64 rows would start together
    shapes = cpumatrix._in_lanes(lambda c: cpumatrix.probe(c, ["a", "b"], np.zeros((3, 28, 28), np.uint8))[1].shape, cpus)
    assert shapes == [(3, 10)] * 4 and peak[0] == 2 and not arm_overlap[0]
    assert cpumatrix._in_lanes(lambda x: (time.sleep(0.05 * (3 - x)), x)[1], [0, 1, 2, 3]) == [0, 1, 2, 3]
    with pytest.raises(ZeroDivisionError):  # a failing column is not swallowed
        cpumatrix._in_lanes(lambda x: 1 / x, [1, 0, 2])


def test_float_subset_spreads_over_the_golden_set():
    idx = float_subset(300)
    assert len(idx) == EMULATED_FLOAT_IMAGES and idx[0] == 0 and idx[-1] == 299 and np.all(np.diff(idx) > 0)
    assert list(float_subset(10)) == list(range(10))  # a small set is run whole


@pytest.mark.parametrize("args, message", [
    (["--cpus", "pentium"], "--cpus: unknown 'pentium'"),
    (["--cpus", "cortex-a72"], "cortex-a72: no arm64 sysroot in"),
    (["--json", "/nonexistent/dir/m.json"], "directory /nonexistent/dir does not exist"),
])
def test_cpu_matrix_errors_are_actionable(tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("ARM64_CACHE", str(tmp_path / "empty"))
    result = runner.invoke(cli.app, ["verify", str(RELEASE), "--cpu-matrix", *args])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("features, expected", [
    (["sse4_2", "avx", "fma", "avx2", "avx512f", "avx512_vnni"], "x86-64 AVX-512 VNNI"),
    (["sse4_2", "avx", "fma", "avx2", "avx512f", "avx512_vnni", "amx_int8"], "x86-64 AVX-512 VNNI + AMX"),
    (["sse4_2", "avx", "fma", "avx2"], "x86-64 AVX2, no VNNI"),
    (["sse4_2", "avx", "fma", "avx2", "avx_vnni"], "x86-64 AVX2, AVX-VNNI"),
    (["sse4_2"], "x86-64 SSE4.2, no AVX2"),
    (["asimd"], "arm64 NEON, no dot product"),
    (["asimd", "asimddp", "i8mm", "sve"], "arm64 with dot product + SVE"),
])
def test_cpu_class_names_what_int8_kernels_depend_on(features, expected):
    from fmnist_edge.host import cpu_class

    assert cpu_class(features) == expected


def test_bench_profile_splits_batch1_time_per_op_for_both_formats_without_tensorflow(tmp_path):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    out = tmp_path / "profile.json"
    proc = run_cli_without_tensorflow("bench", str(RELEASE), "--profile", "--variant", "tflite-int8", "--variant",
                                      "onnx-float32", "--runs", "60", "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    by_variant = {a["variant"]: a for a in result["artifacts"]}
    assert set(by_variant) == {"tflite-int8", "onnx-float32"} and result["host"]["class"]
    tfl = by_variant["tflite-int8"]
    # one row per op of the file, in its execution order (read here with the raw interpreter, no delegate)
    it = Interpreter(model_path=str(RELEASE / "tflite-int8" / "model.tflite"),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    file_ops = [op["op_name"] for op in it._get_ops_details()]
    assert [o["op"] for o in tfl["ops"][:-1]] == file_ops and tfl["ops"][-1]["op"] == "(sum of ops)"
    it.allocate_tensors()
    first = it._get_ops_details()[0]
    shapes = {t["index"]: list(t["shape"]) for t in it.get_tensor_details()}
    out_shape, kernel = shapes[first["outputs"][0]], shapes[first["inputs"][1]]  # NHWC out, (C_out, kh, kw, C_in)
    conv = tfl["ops"][0]  # every output element is kh * kw * C_in multiply-adds
    assert conv["op"] == "CONV_2D" and conv["shape"][1:] == out_shape[1:]
    assert conv["mflop"] == pytest.approx(2 * np.prod(out_shape[1:]) * np.prod(kernel[1:]) / 1e6)
    assert sum(o["us"] for o in tfl["ops"][:-1]) == pytest.approx(tfl["ops"][-1]["us"]) and tfl["whole_us"] > 0
    onnx = by_variant["onnx-float32"]
    assert "Conv" in [o["op"] for o in onnx["ops"]] and "onnxruntime profiler" in onnx["method"]
    assert 0 < onnx["ops"][-1]["share"] <= 1.05  # the nodes' kernel time is part of each model_run
    # Weight shapes come from ONNX Runtime itself (the base install has no `onnx` package, and the test blocks it):
    # the ONNX file's conv and dense MFLOP add up to the TFLite file's, the same model.
    mflop = {v: sum(o.get("mflop") or 0 for o in a["ops"][:-1]) for v, a in by_variant.items()}
    assert mflop["onnx-float32"] > 0 and mflop["onnx-float32"] == pytest.approx(mflop["tflite-int8"], rel=1e-6)
    assert "cumulative prefixes" in proc.stdout and "MFLOP/s" in proc.stdout


def test_bench_profile_runs_every_variant_never_negative_and_skips_a_broken_one_with_its_reason(tmp_path):
    """Every variant of a release profiles (float16's weight DEQUANTIZE ops, which XNNPACK cannot run as a cut-off
    model, are counted in the next op), no op time is negative, each TFLite table says its noise floor, and a
    file that cannot be loaded is skipped with the reason while the others are still profiled."""
    release = tmp_path / "release"
    shutil.copytree(RELEASE, release)
    (release / "tflite-int8-web" / "model.tflite").write_bytes(b"TFL3 truncated")
    out = tmp_path / "profile.json"
    proc = run_cli_without_tensorflow("bench", str(release), "--profile", "--runs", "20", "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    profiled = {a["variant"]: a for a in result["artifacts"]}
    assert set(profiled) | set(result["skipped"]) == set(ARTIFACT_DIRS) and list(result["skipped"]) == ["tflite-int8-web"]
    assert "does not match the manifest" in result["skipped"]["tflite-int8-web"]
    for variant, a in profiled.items():
        assert all(o["us"] >= 0 for o in a["ops"]), variant
        if a["format"] == "tflite":
            assert a["noise_floor_us"] >= 0 and a["ops"][-1]["us"] == pytest.approx(sum(o["us"] for o in a["ops"][:-1]))
    f16 = profiled["tflite-float16"]["ops"]
    folded = [o for o in f16 if o["op"] == "DEQUANTIZE"]
    assert folded and all(o["us"] == 0 and "next op" in o["note"] for o in folded)
    assert "includes the" in next(o for o in f16 if o["op"] != "DEQUANTIZE")["note"]


@given(st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=40))
def test_profile_prefix_times_are_made_non_decreasing_keeping_their_sum(values):
    from fmnist_edge.op_profile import monotone

    fitted = monotone(values)
    assert len(fitted) == len(values) and all(b >= a - 1e-9 for a, b in zip(fitted, fitted[1:]))
    assert sum(fitted) == pytest.approx(sum(values), rel=1e-9, abs=1e-6)  # least squares keeps the mean
    if values == sorted(values):
        assert fitted == pytest.approx(values)


def test_arm64_bench_gate_compares_each_variant_with_the_hosts_bench(tmp_path):
    """scripts/arm64_check.sh's gate (scripts/same_accuracy.py): the emulated Pi bench must give every variant the
    host's accuracy, agreement and flipped images on the same test images; one flipped image or a missing variant fails."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    host = json.loads((root / "artifacts" / "reference" / "bench.json").read_text())
    same, other, fewer = (tmp_path / n for n in ("same.json", "other.json", "fewer.json"))
    same.write_text(json.dumps(host))
    changed = json.loads(json.dumps(host))
    row = next(r for r in changed["rows"] if r["name"] == "tflite-int8")
    row["metrics"]["flipped_indices"] = row["metrics"]["flipped_indices"] + [9999]
    other.write_text(json.dumps(changed))
    fewer.write_text(json.dumps({**host, "rows": [r for r in host["rows"] if r["name"] != "onnx-int8"]}))

    def gate(path):
        return subprocess.run([sys.executable, str(root / "scripts" / "same_accuracy.py"), str(same), str(path)],
                              capture_output=True, text=True)

    assert gate(same).returncode == 0
    bad = gate(other)
    assert bad.returncode == 1 and "tflite-int8: flipped_indices" in bad.stderr
    missing = gate(fewer)
    assert missing.returncode == 1 and "onnx-int8: missing on one side" in missing.stderr
