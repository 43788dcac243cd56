"""Resident memory of this process (Linux /proc): now, the peak, and the peak of each build stage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STATUS = Path("/proc/self/status")


def resident_mb() -> float:
    """Resident set size now (`VmRSS`), MB."""
    return _status_mb("VmRSS:")


def peak_mb() -> float:
    """The process's resident high-water mark (`VmHWM`) since it started or since `reset_peak`, MB."""
    return _status_mb("VmHWM:")


def reset_peak() -> None:
    """Restart the high-water mark from the current resident size (Linux `clear_refs`).

    getrusage's `ru_maxrss` cannot be reset, and also carries a parent's resident size across fork and
    exec, so it only ever gives the peak of a whole process.
    """
    Path("/proc/self/clear_refs").write_text("5")


def available() -> bool:
    return STATUS.exists() and Path("/proc/self/clear_refs").exists()


class StageMemory:
    """Peak resident memory of each build stage, for `dpotcube.build(..., stage_monitor=StageMemory())`.

    The high-water mark is reset as a stage starts and read as it ends, so each peak belongs to the stage
    that ran (threads included: they share the process's memory). Peaks are in `peaks_mb`, in stage order.
    """

    def __init__(self) -> None:
        self.peaks_mb: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if not available():  # not Linux: no per-stage peaks
            yield
            return
        reset_peak()
        try:
            yield
        finally:
            self.peaks_mb[stage] = round(peak_mb(), 1)


def _status_mb(key: str) -> float:
    with open(STATUS) as status:
        return next(int(line.split()[1]) for line in status if line.startswith(key)) / 1024  # kB
