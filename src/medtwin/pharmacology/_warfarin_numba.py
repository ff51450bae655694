"""Compiled kernels of :mod:`medtwin.pharmacology.warfarin`, cached on disk by numba.

Imported only when a simulation runs (it imports numba); the equations live in
:func:`medtwin.pharmacology.warfarin._rhs_row`.
"""

from __future__ import annotations

import numba

from medtwin.model._rk4 import METHODS, bind
from medtwin.pharmacology.warfarin import _jump_row, _rhs_row

__all__ = ["drive", "jump_row", "rhs_row"]

# error_model="numpy": no division checks in the hot loop; no fastmath (reproducible results)
rhs_row = numba.njit(cache=True, nogil=True, error_model="numpy")(_rhs_row)
jump_row = numba.njit(cache=True, nogil=True, error_model="numpy")(_jump_row)

drive = {
    method: bind(rhs_row, jump_row, globals(), method=method, cache=True) for method in METHODS
}
"""The solver loops of :mod:`medtwin.model._rk4` with the warfarin kernels, by method."""
