"""Normalizing flows for the velocity distribution p(v|x), and collocation points."""
