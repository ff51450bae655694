"""The batched solver: N parameter sets over one time grid, with events.

Inputs are piecewise constant between event boundaries (:class:`~medtwin.model.base.InputSchedule`,
built by the model from the scenario). Each segment between two input boundaries is integrated
on its own, so that every input discontinuity falls on a step boundary: by default with the
adaptive Dormand-Prince 5(4) pair (Dormand & Prince 1980; the method of scipy's ``RK45`` and of
simglucose's ``dopri5``), per parameter set, with the model's tolerances, the step size carried
from one segment to the next, and the states at the output times read from the pair's
continuous extension (Shampine 1986, as scipy's ``RK45`` does), so that output times do not cut
steps (``dense=False``: they do); or with the classical fixed-step 4th-order Runge-Kutta method
(``method="rk4"``, output times are boundaries too, the largest step ``<= max_step`` that
divides the segment).
Bolus-type events are short infusions declared by each model (the UVA/Padova model gives a
bolus over 1 min and eats at 5 g/min, as simglucose does); a model with a discrete memory (such
as gastric emptying's meal size) updates it with its ``jump_row`` kernel at each boundary.

Two back-ends compute the same thing:

- ``"numba"`` (default): one compiled loop per model over the N rows (split over threads
  kept between calls; the loop releases the GIL), the segments and the steps, calling the
  model's per-row kernel;
- ``"numpy"``: RK4 vectorised over N with :meth:`Model.rhs <medtwin.model.base.Model.rhs>`
  (for checking; slow).

Accuracy is checked in the tests against :func:`scipy.integrate.solve_ivp` (Radau, rtol 1e-10).

>>> from medtwin.model import get_model, parse_scenario, simulate
>>> m = get_model("uva_padova_2008")
>>> r = simulate(m, m.preset("adult#001"), parse_scenario([]), t_end=60, dt_out=30)
>>> r.times.tolist(), r.observables["bg_mg_dl"].shape
([0.0, 30.0, 60.0], (1, 3))
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from medtwin.model.base import FloatArray, InputSchedule, Model, ModelError
from medtwin.model.events import Scenario

MAX_OUTPUT_VALUES = 200_000_000
"""The most state values (rows x output times x states) a simulation returns: 1.6 GB of
float64. More is refused up front, naming the figures, rather than failing to allocate."""

__all__ = ["SimulationResult", "refine_schedule", "simulate"]


@dataclass(frozen=True)
class SimulationResult:
    """What a simulation returns, with its provenance.

    ``times`` (``[T]``, model time unit), ``states`` (``[N, T, S]``), ``observables``
    (name -> ``[N, T]``), the ``params`` used (``[N, P]``) and the model's name and version.
    """

    model: str
    version: str
    time_unit: str
    times: FloatArray
    states: FloatArray
    observables: dict[str, FloatArray]
    params: FloatArray
    parameter_names: list[str]
    state_names: list[str]
    scenario: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        """Model name, version, solver options and the scenario, as plain data."""
        return {
            "model": self.model,
            "version": self.version,
            "time_unit": self.time_unit,
            "solver": self.options,
            "scenario": self.scenario,
        }


def refine_schedule(schedule: InputSchedule, extra: FloatArray) -> tuple[FloatArray, Any, Any]:
    """Merge the schedule's boundaries with the times ``extra``.

    Returns the merged boundaries, for each merged segment the row of ``schedule.values``
    that holds on it, and for each merged boundary whether it is one of ``extra``.

    >>> s = InputSchedule(np.array([0.0, 10.0, 20.0]), np.zeros((2, 1, 1)))
    >>> b, seg, is_out = refine_schedule(s, np.array([0.0, 5.0, 20.0]))
    >>> b.tolist(), seg.tolist(), is_out.tolist()
    ([0.0, 5.0, 10.0, 20.0], [0, 0, 1], [True, True, False, True])
    """
    b = schedule.boundaries
    merged = np.union1d(b, extra[(extra >= b[0]) & (extra <= b[-1])])
    seg = (np.searchsorted(b, merged[:-1], side="right") - 1).astype(np.int64)
    return merged, seg, np.isin(merged, extra)


def _numpy_drive(
    model: type[Model],
    x0: FloatArray,
    params: FloatArray,
    b: FloatArray,
    values: FloatArray,
    seg: Any,
    nsub: Any,
    out_pos: Any,
    out: FloatArray,
) -> None:
    values = np.broadcast_to(values, (values.shape[0], x0.shape[0], values.shape[2]))
    floor = model.state_floor()
    x = x0.copy()
    jump = model.jump_row
    zero = np.zeros(values.shape[2])
    for k in range(len(b) - 1):
        u = values[seg[k]]
        if jump is not None and (k == 0 or seg[k] != seg[k - 1]):
            for n in range(x.shape[0]):
                jump(x[n], params[n], zero if k == 0 else values[seg[k - 1], n], u[n])
        if out_pos[k] >= 0:
            out[:, out_pos[k]] = x
        h = (b[k + 1] - b[k]) / nsub[k]
        for j in range(int(nsub[k])):
            t = b[k] + j * h
            k1 = model.rhs(t, x, params, u)
            k2 = model.rhs(t + h / 2, x + h / 2 * k1, params, u)
            k3 = model.rhs(t + h / 2, x + h / 2 * k2, params, u)
            k4 = model.rhs(t + h, x + h * k3, params, u)
            x = np.maximum(x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), floor)
    if out_pos[-1] >= 0:
        out[:, out_pos[-1]] = x


_POOLS: dict[tuple[int, int], Any] = {}


def _run_rows(
    drive: Any, args: tuple[Any, ...], tol: tuple[Any, ...], n_rows: int, threads: int | None
) -> None:
    """Call the compiled loop over all rows, split over up to ``threads`` threads (the loop
    releases the GIL): chunks of rows are taken in turn by the calling thread and by threads
    kept for the next call, so that a busy machine that delays a thread delays no rows."""
    workers = threads if threads is not None else len(os.sched_getaffinity(0))
    workers = max(1, min(workers, n_rows // 64 or 1))
    if workers == 1:
        drive(*args, 0, n_rows, *tol)
        return
    key = (os.getpid(), workers - 1)  # a forked child makes its own threads
    pool: Any = _POOLS.get(key)
    if pool is None:
        from concurrent.futures import ThreadPoolExecutor

        pool = _POOLS[key] = ThreadPoolExecutor(workers - 1, thread_name_prefix="medtwin-solver")
    chunks = min(4 * workers, max(workers, n_rows // 64))
    edges = np.linspace(0, n_rows, chunks + 1).astype(np.int64).tolist()
    todo = iter(itertools.pairwise(edges))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                chunk = next(todo, None)
            if chunk is None:
                return
            drive(*args, chunk[0], chunk[1], *tol)

    helpers = [pool.submit(work) for _ in range(workers - 1)]
    try:
        work()
    finally:
        for job in helpers:
            job.result()


def simulate(
    model: type[Model],
    params: FloatArray,
    scenario: Scenario,
    *,
    t_end: float,
    dt_out: float | None = None,
    times: Sequence[float] | FloatArray | None = None,
    method: Literal["dopri5", "rk4"] = "dopri5",
    max_step: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    x0: FloatArray | None = None,
    backend: Literal["numba", "numpy"] = "numba",
    threads: int | None = None,
    dense: bool = True,
) -> SimulationResult:
    """Simulate ``params`` (``[N, P]``) through ``scenario`` from 0 to ``t_end``.

    Times are in the model's time unit (``model.time_unit``). Output at ``times`` or every
    ``dt_out`` (default: 1 time unit), always including 0 and ``t_end``.

    ``method="dopri5"`` (default) is adaptive Dormand-Prince 5(4) with tolerances ``rtol`` and
    ``atol`` (default: the model's ``default_rtol``/``default_atol``, in its state units) and steps of at most ``max_step`` (default 10 time units); ``method="rk4"`` is
    fixed-step RK4 with steps of at most ``max_step`` (default 0.1) that divide each segment.
    The ``"numpy"`` backend is fixed-step RK4 only.
    ``x0`` (``[N, S]``) overrides the model's initial state. ``threads``: rows are split
    over this many threads (default: the CPUs this process may use, at most one per 64 rows).
    ``dense`` (dopri5): output times between input boundaries are read from the method's
    continuous extension, so that they do not cut steps; ``dense=False`` makes every output
    time a step boundary (slower; the same solution within the tolerances).

    Raises :class:`~medtwin.model.base.ModelError` for bad options, parameters out of bounds
    or events the model does not take.
    """
    if not (math.isfinite(t_end) and t_end > 0):
        raise ModelError(f"t_end must be a positive number, got {t_end!r}")
    if method not in ("dopri5", "rk4"):
        raise ModelError(f"unknown method {method!r} (known: dopri5, rk4)")
    if max_step is None:
        max_step = 10.0 if method == "dopri5" else 0.1
    if not (math.isfinite(max_step) and max_step > 0):
        raise ModelError(f"max_step must be a positive number, got {max_step!r}")
    rtol = model.default_rtol if rtol is None else rtol
    atol = model.default_atol if atol is None else atol
    if not (rtol > 0 and atol > 0):
        raise ModelError("rtol and atol must be positive")
    p = model.check_params(params)
    model.accepts(scenario)
    if times is not None:
        out_times = np.unique(np.asarray(times, dtype=np.float64))
        if out_times.size == 0 or out_times[0] < 0 or out_times[-1] > t_end:
            raise ModelError(f"output times must lie in [0, {t_end:g}]")
    else:
        step = dt_out if dt_out is not None else 1.0
        if not (math.isfinite(step) and step > 0):
            raise ModelError(f"dt_out must be a positive number, got {dt_out!r}")
        rows = p.shape[0]
        values = (t_end / step + 2) * rows * len(model.states)
        if values > MAX_OUTPUT_VALUES:
            raise ModelError(
                f"output every {step:g} {model.time_unit} over {t_end:g} {model.time_unit} "
                f"for {rows} row(s) of {len(model.states)} states is {values:,.0f} values, more "
                f"than the {MAX_OUTPUT_VALUES:,} a simulation returns: output less often or "
                "simulate a shorter time"
            )
        out_times = np.arange(0.0, t_end + 1e-9 * t_end, step)
        out_times = out_times[out_times <= t_end]
    out_times = np.union1d(out_times, [0.0, t_end])
    schedule = model.schedule(scenario.events, p, t_end)
    if schedule.values.shape[1] not in (1, p.shape[0]) or schedule.values.shape[2] != len(
        model.inputs
    ):
        raise ModelError(f"model {model.name!r} built a schedule of the wrong shape")
    if schedule.boundaries[0] != 0.0 or schedule.boundaries[-1] < t_end:
        raise ModelError(f"model {model.name!r} built a schedule that does not cover [0, t_end]")
    keep = schedule.boundaries < t_end  # boundaries past the end go
    n_keep = int(keep.sum())
    in_bounds = np.append(schedule.boundaries[:n_keep], t_end)
    values = np.ascontiguousarray(schedule.values[:n_keep])
    out_pos: Any = None
    nsub: Any = None
    if method == "dopri5" and dense:
        bounds, seg = in_bounds, np.arange(n_keep, dtype=np.int64)
    else:
        bounds, seg, is_out = refine_schedule(InputSchedule(in_bounds, values), out_times)
        out_pos = np.where(is_out, np.cumsum(is_out) - 1, -1).astype(np.int64)
        nsub = np.maximum(1, np.ceil(np.diff(bounds) / max_step - 1e-9)).astype(np.int64)
    init = model.initial_state(p) if x0 is None else np.array(x0, dtype=np.float64, ndmin=2)
    if init.shape != (p.shape[0], len(model.states)):
        raise ModelError(f"x0 must have shape [{p.shape[0]}, {len(model.states)}]")
    out = np.empty((p.shape[0], len(out_times), len(model.states)))
    if backend == "numba":
        drive: Any = model.compiled_kernels()[2][method]
        init = np.ascontiguousarray(init)
        pc = np.ascontiguousarray(p)  # one compiled signature (C-contiguous arrays)
        if method == "dopri5":
            args: tuple[Any, ...] = (init, pc, bounds, values, seg, out_times, out)
        else:
            args = (init, pc, bounds, values, seg, nsub, out_pos, out)
        tol = (float(rtol), float(atol), float(max_step), model.state_floor())
        _run_rows(drive, args, tol, p.shape[0], threads)
    elif backend == "numpy":
        if method != "rk4":
            raise ModelError("the numpy backend solves with method='rk4' only")
        _numpy_drive(model, init, p, bounds, values, seg, nsub, out_pos, out)
    else:
        raise ModelError(f"unknown backend {backend!r} (known: numba, numpy)")
    observables = {o.name: o.evaluate(out, p, out_times) for o in model.observables}
    return SimulationResult(
        model=model.name,
        version=model.version,
        time_unit=model.time_unit,
        times=out_times,
        states=out,
        observables=observables,
        params=p,
        parameter_names=model.parameter_names(),
        state_names=model.state_names(),
        scenario=scenario.to_dict(),
        options={
            "method": method,
            "max_step": max_step,
            "rtol": rtol if method == "dopri5" else None,
            "atol": atol if method == "dopri5" else None,
            "backend": backend,
            "dense": dense if method == "dopri5" else None,
        },
    )
