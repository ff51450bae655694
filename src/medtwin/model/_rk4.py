"""The compiled fixed-step RK4 loop (imported only when a simulation runs: it imports numba).

A model's compiled driver is ``rk4_rows`` called with the model's own numba kernels; a model
module can define that driver at module level with ``cache=True`` (see
:mod:`medtwin.physiology._uva_padova_numba`) so that it compiles once per installation.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["METHODS", "bind", "no_jump", "rk4_rows"]

# The kernels the loop templates below call: :func:`bind` gives each compiled copy its own.
rhs_row: Any = None
jump_row: Any = None

METHODS = ("dopri5", "rk4")
"""Integration methods: adaptive Dormand-Prince 5(4) and fixed-step classical RK4."""


@numba.njit(nogil=True)
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
    rtol: float = 1e-8,
    atol: float = 1e-8,
    hmax: float = 1.0,
    method: str = "rk4",
    floor: Any = None,
) -> None:
    """Run a loop with kernels given as arguments (compiles on each call: for tests)."""
    if floor is None:
        floor = np.full(x0.shape[1], -np.inf)
    bind(rhs_row, jump_row, {}, method=method)(
        x0,
        params,
        bounds,
        values,
        seg,
        nsub,
        out_pos,
        out,
        row_lo,
        row_hi,
        rtol,
        atol,
        hmax,
        floor,
    )


def bind(
    rhs_row: Any,
    jump_row: Any,
    namespace: dict[str, Any],
    *,
    method: str = "dopri5",
    cache: bool = False,
) -> Any:
    """The RK4 loop compiled with ``rhs_row`` and ``jump_row`` as its globals.

    ``namespace`` is the module dict the driver lives in (its ``__name__`` names the cache
    entry); with ``cache=True`` numba keeps the machine code on disk, so a model module that
    binds its kernels at import compiles once per installation, not once per process.
    """
    import types

    glb = dict(namespace)
    glb.update({k: v for k, v in globals().items() if k[:2] in ("_A", "_B", "_E")})
    glb.update({"np": np, "rhs_row": rhs_row, "jump_row": jump_row})
    glb.setdefault("__name__", __name__)
    template = {"rk4": _rk4_template, "dopri5": _dopri5_template}[method]
    func = types.FunctionType(template.__code__, glb, "drive")
    func.__qualname__ = f"drive_{method}_{glb['__name__'].replace('.', '_')}"
    func.__module__ = glb["__name__"]
    return numba.njit(cache=cache, nogil=True, error_model="numpy")(func)


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
    rtol: float,
    atol: float,
    hmax: float,
    floor: Any,
) -> None:  # pragma: no cover - compiled
    """Integrate rows ``row_lo:row_hi`` with the kernels bound by :func:`bind` (fixed-step RK4;
    ``rtol``, ``atol``, ``hmax`` are not used).

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
                    if x[s] < floor[s]:
                        x[s] = floor[s]
        if out_pos[n_seg] >= 0:
            out[n, out_pos[n_seg]] = x


# Dormand & Prince (1980) 5(4) tableau (Hairer, Norsett & Wanner, Solving ODEs I, Table 5.2)
_A21 = 1.0 / 5.0
_A31, _A32 = 3.0 / 40.0, 9.0 / 40.0
_A41, _A42, _A43 = 44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0
_A51, _A52, _A53, _A54 = 19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0
_A61, _A62, _A63 = 9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0
_A64, _A65 = 49.0 / 176.0, -5103.0 / 18656.0
_B1, _B3, _B4, _B5, _B6 = 35.0 / 384.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0
_E1, _E3, _E4 = 71.0 / 57600.0, -71.0 / 16695.0, 71.0 / 1920.0
_E5, _E6, _E7 = -17253.0 / 339200.0, 22.0 / 525.0, -1.0 / 40.0


def _dopri5_template(
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
    rtol: float,
    atol: float,
    hmax: float,
    floor: Any,
) -> None:  # pragma: no cover - compiled
    """Integrate rows ``row_lo:row_hi`` with adaptive Dormand-Prince 5(4) (local
    extrapolation, error per component ``atol + rtol * max(|x|, |x_new|)``, RMS norm, step
    factor ``0.9 * err**-0.2`` within [0.2, 5], steps at most ``hmax``); every boundary is hit
    exactly. ``nsub`` is not used.
    """
    n_states = x0.shape[1]
    n_seg = bounds.shape[0] - 1
    shared = values.shape[1] == 1
    zero = np.zeros(values.shape[2])
    k1 = np.empty(n_states)
    k2 = np.empty(n_states)
    k3 = np.empty(n_states)
    k4 = np.empty(n_states)
    k5 = np.empty(n_states)
    k6 = np.empty(n_states)
    k7 = np.empty(n_states)
    tmp = np.empty(n_states)
    xn = np.empty(n_states)
    x = np.empty(n_states)
    for n in range(row_lo, row_hi):
        vn = 0 if shared else n
        for s in range(n_states):
            x[s] = x0[n, s]
        p = params[n]
        h = min(hmax, 0.1)
        for k in range(n_seg):
            u = values[seg[k], vn]
            if k == 0:
                jump_row(x, p, zero, u)
            elif seg[k] != seg[k - 1]:
                jump_row(x, p, values[seg[k - 1], vn], u)
            if out_pos[k] >= 0:
                out[n, out_pos[k]] = x
            t = bounds[k]
            t_end = bounds[k + 1]
            rhs_row(t, x, p, u, k1)
            while t < t_end:
                last = False
                if t + h >= t_end - 1e-12 * (1.0 + abs(t_end)):
                    h_try = t_end - t
                    last = True
                else:
                    h_try = h
                for s in range(n_states):
                    tmp[s] = x[s] + h_try * _A21 * k1[s]
                rhs_row(t + 0.2 * h_try, tmp, p, u, k2)
                for s in range(n_states):
                    tmp[s] = x[s] + h_try * (_A31 * k1[s] + _A32 * k2[s])
                rhs_row(t + 0.3 * h_try, tmp, p, u, k3)
                for s in range(n_states):
                    tmp[s] = x[s] + h_try * (_A41 * k1[s] + _A42 * k2[s] + _A43 * k3[s])
                rhs_row(t + 0.8 * h_try, tmp, p, u, k4)
                for s in range(n_states):
                    tmp[s] = x[s] + h_try * (
                        _A51 * k1[s] + _A52 * k2[s] + _A53 * k3[s] + _A54 * k4[s]
                    )
                rhs_row(t + 8.0 / 9.0 * h_try, tmp, p, u, k5)
                for s in range(n_states):
                    tmp[s] = x[s] + h_try * (
                        _A61 * k1[s] + _A62 * k2[s] + _A63 * k3[s] + _A64 * k4[s] + _A65 * k5[s]
                    )
                rhs_row(t + h_try, tmp, p, u, k6)
                for s in range(n_states):
                    xn[s] = x[s] + h_try * (
                        _B1 * k1[s] + _B3 * k3[s] + _B4 * k4[s] + _B5 * k5[s] + _B6 * k6[s]
                    )
                rhs_row(t + h_try, xn, p, u, k7)
                err = 0.0
                for s in range(n_states):
                    e = h_try * (
                        _E1 * k1[s]
                        + _E3 * k3[s]
                        + _E4 * k4[s]
                        + _E5 * k5[s]
                        + _E6 * k6[s]
                        + _E7 * k7[s]
                    )
                    sc = atol + rtol * max(abs(x[s]), abs(xn[s]))
                    err += (e / sc) ** 2
                err = (err / n_states) ** 0.5
                if err <= 1.0 or h_try <= 1e-9:
                    t = t_end if last else t + h_try
                    projected = False
                    for s in range(n_states):
                        if xn[s] < floor[s]:
                            xn[s] = floor[s]
                            projected = True
                        x[s] = xn[s]
                        k1[s] = k7[s]
                    if projected:
                        rhs_row(t, x, p, u, k1)
                    factor = 5.0 if err == 0.0 else min(5.0, max(0.2, 0.9 * err**-0.2))
                    if not last or factor < 1.0:
                        h = min(hmax, h_try * factor)
                else:
                    h = h_try * max(0.2, 0.9 * err**-0.2)
        if out_pos[n_seg] >= 0:
            out[n, out_pos[n_seg]] = x
