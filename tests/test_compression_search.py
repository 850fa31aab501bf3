"""Pruning and clustering per model (exporters.search): export walks a ladder of settings and fine-tuning
budgets until the int8 file is within --compression-max-drop points of Keras, and records every rung it tried."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"

import pytest  # noqa: E402
from rich.console import Console  # noqa: E402

from exporters import pipeline  # noqa: E402
from exporters.config import ClusterConfig, ExportConfig, PruneConfig  # noqa: E402
from exporters.errors import ExportError  # noqa: E402
from exporters.search import ladder, summary  # noqa: E402
from fmnist_edge.report import _cells  # noqa: E402
from runtime import manifest as rmf  # noqa: E402

from conftest import copy_run  # noqa: E402


def test_the_ladder_tries_the_setting_then_a_longer_budget_then_looser_settings():
    p = PruneConfig(sparsity=0.9, epochs=3, learning_rate=1e-4)
    rungs = ladder(p, 4)
    assert [(c.sparsity, c.epochs, whole) for c, whole in rungs] == [(0.9, 3, False), (0.9, 6, True), (0.8, 6, True),
                                                                     (0.7, 6, True)]
    assert rungs[1][0].learning_rate == pytest.approx(3e-4) and rungs[1][0].ramp_epochs == p.ramp_epochs
    assert not rungs[0][0].cosine_decay and all(c.cosine_decay for c, _ in rungs[1:])
    assert ladder(p, 1) == [(p, False)]
    assert [c.sparsity for c, _ in ladder(PruneConfig(sparsity=0.45), 8)] == [0.45, 0.45, 0.35]  # never below 30%
    c = ClusterConfig(clusters=8, epochs=1)
    assert [(r.clusters, r.epochs, whole) for r, whole in ladder(c, 8)] == [(8, 1, False), (8, 4, True), (12, 4, True),
                                                                            (16, 4, True)]
    assert [r.clusters for r, _ in ladder(ClusterConfig(clusters=200), 8)] == [200, 200, 256]  # int8's 256 values
    with pytest.raises(ExportError, match="compression-attempts"):
        ExportConfig(compression_attempts=0)
    with pytest.raises(ExportError, match="compression-max-drop"):
        ExportConfig(compression_max_drop=-1)


@pytest.fixture(scope="module")
def searched(tiny_run, tmp_path_factory):
    """95% of the tiny model's classifier pruned after one epoch on 500 images, held to 0.01 points: the first rung
    misses, so the search has to go on."""
    run = copy_run(tiny_run, tmp_path_factory.mktemp("search") / "artifacts" / "tiny-run")
    pipeline.export_run(run, ExportConfig(variants=("tflite-int8-pruned",), calibration_images=200,
                                          pruning=PruneConfig(sparsity=0.95, epochs=1, ramp_epochs=1),
                                          fine_tune_images=500, compression_max_drop=0.01, portability_cpus=()),
                        Console(quiet=True))
    return rmf.read(run / "tflite-int8-pruned" / "manifest.json")


def test_the_search_goes_on_until_a_rung_is_within_budget_and_ships_the_one_it_chose(searched):
    record, pruning = searched["pruning"]["search"], searched["pruning"]
    tried = record["tried"]
    assert not tried[0]["within_budget"] and tried[0]["drop_points"] > 0.01
    assert len(tried) >= 2  # it did not stop at the rung that missed
    assert [t["sparsity"] for t in tried] == [0.95, 0.95, 0.85, 0.75][:len(tried)]
    assert tried[0]["fine_tune_images"] == 500 < tried[1]["fine_tune_images"] and tried[1]["epochs"] == 4
    assert tried[1]["learning_rate_schedule"] == "cosine decay to 0"
    chosen = tried[record["chosen"] - 1]
    assert all(not t["within_budget"] for t in tried[:record["chosen"] - 1])
    if record["within_budget"]:
        assert chosen["within_budget"] and record["chosen"] == len(tried)
    else:  # none within: the most accurate ships, and says so
        assert len(tried) == 4 and chosen["int8_accuracy"] == max(t["int8_accuracy"] for t in tried)
    # The record describes the shipped file: its setting, schedule, accuracy and size.
    assert pruning["target_sparsity"] == chosen["sparsity"] and pruning["epochs"] == chosen["epochs"]
    assert pruning["fine_tune_images"] == chosen["fine_tune_images"]
    assert searched["fidelity"]["accuracy"] == pytest.approx(chosen["int8_accuracy"], abs=1e-4)
    # sizes before export embeds the labels and contract (about 1 KB zlib-9, in the float32 file too)
    assert 0 < searched["file"]["zlib9_bytes"] - chosen["zlib9_bytes"] < 2000
    assert chosen["of_float32_zlib9"] == pytest.approx(chosen["zlib9_bytes"] / record["float32_zlib9_bytes"], abs=1e-4)
    assert record["size_target"] == 0.10 and record["size_target_met"] == (chosen["of_float32_zlib9"] <= 0.10)
    assert f"sparsity {chosen['sparsity']:.0%} after {len(tried)} tried" in summary(record)


def test_bench_marks_a_file_that_missed_its_budget():
    row = {"name": "tflite-int8-pruned", "status": "ok", "metrics": {"accuracy": 0.9}, "latency": {}, "throughput": {},
           "extra": {"search": {"within_budget": False}}}
    assert _cells(row)[0] == "tflite-int8-pruned (over budget)"
    row["extra"]["search"]["within_budget"] = True
    assert _cells(row)[0] == "tflite-int8-pruned"
