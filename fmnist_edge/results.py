"""Typed results of `bench` and `micro`: frozen dataclasses that say what a measurement holds, render to the
JSON the commands write (`to_dict`, `save`), and are read back as plain dicts (report.load_result).
(`verify`'s result, runtime.verify.VerifyResult, lives in the runtime, which a device runs alone.)"""

from __future__ import annotations

from dataclasses import asdict, dataclass


class _Saved:
    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path) -> None:
        """Strict JSON, written atomically."""
        from .atomic import write_json

        write_json(path, self.to_dict())


@dataclass(frozen=True)
class BenchResult(_Saved):
    """One `fmnist-edge bench` run: a row per model (Keras first), how it was measured and where."""

    schema_version: int
    run: str
    model: str | None
    test_images: int
    rows: list[dict]  # bench.Row as dicts: name, kind, status, metrics, latency, throughput, extra, sizes
    method: dict  # threads, warm-up, runs, batches, Keras mode, timer, compute peak, FLOPs per image
    host: dict  # fmnist_edge.host.host_cpu() and the OS
    versions: dict
    created_at: str
    pareto: list[str]  # the variants no other beats on accuracy, zlib-9 size and p50 latency at once
    pareto_axes: str
    photos: dict | None = None  # with --photos: the photo set (dir, count, conditions); per-row results in extra


@dataclass(frozen=True)
class MicroReport(_Saved):
    """An int8 artifact on the TensorFlow Lite Micro interpreter (`fmnist-edge micro`)."""

    artifact: str
    runs_on_tflite_micro: bool
    images: int
    accuracy: float
    litert_accuracy: float
    agreement_with_litert: float
    tensor_arena_bytes: int | None
    flash_bytes: int
    ms_per_image_reference_kernels_on_host: float
