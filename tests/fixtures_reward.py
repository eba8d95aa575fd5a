"""Shared pytest fixtures for the reward area (session-scoped, built once per test run)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def reward_tiny_backend(tmp_path_factory) -> Path:
    """DIR with index/ and relevance/ for the 30 hand-written items of tests/fixtures/engine_catalog, the
    relevance model trained on tests/fixtures/reward/judgments.jsonl (about 10 s)."""
    from search_sim.index import build_index
    from search_sim.relevance.training import train

    root = tmp_path_factory.mktemp("reward_tiny")
    shutil.copy(FIXTURES / "engine_catalog" / "catalog.jsonl", root / "catalog.jsonl")
    shutil.copy(FIXTURES / "reward" / "judgments.jsonl", root / "judgments.jsonl")
    (root / "manifest.json").write_text(json.dumps({"format_version": 1, "source": "jsonl", "counts": {}}))
    build_index(root, root / "index")
    train(root, root / "judgments.jsonl", root / "index", root / "relevance", progress=False)
    return root


def write_settings(path: Path, search: str, relevance: str, **overrides) -> Path:
    """A LESER_CONFIG YAML using the repo's rules and the paper's defaults, plus ``overrides``."""
    data = {"search": search, "relevance": relevance, "rules": str(REPO_ROOT / "configs" / "rules.yaml")}
    data.update(overrides)
    path.write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in data.items()))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def reward_tiny_service(reward_tiny_backend):
    """URL of `python -m search_sim serve` over the tiny index with its relevance model (stopped at the end)."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "search_sim",
        "serve",
        str(reward_tiny_backend / "index"),
        "--port",
        str(port),
        "--relevance",
        str(reward_tiny_backend / "relevance"),
    ]
    log_path = reward_tiny_backend / "service.log"  # a file, not a pipe: a full pipe would block the service
    log_file = log_path.open("wb")
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"search service did not start: {log_path.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log_file.close()
