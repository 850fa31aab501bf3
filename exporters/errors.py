"""Typed export failures; each names the variant and the numbers that failed."""

from fmnist_edge.errors import FmnistEdgeError


class ExportError(FmnistEdgeError):
    """A conversion could not be done (bad input run, converter failure, existing output)."""


class ParityError(ExportError):
    """An exported artifact disagrees with the Keras model beyond its variant's tolerance."""

    def __init__(self, variant: str, numbers: dict, limits: dict):
        self.variant, self.numbers, self.limits = variant, numbers, limits
        shown = ", ".join(f"{k}={v}" for k, v in numbers.items())
        wanted = ", ".join(f"{k} {v}" for k, v in limits.items())
        super().__init__(f"{variant}: parity check against Keras failed ({shown}; required {wanted}). No artifact was written.")
