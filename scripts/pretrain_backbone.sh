#!/usr/bin/env bash
# Pretrain the CPU-scale backbone shipped in assets/backbones/ (docs/pretrained_backbone.md, issue 13 step 1):
#   1. demos   scripted-expert demonstrations of libero_spatial, libero_goal (task 3 left out: its expert succeeds
#              3/50) and libero_10 at 128²: 2, 1 and 1 per task (~45 s per episode here; libero_10's are longer)
#              (pion-gen-demos; resumable, cached)
#   2. merge   the three suites into one multi-task LeRobot dataset (rebuilt each time, atomically)
#   3. train   pion-train +experiment=pretrain_backbone (AdamW, the demo's CPU-scale VLA-Adapter; resumable)
#   4. export  pion-export-backbone: the latest checkpoint's VLM -> $OUT (.safetensors + .json)
#   5. plot    the pretraining loss curve -> docs/img/pretrain_loss.png
#   sanity     (not part of `all`) 10 libero_object task-0 demos, then benchmarks/backbone_sanity.py: held-out L1
#              after fine-tuning a fresh head, random vs pretrained init; plots docs/img/pretrain_{loss,sanity}.png
# Never libero_object: that is the fine-tuning target (configs/experiment/demo.yaml).
#
#   bash scripts/pretrain_backbone.sh                 # all stages; re-running resumes where it stopped
#   bash scripts/pretrain_backbone.sh demos libero_goal   # one stage (demos: optionally some suites only)
#   bash scripts/pretrain_backbone.sh train steps=500     # train: extra arguments are pion-train overrides
# Environment: DEMOS_PER_TASK (set: the same count for every suite), DEMO_CACHE (~/.cache/pion-vla/demos), OUT (the shipped file), PYTHON (.venv).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 MUJOCO_GL=${MUJOCO_GL:-egl}
PY=${PYTHON:-.venv/bin/python}
BIN=$(dirname "$PY")
DEMO_CACHE=${DEMO_CACHE:-$HOME/.cache/pion-vla/demos}
MERGED=$DEMO_CACHE/pretrain_merged_r128_s0
RUN_DIR=outputs/pretrain_backbone/run
OUT=${OUT:-assets/backbones/vla_adapter_cpu_libero128.safetensors}
SUITES=(libero_spatial libero_goal libero_10)
declare -A TASKS=([libero_spatial]=all [libero_goal]='[0,1,2,4,5,6,7,8,9]' [libero_10]=all)
declare -A PER_TASK=([libero_spatial]=2 [libero_goal]=1 [libero_10]=1)
if [ -n "${DEMOS_PER_TASK:-}" ]; then for s in "${SUITES[@]}"; do PER_TASK[$s]=$DEMOS_PER_TASK; done; fi

stamp() { echo "[pretrain_backbone] $(date -u +%H:%M:%S) $*"; }

demos() {
  local suites=("$@")
  [ ${#suites[@]} -gt 0 ] || suites=("${SUITES[@]}")
  for suite in "${suites[@]}"; do
    stamp "demos: $suite, ${PER_TASK[$suite]} per task"
    "$BIN/pion-gen-demos" env="$suite" "tasks=${TASKS[$suite]}" episodes_per_task="${PER_TASK[$suite]}" \
      resolution=128 seed=0 out="$DEMO_CACHE/pretrain_${suite}_r128_s0" progress=false
  done
}

merge() {
  stamp "merge -> $MERGED"
  local roots=()
  for suite in "${SUITES[@]}"; do roots+=("$DEMO_CACHE/pretrain_${suite}_r128_s0/dataset"); done
  "$PY" - "$MERGED" "${roots[@]}" <<'EOF'
import os, shutil, sys
from pathlib import Path
from lerobot.datasets.aggregate import aggregate_datasets
out, roots = Path(sys.argv[1]), [Path(p).resolve() for p in sys.argv[2:]]
missing = [str(r) for r in roots if not (r / "meta" / "info.json").is_file()]
if missing:
    sys.exit(f"error: no generated dataset at {missing}; run the demos stage first")
tmp = out.with_name(out.name + ".tmp")
shutil.rmtree(tmp, ignore_errors=True)
aggregate_datasets(repo_ids=["local/pretrain_backbone"] * len(roots), aggr_repo_id="local/pretrain_backbone",
                   roots=roots, aggr_root=tmp)
shutil.rmtree(out, ignore_errors=True)
os.replace(tmp, out)
print(f"merged {len(roots)} datasets into {out}")
EOF
}

train() {
  stamp "train: pion-train +experiment=pretrain_backbone $*"
  "$BIN/pion-train" +experiment=pretrain_backbone data.root="$MERGED" resume=true log.progress=false "$@"
}

export_backbone() {
  local ckpt
  ckpt=$(ls -d "$RUN_DIR"/checkpoints/step_*/pretrained 2>/dev/null | sort | tail -1)
  [ -n "$ckpt" ] || { echo "error: no checkpoint under $RUN_DIR; run the train stage first" >&2; exit 2; }
  stamp "export $ckpt -> $OUT"
  "$BIN/pion-export-backbone" "$ckpt" "$OUT" \
    --note "bash scripts/pretrain_backbone.sh (demos per task: ${PER_TASK[*]}): AdamW on libero_spatial, libero_goal, libero_10 at 128²"
}

plot() {
  stamp "plot $RUN_DIR/metrics.jsonl -> docs/img/pretrain_loss.png"
  "$PY" -c 'import sys; from pathlib import Path; from envs.demo import plot_loss; plot_loss(Path(sys.argv[1]), Path(sys.argv[2]))' \
    "$RUN_DIR/metrics.jsonl" docs/img/pretrain_loss.png
}

sanity() {
  local data=$DEMO_CACHE/sanity_libero_object_t0_r128_s0
  stamp "sanity: libero_object task 0 demos -> $data"
  "$BIN/pion-gen-demos" env=libero_object 'tasks=[0]' episodes_per_task=10 resolution=128 seed=0 out="$data" \
    progress=false
  stamp "sanity: fine-tuning arms $*"
  "$PY" benchmarks/backbone_sanity.py --data "$data/dataset" --train-episodes 0-7 --heldout-episodes 8-9 \
    --pretrain-metrics "$RUN_DIR/metrics.jsonl" "$@"
}

stage=${1:-all}
[ $# -gt 0 ] && shift
case $stage in
  demos) demos "$@" ;;
  merge) merge ;;
  train) train "$@" ;;
  export) export_backbone ;;
  plot) plot ;;
  sanity) sanity "$@" ;;
  all) demos; merge; train "$@"; export_backbone; plot ;;
  *) echo "error: unknown stage '$stage' (demos | merge | train | export | plot | all | sanity)" >&2; exit 2 ;;
esac
stamp "done: $stage"
