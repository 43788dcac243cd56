"""Start-up time: `import dpotcube` and `dpotcube --help` in fresh interpreters (goals 1.5 s and 2 s on 2 cores).

    python -m benchmarks run startup [--repeats N]

Each command runs `--repeats` times in a new Python process (the first run warms the file cache and is
not counted); the table shows the median and the fastest wall time, and whether JAX was imported.
Writes `benchmarks/results/startup.json` and the startup section of `docs/benchmarks.md`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from .report import REPO, environment, provenance_line

TITLE = "Start-up time"
RESULTS = REPO / "benchmarks" / "results" / "startup.json"
GOALS_S = {"import dpotcube": 1.5, "dpotcube --help": 2.0}
COMMANDS = {
    "import dpotcube": [sys.executable, "-c", "import sys, dpotcube; print('jax' in sys.modules)"],
    "dpotcube --help": [sys.executable, "-c", "import sys\nfrom dpotcube.cli import app\ntry:\n    app(['--help'])\n"
                        "except SystemExit:\n    pass\nprint('jax' in sys.modules)"],
}


def time_command(command: list[str], repeats: int) -> dict:
    """Wall seconds of `command` in `repeats` fresh processes (after one uncounted warm-up), and whether JAX loaded."""
    seconds, jax_loaded = [], False
    for i in range(repeats + 1):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=True)
        if i:
            seconds.append(time.perf_counter() - started)
        jax_loaded = done.stdout.strip().splitlines()[-1] == "True"
    return {"median_s": round(statistics.median(seconds), 3), "min_s": round(min(seconds), 3), "repeats": repeats,
            "imports_jax": jax_loaded}


def markdown(r: dict) -> str:
    lines = [f"## {TITLE}", "", provenance_line(r), r.get("conditions", ""), "",
             "| command | median | fastest | goal | imports JAX |", "| --- | --- | --- | --- | --- |"]
    for name, c in r["commands"].items():
        lines.append(f"| `{name}` | {c['median_s']:.2f} s | {c['min_s']:.2f} s | ≤ {GOALS_S[name]:g} s | "
                     f"{'yes' if c['imports_jax'] else 'no'} |")
    return "\n".join([*lines, ""]) + "\n"


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run startup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--conditions", default="", help="What else the machine was doing (shown under the table).")
    args = parser.parse_args(argv)
    commands = {name: time_command(cmd, args.repeats) for name, cmd in COMMANDS.items()}
    command = " ".join(["python -m benchmarks run startup", *argv])
    return {"command": command, **environment(), "conditions": args.conditions, "commands": commands}
