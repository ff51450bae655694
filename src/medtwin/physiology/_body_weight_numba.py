"""Compiled kernels of :mod:`medtwin.physiology.body_weight`, cached on disk by numba.

Imported only when a simulation runs (it imports numba); the equations live in
:func:`medtwin.physiology.body_weight._rhs_row`.

numba's on-disk cache is keyed by the source file of the function it compiles: ``body_weight.py``
for the kernels, but the solver loop's file (``model/_rk4.py``) for ``drive``, so a cached loop
would keep calling the kernels it was compiled with after an equation is edited. The loops are
therefore compiled under a name tagged with a hash of the kernels' source (:data:`TAG`): an
edited kernel gets freshly compiled loops instead of stale machine code.
"""

from __future__ import annotations

import hashlib
import inspect
import sys

import numba

from medtwin.model._rk4 import METHODS, bind
from medtwin.physiology.body_weight import _jump_row, _rhs_row

__all__ = ["TAG", "drive", "jump_row", "rhs_row"]

TAG = hashlib.sha256(
    (inspect.getsource(_rhs_row) + inspect.getsource(_jump_row)).encode()
).hexdigest()[:12]
"""Hash of the kernels' source: part of the cached loops' names."""

# as in _uva_padova_numba: no checks in the hot loop, no fastmath (IEEE-exact, reproducible)
rhs_row = numba.njit(cache=True, nogil=True, error_model="numpy")(_rhs_row)
jump_row = numba.njit(cache=True, nogil=True, error_model="numpy")(_jump_row)

# numba imports a cached function's module by name when it loads it: the tagged name is an
# alias of this module
_TAGGED = f"{__name__}_{TAG}"
sys.modules.setdefault(_TAGGED, sys.modules[__name__])

drive = {
    method: bind(rhs_row, jump_row, {**globals(), "__name__": _TAGGED}, method=method, cache=True)
    for method in METHODS
}
"""The solver loops of :mod:`medtwin.model._rk4` with the body-weight kernels, by method."""
