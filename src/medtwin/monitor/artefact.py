"""Artefacts: physiologically impossible values are flagged as such, never as alarms.

A heart rate of 900 /min or an SpO2 of 120 % is a sensor or entry error, not a patient in
danger. This monitor flags such readings (category ``artefact``, severity ``info``: no clinical
response, never escalated) with the limit they broke, so the data can be checked; the
early-warning monitors keep them out of their scores (see :mod:`medtwin.monitor.early_warning`).

The limits (:data:`LIMITS`) are **data-quality limits, not clinical thresholds**: wide enough to
keep every survivable extreme (a real extreme must never be called an artefact), narrow enough
to catch unit and entry errors. For the vital signs they are the plausibility ranges the
validated scores already use (``medtwin.risk.base``), so a value is either scored or flagged,
never both. Each row names why its limit is where it is.

Examples
--------
>>> from medtwin.monitor.base import FactRef, Reading
>>> m = ArtefactMonitor("mt-1")
>>> [a.rule for a in m.learn_one(Reading("mt-1", "8867-4", 0.0, 900.0, "/min", FactRef("w", "1")))]
['artefact.8867-4']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from medtwin.monitor.base import Alert, Monitor, Reading

__all__ = [
    "CIRCULATION",
    "LIMITS",
    "MONITORS",
    "ZERO_RULE",
    "ZERO_WINDOW_S",
    "ArtefactMonitor",
    "Limit",
    "ZeroGuard",
]

_SCORES = "the plausibility range of the validated scores (medtwin.risk.base)"


@dataclass(frozen=True, slots=True)
class Limit:
    """Inclusive plausible range of one LOINC code in its canonical unit, and why."""

    name: str
    low: float
    high: float
    unit: str
    why: str
    per_minute: bool = False
    """The value is a count over the reading's interval: the limit applies to its rate per minute."""


LIMITS: Mapping[str, Limit] = {
    "8867-4": Limit(
        "heart rate",
        0.0,
        350.0,
        "/min",
        f"{_SCORES}: 0 is asystole; above 350 /min is an entry error",
    ),
    "8889-8": Limit("pulse rate (oximeter)", 0.0, 350.0, "/min", f"{_SCORES}, as heart rate"),
    "40443-4": Limit(
        "resting heart rate",
        20.0,
        250.0,
        "/min",
        "medtwin data-quality limit: a resting rate outside 20-250 /min is a computation or sensor error",
    ),
    "9279-1": Limit(
        "respiratory rate",
        0.0,
        100.0,
        "/min",
        f"{_SCORES}: 0 is apnoea; above 100 /min is an entry error",
    ),
    "59408-5": Limit("SpO2", 0.0, 100.0, "%", "a saturation is a percentage: 0-100 by definition"),
    "2708-6": Limit("SaO2", 0.0, 100.0, "%", "a saturation is a percentage: 0-100 by definition"),
    "20564-1": Limit(
        "oxygen saturation", 0.0, 100.0, "%", "a saturation is a percentage: 0-100 by definition"
    ),
    "3150-0": Limit(
        "inhaled oxygen concentration",
        21.0,
        100.0,
        "%",
        "FiO2 lies between room air (21 %) and pure oxygen by definition",
    ),
    "8480-6": Limit(
        "systolic BP", 0.0, 350.0, "mm[Hg]", f"{_SCORES}: above 350 mmHg is an entry error"
    ),
    "76215-3": Limit("invasive systolic BP", 0.0, 350.0, "mm[Hg]", f"{_SCORES}, as systolic BP"),
    "8478-0": Limit(
        "mean BP",
        0.0,
        300.0,
        "mm[Hg]",
        "medtwin data-quality limit: a mean arterial pressure above 300 mmHg is an entry error",
    ),
    "76213-8": Limit("invasive diastolic BP", 0.0, 300.0, "mm[Hg]", "as diastolic BP"),
    "76214-6": Limit("invasive mean BP", 0.0, 300.0, "mm[Hg]", "as mean BP"),
    "8462-4": Limit(
        "diastolic BP",
        0.0,
        300.0,
        "mm[Hg]",
        "medtwin data-quality limit: a diastolic pressure above 300 mmHg is an entry error",
    ),
    "8310-5": Limit(
        "body temperature",
        10.0,
        47.0,
        "Cel",
        f"{_SCORES}: below the lowest core temperature survived (13.7 °C, Gilbert et al. Lancet 2000), above heat-stroke survivors (~46-47 °C); catches Fahrenheit values",
    ),
    "8331-1": Limit("oral temperature", 10.0, 47.0, "Cel", f"{_SCORES}, as body temperature"),
    "8332-9": Limit("rectal temperature", 10.0, 47.0, "Cel", f"{_SCORES}, as body temperature"),
    "8328-7": Limit("axillary temperature", 10.0, 47.0, "Cel", f"{_SCORES}, as body temperature"),
    "8333-7": Limit("tympanic temperature", 10.0, 47.0, "Cel", f"{_SCORES}, as body temperature"),
    "29463-7": Limit(
        "body weight",
        0.2,
        700.0,
        "kg",
        "medtwin data-quality limit: below extremely preterm birth weights, above the heaviest recorded person (about 635 kg)",
    ),
    "8302-2": Limit(
        "body height",
        20.0,
        280.0,
        "cm",
        "medtwin data-quality limit: above the tallest recorded person (272 cm)",
    ),
    "2339-0": Limit(
        "glucose",
        0.0,
        3000.0,
        "mg/dL",
        "medtwin data-quality limit: negative is impossible; above the highest blood glucose reported in a survivor (about 2,600 mg/dL)",
    ),
    "55423-8": Limit(
        "steps",
        0.0,
        300.0,
        "{steps}/min",
        "medtwin data-quality limit: a count cannot be negative; above 300 steps/min over an interval exceeds sprinting cadence",
        per_minute=True,
    ),
    "41950-7": Limit("steps", 0.0, 300.0, "{steps}/min", "as 55423-8", per_minute=True),
}
"""LOINC code -> plausible range in the code's canonical unit (see the module docstring)."""


CIRCULATION: frozenset[str] = frozenset(
    {
        "8867-4",  # heart rate (ECG)
        "8889-8",  # pulse rate (oximeter)
        "8480-6",  # systolic BP (cuff)
        "8462-4",  # diastolic BP (cuff)
        "8478-0",  # mean BP (cuff)
        "76215-3",  # invasive systolic BP
        "76213-8",  # invasive diastolic BP
        "76214-6",  # invasive mean BP
        "59408-5",  # SpO2 (pulse oximetry)
        "2708-6",  # SaO2
        "20564-1",  # oxygen saturation
    }
)
"""Signals that are zero only when the circulation has stopped (or the sensor is off)."""

ZERO_WINDOW_S = 120.0
"""How recent another circulatory signal must be to contradict a zero (two 1/min samples)."""

ZERO_RULE = (
    "a zero heart rate, pressure or saturation while another circulatory signal of the patient "
    "was non-zero within the last 120 s is a disconnected sensor (medtwin's rule)"
)


class ZeroGuard:
    """Tells a disconnected sensor's zero from a stopped circulation.

    Bedside monitors report 0 when an ECG lead, an oximeter probe or a pressure transducer is
    off (in the shared MIMIC II numerics record the arterial line reads 0 for 1,929 of 1,936
    minutes while the ECG counts a heart rate). A zero heart rate, pressure or saturation is
    therefore an **artefact when another circulatory signal of the patient was non-zero within
    the last** :data:`ZERO_WINDOW_S` seconds: a heart that beats on the ECG cannot have a
    systolic pressure of 0, and a measured saturation needs a pulse. A zero with no such
    contradiction (every signal at 0: a real arrest, or every sensor off) stands and is scored.
    This is medtwin's own rule, not a published one; respiratory rate is not covered (a zero
    may be a real apnoea while the pulse goes on).
    """

    __slots__ = ("last_nonzero",)

    def __init__(self) -> None:
        self.last_nonzero: dict[str, float] = {}

    def check(self, code: str, value: float, epoch_s: float) -> bool:
        """Learn one reading; True when it is a contradicted zero (an artefact)."""
        if code not in CIRCULATION:
            return False
        if value > 0:
            limit = LIMITS.get(code)
            if limit is None or value <= limit.high:
                self.last_nonzero[code] = epoch_s
            return False
        if value < 0:
            return False  # out of range: flagged by the limits
        return any(
            other != code and epoch_s - t <= ZERO_WINDOW_S for other, t in self.last_nonzero.items()
        )

    def state_dict(self) -> dict[str, float]:
        """The last non-zero time of each circulatory signal."""
        return dict(self.last_nonzero)

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.last_nonzero = {str(k): float(v) for k, v in state.items()}


class ArtefactMonitor(Monitor):
    """Flags readings outside :data:`LIMITS` as artefacts (info, never escalated)."""

    name = "artefact"
    version = "2"
    source = (
        "medtwin data-quality limits (medtwin.monitor.artefact.LIMITS; each limit states its "
        "reason); vital-sign limits shared with the validated scores (medtwin.risk.base)"
    )
    description = "Physiologically impossible values are flagged as artefacts, not alarms"
    codes: ClassVar[frozenset[str]] = frozenset(LIMITS)
    defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, patient_id: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(patient_id, params)
        self.counts: dict[str, int] = {}
        self.zeros = ZeroGuard()

    def learn_one(self, reading: Reading) -> list[Alert]:
        limit = LIMITS.get(reading.code)
        if limit is None:
            return []
        contradicted = self.zeros.check(reading.code, reading.value, reading.epoch_s)
        if reading.value == 0 and reading.code in CIRCULATION:
            self.counts[reading.code] = self.counts.get(reading.code, 0) + 1
            if contradicted:
                text = (
                    f"{limit.name} 0 {limit.unit} while another circulatory signal was non-zero "
                    f"within {ZERO_WINDOW_S:g} s: a disconnected sensor, treated as an artefact "
                    "(not scored, no alarm). Check the lead, probe or transducer."
                )
            else:
                text = (
                    f"{limit.name} 0 {limit.unit} with no other circulatory signal non-zero in the "
                    f"last {ZERO_WINDOW_S:g} s: a sensor off, or a cardiac arrest (the bedside "
                    "monitor's alarm, not an early-warning score). Not scored; check the patient "
                    "and the sensor."
                )
            return [
                self.alert(
                    f"artefact.{reading.code}",
                    "info",
                    reading.epoch_s,
                    text,
                    [reading.ref],
                    category="artefact",
                    key=f"artefact:{reading.code}",
                    detail={
                        "code": reading.code,
                        "value": reading.value,
                        "why": ZERO_RULE
                        if contradicted
                        else "a zero pulse, pressure or saturation is not scored",
                        "contradicted": contradicted,
                        "count": self.counts[reading.code],
                    },
                )
            ]
        value = reading.value
        if limit.per_minute:
            if reading.end_epoch_s is None or reading.end_epoch_s <= reading.epoch_s:
                if value >= 0:
                    return []  # a count without an interval: only a negative one is impossible
                rate = value
            else:
                rate = value / ((reading.end_epoch_s - reading.epoch_s) / 60.0)
            value = rate
        if limit.low <= value <= limit.high:
            return []
        self.counts[reading.code] = self.counts.get(reading.code, 0) + 1
        shown = f"{reading.value:g} {reading.unit or ''}".strip()
        if limit.per_minute and value != reading.value:
            shown += f" ({value:g} /min)"
        return [
            self.alert(
                f"artefact.{reading.code}",
                "info",
                reading.epoch_s,
                f"{limit.name} {shown} is outside {limit.low:g}-{limit.high:g} {limit.unit}: "
                "physiologically impossible, treated as an artefact (not scored, no alarm). "
                "Check the sensor or the unit.",
                [reading.ref],
                category="artefact",
                key=f"artefact:{reading.code}",
                detail={
                    "code": reading.code,
                    "value": reading.value,
                    "low": limit.low,
                    "high": limit.high,
                    "unit": limit.unit,
                    "why": limit.why,
                    "count": self.counts[reading.code],
                },
            )
        ]

    def learn_many(self, readings: Sequence[Reading]) -> list[Alert]:
        # the same as learn_one on each reading; plain in-range values are skipped cheaply
        alerts: list[Alert] = []
        limits = LIMITS
        circulation = CIRCULATION
        last_nonzero = self.zeros.last_nonzero
        for reading in readings:
            code = reading.code
            limit = limits.get(code)
            if limit is None:
                continue
            value = reading.value
            if limit.per_minute:  # a count: judged as a rate over its interval (see learn_one)
                end = reading.end_epoch_s
                if end is None or end <= reading.epoch_s:
                    if value >= 0:
                        continue
                elif limit.low <= value / ((end - reading.epoch_s) / 60.0) <= limit.high:
                    continue
            elif limit.low <= value <= limit.high:
                if code not in circulation:
                    continue
                if value > 0:  # what ZeroGuard.check does for a plausible non-zero reading
                    last_nonzero[code] = reading.epoch_s
                    continue
            alerts.extend(self.learn_one(reading))
        return alerts

    def state_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "nonzero": self.zeros.state_dict()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.counts = {str(k): int(v) for k, v in state.get("counts", {}).items()}
        self.zeros.load_state(state.get("nonzero", {}))


MONITORS = (ArtefactMonitor,)
