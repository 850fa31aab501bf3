#!/usr/bin/env bash
# The product as users get it: build the wheel and sdist from this checkout (as a release would), check both with
# twine, install the wheel into fresh venvs (base, as on a Raspberry Pi; and with [train]) and run the commands from
# a folder outside the checkout, on the shipped releases. The app it builds must classify a photo in Chromium; a build
# from a checkout without the browser runtimes fails, or (opted out) builds a wheel whose `app` says so.
#
#     bash scripts/wheel_check.sh        (after scripts/setup.sh: web/node_modules and .venv exist)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/fmnist-edge-wheel.XXXXXX)"
trap 'rm -rf "$work"' EXIT
py="${PYTHON:-python3}"
release="$repo/artifacts/edge"
photo="$repo/tests/fixtures/photos/trouser-exif1.jpg"

echo "== building the sdist and wheel (python -m build: isolated, from a clean copy of the sources)"
"$repo/.venv/bin/python" -m pip install -q "build==1.3.0" "twine==6.2.0"
git -C "$repo" archive --format=tar HEAD | tar -x -C "$work" --one-top-level=src  # only what is committed
ln -s "$repo/web/node_modules" "$work/src/web/node_modules"  # the npm install the build copies the runtimes from
"$repo/.venv/bin/python" -m build --sdist --wheel --outdir "$work/dist" "$work/src" >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log"; exit 1; }
"$repo/.venv/bin/python" -m twine check --strict "$work"/dist/*
wheel="$(ls "$work"/dist/*.whl)"
ls -l "$work"/dist/
"$repo/.venv/bin/python" - "$wheel" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
vendored = [n for n in names if "/browser/web-runtimes/" in n]
assert any(n.endswith("ort-wasm-simd-threaded.wasm") for n in vendored), "the wheel lacks onnxruntime-web's files"
assert any(n.endswith("litert_wasm_internal.wasm") for n in vendored), "the wheel lacks LiteRT.js's files"
assert "runtime/photo.json" in names and any(n.endswith("static/preprocess.mjs") for n in names)
print(f"the wheel carries {len(vendored)} browser-runtime files and the photo conversion's parameters")
EOF

echo "== base install (no extras) in a fresh venv, run from $work/elsewhere"
"$py" -m venv "$work/base"
"$work/base/bin/pip" install -q "$wheel"
mkdir "$work/elsewhere" && cd "$work/elsewhere"
"$work/base/bin/python" -c "import importlib.util as u; assert u.find_spec('tensorflow') is None"  # as on a Pi
"$repo/.venv/bin/python" "$repo/scripts/make_photo_benchmark.py" "$work/photos" --n 24 --seed 1 >/dev/null
# Every device-side command, on both shipped releases (bench --profile reads ONNX graphs without the onnx package).
for rel in "$repo/artifacts/reference" "$release"; do
  name="$(basename "$rel")"
  "$work/base/bin/fmnist-edge" verify "$rel"
  "$work/base/bin/fmnist-edge" predict "$photo" --model "$rel/tflite-int8"
  "$work/base/bin/fmnist-edge" bench "$rel" --runs 50 --warmup 5 --batch-size 32 --no-compute-floor --out "bench-$name"
  "$work/base/bin/fmnist-edge" bench "$rel" --profile --runs 20 --out "profile-$name"
  "$work/base/bin/fmnist-edge" bench "$rel" --photos "$work/photos" --variant tflite-int8 --variant onnx-int8 --runs 20 \
    --warmup 2 --no-compute-floor --out "photos-$name"
done
"$work/base/bin/fmnist-edge" app "$release" --out app
# The app the wheel built (no npm, no checkout) classifies a photo in Chromium, driven from the test venv.
"$repo/.venv/bin/python" - "$work/elsewhere/app" "$photo" <<'EOF'
import sys, time
from pathlib import Path
from fmnist_edge.browser.chromium import chromium, serve
app, photo = Path(sys.argv[1]), Path(sys.argv[2])
with serve(app) as url, chromium() as driver:
    driver.get(url)
    end = time.monotonic() + 60
    while not driver.execute_script("return document.getElementById('status').textContent.startsWith('Ready')"):
        assert time.monotonic() < end, driver.execute_script("return document.getElementById('status').textContent")
        time.sleep(0.1)
    driver.find_element("id", "photo").send_keys(str(photo))
    while not (got := driver.execute_script("return window.fmnistLast")):
        assert time.monotonic() < end + 60, "no answer from the app"
        time.sleep(0.1)
best = max(range(len(got["probs"])), key=got["probs"].__getitem__)
assert best == 1, got["probs"]  # the fixture is a trouser
print(f"the wheel's app in Chromium: {photo.name} -> class {best} ({max(got['probs']):.1%})")
EOF

echo "== [micro] added to the base venv: TFLite Micro and the C source, still without TensorFlow"
"$work/base/bin/pip" install -q "$wheel[micro]"
"$work/base/bin/python" -c "import importlib.util as u; assert u.find_spec('tensorflow') is None"
for rel in "$repo/artifacts/reference" "$release"; do
  "$work/base/bin/fmnist-edge" micro "$rel/tflite-int8" --test-images 100 --json "micro-$(basename "$rel").json"
done
"$work/base/bin/fmnist-edge" c-source "$release/tflite-int8" --out c && test -s c/fmnist_model.cc

echo "== with [train] in a fresh venv: a quick train and export from $work/elsewhere"
"$py" -m venv "$work/train"
"$work/train/bin/pip" install -q "$wheel[train]"
"$work/train/bin/fmnist-edge" train --epochs 1 --limit 2000 --out run
# float variants: a one-epoch model is too unsure for the int8 parity gate (export refuses it, rightly)
"$work/train/bin/fmnist-edge" export run --variant tflite-float32 --variant onnx-float32
"$work/train/bin/fmnist-edge" verify run
# A model file copied alone still knows its labels and contract (embedded metadata), on the base install too.
mkdir lone && cp run/tflite-float32/model.tflite lone/shirt-model.tflite && cp run/onnx-float32/model.onnx lone/
for f in lone/shirt-model.tflite lone/model.onnx; do
  "$work/base/bin/python" -c "import runtime, sys; c = runtime.load(sys.argv[1]); print(sys.argv[1], c.variant, \
c.manifest['embedded_metadata']['container']); assert c.variant in ('tflite-float32', 'onnx-float32'), c.variant" "$f"
  "$work/base/bin/fmnist-edge" predict "$photo" --model "$f"
done
echo "== a build from a checkout without web/node_modules: with no npm it fails naming what to run; built without the"
echo "   app on purpose (FMNIST_EDGE_BUILD_WITHOUT_APP=1), its \`app\` says which install it is"
git -C "$repo" archive --format=tar HEAD | tar -x -C "$work" --one-top-level=bare
if env PATH=/nonexistent "$repo/.venv/bin/python" -m build --wheel --outdir "$work/bare-dist" "$work/bare" >"$work/bare.log" 2>&1; then
  echo "a build with neither web/node_modules nor npm succeeded" >&2; exit 1
fi
grep -q "npm ci --prefix web" "$work/bare.log" || { tail -20 "$work/bare.log"; exit 1; }
env PATH=/nonexistent FMNIST_EDGE_BUILD_WITHOUT_APP=1 "$repo/.venv/bin/python" -m build --wheel --outdir "$work/bare-dist" \
  "$work/bare" >"$work/bare.log" 2>&1 || { tail -20 "$work/bare.log"; exit 1; }
"$work/base/bin/pip" install -q --no-deps --force-reinstall "$work"/bare-dist/*.whl
if "$work/base/bin/fmnist-edge" app "$release" --out app-bare 2>"$work/app-bare.err"; then
  echo "app from a wheel without the browser runtimes succeeded" >&2; exit 1
fi
grep -q "was built without them" "$work/app-bare.err" && ! grep -q Traceback "$work/app-bare.err" \
  || { cat "$work/app-bare.err"; exit 1; }
echo "wheel check: OK"
