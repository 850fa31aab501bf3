"""`fmnist-edge app`: an offline, installable web app that runs a release's web artifact in the browser."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..runs import SHIPPED_RUN
from ._app import app, console, user_errors


@app.command("app")
@user_errors
def web_app(
    run_dir: Optional[Path] = typer.Argument(None, help="Release to build the app for (default: artifacts/reference)."),
    out: Path = typer.Option(..., help="Directory to write the app into (new or empty); serve it over HTTPS (or "
                             "localhost) and open it on a phone."),
    artifact: Optional[str] = typer.Option(None, help="The artifact the app runs: tflite-int8-web (default: the fastest "
                                           "and smallest download, measured), onnx-int8 or onnx-float32."),
):
    """Write an offline, installable web app that classifies phone photos in the browser with one of the release's
    files (LiteRT.js or onnxruntime-web, WebAssembly); each file is verified on its golden images first."""
    from ..browser.app import build_app

    release = build_app(run_dir or SHIPPED_RUN, out, artifact)
    console.print(f"Wrote the app for {release['name']} to {out} ({len(release['files']) - 1} files, "
                  f"{release['bytes'] / 1e6:.1f} MB; {release['default']} on {release['artifacts'][release['default']]['runtime']}). Try it: python3 -m http.server --directory {out} "
                  "--bind 127.0.0.1 8000, then open http://127.0.0.1:8000/", highlight=False)
