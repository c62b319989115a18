#!/usr/bin/env bash
# The quiet measurements behind the README's table, in one go: pauses the reference campaign
# (SIGSTOP; resumed on exit, whatever happens) so that nothing else of ours runs, then times the
# training step, a bf16 weak-scaling series and the inference sweep. Usage:
#   scripts/measure-quiet.sh OUT_DIR [CAMPAIGN_PID]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/measure-quiet.sh OUT_DIR [CAMPAIGN_PID]}
pid=${2:-}
mkdir -p "$out"
if [ -n "$pid" ]; then
  kill -STOP "$pid"
  trap 'kill -CONT "$pid"' EXIT
fi
sleep 5
uptime | tee "$out/uptime-before.txt"
.venv/bin/pytest -q tests/performance/test_bench_model.py -k "training_step and not angle" \
  --benchmark-enable -p no:randomly --benchmark-columns=mean,stddev,rounds 2>&1 | tee "$out/step.txt" | tail -12
.venv/bin/harness run --mode scaling --scaling-type weak --ranks-list 1,2 --cores-per-rank 1 --epochs 3 \
  --max-steps-per-epoch 20 --warmup-epochs 0 --data work-data/standin-fixed-seed0 \
  --results "$out/scaling-bf16" --precision mixed_bfloat16 > "$out/scaling-bf16.log" 2>&1
grep -E "efficiency|samples/s" "$out/scaling-bf16.log" | tail -8
# the shipped reference (against the release candidate it was shipped against, while that awaits
# its second seed); before one ships, the campaign's best generator so far, copied while the
# campaign is paused. Every precision is gated against float32 from the same latents, and the
# checkpoint's own target is reported apart.
shipped=reference_model/checkpoints/3dgan-generator.weights.h5
if [ -f "$shipped" ]; then
  target=$(.venv/bin/python -c "from pathlib import Path; from harness.main_job import _candidate_target; print(_candidate_target(Path('$shipped'), '3dgan') or '')")
  checkpoint_args=(${target:+--target "$target"})
  precisions=float32,bfloat16,int8
else
  mkdir -p "$out/campaign-best"
  cp benchmark/convergence/state/3dgan-seed1-best.weights.h5 benchmark/convergence/state/3dgan-seed1-best.json \
    "$out/campaign-best/"
  checkpoint_args=(--checkpoint "$out/campaign-best/3dgan-seed1-best.weights.h5")
  precisions=float32,bfloat16
fi
.venv/bin/harness run --mode inference "${checkpoint_args[@]}" --precision "$precisions" \
  --results "$out/inference" --streams 1,2 --batch 128,256 --duration 10 --scenarios Offline \
  --loadgen-duration 10 > "$out/inference.log" 2>&1
grep -E "^\[inference\] (\(a\)|\(b\)|best|MFU|per core|LoadGen Offline)|ms/shower" "$out/inference.log" | tail -24
uptime | tee "$out/uptime-after.txt"
