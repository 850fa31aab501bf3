"""Model files that describe themselves: a stranger's raw-pixel model with its own labels, exported, then its
.tflite and .onnx copied alone (no manifest) and loaded; other readers see the same fields; an embedded
description that contradicts the manifest beside it is refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402
from rich.console import Console  # noqa: E402

import exporters  # noqa: E402
import runtime  # noqa: E402
from exporters.embed import embed  # noqa: E402
from fmnist_edge import data as fdata  # noqa: E402
from fmnist_edge.manifest import sha256_file  # noqa: E402
from runtime import metadata  # noqa: E402
from runtime.photo import PARAMS  # noqa: E402

from conftest import MICRO_RELEASE  # noqa: E402

L = keras.layers
LABELS = [f"garment kind {i}" for i in range(10)]  # not Fashion-MNIST's names: they can only come from the file
FILES = {"tflite-int8": "model.tflite", "onnx-int8": "model.onnx", "tflite-float32": "model.tflite"}


@pytest.fixture(scope="module")
def stranger(tmp_path_factory):
    """A raw-pixel (0..255) model trained elsewhere, exported with its labels; returns (run dir, {variant: dir})."""
    ds = fdata.load(download=False)
    idx = fdata.subset(ds.y_train, 3000, 1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), L.Rescaling(1 / 255.0), L.Conv2D(8, 3, activation="relu"),
                              L.MaxPooling2D(), L.Flatten(), L.Dense(10, activation="softmax")], name="stranger")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(ds.x_train[idx][..., None].astype("float32"), ds.y_train[idx], epochs=2, batch_size=64, verbose=0)
    tmp = tmp_path_factory.mktemp("stranger")
    model.save(tmp / "stranger.keras")
    done = exporters.export(tmp / "stranger.keras", list(FILES), out=tmp / "run", input_scale=255, labels=LABELS,
                            limit=2000, calibration_images=200, portability_cpus=(), console=Console(quiet=True))
    return tmp / "run", done


def test_a_lone_file_loads_with_its_labels_contract_and_quantization(stranger, tmp_path):
    run, done = stranger
    images = np.load(run / "keras-outputs" / "golden.npz")["images"]
    for variant, name in FILES.items():
        manifest = json.loads((done[variant] / "manifest.json").read_text())
        lone = tmp_path / variant / f"shipped-{name}"  # another folder, another name, nothing beside it
        lone.parent.mkdir()
        shutil.copy(done[variant] / name, lone)
        clf = runtime.load(lone)
        assert clf.class_names == LABELS and clf.variant == variant
        # The contract: the folded raw-pixel scale, and the boundary quantization, as the manifest says.
        assert clf.manifest["preprocessing"] == manifest["preprocessing"]
        assert clf.manifest["preprocessing"]["model_input_scale"] == 255.0
        assert clf.manifest["input"]["quantization"] == manifest["input"].get("quantization")
        assert clf.manifest["lineage"]["keras_model_sha256"] == manifest["lineage"]["keras_model_sha256"]
        assert clf.manifest["photo"]["not_sure_below"] == PARAMS["not_sure_below"]
        assert clf.manifest["embedded_metadata"] == manifest["embedded_metadata"]
        np.testing.assert_array_equal(clf.predict_proba(images), runtime.load(done[variant]).predict_proba(images))
        assert clf.top_k(images[:1], 1)[0][0][0] in LABELS


def test_other_readers_see_the_fields(stranger):
    """What Netron-style tools read: the `onnx` package's metadata_props, and TensorFlow's own TFLite flatbuffer
    reader (tensorflow.lite.tools.flatbuffer_utils) -- neither is the runtime's reader."""
    import onnx
    from tensorflow.lite.tools import flatbuffer_utils

    _, done = stranger
    props = {p.key: p.value for p in onnx.load(str(done["onnx-int8"] / "model.onnx")).metadata_props}
    model = flatbuffer_utils.read_model(str(done["tflite-int8"] / "model.tflite"))
    entries = {m.name.decode(): bytes(model.buffers[m.buffer].data).decode("utf-8", "replace") for m in model.metadata}
    for fields, variant in ((props, "onnx-int8"), (entries, "tflite-int8")):
        assert set(metadata.KEYS) <= {k.removeprefix(metadata.PREFIX) for k in fields}, variant
        assert json.loads(fields["fmnist_edge.labels"]) == LABELS
        contract = json.loads(fields["fmnist_edge.input"])
        assert contract["polarity"].startswith("light garment on dark background")
        assert contract["normalization"]["range"] == [0.0, 1.0] and contract["layout"] == "NHWC"
        assert contract["preprocessing"]["model_input_scale"] == 255.0
        assert json.loads(fields["fmnist_edge.photo"])["side"] == 28
    q = json.loads(entries["fmnist_edge.quantization"])["input"]
    assert q["zero_point"] == -128 and q["scale"] == pytest.approx(1 / 255)
    assert json.loads(props["fmnist_edge.quantization"])["input"] is None  # QDQ: float boundary
    assert "min_runtime_version" in entries  # the converter's own entries are kept


def test_a_file_and_manifest_that_disagree_are_refused(stranger, tmp_path):
    _, done = stranger
    for variant in ("tflite-int8", "onnx-int8"):
        copy = tmp_path / variant
        shutil.copytree(done[variant], copy)
        manifest = json.loads((copy / "manifest.json").read_text())
        edited = {**manifest, "class_names": LABELS[::-1]}  # a manifest edited by hand, file untouched
        (copy / "manifest.json").write_text(json.dumps(edited))
        with pytest.raises(runtime.RuntimeArtifactError, match=r"embedded metadata contradicts the manifest.*labels"):
            runtime.load(copy)
        # ... and the other way: the file re-stamped with other labels, its checksum updated in the manifest.
        model = copy / FILES[variant]
        embed(model, manifest["format"], metadata.describe({**manifest, "class_names": LABELS[::-1]}, PARAMS))
        manifest["file"]["sha256"] = sha256_file(model)
        (copy / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(runtime.RuntimeArtifactError, match="labels: the file says"):
            runtime.load(copy)
        alone = shutil.copy(model, tmp_path / f"{variant}-alone{model.suffix}")
        assert runtime.load(alone).class_names == LABELS[::-1]  # alone, the file is its own authority


def test_embedded_quantization_is_held_to_the_tensors(stranger, tmp_path):
    _, done = stranger
    manifest = json.loads((done["tflite-int8"] / "manifest.json").read_text())
    lone = tmp_path / "model.tflite"
    shutil.copy(done["tflite-int8"] / "model.tflite", lone)
    wrong = {**manifest, "output": {**manifest["output"], "quantization": {"scale": 0.5, "zero_point": 0}}}
    embed(lone, "tflite", metadata.describe(wrong, PARAMS))
    with pytest.raises(runtime.RuntimeArtifactError, match="its embedded metadata declares output quantization"):
        runtime.load(lone)


def test_stamping_is_idempotent_and_malformed_entries_are_refused(stranger, tmp_path):
    _, done = stranger
    for variant in ("tflite-int8", "onnx-int8"):
        manifest = json.loads((done[variant] / "manifest.json").read_text())
        lone = tmp_path / FILES[variant].replace("model", variant)
        shutil.copy(done[variant] / FILES[variant], lone)
        before = lone.read_bytes()
        entries = metadata.describe(manifest, PARAMS)
        embed(lone, manifest["format"], entries)
        assert lone.read_bytes() == before, variant  # the same entries again: the same file, no stale copies
        embed(lone, manifest["format"], {**entries, "fmnist_edge.labels": '["half a list'})
        with pytest.raises(runtime.ManifestError, match=r"fmnist_edge.labels is not valid JSON"):
            runtime.load(lone)


def test_files_without_embedded_metadata_still_load(tmp_path):
    """Files exported before metadata was embedded (or by other tools): loaded with their manifest, or alone
    with the default Fashion-MNIST labels."""
    lone = tmp_path / "model.tflite"
    shutil.copy(MICRO_RELEASE / "tflite-int8" / "model.tflite", lone)
    assert metadata.read_tflite(lone) == {}
    assert runtime.load(lone).class_names == list(runtime.classifier.DEFAULT_CLASS_NAMES)
    assert runtime.load(MICRO_RELEASE / "tflite-int8").variant == "tflite-int8"
