"""Fixtures live in one module per area so that each area's owner edits only its own file."""

pytest_plugins = [
    "tests.fixtures_data",
    "tests.fixtures_engine",
    "tests.fixtures_relevance",
    "tests.fixtures_reward",
    "tests.fixtures_training",
    "tests.fixtures_eval",
    "tests.fixtures_recipes",
]
