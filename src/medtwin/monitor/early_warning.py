"""Early-warning scores over a live stream: NEWS2, qSOFA and MEWS as monitors.

Each monitor keeps the **latest value of every score parameter** (with its time and the fact
it came from) and, at every reading, scores the patient from the latest values that are no older
than ``window_min``: the observation set a nurse would chart, built from a continuous feed. The
score itself is the registered, validated :mod:`medtwin.risk` score (the same code as
``medtwin score``), so a monitor never re-implements a chart.

Missing parameters are never filled. A partial score is a **lower bound** of the complete score,
and the monitor alerts on the clinical-risk band that lower bound already proves (the *floor*):
with temperature and consciousness missing, NEWS2 = 7 from the other parameters is already
"high". The alert names what is missing.

When to alert: when the floor band of the patient **rises** into a band that calls for a
clinical response (NEWS2: low-medium, medium, high, RCP 2017 Chart 3 and 4; qSOFA: positive,
Seymour et al. 2016; MEWS: 5 or more, Subbe et al. 2001). A fall records the new band without an
alert, so the next rise alerts again; the alert book de-duplicates repeats under one key per
score and escalates unacknowledged alerts.

Values outside a score input's plausibility range (HR 900, SpO2 120) never enter the latest
values: they are artefacts (see :mod:`medtwin.monitor.artefact`), and the previous value stays
in use until it ages out of the window. Nor does a **zero** pulse, systolic pressure or
saturation (:data:`NOT_ZERO`): from a device feed it is a disconnected lead, probe or
transducer (the shared MIMIC II ICU record reads an arterial pressure of 0 for 1,929 of 1,936
minutes while the ECG counts a heart rate), or a cardiac arrest, which is not what an early
warning score is for (an arrest is met by the bedside monitor's asystole alarm and the
resuscitation team, not a NEWS2 review). The artefact monitor reports such zeros. A zero
respiratory rate is scored (a recorded apnoea).

Parameters of every early-warning monitor
----------------------------------------
``window_min``
    How old a parameter's latest value may be and still be scored (default 60 minutes: RCP
    2017 Chart 4 asks for observations at least hourly at a score of 5-6 or more, so an hour
    is the longest gap at which a set of observations still describes the patient "now").
``spo2_scale`` (NEWS2 only)
    1, or 2 for a patient with a prescribed SpO2 target of 88-92 % (a clinician's decision,
    RCP 2017 Chart 1 and 2).

References
----------
Royal College of Physicians. National Early Warning Score (NEWS) 2. London: RCP, 2017. Chart 1
(scoring), Chart 3 (thresholds and triggers), Chart 4 (clinical response).
Seymour CW et al. Assessment of clinical criteria for sepsis. JAMA 2016;315(8):762-774.
Subbe CP et al. Validation of a modified Early Warning Score in medical admissions. QJM
2001;94(10):521-526, Table 1.

Examples
--------
>>> from medtwin.monitor.base import FactRef, Reading
>>> m = News2Monitor("mt-1")
>>> t = 1_700_000_000.0
>>> m.learn_one(Reading("mt-1", "9279-1", t, 26.0, "/min", FactRef("icu", "rr/1")))[0].rule
'news2.low-medium'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from medtwin.monitor.base import Alert, FactRef, Monitor, MonitorConfigError, Reading
from medtwin.risk.base import Score

__all__ = [
    "MONITORS",
    "NOT_ZERO",
    "EarlyWarningMonitor",
    "MewsMonitor",
    "News2Monitor",
    "Parameter",
    "QsofaMonitor",
]

CLINICAL_RESPONSE_NEWS2: Mapping[str, str] = {
    "low": "ward-based response: assessment by a competent registered nurse; minimum 4-6 hourly "
    "observations",
    "low-medium": "urgent ward-based response: a registered nurse informs the medical team "
    "caring for the patient; minimum 1-hourly observations",
    "medium": "key threshold for urgent response: urgent review by a clinician competent in "
    "assessing acutely ill patients; minimum 1-hourly observations",
    "high": "urgent or emergency response: emergency assessment by a team with critical-care "
    "competences, usually transfer to a higher level of care; continuous monitoring",
}
"""RCP 2017 Chart 4 (clinical response to NEWS trigger thresholds), abridged."""


NOT_ZERO = frozenset({"pulse_per_min", "systolic_bp_mm_hg", "spo2_percent"})
"""Score inputs whose zero readings are not scored (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class Parameter:
    """One score input fed from readings.

    ``codes`` are the LOINC codes whose readings set it; ``threshold`` turns a reading into a
    boolean input (oxygen flow above 0 L/min means "on oxygen").
    """

    name: str
    codes: tuple[str, ...]
    threshold: float | None = None


class EarlyWarningMonitor(Monitor):
    """A registered score computed over the latest value of each parameter within a window."""

    uses_context = True

    score_name: ClassVar[str]
    parameters: ClassVar[tuple[Parameter, ...]]
    alert_bands: ClassVar[tuple[str, ...]]
    """Bands that call for a response, lowest first; alerts fire on a rise into one."""
    band_severity: ClassVar[Mapping[str, str]]
    band_order: ClassVar[tuple[str, ...]]
    defaults: ClassVar[Mapping[str, Any]] = {"window_min": 60.0}

    def __init__(self, patient_id: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(patient_id, params)
        window = float(self.params["window_min"])
        if not window > 0:
            raise MonitorConfigError(f"monitor {self.name}: window_min must be > 0, not {window}")
        self.window_s = window * 60.0
        from medtwin.risk import get

        self.score: Score = get(self.score_name)
        self._ranges: dict[str, tuple[float, float] | None] = {}
        for p in self.parameters:
            inp = self.score.input(p.name)
            self._ranges[p.name] = None if p.threshold is not None else inp.valid_range
        self._param_of: dict[str, int] = {}
        for index, p in enumerate(self.parameters):
            for code in p.codes:
                self._param_of[code] = index
        k = len(self.parameters)
        self.last_value = np.full(k, np.nan)
        self.last_time = np.full(k, -np.inf)
        self.last_ref: list[FactRef | None] = [None] * k
        self.level = 0  # rank of the last floor band in band_order
        self._cache: dict[tuple[float | None, ...], tuple[Any, int]] = {}
        names = {i.name for i in self.score.inputs}
        self._population = tuple(n for n in ("age_years", "pregnant") if n in names)
        self.not_scored: str | None = None  # why the score does not apply (its population)

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "not_scored": self.not_scored,
            "latest": {
                p.name: [float(self.last_value[i]), float(self.last_time[i]), list(ref)]
                for i, (p, ref) in enumerate(zip(self.parameters, self.last_ref, strict=True))
                if ref is not None
            },
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.level = int(state["level"])
        self.not_scored = state.get("not_scored")
        latest = state.get("latest", {})
        for i, p in enumerate(self.parameters):
            row = latest.get(p.name)
            if row is None:
                self.last_value[i], self.last_time[i], self.last_ref[i] = np.nan, -np.inf, None
            else:
                self.last_value[i] = float(row[0])
                self.last_time[i] = float(row[1])
                self.last_ref[i] = FactRef(*row[2])

    # -- learning -----------------------------------------------------------------------
    def learn_one(self, reading: Reading) -> list[Alert]:
        if reading.code not in self._param_of:
            return []
        return self._learn_single(reading)

    def _learn_single(self, reading: Reading) -> list[Alert]:
        """One reading without arrays (the live path): the same rules as :meth:`learn_many`."""
        j = self._param_of[reading.code]
        p = self.parameters[j]
        x = reading.value
        usable = not math.isnan(x)
        if p.name in NOT_ZERO and x == 0.0:
            usable = False
        if p.threshold is not None:
            x = 1.0 if x > p.threshold else 0.0
        else:
            rng = self._ranges[p.name]
            if rng is not None and not rng[0] <= x <= rng[1]:
                usable = False
        t = reading.epoch_s
        if usable:
            self.last_value[j] = x
            self.last_time[j] = t
            self.last_ref[j] = reading.ref
        columns: dict[str, Any] = self.extra_columns(1)
        columns.update(self._context_columns(np.array([t])))
        for k, q in enumerate(self.parameters):
            fresh = t - self.last_time[k] <= self.window_s
            columns[q.name] = np.array([self.last_value[k] if fresh else np.nan])
        result, level = self._score_one(columns)
        alerts: list[Alert] = []
        reasons = self._population_reasons(result, 1)
        reason = reasons[0] if reasons is not None else None
        if self.context is not None and reason != self.not_scored:
            alerts.extend(self._notice(reason, t, reading.ref))
        if level > self.level and self.band_order[level] in self.alert_bands:
            source_index = np.full((len(self.parameters), 1), -1, dtype=np.int64)
            alerts.append(
                self._alert(0, level, [reading], np.array([t]), columns, source_index, result)
            )
        self.level = level
        return alerts

    def _score_one(self, columns: Mapping[str, Any]) -> tuple[Any, int]:
        """The score and floor level of one row, memoised by value (a missing parameter, NaN,
        is keyed as None: NaN never equals itself)."""
        key = tuple(
            None if math.isnan(x) else x
            for x in (float(np.asarray(col, dtype=np.float64)[0]) for col in columns.values())
        )
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) >= 4096:
                self._cache.clear()
            result = self.score.compute_many(columns, rows=1)
            cached = self._cache[key] = (result, int(self._floor_levels(result)[0]))
        return cached

    def extra_columns(self, n: int) -> dict[str, Any]:
        """Score inputs that come from the monitor's parameters, not from readings."""
        return {}

    def _context_columns(self, t: np.ndarray[Any, np.dtype[np.float64]]) -> dict[str, Any]:
        """The score's population inputs at times ``t`` from the patient's context (age in
        completed years, pregnancy 1 / 0); none without a context (nothing is checked)."""
        context = self.context
        if context is None or not self._population:
            return {}
        out: dict[str, Any] = {}
        if "age_years" in self._population and context.birth_date is not None:
            days, where = np.unique(np.floor(t / 86400.0), return_inverse=True)
            ages = [context.age_years(day * 86400.0) for day in days.tolist()]
            out["age_years"] = np.asarray(ages, dtype=np.float64)[where]
        if "pregnant" in self._population:
            pregnant = np.zeros(t.shape[0])
            for start, end, _ in context.pregnancies:
                pregnant[(t >= start) & (t < end)] = 1.0
            out["pregnant"] = pregnant
        return out

    def _population_reasons(self, result: Any, n: int) -> list[str | None] | None:
        """Per row, why the score refuses the patient (its population rules: a child, a
        pregnancy); None when no row is refused for that."""
        if not self._population or not np.any(result.refused):
            return None
        out: list[str | None] = [None] * n
        for i in np.nonzero(result.refused)[0].tolist():
            reason = result.reasons.get(i)
            if reason and reason.split("=", 1)[0] in self._population:
                out[i] = reason
        return out if any(out) else None

    def _notice(self, reason: str | None, t: float, ref: FactRef) -> list[Alert]:
        """The score stops applying to the patient (``reason``), or applies again (None): one
        notice each time, under the key ``<monitor>:population``; the second clears the
        first in the alert book."""
        self.not_scored = reason
        score = self.score_name.upper()
        if reason is None:
            return [
                self.alert(
                    f"{self.name}.applies",
                    "info",
                    t,
                    f"{score} applies to the patient again: scored from here on",
                    [ref],
                    key=f"{self.name}:population",
                    clears=True,
                )
            ]
        context = self.context
        basis = context.pregnancy_at(t) if context is not None else None
        said = f" (the record: {basis})" if basis and reason.startswith("pregnant=") else ""
        return [
            self.alert(
                f"{self.name}.not-applicable",
                "info",
                t,
                f"{score} not scored: {reason}{said}. No {score} alerts while this holds.",
                [ref],
                key=f"{self.name}:population",
                detail={"reason": reason, "score_version": self.score.version},
            )
        ]

    def learn_many(self, readings: Sequence[Reading]) -> list[Alert]:
        rows = [r for r in readings if r.code in self._param_of]
        if not rows:
            return []
        if len(rows) == 1:
            return self._learn_single(rows[0])
        n = len(rows)
        k = len(self.parameters)
        t = np.fromiter((r.epoch_s for r in rows), np.float64, n)
        which = np.fromiter((self._param_of[r.code] for r in rows), np.int64, n)
        value = np.fromiter((r.value for r in rows), np.float64, n)
        # readings that update their parameter: plausible values only (artefacts stay out), and
        # no zero pulse, pressure or saturation (see the module docstring)
        usable = ~np.isnan(value)  # before the threshold turns NaN into "no"
        for j, p in enumerate(self.parameters):
            rng = self._ranges[p.name]
            mine = which == j
            if p.name in NOT_ZERO:
                usable[mine] &= value[mine] != 0.0
            if p.threshold is not None:
                value[mine] = (value[mine] > p.threshold).astype(np.float64)
            elif rng is not None:
                usable[mine] &= (value[mine] >= rng[0]) & (value[mine] <= rng[1])
        # forward fill per parameter: index (into prior + rows) of the latest usable value
        columns: dict[str, Any] = self.extra_columns(n)
        columns.update(self._context_columns(t))
        source_index = np.empty((k, n), dtype=np.int64)
        for j, p in enumerate(self.parameters):
            hit = usable & (which == j)
            idx = np.where(hit, np.arange(n), -1)
            np.maximum.accumulate(idx, out=idx)
            source_index[j] = idx
            vals = np.where(idx >= 0, value[np.maximum(idx, 0)], self.last_value[j])
            times = np.where(idx >= 0, t[np.maximum(idx, 0)], self.last_time[j])
            fresh = (t - times) <= self.window_s
            columns[p.name] = np.where(fresh, vals, np.nan)
        result = self.score.compute_many(columns, rows=n)
        floor = self._floor_levels(result)
        alerts: list[Alert] = []
        previous = self.level
        reasons = self._population_reasons(result, n)
        checked = self.context is not None  # without a context nothing is known: no notice
        if not checked or (reasons is None and self.not_scored is None):
            changed = np.nonzero(floor != np.concatenate(([previous], floor[:-1])))[0].tolist()
        else:  # the score stops or starts applying somewhere: every row, in order
            changed = list(range(n))
        for i in changed:
            reason = reasons[i] if reasons is not None else None
            if checked and reason != self.not_scored:
                alerts.extend(self._notice(reason, float(t[i]), rows[i].ref))
            level = int(floor[i])
            if level > previous and self.band_order[level] in self.alert_bands:
                alerts.append(self._alert(i, level, rows, t, columns, source_index, result))
            previous = level
        self.level = previous
        # carry the latest usable value of each parameter into the state
        for j in range(k):
            last = int(source_index[j, -1])
            if last >= 0:
                self.last_value[j] = value[last]
                self.last_time[j] = t[last]
                self.last_ref[j] = rows[last].ref
        return alerts

    def _floor_levels(self, result: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Rank (in ``band_order``) of the band each row's lower-bound score already proves."""
        value = np.nan_to_num(result.value, nan=0.0)
        points = {key: np.maximum(p, 0) for key, p in result.components.items()}
        codes = self.score.band_codes(value.astype(np.int64), points)  # type: ignore[attr-defined]
        known = result.band_code >= 0
        codes = np.where(known, result.band_code, codes)
        no_value = np.isnan(result.value)
        out: np.ndarray[Any, np.dtype[np.int64]] = np.where(no_value, 0, codes).astype(np.int64)
        return out

    def _alert(
        self,
        i: int,
        level: int,
        rows: Sequence[Reading],
        t: np.ndarray[Any, np.dtype[np.float64]],
        columns: Mapping[str, Any],
        source_index: np.ndarray[Any, np.dtype[np.int64]],
        result: Any,
    ) -> Alert:
        band = self.band_order[level]
        res = result[i]
        evidence: list[tuple[float, FactRef]] = []
        parts: list[str] = []
        for j, p in enumerate(self.parameters):
            x = columns[p.name][i]
            if np.isnan(x):
                continue
            idx = int(source_index[j, i])
            ref = rows[idx].ref if idx >= 0 else self.last_ref[j]
            when = float(t[idx]) if idx >= 0 else float(self.last_time[j])
            if ref is not None:
                evidence.append((when, ref))
            pts = res.components.get(p.name)
            shown = ("yes" if x else "no") if p.threshold is not None else f"{x:g}"
            parts.append(f"{p.name}={shown}" + (f" [{pts}]" if pts is not None else ""))
        missing = [m for m in res.missing if m in res.components]
        score_text = f"{self.score_name.upper()} {res.value:g}" if res.value is not None else ""
        if res.partial:
            score_text = f"{self.score_name.upper()} >= {res.value:g} (partial)"
        message = f"{score_text}: {band}. " + ", ".join(parts)
        if missing:
            message += f"; missing: {', '.join(missing)}"
        response = self.response(band)
        if response:
            message += f". Response: {response}"
        evidence.sort(key=lambda item: item[0])
        return self.alert(
            f"{self.name}.{band}",
            self.band_severity[band],
            float(t[i]),
            message,
            [ref for _, ref in evidence],
            key=self.name,
            detail={
                "value": res.value,
                "band": band,
                "band_exact": res.band,
                "partial": res.partial,
                "missing": missing,
                "components": {k: v for k, v in res.components.items() if v is not None},
                "inputs": {
                    p.name: float(columns[p.name][i])
                    for p in self.parameters
                    if not np.isnan(columns[p.name][i])
                },
                "window_min": self.params["window_min"],
                "score_version": self.score.version,
                "response": response,
            },
        )

    def response(self, band: str) -> str:
        """The clinical response the source gives for ``band`` (empty if none)."""
        return ""


_RR = Parameter("respiratory_rate_per_min", ("9279-1",))
_SPO2 = Parameter("spo2_percent", ("59408-5", "2708-6", "20564-1"))
_SBP = Parameter("systolic_bp_mm_hg", ("8480-6", "76215-3"))
_PULSE = Parameter("pulse_per_min", ("8867-4", "8889-8"))
_TEMP = Parameter("temperature_c", ("8310-5", "8331-1", "8332-9", "8328-7", "8333-7"))


def _fio2_as_excess(r: Reading) -> Reading:
    """FiO2 is a percentage: above room air (21 %) is supplemental oxygen; as the excess over
    21 % it is the same 0/1 signal as the flow (whose threshold is 0 L/min)."""
    if r.code != "3150-0":
        return r
    return Reading(
        r.patient_id, r.code, r.epoch_s, r.value - 21.0, r.unit, r.ref, r.end_epoch_s, r.comparator
    )


class News2Monitor(EarlyWarningMonitor):
    """NEWS2 over the stream (RCP 2017), alerting on a rise to low-medium, medium or high."""

    name = "news2"
    version = "3"  # 3: refuses a patient outside the score's population (context)
    source = (
        "Royal College of Physicians. National Early Warning Score (NEWS) 2. London: RCP, "
        "2017. Chart 1 (scoring), Chart 3 (thresholds and triggers), Chart 4 (clinical response)."
    )
    description = (
        "NEWS2 from the latest vitals within window_min; partial scores alert on the band their "
        "lower bound proves, naming what is missing (consciousness is not read from device data)"
    )
    score_name = "news2"
    parameters = (
        _RR,
        _SPO2,
        # inhaled oxygen: any flow (L/min) or FiO2 above room air (21 %) means supplemental oxygen
        Parameter("on_oxygen", ("3151-8",), threshold=0.0),
        _SBP,
        _PULSE,
        _TEMP,
    )
    band_order = ("low", "low-medium", "medium", "high")
    alert_bands = ("low-medium", "medium", "high")
    band_severity: ClassVar[Mapping[str, str]] = {
        "low": "low",
        "low-medium": "low-medium",
        "medium": "medium",
        "high": "high",
    }
    codes = frozenset(code for p in parameters for code in p.codes) | {"3150-0"}
    defaults: ClassVar[Mapping[str, Any]] = {"window_min": 60.0, "spo2_scale": 1}

    def __init__(self, patient_id: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(patient_id, params)
        if self.params["spo2_scale"] not in (1, 2):
            raise MonitorConfigError(
                f"monitor news2: spo2_scale must be 1 or 2, not {self.params['spo2_scale']!r}"
            )
        self._param_of["3150-0"] = 2  # FiO2 % -> on_oxygen

    def learn_many(self, readings: Sequence[Reading]) -> list[Alert]:
        return super().learn_many([_fio2_as_excess(r) for r in readings])

    def learn_one(self, reading: Reading) -> list[Alert]:
        return super().learn_one(_fio2_as_excess(reading))

    def extra_columns(self, n: int) -> dict[str, Any]:
        return {"spo2_scale": [int(self.params["spo2_scale"])] * n}

    def response(self, band: str) -> str:
        return CLINICAL_RESPONSE_NEWS2.get(band, "")


class QsofaMonitor(EarlyWarningMonitor):
    """qSOFA over the stream (Seymour et al. 2016), alerting when it turns positive (2 or more)."""

    name = "qsofa"
    version = "3"  # 3: refuses a patient outside the score's population (context)
    source = (
        "Seymour CW et al. Assessment of clinical criteria for sepsis: for the Third International "
        "Consensus Definitions for Sepsis and Septic Shock (Sepsis-3). JAMA 2016;315(8):762-774."
    )
    description = "qSOFA from the latest RR, systolic BP and GCS within window_min"
    score_name = "qsofa"
    parameters = (_RR, _SBP, Parameter("gcs", ("9269-2",)))
    band_order = ("negative", "positive")
    alert_bands = ("positive",)
    band_severity: ClassVar[Mapping[str, str]] = {"negative": "low", "positive": "medium"}
    codes = frozenset(code for p in parameters for code in p.codes)

    def response(self, band: str) -> str:
        if band == "positive":
            return (
                "consider possible infection and sepsis: assess for organ dysfunction "
                "(Singer et al. 2016, Sepsis-3)"
            )
        return ""


class MewsMonitor(EarlyWarningMonitor):
    """MEWS over the stream (Subbe et al. 2001), alerting at 5 or more."""

    name = "mews"
    version = "3"  # 3: refuses a patient outside the score's population (context)
    source = (
        "Subbe CP, Kruger M, Rutherford P, Gemmel L. Validation of a modified Early Warning Score "
        "in medical admissions. QJM 2001;94(10):521-526, Table 1."
    )
    description = "MEWS from the latest SBP, HR, RR and temperature within window_min"
    score_name = "mews"
    parameters = (_SBP, _PULSE, _RR, _TEMP)
    band_order = ("low", "high")
    alert_bands = ("high",)
    band_severity: ClassVar[Mapping[str, str]] = {"low": "low", "high": "medium"}
    codes = frozenset(code for p in parameters for code in p.codes)


MONITORS = (News2Monitor, QsofaMonitor, MewsMonitor)
