"""Sequential assimilation: keep a twin in step with streaming data, and forecast with bands.

:class:`ParticleFilter` follows one patient with ``M`` particles. A particle is one row of the
batched solver: a parameter set (``params[M, P]``, e.g. a calibration's posterior samples, the
population prior or presets) and a state (``states[M, S]``). Each reading of the chosen
observable (default: CGM, ``cgm_mg_dl``, LOINC 99504-3) goes through one step of a bootstrap
sequential importance resampling filter (Gordon, Salmond & Smith 1993 [1]_):

1. **Predict.** Every particle's state moves from the last reading's time to this one under the
   known events (meals, boluses, basal rates: the medtwin event format, minutes on the same
   axis as the readings) with the model's compiled kernels (:class:`medtwin.model.stepper.Stepper`,
   adaptive Dormand-Prince 5(4)); then the states named in ``process_noise`` are multiplied by
   log-normal noise of relative standard deviation ``sd * sqrt(dt / 60 min)`` (mean 1): what
   the model does not know (an unannounced meal, exercise, stress) moves glucose, and this lets
   the particles follow it.
2. **Weigh.** Each particle's weight is multiplied by the likelihood of the reading given its
   predicted observable (see *Observation model*); the running sum of the log of the weighted
   mean likelihood is :attr:`ParticleFilter.log_likelihood`, the filter's estimate of
   ``log p(y_1..y_k)`` (Doucet & Johansen 2011 [6]_).
3. **Resample** when the effective sample size ``ESS = 1 / sum(w_i^2)`` (Kong, Liu & Wong 1994
   [2]_) falls below ``ess_threshold * M``, by systematic resampling (Kitagawa 1996 [3]_: one
   uniform draw for all particles; compared with the other schemes by Douc, Cappe & Moulines
   2005 [7]_).
4. **Rejuvenate** (after a resampling) the parameters named in ``rejuvenate`` with the kernel
   shrinkage of Liu & West 2001 [4]_: in log space (linear for parameters
   whose lower bound is not positive), ``theta_i <- a theta_i + (1 - a) mean + h z_i``,
   ``z_i ~ N(0, V)``, with ``V`` the particles' covariance, ``a = (3 delta - 1) / (2 delta)``
   and ``h^2 = 1 - a^2`` for a discount factor ``delta`` (default 0.98), so that the mixture
   keeps the particles' mean and variance while resampled copies spread apart again; values
   are then clipped into the parameter's bounds. Liu & West pair the kernel with an auxiliary
   particle filter; here it follows a plain bootstrap step, as is common practice (e.g. the
   "kernel smoothing" filters discussed by Chopin & Papaspiliopoulos 2020 [8]_).

Observation model
-----------------
For a CGM observable (LOINC 99504-3) the default ``noise="Dexcom"`` is the sensor error model
of the UVA/Padova simulator (Breton & Kovatchev 2008 [5]_, as in simglucose's
``sensor/noise_gen.py`` and :func:`medtwin.physiology.uva_padova.cgm_noise_mg_dl`): a Gaussian
AR(1) sequence ``e_k = PACF (e_{k-1} + w_k)`` every 15 min (stationary variance
``s^2 = PACF^2 / (1 - PACF^2)``), read through the Johnson SU transform
``eps = xi + lambda sinh((e - gamma) / delta)`` (parameters from simglucose
``params/sensor_params.csv``). CGM errors are strongly autocorrelated, so a likelihood that
treats each 5-minute reading's error as independent would count the same error three times and
make the filter overconfident. Instead each particle carries its own sensor error ``e``: a
reading ``y`` and the particle's glucose ``g`` give ``e* = gamma + delta asinh((y - g - xi) /
lambda)`` exactly, and the likelihood is the AR(1) transition density of ``e*`` from the
particle's previous ``e`` (correlation ``PACF^(dt / 15 min)``, the continuous-time
Ornstein-Uhlenbeck reading of the AR(1) process; simglucose interpolates between its 15-min
knots) times the Jacobian ``delta / sqrt(lambda^2 + (y - g - xi)^2)``. The particle then keeps
``e = e*``. Readings at the sensor's limits (39 and 600 mg/dL) are censored: the likelihood is
the probability of reading at or beyond the limit, and ``e`` is drawn from the truncated
transition; so is a reading the record holds as a bound (a sensor's LOW sent as "<40", HIGH as
">400": ``PatientData.censored``, the ``censored`` codes of :meth:`ParticleFilter.absorb`),
censored at its own bound. ``noise=<float>`` instead uses independent Gaussian errors of that
standard deviation (in the observable's unit), for other observables; a bound's likelihood is
then the normal probability beyond it.

The filter's whole state (particles, weights, sensor errors, step sizes, random generator,
events, counters) goes to JSON-ready data with :meth:`ParticleFilter.to_dict` and comes back
with :meth:`ParticleFilter.from_dict`; a restored filter continues exactly as the original.

References
----------
.. [1] Gordon NJ, Salmond DJ, Smith AFM. Novel approach to nonlinear/non-Gaussian Bayesian state
   estimation. IEE Proc F 1993;140(2):107-113.
.. [2] Kong A, Liu JS, Wong WH. Sequential imputations and Bayesian missing data problems.
   J Am Stat Assoc 1994;89(425):278-288.
.. [3] Kitagawa G. Monte Carlo filter and smoother for non-Gaussian nonlinear state space models.
   J Comput Graph Stat 1996;5(1):1-25.
.. [4] Liu J, West M. Combined parameter and state estimation in simulation-based filtering.
   In: Doucet A, de Freitas N, Gordon N (eds), Sequential Monte Carlo Methods in Practice.
   Springer 2001:197-223.
.. [5] Breton M, Kovatchev B. Analysis, modeling, and simulation of the accuracy of continuous
   glucose sensors. J Diabetes Sci Technol 2008;2(5):853-862.
.. [6] Doucet A, Johansen AM. A tutorial on particle filtering and smoothing: fifteen years
   later. In: Crisan D, Rozovskii B (eds), The Oxford Handbook of Nonlinear Filtering. 2011.
.. [7] Douc R, Cappe O, Moulines E. Comparison of resampling schemes for particle filtering.
   Proc ISPA 2005:64-69.
.. [8] Chopin N, Papaspiliopoulos O. An Introduction to Sequential Monte Carlo. Springer 2020.

>>> import numpy as np
>>> from medtwin.model import get_model
>>> m = get_model("uva_padova_2008")
>>> pf = ParticleFilter(m, np.repeat(m.preset("adolescent#001"), 200, axis=0), seed=1,
...                     process_noise={"gp_mg_per_kg": 0.1}, rejuvenate=["vmx_mg_per_kg_min_per_pmol_l"])
>>> pf.absorb([5.0, 10.0, 15.0], [150.0, 152.0, 151.0], [{"type": "basal", "t_min": 0}])
>>> pf.t_min, pf.n_readings, round(pf.ess) <= 200
(15.0, 3, True)
>>> f = pf.forecast(1.0, quantiles=(0.05, 0.5, 0.95))
>>> f.bands["cgm_mg_dl"].shape  # quantiles x times (every 5 min, now included)
(3, 13)
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from medtwin.model.base import TIME_UNIT_MIN, FloatArray, InputSchedule, Model, ModelError
from medtwin.model.events import Event, Scenario, parse_scenario
from medtwin.model.solver import MAX_OUTPUT_VALUES
from medtwin.twin.data import ABOVE, BELOW, EXACT, DataError, IntArray, PatientData

if TYPE_CHECKING:
    from medtwin.twin.calibrate import UnannouncedMeals

__all__ = ["CGM_LOINC", "Forecast", "ParticleFilter", "systematic_resample", "weighted_quantiles"]

CGM_LOINC = "99504-3"
"""LOINC of a CGM glucose reading (interstitial fluid glucose, mg/dL)."""

FORMAT = "medtwin.particle_filter"
FORMAT_VERSION = 1
_SENSOR_FILE = ("data", "uva_padova_2008", "sensor_params.csv")


@cache
def _sensor_table() -> dict[str, dict[str, float]]:
    """simglucose ``params/sensor_params.csv`` (shipped with the UVA/Padova model)."""
    root = resources.files("medtwin.physiology").joinpath(*_SENSOR_FILE)
    table: dict[str, dict[str, float]] = {}
    for row in csv.DictReader(io.StringIO(root.read_text(encoding="utf-8"), newline="")):
        name = row.pop("Name")
        table[name] = {k: float(v) for k, v in row.items()}
    return table


def _norm_logpdf(z: FloatArray) -> FloatArray:
    return np.asarray(-0.5 * z * z - 0.5 * math.log(2.0 * math.pi), dtype=np.float64)


def _norm_logcdf(z: FloatArray) -> FloatArray:
    from scipy.special import log_ndtr

    return np.asarray(log_ndtr(z), dtype=np.float64)


@dataclass(frozen=True)
class _SensorError:
    """The CGM sensor error of Breton & Kovatchev 2008 (simglucose parameters), see the module
    docstring; ``e`` is each particle's error on the Gaussian scale."""

    sensor: str
    pacf: float
    gamma: float
    lam: float
    delta: float
    xi: float
    low: float
    high: float

    @classmethod
    def named(cls, sensor: str) -> _SensorError:
        table = _sensor_table()
        if sensor not in table:
            raise ModelError(f"noise: unknown CGM sensor {sensor!r} (known: {', '.join(table)})")
        sp = table[sensor]
        return cls(
            sensor,
            sp["PACF"],
            sp["gamma"],
            sp["lambda"],
            sp["delta"],
            sp["xi"],
            sp["min"],
            sp["max"],
        )

    @property
    def stationary_sd(self) -> float:
        return self.pacf / math.sqrt(1.0 - self.pacf**2)

    def to_normal(self, eps: FloatArray) -> FloatArray:
        return np.asarray(self.gamma + self.delta * np.arcsinh((eps - self.xi) / self.lam))

    def to_error(self, e: FloatArray) -> FloatArray:
        return np.asarray(self.xi + self.lam * np.sinh((e - self.gamma) / self.delta))

    def weigh(
        self,
        y: float,
        g: FloatArray,
        e: FloatArray,
        dt_min: float | None,
        rng: np.random.Generator,
        code: int = EXACT,
    ) -> tuple[FloatArray, FloatArray]:
        """Log-likelihood of reading ``y`` for each particle and the particles' new errors;
        ``code`` :data:`~medtwin.twin.data.BELOW` or :data:`~medtwin.twin.data.ABOVE` when the
        reading is a bound ("<40", ">400": censored at ``y``)."""
        s = self.stationary_sd
        rho = 0.0 if dt_min is None else self.pacf ** (dt_min / 15.0)
        mean = rho * e
        sd = s * math.sqrt(max(1.0 - rho * rho, 1e-12))
        below = code == BELOW or (code == EXACT and y <= self.low)
        above = code == ABOVE or (code == EXACT and y >= self.high)
        if not (below or above):
            eps = y - g
            e_new = self.to_normal(eps)
            jac = math.log(self.delta) - 0.5 * np.log(self.lam**2 + (eps - self.xi) ** 2)
            return _norm_logpdf((e_new - mean) / sd) - math.log(sd) + jac, e_new
        # censored at a limit or at the bound sent: P(g + eps <= low) or P(g + eps >= high)
        from scipy.special import ndtr, ndtri

        bound = y if code != EXACT else (self.low if below else self.high)
        edge = self.to_normal(bound - g)
        z = (edge - mean) / sd
        if below:
            loglik = _norm_logcdf(z)
            u = rng.uniform(0.0, 1.0, g.shape[0]) * ndtr(z)
        else:
            loglik = _norm_logcdf(-z)
            cdf = ndtr(z)
            u = cdf + rng.uniform(0.0, 1.0, g.shape[0]) * (1.0 - cdf)
        u = np.clip(u, 1e-300, 1.0 - 1e-16)
        return loglik, np.asarray(mean + sd * ndtri(u), dtype=np.float64)

    def sample(self, e: FloatArray, dt_min: float, rng: np.random.Generator) -> FloatArray:
        """Errors ``dt_min`` after ``e`` (Gaussian scale)."""
        rho = self.pacf ** (dt_min / 15.0)
        sd = self.stationary_sd * math.sqrt(1.0 - rho * rho)
        return np.asarray(rho * e + sd * rng.standard_normal(e.shape[0]), dtype=np.float64)

    def clip(self, reading: FloatArray) -> FloatArray:
        return np.clip(reading, self.low, self.high)


@dataclass(frozen=True)
class Forecast:
    """Forecast bands of every observable over the particles (weighted quantiles).

    ``times_min`` (``[T]``, absolute minutes on the filter's axis, from the filter's time),
    ``quantiles`` (``[Q]``), ``bands`` (observable -> ``[Q, T]``) and ``mean`` (observable ->
    ``[T]``). With ``sensor_noise`` the filter's CGM observable includes simulated sensor error
    (bands of future *readings*); otherwise bands are of the model quantity.
    """

    times_min: FloatArray
    quantiles: tuple[float, ...]
    bands: dict[str, FloatArray]
    mean: dict[str, FloatArray]
    sensor_noise: bool

    def band(self, observable: str, q: float) -> FloatArray:
        """The band of quantile ``q`` (one of :attr:`quantiles`) for ``observable``."""
        if observable not in self.bands:
            raise ModelError(
                f"forecast has no observable {observable!r} (has: {', '.join(self.bands)})"
            )
        for i, qq in enumerate(self.quantiles):
            if math.isclose(qq, q):
                return np.asarray(self.bands[observable][i], dtype=np.float64)
        raise ModelError(f"forecast has no quantile {q!r} (has: {list(self.quantiles)})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: arrays as lists."""
        return {
            "times_min": self.times_min.tolist(),
            "quantiles": list(self.quantiles),
            "bands": {k: v.tolist() for k, v in self.bands.items()},
            "mean": {k: v.tolist() for k, v in self.mean.items()},
            "sensor_noise": self.sensor_noise,
        }


def weighted_quantiles(values: FloatArray, weights: FloatArray, q: Sequence[float]) -> FloatArray:
    """Quantiles ``q`` of each column of ``values`` (``[M, T]``) under ``weights`` (``[M]``,
    summing to 1): the inverse of the weighted empirical distribution function (lower value).

    >>> weighted_quantiles(np.array([[1.0], [2.0], [3.0]]), np.array([0.2, 0.3, 0.5]), [0.1, 0.5, 0.9])
    array([[1.],
           [2.],
           [3.]])
    """
    order = np.argsort(values, axis=0, kind="stable")
    sorted_values = np.take_along_axis(values, order, axis=0)
    cum = np.cumsum(weights[order], axis=0)
    cum /= cum[-1]
    out = np.empty((len(q), values.shape[1]))
    for j in range(values.shape[1]):
        idx = np.searchsorted(cum[:, j], np.asarray(q) - 1e-12, side="left")
        out[:, j] = sorted_values[np.minimum(idx, values.shape[0] - 1), j]
    return out


def systematic_resample(weights: FloatArray, u: float) -> Any:
    """Indices of systematic resampling (Kitagawa 1996): particle ``i`` is copied once for each
    of the points ``(u + k) / M``, ``k = 0..M-1``, that falls in its slice of the weights'
    cumulative sum (``u`` uniform on [0, 1)).

    >>> systematic_resample(np.array([0.5, 0.0, 0.25, 0.25]), 0.5).tolist()
    [0, 0, 2, 3]
    """
    m = weights.shape[0]
    cum = np.cumsum(weights)
    cum[-1] = 1.0
    return np.minimum(np.searchsorted(cum, (u + np.arange(m)) / m, side="right"), m - 1)


def _to_json_rng(state: Any) -> Any:
    if isinstance(state, dict):
        return {k: _to_json_rng(v) for k, v in state.items()}
    if isinstance(state, int) and not isinstance(state, bool):
        return str(state)
    return state


def _from_json_rng(state: Any) -> Any:
    if isinstance(state, dict):
        return {k: _from_json_rng(v) for k, v in state.items()}
    if isinstance(state, str) and state.lstrip("-").isdigit():
        return int(state)
    return state


class ParticleFilter:
    """Follow one patient with ``M`` particles of ``model`` (see the module docstring).

    Parameters
    ----------
    model
        The model class (e.g. ``get_model("uva_padova_2008")``).
    params
        ``[M, P]`` parameter sets, one per particle, within the model's bounds.
    x0
        ``[M, S]`` states at ``t0_min`` (default: the model's initial state of each set).
    t0_min
        The time of ``x0`` in minutes (the filter's clock; readings and events use it).
    observable
        The observable the readings are of (default ``cgm_mg_dl``).
    noise
        Observation error: a CGM sensor name (``"Dexcom"``, ``"GuardianRT"``, ``"Navigator"``:
        autocorrelated Johnson SU error, the default for a CGM observable) or a standard
        deviation in the observable's unit (independent Gaussian errors; required for other
        observables).
    seed
        Seed of the filter's random generator (process noise, resampling, rejuvenation).
    rejuvenate
        Parameter names to move with the Liu & West kernel after each resampling.
    process_noise
        State name -> relative standard deviation per sqrt(hour) of multiplicative log-normal
        noise added between readings.
    ess_threshold
        Resample when ``ESS < ess_threshold * M`` (0 to 1, default 0.5).
    discount
        Liu & West discount factor ``delta`` (0.5 to 1, default 0.98).
    rtol, atol, max_step
        Step control of :class:`medtwin.model.stepper.Stepper` (defaults: the model's).
    threads
        Particles are split over this many threads (default: the CPUs this process may use).
    """

    def __init__(
        self,
        model: type[Model],
        params: FloatArray,
        *,
        x0: FloatArray | None = None,
        t0_min: float = 0.0,
        observable: str = "cgm_mg_dl",
        noise: str | float | None = None,
        seed: int = 0,
        rejuvenate: Sequence[str] = (),
        process_noise: Mapping[str, float] | None = None,
        ess_threshold: float = 0.5,
        discount: float = 0.98,
        rtol: float | None = None,
        atol: float | None = None,
        max_step: float = 10.0,
        threads: int | None = None,
    ) -> None:
        from medtwin.model.stepper import Stepper

        self.model = model
        self._obs = model.observable(observable)
        p = model.check_params(params)
        m = p.shape[0]
        if m < 2:
            raise ModelError(f"params: a particle filter needs at least 2 particles, got {m}")
        if not (math.isfinite(t0_min) and t0_min >= 0):
            raise DataError(
                f"t0_min must be a finite number of minutes >= 0 (the model's clock starts at "
                f"0), got {t0_min!r}"
            )
        if noise is None:
            if CGM_LOINC not in self._obs.loinc:
                raise ModelError(
                    f"noise: give the standard deviation of {observable!r} readings "
                    f"({self._obs.unit}); only CGM observables have a default sensor model"
                )
            noise = "Dexcom"
        self._noise_spec: str | float
        if isinstance(noise, str):
            if CGM_LOINC not in self._obs.loinc:
                raise ModelError(
                    f"noise: a CGM sensor model fits a CGM observable (LOINC {CGM_LOINC}), "
                    f"not {observable!r}"
                )
            self._sensor: _SensorError | None = _SensorError.named(noise)
            self._noise_sd = 0.0
            self._noise_spec = noise
        else:
            if isinstance(noise, bool) or not (math.isfinite(float(noise)) and float(noise) > 0):
                raise ModelError(f"noise: the standard deviation must be > 0, got {noise!r}")
            self._sensor = None
            self._noise_sd = float(noise)
            self._noise_spec = float(noise)
        names = model.parameter_names()
        if isinstance(rejuvenate, str):
            rejuvenate = [rejuvenate]
        unknown = [r for r in rejuvenate if r not in names]
        if unknown:
            raise ModelError(
                f"rejuvenate: model {model.name!r} has no parameter {unknown[0]!r} "
                f"(known: {', '.join(names)})"
            )
        self.rejuvenate = list(dict.fromkeys(rejuvenate))
        self._rej_cols = np.array([names.index(r) for r in self.rejuvenate], dtype=np.int64)
        lower = model.lower_bounds()[self._rej_cols]
        self._rej_log = lower > 0
        state_names = model.state_names()
        self.process_noise = dict(process_noise or {})
        for name, sd in self.process_noise.items():
            if name not in state_names:
                raise ModelError(
                    f"process_noise: model {model.name!r} has no state {name!r} "
                    f"(known: {', '.join(state_names)})"
                )
            if isinstance(sd, bool) or not (math.isfinite(float(sd)) and float(sd) >= 0):
                raise ModelError(f"process_noise: {name} must be a number >= 0, got {sd!r}")
        self._pn_cols = np.array([state_names.index(n) for n in self.process_noise], dtype=np.int64)
        self._pn_sd = np.array([float(v) for v in self.process_noise.values()])
        if not 0.0 <= ess_threshold <= 1.0:
            raise ModelError(f"ess_threshold must be within [0, 1], got {ess_threshold!r}")
        if not 0.5 < discount <= 1.0:
            raise ModelError(f"discount must be within (0.5, 1], got {discount!r}")
        self.ess_threshold = float(ess_threshold)
        self.discount = float(discount)
        self._stepper = Stepper(model, rtol=rtol, atol=atol, max_step=max_step, threads=threads)
        self._unit = TIME_UNIT_MIN[model.time_unit]
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self.params = p.copy()
        if x0 is None:
            x = model.initial_state(p)
        else:
            x = np.array(x0, dtype=np.float64, ndmin=2)
            if x.shape != (m, len(model.states)):
                raise ModelError(f"x0 must have shape [{m}, {len(model.states)}], got {x.shape}")
            if not np.isfinite(x).all():
                raise ModelError("x0 must be finite")
        self.states = np.ascontiguousarray(x, dtype=np.float64)
        self._logw = np.full(m, -math.log(m))
        self._e: FloatArray = np.asarray(
            self._rng.standard_normal(m) * self._sensor.stationary_sd
            if self._sensor is not None
            else np.zeros(m)
        )
        self._h = self._stepper.new_step_sizes(m)
        self.t_min = float(t0_min)
        self._t_obs: float | None = None
        self.log_likelihood = 0.0
        self.n_readings = 0
        self.n_resampled = 0
        self.ess_before_resampling = float(m)
        """ESS after weighing the last reading, before any resampling (how far the weights
        degenerated; :attr:`ess` is after)."""
        self._events: list[dict[str, Any]] = []
        self._scenario = parse_scenario([])
        self._schedule: InputSchedule | None = None
        self._schedule_end = -math.inf
        self._schedule_follows_rejuvenation = True

    # ------------------------------------------------------------------ read-outs
    @property
    def n_particles(self) -> int:
        """``M``."""
        return int(self.params.shape[0])

    @property
    def weights(self) -> FloatArray:
        """Normalised particle weights ``[M]``."""
        return np.asarray(np.exp(self._logw), dtype=np.float64)

    @property
    def ess(self) -> float:
        """Effective sample size ``1 / sum(w^2)`` of the current weights (1 to M)."""
        return float(1.0 / np.sum(self.weights**2))

    @property
    def events(self) -> list[dict[str, Any]]:
        """The events absorbed so far (normalised, minutes)."""
        return [dict(e) for e in self._events]

    def observe(self) -> dict[str, FloatArray]:
        """Every observable of every particle now (name -> ``[M]``)."""
        x = self.states[:, None, :]
        return {
            o.name: np.asarray(o.function(x, self.params)[:, 0]) for o in self.model.observables
        }

    def mean(self, observable: str | None = None) -> float:
        """Weighted mean of an observable now (default: the filtered one)."""
        name = self._obs.name if observable is None else self.model.observable(observable).name
        return float(np.dot(self.weights, self.observe()[name]))

    def parameter_summary(self, name: str) -> dict[str, float]:
        """Weighted mean, standard deviation and 5/50/95 % quantiles of one parameter."""
        names = self.model.parameter_names()
        if name not in names:
            raise ModelError(f"model {self.model.name!r} has no parameter {name!r}")
        v = self.params[:, names.index(name)]
        w = self.weights
        mu = float(np.dot(w, v))
        q = weighted_quantiles(v[:, None], w, (0.05, 0.5, 0.95))[:, 0]
        return {
            "mean": mu,
            "sd": float(math.sqrt(max(float(np.dot(w, (v - mu) ** 2)), 0.0))),
            "q05": float(q[0]),
            "q50": float(q[1]),
            "q95": float(q[2]),
        }

    # ------------------------------------------------------------------ events and inputs
    def _add_events(self, events: Any) -> None:
        if events is None:
            return
        if isinstance(events, Scenario):
            new = [e.to_dict() for e in sorted(events.events, key=lambda e: e.index)]
        else:
            new = [
                e.to_dict() for e in sorted(parse_scenario(events).events, key=lambda e: e.index)
            ]
        if not new:
            return
        for i, ev in enumerate(new):
            if ev["t_min"] < self.t_min:
                raise DataError(
                    f"events: event {i} ({ev['type']}) at t_min = {ev['t_min']:g} is before the "
                    f"filter's time {self.t_min:g} min (the past cannot be re-run; give events "
                    f"before the readings that follow them)"
                )
        scenario = parse_scenario(self._events + new)
        self.model.accepts(scenario)
        self._events += new
        self._scenario = scenario
        self._schedule = None

    def _horizon(self, events: Sequence[Event]) -> float:
        end = self.t_min
        for e in events:
            for start, duration in e.doses():
                end = max(end, start + duration)
        return end + 1440.0

    def _build_schedule(
        self, params: FloatArray, events: Sequence[Event], end_min: float
    ) -> InputSchedule:
        sched = self.model.schedule(events, params, end_min / self._unit)
        values = sched.values
        if values.shape[1] not in (1, params.shape[0]) or values.shape[2] != len(self.model.inputs):
            raise ModelError(f"model {self.model.name!r} built a schedule of the wrong shape")
        if values.shape[1] > 1 and np.array_equal(
            values, np.broadcast_to(values[:, :1], values.shape)
        ):
            values = values[:, :1]
        return InputSchedule(sched.boundaries, np.ascontiguousarray(values))

    def _inputs(self, t_end_min: float) -> InputSchedule:
        if self._schedule is None or t_end_min > self._schedule_end:
            end = max(self._horizon(self._scenario.events), t_end_min + 1440.0)
            self._schedule = self._build_schedule(self.params, self._scenario.events, end)
            self._schedule_end = end
            self._schedule_follows_rejuvenation = self._depends_on_rejuvenated(end)
        return self._schedule

    def _depends_on_rejuvenated(self, end_min: float) -> bool:
        """Does the schedule change with the rejuvenated parameters? (Probe two sets.)"""
        if self._rej_cols.size == 0:
            return False
        probe = np.repeat(self.params[:1], 2, axis=0)
        lo = self.model.lower_bounds()[self._rej_cols]
        hi = self.model.upper_bounds()[self._rej_cols]
        probe[1, self._rej_cols] = lo + 0.618 * (hi - lo)
        s = self.model.schedule(self._scenario.events, probe, end_min / self._unit)
        return not np.array_equal(s.values[:, 0], s.values[:, -1])

    # ------------------------------------------------------------------ filtering
    def _advance(
        self,
        x: FloatArray,
        params: FloatArray,
        h: FloatArray,
        schedule: InputSchedule,
        t0: float,
        t1: float,
        rng: np.random.Generator,
    ) -> None:
        self._stepper.advance(x, params, schedule, t0 / self._unit, t1 / self._unit, h)
        if self._pn_cols.size and t1 > t0:
            sd = self._pn_sd * math.sqrt((t1 - t0) / 60.0)
            z = rng.standard_normal((x.shape[0], self._pn_cols.size))
            x[:, self._pn_cols] *= np.exp(sd * z - 0.5 * sd * sd)

    def step(self, t_min: float, value: float, events: Any = None, censored: int = EXACT) -> None:
        """Absorb one reading ``value`` at ``t_min`` (after any ``events``, see :meth:`absorb`)."""
        self.absorb([t_min], [value], events, censored=[censored])

    def absorb(
        self,
        times_min: Sequence[float] | FloatArray,
        values: Sequence[float] | FloatArray,
        events: Any = None,
        *,
        censored: Sequence[int] | IntArray | None = None,
    ) -> None:
        """Absorb readings ``values`` at ``times_min`` (ascending, after the filter's time).

        ``events`` (a :class:`~medtwin.model.events.Scenario`, or a list of events / a
        ``{"events": [...]}`` object in the medtwin event format, minutes on the filter's axis)
        are what happened (or will happen) from the filter's time on: meals, boluses, basal
        rates. ``censored``: one code per reading, :data:`~medtwin.twin.data.BELOW` (-1) for a
        reading that is an upper bound (a sensor's LOW sent as "<40"), :data:`~medtwin.twin.
        data.ABOVE` (1) for a lower bound (HIGH, ">400"), 0 for a value (the default): a bound
        is weighed by the probability of a reading beyond it. Refused with
        :class:`~medtwin.twin.data.DataError` naming the field: times not strictly increasing
        or before the filter's time, values that are not finite numbers, times, values and
        codes of different lengths, unknown codes, events before the filter's time.
        """
        t = np.asarray(times_min, dtype=np.float64).ravel()
        y = np.asarray(values, dtype=np.float64).ravel()
        if t.shape != y.shape:
            raise DataError(f"times_min ({t.size}) and values ({y.size}) differ in length")
        codes = (
            np.zeros(t.size, dtype=np.int64)
            if censored is None
            else np.asarray(censored, dtype=np.int64).ravel()
        )
        if codes.shape != t.shape:
            raise DataError(f"censored ({codes.size}) and values ({y.size}) differ in length")
        wrong = np.flatnonzero(~np.isin(codes, (EXACT, BELOW, ABOVE)))
        if wrong.size:
            raise DataError(
                f"censored[{wrong[0]}] = {codes[wrong[0]]}: a code is {EXACT} (a value), "
                f"{BELOW} (an upper bound, '<') or {ABOVE} (a lower bound, '>')"
            )
        bad_t = np.flatnonzero(~np.isfinite(t))
        if bad_t.size:
            raise DataError(f"times_min[{bad_t[0]}] is not a finite number ({t[bad_t[0]]!r})")
        bad_y = np.flatnonzero(~np.isfinite(y))
        if bad_y.size:
            raise DataError(
                f"values[{bad_y[0]}] is not a finite number ({y[bad_y[0]]!r}); drop missing readings"
            )
        back = np.flatnonzero(np.diff(t) <= 0)
        if back.size:
            i = int(back[0]) + 1
            raise DataError(
                f"times_min must increase strictly: times_min[{i}] = {t[i]:g} follows {t[i - 1]:g}"
            )
        if t.size and (t[0] < self.t_min or (self._t_obs is not None and t[0] <= self._t_obs)):
            raise DataError(
                f"times_min[0] = {t[0]:g} is before the filter's time {self.t_min:g} min "
                f"(times going backwards)"
            )
        self._add_events(events)
        if not t.size:
            return
        schedule = self._inputs(float(t[-1]))
        for tk, yk, ck in zip(t.tolist(), y.tolist(), codes.tolist(), strict=True):
            schedule = self._assimilate(tk, yk, schedule, ck)

    def absorb_data(self, data: PatientData) -> int:
        """Absorb what is new in a patient's data: the readings of the filter's observable after
        its last reading and the events from its time on that it does not have yet (the same
        event twice is taken once, so a growing :class:`~medtwin.twin.data.PatientData` can be
        passed again and again). Earlier readings and events are skipped: the past is not
        re-run. Returns the number of readings absorbed.
        """
        t, y = data.observations.get(self._obs.name, (np.empty(0), np.empty(0)))
        t = np.asarray(t, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        codes = data.censoring(self._obs.name) if t.size else np.zeros(0, dtype=np.int64)
        after = self.t_min if self._t_obs is None else max(self.t_min, self._t_obs + 1e-9)
        keep = t >= after
        known = [dict(e) for e in self._events]
        new = []
        for e in sorted(data.scenario.events, key=lambda e: e.index):
            d = e.to_dict()
            if e.t_min >= self.t_min and d not in known:
                new.append(d)
                known.append(d)
        self.absorb(t[keep], y[keep], new or None, censored=codes[keep])
        return int(keep.sum())

    def _assimilate(
        self, t: float, y: float, schedule: InputSchedule, code: int = EXACT
    ) -> InputSchedule:
        self._advance(self.states, self.params, self._h, schedule, self.t_min, t, self._rng)
        self.t_min = t
        g = np.asarray(self._obs.function(self.states[:, None, :], self.params)[:, 0])
        if self._sensor is not None:
            dt = None if self._t_obs is None else t - self._t_obs
            loglik, self._e = self._sensor.weigh(y, g, self._e, dt, self._rng, code)
        else:
            z = (y - g) / self._noise_sd
            if code == EXACT:
                loglik = _norm_logpdf(z) - math.log(self._noise_sd)
            else:  # P(g + e <= y) for "<y", P(g + e >= y) for ">y"
                loglik = _norm_logcdf(-code * z)
        loglik = np.where(np.isfinite(loglik), loglik, -np.inf)
        self._t_obs = t
        self.n_readings += 1
        joint = self._logw + loglik
        top = float(np.max(joint))
        if not math.isfinite(top):
            raise DataError(
                f"values: the reading {y:g} at t_min = {t:g} is impossible under every particle "
                f"(observable {self._obs.name!r}); the filter cannot follow it"
            )
        total = top + math.log(float(np.sum(np.exp(joint - top))))
        self.log_likelihood += total
        self._logw = joint - total
        self.ess_before_resampling = self.ess
        lost = not np.isfinite(self._logw).all()  # a particle that failed goes at once
        if lost or self.ess_before_resampling < self.ess_threshold * self.n_particles:
            schedule = self._resample(schedule)
        return schedule

    def _resample(self, schedule: InputSchedule) -> InputSchedule:
        idx = systematic_resample(self.weights, float(self._rng.uniform()))
        m = self.n_particles
        self.params = self.params[idx]
        self.states = np.ascontiguousarray(self.states[idx])
        self._e = self._e[idx]
        self._h = self._h[idx]
        self._logw = np.full(m, -math.log(m))
        self.n_resampled += 1
        if schedule.values.shape[1] == m:
            schedule = InputSchedule(
                schedule.boundaries, np.ascontiguousarray(schedule.values[:, idx])
            )
        if self._rej_cols.size:
            self._rejuvenate()
            if self._schedule_follows_rejuvenation:
                schedule = self._build_schedule(
                    self.params, self._scenario.events, self._schedule_end
                )
        self._schedule = schedule
        return schedule

    def _rejuvenate(self) -> None:
        """Liu & West 2001 kernel shrinkage of the rejuvenated parameters (equal weights)."""
        cols = self._rej_cols
        theta = self.params[:, cols].copy()
        theta[:, self._rej_log] = np.log(theta[:, self._rej_log])
        a = (3.0 * self.discount - 1.0) / (2.0 * self.discount)
        h = math.sqrt(max(1.0 - a * a, 0.0))
        mean = theta.mean(axis=0)
        cov = np.atleast_2d(np.cov(theta, rowvar=False))
        scale = np.sqrt(np.maximum(np.diag(cov), 0.0))
        z = self._rng.standard_normal(theta.shape)
        if np.all(scale > 0):
            corr = cov / np.outer(scale, scale)
            chol = np.linalg.cholesky(corr + 1e-9 * np.eye(len(cols)))
            noise = (z @ chol.T) * scale
        else:
            noise = z * scale
        theta = a * theta + (1.0 - a) * mean + h * noise
        theta[:, self._rej_log] = np.exp(theta[:, self._rej_log])
        lo = self.model.lower_bounds()[cols]
        hi = self.model.upper_bounds()[cols]
        self.params[:, cols] = np.clip(theta, lo, hi)

    # ------------------------------------------------------------------ forecasting
    def forecast(
        self,
        hours: float,
        scenario: Any = None,
        *,
        quantiles: Sequence[float] = (0.05, 0.5, 0.95),
        every_min: float = 5.0,
        sensor_noise: bool = False,
        seed: int | None = None,
        unannounced: UnannouncedMeals | None = None,
    ) -> Forecast:
        """Bands of every observable over the next ``hours`` (the filter does not change).

        Each particle runs on from now, with its weight, under the known events plus
        ``scenario`` (planned events, minutes on the filter's axis, not before now) and the
        same process noise as the filter. ``sensor_noise=True`` adds simulated sensor error to
        the filtered CGM observable (bands of future readings). ``seed`` (default: derived
        from the filter's seed and the number of readings) makes forecasts repeatable.

        ``unannounced`` (a calibration's :class:`~medtwin.twin.calibrate.UnannouncedMeals`):
        each particle also eats meals nobody will record, as
        :meth:`~medtwin.twin.calibrate.Calibration.predict` draws them beyond the data: a
        rate from the posterior, a Poisson number over the horizon (its share of the eating
        window), onsets uniform in the window's part of it, sizes from the meals found (see
        :meth:`_with_unannounced`).
        """
        if not (math.isfinite(hours) and hours > 0):
            raise ModelError(f"hours must be a positive number, got {hours!r}")
        if not (math.isfinite(every_min) and every_min > 0):
            raise ModelError(f"every_min must be a positive number, got {every_min!r}")
        q = tuple(float(v) for v in quantiles)
        if not q or any(not 0.0 <= v <= 1.0 for v in q):
            raise ModelError(f"quantiles must lie within [0, 1], got {list(quantiles)!r}")
        values = (60.0 * hours / every_min + 2) * self.states.shape[0] * len(self.model.observables)
        if values > MAX_OUTPUT_VALUES:
            raise ModelError(
                f"a forecast of {hours:g} h every {every_min:g} min for {self.states.shape[0]} "
                f"particles is {values:,.0f} values, more than the {MAX_OUTPUT_VALUES:,} a "
                "simulation returns: forecast less often or a shorter time"
            )
        events: Sequence[Event] = self._scenario.events
        if scenario is not None:
            extra = scenario if isinstance(scenario, Scenario) else parse_scenario(scenario)
            for i, ev in enumerate(sorted(extra.events, key=lambda e: e.index)):
                if ev.t_min < self.t_min:
                    raise DataError(
                        f"scenario: event {i} ({ev.type}) at t_min = {ev.t_min:g} is before the "
                        f"filter's time {self.t_min:g} min"
                    )
            combined = parse_scenario(self._events + [e.to_dict() for e in extra.events])
            self.model.accepts(combined)
            events = combined.events
        end = self.t_min + 60.0 * hours
        times = np.arange(self.t_min, end + 1e-9, every_min)
        if times[-1] < end - 1e-9:
            times = np.append(times, end)
        if scenario is None:
            schedule = self._inputs(end)
        else:
            schedule = self._build_schedule(self.params, events, max(self._horizon(events), end))
        rng = np.random.default_rng(
            [self.seed, self.n_readings, 1] if seed is None else [int(seed)]
        )
        if unannounced is not None and unannounced.active:
            schedule = self._with_unannounced(schedule, events, unannounced, end, rng)
        x = self.states.copy()
        h = self._h.copy()
        e = self._e.copy()
        w = self.weights
        traj: dict[str, list[FloatArray]] = {o.name: [] for o in self.model.observables}

        def record(e_now: FloatArray) -> None:
            xs = x[:, None, :]
            for o in self.model.observables:
                v = np.asarray(o.function(xs, self.params)[:, 0])
                if sensor_noise and o.name == self._obs.name:
                    if self._sensor is not None:
                        v = self._sensor.clip(v + self._sensor.to_error(e_now))
                    else:
                        v = v + self._noise_sd * rng.standard_normal(v.shape[0])
                traj[o.name].append(v)

        record(e)
        last = self._t_obs
        for t0, t1 in zip(times[:-1].tolist(), times[1:].tolist(), strict=True):
            self._advance(x, self.params, h, schedule, t0, t1, rng)
            if sensor_noise and self._sensor is not None:
                e = self._sensor.sample(e, math.inf if last is None else t1 - last, rng)
                last = t1
            record(e)
        bands = {}
        mean = {}
        for name, cols in traj.items():
            values = np.stack(cols, axis=1)
            bands[name] = weighted_quantiles(values, w, q)
            mean[name] = w @ values
        return Forecast(times, q, bands, mean, sensor_noise)

    def _with_unannounced(
        self,
        schedule: InputSchedule,
        events: Sequence[Event],
        meals: UnannouncedMeals,
        end_min: float,
        rng: np.random.Generator,
    ) -> InputSchedule:
        """``schedule`` with each particle's own unannounced meals between now and
        ``end_min``: the particles that draw meals get their own inputs (the model's schedule
        of the known events plus their meals), merged with the others' on the union of the
        boundaries (the model's jump kernel must act only where a row's inputs change, as
        UVA/Padova's does: at the start of eating). Onsets lie in the patient's eating window
        (:meth:`UnannouncedMeals.draw_onsets`), whose clock is the calibrated data's minute
        axis: the filter's must be the same (as in :meth:`medtwin.twin.Twin.forecast`)."""
        m = self.n_particles
        span = end_min - self.t_min
        counts = rng.poisson(meals.draw_rates(m, rng) * meals.expected_days(self.t_min, span))
        rows = np.flatnonzero(counts)
        if rows.size == 0:
            return schedule
        sched_end = float(schedule.boundaries[-1]) * self._unit
        own: dict[int, InputSchedule] = {}
        n_ev = len(events)
        for i in rows.tolist():
            onset = meals.draw_onsets(int(counts[i]), self.t_min, span, rng)
            grams = meals.draw_sizes(int(counts[i]), rng)
            extra = [
                Event("meal", float(t), {"carbs_g": float(g)}, n_ev + k)
                for k, (t, g) in enumerate(zip(onset, grams, strict=True))
            ]
            evs = sorted((*events, *extra), key=lambda e: (e.t_min, e.index))
            own[i] = self._build_schedule(self.params[i : i + 1], evs, sched_end)
        bounds = np.unique(
            np.concatenate([schedule.boundaries, *(o.boundaries for o in own.values())])
        )
        bounds = bounds[bounds <= schedule.boundaries[-1]]
        starts = bounds[:-1]

        def rows_at(s: InputSchedule) -> Any:
            last = s.values.shape[0] - 1
            return np.clip(np.searchsorted(s.boundaries, starts, side="right") - 1, 0, last)

        values = np.array(
            np.broadcast_to(
                schedule.values[rows_at(schedule)], (starts.size, m, schedule.values.shape[2])
            )
        )
        for i, s_i in own.items():
            values[:, i, :] = s_i.values[rows_at(s_i), 0, :]
        return InputSchedule(bounds, np.ascontiguousarray(values))

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly, as JSON-ready data (arrays as lists)."""
        logw = [None if not math.isfinite(v) else v for v in self._logw.tolist()]
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model.name,
            "model_version": self.model.version,
            "parameter_names": self.model.parameter_names(),
            "state_names": self.model.state_names(),
            "observable": self._obs.name,
            "noise": self._noise_spec,
            "seed": self.seed,
            "rejuvenate": list(self.rejuvenate),
            "process_noise": dict(self.process_noise),
            "ess_threshold": self.ess_threshold,
            "discount": self.discount,
            "rtol": self._stepper.rtol,
            "atol": self._stepper.atol,
            "max_step": self._stepper.max_step,
            "t_min": self.t_min,
            "t_last_reading_min": self._t_obs,
            "log_likelihood": self.log_likelihood,
            "n_readings": self.n_readings,
            "n_resampled": self.n_resampled,
            "ess_before_resampling": self.ess_before_resampling,
            "events": [dict(e) for e in self._events],
            "params": self.params.tolist(),
            "states": self.states.tolist(),
            "log_weights": logw,
            "sensor_error": self._e.tolist(),
            "step_sizes": self._h.tolist(),
            "rng": _to_json_rng(self._rng.bit_generator.state),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, threads: int | None = None) -> ParticleFilter:
        """A filter restored from :meth:`to_dict` (the same model name and version)."""
        from medtwin.model import get_model

        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"format: not a saved particle filter ({FORMAT} version {FORMAT_VERSION})"
            )
        model = get_model(str(data["model"]))
        if data.get("model_version") != model.version:
            raise DataError(
                f"model_version: saved with {data['model']} {data.get('model_version')}, "
                f"this is {model.version}"
            )
        if (
            list(data["parameter_names"]) != model.parameter_names()
            or list(data["state_names"]) != model.state_names()
        ):
            raise DataError("parameter_names/state_names: do not match the model's")
        pf = cls(
            model,
            np.array(data["params"], dtype=np.float64),
            x0=np.array(data["states"], dtype=np.float64),
            t0_min=float(data["t_min"]),
            observable=str(data["observable"]),
            noise=data["noise"],
            seed=int(data["seed"]),
            rejuvenate=list(data["rejuvenate"]),
            process_noise=dict(data["process_noise"]),
            ess_threshold=float(data["ess_threshold"]),
            discount=float(data["discount"]),
            rtol=float(data["rtol"]),
            atol=float(data["atol"]),
            max_step=float(data["max_step"]),
            threads=threads,
        )
        m = pf.n_particles
        arrays = {
            "log_weights": np.array(
                [-np.inf if v is None else v for v in data["log_weights"]], dtype=np.float64
            ),
            "sensor_error": np.array(data["sensor_error"], dtype=np.float64),
            "step_sizes": np.array(data["step_sizes"], dtype=np.float64),
        }
        for name, arr in arrays.items():
            if arr.shape != (m,):
                raise DataError(f"{name}: expected {m} values, got {arr.shape}")
        pf._logw = arrays["log_weights"]
        pf._e = arrays["sensor_error"]
        pf._h = arrays["step_sizes"]
        t_obs = data.get("t_last_reading_min")
        pf._t_obs = None if t_obs is None else float(t_obs)
        pf.log_likelihood = float(data["log_likelihood"])
        pf.n_readings = int(data["n_readings"])
        pf.n_resampled = int(data["n_resampled"])
        pf.ess_before_resampling = float(data["ess_before_resampling"])
        pf._rng.bit_generator.state = _from_json_rng(data["rng"])
        events = list(data["events"])
        if events:
            pf._scenario = parse_scenario(events)
            model.accepts(pf._scenario)
            pf._events = [e.to_dict() for e in sorted(pf._scenario.events, key=lambda e: e.index)]
        return pf
