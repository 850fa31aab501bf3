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


class PortabilityError(ExportError):
    """An int8 artifact computes differently on another CPU class than on the exporting machine."""

    def __init__(self, variant: str, host_class: str, failures: dict):
        self.variant, self.failures = variant, failures
        rows = "; ".join(f"{cpu}: agreement={r['agreement']:.4f}, max_abs_diff={r['max_abs_diff']:.3g} ({', '.join(r['problems'])})"
                         for cpu, r in failures.items())
        super().__init__(f"{variant}: not portable: its outputs on the golden images under emulated {rows} differ from "
                         f"those computed here ({host_class}). No artifact was written. Choose a portable scheme "
                         "(for ONNX: --onnx-int8-scheme u8u8 or s8s8-reduce-range) or report the runtime version.")
