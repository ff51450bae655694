"""Glucose monitor throughput: CGM readings/s through ``GlucoseMonitor.learn_many``, one core.

The stream: ``--patients`` patients, ``--days`` days of CGM each, every 5 minutes (a Dexcom) and
every 15 minutes (a Libre's history), glucose on a daily curve with noise and a fall into
hypoglycaemia each afternoon (so that the level, falling-fast and forecast rules all run). The
reference in the same run is the plain way of the same rules: a fresh least-squares fit
(:func:`medtwin.monitor.glucose.linear_forecast`, numpy) over the window at every reading.

Run: ``.venv/bin/python benchmarks/bench_glucose_monitor.py [--patients 30 --days 14]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import machine

from medtwin.monitor import FactRef, Reading
from medtwin.monitor.glucose import GlucoseMonitor, linear_forecast

T0 = 1_767_225_600.0  # 2026-01-01 UTC


def cgm(days: int, step_min: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, days * 1440.0, step_min)
    day = (t % 1440.0) / 1440.0
    g = 140.0 + 50.0 * np.sin(2 * np.pi * day) + rng.normal(0, 8, t.size)
    dip = (day > 0.6) & (day < 0.65)
    g[dip] -= 90.0 * np.sin(np.pi * (day[dip] - 0.6) / 0.05)
    return np.clip(g, 40.0, 400.0)


def readings(patient: str, values: np.ndarray, step_min: float) -> list[Reading]:
    return [
        Reading(patient, "99504-3", T0 + 60.0 * step_min * i, float(v), "mg/dL",
                FactRef("bench", f"{patient}/{i}"))
        for i, v in enumerate(values)
    ]  # fmt: skip


def plain(values: np.ndarray, step_min: float, window_min: float) -> int:
    """A numpy line through the window at every reading (the reference)."""
    t = 60.0 * step_min * np.arange(values.size)
    fits = 0
    for i in range(values.size):
        inside = t >= t[i] - 60.0 * window_min
        inside[i + 1 :] = False
        if inside.sum() >= 3:
            linear_forecast(list(t[inside]), list(values[inside]), float(t[i]))
            fits += 1
    return fits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=30)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    for step, window in ((5.0, 20.0), (15.0, 30.0)):
        streams = [readings(f"p{k}", cgm(args.days, step, k), step) for k in range(args.patients)]
        n = sum(len(s) for s in streams)
        times = []
        alerts = 0
        for _ in range(args.repeat):
            began = time.perf_counter()
            alerts = sum(len(GlucoseMonitor(s[0].patient_id).learn_many(s)) for s in streams)
            times.append(time.perf_counter() - began)
        ours = n / statistics.median(times)
        sample = cgm(2, step, 99)
        began = time.perf_counter()
        plain(sample, step, window)
        theirs = sample.size / (time.perf_counter() - began)
        print(
            f"every {step:g} min: {n:,} readings, {alerts:,} alerts; monitor {ours:,.0f} "
            f"readings/s (median of {args.repeat}); a numpy fit per reading {theirs:,.0f} "
            f"readings/s; ratio {ours / theirs:.1f}x"
        )


if __name__ == "__main__":
    main()
