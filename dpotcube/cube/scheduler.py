"""Which Dask scheduler evaluates the cube: local threads (default) or `dask.distributed`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import dask

from ..errors import BuildError


@dataclass(frozen=True)
class SchedulerSpec:
    """`address` of a running scheduler, or `workers` local worker processes; neither: threads."""

    address: str | None = None
    workers: int | None = None

    @property
    def distributed(self) -> bool:
        return bool(self.address or self.workers)


@contextlib.contextmanager
def scheduler(spec: SchedulerSpec) -> Iterator[str]:
    """Make `spec` Dask's scheduler inside the block; yields a description for the log."""
    if not spec.distributed:
        with dask.config.set(scheduler="threads"):
            yield "local threads"
        return
    from distributed import Client, LocalCluster

    if spec.address:
        try:
            client = Client(spec.address, timeout="20s")
        except OSError as exc:
            raise BuildError(
                f"Cannot reach the Dask scheduler at {spec.address} ({exc}). Start it (`dask scheduler`) or drop "
                "`--scheduler` to evaluate on local threads."
            ) from None
        with client:
            yield f"dask.distributed at {spec.address}"
        return
    # One thread per worker process: JAX already uses every core a process has.
    with LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster):
            yield f"dask.distributed LocalCluster with {spec.workers} workers"
