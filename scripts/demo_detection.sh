#!/usr/bin/env bash
# The whole documented chain on built-in data, CPU-sized:
#   search (BN-only supernet + BN indicator) -> retrain the searched arch -> export its backbone
#   -> built-in COCO-format detection set -> `mim train` the demo detector from that backbone
#   -> `mim test` with plain NMS and with soft-NMS, printed side by side.
#
#   scripts/demo_detection.sh [WORK_DIR]        # default work_dirs/demo_detection; ~20 min on 2 CPU cores
#
# Re-running with the same WORK_DIR skips the steps whose outputs exist. PYTHON picks the interpreter
# (default: .venv/bin/python, else python). Every step prints its wall time; the summary is in WORK_DIR/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-work_dirs/demo_detection}
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}
mkdir -p "$W"
# one intra-op thread: on a small shared CPU, spinning OpenMP workers cost far more than they give
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
T0=$(date +%s)
step() { echo; echo "=== [$(( $(date +%s) - T0 ))s] $*"; }

step "1/6 search: BN-only supernet on the built-in digits, BN-indicator search"
# the detection set is made of digits, so the backbone is searched and retrained on them too
[ -f "$W/search/arch.json" ] || "$PY" tools/search.py --data digits --work-dir "$W/search" --search exact --quiet

step "2/6 retrain the searched arch from scratch"
[ -f "$W/retrain/best.pth" ] || "$PY" tools/retrain.py --data digits --arch "$W/search/arch.json" --work-dir "$W/retrain" --quiet

step "3/6 export its backbone"
[ -f "$W/backbone.pth" ] || "$PY" tools/export_backbone.py --arch "$W/search/arch.json" \
    --checkpoint "$W/retrain/best.pth" --out "$W/backbone.pth"

step "4/6 built-in COCO-format detection set"
[ -f "$W/coco_demo/annotations/instances_val2017.json" ] || "$PY" tools/make_coco_demo.py --out "$W/coco_demo" --num-train 800

D="$W/coco_demo/"
OPTS=(model.backbone.arch="$W/search/arch.json"
      model.backbone.init_cfg.checkpoint="$W/backbone.pth"
      train_dataloader.dataset.data_root="$D"
      val_dataloader.dataset.data_root="$D"
      test_dataloader.dataset.data_root="$D"
      val_evaluator.ann_file="${D}annotations/instances_val2017.json"
      test_evaluator.ann_file="${D}annotations/instances_val2017.json")

step "5/6 mim train the demo detector from the exported backbone"
CKPT=$(ls "$W"/det/epoch_*.pth 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$CKPT" ] || [ ! -f "$W/det/.done" ]; then
  "$PY" tools/det.py train configs/bnnas_effdet_demo.py --gpus 0 --work-dir "$W/det" --resume \
      --cfg-options "${OPTS[@]}"
  touch "$W/det/.done"
  CKPT=$(ls "$W"/det/epoch_*.pth | sort -V | tail -n 1)
fi

step "6/6 mim test: plain NMS, then soft-NMS"
for cfg in bnnas_effdet_demo bnnas_effdet_demo_softnms; do
  "$PY" tools/det.py test "configs/$cfg.py" --gpus 0 --checkpoint "$CKPT" --work-dir "$W/test_$cfg" \
      --cfg-options "${OPTS[@]}" 2>&1 | tee "$W/test_$cfg.log"
done

metric() { grep -o "coco/bbox_$2: [0-9.]*" "$W/test_$1.log" | tail -n 1 | awk '{print $2}'; }
{
  echo "demo chain: $(( $(date +%s) - T0 ))s wall, checkpoint $CKPT"
  printf '%-10s %8s %8s %8s\n' test mAP AP50 AP75
  printf '%-10s %8s %8s %8s\n' nms "$(metric bnnas_effdet_demo mAP)" "$(metric bnnas_effdet_demo mAP_50)" \
      "$(metric bnnas_effdet_demo mAP_75)"
  printf '%-10s %8s %8s %8s\n' soft-nms "$(metric bnnas_effdet_demo_softnms mAP)" \
      "$(metric bnnas_effdet_demo_softnms mAP_50)" "$(metric bnnas_effdet_demo_softnms mAP_75)"
} | tee "$W/summary.txt"
