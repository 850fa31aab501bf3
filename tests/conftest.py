"""Shared fixtures: a tiny CNN preset trained for seconds on real data, and its exports."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _tiny(keras):
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), name="image"),
            L.Conv2D(8, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(10, activation="softmax", name="probabilities"),
        ],
        name="tiny",
    )


@pytest.fixture(scope="session")
def tiny_preset():
    """Register a 13,610-parameter CNN as preset `tiny` (exporters rebuild presets by name for QAT)."""
    from fmnist_edge.models import PRESETS, Preset, Recipe

    PRESETS["tiny"] = Preset("tiny", "tests", 0.0, 13_610, Recipe(4, 64, "adam", 3e-3, 0.1), _tiny, "test model")
    yield "tiny"
    del PRESETS["tiny"]


@pytest.fixture(scope="session")
def tiny_run(tiny_preset, tmp_path_factory):
    pytest.importorskip("tensorflow")
    from fmnist_edge.train import TrainConfig, train

    out = tmp_path_factory.mktemp("tiny") / "artifacts" / "tiny-run"
    train(TrainConfig(model="tiny", seed=0, limit=3000, out=str(out)))
    return out
