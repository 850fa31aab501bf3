"""Knowledge distillation: a small student learns from a trained run's model (the teacher) as well as from
the labels (Hinton et al.: KL divergence between softened outputs, scaled by the temperature squared).

Two ways, one loss. "live": `keras.distillation.Distiller` runs the teacher on every training batch, its
augmented views included; on 2 CPU cores that doubles the time per epoch of the `edge` preset (81 s against
41 s), the teacher's 37 MFLOP forward pass being the larger share. "cached": the teacher's logits on each
training image are computed once (one prediction pass) and are the soft targets of all of that image's
augmented views; without augmentation the two are the same computation.

Both models output probabilities, so distillation works on logits recovered from them: the student's
`logits` layer where the preset has one (the `edge` preset does), else log-probabilities. The log of a
softmax differs from its logits by a constant per image, which the temperature softmax removes, so any
trained run can be the teacher, whatever its last layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, RunError
from .runs import read_run

DEFAULT_TEACHER = Path("artifacts/reference")  # the shipped reference run, as for `bench`


@dataclass(frozen=True)
class Teacher:
    run: Path
    model_file: Path
    record: dict  # what the student's manifest says about its teacher


def check_teacher(run_dir: str | Path | None) -> Teacher:
    """The teacher run, checked against its manifest, or a ConfigError saying what to pass (no Keras needed)."""
    run = Path(run_dir) if run_dir else DEFAULT_TEACHER
    hint = "pass --teacher with a run directory written by `fmnist-edge train`, or --no-distill"
    try:
        manifest = read_run(run)
    except RunError as exc:
        raise ConfigError(f"--teacher: {exc} To distil, {hint}.") from None
    m = manifest.fields
    return Teacher(run, manifest.model_file, {"run": str(run), "model": m.get("model"),
                                              "keras_model_sha256": m["model_file"]["sha256"],
                                              "test_accuracy": m.get("test_accuracy"), "params": m.get("params")})


def _logits(keras, model):
    try:
        return keras.Model(model.inputs, model.get_layer("logits").output)
    except ValueError:  # no layer named "logits": log-probabilities are logits up to a constant
        inputs = keras.Input(model.inputs[0].shape[1:])
        return keras.Model(inputs, keras.ops.log(keras.ops.maximum(model(inputs), 1e-12)))


def teacher_logits(keras, teacher, x) -> "np.ndarray":
    """The teacher's logits on every image, computed once (batch 128 is about twice as fast on CPU as 1024)."""
    return np.asarray(_logits(keras, teacher).predict(x, batch_size=128, verbose=0), dtype=np.float32)


def pack_targets(labels, logits) -> "np.ndarray":
    """Targets for `cached_trainer`: the label in column 0, the teacher's 10 logits after it."""
    return np.concatenate([np.asarray(labels, np.float32)[:, None], logits], axis=1)


def soft_targets(keras, teacher, x, labels) -> "np.ndarray":
    """`pack_targets` of the labels and the teacher's logits on `x`: what `cached_trainer` fits to."""
    return pack_targets(labels, teacher_logits(keras, teacher, x))


def cached_trainer(keras, student, recipe, optimizer):
    """The student's logits model, compiled with the Distiller's loss against `pack_targets` targets, so it
    trains `student` (its weights, in place) without running the teacher."""
    ops, T, w = keras.ops, recipe.temperature, recipe.label_weight
    kl = keras.losses.KLDivergence(reduction=None)

    def distillation_loss(y, logits):
        labels = ops.cast(y[:, 0], "int32")
        hard = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        soft = kl(ops.softmax(y[:, 1:] / T), ops.softmax(logits / T)) * T**2
        return w * hard + (1 - w) * soft

    def accuracy(y, logits):
        return keras.metrics.sparse_categorical_accuracy(y[:, :1], logits)

    trainer = _logits(keras, student)
    trainer.compile(optimizer=optimizer, loss=distillation_loss, metrics=[accuracy])
    return trainer


def distiller(keras, teacher, student, recipe, optimizer):
    """A compiled `keras.distillation.Distiller` that trains `student` (its weights, in place) on the labels
    and on the teacher's softened outputs."""
    trainer = keras.distillation.Distiller(
        teacher=_logits(keras, teacher), student=_logits(keras, student),
        # An instance, not the default string: Keras 3.15.1 resolves "kl_divergence" to a plain function, misses
        # its softmax branch and takes the KL of the raw logits, clipped to [1e-7, 1]: a loss of 0 that teaches nothing.
        distillation_losses=keras.distillation.LogitsDistillation(temperature=recipe.temperature,
                                                                  loss=keras.losses.KLDivergence()),
        student_loss_weight=recipe.label_weight,
    )
    trainer.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
    return trainer
