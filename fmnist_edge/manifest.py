"""Shared pieces of the JSON files the pipeline writes: checksums, versions, the input contract.

The artifact on disk is the interface between stages (train -> export -> bench), so each file carries a
schema version and enough lineage to be judged on its own.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import tempfile
from pathlib import Path

from runtime.manifest import sha256_file  # noqa: F401  (one implementation, shared with the device)

from . import CLASS_NAMES

RUN_SCHEMA_VERSION = 1

# How a uint8 28x28 image becomes model input; every model of every backend follows it.
PREPROCESSING = {
    "source": "uint8 grayscale image, 28x28, light garment on dark background (0 = background), as in Fashion-MNIST",
    "steps": ["cast to float32", "divide by 255.0", "reshape to (N, 28, 28, 1)"],
    "input_range": [0.0, 1.0],
}

INPUT_SPEC = {"name": "image", "shape": [None, 28, 28, 1], "dtype": "float32", "layout": "NHWC"}
OUTPUT_SPEC = {"name": "probabilities", "shape": [None, 10], "dtype": "float32", "meaning": "softmax probabilities"}


def cpu_name() -> str:
    """The CPU model as the OS reports it (Linux: /proc/cpuinfo), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Instruction-set features that change how int8 and float kernels compute or how fast they run.
ISA_FEATURES = ("sse4_2", "avx", "fma", "avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8",
                "asimd", "asimddp", "i8mm", "sve", "sve2", "sme")


def cpu_features() -> list[str]:
    """The ISA_FEATURES this CPU reports (x86 `flags`, Arm `Features` in /proc/cpuinfo), in that order."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("flags", "features")):
                have = set(line.split(":", 1)[1].split())
                return [f for f in ISA_FEATURES if f in have]
    except OSError:
        pass
    return []


def cpu_class(features: list[str]) -> str:
    """A short name for the CPU class int8 results depend on, e.g. "x86-64 AVX2, no VNNI"."""
    f = set(features)
    if "asimd" in f:
        return "arm64 " + ("with dot product" if "asimddp" in f else "NEON, no dot product") + (" + SVE" if "sve" in f else "")
    if "avx512_vnni" in f:
        return "x86-64 AVX-512 VNNI" + (" + AMX" if "amx_int8" in f else "")
    if "avx2" in f:
        return "x86-64 AVX2, " + ("AVX-VNNI" if "avx_vnni" in f else "no VNNI")
    return "x86-64 SSE4.2, no AVX2" if "sse4_2" in f else platform.machine()


def host_cpu() -> dict:
    """What every manifest and bench.json records about the machine that produced its numbers."""
    features = cpu_features()
    return {"model": cpu_name(), "machine": platform.machine(), "class": cpu_class(features),
            "features": features, "cpu_count": os.cpu_count()}


def library_versions(*names: str) -> dict:
    """Installed versions of the named distributions (missing ones are left out), plus Python."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def check_output_file(path: str | os.PathLike, option: str) -> Path:
    """Refuse, before any work, an output file that could not be written or whose replacement would do
    harm: a missing or read-only directory, a directory, or a special file (a device, a pipe, a link to
    one: an atomic rename would replace /dev/stdout with a regular file)."""
    from .errors import ConfigError

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
    from .errors import ConfigError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path}: exists and is not a directory.")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: cannot create it: {ancestor} is not a writable directory.")
    return path


def write_atomic(path: str | os.PathLike, write) -> None:
    """Write a file atomically (`write(tmp_path)` into a temp file beside it, then rename), never
    replacing a special file."""
    path = check_output_file(path, "output")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, payload: dict) -> None:
    """Write strict JSON atomically: a NaN or infinity is a bug upstream, never something to write down."""
    text = json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text))


def class_names() -> list[str]:
    return list(CLASS_NAMES)
