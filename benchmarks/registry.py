"""Every benchmark, by name: `python -m benchmarks run NAME` runs it, `report` redraws its table.

A benchmark is a module with
- a docstring whose first line says what it measures (shown by `python -m benchmarks list`),
- `TITLE: str`, the heading of its section, and `RESULTS: Path`, its JSON file in `benchmarks/results/`,
- `run(argv: list[str]) -> dict`, which measures and returns the result (with `command` and `environment()`),
- `markdown(result: dict) -> str`, its section of `docs/benchmarks.md`, with `provenance_line(result)`,
and one line here. The name is also the section's marker in docs/benchmarks.md (`<!-- NAME:start -->`).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

BENCHMARKS: dict[str, str] = {
    "quickstart": "benchmarks.quickstart",
    "accuracy": "benchmarks.accuracy",
    "methods": "benchmarks.methods",
    "ensembles": "benchmarks.ensembles",
    "pointwise": "benchmarks.pointwise",
    "gradients": "benchmarks.gradients",
    "cube-throughput": "benchmarks.cube_throughput",
    "weak": "benchmarks.weak",
    "startup": "benchmarks.startup",
    "fuzz": "benchmarks.fuzz",
    "solver": "benchmarks.solver",
    "budget": "benchmarks.budget",
    "curvature": "benchmarks.curvature",
    "seeds": "benchmarks.seeds",
    "device": "benchmarks.device",
    "scaling": "benchmarks.scaling",
    "paper-plummer": "benchmarks.paper_plummer",
}


def load(name: str) -> ModuleType:
    if name not in BENCHMARKS:
        raise SystemExit(f"No benchmark `{name}`; `python -m benchmarks list` names them: {', '.join(BENCHMARKS)}.")
    return importlib.import_module(BENCHMARKS[name])


def summary(name: str) -> str:
    """First line of the benchmark module's docstring, read without importing it (no JAX start-up)."""
    spec = importlib.util.find_spec(BENCHMARKS[name])
    assert spec is not None and spec.origin is not None
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""
    return doc.splitlines()[0] if doc else ""
