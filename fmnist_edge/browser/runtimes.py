"""The browser runtimes, one entry each: the npm package and the files a page loads from it, the CPU-matrix column
that proves a release in it, and the rule its outputs are judged by. A second ONNX or TFLite runtime for the web is
one more entry here (and its loader in static/app.mjs); runtime.variants' `web_runtime` names the entry a variant
runs on. Cheap to import: the CLI reads the column names from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BrowserRuntime:
    id: str  # as runtime.variants' `web_runtime` names it
    package: str  # the npm package, pinned by web/package-lock.json
    folder: str  # the app's directory for its files
    files: dict[str, str] = field(default_factory=dict)  # source in the package -> name in the app's folder
    engine: str = ""  # what it computes with, for the CPU matrix's column label
    # Outputs against those recorded at export: int8 kernels within this many probability units (0: bit for bit,
    # as the WebAssembly builds of XNNPACK and ONNX Runtime compute the same integers as the native ones);
    # float kernels within the variant's own tolerance (rounding differs per build).
    int8_tolerance: float = 0.0

    @property
    def column(self) -> str:
        """The CPU-matrix column (a `--cpus` name) that runs this runtime in headless Chromium."""
        return f"chromium-{self.id}"

    @property
    def label(self) -> str:
        return f"headless Chromium, {self.engine}"

    def tolerance(self, int8_kernels: bool, float_tolerance: float) -> float:
        return self.int8_tolerance if int8_kernels else float_tolerance

    def rule(self, int8_kernels: bool) -> str:
        if int8_kernels:
            return "bit-identical" if self.int8_tolerance == 0 else f"within {self.int8_tolerance:g}"
        return "float"


RUNTIMES = {r.id: r for r in (
    BrowserRuntime("onnxruntime-web", "onnxruntime-web", "ort",
                   {"dist/ort.wasm.min.mjs": "ort.wasm.min.mjs",
                    "dist/ort-wasm-simd-threaded.mjs": "ort-wasm-simd-threaded.mjs",
                    "dist/ort-wasm-simd-threaded.wasm": "ort-wasm-simd-threaded.wasm"},
                   engine="onnxruntime-web (WebAssembly)"),
    # LiteRT.js picks the compat build when the browser lacks relaxed SIMD (Safari), the plain one otherwise: both
    # ship, neither is precached (app.OPTIONAL); the page caches the one its browser loaded (app.mjs).
    BrowserRuntime("litertjs", "@litertjs/core", "litert",
                   {"dist/index.js": "index.js", "../wasm-utils/dist/bundle.js": "wasm-utils.js",
                    **{f"wasm/litert_wasm{k}_internal.{e}": f"wasm/litert_wasm{k}_internal.{e}"
                       for k in ("", "_compat") for e in ("js", "wasm")}},
                   engine="LiteRT.js (WebAssembly)"),
)}
# The CPU matrix's browser columns, {column: label}; `--cpus browser` names them all.
COLUMNS = {r.column: r.label for r in RUNTIMES.values()}
