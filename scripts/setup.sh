#!/usr/bin/env bash
# Install everything fmnist-edge needs on a fresh Debian/Ubuntu machine, idempotently:
# the real Fashion-MNIST (Debian package dataset-fashion-mnist), qemu user-mode emulation (export proves
# every int8 file on emulated x86 CPUs; `verify --cpu-matrix`), the Arm bare-metal compiler (the generated
# C source is compiled for a Cortex-M4), g++ (the tests compile the generated C source natively and run it),
# Chromium and its driver (the web app is tested in a real browser), Node/npm (only to install the browser
# runtime pinned by web/package-lock.json), a virtualenv in .venv, and the project with its training, test
# micro and docs extras. The test suite needs all of
# them: in CI (CI set) a check skipped for a missing one fails. Usage: bash scripts/setup.sh [EXTRAS]
# (default: train,test,micro,docs).
#
# bash scripts/setup.sh --main: only what the main job (train -> export -> bench) needs: the dataset, qemu (export's
# portability proof runs each int8 file on emulated x86 CPUs) and the [train] extra; no Chromium, compilers or npm.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--main" ]; then
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  if [ ! -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || ! command -v qemu-x86_64-static >/dev/null \
     || ! "${PYTHON:-python3}" -c "import ensurepip" 2>/dev/null; then
    echo "== installing the Fashion-MNIST dataset and qemu (apt-get install dataset-fashion-mnist qemu-user-static python3-venv)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dataset-fashion-mnist \
      qemu-user-static python3-venv >/dev/null
  fi
  [ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
  echo "== installing fmnist-edge[train] into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[train]"
  echo "== ready for the main job: .venv/bin/fmnist-edge train / export / bench"
  exit 0
fi
extras="${1:-train,test,micro,docs}"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || ! command -v qemu-x86_64-static >/dev/null \
   || ! command -v arm-none-eabi-gcc >/dev/null || ! command -v g++ >/dev/null || ! command -v chromium >/dev/null \
   || ! [ -x /usr/bin/chromedriver ] || ! command -v npm >/dev/null || ! command -v openssl >/dev/null; then
  echo "== installing the Fashion-MNIST dataset, qemu, g++, the Arm bare-metal compiler, Chromium, openssl and npm (apt-get install dataset-fashion-mnist qemu-user-static g++ gcc-arm-none-eabi chromium chromium-driver openssl npm)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dataset-fashion-mnist qemu-user-static g++ gcc-arm-none-eabi \
    chromium chromium-driver openssl python3-venv >/dev/null
  command -v npm >/dev/null || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
fi

echo "== installing the web app's browser runtime (npm ci --prefix web: the versions in web/package-lock.json)"
npm ci --prefix web --no-audit --no-fund --ignore-scripts --loglevel=error

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
echo "== installing fmnist-edge[$extras] into .venv (a first install downloads ~2.5 GB and takes a few minutes)"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[$extras]"
echo "== ready: .venv/bin/fmnist-edge --help"
