"""Step 1 of the pipeline: reduce items from F features to D (the model's head dim).

The Laplacian is over features, so it must be D x D to act on head vectors. Two seeded,
chunked reductions: a Gaussian random projection scaled 1/sqrt(D) (Johnson-Lindenstrauss:
keeps angles, cheap) and PCA (keeps the D directions of largest variance).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

CHUNK = 32768


def random_projection_matrix(n_features: int, dim: int, seed: int) -> np.ndarray:
    """Seeded Gaussian matrix [F, D] with entries N(0, 1) / sqrt(D), float32."""
    rng = np.random.default_rng([seed, 0x5EED])
    R = rng.standard_normal((n_features, dim), dtype=np.float32)
    R *= np.float32(1.0 / np.sqrt(dim))
    return R


PCA_SAMPLE = 65536


PCA_OVERSAMPLE = 10
PCA_POWER_ITERATIONS = 7


def top_right_singular_vectors(S: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
    """The top-``dim`` right singular vectors [F, dim] of S [N, F] by seeded randomized SVD.

    Halko, Martinsson & Tropp (2011), as scikit-learn's ``randomized_svd``: a Gaussian
    sketch of ``dim + 10`` columns refined by 7 power iterations (LU-normalised between
    products: a QR of the tall [N, k] block each time cost seconds here), one QR, then an
    exact SVD of the small [k, F] projection. Memory is O((N + F) k): no F x F covariance is
    ever formed. Exact (up to rounding) when k reaches min(N, F).
    """
    from scipy import linalg

    N, F = S.shape
    k = min(dim + PCA_OVERSAMPLE, N, F)
    rng = np.random.default_rng([seed, 0x9CA, 1])
    Q = rng.standard_normal((F, k))  # [F, k]
    for _ in range(PCA_POWER_ITERATIONS):
        Q, _ = linalg.lu(S @ Q, permute_l=True)  # [N, k]
        Q, _ = linalg.lu(S.T @ Q, permute_l=True)  # [F, k]
    Q, _ = linalg.qr(S @ Q, mode="economic")  # [N, k] orthonormal
    _, _, Vt = np.linalg.svd(Q.T @ S, full_matrices=False)  # [k, F] -> Vt [k, F]
    return Vt[:dim].T  # [F, dim], largest singular value first


def pca_basis(X: np.ndarray, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean [F] and top-``dim`` principal directions [F, D] (float64).

    Fitted on a seeded sample of at most 65,536 rows (the covariance of F <= a few thousand
    features is well estimated by that many) with :func:`top_right_singular_vectors` of the
    centred sample -- never a features x features matrix; signs are fixed (largest-magnitude
    loading positive) so the basis is reproducible.
    """
    N, F = X.shape
    rng = np.random.default_rng([seed, 0x9CA])
    rows = np.sort(rng.choice(N, size=PCA_SAMPLE, replace=False)) if N > PCA_SAMPLE else slice(None)
    S = np.asarray(X[rows], dtype=np.float64)
    mean = S.mean(axis=0)
    S -= mean
    V = top_right_singular_vectors(S, dim, seed)  # [F, D]
    if V.shape[1] < dim:  # fewer rows than dim: pad with directions orthogonal to those found
        extra = np.linalg.qr(np.hstack([V, np.eye(F)[:, : dim]]))[0][:, V.shape[1] : dim]
        V = np.hstack([V, extra])
    flip = np.sign(V[np.abs(V).argmax(axis=0), np.arange(dim)])
    V *= np.where(flip == 0, 1.0, flip)
    return mean, V


def reduce_items(X: np.ndarray, dim: int, method: str, seed: int = 0, tick=None) -> np.ndarray:
    """Reduce X [N, F] to [N, dim] float32 with ``method`` "random" or "pca".

    ``tick(done, total)`` is called after each chunk.
    """
    N, F = X.shape
    if not 2 <= dim <= F:
        raise ConfigError(f"dim must be between 2 and the number of features ({F}), got {dim}")
    if method == "random":
        W = random_projection_matrix(F, dim, seed)
        shift = None
    elif method == "pca":
        mean, V = pca_basis(X, dim, seed)
        W, shift = V.astype(np.float32), (mean @ V).astype(np.float32)
    else:
        raise ConfigError(f"reduction must be 'random', 'pca' or None, got {method!r}")
    out = np.empty((N, dim), dtype=np.float32)
    n_chunks = max(1, -(-N // CHUNK))
    for i, start in enumerate(range(0, N, CHUNK)):
        block = np.asarray(X[start : start + CHUNK], dtype=np.float32)
        np.matmul(block, W, out=out[start : start + CHUNK])
        if shift is not None:
            out[start : start + CHUNK] -= shift
        if tick:
            tick(i + 1, n_chunks)
    return out
