"""The `weak` method: Φ from the weak form of the CBE by linear least squares, no density model (docs/weak.md)."""

from .fit import fit_weak, fit_weak_report
from .model import WeakPotential, load_weak, save_weak
from .spec import WeakSpec

__all__ = ["WeakPotential", "WeakSpec", "fit_weak", "fit_weak_report", "load_weak", "save_weak"]
