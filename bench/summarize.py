"""Concatenate the per-benchmark Markdown sections in bench/results/ into bench/RESULTS.md."""

import os
import platform
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    sections = sorted(RESULTS.glob("*.md"))
    header = (
        "# Benchmark results\n\n"
        f"Written by `make bench` on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}.\n"
        "Each section below is produced by one `bench/bench_*.py`; raw numbers are in `bench/results/*.json`.\n\n"
    )
    body = "\n".join(p.read_text().rstrip() + "\n" for p in sections)
    out = Path(__file__).parent / "RESULTS.md"
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text(header + body)
    os.replace(tmp, out)
    print(f"wrote {out} ({len(sections)} sections)")


if __name__ == "__main__":
    main()
