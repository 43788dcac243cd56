"""The benchmarks' one entry point.

    python -m benchmarks list                 # every benchmark, with what it measures
    python -m benchmarks run NAME [OPTIONS]   # measure; write benchmarks/results/*.json and its table
    python -m benchmarks run NAME --help      # a benchmark's own options
    python -m benchmarks report               # redraw every table in docs/benchmarks.md from the JSON files
"""

from __future__ import annotations

import sys

from .registry import BENCHMARKS, load, summary
from .report import DOC, record, render


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in ("list", "run", "report"):
        print(__doc__)
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    command, rest = argv[0], argv[1:]
    if command == "list":
        width = max(map(len, BENCHMARKS))
        for name in BENCHMARKS:
            print(f"{name:<{width}}  {summary(name)}")
    elif command == "report":
        DOC.write_text(render(DOC.read_text()))
        print(f"redrew {len(BENCHMARKS)} sections of {DOC}")
    else:
        if not rest:
            raise SystemExit(f"`run` needs a benchmark name: {', '.join(BENCHMARKS)}.")
        result = load(rest[0]).run(rest[1:])
        record(rest[0], result)


if __name__ == "__main__":
    main(sys.argv[1:])
