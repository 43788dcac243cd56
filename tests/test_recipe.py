from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dpotcube.cli import app
from dpotcube.errors import RecipeError
from dpotcube.recipe import load_recipe

from .conftest import REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_shipped_recipes_are_valid():
    for path in (REPO / "recipes").glob("*.yaml"):
        recipe, _ = load_recipe(path)
        assert recipe.name


def test_defaults_and_override(tmp_path):
    recipe, text = load_recipe(write(tmp_path, "name: a\n"), ["fields.steps=2000", "data.n_stars=1234"])
    assert recipe.fields.steps == 2000 and recipe.data.n_stars == 1234
    assert yaml.safe_load(text)["fields"]["steps"] == 2000
    assert recipe.fields.method == "conditional" and recipe.publish.catalog == Path("catalog/catalog.yaml")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name: a\nfields:\n  stepz: 3\n", "[recipe -> fields -> stepz] unknown key; did you mean `steps`?"),
        ("name: a\nfields:\n  steps: many\n", "[recipe -> fields -> steps]"),
        ("name: a\ncube:\n  spacing_kpc: -0.1\n", "[recipe -> cube -> spacing_kpc] Input should be greater than 0"),
        ("name: a\ndata:\n  n_stars: 0\n", "[recipe -> data -> n_stars]"),
        ("name: a\nfields:\n  method: magic\n", "'conditional'"),
        ("seed: 1\n", "[recipe -> name] is required but missing"),
        ("name: a\ndata:\n  source: table\n", "needs a `data.table` section"),
        ("name: a\n  bad: [\n", "not valid YAML"),
        ("- a\n- b\n", "must be a YAML mapping"),
        ("name: ../../escape\n", "[recipe -> name] String should match pattern"),
        ("name: a\ndensity:\n  velocity:\n    flow_layer: 4\n",
         "[recipe -> density -> velocity -> flow_layer] unknown key; did you mean `flow_layers`?"),
        ("name: a\ndensity:\n  velocity:\n    type: cfm\n    widht: 64\n",
         "[recipe -> density -> velocity -> widht] unknown key; did you mean `width`?"),
        ("name: a\ndensity:\n  position:\n    type: cfm\n    max_weigth: 5\n",
         "[recipe -> density -> position -> max_weigth] unknown key; did you mean `max_weight`?"),
        ("name: a\ndensity:\n  velocity:\n    type: flowmatching\n",
         "[recipe -> density -> velocity -> type] unknown density model (got 'flowmatching'); allowed types: maf, cfm"),
        ("name: a\ndensity:\n  position:\n    type: cfm\n    flow_layers: 4\n",
         "[recipe -> density -> position -> flow_layers] unknown key; `flow_layers` is a key of `type: maf`"),
        ("name: a\ndensity:\n  velocity:\n    type: cfm\n    ode_steps: 0\n",
         "[recipe -> density -> velocity -> ode_steps] Input should be greater than 0"),
    ],
)
def test_bad_recipes_name_key_and_fix(tmp_path, text, expected):
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, text))
    assert expected in str(info.value)


def test_flow_sections_choose_their_model_by_type(tmp_path):
    """No `type:` is `maf` (every earlier recipe); `type: cfm` takes the CFM's keys, for p(v|x) and n(x)."""
    plain, _ = load_recipe(write(tmp_path, "name: a\ndensity:\n  velocity: {nn_width: 32}\n  position: {}\n"))
    assert (plain.density.velocity.type, plain.density.position.type) == ("maf", "maf")
    assert plain.density.velocity.nn_width == 32
    text = "name: a\ndensity:\n  velocity: {type: cfm, width: 64}\n  position: {type: cfm, support: free}\n"
    cfm, _ = load_recipe(write(tmp_path, text))
    assert (cfm.density.velocity.type, cfm.density.velocity.width) == ("cfm", 64)
    assert (cfm.density.position.type, cfm.density.position.support) == ("cfm", "free")
    assert load_recipe(write(tmp_path, "name: a\n"), ["density.velocity.type=cfm"])[0].density.velocity.type == "cfm"


def test_paper_recipe_validates():
    """`dpotcube validate recipes/paper-plummer.yaml`: every check of a build before its first stage passes."""
    result = CliRunner().invoke(app, ["validate", str(REPO / "recipes" / "paper-plummer.yaml")])
    assert result.exit_code == 0, result.output
    assert "is valid" in result.output


def test_bad_override(tmp_path):
    with pytest.raises(RecipeError, match="must look like `section.key=value`"):
        load_recipe(write(tmp_path, "name: a\n"), ["fields.steps"])


def test_cli_bad_recipe_exits_2_without_traceback(tmp_path):
    result = CliRunner().invoke(app, ["validate", str(write(tmp_path, "name: a\nfields:\n  stepz: 3\n"))])
    assert result.exit_code == 2
    assert "did you mean `steps`?" in result.output
    assert "Traceback" not in result.output


def test_cli_validate_prints_filled_recipe(tmp_path):
    result = CliRunner().invoke(app, ["validate", str(write(tmp_path, "name: a\n")), "--set", "seed=7"])
    assert result.exit_code == 0, result.output
    assert "seed: 7" in result.output and "is valid" in result.output


def test_position_jitter_on_an_unconditional_flow_is_refused_with_where_to_put_it():
    """`condition_noise_kpc` jitters the condition of p(v|x); under `density.position` it would be silently ignored."""
    with pytest.raises(RecipeError, match=r"density -> position.*n\(x\) has no condition.*density.velocity"):
        load_recipe(REPO / "recipes" / "quickstart.yaml",
                    ["density.position.type=maf", "density.position.condition_noise_kpc=0.2"])
    recipe, _ = load_recipe(REPO / "recipes" / "quickstart.yaml", ["density.velocity.condition_noise_kpc=0.2"])
    assert recipe.density.velocity.condition_noise_kpc == 0.2
