"""The `pointwise` method (Buckley et al. 2023; Lim et al. 2025): a at each position by least squares over QMC
velocities from p(v|x), ρ from the kernel-smoothed divergence of a. See docs/pointwise.md."""

from .batch import accelerations, divergences, in_batches
from .density import smoothed_density
from .evaluate import (
    POINTWISE_FIELDS,
    PointwiseFiles,
    PointwiseMember,
    evaluate_block,
    member_setup,
    pointwise_blocks,
    pointwise_fields,
)
from .flows import flow_velocities, stack_flows
from .kernel import kernel_average, kernel_offsets
from .model import PointwiseFlows, pointwise_flows
from .plummer import PlummerMember, PlummerPointwise, plummer_pointwise
from .qmc import qmc_normals, qmc_uniform
from .solve import least_squares_acceleration

__all__ = [
    "POINTWISE_FIELDS",
    "PlummerPointwise",
    "PointwiseFiles",
    "PointwiseFlows",
    "PointwiseMember",
    "PlummerMember",
    "accelerations",
    "divergences",
    "evaluate_block",
    "flow_velocities",
    "in_batches",
    "kernel_average",
    "kernel_offsets",
    "least_squares_acceleration",
    "member_setup",
    "plummer_pointwise",
    "pointwise_blocks",
    "pointwise_fields",
    "pointwise_flows",
    "qmc_normals",
    "qmc_uniform",
    "smoothed_density",
    "stack_flows",
]
