"""Open a published cube three ways, slice it, and plot it (the code of docs/tutorial.md).

    python docs/tutorial.py [CATALOG [ENTRY [PLOT]]]

Defaults: `catalog/catalog.yaml`, entry `quickstart`, plot `tutorial.png`: what
`dpotcube build recipes/quickstart.yaml` publishes. The tests run it on the tiny recipe's cube.
"""

import sys
from pathlib import Path

catalog = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("catalog/catalog.yaml")
entry = sys.argv[2] if len(sys.argv) > 2 else "quickstart"
plot_path = Path(sys.argv[3]) if len(sys.argv) > 3 else Path("tutorial.png")

# --8<-- [start:open]
import intake
import xarray as xr

import dpotcube

ds = intake.open_catalog(str(catalog))[entry].read()                 # 1. through the Intake catalog
same = xr.open_zarr(catalog.parent / "cubes" / f"{entry}.zarr")      # 2. the Zarr store itself
also = dpotcube.open_cube(entry, catalog=catalog)                    # 3. by entry name (or a store path)
xr.testing.assert_identical(ds, same)
xr.testing.assert_identical(ds, also)
# --8<-- [end:open]

# --8<-- [start:inspect]
print(ds.sizes)                                  # member, x, y, z
print({name: ds[name].attrs["units"] for name in ("potential", "accel_x", "density", "tracer_density")})
print(ds.attrs["method"], ds.attrs["n_tracers"], "tracers; observer at", ds.attrs["observer_position_kpc"], "kpc")
# --8<-- [end:inspect]

# --8<-- [start:slice]
x_sun, y_sun, z_sun = ds.attrs["observer_position_kpc"]
in_plane = ds.in_volume.sel(z=z_sun, method="nearest")               # True inside the tracer volume
plane = ds.sel(z=z_sun, method="nearest").median("member").where(in_plane)  # the plane through the Sun
line = plane.sel(y=y_sun, method="nearest")                          # along x through the Sun
at_sun = ds.isel(member=0).sel(x=x_sun, y=y_sun, z=z_sun, method="nearest")
a_sun = at_sun.dpot.quantity("accel_x")                              # an astropy Quantity
print(f"a_x at the Sun: {float(at_sun.accel_x):.0f} km² s⁻² kpc⁻¹ = {a_sun.to('m s-2'):.3g}")
print(f"ρ at the Sun: {float(at_sun.density):.4f} M☉ pc⁻³")
# --8<-- [end:slice]

# --8<-- [start:plot]
import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
plane.density.plot(x="x", y="y", ax=left, cbar_kwargs={"label": "ρ (M☉ pc⁻³)"})
left.plot(x_sun, y_sun, "w*", markersize=12)
left.set_title(f"ρ at z = {z_sun * 1000:.0f} pc")
line.accel_x.plot(ax=right)
right.set_ylabel("a_x (km² s⁻² kpc⁻¹)")
right.set_title("a_x along the x axis through the Sun")
fig.savefig(plot_path, dpi=100)
print("wrote", plot_path)
# --8<-- [end:plot]

# --8<-- [start:query]
import astropy.units as u
from astropy.coordinates import SkyCoord

names = ["Vega", "Polaris", "Betelgeuse", "Rigel", "Deneb"]  # ICRS; distances rounded (Deneb's is uncertain)
stars = SkyCoord(ra=[279.2347, 37.9546, 88.7929, 78.6345, 310.3580] * u.deg,
                 dec=[38.7837, 89.2641, 7.4071, -8.2016, 45.2803] * u.deg,
                 distance=[0.00768, 0.133, 0.168, 0.26, 0.8] * u.kpc)
at_stars = dpotcube.query(ds, stars)                   # median and 16–84% over members, dim `points`
for i, name in enumerate(names):
    p = at_stars.isel(points=i)
    print(f"{name:<10} Φ = {float(p.potential):7.0f} km² s⁻²  "
          f"a = ({float(p.accel_x):.0f}, {float(p.accel_y):.0f}, {float(p.accel_z):.0f}) km² s⁻² kpc⁻¹  "
          f"ρ = {float(p.density):.4f} [{float(p.density_p16):.4f}, {float(p.density_p84):.4f}] M☉ pc⁻³")
# --8<-- [end:query]

# --8<-- [start:curves]
vc, kz = ds.dpot.vcirc(), ds.dpot.kz()                 # v_c(R) at z = 0 and K_z(z) at the Sun's R, with ranges
sigma = ds.dpot.surface_density(z_max=1.1)
print(f"Σ(|z| < 1.1 kpc) = {float(sigma.surface_density):.1f} M☉ pc⁻²")
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
left.fill_between(vc.R, vc.vcirc_p16, vc.vcirc_p84, alpha=0.3, label="16–84% over members")
left.plot(vc.R, vc.vcirc, label="median")
left.set(xlabel="R [kpc]", ylabel="v_c [km s⁻¹]", title="circular velocity")
right.fill_between(kz.z, kz.kz_p16, kz.kz_p84, alpha=0.3, label="16–84% over members")
right.plot(kz.z, kz.kz, label="median")
right.set(xlabel="z [kpc]", ylabel="K_z [km² s⁻² kpc⁻¹]", title=f"vertical force at R = {kz.attrs['R_kpc']:.2f} kpc")
left.legend()
fig.savefig(plot_path.with_name(f"{plot_path.stem}-curves.png"), dpi=100)
# --8<-- [end:curves]

# --8<-- [start:orbits]
import gala.dynamics as gd
import gala.integrate as gi
import gala.potential as gp
import numpy as np
from galpy.orbit import Orbit

from dpotcube.adapters import galpy_coordinates

pot = dpotcube.potential(ds)                           # the learned Φ: exact in the volume, smooth beyond it
x_sun = np.asarray(ds.attrs["observer_position_kpc"])
v_sun = np.asarray(ds.attrs["galcen_v_sun_kms"])

galpy_pot = dpotcube.to_galpy(pot)
times = np.linspace(0, 1, 1001) * u.Gyr
sun = Orbit(galpy_coordinates(x_sun, v_sun), ro=galpy_pot._ro, vo=galpy_pot._vo)
sun.integrate(times, galpy_pot, method="dop853")
kinetic = 0.5 * float(np.sum(v_sun**2))                # Φ = 0 at the Sun: drifts relative to ½|v⊙|²
energy = sun.E(times, pot=galpy_pot, quantity=True).to_value(u.km**2 / u.s**2)
galpy_drift = float(np.max(np.abs(energy - energy[0]))) / kinetic

w0 = gd.PhaseSpacePosition(pos=x_sun * u.kpc, vel=v_sun * u.km / u.s)
orbit = gp.Hamiltonian(dpotcube.to_gala(pot)).integrate_orbit(w0, dt=1 * u.Myr, n_steps=1000,
                                                              Integrator=gi.DOPRI853Integrator,
                                                              Integrator_kwargs={"rtol": 1e-10, "atol": 1e-10})
gala_energy = orbit.energy().to_value(u.km**2 / u.s**2)
gala_drift = float(np.max(np.abs(gala_energy - gala_energy[0]))) / kinetic
region = pot.region(orbit.xyz.T.to_value(u.kpc))       # 0 network, 1 blend, 2 extension
assert np.isfinite(energy).all() and np.isfinite(gala_energy).all()
assert galpy_drift < 1e-6 and gala_drift < 1e-6, (galpy_drift, gala_drift)
print(f"Sun's orbit, 1 Gyr: energy conserved to {galpy_drift:.1e} (galpy), {gala_drift:.1e} (gala); "
      f"{np.mean(region == 0):.0%} of the time inside the tracer volume")
# --8<-- [end:orbits]
