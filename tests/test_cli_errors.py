"""The error contract of every entry point (data_prep/cli.py): a bad input exits 2 with one line on stderr that
names the file, line or field, and no traceback; `--debug` / LESER_DEBUG=1 bring the traceback back.

Each command runs as a subprocess from an empty temporary directory, so a default that depends on the working
directory (configs/rules.yaml) fails here. Inputs are tiny: a 200-item marketplace, its index and a 5-tree judge.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data_prep.cli import ArgumentParser, int_at_least, one_line, run_cli
from tests.fixtures_recipes import REPO_ROOT


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A tiny valid dataset, index and relevance model, plus a truncated copy of the index."""
    from data_prep import synth
    from search_sim.index import build_index
    from search_sim.relevance.training import TrainConfig, train

    root = tmp_path_factory.mktemp("cli_world")
    ds, idx, rel = root / "ds", root / "idx", root / "rel"
    synth.generate(n_items=200, n_queries=20, seed=1, out=ds, progress=False)
    build_index(ds, idx)
    train(ds, ds / "judgments.parquet", idx, rel, config=TrainConfig(max_rounds=5), progress=False)
    truncated = root / "truncated_idx"
    shutil.copytree(idx, truncated)
    with open(truncated / "doc_len.npy", "r+b") as f:
        f.truncate(10)
    return {"ds": ds, "idx": idx, "rel": rel, "truncated_idx": truncated}


def write_bad_inputs(folder: Path) -> None:
    """The broken files the table refers to by name, in the command's working directory."""
    (folder / "bad.yaml").write_text("max_expansions: [1\n")
    (folder / "bad.jsonl").write_text("{not json\n")
    code_model = folder / "code_model"
    code_model.mkdir()
    (code_model / "config.json").write_text(
        json.dumps({"model_type": "llama", "auto_map": {"AutoModelForCausalLM": "modeling_x.Model"}})
    )
    broken = folder / "broken_ds"  # a dataset directory whose catalog is not parquet
    broken.mkdir()
    (broken / "manifest.json").write_text(json.dumps({"format_version": 1, "counts": {}}))
    (broken / "catalog.parquet").write_bytes(b"PAR1 this is not a parquet file")


DATA_PREP = [sys.executable, "-m", "data_prep"]
SEARCH_SIM = [sys.executable, "-m", "search_sim"]
DISTILL = [sys.executable, "-m", "leser.distill"]
EVALUATION = [sys.executable, "-m", "leser.evaluation", "--dataset", "{ds}", "--index", "{idx}"]
EVALUATION += ["--relevance", "{rel}", "--out", "eval_out", "--limit", "2"]
EXPAND = [sys.executable, "-m", "leser.expand", "--index", "{idx}", "--out", "cache.jsonl"]
SCRIPTS = REPO_ROOT / "scripts"

# (id, argv with {ds} {idx} {rel} {truncated_idx} placeholders, text the one error line must contain)
CASES = [
    ("synth_items_negative", [*DATA_PREP, "synth", "--items", "-5", "--out", "o"], "--items"),
    ("synth_queries_not_int", [*DATA_PREP, "synth", "--queries", "many", "--out", "o"], "--queries"),
    ("describe_missing_dir", [*DATA_PREP, "describe", "nothere"], "nothere/manifest.json"),
    ("describe_index_dir", [*DATA_PREP, "describe", "{idx}"], "manifest.json: field 'format_version'"),
    ("describe_corrupt_catalog", [*DATA_PREP, "describe", "broken_ds"], "broken_ds/catalog.parquet"),
    (
        "import_bad_mapping_yaml",
        [*DATA_PREP, "import", "jsonl", "--mapping", "bad.yaml", "--out", "o"],
        "bad.yaml",
    ),
    (
        "import_esci_missing_file",
        [*DATA_PREP, "import", "esci", "--products", "nothere.parquet", "--examples", "x", "--out", "o"],
        "nothere.parquet",
    ),
    (
        "training_missing_index",
        [
            *DISTILL,
            "--dataset",
            "{ds}",
            "--index",
            "nothere",
            "--relevance",
            "{rel}",
            "--out",
            "o",
        ],
        "nothere",
    ),
    (
        "training_bad_config_yaml",
        [*DISTILL, "--dataset", "{ds}", "--index", "{idx}", "--relevance", "{rel}"]
        + ["--config", "bad.yaml", "--out", "o"],
        "bad.yaml: invalid YAML at line 2",
    ),
    (
        "training_abstention_share_above_one",
        [*DISTILL, "--dataset", "{ds}", "--index", "{idx}", "--relevance", "{rel}"]
        + ["--max-abstention-share", "1.5", "--out", "o"],
        "--max-abstention-share",
    ),
    ("model_hf_without_source", [*DATA_PREP, "model", "hf", "--out", "m"], "--source"),
    (
        "model_folder_with_remote_code",
        [*DATA_PREP, "model", "hf", "--source", "code_model", "--out", "m", "--no-check"],
        "code_model/config.json: field 'auto_map'",
    ),
    ("build_missing_catalog", [*SEARCH_SIM, "build", "--catalog", "nothere", "--out", "o"], "nothere"),
    (
        "build_bad_minimum_should_match",
        [*SEARCH_SIM, "build", "--catalog", "{ds}", "--out", "o", "--minimum-should-match", "3<x"],
        "minimum_should_match",
    ),
    ("search_missing_index", [*SEARCH_SIM, "search", "nothere", "ergonomic mouse"], "nothere"),
    ("search_dataset_dir", [*SEARCH_SIM, "search", "{ds}", "mouse"], "manifest.json"),
    ("search_truncated_index", [*SEARCH_SIM, "search", "{truncated_idx}", "mouse"], "doc_len.npy"),
    ("search_k_zero", [*SEARCH_SIM, "search", "{idx}", "mouse", "-k", "0"], "-k"),
    ("verify_missing_index", [*SEARCH_SIM, "verify", "nothere"], "nothere"),
    ("serve_missing_index", [*SEARCH_SIM, "serve", "nothere", "--port", "0"], "nothere"),
    (
        "relevance_train_bad_judgments",
        [*SEARCH_SIM, "relevance", "train", "--catalog", "{ds}", "--judgments", "bad.jsonl"]
        + ["--index", "{idx}", "--out", "o"],
        "bad.jsonl:1",
    ),
    (
        "relevance_score_index_as_model",
        [*SEARCH_SIM, "relevance", "score", "--model", "{idx}", "--index", "{idx}", "q", "a"],
        "schema.json",
    ),
    (
        "relevance_module_missing_model",
        [
            sys.executable,
            "-m",
            "search_sim.relevance",
            "score",
            "--model",
            "nothere",
            "--index",
            "{idx}",
            "q",
            "a",
        ],
        "nothere/schema.json",
    ),
    (
        "evaluation_missing_dataset",
        [sys.executable, "-m", "leser.evaluation", "--dataset", "nothere", "--index", "{idx}"]
        + ["--relevance", "{rel}", "--out", "o"],
        "nothere/manifest.json",
    ),
    ("evaluation_bad_split", [*EVALUATION, "--split", "bad.jsonl"], "bad.jsonl:1"),
    ("evaluation_bad_rules", [*EVALUATION, "--rules", "bad.yaml"], "bad.yaml: invalid YAML"),
    # the default rules must load from here (a temporary directory) for the run to reach the unknown system
    ("evaluation_default_rules_then_unknown_system", [*EVALUATION, "--systems", "bm42"], "'bm42'"),
    ("evaluation_runs_not_int", [*EVALUATION, "--runs", "many"], "--runs"),
    (
        "expand_missing_queries",  # also loads the default rules from a foreign working directory first
        [*EXPAND, "--model", "nothere", "--queries", "nothere.parquet"],
        "nothere.parquet",
    ),
    ("expand_missing_model", [*EXPAND, "--model", "nothere", "--queries", "{ds}/queries.parquet"], "nothere"),
    ("expand_top_zero", [*EXPAND, "--model", "m", "--queries", "q", "--top", "0"], "--top"),
    (
        "latest_checkpoint_missing_run",
        [sys.executable, str(SCRIPTS / "latest_checkpoint.py"), "nothere"],
        "nothere",
    ),
    (
        "plot_grpo_bad_json",
        [sys.executable, str(SCRIPTS / "plot_grpo.py"), "bad.jsonl", "--out", "x.png"],
        "bad.jsonl:1",
    ),
    (
        "probe_curve_missing_split",
        [sys.executable, str(SCRIPTS / "probe_curve.py"), "--grpo", "g", "--start", "{idx}", "--split", "nothere",
         "--out", "p"],
        "nothere: no such probe split",
    ),
    (
        "probe_curve_every_zero",
        [sys.executable, str(SCRIPTS / "probe_curve.py"), "--grpo", "g", "--start", "s", "--split", "x",
         "--out", "p", "--every", "0"],
        "--every",
    ),
    (
        "diagnose_missing_split",
        [sys.executable, str(SCRIPTS / "diagnose_reward.py"), "--split", "nothere", "--out", "d"],
        "nothere: no such GRPO split",
    ),
    (
        "diagnose_bad_completions",
        [sys.executable, str(SCRIPTS / "diagnose_reward.py"), "--split", "bad.jsonl", "--out", "d"],
        "bad.jsonl:1",
    ),
    (
        "whatif_missing_completions",
        [sys.executable, str(SCRIPTS / "reward_whatif.py"), "--completions", "nothere", "--out", "w"],
        "nothere: no such completions file",
    ),
    (
        "whatif_bad_completions",
        [sys.executable, str(SCRIPTS / "reward_whatif.py"), "--completions", "bad.jsonl", "--out", "w"],
        "bad.jsonl:1",
    ),
    (
        "whatif_bad_variant",
        [sys.executable, str(SCRIPTS / "reward_whatif.py"), "--completions", "bad.jsonl", "--out", "w",
         "--variant", "small:lambda=0.1"],
        "'lambda' is not one of",
    ),
    (
        "select_prompts_missing_split",
        [sys.executable, str(SCRIPTS / "select_grpo_prompts.py"), "--split", "nothere", "--out", "s.jsonl"],
        "nothere: no such split",
    ),
    (
        "select_prompts_bad_split",
        [sys.executable, str(SCRIPTS / "select_grpo_prompts.py"), "--split", "bad.jsonl", "--out", "s.jsonl"],
        "bad.jsonl:1",
    ),
]  # fmt: skip


def run(argv: list[str], cwd: Path, world: dict[str, Path], **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("LESER_DEBUG", "LESER_CONFIG")}
    environ |= {"PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", **env}
    argv = [a.format(**{k: str(v) for k, v in world.items()}) for a in argv]
    return subprocess.run(argv, cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("argv", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line(argv, needle, world, tmp_path):
    write_bad_inputs(tmp_path)
    result = run(argv, tmp_path, world)
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert needle in lines[0]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(how, world, tmp_path):
    argv = [*SEARCH_SIM, "search", "nothere", "mouse"]
    result = (
        run([*argv, "--debug"], tmp_path, world)
        if how == "flag"
        else run(argv, tmp_path, world, LESER_DEBUG="1")
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "IndexCorruptError: nothere" in result.stderr


def test_default_rules_do_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    from leser.evaluation.cli import build_parser

    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["--dataset", "d", "--index", "i", "--relevance", "r", "--out", "o"])
    assert args.rules.is_absolute() and args.rules == REPO_ROOT / "configs" / "rules.yaml"
    assert args.rules.is_file()


def test_a_bug_keeps_its_traceback():
    def buggy_main(argv):
        return {}["missing"]  # a KeyError is a bug, not a bad input

    with pytest.raises(KeyError):
        run_cli(buggy_main, [])


def test_user_error_is_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.delenv("LESER_DEBUG", raising=False)

    def main(argv):
        raise ValueError("config.yaml: line 2\n  field 'k'\n  out of range")

    assert run_cli(main, []) == 2
    assert capsys.readouterr().err == "error: config.yaml: line 2 field 'k' out of range\n"


def test_os_error_puts_the_path_first():
    err = FileNotFoundError(2, "No such file or directory", "runs/x.json")
    assert one_line(err) == "runs/x.json: No such file or directory"


def test_argparse_errors_are_one_line(capsys):
    parser = ArgumentParser(prog="tool")
    parser.add_argument("--n", type=int_at_least(1))
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--n", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: tool: argument --n: must be >= 1, got 0 (see --help)\n"
