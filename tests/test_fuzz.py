"""Generated bad inputs (hypothesis): every mutated recipe, override and star table ends in a valid plan or in
one clear error (exit 2, naming a key or file), in bounded time, with no traceback and nothing written outside
the build folder. The longer run is `python -m benchmarks run fuzz` (docs/bad-inputs.md)."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from benchmarks.fuzz import check_recipe_case, check_table_case, recipe_inputs, table_inputs


def fast(examples: int) -> settings:
    """Fixed examples, same inputs on every run (derandomized), no example database, our own time limit per case."""
    return settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@fast(600)
@given(case=recipe_inputs())
def test_mutated_recipes_end_in_a_plan_or_one_clear_error(project, case):
    text, overrides = case
    assert check_recipe_case(project, text, overrides) in ("plan", "error")


@fast(200)
@given(case=table_inputs())
def test_mutated_tables_end_in_stars_or_one_clear_error(project, case):
    text, section = case
    assert check_table_case(project, text, section) in ("plan", "error")


def test_the_generators_reach_both_outcomes(project):
    """The fuzz suite is not vacuous: the unmutated recipe and table give a plan, a NaN gives an error."""
    import yaml

    from benchmarks.fuzz import BASE, COLUMNS

    assert check_recipe_case(project, yaml.safe_dump(BASE), []) == "plan"
    assert check_recipe_case(project, yaml.safe_dump(BASE), ["cube.centre_kpc=[.nan, 0, 0]"]) == "error"
    rows = "".join(f"{-8.1 + (i % 7) / 10},{(i % 5) / 10},{(i % 3) / 10},{i % 11},{i % 13},{i % 17}\n" for i in range(400))
    assert check_table_case(project, ",".join(COLUMNS) + "\n" + rows, {"path": "stars.csv"}) == "plan"
