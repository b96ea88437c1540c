#!/usr/bin/env bash
# One prepared command for a machine with a CUDA GPU: on a new GPU machine, run this first. It runs every CUDA path
# of bnnas once (device, bench rows 1-2, 4 and 5, retraining, torchrun with NCCL, the detector through mim) and
# writes OUT_DIR/gpu_check.json after every step; details in scripts/gpu_check.py.
#
#   scripts/gpu_check.sh OUT_DIR             # <= 5 min on one GPU; exit status 2 if any step failed
#   scripts/gpu_check.sh --smoke OUT_DIR     # the same steps on the CPU at toy sizes (what CI runs)
#
# PYTHON picks the interpreter (default: the checkout's .venv/bin/python, else python).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python )}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" "$ROOT/scripts/gpu_check.py" "$@"
