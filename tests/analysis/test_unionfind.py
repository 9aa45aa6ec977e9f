"""Connected components by label propagation (`sftgate.analysis.unionfind`)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.analysis.unionfind import components


def reference(n: int, edges: list[tuple[int, int]]) -> list[int]:
    """A textbook union-find; each node labelled by the smallest node of its component."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in edges:
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[max(ru, rv)] = min(ru, rv)
    return [find(x) for x in range(n)]


def as_array(edges: list[tuple[int, int]]) -> np.ndarray:
    return np.array(edges, dtype=np.int64).reshape(-1, 2)


@st.composite
def graphs(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    n = draw(st.integers(1, 60))
    node = st.integers(0, n - 1)
    return n, draw(st.lists(st.tuples(node, node), max_size=3 * n))


@settings(max_examples=300, deadline=None)
@given(graph=graphs(), data=st.data())
def test_components_match_a_reference_union_find(graph, data):
    n, edges = graph
    labels = components(n, as_array(edges))
    assert labels.dtype == np.int64
    assert labels.tolist() == reference(n, edges)
    shuffled = data.draw(st.permutations(edges))
    flipped = [(v, u) for u, v in shuffled]
    assert components(n, as_array(flipped)).tolist() == labels.tolist()


def test_no_edges_every_node_alone():
    assert components(4, np.zeros((0, 2), dtype=np.int64)).tolist() == [0, 1, 2, 3]
    assert components(0, np.zeros((0, 2), dtype=np.int64)).tolist() == []


def test_long_chain_given_backwards():
    n = 5000
    edges = np.array([(i, i - 1) for i in range(n - 1, 0, -1)], dtype=np.int64)
    assert (components(n, edges) == 0).all()


def test_star_edges_as_the_dedup_analysis_builds_them():
    # Exact copies point at their group's first record; near-duplicate edges join groups.
    exact = [(0, 3), (0, 7), (2, 5)]
    near = [(3, 5), (8, 9)]
    labels = components(10, as_array(exact + near))
    assert labels.tolist() == [0, 1, 0, 0, 4, 0, 6, 0, 8, 8]
