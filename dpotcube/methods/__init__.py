"""CBE methods as plug-ins: one module each, registered here by their recipe name (`fields.method`).

Adding a method: a module with a `Method` subclass (see `base.py`), one line in `_ALL` below, and its
name in `recipe.MethodName`.
"""

from __future__ import annotations

from ..errors import RecipeError
from .base import CubeInputs, FieldMethod, FitFiles, Method
from .conditional import Conditional
from .pointwise import Pointwise
from .selection import Selection
from .vanilla import Vanilla
from .weak import Weak

_ALL: tuple[Method, ...] = (Vanilla(), Selection(), Conditional(), Pointwise(), Weak())
METHODS: dict[str, Method] = {method.name: method for method in _ALL}
"""Every method, by its `fields.method` name."""


def get_method(name: str) -> Method:
    """The method registered as `name`."""
    try:
        return METHODS[name]
    except KeyError:
        raise RecipeError(f"No method `{name}`: `fields.method` must be one of {', '.join(METHODS)}.") from None


__all__ = ["METHODS", "CubeInputs", "FieldMethod", "FitFiles", "Method", "get_method"]
