"""Load a trained `.keras` file safely, whichever Keras 3 backend saved it.

Models are loaded in Keras's safe mode only (no Lambda layers or arbitrary code). A file saved under
PyTorch carries a backend-specific optimizer that does not deserialise under TensorFlow; the weights
and architecture do, so we fall back to `compile=False` (inference and export need no optimizer).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from .errors import ModelFileError


def load_trained_model(path: str | Path):
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file. Train one with `fmnist-edge train` or pass the path to a .keras file.")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a Keras 3 .keras archive (not a zip file); the file is corrupted or of another format.")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as first:  # Keras raises many types here (ValueError, TypeError, KeyError, OSError)
        try:
            return keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as exc:
            text = f"{first} {exc}"
            if "Lambda" in text or "safe_mode" in text or "custom" in text.lower() or "Could not locate" in text:
                raise ModelFileError(
                    f"{path}: refused. It contains a Lambda layer or a custom object, which could run arbitrary code "
                    "when loaded; this project loads models only in Keras's safe mode. Rebuild the model from the "
                    "built-in layers (the presets use only those)."
                ) from None
            raise ModelFileError(
                f"{path}: could not be loaded as a Keras model ({type(exc).__name__}: {exc}). "
                f"First attempt with its optimizer failed with {type(first).__name__}."
            ) from None
