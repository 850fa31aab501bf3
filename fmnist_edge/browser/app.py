"""The web app (`fmnist-edge app`): a self-contained, offline, installable static site that classifies phone
photos with a release's own files in the browser (TFLite through LiteRT.js, ONNX through onnxruntime-web; both
WebAssembly), and the app that `verify --browser` drives.

The page's code lives in `static/` beside this module (preprocess.mjs is runtime/images.py, step for step); the
runtime files come from the npm packages pinned by web/package-lock.json (`npm ci --prefix web`, run by
scripts/setup.sh). Node is needed only for that install: the built app is plain files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from runtime.variants import VARIANTS, WEB_VARIANTS

from ..atomic import committed_dir, text
from ..errors import ConfigError, FmnistEdgeError, MissingExtraError
from .runtimes import RUNTIMES

STATIC = Path(__file__).parent / "static"
APP_FILES = ("index.html", "app.mjs", "camera.mjs", "loading.mjs", "prepare.mjs", "preprocess.mjs", "photo-objects.mjs",
             "style.css", "sw.js")
# Where a browser runtime's npm files are looked for, first found wins: $FMNIST_EDGE_NODE_MODULES; a checkout's
# `npm ci --prefix web`; the copy an installed wheel carries (setup.py vendors them at build time).
VENDOR = Path(__file__).resolve().parent / "web-runtimes"  # not an identifier: data, not a package
NODE_MODULES = Path(__file__).resolve().parents[2] / "web" / "node_modules"
# What the browser runtimes run as shipped: onnxruntime-web the ONNX files (onnx-int8 bit-identical to its golden
# outputs), LiteRT.js the TFLite file made for it (no dynamic batch, no int8 tensors at the boundary; STACK.md).
# The app's default, chosen by measurement (docs/guides/web-app.md): among the web variants that pass, the one that
# is fastest in Chromium and downloads the fewest bytes with its runtime.
DEFAULT_VARIANT = "tflite-int8-web"
# What each browser runtime is and which of its files a page loads: runtimes.py. The runtimes' WebAssembly is not
# precached by the service worker: the page loads it once and caches the build this browser ran (app.mjs), so a
# first visit downloads it once, and a phone only the LiteRT.js build it runs.
OPTIONAL = ("litert/wasm/", "ort/ort-wasm-")
# Sent precompressed (NAME.gz beside NAME; fmnist_edge.browser.static_server, and static hosts: web-app guide).
COMPRESSIBLE = (".wasm", ".js", ".mjs", ".json", ".html", ".css", ".tflite", ".onnx", ".webmanifest", ".bin")
MEANS_FILE = "class-means.bin"
SIDE = 28  # the models' input is SIDE x SIDE pixels (runtime/images.py fits photos into it)


def runtime_files(runtime_id: str) -> tuple[str, str, dict[Path, str]]:
    """(package@version, the app's directory for it, {source file: name in that directory}) for a browser runtime,
    from $FMNIST_EDGE_NODE_MODULES, the checkout's web/node_modules, or the copy the installed wheel carries."""
    rt = RUNTIMES[runtime_id]
    package, folder = rt.package, rt.folder
    env = os.environ.get("FMNIST_EDGE_NODE_MODULES")
    candidates = [Path(env)] if env else [NODE_MODULES, VENDOR]
    for modules in candidates:
        root = modules / package
        sources = {(root / src).resolve(): dst for src, dst in rt.files.items()}
        missing = [str(src) for src in sources if not src.is_file()]
        if not missing:
            break
    if missing:
        raise MissingExtraError(f"The web app needs {package}'s files ({', '.join(missing)} missing). {_install_kind()} "
                                "Or point FMNIST_EDGE_NODE_MODULES at a node_modules directory holding "
                                "web/package-lock.json's versions.")
    version = json.loads((root / "package.json").read_text())["version"]
    return f"{package}@{version}", folder, sources


def _install_kind() -> str:
    """Which kind of install this is, as far as the web app's runtimes go, and what gets them."""
    if (NODE_MODULES.parent / "package-lock.json").is_file():
        return (f"This fmnist-edge runs from a checkout ({NODE_MODULES.parents[1]}): install them with "
                "`npm ci --prefix web` there (scripts/setup.sh does).")
    if not VENDOR.is_dir():
        return ("This installed fmnist-edge was built without them (from a checkout that had no web/node_modules, "
                "with FMNIST_EDGE_BUILD_WITHOUT_APP=1): reinstall from a release wheel, or rebuild it from a checkout "
                "where npm is installed (the build then runs `npm ci --prefix web` itself).")
    return (f"This installed fmnist-edge carries them in {VENDOR}, but some are missing: the install is damaged; "
            "reinstall it (pip install --force-reinstall fmnist-edge).")


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
    from runtime.manifest import read
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
        m = read(art / "manifest.json")  # verify checked it; no second interpreter just for its fields
        lo, hi = m["preprocessing"]["input_range"]
        found[variant] = {"model": f"models/{variant}/{m['file']['path']}", "format": m["format"], "bytes": m["file"]["bytes"],
                          "input_name": m["input"]["name"], "output_name": m["output"]["name"],
                          "side": SIDE, "classes": len(m["class_names"]), "input_scale": 255 / (hi - lo),
                          "golden_agreement": result.agreement_with_export}
    if not found:
        raise FmnistEdgeError(f"{run}: no {' or '.join(WEB_VARIANTS)} artifact; export them with "
                              f"`fmnist-edge export {run} --web --onnx`.")
    return found


def build_app(run: Path, out: Path, artifact: str | None = None, everything: bool = False) -> dict:
    """Write the app for release `run` into `out` (absent or empty); returns its release.json. It ships one
    artifact (`artifact`, default DEFAULT_VARIANT) and that artifact's runtime; `everything`: every web artifact
    of the release and both runtimes (what `verify --browser` builds)."""
    from runtime.images import LARGEST_PIXELS, MAX_PIXELS
    from runtime.photo import PARAMS

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out}: exists and is not an empty directory; choose a new one (the app's files "
                          "would mix with what is there).")
    if artifact is not None and artifact not in WEB_VARIANTS:
        raise ConfigError(f"--artifact {artifact}: not one the browser runs; choose from {', '.join(WEB_VARIANTS)}.")
    found = app_artifacts(run)
    default = artifact or (DEFAULT_VARIANT if DEFAULT_VARIANT in found else next(iter(found)))
    if default not in found:
        raise FmnistEdgeError(f"{run}: has no {default} artifact; export it (`fmnist-edge export {run} --variant {default}`).")
    artifacts = found if everything else {default: found[default]}
    runtimes = {rid: runtime_files(rid) for rid in {VARIANTS[v].web_runtime for v in artifacts}}
    names = json.loads((run / default / "manifest.json").read_text())["class_names"]
    with committed_dir(out) as tmp:
        for name in APP_FILES:
            if name != "sw.js":  # written last, with the build's digest in it
                shutil.copy(STATIC / name, tmp / name)
        for _, folder, sources in runtimes.values():
            for src, dst in sources.items():
                (tmp / folder / dst).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, tmp / folder / dst)
        for variant, a in artifacts.items():
            (tmp / "models" / variant).mkdir(parents=True)
            for name in (Path(a["model"]).name, "manifest.json", "labels.txt"):
                shutil.copy(run / variant / name, tmp / "models" / variant / name)
            a["runtime"] = runtimes[VARIANTS[variant].web_runtime][0]
        for size in (192, 512):
            _icon(size, tmp / f"icon-{size}.png")
        if (means := class_means(names)) is not None:
            (tmp / MEANS_FILE).write_bytes(means)  # a file, cached once: release.json is fetched afresh each visit
        text(json.dumps({
            "name": "fmnist-edge", "short_name": "Garments", "description": "What garment is this? Offline, on this device.",
            "start_url": "./", "scope": "./", "display": "standalone", "background_color": "#f6f7f9", "theme_color": "#1d3557",
            "icons": [{"src": f"icon-{s}.png", "sizes": f"{s}x{s}", "type": "image/png", "purpose": "any"} for s in (192, 512)],
        }, indent=2) + "\n")(tmp / "manifest.webmanifest")
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        worker = (STATIC / "sw.js").read_text()
        digest = hashlib.sha256(b"".join(hashlib.sha256((tmp / f).read_bytes()).digest() for f in files)
                                + json.dumps(PARAMS, sort_keys=True).encode() + worker.encode()).hexdigest()[:16]
        text(worker.replace("__BUILD__", digest))(tmp / "sw.js")
        files = sorted([*files, "sw.js"])
        optional = [f for f in files if f.startswith(OPTIONAL)]
        sent = precompress(tmp, [f for f in files if f != "sw.js"])
        builds = [sum(sent[f] for f in optional if f"litert_wasm_{k}internal." in f) for k in ("", "compat_")]
        release = {"name": run.resolve().name, "default": default, "artifacts": artifacts, "class_names": names,
                   **({"class_means": MEANS_FILE} if means is not None else {}),
                   "side": SIDE, "max_pixels": MAX_PIXELS, "largest_pixels": LARGEST_PIXELS, "digest": digest,
                   # the parameters alone: release.json is fetched afresh on every visit
                   "photo": {k: v for k, v in PARAMS.items() if k != "about"},
                   # index.html is cached as "./", the address the page is opened at
                   "files": ["./", *(f for f in files if f not in optional and f != "index.html"), "release.json"],
                   "optional": optional,
                   # what the service worker checks a copy against before caching it, and carries across updates
                   "sha256": {("./" if f == "index.html" else f): hashlib.sha256((tmp / f).read_bytes()).hexdigest()
                              for f in files},
                   "bytes": sum((tmp / f).stat().st_size for f in files),
                   # for the page's progress bar: each file's [bytes, bytes sent], and what the runtime fetches
                   # while the model loads (the model and the largest runtime WebAssembly)
                   "sizes": {f: [(tmp / f).stat().st_size, sent[f]] for f in sent
                             if f in optional or f in {a["model"] for a in artifacts.values()}},
                   "load_bytes": sum(sent[a["model"]] for a in artifacts.values())
                                 + max(sent[f] for f in optional if f.endswith(".wasm")),
                   # what a phone downloads on its first visit, precompressed: every file but the LiteRT.js builds,
                   # plus the larger of those (one loads)
                   "download_bytes": sum(sent.get(f, (tmp / f).stat().st_size) for f in files
                                         if not f.startswith(OPTIONAL[0])) + max(builds)}
        text(json.dumps(release, indent=2) + "\n")(tmp / "release.json")
        precompress(tmp, ["sw.js", "release.json"])
    return release


def class_means(names: list[str]) -> bytes | None:
    """Each class's mean training image (10 x 28 x 28 uint8, the out-of-class rule's: runtime/out_of_class.py) for a
    model of Fashion-MNIST's ten classes; None for any other classes (the page then has no such rule)."""
    from runtime.out_of_class import class_means as means

    known, images = means()
    return images.tobytes() if [n.lower() for n in names] == [n.lower() for n in known] else None


def precompress(folder: Path, files: list[str]) -> dict[str, int]:
    """Write NAME.gz beside each file worth compressing (gzip -9, kept when it saves a tenth); returns the bytes each
    file is sent as, compressed or not."""
    import gzip

    sent = {}
    for name in files:
        path = folder / name
        data = path.read_bytes()
        packed = gzip.compress(data, 9, mtime=0) if path.suffix in COMPRESSIBLE and len(data) >= 1024 else data
        if len(packed) <= 0.9 * len(data):
            path.with_name(path.name + ".gz").write_bytes(packed)
        sent[name] = min(len(packed), len(data))
    return sent
