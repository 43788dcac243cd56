"""The recipe: a pydantic model tree loaded from YAML, with dotted overrides and readable errors."""

from __future__ import annotations

import difflib
import hashlib
import math
import reprlib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from annotated_types import MinLen
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PositiveFloat,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from . import constants
from .errors import RecipeError
from .recipe_yaml import apply_override, load_yaml

Activation = Literal["silu", "gelu", "tanh", "gint"]


SEED_MAX = 2**32 - 1
"""Largest seed: numpy's legacy seed range, 0 … 2³² − 1."""
INT_MAX = 2**31 - 1
"""Largest integer setting: JAX counts steps, batches and sizes in 32-bit integers."""


class _Section(BaseModel):
    """Every recipe section: unknown keys refused, floats finite, numbers never booleans."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is None or not _wants_number(field.annotation):
            return value
        items = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(item, bool) for item in items):
            raise ValueError(
                "a boolean is not a number (YAML reads yes/no/true/false/on/off as booleans); give a number"
            )
        largest = SEED_MAX if info.field_name == "seed" else INT_MAX
        if _wants_number(field.annotation, (int,)) and any(isinstance(i, int) and abs(i) > largest for i in items):
            raise ValueError(f"must lie within ±{largest:,} (a 32-bit integer)")
        return value


def _wants_number(annotation: Any, kinds: tuple[type, ...] = (int, float)) -> bool:
    """Whether `annotation` takes values of `kinds` and never a bool (`int`, `float | None`, `tuple[float, ...]`)."""
    if annotation in kinds:
        return True
    args = get_args(annotation)
    return bool(args) and bool not in args and any(_wants_number(a, kinds) for a in args)


class FrameSpec(_Section):
    """Solar position and velocity defining astropy's Galactocentric frame."""

    galcen_distance_kpc: float = Field(constants.GALCEN_DISTANCE_KPC, gt=0, description="Sun–Galactic-centre distance.")
    z_sun_kpc: float = Field(constants.Z_SUN_KPC, description="Height of the Sun above the midplane.")
    galcen_v_sun_kms: tuple[float, float, float] = Field(
        constants.GALCEN_V_SUN_KMS, description="Solar velocity (U, V+v_c, W) in the Galactocentric frame."
    )


class PlummerSpec(_Section):
    """A Plummer sphere centred on the Galactic centre, sampled exactly from its DF."""

    mass_msun: float = Field(1.0e11, gt=0, le=1e16, description="Total mass M (at most 10¹⁶ M☉).")
    scale_radius_kpc: float = Field(4.0, gt=0, description="Plummer scale radius b.")
    anisotropy_radius_kpc: float | None = Field(
        None,
        gt=0,
        description="Osipkov–Merritt anisotropy radius r_a: velocity anisotropy β(r) = r²/(r² + r_a²), isotropic "
        "inside r_a and radial outside; Φ, a, ρ and n are unchanged. Empty: isotropic. At least 0.75 × "
        "`scale_radius_kpc` (below that the distribution function is negative).",
    )

    @model_validator(mode="after")
    def _anisotropy_radius_allowed(self) -> PlummerSpec:
        r_a, b = self.anisotropy_radius_kpc, self.scale_radius_kpc
        least = constants.PLUMMER_MIN_ANISOTROPY_RADIUS
        if r_a is not None and r_a < least * b:
            raise ValueError(
                f"`anisotropy_radius_kpc` (={r_a:g}) must be at least {least} × `scale_radius_kpc` (={least * b:g}): "
                "below it the Osipkov–Merritt distribution function is negative; raise it, or leave it empty "
                "for an isotropic sphere"
            )
        return self


class DustSpec(_Section):
    """A 3-D dust field: ln of the extinction density a Gaussian random field, made from the seed (no map shipped)."""

    mean_extinction_mag_per_kpc: float = Field(
        0.5, gt=0, description="Mean extinction density α₀; α(x) = α₀ exp(δ(x) − σ²/2) with δ the random field."
    )
    log_sigma: float = Field(1.0, ge=0, description="Standard deviation σ of δ = ln(α/α₀) + σ²/2 (0: uniform dust).")
    spectral_index: float = Field(3.0, description="Power spectrum P(k) ∝ k^(−index) of δ (3: equal power per octave).")
    min_scale_kpc: float = Field(
        0.25, gt=0, description="Smallest structure: P(k) is cut off above k = 2π/min_scale (published: 0.25 kpc)."
    )
    max_scale_kpc: float = Field(6.0, gt=0, description="Largest structure: P(k) starts at k = 2π/max_scale.")
    n_modes: int = Field(256, ge=16, le=8192, description="Random Fourier modes summed for δ (cost ∝ n_modes).")
    quadrature_nodes: int = Field(
        64, ge=8, le=1024, description="Gauss–Legendre nodes along each line of sight; at least "
        "5 × volume_radius_kpc / min_scale_kpc (64 nodes: < 1e-3 mag error at 3 kpc)."
    )
    seed: int = Field(
        0, ge=0, le=SEED_MAX, description="Seed of the dust realisation; separate from the recipe `seed`, so members that vary "
        "the stars see the same dust."
    )

    @model_validator(mode="after")
    def _scales_ordered(self) -> DustSpec:
        if self.min_scale_kpc >= self.max_scale_kpc:
            raise ValueError(
                f"`min_scale_kpc` (={self.min_scale_kpc}) must be smaller than `max_scale_kpc` (={self.max_scale_kpc})"
            )
        return self


class ObservationSpec(_Section):
    """How the mock is observed: an apparent-magnitude limit, through dust or not; S(x) depends on position only."""

    magnitude_limit: float = Field(13.5, description="Apparent-magnitude limit m_lim: a star is seen when m < m_lim.")
    absolute_magnitude_mean: float = Field(1.0, description="Mean M₀ of the tracers' absolute magnitudes.")
    absolute_magnitude_sigma: float = Field(
        1.0, gt=0, description="Spread σ_M of the absolute magnitudes (normal distribution)."
    )
    dust: DustSpec | None = Field(
        DustSpec(), description="The dust field; `null` for the dust-free variant (distance/magnitude limit only)."
    )


GalactocentricColumn = Literal[
    "x", "y", "z", "vx", "vy", "vz", "x_error", "y_error", "z_error", "vx_error", "vy_error", "vz_error",
]
GaiaColumn = Literal[
    "ra", "dec", "parallax", "pmra", "pmdec", "radial_velocity",
    "ra_error", "dec_error", "parallax_error", "pmra_error", "pmdec_error", "radial_velocity_error",
    "ra_dec_corr", "ra_parallax_corr", "ra_pmra_corr", "ra_pmdec_corr", "dec_parallax_corr", "dec_pmra_corr",
    "dec_pmdec_corr", "parallax_pmra_corr", "parallax_pmdec_corr", "pmra_pmdec_corr", "grvs_mag",
]


class TableSpec(_Section):
    """A user table: Galactocentric Cartesian columns, or Gaia-style astrometry."""

    path: Path = Field(
        description="Parquet, CSV, FITS, ECSV or VOTable file; relative paths are resolved against the recipe."
    )
    coordinates: Literal["galactocentric", "gaia"] = Field(
        "galactocentric",
        description="`galactocentric`: x, y, z (kpc), vx, vy, vz (km/s), optionally all six `_error` columns "
        "(1σ, for `ensemble.noise`). `gaia`: ra, dec (deg), parallax (mas), "
        "pmra, pmdec (mas/yr), radial_velocity (km/s), optionally their `_error` and `_corr` columns, "
        "converted with astropy's Galactocentric frame and `data.frame`.",
    )
    columns: dict[GalactocentricColumn | GaiaColumn, str] = Field(
        default_factory=dict, description="Map from dpotcube's names to the table's column names."
    )
    max_nonfinite_fraction: float = Field(
        0.01, ge=0, le=1, description="Rows with NaN/inf are dropped (and counted); above this share the table is refused."
    )
    apply_gaia_cuts: bool = Field(
        False, description="Apply `data.gaia.cuts` (needs `coordinates: gaia` and, for the magnitude cut, `grvs_mag`)."
    )
    selection_column: str | None = Field(
        None, description="Column with each star's selection probability S(x) in (0, 1] (`coordinates: galactocentric`); "
        "used by `density.position.selection_weights`."
    )

    @model_validator(mode="after")
    def _columns_match_coordinates(self) -> TableSpec:
        allowed = set(get_args(GalactocentricColumn if self.coordinates == "galactocentric" else GaiaColumn))
        wrong = sorted(set(self.columns) - allowed)
        if wrong:
            raise ValueError(
                f"`columns` maps {', '.join(wrong)}, which `coordinates: {self.coordinates}` does not use; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        if self.apply_gaia_cuts and self.coordinates != "gaia":
            raise ValueError("`apply_gaia_cuts: true` needs `coordinates: gaia`")
        if self.selection_column is not None and self.coordinates != "galactocentric":
            raise ValueError("`selection_column` needs `coordinates: galactocentric`")
        return self


class GaiaCutsSpec(_Section):
    """The published tracer selection (Lim et al.): quality, speed, completeness and distance cuts."""

    parallax_over_error_min: float = Field(3.0, ge=0, description="Keep parallax_over_error above this.")
    max_speed_kms: float = Field(1000.0, gt=0, description="Keep stars slower than this in the Galactic rest frame (Galactocentric speed).")
    grvs_limit_mag: float = Field(14.0, description="Apparent G_RVS magnitude limit of the RVS sample.")
    completeness_radius_kpc: float | None = Field(
        None,
        gt=0,
        description="Keep M_G = G_RVS − 5 log10(d/kpc) − 10 < grvs_limit_mag − (5 log10 R + 10), so every star "
        "would be seen anywhere within R; default R = `data.volume_radius_kpc`.",
    )


class GaiaSpec(_Section):
    """Gaia DR3 stars with radial velocities from the archive's TAP service (async ADQL job)."""

    tap_url: str = Field(
        "https://gea.esac.esa.int/tap-server/tap", pattern=r"^https?://", description="TAP service URL."
    )
    table: str = Field("gaiadr3.gaia_source", description="Source table queried.")
    parent_radius_kpc: float = Field(
        10.0, gt=0, description="Parent sample downloaded and kept for error smearing: RVS stars with parallax > 1/R "
        "(d < R) and parallax_over_error above `cuts.parallax_over_error_min`."
    )
    chunks: int = Field(
        1, ge=1, le=4096, description="Split the query into this many source_id ranges (one async job each)."
    )
    max_rows: int | None = Field(None, gt=0, description="`SELECT TOP n` per chunk, for trials; default: all rows.")
    timeout_s: float = Field(60.0, gt=0, description="Connect and read timeout of each HTTP request.")
    max_wait_s: float = Field(3600.0, gt=0, description="Give up on a job that has not finished after this long.")
    cuts: GaiaCutsSpec = Field(GaiaCutsSpec(), description="The published cuts, applied after download.")


class DataSpec(_Section):
    """Where the stars come from and which of them are kept."""

    source: Literal["plummer", "table", "gaia"] = Field(
        "plummer", description="`plummer` (built-in mock with truth), `table` (a file) or `gaia` (Gaia DR3 via TAP)."
    )
    n_stars: int = Field(
        50_000, ge=200, description="Stars drawn inside the volume (mock sources only); with `observation`, the "
        "observed stars."
    )
    volume_radius_kpc: float = Field(3.0, gt=0, description="Keep stars within this distance of the observer.")
    plummer: PlummerSpec = Field(PlummerSpec(), description="Mock parameters for `source: plummer`.")
    observation: ObservationSpec | None = Field(
        None, description="Observe the mock through a magnitude limit (and dust); `null`: every star in the volume "
        "is seen. Only for `source: plummer`."
    )
    table: TableSpec | None = Field(None, description="Required when `source: table`.")
    gaia: GaiaSpec = Field(GaiaSpec(), description="Query and cuts for `source: gaia` (cuts also for Gaia tables).")
    frame: FrameSpec = Field(FrameSpec(), description="Solar parameters; the observer sits at the Sun.")

    @property
    def every_star_seen(self) -> bool:
        """The stars are every tracer in the volume: the built-in mock without `data.observation` (a table's or
        Gaia's completeness is not known)."""
        return self.source == "plummer" and self.observation is None

    @model_validator(mode="after")
    def _table_given_for_table_source(self) -> DataSpec:
        if self.source == "table" and self.table is None:
            raise ValueError("`data.source: table` needs a `data.table` section with at least `path: FILE`")
        if self.observation is not None and self.source != "plummer":
            raise ValueError(
                f"`data.observation` observes the built-in mock and needs `data.source: plummer` (got `{self.source}`); "
                "for a table with known S(x) use `data.table.selection_column`, else drop `data.observation`"
            )
        dust = self.observation.dust if self.observation is not None else None
        if dust is not None and dust.quadrature_nodes < 5 * self.volume_radius_kpc / dust.min_scale_kpc:
            needed = math.ceil(5 * self.volume_radius_kpc / dust.min_scale_kpc)
            raise ValueError(
                f"`data.observation.dust.quadrature_nodes` (={dust.quadrature_nodes}) is too few to integrate "
                f"{dust.min_scale_kpc} kpc dust over {self.volume_radius_kpc} kpc lines of sight; set it to at least "
                f"{needed}"
            )
        return self


class CollocationSpec(_Section):
    """Collocation points at which the CBE is imposed: positions × velocities from p(v|x).

    Stored with the build: 12 float32 per point (x, v, ∇ₓ ln p, ∇ᵥ ln p), 15 with ∇ ln n.
    """

    positions: Literal["stars", "flow"] = Field(
        "stars", description="Where positions come from: the stars, or draws from the n(x) flow "
        "(needs `density.position`)."
    )
    n_positions: int = Field(16_384, gt=0, description="Positions drawn.")
    velocities_per_position: int = Field(
        8, gt=0, description="Velocities drawn from p(v|x) at each position (published: 16)."
    )
    chunk_size: int = Field(8192, gt=0, description="Points per chunk when computing flow gradients (bounds memory).")
    edge_margin_kpc: float = Field(
        0.25, ge=0, description="With an n(x) flow on the ball (`support: ball`), positions are kept this far inside "
        "the volume's edge: there the flow's n falls to zero with the sample's cut, so its ∇ ln n (up to 10² kpc⁻¹ "
        "in the last 50 pc) says nothing about the tracers' true density."
    )


ReferenceScalesKpc = Annotated[tuple[PositiveFloat, ...], MinLen(1)]
"""Scales s (kpc) of radial shapes ln(1 + r/s) about the Galactic centre: at least one, each positive."""
FRAME_REFERENCE_SCALES_KPC = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0)
"""The velocity frame's radial shapes on offer; its fit keeps those stepwise BIC asks for (usually one)."""


class FlowSpec(_Section):
    """One normalizing flow: a masked autoregressive flow with affine transformers (`type: maf`)."""

    type: Literal["maf"] = Field(
        "maf", description="The density model (`dpotcube.density.registry`): `maf`, a flowjax masked autoregressive "
        "flow (the default: fast to fit and evaluate), or `cfm`, a continuous normalizing flow with its own keys "
        "(next section)."
    )

    flow_layers: int = Field(6, gt=0, description="Masked autoregressive layers.")
    nn_width: int = Field(128, gt=0, description="Width of each layer's conditioner network.")
    nn_depth: int = Field(2, gt=0, description="Hidden layers of each conditioner network.")
    activation: Activation = Field(
        "silu", description="Smooth activations only (gradients matter); `gint` is ClearPotential's."
    )
    transformer: Literal["affine"] = Field(
        "affine", description="Only affine: flowjax's spline transformer has jumps in its second derivative."
    )
    learning_rate: float = Field(4e-3, gt=0, description="Adam peak learning rate (cosine decay over `max_epochs`).")
    weight_decay: float = Field(0.0, ge=0, description="Decoupled weight decay (AdamW); 0 is plain Adam.")
    batch_size: int = Field(2048, gt=0, description="Stars per optimisation step.")
    max_epochs: int = Field(60, gt=0, description="Upper limit on passes over the training stars.")
    patience: int = Field(8, gt=0, description="Epochs without validation improvement before stopping.")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="Share of stars held out for validation.")
    condition_noise_kpc: float = Field(
        0.0, ge=0, description="p(v|x) only: standard deviation (kpc) of Gaussian jitter added to each star's "
        "position, afresh at every step, while training (as `cfm`'s key of the same name): p(v|x) smoothed over "
        "this scale in x, less sampling noise in ∇ₓ ln p for a bias ∝ (noise / smallest scale)²; 0: none."
    )
    frame: Literal["none", "galactocentric"] = Field(
        "none", description="p(v|x) only. `galactocentric`: the flow models each star's velocity in a frame that "
        "follows its position: Galactocentric spherical components (v_r, v_θ, v_φ), each less a mean and divided by "
        "a dispersion that are smooth functions of position (a constant, ln(1 + r/s) of the Galactocentric radius for "
        "each s in `frame_reference_scales_kpc`, and Legendre products of degree ≤ `frame_max_degree`, the "
        "columns kept chosen by forward stepwise BIC; fitted by Gaussian maximum likelihood before the flow). How the velocity ellipsoid grows, shrinks and moves across the "
        "volume then rests on a few dozen numbers, not on the flow's networks, and ∇ₓ ln p carries far less of their "
        "sampling noise (docs/density.md, 'A velocity frame for p(v|x)'); `none`: velocities standardised by one global mean "
        "and scale."
    )
    frame_max_degree: int = Field(
        1, ge=0, le=4, description="Highest total degree of the frame's Legendre part tried. From the constant, "
        "forward stepwise BIC adds whichever raises it most of a reference shape not yet kept and the next degree."
    )
    frame_reference_scales_kpc: ReferenceScalesKpc = Field(
        FRAME_REFERENCE_SCALES_KPC,
        description="Scales s (kpc) of the radial shapes ln(1 + r/s) the frame may keep (each tried on its own)."
    )
    frame_condition: Literal["position", "dispersions", "none"] = Field(
        "position", description="With a `frame`, what the flow of frame velocities is conditioned on, i.e. how the "
        "velocity distribution's shape may change across the volume beyond the frame's mean and dispersion: "
        "`position`, freely with x (the MAF's networks carry it, with their sampling noise in ∇ₓ ln p); "
        "`dispersions`, only through the frame's three local dispersions ln σ(x) (a shape that follows how hot the "
        "population is; smooth in x by construction); `none`, not at all (the fewest numbers, the least noise; "
        "right only where the distribution is one shape scaled and shifted, e.g. an isotropic power-law DF). "
        "`condition_noise_kpc` jitters only `position`. Without a frame the flow is conditioned on position."
    )

    @model_validator(mode="after")
    def _frame_or_condition(self) -> FlowSpec:
        if self.frame == "none" and self.frame_condition != "position":
            raise ValueError(
                f"`frame_condition: {self.frame_condition}` conditions the flow of frame velocities, but `frame` is "
                "`none`: set `frame: galactocentric`, or leave `frame_condition: position`"
            )
        return self


class CFMSpec(_Section):
    """A continuous normalizing flow trained by conditional flow matching (`type: cfm`; docs/density.md)."""

    type: Literal["cfm"] = Field(
        "cfm", description="A continuous normalizing flow (Kalda & Green's density model): exact ln p through an "
        "ODE, ∇ ln p by autodiff through the solve; slower to evaluate than `maf` (`ode_steps` solver steps), "
        "measured closer to the truth in ∇ₓ ln p (docs/benchmarks.md, gradients)."
    )
    width: int = Field(128, gt=0, description="Width of the vector field's residual blocks.")
    depth: int = Field(4, gt=0, description="Residual blocks (each Linear → SiLU → Linear, added to its input): "
                       "a ResNet keeps the deep field trainable, as the paper's.")
    time_frequencies: int = Field(
        4, ge=0, description="Fourier features sin/cos(2πkt), k = 1…K, of the flow time t: let the field change "
        "quickly in t without a wider network."
    )
    ode_steps: int = Field(
        16, gt=0, description="Fixed Tsit5 steps of the ODE for ln p and sampling: fixed (not adaptive) so ln p is "
        "a smooth function of (x, v) and its gradients have continuous derivatives; cost ∝ steps."
    )
    time_sampling: Literal["sqrt", "uniform"] = Field(
        "sqrt", description="Training times: `sqrt` draws t = √U (more weight near the data, where the gradients "
        "are read; as the paper), `uniform` t = U."
    )
    condition_noise_kpc: float = Field(
        0.25, ge=0, description="p(v|x) only: standard deviation (kpc) of Gaussian jitter added to each star's "
        "position, afresh at every step, while training: p(v|x) smoothed over this scale in x, trading a bias "
        "∝ (noise / smallest scale of the galaxy)² for less sampling noise in ∇ₓ ln p. Measured on the Plummer "
        "mock (b = 4 kpc; gradients benchmark): 0.25 kpc cuts the ∇ₓ ln p error by ~10% at 2 × 10⁵ stars on two "
        "independent samples (0.171 → 0.154, 0.157 → 0.140) and 0.2 kpc by 12% at 10⁶ (0.122 → 0.107), while "
        "0.15 and 0.35 kpc give 0.163, 0.5 kpc 0.204; lower it for structure finer than ~1 kpc (a thin disc) or "
        "many more stars; 0: none."
    )
    learning_rate: float = Field(2e-3, gt=0, description="AdamW peak learning rate (cosine decay over `max_epochs`).")
    weight_decay: float = Field(1e-5, ge=0, description="Decoupled weight decay (AdamW).")
    batch_size: int = Field(4096, gt=0, description="Stars per optimisation step.")
    max_epochs: int = Field(200, gt=0, description="Upper limit on passes over the training stars.")
    patience: int = Field(
        30, gt=0, description="Epochs without improvement of the validation flow-matching loss before stopping "
        "(the loss is noisy: keep it long, or equal to `max_epochs` for the whole schedule)."
    )
    val_fraction: float = Field(0.1, gt=0, lt=1, description="Share of stars held out for validation.")


class _PositionKeys(_Section):
    """The keys of an n(x) model beyond those of its `type`."""

    support: Literal["ball", "free"] = Field(
        "ball", description="`ball`: n(x) is zero outside the observer's sphere (`data.volume_radius_kpc`) and the "
        "flow has that edge exactly; `free`: a flow on all of R³."
    )
    selection_weights: bool = Field(
        False, description="Weight each star by 1/S(x) from the table's selection column (for `vanilla` when S is "
        "known), clipped at `max_weight`."
    )
    max_weight: float = Field(20.0, ge=1, description="Clip of the 1/S weights.")


class PositionFlowSpec(_PositionKeys, FlowSpec):
    """The unconditional flow for the tracer density n(x) (`type: maf`)."""

    @model_validator(mode="after")
    def _no_condition_to_jitter(self) -> PositionFlowSpec:
        if self.condition_noise_kpc > 0:
            raise ValueError(
                f"`condition_noise_kpc` (={self.condition_noise_kpc}) jitters the positions p(v|x) is conditioned on; "
                "n(x) has no condition: set it under `density.velocity`, or remove it here"
            )
        if self.frame != "none":
            raise ValueError(
                f"`frame: {self.frame}` is a velocity frame for p(v|x); n(x) has no velocities: set it under "
                "`density.velocity`, or remove it here"
            )
        return self


class PositionCFMSpec(_PositionKeys, CFMSpec):
    """The unconditional continuous normalizing flow for the tracer density n(x) (`type: cfm`)."""


class PositionLegendreSpec(_PositionKeys):
    """n(x) as an exponential family on the observer's ball (`type: legendre`; dpotcube/density/legendre.py)."""

    type: Literal["legendre"] = Field(
        "legendre", description="ln n(x) a few global radial shapes (`reference`) plus a Legendre expansion in "
        "(x − x⊙)/R, fitted by maximum likelihood, the degree by `degree_selection`: few parameters, so ∇ ln n and "
        "its curvature ∇² ln n, which ρ reads (docs/density.md), are smooth and far less noisy than a flow's where "
        "the tracer density is smooth (docs/benchmarks.md, gradients and curvature). n(x) only, on the ball; "
        "structure finer than its degree resolves needs `maf` or `cfm`."
    )
    reference: Literal["none", "spherical"] = Field(
        "spherical", description="`spherical`: ln n includes ln(1 + r/s) of the Galactocentric radius r (cored at "
        "10 pc) for each s in `reference_scales_kpc`, coefficients fitted with the rest: a centrally concentrated "
        "tracer's curvature then rests on a few well-measured numbers instead of the high-degree terms (Plummer "
        "mock, 10⁶ stars: ∇² ln n error 4% against 8% without, curvature benchmark); `none`: the Legendre expansion "
        "alone."
    )
    reference_scales_kpc: ReferenceScalesKpc = Field((2.0, 8.0, 32.0), description="Scales s of the reference shapes (kpc).")
    max_weight: float = Field(
        1.0e4, ge=1, description="Clip of the 1/S weights: far above a flow's 20, since a fit of a few coefficients "
        "averages over every star, so large weights add little noise, while a clip biases n(x) where S is small "
        "(dusty mock, 2 × 10⁵ stars, largest 1/S 1,500, `vanilla`: median ρ error 4.4 clipped at 20, 0.99 at 100, 0.22 "
        "at 1,000, 0.17 unclipped; docs/benchmarks.md). It only guards against S near 0."
    )
    degree_selection: Literal["bic", "held_out"] = Field(
        "bic", description="How the Legendre degree is chosen among 1 … `max_degree`: `bic`, the largest "
        "log-likelihood of all stars less ½ k ln N (k coefficients, N the stars, Kish's effective N with "
        "weights), so that a degree is kept only where every star's worth of evidence asks for it; `held_out`, the "
        "best log-likelihood of `val_fraction` of the stars held out of the fit (at 10⁶ stars neighbouring "
        "degrees differ there by ~10⁻⁵ per star, so the pick can move with the split)."
    )
    max_degree: int = Field(6, ge=1, le=12, description="Highest total degree tried (coefficients at degree d: "
                            "(d+1)(d+2)(d+3)/6 − 1, plus one per reference scale).")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="Share of stars held out to pick the degree "
                                "(`degree_selection: held_out`).")
    quadrature_points: int = Field(
        2**19, ge=2**10, description="Scrambled Sobol points in the ball's bounding cube (about half fall in the "
        "ball) for the normalisation integral; a power of two. Its error falls as 1/m."
    )

    @model_validator(mode="after")
    def _on_the_ball(self) -> PositionLegendreSpec:
        if self.support != "ball":
            raise ValueError("`type: legendre` lives on the observer's ball: set `support: ball` (or use `type: maf`)")
        if self.quadrature_points & (self.quadrature_points - 1):
            raise ValueError(f"`quadrature_points` (={self.quadrature_points}) must be a power of two, e.g. 524288")
        return self


DEFAULT_DENSITY_TYPE = "maf"
"""The `type` of a flow section that names none (every recipe before `cfm` existed)."""


def _density_type(value: Any) -> str:
    """The tag of a flow section: its `type:`, `maf` when absent (or when the section is no mapping, so that the
    MAF's own message says what is wrong)."""
    if isinstance(value, dict):
        tag = value.get("type", DEFAULT_DENSITY_TYPE)
        return tag if isinstance(tag, str) else repr(tag)
    return getattr(value, "type", DEFAULT_DENSITY_TYPE)


VelocityModelSpec = Annotated[
    Annotated[FlowSpec, Tag("maf")] | Annotated[CFMSpec, Tag("cfm")], Discriminator(_density_type)
]
"""The p(v|x) section: one spec per density model, chosen by its `type:` (`dpotcube.density.registry`)."""
PositionModelSpec = Annotated[
    Annotated[PositionFlowSpec, Tag("maf")] | Annotated[PositionCFMSpec, Tag("cfm")]
    | Annotated[PositionLegendreSpec, Tag("legendre")],
    Discriminator(_density_type),
]
"""The n(x) section, chosen by its `type:` like `VelocityModelSpec`."""


def _tags(spec: Any) -> set[str]:
    """The `type:` values of a tagged union of model sections."""
    return {get_args(option)[1].tag for option in get_args(get_args(spec)[0])}


N_OF_X_ONLY = _tags(PositionModelSpec) - _tags(VelocityModelSpec)
"""Density models offered for n(x) but not for p(v|x) (named when a p(v|x) section asks for one)."""


class EnsembleSpec(_Section):
    """K flows with different seeds; their gradients are combined point by point."""

    members: int = Field(1, ge=1, le=256, description="Flows per density model (K).")
    combine: Literal["median", "robust_mean"] = Field(
        "median", description="`median`: per-component median over members (Kalda & Green 2025); "
        "`robust_mean`: mean over the members closer to the median than 3 times their median distance to it."
    )
    resplit: bool = Field(True, description="Each member draws its own train/validation split.")


_MOVED_FLOW_KEYS = set(FlowSpec.model_fields)


class DensitySpec(_Section):
    """Flows for p(v|x) and optionally n(x), their ensemble, and the collocation points."""

    velocity: VelocityModelSpec = Field(FlowSpec(), description="The conditional flow p(v|x).")
    position: PositionModelSpec | None = Field(
        None, description="The flow for n(x); fitted only when given (needed by `collocation.positions: flow`)."
    )
    ensemble: EnsembleSpec = Field(EnsembleSpec(), description="How many flows of each kind, and how to combine them.")
    collocation: CollocationSpec = Field(CollocationSpec(), description="Collocation points for the field stage.")

    @model_validator(mode="before")
    @classmethod
    def _flat_flow_keys_moved(cls, raw: Any) -> Any:
        moved = sorted(_MOVED_FLOW_KEYS & set(raw)) if isinstance(raw, dict) else []
        if moved:
            raise ValueError(
                f"flow settings ({', '.join(moved)}) now live under `density.velocity:` (and `density.position:` "
                "for n(x)); indent them one level under `velocity:`"
            )
        return raw

    @model_validator(mode="after")
    def _position_flow_for_flow_positions(self) -> DensitySpec:
        if self.collocation.positions == "flow" and self.position is None:
            raise ValueError("`collocation.positions: flow` needs a `density.position:` section (the n(x) flow)")
        return self


class NetSpec(_Section):
    """A fully connected network body."""

    width: int = Field(128, gt=0, description="Units per hidden layer.")
    depth: int = Field(3, gt=0, description="Hidden layers.")
    activation: Activation = Field("silu", description="Smooth activation; `gint` is ClearPotential's.")
    body: Literal["mlp", "resnet"] = Field(
        "mlp", description="`mlp`: a plain stack of layers; `resnet`: each hidden layer adds its output to its input "
        "(h ← h + W σ(h)), as in the conditional Deep Potential."
    )


MethodName = Literal["vanilla", "selection", "conditional", "pointwise", "weak"]
"""The registered CBE methods (`dpotcube.methods`); what each needs of a recipe is checked by the method itself."""


class PointwiseSpec(_Section):
    """The `pointwise` method (Lim et al. 2025): least-squares a at each grid point, ρ from its smoothed divergence.

    Defaults are sized for a CPU; the published sizes (GPU) are named in each key.
    Cost per grid point grows as `n_velocities` × `kernel_points` × flow members (docs/pointwise.md).
    """

    n_velocities: int = Field(
        256, ge=8, description="QMC velocities from p(v|x) per position and flow member (published: 10,000)."
    )
    max_speed_kms: float = Field(600.0, gt=0, description="Velocities with |v| at or above this are dropped (published: 600).")
    qmc: Literal["sobol", "halton"] = Field(
        "sobol", description="Scrambled low-discrepancy sequence for velocities and kernel points (scipy.stats.qmc)."
    )
    density: bool = Field(
        True, description="Also write `density` (the costly part: ∇·a at `kernel_points` around every grid point)."
    )
    kernel_scales_kpc: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = Field(
        (0.5, 0.5, 0.2), description="Scales h of the truncated Gaussian smoothing kernel along x, y, z (published: "
        "0.5, 0.5, 0.2 kpc)."
    )
    kernel_cut: float = Field(2.0, gt=0, description="Kernel truncated at |δ/h| = this (published: 2).")
    kernel_points: int = Field(
        32, ge=1, description="QMC points inside the kernel per grid point at which ∇·a is averaged (published: 3,200)."
    )
    batch: int = Field(
        16, gt=0, description="Positions per jitted call (memory ≈ batch × n_velocities × flow members evaluations)."
    )


class WeakSpec(_Section):
    """Φ from the weak form of the CBE: a linear least-squares fit, no density model (docs/weak.md)."""

    potential_degree: int = Field(
        4, ge=2, le=16, description="Total degree of the Legendre-polynomial expansion of Φ on the observer's ball "
        "(coefficients: (d+1)(d+2)(d+3)/6 − 1; the constant is fixed by Φ(observer) = 0); with a `reference`, the "
        "correction to it."
    )
    reference: Literal["none", "spherical", "axisymmetric"] = Field(
        "axisymmetric", description="Global shapes about the Galactic centre added to Φ's basis, with the Legendre "
        "expansion as a correction (prior strengths of both by evidence): `spherical` (monopoles −s/√(r² + s²), one "
        "per scale in `reference_scales_kpc`), `axisymmetric` (and quadrupoles about z); `none`: the Legendre "
        "expansion alone. Needs Galactocentric positions (the Galactic centre at the origin)."
    )
    reference_scales_kpc: tuple[float, ...] = Field(
        (2.0, 8.0, 32.0), min_length=1, description="Scales s of the reference shapes (kpc)."
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
    reference_prior_scale_kms2: float = Field(
        1e7, gt=0, description="Prior standard deviation of each reference shape's coefficient (km² s⁻²); broad by "
        "default, so the reference is fitted by the data, not shrunk (a Plummer sphere of 10¹¹ M☉ and scale s has "
        "4·10⁵ kpc/s km² s⁻²)."
    )
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
    known_selection: Literal["auto", "gradient", "weights"] = Field(
        "auto", description="How a known selection S(x) enters: `gradient`, test functions S·w with unit weights "
        "and the term w v·∇ ln S (∇ ln S at each star by central differences of S; needs S as a function of "
        "position: the mock's `data.observation`); `weights`, ω = 1/S per star (needs only S at the stars, e.g. a "
        "table's `selection_column`, but where S spans decades a few stars carry the sums and the posterior is too "
        "narrow); `auto`: `gradient` where S is known as a function, else `weights`."
    )
    min_selection: float = Field(
        1e-3, gt=0, le=1, description="Known S(x) below this is raised to it before weighting by 1/S."
    )
    cross_fit_folds: int = Field(
        8, ge=1, le=64, description="The stars are dealt into this many folds (every k-th star); each fold's "
        "moments are weighted by the noise covariance, and projected by the design, of the other folds' stars, and "
        "the posterior is the sandwich of the folds' own noise: a covariance from the moments' own stars is "
        "correlated with them, which biases the fit and narrows its posterior where the per-star terms are "
        "heavy-tailed (dust). 1: one covariance from all stars (the fit of earlier versions)."
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


class FieldsSpec(_Section):
    """Neural fields trained on the collisionless Boltzmann equation (SCIENCE.md, methods 1–3)."""

    method: MethodName = Field(
        "conditional",
        description="`vanilla`: Φ from flows for n(x) and p(v|x) (needs `density.position`); `selection`: Φ and a "
        "dust/selection efficiency ε(x) in (0, 1] from flows of the observed n(x) and p(v|x) (needs "
        "`density.position` without `selection_weights`); `conditional`: Φ and the true tracer density n(x) from "
        "p(v|x) alone; `pointwise`: a by least squares at every grid point and ρ from its smoothed divergence, no "
        "networks (needs `density.position`; settings under `fields.pointwise`).",
    )
    pointwise: PointwiseSpec = Field(PointwiseSpec(), description="Settings of `method: pointwise`.")
    weak: WeakSpec = Field(WeakSpec(), description="Settings of `method: weak` (docs/weak.md).")
    potential: NetSpec = Field(NetSpec(), description="Network for Φ(x).")
    log_density: NetSpec = Field(NetSpec(width=64, depth=3), description="Network for ln n(x) (`conditional`).")
    efficiency: NetSpec = Field(
        NetSpec(width=64, depth=3), description="Network for ε(x) (`selection`; published: 5 × 100, `gint`); "
        "ln ε = −softplus(s(x) − 2), smooth and ≤ 0, near 0.88 at initialisation."
    )
    loss: Literal["mse", "asinh"] = Field(
        "mse", description="`mse`: ⟨(r/s)²⟩ + λ⟨max(0, −∇²Φ)/s'⟩ (ClearPotential); `asinh`: ⟨asinh(|r|/s)⟩ + "
        "λ⟨asinh(max(0, −∇²Φ)/s')⟩ (Deep Potential). s: the rms of v·∇ₓ ln f; s': ⟨v²⟩/R²."
    )
    residual_form: Literal["ln_f", "acceleration"] = Field(
        "ln_f",
        description="`ln_f`: the CBE residual as written (1/time), so that collocation points where ln f changes "
        "fastest (near the escape speed, where a density model is least accurate) weigh most; `acceleration`: each "
        "residual divided by |∇ᵥ ln f| at its point, so that every point is one equal-weight measurement of a "
        "component of a (km² s⁻² kpc⁻¹). For the network methods (`vanilla`, `selection`, `conditional`).",
    )
    steps: int = Field(3000, gt=0, description="Optimisation steps.")
    batch_size: int = Field(2048, gt=0, description="Collocation points per step.")
    learning_rate: float = Field(2e-3, gt=0, description="Adam peak learning rate (warm-up, then cosine decay).")
    positivity_weight: float = Field(1.0, ge=0, description="Weight λ of the negative-density penalty.")
    laplacian_batch: int = Field(256, gt=0, description="Points per step on which ∇²Φ is penalised.")
    efficiency_weight: float = Field(
        0.01, ge=0, description="Weight λ_ε of ⟨(ln ε)²⟩ (`selection`): pulls ε to 1 where the CBE does not ask "
        "otherwise."
    )
    density_tie_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of the weak tie of n to the observed star counts (`conditional`; an unbinned likelihood "
        "of the star positions in the volume). It breaks the near-degeneracy between ∇Φ and ∇ln n at low speeds; "
        "keep it 0 where a selection function shapes the counts.",
    )
    potential_reference: Literal["none", "cored-log"] = Field(
        "cored-log", description="A reference potential trained under the Φ network, Φ = Φ_ref + network "
        "(dpotcube/fields/reference.py): `cored-log`, ½ v₀² ln(r² + r_c²) about the Galactic centre (the frame's "
        "origin) with v₀ and r_c trained; `none`: the network alone. The network then learns a small residual, "
        "whose ∇²Φ errors are small where ρ is: on exact gradients `conditional`'s outermost far side (10.3–11 kpc "
        "from the centre) went from 2% to 81% of points within 10% in ρ (benchmarks/solver.py)."
    )
    polish_steps: int = Field(
        3000, ge=0, description="L-BFGS iterations after Adam, full batch on a fixed set of collocation points (0: "
        "none). ρ = ∇²Φ/(4πG) needs the loss minimised beyond what minibatch Adam reaches: on exact gradients "
        "the polish (by position, volume-spread, held-out stop) takes `conditional`'s median |Δa|/|a| from 0.7% to "
        "0.06% and |Δρ|/ρ from 14% to 1.6%, 97% of points within 10% (benchmarks/solver.py). On noisy flow gradients the held-out check "
        "(`polish_validation_points`) stops it where it starts fitting the gradients' noise (without the check, "
        "on the quickstart's MAF gradients and before the reference, 3,000 iterations raised its |Δρ|/ρ from 0.46 "
        "to 0.54: docs/methods.md)."
    )
    polish_points: int = Field(
        4096, gt=0, description="Collocation points (positions with `polish_by_position`) in the polish's fixed set "
        "(all if fewer): the full-batch cost per iteration against over-fitting one set."
    )
    polish_by_position: bool = Field(
        True, description="The polish's sets hold whole collocation positions, each with all its velocities "
        "(`polish_points` and `polish_validation_points` then count positions): ∇Φ (and ∇ ln n) are evaluated once "
        "per position, so the set imposes `velocities_per_position` times the residuals at the same cost."
    )
    polish_laplacian_points: int = Field(
        512, gt=0, description="Points of the polish's fixed set on which the negative-density penalty is evaluated."
    )
    polish_sampling: Literal["stars", "volume"] = Field(
        "volume", description="How the polish's fixed set is drawn from the collocation points: `stars`, uniformly "
        "(as dense as the stars); `volume`, with probability ∝ 1/n̂(x) (n̂ from the 16th-nearest collocation "
        "position), spread evenly through the volume so that the sparse, low-density side weighs as much as the "
        "dense one."
    )
    polish_validation_points: int = Field(
        16384, ge=0, description="Collocation points (positions with `polish_by_position`) held out of the polish's "
        "set (at most a quarter of them; 0: "
        "none), drawn as the set is: every 25 iterations the loss on them is measured, and the polish stops after "
        "`polish_patience` checks without a new minimum, keeping the parameters at that minimum (the unpolished "
        "ones if the polish never lowered it): it stops where fitting the set starts fitting the gradients' noise."
    )
    polish_patience: int = Field(
        4, gt=0, description="Held-out checks (25 L-BFGS iterations each) without a new minimum before the polish "
        "stops (with `polish_validation_points` > 0)."
    )
    pattern_speed: bool = Field(
        False, description="Fit a pattern speed Ω_p: f stationary in a frame rotating about the z axis "
        "(SCIENCE.md); reported as cube attribute `pattern_speed_kms_per_kpc`, positive in the sense of Galactic "
        "rotation."
    )
    pattern_speed_init_kms_per_kpc: float = Field(
        0.0, description="Starting value of Ω_p (Galactic-rotation sense) when `pattern_speed: true`."
    )

    @model_validator(mode="after")
    def _tie_needs_star_distributed_polish(self) -> FieldsSpec:
        if self.density_tie_weight > 0 and self.polish_steps > 0 and self.polish_sampling == "volume":
            raise ValueError(
                "`density_tie_weight` > 0 ties n to the star counts of the polish's set, which "
                "`polish_sampling: volume` spreads evenly through the volume; set `polish_sampling: stars` or "
                "`density_tie_weight: 0`"
            )
        return self


class CubeSpec(_Section):
    """The evaluation grid, centred on the observer unless `centre_kpc` says otherwise."""

    centre_kpc: tuple[float, float, float] | None = Field(None, description="Grid centre; default: the observer.")
    half_width_kpc: float | None = Field(None, gt=0, description="Grid half-width; default: `data.volume_radius_kpc`.")
    spacing_kpc: float = Field(0.25, gt=0, description="Grid spacing along x, y and z.")
    chunk: int = Field(
        32,
        gt=0,
        description="Chunk edge length in grid points (Dask and Zarr). 32 keeps the per-chunk write cost to a few "
        "percent of the evaluation; a grid of few chunks runs on fewer cores (docs/cube-format.md).",
    )
    baryon_model: Literal["mwpotential2014", "none"] = Field(
        "mwpotential2014",
        description="Baryon model subtracted for `density_dm` (`density_baryon` is written too): `mwpotential2014` "
        "(bulge + disk of galpy's MWPotential2014, Bovy 2015), or `none` (neither variable is written).",
    )
    baryon_relative_error: float = Field(
        0.2, ge=0, description="Relative error on every baryon-model parameter; member m of `density_dm` subtracts "
        "parameter draw m (member 0: the nominal model)."
    )


class FrameErrorSpec(_Section):
    """1σ errors of the solar parameters that `frame` members resample (Gaussian, independent)."""

    galcen_distance_kpc: float = Field(0.031, ge=0, description="Error of the Sun–Galactic-centre distance "
                                       "(GRAVITY Collaboration 2018: 8.122 ± 0.031 kpc).")
    z_sun_kpc: float = Field(0.0003, ge=0, description="Error of the Sun's height (Bennett & Bovy 2019: 20.8 ± 0.3 pc).")
    galcen_v_sun_kms: tuple[float, float, float] = Field(
        (3.0, 1.4, 0.09), description="Errors of the solar velocity components (Drimmel & Poggio 2018)."
    )


class MembersSpec(_Section):
    """Uncertainty ensemble: how many cube members vary each thing (SCIENCE.md, "Uncertainty ensembles").

    Member 0 is the nominal build and counts as a `seed` member; the cube's `member` dimension holds
    `seed + bootstrap + noise + frame` members in that order, labelled by `member_kind`. For calibrated
    error bars use `bootstrap` members (docs/ensembles.md): seed members on shared flows miss the flows' error.
    """

    seed: int = Field(1, ge=1, le=256, description="Members that differ only in their random seeds (member 0 included).")
    bootstrap: int = Field(0, ge=0, le=256, description="Members fitted to the stars resampled with replacement.")
    noise: int = Field(
        0, ge=0, le=256, description="Members fitted to the stars redrawn within their measurement errors (needs a "
        "source with errors: Gaia astrometry, or a table with `_error` columns); stars that scatter out of the "
        "volume are dropped."
    )
    frame: int = Field(0, ge=0, le=256, description="Members with the solar position and velocity redrawn within "
                       "`frame_errors` (the stars are transformed through ICRS into each member's frame).")
    share_flows: bool = Field(
        True, description="`seed` members reuse the nominal build's flows and collocation points and vary only the "
        "field network's seed (one flow ensemble serves every field seed). `false`: each fits its own flows too. "
        "`bootstrap`, `noise` and `frame` members always fit their own flows (their stars differ)."
    )
    frame_errors: FrameErrorSpec = Field(FrameErrorSpec(), description="Errors that `frame` members resample.")

    @property
    def total(self) -> int:
        return self.seed + self.bootstrap + self.noise + self.frame


class DiagnosticsSpec(_Section):
    """The published diagnostics (`dpotcube diagnose`), run after the cube stage of every build."""

    enabled: bool = Field(
        True, description="Write them to `<build>/diagnostics/` and beside the published cube (`<entry>.diagnostics/`)."
    )
    velocities: int = Field(1_000_000, ge=1_000, description="Velocities drawn from p(v|x⊙) for the ∂ ln f/∂t residual.")
    mcmc_steps: int = Field(
        8_000, ge=400, description="Steps of each of the 32 walkers of the gNFW fit's sampler (the first quarter is burn-in)."
    )


class PublishSpec(_Section):
    """Where the cube is announced."""

    catalog: Path = Field(Path("catalog/catalog.yaml"), description="Intake catalog file to add the entry to.")
    store: str | None = Field(
        None, pattern=r"^[a-z][a-z0-9+.-]*://", description="fsspec folder URL for the published cube "
        "(`s3://bucket/cubes`, `memory://cubes`, `file:///data/cubes`); default: `cubes/` beside the catalog. "
        "Credentials come from fsspec's usual configuration."
    )
    entry: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Entry name; default: `name`.")


class MemorySpec(_Section):
    """How much of the star table a build holds at once."""

    chunk_stars: int = Field(
        10_000_000, gt=0, description="Stars the flow and collocation stages hold at once. A table with more stars "
        "is read from `stars.parquet` in chunks of this many: the flows train on the chunks in turn (a different "
        "order of batches, so other numbers than a table held whole) and the collocation stage draws the same "
        "positions chunk by chunk. Lower it on a machine with little memory (docs/benchmarks.md, cost at scale)."
    )


class Recipe(_Section):
    """A complete build: data → density → fields → cube → publish."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Identifier of the build and its catalog entry.")
    seed: int = Field(0, ge=0, le=SEED_MAX, description="Seed of every random draw; same recipe and seed → same cube.")
    data: DataSpec = Field(DataSpec(), description="Tracer stars.")
    density: DensitySpec = Field(DensitySpec(), description="Flows for p(v|x) and n(x), ensembles, collocation.")
    fields: FieldsSpec = Field(FieldsSpec(), description="CBE method and its networks.")
    cube: CubeSpec = Field(CubeSpec(), description="Evaluation grid.")
    publish: PublishSpec = Field(PublishSpec(), description="Catalog entry.")
    diagnostics: DiagnosticsSpec = Field(DiagnosticsSpec(), description="Published diagnostics after the cube stage.")
    ensemble: MembersSpec = Field(MembersSpec(), description="Uncertainty ensemble: the cube's members and what each "
                                  "varies.")
    memory: MemorySpec = Field(MemorySpec(), description="How much of the star table the stages hold at once.")

    @model_validator(mode="after")
    def _selection_known_for_weights(self) -> Recipe:
        position = self.density.position
        if position is not None and position.selection_weights:
            table = self.data.table if self.data.source == "table" else None
            from_table = table is not None and table.selection_column is not None
            if not from_table and self.data.observation is None:
                raise ValueError(
                    "`density.position.selection_weights: true` needs each star's S(x): use `data.source: table` "
                    "with `data.table.selection_column`, or the mock with `data.observation`, or set "
                    "`selection_weights: false`"
                )
        return self

    @model_validator(mode="after")
    def _edge_margin_inside_volume(self) -> Recipe:
        margin, position = self.density.collocation.edge_margin_kpc, self.density.position
        if position is not None and position.support == "ball" and margin >= self.data.volume_radius_kpc:
            raise ValueError(
                f"`density.collocation.edge_margin_kpc` (={margin}) leaves no volume inside "
                f"`data.volume_radius_kpc` (={self.data.volume_radius_kpc}): make it smaller"
            )
        return self

    @model_validator(mode="after")
    def _errors_for_noise_members(self) -> Recipe:
        if self.ensemble.noise > 0 and self.data.source == "plummer":  # tables are checked when read
            raise ValueError(
                f"`ensemble.noise: {self.ensemble.noise}` redraws each star within its measurement errors, but "
                "`data.source: plummer` carries none: use `data.source: gaia` or a table with `_error` columns, "
                "or set `ensemble.noise: 0` (`bootstrap` members cover the sampling noise)"
            )
        return self

    @property
    def entry_name(self) -> str:
        return self.publish.entry or self.name


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> tuple[Recipe, str]:
    """Load a recipe file and apply `key.path=value` overrides.

    Returns the validated recipe and the recipe text as used (with overrides folded in).
    Relative table paths are resolved against the recipe's folder.
    """
    path = Path(path)
    if path.is_dir():
        raise RecipeError(f"Recipe {path} is a folder, not a file. Give the path of the recipe's .yaml file.")
    try:
        text = path.read_text()
    except OSError as exc:
        raise RecipeError(f"Cannot read recipe {path}: {exc.strerror}. Check the path.") from None
    except UnicodeDecodeError:
        raise RecipeError(f"Recipe {path} is not a UTF-8 text file. Give the recipe's .yaml file.") from None
    raw = load_yaml(text, str(path))
    if raw is None:
        raise RecipeError(f"Recipe {path} is empty. A recipe needs at least `name:`; see recipes/tiny.yaml.")
    if not isinstance(raw, dict):
        raise RecipeError(f"Recipe {path} must be a YAML mapping with sections such as `name:` and `data:`.")
    for override in overrides:
        apply_override(raw, override)
    table = raw.get("data", {}).get("table") if isinstance(raw.get("data"), dict) else None
    if isinstance(table, dict) and isinstance(table.get("path"), str) and not Path(table["path"]).is_absolute():
        table["path"] = str((path.parent / table["path"]).resolve())
    recipe = recipe_from_dict(raw, origin=str(path))
    return recipe, yaml.safe_dump(raw, sort_keys=False) if overrides else text


def recipe_from_dict(raw: dict[str, Any], origin: str = "recipe") -> Recipe:
    """Validate a plain dict as a recipe, turning pydantic errors into one readable message."""
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        raise RecipeError(_format_errors(exc, origin)) from None


def recipe_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


_SHOW = reprlib.Repr()
_SHOW.maxstring, _SHOW.maxother, _SHOW.maxlist, _SHOW.maxtuple, _SHOW.maxlevel, _SHOW.maxlong = 60, 60, 4, 4, 1, 40
"""Bounded repr of a bad value in a message: never the whole of a huge or deeply nested input."""


def _format_errors(exc: ValidationError, origin: str) -> str:
    lines = [f"Recipe {origin} has {exc.error_count()} problem(s):"]
    for err in exc.errors():
        loc = _key_path(err["loc"])
        where = " -> ".join(["recipe", *loc])
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(err["loc"][:-1])
            hint = difflib.get_close_matches(loc[-1], allowed, n=1)
            fix = f"did you mean `{hint[0]}`?" if hint else f"allowed keys here: {', '.join(allowed)}"
            owners = _types_with_key(err["loc"][:-1], loc[-1])
            if owners:
                fix = f"`{loc[-1]}` is a key of `type: {' or '.join(owners)}` (set `type:` to use it); {fix}"
            lines.append(f"  [{where}] unknown key; {fix}")
        elif err["type"] == "missing":
            lines.append(f"  [{where}] is required but missing")
        elif err["type"] == "union_tag_invalid":
            tags = ", ".join(tag.strip("'") for tag in err["ctx"]["expected_tags"].split(", "))
            tag = err["ctx"]["tag"]
            only_n = f" (`{tag}` models n(x) only: use it under `density.position`)" if tag in N_OF_X_ONLY else ""
            lines.append(f"  [{where} -> type] unknown density model (got {_SHOW.repr(err['ctx']['tag'])}); "
                         f"allowed types: {tags}{only_n}")
        else:
            value = err.get("input")
            shown = _SHOW.repr(value) if not isinstance(value, dict) else "a mapping"
            lines.append(f"  [{where}] {_first_line(err['msg'].removeprefix('Value error, '))} (got {shown})")
        if len(lines) > 12:
            lines.append(f"  … and {exc.error_count() - 12} more")
            break
    return "\n".join(lines)


def _first_line(message: str) -> str:
    return " ".join(message.split())[:300]


def tagged_models(annotation: Any) -> dict[str, type[BaseModel]]:
    """The sections of a tagged union by tag (`{"maf": FlowSpec, "cfm": CFMSpec}`), through `| None` and
    `Annotated`; `{}` for any other annotation."""
    if get_origin(annotation) is Annotated:
        inner, *metadata = get_args(annotation)
        tag = next((m.tag for m in metadata if isinstance(m, Tag)), None)
        if tag is not None and isinstance(inner, type) and issubclass(inner, BaseModel):
            return {tag: inner}
        return tagged_models(inner)
    found: dict[str, type[BaseModel]] = {}
    for arg in get_args(annotation):
        found |= tagged_models(arg)
    return found


def _walk(loc: tuple[Any, ...]) -> tuple[list[str], type[BaseModel] | None]:
    """A pydantic error location as recipe keys (a tagged union's tag, which pydantic inserts after the key,
    left out) and the section it ends in (None past a value)."""
    model: type[BaseModel] | None = Recipe
    keys: list[str] = []
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        keys.append(str(part)[:60])
        field = model.model_fields.get(part) if model is not None and isinstance(part, str) else None
        if field is None:
            model = None
            continue
        tagged = tagged_models(field.annotation)
        if tagged and parts and parts[0] in tagged:
            model = tagged[parts.pop(0)]
        else:
            candidates = [field.annotation, *getattr(field.annotation, "__args__", ())]
            model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return keys, model


def _types_with_key(loc: tuple[Any, ...], key: str) -> list[str]:
    """The other `type`s whose section has `key`, when `loc` ends in a tagged union's tag."""
    if len(loc) < 2:
        return []
    parent = _walk(loc[:-2])[1]
    field = parent.model_fields.get(loc[-2]) if parent is not None and isinstance(loc[-2], str) else None
    tagged = tagged_models(field.annotation) if field is not None else {}
    if loc[-1] not in tagged:
        return []
    return [tag for tag, model in tagged.items() if tag != loc[-1] and key in model.model_fields]


def _key_path(loc: tuple[Any, ...]) -> list[str]:
    return _walk(loc)[0]


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys of the section at `loc` (the one of the `type` chosen there, for a tagged union)."""
    model = _walk(loc)[1]
    return [] if model is None else sorted(model.model_fields)
