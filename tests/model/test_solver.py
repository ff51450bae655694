"""The batched solver: accuracy against scipy's solve_ivp (Radau, rtol 1e-10), back-ends and
threads that agree, batching that does not mix rows, and a generic model through the contract."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pytest

from medtwin.model import (
    Event,
    InputSchedule,
    Model,
    ModelError,
    Observable,
    Parameter,
    Prior,
    Variable,
    get_model,
    parse_scenario,
    simulate,
)
from medtwin.model.base import FloatArray

UVA = get_model("uva_padova_2008")
SCENARIO = parse_scenario(
    [
        {"type": "basal"},
        {"type": "meal", "t_min": 30, "carbs_g": 52},
        {"type": "bolus", "t_min": 30, "insulin_u": 4},
        {"type": "meal", "t_min": 200, "carbs_g": 20},
        {"type": "basal", "t_min": 300, "u_per_h": 0.3},
    ]
)


def _solve_ivp(model: type[Model], params: FloatArray, scenario: Any, t_end: float) -> Any:
    """Reference: scipy Radau (rtol 1e-10) segment by segment, with the model's jump rule."""
    scipy_integrate = pytest.importorskip("scipy.integrate")
    sched = model.schedule(scenario.events, params, t_end)
    x = model.initial_state(params)[0]
    zero = np.zeros(len(model.inputs))
    times: list[float] = []
    states: list[FloatArray] = []
    previous = zero
    for k in range(len(sched.boundaries) - 1):
        t0, t1 = sched.boundaries[k], min(sched.boundaries[k + 1], t_end)
        if t0 >= t_end:
            break
        u = sched.values[k, 0]
        if model.jump_row is not None:
            model.jump_row(x, params[0], previous, u)
        previous = u
        grid = np.arange(math.ceil(t0), math.floor(t1) + 1, 1.0)
        sol = scipy_integrate.solve_ivp(
            lambda t, y, u=u: model.rhs(t, y[None, :], params, u[None, :])[0],
            (t0, t1),
            x,
            method="Radau",
            rtol=1e-10,
            atol=1e-10,
            t_eval=grid[(grid >= t0) & (grid <= t1)],
        )
        assert sol.success
        for t, y in zip(sol.t, sol.y.T, strict=True):
            if times and t == times[-1]:
                states[-1] = y  # the state at a boundary is the one after its jump
            else:
                times.append(float(t))
                states.append(y)
        x = sol.y[:, -1].copy() if sol.t.size and sol.t[-1] == t1 else x
        if sol.t.size == 0 or sol.t[-1] != t1:
            end = scipy_integrate.solve_ivp(
                lambda t, y, u=u: model.rhs(t, y[None, :], params, u[None, :])[0],
                (t0, t1),
                x,
                method="Radau",
                rtol=1e-10,
                atol=1e-10,
            )
            x = end.y[:, -1].copy()
    return np.array(times), np.array(states)


@pytest.mark.parametrize("name", ["adolescent#003", "child#007"])
def test_uva_padova_matches_solve_ivp_radau(name: str) -> None:
    params = UVA.preset(name)
    t_end = 480.0
    ref_t, ref_x = _solve_ivp(UVA, params, SCENARIO, t_end)
    vg = params[0, UVA.parameter_names().index("vg_dl_per_kg")]
    # stepping to every output time (1 min apart: steps of at most 1 min), then the default:
    # output times read from the continuous extension, steps as long as the tolerances allow
    # (here up to 6 min, at dopri5's stability limit for the insulin compartments), where the
    # liver and plasma insulin states (fast, -0.8/min) are off by up to 4.5e-4 of their scale
    # (3e-3 pmol/kg: 3x atol; stepping to 10-min outputs gives 4.7e-4 as well)
    for method, options, state_tol in (
        ("dopri5", {"dense": False}, 1e-4),
        ("rk4", {"max_step": 0.05}, 1e-4),
        ("dopri5", {}, 1e-3),
    ):
        r = simulate(UVA, params, SCENARIO, t_end=t_end, times=ref_t, method=method, **options)
        assert np.array_equal(r.times, ref_t)
        bg_err = np.abs(r.states[0, :, 3] - ref_x[:, 3]).max() / vg
        assert bg_err < 0.005, (method, options, bg_err)
        # every state, relative to its largest value over the run
        rel = np.abs(r.states[0] - ref_x) / (np.abs(ref_x).max(axis=0) + 1.0)
        assert rel.max() < state_tol, (method, options, rel.max())


def test_dense_output_matches_stepping_to_the_output_times() -> None:
    """A day with four meals (the simglucose reference day) on a 5-min grid, all 30 patients:
    glucose within 0.01 mg/dL (measured 0.0065; each is within 0.004 of simglucose)."""
    from tools.gen_simglucose_reference import SCENARIO as DAY

    day = parse_scenario(DAY)
    params = UVA.preset(UVA.preset_names())
    dense = simulate(UVA, params, day, t_end=1440, dt_out=5)
    cut = simulate(UVA, params, day, t_end=1440, dt_out=5, dense=False)
    assert dense.options["dense"] is True
    assert cut.options["dense"] is False
    assert np.abs(dense.observables["bg_mg_dl"] - cut.observables["bg_mg_dl"]).max() < 0.01
    assert np.abs(dense.observables["cgm_mg_dl"] - cut.observables["cgm_mg_dl"]).max() < 0.01
    scale = np.abs(cut.states).max(axis=1, keepdims=True) + 1.0
    assert (np.abs(dense.states - cut.states) / scale).max() < 1e-3
    # non-negative states stay non-negative between steps too
    floor = UVA.state_floor()
    assert (dense.states >= floor).all()
    # at an input boundary (a meal at 420 min) the state is the one after the jump: the
    # stomach content at the meal start, remembered by jump_row
    i = int(np.searchsorted(dense.times, 420.0))
    np.testing.assert_allclose(
        dense.states[:, i, 13], dense.states[:, i, 0] + dense.states[:, i, 1], rtol=1e-12
    )


def _quartic_rhs(t: float, x: Any, p: Any, u: Any, dx: Any) -> None:
    dx[0] = 4.0 * p[0] * t**3 + u[0]


class Quartic(Model):
    """x' = 4 a t^3 + u: x(t) = a t^4 + integral of u (a test model for the dense output)."""

    name: ClassVar[str] = "test_quartic"
    version: ClassVar[str] = "0"
    title: ClassVar[str] = "quartic"
    time_unit: ClassVar[Literal["min", "h"]] = "min"
    references: ClassVar[tuple[str, ...]] = ()
    event_types: ClassVar[frozenset[str]] = frozenset({"infusion"})
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("a", "1", "coefficient", 0.0, 10.0, Prior("fixed", 1.0)),
    )
    states: ClassVar[tuple[Variable, ...]] = (Variable("x", "1", "x"),)
    inputs: ClassVar[tuple[Variable, ...]] = (Variable("u", "1/min", "rate"),)
    observables: ClassVar[tuple[Observable, ...]] = ()
    rhs_row: ClassVar[Any] = staticmethod(_quartic_rhs)

    @classmethod
    def presets(cls) -> Mapping[str, FloatArray]:
        return {"one": np.array([1.0])}

    @classmethod
    def initial_state(cls, params: FloatArray) -> FloatArray:
        return np.zeros((params.shape[0], 1))

    @classmethod
    def schedule(cls, events: Sequence[Event], params: FloatArray, t_end: float) -> InputSchedule:
        # a rate of 1 from 3 to 4 min: an input boundary inside the run
        bounds = np.array(sorted({0.0, 3.0, 4.0, max(t_end, 5.0)}))
        values = np.zeros((len(bounds) - 1, 1, 1))
        values[bounds[:-1] == 3.0] = 1.0
        return InputSchedule(bounds, values)


def test_dense_output_is_exact_for_a_quartic() -> None:
    """Dormand-Prince 5(4) and its 4th-order continuous extension integrate x' = 4 a t^3
    exactly: the error estimate is 0, steps grow to ``max_step``, and output times between
    step ends (read from the extension) must equal a t^4 to rounding."""
    params = np.array([[1.0], [0.5]])
    times = np.array([0.0, 0.7, 2.9, 3.0, 3.25, 4.0, 6.1, 9.99, 17.3, 20.0])
    r = simulate(Quartic, params, parse_scenario([]), t_end=20.0, times=times, max_step=50.0)
    ramp = np.clip(times - 3.0, 0.0, 1.0)
    expected = params[:, :1] * times**4 + ramp
    np.testing.assert_allclose(r.states[:, :, 0], expected, rtol=1e-12, atol=1e-12)
    cut = simulate(Quartic, params, parse_scenario([]), t_end=20.0, times=times, dense=False)
    np.testing.assert_allclose(cut.states, r.states, rtol=1e-12, atol=1e-12)


def test_continuous_extension_ends_at_the_step() -> None:
    """At theta = 1 the continuous extension's weights are the step's weights b."""
    from medtwin.model import _rk4 as k

    ends = [
        (k._P10 + k._P11 + k._P12 + k._P13, k._B1),
        (k._P31 + k._P32 + k._P33, k._B3),
        (k._P41 + k._P42 + k._P43, k._B4),
        (k._P51 + k._P52 + k._P53, k._B5),
        (k._P61 + k._P62 + k._P63, k._B6),
        (k._P71 + k._P72 + k._P73, 0.0),
    ]
    for got, want in ends:
        assert got == pytest.approx(want, abs=1e-14)


def test_numpy_backend_equals_numba_rk4() -> None:
    params = UVA.preset(["adult#002", "child#001"])
    a = simulate(UVA, params, SCENARIO, t_end=120, method="rk4", max_step=0.5)
    b = simulate(UVA, params, SCENARIO, t_end=120, method="rk4", max_step=0.5, backend="numpy")
    np.testing.assert_allclose(a.states, b.states, rtol=1e-10, atol=1e-9)


def test_rows_do_not_mix_and_threads_agree() -> None:
    names = ["adolescent#001", "adult#005", "child#009"] * 50
    params = UVA.preset(names)
    together = simulate(UVA, params, SCENARIO, t_end=600, dt_out=10, threads=2)
    single = simulate(UVA, params, SCENARIO, t_end=600, dt_out=10, threads=1)
    np.testing.assert_array_equal(together.states, single.states)
    for i in (0, 1, 2):
        alone = simulate(UVA, params[i : i + 1], SCENARIO, t_end=600, dt_out=10)
        np.testing.assert_allclose(together.states[i], alone.states[0], rtol=1e-12)


def test_output_grid_and_provenance() -> None:
    r = simulate(UVA, UVA.preset("adult#001"), SCENARIO, t_end=100, dt_out=30)
    assert r.times.tolist() == [0.0, 30.0, 60.0, 90.0, 100.0]
    assert r.states.shape == (1, 5, len(UVA.states))
    assert r.provenance()["model"] == "uva_padova_2008"
    assert r.provenance()["version"] == UVA.version
    assert r.provenance()["solver"]["method"] == "dopri5"
    assert r.provenance()["scenario"]["events"][1] == {
        "type": "meal",
        "t_min": 30.0,
        "carbs_g": 52.0,
    }
    # output times that are not on event boundaries do not change the solution
    fine = simulate(UVA, UVA.preset("adult#001"), SCENARIO, t_end=100, dt_out=1)
    np.testing.assert_allclose(
        fine.states[0, [0, 30, 60, 90, 100]], r.states[0], rtol=1e-5, atol=1e-3
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"t_end": -1}, "t_end must be a positive number"),
        ({"t_end": 10, "max_step": 0}, "max_step must be a positive number"),
        ({"t_end": 10, "method": "euler"}, "unknown method 'euler'"),
        ({"t_end": 10, "times": [5, 20]}, r"output times must lie in \[0, 10\]"),
        ({"t_end": 10, "backend": "numpy"}, "numpy backend solves with method='rk4' only"),
        ({"t_end": 10, "rtol": 0}, "rtol and atol must be positive"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        simulate(UVA, UVA.preset("adult#001"), SCENARIO, **options)


def test_parameters_out_of_bounds_are_refused() -> None:
    p = UVA.preset("adult#001")
    p[0, 0] = -1.0
    with pytest.raises(ModelError, match=r"parameter set 0: bw_kg = -1.0 is outside"):
        simulate(UVA, p, SCENARIO, t_end=10)
    with pytest.raises(ModelError, match=r"takes parameters of shape \[N, "):
        simulate(UVA, np.ones((1, 3)), SCENARIO, t_end=10)


# --------------------------------------------------------------------------- a generic model
def _one_compartment_rhs(t: float, x: Any, p: Any, u: Any, dx: Any) -> None:
    dx[0] = u[0] - p[0] / p[1] * x[0]


def _amount(states: FloatArray, params: FloatArray) -> FloatArray:
    return np.asarray(states[..., 0] / params[:, 1][:, None], dtype=np.float64)


class OneCompartment(Model):
    """dA/dt = rate(t) - CL/V * A: infusions as rates (a test model, no compiled module)."""

    name: ClassVar[str] = "test_one_compartment"
    version: ClassVar[str] = "0"
    title: ClassVar[str] = "one-compartment infusion"
    time_unit: ClassVar[Literal["min", "h"]] = "h"
    references: ClassVar[tuple[str, ...]] = ()
    event_types: ClassVar[frozenset[str]] = frozenset({"infusion"})
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("cl_l_per_h", "L/h", "clearance", 0.1, 100.0, Prior("lognormal", 1.0, 0.3)),
        Parameter("v_l", "L", "volume", 1.0, 500.0, Prior("lognormal", 3.5, 0.2)),
    )
    states: ClassVar[tuple[Variable, ...]] = (Variable("a_mg", "mg", "amount"),)
    inputs: ClassVar[tuple[Variable, ...]] = (Variable("rate_mg_per_h", "mg/h", "infusion"),)
    observables: ClassVar[tuple[Observable, ...]] = (
        Observable("c_mg_l", "mg/L", "concentration", (), _amount),
    )
    rhs_row: ClassVar[Any] = staticmethod(_one_compartment_rhs)

    @classmethod
    def presets(cls) -> Mapping[str, FloatArray]:
        return {"typical": np.array([4.0, 50.0])}

    @classmethod
    def initial_state(cls, params: FloatArray) -> FloatArray:
        return np.zeros((params.shape[0], 1))

    @classmethod
    def schedule(cls, events: Sequence[Event], params: FloatArray, t_end: float) -> InputSchedule:
        pieces = [
            (start / 60.0, (start + duration) / 60.0, float(e["amount_mg"]) / (duration / 60.0))
            for e in events
            for start, duration in e.doses()
        ]
        cuts = sorted({0.0, t_end, *(a for a, _, _ in pieces), *(b for _, b, _ in pieces)})
        bounds = np.array(cuts)
        values = np.zeros((len(cuts) - 1, 1, 1))
        for a, b, rate in pieces:
            values[(bounds[:-1] >= a) & (bounds[:-1] < b), 0, 0] += rate
        return InputSchedule(bounds, values)


def test_generic_model_matches_the_closed_form() -> None:
    s = parse_scenario(
        [
            {
                "type": "infusion",
                "drug": "vancomycin",
                "t_h": 0,
                "amount_mg": 1000,
                "duration_h": 1,
                "every_h": 12,
                "count": 3,
            }
        ]
    )
    params = np.array([[4.0, 50.0], [8.0, 70.0]])
    r = simulate(OneCompartment, params, s, t_end=36.0, dt_out=0.5)
    for n, (cl, v) in enumerate(params):
        k = cl / v
        expected = np.zeros_like(r.times)
        for start in (0.0, 12.0, 24.0):
            rate = 1000.0
            on = np.clip(r.times - start, 0.0, 1.0)  # hours infused so far
            after = np.clip(r.times - start - 1.0, 0.0, None)
            amount_end = rate / k * (1.0 - np.exp(-k * on))
            expected += np.where(r.times >= start, amount_end * np.exp(-k * after), 0.0)
        np.testing.assert_allclose(r.states[n, :, 0], expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(r.observables["c_mg_l"][n], expected / v, rtol=1e-6, atol=1e-7)
    # the batched rhs is the per-row kernel over rows
    d = OneCompartment.rhs(0.0, np.array([[10.0], [20.0]]), params, np.array([[1.0], [0.0]]))
    np.testing.assert_allclose(d[:, 0], [1.0 - 0.08 * 10.0, -8.0 / 70.0 * 20.0])
    # priors sample inside the bounds
    draws = OneCompartment.sample_prior(500, seed=3)
    assert draws.shape == (500, 2)
    assert (draws >= OneCompartment.lower_bounds()).all()
    assert (draws <= OneCompartment.upper_bounds()).all()


def test_bound_loops_are_named_after_their_kernels() -> None:
    """numba's disk cache is keyed by the loop's name: a changed kernel must change it."""
    numba = pytest.importorskip("numba")
    from medtwin.model._rk4 import bind, no_jump

    def name(kernel: Any, **options: Any) -> str:
        loop = bind(numba.njit(kernel), no_jump, {"__name__": "medtwin_test"}, **options)
        return str(loop.py_func.__qualname__)

    assert name(_quartic_rhs) == name(_quartic_rhs)
    assert name(_quartic_rhs) != name(_one_compartment_rhs)
    assert name(_quartic_rhs) != name(_quartic_rhs, n_states=1)
    assert name(_quartic_rhs).startswith("drive_dopri5_medtwin_test_")
