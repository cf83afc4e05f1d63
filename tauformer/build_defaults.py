"""The one set of domain-memory builder defaults: the Python API, ``domain build`` and uploads in
the app all use these. A module of its own so that the app can read them without importing the
builder's scientific stack (``tauformer.domain`` pulls in scipy and scikit-learn).
"""

from types import MappingProxyType

BUILD_DEFAULTS = MappingProxyType(dict(reduction="pca", eps=1.0, k=6, topk=6, p=2.0, sigma=0.5, seed=0))
"""Each feature joins its 6 nearest features within cosine distance 1. The reference's eps 1e-3
with topk 3 leaves the graph of an ordinary clustered embedding without a single edge."""
