import sys

from data_prep.cli import run_cli
from leser.evaluation.cli import main

sys.exit(run_cli(main))
