"""The training tier's exception types.

Every error a user can cause (bad data, bad flags, a missing optional install, a full disk) is a
FmnistEdgeError, in every tier (runtime, exporters, this package), so the CLI prints its message and exits
non-zero instead of showing a traceback. The base lives in the runtime, which imports nothing of ours.
"""

from runtime.errors import FmnistEdgeError  # noqa: F401  (the one base; re-exported for this tier)


class DataError(FmnistEdgeError):
    """The Fashion-MNIST files are missing, truncated, corrupted or not what they claim to be."""


class ConfigError(FmnistEdgeError):
    """A hyper-parameter or option has a value that cannot work."""


class ModelFileError(FmnistEdgeError):
    """A model file is missing, unreadable or not a Keras model this project can load."""


class RunError(FmnistEdgeError):
    """A run directory has no manifest, a malformed one, or a model file that is missing or was modified."""


class OutputExistsError(ConfigError):
    """An output that must not be silently replaced already exists."""


class DiskFullError(FmnistEdgeError):
    """The disk (or quota) filled up while writing; nothing was left half-written."""

    def __init__(self, message: str, errno: int):
        super().__init__(message)
        self.errno = errno  # ENOSPC or EDQUOT, as the OSError it replaces had


class MissingExtraError(FmnistEdgeError):
    """A command needs an optional install (e.g. the `train` extra) that is not present."""


# The signal (SIGTERM) that asked this process to stop, once one has. The CLI's handler raises SystemExit, but
# libraries swallow it at times: Keras converts its logs to numbers after every batch inside a bare `except:`,
# and the TFLite converter turns it into a TypeError. Long loops and commit points call `stop_if_signalled`
# so a swallowed stop still stops, before anything is renamed into place.
signalled: list[int] = []


def stop_if_signalled() -> None:
    """Exit as stopped (128 + signal number) if a stop signal arrived, even one a library swallowed."""
    if signalled:
        raise SystemExit(128 + signalled[0])
