#!/usr/bin/env bash
# DROID end to end in franky-sim, four stages (docs/droid_sim_report.md has a measured run):
#   record  pion-robot drives franky-sim with the scripted instruction-following controller
#           (envs/droid_sim/task.py) and records EPISODES episodes per instruction (pion_droid LeRobot datasets),
#           merged into <run>/dataset
#   train   pion-train +experiment=droid_sim_train: the CPU-scale DROID flow-matching policy on that dataset
#   eval    pion-serve serves the last checkpoint; pion-robot runs it in franky-sim (safety filter on, --arm),
#           TRIALS episodes per instruction, recorded to <run>/eval/<i>
#   report  python -m envs.droid_sim.report: success (Wilson CI), safety flags, loop timing -> <run>/report.md
#
#   bash scripts/droid_sim_demo.sh [RUN_DIR]                       # all stages (~17 min on 2 cores)
#   STAGES="record" bash scripts/droid_sim_demo.sh RUN_DIR          # one stage at a time (same RUN_DIR)
#   EPISODES=2 TRIALS=1 TRAIN_STEPS=60 bash scripts/droid_sim_demo.sh /tmp/x   # smoke size (tests, -m slow)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-outputs/droid_sim/$(date +%Y-%m-%d_%H-%M-%S)}
STAGES=${STAGES:-record train eval report}
EPISODES=${EPISODES:-20}            # recorded demonstrations per instruction
TRIALS=${TRIALS:-10}                # evaluation trials per instruction
TRAIN_STEPS=${TRAIN_STEPS:-1200}
NOISE=${NOISE:-0.03}                # demonstrator velocity noise (normalised units)
EXPLORE=${EXPLORE:-0.15}            # demonstrator's random-direction first chunk (envs/droid_sim/task.py)
BIN=${BIN:-.venv/bin}
export HF_HUB_OFFLINE=1 MUJOCO_GL=${MUJOCO_GL:-egl}
INSTRUCTIONS=("move to the left target" "move to the right target")
mkdir -p "$RUN/logs"
RUN=$(cd "$RUN" && pwd)

SIM_PID="" SERVE_PID=""
cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null || true
  [ -n "$SIM_PID" ] && kill -- "-$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null || true
}
trap cleanup EXIT

start_sim() {  # franky-sim on a fresh loopback address; sets HOST
  HOST="127.$((RANDOM % 150 + 100)).$(($$ % 250)).$((RANDOM % 250 + 1))"
  setsid "$BIN/franky-sim" -s mujoco --hostname "$HOST" >"$RUN/logs/franky_sim_$1.log" 2>&1 &
  SIM_PID=$!
  for _ in $(seq 120); do
    grep -q "Connect to the server" "$RUN/logs/franky_sim_$1.log" && return 0
    sleep 0.5
  done
  echo "error: franky-sim did not start (see $RUN/logs/franky_sim_$1.log)" >&2
  exit 1
}

stop_sim() { kill -- "-$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; SIM_PID=""; }

timed() {  # timed <stage> <command...>: run, and add the wall time to timings.json
  local stage=$1 t0 t1
  shift
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  "$BIN/python" - "$RUN/timings.json" "$stage" "$(echo "$t1 - $t0" | bc)" <<'PY'
import json, sys
from pathlib import Path
path, stage, secs = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
data = json.loads(path.read_text()) if path.is_file() else {}
data[stage] = round(secs, 1)
path.write_text(json.dumps(data, indent=1))
PY
}

robot() {  # robot <log> <args...>: pion-robot against the running franky-sim, live (--arm)
  local log=$1
  shift
  "$BIN/pion-robot" +experiment=droid_sim_robot robot.host="$HOST" \
    "$@" --arm >"$log" 2>&1 || { tail -20 "$log" >&2; return 1; }
}

record() {
  start_sim record
  local roots=()
  for i in "${!INSTRUCTIONS[@]}"; do
    rm -rf "$RUN/record/$i"
    robot "$RUN/logs/record_$i.log" prompt="${INSTRUCTIONS[$i]}" episodes="$EPISODES" \
      policy=envs.droid_sim.task:ScriptedReachPolicy +policy_kwargs.noise="$NOISE" \
      +policy_kwargs.explore="$EXPLORE" +policy_kwargs.seed="$i" \
      record.root="$RUN/record/$i"
    roots+=("$RUN/record/$i")
  done
  stop_sim
  rm -rf "$RUN/dataset"
  "$BIN/python" -c "import sys; from envs.droid_sim.episodes import merge_recordings; merge_recordings(sys.argv[2:], sys.argv[1])" \
    "$RUN/dataset" "${roots[@]}"
}

train() {
  "$BIN/pion-train" +experiment=droid_sim_train data.root="$RUN/dataset" out_dir="$RUN/train" run_name=run \
    steps="$TRAIN_STEPS" log.progress=false 2>&1 | tee "$RUN/logs/train.log" | grep -E "^\[pion-train\]|error" || true
  ls -d "$RUN"/train/run/checkpoints/step_*/pretrained >/dev/null
}

evaluate() {
  local ckpt port
  ckpt=$(ls -d "$RUN"/train/run/checkpoints/step_*/pretrained | sort | tail -1)
  port=$((20000 + RANDOM % 20000))
  OMP_NUM_THREADS=${SERVE_THREADS:-1} "$BIN/pion-serve" policy="$ckpt" action_space=droid_joint_velocity bind="tcp://127.0.0.1:$port" \
    >"$RUN/logs/serve.log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 120); do grep -q "serving policy" "$RUN/logs/serve.log" && break; sleep 0.5; done
  grep -q "serving policy" "$RUN/logs/serve.log" || { tail -20 "$RUN/logs/serve.log" >&2; exit 1; }
  start_sim eval
  for i in "${!INSTRUCTIONS[@]}"; do
    rm -rf "$RUN/eval/$i"
    robot "$RUN/logs/eval_$i.log" prompt="${INSTRUCTIONS[$i]}" episodes="$TRIALS" \
      policy="tcp://127.0.0.1:$port" record.root="$RUN/eval/$i"
  done
  stop_sim
  kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=""
}

"$BIN/python" - "$RUN/run.json" "$*" "$STAGES" "$EPISODES" "$TRIALS" "$TRAIN_STEPS" "$NOISE" "$EXPLORE" <<'PY'
import json, os, platform, subprocess, sys, time
from pathlib import Path
path = Path(sys.argv[1])
info = json.loads(path.read_text()) if path.is_file() else {}
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout
env = f"EPISODES={sys.argv[4]} TRIALS={sys.argv[5]} TRAIN_STEPS={sys.argv[6]} NOISE={sys.argv[7]} EXPLORE={sys.argv[8]}"
info.setdefault("stages", {})[sys.argv[3]] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
info.update(command=f"{env} bash scripts/droid_sim_demo.sh {sys.argv[2]}".strip(),
            commit=commit + (" (+ uncommitted changes)" if dirty else ""),
            machine=f"{platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}",
            date=time.strftime("%Y-%m-%d", time.gmtime()))
path.write_text(json.dumps(info, indent=1))
PY

for stage in $STAGES; do
  case $stage in
    record) timed record record ;;
    train) timed train train ;;
    eval) timed eval evaluate ;;
    report) "$BIN/python" -m envs.droid_sim.report "$RUN" ;;
    *) echo "error: unknown stage '$stage' (record | train | eval | report)" >&2; exit 2 ;;
  esac
done
