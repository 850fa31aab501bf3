"""`fmnist-edge bench`: accuracy, agreement, size and latency of every artifact of a run next to Keras; with
constraint options, the best variant that fits; with --profile, where each artifact's time goes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..errors import FmnistEdgeError
from ._app import app, console, quiet_tensorflow, require_train_extra, user_errors


@app.command()
@user_errors
def bench(
    run_dir: Optional[Path] = typer.Argument(None, help="Run with exported artifacts (default: artifacts/reference)."),
    threads: int = typer.Option(1, help="Threads for every interpreter (and TensorFlow)."),
    batch_size: Optional[list[int]] = typer.Option(None, "--batch-size", help="Throughput batch sizes (repeatable; default 32 and 256)."),
    runs: int = typer.Option(500, help="Timed batch-1 runs per model."),
    warmup: int = typer.Option(50, help="Warm-up runs before timing."),
    variant: Optional[list[str]] = typer.Option(None, "--variant", help="Only these artifacts (repeatable)."),
    keras: str = typer.Option("auto", help="Keras row: auto (live if TensorFlow is installed), live, recorded."),
    max_drop: Optional[float] = typer.Option(None, help="Fail if an artifact loses more accuracy than this (points); "
                                             "in a constraint query, a constraint instead."),
    min_agreement: Optional[float] = typer.Option(None, help="Fail if top-1 agreement with Keras is below this (0-1); "
                                                  "in a constraint query, a constraint instead."),
    max_size: Optional[str] = typer.Option(None, help="Constraint query: compressed (zlib-9) size at most this, e.g. 200KB. "
                                           "Names the best variant that fits, or which constraint binds."),
    max_raw_size: Optional[str] = typer.Option(None, help="Constraint query: file size (flash) at most this, e.g. 512KiB."),
    max_latency: Optional[str] = typer.Option(None, help="Constraint query: batch-1 p50 latency on this CPU at most this, e.g. 300us."),
    results: Optional[Path] = typer.Option(None, help="Answer from a saved bench.json instead of measuring again "
                                           "(e.g. artifacts/reference/bench.json)."),
    out: Optional[Path] = typer.Option(None, help="Directory for bench.json, bench.md and bench.png (default: "
                                       "bench-results/RUN_NAME; the release itself is never written unless named here)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="JSON result (default: OUT/bench.json)."),
    markdown_out: Optional[Path] = typer.Option(None, "--markdown", help="Markdown table (default: OUT/bench.md)."),
    plot_out: Optional[Path] = typer.Option(None, "--plot", help="PNG plot (default: OUT/bench.png)."),
    data_dir: Optional[Path] = typer.Option(None, help="Directory with the four Fashion-MNIST IDX files."),
    test_images: Optional[int] = typer.Option(None, help="Use a seeded class-balanced subset of N test images (default: all)."),
    compute_floor: bool = typer.Option(True, help="Measure the CPU's float32 matmul peak to show each model's compute floor."),
    browser: bool = typer.Option(False, "--browser", help="Also time the web-capable artifacts in headless Chromium, through "
                                 "the web app's own code, next to their native latency (needs chromium and selenium)."),
    photos: Optional[Path] = typer.Option(None, "--photos", help="Also measure accuracy on photos: a folder made by "
                                          "scripts/make_photo_benchmark.py (photos.json), or one folder of photos per class "
                                          "name. Each artifact gets a photo accuracy beside its test accuracy; per-condition "
                                          "results go in the JSON."),
    profile: bool = typer.Option(False, "--profile", help="Instead: where each artifact's batch-1 time goes, per op (ONNX "
                                 "Runtime's profiler; for TFLite, timed cumulative prefixes of the file). Writes OUT/profile.json."),
):
    """Accuracy, agreement, size (raw and compressed) and latency of every artifact of a run next to the Keras
    original, with the Pareto-optimal variants marked. With --max-size/--max-raw-size/--max-latency it answers a
    constraint query: the best variant that fits, or which constraint binds."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .. import report, tradeoff
    from ..bench import ARTIFACT_DIRS, BenchConfig, run_bench
    from ..paths import check_output_dir, check_output_file
    from ..runs import default_release

    cfg = BenchConfig(threads=threads, batch_sizes=tuple(batch_size) if batch_size else BenchConfig.batch_sizes, warmup=warmup, runs=runs,
                      variants=tuple(variant) if variant else None, keras=keras,
                      data_dir=str(data_dir) if data_dir else None, test_images=test_images,
                      compute_floor=compute_floor, browser=browser, photos=str(photos) if photos else None)
    cons = tradeoff.constraints_from_options(max_size, max_raw_size, max_latency, max_drop, min_agreement)
    querying = any(v is not None for v in (max_size, max_raw_size, max_latency))
    if results is not None:
        result = report.load_result(results)
        console.print(report.rich_table(result))
        return answer_query(result, cons) if querying else gate_or_fail(report.gate(result, max_drop, min_agreement))
    if keras == "live":
        require_train_extra("tensorflow")
    quiet_tensorflow()
    os.environ["KERAS_BACKEND"] = "tensorflow"  # the live Keras row times a compiled tf.function
    run = run_dir or default_release()
    unknown = [v for v in variant or () if v not in ARTIFACT_DIRS]
    if unknown:  # also keeps --variant ../x from reaching outside the run
        raise FmnistEdgeError(f"--variant: unknown {unknown}; choose from {', '.join(ARTIFACT_DIRS)}.")
    # Every output is checked before the benchmark runs, so a bad path cannot waste it.
    out = check_output_dir(out or Path("bench-results") / run.resolve().name, "--out")
    if profile:
        return profile_run(run, variant, runs, threads, check_output_file(json_out, "--json") if json_out else out / "profile.json")
    json_out, markdown_out, plot_out = output_files(out, json_out, markdown_out, plot_out)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("bench", total=None)
        measured = run_bench(run, cfg, progress=lambda msg: progress.update(task, description=f"benchmarking {msg}"))
    result = measured.to_dict()
    print_tables(result)
    write_results(measured, out, json_out, markdown_out, plot_out)
    if querying:
        return answer_query(result, cons)
    gate_or_fail(report.gate(result, max_drop, min_agreement))


def print_tables(result: dict) -> None:
    """The bench table, then browser latency and photo accuracy where this run measured them."""
    from .. import report

    console.print(report.rich_table(result))
    if report.browser_rows(result):
        console.print(report.browser_table(result))
    for table in report.photo_tables(result):
        console.print(table)


def output_files(out: Path, json_out: Path | None, markdown_out: Path | None, plot_out: Path | None):
    """bench.json, bench.md and bench.png: in OUT unless named, each checked before the benchmark runs, so a bad
    path cannot waste it."""
    from ..paths import check_output_file

    paths = [p or out / name for p, name in ((json_out, "bench.json"), (markdown_out, "bench.md"), (plot_out, "bench.png"))]
    for option, path in zip(("--json", "--markdown", "--plot"), paths):
        if path.parent != out or out.exists():
            check_output_file(path, option)
    return paths


def write_results(measured, out: Path, json_out: Path, markdown_out: Path, plot_out: Path) -> None:
    """Write the measured result as JSON, a Markdown table and (with matplotlib) a plot, each atomically."""
    from .. import report
    from ..atomic import write_atomic

    result = measured.to_dict()
    if out in (json_out.parent, markdown_out.parent, plot_out.parent):
        out.mkdir(parents=True, exist_ok=True)
    measured.save(json_out)
    write_atomic(markdown_out, lambda tmp: tmp.write_text(report.markdown(result)))
    plotted = report.can_plot()
    if plotted:
        write_atomic(plot_out, lambda tmp: report.plot(result, tmp))
    console.print(f"Wrote {json_out}, {markdown_out}" + (f", {plot_out}" if plotted else " (no plot: matplotlib not installed)"))


def profile_run(run: Path, variants, runs: int, threads: int, json_out: Path) -> None:
    """`bench --profile`: a per-op table for each artifact of a run (or one artifact directory), and JSON."""
    from ..atomic import write_json
    from ..host import host_cpu
    from runtime.errors import ManifestError, RuntimeArtifactError

    from ..op_profile import artifact_dirs, profile_artifact

    dirs = artifact_dirs(run, variants)
    host = host_cpu()
    results, skipped = [], {}
    for d in dirs:
        try:
            r = profile_artifact(d, runs=runs, threads=threads)
        except (FmnistEdgeError, RuntimeArtifactError, ManifestError) as exc:  # one file that cannot be profiled stops no other
            skipped[d.name] = str(exc)
            console.print(f"[yellow]–[/] {d.name}: not profiled: {exc}", highlight=False)
            continue
        results.append(r)
        console.print(profile_table(r, threads, host["class"]))
    json_out.parent.mkdir(parents=True, exist_ok=True)
    write_json(json_out, {"run": str(run), "host": host, "runs": runs, "threads": threads, "artifacts": results,
                          **({"skipped": skipped} if skipped else {})})
    console.print(f"Wrote {json_out}")


def profile_table(r: dict, threads: int, cpu_class: str) -> Table:
    noise = r.get("noise_floor_us")
    title = (f"{r['variant']}: batch 1, {threads} thread(s), {cpu_class}; whole {r['whole_us']:.1f} µs"
             + (f"; noise floor {noise:.1f} µs (~ marks an op below it)" if noise is not None else ""))
    table = Table(title=title, caption=r["method"], caption_justify="left")
    for col in ("op", "output shape", "µs", "share", "MFLOP", "MFLOP/s", "note"):
        table.add_column(col, justify="left" if col in ("op", "output shape", "note") else "right")
    for o in r["ops"]:
        table.add_row(o["op"], str(o.get("shape") or ""), ("~" if o.get("below_noise") else "") + f"{o['us']:.1f}",
                      f"{o['share']:.1%}" if o.get("share") is not None else "",
                      f"{o['mflop']:.3f}" if o.get("mflop") else "",
                      f"{o['mflop_per_s']:,.0f}" if o.get("mflop_per_s") else "", o.get("note", ""))
    return table


def gate_or_fail(bad: list[str]) -> None:
    if bad:
        raise FmnistEdgeError("gating failed:\n  " + "\n  ".join(bad))


def answer_query(result: dict, cons) -> None:
    """Print the best variant within the constraints; exit 1 naming the binding constraint when none fits."""
    from .. import tradeoff

    answer = tradeoff.query(result, cons)
    text = tradeoff.explain(answer)
    if not answer["fits"]:
        raise FmnistEdgeError(text)
    console.print(f"[green]{text}[/]")
