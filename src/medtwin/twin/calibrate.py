"""Calibration: a model's parameters fitted to one patient's own data, with their uncertainty.

:func:`calibrate` finds the maximum a posteriori (MAP) parameters of a :class:`~medtwin.model.Model`
given a patient's readings of one observable, or of several at once
(:class:`~medtwin.twin.data.PatientData`), and the population priors the model declares, then
approximates the posterior around it (Laplace).

- **Several observables** (blood pressures and heart rate; weights and body fat): each has its
  own Student-t scale and autocorrelation time, and the log-likelihood is their sum. Readings
  of a resting steady state (:attr:`FitSpec.steady`) are compared with the model's resting
  state, whatever their time.

- **What is fitted.** A few parameters (``fit``); every other parameter stays at a *base* set: by
  default ("nearest") the preset that fits the readings best (presets are screened on the data,
  the best ``ceil(starts / 2)`` are each calibrated from two starts, and the best calibrated one
  wins), or the prior medians, a named preset or a given vector. A model may register a fit
  specification (:class:`FitSpec`) that names the default fitted parameters and solves derived
  parameters again after a change (UVA/Padova: the basal steady state, see
  :mod:`medtwin.twin._uva_padova_fit`).
- **Space.** The search runs over the logarithms of the fitted parameters within their bounds;
  the prior is the model's :class:`~medtwin.model.Prior` transformed to that space (a log-normal
  prior is a normal one there).
- **Likelihood.** Readings minus the model's prediction are Student-t with ``nu = 4`` degrees of
  freedom and a scale estimated from the residuals (EM for the t scale): heavy tails, so that an
  unannounced meal or a sensor artefact moves the fit little. CGM errors are autocorrelated
  (the sensor error model is AR(1) at 15 min) and so are model errors; the log-likelihood is
  divided by the integrated autocorrelation time ``tau`` of the residuals (in readings; Sokal's
  windowed estimator), the effective-sample-size correction, so that the posterior is not as
  narrow as if the ~2,000 readings of a week were independent. The t scale and tau are
  re-estimated from the best start's residuals and the fit polished until they settle. A
  reading that is a bound (``PatientData.censored``: a CGM's HIGH ">400", LOW "<40") is
  censored: its likelihood is the t probability of a reading beyond the bound
  (:meth:`_Problem.terms`, [15]); the scale is estimated from the values alone.
- **Optimiser.** Levenberg-Marquardt on the iteratively reweighted (Student-t) problem, from
  several starts at once (with a single base: its own values, presets' values and prior
  draws): each iteration is one call of the batched solver (:func:`medtwin.model.simulate`)
  whose rows are the trial point of every active start and its forward-difference
  perturbations (one per fitted parameter), so the Jacobian at an accepted step comes with it.
- **Uncertainty.** The Laplace approximation at the MAP: the inverse of the Gauss-Newton Hessian
  of the negative log posterior in the fitted log space (expected Fisher information of the
  t likelihood, ``(nu + 1) / ((nu + 3) sigma^2)`` per reading, over ``tau``, plus the prior's
  Hessian). :meth:`Calibration.sample` draws full parameter vectors ``[n, P]`` for
  :func:`~medtwin.model.simulate`; :meth:`Calibration.predict` gives predictive bands with the
  reading error (Student-t, or the fitted readings' own residuals resampled).
- **Beyond the data.** The posterior is that of parameters held constant over the calibrated
  window; on a new day a person's insulin sensitivity is not the same [6]. A forecast past the
  end of the data is simulated day by day, each day's sensitivity (UVA/Padova: Vmx and kp3)
  multiplied per draw by exp(0.17 z), z ~ N(0, 1): the within-person day-to-day CV of daily
  insulin need, 17 % [7] (:attr:`FitSpec.day_to_day`).
- **Meals nobody recorded.** After the fit, the residuals are searched for unannounced meals
  (:func:`estimate_unannounced_meals`: the model's own response to a meal at each candidate
  onset, greedy selection by the Bayesian information criterion [8], sizes by non-negative
  t-weighted least squares), with the fitted parameters re-adjusted to each candidate meal
  (profiled out in the fit's linearisation [13]), so that a meal the fit has partly
  absorbed is found at its own size. The MAP is not changed by them. Beyond the data each draw eats
  such meals: a Poisson number a day whose rate has the population prior of missed meal
  boluses [9] updated by the meals found, onsets uniform within the patient's eating window
  (from the first recorded or found meal of the day to the NHANES mean gap between dinner
  and the last eating episode, 114 min, after the last [14]; :func:`eating_window`), sizes
  from the meals found (:class:`UnannouncedMeals`, :attr:`FitSpec.unannounced_meals`).
- **Two hypotheses about the excursions.** When meals are found, the MAP is also refitted with
  them as known events (same t scale and tau), with its own Laplace posterior
  (:class:`MealHypothesis`); its posterior probability against the MAP without them comes
  from the Laplace approximation of each one's evidence, the Schwarz penalty of the meals'
  onsets and sizes and the population prior odds of that many meals [10]. The predictive
  bands are the Bayesian model average of the two [11]: that share of the draws comes from
  the refit (and eats the meals found within the calibrated data). ``diagnostics
  ["robust_sd_ratio"]`` is the sandwich posterior SD (Newey-West, [12]) over the Laplace one
  of each fitted parameter: a check of the residual model, not used in the posterior.

References
----------
.. [1] Cappon G, Vettoretti M, Sparacino G, Del Favero S, Facchinetti A. ReplayBG: a digital
   twin-based methodology to identify a personalized model from type 1 diabetes data and
   simulate glucose concentrations to assess alternative therapies. IEEE Trans Biomed Eng
   2023;70(11):3227-3238 (patient-specific identification from CGM, insulin and meal records
   with population priors; basal glucose, insulin sensitivity, glucose effectiveness and
   absorption rates identified).
.. [2] Lange KL, Little RJA, Taylor JMG. Robust statistical modeling using the t distribution.
   J Am Stat Assoc 1989;84(408):881-896 (t errors, EM for the scale, IRLS weights).
.. [3] Marquardt DW. An algorithm for least-squares estimation of nonlinear parameters.
   J Soc Ind Appl Math 1963;11(2):431-441.
.. [4] Breton M, Kovatchev B. Analysis, modeling, and simulation of the accuracy of continuous
   glucose sensors. J Diabetes Sci Technol 2008;2(5):853-862 (CGM error: AR(1) + Johnson SU).
.. [5] Sokal A. Monte Carlo methods in statistical mechanics: foundations and new algorithms.
   In: Functional Integration (Cargese 1996), NATO ASI Series B 361, Springer 1997:131-192
   (integrated autocorrelation time, automatic windowing).
.. [6] Visentin R, Campos-Nanez E, Schiavon M, Lv D, Vettoretti M, Breton M, Kovatchev BP,
   Dalla Man C, Cobelli C. The UVA/Padova type 1 diabetes simulator goes from single meal to
   single day. J Diabetes Sci Technol 2018;12(2):273-281 (intra- and inter-subject variability
   of insulin sensitivity).
.. [7] Ruan Y, Thabit H, Leelarathna L, et al. Variability of insulin requirements over 12 weeks
   of closed-loop insulin delivery in adults with type 1 diabetes. Diabetes Care
   2016;39(5):830-832 (within-person CV of total daily insulin 17 %, SD 3 %).
.. [8] Schwarz G. Estimating the dimension of a model. Ann Stat 1978;6(2):461-464.
.. [9] Chase HP, Horner B, McFann K, et al. The use of insulin pumps with meal bolus alarms in
   children with type 1 diabetes to improve glycemic control. Diabetes Care
   2006;29(5):1012-1015 (missed meal boluses a week at baseline, 4.9 +- 3.7 and 4.3 +- 2.7).
.. [10] Kass RE, Raftery AE. Bayes factors. J Am Stat Assoc 1995;90(430):773-795 (Laplace
   approximation of the marginal likelihood, section 4.1.1; the Schwarz criterion, 4.1.3).
.. [11] Hoeting JA, Madigan D, Raftery AE, Volinsky CT. Bayesian model averaging: a tutorial.
   Stat Sci 1999;14(4):382-417.
.. [12] Newey WK, West KD. A simple, positive semi-definite, heteroskedasticity and
   autocorrelation consistent covariance matrix. Econometrica 1987;55(3):703-708; White H.
   Maximum likelihood estimation of misspecified models. Econometrica 1982;50(1):1-25.
.. [13] Frisch R, Waugh FV. Partial time regressions as compared with individual trends.
   Econometrica 1933;1(4):387-401; Lovell MC. Seasonal adjustment of economic time series
   and multiple regression analysis. J Am Stat Assoc 1963;58(304):993-1010 (partialling
   out); Cox DR, Reid N. Parameter orthogonality and approximate conditional inference.
   J R Stat Soc B 1987;49(1):1-39 (the partial information, section 2).
.. [14] Kant AK. Eating patterns of US adults: meals, snacks, and time of eating. Physiol
   Behav 2018;193(Pt B):270-278 (NHANES 2009-2014: mean dinnertime 6:24 pm, last eating
   episode 8:18 pm).
.. [15] Tobin J. Estimation of relationships for limited dependent variables. Econometrica
   1958;26(1):24-36 (the censored likelihood); Arellano-Valle RB, Castro LM, Gonzalez-Farias G,
   Munoz-Gajardo KA. Student-t censored regression model: properties and inference. Stat
   Methods Appl 2012;21:453-473.

>>> import numpy as np
>>> from medtwin.model import get_model, parse_scenario, simulate
>>> m = get_model("uva_padova_2008")
>>> s = parse_scenario([{"type": "basal", "u_per_h": 1.2},
...                     {"type": "meal", "t_min": 60, "carbs_g": 50},
...                     {"type": "bolus", "t_min": 60, "insulin_u": 4}])
>>> t = np.arange(0.0, 6 * 60 + 1, 5.0)
>>> y = simulate(m, m.preset("adult#001"), s, times=t, t_end=t[-1]).observables["cgm_mg_dl"][0]
>>> cal = calibrate(m, PatientData({"cgm_mg_dl": (t, y)}, scenario=s), starts=2, seed=1)
>>> cal.fitted
('gb_mg_dl', 'vmx_mg_per_kg_min_per_pmol_l', 'kp2_per_min', 'kabs_per_min')
>>> cal.sample(3, seed=0).shape == (3, len(m.parameters))
True
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from medtwin.model.base import TIME_UNIT_MIN, FloatArray, Model, ModelError, Prior
from medtwin.model.events import Event, Scenario, parse_scenario
from medtwin.model.solver import simulate
from medtwin.twin.data import DataError, PatientData

__all__ = [
    "FIT_SPECS",
    "Calibration",
    "CalibrationError",
    "FitSpec",
    "MealHypothesis",
    "PredictiveBands",
    "UnannouncedMeals",
    "calibrate",
    "eating_window",
    "estimate_unannounced_meals",
    "fit_spec",
    "integrated_autocorrelation_time",
    "meal_onsets",
    "meal_responses",
]

NU = 4.0
"""Degrees of freedom of the Student-t reading error (Lange et al. 1989 recommend 4 as a
robust default when nu is not estimated)."""

FD_STEP = 1e-3
"""Forward-difference step in log-parameter space (0.1 %): the solver's own error (rtol 1e-7,
atol 1e-3 mg/kg for UVA/Padova) is about 1e-4 mg/dL, a 1000th of the change such a step makes."""

MAX_ITER = 40
MIN_READINGS = 24
GENERIC_MIN_READINGS = 4
"""Fewest readings for a model without a fit specification (and ``k + 3`` for ``k`` fitted
parameters, :attr:`FitSpec.small_sample`)."""
CUT_GUARD_MIN = 60.0
"""A forecast simulated day by day is not cut within this many minutes after an event starts
(UVA/Padova eats a meal at 5 g/min: 120 g take 24 min; a bolus is a 1-min infusion)."""

MEAL_GRID_MIN = 15.0
"""Candidate onsets of an unannounced meal are tried every 15 minutes of the calibrated data."""

MEAL_REF_G = 20.0
"""Size of the test meal whose simulated response (from the basal steady state, no bolus) is the
kernel of the unannounced-meal search; the response is scaled linearly to other sizes."""

MEAL_KERNEL_MIN = 900.0
"""Length of that response: an unbolused 20 g meal raises UVA/Padova glucose for about 12 h
(adult#002: +30 mg/dL at 3.5 h, +1.2 mg/dL at 12 h)."""

MEAL_SEEN_MIN = 120.0
"""An onset is a candidate only if at least this much data follows it: the rise a meal makes
must be seen (UVA/Padova's CGM peaks 1-3 h after an unbolused meal; with less data after it,
a drift at the end of the data is fitted as a large meal just begun)."""

MEAL_APART_MIN = 60.0
"""Two unannounced meals are at least this far apart (eating within an hour is one occasion)."""

MEAL_CUT_MIN = 15.0
"""A drawn unannounced meal starts at least this long before the end of its simulated day, so
that it is eaten (5 g/min) within that day's segment."""


class CalibrationError(DataError):
    """The data or the options cannot be calibrated; the message names the field."""


IntArray = NDArray[np.intp]


# ---------------------------------------------------------------------------- fit specs
Complete = Callable[[type[Model], FloatArray, Sequence[int], FloatArray], FloatArray]
Prepare = Callable[[type[Model], FloatArray, Scenario], FloatArray]
Personalise = Callable[
    [type[Model], Mapping[str, Any], PatientData],
    tuple[FloatArray, PatientData, tuple[str, ...] | None],
]


def _set_columns(
    model: type[Model], base: FloatArray, idx: Sequence[int], values: FloatArray
) -> FloatArray:
    """Generic completion: the base ``[P]`` or ``[M, P]`` with the fitted columns replaced."""
    v = np.atleast_2d(values)
    p = np.array(np.broadcast_to(np.atleast_2d(base), (v.shape[0], len(model.parameters))))
    p[:, list(idx)] = v
    return p


def _keep(model: type[Model], base: FloatArray, scenario: Scenario) -> FloatArray:
    return np.array(np.atleast_2d(base), dtype=np.float64)


@dataclass(frozen=True)
class FitSpec:
    """How one model is calibrated.

    ``default_fit``: the parameters fitted when the caller does not say; ``derived``: parameters
    solved from the others (never fitted); ``complete(model, base[M or 1, P], idx, values[M, K])
    -> [M, P]`` puts fitted values into full parameter vectors (solving derived ones);
    ``prepare(model, base[N, P], scenario) -> [N, P]`` makes base sets consistent with the
    patient's known events; ``required_events``: event types the data must hold (any of them),
    with the reason; ``validate(scenario)``: a further reason to refuse the events, or None.
    """

    default_fit: tuple[str, ...] = ()
    derived: tuple[str, ...] = ()
    complete: Complete = _set_columns
    prepare: Prepare = _keep
    required_events: tuple[frozenset[str], str] | None = None
    validate: Callable[[Scenario], str | None] = lambda scenario: None
    day_to_day: Mapping[str, float] = field(default_factory=dict)
    day_min: float = 1440.0
    unannounced_meals: tuple[float, float] | None = None
    """Population prior (shape, rate in days) of the rate of unannounced meals (``meal``
    events with ``carbs_g``): with it, such meals are estimated from the residuals and drawn
    in predictions beyond the data (:class:`UnannouncedMeals`); None: not modelled."""
    unannounced_tail_min: float | None = None
    """Drawn unannounced meals start within the patient's eating window, from the first
    recorded meal of the day to this many minutes after the last (:func:`eating_window`);
    None: at any time of the day."""
    observable: str | tuple[str, ...] | None = None
    """The observable fitted by default, or several fitted jointly (each with its own
    Student-t scale and autocorrelation time; the first is the calibration's ``observable``)
    (None: ``cgm_mg_dl`` where the model has it, else the first of the model's observables
    with readings in the data)."""
    choose_observable: Callable[[PatientData], str | tuple[str, ...]] | None = None
    """The observable(s) to fit given the patient's data, where that depends on what the
    record holds (the body-weight twin adds body-fat readings when there are some); overrides
    :attr:`observable`."""
    min_readings: int = MIN_READINGS
    """Fewest readings a calibration accepts, and (:attr:`readings_per_parameter`) per fitted
    parameter."""
    readings_per_parameter: int = 3
    noise_floor: float | Mapping[str, float] = 0.0
    """The reading-error scale is estimated from the residuals but never below this (the
    observable's unit; a mapping gives one per observable): with few readings the estimate can
    collapse to the fit's own noise."""
    noise_prior: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Per observable, a prior guess of the reading-error scale and its weight in readings,
    ``(scale, nu0)``: the scale estimated from ``n`` residuals, ``s``, becomes
    ``sqrt((nu0 scale^2 + n s^2) / (nu0 + n))`` (the conjugate update of a variance; Gelman et
    al., Bayesian Data Analysis, 3rd ed., section 2.6), so that two or three readings of an
    observable do not decide its scale alone (a misfit the priors cause would otherwise widen
    the scale, which weakens the data, which widens the misfit)."""
    steady: bool = False
    """The readings are of a resting steady state (the model's :meth:`initial_state`), not a
    trajectory: every reading is compared with the steady state's observables, whatever its
    time, and no simulation over the data's span is run (a circulation fitted to clinic blood
    pressures over a year)."""
    small_sample: bool = False
    """For fits to a few readings: the residuals' scale uses the degrees of freedom left
    (``n - k`` for ``k`` fitted parameters, as an unbiased variance does) rather than ``n``,
    and the data's information in the Laplace posterior is divided by ``(n - k) / (n - k -
    2)``, the variance of the Student-t posterior of a linear model whose reading-error scale
    is estimated (Gelman A et al. Bayesian Data Analysis, 3rd ed. 2013, section 14.2: the
    marginal posterior of the coefficients is multivariate t with ``n - k`` degrees of
    freedom; the prior's information is not scaled); a fit then needs ``n >= k + 3``
    readings. :attr:`small_sample_dof` says how ``k`` is counted."""
    small_sample_dof: Literal["fitted", "residual"] = "fitted"
    """How :attr:`small_sample` counts the degrees of freedom the fit uses up: ``"fitted"``,
    every fitted parameter whole; ``"residual"``, ``tr(2 S - S S)`` of the linearised fit's
    hat matrix ``S`` (:meth:`_Problem.effective_parameters`; Hastie & Tibshirani 1990, section
    3.5), in which a parameter its prior decides uses up almost none. Every fit records both
    counts (``Calibration.diagnostics["effective_parameters"]``, ``tr S``, and
    ``["residual_dof"]``, what the rule used). Measured (each person's own Monte Carlo seed):
    the circulation twin, 60 adults, 3 visits (9 readings, 6 parameters, 2.6 effective): true
    resting SBP / DBP / HR inside the 90 % interval 0.98 / 0.97 / 0.98 and the held-out visit
    inside the band 0.92 / 0.92 / 0.92 counted ``"fitted"``, 0.85 / 0.85 / 0.83 and 0.85 /
    0.90 / 0.87 ``"residual"``; the body-weight twin, 300 adults, 8 yearly check-ups: the
    held-out year inside the band 0.887 against 0.820. The conservative count is the default:
    its bands also cover what the models leave out (an intake that drifts on beyond the last
    weight; visit-to-visit pressure variation only as the reading error)."""
    personalise: Personalise | None = None
    """``(model, characteristics, data) -> (base [P], data, fit)``: the base parameters of
    this patient from what the record says about them
    (:func:`medtwin.twin.twin.characteristics`), the data to fit (e.g. from the first reading
    on) and the parameters to fit (None: :attr:`default_fit`); :meth:`medtwin.twin.Twin.fit`
    uses it when the caller gives no base."""
    priors: Callable[[type[Model], FloatArray, PatientData], Mapping[str, Prior]] | None = None
    """``(model, base [P], data) -> {name: Prior}``: this patient's priors of fitted
    parameters from their base (``personalise``'s), in place of the population's;
    :func:`calibrate` uses those of the fitted parameters unless given ``priors``."""
    window_days: float = 7.0
    """How many days of the record a twin is fitted to by default (``medtwin twin fit``)."""
    describe: Callable[[Calibration], list[str]] | None = None
    """Lines that say what a calibration means in the model's own terms (the body-weight
    twin's habitual intake in kcal/day), printed by ``medtwin twin fit``."""
    anchored: bool = False
    """The model's initial state is the patient's at the start of the fitted data (a body's
    composition at its first weight), not a steady state any window may start from: a twin
    loaded from the store reads its data from the calibration's own start."""


def _uva_spec() -> FitSpec:
    from medtwin.twin import _uva_padova_fit as uf

    def prepare(model: type[Model], base: FloatArray, scenario: Scenario) -> FloatArray:
        return uf.prepare_base(base, scenario)[0]

    def validate(scenario: Scenario) -> str | None:
        if any(e.type == "basal" and e.t_min <= 0.0 for e in scenario.events):
            return None
        return (
            "no basal event at minute 0: the model starts at the basal steady state on the "
            "patient's basal rate (add {'type': 'basal', 't_min': 0, 'u_per_h': RATE}; "
            "without u_per_h the preset's own steady-state rate is assumed)"
        )

    def complete(
        model: type[Model], base: FloatArray, idx: Sequence[int], values: FloatArray
    ) -> FloatArray:
        b = np.atleast_2d(base)
        egp = uf.basal_egp_mg_per_kg_min(b)
        p = _set_columns(model, b, idx, values)
        return uf.basal_steady_state(p, np.broadcast_to(egp, (p.shape[0],)))

    day_sd, day_min = uf.day_to_day_log_sd()
    return FitSpec(
        day_to_day=day_sd,
        day_min=day_min,
        unannounced_meals=uf.unannounced_meal_prior(),
        unannounced_tail_min=uf.unannounced_meal_tail_min(),
        default_fit=uf.DEFAULT_FIT,
        derived=uf.DERIVED,
        complete=complete,
        prepare=prepare,
        validate=validate,
        required_events=(
            frozenset({"basal", "bolus"}),
            "insulin records (basal or bolus events): without them the model's insulin "
            "is zero and insulin sensitivity cannot be identified",
        ),
    )


def _body_weight_spec() -> FitSpec:
    from medtwin.twin import _body_weight_fit as bf

    return bf.fit_spec()


def _cardiovascular_spec() -> FitSpec:
    from medtwin.twin import _cardiovascular_fit as cf

    return cf.fit_spec()


FIT_SPECS: dict[str, Callable[[], FitSpec]] = {
    "uva_padova_2008": _uva_spec,
    "hall_2011_body_weight": _body_weight_spec,
    "cardiovascular_ursino": _cardiovascular_spec,
}
"""Model name -> factory of its :class:`FitSpec` (models without one get the generic spec:
fit the parameters whose prior is not fixed, no derived parameters)."""


def fit_spec(model: type[Model]) -> FitSpec:
    """The fit specification of ``model`` (registered, or the generic one)."""
    factory = FIT_SPECS.get(model.name)
    if factory is not None:
        return factory()
    free = tuple(p.name for p in model.parameters if p.prior.kind != "fixed")
    # a model brought by its user (an SBML file with priors): readings may be few (drug
    # levels), so the small-sample rules hold and three readings per parameter are not asked
    return FitSpec(
        default_fit=free,
        min_readings=GENERIC_MIN_READINGS,
        readings_per_parameter=1,
        small_sample=True,
    )


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class PredictiveBands:
    """Predictive bands of one observable: ``median``, ``lower`` and ``upper`` (``[T]``) at
    ``times`` (model time unit), ``lower``/``upper`` the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles over posterior samples with the reading noise added."""

    observable: str
    times: FloatArray
    median: FloatArray
    lower: FloatArray
    upper: FloatArray
    level: float
    samples: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "observable": self.observable,
            "times": self.times.tolist(),
            "median": self.median.tolist(),
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
            "level": self.level,
            "samples": self.samples,
        }

    def coverage(
        self, times: FloatArray, values: FloatArray, censored: IntArray | None = None
    ) -> float:
        """Fraction of readings ``values`` at ``times`` inside the band (interpolated). A
        reading that is a bound (``censored``, one code per reading: -1 "<", 1 ">") is inside
        when the band reaches beyond it (its lower end at or under "<40", its upper end at or
        over ">400")."""
        t = np.asarray(times, dtype=np.float64)
        y = np.asarray(values, dtype=np.float64)
        lo = np.interp(t, self.times, self.lower)
        hi = np.interp(t, self.times, self.upper)
        inside = (y >= lo) & (y <= hi)
        if censored is not None:
            c = np.asarray(censored)
            inside = np.where(c < 0, lo <= y, np.where(c > 0, hi >= y, inside))
        return float(np.mean(inside)) if y.size else math.nan


@dataclass(frozen=True)
class UnannouncedMeals:
    """Unannounced meals ("phantom meals") found in the calibrated data, and the process that
    draws such meals in predictions beyond it.

    ``times_min`` (onsets, minutes on the data axis) and ``carbs_g`` are the meals the search
    of :func:`estimate_unannounced_meals` accepted, ``gains`` the log-likelihood (over tau)
    each added when accepted, ``threshold`` the gain a meal had to bring, ``limit_g`` the
    smallest meal that would have brought it (the detection limit, at the median onset),
    ``span_days`` the length of the data searched.

    The number of unannounced meals a day is Poisson; its rate varies between people as
    Gamma(``prior_shape``, ``prior_days``) (shape, rate in days), the population prior, and
    k meals found in T days make the patient's posterior Gamma(prior_shape + k,
    prior_days + T) (the conjugate update of a Poisson rate). A meal's size is drawn from the
    meals found; with none found, uniformly below the detection limit (a larger meal would
    have been found). ``prior_shape = 0`` turns the process off.

    Onsets are drawn uniformly within the eating window: ``window_len_min`` minutes from
    ``window_open_min`` (minutes after the data's start, modulo ``day_min``) every day
    (:func:`eating_window`); ``window_len_min = 0``: over the whole day. In a part of a day,
    the number of meals is Poisson(rate x the share of the day's window it holds).
    """

    times_min: FloatArray
    carbs_g: FloatArray
    gains: FloatArray
    threshold: float
    limit_g: float
    span_days: float
    prior_shape: float = 0.0
    prior_days: float = 0.0
    window_open_min: float = 0.0
    window_len_min: float = 0.0
    day_min: float = 1440.0

    def window(self, start_min: float, room_min: float) -> list[tuple[float, float]]:
        """The parts ``(from, to)`` of ``[start_min, start_min + room_min]`` (minutes on the
        data axis) that lie in the eating window."""
        if room_min <= 0.0:
            return []
        stop = start_min + room_min
        if not 0.0 < self.window_len_min < self.day_min:
            return [(start_min, stop)]
        day = self.day_min
        first = math.floor((start_min - self.window_open_min) / day) - 1
        out = []
        k = first
        while True:
            lo = self.window_open_min + k * day
            if lo >= stop:
                break
            a, b = max(lo, start_min), min(lo + self.window_len_min, stop)
            if b > a:
                out.append((a, b))
            k += 1
        return out

    def expected_days(self, start_min: float, room_min: float) -> float:
        """How many days' worth of unannounced meals ``[start_min, start_min + room_min]``
        holds: its share of the eating window (its length over a day without one)."""
        parts = self.window(start_min, room_min)
        length = sum(b - a for a, b in parts)
        if not 0.0 < self.window_len_min < self.day_min:
            return length / self.day_min
        return length / self.window_len_min

    def draw_onsets(
        self, n: int, start_min: float, room_min: float, rng: np.random.Generator
    ) -> FloatArray:
        """``n`` onsets (minutes on the data axis) uniform over the eating window's part of
        ``[start_min, start_min + room_min]`` (uniform over it all when none lies there)."""
        parts = self.window(start_min, room_min) or [(start_min, start_min + room_min)]
        lengths = np.array([b - a for a, b in parts])
        u = rng.uniform(0.0, float(lengths.sum()), size=n)
        edges = np.concatenate([[0.0], np.cumsum(lengths)])
        k = np.clip(np.searchsorted(edges, u, side="right") - 1, 0, len(parts) - 1)
        starts = np.array([a for a, _ in parts])
        return np.asarray(starts[k] + (u - edges[k]), dtype=np.float64)

    @property
    def count(self) -> int:
        """Number of unannounced meals found."""
        return int(self.carbs_g.size)

    @property
    def active(self) -> bool:
        """Does the process draw meals? (A prior, and sizes to draw from.)"""
        return self.prior_shape > 0 and (self.count > 0 or self.limit_g > 0)

    @property
    def rate_per_day(self) -> float:
        """Posterior mean of the rate (meals a day): (prior_shape + k) / (prior_days + T)."""
        if not self.active:
            return 0.0
        return (self.prior_shape + self.count) / (self.prior_days + self.span_days)

    def draw_rates(self, n: int, rng: np.random.Generator) -> FloatArray:
        """``n`` rates (meals a day) from the posterior Gamma(prior_shape + k, prior_days + T)."""
        if not self.active:
            return np.zeros(n)
        shape = self.prior_shape + self.count
        scale = 1.0 / (self.prior_days + self.span_days)
        return np.asarray(rng.gamma(shape, scale, size=n), dtype=np.float64)

    def draw_sizes(self, n: int, rng: np.random.Generator) -> FloatArray:
        """``n`` meal sizes (g): drawn from the meals found, or below the detection limit."""
        if self.count:
            return np.asarray(rng.choice(self.carbs_g, size=n), dtype=np.float64)
        return np.asarray(rng.uniform(0.0, self.limit_g, size=n), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "times_min": self.times_min.tolist(),
            "carbs_g": self.carbs_g.tolist(),
            "gains": self.gains.tolist(),
            "threshold": self.threshold,
            "limit_g": self.limit_g,
            "span_days": self.span_days,
            "prior_shape": self.prior_shape,
            "prior_days": self.prior_days,
            "rate_per_day": self.rate_per_day,
            "window_open_min": self.window_open_min,
            "window_len_min": self.window_len_min,
            "day_min": self.day_min,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UnannouncedMeals:
        """Read :meth:`to_dict` output back."""
        return cls(
            times_min=np.asarray(data["times_min"], dtype=np.float64).reshape(-1),
            carbs_g=np.asarray(data["carbs_g"], dtype=np.float64).reshape(-1),
            gains=np.asarray(data["gains"], dtype=np.float64).reshape(-1),
            threshold=float(data["threshold"]),
            limit_g=float(data["limit_g"]),
            span_days=float(data["span_days"]),
            prior_shape=float(data["prior_shape"]),
            prior_days=float(data["prior_days"]),
            window_open_min=float(data.get("window_open_min", 0.0)),
            window_len_min=float(data.get("window_len_min", 0.0)),
            day_min=float(data.get("day_min", 1440.0)),
        )


NO_MEALS = UnannouncedMeals(np.zeros(0), np.zeros(0), np.zeros(0), 0.0, 0.0, 0.0)
"""No unannounced meals (a calibration of a model without them, or one stored before them)."""


@dataclass(frozen=True)
class MealHypothesis:
    """The second hypothesis about the calibrated data's excursions: they are the unannounced
    meals found (:class:`UnannouncedMeals`), eaten as known events, not physiology.

    ``params`` (``[P]``) is the MAP refitted with those meals in the scenario (same base, same
    Student-t scale and tau as the calibration), ``covariance`` (``[K, K]``) its Laplace
    posterior covariance of the log fitted parameters (the meals' sizes marginalised),
    ``weight`` its posterior probability
    against the calibration's own MAP ("the excursions are physiology") from the Laplace
    approximation of each hypothesis' evidence (Kass & Raftery 1995) with the Schwarz penalty
    for the meals' onsets and sizes and the population prior odds of that many unannounced
    meals (see :func:`calibrate`); ``log_bayes_factor`` is log p(y | meals) - log p(y | none).
    :meth:`Calibration.predict` draws a ``weight`` share of its samples from this hypothesis
    (Bayesian model averaging, Hoeting et al. 1999)."""

    params: FloatArray
    covariance: FloatArray
    weight: float
    log_bayes_factor: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "params": self.params.tolist(),
            "covariance": self.covariance.tolist(),
            "weight": self.weight,
            "log_bayes_factor": self.log_bayes_factor,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MealHypothesis:
        """Read :meth:`to_dict` output back."""
        cov = np.asarray(data["covariance"], dtype=np.float64)
        k = round(math.sqrt(cov.size))
        return cls(
            params=np.asarray(data["params"], dtype=np.float64).reshape(-1),
            covariance=cov.reshape(k, k),
            weight=float(data["weight"]),
            log_bayes_factor=float(data["log_bayes_factor"]),
        )


def _t_rho(r: FloatArray, sigma: float) -> FloatArray:
    """Negative Student-t (``NU``) log-likelihood of residuals ``[T, ...]``, summed over T."""
    const = (
        math.lgamma((NU + 1) / 2)
        - math.lgamma(NU / 2)
        - 0.5 * math.log(NU * math.pi)
        - math.log(sigma)
    )
    return np.asarray(
        np.sum((NU + 1) / 2 * np.log1p(r * r / (NU * sigma * sigma)) - const, axis=0),
        dtype=np.float64,
    )


def eating_window(
    meal_times_min: FloatArray | Sequence[float], tail_min: float, day_min: float = 1440.0
) -> tuple[float, float]:
    """The patient's daily eating window ``(open, length)`` in minutes: the shortest arc of
    the day (times modulo ``day_min``) that holds every meal in ``meal_times_min``, extended
    by ``tail_min`` after its last meal; ``(0, 0)`` (the whole day) with fewer than two
    distinct meal times or when the window would fill the day.

    The tail for UVA/Padova is the mean gap between dinner and the last eating episode of
    the day, 114 min (Kant AK. Eating patterns of US adults: meals, snacks, and time of
    eating. *Physiol Behav* 2018;193(Pt B):270-278, NHANES 2009-2014: 6:24 pm and 8:18 pm);
    why meals are drawn only there: ``calibration_data/uva_padova_2008.toml``.

    >>> eating_window([420.0, 750.0, 1140.0, 1860.0, 2190.0, 2580.0], 114.0)
    (420.0, 834.0)
    >>> eating_window([1380.0, 1500.0], 60.0)  # 23:00 and 01:00: across midnight
    (1380.0, 180.0)
    """
    clock = np.unique(np.mod(np.asarray(meal_times_min, dtype=np.float64), day_min))
    if clock.size < 2:
        return 0.0, 0.0
    gaps = np.diff(np.append(clock, clock[0] + day_min))
    j = int(np.argmax(gaps))  # the longest gap without a meal is the night
    length = day_min - float(gaps[j]) + tail_min
    if length >= day_min:
        return 0.0, 0.0
    return float(clock[(j + 1) % clock.size]), length


def meal_onsets(times_min: FloatArray) -> FloatArray:
    """Candidate onsets of an unannounced meal: every :data:`MEAL_GRID_MIN` minutes from the
    first reading to :data:`MEAL_SEEN_MIN` before the last."""
    t = np.asarray(times_min, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0)
    return np.arange(t[0], t[-1] - MEAL_SEEN_MIN + 1e-9, MEAL_GRID_MIN)


def meal_responses(
    model: type[Model],
    params: FloatArray,
    scenario: Scenario,
    observable: str,
    times_min: FloatArray,
    onsets_min: FloatArray,
    *,
    grams: float = MEAL_REF_G,
    length_min: float = MEAL_KERNEL_MIN,
) -> FloatArray:
    """Per gram, the change of the observable at ``times_min`` (``[T]``) that ``grams`` of
    carbohydrate eaten without insulin at each onset (``[J]``) make, for the parameter set
    ``params`` (``[P]``) under the recorded ``scenario``: ``[T, J]``.

    Each column is the prediction with the meal added, over :data:`MEAL_KERNEL_MIN` from its
    onset, minus the prediction without it: the response in the glucose and insulin state of
    that moment, not a kernel linearised about basal. The run with the meal starts from the
    state at the start of the last recorded meal before the onset (the events re-based as in
    :meth:`PatientData.window`), so that a meal still being digested keeps its size (UVA/Padova's
    gastric emptying depends on it).
    """
    unit = TIME_UNIT_MIN[model.time_unit]
    t = np.asarray(times_min, dtype=np.float64)
    onsets = np.asarray(onsets_min, dtype=np.float64)
    p = np.atleast_2d(params)
    out = np.zeros((t.size, onsets.size))
    if onsets.size == 0 or t.size == 0:
        return out
    t_end = float(max(t[-1], onsets[-1]))
    meal_starts = np.unique([e.t_min for e in scenario.events if e.type == "meal"])
    starts = np.array(
        [
            float(meal_starts[meal_starts <= o][-1]) if np.any(meal_starts <= o) else 0.0
            for o in onsets
        ]
    )
    grid = np.union1d(t, starts)
    base = simulate(model, p, scenario, t_end=t_end / unit, times=grid / unit)
    pos = np.minimum(np.searchsorted(base.times * unit, grid - 1e-9), base.times.size - 1)
    states = base.states[0, pos, :]
    level = np.asarray(base.observables[observable][0, pos], dtype=np.float64)
    holder = PatientData({}, scenario=scenario)
    for j, (o, s0) in enumerate(zip(onsets, starts, strict=True)):
        stop = min(o + length_min, t_end)
        inside = (t >= o) & (t <= stop)
        if not inside.any() or stop <= o:
            continue
        window = holder.window(s0, stop).scenario if s0 > 0.0 else scenario
        meal = Event("meal", float(o - s0), {"carbs_g": float(grams)}, len(window.events))
        events = tuple(sorted((*window.events, meal), key=lambda e: (e.t_min, e.index)))
        x0 = None if s0 <= 0.0 else states[np.searchsorted(grid, s0)][None, :]
        r = simulate(
            model,
            p,
            Scenario(events=events),
            t_end=(stop - s0) / unit,
            times=(t[inside] - s0) / unit,
            x0=x0,
        )
        at = np.minimum(np.searchsorted(r.times * unit, t[inside] - s0 - 1e-9), r.times.size - 1)
        with_meal = r.observables[observable][0, at]
        out[inside, j] = (with_meal - level[np.searchsorted(grid, t[inside])]) / grams
    return out


def estimate_unannounced_meals(
    times_min: FloatArray,
    residuals: FloatArray,
    onsets_min: FloatArray,
    design: FloatArray,
    *,
    sigma: float,
    tau: float,
    prior: tuple[float, float] = (0.0, 0.0),
    max_per_day: float = 6.0,
    jacobian: FloatArray | None = None,
    prior_hessian: FloatArray | None = None,
    prior_gradient: FloatArray | None = None,
) -> UnannouncedMeals:
    """Unannounced meals that explain the positive excursions of the residuals.

    The residuals ``r`` (readings minus the MAP prediction, at ``times_min``) are modelled as
    ``sum_j c_j h_j(t) + e``: meals of ``c_j`` grams at onsets ``t_j`` (``onsets_min``) eaten
    without insulin, ``h_j`` the model's response per gram to a meal at ``t_j``
    (``design[:, j]``, :func:`meal_responses`) and ``e`` the Student-t reading error of the
    calibration (``NU`` degrees of freedom, scale ``sigma``, the log-likelihood divided by
    ``tau``). Greedy forward selection: the onset whose best size (``c >= 0``, weighted least
    squares with the t weights) raises the log-likelihood most is added if the gain exceeds
    the Bayesian information criterion of its two parameters (onset and size),
    ``log(n / tau)`` nats with ``n / tau`` the effective number of readings (Schwarz G.
    Estimating the dimension of a model. Ann Stat 1978;6(2):461-464); after each addition all
    sizes are refitted (non-negative least squares, iteratively reweighted for the t error:
    Lange, Little & Taylor 1989). Onsets are at least :data:`MEAL_APART_MIN` apart.

    **Jointly with the physiology** (``jacobian`` given: ``J`` ``[T, K]``, the derivative of
    the prediction by the fitted log parameters at the fit, with the negative log prior's
    Hessian ``P`` and gradient ``g`` there): the fitted parameters are re-adjusted to every
    candidate meal instead of held, so that a meal the fit has partly absorbed (a lower
    insulin sensitivity, a higher kabs) is seen at its own size. In the fit's linearisation
    (Gauss-Newton: ``r - J delta - sum_j c_j h_j``, the prior quadratic in ``delta``) the
    step ``delta`` is profiled out: each candidate's response becomes ``h - N D`` with ``N``
    the Jacobian and the responses of the meals already chosen and ``D = (N' W N / tau +
    P)^-1 N' W h / tau`` (the Frisch-Waugh-Lovell partialling out: Frisch R, Waugh FV.
    Partial time regressions as compared with individual trends. Econometrica
    1933;1(4):387-401; Lovell MC. Seasonal adjustment of economic time series and multiple
    regression analysis. J Am Stat Assoc 1963;58(304):993-1010), its information per gram^2
    the partial (efficient) information ``h' W (h - N D) / tau``, the Schur complement of
    the joint information (Cox DR, Reid N. Parameter orthogonality and approximate
    conditional inference. J R Stat Soc B 1987;49(1):1-39, section 2); the gain counts the
    prior's change with ``delta``. After each addition the step and all sizes are refitted
    together: bounded least squares (sizes >= 0; Stark PB, Parker RL. Bounded-variable
    least-squares: an algorithm and applications. Comput Stat 1995;10:129-141), reweighted
    for the t error. Away from the fit's optimum the step alone is fitted first. Without
    ``jacobian`` the parameters are held (the residuals' own search, as before).

    The detection limit is the size whose expected gain equals the threshold at the median
    onset: ``sqrt(2 threshold / I)``, ``I = sum_t w h_j(t) (h_j - N D)(t) / tau`` the
    expected (partial) Fisher information per gram squared (``w = (nu + 1) / ((nu + 3)
    sigma^2)``; ``h_j(t)^2`` without ``jacobian``). ``prior`` is the population prior of
    the rate, (shape, days) (see :class:`UnannouncedMeals`).

    >>> t = np.arange(0.0, 1440.0, 5.0)
    >>> onsets = meal_onsets(t)
    >>> lag = t[:, None] - onsets[None, :]
    >>> h = np.where(lag >= 0, np.exp(-lag / 120.0) - np.exp(-lag / 40.0), 0.0)  # per gram
    >>> r = 20.0 * h[:, list(onsets).index(600.0)]
    >>> r += np.random.default_rng(0).normal(0.0, 2.0, t.size)
    >>> found = estimate_unannounced_meals(t, r, onsets, h, sigma=2.0, tau=1.0)
    >>> found.count, found.times_min.tolist(), round(float(found.carbs_g[0]))
    (1, [600.0], 20)
    """
    from scipy.optimize import lsq_linear, nnls

    t = np.asarray(times_min, dtype=np.float64)
    r = np.asarray(residuals, dtype=np.float64)
    span_days = float(t[-1] - t[0]) / 1440.0 if t.size else 0.0
    n_eff = max(t.size / max(tau, 1.0), 2.0)
    threshold = math.log(n_eff)
    onsets = np.asarray(onsets_min, dtype=np.float64)
    design = np.asarray(design, dtype=np.float64)
    shape, days = (float(prior[0]), float(prior[1]))
    if t.size < 4 or sigma <= 0 or onsets.size == 0 or not np.any(design > 0):
        return UnannouncedMeals(
            np.zeros(0), np.zeros(0), np.zeros(0), threshold, 0.0, span_days, shape, days
        )
    jac = None if jacobian is None else np.asarray(jacobian, dtype=np.float64).reshape(t.size, -1)
    k = 0 if jac is None else jac.shape[1]
    p_hess = np.zeros((k, k)) if prior_hessian is None else np.asarray(prior_hessian, np.float64)
    p_grad = np.zeros(k) if prior_gradient is None else np.asarray(prior_gradient, np.float64)

    def prior_change(delta: FloatArray) -> FloatArray:
        """The negative log prior's change for log-parameter steps ``delta`` ``[K, ...]``
        (exact for the Gaussian prior of the fit's log space)."""
        return np.asarray(
            p_grad @ delta + 0.5 * np.sum(delta * (p_hess @ delta), axis=0), dtype=np.float64
        )

    def profiled(w: FloatArray, chosen: list[int]) -> tuple[FloatArray, FloatArray]:
        """Each candidate's response with the physiology (and the meals already chosen)
        re-adjusted to it, ``h - N D``, and the adjustments ``D`` ``[K + S, J]`` per gram."""
        if jac is None:
            return design, np.zeros((0, design.shape[1]))
        nuisance = np.hstack([jac, design[:, chosen]])
        m = nuisance.shape[1]
        p_n = np.zeros((m, m))
        p_n[:k, :k] = p_hess
        a = (nuisance.T * w) @ nuisance / tau + p_n
        b = (nuisance.T * w) @ design / tau
        try:
            d = np.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            d = np.linalg.pinv(a) @ b
        return np.asarray(design - nuisance @ d, dtype=np.float64), np.asarray(d, np.float64)

    w_exp = np.full(t.size, (NU + 1) / ((NU + 3) * sigma**2))
    tilde0, _ = profiled(w_exp, [])
    info = w_exp[0] * np.sum(design * tilde0, axis=0) / tau
    seen = info[info > 0]
    limit_g = float(math.sqrt(2.0 * threshold / float(np.median(seen)))) if seen.size else 0.0
    limit = max(1, math.ceil(max_per_day * max(span_days, 1.0 / 24.0)))

    def joint(chosen: list[int], x: FloatArray) -> FloatArray:
        """The physiology's log-parameter step and the sizes (>= 0) of the ``chosen`` meals
        together, from ``x``: bounded least squares reweighted for the t error (Lange et al.
        1989), with the prior's quadratic rows."""
        if jac is None:
            return x
        lam, vec = np.linalg.eigh((p_hess + p_hess.T) / 2.0)
        pos = lam > 1e-12 * max(float(np.max(np.abs(lam))), 1e-300)
        prior_rows = np.sqrt(lam[pos])[:, None] * vec[:, pos].T
        prior_target = -(vec[:, pos].T @ p_grad) / np.sqrt(lam[pos])
        both = np.hstack([jac, design[:, chosen]])
        lower = np.concatenate([np.full(k, -np.inf), np.zeros(len(chosen))])
        rows = np.hstack([prior_rows, np.zeros((int(pos.sum()), len(chosen)))])
        for _ in range(20):
            res = r - both @ x
            sw = np.sqrt((NU + 1) / (NU * sigma**2 + res * res) / tau)
            new = np.asarray(
                lsq_linear(
                    np.vstack([both * sw[:, None], rows]),
                    np.concatenate([r * sw, prior_target]),
                    bounds=(lower, np.inf),
                    method="bvls",
                ).x,
                dtype=np.float64,
            )
            if np.allclose(new, x, rtol=1e-6, atol=1e-6):
                return new
            x = new
        return x

    chosen: list[int] = []
    sizes = np.zeros(0)
    delta = np.zeros(k)
    e = r.copy()
    current = float(_t_rho(e, sigma)) / tau
    if jac is not None:
        # away from the fit's optimum (a fit with meals in it), the physiology alone first
        delta = joint([], delta)
        e = r - jac @ delta
        current = float(_t_rho(e, sigma)) / tau + float(prior_change(delta))
    allowed = np.ones(onsets.size, dtype=bool)
    gains: list[float] = []
    while len(chosen) < limit and allowed.any():
        w = (NU + 1) / (NU * sigma**2 + e * e)
        tilde, adjust = profiled(w, chosen)
        num = design.T @ (w * e)
        den = (design * tilde).T @ w
        c = np.where(den > 0, np.maximum(num / np.where(den > 0, den, 1.0), 0.0), 0.0)
        trial = _t_rho(e[:, None] - tilde * c[None, :], sigma) / tau
        if k:
            trial = trial + prior_change(delta[:, None] - adjust[:k] * c[None, :])
            trial = trial - float(prior_change(delta))
        gain = np.where(allowed & (c > 0), current - trial, -np.inf)
        j = int(np.argmax(gain))
        if not gain[j] > threshold:
            break
        chosen.append(j)
        allowed &= np.abs(onsets - onsets[j]) >= MEAL_APART_MIN
        sub = design[:, chosen]
        fit = np.append(sizes, c[j])
        if jac is None:
            for _ in range(20):  # IRLS: non-negative weighted least squares with the t weights
                res = r - sub @ fit
                w = (NU + 1) / (NU * sigma**2 + res * res)
                sw = np.sqrt(w)
                new, _ = nnls(sub * sw[:, None], r * sw)
                if np.allclose(new, fit, rtol=1e-6, atol=1e-6):
                    fit = new
                    break
                fit = new
            sizes = fit
            e = r - sub @ sizes
            after = float(_t_rho(e, sigma)) / tau
        else:
            x = joint(chosen, np.concatenate([delta, fit]))
            delta, sizes = x[:k], x[k:]
            e = r - jac @ delta - sub @ sizes
            after = float(_t_rho(e, sigma)) / tau + float(prior_change(delta))
        gains.append(current - after)
        current = after
    keep = sizes > 0
    order = np.argsort(onsets[chosen])
    return UnannouncedMeals(
        times_min=np.asarray(onsets[chosen][order][keep[order]], dtype=np.float64),
        carbs_g=np.asarray(sizes[order][keep[order]], dtype=np.float64),
        gains=np.asarray(np.array(gains)[order][keep[order]], dtype=np.float64),
        threshold=threshold,
        limit_g=limit_g,
        span_days=span_days,
        prior_shape=shape,
        prior_days=days,
    )


@dataclass(frozen=True)
class Calibration:
    """A model calibrated to one patient: MAP parameters, Laplace posterior, provenance.

    ``params`` (``[P]``) is the MAP as a full parameter vector; ``base`` the vector the
    non-fitted parameters come from; ``covariance`` (``[K, K]``) the posterior covariance of
    the natural logarithms of the ``fitted`` parameters. ``noise_scale`` and ``noise_df`` are
    the Student-t reading error (in the observable's unit), ``residual_sd`` the standard
    deviation of the readings about the MAP prediction, ``autocorrelation_time`` the tau by
    which the log-likelihood was divided. ``diagnostics``: ``converged``, ``starts``,
    ``agreeing_starts`` (starts ending within 1 of the best log posterior), ``spread``
    (largest difference of log parameters between agreeing starts), ``starts_agree``,
    ``iterations``, ``simulations``, ``rows``, ``seconds``, ``cpu_seconds``, ``base``.
    ``provenance``: patient, start, fact ids, observable, number and span of readings.
    """

    model: str
    version: str
    fitted: tuple[str, ...]
    params: FloatArray
    base: FloatArray
    covariance: FloatArray
    log_posterior: float
    observable: str
    noise_scale: float
    noise_df: float
    residual_sd: float
    autocorrelation_time: float
    diagnostics: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    model_type: type[Model] | None = field(default=None, compare=False, repr=False)
    """The model class when calibrated in this process (else looked up by name)."""
    residuals: FloatArray = field(default_factory=lambda: np.zeros(0), compare=False, repr=False)
    """The readings minus the MAP prediction (``[T]``, the observable's unit): the empirical
    reading-and-model error that :meth:`predict` resamples (``noise_model="empirical"``)."""
    unannounced: UnannouncedMeals = field(default_factory=lambda: NO_MEALS, compare=False)
    """Unannounced meals found in the calibrated data; :meth:`predict` draws such meals
    beyond the data (models whose :class:`FitSpec` sets ``unannounced_meals``)."""
    meal_hypothesis: MealHypothesis | None = field(default=None, compare=False)
    """The MAP and posterior refitted with the meals found as known events, with its posterior
    probability (None: no meals found); :meth:`predict` mixes its draws in."""
    noise_scales: Mapping[str, float] = field(default_factory=dict)
    """The Student-t scale of each fitted observable (several when they were fitted jointly;
    ``observable``'s is ``noise_scale``)."""

    @property
    def observables(self) -> tuple[str, ...]:
        """The observables fitted (``observable`` first)."""
        return tuple(self.noise_scales) if self.noise_scales else (self.observable,)

    # -------------------------------------------------------------- access
    def model_class(self) -> type[Model]:
        """The model this calibration is for (the class it was fitted with, or the registry's)."""
        if self.model_type is not None:
            return self.model_type
        from medtwin.model.registry import get_model

        return get_model(self.model)

    def _idx(self) -> list[int]:
        names = self.model_class().parameter_names()
        return [names.index(n) for n in self.fitted]

    @property
    def values(self) -> dict[str, float]:
        """MAP value of each fitted parameter."""
        return {n: float(self.params[i]) for n, i in zip(self.fitted, self._idx(), strict=True)}

    @property
    def log_sd(self) -> dict[str, float]:
        """Posterior standard deviation of each fitted parameter's logarithm (Laplace)."""
        sd = np.sqrt(np.diag(self.covariance))
        return {n: float(s) for n, s in zip(self.fitted, sd, strict=True)}

    def sample(self, n: int, seed: int | None = None) -> FloatArray:
        """``n`` full parameter vectors ``[n, P]`` from the Laplace posterior.

        Log values are drawn from ``N(log MAP, covariance)``; a draw whose fitted values or
        solved derived parameters fall outside the model's bounds, or that the model refuses
        (:meth:`~medtwin.model.base.Model.check_params`: outside its valid population, e.g. a
        BMI below 16, or no lean mass left) is drawn again (at most 50 times), then refused
        with :class:`CalibrationError`: the posterior is truncated to where the model holds.
        """
        if n < 1:
            raise CalibrationError(f"sample: n must be at least 1, got {n}")
        return self._draw(self.params, self.covariance, n, np.random.default_rng(seed))

    def _draw(
        self, params: FloatArray, covariance: FloatArray, n: int, rng: np.random.Generator
    ) -> FloatArray:
        """``n`` full parameter vectors from N(log ``params``, ``covariance``) (see sample)."""
        model = self.model_class()
        spec = fit_spec(model)
        idx = self._idx()
        mean = np.log(params[idx])
        lo, hi = model.lower_bounds(), model.upper_bounds()
        out = np.empty((n, len(model.parameters)))
        todo = np.arange(n)
        for _ in range(50):
            phi = rng.multivariate_normal(mean, covariance, size=todo.size, method="eigh")
            drawn = np.exp(phi)
            full = spec.complete(model, self.base, idx, drawn)
            ok = np.all(np.isfinite(full) & (full >= lo) & (full <= hi), axis=1)
            # a fitted value the spec had to move (kept inside the model's valid range for
            # the optimiser) is a draw outside it: drawn again, not piled on the boundary
            ok &= np.all(np.abs(full[:, idx] - drawn) <= 1e-9 * np.abs(drawn), axis=1)
            ok[ok] = _valid_rows(model, full[ok])
            out[todo[ok]] = full[ok]
            todo = todo[~ok]
            if todo.size == 0:
                return out
        raise CalibrationError(
            f"sample: {todo.size} of {n} draws stay outside the bounds of model {self.model!r} "
            "after 50 tries (the posterior reaches past the model's valid range)"
        )

    def predict(
        self,
        scenario: Scenario | Mapping[str, Any] | Sequence[Mapping[str, Any]],
        t_end: float,
        *,
        n: int = 200,
        seed: int | None = 0,
        dt_out: float = 5.0,
        times: FloatArray | Sequence[float] | None = None,
        level: float = 0.9,
        noise: bool = True,
        x0: FloatArray | None = None,
        day_to_day: float | Mapping[str, float] | None = None,
        vary_from: float | None = None,
        noise_model: str = "t",
        unannounced: bool = True,
        meal_hypothesis: bool = True,
        observable: str | None = None,
    ) -> PredictiveBands:
        """Predictive bands of the calibrated observable over ``scenario`` from 0 to ``t_end``
        (``t_end``, ``dt_out``, ``times`` and ``vary_from`` in the model's time unit, as for
        :func:`~medtwin.model.simulate`; minutes for UVA/Padova).

        ``n`` posterior samples (:meth:`sample`) are simulated; with ``noise`` each trajectory
        gets independent errors before the quantiles are taken: with ``noise_model="t"``
        (default) Student-t (scale ``noise_scale``, ``noise_df`` degrees of freedom); with
        ``"empirical"`` drawn with replacement from the calibrated readings' own residuals
        about the MAP (``residuals``: the sensor and model error of the fitted days,
        unannounced meals included, with their skew; Student-t when fewer than 24 are
        stored). ``x0`` (``[S]`` or ``[n, S]``)
        starts every sample from a given state instead of the model's initial state.

        Day-to-day variability: from ``vary_from`` on (default: the end of the calibrated
        data when the prediction starts where the data started, 0 when ``x0`` is given, i.e.
        the forecast starts after the data), every day of ``FitSpec.day_min`` gets, per sample,
        a new factor exp(SD z), z ~ N(0, 1), on the parameters of ``day_to_day`` (default: the
        model's :class:`FitSpec`; UVA/Padova: Vmx and kp3, log SD 0.17, see
        :func:`medtwin.twin._uva_padova_fit.day_to_day_log_sd`; a number replaces the SD of
        each, 0 turns it off; a mapping names parameters and SDs). The parameters are constant
        within the calibrated window, so the posterior says nothing about how they change
        on a new day: this draws that change from its published size.

        Unannounced meals (``unannounced``, default on; models whose :class:`FitSpec` sets
        ``unannounced_meals``): from ``vary_from`` on, each sample gets its own meals eaten
        without insulin, as many a day as a Poisson number with the sample's rate drawn from
        the posterior of :attr:`unannounced` (Gamma(k + 1/2, days of data) for k meals found
        in the calibrated data), at times uniform within the patient's eating window
        (:attr:`UnannouncedMeals.window_open_min`, :func:`eating_window`; ending at least
        :data:`MEAL_CUT_MIN` before the day's end), each of a size drawn from the meals found.
        Nothing is added before ``vary_from``: the calibrated data's own excursions are in
        its residuals, and so in the reading error, already.

        The two hypotheses (``meal_hypothesis``, default on, when :attr:`meal_hypothesis` is
        set): a Binomial(``n``, weight) number of the draws come from the MAP refitted with
        the unannounced meals found, the others from the MAP (Bayesian model averaging,
        Hoeting et al. 1999); when the prediction replays the calibrated data (no ``x0``),
        the refit's draws eat the meals found there. Both keep the calibration's reading
        error, so that where the refit wins the calibrated day's band is wider than the 90 %
        it should be (0.95 on the validation's days with a snack); the average is meant for
        the days after the data.
        """
        if not 0.0 < level < 1.0:
            raise CalibrationError(f"predict: level must lie in (0, 1), got {level!r}")
        if noise_model not in ("empirical", "t"):
            raise CalibrationError(f"noise_model: {noise_model!r} is not 'empirical' or 't'")
        name = self.observable if observable is None else observable
        if name not in self.observables:
            raise CalibrationError(
                f"observable: {name!r} was not calibrated (calibrated: "
                f"{', '.join(self.observables)})"
            )
        scale = float(self.noise_scales.get(name, self.noise_scale))
        model = self.model_class()
        spec = fit_spec(model)
        s = scenario if isinstance(scenario, Scenario) else parse_scenario(scenario)
        if spec.steady and x0 is None and not s.events:
            # readings of a resting steady state: the same at every time
            out_t = (
                np.asarray(times, dtype=np.float64)
                if times is not None
                else np.append(np.arange(0.0, t_end, dt_out), t_end)
            )
            draws = self._draw(self.params, self.covariance, n, np.random.default_rng(seed))
            value = steady_observables(model, draws, [name])[name]
            y = np.repeat(value[:, None], out_t.size, axis=1)
            if noise:
                rng = np.random.default_rng(None if seed is None else seed + 1)
                y = y + scale * rng.standard_t(self.noise_df, size=y.shape)
            q = np.quantile(y, [(1.0 - level) / 2.0, 0.5, (1.0 + level) / 2.0], axis=0)
            return PredictiveBands(name, out_t, q[1], q[0], q[2], level, n)
        hyp = self.meal_hypothesis if meal_hypothesis else None
        n_meals = 0
        if hyp is not None and hyp.weight > 0.0:
            mix_rng = np.random.default_rng(None if seed is None else seed + 4)
            n_meals = int(mix_rng.binomial(n, min(hyp.weight, 1.0)))
        draw_rng = np.random.default_rng(seed)
        groups: list[tuple[FloatArray, Scenario]] = []
        if n_meals < n:
            groups.append((self._draw(self.params, self.covariance, n - n_meals, draw_rng), s))
        if hyp is not None and n_meals > 0:
            s_meals = s
            if x0 is None:  # the prediction replays the calibrated data: its meals are eaten
                found = self.unannounced
                extra = [
                    Event("meal", float(tm), {"carbs_g": float(g)}, len(s.events) + k)
                    for k, (tm, g) in enumerate(zip(found.times_min, found.carbs_g, strict=True))
                ]
                s_meals = Scenario(
                    events=tuple(sorted((*s.events, *extra), key=lambda e: (e.t_min, e.index)))
                )
            groups.append((self._draw(hyp.params, hyp.covariance, n_meals, draw_rng), s_meals))
        start = None
        if x0 is not None:
            start = np.array(
                np.broadcast_to(np.asarray(x0, dtype=np.float64), (n, len(model.states)))
            )
        names = model.parameter_names()
        if day_to_day is None:
            vary = dict(spec.day_to_day)
        elif isinstance(day_to_day, Mapping):
            vary = {str(k): float(v) for k, v in day_to_day.items()}
        else:
            vary = {k: float(day_to_day) for k in spec.day_to_day}
        for k, v in vary.items():
            if k not in names:
                raise CalibrationError(f"day_to_day: {k!r} is not a parameter of {self.model!r}")
            if not (math.isfinite(v) and v >= 0.0):
                raise CalibrationError(f"day_to_day: SD of {k} must be >= 0, got {v!r}")
        unit = TIME_UNIT_MIN[model.time_unit]
        if vary_from is None:
            span = float(self.provenance.get("span_min", 0.0)) / unit
            vary_from = 0.0 if x0 is not None else span
        if times is None:
            grid = np.arange(0.0, t_end, dt_out)
            out_t = np.append(grid, t_end) if grid[-1] < t_end else grid
        else:
            out_t = np.asarray(times, dtype=np.float64)
        rng_day = np.random.default_rng(None if seed is None else seed + 2)
        meals = self.unannounced if unannounced else NO_MEALS
        meal_rng = np.random.default_rng(None if seed is None else seed + 3)
        rates = meals.draw_rates(n, meal_rng)
        plain = (not any(v > 0 for v in vary.values()) and not np.any(rates > 0)) or (
            vary_from >= t_end
        )
        parts = []
        first = 0
        for params, scen in groups:
            rows = slice(first, first + params.shape[0])
            first += params.shape[0]
            x_rows = None if start is None else start[rows]
            if plain:
                r = simulate(
                    model, params, scen, t_end=t_end, dt_out=dt_out, times=times, x0=x_rows
                )
                parts.append(r.observables[name])
                out_t = r.times
            else:
                parts.append(
                    self._segments(
                        model,
                        params,
                        scen,
                        t_end,
                        out_t,
                        x_rows,
                        vary,
                        vary_from,
                        rng_day,
                        rates[rows],
                        meals,
                        meal_rng,
                        name,
                    )
                )
        y = np.concatenate(parts, axis=0)
        if noise:
            rng = np.random.default_rng(None if seed is None else seed + 1)
            if (
                noise_model == "empirical"
                and self.residuals.size >= MIN_READINGS
                and name == self.observable
                and len(self.observables) == 1
            ):
                y = y + rng.choice(self.residuals, size=y.shape)
            else:
                y = y + scale * rng.standard_t(self.noise_df, size=y.shape)
        q = np.quantile(y, [(1.0 - level) / 2.0, 0.5, (1.0 + level) / 2.0], axis=0)
        return PredictiveBands(name, out_t, q[1], q[0], q[2], level, n)

    def _segments(
        self,
        model: type[Model],
        params: FloatArray,
        scenario: Scenario,
        t_end: float,
        out_t: FloatArray,
        x0: FloatArray | None,
        vary: Mapping[str, float],
        vary_from: float,
        rng: np.random.Generator,
        rates: FloatArray | None = None,
        meals: UnannouncedMeals = NO_MEALS,
        meal_rng: np.random.Generator | None = None,
        observable: str = "",
    ) -> FloatArray:
        """The observable ``[n, T]`` at ``out_t``, simulated segment by segment: up to
        ``vary_from`` with the posterior draws, then one day at a time with a new daily
        factor on the ``vary`` parameters (the state carried over, the events re-based) and,
        for sample ``i``, Poisson(``rates[i]`` x the day's length) unannounced meals of sizes
        drawn from ``meals`` (each such sample simulated on its own)."""
        unit = TIME_UNIT_MIN[model.time_unit]
        day = fit_spec(model).day_min / unit
        # a cut is moved back to the start of an event less than CUT_GUARD_MIN before it (a
        # meal being eaten, an infusion running), so that the event stays whole in one segment
        starts = sorted({e.t_min / unit for e in scenario.events if e.t_min > 0.0})
        guard = CUT_GUARD_MIN / unit

        def safe(c: float) -> float:
            while True:
                near = [t for t in starts if c - guard < t < c]
                if not near:
                    return c
                c = near[0]

        cuts = [0.0]
        c = vary_from
        while c < t_end:
            moved = safe(c)
            if cuts[-1] < moved < t_end:
                cuts.append(moved)
            c += day
        cuts.append(t_end)
        vary_from = safe(vary_from)
        names = model.parameter_names()
        cols = [names.index(k) for k in vary]
        sds = np.array([vary[k] for k in vary])
        lo, hi = model.lower_bounds(), model.upper_bounds()
        n = params.shape[0]
        y = np.full((n, out_t.size), np.nan)
        state = x0
        holder = PatientData({}, scenario=scenario)
        rates = np.zeros(n) if rates is None else rates
        meal_rng = np.random.default_rng() if meal_rng is None else meal_rng
        for a, b in itertools.pairwise(cuts):
            p = params
            if a >= vary_from:
                z = np.asarray(rng.standard_normal(size=(n,)), dtype=np.float64)
                p = params.copy()
                p[:, cols] = np.clip(
                    p[:, cols] * np.exp(z[:, None] * sds[None, :]), lo[cols], hi[cols]
                )
            seg = holder.window(a * unit, b * unit).scenario if a > 0.0 else scenario
            inside = (out_t >= a) & (out_t <= b)
            seg_t = np.unique(np.concatenate([[0.0], out_t[inside] - a, [b - a]]))
            pos = np.searchsorted(seg_t, out_t[inside] - a)
            pos = np.minimum(pos, seg_t.size - 1)
            counts = np.zeros(n, dtype=np.int64)
            room = (b - a) * unit - MEAL_CUT_MIN
            if a >= vary_from and meals.active and room > 0:
                counts = meal_rng.poisson(rates * meals.expected_days(a * unit, room))
            plain = counts == 0
            x_end = np.empty((n, len(model.states)))
            if plain.any():
                r = simulate(
                    model,
                    p[plain],
                    seg,
                    t_end=b - a,
                    times=seg_t,
                    x0=None if state is None else state[plain],
                )
                y[np.ix_(plain, inside)] = r.observables[observable or self.observable][:, pos]
                x_end[plain] = r.states[:, -1, :]
            for i in np.flatnonzero(~plain):
                onset = meals.draw_onsets(int(counts[i]), a * unit, room, meal_rng) - a * unit
                grams = meals.draw_sizes(int(counts[i]), meal_rng)
                extra = [
                    Event("meal", float(tm), {"carbs_g": float(g)}, len(seg.events) + k)
                    for k, (tm, g) in enumerate(zip(onset, grams, strict=True))
                ]
                own = Scenario(
                    events=tuple(sorted((*seg.events, *extra), key=lambda e: (e.t_min, e.index)))
                )
                r = simulate(
                    model,
                    p[i : i + 1],
                    own,
                    t_end=b - a,
                    times=seg_t,
                    x0=None if state is None else state[i : i + 1],
                )
                y[i, inside] = r.observables[observable or self.observable][0, pos]
                x_end[i] = r.states[0, -1, :]
            state = x_end
        return y

    # -------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; :meth:`from_dict` reads it back."""
        return {
            "kind": "medtwin.calibration",
            "model": self.model,
            "version": self.version,
            "parameter_names": self.model_class().parameter_names(),
            "fitted": list(self.fitted),
            "params": self.params.tolist(),
            "base": self.base.tolist(),
            "covariance": self.covariance.tolist(),
            "log_posterior": self.log_posterior,
            "observable": self.observable,
            "noise_scale": self.noise_scale,
            "noise_scales": dict(self.noise_scales),
            "noise_df": self.noise_df,
            "residual_sd": self.residual_sd,
            "autocorrelation_time": self.autocorrelation_time,
            "residuals": self.residuals.tolist(),
            "unannounced_meals": self.unannounced.to_dict(),
            "meal_hypothesis": None
            if self.meal_hypothesis is None
            else self.meal_hypothesis.to_dict(),
            "diagnostics": dict(self.diagnostics),
            "provenance": dict(self.provenance),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], model: type[Model] | None = None) -> Calibration:
        """Read :meth:`to_dict` output back; refuses another model version or parameter list.

        ``model``: the model class, for a model that is not registered by name (one loaded
        from an SBML file); by default the registry's."""
        from medtwin.model.registry import get_model

        try:
            if model is None:
                try:
                    model = get_model(str(data["model"]))
                except ModelError as exc:
                    raise CalibrationError(f"model: {exc}") from None
            elif str(data["model"]) != model.name:
                raise CalibrationError(
                    f"model: the calibration is of {data['model']!r}, not {model.name!r}"
                )
            if data["version"] != model.version:
                raise CalibrationError(
                    f"version: calibrated with {data['model']} {data['version']}, "
                    f"installed is {model.version}; calibrate again"
                )
            if list(data["parameter_names"]) != model.parameter_names():
                raise CalibrationError(
                    f"parameter_names: do not match model {model.name!r}; calibrate again"
                )
            return cls(
                model=model.name,
                version=model.version,
                fitted=tuple(str(n) for n in data["fitted"]),
                params=np.asarray(data["params"], dtype=np.float64),
                base=np.asarray(data["base"], dtype=np.float64),
                covariance=np.asarray(data["covariance"], dtype=np.float64).reshape(
                    len(data["fitted"]), len(data["fitted"])
                ),
                log_posterior=float(data["log_posterior"]),
                observable=str(data["observable"]),
                noise_scale=float(data["noise_scale"]),
                noise_scales={
                    str(k): float(v) for k, v in dict(data.get("noise_scales") or {}).items()
                },
                noise_df=float(data["noise_df"]),
                residual_sd=float(data["residual_sd"]),
                autocorrelation_time=float(data["autocorrelation_time"]),
                residuals=np.asarray(data.get("residuals", []), dtype=np.float64).reshape(-1),
                unannounced=UnannouncedMeals.from_dict(data["unannounced_meals"])
                if data.get("unannounced_meals")
                else NO_MEALS,
                meal_hypothesis=MealHypothesis.from_dict(data["meal_hypothesis"])
                if data.get("meal_hypothesis")
                else None,
                diagnostics=dict(data.get("diagnostics", {})),
                provenance=dict(data.get("provenance", {})),
                model_type=model,
            )
        except KeyError as exc:
            raise CalibrationError(f"calibration data: missing field {exc.args[0]!r}") from None


# ---------------------------------------------------------------------------- the problem
class _Problem:
    """Residuals and log posterior of one patient's readings, batched over parameter sets."""

    def __init__(
        self,
        model: type[Model],
        spec: FitSpec,
        idx: list[int],
        times: FloatArray,
        values: FloatArray,
        scenario: Scenario,
        observable: str,
        layout: Sequence[tuple[str, IntArray]] | None = None,
        censor: IntArray | None = None,
    ) -> None:
        self.model = model
        self.spec = spec
        self.idx = idx
        self.t = times
        self.y = values
        self.scenario = scenario
        self.observable = observable
        self.layout = list(layout) if layout is not None else None
        """Several observables: (name, positions of its readings in ``t``), in the order of
        their readings in ``y``; None: one observable, a reading at each ``t``."""
        self.censor = (
            np.zeros(values.size, dtype=np.int64)
            if censor is None
            else np.asarray(censor, dtype=np.int64)
        )
        """Per reading of ``y``: 0 a value, -1 an upper bound ("<40"), 1 a lower bound (">400");
        a bound's likelihood is the probability of a reading beyond it (:meth:`terms`)."""
        self.exact = self.censor == 0
        self.group = (
            np.concatenate([np.full(pos.size, g) for g, (_, pos) in enumerate(self.layout)])
            if self.layout is not None
            else np.zeros(values.size, dtype=np.int64)
        )
        self.t_end = float(times[-1])
        self.lo = model.lower_bounds()
        self.hi = model.upper_bounds()
        self.log_lo = np.log(self.lo[idx])
        self.log_hi = np.log(self.hi[idx])
        self.priors = [model.parameters[i].prior for i in idx]
        self.sigma = 1.0
        self.tau = 1.0
        self.k_eff: float | None = None
        """The parameters the residuals' degrees of freedom lose (``tr(2 S - S S)`` of
        :meth:`effective_parameters`); None: every fitted parameter counts whole (before the
        first estimate)."""
        self.simulations = 0
        self.rows = 0

    def full(self, phi: FloatArray, bases: FloatArray) -> FloatArray:
        p = self.spec.complete(self.model, bases, self.idx, np.exp(np.atleast_2d(phi)))
        return np.clip(np.nan_to_num(p, nan=1.0), self.lo, self.hi)

    def predict(self, params: FloatArray) -> FloatArray:
        self.simulations += 1
        self.rows += params.shape[0]
        if self.spec.steady:
            return _steady_readings(self.model, params, self._names(), self._counts())
        r = simulate(self.model, params, self.scenario, t_end=self.t_end, times=self.t)
        pos = np.searchsorted(r.times, self.t)
        if self.layout is None:
            return np.asarray(r.observables[self.observable][:, pos], dtype=np.float64)
        return np.concatenate(
            [np.asarray(r.observables[name][:, pos[p]]) for name, p in self.layout], axis=1
        )

    def _names(self) -> list[str]:
        return [self.observable] if self.layout is None else [n for n, _ in self.layout]

    def _counts(self) -> list[int]:
        return [self.y.size] if self.layout is None else [p.size for _, p in self.layout]

    @property
    def multi(self) -> bool:
        return self.layout is not None

    def scales(self) -> dict[str, float]:
        """The Student-t scale of each observable."""
        if not self.multi:
            return {self.observable: float(self.sigma)}
        sig = np.asarray(self.sigma)
        return {name: float(sig[self.group == g][0]) for g, name in enumerate(self._names())}

    def neg_log_prior(self, phi: FloatArray) -> FloatArray:
        """-log p(phi) in log space (the density of theta times its Jacobian theta)."""
        phi = np.atleast_2d(phi)
        out = np.zeros(phi.shape[0])
        for k, prior in enumerate(self.priors):
            if prior.kind == "fixed":
                continue
            out -= prior.log_density(np.exp(phi[:, k])) + phi[:, k]
        return out

    def prior_grad_hess(self, phi: FloatArray) -> tuple[FloatArray, FloatArray]:
        k = phi.size
        h = 1e-4
        eye = np.eye(k) * h
        pts = np.vstack([phi, phi + eye, phi - eye])
        f = self.neg_log_prior(pts)
        grad = (f[1 : k + 1] - f[k + 1 :]) / (2 * h)
        diag = (f[1 : k + 1] + f[k + 1 :] - 2 * f[0]) / (h * h)
        hess = np.diag(np.maximum(diag, 0.0))
        # priors are independent per parameter: no cross terms
        return grad, hess

    def data_hessian(self, js: FloatArray, r: FloatArray | None = None) -> FloatArray:
        """The readings' information about the fitted (log) parameters at the current noise
        scale and autocorrelation time: ``J^T W J`` with :meth:`information_weights` (the
        Student-t weight ``(nu + 1) / ((nu + 3) sigma^2)`` per value, over tau; a bound's
        needs the residuals ``r``)."""
        return np.asarray((js.T * self.information_weights(r)) @ js, dtype=np.float64)

    def effective_parameters(
        self, js: FloatArray, phi: FloatArray, r: FloatArray | None = None
    ) -> tuple[float, float]:
        """How many parameters the readings fit, ``(tr S, tr(2 S - S S))`` for the linearised
        fit's hat matrix ``S`` (``tr S = tr(M)``, ``M = (H_d + H_p)^-1 H_d``): a parameter the
        readings decide counts 1 in both, one its prior decides near 0 (a prior with no
        information, 1). ``tr S`` is the effective number of parameters (Hastie T, Tibshirani
        R, Friedman J. The Elements of Statistical Learning, 2nd ed. 2009, eq. 3.50 and
        section 7.6); ``n - tr(2 S - S S)`` are the degrees of freedom of the residuals, those
        that make the residual sum of squares over them an unbiased estimate of the error
        variance for a linear smoother (Hastie T, Tibshirani R. Generalized Additive Models,
        1990, section 3.5; with ``tr(2 S - S S) >= tr S``)."""
        return _parameter_counts(self.data_hessian(js, r), self.prior_grad_hess(phi)[1])

    def terms(self, r: FloatArray) -> FloatArray:
        """Negative log-likelihood of each reading ``[..., T]`` given its residual ``r`` (reading
        minus prediction), before the division by tau: Student-t (``NU``, scale ``sigma``) for
        a value; for a bound, minus the log of the probability that a reading falls beyond it,
        ``-log F(-c r / sigma)`` with ``F`` the t distribution function and ``c`` the reading's
        code (-1 "<", 1 ">"): a censored observation (Tobin J. Estimation of relationships
        for limited dependent variables. Econometrica 1958;26(1):24-36; with t errors,
        Arellano-Valle RB, Castro LM, Gonzalez-Farias G, Munoz-Gajardo KA. Student-t censored
        regression model: properties and inference. Stat Methods Appl 2012;21:453-473)."""
        nu = NU
        s = np.asarray(self.sigma)
        const = (
            math.lgamma((nu + 1) / 2)
            - math.lgamma(nu / 2)
            - 0.5 * math.log(nu * math.pi)
            - np.log(s)
        )
        out = (nu + 1) / 2 * np.log1p(r * r / (nu * s * s)) - const
        if not self.exact.all():
            u = -self.censor * r / s
            out = np.where(self.exact, out, -_t_logcdf(u))
        return np.asarray(out, dtype=np.float64)

    def rho(self, r: FloatArray) -> FloatArray:
        """Negative log-likelihood of residuals ``[..., T]`` (:meth:`terms`), summed over T."""
        return np.asarray(np.sum(self.terms(r), axis=-1), dtype=np.float64)

    def objective(self, phi: FloatArray, pred: FloatArray) -> FloatArray:
        r = self.y[None, :] - pred
        if self.multi:
            # per reading: its observable's scale (in rho) and autocorrelation time
            return self.rho_terms(r) + self.neg_log_prior(phi)
        return self.rho(r) / self.tau + self.neg_log_prior(phi)

    def rho_terms(self, r: FloatArray) -> FloatArray:
        """Several observables: the negative log-likelihood of each reading divided by its
        observable's autocorrelation time, summed over T."""
        return np.asarray(np.sum(self.terms(r) / np.asarray(self.tau), axis=-1), dtype=np.float64)

    def irls(self, r: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(psi, w)`` per reading at residuals ``r [T]``: ``psi`` minus the derivative of
        its term (:meth:`terms`) by the prediction, ``w`` a non-negative curvature for the
        Gauss-Newton step. A value: the Student-t score ``w r`` and IRLS weight ``w = (nu +
        1) / (nu sigma^2 + r^2)`` (Lange et al. 1989). A bound: with ``u = -c r / sigma``,
        ``psi = c lambda(u) / sigma`` and ``w = max(lambda^2 + u (nu + 1) / (nu + u^2)
        lambda, 0) / sigma^2``, ``lambda = f / F`` the t hazard (the second derivative of
        ``-log F``; clipped at 0 where the t tail makes it negative)."""
        s = np.asarray(self.sigma)
        w = (NU + 1) / (NU * s**2 + r * r)
        psi = w * r
        if self.exact.all():
            return np.asarray(psi, dtype=np.float64), np.asarray(w, dtype=np.float64)
        c = self.censor
        u = -c * r / s
        lam = np.exp(_t_logpdf(u) - _t_logcdf(u))
        curv = np.maximum(lam * lam + u * (NU + 1) / (NU + u * u) * lam, 0.0) / s**2
        psi = np.where(self.exact, psi, c * lam / s)
        w = np.where(self.exact, w, curv)
        return np.asarray(psi, dtype=np.float64), np.asarray(w, dtype=np.float64)

    def information_weights(self, r: FloatArray | None = None) -> FloatArray:
        """Per reading ``[T]``: the information it carries about the prediction, over tau.
        A value: the expected Fisher information of the t likelihood, ``(nu + 1) / ((nu + 3)
        sigma^2)``; a bound: the observed curvature of :meth:`irls` at the residuals ``r``
        (near 0 for a bound the prediction is well beyond: "<40" when the prediction is 20)."""
        s = np.asarray(self.sigma)
        w = np.broadcast_to((NU + 1) / ((NU + 3) * s**2), self.y.shape)
        if not self.exact.all():
            if r is None:
                raise ValueError("information_weights: a bound needs the residuals")
            w = np.where(self.exact, w, self.irls(r)[1])
        return np.asarray(w / np.asarray(self.tau), dtype=np.float64)

    def hinge(self, r: FloatArray) -> FloatArray:
        """Residuals with each bound's taken as 0 where the prediction is beyond the bound
        (consistent with it) and as the distance to the bound otherwise: at least what the
        reading says the prediction misses by."""
        if self.exact.all():
            return r
        c = self.censor
        return np.asarray(
            np.where(c > 0, np.maximum(r, 0.0), np.where(c < 0, np.minimum(r, 0.0), r)),
            dtype=np.float64,
        )

    def floor(self, name: str) -> float:
        f = self.spec.noise_floor
        return float(f.get(name, 0.0)) if isinstance(f, Mapping) else float(f)

    def update_noise(self, r: FloatArray) -> None:
        """EM for the t scale (Lange et al. 1989), then tau from the lag-1 autocorrelation;
        the :class:`FitSpec`'s small-sample correction and floor on the scale (each
        observable's own, when there are several)."""
        correction = 1.0
        n = int(self.exact.sum())
        if self.spec.small_sample:
            k = len(self.idx) if self.k_eff is None else self.k_eff
            correction = math.sqrt(n / max(n - k, 1.0))
        # the scale from the values alone (a bound's residual is not an error's value); tau
        # from the series with each bound's hinge residual, so that its lags stay in step
        h = self.hinge(r)
        if not self.multi:
            if n >= 2:
                self.sigma = max(_t_scale(r[self.exact]) * correction, self.floor(self.observable))
            self.tau = integrated_autocorrelation_time(h)
            return
        sigma = np.empty(r.size)
        tau = np.empty(r.size)
        old = np.broadcast_to(np.asarray(self.sigma, dtype=np.float64), r.shape)
        for g, name in enumerate(self._names()):
            mine = self.group == g
            values = mine & self.exact
            if int(values.sum()) < 2:
                sigma[mine] = old[mine]
                tau[mine] = integrated_autocorrelation_time(h[mine])
                continue
            estimate = _t_scale(r[values]) * correction
            if name in self.spec.noise_prior:
                guess, nu0 = self.spec.noise_prior[name]
                m = int(values.sum())
                estimate = math.sqrt((nu0 * guess**2 + m * estimate**2) / (nu0 + m))
            sigma[mine] = max(estimate, self.floor(name))
            tau[mine] = integrated_autocorrelation_time(h[mine])
        self.sigma = sigma  # type: ignore[assignment]
        self.tau = tau  # type: ignore[assignment]


def _parameter_counts(h_data: FloatArray, h_prior: FloatArray) -> tuple[float, float]:
    """``(tr S, tr(2 S - S S))`` from the data's and the prior's Hessians (see
    :meth:`_Problem.effective_parameters`); both the number of parameters where they cannot
    be computed."""
    k = float(h_data.shape[0])
    try:
        m = np.linalg.solve(h_data + h_prior, h_data)
    except np.linalg.LinAlgError:
        return k, k
    k_fit = float(np.trace(m))
    k_res = 2.0 * k_fit - float(np.trace(m @ m))
    if not (math.isfinite(k_fit) and math.isfinite(k_res)):
        return k, k
    return min(max(k_fit, 0.0), k), min(max(k_res, 0.0), k)


def _t_logpdf(u: FloatArray) -> FloatArray:
    """Log density of the standard Student-t with ``NU`` degrees of freedom."""
    const = math.lgamma((NU + 1) / 2) - math.lgamma(NU / 2) - 0.5 * math.log(NU * math.pi)
    return np.asarray(const - (NU + 1) / 2 * np.log1p(u * u / NU), dtype=np.float64)


def _t_logcdf(u: FloatArray) -> FloatArray:
    """Log distribution function of the standard Student-t with ``NU`` degrees of freedom,
    accurate in both tails (``log1p(-F(-u))`` above 0)."""
    from scipy.special import stdtr

    u = np.asarray(u, dtype=np.float64)
    low = np.log(np.maximum(stdtr(NU, np.minimum(u, 0.0)), 1e-300))
    high = np.log1p(-stdtr(NU, -np.maximum(u, 0.0)))
    return np.asarray(np.where(u <= 0.0, low, high), dtype=np.float64)


def _t_scale(r: FloatArray) -> float:
    """Maximum-likelihood scale of Student-t (``NU``) residuals by EM (Lange et al. 1989)."""
    s2 = max(float(np.mean(r * r)), 1e-12)
    for _ in range(50):
        w = (NU + 1) / (NU + r * r / s2)
        new = max(float(np.mean(w * r * r)), 1e-12)
        if abs(new - s2) < 1e-10 * s2:
            s2 = new
            break
        s2 = new
    return math.sqrt(s2)


def integrated_autocorrelation_time(r: FloatArray) -> float:
    """Integrated autocorrelation time of a series, in samples (>= 1).

    tau = 1 + 2 sum_{k=1..M} rho_k with Sokal's automatic window: the smallest M with
    M >= 5 tau(M) (Sokal A. Monte Carlo methods in statistical mechanics. In: Functional
    Integration, Springer 1997, section 3; the estimator of emcee). Capped at n / 10.

    >>> rng = np.random.default_rng(0)
    >>> e = np.zeros(20000)
    >>> for i in range(1, e.size):
    ...     e[i] = 0.5 * e[i - 1] + rng.standard_normal()
    >>> abs(integrated_autocorrelation_time(e) - 3.0) < 0.3  # AR(1): (1 + 0.5) / (1 - 0.5)
    True
    """
    x = np.asarray(r, dtype=np.float64) - float(np.mean(r))
    n = x.size
    if n < 4 or not np.any(x):
        return 1.0
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(x, size)
    acf = np.fft.irfft(f * np.conj(f), size)[:n]
    acf = acf / acf[0]
    taus = 2.0 * np.cumsum(acf) - 1.0
    window = np.arange(n) >= 5.0 * taus
    m = int(np.argmax(window)) if window.any() else n - 1
    return float(min(max(taus[m], 1.0), max(1.0, n / 10.0)))


def _lm(
    prob: _Problem, phis: FloatArray, bases: FloatArray, max_iter: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, int, bool]:
    """Levenberg-Marquardt from every start (``phis [S, K]``, each with its base ``[S, P]``)
    at once: one solver call per iteration, rows = the trial point of every active start and
    its K forward-difference perturbations.

    Returns per start: phi ``[S, K]``, objective ``[S]``, prediction ``[S, T]``, Jacobian of
    the prediction ``[S, T, K]`` at phi, the iterations used and whether all converged.
    """
    s_count, k = phis.shape

    def evaluate(points: FloatArray, which: Any) -> tuple[FloatArray, FloatArray]:
        pts = np.repeat(points, k + 1, axis=0).reshape(points.shape[0], k + 1, k)
        pts[:, 1:, :] += np.eye(k)[None] * FD_STEP
        rows = prob.full(pts.reshape(-1, k), np.repeat(bases[which], k + 1, axis=0))
        pred = prob.predict(rows).reshape(points.shape[0], k + 1, -1)
        jac = (pred[:, 1:, :] - pred[:, :1, :]) / FD_STEP  # [S, K, T]
        return pred[:, 0, :], np.transpose(jac, (0, 2, 1))

    phi = np.clip(phis, prob.log_lo, prob.log_hi)
    pred, jac = evaluate(phi, np.arange(s_count))
    obj = prob.objective(phi, pred)
    lam = np.full(s_count, 1e-2)
    done = np.zeros(s_count, dtype=bool)
    iterations = 0
    while iterations < max_iter:
        active = np.flatnonzero(~done)
        if active.size == 0:
            break
        iterations += 1
        trial = np.empty((active.size, k))
        for j, s in enumerate(active):
            psi, w = prob.irls(prob.y - pred[s])
            js = jac[s]
            g_prior, h_prior = prob.prior_grad_hess(phi[s])
            if prob.multi:
                w = w / prob.tau
                psi = psi / prob.tau
                grad = -(js.T @ psi) + g_prior
                hess = (js.T * w) @ js + h_prior
            else:
                grad = -(js.T @ psi) / prob.tau + g_prior
                hess = (js.T * w) @ js / prob.tau + h_prior
            damp = hess + lam[s] * np.diag(np.maximum(np.diag(hess), 1e-12))
            try:
                step = np.linalg.solve(damp, -grad)
            except np.linalg.LinAlgError:
                step = -grad * 1e-3
            trial[j] = np.clip(phi[s] + step, prob.log_lo, prob.log_hi)
        t_pred, t_jac = evaluate(trial, active)
        t_obj = prob.objective(trial, t_pred)
        for j, s in enumerate(active):
            moved = float(np.max(np.abs(trial[j] - phi[s])))
            if t_obj[j] < obj[s]:
                gain = obj[s] - t_obj[j]
                phi[s], pred[s], jac[s], obj[s] = trial[j], t_pred[j], t_jac[j], t_obj[j]
                lam[s] = max(lam[s] / 3.0, 1e-7)
                if gain < 1e-6 * (1.0 + abs(obj[s])) or moved < 1e-5:
                    done[s] = True
            else:
                lam[s] *= 4.0
                if lam[s] > 1e8 or moved < 1e-7:
                    done[s] = True
    return phi, obj, pred, jac, iterations, bool(done.all())


def sokal_window(r: FloatArray) -> int:
    """Sokal's automatic window M of a series (the smallest M with M >= 5 tau(M); see
    :func:`integrated_autocorrelation_time`), in samples."""
    x = np.asarray(r, dtype=np.float64) - float(np.mean(r))
    n = x.size
    if n < 4 or not np.any(x):
        return 0
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(x, size)
    acf = np.fft.irfft(f * np.conj(f), size)[:n]
    taus = 2.0 * np.cumsum(acf / acf[0]) - 1.0
    window = np.arange(n) >= 5.0 * taus
    return int(np.argmax(window)) if window.any() else n - 1


def _robust_covariance(
    jac: FloatArray, r: FloatArray, sigma: float, h_prior: FloatArray
) -> FloatArray:
    """Posterior covariance with the likelihood's information replaced by the Godambe
    (sandwich) information A B^-1 A: A = sum_t w J_t J_t^T the expected Fisher information of
    the Student-t readings (``w = (nu + 1) / ((nu + 3) sigma^2)``), B the heteroskedasticity
    and autocorrelation consistent estimate of the score covariance, sum over lags |l| <= L of
    (1 - |l| / (L + 1)) sum_t g_t g_{t+l}^T with g_t = J_t psi(r_t), psi the t score (Newey WK,
    West KD. A simple, positive semi-definite, heteroskedasticity and autocorrelation
    consistent covariance matrix. Econometrica 1987;55(3):703-708; the sandwich of a
    misspecified likelihood: White H. Maximum likelihood estimation of misspecified models.
    Econometrica 1982;50(1):1-25), L Sokal's window of the residuals. Returns
    (A B^-1 A + prior Hessian)^-1."""
    w = (NU + 1) / ((NU + 3) * sigma**2)
    a = w * (jac.T @ jac)
    psi = (NU + 1) * r / (NU * sigma**2 + r * r)
    g = jac * psi[:, None]
    lag = min(sokal_window(r), r.size - 1)
    b = g.T @ g
    for k in range(1, lag + 1):
        c = g[:-k].T @ g[k:]
        b += (1.0 - k / (lag + 1.0)) * (c + c.T)
    try:
        info = a @ np.linalg.solve(b, a)
        out = np.linalg.inv((info + info.T) / 2.0 + h_prior)
    except np.linalg.LinAlgError:
        return np.asarray(np.linalg.pinv(a + h_prior), dtype=np.float64)
    return np.asarray((out + out.T) / 2.0, dtype=np.float64)


def _log_det(h: FloatArray) -> float:
    sign, logdet = np.linalg.slogdet(h)
    return float(logdet) if sign > 0 else math.inf


def _marginal_covariance(
    hess: FloatArray, cross: FloatArray, nuisance: FloatArray, fallback: FloatArray
) -> FloatArray:
    """Covariance of the parameters with nuisance parameters marginalised, from the joint
    Hessian ``[[hess, cross], [cross', nuisance]]``: the inverse of the Schur complement
    ``hess - cross nuisance^-1 cross'`` (the top-left block of the joint inverse; Cox DR,
    Reid N. J R Stat Soc B 1987;49(1):1-39, section 2). ``fallback`` when the complement is
    not positive definite."""
    try:
        marginal = hess - cross @ np.linalg.solve(nuisance, cross.T)
        if np.all(np.linalg.eigvalsh((marginal + marginal.T) / 2.0) > 0):
            return np.asarray(np.linalg.inv(marginal), dtype=np.float64)
    except np.linalg.LinAlgError:
        pass
    return fallback


def _meal_hypothesis(
    prob: _Problem,
    phi0: FloatArray,
    base: FloatArray,
    obj0: float,
    hess0: FloatArray,
    meals: UnannouncedMeals,
    max_iter: int,
) -> MealHypothesis | None:
    """The MAP refitted with the unannounced ``meals`` as known events, and its posterior
    probability against the MAP without them (``phi0``, objective ``obj0``, Gauss-Newton
    Hessian ``hess0``).

    Both hypotheses share the Student-t scale and tau of the calibration. The refit's
    covariance is that of its parameters with the meals' sizes, which were estimated, not
    known, marginalised: the inverse of the Schur complement of the sizes in the joint
    Gauss-Newton information (each size's column the model's response per gram at its onset,
    :func:`meal_responses`, at the refit; Cox DR, Reid N. J R Stat Soc B 1987;49(1):1-39,
    section 2), wider than with the meals as known events. The evidence of each
    is the Laplace approximation, log p(y | H) = -U(MAP) + K/2 log(2 pi) - 1/2 log det(H)
    with U the negative log posterior and H its Hessian (Kass RE, Raftery AE. Bayes factors.
    J Am Stat Assoc 1995;90(430):773-795, section 4.1.1, eq. 5); the m meals' onsets and
    sizes, found by the search, get the Schwarz penalty of their 2m parameters, m log(n / tau)
    (Kass & Raftery section 4.1.3), which is also the threshold each had to pass
    (:func:`estimate_unannounced_meals`); the prior odds are those of m against no unannounced
    meals in the data's span under the population prior of their rate (negative binomial:
    Gamma(a + m) / (Gamma(a) m!) (T / (b + T))^m for Gamma(a, b) and T days). The weight is
    p(H1 | y) = 1 / (1 + exp(-log BF - log prior odds)), the Bayesian model average's share of
    the meal hypothesis (Hoeting JA, Madigan D, Raftery AE, Volinsky CT. Bayesian model
    averaging: a tutorial. Stat Sci 1999;14(4):382-417, eq. 1).
    """
    extra = [
        Event("meal", float(tm), {"carbs_g": float(g)}, len(prob.scenario.events) + k)
        for k, (tm, g) in enumerate(zip(meals.times_min, meals.carbs_g, strict=True))
    ]
    scenario = Scenario(
        events=tuple(sorted((*prob.scenario.events, *extra), key=lambda e: (e.t_min, e.index)))
    )
    alt = _Problem(
        prob.model,
        prob.spec,
        prob.idx,
        prob.t,
        prob.y,
        scenario,
        prob.observable,
        censor=prob.censor,
    )
    alt.sigma, alt.tau, alt.priors = prob.sigma, prob.tau, prob.priors
    phi, obj, pred, jac, _, _ = _lm(alt, phi0[None, :], base[None, :], max_iter)
    wt = alt.information_weights(alt.y - pred[0])  # per reading, over tau
    _, h_prior = alt.prior_grad_hess(phi[0])
    hess = (jac[0].T * wt) @ jac[0] + h_prior
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.linalg.eigvalsh(hess) > 0):
        return None
    # the sizes were estimated, not known: the parameters' covariance is the marginal of the
    # joint Laplace posterior of parameters and sizes (flat in the sizes near their values),
    # the inverse of the Schur complement hess - B Hcc^-1 B' (Cox & Reid 1987, section 2)
    params1 = alt.full(phi[0], base[None, :])[0]
    t_min = prob.t * TIME_UNIT_MIN[prob.model.time_unit]
    resp = meal_responses(prob.model, params1, scenario, prob.observable, t_min, meals.times_min)
    cov = _marginal_covariance(hess, (jac[0].T * wt) @ resp, (resp.T * wt) @ resp, cov)
    m = meals.count
    n_eff = max(prob.t.size / max(prob.tau, 1.0), 2.0)
    log_bf = -float(obj[0]) + obj0 - 0.5 * (_log_det(hess) - _log_det(hess0)) - m * math.log(n_eff)
    a, b, days = meals.prior_shape, meals.prior_days, meals.span_days
    if a > 0 and days > 0:
        log_odds = (
            math.lgamma(a + m)
            - math.lgamma(a)
            - math.lgamma(m + 1)
            + m * math.log(days / (b + days))
        )
    else:
        log_odds = 0.0
    z = log_bf + log_odds
    weight = 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
    params = alt.full(phi[0], base[None, :])[0]
    return MealHypothesis(
        params=params,
        covariance=(cov + cov.T) / 2.0,
        weight=float(weight),
        log_bayes_factor=float(log_bf),
    )


# ---------------------------------------------------------------------------- calibrate
def _check_names(
    model: type[Model], spec: FitSpec, fit: Sequence[str] | None, fixed: Mapping[str, float]
) -> tuple[str, ...]:
    known = model.parameter_names()
    names = tuple(spec.default_fit if fit is None else fit)
    if isinstance(fit, str):
        raise CalibrationError("fit: give a list of parameter names, not one string")
    if not names:
        raise CalibrationError(f"fit: no parameters to fit for model {model.name!r}")
    if len(set(names)) != len(names):
        raise CalibrationError(f"fit: a parameter is named twice in {list(names)}")
    for n in names:
        if n not in known:
            raise CalibrationError(
                f"fit: unknown parameter {n!r} for model {model.name!r} (known: {', '.join(known)})"
            )
        if n in spec.derived:
            raise CalibrationError(
                f"fit: {n!r} is derived from the other parameters (the basal steady state) "
                f"and cannot be fitted; derived: {', '.join(spec.derived)}"
            )
    for n, v in fixed.items():
        if n not in known:
            raise CalibrationError(
                f"fixed: {n!r} is not a parameter of model {model.name!r} "
                f"(known: {', '.join(known)})"
            )
        if n in names:
            raise CalibrationError(f"fixed: {n!r} is also in fit; a parameter is one or the other")
        if n in spec.derived:
            raise CalibrationError(f"fixed: {n!r} is derived from the others and cannot be set")
        par = model.parameters[known.index(n)]
        number = isinstance(v, int | float) and not isinstance(v, bool)
        if not (number and math.isfinite(v) and par.lower <= v <= par.upper):
            raise CalibrationError(f"fixed: {n} = {v!r} is outside [{par.lower}, {par.upper}]")
    return names


def steady_observables(
    model: type[Model], params: FloatArray, names: Sequence[str]
) -> dict[str, FloatArray]:
    """Each named observable at the model's resting steady state (its :meth:`initial_state`),
    one value per parameter row (``[N]``)."""
    p = np.atleast_2d(np.asarray(params, dtype=np.float64))
    x = model.initial_state(p)[:, None, :]
    out = {}
    for name in names:
        value = model.observable(name).evaluate(x, p, np.zeros(1))
        out[name] = np.asarray(value, dtype=np.float64)[:, 0]
    return out


def _steady_readings(
    model: type[Model], params: FloatArray, names: Sequence[str], counts: Sequence[int]
) -> FloatArray:
    """Predictions ``[N, T]`` of readings of a steady state: each observable's steady value
    repeated for its ``count`` readings, in the order of ``names``."""
    values = steady_observables(model, params, names)
    return np.concatenate(
        [np.repeat(values[n][:, None], c, axis=1) for n, c in zip(names, counts, strict=True)],
        axis=1,
    )


def _default_observable(
    model: type[Model], spec: FitSpec, data: PatientData
) -> str | tuple[str, ...]:
    """The observable a calibration fits when the caller does not say (see :func:`calibrate`)."""
    if spec.choose_observable is not None:
        return spec.choose_observable(data)
    if spec.observable is not None:
        return spec.observable
    names = [o.name for o in model.observables]
    if "cgm_mg_dl" in names:
        return "cgm_mg_dl"
    for name in names:
        if data.count(name):
            return name
    return names[0] if names else "cgm_mg_dl"


def _valid_rows(model: type[Model], rows: FloatArray) -> NDArray[np.bool_]:
    """Which parameter rows the model accepts (:meth:`Model.check_params`), row by row only
    when the batch as a whole is refused."""
    good = np.ones(rows.shape[0], dtype=bool)
    if rows.shape[0] == 0:
        return good
    try:
        model.check_params(rows)
    except ModelError:
        for r in range(rows.shape[0]):
            try:
                model.check_params(rows[r : r + 1])
            except ModelError:
                good[r] = False
    return good


def _personal_priors(
    model: type[Model], fitted: Sequence[str], priors: Mapping[str, Prior] | None
) -> dict[str, Prior]:
    """``calibrate(priors=...)`` checked: fitted parameters only, a normal or log-normal
    prior with a positive scale and a source."""
    out: dict[str, Prior] = {}
    for name, prior in (priors or {}).items():
        if name not in fitted:
            raise CalibrationError(
                f"priors: {name!r} is not fitted (fitted: {', '.join(fitted)}; model {model.name})"
            )
        if not isinstance(prior, Prior) or prior.kind not in ("normal", "lognormal"):
            raise CalibrationError(f"priors[{name!r}]: need a normal or log-normal Prior")
        if not (math.isfinite(prior.loc) and math.isfinite(prior.scale) and prior.scale > 0):
            raise CalibrationError(
                f"priors[{name!r}]: need a finite location and a positive scale, got "
                f"{prior.loc!r}, {prior.scale!r}"
            )
        if not prior.source:
            raise CalibrationError(f"priors[{name!r}]: say where it comes from (source)")
        out[name] = prior
    return out


def _prior_median(model: type[Model]) -> FloatArray:
    out = []
    for p in model.parameters:
        loc = p.prior.loc
        out.append(math.exp(loc) if p.prior.kind == "lognormal" else loc)
    return np.asarray(
        np.clip(np.array(out), model.lower_bounds(), model.upper_bounds()), dtype=np.float64
    )


def calibrate(
    model: type[Model],
    data: PatientData,
    *,
    fit: Sequence[str] | None = None,
    fixed: Mapping[str, float] | None = None,
    base: str | FloatArray = "nearest",
    starts: int = 4,
    seed: int | None = 0,
    observable: str | Sequence[str] | None = None,
    min_readings: int | None = None,
    max_iter: int = MAX_ITER,
    find_meals: bool = True,
    meal_hypotheses: bool = True,
    jointly: bool = True,
    priors: Mapping[str, Prior] | None = None,
) -> Calibration:
    """Fit ``model``'s parameters ``fit`` to the patient's ``observable`` readings (MAP with
    the population priors, Laplace uncertainty); see the module docstring.

    Parameters
    ----------
    fit
        Parameters to fit (default: the model's :class:`FitSpec`; UVA/Padova: basal glucose,
        Vmx, kp2, kabs).
    fixed
        Values for non-fitted parameters known for this patient (``{"bw_kg": 72}``).
    base
        Where the other parameters come from: ``"nearest"`` (the preset whose own values fit
        the readings best; the prior medians for a model without presets), ``"median"``
        (prior medians), a preset name, or a full vector ``[P]``.
    starts
        Number of optimiser starts: the base, then presets and prior draws (``seed``).
    observable
        The observable the readings are of, or several fitted jointly, each with its own
        reading-error scale (default: the model's :class:`FitSpec`, else ``cgm_mg_dl`` where
        the model has it, else its first observable with readings).
    min_readings
        Fewest readings accepted (default: the :class:`FitSpec`'s, 24 for CGM), and at least
        :attr:`FitSpec.readings_per_parameter` per fitted parameter.
    find_meals
        Look for unannounced meals in the residuals about the MAP (models whose
        :class:`FitSpec` has ``unannounced_meals``; :func:`estimate_unannounced_meals`), for
        :meth:`Calibration.predict` to draw such meals beyond the data. The MAP is not
        changed by them.
    jointly
        Search the meals with the fitted parameters re-adjusted to each candidate (profiled
        out in the fit's linearisation, with the prior; :func:`estimate_unannounced_meals`
        with ``jacobian``), so that a meal the MAP has partly absorbed is found at its own
        size; False: the parameters held at the MAP during the search.
    meal_hypotheses
        When meals are found, also refit the MAP with them as known events and weigh the two
        (:class:`MealHypothesis`, :func:`_meal_hypothesis`), for :meth:`Calibration.predict`
        to average; False: the MAP alone.
    priors
        This patient's priors of fitted parameters, in place of the model's population priors
        (default: the :class:`FitSpec`'s ``priors`` of the base, e.g. a body-fat fraction
        predicted from sex, age and BMI with the prediction's error); each needs a source,
        and is recorded with the calibration (``provenance["priors"]``).

    Raises
    ------
    CalibrationError
        Missing or too few readings, missing events the model needs, unknown or derived
        parameter names, values outside the bounds, bad options.
    """
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    fixed = dict(fixed or {})
    if starts < 1:
        raise CalibrationError(f"starts: need at least 1, got {starts}")
    spec = fit_spec(model)
    names = _check_names(model, spec, fit, fixed)
    chosen = _default_observable(model, spec, data) if observable is None else observable
    if min_readings is None:
        min_readings = spec.min_readings
    wanted = (chosen,) if isinstance(chosen, str) else tuple(chosen)
    if not wanted or len(set(wanted)) != len(wanted):
        raise CalibrationError(f"observable: need distinct observable names, got {observable!r}")
    for name in wanted:
        if name not in {o.name for o in model.observables}:
            raise CalibrationError(
                f"observable: model {model.name!r} has no observable {name!r} "
                f"(it has: {', '.join(o.name for o in model.observables)})"
            )
    observable = wanted[0]
    need = max(min_readings, spec.readings_per_parameter * len(names))
    if spec.small_sample:
        need = max(need, len(names) + 3)
    series: list[tuple[FloatArray, FloatArray]] = []
    codes: list[IntArray] = []
    for name in wanted:
        if data.count(name) == 0:
            have = ", ".join(sorted(n for n in data.observations if data.count(n))) or "none"
            raise CalibrationError(
                f"observations[{name!r}]: no readings in the patient's data (has: {have})"
            )
        t_all, y_all = data.series(name)
        keep = t_all >= 0.0
        series.append((t_all[keep], y_all[keep]))
        codes.append(data.censoring(name)[keep])
    count = sum(ti.size for ti, _ in series)
    last = max((float(ti[-1]) for ti, _ in series if ti.size), default=0.0)
    if count < need or (last <= 0.0 and not spec.steady):
        label = observable if len(wanted) == 1 else "+".join(wanted)
        raise CalibrationError(
            f"observations[{label!r}]: {count} readings at or after minute 0, need at "
            f"least {need} (patient {data.patient or '?'})"
        )
    layout: list[tuple[str, IntArray]] | None = None
    if len(wanted) == 1:
        t, first = np.unique(series[0][0], return_index=True)
        y = series[0][1][first]
        censor = codes[0][first]
    else:
        uniq = [np.unique(ti, return_index=True) for ti, _ in series]
        t = np.unique(np.concatenate([u[0] for u in uniq]))
        y = np.concatenate([yi[u[1]] for (_, yi), u in zip(series, uniq, strict=True)])
        censor = np.concatenate([ci[u[1]] for ci, u in zip(codes, uniq, strict=True)])
        layout = [
            (name, np.searchsorted(t, u[0]).astype(np.intp))
            for name, u in zip(wanted, uniq, strict=True)
        ]
    if spec.steady and t[-1] <= 0.0:
        t = t.copy()
        t[-1] = max(t[-1], 1.0)  # one reading's time: the steady state's prediction ignores it
    t_end = float(t[-1])  # minutes, like the events
    if spec.required_events is not None:
        types, why = spec.required_events
        if not any(e.type in types for e in data.scenario.events):
            raise CalibrationError(f"scenario: no {why} (model {model.name!r})")
    problem = spec.validate(data.scenario)
    if problem is not None:
        raise CalibrationError(f"scenario: {problem} (model {model.name!r})")
    events = tuple(e for e in data.scenario.events if e.t_min <= t_end)
    scenario = Scenario(events=events)
    try:
        model.accepts(scenario)
    except ModelError as exc:
        raise CalibrationError(f"scenario: {exc}") from None

    known = model.parameter_names()
    idx = [known.index(n) for n in names]
    fixed_idx = [known.index(n) for n in fixed]
    fixed_val = np.array([float(v) for v in fixed.values()])

    def prepared(rows: FloatArray) -> FloatArray:
        r = np.array(np.atleast_2d(rows), dtype=np.float64)
        r[:, fixed_idx] = fixed_val
        return spec.prepare(model, r, scenario)

    presets = model.presets()
    names_p = list(presets)
    unit = TIME_UNIT_MIN[model.time_unit]
    prob = _Problem(model, spec, idx, t / unit, y, scenario, observable, layout, censor)
    if not prob.exact.any():
        raise CalibrationError(
            f"observations[{observable!r}]: all {y.size} readings are bounds ('<' or '>', "
            "e.g. a sensor's LOW or HIGH), no values: the reading error cannot be estimated"
        )

    def personal_priors(base_row: FloatArray) -> dict[str, Prior]:
        """The patient's priors (given, or the spec's of the base) put in ``prob``."""
        given = priors
        if given is None and spec.priors is not None:
            given = {k: v for k, v in spec.priors(model, base_row, data).items() if k in names}
        out = _personal_priors(model, names, given)
        prob.priors = [out.get(known[i], prob.priors[k]) for k, i in enumerate(idx)]
        return out

    if layout is None:
        prob.sigma = max(float(np.std(y)) * 0.2, 1e-6, prob.floor(observable))
    else:
        start_sigma = np.empty(y.size)
        for g, (name, _) in enumerate(layout):
            mine = prob.group == g
            guess = spec.noise_prior.get(name, (float(np.std(y[mine])) * 0.2, 0.0))[0]
            start_sigma[mine] = max(guess, 1e-6, prob.floor(name))
        prob.sigma = start_sigma  # type: ignore[assignment]
        prob.tau = np.ones(y.size)  # type: ignore[assignment]
    rng = np.random.default_rng(seed)
    labels: list[str]
    if isinstance(base, str) and base == "nearest" and presets:
        # every preset, its basal glucose set to the first half hour of readings (the model
        # starts at its basal steady state), scored on the data; the best `starts` are the
        # starts, each keeping its own other parameters: the best after fitting is the base
        candidates = np.array(list(presets.values()))
        gb = known.index("gb_mg_dl") if "gb_mg_dl" in known and model.name in FIT_SPECS else -1
        if gb >= 0 and "gb_mg_dl" not in fixed:
            level = float(np.median(y[t <= t[0] + 30.0]))
            candidates[:, gb] = np.clip(level, prob.lo[gb], prob.hi[gb])
        candidates = prepared(candidates)
        ok = np.all((candidates >= prob.lo) & (candidates <= prob.hi), axis=1)
        cand = np.clip(candidates, prob.lo, prob.hi)
        score = prob.objective(np.log(cand[:, idx]), prob.predict(cand))
        score[~ok] = np.inf
        # the best ceil(starts / 2) presets, each from its own values and from the prior
        # medians of the fitted parameters (so that agreement within a base can be checked)
        order = np.argsort(score)[: min((starts + 1) // 2, len(names_p))]
        median_phi = np.log(_prior_median(model)[idx])
        rows_i = [int(i) for i in order for _ in range(2)][:starts]
        bases = candidates[rows_i]
        labels = [f"nearest: {names_p[i]}" for i in rows_i]
        personal = personal_priors(bases[0])
        phi0 = np.array(
            [np.log(cand[i, idx]) if j % 2 == 0 else median_phi for j, i in enumerate(rows_i)]
        )
    else:
        if isinstance(base, str):
            if base in ("median", "nearest"):
                base_vec, label = prepared(_prior_median(model))[0], "median"
            elif base in presets:
                base_vec, label = prepared(presets[base])[0], base
            else:
                raise CalibrationError(
                    f"base: {base!r} is not 'nearest', 'median' or a preset of model "
                    f"{model.name!r} (presets: {', '.join(names_p)})"
                )
        else:
            arr = np.asarray(base, dtype=np.float64)
            if arr.shape != (len(known),):
                raise CalibrationError(f"base: need a vector of {len(known)} parameters")
            base_vec, label = prepared(arr)[0], "given"
        try:
            model.check_params(base_vec)
        except ModelError as exc:
            raise CalibrationError(f"base: {exc}") from None
        personal = personal_priors(base_vec)
        # starts: the base's own values, then presets' values and prior draws in turn
        start_phi = [np.log(base_vec[idx])]
        order_p = rng.permutation(len(names_p))
        pi = 0
        while len(start_phi) < starts:
            if len(start_phi) % 2 == 1 and pi < len(order_p):
                start_phi.append(np.log(presets[names_p[int(order_p[pi])]][idx]))
                pi += 1
            else:
                draw = np.array([prior.sample(rng, 1)[0] for prior in prob.priors])
                start_phi.append(np.log(np.clip(draw, prob.lo[idx], prob.hi[idx])))
        phi0 = np.array(start_phi)
        bases = np.repeat(base_vec[None, :], len(start_phi), axis=0)
        labels = [label] * len(start_phi)
    phi0 = np.clip(phi0, prob.log_lo, prob.log_hi)

    # round 1 with a rough noise scale from all starts; then re-estimate the t scale and tau
    # from the best start's residuals and polish the starts near the best
    phi, obj, pred, jac, iterations, converged = _lm(prob, phi0, bases, min(max_iter, 12))
    for _ in range(4):
        best = int(np.argmin(obj))
        old = (prob.sigma, prob.tau)
        if spec.small_sample and spec.small_sample_dof == "residual":
            prob.k_eff = prob.effective_parameters(jac[best], phi[best], y - pred[best])[1]
        prob.update_noise(y - pred[best])
        obj = prob.objective(phi, pred)
        ranked = np.argsort(obj)[:3]
        near = np.sort(ranked[obj[ranked] <= obj[best] + 10.0])
        p2, o2, pr2, j2, it, converged = _lm(prob, phi[near], bases[near], max_iter)
        phi[near], obj[near], pred[near], jac[near] = p2, o2, pr2, j2
        iterations += it
        if np.all(np.abs(np.asarray(prob.sigma) / old[0] - 1) < 0.02) and np.all(
            np.abs(np.asarray(prob.tau) / old[1] - 1) < 0.05
        ):
            break
    obj = prob.objective(phi, pred)
    best = int(np.argmin(obj))
    same = np.array([lab == labels[best] for lab in labels])
    agree = np.flatnonzero(same & (obj - obj[best] <= 1.0))
    spread = float(np.max(np.ptp(phi[agree], axis=0))) if agree.size > 1 else 0.0

    base_vec = bases[best]
    r = y - pred[best]
    js = jac[best]
    _, h_prior = prob.prior_grad_hess(phi[best])
    h_data = prob.data_hessian(js, r)
    k_fit, k_res = _parameter_counts(h_data, h_prior)
    if spec.small_sample_dof == "fitted":
        k_res = float(len(names))
    if spec.small_sample:
        # the reading-error scale was estimated from the residuals' n - k_res degrees of
        # freedom: the data's information is that of a Student-t posterior, variance
        # dof / (dof - 2) times
        dof = float(prob.exact.sum()) - k_res
        h_data = h_data * ((dof - 2.0) / dof)
    hess = h_data + h_prior
    try:
        cov = np.linalg.inv(hess)
        ok_cov = bool(np.all(np.linalg.eigvalsh(hess) > 0))
    except np.linalg.LinAlgError:
        cov, ok_cov = np.linalg.pinv(hess), False
    cov = (cov + cov.T) / 2.0
    # the sandwich check of the residual model: on the values (a bound has no error's value)
    ex = prob.exact
    if prob.multi:  # standardised readings: each observable's residuals over its own scale
        scale = np.asarray(prob.sigma)[ex]
        robust = _robust_covariance(js[ex] / scale[:, None], r[ex] / scale, 1.0, h_prior)
    else:
        robust = _robust_covariance(js[ex], r[ex], prob.sigma, h_prior)
    sd_ratio = np.sqrt(np.diag(robust) / np.diag(cov)) if ok_cov else np.full(len(idx), np.nan)
    map_params = prob.full(phi[best], base_vec[None, :])[0]
    meals = NO_MEALS
    if find_meals and spec.unannounced_meals is not None and "meal" in model.event_types:
        onsets = meal_onsets(t)
        design = meal_responses(model, map_params, scenario, observable, t, onsets)
        g_prior, _ = prob.prior_grad_hess(phi[best])
        meals = estimate_unannounced_meals(
            t,
            prob.hinge(r),  # a bound: what it says the prediction misses by, at least
            onsets,
            design,
            sigma=prob.sigma,
            tau=prob.tau,
            prior=spec.unannounced_meals,
            jacobian=js if jointly else None,
            prior_hessian=h_prior if jointly else None,
            prior_gradient=g_prior if jointly else None,
        )
    if meals.prior_shape > 0 and spec.unannounced_tail_min is not None:
        eaten = [e.t_min for e in scenario.events if e.type == "meal" and e.t_min <= t_end]
        day = spec.day_min
        opened, length = eating_window([*eaten, *meals.times_min], spec.unannounced_tail_min, day)
        meals = dataclasses.replace(
            meals, window_open_min=opened, window_len_min=length, day_min=day
        )
    hypothesis = None
    if meals.count and meal_hypotheses:
        hypothesis = _meal_hypothesis(
            prob, phi[best], base_vec, float(obj[best]), hess, meals, max_iter
        )

    provenance: dict[str, Any] = {
        "patient": data.patient,
        "start": data.start.astimezone(dt.UTC).isoformat() if data.start else None,
        "fact_ids": [int(i) for i in data.fact_ids],
        "observable": observable,
        "observables": list(wanted),
        "skipped": list(data.skipped),
        "context": list(data.context),
        "priors": {
            name: {"kind": p.kind, "loc": p.loc, "scale": p.scale, "source": p.source}
            for name, p in personal.items()
        },
        "readings": int(t.size),
        "censored_readings": int(np.count_nonzero(censor)),
        "span_min": t_end,
        "time_unit": model.time_unit,
        "events": len(events),
    }
    diagnostics: dict[str, Any] = {
        "converged": bool(converged),
        "covariance_positive_definite": ok_cov,
        "starts": int(phi.shape[0]),
        "agreeing_starts": int(agree.size),
        "spread": spread,
        "starts_agree": bool(agree.size > 1 and spread < 0.05),
        "starts_on_best_base": int(same.sum()),
        "start_log_posteriors": [float(-o) for o in obj],
        "iterations": int(iterations),
        "simulations": int(prob.simulations),
        "rows": int(prob.rows),
        "base": labels[best],
        "start_bases": labels,
        "robust_sd_ratio": {n: float(v) for n, v in zip(names, sd_ratio, strict=True)},
        "effective_parameters": k_fit,
        "residual_dof": float(y.size) - k_res,
        "seconds": time.perf_counter() - t_wall,
        "cpu_seconds": time.process_time() - t_cpu,
    }
    return Calibration(
        model=model.name,
        version=model.version,
        fitted=names,
        params=map_params,
        base=base_vec,
        covariance=cov,
        log_posterior=float(-obj[best]),
        observable=observable,
        noise_scale=prob.scales()[observable],
        noise_scales=prob.scales() if prob.multi else {},
        noise_df=NU,
        residual_sd=float(np.std(r[(prob.group == 0) & ex])),
        autocorrelation_time=float(np.asarray(prob.tau).ravel()[0]),
        diagnostics=diagnostics,
        provenance=provenance,
        model_type=model,
        residuals=np.asarray(r[(prob.group == 0) & ex], dtype=np.float64),
        unannounced=meals,
        meal_hypothesis=hypothesis,
    )
