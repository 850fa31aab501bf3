"""A `.keras` file trained under JAX or PyTorch (e.g. on a GPU) loads in the TensorFlow backend for export.

The fixtures were written by scripts/make_backend_fixtures.py under each backend, with that backend's
optimizer state inside; the expected probabilities are the saving backend's own outputs.
"""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from fmnist_edge.errors import ModelFileError  # noqa: E402
from fmnist_edge.keras_io import load_trained_model  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_foreign_backend_model_loads_and_predicts_the_same(backend):
    import keras

    assert keras.backend.backend() == "tensorflow"
    ref = np.load(FIXTURES / f"tiny-{backend}.npz")
    model = load_trained_model(FIXTURES / f"tiny-{backend}.keras")
    np.testing.assert_allclose(model.predict(ref["x"], verbose=0), ref["probs"], atol=1e-5)


def test_missing_and_corrupt_files_are_clear(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_trained_model(tmp_path / "nope.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(ModelFileError, match="not a Keras 3 .keras archive"):
        load_trained_model(bad)
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes((FIXTURES / "tiny-jax.keras").read_bytes()[:5000])
    with pytest.raises(ModelFileError):
        load_trained_model(truncated)


def test_torch_file_needs_the_fallback():
    # Guards the test above: the plain load really fails for PyTorch files, so the fallback is exercised.
    import keras

    with pytest.raises(TypeError, match="torch"):
        keras.saving.load_model(FIXTURES / "tiny-torch.keras")
