"""The web app's field bugs, each reproduced in Debian's Chromium at phone size and shown fixed: a re-deployed app
reaches returning visitors, only the latest photo shows, camera and gallery are both offered, the whole wait is
shown, an unsure answer says so, and the page's state after an error or a repeated choice is right."""

from __future__ import annotations

import shutil
import time

import pytest

pytest.importorskip("selenium")

from fmnist_edge.browser.app import build_app  # noqa: E402
from fmnist_edge.browser.chromium import chromium, serve  # noqa: E402
# The built app and the shared Chromium are test_web's module fixtures (imported, pytest uses them here too).
from test_web import PHOTOS, RELEASE, STATUS, app_dir, browser, classify, ready, wait_for  # noqa: E402,F401

PHONE = next(p for p in PHOTOS if "3000x4000" in p.name)
SMALL = next(p for p in PHOTOS if p.name == "trouser-exif1.jpg")
MODEL = "return document.getElementById('model').textContent"


def visible(driver, element_id: str) -> bool:
    return driver.execute_script(f"return !document.getElementById('{element_id}').hidden")


def test_a_redeployed_app_reaches_returning_visitors_and_says_so(tmp_path):
    build_app(RELEASE, tmp_path / "first")
    build_app(RELEASE, tmp_path / "second", artifact="onnx-int8")  # a new build: another artifact
    assert (tmp_path / "first/sw.js").read_bytes() != (tmp_path / "second/sw.js").read_bytes()
    site = tmp_path / "site"
    shutil.copytree(tmp_path / "first", site)
    with chromium() as driver, serve(site) as url:
        ready(driver, url)
        driver.execute_async_script("navigator.serviceWorker.ready.then(() => arguments[0](true))")
        ready(driver, url)
        assert driver.execute_script("return navigator.serviceWorker.controller !== null")
        assert "tflite-int8-web" in driver.execute_script(MODEL) and not visible(driver, "updated")
        shutil.rmtree(site)  # re-deploy in place, as a static host does: new files, new modification times
        time.sleep(1.1)  # (HTTP's Last-Modified counts whole seconds: a same-second copy would answer 304)
        shutil.copytree(tmp_path / "second", site, copy_function=shutil.copy)
        for _ in range(6):  # the old worker serves a visit or two while the browser installs the new one
            ready(driver, url)
            if "onnx-int8" in driver.execute_script(MODEL):
                break
            time.sleep(2.5)
        assert "onnx-int8" in driver.execute_script(MODEL), "the re-deployed app never reached the returning visitor"
        assert visible(driver, "updated") and "was updated" in driver.execute_script(
            "return document.getElementById('updated').textContent")
        caches = driver.execute_async_script("caches.keys().then(arguments[0])")
        assert len([c for c in caches if c.startswith("fmnist-edge-")]) == 1  # the old build's cache is gone


def test_only_the_latest_photo_shows(app_dir, browser):
    with serve(app_dir) as url:
        ready(browser, url)
        chooser = browser.find_element("id", "photo")
        chooser.send_keys(str(PHONE))  # 12 MP: slow to decode
        chooser.send_keys(str(SMALL))  # chosen right after, ready first
        wait_for(browser, f"return window.fmnistLast && window.fmnistLast.name === '{SMALL.name}'")
        time.sleep(4)  # long enough for the phone photo to finish: it must not take over
        assert browser.execute_script("return window.fmnistLast.name") == SMALL.name
        assert browser.execute_script("return document.querySelectorAll('#results li').length") == 3
        assert SMALL.name in browser.execute_script(STATUS)


def test_camera_and_gallery_are_both_offered(app_dir, browser):
    with serve(app_dir) as url:
        ready(browser, url)
        camera, gallery = (browser.find_element("id", i) for i in ("camera", "photo"))
        assert camera.get_attribute("capture") == "environment" and gallery.get_attribute("capture") is None
        assert camera.is_enabled() and gallery.is_enabled()
        # side by side, both whole on the phone's screen (a file input's own width once pushed one off it)
        right = browser.execute_script("return Math.max(...[...document.querySelectorAll('.pick')].map("
                                       "e => e.getBoundingClientRect().right)) - window.innerWidth")
        assert right <= 0, right
        camera.send_keys(str(SMALL))
        got = wait_for(browser, "return window.fmnistLast")
    assert got["name"] == SMALL.name and len(got["probs"]) == 10


def test_the_whole_wait_is_shown_and_the_same_photo_can_be_chosen_twice(app_dir, browser):
    with serve(app_dir) as url:
        ready(browser, url)
        first = classify(browser, SMALL)
        browser.execute_script("window.fmnistLast = null")
        again = classify(browser, SMALL)  # the input was reset: choosing the same file fires again
    assert again["pixels"] == first["pixels"]
    assert again["ms"] >= again["prepare_ms"] + again["model_ms"] - 1 and again["prepare_ms"] > 0
    assert "reading and preparing the photo" in browser.execute_script(STATUS)


def test_an_error_clears_the_previous_answer_and_an_unsure_one_says_so(app_dir, browser, tmp_path):
    from PIL import Image

    Image.new("RGB", (640, 480), (236, 232, 224)).save(tmp_path / "wall.jpg", quality=85)
    (tmp_path / "broken.jpg").write_bytes(SMALL.read_bytes()[:600])
    with serve(app_dir) as url:
        ready(browser, url)
        classify(browser, SMALL)
        assert visible(browser, "preview-figure")
        got = classify(browser, tmp_path / "broken.jpg")
        assert "error" in got and not visible(browser, "preview-figure")
        assert browser.execute_script("return document.querySelectorAll('#results li').length") == 0
        got = classify(browser, tmp_path / "wall.jpg")
        assert "no garment found" in got["error"] and visible(browser, "hint")
        label = browser.execute_script("return document.querySelector('#preview-figure figcaption').textContent")
    assert "what the model sees" in label


def test_loading_the_model_logs_no_errors(app_dir, browser):
    with serve(app_dir) as url:
        browser.get_log("browser")  # drop what earlier tests left
        ready(browser, url)
        severe = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe


def test_the_buttons_look_inactive_until_the_model_is_ready(app_dir):
    with chromium() as driver, serve(app_dir) as url:  # the model never loads here: no WebAssembly
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": "delete window.WebAssembly;"})
        driver.get(url)
        wait_for(driver, "return document.getElementById('status').className === 'error'")
        opacity = driver.execute_script("return getComputedStyle(document.querySelector('label.pick')).opacity")
    assert float(opacity) < 0.6


def test_an_unsure_answer_says_not_sure_with_a_framing_hint(app_dir, browser, tmp_path):
    """Below the confidence measured on the photo benchmark (photo.json's not_sure_below) the page says so."""
    import runtime
    from fmnist_edge.browser.app import DEFAULT_VARIANT
    from fmnist_edge.browser.photos import golden_photos
    from runtime.images import load_image
    from runtime.out_of_class import out_of_class
    from runtime.photo import PARAMS

    clf = runtime.load(RELEASE / DEFAULT_VARIANT)
    cut = PARAMS["not_sure_below"]
    photos = dict(golden_photos(RELEASE, 60))
    probs = {name: clf.predict_proba(load_image(data)[None])[0] for name, data in photos.items()}
    tops = {name: float(p.max()) for name, p in probs.items()}
    # The least sure garment that still looks like its class: the out-of-class message has its own test.
    garments = [n for n in tops if not out_of_class(load_image(photos[n]), probs[n])]
    unsure = min(garments, key=tops.get)
    sure = max(tops, key=tops.get)
    assert tops[unsure] < cut - 0.05 and tops[sure] > cut + 0.05, (tops[unsure], tops[sure], cut)  # clear of the line
    for name in (unsure, sure):
        (tmp_path / name).write_bytes(photos[name])
    with serve(app_dir) as url:
        ready(browser, url)
        got = classify(browser, tmp_path / unsure)
        assert got["sure"] is False and browser.execute_script(STATUS).startswith("Not sure") and visible(browser, "hint")
        browser.execute_script("window.fmnistLast = null")
        got = classify(browser, tmp_path / sure)
        assert got["sure"] is True and not visible(browser, "hint")


def test_serve_gives_a_phone_a_trusted_https_origin(app_dir, tmp_path):
    """`app --serve`: HTTPS with a certificate a phone that installed the local CA accepts (checked here by Python's
    own TLS verification against that CA alone), the CA offered for download, kept across runs."""
    import ssl
    import subprocess
    import urllib.error
    import urllib.request

    from fmnist_edge.browser.https import CA_PATH, in_permitted, lan_addresses, serve_https

    with serve_https(app_dir, "127.0.0.1", 0, tmp_path / "tls") as (urls, ca):
        trusting = ssl.create_default_context(cafile=str(ca))  # a phone that installed the CA
        assert b"What garment is this?" in urllib.request.urlopen(urls[0], context=trusting, timeout=10).read()
        assert urllib.request.urlopen(urls[0].rstrip("/") + CA_PATH, context=trusting, timeout=10).read() == ca.read_bytes()
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):  # one that did not: refused
            urllib.request.urlopen(urls[0], context=ssl.create_default_context(), timeout=10)
    first = ca.read_bytes()
    with serve_https(app_dir, "127.0.0.1", 0, tmp_path / "tls") as (_, again):
        assert again.read_bytes() == first  # the phone installs the CA once
    names = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "tls/server.crt"), "-noout", "-ext", "subjectAltName"],
                           capture_output=True, text=True, check=True).stdout
    # this machine's LAN addresses; an address outside the CA's name constraints (a public one) would be rejected
    assert all((f"IP Address:{a}" in names) == in_permitted(a) for a in lan_addresses()) and "127.0.0.1" in names
