"""Exceptions with messages meant for people: they name the file and the problem.

The CLI and the workbench catch :class:`TauformerError` and show its message instead of a
traceback; anything else is a bug.
"""


class TauformerError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(TauformerError, ValueError):
    """A configuration value is missing, unknown or out of range."""


class CheckpointError(TauformerError):
    """A checkpoint directory is missing, truncated, foreign or inconsistent."""


class DomainError(TauformerError):
    """A domain embedding or domain-memory file cannot be used."""


class ShapeError(TauformerError, ValueError):
    """Tensors whose shapes do not fit together (e.g. a Laplacian that is not head_dim x head_dim)."""
