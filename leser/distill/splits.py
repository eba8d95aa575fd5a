"""Training splits: SFT warm-up, rejection-sampled SFT-LLM, GRPO and evaluation queries (ms-swift JSONL).

`python -m leser.distill --dataset DIR --index INDEX --relevance MODEL --profile cpu --out DIR/splits`

1. Queries are split disjointly: evaluation first (on synthetic data a share of whole intents is held out and only
   ever appears in eval), then SFT candidates, then GRPO queries.
2. Each query's prompt carries the engine's top items (`leser.prompts.prompts_for`; the profile's
   `max_context_items` is the one setting of how many).
3. The teacher answers every SFT candidate; the answers go through rejection sampling in the paper's stages for its
   SFT-LLM baseline (semantic relevance, then retrieval increment): (a) the validation gate passes, (b) the
   relevance of the merged top k is not lower than the query's own, Rel(Y) >= Rel(q), (c) the expansions recall
   strictly more items than the query, Ret(Y) > Ret(q). An abstention has Y = {q}, so Ret(Y) = Ret(q) and it never
   passes (c). `sft.jsonl` (warm-up: teach the format, abstentions included) keeps stage (a), `sft_llm.jsonl` (the
   SFT-LLM baseline) keeps stage (c). The counts per stage go to stats.json (`rejection_sampling_stages`).

Rows: {"messages": [...], "query": q, ...extra columns}. SFT rows end with the assistant message; GRPO and eval rows
end with the user message. Every file is written atomically; teacher answers and their rewards are appended to
OUT/.work/scored.<teacher>.<inputs hash>.jsonl so an interrupted run resumes without asking the teacher again (a
changed index, relevance model, settings or profile gives a new hash, hence fresh scores).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_prep.cli import ArgumentParser
from data_prep.formats import atomic_write_path, load_dataset, write_json
from leser.distill.teachers import REASONING_STYLES, OpenAITeacher, RulesTeacher, rules_teacher
from leser.prompts import MAX_CONTEXT_ITEMS, PromptStats, format_completion, prompt_sizing, prompts_for
from leser.reward import LeserScorer
from leser.settings import Settings, load_settings, open_backend

log = logging.getLogger(__name__)

SPLIT_FILES = ("sft.jsonl", "sft_llm.jsonl", "grpo.jsonl", "eval.jsonl")
# stats.json `rejection_sampling_stages`: candidates left after each stage, every stage listed even when it keeps 0
REJECTION_STAGES = (
    "0_candidates",
    "1_teacher_answered",
    "2_gate_pass",  # -> sft.jsonl
    "3_relevance_not_lower_than_query",  # Rel(Y) >= Rel(q)
    "4_retrieval_larger_than_query",  # Ret(Y) > Ret(q) -> sft_llm.jsonl
)


@dataclass(frozen=True)
class Profile:
    """How many queries each split asks for; a smaller query log gives fewer, and stats.json says so."""

    name: str
    sft_queries: int
    grpo_queries: int
    eval_queries: int
    max_context_items: int  # items in each prompt (the paper: up to 10)
    held_out_intent_share: float = 0.1  # share of intents whose queries only appear in eval (synthetic data)
    eval_share_cap: float = 0.2  # eval takes at most this share of the query log
    max_abstention_share: float = 1.0  # cap on empty answers among the SFT rows (1.0: the teacher's own mix)
    probe_queries: int = 0  # a small split disjoint from all others, for learning curves (probe.jsonl)
    teacher_reasoning: str = "intent_first"  # order of the rules teacher's reasoning (RulesTeacher.reasoning)


PROFILES = {
    # CPU demo with SmolLM2-135M on 2 cores: short prompts (5 items) and a few hundred rows keep SFT to minutes.
    # Abstentions capped at 25%: trained on the teacher's mix (107 of 200 rows empty), the 135M policy abstained in
    # most GRPO samples from step 1, so most groups had four equal rewards and no advantage to learn from.
    "cpu": Profile(
        "cpu",
        sft_queries=200,
        grpo_queries=300,
        eval_queries=150,
        max_context_items=5,
        max_abstention_share=0.25,
    ),
    # The learning experiment (`make experiment`, recipes/SmolLM2-135M-Instruct/*/learn.yaml): sized so that GRPO
    # gets hundreds of several-prompt steps on 2 CPU cores. 3 context items keep prompts short (GRPO's cost is
    # dominated by the tokens of prompt + completion), 600 SFT candidates give the warm-up enough distinct queries to
    # learn when to abstain, and 1,000 GRPO queries are never revisited within the run. 150 eval queries (the
    # issue's protocol) and a disjoint 50-query probe for the curve of true NDCG over the GRPO steps. Abstentions
    # capped at 35%: the teacher's own mix (51%) made a warm-up 0.032 NDCG@10 worse (paired, interval excluding 0;
    # docs/experiment/sft_abstention_cap/), by copying its abstentions on queries the engine finds nothing for.
    # Evidence-first reasoning: the warm-up then tells specific from broad queries (abstains 77% / 5%, against 64% /
    # 33% with the intent first; docs/experiment/sft_evidence_first/).
    "learn": Profile(
        "learn",
        sft_queries=600,
        grpo_queries=1000,
        eval_queries=150,
        max_context_items=3,
        max_abstention_share=0.35,
        probe_queries=50,
        teacher_reasoning="evidence_first",
    ),
    # The paper: 10,000 SFT examples, 100,000 GRPO queries, 10,000 evaluation queries, 10 context items.
    "paper": Profile(
        "paper",
        sft_queries=10_000,
        grpo_queries=100_000,
        eval_queries=10_000,
        max_context_items=MAX_CONTEXT_ITEMS,
    ),
}


def split_queries(
    queries: list[str], intent_ids: list[str | None], profile: Profile, seed: int
) -> tuple[dict[str, list[str]], set[str], dict[str, int]]:
    """Assign queries to eval, probe (when the profile asks), sft and grpo, all disjoint. Returns (splits,
    held-out intents, shortfalls).

    Held-out intents: a `held_out_intent_share` of the intents (when the log has intent ids) whose queries fill up
    to half of eval; their other queries are dropped so that no training split sees those intents.
    """
    rng = random.Random(seed)
    order = list(range(len(queries)))
    rng.shuffle(order)
    n_eval = min(profile.eval_queries, max(1, int(len(queries) * profile.eval_share_cap)))
    intents = sorted({i for i in intent_ids if i is not None})
    held_out = (
        set(rng.sample(intents, int(len(intents) * profile.held_out_intent_share))) if intents else set()
    )
    held_rows = [i for i in order if intent_ids[i] in held_out]
    eval_rows = held_rows[: n_eval // 2]
    taken = set(held_rows)
    rest = [i for i in order if i not in taken]
    eval_rows += rest[: n_eval - len(eval_rows)]
    used_eval = set(eval_rows)
    rest = [i for i in rest if i not in used_eval]
    probe_rows = rest[: profile.probe_queries]
    rest = rest[profile.probe_queries :]
    n_sft = (
        min(profile.sft_queries, len(rest) // 2)
        if profile.grpo_queries
        else min(profile.sft_queries, len(rest))
    )
    sft_rows = rest[:n_sft]
    grpo_rows = rest[n_sft : n_sft + profile.grpo_queries]
    splits = {
        "eval": [queries[i] for i in eval_rows],
        "sft": [queries[i] for i in sft_rows],
        "grpo": [queries[i] for i in grpo_rows],
    }
    wanted = {"eval": profile.eval_queries, "sft": profile.sft_queries, "grpo": profile.grpo_queries}
    if profile.probe_queries:
        splits["probe"] = [queries[i] for i in probe_rows]
        wanted["probe"] = profile.probe_queries
    shortfalls = {name: wanted[name] - len(rows) for name, rows in splits.items() if len(rows) < wanted[name]}
    return splits, held_out, shortfalls


def last_stage_passed(breakdown: dict) -> str:
    """The last of REJECTION_STAGES a scored teacher answer passes (a `RewardBreakdown` as a dict): the gate, then
    the paper's relevance filter Rel(Y) >= Rel(q), then its retrieval increment Ret(Y) > Ret(q)."""
    if not breakdown["valid"]:
        return "1_teacher_answered"
    if breakdown["rel_y"] < breakdown["rel_q"]:
        return "2_gate_pass"
    if breakdown["ret_y"] <= breakdown["ret_q"]:
        return "3_relevance_not_lower_than_query"
    return "4_retrieval_larger_than_query"


def cap_abstentions(rows: list[dict], is_empty: list[bool], share: float) -> tuple[list[dict], int]:
    """Keep every expanding row and the first abstentions (empty answers) up to `share` of the kept rows:
    at most floor(share * n_expanding / (1 - share)) of them. Returns (kept rows in their order, dropped count)."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"max_abstention_share must be in (0, 1], got {share}")
    if share == 1.0:
        return list(rows), 0
    limit = math.floor(share * sum(not e for e in is_empty) / (1.0 - share) + 1e-9)
    kept, n_abstentions = [], 0
    for row, empty in zip(rows, is_empty, strict=True):
        if empty:
            if n_abstentions == limit:
                continue
            n_abstentions += 1
        kept.append(row)
    return kept, len(rows) - len(kept)


def resolve_profile(name: str, max_abstention_share: float | None = None) -> Profile:
    """The named profile, with its SFT abstention cap replaced when `max_abstention_share` is given."""
    profile = PROFILES[name]
    if max_abstention_share is None:
        return profile
    if not 0.0 < max_abstention_share <= 1.0:
        raise ValueError(f"--max-abstention-share must be in (0, 1], got {max_abstention_share}")
    return dataclasses.replace(profile, max_abstention_share=max_abstention_share)


def _write_jsonl(rows: list[dict], path: Path) -> None:
    with atomic_write_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _load_scored(path: Path) -> dict[str, dict]:
    """Resume: query -> {"completion", "breakdown", "baseline"} from an earlier, possibly interrupted run."""
    done: dict[str, dict] = {}
    if not path.is_file():
        return done
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                entry = json.loads(line)
                done[entry["query"]] = entry
            except (ValueError, KeyError):
                log.warning(
                    "%s: unreadable line skipped (interrupted write); that query is scored again", path
                )
    return done


def _inputs_fingerprint(teacher_name, settings, index_dir, relevance_dir, profile, tokenizer_dir) -> str:
    """Hash of everything a scored candidate depends on, so a resumed run never reuses stale scores."""
    files = sorted(p for d in (Path(index_dir), Path(relevance_dir)) for p in d.rglob("*") if p.is_file())
    parts = [teacher_name, repr(settings), profile.max_context_items, str(tokenizer_dir)]
    parts += [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:12]


def make_teacher(
    name: str,
    work_dir: Path,
    tokenizer,
    max_context_items: int,
    engine=None,
    catalog=None,
    reasoning: str = "intent_first",
):
    """The SFT teacher `name`: the rules teacher bound to `engine` (`rules_teacher`; unbound without one) writing
    its reasoning in the order `reasoning`, or the OpenAI-compatible endpoint of the environment, caching its
    answers in `work_dir`."""
    if name == "rules":
        return (
            RulesTeacher(reasoning=reasoning) if engine is None else rules_teacher(engine, catalog, reasoning)
        )
    if name == "openai":
        return OpenAITeacher.from_env(
            work_dir / "openai_cache.jsonl", tokenizer=tokenizer, max_context_items=max_context_items
        )
    raise ValueError(f"unknown teacher {name!r}: choose rules or openai")


def build_splits(
    dataset_dir: str | Path,
    index_dir: str | Path,
    relevance_dir: str | Path,
    out_dir: str | Path,
    profile: Profile,
    teacher_name: str = "rules",
    config_path: str | Path | None = None,
    tokenizer_dir: str | Path | None = None,
    seed: int = 13,
    batch_size: int = 64,
    teacher_reasoning: str | None = None,
) -> dict:
    """Write the four split files and stats.json to `out_dir`; returns the stats dict.

    `config_path`: a LESER_CONFIG YAML whose reward settings and gate rules are used (its `search` and `relevance`
    are replaced by `index_dir` and `relevance_dir`); None: the defaults of leser.settings.Settings.
    `teacher_reasoning`: the order of the rules teacher's reasoning (`RulesTeacher.reasoning`); None: the profile's
    (an LLM teacher orders its own reasoning: only an explicit value is refused there).
    """
    if teacher_reasoning is None:
        teacher_reasoning = profile.teacher_reasoning if teacher_name == "rules" else "intent_first"
    if teacher_reasoning not in REASONING_STYLES:
        raise ValueError(
            f"teacher reasoning must be one of {', '.join(REASONING_STYLES)}, got {teacher_reasoning!r}"
        )
    if teacher_reasoning != "intent_first" and teacher_name != "rules":
        raise ValueError(
            f"--teacher-reasoning {teacher_reasoning} applies to the rules teacher, not {teacher_name}"
        )
    # The default keeps its name, so the scored candidates of earlier runs stay reusable.
    teacher_key = (
        teacher_name if teacher_reasoning == "intent_first" else f"{teacher_name}-{teacher_reasoning}"
    )
    out_dir = Path(out_dir)
    work_dir = out_dir / ".work"
    work_dir.mkdir(parents=True, exist_ok=True)
    backend = {"search": str(Path(index_dir).resolve()), "relevance": str(Path(relevance_dir).resolve())}
    settings = (
        dataclasses.replace(load_settings(config_path), **backend) if config_path else Settings(**backend)
    )
    engine, judge = open_backend(settings)
    scorer = LeserScorer(engine, judge, settings)
    tokenizer = None
    if tokenizer_dir is not None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)

    dataset = load_dataset(dataset_dir)
    queries = dataset.queries.column("query").to_pylist()
    intent_ids = dataset.queries.column("intent_id").to_pylist()
    splits, held_out, shortfalls = split_queries(queries, intent_ids, profile, seed)
    for name, missing in shortfalls.items():
        log.warning(
            "%s: the query log gives %d fewer %s queries than profile %s asks",
            dataset_dir,
            missing,
            name,
            profile.name,
        )
    intent_of = dict(zip(queries, intent_ids, strict=True))

    # Context items the 2048-token budget cost each split's prompts (stats.json `prompt_context_drops`).
    prompt_stats: dict[str, PromptStats] = {}

    def split_prompts(split_queries_: list[str], desc: str) -> tuple[list[list[dict]], list[list[dict]]]:
        contexts, messages = [], []
        stats_ = prompt_stats.setdefault(desc, PromptStats())
        for start in tqdm(range(0, len(split_queries_), batch_size), desc=f"context {desc}", unit="batch"):
            chunk = split_queries_[start : start + batch_size]
            chunk_contexts, chunk_messages = prompts_for(
                engine, chunk, profile.max_context_items, tokenizer, stats_
            )
            contexts += chunk_contexts
            messages += chunk_messages
        return contexts, messages

    # SFT candidates: teacher, then gate + reward, appended to the work file batch by batch (resumable).
    sft_contexts, sft_messages = split_prompts(splits["sft"], "sft")
    fingerprint = _inputs_fingerprint(teacher_key, settings, index_dir, relevance_dir, profile, tokenizer_dir)
    scored_path = work_dir / f"scored.{teacher_key}.{fingerprint}.jsonl"
    scored = _load_scored(scored_path)
    teacher = make_teacher(
        teacher_name,
        work_dir,
        tokenizer,
        profile.max_context_items,
        engine,
        dataset.catalog,
        teacher_reasoning,
    )
    todo = [i for i, q in enumerate(splits["sft"]) if q not in scored]
    if len(todo) < len(splits["sft"]):
        log.info(
            "resuming: %d of %d SFT candidates already scored",
            len(splits["sft"]) - len(todo),
            len(splits["sft"]),
        )
    no_expansion = format_completion("", [])
    with scored_path.open("a", encoding="utf-8") as work:
        for start in tqdm(
            range(0, len(todo), batch_size), desc=f"teacher {teacher_key} + reward", unit="batch"
        ):
            rows = todo[start : start + batch_size]
            qs = [splits["sft"][i] for i in rows]
            completions = teacher.complete_many(qs, [sft_contexts[i] for i in rows])
            ok = [j for j, c in enumerate(completions) if c is not None]
            breakdowns = scorer.score_batch([qs[j] for j in ok], [completions[j] for j in ok])
            baselines = scorer.score_batch([qs[j] for j in ok], [no_expansion] * len(ok))
            by_row = {j: (b, base) for j, b, base in zip(ok, breakdowns, baselines, strict=True)}
            for j, q in enumerate(qs):
                b, base = by_row.get(j, (None, None))
                entry = {
                    "query": q,
                    "completion": completions[j],
                    "breakdown": asdict(b) if b else None,
                    "baseline_reward": base.reward if base else None,
                }
                scored[q] = entry
                work.write(json.dumps(entry, ensure_ascii=False) + "\n")
            work.flush()

    stage_counts = Counter(dict.fromkeys(REJECTION_STAGES, 0))
    gate_reasons = Counter()
    sft_rows, sft_llm_rows, sft_empty = [], [], []
    rewards, baseline_rewards, n_empty = [], [], 0
    for q, messages in zip(splits["sft"], sft_messages, strict=True):
        entry = scored[q]
        stage_counts["0_candidates"] += 1
        if entry["completion"] is None:
            continue
        stage_counts["1_teacher_answered"] += 1
        b = entry["breakdown"]
        gate_reasons[b["reason"]] += 1
        rewards.append(b["reward"])
        baseline_rewards.append(entry["baseline_reward"])
        last = REJECTION_STAGES.index(last_stage_passed(b))
        for name in REJECTION_STAGES[2 : last + 1]:  # stages 0 and 1 are counted above
            stage_counts[name] += 1
        if not b["valid"]:
            continue
        n_empty += b["n_expansions"] == 0
        row = {
            "messages": [*messages, {"role": "assistant", "content": entry["completion"]}],
            "query": q,
            "reward": round(b["reward"], 6),
        }
        sft_rows.append(row)
        sft_empty.append(b["n_expansions"] == 0)
        if last == len(REJECTION_STAGES) - 1:
            sft_llm_rows.append(row)
    # sft_llm.jsonl needs no cap: stage 4 already rejects every abstention
    sft_rows, sft_dropped = cap_abstentions(sft_rows, sft_empty, profile.max_abstention_share)

    _, grpo_messages = split_prompts(splits["grpo"], "grpo")
    grpo_rows = [{"messages": m, "query": q} for q, m in zip(splits["grpo"], grpo_messages, strict=True)]

    def eval_rows_of(split: str) -> list[dict]:
        _, messages = split_prompts(splits[split], split)
        return [
            {
                "messages": m,
                "query": q,
                "intent_id": intent_of[q],
                "held_out_intent": intent_of[q] in held_out,
            }
            for q, m in zip(splits[split], messages, strict=True)
        ]

    eval_rows = eval_rows_of("eval")
    probe_rows = eval_rows_of("probe") if "probe" in splits else []

    _write_jsonl(sft_rows, out_dir / "sft.jsonl")
    _write_jsonl(sft_llm_rows, out_dir / "sft_llm.jsonl")
    _write_jsonl(grpo_rows, out_dir / "grpo.jsonl")
    _write_jsonl(eval_rows, out_dir / "eval.jsonl")
    if probe_rows:
        _write_jsonl(probe_rows, out_dir / "probe.jsonl")
    n = max(1, stage_counts["1_teacher_answered"])
    stats = {
        "profile": asdict(profile),
        "teacher": teacher_name,
        "teacher_reasoning": teacher_reasoning,
        "dataset": str(dataset_dir),
        "index": str(index_dir),
        "relevance": str(relevance_dir),
        "seed": seed,
        "config": str(config_path or "defaults"),
        "prompt_sizing": prompt_sizing(tokenizer, str(tokenizer_dir) if tokenizer_dir else None),
        "prompt_context_drops": {name: counts.as_dict() for name, counts in prompt_stats.items()},
        "query_log_size": len(queries),
        "rows": {
            "sft.jsonl": len(sft_rows),
            "sft_llm.jsonl": len(sft_llm_rows),
            "grpo.jsonl": len(grpo_rows),
            "eval.jsonl": len(eval_rows),
            **({"probe.jsonl": len(probe_rows)} if probe_rows else {}),
        },
        "shortfalls": shortfalls,
        "held_out_intents": len(held_out),
        "eval_queries_of_held_out_intents": sum(r["held_out_intent"] for r in eval_rows),
        "rejection_sampling_stages": {name: stage_counts[name] for name in REJECTION_STAGES},
        "gate_reasons": dict(gate_reasons.most_common()),
        "teacher_gate_pass_rate": stage_counts["2_gate_pass"] / n,
        "teacher_empty_answers": n_empty,
        "abstentions_dropped_by_cap": {"sft.jsonl": sft_dropped},
        "teacher_mean_reward": float(np.mean(rewards)) if rewards else math.nan,
        "no_expansion_mean_reward": float(np.mean(baseline_rewards)) if baseline_rewards else math.nan,
        "teacher_beats_no_expansion_share": (
            float(np.mean(np.array(rewards) > np.array(baseline_rewards))) if rewards else math.nan
        ),
    }
    write_json(stats, out_dir / "stats.json")
    return stats


def build_parser() -> ArgumentParser:
    """`python -m leser.distill ...`."""
    p = ArgumentParser(
        prog="python -m leser.distill",
        description="Build the training splits: engine context for every query, the teacher's answers for the SFT "
        "queries, rejection sampling in the paper's stages (gate; Rel(Y) >= Rel(q); Ret(Y) > Ret(q)), and "
        "sft.jsonl, sft_llm.jsonl, grpo.jsonl, eval.jsonl + stats.json in --out.",
    )
    p.add_argument("--dataset", required=True, help="dataset directory (python -m data_prep synth|import)")
    p.add_argument("--index", required=True, help="search index directory (python -m search_sim build)")
    p.add_argument(
        "--relevance", required=True, help="relevance model directory (python -m search_sim relevance)"
    )
    p.add_argument("--out", required=True, help="output directory, e.g. artifacts/synth/splits")
    p.add_argument("--profile", choices=sorted(PROFILES), default="cpu", help="split sizes (default cpu)")
    p.add_argument(
        "--teacher",
        choices=["rules", "openai"],
        default="rules",
        help="rules: offline attribute feedback (default); openai: LESER_TEACHER_BASE_URL / LESER_TEACHER_MODEL / "
        "OPENAI_API_KEY",
    )
    p.add_argument(
        "--config",
        default=os.environ.get("LESER_CONFIG"),
        help="LESER_CONFIG YAML for the reward settings and gate rules (default: $LESER_CONFIG, else built-in "
        "defaults); its search/relevance are replaced by --index/--relevance",
    )
    p.add_argument(
        "--tokenizer",
        default=None,
        help="the backbone's tokenizer folder: prompts are sized exactly with its chat template to 2048 tokens "
        "(default: a chars/3 estimate of the contents plus a template margin; stats.json `prompt_sizing` says which)",
    )
    p.add_argument(
        "--max-abstention-share",
        type=float,
        default=None,
        help="cap on empty answers among the SFT rows, in (0, 1]; 1.0 keeps the teacher's own mix "
        "(default: the profile's)",
    )
    p.add_argument(
        "--teacher-reasoning",
        choices=list(REASONING_STYLES),
        default=None,
        help="order of the rules teacher's reasoning: intent_first (the shopper's intent, then the decision) or "
        "evidence_first (the attribute values the query names, then the decision; docs/experiment/"
        "sft_evidence_first/); default: the profile's (learn: evidence_first, others: intent_first)",
    )
    p.add_argument("--seed", type=int, default=13)
    return p


def main(argv: list[str] | None = None) -> int:
    """Write the splits; bad input raises (run_cli turns it into one line and exit 2)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    profile = resolve_profile(args.profile, args.max_abstention_share)
    stats = build_splits(
        args.dataset,
        args.index,
        args.relevance,
        args.out,
        profile,
        teacher_name=args.teacher,
        config_path=args.config,
        tokenizer_dir=args.tokenizer,
        seed=args.seed,
        teacher_reasoning=args.teacher_reasoning,
    )
    print(
        json.dumps(
            {
                k: stats[k]
                for k in (
                    "rows",
                    "rejection_sampling_stages",
                    "teacher_gate_pass_rate",
                    "teacher_mean_reward",
                    "no_expansion_mean_reward",
                )
            },
            indent=2,
        )
    )
    return 0
