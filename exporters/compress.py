"""Trained compression with tensorflow-model-optimization: magnitude pruning and weight clustering.

Both go through the same tf_keras copy as QAT (tfmot 0.8.1 has no Keras 3 support): the layers holding
at least `min_weights` weights are wrapped, the model is fine-tuned on the training split, the wrappers
are stripped, and the result is converted to full-integer int8 like `tflite-int8`. One-shot compression
without fine-tuning wrecks accuracy (75% magnitude pruning of the reference: 0.93 -> 0.63); the
fine-tuning is the work. The small layers (the first conv, the classifier) stay as they are: they hold
a few percent of the weights and most of the damage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ExportError
from .qat import QATUnsupported, fit, tf_keras_copy, to_int8

PRUNABLE = ("Conv2D", "Dense", "SeparableConv2D", "DepthwiseConv2D")


@dataclass(frozen=True)
class PruneConfig:
    sparsity: float = 0.9  # target fraction of zero weights in each pruned layer
    min_weights: int = 10_000  # layers with fewer weights stay dense
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
    clusters: int = 16  # centroids per clustered layer: each weight is one of them
    min_weights: int = 10_000  # layers with fewer weights keep their own values
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
    if cfg.epochs < 1 or cfg.batch_size < 1 or not cfg.learning_rate > 0 or cfg.min_weights < 0:
        raise ExportError(f"{what}: epochs and batch size must be >= 1, the learning rate > 0 and the layer threshold "
                          f">= 0 (got epochs {cfg.epochs}, batch {cfg.batch_size}, lr {cfg.learning_rate}, "
                          f"threshold {cfg.min_weights}).")


def _weights(layer) -> int:
    return sum(int(np.prod(w.shape)) for w in layer.get_weights())


def _wrap_large(clone, wrap, min_weights: int):
    """A Sequential of the clone's own (trained) layers, those holding >= min_weights weights wrapped."""
    import tf_keras

    chosen = [layer.name for layer in clone.layers
              if type(layer).__name__ in PRUNABLE and _weights(layer) >= min_weights]
    if not chosen:
        raise QATUnsupported(f"no Conv2D/Dense layer holds {min_weights:,} weights or more; lower the layer threshold")
    try:
        wrapped = tf_keras.Sequential([tf_keras.Input((28, 28, 1))] +
                                      [wrap(layer) if layer.name in chosen else layer for layer in clone.layers])
    except (ValueError, TypeError, RuntimeError) as exc:
        raise QATUnsupported(f"tensorflow-model-optimization cannot wrap this model: {str(exc).splitlines()[0][:300]}") from None
    return wrapped, chosen


def _kernels(model, names) -> dict:
    return {layer.name: layer.get_weights()[0] for layer in model.layers if layer.name in names}


def prune(model, model_name, x_fit, y_fit, x_test, calibration, cfg: PruneConfig) -> dict:
    import tensorflow_model_optimization as tfmot
    import tf_keras

    sp = tfmot.sparsity.keras
    tf_keras.utils.set_random_seed(cfg.seed)
    clone = tf_keras_copy(model, model_name, x_test[:64])
    steps_per_epoch = int(np.ceil(len(y_fit) / cfg.batch_size))
    end = max(1, steps_per_epoch * min(cfg.ramp_epochs, cfg.epochs))
    schedule = sp.PolynomialDecay(0.0, cfg.sparsity, begin_step=0, end_step=end, frequency=max(1, min(100, end // 10)))
    pruned, names = _wrap_large(clone, lambda layer: sp.prune_low_magnitude(layer, pruning_schedule=schedule),
                                cfg.min_weights)
    seconds = fit(pruned, x_fit, y_fit, cfg, callbacks=[sp.UpdatePruningStep()])
    stripped = sp.strip_pruning(pruned)
    kernels = _kernels(stripped, names)
    total = sum(_weights(layer) for layer in stripped.layers)
    zeros = sum(int((k == 0).sum()) for k in kernels.values())
    details = {
        "method": "tfmot prune_low_magnitude, PolynomialDecay schedule, strip_pruning",
        "target_sparsity": cfg.sparsity, "ramp_epochs": cfg.ramp_epochs, "min_layer_weights": cfg.min_weights,
        "layers": {n: {"weights": int(k.size), "sparsity": round(float((k == 0).mean()), 4)} for n, k in kernels.items()},
        "model_sparsity": round(zeros / total, 4),
    }
    return {"tflite": to_int8(stripped, calibration), "tuned_probs": stripped.predict(x_test, batch_size=1024, verbose=0),
            "fit_seconds": seconds, "details": details}


def cluster(model, model_name, x_fit, y_fit, x_test, calibration, cfg: ClusterConfig) -> dict:
    import tensorflow_model_optimization as tfmot
    import tf_keras

    cl = tfmot.clustering.keras
    tf_keras.utils.set_random_seed(cfg.seed)
    clone = tf_keras_copy(model, model_name, x_test[:64])
    init = cl.CentroidInitialization.KMEANS_PLUS_PLUS
    clustered, names = _wrap_large(clone, lambda layer: cl.cluster_weights(
        layer, number_of_clusters=cfg.clusters, cluster_centroids_init=init), cfg.min_weights)
    seconds = fit(clustered, x_fit, y_fit, cfg)
    stripped = cl.strip_clustering(clustered)
    kernels = _kernels(stripped, names)
    details = {
        "method": "tfmot cluster_weights (k-means++ initial centroids), strip_clustering",
        "clusters": cfg.clusters, "min_layer_weights": cfg.min_weights,
        "layers": {n: {"weights": int(k.size), "distinct_values": int(len(np.unique(k)))} for n, k in kernels.items()},
    }
    return {"tflite": to_int8(stripped, calibration), "tuned_probs": stripped.predict(x_test, batch_size=1024, verbose=0),
            "fit_seconds": seconds, "details": details}
