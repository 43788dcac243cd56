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


def csv_table(world: Path, name: str, header: str, row: Callable[[int, list[str]], list[str]] | None = None,
              n: int = 2000) -> list[str]:
    """A CSV of `n` stars around the Sun under `header`, each row passed through `row(i, cells)`, and a build of it."""
    rng = np.random.default_rng(2)
    pos = np.array([-8.122, 0.0, 0.02]) + rng.uniform(-1, 1, (n, 3))
    cells = [[f"{v:.4f}" for v in line] for line in np.hstack([pos, rng.normal(0, 100, (n, 3))])]
    lines = [",".join(row(i, c) if row else c) for i, c in enumerate(cells)]
    (world / name).write_text(header + "\n" + "".join(line + "\n" for line in lines))
    return build(world, data={"source": "table", "table": {"path": name}})


def table_path(world: Path, name: str, make: Callable[[Path], None]) -> list[str]:
    """A build whose `data.table.path` is `name`, made by `make` (a folder, a 0-byte file)."""
    target = world / name
    if not target.exists():
        make(target)
    return build(world, data={"source": "table", "table": {"path": name}})


def bool_table(world: Path) -> list[str]:
    import pandas as pd

    rng = np.random.default_rng(3)
    pos = np.array([-8.122, 0.0, 0.02]) + rng.uniform(-1, 1, (2000, 3))
    frame = pd.DataFrame(np.hstack([pos, rng.normal(0, 100, (2000, 3))]), columns=["x", "y", "z", "vx", "vy", "vz"])
    frame["vz"] = frame["vz"] > 0
    frame.to_parquet(world / "bools.parquet")
    return build(world, data={"source": "table", "table": {"path": "bools.parquet"}})


def file_in(world: Path) -> Path:
    (world / "a_file").write_text("not a folder\n")
    return world / "a_file"


BILLION_LAUGHS = "name: probe\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n" for i in range(9)
)


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
    BadInput("unknown_density_type", "`density.velocity.type: nflows`", lambda w: build(w, density__velocity__type="nflows"), "allowed types: maf, cfm"),
    BadInput("cfm_misspelt_key", "`density.velocity: {type: cfm, widht: 64}`", lambda w: build(w, density__velocity={"type": "cfm", "widht": 64}), "[recipe -> density -> velocity -> widht] unknown key; did you mean `width`?"),
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
    BadInput("nan_centre", "`cube.centre_kpc: [.nan, 0, 0]`", lambda w: build(w, cube__centre_kpc=[float("nan"), 0, 0]), "[recipe -> cube -> centre_kpc -> 0] Input should be a finite number"),
    BadInput("inf_learning_rate", "`fields.learning_rate: .inf`", lambda w: build(w, fields__learning_rate=float("inf")), "[recipe -> fields -> learning_rate] Input should be a finite number"),
    BadInput("yes_as_integer", "`fields.steps: yes` (YAML reads a boolean)", lambda w: build(w, fields__steps=True), "a boolean is not a number"),
    BadInput("huge_seed", "`seed: 2**64`", lambda w: build(w, seed=2**64), "[recipe -> seed]"),
    BadInput("huge_integer", "`fields.steps: 10**12`", lambda w: build(w, fields__steps=10**12), "(a 32-bit integer)"),
    BadInput("huge_mass", "`data.plummer.mass_msun: 1e300`", lambda w: build(w, data__plummer={"mass_msun": 1e300}), "[recipe -> data -> plummer -> mass_msun]"),
    BadInput("no_training_stars", "`density.velocity.val_fraction: 0.9999` of 2,000 stars", lambda w: build(w, density__velocity={"val_fraction": 0.9999}), "leaves no training stars"),
    BadInput("duplicate_key", "`seed:` twice in a recipe", lambda w: build(w, text="name: probe\nseed: 1\nseed: 2\n"), "has key `seed` twice in one section (lines 2 and 3)"),
    BadInput("empty_recipe", "an empty recipe file", lambda w: build(w, text=""), "is empty"),
    BadInput("billion_laughs", "a recipe of nested YAML aliases (10⁹ values)", lambda w: build(w, text=BILLION_LAUGHS), "expands to more than 100,000 YAML values"),
    BadInput("recipe_is_folder", "a folder given as the recipe", lambda w: ["build", str(w / "catalog")], "is a folder, not a file"),
    BadInput("override_section_scalar", "`--set density.velocity=3`", lambda w: build(w, "--set", "density.velocity=3"), "[recipe -> density -> velocity]"),
    BadInput("override_no_value", "`--set fields.steps=`", lambda w: build(w, "--set", "fields.steps="), "has no value"),
    BadInput("override_bad_yaml", "`--set fields.steps=[1`", lambda w: build(w, "--set", "fields.steps=[1"), "is not valid YAML"),
    BadInput("override_into_value", "`--set fields.steps.x=1`", lambda w: build(w, "--set", "fields.steps.x=1"), "`fields.steps` holds a value, not a section"),
    BadInput("huge_grid", "`cube.spacing_kpc: 0.001` (6001³ points)", lambda w: build(w, cube__spacing_kpc=0.001), "pass --allow-large"),
    BadInput("huge_collocation", "`density.collocation.n_positions: 10**8`", lambda w: build(w, density__collocation__n_positions=10**8), "collocation points"),
    BadInput("huge_mock", "`data.n_stars: 10**8`", lambda w: build(w, data__n_stars=10**8), "mock stars"),
    BadInput("huge_batch", "`fields.batch_size: 10**7`", lambda w: build(w, fields__batch_size=10**7), "[recipe -> fields -> batch_size]"),
    BadInput("table_duplicate_column", "CSV with column `x` twice", lambda w: csv_table(w, "dup.csv", "x,y,z,vx,vy,vz,x", lambda i, c: [*c, c[0]]), "has column(s) `x` more than once"),
    BadInput("table_text_column", "CSV with text in column `vy`", lambda w: csv_table(w, "text.csv", "x,y,z,vx,vy,vz", lambda i, c: [*c[:4], "fast" if i == 7 else c[4], c[5]]), "Column `vy`"),
    BadInput("table_bool_column", "Parquet with a boolean column `vz`", lambda w: bool_table(w), "holds booleans"),
    BadInput("table_degenerate", "every star at one point", lambda w: csv_table(w, "point.csv", "x,y,z,vx,vy,vz", lambda i, c: ["-8.1", "0", "0.02", *c[3:]]), "hold the same value for every star"),
    BadInput("table_no_rows", "CSV with a header and no rows", lambda w: csv_table(w, "norows.csv", "x,y,z,vx,vy,vz", n=0), "has no rows"),
    BadInput("table_is_folder", "`data.table.path` a folder", lambda w: table_path(w, "folder.csv", lambda p: p.mkdir()), "is a folder, not a file"),
    BadInput("table_zero_bytes", "`data.table.path` a 0-byte file", lambda w: table_path(w, "zero.parquet", lambda p: p.write_bytes(b"")), "is empty (0 bytes)"),
    BadInput("out_is_a_file", "`--out` that is a file", lambda w: ["build", recipe(w), "--out", str(file_in(w))], "is a file, not a folder"),
    BadInput("catalog_is_folder", "`publish.catalog` that is a folder", lambda w: build(w, publish__catalog=str(w / "catalog")), "is a folder; it must be a YAML file"),
    BadInput("unknown_scheduler", "`--scheduler 'my cluster'`", lambda w: build(w, "--scheduler", "my cluster"), "is not a Dask scheduler address"),
    BadInput("zero_workers", "`--workers 0`", lambda w: build(w, "--workers", "0"), "--workers must be a positive number"),
]
