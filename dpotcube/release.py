"""What a released cube says about itself: licence, citations of the method's papers, a description, and the
CF-style attributes of its coordinates and variables."""

from __future__ import annotations

from .errors import DpotcubeError

DATA_LICENSE = "CC-BY-4.0"
"""Licence of the published cubes and fields (the code is MIT)."""

CONVENTIONS = "CF-1.11"
"""`Conventions` of every cube: CF attribute names (units are astropy strings, e.g. `solMass pc-3`)."""

CITATIONS: dict[str, list[str]] = {
    "vanilla": ["Green & Ting 2020 (Deep Potential)", "Green et al. 2023, ApJ 942, 26"],
    "selection": ["Putney et al., arXiv:2412.14236 (ClearPotential)", "Putney et al., arXiv:2512.09989"],
    "conditional": ["Kalda & Green, conditional Deep Potential: 'Determining the Milky Way gravitational potential "
                    "without selection functions'"],
    "pointwise": ["Buckley et al. 2023", "Lim, Putney, Buckley & Shih, JCAP 2025"],
}
"""The seed papers of each method (SCIENCE.md, shared/seeds/README.md)."""

PATTERN_SPEED_CITATION = "Kalda & Green 2025, arXiv:2507.03742 (pattern speed)"

COORDINATE_ATTRS: dict[str, dict[str, str]] = {
    "x": {"axis": "X", "long_name": "Galactocentric x (astropy Galactocentric frame)", "units": "kpc"},
    "y": {"axis": "Y", "long_name": "Galactocentric y (astropy Galactocentric frame)", "units": "kpc"},
    "z": {"axis": "Z", "positive": "up", "long_name": "Galactocentric z (astropy Galactocentric frame)", "units": "kpc"},
    "member": {"long_name": "ensemble member index", "units": "1"},
    "member_kind": {"long_name": "what varies in the member: seed, bootstrap, noise or frame"},
}
"""CF attributes of the coordinates (no CF standard_name describes Galactocentric Cartesian axes)."""


def citations(method: str, pattern_speed: bool = False) -> list[str]:
    """The papers behind `method` (a method plug-in's own `citations`, where the registry has one), plus the
    pattern-speed paper when Ω_p was fitted."""
    papers = CITATIONS.get(method, [])
    try:  # the plug-in design: each method names its papers (dpotcube/methods, where it exists)
        from . import methods  # type: ignore[attr-defined]

        papers = list(getattr(methods.get_method(method), "citations", papers))
    except (ImportError, AttributeError, KeyError, ValueError, DpotcubeError):
        pass
    return [*papers, *([PATTERN_SPEED_CITATION] if pattern_speed else [])]


def cf_global_attrs(attrs: dict) -> dict:
    """`Conventions`, `title`, `references`, `license` for a cube with global attributes `attrs`."""
    method = str(attrs.get("method", ""))
    return {
        "Conventions": CONVENTIONS,
        "title": f"dpotcube {method} map of the Galactic potential, acceleration and mass density",
        "references": "; ".join(citations(method, "pattern_speed_kms_per_kpc" in attrs)),
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
        "citation": citations(method, "pattern_speed_kms_per_kpc" in metadata),
    }
