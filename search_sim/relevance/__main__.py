import sys

from search_sim.relevance.cli import main

sys.exit(main())
