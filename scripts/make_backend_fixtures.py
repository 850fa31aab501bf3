"""Write tiny `.keras` files saved under a non-TensorFlow Keras backend, for tests/test_backends.py.

The test proves that a model trained on a GPU under JAX or PyTorch loads in the TensorFlow backend for
export. Run once per backend in an environment that has it (no TensorFlow needed):

    KERAS_BACKEND=jax   python scripts/make_backend_fixtures.py tests/fixtures
    KERAS_BACKEND=torch python scripts/make_backend_fixtures.py tests/fixtures

Each writes `tiny-<backend>.keras` (compiled and trained one step, so it carries that backend's
optimizer state, which is what breaks loading elsewhere) and `tiny-<backend>.npz` with inputs and the
probabilities the saving backend computed.
"""

import sys
from pathlib import Path

import keras
import numpy as np

out = Path(sys.argv[1])
backend = keras.backend.backend()
keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input((28, 28, 1), name="image"),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax", name="probabilities"),
    ]
)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
rng = np.random.default_rng(0)
x = rng.random((16, 28, 28, 1), dtype=np.float32)
y = rng.integers(0, 10, 16)
model.fit(x, y, epochs=1, batch_size=16, verbose=0)
model.save(out / f"tiny-{backend}.keras")
np.savez(out / f"tiny-{backend}.npz", x=x, probs=np.asarray(model.predict(x, verbose=0)), keras=keras.__version__)
print("wrote", out / f"tiny-{backend}.keras")
