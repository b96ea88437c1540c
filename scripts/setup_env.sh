#!/usr/bin/env bash
# Create .venv with everything bnnas, its tests and its mmdet plugin need. Idempotent: a second run is a no-op.
# mmcv 2.1.0 has no wheel on PyPI and its setup.py predates torch 2.14's C++20 headers, so we build it once from the
# sdist with the standard raised to C++20 and keep the wheel in ~/.cache/bnnas (keyed by mmcv, torch, python and
# "cpu"). Its ops are built for the CPU only, on every machine: mmcv compiles CUDA kernels whenever torch sees a GPU
# (FORCE_CUDA=0 does not stop it), which needs nvcc and half an hour, and bnnas's detector path needs none of them
# (focal loss in PyTorch, hard NMS in torchvision; soft-NMS is a CPU op in mmcv anyway).
# Every version installed comes from constraints.txt (passed to each pip install with -c).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${BNNAS_VENV:-.venv}
PY=${PYTHON:-python3}
PINS=$PWD/constraints.txt
pinned() { sed -n "s/^$1==\([^ ]*\).*/\1/p" "$PINS"; }
TORCH=$(pinned torch); MMCV=$(pinned mmcv)
: "${TORCH:?no torch== pin in constraints.txt}" "${MMCV:?no mmcv== pin in constraints.txt}"
STAMP="$VENV/.bnnas-setup-$(sha1sum pyproject.toml constraints.txt scripts/setup_env.sh | sha1sum | cut -c1-12)"
# Fashion-MNIST, the demo's data, is a Debian package; without apt (or root) the demo falls back to the digits.
if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null \
   && [ "$(id -u)" = 0 ]; then
  echo "[setup] installing Fashion-MNIST (Debian package dataset-fashion-mnist)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; } >/dev/null 2>&1 \
    || echo "[setup] note: could not install dataset-fashion-mnist; the demo will use the built-in digits"
fi
[ -f "$STAMP" ] && exit 0

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
pip install -c "$PINS" setuptools wheel
pip install -c "$PINS" torch torchvision

PYTAG=$("$VENV/bin/python" -c 'import sys;print("cp%d%d"%sys.version_info[:2])')
CACHE=${BNNAS_CACHE:-$HOME/.cache/bnnas}/wheels/mmcv-$MMCV-torch-$TORCH-$PYTAG-cpu
if ! ls "$CACHE"/mmcv-*.whl >/dev/null 2>&1; then
  echo "[setup] building mmcv $MMCV with CPU ops (about 11 min on 2 cores; cached in $CACHE)"
  pip install -c "$PINS" numpy ninja packaging addict yapf opencv-python-headless pyyaml
  WORK=$(mktemp -d)
  pip download -c "$PINS" --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV" -d "$WORK"
  tar -xzf "$WORK"/mmcv-$MMCV.tar.gz -C "$WORK"
  sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$WORK/mmcv-$MMCV/setup.py"
  mkdir -p "$CACHE"
  (cd "$WORK/mmcv-$MMCV" && CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      "$OLDPWD/$VENV/bin/python" -m pip wheel -q --no-build-isolation --no-deps . -w "$WORK/dist")
  mv "$WORK"/dist/mmcv-*.whl "$CACHE"/
  rm -rf "$WORK"
fi
pip install -c "$PINS" "$CACHE"/mmcv-*.whl
pip install -c "$PINS" -e ".[dev]"  # dev = det + bench + deploy (onnx, onnxscript, onnxruntime) + test tools
touch "$STAMP"
echo "[setup] ready: $VENV"
