"""The SFT teachers as evaluation systems: the rules teacher (offline) and an OpenAI-compatible endpoint."""

from __future__ import annotations

import time
from pathlib import Path

from leser.distill.teachers import OpenAITeacher, rules_teacher
from leser.evaluation.systems import EvalQuery, Expansion, SystemOutput
from leser.prompts import context_items


def gated(gate, queries: list[EvalQuery], completions: list[str | None]) -> list[Expansion]:
    out = []
    for q, text in zip(queries, completions, strict=True):
        if text is None:  # the teacher gave up on this query (counted as invalid, reason "teacher_failed")
            out.append(Expansion([], None, False, "teacher_failed"))
            continue
        verdict = gate(text, q.query)
        out.append(
            Expansion(list(verdict.expansions) if verdict.valid else [], text, verdict.valid, verdict.reason)
        )
    return out


class RulesSystem:
    """leser.distill.teachers.RulesTeacher, configured as for SFT data (`rules_teacher`: engine analyzer,
    vocabulary, catalog values), writing full completions that go through the same gate as model outputs.
    Deterministic."""

    name, backbone, stochastic = "rules", "attribute rules (no model)", False

    def __init__(self, engine, gate, catalog=None):
        self.engine, self.gate = engine, gate
        self.teacher = rules_teacher(engine, catalog)

    def expand(self, queries: list[EvalQuery], run: int) -> SystemOutput:
        start = time.perf_counter()
        completions = self.teacher.complete_many(
            [q.query for q in queries], context_items(self.engine, [q.query for q in queries])
        )
        return SystemOutput(gated(self.gate, queries, completions), time.perf_counter() - start)


class OpenAISystem:
    """Few-shot prompting of an OpenAI-compatible endpoint (LESER_TEACHER_BASE_URL, LESER_TEACHER_MODEL) with the
    teachers' in-context examples; responses cached in the run directory so a rerun costs nothing."""

    name, stochastic = "openai", True

    def __init__(self, engine, gate, out: Path, temperature: float):
        self.engine, self.gate = engine, gate
        self.teachers = {}
        self.make = lambda run: OpenAITeacher.from_env(
            out / f"openai_cache_run{run}.jsonl", temperature=temperature
        )
        self.backbone = self.make(0).model

    def expand(self, queries: list[EvalQuery], run: int) -> SystemOutput:
        start = time.perf_counter()
        teacher = self.make(run)  # one cache per run: five runs are five samples, not one cached answer
        texts = [q.query for q in queries]
        completions = teacher.complete_many(texts, context_items(self.engine, texts))
        return SystemOutput(gated(self.gate, queries, completions), time.perf_counter() - start)
