"""The web app (`fmnist-edge app`): a self-contained, offline, installable static site that classifies phone
photos with a release's own ONNX files in the browser (onnxruntime-web, WebAssembly), and the browser side of
`verify --browser`.

The page's code lives in `fmnist_edge/webapp/` (preprocess.mjs is runtime/images.py, step for step); the
runtime files come from the npm package pinned by web/package-lock.json (`npm ci --prefix web`, run by
scripts/setup.sh). Node is needed only for that install: the built app is plain files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from .atomic import committed_dir, text
from .errors import ConfigError, FmnistEdgeError, MissingExtraError

WEBAPP = Path(__file__).parent / "webapp"
APP_FILES = ("index.html", "app.mjs", "preprocess.mjs", "style.css", "sw.js")
# What onnxruntime-web runs as shipped (STACK.md: onnx-int8 bit-identical to its golden outputs). The default
# is onnx-int8: a quarter of the float file's download for the phone, and faster in the browser (STACK.md,
# reference, 2-core x86: 1.5 ms vs 3.5-4.2 ms per image).
WEB_VARIANTS = ("onnx-int8", "onnx-float32")
DEFAULT_VARIANT = "onnx-int8"
# The only files of the package a page loads with the WebAssembly backend (the package on disk is ~140 MB).
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


def ort_dist() -> Path:
    """onnxruntime-web's dist/ from the npm install (web/node_modules), or $FMNIST_EDGE_ORT_WEB."""
    default = Path(__file__).resolve().parent.parent / "web" / "node_modules" / "onnxruntime-web" / "dist"
    dist = Path(os.environ.get("FMNIST_EDGE_ORT_WEB", default))
    missing = [f for f in ORT_FILES if not (dist / f).is_file()]
    if missing:
        raise MissingExtraError(f"The web app needs onnxruntime-web's files ({', '.join(missing)} not in {dist}). "
                                "Install them with `npm ci --prefix web` in the checkout (scripts/setup.sh does), "
                                "or point FMNIST_EDGE_ORT_WEB at a dist/ directory of onnxruntime-web 1.30.0.")
    return dist


def _icon(size: int, path: Path) -> None:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (size, size), (29, 53, 87))
    d = ImageDraw.Draw(im)
    s = size / 16  # a T-shirt, drawn on a 16-unit grid
    d.polygon([(x * s, y * s) for x, y in ((4, 3), (6, 3), (8, 4.5), (10, 3), (12, 3), (15, 6), (13, 8), (12, 7),
                                           (12, 14), (4, 14), (4, 7), (3, 8), (1, 6))], fill=(241, 250, 238))
    im.save(path)


def app_artifacts(run: Path) -> dict:
    """The release's web-capable artifacts, each verified on its golden images here first (a release whose
    files do not reproduce their recorded outputs is not worth shipping to a phone)."""
    import runtime
    from runtime.verify import verify

    found = {}
    for variant in WEB_VARIANTS:
        art = run / variant
        if not (art / "manifest.json").is_file():
            continue
        result = verify(art)
        if not result.passed:
            raise FmnistEdgeError(f"{art}: fails verification ({'; '.join(result.problems)}); refusing to build an app "
                                  "from it. Re-export the release, then run `fmnist-edge verify` on it.")
        clf = runtime.load(art)
        lo, hi = clf.manifest["preprocessing"]["input_range"]
        found[variant] = {"model": f"models/{variant}/model.onnx", "bytes": clf.manifest["file"]["bytes"],
                          "input_name": clf.manifest["input"]["name"], "output_name": clf.manifest["output"]["name"],
                          "side": 28, "input_scale": 255 / (hi - lo), "golden_agreement": result.agreement_with_export}
    if not found:
        raise FmnistEdgeError(f"{run}: no {' or '.join(WEB_VARIANTS)} artifact; export them with "
                              f"`fmnist-edge export {run} --onnx`.")
    return found


def build_app(run: Path, out: Path) -> dict:
    """Write the app for release `run` into `out` (absent or empty); returns its release.json."""
    from runtime.images import MAX_PIXELS

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out}: exists and is not an empty directory; choose a new one (the app's files "
                          "would mix with what is there).")
    dist = ort_dist()
    artifacts = app_artifacts(run)
    default = DEFAULT_VARIANT if DEFAULT_VARIANT in artifacts else next(iter(artifacts))
    names = json.loads((run / default / "manifest.json").read_text())["class_names"]
    with committed_dir(out) as tmp:
        for name in APP_FILES:
            shutil.copy(WEBAPP / name, tmp / name)
        (tmp / "ort").mkdir()
        for name in ORT_FILES:
            shutil.copy(dist / name, tmp / "ort" / name)
        for variant in artifacts:
            (tmp / "models" / variant).mkdir(parents=True)
            for name in ("model.onnx", "manifest.json", "labels.txt"):
                shutil.copy(run / variant / name, tmp / "models" / variant / name)
        for size in (192, 512):
            _icon(size, tmp / f"icon-{size}.png")
        text(json.dumps({
            "name": "fmnist-edge", "short_name": "Garments", "description": "What garment is this? Offline, on this device.",
            "start_url": "./", "scope": "./", "display": "standalone", "background_color": "#f6f7f9", "theme_color": "#1d3557",
            "icons": [{"src": f"icon-{s}.png", "sizes": f"{s}x{s}", "type": "image/png", "purpose": "any"} for s in (192, 512)],
        }, indent=2) + "\n")(tmp / "manifest.webmanifest")
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        digest = hashlib.sha256(b"".join(hashlib.sha256((tmp / f).read_bytes()).digest() for f in files)).hexdigest()[:16]
        release = {"name": run.resolve().name, "default": default, "artifacts": artifacts, "class_names": names,
                   "side": 28, "max_pixels": MAX_PIXELS, "digest": digest, "files": ["./", *files, "release.json"]}
        text(json.dumps(release, indent=2) + "\n")(tmp / "release.json")
    return release
