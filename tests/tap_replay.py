"""A loopback TAP service replaying the Gaia archive's async exchange, and mock Gaia rows to serve.

The exchange, as astroquery's `TapPlus.launch_job_async` makes it (utils/tap/core.py, model/job.py):
POST <tap>/async (REQUEST=doQuery, LANG=ADQL, FORMAT=votable, PHASE=RUN, QUERY=…) → 303, Location: job URL;
GET <tap>/async/<id>/phase until not EXECUTING; GET <tap>/async/<id>/results/result → gzipped VOTable.
"""

from __future__ import annotations

import gzip
import io
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import astropy.units as u
import numpy as np
from astropy.table import MaskedColumn, Table

from dpotcube.recipe import DataSpec, FrameSpec
from dpotcube.sources.astrometry import CORRELATIONS, from_galactocentric
from dpotcube.sources.load import plummer_truth
from dpotcube.sources.mocks import sample_plummer

CONTEXT = "/tap-server/tap"
JOB_ID = "1712345678901O"
M_G_TRACER = 0.5  # absolute G_RVS of the mock tracers: inside the 4 kpc completeness limit (0.9897)

# rows that fail one cut each, in the order the cuts run
N_BAD_PARALLAX = 7  # parallax_over_error < 3
N_FAST = 5  # |v| > 1000 km/s
N_FAINT = 11  # M_G above the completeness limit
N_NO_GRVS = 3  # grvs_mag null: fails the completeness cut too


def mock_gaia_rows(n: int = 200, seed: int = 0, frame: FrameSpec = FrameSpec()) -> Table:
    """`n` Gaia DR3-like rows drawn from a Plummer mock around the Sun (d < 4 kpc), with units and nulls."""
    data = DataSpec(n_stars=n, volume_radius_kpc=3.9, frame=frame)
    positions, velocities = sample_plummer(plummer_truth(data), seed)
    obs = from_galactocentric(positions, velocities, frame)
    rng = np.random.default_rng(seed + 1)
    parallax_error = obs[:, 2] / rng.uniform(5, 50, n)
    bad = slice(0, N_BAD_PARALLAX)
    parallax_error[bad] = obs[bad, 2] / 2.0
    fast = slice(N_BAD_PARALLAX, N_BAD_PARALLAX + N_FAST)
    obs[fast, 5] = 3000.0
    m_g = np.full(n, M_G_TRACER)
    faint = slice(N_BAD_PARALLAX + N_FAST, N_BAD_PARALLAX + N_FAST + N_FAINT)
    m_g[faint] = 2.0
    grvs = m_g + 10 - 5 * np.log10(obs[:, 2])
    table = Table()
    table["source_id"] = np.arange(n, dtype=np.int64) * 2**35 + 12345
    for i, (name, unit) in enumerate(
        [("ra", u.deg), ("dec", u.deg), ("parallax", u.mas), ("pmra", u.mas / u.yr), ("pmdec", u.mas / u.yr),
         ("radial_velocity", u.km / u.s)]
    ):
        table[name] = obs[:, i] * unit
    table["ra_error"] = rng.uniform(0.01, 0.03, n) * u.mas
    table["dec_error"] = rng.uniform(0.01, 0.03, n) * u.mas
    table["parallax_error"] = parallax_error * u.mas
    table["pmra_error"] = rng.uniform(0.01, 0.05, n) * u.mas / u.yr
    table["pmdec_error"] = rng.uniform(0.01, 0.05, n) * u.mas / u.yr
    table["radial_velocity_error"] = rng.uniform(0.5, 3.0, n) * u.km / u.s
    for name in CORRELATIONS.values():
        table[name] = rng.uniform(-0.3, 0.3, n).astype(np.float32)
    mask = np.zeros(n, bool)
    mask[N_BAD_PARALLAX + N_FAST + N_FAINT: N_BAD_PARALLAX + N_FAST + N_FAINT + N_NO_GRVS] = True
    table["grvs_mag"] = MaskedColumn(grvs.astype(np.float32), mask=mask, unit=u.mag)
    return table


def votable_gz(table: Table) -> bytes:
    buffer = io.BytesIO()
    table.write(buffer, format="votable")
    return gzip.compress(buffer.getvalue())


@dataclass
class TapReplay:
    """A threaded HTTP server on 127.0.0.1 (port 0) that plays one TAP async job.

    `mode`: `ok`; `error` (HTTP 500 on the job creation, with an error page); `slow` (the phase request
    sleeps `sleep_s` before answering, past the client's timeout); or `stuck` (the job never leaves EXECUTING).
    """

    result: bytes
    mode: str = "ok"
    sleep_s: float = 3.0
    requests: list[tuple[str, str, dict]] = field(default_factory=list)

    def __enter__(self) -> TapReplay:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                replay.requests.append(("POST", self.path, {k: v[0] for k, v in parse_qs(body).items()}))
                if self.path != f"{CONTEXT}/async":
                    return self._send(404, b"not found", "text/plain")
                if replay.mode == "error":
                    page = b"<html><body><ul><li>Internal error: the database is down</li></ul></body></html>"
                    return self._send(500, page, "text/html")
                self.send_response(303)
                self.send_header("Location", f"http://127.0.0.1:{replay.port}{CONTEXT}/async/{JOB_ID}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                replay.requests.append(("GET", self.path, {}))
                job = f"{CONTEXT}/async/{JOB_ID}"
                if self.path == f"{job}/phase":
                    if replay.mode == "slow":
                        time.sleep(replay.sleep_s)
                    polls = sum(1 for _, p, _ in replay.requests if p == self.path)
                    done = polls > 1 and replay.mode != "stuck"
                    return self._send(200, b"COMPLETED" if done else b"EXECUTING", "text/plain")
                if self.path == f"{job}/results/result":
                    return self._send(200, replay.result, "application/x-votable+xml")
                self._send(404, b"not found", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{CONTEXT}"
