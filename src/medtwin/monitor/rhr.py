"""Resting heart rate against a 28-day personal baseline: RHR-Diff residuals and the CuSum alarm.

The online detector of Mishra et al. (2020), "Pre-symptomatic detection of COVID-19 from
smartwatch data", as documented in the authors' code (``mwgrassgreen/WearableDetection``,
``R/detection_fn.R``, functions ``get.stats.fn``, ``stats.fn``, ``cusum.detection.fn``):

1. **Resting heart rate** (RHR): heart-rate minutes with no steps in the minute and the 11
   before it (``rest_window_min = 12``, the ``rolling(12)`` rule of the authors' Python code
   ``gireeshkbogu/AnomalyDetect``; the R code uses 10 minutes after a step minute, see
   ``docs/models/rhr-detectors.md``). See :mod:`medtwin.monitor._resting`.
2. **Baseline**: the last ``baseline_days`` (28) accepted days. For each clock hour *h* the
   baseline mean and standard deviation of all resting minutes in hour *h* of those days.
3. **RHR-Diff residual** of an hour: ``z = (mean RHR of the hour - baseline mean_h) /
   baseline SD_h``, clipped to ``[-4, 4]`` (``z.abs.thres = 4``); hours without resting minutes
   have no residual and are skipped.
4. **CuSum**: ``W_t = max(0, W_{t-1} + z_t - r)`` with the reference value ``r`` = the 90 %
   quantile of the baseline days' own residuals / 2 (``res.quan = 0.9``), recomputed when the
   baseline changes; ``W`` continues from the baseline's last value.
5. **p-value**: the empirical null of the baseline's CuSum runs: for a run that has lasted *k*
   hours, the fraction of baseline runs whose maximum over their first *k* hours is below ``W``
   (``null.ecdf.fn``); risk = that fraction, p = 1 - risk; a run longer than every null window
   has p = 0; the first hour of a run has no p-value.
6. **Baseline update**: a finished day joins the baseline (the oldest leaves) only when none of
   its hours had p < ``pvalue_threshold`` (0.01) and it had at least 2 residual hours; so an
   illness does not become the new normal.
7. **Alarm** (``cusum.detection.fn``, ``pval.thres = 0.01``, ``max.hour = 24``,
   ``dur.hour = 48``): a CuSum run (consecutive hours with ``W > 0``) that reached p < 0.01 at
   some hour, lasts more than 48 residual hours and whose maximum came more than 24 hours after
   its start. The published code checks the last two conditions on the finished run; here they
   are checked as the run grows (both only become true and stay true), so the alert fires at the
   hour the run first satisfies all three, once per run, naming the first significant hour.

Nothing clinical is raised before the baseline has ``baseline_days`` usable days (days with
resting heart rate in at least 2 hours): one ``info`` ``data-quality`` note says so.
Heart rates outside ``[30, 220]`` /min are ignored as artefacts (an ``info`` ``artefact``
note at most once a day).

Hours and days are local clock hours in ``timezone`` (an IANA name; ``UTC`` by default).

References
----------
.. [1] Mishra T, Wang M, Metwally AA, et al. Pre-symptomatic detection of COVID-19 from smartwatch
   data. Nat Biomed Eng 4:1208-1220 (2020) (RHR-Diff and the CuSum online detector); the
   parameters are those of the authors' code, github.com/mwgrassgreen/WearableDetection
   (defaults quoted above), as the paper's Methods text was not available to us in full
   (docs/models/rhr-detectors.md).

Examples
--------
>>> monitor = RestingHeartRateCusum("mt-1")
>>> monitor.describe()["params"]["baseline_days"]
28
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np

from medtwin.monitor._resting import (
    F64,
    HEART_RATE_CODE,
    NONE_MINUTE,
    STEP_CODES,
    LocalClock,
    RestingMinutes,
    RestingOut,
    artefact_alert,
    artefact_events,
    columns,
    evidence_at,
    group_starts,
    pregnancy_note,
    prepend,
)
from medtwin.monitor.base import Alert, FactRef, Monitor, MonitorConfigError, Reading

__all__ = ["MONITORS", "RestingHeartRateCusum", "cusum_null"]

SOURCE = (
    "Mishra et al. 2020, Nat Biomed Eng 4:1208-1220, pre-symptomatic detection of COVID-19 "
    "from smartwatch data: RHR-Diff residuals and CuSum online detection against a 28-day "
    "baseline (authors' code mwgrassgreen/WearableDetection R/detection_fn.R)"
)
Ref = tuple[str, str, float]


def _iso(epoch_s: float | None) -> str | None:
    return None if epoch_s is None else datetime.fromtimestamp(epoch_s, UTC).isoformat()


def cusum_null(w: F64) -> list[F64]:
    """Empirical null of CuSum maxima by run length, from a baseline CuSum sequence ``w``.

    Element ``k - 1`` holds, sorted, ``max(w[i0 .. i0 + k])`` over every run start ``i0``
    (``w[i0] == 0 < w[i0 + 1]``) whose window fits in ``w``; the windows go up to the longest
    gap between run starts (``null.ecdf.fn`` of the authors' code).

    >>> [v.tolist() for v in cusum_null(np.array([0.0, 1.0, 0.0, 2.0, 3.0, 0.0]))]
    [[1.0, 2.0], [1.0, 3.0]]
    """
    if len(w) < 2:
        return []
    starts = np.flatnonzero((w[:-1] == 0) & (w[1:] > 0))
    if len(starts) == 0:
        return []
    max_step = 1 if len(starts) == 1 else int(np.max(np.diff(starts)))
    offsets = np.arange(max_step + 1)
    index = starts[:, None] + offsets[None, :]
    inside = index < len(w)
    windows = np.where(inside, w[np.minimum(index, len(w) - 1)], -np.inf)
    running = np.maximum.accumulate(windows, axis=1)
    null: list[F64] = []
    for k in range(1, max_step + 1):
        null.append(np.sort(running[inside[:, k], k]))
    return null


class RestingHeartRateCusum(Monitor):
    """RHR-Diff residuals and the CuSum online alarm of Mishra et al. (2020); see the module."""

    name: ClassVar[str] = "rhr"
    version: ClassVar[str] = "1"
    source: ClassVar[str] = SOURCE
    description: ClassVar[str] = (
        "Resting heart rate (no steps for 12 min) vs a 28-day personal baseline per clock hour: "
        "standardised residuals, CuSum with empirical p-values, alarm on a sustained run"
    )
    codes: ClassVar[frozenset[str]] = frozenset({HEART_RATE_CODE, *STEP_CODES})
    uses_context = True  # an alert says when the record shows a pregnancy (its RHR rise)
    defaults: ClassVar[Mapping[str, Any]] = {
        "rest_window_min": 12,
        "baseline_days": 28,
        "min_hours_per_day": 2,
        "residual_clip": 4.0,
        "reference_quantile": 0.9,
        "pvalue_threshold": 0.01,
        "alarm_run_hours": 48,
        "alarm_hours_to_max": 24,
        "heart_rate_min_per_min": 30.0,
        "heart_rate_max_per_min": 220.0,
        "steps_silence_max_min": 1440,
        "timezone": "UTC",
        "evidence_hours": 6,
        "evidence_per_hour": 4,
    }

    def __init__(self, patient_id: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(patient_id, params)
        p = self.params
        if int(p["baseline_days"]) < 2:
            raise MonitorConfigError("monitor rhr: baseline_days must be >= 2")
        if not 0.0 < float(p["pvalue_threshold"]) < 1.0:
            raise MonitorConfigError("monitor rhr: pvalue_threshold must be in (0, 1)")
        self._rest = RestingMinutes(
            rest_window_min=int(p["rest_window_min"]),
            heart_rate_min_per_min=float(p["heart_rate_min_per_min"]),
            heart_rate_max_per_min=float(p["heart_rate_max_per_min"]),
            steps_silence_max_min=int(p["steps_silence_max_min"]),
        )
        self._clock = LocalClock(str(p["timezone"]))
        self._reset()

    # -- state ------------------------------------------------------------------------------
    def _reset(self) -> None:
        self._rest.reset()
        self._hour: dict[str, Any] | None = None  # bin, n, sum, sumsq, refs
        self._day: dict[str, Any] | None = None  # day, n[24], sum[24], sumsq[24], valid, flagged
        self._baseline: list[dict[str, Any]] = []
        self._established = False
        self._w = 0.0
        self._run_k = 0
        self._run_start: float | None = None
        self._run_max = 0.0
        self._run_argmax = 0
        self._first_sig: float | None = None
        self._alarmed = False
        self._evidence: list[list[Ref]] = []
        self._recent: list[list[float | None]] = []
        self._noted = False
        self._cleared = False
        self._artefact_day: int | None = None
        self._derive()

    def state_dict(self) -> dict[str, Any]:
        """The state as plain JSON (daily aggregates, never raw minutes)."""
        return {
            "rest": self._rest.state_dict(),
            "hour": self._hour,
            "day": self._day,
            "baseline": self._baseline,
            "established": self._established,
            "cusum": self._w,
            "run_k": self._run_k,
            "run_start": self._run_start,
            "run_max": self._run_max,
            "run_argmax": self._run_argmax,
            "first_sig": self._first_sig,
            "alarmed": self._alarmed,
            "evidence": [[list(r) for r in hour] for hour in self._evidence],
            "recent": self._recent,
            "noted": self._noted,
            "cleared": self._cleared,
            "artefact_day": self._artefact_day,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (the baseline statistics are recomputed from the days)."""
        self._rest.load_state(state["rest"])
        hour = state["hour"]
        self._hour = None if hour is None else {**hour, "refs": [_ref(r) for r in hour["refs"]]}
        self._day = None if state["day"] is None else dict(state["day"])
        self._baseline = [dict(d) for d in state["baseline"]]
        self._established = bool(state["established"])
        self._w = float(state["cusum"])
        self._run_k = int(state["run_k"])
        self._run_start = state["run_start"]
        self._run_max = float(state["run_max"])
        self._run_argmax = int(state["run_argmax"])
        self._first_sig = state["first_sig"]
        self._alarmed = bool(state["alarmed"])
        self._evidence = [[_ref(r) for r in hour] for hour in state["evidence"]]
        self._recent = [list(x) for x in state["recent"]]
        self._noted = bool(state["noted"])
        # states saved before clears existed: an established baseline's note is cleared next
        self._cleared = bool(state.get("cleared", False))
        self._artefact_day = state["artefact_day"]
        self._derive()

    # -- baseline ---------------------------------------------------------------------------
    def _derive(self) -> None:
        """Hourly baseline mean/SD, reference value r and the CuSum null from the baseline days."""
        self._cen = np.full(24, np.nan)
        self._sd = np.full(24, np.nan)
        self._r = math.nan
        self._null: list[F64] = []
        self._base_w = np.zeros(0)
        if not self._baseline:
            return
        # sums are exact integers (thousandths of /min), so the statistics do not depend on
        # how the stream was chunked
        cen = np.full(24, np.nan)
        sd = np.full(24, np.nan)
        for h in range(24):
            big_n = sum(int(d["n"][h]) for d in self._baseline)
            big_s = sum(int(d["sum"][h]) for d in self._baseline)
            big_ss = sum(int(d["sumsq"][h]) for d in self._baseline)
            if big_n > 0:
                cen[h] = big_s / big_n / 1000.0
            if big_n > 1:
                var = (big_n * big_ss - big_s * big_s) / (big_n * (big_n - 1)) / 1e6
                if var > 0:
                    sd[h] = math.sqrt(var)
        n = np.array([d["n"] for d in self._baseline], dtype=np.float64)
        s = np.array([d["sum"] for d in self._baseline], dtype=np.float64) / 1000.0
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(n > 0, s / np.maximum(n, 1.0), np.nan)
            z = (means - cen[None, :]) / sd[None, :]
        clip = float(self.params["residual_clip"])
        zv = np.clip(z.ravel(), -clip, clip)
        zv = zv[np.isfinite(zv)]
        self._cen, self._sd = cen, sd
        if len(zv) == 0:
            return
        r = float(np.quantile(zv, float(self.params["reference_quantile"]))) / 2.0
        w = np.empty(len(zv))
        acc = 0.0
        for i, value in enumerate(zv.tolist()):
            acc = max(0.0, acc + value - r)
            w[i] = acc
        self._r = r
        self._base_w = w
        self._null = cusum_null(w)

    def _establish(self) -> None:
        self._established = True
        self._derive()
        w = self._base_w
        self._w = float(w[-1]) if len(w) else 0.0
        k = 0
        while k < len(w) and w[len(w) - 1 - k] > 0:
            k += 1
        self._run_k = k
        if k:
            run = w[len(w) - k :]
            self._run_max = float(run.max())
            self._run_argmax = int(np.argmax(run)) + 1
        else:
            self._run_max, self._run_argmax = 0.0, 0
        self._run_start = None
        self._first_sig = None
        self._alarmed = False

    def _risk(self) -> float:
        k = self._run_k
        if not self._null or k < 2:
            return math.nan
        if k > len(self._null):
            return 1.0
        values = self._null[k - 1]
        if len(values) == 0:
            return math.nan
        return float(np.searchsorted(values, self._w - 0.001, side="right")) / len(values)

    # -- learning ---------------------------------------------------------------------------
    def learn_one(self, reading: Reading) -> list[Alert]:
        """Learn one reading (the same code path as :meth:`learn_many`)."""
        return self.learn_many([reading])

    def learn_many(self, readings: Sequence[Reading]) -> list[Alert]:
        """Learn a time-ordered run of readings with numpy over the chunk."""
        if not readings:
            return []
        cols = columns(readings)
        before = self._rest.open_minute
        out = self._rest.process(
            cols.epoch_s, cols.value, cols.is_hr, cols.is_step, cols.end_epoch_s, readings
        )
        if len(out.clock_pos) == 0:
            return []
        events: list[tuple[int, int, int, str, Any]] = []
        if not self._noted and not self._established:
            events.append((int(out.clock_pos[0]), -1, 0, "note", None))
        self._artefact_events(out, events)
        self._hour_events(readings, out, events)
        self._day_events(before, out, events)
        events.sort(key=lambda e: (e[0], e[1], e[2]))
        alerts: list[Alert] = []
        for position, _order, _seq, kind, payload in events:
            if kind == "hour":
                alert = self._close_hour(payload)
                if alert is not None:
                    alerts.append(alert)
            elif kind == "day":
                self._close_day(payload)
            elif kind == "note":
                self._noted = True
                alerts.append(self._note(readings[position]))
            else:
                alerts.append(self._artefact(readings[position], payload))
            if self._established and self._noted and not self._cleared:
                self._cleared = True
                alerts.append(self._note(readings[position], clears=True))
        return alerts

    def _artefact_events(self, out: RestingOut, events: list[Any]) -> None:
        self._artefact_day = artefact_events(self._clock, out, events, self._artefact_day)

    def _hour_events(self, readings: Sequence[Reading], out: RestingOut, events: list[Any]) -> None:
        k_refs = int(self.params["evidence_per_hour"])
        bins: list[dict[str, Any]] = []
        hr = out.heart_rate_milli
        if len(out.minute):
            hb = out.minute // 60
            starts = group_starts(hb)
            ends = np.append(starts[1:], len(hb))
            sums = np.add.reduceat(hr, starts).tolist()
            sqs = np.add.reduceat(hr * hr, starts).tolist()
            for j, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
                refs = [
                    evidence_at(readings, out, int(p)) for p in out.ref_pos[max(a, b - k_refs) : b]
                ]
                bins.append(
                    {"bin": int(hb[a]), "n": b - a, "sum": sums[j], "sumsq": sqs[j], "refs": refs}
                )
        if self._hour is not None:
            if bins and bins[0]["bin"] == self._hour["bin"]:
                first = bins[0]
                first["n"] += self._hour["n"]
                first["sum"] += self._hour["sum"]
                first["sumsq"] += self._hour["sumsq"]
                first["refs"] = (self._hour["refs"] + first["refs"])[-k_refs:]
            else:
                bins.insert(0, self._hour)
        now_bin = int(out.clock_minute[-1]) // 60
        self._hour = None
        for seq, item in enumerate(bins):
            if item["bin"] >= now_bin:
                self._hour = item
                continue
            i = int(np.searchsorted(out.clock_minute, (item["bin"] + 1) * 60, side="left"))
            events.append((int(out.clock_pos[i]), 0, seq, "hour", item))

    def _day_events(self, before: int, out: RestingOut, events: list[Any]) -> None:
        days = self._clock.local_minutes(out.clock_minute) // 1440
        start = NONE_MINUTE if before == NONE_MINUTE else self._clock.local_minute(before) // 1440
        running = np.maximum.accumulate(prepend(start, days))
        change = np.flatnonzero(running[1:] > running[:-1])
        for seq, i in enumerate(change.tolist()):
            closing = int(running[i])
            if closing != NONE_MINUTE:
                events.append((int(out.clock_pos[i]), 1, seq, "day", closing))

    def _close_hour(self, item: Mapping[str, Any]) -> Alert | None:
        local = self._clock.local_minute(int(item["bin"]) * 60)
        hour_of_day, day = (local // 60) % 24, local // 1440
        if self._day is not None and self._day["day"] != day:
            self._close_day(int(self._day["day"]))
        if self._day is None:
            self._day = {
                "day": int(day),
                "n": [0] * 24,
                "sum": [0] * 24,
                "sumsq": [0] * 24,
                "valid": 0,
                "flagged": False,
            }
        self._day["n"][hour_of_day] += int(item["n"])
        self._day["sum"][hour_of_day] += int(item["sum"])
        self._day["sumsq"][hour_of_day] += int(item["sumsq"])
        self._evidence.append(list(item["refs"]))
        del self._evidence[: -int(self.params["evidence_hours"])]
        if not self._established or item["n"] == 0:
            return None
        mean = int(item["sum"]) / int(item["n"]) / 1000.0
        cen, sd = float(self._cen[hour_of_day]), float(self._sd[hour_of_day])
        z = (mean - cen) / sd if math.isfinite(cen) and math.isfinite(sd) else math.nan
        if not math.isfinite(z) or not math.isfinite(self._r):
            return None
        clip = float(self.params["residual_clip"])
        z = min(clip, max(-clip, z))
        self._day["valid"] += 1
        self._w = max(0.0, self._w + z - self._r)
        self._run_k = self._run_k + 1 if self._w > 0 else 0
        risk = self._risk()
        hour_epoch = float(item["bin"]) * 3600.0
        significant = math.isfinite(risk) and risk > 1.0 - float(self.params["pvalue_threshold"])
        if significant:
            self._day["flagged"] = True
        p_value = None if not math.isfinite(risk) else round(1.0 - risk, 4)
        self._recent.append([hour_epoch, round(z, 4), round(self._w, 4), p_value])
        del self._recent[:-6]
        if self._run_k == 0:
            self._run_start, self._run_max, self._run_argmax = None, 0.0, 0
            self._first_sig, self._alarmed = None, False
            return None
        if self._run_k == 1:
            self._run_start, self._run_max, self._run_argmax = hour_epoch, self._w, 1
            self._first_sig, self._alarmed = None, False
        elif self._w > self._run_max:
            self._run_max, self._run_argmax = self._w, self._run_k
        if significant and self._first_sig is None:
            self._first_sig = hour_epoch
        if (
            self._alarmed
            or self._first_sig is None
            or self._run_k <= int(self.params["alarm_run_hours"])
            or self._run_argmax <= int(self.params["alarm_hours_to_max"])
        ):
            return None
        self._alarmed = True
        return self._alarm(hour_of_day, mean, z, p_value)

    def _close_day(self, day: int) -> None:
        acc = self._day
        if acc is None or acc["day"] != day:
            return
        self._day = None
        min_hours = int(self.params["min_hours_per_day"])
        entry = {"day": acc["day"], "n": acc["n"], "sum": acc["sum"], "sumsq": acc["sumsq"]}
        if not self._established:
            if sum(1 for n in acc["n"] if n > 0) >= min_hours:
                self._baseline.append(entry)
                if len(self._baseline) >= int(self.params["baseline_days"]):
                    self._establish()
            return
        if acc["valid"] >= min_hours and not acc["flagged"]:
            self._baseline.append(entry)
            del self._baseline[: -int(self.params["baseline_days"])]
            self._derive()

    # -- alerts -----------------------------------------------------------------------------
    def _alarm(self, hour_of_day: int, mean: float, z: float, p_value: float | None) -> Alert:
        refs = [r for hour in self._evidence for r in hour]
        epoch = max(r[2] for r in refs)
        cen, sd = float(self._cen[hour_of_day]), float(self._sd[hour_of_day])
        message = (
            f"Resting heart rate above personal baseline for {self._run_k} h of resting data: CuSum "
            f"W={self._w:.1f} (p<{self.params['pvalue_threshold']} vs the baseline's own runs, "
            f"first at {_iso(self._first_sig)}; reference r={self._r:.2f}); last hour "
            f"{mean:.1f}/min vs baseline {cen:.1f}/min (SD {sd:.1f}) at {hour_of_day:02d}:00, "
            f"z={z:+.2f}"
        )
        said, pregnancy = pregnancy_note(self, epoch)
        return self.alert(
            "rhr.cusum",
            "low-medium",
            epoch,
            message + said,
            (FactRef(r[0], r[1]) for r in refs),
            detail={
                **pregnancy,
                "statistic": "cusum",
                "cusum": round(self._w, 4),
                "reference_r": round(self._r, 4),
                "pvalue_threshold": float(self.params["pvalue_threshold"]),
                "p_value": p_value,
                "run_hours": self._run_k,
                "run_hours_to_max": self._run_argmax,
                "run_max": round(self._run_max, 4),
                "run_start": _iso(self._run_start),
                "first_significant_hour": _iso(self._first_sig),
                "hour_of_day": hour_of_day,
                "rhr_per_min": round(mean, 2),
                "baseline_mean_per_min": round(cen, 2),
                "baseline_sd_per_min": round(sd, 2),
                "residual_z": round(z, 4),
                "baseline_days": len(self._baseline),
                "recent_hours": [list(x) for x in self._recent],
            },
        )

    def _note(self, reading: Reading, *, clears: bool = False) -> Alert:
        """The baseline-pending note, or (``clears``) its clear once the baseline is built."""
        days = int(self.params["baseline_days"])
        message = (
            f"Personal resting-heart-rate baseline built from {len(self._baseline)} days: RHR "
            "alerts from now on"
            if clears
            else f"Building a {days}-day personal resting-heart-rate baseline: no RHR alerts "
            f"until {days} days with resting heart rate are recorded"
        )
        return self.alert(
            "rhr.baseline-pending",
            "info",
            reading.epoch_s,
            message,
            (reading.ref,),
            category="data-quality",
            detail={"baseline_days_needed": days, "baseline_days": len(self._baseline)},
            clears=clears,
        )

    def _artefact(self, reading: Reading, day: int) -> Alert:
        return artefact_alert(self, reading, day)


def _ref(value: Sequence[Any]) -> Ref:
    return (str(value[0]), str(value[1]), float(value[2]))


MONITORS = (RestingHeartRateCusum,)
