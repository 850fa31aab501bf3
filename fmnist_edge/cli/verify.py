"""`fmnist-edge verify`: on this device (and, with --cpu-matrix, on emulated CPUs), run each artifact's golden
images and compare with the outputs recorded at export."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..cpumatrix import ALL_CPUS, CPU_GROUPS, expand_cpus
from ..errors import FmnistEdgeError
from ._app import app, console, user_errors


@app.command()
@user_errors
def verify(
    artifact: Optional[Path] = typer.Argument(None, help="Artifact directory, or a run to verify all its artifacts (default: artifacts/reference)."),
    threads: int = typer.Option(1, help="Interpreter threads."),
    cpu_matrix: bool = typer.Option(False, "--cpu-matrix", help="Also run the golden set under emulated CPUs (qemu): "
                                    "x86 SSE4.2 and AVX2, arm64 Cortex-A72/A76, and each browser runtime in Chromium; one column each."),
    cpus: str = typer.Option(",".join(ALL_CPUS), help="CPUs for --cpu-matrix, comma-separated; the groups "
                             f"{', '.join(CPU_GROUPS)} stand for their columns."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="With --cpu-matrix or --browser: also write the results as JSON."),
    browser: bool = typer.Option(False, "--browser", help="Instead: run the golden images of the release's web artifacts "
                                 "in headless Chromium through the web app's own JavaScript (int8 must be bit-identical)."),
):
    """On this device, run the golden images and compare with the outputs recorded at export."""
    from runtime.errors import RuntimeArtifactError
    from runtime.verify import verify as verify_one

    from ..bench import ARTIFACT_DIRS
    from ..runs import default_release

    target = artifact or default_release()
    if browser:
        from ..paths import check_output_file

        return verify_browser(target, check_output_file(json_out, "--json") if json_out else None)
    is_run = any((target / n).is_dir() for n in ARTIFACT_DIRS)  # a run holds variant directories
    targets = [target / n for n in ARTIFACT_DIRS if (target / n).is_dir()] if is_run else [target]
    if not targets:
        raise FmnistEdgeError(f"{target}: no artifacts to verify (expected variant directories such as tflite-int8/).")
    if cpu_matrix:
        return verify_cpu_matrix(targets, expand_cpus(cpus), json_out)
    if json_out:
        raise FmnistEdgeError("--json is written by --cpu-matrix; add --cpu-matrix or drop --json.")
    from ..host import host_cpu

    host = host_cpu()
    table = Table(title=f"verify: this device ({host['model']}, {host['class']}) vs. the outputs recorded at export")
    for col in ("artifact", "images", "agree w/ export", "max |Δp| (allowed)", "agree w/ Keras", "accuracy", "result"):
        table.add_column(col)
    failures = []
    for t in targets:
        try:
            r = verify_one(t, num_threads=threads)
        except RuntimeArtifactError as exc:  # one broken artifact must not hide the verdicts on the others
            table.add_row(t.name, "-", "-", "-", "-", "-", "[red]ERROR[/]")
            failures.append(f"{t.name}: {exc}")
            continue
        table.add_row(r.variant, str(r.images), f"{r.agreement_with_export:.2%}",
                      f"{r.max_abs_diff_vs_export:.2g} ({r.tolerance_abs:.2g})", f"{r.agreement_with_keras:.2%}",
                      f"{r.accuracy:.4f} (Keras {r.keras_accuracy:.4f})", "[green]PASS[/]" if r.passed else "[red]FAIL[/]")
        failures += [f"{r.variant}: {p}" for p in r.problems]
    console.print(table)
    if failures:
        raise FmnistEdgeError(
            "this device's results differ from those recorded at export:\n  " + "\n  ".join(failures) +
            "\nLikely causes: a different LiteRT/ONNX Runtime version, kernels that compute differently on this CPU "
            "(e.g. an emulator advertising SVE/SME), or a corrupted copy. Check the versions against the manifest."
        )


def verify_cpu_matrix(targets: list[Path], cpus: tuple[str, ...], json_out: Optional[Path]) -> None:
    """The golden set of every artifact on this CPU and on emulated ones; a table of artifact x CPU."""
    from ..atomic import write_json
    from ..cpumatrix import EMULATED_FLOAT_IMAGES, cpu_labels, matrix_record, run_matrix
    from ..host import host_cpu
    from ..paths import check_output_file

    if json_out:
        check_output_file(json_out, "--json")
    host = host_cpu()
    label = cpu_labels(host)
    with console.status("") as status:
        matrix = run_matrix(targets, cpus, progress=lambda cpu: status.update(f"running the golden set as {label[cpu]}"))
    table = Table(title="CPU matrix: each CPU's outputs on the golden images vs. those recorded at export")
    table.add_column("artifact")
    for cpu in cpus:
        table.add_column(f"{cpu}\n({label[cpu]})" if cpu != "native" else label[cpu], justify="center")
    variants = list(matrix[cpus[0]])
    for v in variants:
        table.add_row(v, *(cell_text(matrix[cpu][v]) for cpu in cpus))
    console.print(table)
    console.print("Rule: 100% top-1 agreement; |Δp| within one int8 output step (int8) or 1e-4 (float). "
                  f"Emulated CPUs run float kernels on {EMULATED_FLOAT_IMAGES} of the golden images (qemu runs FMA "
                  "in software: seconds per image), int8 kernels on all. "
                  "qemu cannot emulate AVX-512, so the native column is the only one that covers it. Each browser "
                  "runtime's column runs only the files made for it, by its own rule (int8 bit-identical); – : a file "
                  "that column does not run.", highlight=False)
    if json_out:
        write_json(json_out, matrix_record(matrix, host, cpus))
    failures = [f"{v} on {cpu}: {'; '.join(cell.problems)}" for cpu, row in matrix.items() for v, cell in row.items()
                if not cell.passed]
    if failures:
        raise FmnistEdgeError("the CPU matrix failed:\n  " + "\n  ".join(failures))


def cell_text(c) -> str:
    if not c.applies:
        return "–"
    return ("[green]✓[/]" if c.passed else "[red]✗[/]") + f" {c.agreement:.0%} |Δp| {c.max_abs_diff:.1g} ({c.images} img)"


def verify_browser(run: Path, json_out: Optional[Path] = None) -> None:
    """`verify --browser`: a table of each web artifact's agreement with its export and its latency in Chromium."""
    from ..browser.chromium import verify_in_browser
    from ..browser.photos import golden_photos, photo_parity

    with console.status("running the golden images in headless Chromium"):
        rows = verify_in_browser(run)
    with console.status("running golden photos through the app's own preprocessing in headless Chromium"):
        photos = photo_parity(run, golden_photos(run))
    table = Table(title=f"verify in the browser: {run} in headless Chromium (WebAssembly, 1 thread) vs. the outputs "
                        "recorded at export", caption=rows[0]["browser"], caption_justify="left")
    for col in ("artifact", "runtime", "images", "agree w/ export", "max |Δp| (allowed)", "p50 ms", "p90 ms", "result"):
        table.add_column(col)
    for r in rows:
        allowed = "0: bit-identical" if r["rule"] == "bit-identical" else f"{r['tolerance']:.2g}"
        table.add_row(r["variant"], r["runtime"], str(r["images"]), f"{r['agreement']:.2%}", f"{r['max_abs_diff']:.2g} ({allowed})",
                      f"{r['p50_ms']:.2f}", f"{r['p90_ms']:.2f}", "[green]PASS[/]" if r["passed"] else "[red]FAIL[/]")
    console.print(table)
    console.print(f"Photos: {photos['photos']} golden images rendered as photos, through the app's decoding and "
                  f"preprocess.mjs and {photos['variant']} in Chromium vs. runtime.load_image in Python: model inputs "
                  f"within {photos['max_grey_diff']} grey level(s) (allowed 1), top-1 agreement "
                  f"{photos['top1_agreement']:.0%}: " + ("[green]PASS[/]" if photos["passed"] else "[red]FAIL[/]"))
    if json_out:
        from ..atomic import write_json
        from ..host import host_cpu

        write_json(json_out, {"command": f"fmnist-edge verify {run} --browser --json {json_out}", "run": str(run),
                              "host": host_cpu(), "browser": rows[0]["browser"], "rows": rows, "photos": photos})
    failures = [f"{r['variant']} in Chromium: {'; '.join(r['problems'])}" for r in rows if not r["passed"]]
    failures += [f"photos in Chromium: {p}" for p in photos["problems"]]
    if failures:
        raise FmnistEdgeError("the browser's results differ from those recorded at export:\n  " + "\n  ".join(failures))
