"""Plausible reading streams for the monitor conformance suite (not clinical truth: shapes only)."""

from __future__ import annotations

import numpy as np

from medtwin.monitor.base import FactRef, Reading

# LOINC code -> (typical value, day-to-day spread, excursion value, unit)
TYPICAL: dict[str, tuple[float, float, float, str]] = {
    "8867-4": (72.0, 6.0, 135.0, "/min"),  # heart rate
    "40443-4": (62.0, 3.0, 80.0, "/min"),  # resting heart rate
    "41950-7": (8.0, 10.0, 0.0, "{steps}"),  # steps per minute
    "55423-8": (8.0, 10.0, 0.0, "{steps}"),  # number of steps
    "9279-1": (15.0, 2.0, 28.0, "/min"),  # respiratory rate
    "59408-5": (97.0, 1.0, 88.0, "%"),  # SpO2
    "2708-6": (97.0, 1.0, 88.0, "%"),
    "8310-5": (36.8, 0.3, 39.4, "Cel"),  # body temperature
    "8480-6": (122.0, 8.0, 88.0, "mm[Hg]"),  # systolic
    "8462-4": (78.0, 6.0, 50.0, "mm[Hg]"),  # diastolic
    "2339-0": (120.0, 25.0, 58.0, "mg/dL"),  # glucose (blood)
    "15074-8": (6.7, 1.4, 3.2, "mmol/L"),  # glucose (blood, molar)
    "99504-3": (120.0, 25.0, 58.0, "mg/dL"),  # CGM glucose
}


def plausible_stream(
    codes: frozenset[str] | set[str],
    *,
    patient_id: str = "mt-conformance",
    days: float = 35.0,
    step_s: float | None = None,
    seed: int = 0,
    start_epoch_s: float = 1_700_000_000.0,
) -> list[Reading]:
    """Readings of the codes at ``step_s`` spacing with a daily rhythm and a late excursion.

    At most six codes are used (those with typical values first); the spacing defaults to one
    minute for one or two codes (wearable detectors: minute heart rate and steps) and to 15
    minutes over at most 8 days for more (early-warning scores over many vitals), so every
    monitor's learn_one loop stays fast enough for the suite.
    """
    rng = np.random.default_rng(seed)
    ranked = sorted(codes, key=lambda c: (c not in TYPICAL, c))
    chosen = sorted(ranked[:6]) if codes else ["8867-4", "9279-1", "59408-5"]
    if step_s is None:
        step_s = 60.0 if len(chosen) <= 2 else 900.0
    if len(chosen) > 2:
        days = min(days, 8.0)  # scores over many vitals need no month-long baseline
    n = int(days * 86_400 / step_s)
    t = start_epoch_s + np.arange(n) * step_s
    readings: list[Reading] = []
    for code in chosen:
        typical, spread, excursion, unit = TYPICAL.get(code, (50.0, 5.0, 95.0, "1"))
        daily = np.sin(2 * np.pi * (t - start_epoch_s) / 86_400.0) * spread * 0.5
        values = typical + daily + rng.normal(0.0, spread * 0.3, n)
        tail = slice(int(n * 0.85), int(n * 0.9))
        values[tail] = excursion + rng.normal(0.0, spread * 0.1, values[tail].shape)
        values = np.maximum(values, 0.0)
        for i in range(n):
            readings.append(
                Reading(
                    patient_id,
                    code,
                    float(t[i]),
                    float(round(values[i], 2)),
                    unit,
                    FactRef("conformance", f"Reading/{code}/{i}"),
                    float(t[i] + 60.0) if code in ("41950-7", "55423-8") else None,
                )
            )
    readings.sort(key=lambda r: (r.epoch_s, r.code))
    return readings
