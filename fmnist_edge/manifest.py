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


def write_json(path: str | os.PathLike, payload: dict) -> None:
    """Write JSON atomically (temp file in the same directory, then rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            # Strict JSON: a NaN or infinity is a bug upstream, never something to write down.
            json.dump(payload, f, indent=2, sort_keys=False, allow_nan=False)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def class_names() -> list[str]:
    return list(CLASS_NAMES)
