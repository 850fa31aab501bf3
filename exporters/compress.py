"""Trained compression with tensorflow-model-optimization: magnitude pruning and weight clustering.

Both go through the same tf_keras copy as QAT (tfmot 0.8.1 has no Keras 3 support): the layers holding at
least `min_share` of the model's weights are wrapped, the model is fine-tuned on the training split, the
wrappers are stripped, and the result is converted to full-integer int8 like `tflite-int8`. One-shot
compression without fine-tuning wrecks accuracy (75% magnitude pruning of the reference: 0.93 -> 0.63);
the fine-tuning is the work. Which layers is measured (docs/results/compression.md): on `reference`, pruning
only the Dense(3200x128) layer (81% of the weights) to 90% keeps the accuracy, while pruning the convs
too (85%) costs 1.3 points; clustering tolerates the convs.
"""

from __future__ import annotations

import numpy as np

from runtime.variants import VARIANTS
from runtime.weights import kernel_stats

from .builders import builder
from .config import ClusterConfig, PruneConfig
from .errors import FineTuneUnsupported
from . import search
from .rebuild import library_detail, source_name
from .finetune import fine_tune_note, fine_tuned, fit, tf_keras_copy, tuned_result

PRUNABLE = ("Conv2D", "Dense", "SeparableConv2D", "DepthwiseConv2D")


def _weights(layer) -> int:
    return sum(int(np.prod(w.shape)) for w in layer.get_weights())


def _wrap_large(clone, wrap, min_share: float):
    """The clone's own graph (tf_keras clone_model, the trained layers reused), the layers holding >= min_share of all
    weights wrapped by `wrap`: (the wrapped model, their names)."""
    import tf_keras

    total = sum(_weights(layer) for layer in clone.layers)
    chosen = [layer.name for layer in clone.layers
              if type(layer).__name__ in PRUNABLE and _weights(layer) >= min_share * total]
    if not chosen:
        raise FineTuneUnsupported(f"no Conv2D/Dense layer holds {min_share:.0%} of the weights or more; lower the layer "
                                  "share (--prune-min-share / --cluster-min-share)")
    shown = ", ".join(source_name(n) for n in chosen)
    try:
        wrapped = tf_keras.models.clone_model(clone, clone_function=lambda layer: wrap(layer) if layer.name in chosen
                                              else layer)
    except (ValueError, TypeError, RuntimeError, AttributeError) as exc:
        raise FineTuneUnsupported(f"tensorflow-model-optimization 0.8.1 could not wrap the layers {shown} for "
                                  f"training{library_detail(exc)}; post-training int8 (tflite-int8) does not need it") from None
    return wrapped, chosen


def _kernels(model, names) -> dict:
    return {layer.name: layer.get_weights()[0] for layer in model.layers if layer.name in names}


def prune(model, model_name, x_fit, y_fit, x_test, calibration, cfg: PruneConfig) -> dict:
    import tensorflow_model_optimization as tfmot
    import tf_keras

    sp = tfmot.sparsity.keras
    tf_keras.utils.set_random_seed(cfg.seed)
    clone, dropped = tf_keras_copy(model, model_name, x_test[:64])
    steps_per_epoch = int(np.ceil(len(y_fit) / cfg.batch_size))
    end = max(1, steps_per_epoch * min(cfg.ramp_epochs, cfg.epochs))
    schedule = sp.PolynomialDecay(0.0, cfg.sparsity, begin_step=0, end_step=end, frequency=max(1, min(100, end // 10)))
    pruned, names = _wrap_large(clone, lambda layer: sp.prune_low_magnitude(layer, pruning_schedule=schedule),
                                cfg.min_share)
    seconds = fit(pruned, x_fit, y_fit, cfg, callbacks=[sp.UpdatePruningStep()])
    stripped = sp.strip_pruning(pruned)
    kernels = _kernels(stripped, names)
    total = sum(_weights(layer) for layer in stripped.layers)
    zeros = sum(int((k == 0).sum()) for k in kernels.values())
    details = {
        "method": "tfmot prune_low_magnitude, PolynomialDecay schedule, strip_pruning",
        "target_sparsity": cfg.sparsity, "ramp_epochs": cfg.ramp_epochs, "min_layer_share": cfg.min_share,
        "layers": {source_name(n): {"weights": int(k.size), "sparsity": round(float((k == 0).mean()), 4)}
                   for n, k in kernels.items()},
        "model_sparsity": round(zeros / total, 4), "training_only_layers_left_out": dropped,
    }
    return tuned_result(stripped, x_test, calibration, seconds, details=details)


def cluster(model, model_name, x_fit, y_fit, x_test, calibration, cfg: ClusterConfig) -> dict:
    import tensorflow_model_optimization as tfmot
    import tf_keras

    cl = tfmot.clustering.keras
    tf_keras.utils.set_random_seed(cfg.seed)
    clone, dropped = tf_keras_copy(model, model_name, x_test[:64])
    init = cl.CentroidInitialization.KMEANS_PLUS_PLUS
    clustered, names = _wrap_large(clone, lambda layer: cl.cluster_weights(
        layer, number_of_clusters=cfg.clusters, cluster_centroids_init=init), cfg.min_share)
    seconds = fit(clustered, x_fit, y_fit, cfg)
    stripped = cl.strip_clustering(clustered)
    kernels = _kernels(stripped, names)
    details = {
        "method": "tfmot cluster_weights (k-means++ initial centroids), strip_clustering",
        "clusters": cfg.clusters, "min_layer_share": cfg.min_share,
        "layers": {source_name(n): {"weights": int(k.size), "distinct_values": int(len(np.unique(k)))}
                   for n, k in kernels.items()},
        "training_only_layers_left_out": dropped,
    }
    return tuned_result(stripped, x_test, calibration, seconds, details=details)


# -- builders (exporters.builders): trained pruning or clustering, then int8; the manifest also records what
# the int8 file itself holds, per kernel (sparsity, distinct values).
def _compressed(ctx, tmp, variant: str, method, cfg, summary: str):
    what = VARIANTS[variant].fine_tune
    ctx.console.print(f"  {what}: {summary} in layers holding >= {cfg.min_share:.0%} of the weights, {cfg.epochs} "
                      f"epoch(s), lr {cfg.learning_rate:g}, {fine_tune_note(ctx)}; searched within "
                      f"{ctx.cfg.compression_max_drop:g} points of Keras")
    res, chosen, data, record = search.search(ctx, variant, method, cfg)
    built = fine_tuned(ctx, tmp, variant, res, res["details"], chosen, data)
    kernels = kernel_stats(tmp / "model.tflite")
    built.extra[what].update(file_kernels=kernels, file_sparsity=round(
        sum(k["sparsity"] * k["weights"] for k in kernels) / sum(k["weights"] for k in kernels), 4), search=record)
    return built


@builder("tflite_int8_pruned")
def build_int8_pruned(ctx, tmp):
    p = ctx.cfg.pruning
    return _compressed(ctx, tmp, "tflite-int8-pruned", prune, p, f"{p.sparsity:.0%} of the weights zeroed")


@builder("tflite_int8_clustered")
def build_int8_clustered(ctx, tmp):
    c = ctx.cfg.clustering
    return _compressed(ctx, tmp, "tflite-int8-clustered", cluster, c, f"{c.clusters} centroids per layer")
