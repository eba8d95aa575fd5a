"""Relevance judge Rel(q, item): LightGBM pointwise regression on graded judgments (see model.py, training.py)."""

from search_sim.relevance.model import RelevanceModel, SchemaMismatchError


def main(argv: list[str] | None = None) -> int:
    """``python -m search_sim relevance ...`` (the engine's CLI hands the arguments after "relevance" here)."""
    from search_sim.relevance.cli import main as cli_main

    return cli_main(argv)


__all__ = ["RelevanceModel", "SchemaMismatchError", "main"]
