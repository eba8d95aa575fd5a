"""An evaluation resumes: systems already in OUT/results.json with the same inputs are loaded, not re-run."""

import json
import logging

import pytest

from leser.evaluation.cli import main
from tests.test_eval_harness import RULES


def _args(synth, index, relevance, out, systems, runs="2"):
    return [
        "--dataset", str(synth), "--index", str(index), "--relevance", str(relevance),
        "--systems", systems, "--runs", runs, "--limit", "20", "--rules", str(RULES), "--out", str(out),
    ]  # fmt: skip


def test_second_run_reuses_same_inputs_and_reruns_changed_ones(
    small_synth_dir, small_index, small_relevance_dir, tmp_path, caplog
):
    out = tmp_path / "eval"
    main(_args(small_synth_dir, small_index, small_relevance_dir, out, "none,rules"))
    first = json.loads((out / "results.json").read_text())
    assert set(first["meta"]["fingerprints"]) == {"none", "rules"}

    caplog.set_level(logging.INFO, logger="leser.evaluation.reuse")
    main(_args(small_synth_dir, small_index, small_relevance_dir, out, "none,rules,rm3"))
    reused = {r.getMessage().split(":")[0] for r in caplog.records if "reusing" in r.getMessage()}
    assert reused == {"none", "rules"}  # rm3 is new: evaluated
    second = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in second["systems"]] == ["none", "rules", "rm3"]
    for name in ("none", "rules"):
        old = next(s for s in first["systems"] if s["name"] == name)
        new = next(s for s in second["systems"] if s["name"] == name)
        assert new["aggregate"] == old["aggregate"] and new["per_query_d_ndcg10"] == old["per_query_d_ndcg10"]

    caplog.clear()
    main(_args(small_synth_dir, small_index, small_relevance_dir, out, "rules", runs="3"))  # another option
    assert not [r for r in caplog.records if "reusing" in r.getMessage()]
    caplog.clear()
    main([*_args(small_synth_dir, small_index, small_relevance_dir, out, "rules", runs="3"), "--no-reuse"])
    assert not [r for r in caplog.records if "reusing" in r.getMessage()]


def test_systems_evaluated_in_parallel_folders_are_assembled(
    small_synth_dir, small_index, small_relevance_dir, tmp_path, caplog
):
    a, b, joined = tmp_path / "a", tmp_path / "b", tmp_path / "joined"
    main(_args(small_synth_dir, small_index, small_relevance_dir, a, "rules"))
    main(_args(small_synth_dir, small_index, small_relevance_dir, b, "none"))
    caplog.set_level(logging.INFO, logger="leser.evaluation.reuse")
    main([*_args(small_synth_dir, small_index, small_relevance_dir, joined, "none,rules"), "--reuse-from", str(a),
          "--reuse-from", str(b)])  # fmt: skip
    reused = {r.getMessage().split(":")[0] for r in caplog.records if "reusing" in r.getMessage()}
    assert reused == {"none", "rules"}
    systems = json.loads((joined / "results.json").read_text())["systems"]
    assert [s["name"] for s in systems] == ["none", "rules"]
    assert (joined / "generations" / "rules.jsonl").read_text() == (
        a / "generations" / "rules.jsonl"
    ).read_text()
    with pytest.raises(FileNotFoundError, match="nothere"):
        main([*_args(small_synth_dir, small_index, small_relevance_dir, joined, "none"), "--reuse-from",
              str(tmp_path / "nothere")])  # fmt: skip


def test_fingerprint_ignores_other_split_files_of_the_dataset_but_not_its_data(tmp_path):
    from types import SimpleNamespace

    from leser.evaluation.reuse import fingerprint

    dataset, index, relevance = tmp_path / "synth", tmp_path / "index", tmp_path / "relevance"
    for folder in (dataset / "splits_learn", dataset / "truth", index, relevance):
        folder.mkdir(parents=True)
    (dataset / "catalog.parquet").write_bytes(b"catalog")
    split = dataset / "splits_learn" / "eval.jsonl"
    split.write_text('{"query": "a"}\n')
    args = SimpleNamespace(
        split=split, rules=None, dataset=dataset, index=index, relevance=relevance, runs=3, seed=0
    )
    before = fingerprint("rules", args)
    # written after an evaluation by `make grpo GRPO_PROMPTS=low_recall`: no evaluation number depends on it
    (dataset / "splits_learn" / "grpo_low_recall.jsonl").write_text("{}\n")
    (dataset / "splits_other").mkdir()
    (dataset / "splits_other" / "sft.jsonl").write_text("{}\n")
    assert fingerprint("rules", args) == before
    split.write_text('{"query": "b"}\n')  # the evaluated split itself: by content
    assert fingerprint("rules", args) != before
    split.write_text('{"query": "a"}\n')
    assert fingerprint("rules", args) == before
    (dataset / "splits_notes.txt").write_text("a file at the top level counts")
    assert fingerprint("rules", args) != before
    after_notes = fingerprint("rules", args)
    (dataset / "truth" / "grades.parquet").write_bytes(b"truth")
    assert fingerprint("rules", args) != after_notes
