"""The physiology behind the synthetic check-ups: weight from Hall 2011, vitals from Ursino 1998.

:mod:`medtwin.synth.generator` draws each adult's traits for the last check-up from population
tables (NHANES) and, before this module existed, walked them back through the earlier visits
with ageing slopes. Two of those traits now come from medtwin's own mechanistic models, so that
the record of a synthetic person is that of one body that the models describe:

**Body weight** (:func:`plan_weights`): each adult is an instance of the Hall et al. 2011
energy-balance model (:class:`medtwin.physiology.body_weight.Hall2011BodyWeight`), in energy
balance at their weight at the first check-up. Their energy intake then drifts linearly with
time, ``dEI(t) = s t`` (kcal/day, ``s`` in kcal/day per year; applied as monthly steps, each
month at the ramp's mean over that month), and ``s`` is solved per person so that the model's
weight at the last check-up is the weight drawn there. The weight at every check-up is the
model's weight on that day; the generator adds the visit-to-visit variation and rounds to
0.1 kg. Solved by secant steps on ``s`` (the weight at the end is nearly linear in ``s``):
three runs of all people at once, advanced with :class:`medtwin.model.stepper.Stepper` (a
person's own intake is an input row of their own, which a shared scenario cannot hold).

**Blood pressure and heart rate** (:func:`plan_vitals`): each check-up is a resting steady state
of the mean-flow cardiovascular model with carotid baroreflex
(:class:`medtwin.physiology.cardiovascular.CardiovascularUrsino`, scaled to the person's blood
volume by :func:`~medtwin.physiology.cardiovascular.for_patient`). At each check-up the
person's untreated pressures and heart rate (the target) set four parameters:

- the systemic peripheral resistances ``rsp0``, ``rep0`` in proportion to the target mean
  arterial pressure over the model's resting mean pressure (in established essential
  hypertension cardiac output is normal and the raised pressure is carried by a raised
  peripheral resistance: Lund-Johansen P, Clin Sci 1980;59 Suppl 6:343s-354s);
- the baroreflex set point ``pn_mmhg``, solved so that the steady-state mean pressure is the
  target (the carotid baroreflex resets to the prevailing pressure in chronic hypertension:
  Krieger EM, Clin Exp Pharmacol Physiol Suppl 1989;15:3-17);
- the basal heart period ``t0_s`` (and, for a resting rate beyond what ``t0_s``'s bounds give,
  a lower vagal gain ``g_tv_s2``: a fast resting rate is a low vagal tone), solved so that the
  heart rate is the target;
- the pulse compliance ``pulse_compliance_ml_per_mmhg`` (pulse pressure = stroke volume /
  compliance, Chemla et al. 1998), solved so that the pulse pressure is the target.

Antihypertensive treatment is the model's own ``drug_effect`` on ``svr`` (both peripheral
resistances multiplied by ``1 + change_pct / 100``): one change per person, solved so that at
the last check-up the treated steady state lowers the mean pressure by the drawn drug effect
(``(dSBP + 2 dDBP) / 3``); every treated check-up is the treated steady state of that visit's
parameters, so the baroreflex buffers the fall (and raises the heart rate) as the model does.

All four are solved per row by eight damped Newton steps between short runs of the model from
the last state (:class:`~medtwin.model.stepper.Stepper`, 30 s each at tolerances 1e-5/1e-4),
then settled for 3 minutes at the model's own tolerances; the first state is the published
parameters' resting state scaled to the row's blood volume. Only public parameters, inputs,
state units and observables of the model are used, so a change of the model's internals changes
the numbers but not this code. The reported values are the
model's observables at the settled state, whatever the target was. They agree with the steady
state that ``initial_state`` computes for the same parameters within about 0.25 mmHg: the
mean-flow heart keeps the ventricles' volume as a constant state, which ``initial_state``
recomputes at its settled pressures and these short runs keep from their start.

Who is outside the models' populations keeps the statistical path of the generator, with the
reason (:attr:`WeightPlan.refused`, :attr:`VitalsPlan.refused`): BMI outside 16-60 kg/m2 at the
first or last check-up (Hall), weight outside what :func:`for_patient` scales to (blood volume
2500-9000 mL at 75 mL/kg for men, 65 for women) for the circulation. The generator makes no
children (all check-ups are at 18 or over), so Hall's refusal of children never applies.

References
----------
.. [1] Hall KD, Sacks G, Chandramohan D, et al. Quantification of the effect of energy imbalance
   on bodyweight. Lancet 2011;378:826-837 (and its web appendix).
.. [2] Ursino M. Interaction between carotid baroregulation and the pulsating heart: a
   mathematical model. Am J Physiol 1998;275:H1733-H1747.
.. [3] Lund-Johansen P. Haemodynamics in essential hypertension. Clin Sci 1980;59 Suppl
   6:343s-354s (not checked against the full text here).
.. [4] Krieger EM. Arterial baroreceptor resetting in hypertension. Clin Exp Pharmacol Physiol
   Suppl 1989;15:3-17 (not checked against the full text here).
.. [5] Chemla D, Hebert JL, Coirault C, et al. Total arterial compliance estimated by stroke
   volume-to-aortic pulse pressure ratio in humans. Am J Physiol 1998;274:H500-H505.

Examples
--------
>>> plan = plan_weights([WeightRequest("male", 40.0, 1.8, 85.0, 88.0, (0, 365, 730))])[0]
>>> [round(w, 1) for w in plan.weights_kg]
[85.0, 86.0, 88.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final, Literal

import numpy as np

from medtwin.model.base import FloatArray, InputSchedule, ModelError

__all__ = [
    "MONTH_DAYS",
    "VitalsPlan",
    "VitalsRequest",
    "WeightPlan",
    "WeightRequest",
    "plan_vitals",
    "plan_weights",
]

Sex = Literal["female", "male"]

MONTH_DAYS: Final = 365.25 / 12.0
"""Length of one step of the intake ramp, days."""

_SECANT_RUNS: Final = 3
_CARDIO_ITERATIONS: Final = 8
_CARDIO_STEP_MIN: Final = 0.5
_CARDIO_SETTLE_MIN: Final = 3.0
_LOOSE_RTOL: Final = 1e-5
_LOOSE_ATOL: Final = 1e-4
"""Tolerances of the solving steps (the final settling uses the model's own)."""


# --------------------------------------------------------------------------------------------
# body weight: Hall 2011
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WeightRequest:
    """One adult whose check-up weights the Hall model should give.

    ``visit_days`` are the check-ups in days after the first one (the first is 0, increasing);
    ``age_years``, ``height_m`` and ``first_weight_kg`` describe the person at the first
    check-up; ``last_weight_kg`` is the weight the model must reach at the last one.
    """

    sex: Sex
    age_years: float
    height_m: float
    first_weight_kg: float
    last_weight_kg: float
    visit_days: tuple[int, ...]
    physical_activity_level: float = 1.6


@dataclass(frozen=True, slots=True)
class WeightPlan:
    """The Hall model's answer for one :class:`WeightRequest`.

    ``params`` is the person's parameter row (``Hall2011BodyWeight``; empty when refused),
    ``intake_slope_kcal_per_day_per_year`` the drift ``s`` of the energy intake,
    ``weights_kg`` the model's weight at each check-up (empty when refused), ``refused`` the
    reason the model was not used (``None`` when it was).
    """

    params: FloatArray
    intake_slope_kcal_per_day_per_year: float
    weights_kg: tuple[float, ...]
    visit_days: tuple[int, ...]
    refused: str | None = None

    def events(self) -> list[dict[str, object]]:
        """The intake as medtwin scenario events: one ``diet`` event a month from the first
        check-up to the last (``intake_change_kcal_per_day`` = the ramp's mean over the month).

        With these, ``simulate(Hall2011BodyWeight, params, parse_scenario(events), ...)`` gives
        :attr:`weights_kg` at the check-ups (what the tests check).
        """
        end = self.visit_days[-1] if self.visit_days else 0
        months = _months(float(end))
        return [
            {
                "type": "diet",
                "t_d": m * MONTH_DAYS,
                "intake_change_kcal_per_day": _ramp_step(
                    self.intake_slope_kcal_per_day_per_year, m
                ),
            }
            for m in range(months)
        ]


def _months(end_day: float) -> int:
    """Number of monthly intake steps that cover ``[0, end_day]``."""
    return max(1, math.ceil(end_day / MONTH_DAYS - 1e-9))


def _ramp_step(slope: float, month: int) -> float:
    """Mean of ``slope * t`` (t in years) over month ``month``: ``slope (month + 1/2) / 12``."""
    return float(slope * (month + 0.5) / 12.0)


def _observable(model: Any, name: str, states: FloatArray, params: FloatArray) -> FloatArray:
    """Observable ``name`` of ``model`` at states ``[N, S]`` (through the public contract)."""
    for observable in model.observables:
        if observable.name == name:
            return np.asarray(observable.function(states[:, None, :], params)[:, 0])
    raise ModelError(f"model {model.name!r} has no observable {name!r}")


def _input_index(model: Any, name: str) -> int:
    names = [variable.name for variable in model.inputs]
    if name not in names:
        raise ModelError(f"model {model.name!r} has no input {name!r}")
    return names.index(name)


def plan_weights(requests: Sequence[WeightRequest]) -> list[WeightPlan]:
    """Solve every request's intake drift and return the Hall model's check-up weights.

    All people are simulated together (one input row each). A person the model refuses
    (outside its population, e.g. a BMI over 60 kg/m2) gets a plan with ``refused`` set.

    Parameters
    ----------
    requests
        The people.

    Returns
    -------
    list[WeightPlan]
        One plan per request, in order.

    Examples
    --------
    >>> plan = plan_weights([WeightRequest("female", 30.0, 1.65, 60.0, 62.0, (0, 400))])[0]
    >>> round(plan.weights_kg[-1], 2), plan.refused is None
    (62.0, True)
    """
    from medtwin.physiology.body_weight import Hall2011BodyWeight, params_for

    rows: list[FloatArray] = []
    index: list[int] = []
    plans: list[WeightPlan | None] = [None] * len(requests)
    empty = np.zeros(0)
    for i, request in enumerate(requests):
        try:
            row = params_for(
                request.sex,
                request.age_years,
                request.height_m,
                request.first_weight_kg,
                request.physical_activity_level,
            )
            # the end of the trajectory must lie in the population too
            params_for(
                request.sex,
                request.age_years,
                request.height_m,
                request.last_weight_kg,
                request.physical_activity_level,
            )
        except ModelError as error:
            plans[i] = WeightPlan(empty, 0.0, (), request.visit_days, refused=str(error))
            continue
        rows.append(row[0])
        index.append(i)
    if rows:
        params = np.ascontiguousarray(np.vstack(rows))
        chosen = [requests[i] for i in index]
        days = [np.asarray(r.visit_days, dtype=np.float64) for r in chosen]
        first = params[:, list(Hall2011BodyWeight.parameter_names()).index("weight_kg")]
        change = np.array([r.last_weight_kg for r in chosen]) - first
        years = np.array([d[-1] / 365.25 for d in days])
        slopes = np.zeros(len(chosen))
        # Secant on s: W_end(0) = W(0) exactly (energy balance), so the first line goes through
        # the origin; a first guess of about 22 kcal/day per kg (Hall's rule of thumb for the
        # steady state) over the ramp's lagged mean.
        guess = 22.0 * change / np.maximum(years - 0.5, 0.5)
        points = [(np.zeros(len(chosen)), np.zeros(len(chosen)))]
        trial = np.where(years > 0, guess, 0.0)
        weights: list[FloatArray] = []
        for _ in range(_SECANT_RUNS):
            weights = _run_hall(params, trial, days)
            reached = np.array([w[-1] for w in weights]) - first
            points.append((trial.copy(), reached))
            (s0, r0), (s1, r1) = points[-2], points[-1]
            denominator = r1 - r0
            safe = np.abs(denominator) > 1e-12
            slopes = trial
            trial = np.where(
                safe, s1 + (change - r1) * (s1 - s0) / np.where(safe, denominator, 1.0), s1
            )
        for j, i in enumerate(index):
            plans[i] = WeightPlan(
                params=params[j].copy(),
                intake_slope_kcal_per_day_per_year=float(slopes[j]),
                weights_kg=tuple(float(w) for w in weights[j]),
                visit_days=requests[i].visit_days,
            )
    return [plan for plan in plans if plan is not None]


def _run_hall(
    params: FloatArray, slopes: FloatArray, days: Sequence[FloatArray]
) -> list[FloatArray]:
    """Weights at each row's check-up days under its intake ramp (Stepper, all rows at once)."""
    from medtwin.model.stepper import Stepper
    from medtwin.physiology.body_weight import Hall2011BodyWeight as Hall

    n = params.shape[0]
    end = max(float(d[-1]) for d in days)
    months = _months(end)
    base = Hall.schedule((), params, max(end, 1.0)).values[0]  # [N, I]: the baseline inputs
    bounds = np.append(np.arange(months) * MONTH_DAYS, max(end, months * MONTH_DAYS))
    values = np.repeat(base[None, :, :], months, axis=0)
    intake = _input_index(Hall, "intake_change_kcal_per_day")
    values[:, :, intake] = (np.arange(months)[:, None] + 0.5) / 12.0 * slopes[None, :]
    schedule = InputSchedule(bounds, np.ascontiguousarray(values))
    x = Hall.initial_state(params)
    out = [np.empty(len(d)) for d in days]
    wanted: dict[float, list[tuple[int, int]]] = {}
    for row, d in enumerate(days):
        for k, day in enumerate(d.tolist()):
            wanted.setdefault(float(day), []).append((row, k))
    stepper = Stepper(Hall)
    h = stepper.new_step_sizes(n)
    now = 0.0
    for stop in sorted(wanted):
        stepper.advance(x, params, schedule, now, stop, h)
        now = stop
        weight = _observable(Hall, "weight_kg", x, params)
        for row, k in wanted[stop]:
            out[row][k] = weight[row]
    return out


# --------------------------------------------------------------------------------------------
# blood pressure and heart rate: Ursino 1998
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VitalsRequest:
    """One adult's untreated resting pressures and heart rate at each check-up.

    ``treated_from`` is the first check-up at which an antihypertensive acts (``None``: never);
    ``systolic_drop_mm_hg`` and ``diastolic_drop_mm_hg`` are the drug's effect at the last
    check-up.
    ``weight_kg`` and ``age_years`` scale the circulation (:func:`for_patient`).
    """

    sex: Sex
    age_years: float
    weight_kg: float
    systolic_mm_hg: tuple[float, ...]
    diastolic_mm_hg: tuple[float, ...]
    heart_rate_per_min: float
    treated_from: int | None = None
    systolic_drop_mm_hg: float = 0.0
    diastolic_drop_mm_hg: float = 0.0


@dataclass(frozen=True, slots=True)
class VitalsPlan:
    """The circulation model's resting steady state at each check-up.

    ``params`` (``[visits, P]``) are the parameters in force at each check-up (at a treated
    check-up: with the reset set point and the treated pulse compliance), ``svr_change_pct``
    the drug effect on the peripheral resistances (``drug_effect``, target ``svr``) at the
    check-ups marked in ``treated``, and the pressures and rates the model's observables
    (``sbp_mmhg``, ``dbp_mmhg``, ``heart_rate_per_min``) at the settled state: the steady
    state that ``initial_state(params)`` followed by that drug effect reaches.
    """

    params: FloatArray
    systolic_mm_hg: tuple[float, ...]
    diastolic_mm_hg: tuple[float, ...]
    heart_rate_per_min: tuple[float, ...]
    treated_from: int | None = None
    svr_change_pct: float = 0.0
    refused: str | None = None
    treated: tuple[bool, ...] = field(default=())


@lru_cache(maxsize=1)
def _resting_preset() -> tuple[FloatArray, FloatArray]:
    """The published parameters (``adult_70kg``) and their resting steady state."""
    from medtwin.physiology.cardiovascular import CardiovascularUrsino as Cardio

    p = np.atleast_2d(Cardio.preset("adult_70kg"))
    return p, Cardio.initial_state(p)


def _resting_mean_pressure() -> float:
    """The model's resting mean arterial pressure with the published parameters (mmHg)."""
    from medtwin.physiology.cardiovascular import CardiovascularUrsino as Cardio

    p, x = _resting_preset()
    return float(_observable(Cardio, "map_mmhg", x, p)[0])


def _scaled_resting_states(params: FloatArray) -> FloatArray:
    """A start for each row: the preset's resting state scaled to the row's blood volume.

    :func:`~medtwin.physiology.cardiovascular.for_patient` scales every volume by the ratio of
    blood volumes and every resistance and elastance by its inverse, so that pressures stay
    those of the preset; the states are scaled the same way, by their units (``mL``: times the
    ratio; per ``mL``: divided by it). Rows whose scaled state does not hold the row's blood
    volume (``blood_volume_ml`` observable) start from ``initial_state`` instead.
    """
    from medtwin.physiology.cardiovascular import CardiovascularUrsino as Cardio

    preset, resting = _resting_preset()
    volume = list(Cardio.parameter_names()).index("blood_volume_ml")
    ratio = params[:, volume] / preset[0, volume]
    power = np.array(
        [1.0 if v.unit == "mL" else -1.0 if v.unit.endswith("/mL") else 0.0 for v in Cardio.states]
    )
    x = np.ascontiguousarray(resting[0][None, :] * ratio[:, None] ** power[None, :])
    held = _observable(Cardio, "blood_volume_ml", x, params)
    off = np.abs(held - params[:, volume]) > 1e-6 * params[:, volume]
    if off.any():
        x[off] = Cardio.initial_state(params[off])
    return x


def plan_vitals(requests: Sequence[VitalsRequest]) -> list[VitalsPlan]:
    """The resting blood pressure and heart rate of every check-up from the circulation model.

    Parameters
    ----------
    requests
        The people (see :class:`VitalsRequest`).

    Returns
    -------
    list[VitalsPlan]
        One plan per request, in order; ``refused`` says why a person was left out.

    Examples
    --------
    >>> plan = plan_vitals([VitalsRequest("male", 50, 80, (130.0,), (82.0,), 70.0)])[0]
    >>> round(plan.systolic_mm_hg[0]), round(plan.diastolic_mm_hg[0]), round(plan.heart_rate_per_min[0])
    (130, 82, 70)
    """
    from medtwin.physiology.cardiovascular import CardiovascularUrsino as Cardio
    from medtwin.physiology.cardiovascular import for_patient

    names = list(Cardio.parameter_names())
    col = {name: names.index(name) for name in names}
    resistances = [col["rsp0_mmhg_s_per_ml"], col["rep0_mmhg_s_per_ml"]]
    set_point, period, vagal = col["pn_mmhg"], col["t0_s"], col["g_tv_s2"]
    compliance = col["pulse_compliance_ml_per_mmhg"]
    lower = np.array([p.lower for p in Cardio.parameters])
    upper = np.array([p.upper for p in Cardio.parameters])
    rest_map = _resting_mean_pressure()

    plans: list[VitalsPlan | None] = [None] * len(requests)
    # rows: one untreated row per check-up, one treated row per treated check-up
    base_rows: list[FloatArray] = []
    owner: list[int] = []  # request index of each row
    visit_of: list[int] = []
    treated_row: list[bool] = []
    for i, request in enumerate(requests):
        try:
            base = for_patient(
                age_years=request.age_years, weight_kg=request.weight_kg, sex=request.sex
            )[0]
        except ModelError as error:
            plans[i] = VitalsPlan(np.zeros((0, len(names))), (), (), (), refused=str(error))
            continue
        for visit in range(len(request.systolic_mm_hg)):
            base_rows.append(base)
            owner.append(i)
            visit_of.append(visit)
            treated_row.append(False)
        if request.treated_from is not None:
            for visit in range(request.treated_from, len(request.systolic_mm_hg)):
                base_rows.append(base)
                owner.append(i)
                visit_of.append(visit)
                treated_row.append(True)
    if not base_rows:
        return [plan for plan in plans if plan is not None]

    base = np.vstack(base_rows)
    owners = np.array(owner)
    visits = np.array(visit_of)
    treated = np.array(treated_row)
    n = base.shape[0]
    systolic = np.array(
        [requests[o].systolic_mm_hg[v] for o, v in zip(owner, visit_of, strict=True)]
    )
    diastolic = np.array(
        [requests[o].diastolic_mm_hg[v] for o, v in zip(owner, visit_of, strict=True)]
    )
    rate = np.array([requests[o].heart_rate_per_min for o in owner])
    pulse = np.maximum(systolic - diastolic, 10.0)
    mean = diastolic + pulse / 3.0
    # the untreated twin of each row (itself for an untreated row)
    key = {
        (o, v): r
        for r, (o, v, t) in enumerate(zip(owner, visit_of, treated_row, strict=True))
        if not t
    }
    twin = np.array([key[(o, v)] for o, v in zip(owner, visit_of, strict=True)])
    # the row whose treated mean pressure defines each person's drug effect: the last check-up
    last_treated = {
        o: r
        for r, (o, v, t) in enumerate(zip(owner, visit_of, treated_row, strict=True))
        if t and v == len(requests[o].systolic_mm_hg) - 1
    }
    anchor = np.array([last_treated.get(o, -1) for o in owner])
    drops = np.array(
        [(requests[o].systolic_drop_mm_hg, requests[o].diastolic_drop_mm_hg) for o in owner]
    )
    mean_drop = drops[:, 1] + (drops[:, 0] - drops[:, 1]) / 3.0
    pulse_drop = drops[:, 0] - drops[:, 1]

    p = base.copy()
    p[:, resistances] = np.clip(
        base[:, resistances] * (mean / rest_map)[:, None], lower[resistances], upper[resistances]
    )
    p[:, set_point] = np.clip(mean, lower[set_point], upper[set_point])
    p = np.ascontiguousarray(p)
    factor = np.ones(n)  # drug factor on the resistances (treated rows)

    x = _scaled_resting_states(p)

    svr = _input_index(Cardio, "svr_factor")
    schedule_base = Cardio.schedule((), p, 1.0).values[0]  # [N, I]
    from medtwin.model.stepper import Stepper

    loose = Stepper(Cardio, rtol=_LOOSE_RTOL, atol=_LOOSE_ATOL)
    stepper = Stepper(Cardio)
    gain = np.full(n, 0.8)  # d MAP / d pn, updated by secant
    drug_gain = np.full(n, 0.8)  # d ln MAP / d ln factor
    stretch = np.ones(n)  # treated pulse compliance / untreated (per person)
    previous: tuple[FloatArray, FloatArray, FloatArray] | None = None

    def observe() -> tuple[FloatArray, FloatArray, FloatArray]:
        sbp = _observable(Cardio, "sbp_mmhg", x, p)
        dbp = _observable(Cardio, "dbp_mmhg", x, p)
        hr = _observable(Cardio, "heart_rate_per_min", x, p)
        return sbp, dbp, hr

    def advance(minutes: float, solver: Stepper) -> None:
        values = np.repeat(schedule_base[None, :, :], 1, axis=0).copy()
        values[0, :, svr] = factor
        schedule = InputSchedule(np.array([0.0, minutes]), np.ascontiguousarray(values))
        h = solver.new_step_sizes(n)
        solver.advance(x, p, schedule, 0.0, minutes, h)

    untreated = ~treated
    for _ in range(_CARDIO_ITERATIONS):
        sbp, dbp, hr = observe()
        now_map = dbp + (sbp - dbp) / 3.0
        # set point (untreated rows): secant gain, damped
        if previous is not None:
            d_pn = p[:, set_point] - previous[0]
            d_map = now_map - previous[1]
            moved = np.abs(d_pn) > 1e-6
            gain = np.where(moved, np.clip(d_map / np.where(moved, d_pn, 1.0), 0.2, 1.5), gain)
            d_f = np.log(factor) - np.log(previous[2])
            moved_f = np.abs(d_f) > 1e-9
            drug_gain = np.where(
                moved_f,
                np.clip(
                    (np.log(now_map) - np.log(previous[1])) / np.where(moved_f, d_f, 1.0),
                    0.05,
                    1.5,
                ),
                drug_gain,
            )
        previous = (p[:, set_point].copy(), now_map.copy(), factor.copy())
        step = np.where(untreated, (mean - now_map) / gain, 0.0)
        wanted = p[:, set_point] + step
        p[:, set_point] = np.clip(wanted, lower[set_point], upper[set_point])
        beyond = wanted - p[:, set_point]  # what the set point's bounds could not take
        p[:, resistances] = np.clip(
            p[:, resistances] * (1.0 + 0.7 * beyond / now_map)[:, None],
            lower[resistances],
            upper[resistances],
        )
        # heart period, then vagal tone where the period's lower bound is reached
        wanted_period = p[:, period] + np.where(untreated, 60.0 / rate - 60.0 / hr, 0.0)
        p[:, period] = np.clip(wanted_period, lower[period], upper[period])
        short = np.minimum(wanted_period - p[:, period], 0.0)
        p[:, vagal] = np.clip(
            p[:, vagal] * (1.0 + 2.0 * short * rate / 60.0), lower[vagal], upper[vagal]
        )
        # pulse compliance: pulse pressure = stroke volume / compliance
        p[:, compliance] = np.clip(
            p[:, compliance] * np.where(untreated, (sbp - dbp) / pulse, 1.0),
            lower[compliance],
            upper[compliance],
        )
        # treated rows: the untreated parameters of their check-up, the set point reset by the
        # intended fall of the mean pressure (chronic resetting, as for the hypertension), the
        # pulse compliance scaled by the person's factor (compliance rises at a lower
        # distending pressure) and the person's drug factor on the resistances; factor and
        # compliance are solved on the last check-up's treated mean and pulse pressures
        has_anchor = anchor >= 0
        at = np.maximum(anchor, 0)
        p[treated] = p[twin[treated]]
        reset = p[twin, set_point] - mean_drop[at]
        p[treated, set_point] = np.clip(reset[treated], lower[set_point], upper[set_point])
        new_factor = factor[at] * np.exp(
            (np.log(mean[at] - mean_drop[at]) - np.log(now_map[at])) / drug_gain[at]
        )
        factor = np.where(treated & has_anchor, np.clip(new_factor, 0.2, 1.0), factor)
        new_stretch = stretch[at] * (sbp - dbp)[at] / np.maximum(pulse[at] - pulse_drop[at], 10.0)
        stretch = np.where(treated & has_anchor, np.clip(new_stretch, 0.5, 3.0), stretch)
        p[treated, compliance] = np.clip(
            p[treated, compliance] * stretch[treated], lower[compliance], upper[compliance]
        )
        advance(_CARDIO_STEP_MIN, loose)
    advance(_CARDIO_SETTLE_MIN, stepper)
    sbp, dbp, hr = observe()

    for i, request in enumerate(requests):
        if plans[i] is not None:
            continue
        count = len(request.systolic_mm_hg)
        mine = np.nonzero(owners == i)[0]
        plain = {int(visits[r]): int(r) for r in mine if not treated[r]}
        drugged = {int(visits[r]): int(r) for r in mine if treated[r]}
        shown = [drugged.get(v, plain[v]) for v in range(count)]
        change = 0.0
        if drugged:
            change = 100.0 * (float(factor[next(iter(drugged.values()))]) - 1.0)
        plans[i] = VitalsPlan(
            params=p[shown].copy(),
            systolic_mm_hg=tuple(float(sbp[r]) for r in shown),
            diastolic_mm_hg=tuple(float(dbp[r]) for r in shown),
            heart_rate_per_min=tuple(float(hr[r]) for r in shown),
            treated_from=request.treated_from,
            svr_change_pct=change,
            treated=tuple(v in drugged for v in range(count)),
        )
    return [plan for plan in plans if plan is not None]
