"""The trade-off report: Pareto frontier and constraint queries, on synthetic results and through the CLI
on a bench of the committed micro release (no TensorFlow needed)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import run_cli_without_tensorflow
from fmnist_edge import cli, tradeoff

runner = CliRunner()


def row(name, accuracy, kb, p50, drop=0.0, agreement=1.0, raw_kb=None):
    return {"name": name, "kind": "artifact", "status": "ok", "file_bytes": int((raw_kb or kb) * 1000),
            "compressed_bytes": int(kb * 1000), "latency": {"p50_us": p50},
            "metrics": {"accuracy": accuracy, "accuracy_delta_points": -drop, "agreement": agreement}}


RESULT = {"rows": [
    {"name": "keras", "kind": "keras-recorded", "status": "ok", "metrics": {"accuracy": 0.93}, "latency": {}},
    row("float32", 0.930, 1800, 600, 0.0, raw_kb=1970),
    row("int8", 0.929, 450, 650, 0.1, 0.996, raw_kb=507),
    row("pruned", 0.927, 150, 640, 0.3, 0.98, raw_kb=507),
    row("onnx-int8", 0.929, 460, 420, 0.1, 0.996, raw_kb=514),
    row("slow-and-big", 0.925, 2000, 900, 0.5, 0.97),
]}


def test_pareto_marks_the_rows_no_other_row_beats_on_all_three_axes():
    # int8 is beaten by onnx-int8 (as accurate, faster) only if also no larger: it is smaller, so it stays
    assert tradeoff.pareto(RESULT) == ["float32", "int8", "pruned", "onnx-int8"]


def test_query_names_the_most_accurate_variant_within_every_constraint():
    a = tradeoff.query(RESULT, tradeoff.Constraints(max_size=200_000, max_drop=0.3, max_latency_us=700))
    assert a["fits"] and a["variant"] == "pruned"
    a = tradeoff.query(RESULT, tradeoff.Constraints(max_latency_us=500))
    assert a["variant"] == "onnx-int8" and "Best variant for these constraints: onnx-int8" in tradeoff.explain(a)
    a = tradeoff.query(RESULT, tradeoff.Constraints(max_raw_size=600_000, min_agreement=0.99))
    assert a["variant"] == "onnx-int8" and a["also_fit"] == ["int8"]  # equal accuracy: the faster one wins


def test_when_nothing_fits_the_binding_constraint_and_the_nearest_variant_are_named():
    a = tradeoff.query(RESULT, tradeoff.Constraints(max_size=200_000, max_drop=0.2))
    assert not a["fits"]
    text = tradeoff.explain(a)
    assert "--max-size 200.0 KB binds: without it, int8 would fit (450.0 KB)" in text
    assert "--max-drop 0.20 points binds: without it, pruned would fit (0.30 points)" in text
    a = tradeoff.query(RESULT, tradeoff.Constraints(max_size=100_000, max_latency_us=100))
    assert not a["fits"] and not a["binding"] and "relax several" in tradeoff.explain(a)


@pytest.mark.parametrize("text,expected", [("200KB", 200_000), ("200 KiB", 204_800), ("1.5MB", 1_500_000), ("4096", 4096)])
def test_sizes_parse_with_units(text, expected):
    assert tradeoff.parse_size(text) == expected


@pytest.mark.parametrize("text,expected", [("300us", 300.0), ("300µs", 300.0), ("0.3ms", 300.0), ("250", 250.0)])
def test_latencies_parse_with_units(text, expected):
    assert tradeoff.parse_latency(text) == expected


@pytest.mark.parametrize("bad", ["", "-5KB", "200 parsecs", "KB", "1e3KB"])
def test_bad_sizes_are_refused_with_the_expected_form(bad):
    with pytest.raises(ValueError, match="expected a number with an optional unit"):
        tradeoff.parse_size(bad)


rows_strategy = st.lists(st.tuples(st.integers(900, 940), st.integers(50, 2000), st.integers(100, 1000)),
                         min_size=1, max_size=8)


def reference_front(specs) -> set[str]:
    """The Pareto set by definition, on the raw (accuracy, size, latency) triples, written without tradeoff.py:
    v is off the front iff some other row is no worse on all three and strictly better on one."""
    def beats(o, v):
        return o[0] >= v[0] and o[1] <= v[1] and o[2] <= v[2] and (o[0] > v[0] or o[1] < v[1] or o[2] < v[2])

    return {f"v{i}" for i, v in enumerate(specs) if not any(beats(o, v) for j, o in enumerate(specs) if j != i)}


def reference_best(specs, max_kb, max_us) -> tuple | None:
    """The answer by definition: among fitting rows the most accurate, then the faster, then the smaller."""
    fitting = [(-acc, us, kb) for acc, kb, us in specs if kb * 1000 <= max_kb * 1000 and us <= max_us]
    return min(fitting) if fitting else None


@settings(max_examples=200, deadline=None)
@given(rows_strategy, st.integers(50, 2000), st.integers(100, 1000))
def test_frontier_and_query_agree_with_brute_force(specs, max_kb, max_us):
    result = {"rows": [row(f"v{i}", acc / 1000, kb, us, drop=(940 - acc) / 10) for i, (acc, kb, us) in enumerate(specs)]}
    cands = tradeoff.candidates(result)
    assert set(tradeoff.pareto(result)) == reference_front(specs)
    front = reference_front(specs)
    a = tradeoff.query(result, tradeoff.Constraints(max_size=max_kb * 1000, max_latency_us=max_us))
    fitting = [c for c in cands if c["compressed_bytes"] <= max_kb * 1000 and c["p50_us"] <= max_us]
    assert a["fits"] == bool(fitting)
    if fitting:
        want = reference_best(specs, max_kb, max_us)
        assert (-round(a["row"]["accuracy"] * 1000), a["row"]["p50_us"], a["row"]["compressed_bytes"] / 1000) == want
        assert a["variant"] in front


def test_bench_marks_the_frontier_and_answers_queries_from_its_saved_result(bench_result, tmp_path):
    result, md, stdout = bench_result
    assert result["pareto"] and set(result["pareto"]) == set(tradeoff.pareto(result))
    assert all(r["compressed_bytes"] < r["file_bytes"] for r in result["rows"] if r["kind"] == "artifact")
    assert "★" in stdout and "zlib-9 KiB" in md
    saved = tmp_path / "bench.json"
    saved.write_text(json.dumps(result))
    # the answer by definition, from the saved rows themselves: most accurate, then faster, then smaller
    artifacts = [r for r in result["rows"] if r["kind"] == "artifact" and r["status"] == "ok"]
    best = min(artifacts, key=lambda r: (-r["metrics"]["accuracy"], r["latency"]["p50_us"], r["compressed_bytes"]))
    assert best["compressed_bytes"] <= 10_000_000
    proc = run_cli_without_tensorflow("bench", "--results", str(saved), "--max-size", "10MB")
    assert proc.returncode == 0 and f"Best variant for these constraints: {best['name']}" in proc.stdout
    smallest = min(tradeoff.candidates(result), key=lambda c: c["compressed_bytes"])
    res = runner.invoke(cli.app, ["bench", "--results", str(saved), "--max-size", "1B", "--max-drop", "100"])
    assert res.exit_code == 1 and "No variant fits. --max-size 0.0 KB binds" in res.output
    assert f"without it, {smallest['name']} would fit" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("args,message", [
    (["--max-size", "lots"], "size 'lots': expected a number"),
    (["--max-latency", "fast"], "latency 'fast': expected a number"),
])
def test_bad_constraints_are_refused_before_any_work(args, message, tmp_path):
    res = runner.invoke(cli.app, ["bench", "--results", str(tmp_path / "missing.json"), *args])
    assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output


def test_a_file_that_is_not_a_bench_result_is_refused(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"rows": "no"}))
    res = runner.invoke(cli.app, ["bench", "--results", str(bad), "--max-size", "1MB"])
    assert res.exit_code == 1 and "not a bench result" in res.output
