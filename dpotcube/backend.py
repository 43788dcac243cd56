"""Which kind of device JAX computes on by default."""

from __future__ import annotations

import jax


def default_platform() -> str:
    """`cpu`, `gpu`, `tpu`...: the platform of `jax_default_device` when one is set (the device check pins it),
    else JAX's default backend. Sizes of kernel calls are chosen by it."""
    device = jax.config.jax_default_device
    return getattr(device, "platform", None) or jax.default_backend()
