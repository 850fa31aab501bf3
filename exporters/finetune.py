"""What QAT, pruning and clustering share: the model rebuilt in tf_keras (tfmot 0.8.1 accepts only Keras 2
models) with its trained weights, the fine-tuning schedule, the float control with the same schedule, and the
fine-tuned variant's file and manifest fields.

A preset is rebuilt by name; a model file as the same graph, layer by layer, and checked numerically
(exporters.rebuild; FineTuneUnsupported when that is not possible, and the variant is skipped).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fmnist_edge.errors import stop_if_signalled
from fmnist_edge.models import get_preset

from runtime.variants import VARIANTS

from .builders import Built
from .rebuild import tf_keras_graph
from .tflite import to_int8

if TYPE_CHECKING:
    from .context import ExportContext

def tf_keras_copy(model, model_name: str | None, x_check: np.ndarray):
    """(the model in tf_keras with its trained weights, the training-only layers left out of it): a preset rebuilt by
    name, or (`model_name` None, a model file) its graph rebuilt layer by layer and checked numerically
    (exporters.rebuild)."""
    import tf_keras

    if model_name is None:
        return tf_keras_graph(model, x_check)
    clone = get_preset(model_name).build(tf_keras)
    clone.set_weights(model.get_weights())
    return clone, []


def loss_for(targets: np.ndarray) -> str:
    """Class indices: sparse cross-entropy; per-class targets (smoothed labels, as the run trained on): cross-entropy."""
    return "categorical_crossentropy" if np.ndim(targets) == 2 else "sparse_categorical_crossentropy"


def learning_rate_schedule(cfg) -> str:
    """The schedule `fit` runs `cfg` with, as manifests record it (only pruning and clustering have cosine_decay)."""
    return "cosine decay to 0" if getattr(cfg, "cosine_decay", False) else "constant"


def fit(model, x_fit, y_fit, cfg, callbacks=()) -> float:
    """Fine-tune a compiled tf_keras model with `cfg`'s schedule; returns the seconds it took."""
    import tf_keras

    lr = cfg.learning_rate
    if getattr(cfg, "cosine_decay", False):  # to 0 by the last step: the weights settle instead of wandering at a high lr
        steps = int(np.ceil(len(y_fit) / cfg.batch_size)) * cfg.epochs
        lr = tf_keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=steps)
    model.compile(optimizer=tf_keras.optimizers.Adam(lr), loss=loss_for(y_fit))
    t0 = time.perf_counter()
    # Stops at the next batch on SIGTERM, even where tf_keras swallowed the handler's SystemExit.
    stop = tf_keras.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: stop_if_signalled())
    model.fit(x_fit, y_fit, batch_size=cfg.batch_size, epochs=cfg.epochs, shuffle=True, verbose=0,
              callbacks=[*callbacks, stop])
    return time.perf_counter() - t0


def tuned_result(model, x_test, calibration, seconds: float, **extra) -> dict:
    """What every fine-tuned variant hands the pipeline: the full-integer int8 file of the tuned tf_keras
    model, the tuned model's own test outputs (the file is checked against them) and the fit time."""
    return {"tflite": to_int8(model, calibration), "tuned_probs": model.predict(x_test, batch_size=1024, verbose=0),
            "fit_seconds": seconds, **extra}


def fine_tune_float_control(model, x_fit, y_fit, x_test, cfg) -> np.ndarray:
    """The same schedule (`cfg`'s epochs, learning rate, batch size, seed) on the float Keras 3 model;
    returns its test probabilities."""
    import keras

    keras.utils.set_random_seed(cfg.seed)
    control = keras.models.clone_model(model)
    control.set_weights(model.get_weights())
    control.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss_for(y_fit))
    control.fit(x_fit, y_fit, batch_size=cfg.batch_size, epochs=cfg.epochs, shuffle=True, verbose=0)
    return control.predict(x_test, batch_size=1024, verbose=0)


def fine_tuned(ctx: ExportContext, tmp: Path, variant: str, res: dict, details: dict, cfg=None, data=None) -> Built:
    """Write a fine-tuned variant's file (QAT, pruning, clustering); its manifest says how it was trained (`cfg`,
    default the schedule in the ExportConfig field the variant table names, on `data`, default ctx.fine_tune), how
    the tuned float model and a float control with the same schedule score, and how it agrees with the original."""
    from .gate import compare

    what = VARIANTS[variant].fine_tune
    cfg = cfg or getattr(ctx.cfg, what)
    data = data or ctx.fine_tune
    (tmp / "model.tflite").write_bytes(res["tflite"])
    tuned = res["tuned_probs"]
    vs_original = compare(tuned, ctx.keras_probs, ctx.y_test)
    if ctx.cfg.controls:  # the float Keras model fine-tuned with the same schedule: what extra training alone does
        control = compare(fine_tune_float_control(ctx.model, data["x"], data["y"], ctx.x_test, cfg),
                          ctx.keras_probs, ctx.y_test)
        control = {"float_control_accuracy": control["accuracy"],
                   "float_control_agreement_with_original": control["agreement"]}
    else:
        control = {"float_control": "not run (export --controls runs it)"}
    return Built("model.tflite", tuned, {"calibration": ctx.calibration_record, what: {
        **details, "epochs": cfg.epochs, "learning_rate": cfg.learning_rate, "batch_size": cfg.batch_size,
        "seed": cfg.seed, "fit_seconds": round(res["fit_seconds"], 1),
        "learning_rate_schedule": learning_rate_schedule(cfg),
        "fine_tune_images": int(len(data["y"])), "fine_tune_source": data["source"],
        "label_smoothing": data["label_smoothing"],
        "tuned_keras_accuracy": vs_original["accuracy"],
        "tuned_keras_agreement_with_original": vs_original["agreement"], **control,
        "checked_against": f"the fine-tuned {TUNED[what]} Keras (tf_keras) model it was converted from",
    }})


def fine_tune_note(ctx: ExportContext) -> str:
    """What a fine-tuned variant trains on, for the progress line."""
    return f"{len(ctx.fine_tune['y']):,} images" + ("; and a float control with the same schedule" if ctx.cfg.controls else "")


TUNED = {"qat": "fake-quantized", "pruning": "pruned", "clustering": "clustered"}
