"""Step times of the CPU profile: `swift sft` and `swift rlhf` (GRPO) on the demo recipes, a few steps each.

Runs the real recipes (recipes/SmolLM2-135M-Instruct/{sft,grpo}/cpu.yaml) on the embedded default data with
`--max_steps N`, then reads ms-swift's logging.jsonl for the per-step wall time and the children's rusage for the
CPU time. CPU time per step is the contention-robust number (the wall time on a shared machine is inflated by other
jobs); both are reported, with the load average at the start.

    python bench/bench_recipes.py            # 3 SFT steps + 3 GRPO steps
    python bench/bench_recipes.py --quick    # 1 + 1
Needs `make data` (artifacts/synth/splits) and models/smollm2-135m-instruct.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results"
sys.path.insert(0, str(REPO_ROOT / "scripts"))
from plot_grpo import find_logging_jsonl  # noqa: E402


class StepTiming(NamedTuple):
    stage: str
    steps: int
    wall_s_per_step: float  # ms-swift's own train_speed(s/it) at the last step (excludes start-up)
    cpu_s_total: float  # user + system CPU time of the whole run, start-up included
    wall_s_total: float
    load_avg_1m: float


def run_stage(stage: str, recipe: str, steps: int, work: Path, extra: list[str]) -> StepTiming:
    out_dir = work / stage
    cmd = [
        str(REPO_ROOT / ".venv/bin/swift"),
        "sft" if stage == "sft" else "rlhf",
        recipe,
        "--output_dir",
        str(out_dir),
        "--max_steps",
        str(steps),
        "--save_strategy",
        "no",
        *extra,
    ]
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    print(f"== [{stage}] {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, cwd=REPO_ROOT, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rows = [json.loads(line) for line in find_logging_jsonl(out_dir).read_text().splitlines() if line.strip()]
    speeds = [r["train_speed(s/it)"] for r in rows if "train_speed(s/it)" in r]
    if not speeds:
        raise RuntimeError(f"{out_dir}: logging.jsonl has no train_speed(s/it) row")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return StepTiming(stage, steps, float(speeds[-1]), cpu, wall, load)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 step per stage instead of 3")
    parser.add_argument(
        "--model", default=None, help="GRPO start model (default: runs/cpu/sft/last or the base)"
    )
    args = parser.parse_args(argv)
    steps = 1 if args.quick else 3
    grpo_model = args.model or next(
        p for p in ("runs/cpu/sft/last", "models/smollm2-135m-instruct") if (REPO_ROOT / p).exists()
    )
    with tempfile.TemporaryDirectory(prefix="bench_recipes_") as tmp:
        work = Path(tmp)
        timings = [
            run_stage("sft", "recipes/SmolLM2-135M-Instruct/sft/cpu.yaml", steps, work, []),
            run_stage(
                "grpo", "recipes/SmolLM2-135M-Instruct/grpo/cpu.yaml", steps, work, ["--model", grpo_model]
            ),
        ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"cpu_count": os.cpu_count(), "timings": [t._asdict() for t in timings]}
    (RESULTS / "recipes.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "## Recipes: CPU profile step times (SmolLM2-135M, 2 cores)",
        "",
        "| stage | steps | wall s/step (ms-swift) | CPU s total | wall s total | load avg at start |",
        "|---|---|---|---|---|---|",
        *[
            f"| {t.stage} | {t.steps} | {t.wall_s_per_step:.1f} | {t.cpu_s_total:.0f} | {t.wall_s_total:.0f} | "
            f"{t.load_avg_1m:.1f} |"
            for t in timings
        ],
        "",
        f"Command: `python bench/bench_recipes.py{' --quick' if args.quick else ''}`. SFT step = 8 sequences; GRPO "
        "step = 1 prompt x 4 samples (<= 160 new tokens) + reward + update.",
    ]
    (RESULTS / "recipes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
