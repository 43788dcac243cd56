"""Where a build may write: never inside the installed package, only under allowed roots."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import BuildError

ALLOWED_ROOTS_ENV = "DPOTCUBE_ALLOWED_ROOTS"


def allowed_roots() -> list[Path]:
    """The working directory, the system temporary folder, and any in `$DPOTCUBE_ALLOWED_ROOTS` (os.pathsep-separated)."""
    extra = [Path(p) for p in os.environ.get(ALLOWED_ROOTS_ENV, "").split(os.pathsep) if p]
    return [p.resolve() for p in (Path.cwd(), Path(tempfile.gettempdir()), *extra)]


def check_output_path(path: Path, what: str) -> Path:
    """Return `path` resolved, or refuse it if it is inside the package or outside every allowed root."""
    resolved = Path(path).resolve()
    package = Path(__file__).resolve().parent
    if _within(resolved, package):
        raise BuildError(
            f"The {what} {path} is inside the dpotcube package ({package}); builds never write there. "
            "Choose a folder in your project, e.g. `builds/` or `catalog/`."
        )
    roots = allowed_roots()
    if not any(_within(resolved, root) for root in roots):
        raise BuildError(
            f"The {what} {path} is outside the allowed folders ({', '.join(map(str, roots))}). Use a path under the "
            f"working directory, or add its parent to ${ALLOWED_ROOTS_ENV}."
        )
    return resolved


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
