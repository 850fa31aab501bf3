#!/usr/bin/env bash
# Make a shipped release from a trained run, the way artifacts/reference/ and artifacts/edge/ are made: copy the run,
# export every variant with the float controls (the results pages cite them), benchmark it, run each full-integer
# file on TensorFlow Lite Micro, and prove it in the browser and on every CPU class. Each step writes the JSON the
# docs render.
#
#   bash scripts/make_release.sh RUN_DIR RELEASE_DIR [TARGETS_JSON MATRIX_JSON [-- EXTRA EXPORT OPTIONS]]
#   e.g. bash scripts/make_release.sh artifacts/runs/tuned-ablation/cosine-flip-ls0.1-e60-s0 artifacts/reference \
#            artifacts/targets.json artifacts/cpu_matrix.json
set -euo pipefail
cd "$(dirname "$0")/.."
run="$1"; release="$2"; targets="${3:-$release/targets.json}"; matrix="${4:-$release/cpu_matrix.json}"
shift $(( $# < 4 ? $# : 4 )); [ "${1:-}" = "--" ] && shift
bin=.venv/bin
if [ -e "$release" ]; then echo "$release exists: move it away first (nothing was changed)" >&2; exit 1; fi
mkdir -p "$release"
cp "$run"/model.keras "$run"/manifest.json "$run"/metrics.json "$run"/curves.png "$release"/
echo "== export"; /usr/bin/time -f "export: %e s" "$bin"/fmnist-edge export "$release" --controls "$@"
echo "== bench";  "$bin"/python scripts/benchmark.py "$release" --json "$targets"
for v in tflite-int8 tflite-int8-qat tflite-int8-pruned tflite-int8-clustered; do
  echo "== micro $v"; "$bin"/fmnist-edge micro "$release/$v" --test-images 1000 --json "$release/micro-$v.json"
done
echo "== browser"; "$bin"/fmnist-edge verify "$release" --browser --json "$release/browser.json"
echo "== CPU matrix"; "$bin"/fmnist-edge verify "$release" --cpu-matrix --json "$matrix"
