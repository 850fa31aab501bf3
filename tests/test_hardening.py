"""Misuse of every input: each case gets a specific, actionable error of the project's own type.

Covers model files, manifests, `.keras` safety, runtime arrays and property-based fuzzing of the parsers.
Dataset files, images and interrupted exports are covered in test_data, test_bench and test_export;
this module adds the cases those do not.
"""

from __future__ import annotations

import copy
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import runtime
from fmnist_edge import data as fdata
from fmnist_edge.errors import DataError
from runtime import manifest as rmf
from runtime.errors import ManifestError, RuntimeArtifactError

RELEASE = Path(__file__).parent / "fixtures" / "micro-release"


@pytest.fixture
def release(tmp_path):
    dst = tmp_path / "release"
    shutil.copytree(RELEASE, dst)
    return dst


# --- dataset: the remaining cases (missing, truncated, wrong magic/count, labels: see test_data.py) ---

def test_garbage_dataset_file(tmp_path):
    shutil.copytree(fdata.DEBIAN_DIR, tmp_path / "d")
    (tmp_path / "d" / "train-images-idx3-ubyte.gz").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: (wrong IDX magic|only|header says)"):
        fdata.load(tmp_path / "d")


def test_gzip_of_garbage(tmp_path):
    shutil.copytree(fdata.DEBIAN_DIR, tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01garbage"))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: header says shape"):
        fdata.load(tmp_path / "d")


# --- model files ---

@pytest.mark.parametrize("content, message", [
    (b"", "neither a TFLite flatbuffer nor an ONNX model"),
    (b"\x8b\x13garbage bytes that are no model", "neither a TFLite flatbuffer nor an ONNX model"),
])
def test_bare_model_file_that_is_no_model(tmp_path, content, message):
    (tmp_path / "model.tflite").write_bytes(content)
    with pytest.raises(RuntimeArtifactError, match=message):
        runtime.load(tmp_path / "model.tflite")


def test_truncated_bare_model(tmp_path):
    data = (RELEASE / "tflite-int8" / "model.tflite").read_bytes()
    (tmp_path / "model.tflite").write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeArtifactError, match="LiteRT could not load the model"):
        runtime.load(tmp_path / "model.tflite")
    data = (RELEASE / "onnx-float32" / "model.onnx").read_bytes()
    (tmp_path / "model.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeArtifactError, match="ONNX Runtime could not load the model"):
        runtime.load(tmp_path / "model.onnx")


def test_onnx_file_renamed_tflite_and_back(tmp_path):
    shutil.copy(RELEASE / "onnx-float32" / "model.onnx", tmp_path / "a.tflite")
    shutil.copy(RELEASE / "tflite-float32" / "model.tflite", tmp_path / "b.onnx")
    assert runtime.load(tmp_path / "a.tflite").backend.format == "onnx"
    assert runtime.load(tmp_path / "b.onnx").backend.format == "tflite"


def test_manifest_claims_another_format(release):
    art = release / "tflite-int8"
    m = json.loads((art / "manifest.json").read_text())
    shutil.copy(release / "onnx-int8" / "model.onnx", art / "model.tflite")
    m["file"]["sha256"] = rmf.sha256_file(art / "model.tflite")
    (art / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(RuntimeArtifactError, match="the file is onnx but the manifest says tflite"):
        runtime.load(art)


def test_model_input_does_not_match_its_manifest(release):
    art = release / "tflite-float32"
    m = json.loads((art / "manifest.json").read_text())
    m["input"]["shape"] = [None, 32, 32, 1]
    (art / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(RuntimeArtifactError, match="input is float32 .*manifest declares float32 \\[None, 32, 32, 1\\]"):
        runtime.load(art)


def test_tampered_file_and_the_override(release):
    model = release / "tflite-float32" / "model.tflite"
    data = bytearray(model.read_bytes())
    data[-8] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(RuntimeArtifactError, match="does not match the manifest"):
        runtime.load(release / "tflite-float32")
    runtime.load(release / "tflite-float32", verify_checksum=False)  # explicit override still loads


# --- manifests ---

def test_manifest_missing_field_and_wrong_types(release):
    path = release / "tflite-int8" / "manifest.json"
    m = json.loads(path.read_text())
    for mutate, message in [
        (lambda d: d.pop("file"), "'file' is missing"),
        (lambda d: d.update(class_names="T-shirt"), "'class_names' must be list"),
        (lambda d: d["input"].update(shape="28x28"), "input.shape must be a list"),
        (lambda d: d["output"].update(shape=[]), "output.shape must be 2"),
        (lambda d: d["input"].update(quantization={"scale": "0.1", "zero_point": 0}), "quantization must be"),
    ]:
        broken = copy.deepcopy(m)
        mutate(broken)
        path.write_text(json.dumps(broken))
        with pytest.raises(ManifestError, match=message):
            runtime.load(release / "tflite-int8")


@pytest.mark.parametrize("evil", ["../tflite-float32/model.tflite", "/etc/hostname", ""])
def test_manifest_file_entry_outside_the_artifact_is_refused(release, evil):
    path = release / "tflite-int8" / "manifest.json"
    m = json.loads(path.read_text())
    m["file"]["path"] = evil
    path.write_text(json.dumps(m))
    with pytest.raises(ManifestError, match="inside the artifact directory"):
        runtime.load(release / "tflite-int8")


def test_manifest_symlinked_model_is_refused(release):
    art = release / "tflite-int8"
    (art / "model.tflite").unlink()
    (art / "model.tflite").symlink_to(release / "tflite-float32" / "model.tflite")
    with pytest.raises(ManifestError, match="outside the artifact directory"):
        runtime.load(art)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(rmf.REQUIRED) + ["lineage"]), JSON, max_size=9))
def test_manifest_validator_only_raises_manifest_error(candidate):
    try:
        rmf.validate(candidate)
    except ManifestError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_mutated_real_manifest_validates_or_raises_manifest_error(data):
    m = json.loads((RELEASE / "tflite-int8" / "manifest.json").read_text())
    section = data.draw(st.sampled_from(["input", "output", "file"]))
    key = data.draw(st.sampled_from(sorted(m[section])))
    m[section][key] = data.draw(JSON)
    try:
        rmf.validate(m)
    except ManifestError:
        pass


# --- .keras files: safe mode only ---

def test_keras_model_with_a_lambda_layer_is_refused(tmp_path):
    keras = pytest.importorskip("keras")
    from fmnist_edge.errors import ModelFileError
    from fmnist_edge.keras_io import load_trained_model

    model = keras.Sequential([keras.Input((28, 28, 1)),
                              keras.layers.Lambda(lambda x: x * 2.0),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ModelFileError, match="Lambda layer or a custom object.*safe mode"):
        load_trained_model(tmp_path / "lambda.keras")


def test_keras_model_with_a_custom_layer_is_refused(tmp_path):
    keras = pytest.importorskip("keras")
    from fmnist_edge.errors import ModelFileError
    from fmnist_edge.keras_io import load_trained_model

    @keras.saving.register_keras_serializable(package="evil")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    model = keras.Sequential([keras.Input((28, 28, 1)), Doubler(), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.save(tmp_path / "custom.keras")
    keras.saving.get_custom_objects().clear()  # a fresh process would not know the class
    with pytest.raises(ModelFileError, match="custom object"):
        load_trained_model(tmp_path / "custom.keras")


# --- runtime input arrays ---

@pytest.mark.parametrize("images, message", [
    (np.zeros((28, 28, 1, 1, 1), np.uint8), "shape"),
    (np.zeros((4, 784), np.uint8), "shape"),
    (np.full((2, 28, 28), np.inf, np.float32), "NaN or infinite"),
    (np.full((2, 28, 28), -0.5, np.float32), r"\[0, 1\]"),
    (np.zeros((2, 28, 28), np.int16), "dtype int16"),
    (np.zeros((2, 28, 28), bool), "dtype bool"),
    ("not an array", "shape"),
])
def test_classifier_rejects_bad_arrays(images, message):
    clf = runtime.load(RELEASE / "tflite-int8")
    with pytest.raises(ValueError, match=message):
        clf.predict(images)


# --- an interrupted export leaves nothing bench or verify would accept ---

def test_partial_directories_are_invisible_to_bench_and_verify(release):
    from fmnist_edge.bench import BenchConfig, run_bench

    partial = release / ".tflite-int8.partial-abc123"
    shutil.move(str(release / "tflite-int8"), partial)
    with pytest.raises(Exception, match="no artifact"):
        run_bench(release, BenchConfig(variants=("tflite-int8",), runs=10, warmup=0))
    with pytest.raises(RuntimeArtifactError, match="no such artifact"):
        runtime.load(release / "tflite-int8")
