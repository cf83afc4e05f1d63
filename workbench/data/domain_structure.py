"""The shape of a domain memory's feature graph for the domain pages: degrees, hubs, components.

:func:`structure` wraps :func:`tauformer.domain.graph_structure` (cached by the memory's
fingerprint in the "domain-results" part of ``workspace.cache``); :func:`shell_layout` places
hub features on an outer ring and the other features inside, each at the weighted mean of its
neighbours, so a hub-and-spoke graph (the published CVE manifold: 16 hubs, every edge touching
one) reads as fans converging on the hubs rather than as a hairball.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .cache import content_key

SHELL_INNER_RADIUS = 0.6  # the non-hub features fill a disc of this radius; hubs sit on radius 1
SHELL_ITERATIONS = 60  # neighbour-averaging rounds for nodes not joined to a hub directly


def structure(workspace, name: str) -> dict:
    """Degrees, hubs and the hub-and-spoke test of domain ``name``'s feature graph.

    Returns the fields of :class:`tauformer.domain.GraphStructure` as plain values (``degree``
    [D] and ``hubs`` as int64 arrays), plus ``describe`` (its one-line summary) and
    ``hub_min_degree`` / ``other_max_degree`` (the two sides of the hub split, or None).
    """
    memory = workspace.domains.load(name)
    key = content_key("domain-structure", memory.fingerprint)

    def compute():
        from tauformer.domain import graph_structure

        found = graph_structure(memory.laplacian)
        out = found.as_dict()
        out["degree"] = np.asarray(found.degree, dtype=np.int64)
        out["hubs"] = np.asarray(found.hubs, dtype=np.int64)
        out["strength"] = np.asarray(found.strength, dtype=np.float64)
        out["describe"] = found.describe()
        is_hub = np.zeros(found.n_nodes, dtype=bool)
        is_hub[found.hubs] = True
        out["hub_min_degree"] = int(found.degree[is_hub].min()) if is_hub.any() else None
        others = found.degree[~is_hub]
        out["other_max_degree"] = int(others.max()) if is_hub.any() and others.size else None
        return out

    return workspace.cache.get_or_compute("domain-results", key, compute)


def edge_kinds(edges: np.ndarray, hubs: np.ndarray, n_nodes: int) -> np.ndarray:
    """[E] bool: which edges ([E, 2] index pairs) have at least one hub end."""
    is_hub = np.zeros(n_nodes, dtype=bool)
    is_hub[np.asarray(hubs, dtype=np.int64)] = True
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    return is_hub[edges[:, 0]] | is_hub[edges[:, 1]]


def shell_layout(n: int, edges: np.ndarray, weights: np.ndarray, hubs: np.ndarray) -> np.ndarray:
    """Positions [n, 2]: hubs evenly on the unit circle (ascending index, the first at the top),
    every other node at the weighted mean of its neighbours' positions with the hubs held fixed
    (a Tutte embedding), blended one fifth with an even spread of the disc (so nodes with the same
    neighbours stay apart) and scaled to a disc of radius :data:`SHELL_INNER_RADIUS`. Nodes that
    reach no hub start on a small circle by index; without hubs every node sits on the unit
    circle by index. Deterministic.
    """
    hubs = np.asarray(hubs, dtype=np.int64)
    start = 2 * np.pi * np.arange(n) / max(n, 1)
    pos = np.stack([np.sin(start), np.cos(start)], axis=1)  # [n, 2] clockwise from the top
    if n == 0 or hubs.size == 0:
        return pos
    angle = 2 * np.pi * np.arange(hubs.size) / hubs.size
    free = np.ones(n, dtype=bool)
    free[hubs] = False
    pos[free] *= 0.1  # nodes that never meet a hub stay near the centre
    pos[hubs] = np.stack([np.sin(angle), np.cos(angle)], axis=1)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    A = sp.csr_matrix((np.concatenate([w, w]), (np.concatenate([edges[:, 0], edges[:, 1]]),
                                                np.concatenate([edges[:, 1], edges[:, 0]]))), shape=(n, n))
    strength = np.asarray(A.sum(axis=1)).reshape(-1)
    moving = free & (strength > 0)
    for _ in range(SHELL_ITERATIONS):
        pos[moving] = (A @ pos)[moving] / strength[moving, None]
    if free.any():
        pos[free] = SHELL_INNER_RADIUS * _unit_disc(0.8 * _unit_disc(pos[free]) + 0.2 * _sunflower(int(free.sum())))
    return pos


def _unit_disc(xy: np.ndarray) -> np.ndarray:
    """``xy`` [m, 2] centred and scaled so its farthest point is at distance 1 (all zeros if it is one point)."""
    centred = xy - xy.mean(axis=0)
    radius = np.linalg.norm(centred, axis=1).max()
    return centred / radius if radius > 1e-12 else np.zeros_like(xy)


def _sunflower(m: int) -> np.ndarray:
    """[m, 2] points filling the unit disc evenly (Vogel's spiral), in order: blended into the
    neighbour means so that features with the same neighbours (every spoke of a star) do not
    coincide."""
    k = np.arange(m)
    r = np.sqrt((k + 0.5) / max(m, 1))
    theta = k * np.pi * (3 - np.sqrt(5))  # the golden angle
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
