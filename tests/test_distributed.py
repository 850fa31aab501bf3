"""Training across devices with Keras's distribution API: data-parallel on JAX over 2 CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=2) gives the same data pipeline and a loss close to
one device, and the run records its device count. Runs in a subprocess: XLA reads the flag at import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fmnist_edge.errors import ConfigError
from fmnist_edge.models import get_preset
from fmnist_edge.train import TrainConfig, check_devices, train

SCRIPT = """
import json, os, sys
os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
from fmnist_edge.models import get_preset
from fmnist_edge.train import TrainConfig, train
recipe = get_preset("mlp").recipe.with_overrides(epochs=2, batch_size=64)
out = {}
for n in (1, 2):
    run = train(TrainConfig(model="mlp", seed=0, recipe=recipe, limit=600, out=f"{sys.argv[1]}/run{n}", devices=n))
    out[n] = {"loss": json.load(open(run / "metrics.json"))["history"]["loss"],
              "training": json.load(open(run / "manifest.json"))["training"]}
print("RESULT" + json.dumps(out))
"""


def test_data_parallel_on_two_cpu_devices_matches_one_device(tmp_path):
    pytest.importorskip("jax")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    one, two = result["1"], result["2"]
    assert one["training"]["devices"] == 1 and one["training"]["distribution"] is None
    assert two["training"]["devices"] == 2 and two["training"]["device_list"] == ["cpu:0", "cpu:1"]
    assert two["training"]["distribution"] == "keras.distribution.DataParallel" and two["training"]["backend"] == "jax"
    assert two["training"]["dropped_for_even_sharding"] == 0  # 540 training images split evenly
    # Same images, same order, same initial weights: the per-device gradients average to the same step.
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-3)


@pytest.mark.parametrize("devices, batch, message", [
    (2, 65, "--batch-size 65 does not divide evenly over --devices 2"),
    (0, 64, "--devices must be a positive integer"),
    (2, 64, "Run with KERAS_BACKEND=jax"),  # this test process trains with the TensorFlow backend
])
def test_devices_are_checked_before_any_work(tmp_path, devices, batch, message):
    pytest.importorskip("tensorflow")
    recipe = get_preset("mlp").recipe.with_overrides(batch_size=batch)
    with pytest.raises(ConfigError, match=message):
        train(TrainConfig(model="mlp", recipe=recipe, limit=100, out=str(tmp_path / "run"), devices=devices))
    assert not (tmp_path / "run").exists()
    assert check_devices(1, batch) == []
