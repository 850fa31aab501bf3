"""Facts about the machine a number was measured on: CPU model, instruction-set class, library versions.

Every manifest, bench.json and study records them, because int8 outputs and every speed depend on them.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path


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


def utc_now() -> str:
    """Now, in UTC to the second: every manifest's `created_at`."""
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def provenance(*libraries: str, **host_extra) -> dict:
    """The block every manifest and result ends with: the named libraries' versions, the host (with `host_extra`
    fields added) and when, in UTC."""
    return {"versions": library_versions(*libraries), "host": {**host_cpu(), **host_extra}, "created_at": utc_now()}
