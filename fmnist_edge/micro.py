"""Microcontroller support for full-integer int8 TFLite artifacts.

- `micro_report`: does the model run on the TensorFlow Lite Micro interpreter (the `tflite-micro`
  package, optional extra `micro`), how accurate is it there, how much tensor-arena RAM and flash it needs.
- `write_c_source`: the model as a C source/header pair for firmware (byte array, length, and the
  input/output quantization constants and class names), as TFLite Micro projects embed it.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from runtime.compare import compare

from .errors import FmnistEdgeError, MissingExtraError
from .atomic import text as text_writer, write_together
from .results import MicroReport
from .paths import check_output_dir


def _flush_c_stdio() -> None:
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def capture_fd(fd: int):
    """Capture what C++ code writes to a file descriptor (print_allocations logs to stderr directly)."""
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), fd)
        box = {}
        try:
            yield box
        finally:
            _flush_c_stdio()  # C's stdio may buffer when it is not a terminal
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            box["text"] = tmp.read().decode(errors="replace")


def _int8_artifact(artifact: Path):
    import runtime

    from runtime.variants import VARIANTS

    clf = runtime.load(artifact)
    m = clf.manifest
    if m["format"] != "tflite" or not m["input"].get("quantization") or m["input"]["dtype"] != "int8":
        choices = ", ".join(v.name for v in VARIANTS.values() if v.full_integer)
        raise FmnistEdgeError(f"{artifact}: microcontrollers need a full-integer int8 TFLite artifact "
                              f"({choices}), not {m['variant']}.")
    float_layers = (m.get("repair") or {}).get("float_layers")
    if float_layers:
        raise FmnistEdgeError(f"{artifact}: not full-integer: export repaired it by keeping {', '.join(float_layers)} in "
                              "float (manifest `repair`), and TFLite Micro's int8 kernels cannot run float layers. Export "
                              "with --qat (trains the model for int8), or fix what `fmnist-edge explain` shows.")
    return clf


def micro_report(artifact: Path, images: np.ndarray, labels: np.ndarray) -> MicroReport:
    try:
        from tflite_micro.python.tflite_micro import runtime as micro
    except ImportError:
        raise MissingExtraError("The TFLite Micro check needs the tflite-micro package: "
                                "pip install --pre 'fmnist-edge[micro]' (or pip install --pre tflite-micro).") from None
    clf = _int8_artifact(Path(artifact))
    with capture_fd(2) as log:
        it = micro.Interpreter.from_file(str(clf.path))
        x = clf.model_input(images)
        outputs = np.empty((len(x), 10), np.int8)
        t0 = time.perf_counter()
        for i in range(len(x)):
            it.set_input(x[i : i + 1], 0)
            it.invoke()
            outputs[i] = it.get_output(0)[0]
        seconds = time.perf_counter() - t0
        it.print_allocations()
    arena = re.search(r"Arena allocation total (\d+) bytes", log["text"])
    q = clf.manifest["output"]["quantization"]
    micro_probs = (outputs.astype(np.float32) - q["zero_point"]) * q["scale"]
    vs_litert = compare(micro_probs, clf.predict_proba(images), labels)
    return MicroReport(
        artifact=clf.manifest["variant"],
        runs_on_tflite_micro=True,
        images=int(len(images)),
        accuracy=vs_litert["accuracy"],
        litert_accuracy=vs_litert["reference_accuracy"],
        agreement_with_litert=vs_litert["agreement"],
        tensor_arena_bytes=int(arena.group(1)) if arena else None,
        flash_bytes=clf.manifest["file"]["bytes"],
        ms_per_image_reference_kernels_on_host=round(1000 * seconds / len(images), 2),
    )


# C and C++ keywords (and the alternative operator spellings) that a generated identifier must not be.
C_KEYWORDS = frozenset("""alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
char32_t class compl concept const consteval constexpr constinit const_cast continue co_await co_return co_yield
decltype default delete do double dynamic_cast else enum explicit export extern false float for friend goto if inline
int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public register
reinterpret_cast requires restrict return short signed sizeof static static_assert static_cast struct switch template
this thread_local throw true try typedef typeid typename union unsigned using virtual void volatile wchar_t while xor
xor_eq _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local""".split())


def _c_ident(name: str) -> str:
    """--name is both the C identifier and the file stem, so it is refused rather than mangled."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name or ""):
        raise FmnistEdgeError(f"--name {name!r}: use a C identifier (letters, digits and _, not starting with a digit, "
                              "at most 63 characters); it names the files NAME.h and NAME.cc inside --out.")
    if name in C_KEYWORDS or name.upper() in C_KEYWORDS:
        raise FmnistEdgeError(f"--name {name!r} is a C/C++ keyword; choose another name, e.g. {name}_model.")
    return name


def _c_string(text: str) -> str:
    """A C string literal for any text: quotes, backslashes, control and non-ASCII bytes escaped (octal)."""
    out = []
    for b in text.encode("utf-8"):
        c = chr(b)
        out.append("\\" + c if c in '"\\' else c if 32 <= b < 127 and c != "?" else f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def _c_comment(text: str) -> str:
    """Text safe inside a // comment: printable ASCII only, so no newline can end the comment."""
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in str(text))


def write_c_source(artifact: Path, out_dir: Path, name: str = "fmnist_model") -> tuple[Path, Path]:
    """Write NAME.h and NAME.c; both are written to temporary files and renamed only when complete."""
    clf = _int8_artifact(Path(artifact))
    ident = _c_ident(name)
    data = clf.path.read_bytes()
    qi, qo = clf.manifest["input"]["quantization"], clf.manifest["output"]["quantization"]
    names = ", ".join(_c_string(c) for c in clf.class_names)
    variant, sha = _c_comment(clf.manifest["variant"]), _c_comment(clf.manifest["file"]["sha256"])
    guard = ident.upper() + "_H_"
    header = f"""// Generated by fmnist-edge from {variant} (sha256 {sha}).
// Input: int8 [1, 28, 28, 1] NHWC, q = clamp(round(pixel / 255 / IN_SCALE + IN_ZERO_POINT), -128, 127)
// Output: int8 [1, 10], probability = (q - OUT_ZERO_POINT) * OUT_SCALE
#ifndef {guard}
#define {guard}

#define {ident.upper()}_IN_SCALE {qi['scale']!r}f
#define {ident.upper()}_IN_ZERO_POINT {qi['zero_point']}
#define {ident.upper()}_OUT_SCALE {qo['scale']!r}f
#define {ident.upper()}_OUT_ZERO_POINT {qo['zero_point']}
#define {ident.upper()}_NUM_CLASSES {len(clf.class_names)}

extern const unsigned char {ident}[];
extern const unsigned int {ident}_len;
extern const char *const {ident}_class_names[{len(clf.class_names)}];

#endif  // {guard}
"""
    rows = ",\n".join("  " + ", ".join(f"0x{b:02x}" for b in data[i : i + 12]) for i in range(0, len(data), 12))
    source = f"""// Generated by fmnist-edge from {variant}; {len(data)} bytes.
#include "{name}.h"

// TFLite Micro requires the flatbuffer to be 16-byte aligned.
alignas(16) const unsigned char {ident}[] = {{
{rows}
}};
const unsigned int {ident}_len = {len(data)};
const char *const {ident}_class_names[{len(clf.class_names)}] = {{{names}}};
"""
    check_output_dir(out_dir, "--out")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = (out_dir / f"{name}.h", out_dir / f"{name}.cc")
    write_together({path: text_writer(content) for path, content in zip(paths, (header, source))})
    return paths


# Cortex-M4 with its single-precision FPU (STM32F4, nRF52840, SAMD51...): the usual TFLite Micro target.
CORTEX_M4_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os", "-std=c++17")


def compile_for_cortex_m4(source: Path) -> dict:
    """Compile a generated NAME.cc for a Cortex-M4 with Debian's gcc-arm-none-eabi and read its footprint:
    flash is what the object puts in read-only sections (the model bytes and class names), RAM what it
    puts in .data/.bss (nothing: the model stays in flash; TFLite Micro's arena is separate)."""
    import shutil
    import subprocess

    compiler = shutil.which("arm-none-eabi-g++")
    size_tool = shutil.which("arm-none-eabi-size")
    if not compiler or not size_tool:
        raise FmnistEdgeError("compiling for a Cortex-M4 needs the Arm bare-metal compiler: "
                              "sudo apt-get install --no-install-recommends gcc-arm-none-eabi (scripts/setup.sh installs it).")
    obj = source.with_suffix(".cortex-m4.o")
    proc = subprocess.run([compiler, *CORTEX_M4_FLAGS, "-c", str(source), "-o", str(obj)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise FmnistEdgeError(f"{source}: arm-none-eabi-g++ failed:\n{proc.stderr.strip()[:2000]}")
    sizes = subprocess.run([size_tool, "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    sections = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\S+)\s+(\d+)\s+\d+\s*$", sizes, re.M)}
    ram = sections.get(".data", 0) + sections.get(".bss", 0)
    flash = sum(v for k, v in sections.items() if k.startswith((".text", ".rodata"))) + sections.get(".data", 0)
    return {"target": "Cortex-M4 (ARMv7E-M, Thumb-2, FPv4-SP)", "flags": list(CORTEX_M4_FLAGS), "object": str(obj),
            "flash_bytes": flash, "ram_bytes": ram, "sections": sections,
            "compiler": subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout.splitlines()[0]}
