"""The model package's error types, for the parts of the workbench that only catch or raise them.

Only ``workbench.data`` imports ``tauformer``; views and entry points import these names from
here, so the dependency stays behind one door. They are the same classes, not copies: an error
raised deep in ``tauformer`` is caught as ``workbench.data.errors.TauformerError``.
"""

from tauformer.errors import CheckpointError, ConfigError, DomainError, ShapeError, TauformerError

__all__ = ["CheckpointError", "ConfigError", "DomainError", "ShapeError", "TauformerError"]
