#!/usr/bin/env bash
# The learning experiment on one GPU (`make experiment-1gpu`): the `learn` data (splits_learn), SFT warm-up and GRPO
# with the recipes/SmolLM2-135M-Instruct/*/learn-1gpu.yaml recipes, GRPO bounded by a wall-clock budget, then the
# probe curve, the 150 queries x 3 runs evaluation of none, rules, SFT and LESER with paired bootstrap intervals, the
# reward diagnosis and the run's samples re-scored under other reward settings (scripts/reward_whatif.py).
#
# Work that needs no GPU runs beside the GPU work: the model-free systems are evaluated while SFT trains, the SFT
# model while GRPO trains, the probe curve while the final checkpoint is evaluated. Each stage is skipped when its
# output exists, so a second call resumes (a finished GRPO run is kept: delete RUN/grpo to train again).
#
#   make data PROFILE=learn                       # once: dataset, index, relevance model, SmolLM2, splits_learn
#   GRPO_BUDGET_S=1800 bash scripts/gpu/learn_1gpu.sh
#
# Settings (environment): PY (python with the project's packages; default .venv/bin/python, else python3), SWIFT
# (default "$PY -m swift.cli.main"), RUN (runs/learn-1gpu), EVAL_OUT (runs/eval/learn-1gpu), GRPO_BUDGET_S (1800),
# EVAL_RUNS (3), EVAL_BATCH (75), PROBE_EVERY (20), CPU_THREADS (threads of each CPU-side job, 4), SPLITS
# (artifacts/synth/splits_learn), GRPO_SPLIT (the prompts GRPO trains on, $SPLITS/grpo.jsonl; `make experiment-1gpu
# GRPO_PROMPTS=low_recall` passes the null-result ones), and more arguments appended last (they win): SFT_ARGS and
# GRPO_ARGS for ms-swift (e.g. GRPO_ARGS="--learning_rate 2e-6"), EVAL_ARGS for every `python -m leser.evaluation`
# call. LESER_CONFIG (configs/leser.synth.yaml, the paper's reward) is the reward GRPO trains with and the diagnosis describes, e.g.
# configs/leser.synth.cost.yaml for the option expansion_cost; the what-if always starts from the paper's.
# Logs: RUN/*.log; stage times: RUN/timings.tsv.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ -z ${PY:-} ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
SWIFT=${SWIFT:-"$PY -m swift.cli.main"}
RUN=${RUN:-runs/learn-1gpu}
EVAL_OUT=${EVAL_OUT:-runs/eval/learn-1gpu}
GRPO_BUDGET_S=${GRPO_BUDGET_S:-1800}
EVAL_RUNS=${EVAL_RUNS:-3}
EVAL_BATCH=${EVAL_BATCH:-75}
PROBE_EVERY=${PROBE_EVERY:-20}
CPU_THREADS=${CPU_THREADS:-4}
DATA=artifacts/synth
SPLITS=${SPLITS:-$DATA/splits_learn}
GRPO_SPLIT=${GRPO_SPLIT:-$SPLITS/grpo.jsonl}
RECIPES=recipes/SmolLM2-135M-Instruct
export LESER_CONFIG=${LESER_CONFIG:-configs/leser.synth.yaml}

for need in "$SPLITS/sft.jsonl" "$GRPO_SPLIT" "$SPLITS/eval.jsonl" "$SPLITS/probe.jsonl" \
  "$DATA/index/manifest.json" "$DATA/relevance/model.txt" models/smollm2-135m-instruct/config.json; do
  [[ -e $need ]] || { echo "error: $need is missing: run 'make data PROFILE=learn' first" >&2; exit 2; }
done
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "error: no CUDA GPU visible to $PY (the CPU experiment is 'make experiment')" >&2
  exit 2
fi

mkdir -p "$RUN" "$EVAL_OUT"
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
TIMINGS=$RUN/timings.tsv
[[ -e $TIMINGS ]] || printf 'stage\tseconds\n' > "$TIMINGS"
timed() {  # timed NAME LOG CMD...: run CMD, log to LOG, record its wall time
  local name=$1 log=$2 start rc=0
  shift 2
  start=$(date +%s)
  "$@" > "$log" 2>&1 || rc=$?
  printf '%s\t%s\n' "$name" $(( $(date +%s) - start )) >> "$TIMINGS"
  if (( rc != 0 )); then
    echo "error: stage $name failed (exit $rc); the end of $log:" >&2
    tail -n 25 "$log" >&2
    return "$rc"
  fi
}
# Every evaluation uses the same options, so that the final call finds each system in the partial runs' results
# (leser/evaluation/reuse.py: a system is reused only when every option and input is the same).
EVAL=("$PY" -m leser.evaluation --dataset "$DATA" --index "$DATA/index" --relevance "$DATA/relevance"
  --split "$SPLITS/eval.jsonl" --runs "$EVAL_RUNS" --max-new-tokens 192 --batch-size "$EVAL_BATCH" ${EVAL_ARGS:-})
cpu_job() { ( export OMP_NUM_THREADS=$CPU_THREADS OMP_WAIT_POLICY=PASSIVE; "$@" ); }

echo "== [1gpu] model-free systems on the CPU (background) -> $EVAL_OUT/base"
cpu_job timed eval_base "$RUN/eval_base.log" "${EVAL[@]}" --systems none,rules --out "$EVAL_OUT/base" &
base_job=$!

if [[ ! -e $RUN/sft/last ]]; then
  echo "== [1gpu] SFT warm-up: $RECIPES/sft/learn-1gpu.yaml -> $RUN/sft"
  timed sft "$RUN/sft.log" $SWIFT sft "$RECIPES/sft/learn-1gpu.yaml" --output_dir "$RUN/sft" \
    --dataset "$SPLITS/sft.jsonl" ${SFT_ARGS:-}
  "$PY" scripts/latest_checkpoint.py "$RUN/sft" --link "$RUN/sft/last"
fi

echo "== [1gpu] SFT model on the eval split (background) -> $EVAL_OUT/sft"
timed eval_sft "$RUN/eval_sft.log" "${EVAL[@]}" --systems "sft:$RUN/sft/last" --out "$EVAL_OUT/sft" &
sft_job=$!

if [[ ! -e $RUN/grpo/last ]]; then
  echo "== [1gpu] GRPO for ${GRPO_BUDGET_S} s: $RECIPES/grpo/learn-1gpu.yaml -> $RUN/grpo"
  ( export LESER_TIME_BUDGET_S=$GRPO_BUDGET_S
    timed grpo "$RUN/grpo.log" $SWIFT rlhf "$RECIPES/grpo/learn-1gpu.yaml" \
      --model "$RUN/sft/last" --output_dir "$RUN/grpo" --dataset "$GRPO_SPLIT" ${GRPO_ARGS:-} )
  "$PY" scripts/latest_checkpoint.py "$RUN/grpo" --link "$RUN/grpo/last"
fi
"$PY" scripts/plot_grpo.py "$RUN/grpo" --out "$RUN/grpo_curves.png" > /dev/null

echo "== [1gpu] probe curve every $PROBE_EVERY steps (background) -> $RUN/probe"
timed probe "$RUN/probe.log" "$PY" scripts/probe_curve.py --grpo "$RUN/grpo" --start "$RUN/sft/last" \
  --split "$SPLITS/probe.jsonl" --out "$RUN/probe" --every "$PROBE_EVERY" --batch-size 50 &
probe_job=$!
echo "== [1gpu] reward diagnosis (background) -> $RUN/diagnosis"
cpu_job timed diagnosis "$RUN/diagnosis.log" "$PY" scripts/diagnose_reward.py --split "$GRPO_SPLIT" \
  --grpo "$RUN/grpo" --config "$LESER_CONFIG" --out "$RUN/diagnosis" &
diagnosis_job=$!
echo "== [1gpu] the run's samples under other reward settings (background) -> $RUN/whatif"
completions=$(ls -t "$RUN"/grpo/v*/completions.jsonl | head -n 1)
cpu_job timed whatif "$RUN/whatif.log" "$PY" scripts/reward_whatif.py --completions "$completions" \
  --out "$RUN/whatif" &
whatif_job=$!
echo "== [1gpu] LESER model on the eval split -> $EVAL_OUT/leser"
timed eval_leser "$RUN/eval_leser.log" "${EVAL[@]}" --systems "leser:$RUN/grpo/last" --out "$EVAL_OUT/leser"

failed=0
for job in $base_job $sft_job $probe_job $diagnosis_job $whatif_job; do wait "$job" || failed=1; done
(( failed == 0 )) || { echo "error: a background stage failed (see $RUN/*.log)" >&2; exit 1; }

echo "== [1gpu] results table with paired intervals -> $EVAL_OUT"
timed assemble "$RUN/eval.log" "${EVAL[@]}" --systems "none,rules,sft:$RUN/sft/last,leser:$RUN/grpo/last" \
  --reuse-from "$EVAL_OUT/base" --reuse-from "$EVAL_OUT/sft" --reuse-from "$EVAL_OUT/leser" --out "$EVAL_OUT"
cat "$EVAL_OUT/results.md"
echo "== [1gpu] abstention per query level and the specific - broad gap -> $EVAL_OUT/abstention_gap.md"
"$PY" scripts/abstention_gap.py "rules=$EVAL_OUT/generations/rules.jsonl" \
  "sft=$(ls -t "$EVAL_OUT"/generations/sft_*.jsonl | head -n 1)" \
  "leser=$(ls -t "$EVAL_OUT"/generations/leser_*.jsonl | head -n 1)" \
  --out "$EVAL_OUT/abstention_gap.json" | tee "$EVAL_OUT/abstention_gap.md"
echo "== [1gpu] done: $EVAL_OUT/results.md, $EVAL_OUT/abstention_gap.md, $RUN/probe/probe.png, $RUN/grpo_curves.png, $TIMINGS"
