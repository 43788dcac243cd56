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
