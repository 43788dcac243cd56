"""Where stars come from: every source returns one `PhaseSpaceTable`."""

from .base import PhaseSpaceTable
from .load import load_stars

__all__ = ["PhaseSpaceTable", "load_stars"]
