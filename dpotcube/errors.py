"""Errors a user can act on. Each message names the problem and the fix."""


class DpotcubeError(Exception):
    """Base class: the CLI prints these as one paragraph and exits with code 2."""


class RecipeError(DpotcubeError):
    """The recipe is malformed or has a bad value."""


class DataError(DpotcubeError):
    """The input stars cannot be used as given (file, columns, units)."""


class BuildError(DpotcubeError):
    """A build stage cannot proceed (missing or corrupt artefacts, bad output path)."""


class CatalogError(DpotcubeError):
    """The Intake catalog cannot be read or updated."""


class TrainingError(BuildError):
    """A training stage diverged (a non-finite loss or metric); the message names the stage, the step and the key."""
