"""Glucose monitor: hypo- and hyperglycaemia levels, CGM event duration, rate of change, 30-min forecast.

One merged glucose series per patient, from every glucose code of :data:`GLUCOSE_CODES`,
converted to mg/dL with the project's unit layer (:func:`medtwin.record.units.convert`, glucose
molar mass; 1 mmol/L = 18.016 mg/dL). Model card: ``docs/models/glucose-monitor.md``.

**Levels** (Battelino et al. 2019, International Consensus on Time in Range, the standardised
CGM metrics; ADA Standards of Care 2024, Section 6, classification of hypoglycaemia):

========================  ===============  ===========
rule                      condition        severity
========================  ===============  ===========
``glucose.hypo.level2``   < 54 mg/dL       high
``glucose.hypo.level1``   < 70 mg/dL       medium
``glucose.hyper.level2``  > 250 mg/dL      medium
``glucose.hyper.level1``  > 180 mg/dL      low
========================  ===============  ===========

(The mapping of levels onto medtwin's severity scale is medtwin's choice, not the consensus'.)

**CGM event duration.** In a dense series (consecutive readings at most ``max_gap_min`` apart)
an event begins when the readings have stayed beyond the threshold for ``min_duration_min``
(15 min: the consensus definition of a CGM hypoglycaemic event, Danne et al. 2017;
Battelino et al. 2023) measured from the first to the latest such reading, and ends after
``min_duration_min`` back on the other side (or a gap). An *isolated* reading, with no glucose
reading in the ``max_gap_min`` before it (a glucometer or laboratory value, or the first CGM
value after a gap), is judged on its own: ADA levels apply to single measurements.

**Rate of change.** The slope of an ordinary least-squares line through the readings of the last
``rate_window_min``; ``glucose.falling_fast`` fires when it is at or below
``-fall_rate_mg_dl_min`` (2 mg/dL/min: the single down arrow of the Dexcom G5 trend arrows,
2-3 mg/dL/min, Aleppo et al. 2017, trend-arrow definitions).

**30-minute forecast.** A damped linear trend: the least-squares line through the readings of
the last ``forecast_window_min`` (20 min) gives the level now and the slope; the forecast
``horizon_min`` (30 min) ahead is ``level + forecast_trend_weight * slope * horizon`` with the
trend weighted 0.3. Full linear extrapolation (weight 1) had a 30-min RMSE of 29 mg/dL on the
simglucose evaluation, worse than "no change" (22 mg/dL), because it overshoots at every turn
after a meal; weight 0.3 gave 22 mg/dL and the best detection / false-alarm trade-off there
(``docs/models/glucose-monitor.md``; tuned on that simulated data, so optimistic). The lower
bound is ``forecast - forecast_z * RMSE`` (z = 0.5), where the RMSE is measured on the series
itself: every forecast is kept until its target time and compared with the reading then; until
``forecast_min_errors`` (20) errors are known the prior ``forecast_prior_rmse_mg_dl`` (20 mg/dL,
about the measured value) is used. ``glucose.hypo.predicted`` fires when glucose is falling (at
least ``forecast_min_fall_mg_dl_min``, 0.5 mg/dL/min), not yet below 70 mg/dL and the lower
bound is below 70; not again within ``refractory_min``.

**Bounds.** A CGM reports glucose beyond its range as LOW or HIGH, sent as "<40" or ">400"
mg/dL (``Reading.comparator``). Such a reading counts towards a level only where every value it
allows is beyond the threshold ("<40" is below 54 mg/dL; ">400" above 250); where it allows
values on both sides ("<60" and 54 mg/dL) it neither starts, extends nor ends that level's
event. Alerts show it as sent ("glucose <40 mg/dL"). It stays in the trend window at its
bound (the least extreme value it allows, so a fall into LOW is, if anything, understated) and
a forecast's error is not scored against it.

**Implausible values** (< 10 or > 1000 mg/dL: sensor errors) are not learned and raise only an
``info`` alert of category ``artefact``.

References
----------
Battelino T, Danne T, Bergenstal RM, et al. Clinical targets for continuous glucose monitoring
data interpretation: recommendations from the International Consensus on Time in Range.
Diabetes Care. 2019;42(8):1593-1603.
Danne T, Nimri R, Battelino T, et al. International consensus on use of continuous glucose
monitoring. Diabetes Care. 2017;40(12):1631-1640.
Battelino T, Alexander CM, Amiel SA, et al. Continuous glucose monitoring and metrics for
clinical trials: an international consensus statement. Lancet Diabetes Endocrinol.
2023;11(1):42-57.
American Diabetes Association Professional Practice Committee. 6. Glycemic goals and
hypoglycemia: Standards of Care in Diabetes-2024. Diabetes Care. 2024;47(Suppl 1):S111-S125.
Aleppo G, Laffel LM, Ahmann AJ, et al. A practical approach to using trend arrows on the Dexcom
G5 CGM system for the management of adults with diabetes. J Endocr Soc. 2017;1(12):1445-1460.
Sparacino G, Zanderigo F, Corazza S, et al. Glucose concentration can be predicted ahead in time
from continuous glucose monitoring sensor time-series. IEEE Trans Biomed Eng.
2007;54(5):931-937.

Examples
--------
>>> from medtwin.monitor.base import FactRef, Reading
>>> monitor = GlucoseMonitor("mt-1")
>>> values = [95, 80, 69, 66, 64, 63]
>>> alerts = []
>>> for i, v in enumerate(values):
...     r = Reading("mt-1", "99504-3", 300.0 * i, v, "mg/dL", FactRef("cgm", f"g{i}"))
...     alerts += monitor.learn_one(r)
>>> [a.rule for a in alerts]
['glucose.falling_fast', 'glucose.hypo.level1']
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from medtwin.monitor.base import Alert, FactRef, Monitor, MonitorConfigError, Reading

__all__ = ["GLUCOSE_CODES", "LEVELS", "MONITORS", "GlucoseMonitor", "linear_forecast"]

GLUCOSE_CODES: frozenset[str] = frozenset(
    {
        "2339-0",  # Glucose [Mass/volume] in Blood
        "2345-7",  # Glucose [Mass/volume] in Serum or Plasma
        "1558-6",  # Fasting glucose [Mass/volume] in Serum or Plasma
        "41653-7",  # Glucose [Mass/volume] in Capillary blood by Glucometer
        "15074-8",  # Glucose [Moles/volume] in Blood
        "14749-6",  # Glucose [Moles/volume] in Serum or Plasma
        "99504-3",  # Glucose [Mass/volume] in Interstitial fluid (CGM)
        "105272-9",  # Glucose [Moles/volume] in Interstitial fluid (CGM)
    }
)
"""The glucose codes learned (all merged into one series in mg/dL)."""

LEVELS: tuple[tuple[str, str, str, str], ...] = (
    # rule, parameter holding the threshold, side, severity
    ("glucose.hypo.level2", "hypo_level2_mg_dl", "below", "high"),
    ("glucose.hypo.level1", "hypo_level1_mg_dl", "below", "medium"),
    ("glucose.hyper.level2", "hyper_level2_mg_dl", "above", "medium"),
    ("glucose.hyper.level1", "hyper_level1_mg_dl", "above", "low"),
)
"""The glucose level rules (Battelino 2019; ADA 2024 Section 6), most severe first."""

_SOURCE = (
    "Battelino T et al. International Consensus on Time in Range. Diabetes Care "
    "2019;42(8):1593-1603 (levels); ADA Standards of Care 2024, Section 6; "
    "Danne T et al. Diabetes Care 2017;40(12):1631-1640 and Battelino T et al. Lancet Diabetes "
    "Endocrinol 2023;11(1):42-57 (15-min CGM event)"
)
_SOURCE_RATE = (
    "Aleppo G et al. Dexcom G5 trend arrows. J Endocr Soc 2017;1(12):1445-1460, trend arrows "
    "(falling 2-3 mg/dL/min: single down arrow)"
)
_SOURCE_FORECAST = (
    "Damped linear extrapolation of the CGM trend (cf. Sparacino G et al. IEEE Trans Biomed Eng "
    "2007;54(5):931-937), error measured on the series; hypo threshold 70 mg/dL, Battelino 2019"
)
GAP_MEMORY = 5
"""How many of the latest intervals between readings give the typical one (their median)."""
SPARSE_WINDOW_GAPS = 2.0
"""A trend window spans at least this many typical intervals: 3 readings, the fewest a line
through them is fitted to (a Libre's 15-minute history: 30 min; a 5-minute CGM keeps its 15 and
20 minutes)."""

_MATCH_TOLERANCE_S = 150.0  # a forecast is scored against a reading within 2.5 min of its target


def linear_forecast(
    times_s: Sequence[float], values: Sequence[float], at_s: float
) -> tuple[float, float]:
    """Least-squares line through ``(times_s, values)``: its value at ``at_s`` and its slope.

    Parameters
    ----------
    times_s
        Times in seconds (at least two distinct).
    values
        Glucose values (any unit).
    at_s
        Where to evaluate the line.

    Returns
    -------
    tuple of float
        ``(value at at_s, slope per minute)``.

    Examples
    --------
    >>> linear_forecast([0.0, 300.0, 600.0], [120.0, 110.0, 100.0], 2400.0)
    (40.0, -2.0)
    """
    n = len(times_s)
    t0 = times_s[-1]
    mean_t = sum(t - t0 for t in times_s) / n
    mean_v = sum(values) / n
    sxx = sum((t - t0 - mean_t) ** 2 for t in times_s)
    sxy = sum((t - t0 - mean_t) * (v - mean_v) for t, v in zip(times_s, values, strict=True))
    return mean_v + sxy / sxx * (at_s - t0 - mean_t), 60.0 * sxy / sxx


class _Level:
    """Event state of one level rule."""

    __slots__ = ("active", "recover_start_s", "run_refs", "run_start_s")

    def __init__(self, max_evidence: int) -> None:
        self.active = False
        self.run_start_s: float | None = None
        self.recover_start_s: float | None = None
        self.run_refs: deque[FactRef] = deque(maxlen=max_evidence)


class GlucoseMonitor(Monitor):
    """Glucose levels with the CGM 15-minute event rule, rate of change and a 30-min forecast.

    Parameters (``defaults``)
    -------------------------
    hypo_level1_mg_dl, hypo_level2_mg_dl, hyper_level1_mg_dl, hyper_level2_mg_dl
        Level thresholds: below 70 and 54, above 180 and 250 mg/dL (Battelino 2019).
    min_duration_min
        Minutes a CGM event must last to begin, and to end (15, Danne 2017).
    max_gap_min
        Readings further apart are not one continuous series (20 min).
    fall_rate_mg_dl_min
        Falling-fast threshold (2 mg/dL/min, Aleppo 2017).
    rate_window_min
        Window of the rate-of-change regression (15 min, at least 3 readings over 10 min).
    horizon_min, forecast_window_min, forecast_z
        Forecast horizon (30 min), regression window (20 min), and the z of the lower bound
        (0.5).
    forecast_trend_weight
        Weight of the fitted trend in the forecast (0.3; 1 is plain linear extrapolation).
    forecast_min_fall_mg_dl_min
        The forecast alert needs glucose to be falling at least this fast (0.5 mg/dL/min), so
        that a level series just above 70 mg/dL does not alarm on its uncertainty alone.
    forecast_prior_rmse_mg_dl, forecast_min_errors
        RMSE used until the series has scored ``forecast_min_errors`` of its own forecasts.
    refractory_min
        Minimum time between two falling-fast or two forecast alerts (30 min).
    plausible_min_mg_dl, plausible_max_mg_dl
        Values outside are sensor errors (10 and 1000 mg/dL).
    max_evidence
        How many readings an alert cites.

    Examples
    --------
    >>> GlucoseMonitor("mt-1").params["hypo_level1_mg_dl"]
    70.0
    """

    name = "glucose"
    version = "2"  # 2: the trend windows widen on sparse readings (a Libre's 15-minute history)
    source = _SOURCE
    description = (
        "Glucose / CGM: level 1 and 2 hypo- and hyperglycaemia (15-min CGM events), falling "
        "fast, and a 30-min forecast of hypoglycaemia."
    )
    codes: ClassVar[frozenset[str]] = GLUCOSE_CODES
    defaults: ClassVar[Mapping[str, Any]] = {
        "hypo_level1_mg_dl": 70.0,
        "hypo_level2_mg_dl": 54.0,
        "hyper_level1_mg_dl": 180.0,
        "hyper_level2_mg_dl": 250.0,
        "min_duration_min": 15.0,
        "max_gap_min": 20.0,
        "fall_rate_mg_dl_min": 2.0,
        "rate_window_min": 15.0,
        "horizon_min": 30.0,
        "forecast_window_min": 20.0,
        "forecast_z": 0.5,
        "forecast_trend_weight": 0.3,
        "forecast_min_fall_mg_dl_min": 0.5,
        "forecast_prior_rmse_mg_dl": 20.0,
        "forecast_min_errors": 20,
        "refractory_min": 30.0,
        "plausible_min_mg_dl": 10.0,
        "plausible_max_mg_dl": 1000.0,
        "max_evidence": 12,
    }

    def __init__(self, patient_id: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(patient_id, params)
        p = self.params
        for key, value in p.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise MonitorConfigError(f"monitor glucose: {key!r} must be a number")
            may_be_zero = key in (
                "forecast_z",
                "forecast_min_fall_mg_dl_min",
                "forecast_trend_weight",
            )
            if not math.isfinite(value) or value < 0 or (value == 0 and not may_be_zero):
                raise MonitorConfigError(f"monitor glucose: {key!r} must be positive")
        if not p["hypo_level2_mg_dl"] < p["hypo_level1_mg_dl"] < p["hyper_level1_mg_dl"]:
            raise MonitorConfigError("monitor glucose: thresholds must be hypo2 < hypo1 < hyper1")
        if not p["hyper_level1_mg_dl"] < p["hyper_level2_mg_dl"]:
            raise MonitorConfigError("monitor glucose: hyper_level1_mg_dl < hyper_level2_mg_dl")
        self._max_evidence = int(p["max_evidence"])
        self._thresholds = [float(p[key]) for _, key, _, _ in LEVELS]
        self._factors: dict[str, float | None] = {}
        self._reset()

    def _reset(self) -> None:
        self._levels = [_Level(self._max_evidence) for _ in LEVELS]
        self._last_s: float | None = None
        self._window: deque[tuple[float, float, FactRef]] = deque()
        self._pending: deque[tuple[float, float]] = deque()  # (target time, forecast)
        self._err_n = 0
        self._err_sq_mean = 0.0
        self._last_fall_alert_s: float | None = None
        self._last_forecast_alert_s: float | None = None
        self._gaps: deque[float] = deque(maxlen=GAP_MEMORY)  # seconds between readings
        # the windows' parameters, and the windows in use (widened on sparse readings)
        self._windows = (
            float(self.params["rate_window_min"]),
            float(self.params["forecast_window_min"]),
        )
        self._rate_min, self._forecast_min = self._windows

    # ------------------------------------------------------------------ units
    def _factor(self, reading: Reading) -> float | None:
        unit = reading.unit
        if unit is None:
            from medtwin.record.codes import canonical_unit

            unit = canonical_unit(reading.code)
        key = unit or ""
        if key not in self._factors:
            from medtwin.record.units import UnitsError, convert

            try:
                self._factors[key] = convert(1.0, key, "mg/dL", analyte="glucose")
            except (UnitsError, ValueError):
                self._factors[key] = None
        return self._factors[key]

    # ------------------------------------------------------------------ learning
    def learn_one(self, reading: Reading) -> list[Alert]:
        return self.learn_many((reading,))

    def learn_many(self, readings: Sequence[Reading]) -> list[Alert]:
        alerts: list[Alert] = []
        p = self.params
        low_ok, high_ok = float(p["plausible_min_mg_dl"]), float(p["plausible_max_mg_dl"])
        for reading in readings:
            if reading.code not in GLUCOSE_CODES:
                continue
            factor = self._factor(reading)
            if factor is None or not math.isfinite(reading.value):
                alerts.append(
                    self.alert(
                        "glucose.unit",
                        "info",
                        reading.epoch_s,
                        f"glucose reading in unit {reading.unit!r} cannot be converted to mg/dL; "
                        "not learned",
                        (reading.ref,),
                        category="data-quality",
                        detail={"code": reading.code, "unit": reading.unit},
                    )
                )
                continue
            glucose_mg_dl = reading.value * factor
            if not low_ok <= glucose_mg_dl <= high_ok:
                alerts.append(
                    self.alert(
                        "glucose.implausible",
                        "info",
                        reading.epoch_s,
                        f"glucose {glucose_mg_dl:.0f} mg/dL is outside {low_ok:g}-{high_ok:g} "
                        "mg/dL (sensor error?); not learned",
                        (reading.ref,),
                        category="artefact",
                        detail={"code": reading.code, "glucose_mg_dl": glucose_mg_dl},
                    )
                )
                continue
            alerts.extend(self._learn(reading, glucose_mg_dl))
        return alerts

    def _learn(self, reading: Reading, glucose_mg_dl: float) -> list[Alert]:
        p = self.params
        t = reading.epoch_s
        alerts: list[Alert] = []
        max_gap_s = 60.0 * p["max_gap_min"]
        isolated = self._last_s is None or t - self._last_s > max_gap_s
        if isolated:  # a gap breaks continuity: events, runs and the trend window end
            for level in self._levels:
                level.active = False
                level.run_start_s = None
                level.recover_start_s = None
                level.run_refs.clear()
            self._window.clear()
            self._gaps.clear()
        elif self._last_s is not None and t > self._last_s:
            self._gaps.append(t - self._last_s)
        self._widen()
        self._last_s = t
        bound = reading.comparator
        if bound is None:  # a bound's forecast error is not known: not scored
            self._score_forecasts(t, glucose_mg_dl)
        self._window.append((t, glucose_mg_dl, reading.ref))
        keep_s = 60.0 * max(self._rate_min, self._forecast_min)
        while self._window[0][0] < t - keep_s:
            self._window.popleft()

        duration_s = 60.0 * p["min_duration_min"]
        hypo_active = False
        for index, (rule, key, side, severity) in enumerate(LEVELS):
            threshold = self._thresholds[index]
            level = self._levels[index]
            beyond = _beyond(glucose_mg_dl, bound, side, threshold)
            if beyond is None:  # a bound on both sides of the threshold: says nothing here
                if side == "below" and level.active:
                    hypo_active = True
                continue
            if beyond:
                level.recover_start_s = None
                if level.run_start_s is None:
                    level.run_start_s = t
                    level.run_refs.clear()
                level.run_refs.append(reading.ref)
                lasted_s = t - level.run_start_s
                if not level.active and (isolated or lasted_s >= duration_s):
                    level.active = True
                    alerts.append(
                        self._level_alert(
                            reading, rule, key, side, severity, glucose_mg_dl, lasted_s, level
                        )
                    )
            else:
                level.run_start_s = None
                level.run_refs.clear()
                if level.active:
                    if level.recover_start_s is None:
                        level.recover_start_s = t
                    if t - level.recover_start_s >= duration_s:
                        level.active = False
                        level.recover_start_s = None
            if side == "below" and (level.active or beyond):
                hypo_active = True

        alerts.extend(self._trend_alerts(reading, glucose_mg_dl, hypo_active))
        return alerts

    def _level_alert(
        self,
        reading: Reading,
        rule: str,
        key: str,
        side: str,
        severity: str,
        glucose_mg_dl: float,
        lasted_s: float,
        level: _Level,
    ) -> Alert:
        threshold = float(self.params[key])
        sign = "<" if side == "below" else ">"
        kind = "hypoglycaemia" if rule.startswith("glucose.hypo") else "hyperglycaemia"
        number = rule[-1]
        if lasted_s > 0:
            how = f"for {lasted_s / 60.0:.0f} min ({len(level.run_refs)} readings)"
        else:
            how = "(single reading)"
        message = (
            f"level {number} {kind}: glucose {_shown(glucose_mg_dl, reading.comparator)} mg/dL "
            f"{sign} {threshold:g} mg/dL {how}"
        )
        return self.alert(
            rule,
            severity,
            reading.epoch_s,
            message,
            tuple(level.run_refs),
            detail={
                "glucose_mg_dl": glucose_mg_dl,
                "threshold_mg_dl": threshold,
                "duration_min": lasted_s / 60.0,
                "single_reading": lasted_s == 0,
                "code": reading.code,
                "comparator": reading.comparator,
            },
        )

    # ------------------------------------------------------------------ trend and forecast
    def _score_forecasts(self, t: float, glucose_mg_dl: float) -> None:
        pending = self._pending
        while pending and pending[0][0] <= t + _MATCH_TOLERANCE_S:
            target_s, forecast = pending.popleft()
            if abs(t - target_s) <= _MATCH_TOLERANCE_S:
                self._err_n += 1
                error = glucose_mg_dl - forecast
                self._err_sq_mean += (error * error - self._err_sq_mean) / self._err_n

    def rmse_mg_dl(self) -> float:
        """The RMSE the forecast bound uses now: measured, or the prior until enough errors.

        Examples
        --------
        >>> GlucoseMonitor("mt-1").rmse_mg_dl()
        20.0
        """
        if self._err_n >= self.params["forecast_min_errors"]:
            return math.sqrt(self._err_sq_mean)
        return float(self.params["forecast_prior_rmse_mg_dl"])

    def _widen(self) -> None:
        """The trend windows in use: each its parameter, widened to :data:`SPARSE_WINDOW_GAPS`
        times the typical interval between the recent readings (the median of the last
        :data:`GAP_MEMORY`) when that is longer, so that a sparse series (a Libre's history
        every 15 minutes) still has the 3 readings a line needs."""
        sparse = _sparse_min(self._gaps)
        rate, forecast = self._windows
        self._rate_min = sparse if sparse > rate else rate
        self._forecast_min = sparse if sparse > forecast else forecast

    def _fit(self, t: float, window_min: float) -> tuple[float, float, int] | None:
        """Least-squares line through the window's readings: (value at ``t``, slope/min, n).

        One pass over the window with times relative to ``t`` (the same line as
        :func:`linear_forecast`); ``None`` with fewer than 3 readings or less than 10 min.
        """
        start = t - 60.0 * window_min
        n = 0
        first = t
        sum_d = sum_g = sum_dd = sum_dg = 0.0
        for s, g, _ in self._window:
            if s < start:
                continue
            if n == 0:
                first = s
            d = s - t
            n += 1
            sum_d += d
            sum_g += g
            sum_dd += d * d
            sum_dg += d * g
        if n < 3 or t - first < 600.0:
            return None
        sxx = sum_dd - sum_d * sum_d / n
        if sxx <= 0.0:
            return None
        sxy = sum_dg - sum_d * sum_g / n
        return sum_g / n - sxy / sxx * sum_d / n, 60.0 * sxy / sxx, n

    def _trend_alerts(
        self, reading: Reading, glucose_mg_dl: float, hypo_active: bool
    ) -> list[Alert]:
        p = self.params
        t = reading.epoch_s
        alerts: list[Alert] = []
        refractory_s = 60.0 * p["refractory_min"]
        rate_min = self._rate_min
        rate = self._fit(t, rate_min)
        if rate is not None:
            _, slope, n = rate
            recent = self._last_fall_alert_s is not None and t - self._last_fall_alert_s < (
                refractory_s
            )
            if slope <= -p["fall_rate_mg_dl_min"] and not recent:
                self._last_fall_alert_s = t
                refs = [ref for s, _, ref in self._window if s >= t - 60.0 * rate_min]
                alerts.append(
                    self.alert(
                        "glucose.falling_fast",
                        "low-medium",
                        t,
                        f"glucose falling {-slope:.1f} mg/dL/min (threshold "
                        f"{p['fall_rate_mg_dl_min']:g}) over {n} readings in {rate_min:g} min, now "
                        f"{_shown(glucose_mg_dl, reading.comparator)} mg/dL",
                        refs[-self._max_evidence :],
                        source=_SOURCE_RATE,
                        detail={
                            "rate_mg_dl_min": slope,
                            "glucose_mg_dl": glucose_mg_dl,
                            "window_min": rate_min,
                        },
                    )
                )
        horizon_s = 60.0 * p["horizon_min"]
        forecast_min = self._forecast_min
        fit = self._fit(t, forecast_min)
        if fit is None:
            return alerts
        level, slope, n = fit
        # the fitted value now plus the (weighted) trend over the horizon
        forecast = level + p["forecast_trend_weight"] * slope * p["horizon_min"]
        self._pending.append((t + horizon_s, forecast))
        rmse = self.rmse_mg_dl()
        lower = forecast - p["forecast_z"] * rmse
        threshold = self._thresholds[1]  # level 1 hypoglycaemia, 70 mg/dL
        recent = self._last_forecast_alert_s is not None and (
            t - self._last_forecast_alert_s < refractory_s
        )
        falling = slope <= -p["forecast_min_fall_mg_dl_min"]
        if falling and lower < threshold and not hypo_active and not recent:
            self._last_forecast_alert_s = t
            refs = [ref for s, _, ref in self._window if s >= t - 60.0 * forecast_min]
            alerts.append(
                self.alert(
                    "glucose.hypo.predicted",
                    "medium",
                    t,
                    f"glucose {_shown(glucose_mg_dl, reading.comparator)} mg/dL, falling "
                    f"{-slope:.1f} mg/dL/min: "
                    f"forecast in {p['horizon_min']:g} min {forecast:.0f} mg/dL (lower bound "
                    f"{lower:.0f}, RMSE {rmse:.0f}) < {threshold:g} mg/dL",
                    refs[-self._max_evidence :],
                    source=_SOURCE_FORECAST,
                    detail={
                        "forecast_mg_dl": forecast,
                        "lower_bound_mg_dl": lower,
                        "rmse_mg_dl": rmse,
                        "rmse_measured": self._err_n >= p["forecast_min_errors"],
                        "rate_mg_dl_min": slope,
                        "horizon_min": p["horizon_min"],
                        "glucose_mg_dl": glucose_mg_dl,
                    },
                )
            )
        return alerts

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "levels": [
                {
                    "active": level.active,
                    "run_start_s": level.run_start_s,
                    "recover_start_s": level.recover_start_s,
                    "run_refs": [list(ref) for ref in level.run_refs],
                }
                for level in self._levels
            ],
            "last_s": self._last_s,
            "window": [[s, g, ref.source, ref.source_id] for s, g, ref in self._window],
            "pending": [list(item) for item in self._pending],
            "err_n": self._err_n,
            "err_sq_mean": self._err_sq_mean,
            "last_fall_alert_s": self._last_fall_alert_s,
            "last_forecast_alert_s": self._last_forecast_alert_s,
            "gaps": list(self._gaps),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._reset()
        for level, saved in zip(self._levels, state["levels"], strict=True):
            level.active = bool(saved["active"])
            level.run_start_s = saved["run_start_s"]
            level.recover_start_s = saved["recover_start_s"]
            level.run_refs.extend(FactRef(*ref) for ref in saved["run_refs"])
        self._last_s = state["last_s"]
        self._window.extend((float(s), float(g), FactRef(a, b)) for s, g, a, b in state["window"])
        self._pending.extend((float(s), float(f)) for s, f in state["pending"])
        self._err_n = int(state["err_n"])
        self._err_sq_mean = float(state["err_sq_mean"])
        self._last_fall_alert_s = state["last_fall_alert_s"]
        self._last_forecast_alert_s = state["last_forecast_alert_s"]
        self._gaps.extend(float(g) for g in state.get("gaps", ()))
        self._widen()


MONITORS = (GlucoseMonitor,)


def _sparse_min(gaps: deque[float]) -> float:
    """:data:`SPARSE_WINDOW_GAPS` times the median of ``gaps`` (seconds), in minutes; 0 without
    any (sorting at most :data:`GAP_MEMORY` numbers: cheaper than ``statistics.median``).

    >>> _sparse_min(deque([900.0, 300.0, 900.0]))
    30.0
    """
    n = len(gaps)
    if n == 0:
        return 0.0
    ordered = sorted(gaps)
    return SPARSE_WINDOW_GAPS * (ordered[(n - 1) // 2] + ordered[n // 2]) / 120.0


def _shown(glucose_mg_dl: float, comparator: str | None) -> str:
    """A glucose as an alert says it: ``"63"``, or a bound as sent, ``"<40"``."""
    return f"{comparator or ''}{glucose_mg_dl:.0f}"


def _beyond(
    glucose_mg_dl: float, comparator: str | None, side: str, threshold: float
) -> bool | None:
    """Whether a reading is beyond ``threshold`` on ``side`` ("below" / "above"): a value is
    or is not; a bound (``comparator``) is only where every value it allows is on the same
    side ("<40" is below 54; "<60" may or may not be: None, it says nothing of level 2).

    >>> _beyond(40.0, "<", "below", 54.0), _beyond(60.0, "<", "below", 54.0)
    (True, None)
    >>> _beyond(400.0, ">", "above", 250.0), _beyond(400.0, ">", "below", 70.0)
    (True, False)
    """
    g = glucose_mg_dl
    if comparator is None:
        return g < threshold if side == "below" else g > threshold
    upper = comparator.startswith("<")  # the reading is at most g (or less than g)
    strict = comparator in ("<", ">")
    if side == "below":  # is the value < threshold?
        if upper:
            return True if (g <= threshold if strict else g < threshold) else None
        return False if g >= threshold else None
    if upper:  # is the value > threshold?
        return False if g <= threshold else None
    return True if (g >= threshold if strict else g > threshold) else None
