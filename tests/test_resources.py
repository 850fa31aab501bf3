"""Bounded resources (hardening round 2, group 10): thread counts, decompression, IDX headers."""

from __future__ import annotations

import gzip
import subprocess
import sys
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


def _gzip_bomb(path: Path, gib: int = 1) -> int:
    """`gib` GiB of zeros in ~1 MB: one 64 MiB gzip member, repeated (concatenated members are one stream)."""
    member = gzip.compress(bytes(64 << 20), compresslevel=9)
    with open(path, "wb") as f:
        for _ in range(16 * gib):
            f.write(member)
    return path.stat().st_size


def test_gzip_bomb_is_stopped_by_the_decompression_limit_in_bounded_memory(tmp_path):
    # Named like the training images (47,040,016 bytes), ~1 MB compressed: the size check lets it through, so
    # only the decompression limit stands between it and 1 GiB in memory. Peak memory is read in a fresh
    # process, as its address space's own high-water mark (VmHWM): not this process's, which earlier tests
    # raised, nor ru_maxrss, which Linux carries over from the parent across fork/exec.
    size = _gzip_bomb(tmp_path / "train-images-idx3-ubyte.gz")
    assert size < 47_040_016 // 20
    code = ("import sys\nfrom pathlib import Path\nfrom fmnist_edge.data import read_file\n"
            "from fmnist_edge.errors import DataError\n"
            "try:\n    read_file(Path(sys.argv[1]), 'train-images-idx3-ubyte')\nexcept DataError as exc:\n    print(exc)\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
            "print('peak_kib', hwm.split()[1])\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "larger than the 47,040,016 bytes" in proc.stdout
    peak_mib = int(proc.stdout.split("peak_kib")[1]) / 1024
    # Python + numpy + the 1 MB file + at most 47 MB decompressed (and a copy) stay far below the 1 GiB bomb.
    assert peak_mib < 400, peak_mib


def test_a_small_gzip_bomb_is_refused_by_the_decompression_limit_not_the_size_check(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(bytes(1_000_000), compresslevel=9))  # ~1 KB: under the 10,008-byte size check
    assert path.stat().st_size < 10_008
    with pytest.raises(DataError, match="larger than the 10,008 bytes"):
        read_file(tmp_path, "t10k-labels-idx1-ubyte")


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
