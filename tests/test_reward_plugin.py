"""swift_plugins/leser_reward.py inside ms-swift: the ORMs directly, then a real 2-step `swift rlhf --rlhf_type grpo`.

Both import ms-swift (about 10 s of CPU) and are marked slow.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from leser.prompts import build_messages
from leser.reward import LeserScorer
from leser.settings import load_settings, open_backend
from tests.fixtures_reward import REPO_ROOT, write_settings

PLUGIN = REPO_ROOT / "swift_plugins" / "leser_reward.py"
NAMES = ["leser_reward", "leser_format", "leser_rel_ratio", "leser_size_ratio", "leser_num_expansions"]


def completion(*expansions: str) -> str:
    return f"<think>t</think><answer>{json.dumps({'expansion': list(expansions)})}</answer>"


@pytest.fixture
def tiny_config(reward_tiny_backend, tmp_path, monkeypatch) -> Path:
    b = reward_tiny_backend
    path = write_settings(tmp_path / "leser.yaml", str(b / "index"), str(b / "relevance"))
    monkeypatch.setenv("LESER_CONFIG", str(path))
    return path


@pytest.mark.slow
def test_orms_share_one_scoring_per_batch(tiny_config):
    from swift.rewards import orms
    from swift.utils import import_external_file

    plugin = import_external_file(str(PLUGIN))  # exactly what --external_plugins does
    plugin._scorer, plugin._last_batch = None, None  # a fresh process
    assert all(name in orms for name in NAMES)
    funcs = {name: orms[name](args=None) for name in NAMES}
    queries = ["ergonomic mouse", "ergonomic mouse", "dock"]
    completions = [completion("trackball"), "no tags", completion()]
    kwargs = {"query": queries, "trainer_state": None, "messages": [[]] * 3}

    rewards = funcs["leser_reward"](completions, **kwargs)
    settings = load_settings(tiny_config)
    expected = LeserScorer(*open_backend(settings), settings).score_batch(queries, completions)
    assert rewards == pytest.approx([b.reward for b in expected])

    scored = plugin._scorer.stats.totals.total()
    assert funcs["leser_format"](completions, **kwargs) == [1.0, 0.0, 1.0]
    assert funcs["leser_rel_ratio"](completions, **kwargs) == pytest.approx(
        [expected[0].rel_ratio, None, expected[2].rel_ratio]
    )
    assert funcs["leser_size_ratio"](completions, **kwargs)[1] is None
    assert funcs["leser_num_expansions"](completions, **kwargs) == [1.0, None, 0.0]
    assert plugin._scorer.stats.totals.total() == scored  # the diagnostics reused the batch's scoring

    with pytest.raises(KeyError, match="'query' column"):
        funcs["leser_reward"](completions, trainer_state=None)


def grpo_rows(index_dir: Path, queries: list[str]) -> list[dict]:
    """GRPO rows as the training-data pipeline writes them: prompt from the shared builder + the query column."""
    from search_sim import SearchEngine

    engine = SearchEngine.load(index_dir)
    rows = []
    for q in queries:
        items = engine.items(engine.search(q, k=5).item_ids)
        rows.append({"messages": build_messages(q, items, max_prompt_tokens=768), "query": q})
    return rows


@pytest.mark.slow
def test_swift_grpo_two_steps_logs_a_finite_leser_reward(
    reward_tiny_backend, base_model_dir, tiny_config, tmp_path
):
    dataset = tmp_path / "grpo.jsonl"
    rows = grpo_rows(reward_tiny_backend / "index", ["ergonomic mouse", "dock", "phone charger", "sleep aid"])
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    swift = Path(sys.executable).with_name("swift")
    cmd = [
        str(swift), "rlhf", "--rlhf_type", "grpo",
        "--model", str(base_model_dir), "--model_type", "llama", "--template", "chatml",
        "--external_plugins", str(PLUGIN),
        "--reward_funcs", *NAMES, "--reward_weights", "1", "0", "0", "0", "0",
        "--dataset", str(dataset), "--use_vllm", "false", "--tuner_type", "full", "--torch_dtype", "float32",
        "--max_steps", "2", "--per_device_train_batch_size", "2", "--num_generations", "2",
        "--max_completion_length", "16", "--beta", "0", "--max_length", "1024", "--temperature", "1.0",
        "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none",
        "--dataloader_num_workers", "0", "--dataset_num_proc", "1", "--output_dir", str(out),
    ]  # fmt: skip
    # beta 0: no reference model to load; 16 new tokens: the step count, not the answer, is what is tested here
    env = {**os.environ, "LESER_CONFIG": str(tiny_config), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [log] = out.glob("*/logging.jsonl")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    steps = [r for r in records if "rewards/leser_reward/mean" in r]
    assert [r["global_step/max_steps"] for r in steps] == ["1/2", "2/2"]
    for step in steps:
        assert math.isfinite(step["rewards/leser_reward/mean"])
        assert 0.0 <= step["rewards/leser_format/mean"] <= 1.0
