"""Relevance judge Rel(q, item): LightGBM pointwise regression on graded judgments (see model.py, training.py)."""

from search_sim.relevance.model import RelevanceModel, SchemaMismatchError

__all__ = ["RelevanceModel", "SchemaMismatchError"]
