"""The web app, proven like the Python runtime: built for the shipped release, served on 127.0.0.1, driven in
Debian's real Chromium (headless) through its own file input, as a person would use it."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("selenium")

from fmnist_edge import cli  # noqa: E402
from fmnist_edge.browser.chromium import chromium, serve  # noqa: E402
from fmnist_edge.errors import MissingExtraError  # noqa: E402
from fmnist_edge.browser.app import DEFAULT_VARIANT, build_app  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "artifacts" / "reference"
PHOTOS = sorted((Path(__file__).parent / "fixtures" / "photos").iterdir())
runner = CliRunner()


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("web") / "app"
    try:
        build_app(RELEASE, out)
    except MissingExtraError as exc:  # npm packages not installed: a skip here, a failure in CI (conftest)
        pytest.skip(str(exc))
    return out


@pytest.fixture(scope="module")
def browser():
    try:
        with chromium() as driver:
            yield driver
    except MissingExtraError as exc:
        pytest.skip(str(exc))


def wait_for(driver, script: str, timeout: float = 60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script}; status: {driver.execute_script(STATUS)}")


STATUS = "return document.getElementById('status').textContent"


def ready(driver, url: str) -> None:
    driver.get(url)
    wait_for(driver, STATUS + ".startsWith('Ready')")


def classify(driver, path: Path) -> dict:
    """Choose `path` in the page's file input and wait for the page's answer (or its error message)."""
    driver.find_element("id", "photo").send_keys(str(path))
    return wait_for(driver, "return window.fmnistLast || (document.getElementById('status').className === 'error' "
                            "&& {error: document.getElementById('status').textContent})")


def answer_in_browser(app: Path, photo: Path) -> dict:
    """The app at `app` answers `photo` in a fresh phone-sized Chromium: its answer, checked to be 10 probabilities."""
    with serve(app) as url, chromium() as driver:
        ready(driver, url)
        got = classify(driver, photo)
    assert "error" not in got, got
    probs = np.array(got["probs"])
    assert probs.shape == (10,) and abs(probs.sum() - 1) < 0.02 and probs.min() >= 0, got
    return got


def test_the_release_runs_bit_identical_in_chromium(tmp_path):
    result = runner.invoke(cli.app, ["verify", str(RELEASE), "--browser", "--json", str(tmp_path / "browser.json")])
    assert result.exit_code == 0, result.output
    for variant in ("tflite-int8-web", "onnx-int8"):  # int8: bit-identical to the outputs recorded at export
        assert re.search(rf"{variant} .* 100.00% .* 0 \(0: bit-identical\) .* PASS", result.output), result.output
    assert "onnx-float32" in result.output and "HeadlessChrome" in result.output
    recorded = json.loads((tmp_path / "browser.json").read_text())  # what the docs' web-app table is rendered from
    rows = {r["variant"]: r for r in recorded["rows"]}
    assert rows["onnx-int8"]["agreement"] == 1.0 and rows["onnx-int8"]["max_abs_diff"] == 0.0 and rows["onnx-int8"]["passed"]
    assert 0 < rows["tflite-int8-web"]["p50_ms"] <= rows["tflite-int8-web"]["p90_ms"]
    assert recorded["host"]["class"] and "--browser --json" in recorded["command"]
    # The app's own photo path (browser decoding, preprocess.mjs) against runtime.load_image, on rendered photos.
    photos = recorded["photos"]
    assert photos["photos"] == 12 and photos["max_grey_diff"] <= 1 and photos["top1_agreement"] == 1.0 and photos["passed"]
    assert "preprocess.mjs" in result.output


def test_a_colour_profile_is_converted_to_srgb_in_python_as_in_the_browser():
    """The P3-tagged fixture holds the same numbers as the untagged one; both sides convert it to sRGB first, so
    its model input differs from the untagged photo's (and the parity test holds the browser to Python's)."""
    from runtime.images import load_image

    photos = Path(__file__).parent / "fixtures" / "photos"
    tagged, plain = load_image(photos / "tshirt-display-p3.jpg"), load_image(photos / "tshirt-colour.jpg")
    assert np.abs(tagged.astype(int) - plain.astype(int)).max() >= 8


@pytest.mark.parametrize("photo", PHOTOS, ids=[p.name for p in PHOTOS])
def test_browser_and_python_preprocessing_agree_on_real_style_photos(app_dir, browser, photo):
    import runtime
    from runtime.images import load_image

    with serve(app_dir) as url:
        ready(browser, url)
        got = classify(browser, photo)
    assert "error" not in got, got
    assert got["name"] == photo.name
    web = np.asarray(got["pixels"], dtype=np.int16).reshape(28, 28)
    py = load_image(photo).astype(np.int16)
    assert np.abs(web - py).max() <= 1, f"{photo.name}: max grey-level difference {np.abs(web - py).max()}"
    clf = runtime.load(RELEASE / DEFAULT_VARIANT)  # the app's artifact, run by the Python runtime
    assert int(np.argmax(got["probs"])) == int(np.argmax(clf.predict_proba(py.astype(np.uint8)[None])[0]))


def test_the_page_works_offline_after_the_first_visit_and_is_installable(app_dir, browser):
    with serve(app_dir) as url:
        ready(browser, url)
        browser.execute_async_script("navigator.serviceWorker.ready.then(() => arguments[0](true))")  # installed: cached
        ready(browser, url)
        assert browser.execute_script("return navigator.serviceWorker.controller !== null")
        manifest = browser.execute_async_script(
            "fetch('manifest.webmanifest').then(r => r.json()).then(arguments[0])")
    # The server is gone: everything now comes from the service worker's cache.
    ready(browser, url)
    got = classify(browser, PHOTOS[0])
    assert "error" not in got and len(got["probs"]) == 10
    assert manifest["display"] == "standalone" and manifest["start_url"] and manifest["name"]
    sizes = {i["sizes"] for i in manifest["icons"] if i["type"] == "image/png"}
    assert {"192x192", "512x512"} <= sizes
    release = json.loads((app_dir / "release.json").read_text())
    assert all((app_dir / f).is_file() for f in release["files"] if f != "./")  # every cached file is in the app


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "notes.txt", "is not an image"),
    (lambda d: d / "broken.jpg", "could not be read as an image"),
    (lambda d: d / "huge.png", "over the 120,000,000-pixel limit"),
])
def test_bad_input_gets_a_message_on_the_page(app_dir, browser, tmp_path, make, message):
    from PIL import Image

    (tmp_path / "notes.txt").write_text("not a photo\n")
    (tmp_path / "broken.jpg").write_bytes((PHOTOS[0]).read_bytes()[:600])  # a JPEG cut off after its header
    Image.new("L", (12000, 11000), 0).save(tmp_path / "huge.png")  # 132 megapixels
    with serve(app_dir) as url:
        ready(browser, url)
        got = classify(browser, make(tmp_path))
    assert "error" in got and message in got["error"], got


def test_a_browser_without_webassembly_is_told_so(app_dir):
    with chromium() as driver, serve(app_dir) as url:  # its own browser: the injected script stays for a session
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": "delete window.WebAssembly;"})
        driver.get(url)
        text = wait_for(driver, "return document.getElementById('status').className === 'error' && "
                                "document.getElementById('status').textContent")
    assert "cannot run WebAssembly" in text


def test_app_refuses_a_non_empty_out_and_a_release_that_fails_verification(tmp_path):
    import shutil

    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "index.html").write_text("someone's page")
    result = runner.invoke(cli.app, ["app", str(RELEASE), "--out", str(tmp_path / "busy")])
    assert result.exit_code == 1 and "not an empty directory" in result.output
    assert (tmp_path / "busy" / "index.html").read_text() == "someone's page"
    release = tmp_path / "release"
    for name in ("keras-outputs", "onnx-int8"):
        shutil.copytree(RELEASE / name, release / name)
    golden = release / "onnx-int8" / "golden_outputs.npy"
    np.save(golden, np.roll(np.load(golden), 1, axis=1))
    manifest = json.loads((release / "onnx-int8" / "manifest.json").read_text())
    from runtime.manifest import sha256_file

    manifest["golden_outputs"]["sha256"] = sha256_file(golden)
    (release / "onnx-int8" / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(cli.app, ["app", str(release), "--out", str(tmp_path / "app")])
    assert result.exit_code == 1 and "fails verification" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "app").exists()


MICRO = Path(__file__).parent / "fixtures" / "micro-release"


def test_the_cpu_matrix_has_a_column_per_browser_runtime(tmp_path):
    from fmnist_edge.browser.runtimes import RUNTIMES
    from runtime.variants import VARIANTS, WEB_VARIANTS

    result = runner.invoke(cli.app, ["verify", str(MICRO), "--cpu-matrix", "--cpus", "native,browser",
                                     "--json", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "m.json").read_text())
    assert list(record["cpus"]) == ["native", *(r.column for r in RUNTIMES.values())]  # `browser` = every runtime
    for rt in RUNTIMES.values():
        cells = record["results"][rt.column]
        ran = [v for v, cell in cells.items() if cell["applies"]]
        # Each column runs exactly the files made for its runtime, and judges them by its rule.
        assert ran == [v for v in cells if v in WEB_VARIANTS and VARIANTS[v].web_runtime == rt.id] and ran, rt.id
        for variant, cell in cells.items():
            if variant not in ran:
                assert cell["agreement"] is None, (rt.id, variant)
                continue
            assert cell["passed"] and cell["agreement"] == 1.0 and cell["images"] == 50, (rt.id, variant)
            if VARIANTS[variant].int8_kernels:
                assert cell["max_abs_diff"] == 0.0 and cell["tolerance"] == rt.int8_tolerance == 0.0, variant
    assert "chromium-litertjs" in result.output and "–" in result.output


def test_cpus_names_groups_and_refuses_unknown_ones():
    from fmnist_edge.cpumatrix import expand_cpus

    assert expand_cpus("native, browser,native") == ("native", "chromium-onnxruntime-web", "chromium-litertjs")
    assert expand_cpus("x86") == ("Nehalem-v1", "Haswell-v4")
    result = runner.invoke(cli.app, ["verify", str(MICRO), "--cpu-matrix", "--cpus", "native,pentium"])
    assert result.exit_code == 1 and "'pentium'" in result.output and "chromium-litertjs" in result.output
    assert "Traceback" not in result.output


def test_bench_reports_browser_latency_next_to_native(tmp_path):
    variants = [arg for v in ("tflite-int8", "tflite-int8-web", "onnx-int8", "onnx-float32") for arg in ("--variant", v)]
    result = runner.invoke(cli.app, ["bench", str(MICRO), "--browser", "--runs", "20", "--warmup", "2", "--keras",
                                     "recorded", "--no-compute-floor", "--batch-size", "4", *variants, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads((tmp_path / "bench.json").read_text())["rows"]}
    for variant in ("tflite-int8-web", "onnx-int8", "onnx-float32"):
        b = rows[variant]["extra"]["browser"]
        assert b["p50_us"] > 0 and b["runs"] == 20 and b["runtime"].startswith(("@litertjs/core@", "onnxruntime-web@"))
    assert "browser" not in rows["tflite-int8"]["extra"]  # not a file the browser runs
    assert "In the browser" in (tmp_path / "bench.md").read_text() and "browser / native" in result.output


def test_the_docs_screenshot_is_made_by_the_app_itself(tmp_path):
    """docs/app-screenshot.png comes from scripts/app_screenshot.py (the built app, a fixture photo, Chromium at a
    phone's size), never from an image editor: the script still works and makes a phone-sized page with an answer."""
    import importlib.util

    from PIL import Image

    spec = importlib.util.spec_from_file_location("app_screenshot", ROOT / "scripts" / "app_screenshot.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main(RELEASE, tmp_path / "shot.png")
    with Image.open(tmp_path / "shot.png") as shot, Image.open(ROOT / "docs" / "app-screenshot.png") as shipped:
        assert shot.size == shipped.size and shot.width == 412 and shot.height > 600  # the phone's viewport
        assert len(np.unique(np.asarray(shot.convert("L")))) > 50  # a rendered page (photo, text), not a blank
