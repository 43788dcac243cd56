"""What every benchmark records about where it ran, and how it rewrites its section of a docs page."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path


def environment() -> dict:
    """Date, machine, JAX device and versions, for the header of every results table."""
    import jax

    import dpotcube

    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "device": str(jax.devices()[0].platform),
        "versions": {"dpotcube": dpotcube.__version__, "jax": jax.__version__, "python": platform.python_version()},
    }


def provenance_line(r: dict) -> str:
    return (
        f"Made by `{r['command']}` on {r['date']}; {r['machine']}, JAX on {r['device']}; "
        f"dpotcube {r['versions']['dpotcube']}, JAX {r['versions']['jax']}, Python {r['versions']['python']}."
    )


def update_section(doc: Path, name: str, section: str) -> None:
    """Replace the text between `<!-- name:start -->` and `<!-- name:end -->` in `doc`, keeping the rest."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = doc.read_text() if doc.exists() else "# Results\n"
    if start not in text:
        text = f"{text.rstrip()}\n\n{start}\n{end}\n"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    doc.write_text(f"{head}{start}\n{section}{end}{tail}")
