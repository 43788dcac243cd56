"""Neural fields trained on the collisionless Boltzmann equation."""
