"""The TensorFlow-free runtime: import boundary, manifests, quantization, input validation, tamper detection."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import runtime
from conftest import int8_kernel_sparsity
from runtime import manifest as rmf
from runtime.errors import ManifestError, RuntimeArtifactError


def test_runtime_imports_with_training_stack_blocked():
    code = ("import sys\n"
            "for m in ('tensorflow', 'keras', 'tf_keras', 'tf2onnx', 'fmnist_edge', 'exporters'): sys.modules[m] = None\n"
            "import runtime, runtime.backends, runtime.classifier, runtime.manifest, runtime.variants, runtime.compare, "
            "runtime.weights, runtime.verify\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, st.integers(1, 50), elements=st.floats(0, 1, width=32)),
       st.floats(1e-4, 0.1), st.integers(-128, 127))
def test_quantize_dequantize_round_trip(x, scale, zero_point):
    q = runtime.quantize(x, scale, zero_point)
    assert q.dtype == np.int8
    back = runtime.dequantize(q, scale, zero_point)
    representable = (x / scale + zero_point >= -128.5) & (x / scale + zero_point <= 127.5)
    # Within range, the error is at most half a quantization step (plus float32 rounding).
    np.testing.assert_array_less(np.abs(back - x)[representable], scale * 0.5 + 1e-6)


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((2, 28, 27), np.uint8), r"shape \(N, 28, 28\)"),
        (np.zeros((2, 28, 28, 3), np.uint8), r"shape \(N, 28, 28\)"),
        (np.zeros((0, 28, 28), np.uint8), "empty batch"),
        (np.full((1, 28, 28), np.nan, np.float32), "NaN"),
        (np.full((1, 28, 28), 255.0, np.float32), r"must be in \[0, 1\]"),
        (np.zeros((1, 28, 28), np.int64), "dtype int64"),
    ],
)
def test_bad_input_gets_a_value_error(images, message):
    with pytest.raises(ValueError, match=message):
        runtime.to_float_images(images)


def test_uint8_and_float_inputs_are_equivalent():
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(runtime.to_float_images(x), runtime.to_float_images(x.astype(np.float32) / 255))
    assert runtime.to_float_images(x[0]).shape == (1, 28, 28, 1)


VALID = {
    "schema_version": 1, "variant": "tflite-int8", "format": "tflite",
    "file": {"path": "model.tflite", "sha256": "0" * 64, "bytes": 10},
    "input": {"name": "image", "shape": [None, 28, 28, 1], "dtype": "int8",
              "quantization": {"scale": 0.0039, "zero_point": -128}},
    "output": {"name": "probabilities", "shape": [None, 10], "dtype": "int8",
               "quantization": {"scale": 0.0039, "zero_point": -128}},
    "preprocessing": {}, "class_names": [str(i) for i in range(10)],
}


def test_manifest_round_trip(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(VALID))
    assert rmf.read(tmp_path / "manifest.json") == VALID


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda m: m.update(schema_version=99), "schema_version 99 is not supported"),
        (lambda m: m.pop("variant"), "'variant' is missing"),
        (lambda m: m.update(format="pt"), "format must be one of"),
        (lambda m: m.update(class_names=["a"]), "class_names must be 10 strings"),
        (lambda m: m["input"].update(quantization={"scale": -1.0, "zero_point": 0}), "scale must be a finite positive number"),
        (lambda m: m["file"].update(bytes="10"), "needs path"),
        (lambda m: m.update(schema_version=True), "must be int"),
    ],
)
def test_manifest_rejects(mutate, message):
    m = copy.deepcopy(VALID)
    mutate(m)
    with pytest.raises(ManifestError, match=message):
        rmf.validate(m)


def test_manifest_invalid_json(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        rmf.read(tmp_path / "manifest.json")


@pytest.mark.parametrize("path", ["../model.tflite", "/etc/passwd", "sub/../../x"])
def test_manifest_file_path_may_not_escape(tmp_path, path):
    m = copy.deepcopy(VALID)
    m["file"]["path"] = path
    with pytest.raises(ManifestError, match="inside the artifact directory"):
        rmf.model_path(m, tmp_path)


def test_manifest_file_symlink_is_refused(tmp_path):
    (tmp_path / "outside.tflite").write_bytes(b"x")
    art = tmp_path / "art"
    art.mkdir()
    (art / "model.tflite").symlink_to(tmp_path / "outside.tflite")
    with pytest.raises(ManifestError, match="outside the artifact directory"):
        rmf.model_path(VALID, art)


# --- on real exported artifacts (needs TensorFlow to produce them) ---

@pytest.fixture(scope="module")
def artifacts(tiny_run, tmp_path_factory):
    pytest.importorskip("tensorflow")
    from rich.console import Console

    from exporters.pipeline import ExportConfig, export_run

    out = tmp_path_factory.mktemp("rt")
    export_run(tiny_run, ExportConfig(variants=("tflite-int8", "onnx-float32"), calibration_images=100, out=str(out)),
               Console(quiet=True))
    return out


def test_load_from_dir_manifest_or_file_gives_the_same_result(artifacts):
    x = np.load(artifacts / "keras-outputs" / "golden.npz")["images"][:20]
    a = runtime.load(artifacts / "tflite-int8").predict_proba(x)
    b = runtime.load(artifacts / "tflite-int8" / "manifest.json").predict_proba(x)
    c = runtime.load(artifacts / "tflite-int8" / "model.tflite").predict_proba(x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == (20, 10)


def test_tampered_or_truncated_model_is_refused(artifacts, tmp_path):
    art = tmp_path / "tflite-int8"
    shutil.copytree(artifacts / "tflite-int8", art)
    data = bytearray((art / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (art / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(RuntimeArtifactError, match="does not match the manifest"):
        runtime.load(art)
    (art / "model.tflite").write_bytes(bytes(data[:100]))
    with pytest.raises(RuntimeArtifactError, match="does not match the manifest"):
        runtime.load(art)


def test_renamed_format_is_detected_by_content(artifacts, tmp_path):
    shutil.copy(artifacts / "onnx-float32" / "model.onnx", tmp_path / "model.tflite")
    clf = runtime.load(tmp_path / "model.tflite")
    assert clf.backend.format == "onnx"
    (tmp_path / "junk.onnx").write_bytes(b"\x00garbage!")
    with pytest.raises(RuntimeArtifactError, match="neither a TFLite flatbuffer nor an ONNX model"):
        runtime.load(tmp_path / "junk.onnx")


def test_threads_share_one_classifier_safely(artifacts):
    x = np.load(artifacts / "keras-outputs" / "golden.npz")["images"]
    for variant in ("tflite-int8", "onnx-float32"):
        clf = runtime.load(artifacts / variant)
        expected = [clf.predict_proba(x[i : i + 1 + i % 5]) for i in range(40)]
        results = [None] * 40

        def work(i):
            results[i] = clf.predict_proba(x[i : i + 1 + i % 5])  # varying batch sizes force tensor resizes

        threads = [threading.Thread(target=work, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for got, want in zip(results, expected):
            np.testing.assert_array_equal(got, want)


def test_uint8_fast_path_equals_the_float_contract(artifacts):
    # The lookup table for uint8 pixels must give exactly what /255 + quantize gives.
    x = np.random.default_rng(1).integers(0, 256, (16, 28, 28), dtype=np.uint8)
    for variant in ("tflite-int8", "onnx-float32"):
        clf = runtime.load(artifacts / variant)
        np.testing.assert_array_equal(clf.model_input(x), clf.model_input(x.astype(np.float32) / np.float32(255.0)))
        np.testing.assert_array_equal(clf.predict_proba(x), clf.predict_proba(x.astype(np.float32) / 255))


def test_output_lookup_equals_dequantize(artifacts):
    clf = runtime.load(artifacts / "tflite-int8")
    x = np.load(artifacts / "keras-outputs" / "golden.npz")["images"][:50]
    raw = clf.backend.run(clf.model_input(x))
    q = clf.manifest["output"]["quantization"]
    np.testing.assert_array_equal(clf.predict_proba(x), runtime.dequantize(raw, q["scale"], q["zero_point"]))


def test_batched_prediction_equals_one_call(artifacts):
    x = np.load(artifacts / "keras-outputs" / "golden.npz")["images"][:37]
    clf = runtime.load(artifacts / "onnx-float32")
    np.testing.assert_array_equal(clf.predict_proba(x, batch_size=8), clf.predict_proba(x))


def test_runtime_class_names_mirror_the_training_tier():
    from fmnist_edge import CLASS_NAMES
    from runtime.classifier import DEFAULT_CLASS_NAMES

    assert DEFAULT_CLASS_NAMES == CLASS_NAMES


def test_weight_statistics_read_back_from_the_file_match_the_export_record():
    """What pruning and clustering left in a file is read without TensorFlow, as export recorded it."""
    import zlib

    from runtime.weights import compressed_size, kernel_stats

    release = Path(__file__).parent / "fixtures" / "micro-release"
    for variant, key in (("tflite-int8-pruned", "pruning"), ("tflite-int8-clustered", "clustering")):
        m = rmf.read(release / variant / "manifest.json")
        model = release / variant / "model.tflite"
        assert kernel_stats(model) == m[key]["file_kernels"]
        assert compressed_size(model) == m["file"]["zlib9_bytes"] == len(zlib.compress(model.read_bytes(), 9))
    dense = kernel_stats(release / "tflite-int8" / "model.tflite")
    pruned = kernel_stats(release / "tflite-int8-pruned" / "model.tflite")
    assert [k["op"] for k in dense] == [k["op"] for k in pruned] == ["CONV_2D", "FULLY_CONNECTED"]
    assert pruned[1]["sparsity"] >= 0.45 > dense[1]["sparsity"]
    # and an independent reading (the raw interpreter's tensors, not runtime.weights' flatbuffer walk)
    own = {v: int8_kernel_sparsity(release / v / "model.tflite") for v in ("tflite-int8", "tflite-int8-pruned")}
    fc = max(own["tflite-int8-pruned"], key=lambda shape: np.prod(shape))  # the classifier's kernel
    assert pruned[1]["sparsity"] == pytest.approx(own["tflite-int8-pruned"][fc], abs=1e-4)
    assert dense[1]["sparsity"] == pytest.approx(own["tflite-int8"][fc], abs=1e-4)
