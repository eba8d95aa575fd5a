"""`python -m leser.distill --dataset DIR --index INDEX --relevance MODEL --profile cpu|learn|paper --out DIR`:
the training splits (see leser/distill/splits.py)."""

import sys

from data_prep.cli import run_cli
from leser.distill.splits import main

sys.exit(run_cli(main))
