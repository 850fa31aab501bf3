"""`fmnist-edge bench`: accuracy and latency of every artifact of a run against the Keras original.

Works with the base install (numpy + LiteRT/ONNX Runtime): the Keras row is measured live when
TensorFlow is installed, and otherwise taken from the reference outputs recorded at export, so a
Raspberry Pi still gets accuracy deltas and agreement. Results are data first (`BenchResult`, written
as JSON); rendering (table, Markdown, plot) and gating live in `report.py`.

Method: every model runs with the same thread count. Latency is measured at batch 1 after a warm-up,
with `time.perf_counter_ns` around each call; model load and first inference are timed separately.
Throughput is images/s over whole batches. Accuracy uses the uint8 test images through the runtime's
own preprocessing, exactly as a device would.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import data as fdata
from .errors import FmnistEdgeError
from .host import cpu_name, provenance
from .results import BenchResult
from .runs import RunManifest, read_run
from .tradeoff import pareto

from runtime.compare import compare
from runtime.manifest import compression_search
from runtime.variants import VARIANTS

ARTIFACT_DIRS = tuple(VARIANTS)  # every registered variant, in registry order


MAX_BATCH = 4096  # throughput batches: beyond this a small device runs out of memory long before it gets faster


@dataclass(frozen=True)
class BenchConfig:
    threads: int = 1
    batch_sizes: tuple[int, ...] = (32, 256)
    warmup: int = 50
    runs: int = 500
    variants: tuple[str, ...] | None = None  # None: every artifact found
    keras: str = "auto"  # auto (live if TensorFlow is installed), live, recorded
    data_dir: str | None = None
    test_images: int | None = None  # a seeded class-balanced subset (e.g. for slow emulated devices)
    compute_floor: bool = True  # measure the CPU's matmul peak (meaningless, and slow, under emulation)
    browser: bool = False  # also time the web-capable artifacts in headless Chromium (the web app's runtimes)
    photos: str | None = None  # a photo benchmark or class-folder directory: photo accuracy per artifact

    def __post_init__(self):
        from runtime.backends import MAX_THREADS

        if self.keras not in ("auto", "live", "recorded"):
            raise FmnistEdgeError(f"--keras must be auto, live or recorded; got {self.keras!r}.")
        if self.test_images is not None and self.test_images < 10:
            raise FmnistEdgeError(f"--test-images must be at least 10 (one per class), got {self.test_images}.")
        if not 1 <= self.threads <= MAX_THREADS or self.runs < 10 or self.warmup < 0:
            raise FmnistEdgeError(f"--threads must be from 1 to {MAX_THREADS}, --runs >= 10 and --warmup >= 0.")
        if self.photos is not None and not Path(self.photos).is_dir():
            raise FmnistEdgeError(f"--photos {self.photos}: not a directory. Make a photo benchmark with `python "
                                  "scripts/make_photo_benchmark.py DIR`, or give a folder holding one folder of photos "
                                  "per class name.")
        bad_batches = [b for b in self.batch_sizes if not 1 <= b <= MAX_BATCH]
        if bad_batches:
            raise FmnistEdgeError(f"--batch-size must be between 1 and {MAX_BATCH:,}, got {bad_batches}.")


def percentiles(samples_ns: np.ndarray) -> dict:
    us = samples_ns / 1e3
    return {"p50_us": float(np.percentile(us, 50)), "p90_us": float(np.percentile(us, 90)),
            "p99_us": float(np.percentile(us, 99)), "mean_us": float(us.mean()), "runs": int(len(us))}


def time_calls(fn, warmup: int, runs: int) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(runs, dtype=np.int64)
    for i in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        out[i] = time.perf_counter_ns() - t0
    return out


def interleaved_rounds(calls: dict, rounds: int, runs_per_round: int, warmup: int = 3) -> dict[object, list[np.ndarray]]:
    """Each call's `time_calls` samples (ns), one array per round, timed round-robin so that drift on a shared
    machine hits every call alike: comparisons within one such run are ratios of the same conditions."""
    samples: dict = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            samples[name].append(time_calls(fn, warmup, runs_per_round))
    return samples


def interleaved_p50(calls: dict, rounds: int, runs_per_round: int, warmup: int = 3) -> dict:
    """p50 µs of each call over all its rounds (`interleaved_rounds`)."""
    return {name: float(np.median(np.concatenate(s))) / 1e3
            for name, s in interleaved_rounds(calls, rounds, runs_per_round, warmup).items()}


def throughput(fn_batch, images: np.ndarray, batch_sizes, min_seconds: float = 0.5) -> dict:
    """Images/s at each batch size, over repeated whole batches for at least `min_seconds`. A batch
    larger than the test images repeats them, so every counted image really runs."""
    out = {}
    for b in batch_sizes:
        if b < 1:
            raise ValueError(f"batch size must be at least 1, got {b}")
        x = images[np.arange(b) % len(images)]
        fn_batch(x)  # warm-up (and tensor resize)
        n, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < min_seconds or n < 3:
            fn_batch(x)
            n += 1
        out[str(b)] = round(n * b / elapsed, 1)
    return out


def accuracy_block(probs: np.ndarray, labels: np.ndarray, keras_probs: np.ndarray | None) -> dict:
    pred = probs.argmax(1)
    block = {"accuracy": float((pred == labels).mean()),
             "per_class_recall": [float((pred[labels == c] == c).mean()) for c in range(10)]}
    if keras_probs is not None:
        kpred = keras_probs.argmax(1)
        c = compare(probs, keras_probs, labels, keep=200)
        block.update(
            accuracy_delta_points=round(100 * (c["accuracy"] - c["reference_accuracy"]), 4),
            agreement=c["agreement"], max_abs_diff=c["max_abs_diff"], flipped=c["flipped"],
            flipped_indices=c["flipped_indices"],
            per_class_recall_delta_points=[
                round(100 * (float((pred[labels == c] == c).mean()) - float((kpred[labels == c] == c).mean())), 2)
                for c in range(10)],
        )
    return block


@dataclass
class Row:
    name: str
    kind: str  # keras-live, keras-recorded, artifact
    status: str = "ok"  # ok or error
    reason: str = ""
    format: str = ""
    file_bytes: int | None = None
    compressed_bytes: int | None = None  # zlib level 9: what a download or an OTA update carries
    metrics: dict = field(default_factory=dict)
    latency: dict = field(default_factory=dict)
    throughput: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def browser_latency(run_dir: Path, rows: list[Row], images: np.ndarray) -> None:
    """Batch-1 latency of each web-capable artifact in headless Chromium, through the web app's own code (real
    time, after one warm-up call), recorded in its row's `extra["browser"]` next to the native numbers."""
    from .browser.chromium import browser_outputs

    got = browser_outputs(run_dir, [r.name for r in rows if r.kind == "artifact" and r.status == "ok"], images)
    for r in rows:
        if r.name in got:
            ms = got[r.name]["ms"]
            r.extra["browser"] = {"p50_us": float(np.median(ms) * 1e3), "p90_us": float(np.percentile(ms, 90) * 1e3),
                                  "runs": int(len(ms)), "runtime": got[r.name]["runtime"],
                                  "browser": got[r.name]["user_agent"]}


def photo_accuracy(run_dir: Path, rows: list[Row], cfg: BenchConfig) -> dict:
    """Each working artifact's accuracy on the photos in cfg.photos (runtime.load_image, as predict and the app
    read them) beside the same garments' raw 28x28 accuracy, in its row's `extra["photos"]`; returns what the
    result records about the photo set."""
    import runtime

    from .photos import photo_block, preprocess, read_photo_set

    from . import CLASS_NAMES

    clfs = {r.name: runtime.load(run_dir / r.name, num_threads=cfg.threads) for r in rows
            if r.kind == "artifact" and r.status == "ok"}
    names = next(iter(clfs.values())).manifest["class_names"] if clfs else list(CLASS_NAMES)
    photos = read_photo_set(Path(cfg.photos), names)
    t0 = time.perf_counter()
    images, found = preprocess(photos)
    per_photo_ms = (time.perf_counter() - t0) * 1e3 / len(images)
    raw = None
    if photos.test_indices is not None:
        raw = fdata.load(cfg.data_dir, download=False, train=False).x_test[photos.test_indices]
    for r in rows:
        if r.name in clfs:
            clf = clfs[r.name]
            raw_probs = None if raw is None else clf.predict_proba(raw, batch_size=500)
            r.extra["photos"] = photo_block(clf.predict_proba(images, batch_size=500), found, photos, raw_probs)
    return {"dir": str(photos.root), "photos": len(images), "no_garment": int((~found).sum()),
            "conditions": photos.described, "preprocess_ms_per_photo": round(per_photo_ms, 1)}


def bench_artifact(path: Path, cfg: BenchConfig, images: np.ndarray, labels: np.ndarray, keras_probs) -> Row:
    import runtime
    from runtime.weights import compressed_size

    row = Row(name=path.name, kind="artifact")
    try:
        t0 = time.perf_counter_ns()
        clf = runtime.load(path, num_threads=cfg.threads)
        load_ns = time.perf_counter_ns() - t0
        one = images[:1]
        t0 = time.perf_counter_ns()
        clf.predict_proba(one)
        first_ns = time.perf_counter_ns() - t0
        probs = clf.predict_proba(images, batch_size=500)
        row.format, row.file_bytes = clf.manifest["format"], clf.manifest["file"]["bytes"]
        row.compressed_bytes = compressed_size(clf.path)
        row.metrics = accuracy_block(probs, labels, keras_probs)
        full = percentiles(time_calls(lambda: clf.predict_proba(one), cfg.warmup, cfg.runs))
        raw = percentiles(time_calls(clf.backend.raw_invoker(clf.model_input(one)), cfg.warmup, cfg.runs))
        row.latency = {**full, "load_ms": load_ns / 1e6, "first_inference_ms": first_ns / 1e6,
                       "raw_interpreter_p50_us": raw["p50_us"], "runtime_overhead_p50": full["p50_us"] / raw["p50_us"]}
        row.throughput = throughput(clf.predict_proba, images, cfg.batch_sizes)
        row.extra = {"input_dtype": clf.manifest["input"]["dtype"],
                     "flops_per_image": clf.manifest.get("lineage", {}).get("flops_per_image"),
                     # what export repaired when the plain int8 file missed its gate (exporters.repair)
                     **({"repair": clf.manifest["repair"]} if clf.manifest.get("repair") else {}),
                     # what the pruning or clustering search chose, and whether it met the budget (exporters.search)
                     **({"search": searched} if (searched := compression_search(clf.manifest)) else {})}
    except (runtime.RuntimeArtifactError, ValueError, RuntimeError, OSError) as exc:
        row.status, row.reason = "error", f"{type(exc).__name__}: {exc}"
    return row


def bench_keras_live(run_dir: Path, cfg: BenchConfig, images: np.ndarray, labels: np.ndarray) -> tuple[Row, np.ndarray]:
    """The Keras model in TensorFlow. Its fastest honest batch-1 path is a compiled XLA tf.function;
    eager `model(x)` and `model.predict(x)` are timed too because they are what users usually measure."""
    import tensorflow as tf

    from .keras_io import load_trained_model

    try:  # same thread budget as the artifacts; only possible before TensorFlow starts its runtime
        tf.config.threading.set_intra_op_parallelism_threads(cfg.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    row = Row(name="keras", kind="keras-live", format="keras")
    row.file_bytes = (run_dir / "model.keras").stat().st_size
    t0 = time.perf_counter_ns()
    model = load_trained_model(run_dir / "model.keras")
    load_ns = time.perf_counter_ns() - t0
    x = fdata.to_model_input(images)
    probs = model.predict(x, batch_size=1024, verbose=0)
    one = tf.constant(x[:1])
    compiled = tf.function(lambda t: model(t, training=False), jit_compile=True)
    t0 = time.perf_counter_ns()
    compiled(one).numpy()
    first_ns = time.perf_counter_ns() - t0
    row.metrics = accuracy_block(probs, labels, None)
    row.latency = {**percentiles(time_calls(lambda: compiled(one).numpy(), cfg.warmup, cfg.runs)),
                   "path": "tf.function(jit_compile=True), output copied to numpy",
                   "load_ms": load_ns / 1e6, "first_inference_ms": first_ns / 1e6,
                   "eager_p50_us": percentiles(time_calls(lambda: model(one, training=False).numpy(), 10, 100))["p50_us"],
                   "predict_p50_us": percentiles(time_calls(lambda: model.predict(x[:1], verbose=0), 5, 30))["p50_us"]}
    row.throughput = throughput(lambda b: compiled(tf.constant(b)).numpy(), x, cfg.batch_sizes)
    return row, probs


def measure_peak_gflops(threads: int) -> float | None:
    """Best float32 matmul rate of this CPU with `threads` BLAS threads (in a subprocess, because BLAS
    reads its thread count at import). The compute floor of a model is its FLOPs over this rate."""
    code = ("import time, numpy as np\n"
            "a = np.random.rand(1024, 1024).astype(np.float32); b = a.copy(); a @ b\n"
            "best = min((lambda t: (a @ b, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(10))\n"
            "print(2 * 1024**3 / best / 1e9)")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    # Some hosts pin OpenBLAS to an older kernel (OPENBLAS_CORETYPE) for safety; that would understate the
    # peak, so this one measurement lets OpenBLAS pick the CPU's own kernel.
    env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    return float(out.stdout.strip()) if out.returncode == 0 else None


def load_test_set(run: RunManifest, data_dir: str | None, test_images: int | None):
    """The run's test images (its --limit subset if it had one), optionally a further subset.

    Returns images, labels, and positions into the run's test set (to pick matching recorded outputs)."""
    ds = fdata.load(data_dir, download=False, train=False)
    idx = run.test_indices(ds.y_test)
    pos = np.arange(len(idx))
    if test_images is not None and test_images < len(idx):
        pos = fdata.subset(ds.y_test[idx], test_images, 0)
    return ds.x_test[idx[pos]], ds.y_test[idx[pos]], pos


def recorded_keras_probs(run_dir: Path, needed: int) -> np.ndarray:
    """The Keras outputs export recorded, checked against keras-outputs/manifest.json (sha256, shape) before
    use: a shifted or swapped file would silently turn every agreement and delta into nonsense."""
    from runtime.errors import ManifestError, RuntimeArtifactError
    from runtime.manifest import keras_outputs_dir, read_json
    from runtime.verify import load_verified, probabilities

    outputs = keras_outputs_dir(run_dir)
    recorded = outputs / "test_probs.npy"
    if not recorded.is_file():
        raise FmnistEdgeError(f"{recorded}: missing; without TensorFlow, bench needs the Keras outputs written by export.")
    try:
        ref = read_json(outputs / "manifest.json")
        want = ref["files"]["test_probs.npy"]["sha256"]
        shape = ref["test_probs"]["shape"]
    except (ManifestError, KeyError, TypeError) as exc:
        raise FmnistEdgeError(f"{outputs / 'manifest.json'}: missing or malformed ({exc}); it must record "
                              "test_probs.npy's sha256 and shape. Re-export the run.") from None
    try:  # the same checked loading `verify` uses for the golden files
        probs = probabilities(load_verified(recorded, want, f"{outputs.name}/manifest.json"), recorded)
    except RuntimeArtifactError as exc:
        raise FmnistEdgeError(f"{exc} Re-copy the release or re-export the run.") from None
    if list(probs.shape) != list(shape) or len(probs) < needed:
        raise FmnistEdgeError(f"{recorded}: shape {probs.shape}, expected {shape} covering {needed} test images; re-export the run.")
    return probs.astype(np.float32)


def tensorflow_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def run_bench(run_dir: Path, cfg: BenchConfig, progress=None) -> BenchResult:
    run_dir = Path(run_dir)
    run = read_run(run_dir, need_model=False)  # a release on a device may carry no Keras model
    names = cfg.variants or tuple(n for n in ARTIFACT_DIRS if (run_dir / n).is_dir())
    missing = [n for n in names if not (run_dir / n).is_dir()]
    if missing or not names:
        raise FmnistEdgeError(f"{run_dir}: no artifact(s) {missing or list(ARTIFACT_DIRS)}; run `fmnist-edge export {run_dir}` first.")
    images, labels, positions = load_test_set(run, cfg.data_dir, cfg.test_images)
    step = progress or (lambda msg: None)
    rows, keras_probs = [], None
    mode = cfg.keras if cfg.keras != "auto" else ("live" if tensorflow_available() and (run_dir / "model.keras").is_file() else "recorded")
    if mode == "live":
        step("keras (TensorFlow, live)")
        row, keras_probs = bench_keras_live(run_dir, cfg, images, labels)
        rows.append(row)
    elif mode == "recorded":
        keras_probs = recorded_keras_probs(run_dir, int(positions.max()) + 1)
        keras_probs = keras_probs[positions]
        rows.append(Row(name="keras", kind="keras-recorded", format="keras", status="ok",
                        reason="recorded at export (TensorFlow not used here); no latency",
                        metrics=accuracy_block(keras_probs, labels, None)))
    for name in names:
        step(name)
        rows.append(bench_artifact(run_dir / name, cfg, images, labels, keras_probs))
    if cfg.browser:
        step("the web artifacts in headless Chromium")
        browser_latency(run_dir, rows, images[: cfg.runs])
    photo_set = None
    if cfg.photos:
        step(f"photos in {cfg.photos}")
        photo_set = photo_accuracy(run_dir, rows, cfg)
    step("compute floor (matmul peak)")
    peak = measure_peak_gflops(cfg.threads) if cfg.compute_floor else None
    flops = next((r.extra.get("flops_per_image") for r in rows if r.extra.get("flops_per_image")), None)
    for r in rows:
        # The floor is a float32 matmul rate: it says nothing about int8 kernels, so int8 rows get none.
        spec = VARIANTS.get(r.name)
        if flops and peak and r.latency.get("p50_us") and not (spec and spec.int8_kernels):
            floor_us = flops / (peak * 1e3)
            r.extra.update(compute_floor_us=floor_us, p50_over_floor=r.latency["p50_us"] / floor_us)
    result = {
        "schema_version": 1,
        "run": str(run_dir),
        "model": run.fields.get("model"),
        "test_images": int(len(labels)),
        "rows": [asdict(r) for r in rows],
        "method": {
            "threads": cfg.threads, "latency_batch": 1, "warmup": cfg.warmup, "runs": cfg.runs,
            "throughput_batches": list(cfg.batch_sizes), "keras": mode,
            "timer": "time.perf_counter_ns around each call", "percentiles": [50, 90, 99],
            "peak_gflops_float32_matmul": peak, "flops_per_image": flops,
        },
        **provenance("numpy", "ai-edge-litert", "tflite-runtime", "onnxruntime", "tensorflow", "keras", cpu=cpu_name(),
                     system=f"{platform.system()} {platform.release()}", python=platform.python_version()),
    }
    if photo_set:
        result["photos"] = photo_set
    result["pareto"] = pareto(result)
    result["pareto_axes"] = "test accuracy (max), zlib-9 compressed size (min), batch-1 p50 latency on this CPU (min)"
    return BenchResult(**result)
