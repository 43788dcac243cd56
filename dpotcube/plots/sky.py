"""The learned selection efficiency ε on the sky, seen from the observer, on shells of fixed distance."""

from __future__ import annotations

from collections.abc import Sequence

import astropy.coordinates as coord
import astropy.units as u
import numpy as np
import xarray as xr
from jaxtyping import Float
from matplotlib.figure import Figure

from .. import constants
from ..curves import sample_along
from ..frames import galactocentric_frame
from ..recipe import FrameSpec
from ._common import member_note, summarise, title_prefix

SHELL_FRACTIONS = (0.25, 0.5, 0.75)
"""Default shell distances, as fractions of the volume radius."""


def efficiency_sky_figure(
    ds: xr.Dataset, shells_kpc: Sequence[float] | None = None, resolution_deg: float = 2.0
) -> Figure:
    """Mollweide maps of the median ε in Galactic (l, b) at the distances `shells_kpc` from the observer.

    Galactic longitude increases to the left, l = 0 (towards the centre) in the middle. The
    directions are converted with astropy's Galactocentric frame of the cube's solar parameters.
    """
    radius = float(ds.attrs.get("volume_radius_kpc", 1.0))
    shells = list(shells_kpc) if shells_kpc is not None else [f * radius for f in SHELL_FRACTIONS]
    l_edges = np.linspace(-180.0, 180.0, int(round(360 / resolution_deg)) + 1)
    b_edges = np.linspace(-90.0, 90.0, int(round(180 / resolution_deg)) + 1)
    lon, lat = np.meshgrid(0.5 * (l_edges[1:] + l_edges[:-1]), 0.5 * (b_edges[1:] + b_edges[:-1]))
    fig = Figure(figsize=(5.2 * len(shells), 4.0), layout="constrained")
    image = None
    for i, distance in enumerate(shells):
        pts = galactic_to_galactocentric(ds, lon.ravel(), lat.ravel(), distance)
        on_shell = sample_along(ds[["efficiency", "in_volume"]], pts, "pixel", np.arange(len(pts)), {})
        eps = summarise(on_shell, "efficiency")["median"].values.reshape(lon.shape)
        ax = fig.add_subplot(1, len(shells), i + 1, projection="mollweide")
        image = ax.pcolormesh(np.radians(-l_edges), np.radians(b_edges), eps, cmap="magma", vmin=0.0, vmax=1.0)
        ticks = np.arange(-120, 121, 60)
        ax.set_xticks(np.radians(ticks), [f"{(-t) % 360:.0f}°" for t in ticks], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3)
        ax.set_title(f"d = {distance:.2f} kpc", fontsize=10, pad=14)
        ax.set_xlabel("Galactic l", fontsize=8)
        if i == 0:
            ax.set_ylabel("Galactic b", fontsize=8)
    fig.colorbar(image, ax=fig.axes, orientation="horizontal", fraction=0.06, label=f"ε ({member_note(ds)})")
    fig.suptitle(f"{title_prefix(ds)} · selection efficiency ε seen from the observer")
    return fig


def galactic_to_galactocentric(
    ds: xr.Dataset, l_deg: Float[np.ndarray, " n"], b_deg: Float[np.ndarray, " n"], distance_kpc: float
) -> Float[np.ndarray, "n 3"]:
    """Galactocentric positions (kpc) of the directions (l, b) at `distance_kpc` from the Sun, shape `(n, 3)`."""
    frame = galactocentric_frame(FrameSpec(
        galcen_distance_kpc=ds.attrs.get("galcen_distance_kpc", constants.GALCEN_DISTANCE_KPC),
        z_sun_kpc=ds.attrs.get("z_sun_kpc", constants.Z_SUN_KPC),
        galcen_v_sun_kms=tuple(ds.attrs.get("galcen_v_sun_kms", constants.GALCEN_V_SUN_KMS)),
    ))
    sky = coord.SkyCoord(l=l_deg * u.deg, b=b_deg * u.deg, distance=distance_kpc * u.kpc, frame="galactic")
    return sky.transform_to(frame).cartesian.xyz.to_value(u.kpc).T
