"""The learned Φ of a published entry as a galpy `Potential` and a gala potential, for orbit integration.

Both evaluate `dpotcube.learned.LearnedPotential` (the network inside the volume, the fitted Plummer
extension outside, blended smoothly: docs/released.md), vectorised over points, in float64.
Frames: gala uses astropy's Galactocentric frame as the cubes do; galpy's frame is left-handed
(the Sun at x = +R⊙, rotation towards +φ), x_galpy = −x_astropy, y and z the same.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np

from .constants import G_KPC_KM2_S2_PER_MSUN
from .learned import LearnedPotential, potential

KMS_IN_KPC_PER_MYR: float = (1 * u.km / u.s).to_value(u.kpc / u.Myr)
"""1 km/s in kpc/Myr (gala's `galactic` unit system)."""


class _Cached:
    """The last batch of (Φ, ∇Φ, ∇²Φ): galpy asks for Φ, F_R, F_z and the torque at the same points in turn."""

    def __init__(self, learned: LearnedPotential):
        self.learned = learned
        self._key: bytes | None = None
        self._value = None

    def __call__(self, points: np.ndarray, laplacian: bool = False):
        key = points.tobytes() + bytes([laplacian])
        if key != self._key:
            self._value = self.learned.evaluate(points) if laplacian else self.learned._evaluate(points)
            self._key = key
        return self._value


def to_galpy(entry, member: int = 0, ro: float | None = None, vo: float = 220.0,
             catalog: str | Path = "catalog/catalog.yaml"):
    """A galpy `Potential` of member `member` of a published entry (or of a `LearnedPotential`).

    `ro` (kpc, default the cube's galcen_distance) and `vo` (km/s) are galpy's natural units.
    `pot.region(R, z, phi)` (physical kpc, rad) says 0/1/2: network / blend / extension.
    """
    from galpy.potential import Potential

    learned = entry if isinstance(entry, LearnedPotential) else potential(entry, member, catalog)
    ro = float(ro if ro is not None else learned.spec.get("galcen_distance_kpc") or np.linalg.norm(learned.observer))

    class LearnedGalpyPotential(Potential):
        """galpy view of a `LearnedPotential` (natural units inside; ro, vo set)."""

        def __init__(self):
            Potential.__init__(self, amp=1.0, ro=ro, vo=vo)
            self.isNonAxi = True
            self.hasC = self.hasC_dxdv = self.hasC_dens = False
            self.learned = learned
            self._cache = _Cached(learned)

        def _points(self, R, z, phi):
            R, z, phi = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in (R, z, phi)))
            xyz = np.stack([-R * np.cos(phi), R * np.sin(phi), z], axis=-1) * ro  # galpy → astropy, kpc
            return R.shape, xyz.reshape(-1, 3), phi.reshape(-1)

        def _forces(self, R, z, phi):
            shape, xyz, ph = self._points(R, z, phi)
            a = -self._cache(xyz)[1]
            ax, ay, az = -a[:, 0], a[:, 1], a[:, 2]  # astropy → galpy
            scale = ro / vo**2
            f_r = (ax * np.cos(ph) + ay * np.sin(ph)) * scale
            torque = np.hypot(xyz[:, 0], xyz[:, 1]) * (-ax * np.sin(ph) + ay * np.cos(ph)) / vo**2
            return shape, f_r, az * scale, torque

        def _evaluate(self, R, z, phi=0.0, t=0.0):
            shape, xyz, _ = self._points(R, z, phi)
            return _shaped(self._cache(xyz)[0] / vo**2, shape)

        def _Rforce(self, R, z, phi=0.0, t=0.0):
            shape, f_r, _, _ = self._forces(R, z, phi)
            return _shaped(f_r, shape)

        def _zforce(self, R, z, phi=0.0, t=0.0):
            shape, _, f_z, _ = self._forces(R, z, phi)
            return _shaped(f_z, shape)

        def _phitorque(self, R, z, phi=0.0, t=0.0):
            shape, _, _, torque = self._forces(R, z, phi)
            return _shaped(torque, shape)

        def _dens(self, R, z, phi=0.0, t=0.0):
            shape, xyz, _ = self._points(R, z, phi)
            return _shaped(self._cache(xyz, laplacian=True)[2] * ro**2 / vo**2 / (4 * np.pi), shape)

        def region(self, R, z, phi=0.0):
            R, z, phi = np.broadcast_arrays(R, z, phi)
            xyz = np.stack([-R * np.cos(phi), R * np.sin(phi), z], axis=-1)
            return learned.region(xyz.reshape(-1, 3)).reshape(R.shape)

    return LearnedGalpyPotential()


def to_gala(entry, member: int = 0, catalog: str | Path = "catalog/catalog.yaml"):
    """A gala potential (unit system `galactic`: kpc, Myr, M☉) of member `member` of a published entry.

    Integrate with gala's Python integrators, e.g. `gp.Hamiltonian(pot).integrate_orbit(w0, dt=1,
    n_steps=1000, Integrator=gi.DOPRI853Integrator)`. `pot.region(xyz)` (kpc, shape `(n, 3)`) says
    0/1/2: network / blend / extension.
    """
    import gala.potential as gp
    from gala.units import galactic

    learned = entry if isinstance(entry, LearnedPotential) else potential(entry, member, catalog)
    factor = KMS_IN_KPC_PER_MYR**2

    class LearnedGalaPotential(gp.PotentialBase):
        """gala view of a `LearnedPotential`; q in kpc, energies in kpc² Myr⁻²."""

        ndim = 3

        def __init__(self):
            self.learned = learned
            self._cache = _Cached(learned)
            super().__init__(units=galactic)

        def _energy(self, q, t=0.0):
            return self._cache(np.ascontiguousarray(q, np.float64))[0] * factor

        def _gradient(self, q, t=0.0):  # gala passes q as (3, n) here, (n, 3) to the others
            return self._cache(np.ascontiguousarray(np.asarray(q, np.float64).T))[1].T * factor

        def _density(self, q, t=0.0):  # M☉ kpc⁻³
            return self._cache(np.ascontiguousarray(q, np.float64), laplacian=True)[2] / (4 * np.pi * G_KPC_KM2_S2_PER_MSUN)

        def region(self, xyz):
            return learned.region(np.asarray(xyz, np.float64))

    return LearnedGalaPotential()


def galpy_coordinates(x: np.ndarray, v: np.ndarray) -> list:
    """[R, vR, vT, z, vz, φ] (astropy Quantities) in galpy's left-handed frame of a position `x` (kpc) and velocity
    `v` (km/s) in astropy's Galactocentric frame, shapes `(3,)`: `galpy.orbit.Orbit(galpy_coordinates(x, v), ro=…, vo=…)`."""
    x, v = np.asarray(x, np.float64), np.asarray(v, np.float64)
    xg, yg, vxg, vyg = -x[0], x[1], -v[0], v[1]  # astropy → galpy: x flips
    phi = np.arctan2(yg, xg)
    R = np.hypot(xg, yg)
    vR = (xg * vxg + yg * vyg) / R
    vT = (xg * vyg - yg * vxg) / R
    kpc, kms = u.kpc, u.km / u.s
    return [R * kpc, vR * kms, vT * kms, x[2] * kpc, v[2] * kms, phi * u.rad]


def _shaped(values: np.ndarray, shape: tuple[int, ...]):
    return values.reshape(shape) if shape else float(values[0])
