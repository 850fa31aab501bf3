"""The CPU matrix: run artifacts' golden images on this CPU and on emulated ones, and compare each run
with the outputs recorded at export.

int8 kernels may compute differently per instruction set (ONNX Runtime's S8S8 saturates on x86 without
VNNI), so a release is proven on each CPU class users have, not only on the one that exported it:
- `native`: this machine, whatever it is (its instruction-set features are named);
- `Nehalem-v1` (x86-64 SSE4.2 only) and `Haswell-v4` (AVX2, no AVX-512/VNNI) under qemu user-mode
  emulation, which runs this venv's own Python (`qemu-x86_64-static -cpu ...`, no sysroot);
- `cortex-a72` / `cortex-a76` (Raspberry Pi 4 / 5) under qemu-aarch64 in the arm64 sysroot that
  `scripts/arm64_check.sh --prepare` builds. qemu cannot emulate AVX-512, so only `native` covers it.
Each row starts one `python -m runtime.probe` process, TensorFlow-free like a device. Importing this
module is cheap (the CLI reads its CPU names); numpy is imported where it is used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .browser.runtimes import COLUMNS as BROWSER_COLUMNS
from .errors import FmnistEdgeError

X86_CPUS = {"Nehalem-v1": "x86-64 SSE4.2, no AVX", "Haswell-v4": "x86-64 AVX2, no AVX-512/VNNI"}
ARM_CPUS = {"cortex-a72": "arm64 Cortex-A72 (Raspberry Pi 4)", "cortex-a76": "arm64 Cortex-A76 (Raspberry Pi 5)"}
BROWSER = BROWSER_COLUMNS  # one column per browser runtime (browser/runtimes.py), each judged by its own rule
ALL_CPUS = ("native", *X86_CPUS, *ARM_CPUS, *BROWSER)
# `--cpus` names that stand for several columns.
CPU_GROUPS = {"browser": tuple(BROWSER), "x86": tuple(X86_CPUS), "arm64": tuple(ARM_CPUS)}
# Under TCG a reference-sized model runs ~100-300x slower than natively; a stuck emulator must not hang CI.
PROBE_TIMEOUT_S = 1800
# Float kernels are the slow ones under emulation (TCG runs FMA through softfloat: the reference's float32
# TFLite takes ~3 s per image as Haswell-v4, 0.35 s as Nehalem-v1, 5 ms natively) and the least likely to
# differ per CPU (rounding only; tolerance 1e-4). Emulated CPUs run them on this many golden images, spread
# over the set; int8 kernels, whose arithmetic does differ per instruction set, always get every image.
EMULATED_FLOAT_IMAGES = 30

# /proc/cpuinfo for the arm64 sysroot: qemu 7.2 does not fake it for aarch64 and both interpreters crash
# probing the CPU without one. Features as the real cores report them (A76 adds the dot-product ISA).
_ARM_CPUINFO = {
    "cortex-a72": ("fp asimd evtstrm crc32 cpuid", "0x0", "0xd08", "3"),
    "cortex-a76": ("fp asimd evtstrm crc32 cpuid atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp", "0x4", "0xd0b", "1"),
}


if TYPE_CHECKING:
    import numpy as np


class EmulationError(FmnistEdgeError):
    """An emulated CPU could not be run (qemu or the arm64 sysroot missing) or the runtime failed under it."""


def expand_cpus(names: str) -> tuple[str, ...]:
    """`--cpus` as given (comma-separated, groups such as `browser` allowed) -> the matrix's columns, in order,
    each once. Unknown names raise with the choices."""
    cpus: list[str] = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name not in ALL_CPUS and name not in CPU_GROUPS:
            raise FmnistEdgeError(f"--cpus: unknown {name!r}; choose from {', '.join(ALL_CPUS)} "
                                  f"(or the groups {', '.join(CPU_GROUPS)}).")
        cpus += [c for c in CPU_GROUPS.get(name, (name,)) if c not in cpus]
    if not cpus:
        raise FmnistEdgeError(f"--cpus: empty list; choose from {', '.join(ALL_CPUS)}.")
    return tuple(cpus)


def arm_cpuinfo(cpu: str) -> str:
    features, variant, part, revision = _ARM_CPUINFO[cpu]
    return (f"processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: {features}\nCPU implementer\t: 0x41\n"
            f"CPU architecture: 8\nCPU variant\t: {variant}\nCPU part\t: {part}\nCPU revision\t: {revision}\n")


def arm64_cache() -> Path:
    return Path(os.environ.get("ARM64_CACHE", Path.home() / ".cache" / "fmnist-edge-arm64"))


def _qemu(binary: str) -> str:
    found = shutil.which(binary)
    if not found:
        raise EmulationError(f"{binary} not found; install it with `apt-get install qemu-user-static` "
                             "(or limit the matrix with --cpus native).")
    return found


def _runtime_root() -> Path:
    import runtime

    return Path(runtime.__file__).resolve().parent.parent


PINNED_KERNEL_VARS = ("OPENBLAS_CORETYPE",)


def probe_command(cpu: str) -> tuple[list[str], dict]:
    """The command prefix and environment that run `python -m runtime.probe` as `cpu`."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    if cpu == "native":
        return [sys.executable], {**env, "PYTHONPATH": str(_runtime_root())}
    # An emulated CPU must be detected by the libraries as a real one would be: a kernel choice pinned for the
    # host (some machines set OPENBLAS_CORETYPE=Haswell) makes numpy's OpenBLAS run AVX2 code as Nehalem (SIGILL).
    env = {k: v for k, v in env.items() if k not in PINNED_KERNEL_VARS}
    if cpu in X86_CPUS:
        return [_qemu("qemu-x86_64-static"), "-cpu", cpu, sys.executable], {**env, "PYTHONPATH": str(_runtime_root())}
    if cpu in ARM_CPUS:
        cache = arm64_cache()
        sysroot, wheels = cache / "sysroot", cache / "site"
        if not (sysroot / "usr/bin/python3.11").is_file() or not (wheels / ".complete").is_file():
            raise EmulationError(f"{cpu}: no arm64 sysroot in {cache}; build it with `bash scripts/arm64_check.sh --prepare` "
                                 "(or set ARM64_CACHE, or leave arm64 out with --cpus).")
        # One cpuinfo file serves every row: probe() holds _ARM_SYSROOT from here until its process ends.
        (sysroot / "proc").mkdir(exist_ok=True)
        (sysroot / "proc/cpuinfo").write_text(arm_cpuinfo(cpu))
        # Always name a real core: qemu's default `max` advertises SVE/SME and XNNPACK then computes wrong int8.
        cmd = [_qemu("qemu-aarch64-static"), "-cpu", cpu, "-L", str(sysroot), str(sysroot / "usr/bin/python3.11")]
        return cmd, {**env, "PYTHONPATH": f"{_runtime_root()}:{wheels}"}
    raise EmulationError(f"unknown CPU {cpu!r}; choose from {', '.join(ALL_CPUS)}.")


# The arm64 rows share one sysroot and its /proc/cpuinfo (the CPU the runtimes see): one arm64 probe at a time.
_ARM_SYSROOT = threading.Lock()


def probe(cpu: str, artifacts: list[Path], images: np.ndarray) -> list[np.ndarray]:
    """Each artifact's probabilities on `images` (uint8 N x 28 x 28), computed by the runtime running as `cpu`."""
    import numpy as np

    with _ARM_SYSROOT if cpu in ARM_CPUS else nullcontext(), tempfile.TemporaryDirectory(prefix="fmnist-edge-probe-") as tmp:
        cmd, env = probe_command(cpu)
        np.save(Path(tmp) / "images.npy", np.ascontiguousarray(images, dtype=np.uint8))
        args = ["-m", "runtime.probe", f"{tmp}/images.npy", f"{tmp}/out.npz", *map(str, artifacts)]
        try:
            proc = subprocess.run(cmd + args, env=env, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise EmulationError(f"{cpu}: the runtime did not finish within {PROBE_TIMEOUT_S} s under emulation.") from None
        if proc.returncode != 0:
            tail = "\n    ".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
            raise EmulationError(f"{cpu}: the runtime failed (exit {proc.returncode}):\n    {tail}")
        with np.load(f"{tmp}/out.npz") as z:
            return [z[f"out{i}"] for i in range(len(artifacts))]


@dataclass
class Cell:
    agreement: float | None  # None where the column does not apply
    max_abs_diff: float | None
    tolerance: float
    images: int
    problems: list[str] = field(default_factory=list)
    applies: bool = True  # False: this column cannot run the artifact (a format the browser does not take)

    @property
    def passed(self) -> bool:
        return not self.problems


def run_matrix(artifact_dirs: list[Path], cpus: tuple[str, ...], progress=None) -> dict[str, dict[str, Cell]]:
    """{cpu: {variant: Cell}} comparing each CPU's outputs on the golden images with the export-time ones."""
    import runtime
    from runtime.manifest import keras_outputs_dir
    from runtime.verify import compare_with_export, expected_outputs, golden_set, output_tolerance

    clfs = [runtime.load(d) for d in artifact_dirs]
    refs = {c.path.parent.parent for c in clfs}
    if len(refs) != 1:
        raise FmnistEdgeError("the CPU matrix runs the artifacts of one release at a time.")
    images = golden_set(keras_outputs_dir(refs.pop()))["images"]
    expected = [expected_outputs(c) for c in clfs]
    tolerances = [output_tolerance(c.manifest) for c in clfs]
    int8 = [i for i, (kind, _) in enumerate(tolerances) if kind == "int8"]
    floats = [i for i in range(len(clfs)) if i not in int8]
    def column(cpu: str) -> dict[str, Cell]:
        if progress:
            progress(cpu)
        if cpu in BROWSER:
            return browser_cells(cpu, clfs, expected, images)
        cells: dict[int, Cell] = {}
        # One probe process per group: int8 kernels on every image, float kernels on a subset when emulated.
        for members, rows in ((int8, slice(None)), (floats, slice(None) if cpu == "native" else float_subset(len(images)))):
            outputs = probe(cpu, [clfs[i].path.parent for i in members], images[rows]) if members else []
            for i, got in zip(members, outputs):
                agreement, diff, problems = compare_with_export(got, expected[i][rows], tolerances[i][1])
                cells[i] = Cell(agreement, diff, tolerances[i][1], len(got), problems)
        return {clfs[i].variant: cells[i] for i in sorted(cells)}

    return dict(zip(cpus, _in_lanes(column, cpus)))


def _in_lanes(fn, items) -> list:
    """fn over items, two at a time (each probe is one single-threaded emulator process; two use both cores of
    a small CI machine and halve the matrix's time); results in order, the first failure raised."""
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        return list(pool.map(fn, items))


def browser_cells(column: str, clfs, expected, images) -> dict[str, Cell]:
    """A browser runtime's column: the artifacts that runtime runs, through the web app in headless Chromium,
    judged by the runtime's own rule; the other artifacts do not apply."""
    from .browser.chromium import browser_outputs, judge
    from .browser.runtimes import RUNTIMES

    runtime_id = next(r.id for r in RUNTIMES.values() if r.column == column)
    got = browser_outputs(clfs[0].path.parent.parent, [c.variant for c in clfs], images, runtime_id)
    cells = {}
    for clf, e in zip(clfs, expected):
        if clf.variant not in got:
            cells[clf.variant] = Cell(None, None, 0.0, 0, applies=False)
            continue
        agreement, diff, tolerance, problems = judge(clf, got[clf.variant]["probs"], e)
        cells[clf.variant] = Cell(agreement, diff, tolerance, len(e), problems)
    return cells


def cpu_labels(host: dict) -> dict[str, str]:
    """Each CPU's column label: this machine's model and class for `native`, the emulated ones' class."""
    return {"native": f"native: {host['model']}, {host['class']}", **X86_CPUS, **ARM_CPUS, **BROWSER}


def matrix_record(matrix: dict[str, dict[str, Cell]], host: dict, cpus: tuple[str, ...]) -> dict:
    """The matrix as `verify --cpu-matrix --json` writes it."""
    labels = cpu_labels(host)
    return {"host": host, "cpus": {c: labels[c] for c in cpus},
            "results": {cpu: {v: {**vars(cell), "passed": cell.passed} for v, cell in row.items()}
                        for cpu, row in matrix.items()}}


def float_subset(n: int) -> np.ndarray:
    """Indices of EMULATED_FLOAT_IMAGES golden images spread evenly over all n (every class, not the first few)."""
    import numpy as np

    return np.unique(np.linspace(0, n - 1, min(n, EMULATED_FLOAT_IMAGES)).round().astype(int))


def portability_rows(model_file: Path, images: np.ndarray, native: np.ndarray, tolerance: float,
                   cpus: tuple[str, ...] = tuple(X86_CPUS)) -> dict:
    """Export's gate: the file's outputs on `images` under each emulated CPU against `native` (those just
    computed here). Returns a record for the manifest; the caller decides what a failure means."""
    from runtime.verify import compare_with_export

    def row(cpu: str) -> dict:
        agreement, diff, problems = compare_with_export(probe(cpu, [model_file], images)[0], native, tolerance)
        return {"agreement": agreement, "max_abs_diff": diff, "passed": not problems, "problems": problems}

    return dict(zip(cpus, _in_lanes(row, cpus)))
