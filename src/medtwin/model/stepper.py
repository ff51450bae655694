"""Advance many rows of a model's state from one time to the next, with little overhead.

:func:`medtwin.model.simulate` starts at 0 from the initial state, builds the schedule, checks
everything and returns a full trajectory; a particle filter instead moves the same ``[M, S]``
states a few minutes at a time, hundreds of times a day. :class:`Stepper` does only that: it
advances ``x[M, S]`` in place from ``t0`` to ``t1`` under a prebuilt
:class:`~medtwin.model.base.InputSchedule` (inputs piecewise constant, as in the solver), with
the model's own compiled kernels (:meth:`Model.compiled_kernels
<medtwin.model.base.Model.compiled_kernels>`) and the same adaptive Dormand-Prince 5(4) pair as
:mod:`medtwin.model.solver` (Dormand & Prince 1980; tableau of Hairer, Norsett & Wanner,
*Solving ODEs I*, Table 5.2). What differs from the solver's loop:

- the inputs *before* ``t0`` are known (the schedule's segment just before it), so a model's
  ``jump_row`` runs only where the inputs really change, never at a restart in the middle of a
  meal (the solver starts from "no input" at 0);
- each row keeps its last step size between calls (``h[M]``), so a call over 5 minutes does not
  start again from a small trial step;
- the schedule's last segment holds after its last boundary (no event comes later), so one
  schedule serves every later call until the events change.

Results do not depend on the number of threads (each row is integrated on its own). They do
depend, within the tolerances, on where the calls split the time: every ``t1`` ends a step.

>>> import numpy as np
>>> from medtwin.model import get_model, parse_scenario
>>> m = get_model("uva_padova_2008")
>>> p = m.preset("adolescent#001")
>>> sched = m.schedule(parse_scenario([{"type": "basal"}]).events, p, 1440.0)
>>> x = m.initial_state(p)
>>> stepper = Stepper(m)
>>> h = stepper.new_step_sizes(1)
>>> stepper.advance(x, p, sched, 0.0, 60.0, h)
>>> round(float(x[0, 3] / p[0, m.parameter_names().index("vg_dl_per_kg")]), 2)  # still Gb
149.02
"""

from __future__ import annotations

import itertools
import math
import os
import types
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from medtwin.model._rk4 import _dp_accept, _finite_start, dp_step
from medtwin.model.base import FloatArray, InputSchedule, Model, ModelError

__all__ = ["Stepper", "window"]

_DRIVERS: dict[type[Model], Any] = {}


def window(schedule: InputSchedule, t0: float, t1: float) -> tuple[FloatArray, Any, int]:
    """The segments of ``schedule`` that cover ``[t0, t1]``.

    Returns the boundaries ``[t0, ..., t1]`` (the schedule's inner boundaries strictly
    inside; its last boundary is only where it was cut, not a change of inputs),
    for each piece the row of ``schedule.values`` that holds on it (the last row holds after
    the schedule's end) and the row that held just before ``t0`` (-1 at the schedule's start:
    "no input", as the solver starts).

    >>> s = InputSchedule(np.array([0.0, 10.0, 20.0]), np.zeros((2, 1, 1)))
    >>> b, seg, prev = window(s, 5.0, 30.0)
    >>> b.tolist(), seg.tolist(), prev
    ([5.0, 10.0, 30.0], [0, 1], 0)
    >>> window(s, 10.0, 12.0)[1:]
    (array([1]), 0)
    """
    b = schedule.boundaries
    last = b.shape[0] - 2
    interior = b[1:-1]  # the end of the schedule changes nothing: its last inputs hold on
    inside = interior[(interior > t0) & (interior < t1)]
    bounds = np.concatenate(([t0], inside, [t1]))
    seg = np.clip(np.searchsorted(b, bounds[:-1], side="right") - 1, 0, last).astype(np.int64)
    prev = -1 if t0 <= b[0] else int(min(np.searchsorted(b, t0, side="left") - 1, last))
    return bounds, seg, prev


class Stepper:
    """Advance rows of ``model``'s state under a schedule (see the module docstring).

    Parameters
    ----------
    model
        The model class.
    rtol, atol
        Tolerances of the adaptive step (default: the model's ``default_rtol``/``default_atol``).
    max_step
        Largest step, model time units (default 10).
    threads
        Rows are split over this many threads (default: the CPUs this process may use, at most
        one per 64 rows).
    """

    def __init__(
        self,
        model: type[Model],
        *,
        rtol: float | None = None,
        atol: float | None = None,
        max_step: float = 10.0,
        threads: int | None = None,
    ) -> None:
        self.model = model
        self.rtol = float(model.default_rtol if rtol is None else rtol)
        self.atol = float(model.default_atol if atol is None else atol)
        self.max_step = float(max_step)
        if not (self.rtol > 0 and self.atol > 0):
            raise ModelError("rtol and atol must be positive")
        if not (math.isfinite(self.max_step) and self.max_step > 0):
            raise ModelError(f"max_step must be a positive number, got {max_step!r}")
        if threads is not None and threads < 1:
            raise ModelError(f"threads must be >= 1, got {threads!r}")
        self.threads = threads if threads is not None else len(os.sched_getaffinity(0))
        self._floor = model.state_floor()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._driver = _driver(model)

    def new_step_sizes(self, n: int) -> FloatArray:
        """Initial step sizes for ``n`` rows (the solver's first trial step)."""
        return np.full(n, min(self.max_step, 0.1))

    def advance(
        self,
        x: FloatArray,
        params: FloatArray,
        schedule: InputSchedule,
        t0: float,
        t1: float,
        h: FloatArray,
    ) -> None:
        """Move ``x`` (``[M, S]``, changed in place) from ``t0`` to ``t1`` (model time unit).

        ``params`` is ``[M, P]`` (not checked again: check it once with
        :meth:`Model.check_params <medtwin.model.base.Model.check_params>`), ``schedule``
        holds ``values`` of shape ``[K, M or 1, I]``, ``h`` (``[M]``, changed in place) each
        row's step size.
        """
        if not t1 >= t0:
            raise ModelError(f"cannot step backwards in time: t1 = {t1!r} < t0 = {t0!r}")
        if t1 == t0:
            return
        m = x.shape[0]
        if params.shape[0] != m or h.shape != (m,) or schedule.values.shape[1] not in (1, m):
            raise ModelError(
                f"rows do not agree: x {x.shape}, params {params.shape}, step sizes {h.shape}, "
                f"schedule values {schedule.values.shape}"
            )
        bounds, seg, prev = window(schedule, float(t0), float(t1))
        values = schedule.values
        args: tuple[Any, ...] = (x, params, bounds, values, seg, prev, h)
        tol: tuple[Any, ...] = (self.rtol, self.atol, self.max_step, self._floor)
        workers = max(1, min(self.threads, m // 64 or 1))
        if workers == 1:
            self._driver(*args, 0, m, *tol)
            return
        if self._pool is None or self._pool_size != workers:
            if self._pool is not None:
                self._pool.shutdown()
            self._pool = ThreadPoolExecutor(workers)
            self._pool_size = workers
        driver = self._driver

        def run(lo: int, hi: int) -> None:
            driver(*args, lo, hi, *tol)

        edges = np.linspace(0, m, workers + 1).astype(int)
        jobs = [self._pool.submit(run, int(lo), int(hi)) for lo, hi in itertools.pairwise(edges)]
        for job in jobs:
            job.result()

    def close(self) -> None:
        """Stop the worker threads (they are also stopped when the object goes)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)


def _driver(model: type[Model]) -> Any:
    """The stepping loop compiled with ``model``'s kernels (once per model and process).

    For a model that ships a ``compiled_module`` (its kernels cached on disk by numba) the loop
    is cached on disk too, under a name that includes a hash of the source files of its
    kernels and of :mod:`medtwin.model._rk4` (whose step it inlines), so that a change to the
    model's equations or constants or to the step compiles it again instead of reusing stale
    machine code.
    """
    driver = _DRIVERS.get(model)
    if driver is None:
        import numba

        rhs_row, jump_row, _ = model.compiled_kernels()
        glb: dict[str, Any] = {
            "np": np,
            "math": math,
            "rhs_row": rhs_row,
            "jump_row": jump_row,
            "_dp_accept": _dp_accept,
            "_dp_step": dp_step(rhs_row),
            "__name__": __name__,
        }
        func = types.FunctionType(_advance_template.__code__, glb, "advance")
        name = f"advance_{model.__module__.replace('.', '_')}_{model.__name__}"
        # the loop's step is medtwin.model._rk4's: its source goes into the key as well
        kernels = (rhs_row, jump_row, _finite_start)
        key = _source_key(*kernels) if model.compiled_module is not None else None
        func.__qualname__ = name if key is None else f"{name}_{key}"
        driver = numba.njit(nogil=True, error_model="numpy", cache=key is not None)(func)
        _DRIVERS[model] = driver
    return driver


def _source_key(*kernels: Any) -> str | None:
    """A hash of the files the kernels' Python functions were read from (None if unknown)."""
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256()
    for kernel in kernels:
        py = getattr(kernel, "py_func", kernel)
        try:
            digest.update(Path(py.__code__.co_filename).read_bytes())
        except (AttributeError, OSError):
            return None
    return digest.hexdigest()[:16]


def _advance_template(
    x: Any,
    params: Any,
    bounds: Any,
    values: Any,
    seg: Any,
    prev: int,
    hstep: Any,
    row_lo: int,
    row_hi: int,
    rtol: float,
    atol: float,
    hmax: float,
    floor: Any,
) -> None:  # pragma: no cover - compiled
    """Advance rows ``row_lo:row_hi`` of ``x`` over the pieces ``bounds`` with the
    Dormand-Prince 5(4) step of :mod:`medtwin.model._rk4` (:func:`~medtwin.model._rk4.dp_step`,
    bound as the global ``_dp_step``; the same step control and projection of non-negative
    states as its loop); ``values[seg[k]]`` holds on piece k, ``values[prev]``
    held before ``bounds[0]`` (-1: nothing did, the inputs were zero). A trial step whose
    error estimate or state is not finite is rejected and the step shrunk by 5 (as in
    :mod:`medtwin.model._rk4`); a row whose own state or slope is not finite (a NaN state or
    parameter), or whose step fails so down to 1e-9, is set to NaN and left, instead of
    shrinking its step without end.
    """
    n_states = x.shape[1]
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
    xr = np.empty(n_states)
    for n in range(row_lo, row_hi):
        vn = 0 if shared else n
        for s in range(n_states):
            xr[s] = x[n, s]
        p = params[n]
        h = min(hmax, hstep[n])
        failed = False
        for k in range(n_seg):
            if failed:
                break
            u = values[seg[k], vn]
            if k == 0:
                if prev < 0:
                    jump_row(xr, p, zero, u)
                elif seg[0] != prev:
                    jump_row(xr, p, values[prev, vn], u)
            elif seg[k] != seg[k - 1]:
                jump_row(xr, p, values[seg[k - 1], vn], u)
            t = bounds[k]
            t_end = bounds[k + 1]
            rhs_row(t, xr, p, u, k1)
            while t < t_end:
                status, h_try, last, h = _dp_step(
                    t,
                    t_end,
                    h,
                    hmax,
                    xr,
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
                if status < 0:  # this row cannot be integrated: mark it NaN and go on
                    for s in range(n_states):
                        xr[s] = np.nan
                    failed = True
                    break
                if status == 1:
                    t = t_end if last else t + h_try
                    if _dp_accept(xr, xn, k1, k7, floor, n_states):
                        rhs_row(t, xr, p, u, k1)
        for s in range(n_states):
            x[n, s] = xr[s]
        hstep[n] = h


# the loop template reads its kernels and step as globals bound by _driver
rhs_row: Any = None
jump_row: Any = None
_dp_step: Any = None
