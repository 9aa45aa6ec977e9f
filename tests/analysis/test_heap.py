"""`analysis.heap.give_back`: the C heap's free pages go back to the system."""

from __future__ import annotations

import platform
import sys

import numpy as np
import psutil
import pytest

from sftgate.analysis.heap import give_back

MIB = 1 << 20


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="malloc_trim is glibc's")
def test_freed_temporaries_below_the_top_of_the_heap_go_back():
    # A freed 8 MiB mmapped block raises glibc's mmap threshold above it: 1 MiB arrays then come
    # from the heap, as the analyses' temporaries do. The last one stays, so the free space is
    # not at the top of the heap, which glibc gives back by itself.
    np.ones(8 * MIB // 8).sum()  # allocated and freed at once
    arrays = [np.ones(MIB // 8) for _ in range(300)]
    kept = arrays.pop()
    del arrays
    rss = psutil.Process().memory_info().rss
    assert give_back()
    freed = rss - psutil.Process().memory_info().rss
    assert freed > 200 * MIB, f"{freed / MIB:.0f} MiB given back"
    assert kept.sum() == MIB // 8

