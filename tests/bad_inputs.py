"""The catalogue of bad inputs: each must end in one clear message, exit code 2, and no change on disk.

`tests/test_bad_inputs.py` runs every case; `docs/bad-inputs.md` is generated from the messages
(`DPOTCUBE_UPDATE_DOCS=1 pytest tests/test_bad_inputs.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

import dpotcube

PACKAGE = Path(dpotcube.__file__).resolve().parent
BASE = {
    "name": "probe",
    "data": {"source": "plummer", "n_stars": 2000},
    "density": {"velocity": {"flow_layers": 1, "nn_width": 8, "max_epochs": 1}, "collocation": {"n_positions": 256}},
    "fields": {"steps": 50, "potential": {"width": 8, "depth": 1}, "log_density": {"width": 8, "depth": 1}},
    "cube": {"spacing_kpc": 1.0},
}


@dataclass(frozen=True)
class BadInput:
    id: str
    description: str
    args: Callable[[Path], list[str]]  # given the project folder, write what is needed, return CLI args
    expect: str  # a phrase the message must contain


def recipe(world: Path, text: str | None = None, **changes) -> str:
    """Write a recipe (BASE with dotted `changes`, or raw `text`) into the project; return its path."""
    if text is None:
        raw = yaml.safe_load(yaml.safe_dump(BASE))
        for dotted, value in changes.items():
            node = raw
            *parents, last = dotted.split("__")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        text = yaml.safe_dump(raw)
    path = world / "bad.yaml"
    path.write_text(text)
    return str(path)


def build(world: Path, *extra: str, text: str | None = None, **changes) -> list[str]:
    return ["build", recipe(world, text, **changes), "--out", str(world / "builds" / "probe"), *extra]


def table(world: Path, name: str, n: int = 2000, scale_x: float = 1.0, scale_v: float = 1.0, nan_rows: int = 0,
          drop: tuple[str, ...] = (), unit_x: str | None = None, errors: tuple[str, ...] = (), **changes) -> list[str]:
    """A table of Plummer-like stars around the Sun (with 1σ `errors` columns), written with astropy, and a build
    that reads it (with dotted recipe `changes`)."""
    from astropy.table import Table

    rng = np.random.default_rng(0)
    pos = np.array([-8.122, 0.0, 0.02]) + rng.uniform(-1, 1, (n, 3))
    vel = rng.normal(0, 100, (n, 3))
    columns = {"x": pos[:, 0] * scale_x, "y": pos[:, 1] * scale_x, "z": pos[:, 2] * scale_x,
               "vx": vel[:, 0] * scale_v, "vy": vel[:, 1] * scale_v, "vz": vel[:, 2] * scale_v}
    columns["x"][:nan_rows] = np.nan
    columns |= {f"{coordinate}_error": np.full(n, 0.01) for coordinate in errors}
    t = Table({k: v for k, v in columns.items() if k not in drop})
    if unit_x:
        t["x"].unit = unit_x
    t.write(world / name, overwrite=True)
    return build(world, data={"source": "table", "table": {"path": name}}, **changes)


def selection_table(world: Path) -> list[str]:
    """A table whose `S` column holds probabilities above 1, named as the selection column."""
    import pandas as pd

    rng = np.random.default_rng(1)
    pos = np.array([-8.122, 0.0, 0.02]) + rng.uniform(-1, 1, (2000, 3))
    frame = pd.DataFrame(np.hstack([pos, rng.normal(0, 100, (2000, 3))]), columns=["x", "y", "z", "vx", "vy", "vz"])
    frame["S"] = rng.uniform(0.5, 1.5, 2000)
    frame.to_parquet(world / "selected.parquet")
    table = {"path": "selected.parquet", "selection_column": "S"}
    return build(world, data={"source": "table", "table": table}, density__position={"selection_weights": True})


def truncated_parquet(world: Path) -> list[str]:
    args = table(world, "cut.parquet")
    data = (world / "cut.parquet").read_bytes()
    (world / "cut.parquet").write_bytes(data[: len(data) // 2])
    return args


def corrupt_catalog(world: Path, text: str) -> list[str]:
    (world / "other_catalog.yaml").write_text(text)
    return build(world, "--set", f"publish.catalog={world / 'other_catalog.yaml'}")


def incomplete_store(world: Path) -> list[str]:
    store = world / "half.zarr"
    (store / "potential").mkdir(parents=True, exist_ok=True)
    return ["catalog", "show", str(store)]


CASES: list[BadInput] = [
    BadInput("malformed_yaml", "recipe that is not valid YAML", lambda w: build(w, text="name: a\n  bad: [\n"), "not valid YAML"),
    BadInput("not_a_mapping", "recipe that is a YAML list", lambda w: build(w, text="- a\n- b\n"), "must be a YAML mapping"),
    BadInput("missing_recipe", "recipe file that does not exist", lambda w: ["build", str(w / "nope.yaml")], "Cannot read recipe"),
    BadInput("unknown_section", "misspelt section `feilds`", lambda w: build(w, feilds={}), "did you mean `fields`?"),
    BadInput("unknown_key", "misspelt key `fields.stepz`", lambda w: build(w, fields__stepz=3), "did you mean `steps`?"),
    BadInput("wrong_type", "`fields.steps: many`", lambda w: build(w, fields__steps="many"), "[recipe -> fields -> steps]"),
    BadInput("negative_spacing", "`cube.spacing_kpc: -0.1`", lambda w: build(w, cube__spacing_kpc=-0.1), "[recipe -> cube -> spacing_kpc] Input should be greater than 0"),
    BadInput("zero_stars", "`data.n_stars: 0`", lambda w: build(w, data__n_stars=0), "[recipe -> data -> n_stars]"),
    BadInput("too_few_mock_stars", "`data.n_stars: 50` (too few for a flow)", lambda w: build(w, data__n_stars=50), "greater than or equal to 200"),
    BadInput("negative_volume", "`data.volume_radius_kpc: -1`", lambda w: build(w, data__volume_radius_kpc=-1), "[recipe -> data -> volume_radius_kpc]"),
    BadInput("unknown_method", "`fields.method: magic`", lambda w: build(w, fields__method="magic"), "[recipe -> fields -> method]"),
    BadInput("flat_flow_keys", "flow settings directly under `density:` (the old layout)", lambda w: build(w, density={"nn_width": 32}), "now live under `density.velocity:`"),
    BadInput("unknown_flow_activation", "`density.velocity.activation: relu`", lambda w: build(w, density__velocity__activation="relu"), "[recipe -> density -> velocity -> activation]"),
    BadInput("spline_transformer", "`density.velocity.transformer: spline`", lambda w: build(w, density__velocity__transformer="spline"), "[recipe -> density -> velocity -> transformer]"),
    BadInput("flow_positions_without_flow", "`density.collocation.positions: flow` without `density.position`", lambda w: build(w, density__collocation__positions="flow"), "needs a `density.position:` section"),
    BadInput("weights_without_selection", "`density.position.selection_weights: true` for the mock", lambda w: build(w, density__position={"selection_weights": True}), "needs each star's S(x)"),
    BadInput("observation_for_table", "`data.observation` with `data.source: table`", lambda w: build(w, data={"source": "table", "table": {"path": "t.parquet"}, "observation": {}}), "needs `data.source: plummer`"),
    BadInput("too_few_dust_nodes", "`data.observation.dust.quadrature_nodes: 16`", lambda w: build(w, data__observation={"dust": {"quadrature_nodes": 16}}), "set it to at least 60"),
    BadInput("selection_out_of_range", "selection column with values above 1", lambda w: selection_table(w), "must hold selection probabilities in (0, 1]"),
    BadInput("method_without_position_flow", "`fields.method: vanilla` without `density.position`", lambda w: build(w, fields__method="vanilla"), "needs the n(x) flow: add a `density.position:` section"),
    BadInput("noise_without_errors", "`ensemble.noise` members for the mock, which has no measurement errors", lambda w: build(w, ensemble__noise=2), "carries none"),
    BadInput("noise_without_error_columns", "`ensemble.noise` members for a Galactocentric table without `_error` columns", lambda w: table(w, "plain.parquet", ensemble__noise=2), "have none. Give the table its `_error` columns"),
    BadInput("some_error_columns", "a Galactocentric table with `x_error` and `vx_error` only", lambda w: table(w, "half.parquet", errors=("x", "vx")), "used all six or not at all"),
    BadInput("selection_with_weights", "`fields.method: selection` with 1/S weights on n(x)", lambda w: build(w, fields__method="selection", data__observation={"dust": None}, density__position={"selection_weights": True}), "set `density.position.selection_weights: false`"),
    BadInput("unknown_activation", "`fields.potential.activation: relu`", lambda w: build(w, fields__potential__activation="relu"), "[recipe -> fields -> potential -> activation]"),
    BadInput("missing_name", "recipe without `name`", lambda w: build(w, text="seed: 1\n"), "[recipe -> name] is required but missing"),
    BadInput("name_escapes", "`name: ../../etc`", lambda w: build(w, name="../../etc"), "[recipe -> name] String should match pattern"),
    BadInput("entry_escapes", "`publish.entry: ../outside`", lambda w: build(w, publish__entry="../outside"), "[recipe -> publish -> entry]"),
    BadInput("table_without_section", "`data.source: table` without `data.table`", lambda w: build(w, data__source="table"), "needs a `data.table` section"),
    BadInput("negative_galcen_distance", "`data.frame.galcen_distance_kpc: -8`", lambda w: build(w, data__frame__galcen_distance_kpc=-8), "[recipe -> data -> frame -> galcen_distance_kpc]"),
    BadInput("zero_chunk", "`cube.chunk: 0`", lambda w: build(w, cube__chunk=0), "[recipe -> cube -> chunk]"),
    BadInput("bad_override_syntax", "`--set fields.steps` (no value)", lambda w: build(w, "--set", "fields.steps"), "must look like `section.key=value`"),
    BadInput("override_unknown_key", "`--set fields.stepz=3`", lambda w: build(w, "--set", "fields.stepz=3"), "did you mean `steps`?"),
    BadInput("spacing_above_half_width", "`cube.spacing_kpc: 10` with a 3 kpc grid", lambda w: build(w, cube__spacing_kpc=10), "larger than the grid half-width"),
    BadInput("grid_outside_volume", "grid centred 20 kpc from the tracers", lambda w: build(w, cube__centre_kpc=[20, 0, 0], cube__half_width_kpc=2), "does not reach the tracer volume"),
    BadInput("missing_table", "`data.table.path` that does not exist", lambda w: build(w, data={"source": "table", "table": {"path": "gone.parquet"}}), "does not exist"),
    BadInput("unknown_suffix", "table `stars.txt`", lambda w: build(w, data={"source": "table", "table": {"path": "stars.txt"}}), "has suffix `.txt`"),
    BadInput("truncated_table", "Parquet file cut in half", truncated_parquet, "may be truncated"),
    BadInput("missing_columns", "table without vy, vz", lambda w: table(w, "cols.csv", drop=("vy", "vz")), "lacks vy (column `vy`), vz (column `vz`)"),
    BadInput("nan_rows", "table with 10% NaN rows (limit 1%)", lambda w: table(w, "nan.csv", nan_rows=200), "have NaN or inf values"),
    BadInput("positions_in_pc", "positions in pc, no units", lambda w: table(w, "pc.csv", scale_x=1000), "look like pc"),
    BadInput("velocities_in_m_s", "velocities in m/s, no units", lambda w: table(w, "ms.csv", scale_v=1000), "look like m/s"),
    BadInput("wrong_unit", "x column in km/s (ECSV)", lambda w: table(w, "unit.ecsv", unit_x="km/s"), "cannot be converted"),
    BadInput("too_few_stars", "table with 150 stars in the volume", lambda w: table(w, "few.csv", n=150), "at least 200 are needed"),
    BadInput("catalog_not_yaml", "catalog file that is not YAML", lambda w: corrupt_catalog(w, "entries: [\n  - {\n"), "not readable YAML"),
    BadInput("catalog_other_version", "intake v1 catalog", lambda w: corrupt_catalog(w, "sources:\n  a: {driver: csv}\n"), "not an intake v2 catalog"),
    BadInput("duplicate_entry", "entry `tiny` taken by another recipe", lambda w: build(w, publish__entry="tiny"), "was published by recipe `tiny`"),
    BadInput("out_in_package", "`--out` inside the installed package", lambda w: ["build", recipe(w), "--out", str(PACKAGE / "builds")], "inside the dpotcube package"),
    BadInput("out_outside_allowed", "`--out /var/lib/elsewhere`", lambda w: ["build", recipe(w), "--out", "/var/lib/dpotcube-elsewhere"], "outside the allowed folders"),
    BadInput("unknown_store_protocol", "`publish.store: nosuch://cubes`", lambda w: build(w, publish__store="nosuch://cubes"), "fsspec cannot write `nosuch://`"),
    BadInput("store_not_a_url", "`publish.store: cubes/elsewhere` (a path, not a URL)", lambda w: build(w, publish__store="cubes/elsewhere"), "[recipe -> publish -> store]"),
    BadInput("catalog_in_package", "`publish.catalog` inside the package", lambda w: build(w, publish__catalog=str(PACKAGE / "catalog.yaml")), "inside the dpotcube package"),
    BadInput("incomplete_store", "`catalog show` on a half-copied store", incomplete_store, "not a complete Zarr store"),
    BadInput("unknown_entry", "`catalog show nosuch`", lambda w: ["catalog", "show", "nosuch"], "No cube `nosuch`"),
]
