"""Reward settings: one YAML named by the environment variable ``LESER_CONFIG``.

Relative paths in the YAML (``search``, ``relevance``, ``rules``) are resolved against the folder of the YAML
file itself, never against the working directory, so a recipe works from any directory:
``configs/leser.synth.yaml`` says ``search: ../artifacts/synth/index``.

Keys (defaults in :class:`Settings`)::

    search: ../artifacts/synth/index       # index directory, or http://host:port of `python -m search_sim serve`
    relevance: ../artifacts/synth/relevance  # relevance model directory, or "service" (the search service's model)
    rules: rules.yaml                      # platform rules of the validation gate (leser.gate.Rules)
    k: 10                                  # top-k of Rel (paper: 10 in training)
    lambda_size: 0.1                       # lambda of Eq. 1
    eps: 1.0e-4                            # eps of Eq. 2
    merge_policy: rrf                      # how the engine fuses the rankings of Y (engine.merged policy)
    rel_floor: 0.05                        # guard of Eq. 2: Rel(q) is floored here (see leser.reward)
    ret_floor: 1                           # guard of Eq. 2: Ret(q) is floored here
    size_ratio_cap: 10.0                   # guard of Eq. 2: r_size is capped here
    size_measure: count                    # what Ret counts: count (the paper) or relevance (ours; leser.reward)
    rel_measure: mean                      # how Rel sums the top k: mean (the paper) or dcg (ours; leser.reward)
    expansion_cost: 0.0                    # charged once to an answer that expands (ours; 0 = the paper; leser.reward)
    retries: 3                             # backend retries before the run stops with RewardBackendError
    retry_wait_s: 1.0                      # first retry wait; doubles each retry
    log_every_s: 60.0                      # period of the gate's failure summary in the log
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from data_prep.cli import yaml_problem
from leser.gate import Rules
from search_sim import open_engine
from search_sim.relevance import RelevanceModel

ENV_VAR = "LESER_CONFIG"
SIZE_MEASURES = ("count", "relevance")
REL_MEASURES = ("mean", "dcg")


@dataclass(frozen=True)
class Settings:
    search: str  # index directory (absolute) or service URL
    relevance: str  # model directory (absolute) or "service"
    rules: Rules = field(default_factory=Rules)
    rules_path: str = ""
    k: int = 10
    lambda_size: float = 0.1
    eps: float = 1e-4
    merge_policy: str = "rrf"
    rel_floor: float = 0.05
    ret_floor: int = 1
    size_ratio_cap: float = 10.0
    # what Ret counts: "count" (the paper: unique recalled items) or "relevance" (ours, off by default: the sum of
    # the judge's scores over the recalled items, so items the judge finds irrelevant add ~nothing; see PAPER.md)
    size_measure: str = "count"
    # how Rel sums the judge's scores of the top k: "mean" (the paper) or "dcg" (ours, off by default: the judge's
    # predicted grade through the evaluation's NDCG gain and position discount; see PAPER.md)
    rel_measure: str = "mean"
    # charged once to every valid answer with at least one expansion (ours, off by default: 0.0 is the paper's
    # Eq. 1): an expansion that only reorders q's results must beat abstaining by this much; see PAPER.md
    expansion_cost: float = 0.0
    retries: int = 3
    retry_wait_s: float = 1.0
    log_every_s: float = 60.0

    @property
    def uses_service(self) -> bool:
        return is_url(self.search)


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _resolve(value: str, base: Path) -> str:
    if is_url(value) or value == "service":
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def load_settings(path: str | Path | None = None) -> Settings:
    """Load settings from ``path``, else from ``$LESER_CONFIG``; errors name the file and key."""
    if path is None:
        path = os.environ.get(ENV_VAR)
        if not path:
            raise RuntimeError(
                f"${ENV_VAR} is not set: point it at a settings YAML, e.g. export {ENV_VAR}=configs/leser.synth.yaml"
            )
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{ENV_VAR} settings file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: invalid YAML at {yaml_problem(err)}") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    known = {f.name for f in fields(Settings)} - {"rules_path"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; known: {sorted(known)}")
    for key in ("search", "relevance"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ValueError(f"{path}: '{key}' is required (a path or URL string)")
    base = path.parent
    data["search"] = _resolve(data["search"], base)
    data["relevance"] = _resolve(data["relevance"], base)
    if data["relevance"] == "service" and not is_url(data["search"]):
        raise ValueError(f"{path}: relevance 'service' needs 'search' to be a service URL")
    if is_url(data["search"]) and data["relevance"] != "service":
        raise ValueError(f"{path}: with a service URL as 'search', set relevance: service")
    rules_path = data.pop("rules", None)
    if rules_path is not None:
        data["rules_path"] = _resolve(str(rules_path), base)
        data["rules"] = Rules.load(data["rules_path"])
    _check_types(data, path)
    settings = Settings(**data)
    _validate(settings, path)
    return settings


_TYPE_CHECKS = {
    "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "str": (lambda v: isinstance(v, str), "a string"),
}


def _check_types(data: dict, path: Path) -> None:
    """Scalar keys must have their field's type (so a YAML typo is a one-line error, not a TypeError later).

    YAML 1.1 reads ``1e-4`` (no dot) as a string; a float key takes such a string when it parses as a number."""
    types = {f.name: f.type for f in fields(Settings)}
    for key, value in data.items():
        if types[key] == "float" and isinstance(value, str):
            with contextlib.suppress(ValueError):  # not a number: the type check below names the key
                data[key] = value = float(value)
        check = _TYPE_CHECKS.get(types[key])
        if check and not check[0](value):
            raise ValueError(f"{path}: '{key}' must be {check[1]}, got {value!r}")


def _validate(settings: Settings, path: Path) -> None:
    checks = {
        "k": settings.k >= 1,
        "lambda_size": settings.lambda_size >= 0,
        "eps": settings.eps > 0,
        "rel_floor": settings.rel_floor > 0,
        "ret_floor": settings.ret_floor >= 1,
        "size_ratio_cap": settings.size_ratio_cap > 0,
        "retries": settings.retries >= 0,
        "retry_wait_s": settings.retry_wait_s >= 0,
        "log_every_s": settings.log_every_s >= 0,
        "size_measure": settings.size_measure in SIZE_MEASURES,
        "rel_measure": settings.rel_measure in REL_MEASURES,
        "expansion_cost": 0 <= settings.expansion_cost < math.inf,
    }
    for key, ok in checks.items():
        if not ok:
            raise ValueError(f"{path}: '{key}' out of range: {getattr(settings, key)!r}")
    if settings.size_measure == "relevance" and settings.uses_service:
        raise ValueError(
            f"{path}: size_measure 'relevance' needs the recall sets of a local index, not a service URL"
        )


class ServiceJudge:
    """The relevance model that runs inside the search service, with RelevanceModel's ``score_many``."""

    def __init__(self, client):
        self.score_many = client.relevance_many


def open_backend(settings: Settings):
    """Open (engine, judge) from settings: a local engine + relevance model, or the search service for both."""
    engine = open_engine(settings.search)
    if settings.relevance == "service":
        return engine, ServiceJudge(engine)
    return engine, RelevanceModel.load(settings.relevance, settings.search)
