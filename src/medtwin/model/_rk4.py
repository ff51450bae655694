"""The compiled solver loops, adaptive Dormand-Prince 5(4) with its continuous extension and
fixed-step RK4 (imported only when a simulation runs: it imports numba).

A model's compiled driver is a loop template bound by :func:`bind` to the model's own numba
kernels; a model module can bind it at module level with ``cache=True`` (see
:mod:`medtwin.physiology._uva_padova_numba`) so that it compiles once per installation.
``rk4_rows`` runs a loop with kernels given as arguments (for tests).
"""

from __future__ import annotations

import hashlib
import math
import types
from typing import Any

import numba
import numpy as np

__all__ = ["METHODS", "bind", "no_jump", "rk4_rows"]

# The kernels the loop templates below call: :func:`bind` gives each compiled copy its own.
rhs_row: Any = None
jump_row: Any = None
_dp_step: Any = None  # the Dormand-Prince step compiled with rhs_row (see dp_step)
NS = 0  # states, when the loop is compiled for a fixed number of them (0: any)

METHODS = ("dopri5", "rk4")
"""Integration methods: adaptive Dormand-Prince 5(4) and fixed-step classical RK4."""


@numba.njit(nogil=True)
def no_jump(x: Any, p: Any, u0: Any, u1: Any) -> None:  # pragma: no cover - compiled
    """A jump kernel that changes nothing."""
    return None


@numba.njit(nogil=True)
def _finite_start(x: Any, k1: Any, n_states: int) -> bool:  # pragma: no cover - compiled
    """Whether the state ``x`` and its slope ``k1`` (the start of a step) are all finite."""
    for s in range(n_states):  # noqa: SIM110 - a loop numba compiles (no generator in all)
        if not (math.isfinite(x[s]) and math.isfinite(k1[s])):
            return False
    return True


@numba.njit(nogil=True)
def _dp_accept(
    x: Any, xn: Any, k1: Any, k7: Any, lo: Any, n_states: int
) -> bool:  # pragma: no cover - compiled
    """Take an accepted step: ``x`` becomes ``xn`` kept above ``lo`` (non-negative states
    projected back, like CVODE's inequality constraints) and ``k1`` the slope there (FSAL:
    ``k7``); returns whether a state was projected (its slope must then be evaluated again)."""
    projected = False
    for s in range(n_states):
        if xn[s] < lo[s]:
            xn[s] = lo[s]
            projected = True
        x[s] = xn[s]
        k1[s] = k7[s]
    return projected


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
    drive = bind(rhs_row, jump_row, {}, method=method)
    tol = (rtol, atol, hmax, floor)
    if method == "dopri5":  # output times instead of output positions, no substeps
        times = np.ascontiguousarray(bounds[out_pos >= 0])
        drive(x0, params, bounds, values, seg, times, out, row_lo, row_hi, *tol)
    else:
        drive(x0, params, bounds, values, seg, nsub, out_pos, out, row_lo, row_hi, *tol)


def bind(
    rhs_row: Any,
    jump_row: Any,
    namespace: dict[str, Any],
    *,
    method: str = "dopri5",
    cache: bool = False,
    n_states: int | None = None,
) -> Any:
    """The solver loop of ``method`` compiled with ``rhs_row`` and ``jump_row`` as its globals.

    ``namespace`` is the module dict the driver lives in (its ``__name__`` names the cache
    entry); with ``cache=True`` numba keeps the machine code on disk, so a model module that
    binds its kernels at import compiles once per installation, not once per process.
    ``n_states`` (optional) compiles the loop for that many states (a constant the compiler
    unrolls the per-state loops with); the loop then takes arrays of that width only.
    """
    glb = dict(namespace)
    glb.update({k: v for k, v in globals().items() if k[:2] in ("_A", "_B", "_E", "_P")})
    glb.update(
        {
            "np": np,
            "math": math,
            "rhs_row": rhs_row,
            "jump_row": jump_row,
            "_dp_accept": _dp_accept,
            "_dp_step": dp_step(rhs_row),
            "NS": int(n_states or 0),
        }
    )
    glb.setdefault("__name__", __name__)
    template = {"rk4": _rk4_template, "dopri5": _dopri5_template}[method]
    func = types.FunctionType(template.__code__, glb, "drive")
    # numba's disk cache is keyed by the name and this file's time stamp: the kernels' code
    # and the number of states go into the name, so that a changed kernel compiles afresh
    key = hashlib.sha1(f"{n_states}".encode())
    for kernel in (rhs_row, jump_row):
        code = getattr(getattr(kernel, "py_func", kernel), "__code__", None)
        if code is not None:
            _hash_code(key, code)
    func.__qualname__ = f"drive_{method}_{glb['__name__'].replace('.', '_')}_{key.hexdigest()[:12]}"
    func.__module__ = glb["__name__"]
    return numba.njit(cache=cache, nogil=True, error_model="numpy")(func)


def _hash_code(key: Any, code: types.CodeType) -> None:
    key.update(code.co_code)
    key.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _hash_code(key, const)
        else:
            key.update(repr(const).encode())


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
# Continuous extension of order 4 (Shampine 1986, Math Comput 46:135-150; the matrix ``P`` of
# scipy.integrate.RK45): y(t + th*h) = y + h * sum_i k_i * sum_m _Pim * th**(m+1), i = 1..7
# (k2 has weight 0); at th = 1 the weights are _B1 .. _B6 and 0, exactly.
_P10, _P11 = 1.0, -8048581381.0 / 2820520608.0
_P12, _P13 = 8663915743.0 / 2820520608.0, -12715105075.0 / 11282082432.0
_P31, _P32 = 131558114200.0 / 32700410799.0, -68118460800.0 / 10900136933.0
_P33 = 87487479700.0 / 32700410799.0
_P41, _P42 = -1754552775.0 / 470086768.0, 14199869525.0 / 1410260304.0
_P43 = -10690763975.0 / 1880347072.0
_P51, _P52 = 127303824393.0 / 49829197408.0, -318862633887.0 / 49829197408.0
_P53 = 701980252875.0 / 199316789632.0
_P61, _P62 = -282668133.0 / 205662961.0, 2019193451.0 / 616988883.0
_P63 = -1453857185.0 / 822651844.0
_P71, _P72, _P73 = 40617522.0 / 29380423.0, -110615467.0 / 29380423.0, 69997945.0 / 29380423.0


def _dp_step_template(
    t: float,
    t_end: float,
    h: float,
    hmax: float,
    x: Any,
    p: Any,
    u: Any,
    k1: Any,
    k2: Any,
    k3: Any,
    k4: Any,
    k5: Any,
    k6: Any,
    k7: Any,
    tmp: Any,
    xn: Any,
    rtol: float,
    atol: float,
    n_states: int,
) -> tuple[int, float, bool, float]:  # pragma: no cover - compiled
    """One step of adaptive Dormand-Prince 5(4) (Dormand & Prince 1980; tableau of Hairer,
    Norsett & Wanner, *Solving ODEs I*, Table 5.2) from ``x`` at ``t`` towards ``t_end``, with
    ``k1`` the slope at ``x`` and the kernel ``rhs_row`` bound by :func:`dp_step`: the step
    control of both adaptive loops (:func:`_dopri5_template` and
    :class:`medtwin.model.stepper.Stepper`'s).

    The trial step is ``h`` or, where ``t + h`` reaches ``t_end`` (within 1e-12 relative), the
    rest of the segment (``last``). It fills the stages ``k2 .. k7`` (``k7``: the slope at the
    result, FSAL) and the 5th-order result ``xn`` (local extrapolation) and measures the RMS
    over the states of the embedded error estimate, each component over
    ``atol + rtol * max(|x|, |xn|)``. Returns ``(status, h_try, last, h_next)``:

    - 1, accepted (err <= 1, or a finite err at ``h_try <= 1e-9``): ``h_next`` is ``h_try``
      times ``0.9 * err**-0.2`` within [0.2, 5] (5 at err = 0), at most ``hmax``; a step cut
      short by ``t_end`` keeps ``h`` unless the factor is below 1;
    - 0, rejected: ``h_next`` is ``h_try * max(0.2, 0.9 * err**-0.2)``, or ``0.2 * h_try``
      where err or ``xn`` is not finite (a step that left the model's domain: the smallest
      factor, as scipy's ``RK45`` gives a NaN norm; Hairer, Norsett & Wanner, II.4);
    - -1, the row cannot be integrated: its state or slope is not finite at the start of the
      step, or its step still leaves the domain at ``h_try <= 1e-9``.

    ``tmp`` is scratch space.
    """
    h_keep = h
    last = False
    if t + h >= t_end - 1e-12 * (1.0 + abs(t_end)):
        h = t_end - t
        last = True
    for s in range(n_states):
        tmp[s] = x[s] + h * _A21 * k1[s]
    rhs_row(t + 0.2 * h, tmp, p, u, k2)
    for s in range(n_states):
        tmp[s] = x[s] + h * (_A31 * k1[s] + _A32 * k2[s])
    rhs_row(t + 0.3 * h, tmp, p, u, k3)
    for s in range(n_states):
        tmp[s] = x[s] + h * (_A41 * k1[s] + _A42 * k2[s] + _A43 * k3[s])
    rhs_row(t + 0.8 * h, tmp, p, u, k4)
    for s in range(n_states):
        tmp[s] = x[s] + h * (_A51 * k1[s] + _A52 * k2[s] + _A53 * k3[s] + _A54 * k4[s])
    rhs_row(t + 8.0 / 9.0 * h, tmp, p, u, k5)
    for s in range(n_states):
        tmp[s] = x[s] + h * (
            _A61 * k1[s] + _A62 * k2[s] + _A63 * k3[s] + _A64 * k4[s] + _A65 * k5[s]
        )
    rhs_row(t + h, tmp, p, u, k6)
    for s in range(n_states):
        xn[s] = x[s] + h * (_B1 * k1[s] + _B3 * k3[s] + _B4 * k4[s] + _B5 * k5[s] + _B6 * k6[s])
    rhs_row(t + h, xn, p, u, k7)
    err = 0.0
    finite = 0.0
    for s in range(n_states):
        e = h * (_E1 * k1[s] + _E3 * k3[s] + _E4 * k4[s] + _E5 * k5[s] + _E6 * k6[s] + _E7 * k7[s])
        sc = atol + rtol * max(abs(x[s]), abs(xn[s]))
        err += (e / sc) ** 2
        finite += xn[s] - xn[s]  # 0 while the trial state is finite, NaN once it is not
    err = math.sqrt(err / n_states) if finite == 0.0 else np.inf
    if not err <= 1.0 and not math.isfinite(err):
        if h <= 1e-9 or not _finite_start(x, k1, n_states):
            return -1, h, last, h_keep
        return 0, h, last, 0.2 * h
    if err <= 1.0 or h <= 1e-9:
        factor = 5.0 if err == 0.0 else min(5.0, max(0.2, 0.9 * err**-0.2))
        if not last or factor < 1.0:
            return 1, h, last, min(hmax, h * factor)
        return 1, h, last, h_keep
    return 0, h, last, h * max(0.2, 0.9 * err**-0.2)


def dp_step(rhs_row: Any) -> Any:
    """:func:`_dp_step_template` compiled with ``rhs_row`` as its kernel, inlined (numba IR)
    into the loops that call it: the adaptive loop of :func:`bind` and that of
    :class:`medtwin.model.stepper.Stepper` share this one step and its control."""
    glb = {k: v for k, v in globals().items() if k[:2] in ("_A", "_B", "_E")}
    glb.update(
        {
            "np": np,
            "math": math,
            "rhs_row": rhs_row,
            "_finite_start": _finite_start,
            "__name__": __name__,
        }
    )
    func = types.FunctionType(_dp_step_template.__code__, glb, "dp_step")
    return numba.njit(nogil=True, error_model="numpy", inline="always")(func)


def _dopri5_template(
    x0: Any,
    params: Any,
    bounds: Any,
    values: Any,
    seg: Any,
    out_times: Any,
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
    factor ``0.9 * err**-0.2`` within [0.2, 5], steps at most ``hmax``; a step cut short by a
    boundary leaves the step size as it was).

    Every boundary in ``bounds[K+1]`` is hit exactly (``seg[K]``: the row of ``values``
    that holds on segment k; ``jump_row`` runs where it changes, and the right-hand side is
    re-evaluated there only). The state at each of ``out_times[T]`` (sorted, within
    ``[bounds[0], bounds[-1]]``) goes to ``out[n, T]``: at a boundary the state after its
    jump, at a step's end the step's result, between the ends of a step the 4th-order
    continuous extension of Shampine (1986) (scipy ``RK45``'s dense output), kept above
    ``floor``; output times need not be step boundaries.

    A trial step whose error estimate or state is not finite (it left the model's domain) is
    rejected and the step shrunk by 5; a row whose state or slope is not finite at the start
    of a step (a NaN state or parameter), or whose step fails so down to 1e-9, gives NaN at
    its remaining output times instead of shrinking its step without end.
    """
    n_states = NS if NS > 0 else x0.shape[1]
    if x0.shape[1] != n_states or out.shape[2] != n_states or floor.shape[0] != n_states:
        raise ValueError("the loop was compiled for another number of states")
    n_seg = bounds.shape[0] - 1
    n_out = out_times.shape[0]
    n_in = values.shape[2]
    shared = values.shape[1] == 1
    # private copies of the inputs and parameters (no views into the shared arrays inside
    # the loops: a view costs an atomic reference count on the array, which threads share)
    u = np.zeros(n_in)
    u_prev = np.zeros(n_in)
    p = np.empty(params.shape[1])
    lo = np.empty(n_states)
    for s in range(n_states):
        lo[s] = floor[s]
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
        for i in range(p.shape[0]):
            p[i] = params[n, i]
        for i in range(n_in):
            u[i] = 0.0
        h = min(hmax, 0.1)
        j = 0  # the next output time
        failed = False
        for k in range(n_seg):
            if failed:
                break
            t = bounds[k]
            t_end = bounds[k + 1]
            if k == 0 or seg[k] != seg[k - 1]:
                for i in range(n_in):
                    u_prev[i] = u[i]
                    u[i] = values[seg[k], vn, i]
                jump_row(x, p, u_prev, u)
                rhs_row(t, x, p, u, k1)
            # else: the inputs go on, and k1 (the last step's k7 at this state) still holds
            while j < n_out and out_times[j] <= t:
                for s in range(n_states):
                    out[n, j, s] = x[s]
                j += 1
            while t < t_end:
                status, h_try, last, h = _dp_step(
                    t,
                    t_end,
                    h,
                    hmax,
                    x,
                    p,
                    u,
                    k1,
                    k2,
                    k3,
                    k4,
                    k5,
                    k6,
                    k7,
                    tmp,
                    xn,
                    rtol,
                    atol,
                    n_states,
                )
                if status < 0:  # this row cannot be integrated: NaN from here on
                    for s in range(n_states):
                        x[s] = np.nan
                    failed = True
                    break
                if status == 1:
                    t_new = t_end if last else t + h_try
                    # output times inside the step: the continuous extension from x
                    while j < n_out and out_times[j] < t_new:
                        th = (out_times[j] - t) / h_try
                        w1 = th * (_P10 + th * (_P11 + th * (_P12 + th * _P13)))
                        w3 = th * th * (_P31 + th * (_P32 + th * _P33))
                        w4 = th * th * (_P41 + th * (_P42 + th * _P43))
                        w5 = th * th * (_P51 + th * (_P52 + th * _P53))
                        w6 = th * th * (_P61 + th * (_P62 + th * _P63))
                        w7 = th * th * (_P71 + th * (_P72 + th * _P73))
                        for s in range(n_states):
                            y = x[s] + h_try * (
                                w1 * k1[s]
                                + w3 * k3[s]
                                + w4 * k4[s]
                                + w5 * k5[s]
                                + w6 * k6[s]
                                + w7 * k7[s]
                            )
                            out[n, j, s] = y if y >= lo[s] else lo[s]
                        j += 1
                    t = t_new
                    if _dp_accept(x, xn, k1, k7, lo, n_states):
                        rhs_row(t, x, p, u, k1)
                    if not last:
                        while j < n_out and out_times[j] <= t:
                            for s in range(n_states):
                                out[n, j, s] = x[s]
                            j += 1
        while j < n_out:
            for s in range(n_states):
                out[n, j, s] = x[s]
            j += 1
