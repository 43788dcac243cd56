"""One save/load path for every trained model: a JSON header line, then equinox leaves."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx

from .errors import BuildError


def save_model(path: Path, model: eqx.Module, kind: str, hyperparameters: dict[str, Any]) -> None:
    """Write `model` with the header `{"kind": ..., "hyperparameters": ...}` needed to rebuild it."""
    header = json.dumps({"kind": kind, "hyperparameters": hyperparameters})
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write((header + "\n").encode())
        eqx.tree_serialise_leaves(f, model)
    tmp.replace(path)


def load_model(path: Path, skeletons: dict[str, Callable[..., eqx.Module]]) -> tuple[eqx.Module, dict[str, Any]]:
    """Rebuild the skeleton named in the header from its hyperparameters, then fill in the leaves."""
    try:
        with open(path, "rb") as f:
            header = json.loads(f.readline())
            skeleton = skeletons[header["kind"]](**header["hyperparameters"])
            return eqx.tree_deserialise_leaves(f, skeleton), header["hyperparameters"]
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise BuildError(
            f"Cannot load model {path} ({type(exc).__name__}: {exc}). Rebuild it with `dpotcube build --force`."
        ) from None
