"""Structure of a domain memory's feature graph: degrees, hubs, components, hub-and-spoke test.

The spectrum of a Laplacian says how smooth head vectors can be on it; this module says what the
graph itself looks like, read off the Laplacian's off-diagonal pattern (an edge i -- j wherever
L_ij != 0, i != j; its weight is -L_ij). The question it answers first is whether the graph is
hub-and-spoke, like the published CVE manifold: a few hub features carry every edge and every
other feature has the same degree.

Hub rule
--------
Degrees (neighbours per node, isolated nodes left out) are sorted and split at the largest
*ratio* between two consecutive distinct values, among the splits that leave the upper side a
minority (fewer than half of the nodes that have an edge; on equal ratios the lower split wins).
The nodes above that split are hubs when the ratio is at least :data:`HUB_MIN_RATIO`: the least
connected hub has at least twice the degree of the best connected other node. A ratio, not a difference, so that the rule does not
depend on the graph's size; the minority condition keeps the degree-2 inside of a chain from
being called hubs over its two degree-1 ends. A graph with one degree value has no hubs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..errors import DomainError

HUB_MIN_RATIO = 2.0


@dataclass(frozen=True, eq=False)  # holds arrays: compare as_dict() instead
class GraphStructure:
    """What :func:`graph_structure` found. Arrays are numpy; :meth:`as_dict` gives plain values.

    Attributes
    ----------
    n_nodes, n_edges : nodes (features) and undirected edges
    degree : [D] int64, neighbours of each node
    strength : [D] float64, sum of each node's edge weights
    degree_counts : {degree: number of nodes with it}, ascending degree
    hubs : indices of the hub nodes, ascending (see the module's hub rule)
    hub_ratio : least hub degree / greatest other degree, or None without hubs
    components : number of connected components (an isolated node is one)
    component_sizes : nodes per component, largest first
    isolated : nodes without an edge
    hub_hub_edges, hub_spoke_edges, spoke_spoke_edges : edges by the kind of their ends
    hub_edge_fraction : fraction of edges with at least one hub end (0.0 for no edges)
    hub_bipartite : there are hubs and every edge touches one (no non-hub -- non-hub edge)
    spoke_degree : the degree every non-hub node shares, or None when they differ (or none exist)
    """

    n_nodes: int
    n_edges: int
    degree: np.ndarray
    strength: np.ndarray
    degree_counts: dict
    hubs: np.ndarray
    hub_ratio: float | None
    components: int
    component_sizes: list
    isolated: int
    hub_hub_edges: int
    hub_spoke_edges: int
    spoke_spoke_edges: int
    hub_edge_fraction: float
    hub_bipartite: bool
    spoke_degree: int | None

    @property
    def n_hubs(self) -> int:
        return int(len(self.hubs))

    def as_dict(self) -> dict:
        """Plain (JSON-serialisable) dict of every field, plus ``n_hubs``."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["degree"] = self.degree.tolist()
        out["strength"] = self.strength.tolist()
        out["hubs"] = self.hubs.tolist()
        out["n_hubs"] = self.n_hubs
        return out

    def describe(self) -> str:
        """One line for people, e.g. '16 hubs (degree 167..217); every edge touches a hub; ...'."""
        if not self.n_hubs:
            parts = [f"no hubs (degree {int(self.degree.min())}..{int(self.degree.max())})"]
        else:
            hub_deg = self.degree[self.hubs]
            parts = [f"{self.n_hubs} hub{'s' if self.n_hubs > 1 else ''} "
                     f"(degree {int(hub_deg.min())}..{int(hub_deg.max())}, {self.hub_ratio:.3g}x the rest)"]
            if self.hub_bipartite:
                parts.append("every edge touches a hub")
            else:
                parts.append(f"{self.hub_edge_fraction:.1%} of edges touch a hub")
        if self.spoke_degree is not None:
            parts.append(f"every {'other ' if self.n_hubs else ''}node has degree {self.spoke_degree}")
        return "; ".join(parts)


def _as_csr(laplacian) -> sp.csr_matrix:
    """A DomainMemory, scipy sparse matrix or 2-D array as a square CSR matrix."""
    L = getattr(laplacian, "laplacian", laplacian)
    L = sp.csr_matrix(L, dtype=np.float64)
    if L.shape[0] != L.shape[1]:
        raise DomainError(f"Laplacian must be square [D, D], got shape {L.shape}")
    return L


def edge_list(laplacian) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected edges (i < j) of a Laplacian's off-diagonal pattern and their weights -L_ij.

    Raises DomainError when the pattern is not symmetric (an edge present one way only).
    """
    L = _as_csr(laplacian).tocoo()
    off = (L.row != L.col) & (L.data != 0)
    rows, cols, vals = L.row[off].astype(np.int64), L.col[off].astype(np.int64), L.data[off]
    upper, lower = rows < cols, rows > cols
    D = L.shape[0]
    up_keys = np.sort(rows[upper] * D + cols[upper])
    low_keys = np.sort(cols[lower] * D + rows[lower])
    if not np.array_equal(up_keys, low_keys):
        raise DomainError("Laplacian is not symmetric: some edge is present in one direction only")
    return rows[upper], cols[upper], -vals[upper]


def find_hubs(degree: np.ndarray, min_ratio: float = HUB_MIN_RATIO) -> tuple[np.ndarray, float | None]:
    """Hub nodes of a degree sequence by the module's rule; returns (indices ascending, ratio or None)."""
    degree = np.asarray(degree, dtype=np.int64)
    connected = degree[degree > 0]
    values = np.unique(connected)  # ascending distinct degrees
    if len(values) < 2:
        return np.zeros(0, dtype=np.int64), None
    n_above = len(connected) - np.searchsorted(np.sort(connected), values[1:], side="left")
    ratios = values[1:] / values[:-1]  # [n_values - 1]: split between values[s] and values[s + 1]
    allowed = n_above < len(connected) / 2
    if not allowed.any():
        return np.zeros(0, dtype=np.int64), None
    best = int(np.argmax(np.where(allowed, ratios, -np.inf)))
    if ratios[best] < min_ratio:
        return np.zeros(0, dtype=np.int64), None
    return np.flatnonzero(degree >= values[best + 1]).astype(np.int64), float(ratios[best])


def graph_structure(laplacian, *, min_ratio: float = HUB_MIN_RATIO) -> GraphStructure:
    """Summarise the feature graph of ``laplacian`` (a DomainMemory, scipy sparse or 2-D array).

    Counts each node's neighbours, finds hubs (module docstring), components, and how the edges
    split between hubs and the other nodes ("spokes"). Costs O(D + nnz).
    """
    L = _as_csr(laplacian)
    D = L.shape[0]
    i, j, w = edge_list(L)
    degree = np.bincount(i, minlength=D) + np.bincount(j, minlength=D)
    strength = np.bincount(i, weights=w, minlength=D) + np.bincount(j, weights=w, minlength=D)
    hubs, ratio = find_hubs(degree, min_ratio)
    is_hub = np.zeros(D, dtype=bool)
    is_hub[hubs] = True
    hub_ends = is_hub[i].astype(np.int64) + is_hub[j]  # [E]: 0, 1 or 2 hub ends per edge
    n_edges = len(i)
    adjacency = sp.csr_matrix((np.ones(n_edges), (i, j)), shape=(D, D))
    n_parts, labels = connected_components(adjacency, directed=False)
    spoke_degrees = np.unique(degree[~is_hub])
    touching = int(np.count_nonzero(hub_ends))
    values, counts = np.unique(degree, return_counts=True)
    return GraphStructure(
        n_nodes=D,
        n_edges=n_edges,
        degree=degree.astype(np.int64),
        strength=strength.astype(np.float64),
        degree_counts={int(v): int(c) for v, c in zip(values, counts)},
        hubs=hubs,
        hub_ratio=ratio,
        components=int(n_parts),
        component_sizes=sorted(np.bincount(labels).tolist(), reverse=True),
        isolated=int(np.count_nonzero(degree == 0)),
        hub_hub_edges=int(np.count_nonzero(hub_ends == 2)),
        hub_spoke_edges=int(np.count_nonzero(hub_ends == 1)),
        spoke_spoke_edges=int(np.count_nonzero(hub_ends == 0)),
        hub_edge_fraction=touching / n_edges if n_edges else 0.0,
        hub_bipartite=bool(len(hubs) and n_edges and touching == n_edges),
        spoke_degree=int(spoke_degrees[0]) if len(spoke_degrees) == 1 else None,
    )
