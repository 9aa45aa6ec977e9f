"""Connected components of an edge list, vectorised: every node is labelled by the smallest
node of its component, so the labels are the same whatever the order of the edges."""

from __future__ import annotations

import numpy as np


def components(n: int, edges: np.ndarray) -> np.ndarray:
    """Label (n,) int64: the smallest node index in each node's component.

    Min-label propagation with pointer jumping: each round pulls the smaller label across
    every edge, then shortcuts labels to their labels' labels; it stops when nothing changes.
    """
    labels = np.arange(n, dtype=np.int64)
    if edges.size == 0:
        return labels
    u, v = edges[:, 0], edges[:, 1]
    while True:
        lu, lv = labels[u], labels[v]
        low = np.minimum(lu, lv)
        before = labels.copy()
        np.minimum.at(labels, u, low)
        np.minimum.at(labels, v, low)
        np.minimum.at(labels, lu, low)  # move the whole tree, not only the endpoints
        np.minimum.at(labels, lv, low)
        while True:  # pointer jumping until every label is a root
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(labels, before):
            return labels
