"""graph_structure: degrees, hubs, components and the hub-and-spoke test on synthetic graphs."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from tauformer.domain import DomainMemory, graph_structure
from tauformer.domain.graph import laplacian_from_adjacency
from tauformer.domain.structure import HUB_MIN_RATIO, find_hubs
from tauformer.errors import DomainError


def laplacian(n, edges, seed=0):
    """Unnormalised Laplacian of an undirected graph on n nodes with random weights in [0.2, 0.4]."""
    rng = np.random.default_rng(seed)
    W = sp.lil_matrix((n, n))
    for i, j in edges:
        W[i, j] = W[j, i] = rng.uniform(0.2, 0.4)
    return laplacian_from_adjacency(W.tocsr())


def hub_and_spoke(n=384, n_hubs=16, spoke_degree=8):
    """Like the CVE manifold: hubs at 0, n/n_hubs, ...; each other node joins spoke_degree hubs;
    the hubs form a ring among themselves."""
    hubs = list(range(0, n, n // n_hubs))
    spokes = [v for v in range(n) if v not in set(hubs)]
    edges = [(v, hubs[(r + 2 * t) % n_hubs]) for r, v in enumerate(spokes) for t in range(spoke_degree)]
    edges += [(hubs[a], hubs[(a + 1) % n_hubs]) for a in range(n_hubs)]
    return hubs, edges


def test_star():
    s = graph_structure(laplacian(7, [(3, v) for v in range(7) if v != 3]))
    assert s.hubs.tolist() == [3] and s.hub_ratio == 6.0
    assert s.degree.tolist() == [1, 1, 1, 6, 1, 1, 1] and s.degree_counts == {1: 6, 6: 1}
    assert s.hub_bipartite and s.hub_edge_fraction == 1.0 and s.spoke_degree == 1
    assert (s.hub_hub_edges, s.hub_spoke_edges, s.spoke_spoke_edges) == (0, 6, 0)
    assert s.components == 1 and s.isolated == 0


def test_hub_and_spoke_like_the_cve_manifold():
    hubs, edges = hub_and_spoke()
    s = graph_structure(laplacian(384, edges))
    assert s.hubs.tolist() == hubs == list(range(0, 384, 24))
    assert s.n_edges == 368 * 8 + 16
    assert s.hub_bipartite and s.hub_edge_fraction == 1.0 and s.spoke_spoke_edges == 0
    assert s.spoke_degree == 8 and s.degree_counts[8] == 368
    assert (s.hub_hub_edges, s.hub_spoke_edges) == (16, 368 * 8)
    assert s.components == 1 and s.component_sizes == [384]
    assert s.describe() == "16 hubs (degree 186..186, 23.2x the rest); every edge touches a hub; every other node has degree 8"


def test_one_edge_between_spokes_breaks_the_pattern():
    hubs, edges = hub_and_spoke()
    s = graph_structure(laplacian(384, edges + [(1, 2)]))
    assert s.hubs.tolist() == hubs  # still hubs, but not every edge touches one
    assert not s.hub_bipartite and s.spoke_spoke_edges == 1
    assert s.hub_edge_fraction == pytest.approx(1 - 1 / s.n_edges)
    assert s.spoke_degree is None  # nodes 1 and 2 now have degree 9


def test_chain_has_no_hubs():
    s = graph_structure(laplacian(10, [(v, v + 1) for v in range(9)]))
    assert len(s.hubs) == 0 and s.hub_ratio is None  # the degree-2 inside is the majority
    assert s.degree_counts == {1: 2, 2: 8} and s.spoke_degree is None
    assert not s.hub_bipartite and s.hub_edge_fraction == 0.0
    assert s.describe() == "no hubs (degree 1..2)"


def test_ring_shares_one_degree_and_has_no_hubs():
    s = graph_structure(laplacian(12, [(v, (v + 1) % 12) for v in range(12)]))
    assert len(s.hubs) == 0 and s.spoke_degree == 2 and s.describe() == "no hubs (degree 2..2); every node has degree 2"


def test_two_components_and_an_isolated_node():
    star = [(0, v) for v in range(1, 6)]
    triangle = [(6, 7), (7, 8), (6, 8)]
    s = graph_structure(laplacian(10, star + triangle))  # node 9 has no edge
    assert s.components == 3 and s.component_sizes == [6, 3, 1] and s.isolated == 1
    assert s.hubs.tolist() == [0] and s.hub_ratio == 2.5  # 5 over the triangle's 2
    assert not s.hub_bipartite and s.spoke_spoke_edges == 3 and s.hub_edge_fraction == 5 / 8
    assert s.spoke_degree is None and s.degree_counts == {0: 1, 1: 5, 2: 3, 5: 1}


def test_strength_is_the_laplacian_diagonal_and_input_kinds_agree():
    hubs, edges = hub_and_spoke(n=48, n_hubs=4, spoke_degree=2)
    L = laplacian(48, edges, seed=3)
    s = graph_structure(L)
    np.testing.assert_allclose(s.strength, L.diagonal(), rtol=1e-12)
    memory = DomainMemory(laplacian=L, params={})
    for other in (graph_structure(memory), graph_structure(L.toarray())):
        assert other.as_dict() == s.as_dict()
    d = json.loads(json.dumps(s.as_dict()))
    assert d["hubs"] == hubs and d["n_hubs"] == 4 and d["degree_counts"]["2"] == 44


def test_bad_input():
    with pytest.raises(DomainError, match="square"):
        graph_structure(np.zeros((3, 4)))
    L = laplacian(4, [(0, 1), (1, 2)]).toarray()
    L[2, 3] = -0.5  # an edge one way only
    with pytest.raises(DomainError, match="not symmetric"):
        graph_structure(L)


def test_find_hubs_ratio_threshold():
    assert find_hubs(np.array([4, 4, 4, 4, 7]))[0].tolist() == []  # 7 / 4 < 2
    assert find_hubs(np.array([4, 4, 4, 4, 8]))[0].tolist() == [4]  # exactly 2: a hub
    assert find_hubs(np.array([3, 3, 3, 9, 30]))[0].tolist() == [4]  # 30 / 9 beats 9 / 3
    assert find_hubs(np.array([0, 0, 5]))[0].tolist() == []  # isolated nodes are not "the rest"


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 25).flatmap(
    lambda n: st.tuples(st.just(n), st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=60))))
def test_invariants_on_random_graphs(case):
    n, pairs = case
    edges = {(min(i, j), max(i, j)) for i, j in pairs if i != j}
    s = graph_structure(laplacian(n, sorted(edges)))
    assert s.n_edges == len(edges) and int(s.degree.sum()) == 2 * len(edges)
    assert s.hub_hub_edges + s.hub_spoke_edges + s.spoke_spoke_edges == len(edges)
    assert sum(s.degree_counts.values()) == n and sum(s.component_sizes) == n
    if len(s.hubs):
        rest = np.delete(s.degree, s.hubs)
        assert len(s.hubs) < np.count_nonzero(s.degree) / 2
        assert s.degree[s.hubs].min() >= HUB_MIN_RATIO * rest.max()
        assert s.hub_bipartite == (s.spoke_spoke_edges == 0)
