"""`fmnist-edge app`: an offline, installable web app that runs a release's web artifact in the browser."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..runs import shipped_artifact
from ._app import app, console, user_errors


@app.command("app")
@user_errors
def web_app(
    run_dir: Optional[Path] = typer.Argument(None, help="Release to build the app for (default: artifacts/reference)."),
    out: Optional[Path] = typer.Option(None, help="Directory to write the app into (new or empty); serve it over HTTPS "
                                       "(or localhost) and open it on a phone."),
    artifact: Optional[str] = typer.Option(None, help="The artifact the app runs: tflite-int8-web (default: the fastest "
                                           "and smallest download, measured), onnx-int8 or onnx-float32."),
    serve: bool = typer.Option(False, "--serve", help="Then serve it over HTTPS to phones on this network (a local "
                               "certificate authority is made once; install its certificate on the phone). With an "
                               "--out that already holds an app, serve that one."),
    bind: str = typer.Option("0.0.0.0", help="With --serve: the address to listen on. 0.0.0.0 (the default) serves "
                             "every network this machine is on, the LAN included; 127.0.0.1: this machine and "
                             "`adb reverse` only; or one of this machine's LAN addresses."),
    port: int = typer.Option(8443, help="With --serve: the port."),
    forget_ca: bool = typer.Option(False, "--forget-ca", help="Delete the local certificate authority --serve made (and "
                                   "its certificates), and say how to remove it from a phone."),
):
    """Write an offline, installable web app that classifies phone photos in the browser with one of the release's
    files (LiteRT.js or onnxruntime-web, WebAssembly); each file is verified on its golden images first."""
    from ..browser.app import build_app

    if forget_ca:
        return forget()
    if out is None:
        raise typer.BadParameter("give the directory to write the app into.", param_hint="--out")
    if serve and (out / "release.json").is_file():
        return serve_app(out, bind, port)
    release = build_app(shipped_artifact(run_dir, None, "app"), out, artifact)
    console.print(f"Wrote the app for {release['name']} to {out} ({len(release['files']) - 1} files, "
                  f"{release['bytes'] / 1e6:.1f} MB; {release['default']} on {release['artifacts'][release['default']]['runtime']}).",
                  highlight=False)
    if serve:
        return serve_app(out, bind, port)
    console.print(f"Try it here: python3 -m http.server --directory {out} --bind 127.0.0.1 8000, then open "
                  f"http://127.0.0.1:8000/ ; on a phone: fmnist-edge app --out {out} --serve", highlight=False)


def serve_app(out: Path, bind: str, port: int) -> None:
    """Serve a built app over HTTPS until Ctrl-C, with what a phone needs to trust it."""
    import time

    from ..browser.https import CA_PATH, serve_https

    with serve_https(out, bind, port) as (urls, ca):
        where = ("every network interface of this machine (0.0.0.0): phones on this LAN can reach it"
                 if bind in ("0.0.0.0", "") else f"{bind} only")
        console.print(f"Listening on {where}, port {urls[0].rsplit(':', 1)[1].rstrip('/')}.", highlight=False)
        console.print("Serving over HTTPS (Ctrl-C stops). On the phone, once: download and install the certificate "
                      f"authority from {urls[0].rstrip('/')}{CA_PATH} (Android: Settings > Security > Encryption & "
                      "credentials > Install a certificate > CA certificate; iPhone: install the profile, then turn it "
                      f"on under Settings > General > About > Certificate Trust Settings). It is {ca}. Then open:\n  "
                      + "\n  ".join(urls) + "\nOver USB instead, with no certificate (a phone's localhost is a secure "
                      f"origin): python3 -m http.server --directory {out} --bind 127.0.0.1 8000, adb reverse tcp:8000 "
                      "tcp:8000, then open http://localhost:8000/ on the phone.", highlight=False)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("Stopped.")


def forget() -> None:
    """`app --forget-ca`: delete the local CA and tell the user how to take it off a phone."""
    from ..browser.https import forget_ca, tls_dir

    gone = forget_ca()
    console.print((f"Deleted the local certificate authority and its certificates ({len(gone)} files in {tls_dir()})."
                   if gone else f"No local certificate authority here ({tls_dir()}).") +
                  " On a phone that trusted it, remove it too: Android: Settings > Security > Encryption & credentials > "
                  "Trusted credentials > User > fmnist-edge local CA > Remove; iPhone: Settings > General > VPN & Device "
                  "Management > the fmnist-edge profile > Remove Profile.", highlight=False)
