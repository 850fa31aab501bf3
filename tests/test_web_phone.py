"""The app as phone users meet it, in Debian's Chromium at phone size: the live camera (a fake camera playing a
rendered garment) answers as the file path does, photos are prepared in a Worker (no main-thread task over 100 ms
on a 6000x4000 photo, the same pixels as on the page), a 50 MP photo is scaled down and answered, and the model's
download shows its progress in bytes."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("selenium")

from fmnist_edge.browser.chromium import chromium, serve  # noqa: E402
from fmnist_edge.browser.photos import photos_in_browser  # noqa: E402
from test_web import PHOTOS, RELEASE, STATUS, app_dir, browser, classify, ready, wait_for  # noqa: E402,F401

ANSWER = ("return window.fmnistLast || (document.getElementById('status').className === 'error' "
          "&& {error: document.getElementById('status').textContent})")


def garment(label: int, condition: str, size: tuple[int, int] | None = None):
    """The first test-split image of class `label`, rendered as a photo under `condition` (photo_bench), resized."""
    from fmnist_edge import data
    from fmnist_edge.photo_bench import render

    ds = data.load(download=False, train=False)
    photo, _ = render(ds.x_test[int(np.argmax(ds.y_test == label))], condition, np.random.default_rng(label))
    return photo.resize(size) if size else photo


def write_y4m(path: Path, frame, frames: int = 15) -> None:
    """`frame` (PIL RGB, even sides) as a Y4M video (I420, BT.601 studio range): what Chromium's fake camera plays."""
    rgb = np.asarray(frame, np.float64)
    y = 16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255
    cb = 128 + (-37.797 * rgb[..., 0] - 74.203 * rgb[..., 1] + 112.0 * rgb[..., 2]) / 255
    cr = 128 + (112.0 * rgb[..., 0] - 93.786 * rgb[..., 1] - 18.214 * rgb[..., 2]) / 255
    half = lambda c: c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2).mean(axis=(1, 3))  # noqa: E731
    planes = b"".join(np.clip(p, 0, 255).round().astype(np.uint8).tobytes() for p in (y, half(cb), half(cr)))
    h, w = rgb.shape[:2]
    path.write_bytes(f"YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n".encode() + b"FRAME\n".join([b""] + [planes] * frames))


def test_the_live_camera_answers_as_the_file_path_does(app_dir, tmp_path):
    """A fake rear camera plays a rendered ankle boot; the frame inside the guide gets the answer the same picture
    chosen as a file gets, and the model's inputs are close (the video's 4:2:0 colour costs a few grey levels)."""
    frame = garment(9, "off-white-square-60").crop((0, 80, 640, 560))  # 640x480, the camera's frame
    frame.save(tmp_path / "frame.png")
    write_y4m(tmp_path / "camera.y4m", frame)
    camera = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={tmp_path / 'camera.y4m'}")
    with serve(app_dir) as url, chromium(args=camera) as driver:
        ready(driver, url)
        from_file = classify(driver, tmp_path / "frame.png")
        assert driver.execute_script("return document.getElementById('live').offsetParent !== null")
        driver.execute_script("window.fmnistLast = null")
        driver.find_element("id", "live").click()
        live = wait_for(driver, ANSWER)
        playing = driver.execute_script("const v = document.getElementById('video'); "
                                        "return [v.videoWidth, v.videoHeight, !v.paused]")
        driver.execute_script("window.fmnistLast = null")
        driver.find_element("id", "shutter").click()
        again = wait_for(driver, ANSWER)
        status = driver.execute_script(STATUS)
        driver.find_element("id", "close-camera").click()
        closed = driver.execute_script("return document.getElementById('video').srcObject === null")
    assert playing == [640, 480, True] and closed, (playing, closed)
    for got in (live, again):
        assert "error" not in got, got
        assert np.argmax(got["probs"]) == np.argmax(from_file["probs"]) == 9 and got["sure"], (got["probs"], from_file)
        diff = np.abs(np.array(got["pixels"], int) - np.array(from_file["pixels"], int))
        assert diff.mean() < 6, diff.mean()
    assert status.startswith("It looks like Ankle boot") and "the camera's frame" in status, status


def test_without_a_camera_the_page_says_so_and_offers_the_file_inputs(app_dir, browser):
    with serve(app_dir) as url:
        ready(browser, url)
        browser.find_element("id", "live").click()
        wait_for(browser, "return document.getElementById('status').className === 'error'")
        status = browser.execute_script(STATUS)
        shown = browser.execute_script("return [...document.querySelectorAll('.picks .pick')]"
                                       ".filter(e => e.offsetParent !== null).map(e => e.innerText.trim())")
    assert status.startswith("The live camera could not be opened (") and '"Take a photo"' in status, status
    assert shown == ["Take a photo", "Choose a photo"], shown


LONG_TASKS = ("window.longTasks = []; new PerformanceObserver((list) => window.longTasks.push("
              "...list.getEntries().map((e) => Math.round(e.duration)))).observe({type: 'longtask'});")


def test_preparing_a_6000x4000_photo_never_blocks_the_page_for_100_ms(app_dir, browser, tmp_path):
    """The photo is decoded and prepared in a Worker: before, the page froze 0.4-1.8 s on such a photo."""
    garment(1, "gradient-landscape-80", (6000, 4000)).save(tmp_path / "trouser-6000x4000.jpg", quality=85)
    with serve(app_dir) as url:
        ready(browser, url)
        browser.execute_script(LONG_TASKS)
        got = classify(browser, tmp_path / "trouser-6000x4000.jpg")
        time.sleep(0.2)  # the observer reports a task after it ends
        long_tasks = browser.execute_script("return window.longTasks")
    assert "error" not in got and np.argmax(got["probs"]) == 1, got
    assert got["prepare_ms"] > 100, got["prepare_ms"]  # the work the page no longer waits on
    assert max(long_tasks, default=0) <= 100, long_tasks


def test_the_worker_prepares_the_pixels_the_page_would(app_dir, browser):
    """Bit for bit: the Worker runs preprocess.mjs as the page did (photos_in_browser runs it on the page)."""
    chosen = [p for p in PHOTOS if p.suffix == ".jpg"][:4]
    with serve(app_dir) as url:
        on_page = photos_in_browser(browser, url, "tflite-int8-web", [(p.name, p.read_bytes()) for p in chosen])
        ready(browser, url)
        in_worker = [classify(browser, p) for p in chosen]
    for photo, page, worker in zip(chosen, on_page, in_worker):
        assert np.array_equal(np.array(worker["pixels"], np.uint8).reshape(28, 28), page["pixels"]), photo.name


def test_a_50_megapixel_photo_is_scaled_down_and_answered_as_in_python(app_dir, browser, tmp_path):
    """Over 40 MP (a phone's 50 MP mode) both sides scale the photo to 40 MP right after decoding (once refused)."""
    from runtime.images import load_image

    photo = tmp_path / "bag-8660x5774.jpg"
    garment(8, "beige-portrait-70", (8660, 5774)).save(photo, quality=80)
    with serve(app_dir) as url:
        ready(browser, url)
        got = classify(browser, photo)
    assert "error" not in got, got
    web = np.array(got["pixels"], int).reshape(28, 28)
    py = load_image(photo).astype(int)
    assert np.abs(web - py).max() <= 2 and np.argmax(got["probs"]) == 8, (np.abs(web - py).max(), got["probs"])


PROGRESS = ("const p = document.getElementById('progress'); "
            "return [document.getElementById('status').textContent, p.hidden, p.value]")


def test_the_download_shows_its_progress_in_bytes(app_dir, browser):
    """At 1 MB/s the first visit takes seconds: the page counts the model and its runtime as they arrive."""
    load_bytes = json.loads((app_dir / "release.json").read_text())["load_bytes"]
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.clearBrowserCache", {})
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": False, "latency": 20,
                                                                 "downloadThroughput": 1_000_000, "uploadThroughput": 1_000_000})
    seen = []
    try:
        with serve(app_dir) as url:
            browser.get(url)
            end = time.monotonic() + 60
            while time.monotonic() < end and not (seen and seen[-1][0].startswith("Ready")):
                state = browser.execute_script(PROGRESS)
                if not seen or state != seen[-1]:
                    seen.append(state)
                time.sleep(0.05)
    finally:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
                                                                     "downloadThroughput": -1, "uploadThroughput": -1})
    counted = [(int(m[1]), float(m[2]), float(m[3])) for text, hidden, _ in seen if not hidden
               and (m := re.match(r"Loading the model: (\d+)% \(([\d.]+) of ([\d.]+) MB\)", text))]
    assert len(counted) >= 5, seen
    assert [c[0] for c in counted] == sorted(c[0] for c in counted) and counted[-1][0] >= 90, counted
    assert all(c[2] == round(load_bytes / 1e6, 1) for c in counted), (counted, load_bytes)
    assert seen[-1][0].startswith("Ready") and seen[-1][1] is True, seen[-1]
