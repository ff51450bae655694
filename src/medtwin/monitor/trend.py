"""Online trend / change-point detectors on any vital sign or lab: two-sided CUSUM and Page-Hinkley.

Both monitors watch each LOINC code of a patient on its own (``codes`` parameter; default the
common vitals and labs of :data:`DEFAULT_CODES`), learn that code's baseline mean and SD from a
warm-up window of the patient's own readings, and then test every new reading for a sustained
shift of the mean, up or down. Model card: ``docs/models/trend-detectors.md``.

**CUSUM** (Page 1954; the tabular form of Montgomery 2019, section 9.1.2). With the baseline mean
``mu0`` and SD ``sigma0`` of the code, each reading becomes ``z = (x - mu0) / sigma0`` (winsorised
at ``clip_sd``, Hawkins 1993) and::

    S+_t = max(0, S+_{t-1} + z_t - k)        S-_t = max(0, S-_{t-1} - z_t - k)

An alarm fires when ``S+ > h`` (upward shift) or ``S- > h`` (downward shift); ``k`` (``k_sd``) is
the reference value and ``h`` (``h_sd``) the decision interval, both in SDs of the baseline.
No test is made during the first ``warmup_n`` readings; after them the baseline keeps learning
in the self-starting way (Hawkins 1987): each reading is standardised by the mean and SD of the
readings before it, then joins them, up to ``baseline_max_n`` readings. A 30-reading SD alone
is too uncertain (it was 18 % low in one of our test series and tripled the false alarms).

**Autocorrelation.** Both tests assume independent readings; vital signs a minute apart are not,
and an AR(1) series with lag-1 correlation 0.5 gave 3.3 false alarms per 1,000 readings instead
of none. With ``adjust_autocorrelation`` the lag-1 autocorrelation ``r`` of the warm-up is
estimated and, when above the white-noise bound ``2 / sqrt(n)`` (Bartlett 1946), the baseline SD
is multiplied by ``sqrt((1 + r) / (1 - r))`` (``r`` capped at 0.8), the ratio of the long-run to
the marginal SD of an AR(1) process, so that the sums the tests accumulate have the scale they
assume. ``r`` is fixed at the end of the warm-up, so a later shift cannot pass for correlation.

**Page-Hinkley** (Page 1954; Hinkley 1971), as river's ``drift.PageHinkley`` (mode ``both``):
with the running mean ``xbar_t`` and SD ``sigma_t`` of the readings since the (re)start::

    U_t = alpha * U_{t-1} + (x_t - xbar_t) / sigma_t - delta      alarm: U_t - min U > threshold
    L_t = alpha * L_{t-1} + (x_t - xbar_t) / sigma_t + delta      alarm: max L - L_t > threshold

``delta``, ``threshold`` and ``alpha`` keep river's names; unlike river they are in SDs of the
code's warm-up baseline (river works in the raw unit), so one setting serves every code.

**Restart rule.** After an alarm on a code, that code's detector forgets everything (both
statistics, the baseline) and learns a new baseline from the next warm-up window: the level the
patient has shifted to becomes the new reference, so one sustained shift raises one alert, and
a further shift from the new level raises another. Absolute limits (NEWS2, glucose) are other
monitors' job. river's Page-Hinkley also resets fully after a detection.

**Bounds.** A reading sent as a bound, not a value (a CGM's LOW "<40", a creatinine "<0.3":
``Reading.comparator``) is never learned into a baseline. CUSUM tests it on one side only, the
side where the bound is the least extreme value it allows: "<x" steps S- with the z of x (the
true z is at most that, so the evidence of a fall is, if anything, understated) and leaves S+
as it was; ">x" steps S+ and leaves S-. Page-Hinkley leaves bounds out, since each of its
readings joins the running mean it is tested against.

**Alerts** say the direction, the shift in the code's unit (mean of the readings since the
statistic last left zero, Page's estimate of the change time, minus the baseline mean), the
statistic against its threshold, and cite the last ``max_evidence`` readings of that run.

References
----------
Page ES. Continuous inspection schemes. Biometrika. 1954;41(1/2):100-115.
Hinkley DV. Inference about the change-point from cumulative sum tests. Biometrika.
1971;58(3):509-523.
Hawkins DM. Self-starting CUSUM charts for location and scale. Journal of the Royal
Statistical Society, Series D (The Statistician). 1987;36(4):299-316.
Bartlett MS. On the theoretical specification and sampling properties of autocorrelated
time-series. Supplement to the Journal of the Royal Statistical Society. 1946;8(1):27-41.
Montgomery DC. Introduction to Statistical Quality Control. 8th ed. Wiley; 2019. Section 9.1
(the tabular CUSUM; Table 9.3 ARLs of the two-sided CUSUM with k = 1/2).
Hawkins DM. Robustification of cumulative sum charts by winsorization. Journal of Quality
Technology. 1993;25(4):248-261.
Montiel J, Halford M, Mastelini SM, et al. River: machine learning for streaming data in Python.
Journal of Machine Learning Research. 2021;22(110):1-8 (``river.drift.PageHinkley``).

Examples
--------
>>> from medtwin.monitor.base import FactRef, Reading
>>> monitor = CusumMonitor("mt-1", {"codes": ["8867-4"], "warmup_n": 20})
>>> values = [70, 72, 71, 69, 73] * 4 + [90] * 6
>>> alerts = []
>>> for i, v in enumerate(values):
...     reading = Reading("mt-1", "8867-4", 60.0 * i, v, "/min", FactRef("demo", f"r{i}"))
...     alerts += monitor.learn_one(reading)
>>> [(a.rule, a.detail["direction"]) for a in alerts]
[('cusum.shift', 'up')]
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from medtwin.monitor.base import Alert, FactRef, Monitor, MonitorConfigError, Reading

__all__ = [
    "DEFAULT_CODES",
    "MONITORS",
    "PLAUSIBLE",
    "SD_FLOORS",
    "CusumMonitor",
    "PageHinkleyMonitor",
]

DEFAULT_CODES: tuple[str, ...] = (
    "8867-4",  # heart rate
    "9279-1",  # respiratory rate
    "59408-5",  # SpO2 by pulse oximetry
    "2708-6",  # SaO2
    "8480-6",  # systolic blood pressure
    "8310-5",  # body temperature
    "29463-7",  # body weight
    "3141-9",  # body weight measured
    "2160-0",  # creatinine, serum/plasma, mass
    "38483-4",  # creatinine, blood, mass
    "14682-9",  # creatinine, serum/plasma, molar
    "2823-3",  # potassium, serum/plasma
    "6298-4",  # potassium, blood
    "718-7",  # haemoglobin
    "2339-0",  # glucose, blood, mass
    "2345-7",  # glucose, serum/plasma, mass
    "15074-8",  # glucose, blood, molar
    "14749-6",  # glucose, serum/plasma, molar
    "41653-7",  # glucose, glucometer
    "99504-3",  # glucose, interstitial fluid (CGM)
)
"""The codes watched by default: HR, RR, SpO2, systolic BP, temperature, weight, creatinine,
potassium, haemoglobin and glucose (each with the common alternative LOINC codes in
``record/data/loinc.csv``). Each code has its own baseline."""

SD_FLOORS: Mapping[str, float] = {
    "8867-4": 2.0,  # /min
    "9279-1": 1.0,  # /min
    "59408-5": 1.0,  # %
    "2708-6": 1.0,  # %
    "8480-6": 3.0,  # mm[Hg]
    "8310-5": 0.1,  # Cel
    "29463-7": 0.2,  # kg
    "3141-9": 0.2,  # kg
    "2160-0": 0.05,  # mg/dL
    "38483-4": 0.05,  # mg/dL
    "14682-9": 4.0,  # umol/L
    "2823-3": 0.1,  # mmol/L
    "6298-4": 0.1,  # mmol/L
    "718-7": 0.2,  # g/dL
    "2339-0": 5.0,  # mg/dL
    "2345-7": 5.0,  # mg/dL
    "15074-8": 0.3,  # mmol/L
    "14749-6": 0.3,  # mmol/L
    "41653-7": 5.0,  # mg/dL
    "99504-3": 5.0,  # mg/dL
}
"""Smallest baseline SD per code, in the code's canonical unit.

An engineering floor, not a published value: about the reporting resolution of the measurement
(whole beats, whole percent, 0.1 °C, 0.1 kg ...), so that a warm-up of identical readings
(SpO2 98, 98, 98 ...) cannot make every later one-unit change an alarm. Codes not listed get
``1e-6 * max(1, |mean|)``; the ``sd_floor`` parameter overrides per code."""

PLAUSIBLE: Mapping[str, tuple[float, float]] = {
    "8867-4": (20.0, 300.0),  # /min
    "9279-1": (2.0, 80.0),  # /min
    "59408-5": (50.0, 100.0),  # %
    "2708-6": (50.0, 100.0),  # %
    "8480-6": (40.0, 300.0),  # mm[Hg]
    "8310-5": (25.0, 45.0),  # Cel
    "29463-7": (0.5, 500.0),  # kg
    "3141-9": (0.5, 500.0),  # kg
    "2160-0": (0.1, 30.0),  # mg/dL
    "38483-4": (0.1, 30.0),  # mg/dL
    "14682-9": (10.0, 2500.0),  # umol/L
    "2823-3": (1.0, 10.0),  # mmol/L
    "6298-4": (1.0, 10.0),  # mmol/L
    "718-7": (2.0, 25.0),  # g/dL
    "2339-0": (10.0, 1000.0),  # mg/dL
    "2345-7": (10.0, 1000.0),  # mg/dL
    "15074-8": (0.5, 55.0),  # mmol/L
    "14749-6": (0.5, 55.0),  # mmol/L
    "41653-7": (10.0, 1000.0),  # mg/dL
    "99504-3": (10.0, 1000.0),  # mg/dL
}
"""Readings outside these limits (canonical unit) are not learned by the trend detectors.

Data-quality limits, not clinical thresholds, and an engineering choice: they drop what a
bedside monitor writes when a lead or probe is off (0 /min, 0 %: seen in the PhysioNet ICU
numerics in ``../shared/data``) and unit errors, which would otherwise be "shifts" of the mean
and poison the baseline. A real extreme (asystole, apnoea) is the business of the absolute
monitors (NEWS2), not of a change detector. The ``plausible`` parameter overrides per code."""

_SOURCE_CUSUM = (
    "Page ES. Continuous inspection schemes. Biometrika 1954;41(1/2):100-115 (CUSUM); "
    "Montgomery DC. Introduction to Statistical Quality Control, 8th ed., 2019, section 9.1 "
    "(tabular two-sided CUSUM); Hawkins DM. The Statistician 1987;36(4):299-316 (self-starting); "
    "Hawkins DM. J Qual Technol 1993;25(4):248-261 (winsorised CUSUM)."
)
_SOURCE_PH = (
    "Page ES. Biometrika 1954;41(1/2):100-115; Hinkley DV. Inference about the change-point "
    "from cumulative sum tests. Biometrika 1971;58(3):509-523; as river.drift.PageHinkley "
    "(Montiel et al. JMLR 2021;22(110):1-8), scaled to baseline SDs."
)


def _display(code: str) -> str:
    from medtwin.record.codes import LOINC, display

    return display(LOINC, code, code) or code


def _check_codes(name: str, params: Mapping[str, Any]) -> frozenset[str]:
    codes = params["codes"]
    if isinstance(codes, str) or not all(isinstance(c, str) for c in codes):
        raise MonitorConfigError(f"monitor {name}: 'codes' must be a list of LOINC code strings")
    floors = params["sd_floor"]
    if not isinstance(floors, Mapping) or not all(
        isinstance(v, (int, float)) and v > 0 for v in floors.values()
    ):
        raise MonitorConfigError(f"monitor {name}: 'sd_floor' must map codes to positive SDs")
    return frozenset(codes)


def _positive(name: str, params: Mapping[str, Any], key: str, *, integer: bool = False) -> None:
    value = params[key]
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or not value > 0 or not math.isfinite(value):
        kind = "a positive integer" if integer else "a positive number"
        raise MonitorConfigError(f"monitor {name}: {key!r} must be {kind}, got {value!r}")


class _Track:
    """The state of one code: warm-up sums, baseline, both statistics and their runs."""

    __slots__ = (
        "evidence_down",
        "evidence_up",
        "extreme_down",
        "extreme_up",
        "first",
        "inflation",
        "lag_n",
        "lag_sum",
        "low",
        "mean",
        "n",
        "n_down",
        "n_up",
        "prev",
        "scale",
        "sd",
        "sum_down",
        "sum_up",
        "up",
        "warm_m2",
        "warm_mean",
    )

    def __init__(self, max_evidence: int) -> None:
        self.n = 0  # readings learned since the (re)start
        self.warm_mean = 0.0  # Welford accumulators of the warm-up window
        self.warm_m2 = 0.0
        self.first = 0.0  # the first and last values of the lag-1 sums
        self.prev = 0.0
        self.lag_sum = 0.0  # sum of x_t * x_{t-1} over consecutive baseline readings
        self.lag_n = 0
        self.inflation = 0.0  # SD factor for autocorrelation, set at the end of the warm-up
        self.mean = 0.0  # baseline mean (CUSUM) / running mean (Page-Hinkley)
        self.sd = 0.0  # baseline SD (after the floor)
        self.scale = 0.0  # 1 / sd
        self.up = 0.0  # S+ (CUSUM) or U (Page-Hinkley)
        self.low = 0.0  # S- (CUSUM) or L (Page-Hinkley)
        self.extreme_up = 0.0  # min U (Page-Hinkley)
        self.extreme_down = 0.0  # max L (Page-Hinkley)
        self.n_up = 0  # readings in the current upward run
        self.n_down = 0
        self.sum_up = 0.0  # sum of raw values in the run
        self.sum_down = 0.0
        self.evidence_up: deque[FactRef] = deque(maxlen=max_evidence)
        self.evidence_down: deque[FactRef] = deque(maxlen=max_evidence)

    def learn(self, x: float, lag: bool) -> None:
        """Add ``x`` to the baseline: Welford (1962) mean and M2 (and the lag-1 sums if ``lag``)."""
        self.n += 1
        delta = x - self.warm_mean
        self.warm_mean += delta / self.n
        self.warm_m2 += delta * (x - self.warm_mean)
        self.mean = self.warm_mean
        if lag:
            if self.n > 1:
                self.lag_sum += x * self.prev
                self.lag_n += 1
            else:
                self.first = x
            self.prev = x

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "warm_mean": self.warm_mean,
            "warm_m2": self.warm_m2,
            "first": self.first,
            "prev": self.prev,
            "lag_sum": self.lag_sum,
            "lag_n": self.lag_n,
            "inflation": self.inflation,
            "mean": self.mean,
            "sd": self.sd,
            "up": self.up,
            "low": self.low,
            "extreme_up": self.extreme_up,
            "extreme_down": self.extreme_down,
            "n_up": self.n_up,
            "n_down": self.n_down,
            "sum_up": self.sum_up,
            "sum_down": self.sum_down,
            "evidence_up": [list(ref) for ref in self.evidence_up],
            "evidence_down": [list(ref) for ref in self.evidence_down],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], max_evidence: int) -> _Track:
        track = cls(max_evidence)
        track.n = int(data["n"])
        for key in (
            "warm_mean",
            "warm_m2",
            "first",
            "prev",
            "lag_sum",
            "inflation",
            "mean",
            "sd",
            "up",
            "low",
            "extreme_up",
            "extreme_down",
            "sum_up",
            "sum_down",
        ):
            setattr(track, key, float(data[key]))
        track.scale = 1.0 / track.sd if track.sd > 0 else 0.0
        track.lag_n = int(data["lag_n"])
        track.n_up = int(data["n_up"])
        track.n_down = int(data["n_down"])
        track.evidence_up.extend(FactRef(*ref) for ref in data["evidence_up"])
        track.evidence_down.extend(FactRef(*ref) for ref in data["evidence_down"])
        return track


class _TrendMonitor(Monitor):
    """Shared per-code bookkeeping of the two detectors (warm-up, state, alerts)."""

    codes: ClassVar[frozenset[str]] = frozenset()  # every code; the ``codes`` parameter filters
    warmup_key: ClassVar[str]

    def __init__(self, patient_id: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(patient_id, params)
        self._codes = _check_codes(self.name, self.params)
        _positive(self.name, self.params, "max_evidence", integer=True)
        _positive(self.name, self.params, self.warmup_key, integer=True)
        if self.params[self.warmup_key] < 2:
            raise MonitorConfigError(f"monitor {self.name}: {self.warmup_key!r} must be >= 2")
        self._warmup_n: int = self.params[self.warmup_key]
        self._max_evidence: int = self.params["max_evidence"]
        self._floors = {**SD_FLOORS, **self.params["sd_floor"]}
        plausible = self.params["plausible"]
        if not isinstance(plausible, Mapping) or not all(
            isinstance(v, (list, tuple)) and len(v) == 2 and float(v[0]) < float(v[1])
            for v in plausible.values()
        ):
            raise MonitorConfigError(
                f"monitor {self.name}: 'plausible' must map codes to [low, high] limits"
            )
        self._plausible: dict[str, tuple[float, float]] = {
            **PLAUSIBLE,
            **{code: (float(v[0]), float(v[1])) for code, v in plausible.items()},
        }
        if not isinstance(self.params["adjust_autocorrelation"], bool):
            raise MonitorConfigError(
                f"monitor {self.name}: 'adjust_autocorrelation' must be true/false"
            )
        self._adjust: bool = self.params["adjust_autocorrelation"]
        self._tracks: dict[str, _Track] = {}

    def learn_one(self, reading: Reading) -> list[Alert]:
        return self.learn_many((reading,))

    def _finish_warmup(self, code: str, track: _Track) -> None:
        variance = track.warm_m2 / (track.n - 1)
        floor = self._floors.get(code, 1e-6 * max(1.0, abs(track.warm_mean)))
        sd = max(math.sqrt(variance), floor)
        if track.inflation == 0.0:  # the end of the warm-up: fix the autocorrelation factor
            track.inflation = 1.0
            if self._adjust and track.lag_n > 0 and variance > 0:
                # lag-1 autocorrelation r of the warm-up readings; used only when above the
                # white-noise bound 2 / sqrt(n) (Bartlett 1946), and capped at 0.8. The SD of
                # a sum of AR(1) readings grows by sqrt((1 + r) / (1 - r)) (long-run variance).
                # r = sum (x_t - m)(x_{t-1} - m) / sum (x_t - m)^2, from running sums
                m, n = track.warm_mean, track.lag_n + 1
                total = n * m
                cross = (
                    track.lag_sum
                    - m * ((total - track.prev) + (total - track.first))
                    + (n - 1) * m * m
                )
                r = cross / track.warm_m2
                if r > 2.0 / math.sqrt(track.n):
                    r = min(r, 0.8)
                    track.inflation = math.sqrt((1.0 + r) / (1.0 - r))
        sd *= track.inflation
        track.sd = sd
        track.scale = 1.0 / sd

    def state_dict(self) -> dict[str, Any]:
        return {"tracks": {code: t.to_json() for code, t in sorted(self._tracks.items())}}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._tracks = {
            code: _Track.from_json(data, self._max_evidence)
            for code, data in state.get("tracks", {}).items()
        }

    def _shift_alert(
        self,
        reading: Reading,
        track: _Track,
        *,
        upward: bool,
        statistic: float,
        threshold: float,
        statistic_name: str,
        baseline_mean: float,
    ) -> Alert:
        n_run = track.n_up if upward else track.n_down
        run_sum = track.sum_up if upward else track.sum_down
        run_mean = run_sum / n_run
        shift = run_mean - baseline_mean
        unit = reading.unit or ""
        direction = "up" if upward else "down"
        label = _display(reading.code)
        message = (
            f"{label} shifted {direction} by {shift:+.3g} {unit} (mean {run_mean:.4g} over the "
            f"last {n_run} readings vs baseline {baseline_mean:.4g} ± {track.sd:.3g} {unit}); "
            f"{self.name} {statistic_name} {statistic:.2f} > {threshold:g} SD"
        ).replace("  ", " ")
        evidence = tuple(track.evidence_up if upward else track.evidence_down)
        return self.alert(
            f"{self.name}.shift",
            "low",
            reading.epoch_s,
            message,
            evidence,
            detail={
                "code": reading.code,
                "unit": reading.unit,
                "direction": direction,
                "shift": shift,
                "run_mean": run_mean,
                "run_n": n_run,
                "baseline_mean": baseline_mean,
                "baseline_sd": track.sd,
                "statistic": statistic_name,
                "statistic_value": statistic,
                "threshold": threshold,
            },
            key=f"{self.name}:{reading.code}:{direction}",
        )


class CusumMonitor(_TrendMonitor):
    """Two-sided tabular CUSUM per code with a self-learned baseline (Page 1954).

    Parameters (``defaults``)
    -------------------------
    codes
        LOINC codes to watch (default :data:`DEFAULT_CODES`); others are ignored.
    k_sd
        Reference value k in baseline SDs (0.5: tuned to a shift of 1 SD, Montgomery 2019 9.1.3).
    h_sd
        Decision interval h in baseline SDs (10). With k = 0.5, h = 5 gives an in-control ARL of
        the two-sided chart of 465 readings (Montgomery Table 9.3): about 2 false alarms per
        1,000 readings, too many for a ward; the measured rates at h = 10 with a learned
        baseline are in ``docs/models/trend-detectors.md``.
    warmup_n
        Readings that set the baseline mean and SD after a (re)start, before any test.
    baseline_max_n
        After the warm-up every reading is first standardised by the baseline of the readings
        before it, then added to it (a self-starting CUSUM, Hawkins 1987), until the baseline
        holds this many readings; then it is frozen until the next restart.
    clip_sd
        Each standardised reading is winsorised to ±clip_sd (Hawkins 1993), so that no single
        artefact can cross h alone.
    max_evidence
        How many of the run's most recent readings an alert cites.
    sd_floor
        Per-code overrides of :data:`SD_FLOORS` (canonical unit).
    plausible
        Per-code overrides ``[low, high]`` of :data:`PLAUSIBLE`; readings outside are skipped.
    adjust_autocorrelation
        Widen the baseline SD for the lag-1 autocorrelation of the warm-up (see the module).

    Examples
    --------
    >>> CusumMonitor("mt-1").params["h_sd"]
    10.0
    """

    name = "cusum"
    version = "1"
    source = _SOURCE_CUSUM
    description = (
        "Two-sided CUSUM per vital/lab code against the patient's own warm-up baseline: "
        "alerts on a sustained shift up or down."
    )
    defaults: ClassVar[Mapping[str, Any]] = {
        "codes": list(DEFAULT_CODES),
        "k_sd": 0.5,
        "h_sd": 10.0,
        "warmup_n": 30,
        "baseline_max_n": 1000,
        "clip_sd": 4.0,
        "max_evidence": 12,
        "sd_floor": {},
        "plausible": {},
        "adjust_autocorrelation": True,
    }
    warmup_key = "warmup_n"

    def __init__(self, patient_id: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(patient_id, params)
        for key in ("k_sd", "h_sd", "clip_sd"):
            _positive(self.name, self.params, key)
        self._k = float(self.params["k_sd"])
        self._h = float(self.params["h_sd"])
        self._clip = float(self.params["clip_sd"])
        _positive(self.name, self.params, "baseline_max_n", integer=True)
        self._baseline_max_n: int = max(self.params["baseline_max_n"], self._warmup_n)

    def learn_many(self, readings: Sequence[Reading]) -> list[Alert]:
        alerts: list[Alert] = []
        codes, tracks, plausible = self._codes, self._tracks, self._plausible
        k, h, clip, warmup_n = self._k, self._h, self._clip, self._warmup_n
        baseline_max_n = self._baseline_max_n
        for reading in readings:
            code = reading.code
            if code not in codes:
                continue
            x = reading.value
            limits = plausible.get(code)
            if not math.isfinite(x) or (limits is not None and not limits[0] <= x <= limits[1]):
                continue
            track = tracks.get(code)
            # a bound ("<40") is never learned; it steps only the side where the bound is the
            # least extreme value it allows: "<x" S- (the true z is at most that of x), ">x" S+
            side = 0
            if reading.comparator is not None:
                if track is None or track.n < warmup_n:
                    continue
                side = 1 if reading.comparator.startswith(">") else -1
            if track is None:
                track = tracks[code] = _Track(self._max_evidence)
            if track.n < warmup_n:
                track.learn(x, True)  # the lag-1 sums come from the warm-up only
                if track.n == warmup_n:
                    self._finish_warmup(code, track)
                continue
            # self-starting (Hawkins 1987): standardise by the baseline of the readings before
            # this one, then let this reading refine the baseline until it is baseline_max_n long
            z = (x - track.mean) * track.scale
            if z > clip:
                z = clip
            elif z < -clip:
                z = -clip
            if side == 0:  # a value joins the baseline; a bound does not, nor is it counted
                if track.n < baseline_max_n:
                    track.learn(x, False)
                    self._finish_warmup(code, track)
                else:
                    track.n += 1
            if side >= 0:
                up = track.up + z - k
                if up > 0.0:
                    if track.up == 0.0:  # a new run starts here (Page's change-time estimate)
                        track.n_up = 0
                        track.sum_up = 0.0
                        track.evidence_up.clear()
                    track.n_up += 1
                    track.sum_up += x
                    track.evidence_up.append(reading.ref)
                    track.up = up
                else:
                    track.up = 0.0
            if side <= 0:
                low = track.low - z - k
                if low > 0.0:
                    if track.low == 0.0:
                        track.n_down = 0
                        track.sum_down = 0.0
                        track.evidence_down.clear()
                    track.n_down += 1
                    track.sum_down += x
                    track.evidence_down.append(reading.ref)
                    track.low = low
                else:
                    track.low = 0.0
            if track.up > h or track.low > h:
                alerts.append(self._alarm(reading, track))
        return alerts

    def _alarm(self, reading: Reading, track: _Track) -> Alert:
        """The shift alert of a statistic over ``h``; the code's detector restarts."""
        upward = track.up >= track.low
        self._tracks[reading.code] = _Track(self._max_evidence)  # restart: new warm-up
        return self._shift_alert(
            reading,
            track,
            upward=upward,
            statistic=track.up if upward else track.low,
            threshold=self._h,
            statistic_name="S+" if upward else "S-",
            baseline_mean=track.mean,
        )


class PageHinkleyMonitor(_TrendMonitor):
    """Page-Hinkley test per code (both directions), in SDs of a self-learned baseline.

    Parameters (``defaults``)
    -------------------------
    codes
        LOINC codes to watch (default :data:`DEFAULT_CODES`).
    delta
        Magnitude of change tolerated, in baseline SDs (river: ``delta``, raw units).
    threshold
        Alarm threshold lambda, in baseline SDs (river: ``threshold``).
    alpha
        Forgetting factor of the cumulative sums (river's default 1 - 0.0001).
    min_instances
        Readings before any test; they also set the SD that scales the test.
    max_evidence, sd_floor, plausible, adjust_autocorrelation
        As :class:`CusumMonitor`.

    Examples
    --------
    >>> PageHinkleyMonitor("mt-1").params["threshold"]
    10.0
    """

    name = "page_hinkley"
    version = "1"
    source = _SOURCE_PH
    description = (
        "Page-Hinkley test per vital/lab code (river's PageHinkley, scaled to the patient's "
        "baseline SD): alerts on a sustained change of the mean up or down."
    )
    defaults: ClassVar[Mapping[str, Any]] = {
        "codes": list(DEFAULT_CODES),
        "delta": 0.5,
        "threshold": 10.0,
        "alpha": 1 - 0.0001,
        "min_instances": 30,
        "max_evidence": 12,
        "sd_floor": {},
        "plausible": {},
        "adjust_autocorrelation": True,
    }
    warmup_key = "min_instances"

    def __init__(self, patient_id: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(patient_id, params)
        for key in ("delta", "threshold", "alpha"):
            _positive(self.name, self.params, key)
        if self.params["alpha"] > 1:
            raise MonitorConfigError(f"monitor {self.name}: 'alpha' must be in (0, 1]")
        self._delta = float(self.params["delta"])
        self._threshold = float(self.params["threshold"])
        self._alpha = float(self.params["alpha"])

    def learn_many(self, readings: Sequence[Reading]) -> list[Alert]:
        alerts: list[Alert] = []
        codes, tracks, plausible = self._codes, self._tracks, self._plausible
        delta, threshold, alpha = self._delta, self._threshold, self._alpha
        warmup_n = self._warmup_n
        for reading in readings:
            code = reading.code
            if code not in codes:
                continue
            x = reading.value
            limits = plausible.get(code)
            if not math.isfinite(x) or (limits is not None and not limits[0] <= x <= limits[1]):
                continue
            if reading.comparator is not None:
                # a bound ("<40") is not a value, and every Page-Hinkley reading joins the
                # running mean the test is made against: left out
                continue
            track = tracks.get(code)
            if track is None:
                track = tracks[code] = _Track(self._max_evidence)
            track.learn(x, track.n < warmup_n)
            if track.n <= warmup_n:
                if track.n == warmup_n:
                    self._finish_warmup(code, track)
                continue
            self._finish_warmup(code, track)
            dev = (x - track.mean) * track.scale
            track.up = alpha * track.up + dev - delta
            track.low = alpha * track.low + dev + delta
            if track.up < track.extreme_up:  # new minimum: an upward run would start after it
                track.extreme_up = track.up
                track.n_up = 0
                track.sum_up = 0.0
                track.evidence_up.clear()
            else:
                track.n_up += 1
                track.sum_up += x
                track.evidence_up.append(reading.ref)
            if track.low > track.extreme_down:
                track.extreme_down = track.low
                track.n_down = 0
                track.sum_down = 0.0
                track.evidence_down.clear()
            else:
                track.n_down += 1
                track.sum_down += x
                track.evidence_down.append(reading.ref)
            test_up = track.up - track.extreme_up
            test_down = track.extreme_down - track.low
            if test_up > threshold or test_down > threshold:
                upward = test_up >= test_down
                n_run = track.n_up if upward else track.n_down
                run_sum = track.sum_up if upward else track.sum_down
                # the mean before the run: the running mean with the run taken out
                before = (track.mean * track.n - run_sum) / (track.n - n_run)
                alerts.append(
                    self._shift_alert(
                        reading,
                        track,
                        upward=upward,
                        statistic=test_up if upward else test_down,
                        threshold=threshold,
                        statistic_name="U-min(U)" if upward else "max(L)-L",
                        baseline_mean=before,
                    )
                )
                tracks[code] = _Track(self._max_evidence)  # restart, as river after a drift
        return alerts


MONITORS = (CusumMonitor, PageHinkleyMonitor)
