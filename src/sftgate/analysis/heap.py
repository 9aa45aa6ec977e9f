"""Giving the C heap's free memory back to the system between the steps of a dataset analysis.

numpy takes an array of a few MB from the C allocator's heap once glibc has raised its mmap
threshold (it does so on the first free of a large mmapped block, up to 32 MB), and glibc keeps
what is freed there for later use; only the top of the heap goes back by itself. The steps of
the duplicate analysis each make and drop hundreds of MB of such temporaries (band-key sorts,
edge lists, the clusters' walk), in sizes the next step does not reuse, so without help the
driver's resident memory climbs step after step: `sftgate check` of the 1 GiB benchmark file
peaked at 1,184 MB, and at 981 MB with `give_back` between the steps.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; other C libraries have no such call
    except (OSError, AttributeError):
        return None


def give_back() -> bool:
    """Return the free pages of the C heap to the system (glibc's `malloc_trim`); whether this
    C library can (elsewhere: nothing is done)."""
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True
