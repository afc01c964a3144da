"""Compiling with numba, and the open-addressing hash the compiled tables share.

Compiled code is cached on disk (``cache=True``) in ``asr/beam/__pycache__``, or under
``NUMBA_CACHE_DIR``.
"""

from __future__ import annotations

import numba
import numpy as np


def _jit(fn):
    # Caching needs a writable folder (``__pycache__`` or NUMBA_CACHE_DIR); without one the
    # kernels are compiled on first use in every process instead.
    try:
        return numba.njit(cache=True)(fn)
    except RuntimeError:
        return numba.njit(fn)


@_jit
def _hash_slot(keys: np.ndarray, key: int) -> int:
    """Slot of ``key`` in the open-addressing table, or of the empty slot where it belongs."""
    mask = keys.shape[0] - 1
    i = ((key * -7046029254386353131) >> 20) & mask  # Fibonacci hashing
    while keys[i] != key and keys[i] != -1:
        i = (i + 1) & mask
    return i
