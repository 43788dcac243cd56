"""What a released cube says about itself: licence, citations of the method's papers, a description, and the
CF-style attributes of its coordinates and variables."""

from __future__ import annotations

DATA_LICENSE = "CC-BY-4.0"
"""Licence of the published cubes and fields (the code is MIT)."""

CONVENTIONS = "CF-1.11"
"""`Conventions` of every cube: CF attribute names (units are astropy strings, e.g. `solMass pc-3`)."""

PATTERN_SPEED_CITATION = "Kalda & Green 2025, arXiv:2507.03742 (pattern speed)"

COORDINATE_ATTRS: dict[str, dict[str, str]] = {
    "x": {"axis": "X", "long_name": "Galactocentric x (astropy Galactocentric frame)", "units": "kpc"},
    "y": {"axis": "Y", "long_name": "Galactocentric y (astropy Galactocentric frame)", "units": "kpc"},
    "z": {"axis": "Z", "positive": "up", "long_name": "Galactocentric z (astropy Galactocentric frame)", "units": "kpc"},
    "member": {"long_name": "ensemble member index", "units": "1"},
    "member_kind": {"long_name": "what varies in the member: seed, bootstrap, noise or frame"},
}
"""CF attributes of the coordinates (no CF standard_name describes Galactocentric Cartesian axes)."""


def cf_global_attrs(attrs: dict) -> dict:
    """`Conventions`, `title`, `references`, `license` for a cube with global attributes `attrs`."""
    method = str(attrs.get("method", ""))
    return {
        "Conventions": CONVENTIONS,
        "title": f"dpotcube {method} map of the Galactic potential, acceleration and mass density",
        "references": attrs.get("references", ""),  # the method's papers (`Method.citations`), set by the build
        "license": DATA_LICENSE,
    }


def entry_release_metadata(metadata: dict) -> dict:
    """Description, licence and citation of a catalog entry, from its metadata (method, tracers, source)."""
    method = str(metadata.get("method", ""))
    description = (f"3-D map of the gravitational potential, acceleration and mass density (and their 16-84% range over "
                   f"ensemble members) from {metadata.get('n_tracers', '?')} {metadata.get('data_source', '')} tracers "
                   f"by the `{method}` method of dpotcube")
    return {
        "description": description,
        "license": DATA_LICENSE,
        "citation": list(metadata.get("citation", [])),
    }
