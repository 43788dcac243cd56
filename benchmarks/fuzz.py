"""Generated bad inputs: mutated recipes, overrides and star tables; each must end in a plan or one clear error.

    python -m benchmarks run fuzz [--recipes N] [--tables N] [--seed S]

Recipes start from a small valid one and get mutated by hypothesis: values of every key replaced by
wrong types, NaN/inf, extreme or huge numbers, booleans, text, lists or mappings; keys dropped, repeated
or added; `--set` overrides of random text. Each goes through `dpotcube validate` (the checks `build`
makes before any work). Tables (CSV) get random columns (missing, duplicated, renamed), values (NaN, text,
booleans, constant, huge) and sizes (0 to 400 rows), and go through the stars stage. Every input must end
in a valid plan or exit code 2 with a message naming a key or file, within `CASE_SECONDS`, with no
traceback and no file written outside the build folder. Writes `benchmarks/results/fuzz.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from .report import REPO, environment, provenance_line

TITLE = "Fuzzing bad inputs"
RESULTS = REPO / "benchmarks" / "results" / "fuzz.json"
CASE_SECONDS = 20
"""Longest any one input may take before it counts as a hang."""

BASE: dict[str, Any] = {
    "name": "fuzz",
    "data": {"source": "plummer", "n_stars": 2000},
    "density": {"velocity": {"flow_layers": 1, "nn_width": 8, "max_epochs": 1}, "collocation": {"n_positions": 256}},
    "fields": {"steps": 50, "potential": {"width": 8, "depth": 1}, "log_density": {"width": 8, "depth": 1}},
    "cube": {"spacing_kpc": 1.0},
    "diagnostics": {"velocities": 20000, "mcmc_steps": 1000},
}


def _leaves() -> tuple[list[str], dict[str, Any]]:
    """Every key path of a full recipe (defaults filled in, optional sections included), and its default."""
    from dpotcube.recipe import recipe_from_dict

    raw = {**BASE, "density": {**BASE["density"], "position": {}}, "data": {**BASE["data"], "observation": {}}}
    full = recipe_from_dict(raw).model_dump(mode="json")
    full["data"]["table"] = {"path": "stars.csv", "coordinates": "galactocentric", "columns": {}, "max_nonfinite_fraction": 0.01}
    out: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            if prefix:
                out.append(prefix)
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else key)
        else:
            out.append(prefix)

    walk(full, "")
    defaults: dict[str, Any] = {}
    for path in out:
        node: Any = full
        for part in path.split("."):
            node = node[part]
        defaults[path] = node
    return sorted(out), defaults


LEAVES, _DEFAULTS = _leaves()


def _near(value: Any) -> st.SearchStrategy:
    """Values of the right type near the default: scaled numbers, flipped booleans (often still valid)."""
    if isinstance(value, bool):
        return st.just(not value)
    if isinstance(value, int):
        return st.sampled_from([value + 1, value - 1, value * 2, value // 2, value * 10, 0, -value])
    if isinstance(value, float):
        return st.sampled_from([value * 2, value / 2, value * 10, value / 10, -value, 0.0])
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        return st.lists(st.floats(-20, 20), min_size=len(value) - 1, max_size=len(value) + 1)
    return st.just(value)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2**31, 2**32, 2**63, 10**30, -(10**30), 1e-300, 1e300, 1e308, -0.0, 0.5, 0.999999]),
    st.integers(min_value=-(10**12), max_value=10**12),
)
SCALARS = st.one_of(
    NUMBERS, st.booleans(), st.none(), st.text(max_size=20),
    st.sampled_from(["yes", "no", "on", ".nan", ".inf", "-.inf", "1e400", "0x10", "1_000", "~", "", "null", "[]"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)
YAML_TEXT = st.text(alphabet=st.sampled_from(list("{}[]:,&*!|>'\"%@#-?ab01.e+ \n")), max_size=30)


@st.composite
def recipe_inputs(draw) -> tuple[str, list[str]]:
    """A mutated recipe (YAML text) and its `--set` overrides."""
    raw = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(LEAVES)).split(".")
        action = draw(st.sampled_from(["set", "set", "set", "drop", "extra"]))
        node = raw
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if action == "set":
            old = node.get(path[-1], _DEFAULTS.get(".".join(path)))
            node[path[-1]] = draw(st.one_of(VALUES, _near(old)))
        elif action == "drop":
            node.pop(path[-1], None)
        else:
            node[draw(st.text(min_size=1, max_size=12))] = draw(SCALARS)
    text = yaml.safe_dump(raw, sort_keys=False)
    if draw(st.integers(0, 9)) == 0:  # a repeated top-level key
        text += f"seed: {draw(st.integers(0, 9))}\nseed: 1\n"
    if draw(st.integers(0, 9)) == 0:  # raw YAML noise
        text += draw(YAML_TEXT)
    overrides = []
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.one_of(st.sampled_from(LEAVES), st.text(max_size=12)))
        value = draw(st.one_of(YAML_TEXT, SCALARS.map(lambda v: yaml.safe_dump(v).removesuffix("\n...\n").strip())))
        overrides.append(draw(st.sampled_from([f"{key}={value}", f"{key}{value}", f"{key}={{{value}}}"])))
    return text, overrides


COLUMNS = ["x", "y", "z", "vx", "vy", "vz"]
CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "nan", "inf", "True", "abc", "1e400", "-8.1", "0"]),
    st.floats(-5, 5).map(lambda v: f"{v:.3f}"),
)


@st.composite
def table_inputs(draw) -> tuple[str, dict[str, Any]]:
    """CSV text of a mutated star table and the recipe's `data.table` section that reads it."""
    import numpy as np

    n = draw(st.sampled_from([0, 1, 150, 400, 400, 1000]))
    names = list(COLUMNS)
    action = draw(st.sampled_from(["none", "drop", "duplicate", "rename", "constant", "cells", "scale", "bool"]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    values = np.column_stack([-8.122 + rng.uniform(-1, 1, n), rng.uniform(-1, 1, (n, 2)), rng.normal(0, 100, (n, 3))])
    cells = [[f"{v:.4f}" for v in row] for row in values]
    column = draw(st.integers(0, 5))
    if action == "drop":
        names.pop(column)
        cells = [row[:column] + row[column + 1:] for row in cells]
    elif action == "duplicate":
        names.append(names[column])
        cells = [[*row, row[column]] for row in cells]
    elif action == "rename":
        names[column] = draw(st.text(alphabet="abcxyz_", min_size=1, max_size=6))
    elif action == "constant":
        for row in cells:
            row[column] = "0.5"
    elif action == "cells":
        for _ in range(draw(st.integers(1, 5))):
            if cells:
                cells[draw(st.integers(0, len(cells) - 1))][column] = draw(CELLS)
    elif action == "scale":
        factor = draw(st.sampled_from([1e-6, 1e3, 1e6, 1e300]))
        for row in cells:
            row[column] = repr(float(row[column]) * factor)
    elif action == "bool":
        for row in cells:
            row[column] = draw(st.sampled_from(["True", "False"]))
    text = ",".join(names) + "\n" + "".join(",".join(row) + "\n" for row in cells)
    section = {"path": "stars.csv"}
    if draw(st.booleans()):
        section["max_nonfinite_fraction"] = draw(st.sampled_from([0.0, 0.5, 1.0]))
    return text, section


@contextlib.contextmanager
def time_limit(seconds: int, what: str) -> Iterator[None]:
    """Fail with `TimeoutError` (a hang) when the block runs longer than `seconds` (main thread only)."""

    def expired(signum, frame):
        raise TimeoutError(f"{what} ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def snapshot(project: Path) -> dict[str, str]:
    """Every file under `project` except inside its `builds/` folder, with its checksum."""
    files = (p for p in project.rglob("*") if p.is_file() and "builds" not in p.relative_to(project).parts)
    return {str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def check_recipe_case(project: Path, text: str, overrides: list[str]) -> str:
    """Run `dpotcube validate` on one recipe; return "plan" or "error", or raise AssertionError saying what broke."""
    recipe = project / "fuzz.yaml"
    recipe.write_text(text)
    args = ["validate", str(recipe), "--out", str(project / "builds" / "fuzz"),
            "--set", f"publish.catalog={project / 'catalog' / 'catalog.yaml'}"]
    args += [w for o in overrides for w in ("--set", o)]
    return _invoke(project, args, files=(recipe,))


def check_table_case(project: Path, text: str, section: dict[str, Any]) -> str:
    """Read one table through the stars stage; return "plan" or "error", or raise AssertionError."""
    (project / "stars.csv").write_text(text)
    recipe = json.loads(json.dumps(BASE))
    recipe["data"] = {"source": "table", "table": section}
    (project / "fuzz.yaml").write_text(yaml.safe_dump(recipe))
    return _invoke(project, ["stars", str(project / "fuzz.yaml")], files=(project / "fuzz.yaml", project / "stars.csv"))


def _invoke(project: Path, args: list[str], files: tuple[Path, ...]) -> str:
    from typer.testing import CliRunner

    from dpotcube.cli import app

    before = snapshot(project)
    cwd = os.getcwd()
    os.chdir(project)
    started = time.perf_counter()
    try:
        with time_limit(CASE_SECONDS, " ".join(args[:2])):
            result = _STARS(args) if args[0] == "stars" else CliRunner().invoke(app, args)
    finally:
        os.chdir(cwd)
    seconds = time.perf_counter() - started
    output = result.output if hasattr(result, "output") else result[1]
    code = result.exit_code if hasattr(result, "exit_code") else result[0]
    inputs = "\n".join(f"--- {f.name}\n{f.read_text()[:2000]}" for f in files)
    assert "Traceback" not in output, f"traceback:\n{output[-3000:]}\n{inputs}"
    assert code in (0, 2), f"exit {code} after {seconds:.1f} s:\n{output[-3000:]}\n{inputs}"
    assert snapshot(project) == before, f"files written outside the build folder:\n{inputs}"
    if code == 2:
        message = " ".join(output.split())
        assert message.count("error: ") == 1, f"not one error line:\n{output[-3000:]}\n{inputs}"
        names = "recipe ->" in message or "`" in message or str(project) in message or "--" in message
        assert names, f"message names no key or file: {message}\n{inputs}"
        return "error"
    return "plan"


def _STARS(args: list[str]) -> tuple[int, str]:
    """The stars stage of a recipe, as `build` runs it, with the CLI's error handling: (exit code, output)."""
    from dpotcube.errors import DpotcubeError
    from dpotcube.recipe import load_recipe
    from dpotcube.sources import load_stars

    try:
        recipe, _ = load_recipe(args[1])
        load_stars(recipe.data, seed=0)
    except DpotcubeError as exc:
        return 2, f"error: {exc}"
    except Exception:  # noqa: BLE001 -- any other exception is what the fuzzing looks for: report it
        import traceback

        return 1, traceback.format_exc()
    return 0, "stars read"


def run(argv: list[str]) -> dict:
    from hypothesis import HealthCheck, given, settings

    parser = argparse.ArgumentParser(prog="python -m benchmarks run fuzz")
    parser.add_argument("--recipes", type=int, default=1600, help="Generated recipes (with overrides).")
    parser.add_argument("--tables", type=int, default=400, help="Generated star tables.")
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed.")
    args = parser.parse_args(argv)
    import tempfile

    tally: dict[str, dict[str, int]] = {"recipes": {}, "tables": {}}
    failures: list[dict[str, str]] = []
    slowest = {"recipes": 0.0, "tables": 0.0}
    project = Path(tempfile.mkdtemp(prefix="dpotcube-fuzz-"))

    def one(kind: str, check, *inputs) -> None:
        started = time.perf_counter()
        try:
            outcome = check(project, *inputs)
        except (AssertionError, TimeoutError) as exc:
            outcome = "failure"
            failures.append({"kind": kind, "what": str(exc)[:4000]})
        slowest[kind] = max(slowest[kind], time.perf_counter() - started)
        tally[kind][outcome] = tally[kind].get(outcome, 0) + 1

    common = {"deadline": None, "database": None, "derandomize": False,
              "suppress_health_check": list(HealthCheck)}

    @settings(max_examples=args.recipes, **common)
    @given(recipe_inputs())
    def recipes(case):
        one("recipes", check_recipe_case, *case)

    @settings(max_examples=args.tables, **common)
    @given(table_inputs())
    def tables(case):
        one("tables", check_table_case, *case)

    from hypothesis import seed as hypothesis_seed

    started = time.perf_counter()
    hypothesis_seed(args.seed)(recipes)()
    hypothesis_seed(args.seed)(tables)()
    seconds = time.perf_counter() - started
    tried = sum(sum(t.values()) for t in tally.values())
    print(f"{tried} inputs in {seconds:.0f} s: {tally}; {len(failures)} failure(s)", file=sys.stderr)
    return {
        "command": "python -m benchmarks run fuzz " + " ".join(argv),
        **environment(),
        "inputs": tried,
        "outcomes": tally,
        "failures": failures[:20],
        "n_failures": len(failures),
        "seconds": round(seconds, 1),
        "slowest_case_s": {k: round(v, 2) for k, v in slowest.items()},
        "case_limit_s": CASE_SECONDS,
    }


def markdown(result: dict) -> str:
    rows = [f"| {kind} | {sum(t.values()):,} | {t.get('plan', 0):,} | {t.get('error', 0):,} | {t.get('failure', 0):,} | "
            f"{result['slowest_case_s'][kind]} |" for kind, t in result["outcomes"].items()]
    return "\n".join([
        f"## {TITLE}", "",
        (f"{result['inputs']:,} generated inputs in {result['seconds']} s; {result['n_failures']} ended otherwise than "
         f"in a valid plan or one clear error (a traceback, another exit code, a hang over {result['case_limit_s']} s, "
         "or a file written outside the build folder)."), "",
        "| inputs | tried | valid plan | clear error (exit 2) | failures | slowest case (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *rows, "", provenance_line(result), "",
    ])
