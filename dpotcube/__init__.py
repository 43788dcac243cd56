"""dpotcube: 3-D maps of the Galactic potential, acceleration and density from stellar phase space.

Importing the package is light: it registers the `ds.dpot` accessor and nothing else. The public
functions are imported on first use, so reading, querying and plotting a cube never import JAX;
`build`, `potential`, `to_galpy` and `to_gala` do.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

from . import accessor  # noqa: E402,F401  (registers ds.dpot)

_LAZY = {
    "build": "pipeline",
    "open_cube": "catalog",
    "load_recipe": "recipe",
    "query": "lookup",
    "potential": "learned",
    "to_galpy": "adapters",
    "to_gala": "adapters",
}

if TYPE_CHECKING:
    from .adapters import to_gala, to_galpy
    from .catalog import open_cube
    from .learned import potential
    from .lookup import query
    from .pipeline import build
    from .recipe import load_recipe


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dpotcube' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["__version__", "build", "load_recipe", "open_cube", "potential", "query", "to_gala", "to_galpy"]
