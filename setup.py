"""The wheel and the sdist carry the web app's browser runtimes: only the files a page loads, copied at build time
from the npm install that web/package-lock.json pins (web/node_modules, `npm ci --prefix web`). npm stays their
source; the package holds them in fmnist_edge/browser/web-runtimes/ (laid out like node_modules), so `pip install
fmnist-edge` then `fmnist-edge app` needs neither npm nor a checkout. A build from a checkout without
web/node_modules (`pip install .`, `pip install git+...`, `python -m build`) runs `npm ci --prefix web` itself when
npm is there, and otherwise fails naming what to run (FMNIST_EDGE_BUILD_WITHOUT_APP=1 builds without the app,
knowingly). Everything else is in pyproject.toml.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
NODE_MODULES = ROOT / "web" / "node_modules"
VENDOR = ROOT / "fmnist_edge" / "browser" / "web-runtimes"


WITHOUT_APP = "FMNIST_EDGE_BUILD_WITHOUT_APP"  # set to 1: build without the web app's runtimes, knowingly
NPM_CI = ["npm", "ci", "--prefix", "web", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]


def ensure_node_modules() -> bool:
    """web/node_modules for a build from a checkout: installed from the lockfile when npm is there, else the build
    fails naming what to run (a wheel without them would build an app that cannot load). False: build without."""
    if NODE_MODULES.is_dir():
        return True
    if os.environ.get(WITHOUT_APP) == "1":
        print(f"note: {WITHOUT_APP}=1: building without the web app's browser runtimes; this package's `fmnist-edge "
              "app` will say so", file=sys.stderr)
        return False
    if shutil.which("npm"):
        print(f"running {' '.join(NPM_CI)} (the browser runtimes web/package-lock.json pins)", file=sys.stderr)
        subprocess.run(NPM_CI, cwd=ROOT, check=True)
        return True
    raise SystemExit(
        "error: building fmnist-edge from a checkout needs the web app's browser runtimes, installed from "
        "web/package-lock.json, and npm is not on PATH. Install Node.js and npm (Debian/Ubuntu: apt-get install npm), "
        "run `npm ci --prefix web` in the checkout, and build again; or set FMNIST_EDGE_BUILD_WITHOUT_APP=1 to build "
        "a package whose every command but `fmnist-edge app` works.")


def vendor_web_runtimes() -> None:
    """web/node_modules -> fmnist_edge/browser/web-runtimes/ for each browser runtime's page files and package.json.
    From an sdist (no web/ in it) the sdist's own web-runtimes/ is used as it is."""
    sys.path.insert(0, str(ROOT / "fmnist_edge" / "browser"))
    try:
        from runtimes import RUNTIMES  # the one list of what a page loads; a plain module, importable before install
    finally:
        sys.path.pop(0)
    if not (ROOT / "web" / "package-lock.json").is_file():  # an sdist: it carries web-runtimes/ already
        return
    shutil.rmtree(VENDOR, ignore_errors=True)  # a copy from an earlier build is never shipped stale
    if not ensure_node_modules():
        return
    modules = NODE_MODULES.resolve()
    for rt in RUNTIMES.values():
        for src in [*rt.files, "package.json"]:
            source = (NODE_MODULES / rt.package / src).resolve()
            target = VENDOR / source.relative_to(modules)  # e.g. @litertjs/core/../wasm-utils -> @litertjs/wasm-utils
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


class BuildPy(build_py):
    def run(self):
        # An editable install (scripts/setup.sh) runs from the checkout, where `app` reads web/node_modules itself.
        if not getattr(self, "editable_mode", False):
            vendor_web_runtimes()
        super().run()


class Sdist(sdist):
    def run(self):
        vendor_web_runtimes()
        super().run()


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
