"""Photos in the browser: rendered golden photos run through the web app's own decoding and preprocess.mjs in
headless Chromium, held to runtime.load_image in Python (`verify --browser`'s photo check)."""

from __future__ import annotations

import base64
from pathlib import Path

from .chromium import chromium, serve

RUN_PHOTOS = """
const [variant, photos, done] = arguments;
(async () => {
  const m = await import("./app.mjs");
  const pre = await import("./preprocess.mjs");
  const release = await m.loadRelease();
  const clf = await m.Classifier.load(release.artifacts[variant]);
  const out = [];
  for (const [name, type, b64] of photos) {
    const blob = new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name, {type});
    try {
      const pixels = await pre.photoToInput(blob, {maxPixels: release.max_pixels, photo: release.photo});
      out.push({pixels: Array.from(pixels), probs: Array.from(await clf.predict(pixels, 1))});
    } catch (e) {
      out.push({error: String(e.message || e)});
    }
  }
  done({out});
})().catch((e) => done({error: String(e && e.stack || e)}));
"""


def photos_in_browser(driver, url: str, variant: str, photos: list[tuple[str, bytes]]) -> list[dict]:
    """Photos (name, encoded bytes) through the app's own decoding and preprocess.mjs, then `variant`, in the
    browser: [{"pixels": 28x28 uint8, "probs"} or {"error": message}] in order."""
    import numpy as np

    types = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
    args = [[name, types.get(Path(name).suffix.lower(), ""), base64.b64encode(data).decode()] for name, data in photos]
    driver.get(url)
    got = driver.execute_async_script(RUN_PHOTOS, variant, args)
    if "error" in got:
        raise RuntimeError(f"photos in Chromium: {got['error']}")
    return [{"pixels": np.asarray(o["pixels"], np.uint8).reshape(28, 28), "probs": np.asarray(o["probs"])}
            if "pixels" in o else o for o in got["out"]]


def photo_parity(run: Path, photos: list[tuple[str, bytes]], variant: str | None = None) -> dict:
    """The web app's photo path (browser decoding, preprocess.mjs, the web artifact) against the Python one
    (runtime.load_image, the same artifact in the Python runtime) on `photos`: the largest grey-level difference
    of the model inputs, top-1 agreement, and "no garment found" said alike. Passes within 1 grey level."""
    import tempfile

    import numpy as np

    import runtime
    from runtime.images import NoGarmentError, load_image

    from .app import DEFAULT_VARIANT, build_app

    variant = variant or DEFAULT_VARIANT
    clf = runtime.load(run / variant)
    with tempfile.TemporaryDirectory(prefix="fmnist-edge-app-") as tmp:
        build_app(run, Path(tmp) / "app", artifact=variant)
        with serve(Path(tmp) / "app") as url, chromium() as driver:
            web = photos_in_browser(driver, url, variant, photos)
    worst, same, problems = 0, 0, []
    for (name, data), w in zip(photos, web):
        try:
            py = load_image(data)
        except NoGarmentError:
            py = None
        if py is None or "error" in w:
            if (py is None) != ("error" in w and "no garment" in w["error"]):
                problems.append(f"{name}: Python {'found no garment' if py is None else 'found a garment'}, "
                                f"the browser {w.get('error', 'found a garment')}")
            same += py is None and "error" in w
            continue
        diff = int(np.abs(w["pixels"].astype(int) - py.astype(int)).max())
        worst = max(worst, diff)
        agree = int(np.argmax(w["probs"])) == int(clf.predict(py[None])[0])
        same += agree
        if diff > 1 or not agree:
            problems.append(f"{name}: inputs differ by up to {diff} grey levels; top-1 {'agrees' if agree else 'differs'}")
    return {"variant": variant, "photos": len(photos), "max_grey_diff": worst, "top1_agreement": same / len(photos),
            "passed": not problems, "problems": problems}


def golden_photos(run: Path, n: int = 12) -> list[tuple[str, bytes]]:
    """n of the release's golden images rendered as photos, one per benchmark condition in turn (frames at half
    size; the phone condition is then 1500x2000): what `verify --browser` runs through the app's preprocessing."""
    from runtime.manifest import keras_outputs_dir
    from runtime.verify import golden_set

    from ..photo_bench import benchmark_photos

    images = golden_set(keras_outputs_dir(run))["images"][:n]
    return [(f"golden-{i:02d}-{c}.jpg", jpeg) for i, (jpeg, c) in enumerate(benchmark_photos(images, 0, 0.5))]
