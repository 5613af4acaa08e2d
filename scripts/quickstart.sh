#!/usr/bin/env bash
# The main job on its embedded default (configs/experiment/demo.yaml): sets up the environment if needed
# (idempotent), generates scripted-expert demonstrations of LIBERO-Object task 0 (cached in
# ~/.cache/pion-vla/demos for later runs), trains the CPU-scale VLA-Adapter on them, evaluates it on held-out
# init states and writes report.md (success + CI, loss curve, spectral summary, rollout MP4) under outputs/demo/.
# Extra arguments are hydra overrides for pion-train, e.g. `bash scripts/quickstart.sh steps=300 optim=pion`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export HF_HUB_OFFLINE=1 MUJOCO_GL=${MUJOCO_GL:-egl}
exec .venv/bin/pion-train +experiment=demo "$@"
