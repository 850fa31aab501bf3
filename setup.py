"""The wheel and the sdist carry the web app's browser runtimes: only the files a page loads, copied at build time
from the npm install that web/package-lock.json pins (web/node_modules, `npm ci --prefix web`). npm stays their
source; the package holds them in fmnist_edge/browser/web-runtimes/ (laid out like node_modules), so `pip install
fmnist-edge` then `fmnist-edge app` needs neither npm nor a checkout. Everything else is in pyproject.toml.
"""

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
NODE_MODULES = ROOT / "web" / "node_modules"
VENDOR = ROOT / "fmnist_edge" / "browser" / "web-runtimes"


def vendor_web_runtimes() -> None:
    """web/node_modules -> fmnist_edge/browser/web-runtimes/ for each browser runtime's page files and package.json.
    From an sdist (no web/ in it) the sdist's own web-runtimes/ is used as it is."""
    sys.path.insert(0, str(ROOT / "fmnist_edge" / "browser"))
    try:
        from runtimes import RUNTIMES  # the one list of what a page loads; a plain module, importable before install
    finally:
        sys.path.pop(0)
    if not NODE_MODULES.is_dir():
        if not VENDOR.is_dir():
            print("warning: neither web/node_modules nor fmnist_edge/browser/web-runtimes: this package's `fmnist-edge app` "
                  "will ask for the browser runtimes (run `npm ci --prefix web` before building)", file=sys.stderr)
        return
    shutil.rmtree(VENDOR, ignore_errors=True)
    modules = NODE_MODULES.resolve()
    for rt in RUNTIMES.values():
        for src in [*rt.files, "package.json"]:
            source = (NODE_MODULES / rt.package / src).resolve()
            target = VENDOR / source.relative_to(modules)  # e.g. @litertjs/core/../wasm-utils -> @litertjs/wasm-utils
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


class BuildPy(build_py):
    def run(self):
        vendor_web_runtimes()
        super().run()


class Sdist(sdist):
    def run(self):
        vendor_web_runtimes()
        super().run()


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
