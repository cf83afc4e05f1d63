"""The model package's version, for manifests and provenance records outside ``workbench.data``."""

from tauformer import __version__ as TAUFORMER_VERSION

__all__ = ["TAUFORMER_VERSION"]
