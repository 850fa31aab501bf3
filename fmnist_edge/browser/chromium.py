"""A release's files in a real browser: serve a built web app on 127.0.0.1, drive headless Chromium with
selenium, and run the golden images through the app's own JavaScript (`Classifier` in app.mjs).

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package (the `test` extra installs it;
scripts/setup.sh installs all three). Latency is measured in real time (performance.now around each
batch-1 call), never under headless Chromium's virtual time, whose clock moves in 10 ms steps.
"""

from __future__ import annotations

import base64
import functools
import http.server
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

from ..errors import MissingExtraError
from .static_server import AppHandler

CHROMEDRIVER = "/usr/bin/chromedriver"


@contextmanager
def serve(directory: Path, handler_class: type = AppHandler):
    """An HTTP server for `directory` on 127.0.0.1 (a free port), stopped on exit; yields its base URL."""
    handler = functools.partial(handler_class, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def chromium(width: int = 412, height: int = 915, args: tuple[str, ...] = ()):
    """A headless Chromium (phone-sized window by default) driven by selenium; `args`: more command-line switches
    (a fake camera, for instance)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise MissingExtraError("Browser checks need selenium: pip install selenium (the `test` extra has it).") from None
    binary = shutil.which("chromium")
    if not binary or not Path(CHROMEDRIVER).is_file():
        raise MissingExtraError("Browser checks need Chromium and its driver: apt-get install chromium chromium-driver "
                                "(scripts/setup.sh installs them).")
    options = webdriver.ChromeOptions()
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, for tests
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}", *args):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(600)
    # Headless windows are at least 500 px wide: emulate the phone's viewport itself (mobile: touch, meta viewport).
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})
    try:
        yield driver
    finally:
        driver.quit()


RUN_GOLDEN = """
const [variant, b64, n, done] = arguments;
(async () => {
  const m = await import("./app.mjs");
  const release = await m.loadRelease();
  const clf = await m.Classifier.load(release.artifacts[variant]);
  const pixels = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const side = release.side, size = side * side, probs = [], ms = [];
  await clf.predict(pixels.subarray(0, size), 1);  // warm-up: the first call compiles
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const p = await clf.predict(pixels.subarray(i * size, (i + 1) * size), 1);
    ms.push(performance.now() - t0);
    probs.push(...p);
  }
  done({probs, ms, userAgent: navigator.userAgent});
})().catch((e) => done({error: String(e && e.stack || e)}));
"""


def run_golden(driver, url: str, variant: str, images) -> dict:
    """One artifact of a built app on uint8 (N, 28, 28) images in the browser: probabilities (N x classes),
    per-image milliseconds, the browser's user agent."""
    import numpy as np

    driver.get(url)
    out = driver.execute_async_script(RUN_GOLDEN, variant, base64.b64encode(images.astype(np.uint8).tobytes()).decode(),
                                      int(len(images)))
    if "error" in out:
        raise RuntimeError(f"{variant} in Chromium: {out['error']}")
    probs = np.asarray(out["probs"], dtype=np.float32).reshape(len(images), -1)
    return {"probs": probs, "ms": np.asarray(out["ms"]), "user_agent": out["userAgent"]}


def browser_outputs(run: Path, variants, images, runtime_id: str | None = None) -> dict[str, dict]:
    """The web-capable artifacts among `variants` of release `run` (only those browser runtime `runtime_id` runs,
    if given), run in headless Chromium through the web app's own code on uint8 (N, 28, 28) `images`:
    {variant: {"probs", "ms", "runtime", "user_agent"}}."""
    import tempfile

    from runtime.variants import VARIANTS

    from .app import WEB_VARIANTS, build_app

    wanted = [v for v in variants if v in WEB_VARIANTS and runtime_id in (None, VARIANTS[v].web_runtime)]
    out = {}
    if not wanted:
        return out
    with tempfile.TemporaryDirectory(prefix="fmnist-edge-app-") as tmp:
        release = build_app(run, Path(tmp) / "app", everything=True)
        with serve(Path(tmp) / "app") as url, chromium() as driver:
            for variant in wanted:
                if variant in release["artifacts"]:
                    out[variant] = {**run_golden(driver, url, variant, images),
                                    "runtime": release["artifacts"][variant]["runtime"]}
    return out


def verify_in_browser(run: Path) -> list[dict]:
    """Each web artifact of release `run` on its golden images in headless Chromium, through the app's code,
    against the outputs recorded at export (int8: bit-identical; float: the variant's tolerance). A row each."""
    import numpy as np

    import runtime
    from runtime.manifest import keras_outputs_dir
    from runtime.verify import expected_outputs, golden_set

    from .app import WEB_VARIANTS

    images = golden_set(keras_outputs_dir(run))["images"]
    rows = []
    for variant, got in browser_outputs(run, WEB_VARIANTS, images).items():
        clf = runtime.load(run / variant)
        agreement, diff, tolerance, problems = judge(clf, got["probs"], expected_outputs(clf))
        rows.append({"variant": variant, "images": int(len(images)), "agreement": agreement, "max_abs_diff": diff,
                     "tolerance": tolerance, "rule": rule(clf),
                     "p50_ms": float(np.median(got["ms"])), "p90_ms": float(np.percentile(got["ms"], 90)),
                     "runtime": got["runtime"], "browser": got["user_agent"], "passed": not problems, "problems": problems})
    return rows


def rule(clf) -> str:
    """The comparison rule of `clf`'s browser runtime for it: "bit-identical" (int8 kernels) or "float"."""
    from runtime.variants import VARIANTS

    from .runtimes import RUNTIMES

    variant = VARIANTS[clf.variant]
    return RUNTIMES[variant.web_runtime].rule(variant.int8_kernels)


def judge(clf, got, expected) -> tuple[float, float, float, list[str]]:
    """(agreement, max |dp|, tolerance, problems) of `clf`'s outputs in the browser against those recorded at
    export, by its browser runtime's rule (runtimes.py: int8 bit for bit, float within the variant's tolerance)."""
    from runtime.variants import VARIANTS
    from runtime.verify import compare_with_export, output_tolerance

    from .runtimes import RUNTIMES

    variant = VARIANTS[clf.variant]
    tolerance = RUNTIMES[variant.web_runtime].tolerance(variant.int8_kernels, output_tolerance(clf.manifest)[1])
    agreement, diff, problems = compare_with_export(got, expected, tolerance)
    return agreement, diff, tolerance, problems
