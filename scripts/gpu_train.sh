#!/usr/bin/env bash
# Train seeds on a machine without TensorFlow (the lent GPU machine: JAX, no TensorFlow), for the GPU rows of
# artifacts/fidelity.json (issue 24): Keras 3 on KERAS_BACKEND=jax, the dataset read from a carried folder
# (nothing is downloaded), and each run directory packed into one archive to bring back.
#
# Prepare once on the CPU machine (both folders are git-ignored, so only `carry` takes them along):
#   bash scripts/gpu_train.sh --prepare
# Then, on the device (`run` with carry [".whl", ".data"]):
#   bash scripts/gpu_train.sh [--model reference] [--recipe seed] [--seeds "0 1 2"] [--runs "seed:0 tuned:0 ..."]
#                             [-- EXTRA TRAIN OPTIONS]
# --runs lists recipe:seed pairs trained one after another (it overrides --recipe and --seeds). Each run is packed
# into $OUT/<run>.tgz as soon as it ends, so a command stopped at its time limit still returns the finished ones.
# Back here: for f in FILES_AT/*.tgz; do tar -xzf $f -C artifacts/runs; done, then add the runs to scripts/fidelity.py's command.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
  # The device's Python is 3.12 and has JAX, numpy, rich, typer, h5py, ml-dtypes; Keras and two of its needs it lacks.
  mkdir -p .git/info
  grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
  grep -qx '/.data/' .git/info/exclude || echo '/.data/' >> .git/info/exclude
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0
  mkdir -p .data
  # wherever `fmnist-edge train` finds the dataset here (--data-dir order: $FMNIST_DATA_DIR, Keras cache, Debian)
  src="$(.venv/bin/python -c '
import sys
from fmnist_edge.data import locate
from fmnist_edge.errors import DataError
try:
    print(locate(download=False))
except DataError as exc:
    sys.exit(str(exc))')"
  cp "$src"/*-ubyte* .data/
  ls -l .whl .data
  exit 0
fi

model=reference; recipe=seed; seeds="0 1 2"; runs_list=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --recipe) recipe="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --runs) runs_list="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown option $1 (expected --prepare, --model, --recipe, --seeds, --runs, or -- then train options)" >&2; exit 2 ;;
  esac
done
for d in .whl .data; do
  [ -d "$d" ] || { echo "$d is missing: run 'bash scripts/gpu_train.sh --prepare' here and carry it" >&2; exit 2; }
done

export KERAS_BACKEND=jax  # before any import of Keras: its default backend, TensorFlow, is not there
if ! python3 -c "import keras" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" FMNIST_DATA_DIR="$PWD/.data" PYTHONUNBUFFERED=1
out="${OUT:-/tmp/gpu_train}"
runs="$out/runs"; mkdir -p "$runs"
command -v nvidia-smi >/dev/null && nvidia-smi || echo "no nvidia-smi on this machine"
python3 -c "import jax; print('jax', jax.__version__, 'devices:', jax.devices())"
if [ -z "$runs_list" ]; then for s in $seeds; do runs_list="$runs_list $recipe:$s"; done; fi
for job in $runs_list; do
  r="${job%%:*}"; s="${job##*:}"; name="$model-$r-jax-s$s"
  python3 -m fmnist_edge train --model "$model" --recipe "$r" --seed "$s" --no-download --out "$runs/$name" "$@"
  # the device returns at most 8 files of at most 16 MiB each: one archive per run (a reference run packs to ~6 MB)
  tar -C "$runs" -czf "$out/$name.tgz" "$name" && rm -rf "${runs:?}/$name"
done
rmdir "$runs"
ls -l "$out"
