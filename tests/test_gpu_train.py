"""scripts/gpu_train.sh trains where TensorFlow is not (the lent GPU machine): JAX backend, carried data, no download.

Run here on a copy of the script in a scratch checkout whose Python refuses to import TensorFlow, as the device's
would, with the dataset in `.data/` as `--prepare` leaves it.
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from fmnist_edge import data

ROOT = Path(__file__).resolve().parents[1]
NO_TENSORFLOW = "import sys\nfor m in ('tensorflow', 'tf_keras', 'tf2onnx'): sys.modules[m] = None\n"


@pytest.fixture
def checkout(tmp_path):
    pytest.importorskip("jax")
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "gpu_train.sh", tmp_path / "scripts")
    (tmp_path / ".whl").mkdir()  # empty: this Python has Keras, so the script must not try to install wheels
    (tmp_path / ".data").mkdir()
    source = data.locate(download=False)
    for f in source.iterdir():
        if "ubyte" in f.name:
            (tmp_path / ".data" / f.name).symlink_to(f)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_TENSORFLOW)
    return tmp_path


def _run(checkout, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "FMNIST_DATA_DIR")}
    env.update(PATH=f"{Path(sys.executable).parent}:{env['PATH']}", PYTHONPATH=str(checkout / "site"),
               OUT=str(checkout / "out"))
    return subprocess.run(["bash", str(checkout / "scripts" / "gpu_train.sh"), *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_trains_each_seed_on_jax_without_tensorflow_and_packs_one_archive_per_run(checkout):
    done = _run(checkout, "--model", "mlp", "--runs", "seed:3 seed:4", "--", "--epochs", "1", "--limit", "1000")
    assert done.returncode == 0, done.stdout + done.stderr
    archives = sorted(p.name for p in (checkout / "out").iterdir())
    assert archives == ["mlp-seed-jax-s3.tgz", "mlp-seed-jax-s4.tgz"]  # each packed as it ended; nothing else left
    with tarfile.open(checkout / "out" / "mlp-seed-jax-s4.tgz") as tar:
        names = set(tar.getnames())
        assert {"mlp-seed-jax-s4/model.keras", "mlp-seed-jax-s4/manifest.json"} <= names
        manifest = json.load(tar.extractfile("mlp-seed-jax-s4/manifest.json"))
    assert manifest["training"]["backend"] == "jax"
    assert manifest["seed"] == 4
    assert manifest["data"]["source"] == str(checkout / ".data")


def test_refuses_without_the_prepared_folders_and_unknown_options(checkout):
    shutil.rmtree(checkout / ".data")
    missing = _run(checkout, "--seeds", "0")
    assert missing.returncode == 2 and ".data is missing" in missing.stderr and "--prepare" in missing.stderr
    bad = _run(checkout, "--epochs", "3")
    assert bad.returncode == 2 and "unknown option --epochs" in bad.stderr
    assert not (checkout / "out").exists()
