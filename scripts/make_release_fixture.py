"""Write tests/fixtures/micro-release: a complete, tiny exported run for tests that run without TensorFlow.

A 3,400-parameter CNN trained for seconds on 1,000 real images and exported to every variant; the
Keras model itself is left out, so bench must use the recorded reference outputs (the Pi path).

    python scripts/make_release_fixture.py tests/fixtures/micro-release
"""

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's cuInit lines on a CPU-only machine are noise

from rich.console import Console  # noqa: E402

from exporters.config import ExportConfig, PruneConfig  # noqa: E402
from exporters.pipeline import export_run  # noqa: E402
from fmnist_edge.models import PRESETS, Preset, Recipe  # noqa: E402
from fmnist_edge.train import TrainConfig, train  # noqa: E402


def micro(keras):
    L = keras.layers
    return keras.Sequential([keras.Input((28, 28, 1), name="image"), L.Conv2D(2, 3, activation="relu"),
                             L.MaxPooling2D(2), L.Flatten(), L.Dense(10, activation="softmax", name="probabilities")])


out = Path(sys.argv[1])
shutil.rmtree(out, ignore_errors=True)
PRESETS["micro"] = Preset("micro", "tests", 0.0, 3_410, Recipe(6, 32, "adam", 3e-3, 0.1), micro, "test fixture")
train(TrainConfig(model="micro", seed=0, limit=1000, out=str(out)))
# Half the micro model's classifier pruned: 90% of a 3,380-weight layer does not survive int8 within the check.
export_run(out, ExportConfig(calibration_images=100, golden_images=50, pruning=PruneConfig(sparsity=0.5)), Console())
(out / "model.keras").unlink()
(out / "curves.png").unlink()
print(sum(f.stat().st_size for f in out.rglob("*") if f.is_file()), "bytes")
