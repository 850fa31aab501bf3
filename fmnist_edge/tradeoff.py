"""The size / accuracy / latency trade-off of a bench result: the Pareto frontier and constraint queries.

Works on the bench.json dict alone (numpy-free, TensorFlow-free), so a saved result can be queried on
any machine: `fmnist-edge bench --results bench.json --max-size 200KB --max-drop 0.3 --max-latency 300us`.
The three axes are test accuracy (higher is better), compressed file size (zlib-9, what a download or an
OTA update carries; lower is better) and batch-1 p50 latency on the benchmarking CPU (lower is better).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2}
TIME_UNITS = {"us": 1.0, "µs": 1.0, "ms": 1000.0, "s": 1e6}


def parse_size(text: str) -> int:
    """'200KB', '200 KiB', '1.5MB', '4096' (bytes) -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = (m.group(2) or "b").lower() if m else None
    if not m or unit not in UNITS:
        raise ValueError(f"size {text!r}: expected a number with an optional unit B, KB, KiB, MB or MiB (e.g. 200KB)")
    return int(float(m.group(1)) * UNITS[unit])


def parse_latency(text: str) -> float:
    """'300us', '0.3ms', '300' (µs) -> microseconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(us|µs|ms|s)?\s*", str(text))
    if not m:
        raise ValueError(f"latency {text!r}: expected a number with an optional unit us, ms or s (e.g. 300us)")
    return float(m.group(1)) * TIME_UNITS[m.group(2) or "us"]


def candidates(result: dict) -> list[dict]:
    """Artifact rows with all three axes measured: name, accuracy, drop (points), agreement, sizes, p50."""
    out = []
    for r in result["rows"]:
        m, p50 = r.get("metrics") or {}, (r.get("latency") or {}).get("p50_us")
        if r.get("kind") != "artifact" or r.get("status") != "ok" or m.get("accuracy") is None or not p50:
            continue
        drop = -m["accuracy_delta_points"] if m.get("accuracy_delta_points") is not None else None
        out.append({"name": r["name"], "accuracy": m["accuracy"], "drop_points": drop, "agreement": m.get("agreement"),
                    "bytes": r.get("file_bytes"), "compressed_bytes": r.get("compressed_bytes"), "p50_us": p50})
    return out


def _size(c: dict) -> int:
    # a bench.json from before compressed sizes were recorded: the file size stands in
    return c["compressed_bytes"] if c["compressed_bytes"] is not None else c["bytes"]


def dominates(a: dict, b: dict) -> bool:
    """a is at least as good as b on every axis and better on one."""
    ge = a["accuracy"] >= b["accuracy"] and _size(a) <= _size(b) and a["p50_us"] <= b["p50_us"]
    gt = a["accuracy"] > b["accuracy"] or _size(a) < _size(b) or a["p50_us"] < b["p50_us"]
    return ge and gt


def pareto(result: dict) -> list[str]:
    """Names of the Pareto-optimal artifacts: no other artifact is at least as good on all three axes."""
    rows = candidates(result)
    return [a["name"] for a in rows if not any(dominates(b, a) for b in rows if b is not a)]


@dataclass(frozen=True)
class Constraints:
    max_size: int | None = None  # compressed bytes
    max_raw_size: int | None = None  # file bytes (flash)
    max_latency_us: float | None = None
    max_drop: float | None = None  # accuracy points below Keras
    min_agreement: float | None = None  # fraction

    def constraints(self):
        """(option, limit as shown, value of a candidate, ok) for each constraint that is set."""
        def kb(n):
            return f"{n / 1000:,.1f} KB"
        rules = [
            ("--max-size", self.max_size, "compressed_bytes", kb, lambda v, lim: v <= lim),
            ("--max-raw-size", self.max_raw_size, "bytes", kb, lambda v, lim: v <= lim),
            ("--max-latency", self.max_latency_us, "p50_us", lambda v: f"{v:,.0f} µs", lambda v, lim: v <= lim),
            ("--max-drop", self.max_drop, "drop_points", lambda v: f"{v:.2f} points", lambda v, lim: v <= lim),
            ("--min-agreement", self.min_agreement, "agreement", lambda v: f"{100 * v:.2f}%", lambda v, lim: v >= lim),
        ]
        return [r for r in rules if r[1] is not None]


def fits(c: dict, rules) -> bool:
    # a missing metric (no Keras reference) cannot satisfy a constraint on it; NaN fails too
    return all(c.get(key) is not None and not (isinstance(c[key], float) and math.isnan(c[key])) and ok(c[key], lim)
               for _, lim, key, _, ok in rules)


def best(rows: list[dict]) -> dict | None:
    """The most accurate; ties go to the faster, then the smaller."""
    return min(rows, key=lambda c: (-c["accuracy"], c["p50_us"], _size(c))) if rows else None


def query(result: dict, cons: Constraints) -> dict:
    """The best artifact meeting every constraint, or which constraint binds when none does."""
    rows, rules = candidates(result), cons.constraints()
    if not rules:
        raise ValueError("no constraint given")
    chosen = best([c for c in rows if fits(c, rules)])
    if chosen:
        return {"fits": True, "variant": chosen["name"], "row": chosen,
                "also_fit": [c["name"] for c in rows if fits(c, rules) and c is not chosen]}
    binding = []
    for i, (option, lim, key, show, _) in enumerate(rules):
        others = rules[:i] + rules[i + 1:]
        near = [c for c in rows if fits(c, others) and c.get(key) is not None]
        if near:  # relaxing this one constraint alone would admit these
            closest = min(near, key=lambda c: -c[key] if option == "--min-agreement" else c[key])
            binding.append({"option": option, "limit": show(lim), "closest": closest["name"],
                            "closest_value": show(closest[key])})
    return {"fits": False, "binding": binding, "candidates": len(rows)}


def explain(answer: dict) -> str:
    if answer["fits"]:
        r = answer["row"]
        also = f" Also within the constraints: {', '.join(answer['also_fit'])}." if answer["also_fit"] else ""
        d = r["drop_points"]
        vs = "" if d is None else f", {abs(d):.2f} points {'below' if d > 0 else 'above'} Keras"
        packed = "compressed size not recorded" if r["compressed_bytes"] is None else f"{r['compressed_bytes'] / 1000:,.1f} KB compressed"
        return (f"Best variant for these constraints: {answer['variant']} (accuracy {r['accuracy']:.4f}{vs}, "
                f"{packed} / {r['bytes'] / 1000:,.1f} KB file, p50 {r['p50_us']:,.0f} µs)." + also)
    if not answer["binding"]:
        return (f"No variant fits: none of the {answer['candidates']} artifacts meets more than one of these constraints "
                "at a time; relax several, or train a smaller model.")
    lines = [f"No variant fits. {b['option']} {b['limit']} binds: without it, {b['closest']} would fit "
             f"({b['closest_value']})." for b in answer["binding"]]
    return "\n".join(lines)


def constraints_from_options(max_size: str | None, max_raw_size: str | None, max_latency: str | None,
                             max_drop: float | None, min_agreement: float | None) -> Constraints:
    """The bench command's gate and query options, parsed and checked (FmnistEdgeError when one cannot work)."""
    from .errors import FmnistEdgeError

    for name, value, low, high in (("--max-drop", max_drop, 0.0, 100.0), ("--min-agreement", min_agreement, 0.0, 1.0)):
        # NaN compares false with everything, so an unchecked NaN would silently switch the gate off.
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            raise FmnistEdgeError(f"{name} must be a number between {low:g} and {high:g}, got {value}.")
    try:
        return Constraints(
            max_size=parse_size(max_size) if max_size is not None else None,
            max_raw_size=parse_size(max_raw_size) if max_raw_size is not None else None,
            max_latency_us=parse_latency(max_latency) if max_latency is not None else None,
            max_drop=max_drop, min_agreement=min_agreement)
    except ValueError as exc:
        raise FmnistEdgeError(f"{exc}.") from None
