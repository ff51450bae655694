"""Compiled kernels of :mod:`medtwin.physiology.cardiovascular`, cached on disk by numba.

Imported only when a simulation runs (it imports numba); the equations live in
:func:`medtwin.physiology.cardiovascular._hemo` and ``_rhs_row``.
"""

from __future__ import annotations

import hashlib
import sys
import types
from pathlib import Path
from typing import Any

import numba

from medtwin.model._rk4 import METHODS, bind
from medtwin.physiology import cardiovascular as _cv

__all__ = ["drive", "hemodynamics", "jump_row", "rhs_row"]

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")

# numba's on-disk cache does not notice a change in a *called* function: the kernels' names
# carry a digest of the equations' source, so that an edit compiles afresh
_VERSION = hashlib.sha1(Path(_cv.__file__).read_bytes()).hexdigest()[:12]
# the solver loops are named after their module: a versioned alias of this module (numba
# imports it when it loads a cached loop)
_ALIAS = f"{__name__}_{_VERSION}"
sys.modules.setdefault(_ALIAS, sys.modules[__name__])

edv = _jit(_cv._edv)


def _with_compiled(func: Any, **compiled: Any) -> Any:
    """``func`` with compiled kernels as its globals (numba calls only compiled code)."""
    namespace = dict(vars(_cv))
    namespace.update(compiled)
    bound = types.FunctionType(func.__code__, namespace, func.__name__)
    bound.__qualname__ = f"{func.__name__}_{_VERSION}"
    bound.__module__ = __name__
    return _jit(bound)


hemo = _with_compiled(_cv._hemo, _edv=edv)
rhs_row = _with_compiled(_cv._rhs_row, _hemo=hemo)
jump_row = _jit(_cv._jump_row)


hemodynamics = _with_compiled(_cv._hemo_batch, _hemo=hemo)


drive = {
    method: bind(
        rhs_row,
        jump_row,
        {**globals(), "__name__": _ALIAS},
        method=method,
        cache=True,
    )
    for method in METHODS
}
"""The solver loops of :mod:`medtwin.model._rk4` with the cardiovascular kernels, by method."""
