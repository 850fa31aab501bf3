"""The docs' phone-sized screenshot of the web app: build it for a release, classify a fixture photo
through the page's own file input in headless Chromium at 412x915, save the page.

    python scripts/app_screenshot.py [RELEASE] [OUT.png]     (default: artifacts/reference docs/app-screenshot.png)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from fmnist_edge.browser.app import build_app  # noqa: E402
from fmnist_edge.browser.chromium import chromium, serve  # noqa: E402

PHOTO = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "photos" / "pullover-exif2.jpg"


def wait(driver, script: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not driver.execute_script(script):
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for: {script}")
        time.sleep(0.05)


def main(release: Path, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        build_app(release, Path(tmp) / "app")
        with serve(Path(tmp) / "app") as url, chromium(412, 915) as driver:
            driver.get(url)
            wait(driver, "return document.getElementById('status').textContent.startsWith('Ready')")
            driver.find_element("id", "photo").send_keys(str(PHOTO))
            wait(driver, "return window.fmnistLast")
            driver.save_screenshot(str(out))
    print(f"Wrote {out}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]) if args else Path("artifacts/reference"), Path(args[1]) if len(args) > 1 else Path("docs/app-screenshot.png"))
