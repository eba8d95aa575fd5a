"""Print the newest ms-swift checkpoint under a run directory, optionally pointing a `last` symlink at it.

ms-swift writes `RUN_DIR/v<N>-<timestamp>/checkpoint-<step>/` (a new `v<N>` per launch). "Newest" is the highest
step of the most recently started version that holds a complete checkpoint (a `config.json` next to the weights).

    python scripts/latest_checkpoint.py runs/cpu/sft                       # prints the path
    python scripts/latest_checkpoint.py runs/cpu/sft --link runs/cpu/sft/last
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, from any working directory

from data_prep.cli import ArgumentParser, run_cli  # noqa: E402

_VERSION = re.compile(r"^v(\d+)-")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def latest_checkpoint(run_dir: str | Path) -> Path:
    """Newest complete checkpoint under `run_dir`; FileNotFoundError naming the folder when there is none."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory (run `make sft` first)")
    candidates = []
    for version in run_dir.iterdir():
        version_match = _VERSION.match(version.name)
        if not version_match or not version.is_dir() or version.is_symlink():
            continue
        for checkpoint in version.iterdir():
            step_match = _CHECKPOINT.match(checkpoint.name)
            if step_match and (checkpoint / "config.json").is_file():
                candidates.append((int(version_match.group(1)), int(step_match.group(1)), checkpoint))
    if not candidates:
        raise FileNotFoundError(
            f"{run_dir}: no v*/checkpoint-*/config.json (did training save a checkpoint?)"
        )
    return max(candidates)[2]


def link(target: Path, link_path: Path) -> None:
    """Point `link_path` at `target` (relative link), replacing an older link atomically."""
    if link_path.exists() and not link_path.is_symlink():
        raise FileExistsError(f"{link_path}: exists and is not a symlink; refusing to replace it")
    tmp = link_path.with_name(f".{link_path.name}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(target, link_path.parent))
    os.replace(tmp, link_path)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="ms-swift output_dir, e.g. runs/cpu/sft")
    parser.add_argument("--link", type=Path, help="also make this symlink point at the checkpoint")
    args = parser.parse_args(argv)
    checkpoint = latest_checkpoint(args.run_dir)
    if args.link:
        link(checkpoint, args.link)
    print(checkpoint)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
