"""The manifest runner: a stage runs unless its key (recipe section, seed, inputs' checksums) and output still match."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timezone
from pathlib import Path

from ..errors import BuildError
from ..progress import console
from .stages import Stage

StageMonitor = Callable[[str], AbstractContextManager[object]]
"""Entered around each stage that runs (benchmarks measure memory with it)."""


def dump(section: object) -> object:
    """A recipe section (or list of them) as JSON-ready data."""
    if hasattr(section, "model_dump"):
        return section.model_dump(mode="json")
    if isinstance(section, (list, tuple)):
        return [dump(s) for s in section]
    return section


def digest(parts: list) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def checksum(path: Path) -> str:
    """SHA-256 of a file, or of every file (name and bytes) under a directory."""
    sha = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        sha.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
    return sha.hexdigest()


class Manifest:
    """`manifest.json`: per stage, the key it was run with and its output's checksum."""

    def __init__(self, path: Path):
        self.path = path
        self.stages: dict[str, dict] = json.loads(path.read_text()) if path.exists() else {}

    def is_done(self, stage: str, key: str, output: Path) -> bool:
        entry = self.stages.get(stage)
        return bool(entry) and entry["key"] == key and output.exists() and checksum(output) == entry["checksum"]

    def checksum(self, stage: str) -> str:
        if stage not in self.stages:
            raise BuildError(f"Stage `{stage}` has not run in {self.path.parent}; run `dpotcube build` without skipping it.")
        return self.stages[stage]["checksum"]

    def record(self, stage: str, key: str, output: Path, seconds: float) -> None:
        self.stages[stage] = {
            "key": key,
            "checksum": checksum(output),
            "finished": datetime.now(timezone.utc).isoformat(),
            "seconds": round(seconds, 2),
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.stages, indent=2))
        tmp.replace(self.path)


class Runner:
    """Runs declared stages against one manifest, skipping those whose key and output still match."""

    def __init__(self, manifest: Manifest, force: bool = False, monitor: StageMonitor = nullcontext):
        self.manifest, self.force, self.monitor = manifest, force, monitor

    def key(self, stage: Stage) -> str:
        parts = [stage.name, dump(stage.section), stage.seed, *(self.manifest.checksum(i) for i in stage.inputs)]
        key = digest(parts)
        return digest([key, *(checksum(f) for f in stage.files)]) if stage.files else key

    def is_done(self, stage: Stage) -> bool:
        return not self.force and self.manifest.is_done(stage.name, self.key(stage), stage.output)

    def run(self, stage: Stage) -> None:
        key = self.key(stage)
        if not self.force and self.manifest.is_done(stage.name, key, stage.output):
            console.print(f"[dim]{stage.name}: up to date, skipped[/dim]")
            return
        console.print(f"[bold]{stage.name}[/bold] …")
        started = time.perf_counter()
        with self.monitor(stage.name):
            stage.action()
        self.manifest.record(stage.name, key, stage.output, seconds=time.perf_counter() - started)
