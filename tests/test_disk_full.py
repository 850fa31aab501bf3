"""A full disk is a user error: one clear message with the path and the bytes, no truncated file anywhere,
and whatever was there before is kept. On a real small filesystem (a tmpfs this test mounts; CI runs as
root) and, where mounting is not possible, with a writer that fails the way a full disk does."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmnist_edge import cli
from fmnist_edge.atomic import committed_dir
from fmnist_edge.errors import DiskFullError

ROOT = Path(__file__).resolve().parent.parent
EDGE_INT8 = ROOT / "artifacts" / "edge" / "tflite-int8"
runner = CliRunner()


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs, filled to the `leave` bytes a test asks for."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root); the fault-injection tests below still run")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)

    def fill(leave: int) -> Path:
        free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
        (mnt / "filler").write_bytes(b"\0" * max(0, free - leave))
        return mnt

    yield fill
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_c_source_on_a_full_disk_says_so_and_keeps_the_old_files(small_fs):
    mnt = small_fs(leave=64 * 1024)  # the edge int8 model as C source is several times that
    out = mnt / "firmware"
    out.mkdir()
    (out / "fmnist_model.h").write_text("// the previous release\n")
    before = files(mnt)
    result = runner.invoke(cli.app, ["c-source", str(EDGE_INT8), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.output.count("error:") == 1
    assert "no space left on the device" in result.output and "bytes needed" in result.output
    assert "free there now" in result.output
    assert str(out) in result.output
    assert files(mnt) == before  # no temporary, no truncated file; the old header as it was


def test_an_export_onto_a_full_disk_leaves_no_run_directory_half_written(small_fs, run_copy):
    mnt = small_fs(leave=48 * 1024)  # the reference outputs alone (test_probs.npy) are bigger
    out = mnt / "release"
    result = runner.invoke(cli.app, ["export", str(run_copy), "--float", "--out", str(out), "--no-portability-check"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "OSError" not in result.output
    assert "no space left on the device" in result.output and "Nothing was changed" in result.output
    assert not out.exists() or list(out.iterdir()) == []  # at most the empty --out directory export created
    assert not [p for p in mnt.rglob("*") if ".partial-" in p.name or p.name.endswith(".tmp")]


def test_a_committed_directory_that_runs_out_of_space_is_removed_and_the_old_one_kept(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "model.keras").write_bytes(b"old model")

    with pytest.raises(DiskFullError) as info:
        with committed_dir(target, replace=True) as tmp:
            (tmp / "model.keras").write_bytes(b"half a mod")
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
    assert "the disk quota is exhausted" in str(info.value) and "10 written before it ran out" in str(info.value)
    assert str(target) in str(info.value) and info.value.errno == errno.EDQUOT
    assert files(tmp_path) == {"run/model.keras": b"old model"}  # the staging directory is gone


def test_a_full_disk_inside_a_committed_directory_names_the_target_not_the_staging_path(tmp_path):
    from fmnist_edge.atomic import write_atomic

    target = tmp_path / "run"

    def full(path: Path):
        path.write_text("{")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError) as info:
        with committed_dir(target) as tmp:
            write_atomic(tmp / "manifest.json", full)
    assert str(info.value).startswith(f"{target}: no space left on the device") and ".partial-" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_other_os_errors_are_not_reported_as_a_full_disk(tmp_path):
    with pytest.raises(PermissionError):
        with committed_dir(tmp_path / "run"):
            raise PermissionError(errno.EACCES, "Permission denied")
    assert list(tmp_path.iterdir()) == []
