"""Output paths checked before any work starts, so that a bad --out or --json cannot waste a long run."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError


def check_output_file(path: str | os.PathLike, option: str) -> Path:
    """Refuse, before any work, an output file that could not be written or whose replacement would do
    harm: a missing or read-only directory, a directory, or a special file (a device, a pipe, a link to
    one: an atomic rename would replace /dev/stdout with a regular file)."""
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(f"{option} {path}: directory {parent} does not exist; create it first.")
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a directory; give a file name.")
    if path.exists() or path.is_symlink():
        if path.is_symlink() or not path.is_file():
            raise ConfigError(f"{option} {path}: exists and is not a regular file (a link, device or pipe); "
                              "refusing to replace it. Give the path of a regular file.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: directory {parent} is not writable.")
    return path


def check_output_dir(path: str | os.PathLike, option: str) -> Path:
    """An output directory that may not exist yet: its nearest existing ancestor must be a writable directory."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path}: exists and is not a directory.")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: cannot create it: {ancestor} is not a writable directory.")
    return path
