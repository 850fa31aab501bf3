"""Options of the trained compression variants (pruning, clustering), validated on construction.

Kept free of numpy and TensorFlow: the CLI reads the defaults at start-up to show them in --help.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ExportError


@dataclass(frozen=True)
class PruneConfig:
    sparsity: float = 0.9  # target fraction of zero weights in each pruned layer
    min_share: float = 0.25  # layers holding less than this share of the model's weights stay dense
    epochs: int = 3
    ramp_epochs: int = 2  # sparsity rises (polynomially) from 0 to the target over these epochs, then holds
    learning_rate: float = 1e-4
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self):
        if not 0.0 < self.sparsity < 1.0:
            raise ExportError(f"pruning sparsity must be between 0 and 1 (e.g. 0.9 = 90% zeros), got {self.sparsity}.")
        _check_schedule("pruning", self)
        if not 1 <= self.ramp_epochs <= self.epochs:
            raise ExportError(f"pruning ramp epochs must be from 1 to the pruning epochs ({self.epochs}), got {self.ramp_epochs}.")


@dataclass(frozen=True)
class ClusterConfig:
    clusters: int = 8  # centroids per clustered layer: each weight is one of them (16 missed 15% of float32 zlib-9)
    min_share: float = 0.02  # layers holding less than this share of the model's weights keep their values
    epochs: int = 1
    learning_rate: float = 3e-5
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self):
        # int8 has 256 values: more centroids than that cannot survive quantization
        if not 2 <= self.clusters <= 256:
            raise ExportError(f"clusters must be from 2 to 256, got {self.clusters}.")
        _check_schedule("clustering", self)


def _check_schedule(what: str, cfg) -> None:
    if cfg.epochs < 1 or cfg.batch_size < 1 or not cfg.learning_rate > 0 or not 0.0 <= cfg.min_share <= 1.0:
        raise ExportError(f"{what}: epochs and batch size must be >= 1, the learning rate > 0 and the layer share "
                          f"from 0 to 1 (got epochs {cfg.epochs}, batch {cfg.batch_size}, lr {cfg.learning_rate}, "
                          f"share {cfg.min_share}).")
