"""Connected components of an edge list, vectorised: every node is labelled by the smallest
node of its component, so the labels are the same whatever the order of the edges."""

from __future__ import annotations

import numpy as np


def components(n: int, edges: np.ndarray) -> np.ndarray:
    """Label (n,) int64: the smallest node index in each node's component.

    Min-label propagation with pointer jumping: each round pulls the smaller label across
    every edge (`pull`), then shortcuts labels to their labels' labels (`shortcut`); it stops
    when nothing changes. The Ray executor runs the same rounds over a dataset of edges.
    """
    labels = np.arange(n, dtype=np.int64)
    if edges.size == 0:
        return labels
    while True:
        before = labels.copy()
        targets, low = pull(labels, edges[:, 0], edges[:, 1])
        for target in targets:
            np.minimum.at(labels, target, low)
        labels = shortcut(labels)
        if np.array_equal(labels, before):
            return labels


def pull(labels: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """One round's proposals over edges (u, v): four arrays of nodes, and the label each
    edge offers the four (the smaller of its ends'). An edge pulls it onto both ends and both
    ends' labels, which moves whole trees, not only the endpoints."""
    lu, lv = labels[u], labels[v]
    return (u, v, lu, lv), np.minimum(lu, lv)


def shortcut(labels: np.ndarray) -> np.ndarray:
    """Pointer jumping until every label is a root (its own label)."""
    while True:
        jumped = labels[labels]
        if np.array_equal(jumped, labels):
            return labels
        labels = jumped
