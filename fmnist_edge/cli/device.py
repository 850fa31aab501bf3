"""Device commands: `predict` (real photos), `micro` (TensorFlow Lite Micro: accuracy, arena, flash) and
`c-source` (an int8 model as C/C++ for firmware)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..errors import FmnistEdgeError
from ..runs import shipped_artifact
from ._app import app, console, user_errors


@app.command()
@user_errors
def predict(
    images: list[Path] = typer.Argument(..., help="PNG/JPEG photos or scans of garments."),
    model: Optional[Path] = typer.Option(None, "--model", help="Artifact directory or model file (default: artifacts/reference/tflite-int8)."),
    top_k: int = typer.Option(3, "--top-k", help="How many labels to show per image."),
    threads: int = typer.Option(1, help="Interpreter threads."),
):
    """Classify photos of garments, converted as Fashion-MNIST was made (trim to the garment, fit to 28x28, sharpen,
    centre, negate; runtime.load_image), and show the top-k labels. A photo with no garment in it says so."""
    import numpy as np

    import runtime
    from runtime.images import NoGarmentError, load_image

    if not 1 <= top_k <= 10:
        raise FmnistEdgeError(f"--top-k must be between 1 and 10, got {top_k}.")
    clf = runtime.load(shipped_artifact(model, "tflite-int8", "predict PHOTO --model"), num_threads=threads)
    inputs: dict[int, np.ndarray] = {}
    empty: dict[int, str] = {}
    for i, path in enumerate(images):  # every photo is read before any is classified: a bad file costs nothing
        try:
            inputs[i] = load_image(path)
        except NoGarmentError as exc:
            empty[i] = exc.reason
    if clf.folded_contract:
        console.print(f"{clf.variant}: the model's input contract, {clf.folded_contract}, is applied inside its graph", highlight=False)
    ranked = dict(zip(inputs, clf.top_k(np.stack(list(inputs.values())), top_k))) if inputs else {}
    for i, path in enumerate(images):
        said = empty[i] if i in empty else ", ".join(f"{name} {p:.1%}" for name, p in ranked[i])
        console.print(f"[bold]{path}[/]: {said}", highlight=False)
    if empty:
        raise FmnistEdgeError(f"{len(empty)} of {len(images)} photo(s) had no garment to classify (above).")


@app.command()
@user_errors
def micro(
    artifact: Optional[Path] = typer.Argument(None, help="Full-integer int8 TFLite artifact (default: artifacts/reference/tflite-int8)."),
    test_images: int = typer.Option(1000, help="Seeded class-balanced test images to run (reference kernels are slow)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON."),
    data_dir: Optional[Path] = typer.Option(None, help="Directory with the four Fashion-MNIST IDX files."),
):
    """Run an int8 artifact on the TensorFlow Lite Micro interpreter: accuracy there, tensor-arena RAM, flash size."""
    from .. import data as fdata
    from ..paths import check_output_file
    from ..micro import micro_report

    if test_images < 10:
        raise FmnistEdgeError(f"--test-images must be at least 10, got {test_images}.")
    if json_out:
        check_output_file(json_out, "--json")
    ds = fdata.load(data_dir, download=False, train=False)
    idx = fdata.subset(ds.y_test, test_images, 0)
    measured = micro_report(shipped_artifact(artifact, "tflite-int8", "micro"), ds.x_test[idx], ds.y_test[idx])
    report = measured.to_dict()
    table = Table(title=f"TensorFlow Lite Micro: {report['artifact']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in report.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value))
    console.print(table)
    if json_out:
        measured.save(json_out)


@app.command("c-source")
@user_errors
def c_source(
    artifact: Optional[Path] = typer.Argument(None, help="Full-integer int8 TFLite artifact (default: artifacts/reference/tflite-int8)."),
    out: Path = typer.Option(Path("."), help="Directory for NAME.h and NAME.cc."),
    name: str = typer.Option("fmnist_model", help="C identifier and file name stem."),
    cortex_m4: bool = typer.Option(False, "--cortex-m4", help="Also compile NAME.cc for a Cortex-M4 (gcc-arm-none-eabi) "
                                   "and report its flash and RAM footprint."),
):
    """Emit an int8 model as a C/C++ source/header pair for firmware (TFLite Micro)."""
    from ..micro import compile_for_cortex_m4, write_c_source

    header, source = write_c_source(shipped_artifact(artifact, "tflite-int8", "c-source"), out, name)
    console.print(f"Wrote {header} and {source}")
    if cortex_m4:
        fp = compile_for_cortex_m4(source)
        console.print(f"{fp['target']}: {fp['flash_bytes']:,} bytes of flash, {fp['ram_bytes']:,} bytes of RAM in "
                      f"{fp['object']} ({fp['compiler']}); TFLite Micro's tensor arena and interpreter come on top "
                      "(`fmnist-edge micro` measures the arena).")
