"""fmnist-edge: train a Keras classifier for Fashion-MNIST, export it for the edge, and prove nothing was lost.

This package holds the training tier (data, models, training, CLI). Importing it is cheap: TensorFlow
and Keras are imported only inside the functions that need them.
"""

__version__ = "0.1.0"

# Label order of the Fashion-MNIST IDX files (Zalando's README).
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
