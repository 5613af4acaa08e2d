#!/usr/bin/env bash
# The main job on its embedded default: sets up the environment if needed (idempotent), then runs the
# scripted expert on LIBERO-Object task 0 (init states 0 and 1) and writes MP4s + summary.json to outputs/rollout.
# Extra arguments are hydra overrides for pion-rollout, e.g. `bash scripts/quickstart.sh task_id=3 init_states=[5]`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/pion-rollout init_states='[0,1]' "$@"
