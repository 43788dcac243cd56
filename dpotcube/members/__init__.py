"""Uncertainty-ensemble members: what each varies, the stars it sees, and fitting it in its own folder."""

from .plan import KINDS, Member, MemberKind, plan_members
from .resample import bootstrap_stars, noisy_stars, perturbed_frame, require_errors, stars_in_frame
from .train import member_files, member_stars, train_member

__all__ = [
    "KINDS", "Member", "MemberKind", "bootstrap_stars", "member_files", "member_stars",
    "noisy_stars", "perturbed_frame", "plan_members", "require_errors", "stars_in_frame", "train_member",
]
