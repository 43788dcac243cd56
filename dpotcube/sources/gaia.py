"""Gaia DR3 from the archive's TAP service: the parent-sample query, run once, cached with checksums.

astroquery is imported here, inside functions, and only its TAP client (`astroquery.utils.tap`), which makes
no connection when imported; `astroquery.gaia` resolves the archive's host at import and is never used.
Every HTTP request gets `data.gaia.timeout_s` as connect and read timeout; a job gets `max_wait_s` in all.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from astropy.table import Table, vstack

from ..errors import DataError
from ..recipe import GaiaSpec
from .astrometry import CORRELATIONS, ERRORS, OBSERVABLES

COLUMNS = ("source_id", *OBSERVABLES, *ERRORS, *CORRELATIONS.values(), "grvs_mag")
_HEALPIX12_PIXELS = 12 * 4**12
_SOURCE_ID_PER_PIXEL = 2**35  # source_id = HEALPix level-12 index × 2^35 + …
MANIFEST = "fetch.json"


def adql_query(spec: GaiaSpec, chunk: int = 0) -> str:
    """The parent-sample query for one chunk: RVS stars with parallax_over_error and d < parent radius."""
    lo, hi = (_HEALPIX12_PIXELS * k // spec.chunks * _SOURCE_ID_PER_PIXEL for k in (chunk, chunk + 1))
    top = f"TOP {spec.max_rows} " if spec.max_rows else ""
    where = [
        "radial_velocity IS NOT NULL",
        f"parallax_over_error > {spec.cuts.parallax_over_error_min!r}",
        f"parallax > {1.0 / spec.parent_radius_kpc!r}",
    ]
    if spec.chunks > 1:
        where.append(f"source_id >= {lo} AND source_id < {hi}")
    return f"SELECT {top}{', '.join(COLUMNS)} FROM {spec.table} WHERE " + " AND ".join(where)


def cached_parent(spec: GaiaSpec, cache_dir: Path) -> list[Path] | None:
    """The cached chunk files if every one is present, from the same query and with its checksum; else None."""
    manifest = _read_manifest(cache_dir)
    files = [_chunk_path(spec, cache_dir, chunk) for chunk in range(spec.chunks)]
    valid = all(_is_cached(manifest, spec, chunk, path) for chunk, path in enumerate(files))
    return files if valid else None


def fetch_gaia(
    spec: GaiaSpec, cache_dir: Path, refresh: bool = False, log: Callable[[str], None] = print
) -> list[Path]:
    """Download the parent sample into `cache_dir` (one Parquet file per chunk) unless already cached.

    Chunks whose file is present with the same query and checksum are never queried again, unless `refresh`.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(cache_dir)
    files = []
    for chunk in range(spec.chunks):
        query = adql_query(spec, chunk)
        path = _chunk_path(spec, cache_dir, chunk)
        if not refresh and _is_cached(manifest, spec, chunk, path):
            log(f"gaia chunk {chunk + 1}/{spec.chunks}: cached, {manifest[str(chunk)]['rows']} rows ({path.name})")
            files.append(path)
            continue
        log(f"gaia chunk {chunk + 1}/{spec.chunks}: querying {spec.tap_url} …")
        table = run_query(spec, query)
        _write_parquet(table, path)
        manifest[str(chunk)] = {
            "query": query,
            "tap_url": spec.tap_url,
            "file": path.name,
            "sha256": _sha256(path),
            "rows": len(table),
            "fetched": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        _write_manifest(cache_dir, manifest)
        log(f"gaia chunk {chunk + 1}/{spec.chunks}: {len(table)} rows → {path}")
        files.append(path)
    return files


def read_parent(files: list[Path]) -> Table:
    """The parent sample: every cached chunk in one table."""
    return vstack([Table.read(path, format="parquet") for path in files], metadata_conflicts="silent")


def run_query(spec: GaiaSpec, query: str) -> Table:
    """Run `query` as an async TAP job through astroquery's `TapPlus`; any failure becomes a `DataError`."""
    import requests
    from astroquery.utils.tap.conn.tapconn import TapConn
    from astroquery.utils.tap.core import TapPlus

    parts = urlsplit(spec.tap_url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    server, _, tap = parts.path.rstrip("/").rpartition("/")
    handler = _TimedConnections(parts.hostname or "", port, https, spec.timeout_s, time.monotonic() + spec.max_wait_s)
    conn = TapConn(
        https, parts.hostname, server_context=server or None, tap_context=tap, port=port, sslport=port,
        connhandler=handler,
    )
    said = io.StringIO()
    where = f"Gaia TAP service {spec.tap_url}"
    try:
        with contextlib.redirect_stdout(said):
            job = TapPlus(url=spec.tap_url, connhandler=conn).launch_job_async(query)
            return job.get_results()
    except TimeoutError as exc:
        raise DataError(
            f"{where} did not answer in time ({exc or 'read timed out'}; timeout {spec.timeout_s:g} s per "
            f"request, {spec.max_wait_s:g} s per job). Retry later, raise `data.gaia.timeout_s` or "
            "`data.gaia.max_wait_s`, or split the query with `data.gaia.chunks`."
        ) from None
    except (requests.exceptions.HTTPError, http.client.HTTPException, SystemError) as exc:
        raise DataError(
            f"{where} refused the query: {_message(exc, said)}. Check `data.gaia.tap_url` and `data.gaia.table`, "
            "and the archive's status page; then run `dpotcube fetch-gaia RECIPE` again (finished chunks are kept)."
        ) from None
    except OSError as exc:
        raise DataError(
            f"Cannot reach {where}: {exc}. Check the network and `data.gaia.tap_url`, then run "
            "`dpotcube fetch-gaia RECIPE` again."
        ) from None


class _TimedConnections:
    """astroquery connection handler: each connection with a timeout, all of them within one deadline."""

    def __init__(self, host: str, port: int, https: bool, timeout_s: float, deadline: float):
        self.host, self.port, self.https = host, port, https
        self.timeout_s, self.deadline = timeout_s, deadline

    def get_connection(self, *, ishttps: bool = False, cookie=None, verbose: bool = False):
        if time.monotonic() > self.deadline:
            raise TimeoutError("the job did not finish within `max_wait_s`")
        secure = ishttps or self.https or cookie is not None
        kind = http.client.HTTPSConnection if secure else http.client.HTTPConnection
        return kind(self.host, self.port, timeout=self.timeout_s)

    def get_connection_secure(self, verbose: bool = False) -> http.client.HTTPConnection:
        return self.get_connection(ishttps=True)


def _chunk_path(spec: GaiaSpec, cache_dir: Path, chunk: int) -> Path:
    return cache_dir / f"parent-{chunk:04d}-of-{spec.chunks:04d}.parquet"


def _is_cached(manifest: dict, spec: GaiaSpec, chunk: int, path: Path) -> bool:
    """The chunk's file exists, came from the same query, and still has its recorded checksum."""
    entry = manifest.get(str(chunk))
    if not entry or entry["query"] != adql_query(spec, chunk) or not path.is_file():
        return False
    return _sha256(path) == entry["sha256"]


def _message(exc: Exception, said: io.StringIO) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    printed = " ".join(said.getvalue().split())
    return f"{text} (server said: {printed[:300]})" if printed and printed not in text else text


def _write_parquet(table: Table, path: Path) -> None:
    """Masked entries → NaN (floats) so the file is plain Parquet; units kept in astropy's metadata."""
    out = Table()
    for name in table.colnames:
        column = table[name]
        if hasattr(column, "filled") and column.dtype.kind == "f":
            column = column.filled(np.nan)
        out[name] = column
    tmp = path.with_suffix(".tmp")
    out.write(tmp, format="parquet", overwrite=True)
    tmp.replace(path)


def _read_manifest(cache_dir: Path) -> dict:
    path = cache_dir / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_manifest(cache_dir: Path, manifest: dict) -> None:
    tmp = cache_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(cache_dir / MANIFEST)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
