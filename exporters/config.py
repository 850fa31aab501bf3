"""Every export option: its default, its help text and its check, written once.

Each dataclass validates itself on construction, so a bad value fails before TensorFlow loads, whether it
came from the CLI, `exporters.export(...)` in a notebook or a script. The CLI builds its options from the
`help` metadata and defaults here (`option()`). Kept free of numpy and TensorFlow: --help reads it.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields

from fmnist_edge.cpumatrix import X86_CPUS
from runtime.variants import VARIANTS

from .errors import ExportError

# ONNX Runtime int8 schemes (QDQ, per-channel weights). On x86 without AVX-512 VNNI, ORT runs int8 x int8
# products through a saturating 16-bit intermediate (signed activations are shifted to uint8 first), so the
# same S8S8 file computes differently on AVX2, SSE4.2 and VNNI CPUs. 7-bit weights (`reduce_range`) or
# uint8 x uint8 operands cannot saturate: every CPU computes the exact integer result. The default was
# chosen by measurement (scripts/onnx_int8_schemes.py; docs/guides/exporting.md, "ONNX int8 on every CPU").
ONNX_INT8_SCHEMES = {
    "s8s8": {"activation": "QInt8", "weight": "QInt8", "reduce_range": False,
             "portable": False, "why": "int8 x int8; saturates a 16-bit intermediate on x86 without VNNI"},
    "s8s8-reduce-range": {"activation": "QInt8", "weight": "QInt8", "reduce_range": True,
                          "portable": True, "why": "7-bit weights: products cannot saturate the 16-bit intermediate"},
    "u8s8-reduce-range": {"activation": "QUInt8", "weight": "QInt8", "reduce_range": True,
                          "portable": True, "why": "ORT's recommended x86 scheme: uint8 activations, 7-bit weights"},
    "u8u8": {"activation": "QUInt8", "weight": "QUInt8", "reduce_range": False,
             "portable": True, "why": "uint8 x uint8 operands are widened exactly to 16 bits before accumulation"},
}
OPSETS = (13, 18)  # tf2onnx 1.17 writes opsets 13 to 18


def _opt(default, help: str, **kw):
    return field(default=default, metadata={"help": help}, **kw)


def option_default(cls, name: str):
    """The default of `cls.name` (what the CLI shows and passes when the option is not given)."""
    f = {f.name: f for f in fields(cls)}[name]
    return f.default if f.default is not MISSING else f.default_factory()


def option_help(cls, name: str) -> str:
    return {f.name: f for f in fields(cls)}[name].metadata["help"]


def _check_schedule(what: str, cfg) -> None:
    if cfg.epochs < 1 or cfg.batch_size < 1 or not cfg.learning_rate > 0 or not 0.0 <= cfg.min_share <= 1.0:
        raise ExportError(f"{what}: epochs and batch size must be >= 1, the learning rate > 0 and the layer share "
                          f"from 0 to 1 (got epochs {cfg.epochs}, batch {cfg.batch_size}, lr {cfg.learning_rate}, "
                          f"share {cfg.min_share}).")


@dataclass(frozen=True)
class QATConfig:
    epochs: int = _opt(1, "QAT fine-tuning epochs.")
    # 1e-4: on the default fine-tuning subset, 3e-5 leaves QAT below post-training int8 (its fake-quantization ranges
    # settle with the steps; docs/results/export.md, "Fine-tuning on a subset").
    learning_rate: float = _opt(1e-4, "QAT fine-tuning learning rate (Adam).")
    batch_size: int = _opt(256, "QAT fine-tuning batch size.")
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or not self.learning_rate > 0:
            raise ExportError("--qat-epochs and --qat-batch-size must be >= 1 and --qat-learning-rate > 0.")


@dataclass(frozen=True)
class PruneConfig:
    sparsity: float = _opt(0.9, "Pruning: target fraction of zero weights per pruned layer.")
    # layers holding less than this share of the model's weights stay dense
    min_share: float = _opt(0.25, "Pruning: only layers holding at least this share of the model's weights (0-1).")
    epochs: int = _opt(3, "Pruning: fine-tuning epochs.")
    # sparsity rises (polynomially) from 0 to the target over these epochs, then holds
    ramp_epochs: int = _opt(2, "Pruning: epochs over which sparsity rises to the target.")
    learning_rate: float = _opt(1e-4, "Pruning: fine-tuning learning rate (Adam).")
    batch_size: int = 256
    seed: int = 0
    cosine_decay: bool = False  # the search's longer schedule (exporters.search) decays the learning rate to 0

    def __post_init__(self):
        if not 0.0 < self.sparsity < 1.0:
            raise ExportError(f"pruning sparsity must be between 0 and 1 (e.g. 0.9 = 90% zeros), got {self.sparsity}.")
        _check_schedule("pruning", self)
        if not 1 <= self.ramp_epochs <= self.epochs:
            raise ExportError(f"pruning ramp epochs must be from 1 to the pruning epochs ({self.epochs}), got {self.ramp_epochs}.")


@dataclass(frozen=True)
class ClusterConfig:
    # each weight is one of the centroids (16 missed 15% of float32 zlib-9)
    clusters: int = _opt(8, "Clustering: centroids per clustered layer (2-256).")
    # 1%: on `edge` the 1x1 convolution (1.7% of the weights) clustered too keeps the file under 15% of float32 zlib-9
    min_share: float = _opt(0.01, "Clustering: only layers holding at least this share of the model's weights (0-1).")
    epochs: int = _opt(1, "Clustering: fine-tuning epochs.")
    learning_rate: float = _opt(3e-5, "Clustering: fine-tuning learning rate (Adam).")
    batch_size: int = 256
    seed: int = 0
    cosine_decay: bool = False

    def __post_init__(self):
        # int8 has 256 values: more centroids than that cannot survive quantization
        if not 2 <= self.clusters <= 256:
            raise ExportError(f"clusters must be from 2 to 256, got {self.clusters}.")
        _check_schedule("clustering", self)


REPAIR_MODES = ("auto", "none")


@dataclass(frozen=True)
class ExportConfig:
    variants: tuple[str, ...] = tuple(VARIANTS)
    calibration_images: int = _opt(500, "Calibration images for int8, class-balanced from the training split.")
    calibration_seed: int = _opt(0, "Seed for choosing the calibration images.")
    qat: QATConfig = field(default_factory=QATConfig)
    pruning: PruneConfig = field(default_factory=PruneConfig)
    clustering: ClusterConfig = field(default_factory=ClusterConfig)
    # Fine-tuning (QAT, pruning, clustering) is most of an export's time; a class-balanced third of the training
    # split cuts it about threefold and costs the fine-tuned variants 0.11-0.28 accuracy points against fine-tuning
    # on all of it (artifacts/fine_tune_study.json; docs/results/export.md, "Fine-tuning on a subset").
    fine_tune_images: int = _opt(18_000, "Images to fine-tune QAT, pruning and clustering on: a seeded class-balanced "
                                 "subset of the training split (0: all of it).")
    # The search behind the pruning and clustering defaults (exporters.compress.search): the configured setting on
    # the fine-tuning subset, then a longer schedule on the whole training split, then a lower sparsity (more
    # centroids), until the int8 file is within this many points of the Keras model's test accuracy.
    compression_max_drop: float = _opt(0.5, "Pruning and clustering: the most test accuracy, in points, the int8 file "
                                       "may lose against the Keras model; export searches until one setting holds.")
    compression_attempts: int = _opt(4, "Pruning and clustering: settings tried at most (1: only the one given, no search).")
    controls: bool = _opt(False, "Also fine-tune a float control with each fine-tuned variant's schedule (no "
                          "quantization, pruning or clustering), to tell what the extra training does from what the "
                          "method costs; doubles the fine-tuning time.")
    opset: int = _opt(17, f"ONNX opset (tf2onnx 1.17 supports {OPSETS[0]} to {OPSETS[1]}).")
    onnx_int8_scheme: str = _opt("u8u8", "ONNX Runtime int8 scheme: u8u8 (default, portable), s8s8-reduce-range, "
                                 "u8s8-reduce-range, or s8s8 (differs per CPU; needs --no-portability-check).")
    repair: str = _opt("auto", "When a post-training int8 file misses its gate: auto (try cross-layer equalization, then "
                       "keeping the layers `explain` points at in float; each checked by the gate again) or none "
                       "(refuse at once).")
    # int8 kernels differ per instruction set: every int8 variant must reproduce its outputs under these
    # emulated CPUs before it is written (empty: not checked, and the manifest says so).
    portability_cpus: tuple[str, ...] = tuple(X86_CPUS)
    golden_images: int = 300
    overwrite: bool = False
    out: str | None = None  # default: the run directory
    data_dir: str | None = None
    download: bool = True

    def __post_init__(self):
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ExportError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}.")
        if self.repair not in REPAIR_MODES:
            raise ExportError(f"--repair must be one of {', '.join(REPAIR_MODES)}, got {self.repair!r}.")
        if self.calibration_images < 10:
            raise ExportError(f"--calibration-images must be at least 10 (one per class), got {self.calibration_images}.")
        if self.fine_tune_images != 0 and self.fine_tune_images < 100:
            raise ExportError(f"--fine-tune-images must be 0 (the whole training split) or at least 100, got "
                              f"{self.fine_tune_images}.")
        if not 0 < self.compression_max_drop <= 100 or not 1 <= self.compression_attempts <= 8:
            raise ExportError(f"--compression-max-drop must be above 0 (points of accuracy) and --compression-attempts from 1 "
                              f"to 8, got {self.compression_max_drop} and {self.compression_attempts}.")
        if not 0 <= self.calibration_seed < 2**32:
            raise ExportError(f"--calibration-seed must be an integer from 0 to 2**32 - 1, got {self.calibration_seed}.")
        if not OPSETS[0] <= self.opset <= OPSETS[1]:
            raise ExportError(f"--opset must be between {OPSETS[0]} and {OPSETS[1]} (tf2onnx 1.17), got {self.opset}.")
        scheme = ONNX_INT8_SCHEMES.get(self.onnx_int8_scheme)
        if scheme is None:
            raise ExportError(f"unknown ONNX int8 scheme {self.onnx_int8_scheme!r}; choose from {', '.join(ONNX_INT8_SCHEMES)}.")
        if not scheme["portable"] and self.portability_cpus and "onnx-int8" in self.variants:
            raise ExportError(f"ONNX int8 scheme {self.onnx_int8_scheme!r} computes differently on x86 CPUs without VNNI "
                              "and cannot pass the portability check; choose a portable scheme or pass --no-portability-check.")


# Model-file option help the export and explain commands share.
INPUT_FIT_HELP = ("Model file with an input side other than 28 (e.g. 32x32): how the 28x28 image reaches it, 'pad' "
                  "(zeros, centred) or 'resize' (bilinear); auto: whichever it scores better with on real test images.")
