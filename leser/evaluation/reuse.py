"""Resuming an evaluation: a system already evaluated in OUT/results.json with exactly the same inputs is loaded, not
run again (a model system on CPU costs minutes to hours; an interrupted `make eval` would otherwise start over).

"The same inputs" is a fingerprint per system: its spec, every evaluation option that can change a number (split,
limit, runs, temperature, max new tokens, seed, batch size, backend, top-k, merge policy, new-items depth), the
content of the split and rules files, the dataset, index and relevance-model folders (file names, sizes, mtimes) and,
for a model system, the resolved checkpoint's files. Any difference, or `--no-reuse`, evaluates the system again.
The dataset's `splits*/` folders are left out of its listing: the split evaluated is hashed by content, and the other
split files (SFT rows, GRPO prompts, a low-recall selection written later) change no evaluation number.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import fields
from pathlib import Path

from data_prep.formats import atomic_write_path
from leser.evaluation.harness import SystemReport
from leser.evaluation.report import slug
from leser.generation import resolve_checkpoint

logger = logging.getLogger(__name__)

MODEL_KINDS = ("fewshot", "sft", "sftllm", "leser")
OPTIONS = (
    "split",
    "limit",
    "runs",
    "temperature",
    "max_new_tokens",
    "seed",
    "batch_size",
    "backend",
    "top_k",
    "merge_policy",
    "new_items_depth",
)


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _folder_listing(folder: Path, skip_prefix: str | None = None) -> list:
    """Names, sizes and mtimes of every file below `folder` (cheap: a checkpoint is hundreds of MB), except those
    under a top-level subfolder whose name starts with `skip_prefix`."""
    if not folder.exists():
        return [str(folder), "missing"]
    files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
    if skip_prefix and folder.is_dir():
        files = [p for p in files if not _under_skipped(p.relative_to(folder), skip_prefix)]
    return [
        (str(p.relative_to(folder) if p != folder else p.name), p.stat().st_size, p.stat().st_mtime_ns)
        for p in files
    ]


def _under_skipped(relative: Path, prefix: str) -> bool:
    return len(relative.parts) > 1 and relative.parts[0].startswith(prefix)


def fingerprint(spec: str, args) -> str:
    """Hash of everything `spec`'s numbers depend on (module docstring)."""
    parts: list = [spec, {name: str(getattr(args, name, None)) for name in OPTIONS}]
    for path in (args.split, args.rules):
        parts.append(_file_digest(Path(path)) if path and Path(path).is_file() else str(path))
    for folder, skip in ((args.dataset, "splits"), (args.index, None), (args.relevance, None)):
        parts.append(
            _folder_listing(Path(folder), skip) if not str(folder).startswith("http") else str(folder)
        )
    kind, _, arg = spec.partition(":")
    if kind in MODEL_KINDS and arg:
        checkpoint = resolve_checkpoint(arg).resolve()
        parts += [str(checkpoint), _folder_listing(checkpoint)]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def report_from_json(entry: dict) -> SystemReport:
    names = {f.name for f in fields(SystemReport)} - {"aggregate"}
    return SystemReport(**{k: v for k, v in entry.items() if k in names})


def reusable_reports(
    out: Path, prints: dict[str, str], sources: list[Path] = ()
) -> tuple[dict[str, SystemReport], dict[str, float]]:
    """Reports (and their timings) whose stored fingerprint equals `prints[spec]`, from OUT/results.json, then from
    each folder of `sources` (evaluations of other systems run in parallel, `--reuse-from`). A system found in a
    source folder also gets its per-query rows copied into OUT/generations/."""
    reports, timings = {}, {}
    for folder in [out, *sources]:
        path = folder / "results.json"
        if not path.is_file():
            if folder != out:
                raise FileNotFoundError(f"{path}: no results to reuse (--reuse-from {folder})")
            continue
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
            stored = previous["meta"].get("fingerprints", {})
            by_name = {entry["name"]: entry for entry in previous["systems"]}
        except (ValueError, KeyError, TypeError) as err:
            logger.warning(
                "%s: not a results file of this harness (%r); its systems are evaluated", path, err
            )
            continue
        for spec, print_ in prints.items():
            if spec in reports or stored.get(spec) != print_ or spec not in by_name:
                continue
            reports[spec] = report_from_json(by_name[spec])
            timings[spec] = previous["meta"].get("timings_s", {}).get(spec, float("nan"))
            logger.info("%s: reusing the result in %s (same inputs, fingerprint %s)", spec, path, print_)
            if folder != out:
                _copy_generations(folder, out, spec)
    return reports, timings


def _copy_generations(source: Path, out: Path, spec: str) -> None:
    rows = source / "generations" / f"{slug(spec)}.jsonl"
    if rows.is_file():
        with atomic_write_path(out / "generations" / rows.name) as tmp:
            tmp.write_bytes(rows.read_bytes())
