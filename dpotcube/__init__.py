"""dpotcube: 3-D maps of the Galactic potential, acceleration and density from stellar phase space."""

__version__ = "0.1.0"

from . import accessor  # noqa: E402,F401  (registers ds.dpot)
from .catalog import open_cube  # noqa: E402
from .pipeline import build  # noqa: E402
from .recipe import load_recipe  # noqa: E402

__all__ = ["__version__", "build", "load_recipe", "open_cube"]
