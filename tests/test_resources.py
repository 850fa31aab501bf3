"""Bounded resources (hardening round 2, group 10): thread counts, decompression, IDX headers."""

from __future__ import annotations

import gzip
import resource
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import runtime
from fmnist_edge import cli
from fmnist_edge.data import IMAGE_MAGIC, LABEL_MAGIC, parse_idx, read_file
from fmnist_edge.errors import DataError
from runtime.errors import RuntimeArtifactError

RELEASE = Path(__file__).parent / "fixtures" / "micro-release"


@pytest.mark.parametrize("variant", ["tflite-int8", "onnx-int8"])
@pytest.mark.parametrize("threads", [0, -1, 65, 10_000, 2.5, True])
def test_thread_counts_are_bounded_for_both_backends(variant, threads):
    with pytest.raises(RuntimeArtifactError, match="num_threads .* must be an integer from 1 to 64"):
        runtime.load(RELEASE / variant, num_threads=threads)


def test_threads_through_the_cli_fail_fast(tmp_path):
    from PIL import Image

    Image.new("L", (28, 28), 0).save(tmp_path / "x.png")
    result = CliRunner().invoke(cli.app, ["predict", str(tmp_path / "x.png"), "--model", str(RELEASE / "onnx-int8"),
                                          "--threads", "10000"])
    assert result.exit_code == 1 and "must be an integer from 1 to 64" in result.output


def test_gzip_bomb_named_like_a_dataset_file_is_refused_in_bounded_memory(tmp_path):
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb", compresslevel=9) as f:
        for _ in range(300):  # 300 MB of zeros in ~300 KB
            f.write(bytes(1_000_000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match="larger than the 10,008 bytes"):
        read_file(tmp_path, "t10k-labels-idx1-ubyte")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: far below 300 MB


def test_oversized_uncompressed_file_is_refused_before_reading(tmp_path):
    with open(tmp_path / "t10k-labels-idx1-ubyte", "wb") as f:
        f.truncate(50_000_000)  # sparse: refused by its size alone
    with pytest.raises(DataError, match="larger than the 10,008 bytes"):
        read_file(tmp_path, "t10k-labels-idx1-ubyte")


@given(dims=st.lists(st.integers(0, 2**32 - 1), min_size=3, max_size=3), tail=st.binary(max_size=64),
       magic=st.sampled_from([IMAGE_MAGIC, LABEL_MAGIC]))
@settings(max_examples=200, deadline=None)
def test_any_idx_header_parses_or_raises_data_error(dims, tail, magic):
    ndim = 3 if magic == IMAGE_MAGIC else 1
    data = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims[:ndim]) + tail
    try:
        arr = parse_idx(data, magic)
    except DataError:
        return
    assert arr.dtype == np.uint8 and list(arr.shape) == dims[:ndim] and arr.size == len(tail)


def test_bench_threads_are_bounded_before_any_work():
    result = CliRunner().invoke(cli.app, ["bench", str(RELEASE), "--threads", "100"])
    assert result.exit_code == 1 and "--threads must be from 1 to 64" in result.output
