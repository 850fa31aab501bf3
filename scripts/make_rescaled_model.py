"""A supplier-style CNN that int8 breaks although its function is fine: a small CNN trained for a few seconds on
real Fashion-MNIST, then two output channels of its first convolution scaled up 40x and the next convolution's
matching input channels scaled down 40x (the model computes the same, as after BatchNormalization folding or in a
model trained without normalization). The fixture of tests/test_explain.py and of docs/guides/int8-accuracy.md.

    python scripts/make_rescaled_model.py OUT.keras [--scale 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from fmnist_edge import data as fdata  # noqa: E402

SCALED = [1, 5]


def build(scale: float, seed: int):
    ds = fdata.load(download=False)
    idx = fdata.subset(ds.y_train, 6000, 1)
    keras.utils.set_random_seed(seed)
    L = keras.layers
    model = keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(8, 3, activation="relu", name="stem"),
                              L.Conv2D(16, 3, activation="relu", name="body"), L.MaxPooling2D(name="pool"),
                              L.Flatten(name="flatten"), L.Dense(10, activation="softmax", name="head")], name="supplier")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(ds.x_train[idx][..., None] / 255.0, ds.y_train[idx], epochs=3, batch_size=64, verbose=0)
    x = ds.x_test[:500, ..., None].astype("float32") / 255.0
    before = model.predict(x, verbose=0)
    (w1, b1), (w2, b2) = model.get_layer("stem").get_weights(), model.get_layer("body").get_weights()
    s = np.ones(w1.shape[-1], np.float32)
    s[SCALED] = scale
    model.get_layer("stem").set_weights([w1 * s, b1 * s])
    model.get_layer("body").set_weights([w2 / s[None, None, :, None], b2])
    drift = float(np.abs(model.predict(x, verbose=0) - before).max())
    assert drift < 1e-4, f"rescaling changed the function (max |dp| {drift})"
    return model, drift


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--scale", type=float, default=40.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    model, drift = build(a.scale, a.seed)
    model.save(a.out)
    print(f"wrote {a.out}: channels {SCALED} of `stem` scaled {a.scale:g}x, `body` compensates (max |dp| {drift:.1e})")


if __name__ == "__main__":
    main()
