"""Compiled kernels of :mod:`medtwin.pharmacology.propofol`, cached on disk by numba.

Imported only when a simulation runs (it imports numba); the equations live in
:func:`medtwin.pharmacology.propofol._rhs_row` and ``_jump_row`` (the three propofol models
share them).
"""

from __future__ import annotations

import numba

from medtwin.model._rk4 import METHODS, bind
from medtwin.pharmacology.propofol import _jump_row, _rhs_row

__all__ = ["drive", "jump_row", "rhs_row"]

# error_model="numpy" and no fastmath, as in medtwin.physiology._uva_padova_numba
rhs_row = numba.njit(cache=True, nogil=True, error_model="numpy")(_rhs_row)
jump_row = numba.njit(cache=True, nogil=True, error_model="numpy")(_jump_row)

drive = {
    method: bind(rhs_row, jump_row, globals(), method=method, cache=True) for method in METHODS
}
"""The solver loops of :mod:`medtwin.model._rk4` with the propofol kernels, by method."""
