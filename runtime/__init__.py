"""The fmnist-edge runtime: run exported artifacts with numpy + ai-edge-litert and/or onnxruntime only.

Never imports TensorFlow, Keras, `fmnist_edge` or `exporters`, so it installs and runs on a Raspberry Pi
or inside an embedded app. Usage:

    import runtime
    clf = runtime.load("artifacts/reference/tflite-int8")   # directory, manifest.json or model file
    clf.predict(uint8_images)        # (N, 28, 28) uint8 -> class indices
    clf.predict_proba(uint8_images)  # -> float32 (N, 10)
"""

from .classifier import Classifier, check_images, dequantize, load, quantize, to_float_images
from .errors import ManifestError, RuntimeArtifactError
from .images import ImageError, NoGarmentError, load_image

__all__ = ["Classifier", "load", "check_images", "quantize", "dequantize", "to_float_images", "ManifestError", "RuntimeArtifactError",
           "load_image", "ImageError", "NoGarmentError"]
