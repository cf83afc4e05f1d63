"""What the domain pages show, computed from a domain memory and cached by content.

Every function takes the Workspace and a domain name and returns numpy arrays and plain
dicts. Results are cached in the "domain-results" part of ``workspace.cache`` under a key
made of the memory's fingerprint (Laplacian + builder parameters) or its items' hash and the
parameters of the view, so a second look, from any page, is instant. Item layouts (UMAP) are
slow the first time and live in :mod:`workbench.data.item_layout`, which also caches them on
disk.
"""

from __future__ import annotations

import numpy as np

from .cache import content_key
from .identity import items_key  # re-exported: views key item results by it

FEATURE_LAYOUTS = ("auto", "spring", "kamada-kawai", "spectral", "shell")  # auto: shell with hubs, else spring
CHAIN = "chain"
ITEM_KNN_K = 10
INPROCESS_KNN_MAX = 4096  # exact item kNN in the server up to this many items (fast, no numba)
MAX_NEIGHBOURS_SHOWN = 12


def load(workspace, name: str):
    """The DomainMemory called ``name`` (KeyError when unknown, DomainError when unreadable)."""
    return workspace.domains.load(name)


# ------------------------------------------------------------------ spectrum
def laplacian_facts(L) -> dict:
    """Eigenpairs (the one spectrum, oriented as everywhere else), spectral gap, components and
    degree statistics of one Laplacian."""
    import scipy.sparse as sp

    from tauformer.domain import connected_components, degree_stats, spectral_gap
    from tauformer.spectral import laplacian_spectrum, zero_tolerance

    L = sp.csr_matrix(L, dtype=np.float64)
    spec = laplacian_spectrum(L)
    values, vectors = spec.eigenvalues, spec.eigenvectors
    n_comp, labels = connected_components(L)
    off = L - sp.diags(L.diagonal())
    return {
        "dim": int(L.shape[0]),
        "nnz": int(L.nnz),
        "edges": int((off != 0).nnz // 2),
        "eigenvalues": values,  # [D] ascending (or the two ends when not complete)
        "eigenvectors": vectors,  # [D, D'] columns match eigenvalues
        "complete": bool(spec.complete),
        "gap": spectral_gap(values),
        "zero_eigenvalues": int((np.abs(values) <= zero_tolerance(values)).sum()),
        "components": n_comp,
        "component_of": labels,
        "degrees": degree_stats(L),
    }


def spectrum(workspace, name: str) -> dict:
    """:func:`laplacian_facts` of domain ``name``, cached by the memory's fingerprint."""
    memory = load(workspace, name)
    key = content_key("domain-spectrum", memory.fingerprint)
    return workspace.cache.get_or_compute("domain-results", key, lambda: laplacian_facts(memory.laplacian))


def chain_spectrum(workspace, dim: int) -> dict:
    """:func:`laplacian_facts` of the chain (path-graph) Laplacian with ``dim`` nodes."""
    from tauformer.domain.graph import chain_laplacian_csr

    def compute():
        return laplacian_facts(chain_laplacian_csr(int(dim)))

    return workspace.cache.get_or_compute("domain-results", content_key("chain-spectrum", int(dim)), compute)


def compared_spectrum(workspace, name: str, other: str | None) -> tuple[str, dict] | None:
    """(label, facts) of what domain ``name`` is compared with: the chain of its size, another
    domain memory, or None."""
    if not other or other == name:
        return None
    if other == CHAIN:
        dim = load(workspace, name).dim
        return f"chain (D={dim})", chain_spectrum(workspace, dim)
    if other in workspace.domains.names():
        return other, spectrum(workspace, other)
    return None


def eigenvector_options(facts: dict) -> list[dict]:
    """Dropdown options: one per eigenvector, labelled with its eigenvalue (1 = Fiedler)."""
    values = facts["eigenvalues"]
    tiny = 1e-10 * max(1.0, float(np.abs(values).max())) if len(values) else 0.0
    options = []
    for i, mu in enumerate(values):
        mu = 0.0 if abs(mu) <= tiny else mu  # numerically zero: say so, not -1.75e-15
        note = " (constant)" if i == 0 and facts["complete"] else \
            " (Fiedler)" if i == 1 and facts["complete"] else ""
        options.append({"label": f"{i}: \u03bc = {mu:.4g}{note}", "value": i})
    return options


def default_eigenvector(facts: dict, wanted=None) -> int:
    """``wanted`` when it is a valid index, else the Fiedler vector (1), else 0."""
    n = len(facts["eigenvalues"])
    try:
        index = int(wanted)
    except (TypeError, ValueError):
        index = 1
    return index if 0 <= index < n else min(1, n - 1)


def sparsity(workspace, name: str) -> dict:
    """The Laplacian's non-zeros as COO parts: rows, cols, values, shape."""
    L = load(workspace, name).laplacian.tocoo()
    return {"rows": L.row.astype(np.int64), "cols": L.col.astype(np.int64), "values": L.data,
            "shape": tuple(int(s) for s in L.shape)}


# --------------------------------------------------------------- feature graph
def feature_edges(L) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges (i < j) [E, 2] and weights [E] = -L_ij of a Laplacian's graph."""
    from tauformer.domain.items import laplacian_edges

    rows, cols, weights = laplacian_edges(L)
    return np.stack([rows, cols], axis=1).astype(np.int64), weights


def _layout_positions(n: int, edges: np.ndarray, weights: np.ndarray, method: str, seed: int,
                      vectors: np.ndarray | None) -> np.ndarray:
    import networkx as nx

    if method == "spectral" and vectors is not None and vectors.shape[1] >= 3:
        return np.asarray(vectors[:, 1:3], dtype=np.float64)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    for (i, j), w in zip(edges.tolist(), weights.tolist()):
        graph.add_edge(i, j, weight=w, distance=1.0 / max(w, 1e-12))
    if method == "kamada-kawai" and n > 1:
        pos = nx.kamada_kawai_layout(graph, weight="distance")
    else:
        pos = nx.spring_layout(graph, weight="weight", seed=seed)
    return np.array([pos[i] for i in range(n)], dtype=np.float64)


def feature_graph(workspace, name: str, method: str = "auto", seed: int = 0) -> dict:
    """Node positions [D, 2] (seeded), edges [E, 2] and weights [E] of the feature graph.

    ``method`` is "spring" (Fruchterman-Reingold, weight pulls), "kamada-kawai" (distance
    1 / weight), "spectral" (eigenvectors 1 and 2), "shell" (hubs on a ring, the rest inside:
    :func:`workbench.data.domain_structure.shell_layout`) or "auto" (shell when the graph has
    hubs, else spring); the returned ``method`` is the one used.
    """
    from . import domain_structure

    if method not in FEATURE_LAYOUTS:
        method = "auto"
    hubs = domain_structure.structure(workspace, name)["hubs"]
    if method == "auto":
        method = "shell" if len(hubs) else "spring"
    memory = load(workspace, name)
    key = content_key("feature-graph", memory.fingerprint, method, int(seed))

    def compute():
        edges, weights = feature_edges(memory.laplacian)
        if method == "shell":
            pos = domain_structure.shell_layout(memory.dim, edges, weights, hubs)
            return {"pos": pos, "edges": edges, "weights": weights, "method": method}
        vectors = spectrum(workspace, name)["eigenvectors"] if method == "spectral" else None
        pos = _layout_positions(memory.dim, edges, weights, method, seed, vectors)
        return {"pos": pos, "edges": edges, "weights": weights, "method": method}

    return workspace.cache.get_or_compute("domain-results", key, compute)


# --------------------------------------------------------------------- items
def item_data(workspace, name: str, tau_mode: str = "median") -> dict | None:
    """Per-item values for the item map, or None when the memory keeps no items.

    Returns n, lambdas / energy (item_lambdas against L), clusters and labels (or None),
    texts (or None) and the item matrix X [N, D].
    """
    memory = load(workspace, name)
    if not memory.has_items or len(memory.items) == 0:
        return None
    key = content_key("item-data", memory.fingerprint, items_key(memory), tau_mode)

    def compute():
        from tauformer.domain import item_lambdas

        X = np.asarray(memory.items, dtype=np.float32)
        result = item_lambdas(X, memory.laplacian, tau_mode=tau_mode)
        return {
            "n": int(X.shape[0]),
            "X": X,
            "lambdas": result.lambdas,
            "energy": result.energy,
            "clusters": None if memory.clusters is None else np.asarray(memory.clusters),
            "labels": None if memory.labels is None else list(memory.labels),
            "texts": None if memory.texts is None else list(memory.texts),
        }

    return workspace.cache.get_or_compute("domain-results", key, compute)


ITEM_LAMBDA = "item lambda (reference index)"
ITEM_LAMBDA_NOTE = ("Item lambda (reference index): the reference implementation's per-item search score "
                    "(SPEC section 7), lambda = tau E / (E + tau) + (1 - tau) G from the item's own embedding "
                    "against L -- E its Rayleigh energy, G how unevenly that energy spreads over the edges. "
                    "It is not the lambda a model head computes for a query or key.")


def color_options(data: dict | None) -> list[dict]:
    """What the item map can be coloured by, given the item data available."""
    options = [{"label": ITEM_LAMBDA, "value": "lambda", "title": ITEM_LAMBDA_NOTE},
               {"label": "Rayleigh energy", "value": "energy"}]
    if data is not None and data["clusters"] is not None:
        options.append({"label": "cluster (k-means)", "value": "cluster"})
    if data is not None and data["labels"] is not None:
        options.append({"label": "label", "value": "label"})
    return options


def item_colors(data: dict, by: str) -> tuple[np.ndarray, str, bool]:
    """(values [N], colour label, categorical?) for colouring the item map ``by`` something."""
    if by == "cluster" and data["clusters"] is not None:
        return np.asarray(data["clusters"]), "cluster", True
    if by == "label" and data["labels"] is not None:
        return np.asarray(data["labels"], dtype=object), "label", True
    if by == "energy":
        return data["energy"], "Rayleigh energy", False
    return data["lambdas"], ITEM_LAMBDA, False


def item_edges(workspace, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Item kNN edges [M, 2] and cosine distances [M], or None while they are being computed.

    Up to :data:`INPROCESS_KNN_MAX` items they are exact and computed here (milliseconds);
    above, they come with the item layout from the background worker (pynndescent).
    """
    from . import item_layout

    data = item_data(workspace, name)
    if data is None:
        return None
    memory = load(workspace, name)
    if data["n"] <= INPROCESS_KNN_MAX:
        key = content_key("item-edges", items_key(memory), ITEM_KNN_K)

        def compute():
            from tauformer.domain import item_knn_graph

            return item_knn_graph(data["X"], ITEM_KNN_K)

        return workspace.cache.get_or_compute("domain-results", key, compute)
    layout = item_layout.request(workspace, memory)
    if layout.status != "ready":
        return None
    return layout.edges, layout.distances


def item_neighbours(workspace, name: str, item: int, limit: int = MAX_NEIGHBOURS_SHOWN) -> list[tuple[int, float]]:
    """(neighbour index, cosine distance) of ``item`` in the kNN graph, nearest first."""
    found = item_edges(workspace, name)
    if found is None:
        return []
    edges, dists = found
    memory = load(workspace, name)
    key = content_key("item-adjacency", items_key(memory), len(edges))

    def compute():
        import scipy.sparse as sp

        n = len(memory.items)
        rows = np.concatenate([edges[:, 0], edges[:, 1]])
        cols = np.concatenate([edges[:, 1], edges[:, 0]])
        values = np.concatenate([dists, dists]).astype(np.float64) + 1e-12  # keep zero distances
        return sp.csr_matrix((values, (rows, cols)), shape=(n, n))

    adjacency = workspace.cache.get_or_compute("domain-results", key, compute)
    if not 0 <= int(item) < adjacency.shape[0]:
        return []
    start, end = adjacency.indptr[int(item)], adjacency.indptr[int(item) + 1]
    idx, d = adjacency.indices[start:end], adjacency.data[start:end] - 1e-12
    order = np.lexsort((idx, d))[:limit]
    return [(int(idx[o]), float(max(d[o], 0.0))) for o in order]


def domain_summary(workspace, name: str) -> dict:
    """Sizes and provenance of a domain memory for a page header."""
    memory = load(workspace, name)
    facts = spectrum(workspace, name)
    return {
        "name": name,
        "dim": memory.dim,
        "edges": facts["edges"],
        "components": facts["components"],
        "gap": facts["gap"],
        "n_items": None if not memory.has_items else len(memory.items),
        "embedder": memory.source.get("embedder"),
        "fingerprint": memory.fingerprint,
        "params": dict(memory.params),
    }


def warm_up(workspace) -> None:
    """Compute what the domain pages ask for first (spectra, feature graphs, item values) and
    start the item-layout workers, so the first visit finds them ready."""
    from . import item_layout

    for name in workspace.domains.names():
        memory, _ = workspace.domains.try_load(name)
        if memory is None:
            continue
        spectrum(workspace, name)
        feature_graph(workspace, name)  # computes the graph structure too
        if item_data(workspace, name) is not None:
            item_edges(workspace, name)
            item_layout.request(workspace, memory)
