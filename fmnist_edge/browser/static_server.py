"""The HTTP handler every server of the web app uses (`app --serve`, the browser checks): the app's MIME types, its
precompressed files (`NAME.gz` beside `NAME`, written by `fmnist-edge app`) sent with `Content-Encoding: gzip` to a
browser that accepts it, conditional requests answered 304, and no request log on the terminal."""

from __future__ import annotations

import email.utils
import http.server
import os

ENCODINGS = (("gzip", ".gz"),)  # (Accept-Encoding token, suffix of the precompressed file)


class AppHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".webmanifest": "application/manifest+json"}

    def send_head(self):
        path = self.translate_path(self.path)
        if os.path.isdir(path) and self.path.split("?", 1)[0].endswith("/"):
            path = os.path.join(path, "index.html")  # "/" is index.html, sent precompressed as any other file
        accepted = self.headers.get("Accept-Encoding", "")
        for token, suffix in ENCODINGS:
            if token in accepted and os.path.isfile(path + suffix) and os.path.isfile(path):
                return self._precompressed(path, path + suffix, token)
        return super().send_head()

    def _precompressed(self, path: str, packed: str, token: str):
        stat = os.stat(packed)
        since = self.headers.get("If-Modified-Since")
        if since and "If-None-Match" not in self.headers:
            try:
                unchanged = email.utils.parsedate_to_datetime(since).timestamp() >= int(stat.st_mtime)
            except (TypeError, ValueError, IndexError, OverflowError):
                unchanged = False
            if unchanged:
                self.send_response(304)
                self.send_header("Vary", "Accept-Encoding")
                self.end_headers()
                return None
        f = open(packed, "rb")  # noqa: SIM115 -- SimpleHTTPRequestHandler copies and closes it
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Encoding", token)
        self.send_header("Content-Length", str(stat.st_size))
        self.send_header("Last-Modified", self.date_time_string(stat.st_mtime))
        self.send_header("Vary", "Accept-Encoding")
        self.end_headers()
        return f

    def log_message(self, *args):  # one line per request would drown the command's own output
        pass
