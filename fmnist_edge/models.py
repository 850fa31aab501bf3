"""The seeds' models as named presets, each with its seed's training recipe as the default.

Every model takes the same input: float32 (N, 28, 28, 1) in [0, 1] (see `data.to_model_input`), and
outputs softmax probabilities over the 10 classes. Only backend-neutral Keras 3 layers are used, so a
model trains under TensorFlow, JAX or PyTorch and its `.keras` file loads in TensorFlow for export.
Layer lists and parameter counts follow ../shared/REFERENCE_MODELS.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Callable

from .augment import AUGMENTATIONS
from .errors import ConfigError


@dataclass(frozen=True)
class Recipe:
    """How a preset is trained. `validation` is a fraction, an absolute count, or "test"."""

    epochs: int
    batch_size: int
    optimizer: str  # "adam" or "rmsprop"
    learning_rate: float
    validation: float | int | str
    # Defaults are the seeds' plain recipes, so runs written before these fields existed read back unchanged.
    schedule: str = "constant"  # or "cosine": decay to 0 over the whole training
    augment: str = "none"  # garment augmentation (fmnist_edge.augment), new every epoch: one of AUGMENTATIONS
    distill: bool = False  # learn from a teacher run's model as well as from the labels (fmnist_edge.distill)
    temperature: float = 4.0  # distillation: softmax temperature of teacher and student logits
    label_weight: float = 0.5  # distillation: weight of the labels' loss; the teacher's gets 1 - this
    # distillation: "cached" = the teacher's logits on each training image, computed once and used for all of
    # its augmented views; "live" = the teacher runs on every augmented batch (keras.distillation, ~2x per epoch)
    teacher_outputs: str = "cached"
    label_smoothing: float = 0.0  # the labels' targets: 1 - e on the true class, e / 10 spread over all ten
    weight_decay: float = 0.0  # decoupled weight decay (AdamW-style) per step, times the learning rate
    name: str = "seed"  # which of the preset's named recipes this is (overrides keep the name; the manifest says both)

    def __post_init__(self):
        # Runs written before augmentation had strengths recorded a bool; True was the strongest.
        if isinstance(self.augment, bool):
            object.__setattr__(self, "augment", AUGMENTATIONS[-1] if self.augment else "none")

    def with_overrides(self, **overrides) -> "Recipe":
        recipe = replace(self, **{k: v for k, v in overrides.items() if v is not None})
        if recipe != self and not recipe.name.startswith("custom"):  # the manifest keeps every field; the name says so
            recipe = replace(recipe, name=f"custom (from {self.name})")
        recipe.validate()
        return recipe

    def validate(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"--epochs must be at least 1, got {self.epochs}.")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}.")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}.")
        if not (math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 10):
            raise ConfigError(f"--learning-rate must be a positive number of at most 10, got {self.learning_rate}.")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}.")
        if self.augment not in AUGMENTATIONS:
            raise ConfigError(f"--augment must be one of {', '.join(AUGMENTATIONS)}, got {self.augment!r}.")
        if not (math.isfinite(self.temperature) and 0 < self.temperature <= 100):
            raise ConfigError(f"--temperature must be a positive number of at most 100, got {self.temperature}.")
        if not (math.isfinite(self.label_weight) and 0 <= self.label_weight <= 1):
            raise ConfigError(f"--label-weight must be from 0 to 1 (the teacher's loss gets the rest), got {self.label_weight}.")
        if not (math.isfinite(self.label_smoothing) and 0 <= self.label_smoothing < 1):
            raise ConfigError(f"--label-smoothing must be from 0 to below 1, got {self.label_smoothing}.")
        if self.label_smoothing and self.distill:
            raise ConfigError("--label-smoothing and distillation both soften the targets; use one (the teacher's "
                              "soft targets already do what smoothing does).")
        if not (math.isfinite(self.weight_decay) and 0 <= self.weight_decay < 1):
            raise ConfigError(f"--weight-decay must be from 0 to below 1 (e.g. 1e-4), got {self.weight_decay}.")
        if self.teacher_outputs not in TEACHER_OUTPUTS:
            raise ConfigError(f"--teacher-outputs must be one of {', '.join(TEACHER_OUTPUTS)}, got {self.teacher_outputs!r}.")
        v = self.validation
        if isinstance(v, str) and v != "test":
            raise ConfigError(f"--validation must be a fraction in [0, 1), a count, or 'test'; got {v!r}.")
        if isinstance(v, float) and not 0.0 <= v < 1.0:  # (also false for NaN)
            raise ConfigError(f"--validation fraction must be in [0, 1), got {v}.")
        if isinstance(v, int) and v < 0:
            raise ConfigError(f"--validation count must be >= 0, got {v}.")

    def to_dict(self) -> dict:
        return asdict(self)

    def extras(self) -> str:
        """What the recipe adds to plain training, in words ("cosine, augment flip, ..."); "" for none."""
        return ", ".join(x for x, on in ((self.schedule, self.schedule != "constant"),
                                         (f"augment {self.augment}", self.augment != "none"),
                                         (f"distill T={self.temperature:g}", self.distill),
                                         (f"label smoothing {self.label_smoothing:g}", self.label_smoothing),
                                         (f"weight decay {self.weight_decay:g}", self.weight_decay)) if on)


OPTIMIZERS = ("adam", "rmsprop")
SCHEDULES = ("constant", "cosine")
TEACHER_OUTPUTS = ("cached", "live")


def parse_validation(text: str) -> float | int | str:
    """CLI form of `Recipe.validation`: '0.1' -> fraction, '10000' -> count, 'test' -> the test set."""
    if text == "test":
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--validation must be a fraction like 0.1, a count like 10000, or 'test'; got {text!r}.") from None


@dataclass(frozen=True)
class Preset:
    name: str
    seed_docs: str
    reported_accuracy: float | None  # the seed's test accuracy (None: designed here, not taken from a seed)
    params: int | None  # expected parameter count (None where the seed does not fix it)
    recipe: Recipe
    build: Callable  # (keras module) -> keras.Model
    notes: str = ""
    mflop: float | None = None  # forward MFLOP per image (flops_per_image), stated so listing needs no Keras
    recipes: tuple[Recipe, ...] = ()  # further named recipes for the same architecture (`--recipe NAME`)

    def named_recipe(self, name: str | None) -> Recipe:
        """The preset's recipe called `name` (None or "seed": its own, the seed's)."""
        if name in (None, self.recipe.name):
            return self.recipe
        for recipe in self.recipes:
            if recipe.name == name:
                return recipe
        names = [self.recipe.name, *(r.name for r in self.recipes)]
        raise ConfigError(f"--recipe {name!r} is not a recipe of {self.name}; choose one of: {', '.join(names)}.")


def _reference(keras):
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), name="image"),
            L.Conv2D(32, 3, activation="relu"),
            L.Conv2D(64, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Dropout(0.5),
            L.Conv2D(128, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Dropout(0.5),
            L.Flatten(),
            L.Dense(128, activation="relu"),
            L.Dense(10, activation="softmax", name="probabilities"),
        ],
        name="reference",
    )


def _paper(keras):
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), name="image"),
            L.Conv2D(32, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(64, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(128, 3, padding="same", activation="relu"),
            L.Flatten(),
            L.Dense(128, activation="relu"),
            L.Dropout(0.5),
            L.Dense(10, activation="softmax", name="probabilities"),
        ],
        name="paper",
    )


def _l2_vgg_trunk(keras) -> list:
    # Seed 001's listing: four L2-regularised convs and two pools; it prints no activations (ReLU assumed).
    L = keras.layers
    l2 = keras.regularizers.L2(0.01)
    return [
        keras.Input((28, 28, 1), name="image"),
        L.Conv2D(32, 3, padding="same", activation="relu", kernel_regularizer=l2),
        L.Conv2D(32, 5, activation="relu", kernel_regularizer=l2),
        L.MaxPooling2D(2),
        L.Conv2D(64, 3, padding="same", activation="relu", kernel_regularizer=l2),
        L.Conv2D(64, 5, activation="relu", kernel_regularizer=l2),
        L.MaxPooling2D(2),
        L.Flatten(),
    ]


def _l2_vgg(keras):
    # The seed gives no head; assumed, minimally: Flatten and Dense(10, softmax).
    L = keras.layers
    return keras.Sequential([*_l2_vgg_trunk(keras), L.Dense(10, activation="softmax", name="probabilities")],
                            name="l2_vgg")


def _l2_vgg_head(keras):
    # The seed's code is Keras's cifar10_cnn example adapted (the same imports of Dense, Dropout, Activation and
    # Flatten, save_dir and a 'keras_..._trained_model.h5' name); that example's head follows the trunk:
    # Flatten, Dense(512) + ReLU, Dropout(0.5), Dense(10) + softmax. This preset is the trunk with that head.
    L = keras.layers
    return keras.Sequential([*_l2_vgg_trunk(keras), L.Dense(512, activation="relu"), L.Dropout(0.5),
                             L.Dense(10, activation="softmax", name="probabilities")], name="l2_vgg_head")


def _conv(L, filters: int, size: int = 3, strides: int = 1, kind: str = "Conv2D") -> list:
    """An edge model's conv (`kind`: Conv2D or SeparableConv2D), BatchNorm and ReLU. No bias: BatchNorm's shift
    replaces it. Momentum 0.9: the moving statistics settle within a quick (--limit) run too."""
    return [getattr(L, kind)(filters, size, strides=strides, padding="same", use_bias=False),
            L.BatchNormalization(momentum=0.9), L.ReLU()]


def _edge(keras):
    # Designed for int8 speed within issue 12's budget (issue 26, scripts/edge_architectures.py `full-conv`):
    # `bench --profile` showed the first design's int8 (now `edge-separable`) spending its time in the first conv
    # over 28x28x1 and in the depthwise convs, which int8 kernels run slower than float. This strides the first
    # conv (a quarter of its outputs, and of the arena's largest tensor) and uses full convs only. The head keeps
    # the 7x7 layout (1x1 conv to 16 maps, flattened): garments are centred, so where a feature is matters.
    # BatchNorm folds into the convs at conversion; the softmax is a layer of its own so that distillation can
    # train on the logits before it.
    L = keras.layers
    return keras.Sequential(
        [keras.Input((28, 28, 1), name="image"), *_conv(L, 16, strides=2), *_conv(L, 24), L.MaxPooling2D(2),
         *_conv(L, 48), *_conv(L, 48), *_conv(L, 16, 1), L.Flatten(), L.Dropout(0.3), L.Dense(10, name="logits"),
         L.Softmax(name="probabilities")],
        name="edge",
    )


def _edge_separable(keras):
    # The first edge design (issue 12), `edge` until issue 26 replaced it: a full conv at 28x28 (a depthwise conv
    # on 1 channel would learn nothing), only 16 wide because its output is the largest tensor the TFLite Micro
    # arena must hold; pooled at once, then a full conv at 14x14 and depthwise-separable blocks. Its int8 runs
    # slower than its float32 (docs/results/edge.md): kept for the record and for its ablation's runs.
    L = keras.layers

    def sep(filters):
        return _conv(L, filters, kind="SeparableConv2D")

    return keras.Sequential(
        [
            keras.Input((28, 28, 1), name="image"),
            *_conv(L, 16),
            L.MaxPooling2D(2),
            *_conv(L, 32), *sep(64),
            L.MaxPooling2D(2),
            *sep(128), *sep(64),
            *_conv(L, 16, 1),
            L.Flatten(),
            L.Dropout(0.3),
            L.Dense(10, name="logits"),
            L.Softmax(name="probabilities"),
        ],
        name="edge_separable",
    )


def _mlp(keras):
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), name="image"),
            L.Flatten(),
            L.Dense(128, activation="relu"),
            L.Dense(10, activation="softmax", name="probabilities"),
        ],
        name="mlp",
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "reference", "000, 003", 0.9305, 503_690, Recipe(30, 512, "adam", 1e-3, 0.1), _reference,
            "Layers from the notebook the articles link to; Adam defaults, batch 512, 30 epochs, 10% validation.",
            mflop=37.19,
            # Chosen by the ablation in artifacts/fidelity.json (runs in artifacts/runs/tuned-ablation/): the same
            # layers, 60 epochs with cosine decay, mirrored garments and label smoothing 0.1; weight decay bought nothing.
            # No validation split: a fixed cosine schedule selects nothing on it, so all 60,000 images train.
            recipes=(Recipe(60, 512, "adam", 1e-3, 0.0, schedule="cosine", augment="flip", label_smoothing=0.1,
                            name="tuned"),),
        ),
        Preset(
            "paper", "004", 0.9132, 896_906, Recipe(50, 128, "adam", 1e-3, 10_000), _paper,
            "The seed's listing (3 convs), not its text; 50,000/10,000 train/validation split.",
            mflop=16.51,
        ),
        Preset(
            "l2-vgg", "001", 0.9052, 157_162, Recipe(100, 32, "adam", 1e-3, "test"), _l2_vgg,
            "Seed gives the trunk only; ReLU after each conv and a Flatten + Dense(10) head are assumed. "
            "The seed monitored on the test set (no early stopping, so it does not leak into training).",
            mflop=48.38,
        ),
        Preset(
            "l2-vgg-head", "001", 0.9052, 676_842, Recipe(100, 32, "adam", 1e-3, "test"), _l2_vgg_head,
            "l2-vgg's trunk with the head of the Keras cifar10_cnn example the seed's code follows: Flatten, "
            "Dense(512, ReLU), Dropout(0.5), Dense(10, softmax). The seed's recipe.",
            mflop=49.42,
        ),
        Preset(
            "mlp", "002", 0.8683, 101_770, Recipe(5, 128, "rmsprop", 1e-3, 0.0), _mlp,
            "The seed does not show its optimizer; RMSprop (the Keras book example it follows) is assumed.",
            mflop=0.2,
        ),
        Preset(
            "edge", "-", None, 43_930,
            # Chosen by measurement (docs/results/edge.md, runs in artifacts/runs/edge-full-conv/): 60 epochs with
            # flips lifted the 20-epoch recipe's 3-seed mean; at 20 epochs flips had bought nothing.
            Recipe(60, 128, "adam", 2e-3, 0.0, schedule="cosine", augment="flip", distill=True, name="designed"), _edge,
            "Designed here for microcontrollers (<= 5 MFLOP, int8 <= 64 KiB, TFLite Micro arena <= 32 KiB) and for "
            "int8 speed: a strided first conv and full convs only. Distilled from a trained run (--teacher, default "
            "artifacts/reference) for 60 epochs with a cosine schedule and mirrored garments. All 60,000 training "
            "images are used: nothing is selected on a validation split.",
            mflop=4.55,
        ),
        Preset(
            "edge-separable", "-", None, 35_354,
            Recipe(20, 128, "adam", 2e-3, 0.0, schedule="cosine", augment="none", distill=True, name="designed"),
            _edge_separable,
            "The first edge design (depthwise-separable blocks), `edge` until its int8 proved slower than its float32; "
            "distilled for 20 epochs, no augmentation (its ablation, artifacts/edge_ablation.json).",
            mflop=4.84,
        ),
    )
}

DEFAULT_MODEL = "reference"

# Runs written before a preset was renamed keep their manifests' names: `edge` was the depthwise-separable model
# (35,354 params) until issue 26, and the model that replaced it was trained as `edge-full-conv`.
_RENAMED = {("edge", 35_354): "edge-separable", ("edge-full-conv", 43_930): "edge"}


def preset_name_of_run(model: str, params: int | None) -> str:
    """The preset a run's manifest (its `model` and `params`) was trained as, by today's name."""
    return _RENAMED.get((model, params), model)


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"Unknown model {name!r}. Choose one of: {', '.join(PRESETS)}.") from None


def flops_per_image(model) -> int:
    """Forward FLOPs of one image (a multiply-add counts 2) for the conv and dense layers that dominate."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if getattr(layer, "layers", None):  # a nested model (an exported model file sits inside a wrapper)
            total += flops_per_image(layer)
        elif kind in ("Conv2D", "SeparableConv2D", "DepthwiseConv2D"):
            _, h, w, c_out = layer.output.shape
            c_in, (kh, kw) = layer.input.shape[-1], layer.kernel_size
            if kind == "Conv2D":
                total += 2 * h * w * kh * kw * c_in * c_out
            else:  # a kh x kw filter per input channel (x depth multiplier), then a 1x1 conv for separable
                mult = getattr(layer, "depth_multiplier", 1)
                total += 2 * h * w * kh * kw * c_in * mult + (2 * h * w * c_in * mult * c_out if kind == "SeparableConv2D" else 0)
        elif kind == "Dense":
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def build(name: str):
    """Build the named model (uncompiled) with the active Keras backend."""
    import keras

    return get_preset(name).build(keras)
