"""The dataset loader: search order, verification of the real files, and clear errors for bad ones."""

from __future__ import annotations

import gzip
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fmnist_edge import data as fdata
from fmnist_edge.errors import DataError

REAL = fdata.DEBIAN_DIR


def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


@pytest.fixture(scope="session")
def real_dataset() -> fdata.Dataset:
    # .ci/run installs dataset-fashion-mnist; without it these tests must fail, not skip.
    return fdata.load(REAL, download=False)


@pytest.fixture
def real_copy(tmp_path) -> Path:
    """A writable copy of the real files, to damage one at a time."""
    d = tmp_path / "fmnist"
    shutil.copytree(REAL, d)
    return d


def test_real_dataset_is_verified(real_dataset):
    ds = real_dataset
    assert ds.x_train.shape == (60_000, 28, 28) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10_000, 28, 28)
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.checksums == {stem: sha for stem, (_, _, sha) in fdata.FILES.items()}
    # Fashion-MNIST polarity: dark background, light garment.
    assert ds.x_train[:, 0, 0].mean() < 5 and ds.x_train.mean() > 50


def test_search_order_prefers_explicit_dir_then_env(monkeypatch, tmp_path, real_copy):
    monkeypatch.setenv(fdata.ENV_VAR, str(tmp_path / "nowhere"))
    assert fdata.locate(real_copy, download=False) == real_copy  # explicit beats the env var
    with pytest.raises(DataError, match=f"{fdata.ENV_VAR} points to .*nowhere"):
        fdata.locate(None, download=False)  # the env var is authoritative, no silent fallback
    monkeypatch.setenv(fdata.ENV_VAR, str(real_copy))
    assert fdata.locate(None, download=False) == real_copy


def test_search_order_keras_cache_before_debian(monkeypatch, tmp_path, real_copy):
    monkeypatch.delenv(fdata.ENV_VAR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(fdata, "DEBIAN_DIR", real_copy)
    assert fdata.locate(None, download=False) == real_copy
    cache = tmp_path / "keras" / "datasets" / "fashion-mnist"
    shutil.copytree(real_copy, cache)
    assert fdata.locate(None, download=False) == cache


def test_nothing_found_lists_places_and_the_three_ways(monkeypatch, tmp_path):
    monkeypatch.delenv(fdata.ENV_VAR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(fdata, "DEBIAN_DIR", tmp_path / "debian")
    with pytest.raises(DataError) as err:
        fdata.load(None, download=False)
    msg = str(err.value)
    assert "Keras cache" in msg and str(tmp_path / "debian") in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "--data-dir" in msg and "load_data()" in msg


def test_failed_download_is_a_data_error(monkeypatch, tmp_path):
    keras = pytest.importorskip("keras")
    monkeypatch.delenv(fdata.ENV_VAR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(fdata, "DEBIAN_DIR", tmp_path / "debian")

    def offline():
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(DataError, match="download through Keras failed.*URLError"):
        fdata.load(None, download=True)


def test_missing_file_names_it(real_copy):
    (real_copy / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"(?s)t10k-labels-idx1-ubyte\.gz: missing.*apt-get install"):
        fdata.load(real_copy)


def test_truncated_gzip(real_copy):
    f = real_copy / "train-labels-idx1-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-2000])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: the gzip stream is truncated or corrupted"):
        fdata.load(real_copy)


def test_truncated_content(real_copy):
    f = real_copy / "t10k-images-idx3-ubyte.gz"
    f.write_bytes(gzip.compress(gzip.decompress(f.read_bytes())[:-784]))
    with pytest.raises(DataError, match=r"t10k-images.*header says shape \(10000, 28, 28\).*truncated"):
        fdata.load(real_copy)


def test_wrong_magic(real_copy):
    # Labels where images should be: a classic mix-up when files are renamed by hand.
    shutil.copy(real_copy / "t10k-labels-idx1-ubyte.gz", real_copy / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(DataError, match="wrong IDX magic number 2049 .expected 2051 for an image file"):
        fdata.load(real_copy)


def test_wrong_count(real_copy):
    small = np.zeros((100, 28, 28), np.uint8)
    (real_copy / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(small, 2051)))
    with pytest.raises(DataError, match="holds 100 images, expected 60,000"):
        fdata.load(real_copy)


def test_label_out_of_range(real_copy):
    labels = np.full(10_000, 3, np.uint8)
    labels[17] = 12
    (real_copy / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels, 2049)))
    with pytest.raises(DataError, match="label 12 is out of range"):
        fdata.load(real_copy)


def test_checksum_catches_a_silently_changed_label(real_copy):
    f = real_copy / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(f.read_bytes()))
    raw[8] = (raw[8] + 1) % 10  # still a valid label, still a valid file: only the checksum can tell
    f.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="content checksum .* does not match the original Fashion-MNIST"):
        fdata.load(real_copy)


def test_uncompressed_files_are_accepted(real_copy):
    for gz in real_copy.glob("*.gz"):
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    assert fdata.load(real_copy).x_test.shape == (10_000, 28, 28)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.sampled_from([fdata.IMAGE_MAGIC, fdata.LABEL_MAGIC]))
def test_parse_idx_never_raises_anything_but_data_error(blob, magic):
    try:
        arr = fdata.parse_idx(blob, magic)
    except DataError:
        return
    assert arr.dtype == np.uint8 and arr.ndim == (3 if magic == fdata.IMAGE_MAGIC else 1)


@given(st.lists(st.integers(0, 255), max_size=50), st.integers(0, 9))
def test_parse_idx_round_trips_valid_labels(values, _):
    arr = np.asarray(values, np.uint8)
    np.testing.assert_array_equal(fdata.parse_idx(idx_bytes(arr, 2049), 2049), arr)


def test_split_is_seeded_disjoint_and_complete():
    a_tr, a_val = fdata.split(60_000, 0.1, seed=3)
    b_tr, b_val = fdata.split(60_000, 0.1, seed=3)
    c_tr, _ = fdata.split(60_000, 0.1, seed=4)
    np.testing.assert_array_equal(a_tr, b_tr)
    np.testing.assert_array_equal(a_val, b_val)
    assert len(a_val) == 6_000 and not np.array_equal(a_tr, c_tr)
    assert np.intersect1d(a_tr, a_val).size == 0 and len(a_tr) + len(a_val) == 60_000
    assert len(fdata.split(60_000, 10_000, seed=0)[1]) == 10_000
    with pytest.raises(ValueError):
        fdata.split(100, 100, seed=0)


def test_subset_is_class_balanced(real_dataset):
    idx = fdata.subset(real_dataset.y_train, 200, seed=1)
    assert len(idx) == 200 and np.bincount(real_dataset.y_train[idx]).tolist() == [20] * 10
    np.testing.assert_array_equal(idx, fdata.subset(real_dataset.y_train, 200, seed=1))


def test_preprocessing_contract():
    x = np.array([[[0, 255] * 14] * 28], np.uint8)
    y = fdata.to_model_input(x)
    assert y.shape == (1, 28, 28, 1) and y.dtype == np.float32
    assert y.min() == 0.0 and y.max() == 1.0


def test_test_split_only():
    ds = fdata.load(REAL, download=False, train=False)
    assert ds.x_train.shape == (0, 28, 28) and ds.x_test.shape == (10_000, 28, 28)
    assert set(ds.checksums) == {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}
