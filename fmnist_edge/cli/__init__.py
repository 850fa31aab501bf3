"""The `fmnist-edge` command line: one module per command group, each thin (it parses options, calls a
library function and renders the result).

Heavy libraries (TensorFlow, Keras, numpy, matplotlib) are imported inside the commands that need them,
so `fmnist-edge --help` starts fast and works on a device with only the base install.
"""

from ._app import app

# Each module registers its commands on `app` when imported; this order is the order --help lists them in.
from . import train, export, explain, bench, verify, device, webapp, info  # noqa: E402,F401,I001

__all__ = ["app"]

