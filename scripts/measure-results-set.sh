#!/usr/bin/env bash
# This CPU's submission set for results/ (issue 24 §1), measured quiet: pauses the background
# campaign (SIGSTOP; resumed on exit, whatever happens), then runs one PART into a scratch root and
# copies what is a result into results/ under the system's name. Parts (each minutes to an hour):
#   training   3 weak-scaling series, 1 and 2 ranks x 1 core, float32 (epoch time, 6 runs)
#   offline    the inference sweep, then LoadGen Offline at the official minimum, float32/bf16/int8
#   stream     LoadGen SingleStream at the official minimum, float32/bf16/int8
#   server     LoadGen Server: a sweep of batches that can fit 3dgan's fixed 250 ms latency bound, a
#              4-step QPS search of 60 s runs, then official runs (rules.md section 9's search:
#              up to 6 of 600 s each), float32/bf16/int8
#   score      the HEP-convention score report (harness score) into results/score/
#   angle      the variable-angle benchmark once its reference has shipped: the inference sweep at
#              batch 16 and 32, then LoadGen Offline at the official minimum, float32/bf16/int8
#              (not part of a CPU's required set: `harness check results --lacking` never names it)
#   missing    every part this system's results set lacks, at only the precisions it lacks
#              (`harness check results --lacking SYSTEM`)
# Usage: scripts/measure-results-set.sh PART [CAMPAIGN_PID]
#   PRECISIONS=int8 scripts/measure-results-set.sh server   re-measures one precision only
set -euo pipefail
cd "$(dirname "$0")/.."
part=${1:?usage: scripts/measure-results-set.sh training|offline|stream|server|score|angle|missing [CAMPAIGN_PID]}
pid=${2:-}
if [ "$part" = angle ] && [ ! -f reference_model/checkpoints/3dgan-angle-generator.weights.h5 ]; then
  echo "angle: the 3dgan-angle reference has not shipped yet (harness reference queue ships it after its second seed)" >&2
  exit 2
fi
harness=.venv/bin/harness
system=$($harness sysinfo --json 2>/dev/null | .venv/bin/python -c "import json, sys; print(json.load(sys.stdin)['system_name'])")
scratch=runs/results-set/$system  # one root for every part, so run and sweep numbers continue
mkdir -p "$scratch"
marker=$PWD/$scratch/.part-started  # only what this PART writes (newer) is copied into results/
touch "$marker"
if [ -n "$pid" ]; then
  kill -STOP "$pid"
  trap 'kill -CONT "$pid"' EXIT
fi
sleep 5
echo "[results-set] $part on $system; load before: $(cut -d' ' -f1-3 /proc/loadavg)"

inference() {  # the shipped reference, every precision gated against float32; BATCHES to sweep
  $harness run --mode inference --official --precision "${PRECISIONS:-float32,bfloat16,int8}" --streams 1,2 \
    --batch "${BATCHES:-128,256}" --duration 10 --results "$scratch" "$@"
}

measure() {
  case $1 in
    training)
      $harness data synth --out work-data/standin-fixed-seed0 --events 2000 --seed 0 --quiet
      for i in 1 2 3; do
        $harness run --mode scaling --scaling-type weak --ranks-list 1,2 --cores-per-rank 1 --epochs 3 \
          --max-steps-per-epoch 20 --warmup-epochs 0 --data work-data/standin-fixed-seed0 --results results
      done ;;
    offline) inference --scenarios Offline ;;
    stream) inference --scenarios SingleStream ;;
    server) BATCHES=16,32,64 inference --scenarios Server --server-search 4 --loadgen-duration 60 ;;
    score) $harness score --out "results/score/$system.json" ;;
    angle) BATCHES=${BATCHES:-16,32} inference --benchmark 3dgan-angle --scenarios Offline ;;
    missing)  # every part this system's set lacks, only the precisions it lacks (harness check results --lacking)
      while read -r p precisions; do
        echo "[results-set] part $p ${precisions:-(every precision)}"
        PRECISIONS=${precisions:-${PRECISIONS:-}} measure "$p" </dev/null
      done < <($harness check results --lacking "$system") ;;
    *) echo "unknown part $1" >&2; exit 2 ;;
  esac
}
measure "$part"
for benchmark in 3dgan 3dgan-angle; do  # inference: results only, not data or converted models
  if [ -d "$scratch/results/$system/$benchmark" ]; then
    dest=$PWD/results/results
    (cd "$scratch/results" && find "$system/$benchmark" -type f -newer "$marker" -exec cp --parents {} "$dest/" \;)
    mkdir -p results/systems
    cp "$scratch/systems/$system.json" "results/systems/$system.json"
  fi
done
echo "[results-set] $part done; load after: $(cut -d' ' -f1-3 /proc/loadavg)"
