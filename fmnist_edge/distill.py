"""Knowledge distillation: a small student learns from a trained run's model (the teacher) as well as from
the labels, through `keras.distillation` (Hinton et al.: KL divergence between softened outputs, scaled
by the temperature squared).

Both models output probabilities, so distillation works on logits recovered from them: the student's
`logits` layer where the preset has one (the `edge` preset does), else log-probabilities. The log of a
softmax differs from its logits by a constant per image, which the temperature softmax removes, so any
trained run can be the teacher, whatever its last layer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .manifest import sha256_file

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
    path = run / "manifest.json"
    try:
        m = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--teacher {run}: cannot read {path.name} ({getattr(exc, 'strerror', None) or exc}); {hint}.") from None
    model = run / str(m.get("model_file", {}).get("path", "")) if isinstance(m, dict) else None
    if not isinstance(m, dict) or m.get("kind") != "keras-run" or model is None or not model.is_file():
        raise ConfigError(f"--teacher {run}: not a training run with its Keras model; {hint}.")
    if model.resolve().parent != run.resolve() or sha256_file(model) != m["model_file"].get("sha256"):
        raise ConfigError(f"--teacher {run}: {model.name} does not match the sha256 in its manifest (modified or corrupted); {hint}.")
    return Teacher(run, model, {"run": str(run), "model": m.get("model"), "keras_model_sha256": m["model_file"]["sha256"],
                                "test_accuracy": m.get("test_accuracy"), "params": m.get("params")})


def _logits(keras, model):
    try:
        return keras.Model(model.inputs, model.get_layer("logits").output)
    except ValueError:  # no layer named "logits": log-probabilities are logits up to a constant
        inputs = keras.Input(model.inputs[0].shape[1:])
        return keras.Model(inputs, keras.ops.log(keras.ops.maximum(model(inputs), 1e-12)))


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
