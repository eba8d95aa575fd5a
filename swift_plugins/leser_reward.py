"""LESER rewards for ms-swift GRPO: ``--external_plugins swift_plugins/leser_reward.py``.

    --reward_funcs leser_reward leser_format leser_rel_ratio leser_size_ratio leser_num_expansions
    --reward_weights 1 0 0 0 0

``leser_reward`` is Eq. 1-2 (leser.reward); the others are diagnostics meant for weight 0, so ms-swift logs their
means every step (``rewards/<name>/mean``). Diagnostics return None (logged as NaN and left out of the mean) for
completions that fail the gate. Settings come from the YAML named by $LESER_CONFIG; the dataset column ``query``
(the original query) arrives as the keyword argument ``query``, a list aligned with ``completions``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from swift.rewards import ORM, orms

# ms-swift imports this file by path and puts only swift_plugins/ on sys.path; make the repository importable
# when the project is used from a checkout rather than pip-installed.
_REPO_ROOT = str(Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.append(_REPO_ROOT)

from leser.reward import LeserScorer, RewardBreakdown  # noqa: E402
from leser.settings import load_settings, open_backend  # noqa: E402

_scorer: LeserScorer | None = None
_last_batch: tuple[tuple, list[RewardBreakdown]] | None = None


def score(completions: list[str], query: list[str] | None) -> list[RewardBreakdown]:
    """Score a batch once: the scorer is built on first use per process, and the several ORMs that ms-swift
    calls on the same batch share one computation."""
    global _scorer, _last_batch
    if query is None:
        raise KeyError(
            "leser rewards need a 'query' column in the GRPO dataset (the original query of each row)"
        )
    key = (tuple(query), tuple(completions))
    if _last_batch is not None and _last_batch[0] == key:
        return _last_batch[1]
    if _scorer is None:
        settings = load_settings()
        _scorer = LeserScorer(*open_backend(settings), settings)
    breakdowns = _scorer.score_batch(list(query), list(completions))
    _last_batch = (key, breakdowns)
    return breakdowns


# Class names equal the registry keys because ms-swift logs each reward under its class name.
class leser_reward(ORM):  # noqa: N801
    def __call__(self, completions, query=None, **kwargs) -> list[float]:
        return [b.reward for b in score(completions, query)]


class leser_format(ORM):  # noqa: N801
    def __call__(self, completions, query=None, **kwargs) -> list[float]:
        return [float(b.valid) for b in score(completions, query)]


class leser_rel_ratio(ORM):  # noqa: N801
    def __call__(self, completions, query=None, **kwargs) -> list[float | None]:
        return [b.rel_ratio if b.valid else None for b in score(completions, query)]


class leser_size_ratio(ORM):  # noqa: N801
    def __call__(self, completions, query=None, **kwargs) -> list[float | None]:
        return [b.size_ratio if b.valid else None for b in score(completions, query)]


class leser_num_expansions(ORM):  # noqa: N801
    def __call__(self, completions, query=None, **kwargs) -> list[float | None]:
        return [float(b.n_expansions) if b.valid else None for b in score(completions, query)]


orms["leser_reward"] = leser_reward
orms["leser_format"] = leser_format
orms["leser_rel_ratio"] = leser_rel_ratio
orms["leser_size_ratio"] = leser_size_ratio
orms["leser_num_expansions"] = leser_num_expansions
