"""A zoo of Fashion-MNIST classifiers written the way users write them, from the usual tutorials (Keras's own
examples, TensorFlow's "basic classification", MobileNet- and ResNet-style blocks, a Keras 2 `.h5` from tf_keras),
with Keras's default layer names: models the toolkit was not designed around. Each is trained briefly on the real
data and saved as a user would save it; tests/test_zoo.py takes each through export, bench, verify, predict and app,
and scripts/zoo_study.py records the full export of each (artifacts/zoo.json, rendered by the own-model guide).

Each entry: how to build it, how it was trained (its input convention and loss), how it is saved, and the
export options its user would pass (what the toolkit cannot detect: a 0-255 input is detected and checked).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np


# A user trains for many epochs; the zoo trains for a few, so BatchNormalization's moving statistics follow faster
# (Keras's default 0.99 would leave them near their initial values after a few hundred steps).
BN_MOMENTUM = 0.9


@dataclass(frozen=True)
class ZooModel:
    name: str
    what: str  # a line for the guide's table
    build: Callable  # (keras) -> model
    train_scale: float = 1 / 255  # the pixels the user trained on: uint8 * train_scale
    logits: bool = False  # trained with from_logits=True
    channels: int = 1  # the training images replicated to this many channels (a pretrained-style RGB input)
    pad_to: int = 28  # the training images zero-padded to this side (LeNet-style 32x32)
    flat: bool = False  # (N, 28, 28) images, no channel axis (the Flatten tutorials)
    keras2_h5: bool = False  # built and saved with tf_keras as a Keras 2 .h5
    export_args: tuple[str, ...] = ()
    epochs: int = 3
    options: dict = field(default_factory=dict)

    def inputs(self, pixels: np.ndarray) -> np.ndarray:
        """Training inputs for uint8 (N, 28, 28) pixels, as this model's user prepared them."""
        x = pixels.astype(np.float32) * np.float32(self.train_scale)
        if self.flat:
            return x
        x = x[..., None]
        if self.pad_to != 28:
            p = (self.pad_to - 28) // 2
            x = np.pad(x, ((0, 0), (p, self.pad_to - 28 - p), (p, self.pad_to - 28 - p), (0, 0)))
        return np.repeat(x, self.channels, axis=-1) if self.channels > 1 else x


def mlp_logits(k):  # TensorFlow's "basic classification" tutorial: Flatten, Dense 128, Dense 10 logits
    return k.Sequential([k.Input((28, 28)), k.layers.Flatten(), k.layers.Dense(128, activation="relu"),
                         k.layers.Dense(10)])


def rescaling_cnn(k):  # raw 0-255 pixels in, Rescaling(1/255) as the first layer (Keras's image tutorials)
    return k.Sequential([k.Input((28, 28, 1)), k.layers.Rescaling(1.0 / 255), k.layers.Conv2D(16, 3, activation="relu"),
                         k.layers.MaxPooling2D(), k.layers.Flatten(), k.layers.Dense(10, activation="softmax")])


def augmented_cnn(k):  # augmentation inside the model (Keras's "data augmentation" guide): identity at inference
    L = k.layers
    return k.Sequential([k.Input((28, 28, 1)), L.RandomFlip("horizontal"), L.RandomTranslation(0.05, 0.05),
                         L.RandomRotation(0.03), L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(),
                         L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(), L.Flatten(), L.Dropout(0.3),
                         L.Dense(10, activation="softmax")])


def mobilenet_style(k):  # depthwise-separable blocks, BatchNorm, ReLU6, global pooling (MobileNet's recipe, small)
    L = k.layers
    inp = k.Input((28, 28, 1))
    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inp)
    x = L.ReLU(6.0)(L.BatchNormalization(momentum=BN_MOMENTUM)(x))
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = L.ReLU(6.0)(L.BatchNormalization(momentum=BN_MOMENTUM)(x))
    x = L.Conv2D(32, 1, use_bias=False)(x)
    x = L.ReLU(6.0)(L.BatchNormalization(momentum=BN_MOMENTUM)(x))
    x = L.SeparableConv2D(64, 3, strides=2, padding="same")(x)
    x = L.ReLU(6.0)(L.BatchNormalization(momentum=BN_MOMENTUM)(x))
    x = L.GlobalAveragePooling2D()(x)
    return k.Model(inp, L.Dense(10, activation="softmax")(x))


def residual_cnn(k):  # two residual blocks, the second with a strided 1x1 projection on the skip (ResNet's)
    L = k.layers
    inp = k.Input((28, 28, 1))
    x = L.Conv2D(16, 3, padding="same", activation="relu")(inp)
    y = L.Conv2D(16, 3, padding="same", activation="relu")(x)
    y = L.Conv2D(16, 3, padding="same")(y)
    x = L.Activation("relu")(L.Add()([x, y]))
    y = L.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    y = L.Conv2D(32, 3, padding="same")(y)
    skip = L.Conv2D(32, 1, strides=2)(x)
    x = L.Activation("relu")(L.Add()([skip, y]))
    x = L.GlobalAveragePooling2D()(x)
    return k.Model(inp, L.Dense(10, activation="softmax")(x))


def keras2_conv_bn_dropout(k):  # a Keras 2 era model: Conv(relu) -> BatchNorm -> Dropout, saved as .h5
    L = k.layers
    return k.Sequential([
        k.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"), L.BatchNormalization(momentum=BN_MOMENTUM),
        L.MaxPooling2D(), L.Dropout(0.25), L.Conv2D(64, 3, activation="relu"), L.BatchNormalization(momentum=BN_MOMENTUM),
        L.MaxPooling2D(), L.Dropout(0.25), L.Flatten(), L.Dense(64, activation="relu"),
        L.BatchNormalization(momentum=BN_MOMENTUM), L.Dropout(0.5), L.Dense(10, activation="softmax")])


def separate_softmax(k):  # logits layer, then a Softmax layer of its own
    L = k.layers
    inp = k.Input((28, 28, 1))
    x = L.MaxPooling2D()(L.Conv2D(16, 3, activation="relu")(inp))
    x = L.Dense(10)(L.Flatten()(x))
    return k.Model(inp, L.Softmax()(x))


def sigmoid_head(k):  # ten independent sigmoids (a multi-label head trained on one-hot labels)
    L = k.layers
    return k.Sequential([k.Input((28, 28, 1)), L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(), L.Flatten(),
                         L.Dense(10, activation="sigmoid")])


def rgb_input(k):  # grayscale replicated to 3 channels for a backbone that wants RGB
    L = k.layers
    inp = k.Input((28, 28, 3))
    x = L.MaxPooling2D()(L.Conv2D(16, 3, activation="relu")(inp))
    x = L.MaxPooling2D()(L.Conv2D(32, 3, activation="relu")(x))
    return k.Model(inp, L.Dense(10, activation="softmax")(L.Flatten()(x)))


def padded_32(k):  # LeNet-style: 28x28 zero-padded to 32x32
    L = k.layers
    return k.Sequential([k.Input((32, 32, 1)), L.Conv2D(6, 5, activation="relu"), L.MaxPooling2D(),
                         L.Conv2D(16, 5, activation="relu"), L.MaxPooling2D(), L.Flatten(),
                         L.Dense(84, activation="relu"), L.Dense(10, activation="softmax")])


def named_like_the_product(k):  # layers named as the product names its own: explain and QAT must not collide
    L = k.layers
    inp = k.Input((28, 28, 1), name="input")
    x = L.Rescaling(1.0, name="scale")(inp)
    x = L.MaxPooling2D(name="image")(L.Conv2D(16, 3, activation="relu", name="input_contract")(x))
    x = L.Dense(10, name="logits")(L.Flatten(name="reshape_input")(x))
    return k.Model(inp, L.Softmax(name="probabilities")(x))


ZOO = {m.name: m for m in (
    ZooModel("mlp-logits", "Flatten -> Dense 128 -> Dense 10 logits, input (28, 28)", mlp_logits, logits=True,
             flat=True),
    ZooModel("rescaling-0-255", "Rescaling(1/255) inside, fed raw 0-255 pixels", rescaling_cnn, train_scale=1.0,
             export_args=("--input-range", "0,255")),
    ZooModel("augmentation-inside", "RandomFlip, RandomTranslation, RandomRotation and Dropout in the model",
             augmented_cnn),
    ZooModel("mobilenet-style", "Conv, DepthwiseConv2D, SeparableConv2D, BatchNorm, ReLU6, global pooling",
             mobilenet_style, epochs=4),
    ZooModel("residual", "two residual blocks (Add), a strided 1x1 projection on the skip", residual_cnn, epochs=6),
    ZooModel("keras2-h5-conv-bn-dropout", "Keras 2 .h5 (tf_keras): Conv(relu) -> BatchNorm -> Dropout",
             keras2_conv_bn_dropout, keras2_h5=True),
    ZooModel("separate-softmax", "Dense(10) logits, then a Softmax layer", separate_softmax),
    ZooModel("sigmoid-head", "Dense(10, sigmoid) trained on one-hot labels", sigmoid_head),
    ZooModel("rgb-input", "input (28, 28, 3): grayscale replicated to RGB", rgb_input, channels=3),
    ZooModel("padded-32x32", "input (32, 32, 1): 28x28 zero-padded (LeNet-5)", padded_32, pad_to=32),
    ZooModel("named-like-the-product", "layers named input, scale, image, input_contract, logits, probabilities",
             named_like_the_product),
)}


def train_and_save(entry: ZooModel, pixels: np.ndarray, labels: np.ndarray, out_dir: Path, seed: int = 0,
                   epochs: int | None = None) -> Path:
    """Train `entry` on (pixels, labels) as its user would (`epochs`, default the entry's), and save it where a user
    would: NAME.keras, or NAME.h5 for a Keras 2 model. Returns the file."""
    if entry.keras2_h5:
        import tf_keras as k
    else:
        import keras as k
    k.utils.set_random_seed(seed)
    model = entry.build(k)
    sigmoid = entry.name == "sigmoid-head"
    loss = (k.losses.BinaryCrossentropy() if sigmoid else
            k.losses.SparseCategoricalCrossentropy(from_logits=entry.logits))
    y = np.eye(10, dtype=np.float32)[labels] if sigmoid else labels
    model.compile(k.optimizers.Adam(1e-3), loss, metrics=["accuracy"])
    model.fit(entry.inputs(pixels), y, epochs=epochs or entry.epochs, batch_size=64, verbose=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (f"{entry.name}.h5" if entry.keras2_h5 else f"{entry.name}.keras")
    model.save(path)
    return path
