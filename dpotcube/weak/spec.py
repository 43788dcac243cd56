"""`WeakSpec`: the recipe section of `fields.method: weak` (test functions, Φ basis, prior, chunking)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class WeakSpec(BaseModel):
    """Φ from the weak form of the CBE: a linear least-squares fit, no density model (docs/weak.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    potential_degree: int = Field(
        6, ge=2, le=16, description="Total degree of the Legendre-polynomial expansion of Φ on the observer's ball "
        "(coefficients: (d+1)(d+2)(d+3)/6 − 1; the constant is fixed by Φ(observer) = 0)."
    )
    test_functions: Literal["polynomial", "bumps"] = Field(
        "polynomial", description="Position part of the test functions: `polynomial` (Legendre products of total "
        "degree ≤ `test_degree` times (1 − |x − x⊙|²/R²), vanishing on the volume's edge) or `bumps` (Wendland C² "
        "bumps of radius `bump_radius_kpc` on a cubic lattice of spacing `bump_spacing_kpc` inside the volume)."
    )
    test_degree: int = Field(6, ge=1, le=16, description="Total degree of the polynomial test functions.")
    bump_radius_kpc: float = Field(1.0, gt=0, description="Support radius of the bump test functions.")
    bump_spacing_kpc: float = Field(0.5, gt=0, description="Lattice spacing of the bump centres.")
    velocity_functions: tuple[Literal["linear", "quadratic", "cubic", "gaussian"], ...] = Field(
        ("linear",), min_length=1, description="Velocity parts of the test functions, in u = (v − ⟨v⟩)/σ: `linear` "
        "u_j (the weak Jeans equations), `quadratic` u_j u_k, `cubic` u_j |u|², `gaussian` u_j exp(−|u|²/2) (carry the "
        "higher moments that an unknown selection needs)."
    )
    prior: Literal["evidence", "fixed"] = Field(
        "evidence", description="Smoothness prior on Φ's coefficients: variance τ² q^(2·degree) (analytic Φ have "
        "geometrically falling Legendre coefficients); `evidence` picks τ and q by maximum marginal likelihood, "
        "`fixed` uses `prior_scale_kms2` and `prior_decay`."
    )
    prior_scale_kms2: float = Field(1e4, gt=0, description="τ in km² s⁻² (`prior: fixed`).")
    prior_decay: float = Field(0.5, gt=0, lt=1, description="q per degree (`prior: fixed`).")
    pattern_speed: bool = Field(
        False, description="Fit a pattern speed Ω_p (one more linear unknown): f stationary in a frame rotating "
        "about the z axis; reported positive in the sense of Galactic rotation."
    )
    unknown_selection_degree: int = Field(
        0, ge=0, le=8, description="> 0: fit ln ε(x) of an unknown position-only selection as a Legendre expansion "
        "of this degree, jointly and linearly (needs `cubic` or `quadratic` velocity functions to break the "
        "degeneracy with Φ); 0: the selection is known (1/S weights) or absent."
    )
    selection_prior_std: float = Field(
        3.0, gt=0, description="Prior standard deviation of ln ε's degree-1 coefficients (falls by `prior_decay`^d)."
    )
    min_selection: float = Field(
        1e-3, gt=0, le=1, description="Known S(x) below this is raised to it before weighting by 1/S."
    )
    chunk_size: int = Field(16_384, gt=0, description="Stars per chunk when accumulating the moments (bounds memory).")
    n_members: int = Field(32, ge=1, description="Posterior draws written as cube members (`member_kind: posterior`).")

    @model_validator(mode="after")
    def _selection_needs_higher_moments(self) -> WeakSpec:
        if self.unknown_selection_degree > 0 and self.velocity_functions == ("linear",):
            raise ValueError(
                "`unknown_selection_degree` > 0 needs velocity functions beyond `linear` (the Jeans equations "
                "cannot tell ∇ ln ε from ∇Φ); set `velocity_functions: [linear, cubic]`"
            )
        if self.unknown_selection_degree > 0 and self.pattern_speed:
            raise ValueError(
                "`pattern_speed: true` with `unknown_selection_degree` > 0 is not linear (a selection fixed on the sky "
                "is not stationary in the rotating frame); fit one of them"
            )
        if self.test_functions == "bumps" and self.bump_spacing_kpc > self.bump_radius_kpc:
            raise ValueError(
                f"`bump_spacing_kpc` (={self.bump_spacing_kpc}) must not exceed `bump_radius_kpc` "
                f"(={self.bump_radius_kpc}): the bumps would leave gaps; lower the spacing"
            )
        return self
