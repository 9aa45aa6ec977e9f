"""`analysis.arrays` gives numpy's answers (by sorting, not numpy's hash tables)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sftgate.analysis.arrays import isin, merge_unique, unique

ints = hnp.arrays(np.int64, st.integers(0, 60), elements=st.integers(-5, 40))
wide = hnp.arrays(np.uint64, st.integers(0, 60), elements=st.integers(0, 2**64 - 1))


@given(ints)
def test_unique_is_numpys(values):
    assert np.array_equal(unique(values), np.unique(values))


@given(wide)
def test_unique_of_64_bit_keys(values):
    got = unique(values)
    assert got.dtype == np.uint64 and np.array_equal(got, np.unique(values))


@given(ints, ints)
def test_merge_unique_is_union1d(a, b):
    a, b = np.unique(a), np.unique(b)
    assert np.array_equal(merge_unique(a, b), np.union1d(a, b))


@given(ints, ints)
def test_isin_is_numpys(values, test):
    assert np.array_equal(isin(values, test), np.isin(values, test))


def test_isin_keeps_the_shape_and_takes_empty_sides():
    values = np.arange(6).reshape(2, 3)
    assert np.array_equal(isin(values, np.array([1, 5])), np.isin(values, [1, 5]))
    assert isin(np.zeros(0, dtype=np.int64), np.arange(3)).shape == (0,)
    assert not isin(np.arange(3), np.zeros(0, dtype=np.int64)).any()
