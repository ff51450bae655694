"""Run the wearable baseline detectors over the two real COVID-19 study participants.

For A3OU183 and AS2MVDL (minute heart rate and steps from the Stanford COVID-19 wearables study,
Mishra et al. 2020; ``shared/data/wearables/covid-hr-steps``) this prints:

* the resting heart rate the 12-minute rule finds (per day), and how it compares with the
  published code's own formulation (``gireeshkbogu/AnomalyDetect`` ``rhrad_offline.py``: join
  heart-rate and step rows, 12-*row* rolling step sum == 0), re-implemented here with numpy;
* every alert of the ``rhr`` (RHR-Diff / CuSum, Mishra et al. 2020) and ``nightsignal``
  (Alavi et al. 2022) monitors: when, which rule, and the message that says why;
* throughput in observations per second on one core: each monitor over the whole stream in
  one ``learn_many`` call and in hub-sized chunks of 5,000 readings.

The copy of the data has no symptom-onset or diagnosis dates, so alerts cannot be scored
against onset here; the timestamps are naive local times, read as UTC (``timezone="UTC"``).

Run: ``.venv/bin/python benchmarks/eval_wearable_detectors.py``
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from _common import REPO, machine, shared_data

from medtwin.monitor._resting import RestingMinutes, columns
from medtwin.monitor.base import Monitor, Reading
from medtwin.monitor.nightsignal import NightSignal
from medtwin.monitor.rhr import RestingHeartRateCusum

CHUNK = 5000


def _reader() -> object:
    """The test suite's reader of the study CSVs (one implementation for tests and benchmark)."""
    path = REPO / "tests" / "monitor" / "covid_data.py"
    spec = importlib.util.spec_from_file_location("covid_data", path)
    if spec is None or spec.loader is None:
        sys.exit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def published_rule(readings: Sequence[Reading]) -> set[int]:
    """Resting minutes as ``rhrad_offline.py`` computes them: minutes with both a heart rate and a
    step row, in order, whose step sum over that row and the 11 rows before is 0."""
    hr_minutes = {int(r.epoch_s // 60) for r in readings if r.code == "8867-4"}
    steps = {int(r.epoch_s // 60): r.value for r in readings if r.code != "8867-4"}
    both = np.array(sorted(hr_minutes & steps.keys()), dtype=np.int64)
    counts = np.array([steps[m] for m in both.tolist()])
    csum = np.concatenate([[0.0], np.cumsum(counts)])
    window = csum[12:] - csum[:-12]  # rows i-11 .. i for i >= 11
    keep = both[11:][window == 0]
    return set(keep.tolist())


def our_rule(readings: Sequence[Reading]) -> tuple[set[int], np.ndarray, np.ndarray]:
    c = columns(readings)
    out = RestingMinutes(rest_window_min=12).process(
        c.epoch_s, c.value, c.is_hr, c.is_step, c.end_epoch_s, readings
    )
    return set(out.minute.tolist()), out.minute, out.heart_rate_milli / 1000.0


def throughput(cls: type[Monitor], readings: Sequence[Reading], chunk: int) -> tuple[float, float]:
    """Best of 3: observations per second of CPU time and of wall-clock time."""
    best_cpu = best_wall = float("inf")
    for _ in range(3):
        monitor = cls("bench")
        cpu, wall = time.process_time(), time.perf_counter()
        for a in range(0, len(readings), chunk):
            monitor.learn_many(readings[a : a + chunk])
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return len(readings) / best_cpu, len(readings) / best_wall


def main() -> None:
    folder = shared_data() / "wearables" / "covid-hr-steps"
    reader = _reader()
    print(f"machine: {machine()}")
    print(f"data: {folder}\n")
    totals: dict[str, list[float]] = {}
    walls: dict[str, list[float]] = {}
    for participant in reader.PARTICIPANTS:  # type: ignore[attr-defined]
        readings: list[Reading] = reader.read_participant(folder, participant)  # type: ignore[attr-defined]
        hr_n = sum(1 for r in readings if r.code == "8867-4")
        first, last = readings[0].time, readings[-1].time
        print(
            f"== {participant}: {len(readings):,} readings ({hr_n:,} heart-rate minutes), "
            f"{first:%Y-%m-%d} .. {last:%Y-%m-%d}"
        )
        ours, minutes, hr = our_rule(readings)
        ref = published_rule(readings)
        days, start = np.unique(minutes // 1440, return_index=True)
        daily = np.add.reduceat(hr, start) / np.diff(np.append(start, len(hr)))
        print(
            f"resting minutes (12-min rule): {len(ours):,} ({len(ours) / hr_n:.0%} of heart-rate "
            f"minutes) on {len(days)} days; daily RHR median {np.median(daily):.1f}/min "
            f"(range {daily.min():.1f}-{daily.max():.1f})"
        )
        agree = len(ours & ref)
        print(
            f"vs the published code's row-based rule: {len(ref):,} minutes, {agree:,} in both "
            f"(Jaccard {agree / len(ours | ref):.3f}); ours only {len(ours - ref):,}, "
            f"theirs only {len(ref - ours):,} (rows skip heart-rate gaps, minutes do not)"
        )
        for cls in (RestingHeartRateCusum, NightSignal):
            alerts = cls(participant).learn_many(readings)
            print(f"-- {cls.name}: {len(alerts)} alerts")
            for alert in alerts:
                print(f"   {alert.time:%Y-%m-%d %H:%M} {alert.rule:<28} {alert.message}")
            whole, whole_wall = throughput(cls, readings, len(readings))
            chunked, chunked_wall = throughput(cls, readings, CHUNK)
            totals.setdefault(cls.name, []).extend([whole, chunked])
            walls.setdefault(cls.name, []).extend([whole_wall, chunked_wall])
            print(
                f"   throughput (one core, CPU time): {whole:,.0f} obs/s in one call, "
                f"{chunked:,.0f} obs/s in chunks of {CHUNK:,}; wall clock on this shared "
                f"machine: {whole_wall:,.0f} and {chunked_wall:,.0f} obs/s"
            )
        print()
    both = {name: min(v) for name, v in totals.items()}
    combined = 1.0 / sum(1.0 / v for v in both.values())
    combined_wall = 1.0 / sum(1.0 / min(v) for v in walls.values())
    print(
        "slowest throughput per monitor (obs/s): "
        + ", ".join(f"{k} {v:,.0f}" for k, v in both.items())
        + f"; both monitors on the same stream: {combined:,.0f} obs/s CPU time, "
        f"{combined_wall:,.0f} obs/s wall clock "
        f"(project target: 200,000 obs/s through NEWS2 + the baseline detectors)"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
