"""The project's own exception types.

Every error a user can cause (bad data, bad flags, a missing optional install) is one of these, so the
CLI can print its message and exit non-zero instead of showing a traceback.
"""


class FmnistEdgeError(Exception):
    """Base class: the message is meant for the user and says what to do."""


class DataError(FmnistEdgeError):
    """The Fashion-MNIST files are missing, truncated, corrupted or not what they claim to be."""


class ConfigError(FmnistEdgeError):
    """A hyper-parameter or option has a value that cannot work."""


class ModelFileError(FmnistEdgeError):
    """A model file is missing, unreadable or not a Keras model this project can load."""


class MissingExtraError(FmnistEdgeError):
    """A command needs an optional install (e.g. the `train` extra) that is not present."""
