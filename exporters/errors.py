"""Typed export failures; each names the variant and the numbers that failed."""

from fmnist_edge.errors import FmnistEdgeError


class ExportError(FmnistEdgeError):
    """A conversion could not be done (bad input run, converter failure, existing output)."""


class FineTuneUnsupported(ExportError):
    """This model cannot go through tensorflow-model-optimization (QAT, pruning or clustering): it has a layer
    tf_keras cannot rebuild, or tfmot cannot wrap. That variant is skipped, with this reason."""


class ParityError(ExportError):
    """An exported artifact disagrees with the Keras model beyond its variant's tolerance."""

    def __init__(self, variant: str, numbers: dict, limits: dict):
        self.variant, self.numbers, self.limits = variant, numbers, limits
        shown = ", ".join(f"{k}={v}" for k, v in numbers.items() if k != "accuracy_rule")
        wanted = ", ".join(f"{k} {v}" for k, v in limits.items())
        super().__init__(f"{variant}: parity check against Keras failed ({shown}; required {wanted}){rule_text(numbers)}. "
                         "No artifact was written.")


def rule_numbers(rule: dict) -> str:
    """The accuracy rule's numbers (exporters.gate), as the export line and a refusal say them."""
    return (f"accuracy drop {100 * rule['accuracy_drop']:.2f} points, worst class {100 * rule['worst_class_drop']:.1f} "
            f"points beyond its noise, agreement {rule['confident_agreement']:.2%} on the {rule['confident_share']:.0%} "
            "of images the model is sure of")


def rule_text(numbers: dict) -> str:
    """Why the accuracy rule did not accept it either, where it was tried."""
    rule = numbers.get("accuracy_rule")
    return f"; nor by the accuracy rule ({rule_numbers(rule)})" if rule else ""


class RepairFailed(ParityError):
    """A post-training int8 file missed its gate, and so did every repair tried (exporters.repair)."""

    def __init__(self, variant: str, first: ParityError, tried: list[dict], top_layers: list[str]):
        super().__init__(variant, first.numbers, first.limits)
        self.tried, self.top_layers = tried, top_layers
        steps = "; ".join(f"{t['step']}: agreement {t['agreement']}"
                          + (f", accuracy {t['accuracy']} (model {t['model_accuracy']})" if "accuracy" in t else "")
                          for t in tried)
        where = (f" The layers that lose the most (fmnist-edge explain): {', '.join(top_layers)}." if top_layers else "")
        ExportError.__init__(self, f"{variant}: parity check against Keras failed and repairs did not reach "
                                   f"agreement >= {first.limits.get('agreement >=')} ({steps}).{where} No artifact "
                                   "was written.")


class PortabilityError(ExportError):
    """An int8 artifact computes differently on another CPU class than on the exporting machine."""

    def __init__(self, variant: str, host_class: str, failures: dict):
        self.variant, self.failures = variant, failures
        rows = "; ".join(f"{cpu}: agreement={r['agreement']:.4f}, max_abs_diff={r['max_abs_diff']:.3g} ({', '.join(r['problems'])})"
                         for cpu, r in failures.items())
        super().__init__(f"{variant}: not portable: its outputs on the golden images under emulated {rows} differ from "
                         f"those computed here ({host_class}). No artifact was written. Choose a portable scheme "
                         "(for ONNX: --onnx-int8-scheme u8u8 or s8s8-reduce-range) or report the runtime version.")


class ConversionError(ExportError):
    """A converter could not build one variant from this model (an unsupported layer or option)."""

    def __init__(self, variant: str, message: str):
        self.variant = variant
        super().__init__(message)


class VariantsRefused(ExportError):
    """Some variants were refused (gate missed, not portable, conversion failed); the others were written.

    The CLI exits with code 3 (`exit_code`) for this, so a script can tell "some variants are missing" from
    a failed export (1). `written` maps each written variant to its directory; `refused` each refused one to
    its record (reason, numbers, what would help)."""

    exit_code = 3

    def __init__(self, written: dict, refused: dict):
        self.written, self.refused = written, refused
        lines = [f"{r['reason']}\n    what would help: {r['remedy']}" for r in refused.values()]
        super().__init__(f"{len(refused)} variant(s) refused and not written ({', '.join(refused)}); "
                         f"{len(written)} written ({', '.join(written) or 'none'}).\n  " + "\n  ".join(lines))
