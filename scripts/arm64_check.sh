#!/usr/bin/env bash
# Prove the base (runtime) install works on a Raspberry Pi's CPU: run `fmnist-edge verify` and a short
# `fmnist-edge bench` on the shipped release under qemu user-mode emulation of a Pi 4 core (Cortex-A72)
# and a Pi 5 core (Cortex-A76), in an arm64 Debian bookworm sysroot with Python 3.11 built from Debian's
# own arm64 packages and the project's aarch64 wheels. Fails loudly when any variant's predictions
# differ from the outputs recorded at export. Emulated timings say nothing about a real Pi's speed.
#
#   bash scripts/arm64_check.sh [RUN_DIR]        (default: artifacts/reference)
#   bash scripts/arm64_check.sh --prepare        build the sysroot only (for `fmnist-edge verify --cpu-matrix`)
#   bash scripts/arm64_check.sh --bench-only RUN the bench only: CI's `verify --cpu-matrix` runs the same golden
#                                                sets on both cores in this sysroot (its cortex-a72/a76 columns)
#
# Cached in $ARM64_CACHE (default ~/.cache/fmnist-edge-arm64); a warm run takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
prepare_only=0
bench_only=0
if [ "${1:-}" = "--prepare" ]; then prepare_only=1; shift; fi
if [ "${1:-}" = "--bench-only" ]; then bench_only=1; shift; fi
run_dir="${1:-artifacts/reference}"
cache="${ARM64_CACHE:-$HOME/.cache/fmnist-edge-arm64}"
sysroot="$cache/sysroot"
wheels="$cache/site"
host_python="${PYTHON:-python3}"
[ -x .venv/bin/python ] && host_python=.venv/bin/python
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v qemu-aarch64-static >/dev/null; then
  echo "== installing qemu-user-static"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
fi

# 1. The sysroot: Debian bookworm arm64 packages, unpacked (not installed) with a private apt state.
if [ ! -x "$sysroot/usr/bin/python3.11" ]; then
  echo "== building the arm64 sysroot in $sysroot"
  rm -rf "$sysroot" "$cache/apt" "$cache/debs"
  mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial" "$cache/debs" "$sysroot"
  # The same mirrors this machine already uses, restricted to arm64 (no host names baked in here).
  "$host_python" scripts/apt_sources_arm64.py > "$cache/arm64.list"
  apt_opts=(-o APT::Architecture=arm64 -o APT::Architectures=arm64
            -o Dir::State::Lists="$cache/apt/lists" -o Dir::Cache="$cache/apt/cache"
            -o Dir::State::Status=/dev/null -o Dir::Etc::SourceList="$cache/arm64.list"
            -o Dir::Etc::SourceParts=/dev/null -o Debug::NoLocking=1)
  apt-get "${apt_opts[@]}" update -qq
  (cd "$cache/debs" && apt-get "${apt_opts[@]}" download -qq python3.11-minimal libpython3.11-minimal \
      libpython3.11-stdlib libc6 libgcc-s1 libstdc++6 zlib1g libexpat1 libffi8 libbz2-1.0 liblzma5)
  for deb in "$cache"/debs/*.deb; do dpkg -x "$deb" "$sysroot"; done
  # Keep the host's loader cache out (bookworm is not usr-merged; libc6 ships /lib/ld-linux-aarch64.so.1).
  mkdir -p "$sysroot/etc" "$sysroot/proc" && : > "$sysroot/etc/ld.so.cache"
fi

# 2. The base install's aarch64 wheels, unzipped on the host (the emulated Python cannot run pip's builds).
if [ ! -f "$wheels/.complete" ]; then
  echo "== fetching aarch64 wheels for the base install"
  rm -rf "$wheels" "$cache/wheels" && mkdir -p "$wheels" "$cache/wheels"
  deps=$("$host_python" -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))")
  # shellcheck disable=SC2086
  "$host_python" -m pip download -q --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
      --abi abi3 --abi none --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 \
      --platform manylinux2014_aarch64 --platform any -d "$cache/wheels" $(echo "$deps" | tr '\n' ' ')
  for whl in "$cache"/wheels/*.whl; do "$host_python" -m zipfile -e "$whl" "$wheels"; done
  touch "$wheels/.complete"
fi

if [ $prepare_only -eq 1 ]; then echo "arm64 sysroot ready in $cache"; exit 0; fi

# 3. The project itself (runtime tier only: fmnist_edge's bench/verify and runtime; no exporters, no TF).
proj="$cache/project" && rm -rf "$proj" && mkdir -p "$proj"
cp -r fmnist_edge runtime "$proj/"

# The emulated bench's accuracy gate: the same 100 images benchmarked natively on this host. A fixed --max-drop on
# 100 images cannot tell a 1-point variant from a 3-point one (the pruned reference loses 1.2 points on 10,000
# images and 3 on this subset); equal accuracy and agreement per variant can, since the matrix proves the outputs.
bench_args=(--keras recorded --test-images 100 --batch-size 16 --no-compute-floor)
host_out="$cache/out-host" && mkdir -p "$host_out"
"$host_python" -m fmnist_edge bench "$run_dir" "${bench_args[@]}" --runs 10 --warmup 1 \
    --json "$host_out/bench.json" --markdown "$host_out/bench.md" --plot "$host_out/bench.png" >/dev/null

status=0
for cpu in cortex-a72 cortex-a76; do
  echo "== $cpu ($( [ $cpu = cortex-a72 ] && echo 'Raspberry Pi 4' || echo 'Raspberry Pi 5'))"
  # qemu 7.2 does not fake /proc/cpuinfo for aarch64 and both runtimes crash probing the CPU without it.
  "$host_python" -c "from fmnist_edge.cpumatrix import arm_cpuinfo; print(arm_cpuinfo('$cpu'), end='')" > "$sysroot/proc/cpuinfo"
  # Always name a real core: qemu's default 'max' CPU advertises SVE/SME and XNNPACK then computes wrong int8.
  # A host's pinned OpenBLAS core type (OPENBLAS_CORETYPE) is not the emulated Pi's: let the libraries detect it.
  emu=(env -u OPENBLAS_CORETYPE PYTHONPATH="$proj:$wheels" PYTHONDONTWRITEBYTECODE=1 qemu-aarch64-static -cpu "$cpu" -L "$sysroot"
       "$sysroot/usr/bin/python3.11")
  "${emu[@]}" -c "import platform, numpy, runtime; print('python', platform.python_version(), platform.machine(), 'numpy', numpy.__version__)"
  out="$cache/out-$cpu" && mkdir -p "$out"
  if [ $bench_only -eq 0 ] && ! "${emu[@]}" -m fmnist_edge verify "$run_dir"; then
    echo "FAIL: verify on $cpu" >&2; status=1
  fi
  if ! "${emu[@]}" -m fmnist_edge bench "$run_dir" "${bench_args[@]}" --runs 20 --warmup 2 \
      --json "$out/bench.json" --markdown "$out/bench.md" --plot "$out/bench.png" \
      || ! "$host_python" scripts/same_accuracy.py "$host_out/bench.json" "$out/bench.json"; then
    echo "FAIL: bench on $cpu" >&2; status=1
  fi
done
[ $status -eq 0 ] && echo "arm64 check passed on cortex-a72 and cortex-a76" || echo "arm64 check FAILED" >&2
exit $status
