"""What every benchmark records about where it ran, and how its table is written into docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"


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


def replace_section(text: str, name: str, section: str) -> str:
    """`text` with what lies between `<!-- name:start -->` and `<!-- name:end -->` replaced (appended if absent)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text:
        text = f"{text.rstrip()}\n\n{start}\n{end}\n"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n{section}{end}{tail}"


def update_section(doc: Path, name: str, section: str) -> None:
    """Replace the text between `<!-- name:start -->` and `<!-- name:end -->` in `doc`, keeping the rest."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    doc.write_text(replace_section(text, name, section))


def section(name: str) -> str:
    """The docs section of benchmark `name`, drawn from its JSON results (a stub if it has never run)."""
    from .registry import load

    module = load(name)
    if not module.RESULTS.exists():
        return f"## {module.TITLE}\n\nNo results yet: run `python -m benchmarks run {name}`.\n"
    return module.markdown(json.loads(module.RESULTS.read_text()))


def render(text: str) -> str:
    """`text` (docs/benchmarks.md) with every registered benchmark's section redrawn from its JSON."""
    from .registry import BENCHMARKS

    for name in BENCHMARKS:
        text = replace_section(text, name, section(name))
    return text


def record(name: str, result: dict) -> None:
    """Write a benchmark's result to its JSON file (or where its `_results_file` says) and redraw its section of
    docs/benchmarks.md."""
    from .registry import load

    path = Path(result.pop("_results_file", load(name).RESULTS))
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    update_section(DOC, name, section(name))
