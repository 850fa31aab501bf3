"""When int8 loses accuracy: a supplier-style CNN whose first convolution has two output channels scaled up 40x
(the next convolution compensates, so Keras computes the same function) loses int8 agreement. `explain` must
point at the two rescaled layers, and export must repair the file: by cross-layer equalization (still full
integer), else by keeping layers in float, else refuse naming them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402
from rich.console import Console  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import exporters  # noqa: E402
from exporters import gate, repair  # noqa: E402
from exporters.errors import VariantsRefused  # noqa: E402
from fmnist_edge import cli  # noqa: E402
from fmnist_edge import data as fdata  # noqa: E402
from fmnist_edge.errors import FmnistEdgeError  # noqa: E402

L = keras.layers
QUICK = {"limit": 3000, "calibration_images": 500, "console": Console(quiet=True)}


@pytest.fixture(scope="module")
def supplier(tmp_path_factory):
    """The rescaled model's file, made by the script the docs use (scripts/make_rescaled_model.py)."""
    path = tmp_path_factory.mktemp("supplier") / "supplier.keras"
    script = Path(__file__).parents[1] / "scripts" / "make_rescaled_model.py"
    proc = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return path


@pytest.fixture(autouse=True)
def without_the_accuracy_rule(monkeypatch):
    """The repair ladder on its own: the rescaled model's plain int8 file (or one with a layer in float) can be close
    enough in accuracy for the gate's accuracy rule (tests/test_gate.py) to accept it, and then nothing is repaired."""
    monkeypatch.setattr(gate, "ACCURACY_BUDGET", -1.0)


def test_explain_ranks_the_rescaled_layers_first_and_writes_no_artifact(supplier, tmp_path):
    out = tmp_path / "explain"
    out.mkdir()
    result = CliRunner().invoke(cli.app, ["explain", str(supplier), "--limit", "3000", "--json", str(out / "ex.json"),
                                          "--plot", str(out / "ex.png")])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "ex.json").read_text())
    assert report["variant"] == "tflite-int8" and not report["passes_gate"]  # the broken file misses its gate
    assert report["int8"]["agreement"] < 0.985
    layers = [r["layer"] for r in report["layers"]]
    assert set(layers[:2]) == {"stem", "body"} and set(layers) >= {"head", "pool", "flatten"}
    stem = next(r for r in report["layers"] if r["layer"] == "stem")
    # The range that explains it: two channels 40x the others, in the outputs and in the weights.
    assert stem["ranges"]["output_outlier_ratio"] > 10 and stem["ranges"]["weight_outlier_ratio"] > 10
    assert stem["channel_rel_rmse"] > 5 * stem["rel_rmse"]  # the whole-tensor error hides it
    assert all(0 <= r["rel_rmse"] < 1 for r in report["layers"])
    assert "float_only" in next(r for r in report["layers"] if r["layer"] == "body")
    # The head's op writes logits (softmax is an op of its own): that range, not the probabilities' [0, 1].
    head = next(r for r in report["layers"] if r["layer"] == "head")["ranges"]
    assert head["output_is"].startswith("logits") and head["output_min"] < 0 < 1 < head["output_max"]
    assert (out / "ex.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == ["ex.json", "ex.png"]
    assert sorted(p.name for p in supplier.parent.iterdir()) == ["supplier.keras"]
    words = " ".join(result.output.split())  # rich wraps the title at the table width, which the tmp path varies
    assert "│ 1 │ stem" in result.output and "MISSES its gate" in words


def test_export_repairs_by_equalization_a_full_integer_file_within_half_a_point(supplier, tmp_path):
    done = exporters.export(supplier, ["tflite-int8"], out=tmp_path / "run", **QUICK)  # with the portability proof
    m = json.loads((done["tflite-int8"] / "manifest.json").read_text())
    assert [p["layers"] for p in m["repair"]["equalized"]][0] == "stem -> body"
    assert m["repair"]["equalized"][0]["largest_channel_scale"] > 10
    assert "float_layers" not in m["repair"] and m["repair"]["tried"][0]["agreement"] < 0.985
    assert m["input"]["dtype"] == "int8" and m["output"]["dtype"] == "int8"  # still full integer
    assert m["fidelity"]["agreement_with_keras"] >= 0.985 and m["fidelity"]["accuracy_drop_points"] <= 0.5
    assert m["portability"]["checked_on"][0] == "native" and len(m["portability"]["checked_on"]) > 1
    from fmnist_edge.micro import _int8_artifact

    assert _int8_artifact(done["tflite-int8"]).variant == "tflite-int8"  # a microcontroller may take it


def test_onnx_int8_is_repaired_by_equalization_too(supplier, tmp_path):
    done = exporters.export(supplier, ["onnx-int8"], out=tmp_path / "run", **QUICK)
    m = json.loads((done["onnx-int8"] / "manifest.json").read_text())
    assert m["repair"]["equalized"][0]["layers"] == "stem -> body" and m["repair"]["tried"][0]["agreement"] < 0.985
    assert m["fidelity"]["agreement_with_keras"] >= 0.985 and m["fidelity"]["accuracy_drop_points"] <= 0.5


def test_repair_none_refuses_and_writes_nothing(supplier, tmp_path):
    with pytest.raises(VariantsRefused) as info:
        exporters.export(supplier, ["tflite-int8"], out=tmp_path / "run", repair="none", portability_cpus=(), **QUICK)
    assert "parity check against Keras failed" in info.value.refused["tflite-int8"]["reason"]
    assert not (tmp_path / "run" / "tflite-int8").exists()


def test_when_equalization_cannot_help_layers_are_kept_in_float_and_micro_refuses_the_file(supplier, tmp_path,
                                                                                              monkeypatch):
    """A model equalization cannot fix (simulated), whose gate one layer in float can reach: the gate is set
    between the plain file's agreement and that of the best layer kept in float, as explain measures them."""
    from exporters import gate
    from exporters.explain_target import explain_target

    report = explain_target(supplier, None, {}, {"limit": 3000}, Console(quiet=True))
    best = max(r["float_only"]["agreement"] for r in report["layers"] if "float_only" in r)
    assert best > report["int8"]["agreement"] + 0.002
    between = (best + report["int8"]["agreement"]) / 2
    monkeypatch.setattr(gate, "tolerance", lambda variant: {"min_agreement": between})
    monkeypatch.setattr(repair, "equalize", lambda model: (model, {"pairs": []}))
    done = exporters.export(supplier, ["tflite-int8"], out=tmp_path / "run", portability_cpus=(), **QUICK)
    m = json.loads((done["tflite-int8"] / "manifest.json").read_text())
    assert m["repair"]["full_integer"] is False and len(m["repair"]["float_layers"]) == 1
    assert m["repair"]["float_layers"][0] in {"stem", "body", "head"}
    assert m["input"]["dtype"] == "int8" and m["fidelity"]["agreement_with_keras"] >= between
    from fmnist_edge.micro import _int8_artifact

    with pytest.raises(FmnistEdgeError, match="not full-integer: export repaired it by keeping .* in float"):
        _int8_artifact(done["tflite-int8"])


def test_refusal_after_every_repair_names_explains_top_layers(supplier, tmp_path, monkeypatch):
    monkeypatch.setattr(repair, "equalize", lambda model: (model, {"pairs": []}))
    monkeypatch.setattr(repair, "MAX_FLOAT_LAYERS", 1)
    with pytest.raises(VariantsRefused) as info:
        exporters.export(supplier, ["tflite-int8"], out=tmp_path / "run", portability_cpus=(), **QUICK)
    reason = info.value.refused["tflite-int8"]["reason"]
    assert "repairs did not reach" in reason and "1 layer(s) in float" in reason
    assert "(fmnist-edge explain): stem, body" in reason or "(fmnist-edge explain): body, stem" in reason
    assert not (tmp_path / "run" / "tflite-int8").exists()


@pytest.mark.parametrize("variant", ["tflite-int8-qat", "tflite-int8-pruned", "tflite-float32"])
def test_explain_refuses_a_variant_it_does_not_analyse_and_says_where_to_look(supplier, variant):
    result = CliRunner().invoke(cli.app, ["explain", str(supplier), "--variant", variant])
    assert result.exit_code != 0 and "Traceback" not in result.output
    words = " ".join(result.output.split())
    assert f"{variant} is not one" in words and "onnx-int8" in words and "manifests record" in words


@pytest.fixture(scope="module")
def onnx_report(supplier):
    from exporters.explain_target import explain_target

    return explain_target(supplier, "onnx-int8", {}, {"limit": 3000}, Console(quiet=True))


def test_explain_onnx_int8_ranks_the_rescaled_layers_first_by_their_keras_names(onnx_report, supplier):
    assert onnx_report["variant"] == "onnx-int8" and onnx_report["scheme"] == "u8u8" and not onnx_report["passes_gate"]
    layers = [r["layer"] for r in onnx_report["layers"]]
    assert set(layers[:2]) == {"stem", "body"} and layers[2:] == ["head"]  # every weighted node, by its Keras name
    stem = onnx_report["layers"][0] if layers[0] == "stem" else onnx_report["layers"][1]
    assert stem["op"] == "Conv" and stem["node"] and stem["ranges"]["weight_outlier_ratio"] > 10
    assert stem["channel_rel_rmse"] > 5 * stem["rel_rmse"]  # two channels crush the six others under one scale
    assert all("agreement" in r["float_only"] for r in onnx_report["layers"])
    assert sorted(p.name for p in supplier.parent.iterdir()) == ["supplier.keras"]  # nothing written


def test_onnx_int8_keeps_explains_nodes_in_float_when_equalization_cannot_help(onnx_report, supplier, tmp_path,
                                                                                monkeypatch):
    """As for TFLite: equalization disabled, the gate set between the plain file's agreement and the best
    leave-one-out agreement explain measured; the file must then exclude that node from quantization."""
    import onnx

    from exporters import gate

    best = max(onnx_report["layers"], key=lambda r: r["float_only"]["agreement"])
    assert best["float_only"]["agreement"] > onnx_report["int8"]["agreement"] + 0.002
    between = (best["float_only"]["agreement"] + onnx_report["int8"]["agreement"]) / 2
    monkeypatch.setattr(gate, "tolerance", lambda variant: {"min_agreement": between})
    monkeypatch.setattr(repair, "equalize", lambda model: (model, {"pairs": []}))
    done = exporters.export(supplier, ["onnx-int8"], out=tmp_path / "run", portability_cpus=(), **QUICK)
    m = json.loads((done["onnx-int8"] / "manifest.json").read_text())
    assert len(m["repair"]["float_layers"]) == 1 and "full_integer" not in m["repair"]
    assert m["fidelity"]["agreement_with_keras"] >= between
    (excluded,) = m["excluded_nodes"]
    graph = onnx.load(str(done["onnx-int8"] / "model.onnx")).graph
    producers = {o: n.op_type for n in graph.node for o in n.output}
    node = next(n for n in graph.node if n.name == excluded)
    # kept in float: its weights are a plain initializer, not dequantized int8; the other convs stay quantized
    assert producers.get(node.input[1]) != "DequantizeLinear"
    assert sum(n.op_type == "DequantizeLinear" for n in graph.node) > 0
    assert "kept in float" in repair.summary(m["repair"]) and "not full-integer" not in repair.summary(m["repair"])


def test_equalization_keeps_the_function_and_evens_the_ranges(supplier):
    from exporters.explain import flattened

    model = keras.saving.load_model(supplier)
    equalized, record = repair.equalize(flattened(model))
    x = fdata.load(download=False, train=False).x_test[:300, ..., None].astype("float32") / 255.0
    np.testing.assert_allclose(equalized.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    w = equalized.get_layer("stem").get_weights()[0]
    per_channel = np.abs(w.reshape(-1, 8)).max(0)
    assert per_channel.max() / np.median(per_channel) < 5  # was 40x
    assert record["pairs"][0]["layers"] == "stem -> body"
