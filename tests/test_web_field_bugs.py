"""The app's field bugs as phone users met them, each reproduced in Debian's Chromium at phone size and shown fixed:
the first offline visit after an update loads the model, a hidden answer never shows, the answer is announced, the
text meets WCAG AA contrast, the console stays clean, the native file widget is out of sight, the user's photo and the
ten classes are on the page, and a first visit downloads each file once, within its size budget."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("selenium")

from fmnist_edge.browser.app import build_app  # noqa: E402
from fmnist_edge.browser.chromium import chromium, serve  # noqa: E402
from test_web import PHOTOS, RELEASE, STATUS, app_dir, browser, classify, ready, wait_for  # noqa: E402,F401

EDGE = Path(__file__).resolve().parents[1] / "artifacts" / "edge"
SMALL = next(p for p in PHOTOS if p.name == "trouser-exif1.jpg")
PHONE = next(p for p in PHOTOS if "3000x4000" in p.name)
MODEL = "return document.getElementById('model').textContent"
CACHED_WASM = ("caches.keys().then(keys => Promise.all(keys.map(k => caches.open(k).then(c => c.keys()))))"
               ".then(all => all.flat().some(r => r.url.endsWith('.wasm'))).then(arguments[0])")


def test_the_first_offline_visit_after_an_update_loads_the_model(tmp_path):
    """The runtime's WebAssembly, cached by the page under the old build, is carried into the new build's cache."""
    build_app(RELEASE, tmp_path / "first")
    build_app(EDGE, tmp_path / "second")  # a new build with the same runtime: another model
    site = tmp_path / "site"
    shutil.copytree(tmp_path / "first", site)
    with chromium() as driver:
        with serve(site) as url:
            ready(driver, url)
            driver.execute_async_script("navigator.serviceWorker.ready.then(() => arguments[0](true))")
            assert driver.execute_async_script(CACHED_WASM)
            shutil.rmtree(site)  # re-deployed in place
            time.sleep(1.1)  # Last-Modified counts whole seconds
            shutil.copytree(tmp_path / "second", site, copy_function=shutil.copy)
            for _ in range(6):  # the old worker serves a visit or two while the new one installs
                ready(driver, url)
                if EDGE.name in driver.execute_script(MODEL):
                    break
                time.sleep(2.5)
            assert EDGE.name in driver.execute_script(MODEL)
        # offline now: the new build's cache alone must hold everything, the runtime's WebAssembly included
        driver.get(url)
        wait_for(driver, "return /^(Ready|The model could not)/.test(document.getElementById('status').textContent)")
        assert driver.execute_script(STATUS).startswith("Ready"), driver.execute_script(STATUS)
        got = classify(driver, SMALL)
    assert "error" not in got and len(got["probs"]) == 10


def displayed(driver, selector: str) -> bool:
    return driver.execute_script(f"const e = document.querySelector('{selector}'); return e.offsetParent !== null "
                                 "&& getComputedStyle(e).display !== 'none'")


def test_a_hidden_answer_never_shows(app_dir, browser, tmp_path):
    """`figure {display: flex}` once beat `hidden`: the previous photo's 28x28 stayed beside an error message."""
    (tmp_path / "broken.jpg").write_bytes(SMALL.read_bytes()[:600])
    with serve(app_dir) as url:
        ready(browser, url)
        classify(browser, SMALL)
        assert displayed(browser, "#preview-figure") and displayed(browser, "#thumb")
        browser.find_element("id", "photo").send_keys(str(PHONE))  # slow to decode: the page is "Reading..."
        assert not displayed(browser, "#preview-figure") and not displayed(browser, "figcaption")
        wait_for(browser, "return window.fmnistLast")
        got = classify(browser, tmp_path / "broken.jpg")
        assert "error" in got and not displayed(browser, "#preview-figure") and not displayed(browser, "#preview canvas")


def test_the_answer_is_announced_and_the_ten_classes_are_listed(app_dir, browser):
    with serve(app_dir) as url:
        ready(browser, url)
        got = classify(browser, SMALL)
        live = browser.execute_script("const s = document.getElementById('status'); "
                                      "return [s.getAttribute('aria-live'), s.getAttribute('role'), s.textContent]")
        classes = browser.execute_script("return document.getElementById('classes').textContent")
    names = json.loads((app_dir / "release.json").read_text())["class_names"]
    top = names[max(range(10), key=lambda i: got["probs"][i])]
    assert live[0] == "polite" and live[1] == "status" and live[2].startswith(f"It looks like {top} ("), live
    assert all(name in classes for name in names), classes


CONTRAST = """
const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
const lum = ([r, g, b]) => [r, g, b].map((v) => v / 255).map((v) => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
  .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
const background = (e) => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
  if (c.length < 4 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; };
return [...document.querySelectorAll('h1, label.pick, #status, .small, .classes, li .name, li .p, figcaption')]
  .filter((e) => e.offsetParent !== null && e.textContent.trim())
  .map((e) => { const [a, b] = [lum(rgb(getComputedStyle(e).color)), lum(background(e))];
    return [e.tagName + '.' + e.className + '#' + e.id, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]; });
"""


def test_text_meets_wcag_aa_contrast(app_dir, browser):
    """4.5:1 for body text (the buttons' 17 px semi-bold is not "large" text); white on the red button was 4.17:1."""
    with serve(app_dir) as url:
        ready(browser, url)
        classify(browser, SMALL)
        ratios = browser.execute_script(CONTRAST)
    assert len(ratios) >= 6, ratios
    low = [(what, round(r, 2)) for what, r in ratios if r < 4.5]
    assert low == [], low


def test_loading_logs_no_errors_and_no_warnings(app_dir, browser):
    """LiteRT.js warned "Failed to create default WebGPU device" on every load, though the app runs on WebAssembly."""
    with serve(app_dir) as url:
        browser.get_log("browser")
        ready(browser, url)
        logged = [(e["level"], e["message"]) for e in browser.get_log("browser") if e["level"] in ("WARNING", "SEVERE")]
    assert logged == [], logged


def test_no_native_file_widget_shows(app_dir, browser):
    with serve(app_dir) as url:
        ready(browser, url)
        opacity = browser.execute_script("return [...document.querySelectorAll('.pick input')].map("
                                         "e => getComputedStyle(e).opacity)")
        shown = browser.execute_script("return [...document.querySelectorAll('.picks .pick')]"
                                       ".filter(e => e.offsetParent !== null).map(e => e.innerText.trim())")
    # The live camera stands in for "Take a photo" where the browser can open a camera (test_web_phone).
    assert opacity == ["0", "0"] and shown == ["Live camera", "Choose a photo"], (opacity, shown)


@pytest.mark.parametrize("release, artifact", [("reference", None), ("edge", None), ("reference", "onnx-int8")])
def test_a_first_visit_downloads_each_file_once_within_its_budget(tmp_path, release, artifact):
    """Counted at the server: precompressed files, the service worker's precache taking what the page already loaded.
    The ONNX build once fetched its 14 MB WebAssembly twice (the page, and the worker's no-store precache)."""
    from fmnist_edge.browser.first_visit import BUDGETS, measure

    root = Path(__file__).resolve().parents[1] / "artifacts" / release
    build_app(root, tmp_path / "app", artifact=artifact)
    got = measure(tmp_path / "app")
    assert got["status"].startswith("Ready"), got["status"]
    # release.json (2 KB) is always asked for afresh: it is how the page and the worker learn of a new build
    assert [f for f in got["downloaded_twice"] if f != "/release.json"] == [], got["files"]
    if artifact is None:
        assert got["bytes"] <= BUDGETS[release], {p: f["bytes"] for p, f in got["files"].items()}
