"""Compiled kernels of :mod:`medtwin.physiology.uva_padova`, cached on disk by numba.

Imported only when a simulation runs (it imports numba); the equations live in
:func:`medtwin.physiology.uva_padova._rhs_row`.
"""

from __future__ import annotations

import numba

from medtwin.model._rk4 import METHODS, bind
from medtwin.physiology.uva_padova import UvaPadova2008, _jump_row, _rhs_row

__all__ = ["drive", "jump_row", "rhs_row"]

# error_model="numpy": a division by zero gives inf/nan instead of raising (no checks in the
# hot loop); no fastmath, so that results stay IEEE-exact and reproducible
rhs_row = numba.njit(cache=True, nogil=True, error_model="numpy")(_rhs_row)
jump_row = numba.njit(cache=True, nogil=True, error_model="numpy")(_jump_row)


_N_STATES = len(UvaPadova2008.states)

drive = {
    method: bind(rhs_row, jump_row, globals(), method=method, cache=True, n_states=_N_STATES)
    for method in METHODS
}
"""The solver loops of :mod:`medtwin.model._rk4` with the UVA/Padova kernels, by method."""
