"""`fmnist-edge explain`: which layer an int8 file loses its accuracy in, by Keras layer name (exporters.explain)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from exporters.config import INPUT_FIT_HELP, ExportConfig, option_default, option_help

from ._app import app, console, quiet_tensorflow, require_train_extra, user_errors


def explain_table(report: dict) -> Table:
    int8, gate = report["int8"], report["gate"]
    verdict = "passes" if report["passes_gate"] else "MISSES"
    scheme = f" ({report['scheme']})" if report.get("scheme") else ""
    table = Table(title=f"{report['variant']}{scheme} of {report['target']}: int8 accuracy {int8['accuracy']:.4f} (Keras "
                        f"{report['keras_accuracy']:.4f}), agreement {int8['agreement']:.2%} ({verdict} its gate "
                        f">= {gate['min_agreement']:.1%}); worst first", title_justify="left",
                  caption=report["method"], caption_justify="left")
    for col in ("#", "layer", "op", "error/channel", "error", "SNR dB", "agreement, only it in float", "output range",
                "outlier ratio out / weights"):
        table.add_column(col, justify="left" if col in ("layer", "op", "output range") else "right")
    for rank, r in enumerate(report["layers"], 1):
        alone, rng = r.get("float_only"), r.get("ranges", {})
        table.add_row(str(rank), r["layer"], r["op"], f"{r['channel_rel_rmse']:.2%}", f"{r['rel_rmse']:.2%}",
                      f"{r['snr_db']:.1f}" if r.get("snr_db") is not None else "",
                      f"{alone['agreement']:.2%} ({alone['agreement_gain_points']:+.2f})" if alone else "",
                      f"[{rng['output_min']:.3g}, {rng['output_max']:.3g}]"
                      + (" logits" if rng.get("output_is", "").startswith("logits") else "") if "output_min" in rng else "",
                      " / ".join(f"{rng[k]:.1f}" for k in ("output_outlier_ratio", "weight_outlier_ratio") if k in rng))
    return table


def plot_layers(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["layers"]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.5))
    ax.barh([r["layer"] for r in rows][::-1], [100 * r["channel_rel_rmse"] for r in rows][::-1], color="#c0504d")
    ax.set_xlabel("error its int8 quantization adds, mean per output channel (% relative RMSE)")
    ax.set_title(f"{report['variant']}: int8 agreement with Keras {report['int8']['agreement']:.2%}")
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")  # the atomic writer's temporary name has no .png
    plt.close(fig)


@app.command()
@user_errors
def explain(
    target: Path = typer.Argument(..., help="A run directory, an exported artifact directory, or a .keras/.h5 model file."),
    variant: Optional[str] = typer.Option(None, help="The int8 variant to analyse (default: the artifact's, else tflite-int8)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the ranked layers as JSON."),
    plot: Optional[Path] = typer.Option(None, help="Write a PNG bar chart of each layer's error."),
    calibration_images: int = typer.Option(option_default(ExportConfig, "calibration_images"),
                                           help=option_help(ExportConfig, "calibration_images")),
    onnx_int8_scheme: Optional[str] = typer.Option(None, help="onnx-int8: the ONNX Runtime scheme (default: the artifact's, "
                                                   "else export's default).", show_default=False),
    data_dir: Optional[Path] = typer.Option(None, help="Directory with the four Fashion-MNIST IDX files."),
    input_range: Optional[str] = typer.Option(None, help="Model file: the range LO,HI it was trained on (as for export)."),
    input_norm: Optional[str] = typer.Option(None, help="Model file: MEAN,STD it standardised its inputs with."),
    input_scale: Optional[float] = typer.Option(None, help="Model file: shorthand for --input-range 0,S."),
    output: str = typer.Option("auto", help="Model file: 'probabilities', 'logits' or auto."),
    input_fit: str = typer.Option("auto", help=INPUT_FIT_HELP),
    limit: Optional[int] = typer.Option(None, help="Model file: a seeded class-balanced subset of the real data."),
):
    """Which layer an int8 file loses its accuracy in: per Keras layer, the error its quantization adds, the
    agreement with only it kept in float, and the ranges that explain it; worst first. Writes no artifact, so it
    works on a variant that export refused."""
    from ..atomic import write_atomic, write_json
    from ..report import can_plot

    for path, flag in ((json_out, "--json"), (plot, "--plot")):
        if path is not None and path.is_dir():
            raise typer.BadParameter(f"{path} is a directory; give a file name.", param_hint=flag)
    require_train_extra("tensorflow")
    quiet_tensorflow()
    os.environ["KERAS_BACKEND"] = "tensorflow"
    from exporters.explain_target import explain_target

    report = explain_target(target, variant, {"calibration_images": calibration_images,
                                              "data_dir": str(data_dir) if data_dir else None,
                                              **({"onnx_int8_scheme": onnx_int8_scheme} if onnx_int8_scheme else {})},
                            {"input_range": input_range, "input_norm": input_norm, "input_scale": input_scale,
                             "output": output, "limit": limit, "input_fit": input_fit}, console)
    console.print(explain_table(report))
    if json_out:
        write_json(json_out, report)
        console.print(f"Wrote {json_out}")
    if plot:
        if not can_plot():
            console.print("No plot: matplotlib is not installed.")
        else:
            write_atomic(plot, lambda tmp: plot_layers(report, tmp))
            console.print(f"Wrote {plot}")
