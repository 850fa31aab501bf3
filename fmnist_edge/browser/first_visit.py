"""What a phone downloads on its first visit to the app, counted at the server: every response's body bytes per
file (precompressed where the build wrote NAME.gz), the page's own requests and the service worker's, until the
model runs and the worker is installed. scripts/first_visit.py prints the table and writes the JSON; a test holds
both releases to their budgets."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path

from .chromium import chromium, serve
from .static_server import AppHandler

# Bytes a first visit may download (decimal megabytes): the edge app's int8 model is 57 KB, the reference's 521 KB.
BUDGETS = {"edge": 3_000_000, "reference": 3_500_000}


def _counting_handler():
    sent: dict[str, list[tuple[int, int]]] = defaultdict(list)  # path -> [(status, body bytes), ...]
    lock = threading.Lock()

    class Counting(AppHandler):
        def send_response(self, code, message=None):
            self._status = code
            super().send_response(code, message)

        def send_header(self, keyword, value):
            if keyword.lower() == "content-length":
                self._length = int(value)
            super().send_header(keyword, value)

        def log_request(self, code="-", size="-"):
            pass

        def handle_one_request(self):
            self._status, self._length = None, 0
            super().handle_one_request()
            if getattr(self, "path", None) and self._status is not None:
                with lock:
                    sent[self.path.split("?", 1)[0]].append((self._status, self._length if self._status == 200 else 0))

    return Counting, sent


def measure(app: Path, settle: float = 2.0) -> dict:
    """Open the built app at `app` once in a fresh phone-sized Chromium; what the server sent, by file."""
    handler, sent = _counting_handler()
    with serve(app, handler) as url, chromium() as driver:
        driver.get(url)
        end = time.monotonic() + 120
        while not driver.execute_script("return /^(Ready|The model)/.test(document.getElementById('status')"
                                        ".textContent)") and time.monotonic() < end:
            time.sleep(0.05)
        status = driver.execute_script("return document.getElementById('status').textContent")
        driver.execute_async_script("navigator.serviceWorker.ready.then(() => arguments[0](true))")
        time.sleep(settle)  # the worker's install finishes its last puts
    files = {path: {"requests": len(r), "downloads": sum(1 for code, _ in r if code == 200),
                    "bytes": sum(b for _, b in r)} for path, r in sorted(sent.items())}
    return {"status": status, "bytes": sum(f["bytes"] for f in files.values()), "files": files,
            "downloaded_twice": sorted(p for p, f in files.items() if f["downloads"] > 1)}
