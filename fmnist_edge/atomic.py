"""Atomic writes: every file and directory the toolkit writes appears complete or not at all.

One helper per shape, used by training, export, bench reports and C source alike:
- `write_atomic(path, write)` / `write_json(path, payload)`: a file, written beside its target, renamed in
  (`write_together` for files that belong together);
- `committed_dir(target)`: a directory, staged beside its target, renamed in (over an empty placeholder,
  or swapping out an old one when replacing is allowed).
A full disk or quota (ENOSPC, EDQUOT) while staging becomes a `DiskFullError` that names the path, the
bytes written before it ran out and what is free; the staged copy is removed and whatever was at the
target before is kept.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import DiskFullError, OutputExistsError, stop_if_signalled
from .paths import check_output_file

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


@contextmanager
def disk_full_is_a_user_error(target: Path, staging: Path, needed: int | None = None):
    """Turn ENOSPC/EDQUOT raised while writing `staging` (bound for `target`) into a DiskFullError naming
    `target` (also when a nested write_atomic inside `staging` already reported it)."""
    try:
        yield
    except (OSError, DiskFullError) as exc:
        code = exc.errno
        if code is None and re.fullmatch(r"\d+ requested and \d+ written", str(exc)):
            code = errno.ENOSPC  # numpy's np.save reports a full disk as a short write, with no errno
        if code not in DISK_FULL:
            raise
        written = _bytes(staging)
        free = shutil.disk_usage(staging.parent if staging.parent.exists() else target.parent).free
        what = "no space left on the device" if code == errno.ENOSPC else "the disk quota is exhausted"
        need = f"{needed:,} bytes needed" if needed else f"more than {written:,} bytes needed"
        raise DiskFullError(
            f"{target}: {what} ({need}, {written:,} written before it ran out, {free:,} free there now). "
            f"Nothing was changed at {target}. Free some space, or write elsewhere (--out, --json).", code) from None


def write_atomic(path: str | os.PathLike, write) -> None:
    """Write a file atomically (`write(tmp_path)` into a temp file beside it, then rename), never
    replacing a special file."""
    write_together({path: write})


def write_together(writers: dict) -> None:
    """Files that belong together ({path: write(tmp_path)}, e.g. a C header and its source): every one is
    written beside its target first, then all are renamed in, so a full disk midway changes none of them."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, write in writers.items():
            path = check_output_file(path, "output")
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
            staged.append((Path(tmp), path))
            with disk_full_is_a_user_error(path, Path(tmp), getattr(write, "nbytes", None)):
                write(Path(tmp))
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; these files are meant to be shared
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def text(content: str):
    """A writer of `content` for write_atomic / write_together that knows how many bytes it needs."""
    data = content.encode()

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    write.nbytes = len(data)
    return write


def write_json(path: str | os.PathLike, payload: dict) -> None:
    """Write strict JSON atomically: a NaN or infinity is a bug upstream, never something to write down."""
    write_atomic(path, text(json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n"))


@contextmanager
def committed_dir(target: Path, replace: bool = False):
    """Yield a hidden directory beside `target` to write into; on success rename it to `target`, on any
    failure (a full disk, a stop signal, an error) delete it and leave `target` as it was.

    `target` may be absent or an empty directory (a placeholder held while the work ran). A non-empty one is
    swapped out and removed only when `replace`; otherwise OutputExistsError."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp creates 0700; these directories are meant to be shared
    try:
        with disk_full_is_a_user_error(target, tmp):
            yield tmp
        stop_if_signalled()
        if target.is_dir() and any(target.iterdir()):
            if not replace:
                raise OutputExistsError(f"{target} already exists; pass --overwrite to replace it.")
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)  # onto nothing, or onto an empty placeholder: one atomic rename
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
