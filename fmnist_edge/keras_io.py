"""Load a Keras model file safely: a Keras 3 `.keras` archive, whichever backend saved it, or a legacy Keras 2 `.h5`.

Every model is loaded in Keras's safe mode only (no Lambda layers or arbitrary code); this is the one place that
loads one, so training, export, model files and bench refuse the same things with the same words. A file saved
under PyTorch carries a backend-specific optimizer that does not deserialise under TensorFlow; the weights and
architecture do, so we fall back to `compile=False` (inference and export need no optimizer).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from .errors import ModelFileError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# What Keras's messages say when safe mode refused a layer, or a layer is a custom class it cannot find.
_UNSAFE = ("lambda", "safe_mode", "custom", "unknown layer", "could not locate")


def _refusal(path: Path, texts: list[str]) -> ModelFileError | None:
    if any(word in " ".join(texts).lower() for word in _UNSAFE):
        return ModelFileError(
            f"{path}: refused. It contains a Lambda layer or a custom object, which could run arbitrary code "
            "when loaded; this project loads models only in Keras's safe mode. Rebuild the model from the "
            "built-in layers (the presets use only those).")
    return None


def _load_h5(path: Path):
    import keras

    with open(path, "rb") as f:
        if f.read(8) != HDF5_MAGIC:
            raise ModelFileError(f"{path}: not an HDF5 file; expected a Keras 2 `.h5` model saved with model.save().")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises ValueError/TypeError/KeyError/OSError here
        raise _refusal(path, [str(exc)]) or ModelFileError(
            f"{path}: Keras 3 could not load this `.h5` file ({type(exc).__name__}: {str(exc)[:300]}). "
            "Weights-only files and models with subclassed layers cannot be exported; re-save the "
            "model with model.save('model.keras').") from None


def load_trained_model(path: str | Path):
    """The model in `path` (`.keras`, or `.h5`/`.hdf5` for a Keras 2 file), loaded in safe mode; ModelFileError otherwise."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file. Train one with `fmnist-edge train` or pass the path to a .keras file.")
    if path.suffix.lower() in (".h5", ".hdf5"):
        return _load_h5(path)
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a Keras 3 .keras archive (not a zip file); the file is corrupted or of another format.")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as first:  # Keras raises many types here (ValueError, TypeError, KeyError, OSError)
        try:
            return keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as exc:
            raise _refusal(path, [str(first), str(exc)]) or ModelFileError(
                f"{path}: could not be loaded as a Keras model ({type(exc).__name__}: {exc}). "
                f"First attempt with its optimizer failed with {type(first).__name__}."
            ) from None
