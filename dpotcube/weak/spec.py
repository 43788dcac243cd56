"""`WeakSpec`, the recipe section of `fields.method: weak`, lives with every other section in `dpotcube.recipe`."""

from ..recipe import WeakSpec

__all__ = ["WeakSpec"]
