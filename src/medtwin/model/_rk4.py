"""The compiled fixed-step RK4 loop (imported only when a simulation runs: it imports numba).

A model's compiled driver is ``rk4_rows`` called with the model's own numba kernels; a model
module can define that driver at module level with ``cache=True`` (see
:mod:`medtwin.physiology._uva_padova_numba`) so that it compiles once per installation.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["bind", "no_jump", "rk4_rows"]


@numba.njit(nogil=True)  # type: ignore[untyped-decorator]
def no_jump(x: Any, p: Any, u0: Any, u1: Any) -> None:  # pragma: no cover - compiled
    """A jump kernel that changes nothing."""
    return None


def rk4_rows(
    rhs_row: Any,
    jump_row: Any,
    x0: Any,
    params: Any,
    bounds: Any,
    values: Any,
    seg: Any,
    nsub: Any,
    out_pos: Any,
    out: Any,
    row_lo: int,
    row_hi: int,
) -> None:
    """Run the RK4 loop with kernels given as arguments (compiles each call: for tests)."""
    bind(rhs_row, jump_row, {})(x0, params, bounds, values, seg, nsub, out_pos, out, row_lo, row_hi)


def bind(rhs_row: Any, jump_row: Any, namespace: dict[str, Any], *, cache: bool = False) -> Any:
    """The RK4 loop compiled with ``rhs_row`` and ``jump_row`` as its globals.

    ``namespace`` is the module dict the driver lives in (its ``__name__`` names the cache
    entry); with ``cache=True`` numba keeps the machine code on disk, so a model module that
    binds its kernels at import compiles once per installation, not once per process.
    """
    import types

    glb = dict(namespace)
    glb.update({"np": np, "rhs_row": rhs_row, "jump_row": jump_row})
    glb.setdefault("__name__", __name__)
    func = types.FunctionType(_rk4_template.__code__, glb, "drive")
    func.__qualname__ = f"drive_{glb['__name__'].replace('.', '_')}"
    func.__module__ = glb["__name__"]
    return numba.njit(cache=cache, nogil=True)(func)


def _rk4_template(
    x0: Any,
    params: Any,
    bounds: Any,
    values: Any,
    seg: Any,
    nsub: Any,
    out_pos: Any,
    out: Any,
    row_lo: int,
    row_hi: int,
) -> None:  # pragma: no cover - compiled
    """Integrate rows ``row_lo:row_hi`` with the kernels bound by :func:`bind`.

    ``bounds[K+1]`` are all boundaries (inputs and outputs), ``seg[K]`` the row of ``values``
    (``[K0, Nv, I]``, ``Nv`` = N or 1) that holds on segment k, ``nsub[K]`` the RK4 steps in
    it, ``out_pos[K+1]`` where boundary k goes in ``out`` (-1: not an output).
    """
    n_states = x0.shape[1]
    n_seg = bounds.shape[0] - 1
    shared = values.shape[1] == 1
    zero = np.zeros(values.shape[2])
    k1 = np.empty(n_states)
    k2 = np.empty(n_states)
    k3 = np.empty(n_states)
    k4 = np.empty(n_states)
    tmp = np.empty(n_states)
    x = np.empty(n_states)
    for n in range(row_lo, row_hi):
        vn = 0 if shared else n
        for s in range(n_states):
            x[s] = x0[n, s]
        p = params[n]
        for k in range(n_seg):
            u = values[seg[k], vn]
            if k == 0:
                jump_row(x, p, zero, u)
            elif seg[k] != seg[k - 1]:
                jump_row(x, p, values[seg[k - 1], vn], u)
            if out_pos[k] >= 0:
                out[n, out_pos[k]] = x
            t = bounds[k]
            h = (bounds[k + 1] - bounds[k]) / nsub[k]
            for j in range(nsub[k]):
                ts = t + j * h
                rhs_row(ts, x, p, u, k1)
                for s in range(n_states):
                    tmp[s] = x[s] + 0.5 * h * k1[s]
                rhs_row(ts + 0.5 * h, tmp, p, u, k2)
                for s in range(n_states):
                    tmp[s] = x[s] + 0.5 * h * k2[s]
                rhs_row(ts + 0.5 * h, tmp, p, u, k3)
                for s in range(n_states):
                    tmp[s] = x[s] + h * k3[s]
                rhs_row(ts + h, tmp, p, u, k4)
                for s in range(n_states):
                    x[s] += h / 6.0 * (k1[s] + 2.0 * k2[s] + 2.0 * k3[s] + k4[s])
        if out_pos[n_seg] >= 0:
            out[n, out_pos[n_seg]] = x
