import sys

from data_prep.cli import run_cli
from search_sim.relevance.cli import main

sys.exit(run_cli(main))
