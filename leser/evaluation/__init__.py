"""Offline evaluation of query expansion: the LESER paper's Table 2 protocol plus true-relevance metrics.

`python -m leser.evaluation --help`; metrics in `metrics.py`, systems in `systems.py`, the loop in `harness.py`.
"""
