"""Compiled kernels of the 2-compartment IV models of :mod:`medtwin.pharmacology.antibiotics`,
cached on disk by numba (imported only when a simulation runs)."""

from __future__ import annotations

import numba

from medtwin.model._rk4 import METHODS, bind
from medtwin.pharmacology.antibiotics import _jump_row, _rhs_2c

__all__ = ["drive", "jump_row", "rhs_row"]

rhs_row = numba.njit(cache=True, nogil=True, error_model="numpy")(_rhs_2c)
jump_row = numba.njit(cache=True, nogil=True, error_model="numpy")(_jump_row)

drive = {
    method: bind(rhs_row, jump_row, globals(), method=method, cache=True) for method in METHODS
}
"""The solver loops of :mod:`medtwin.model._rk4` with the 2-compartment kernels."""
