"""Evaluate the CUSUM and Page-Hinkley trend monitors on synthetic series with known shifts.

For each detector (default parameters unless given):

* **false alarms per 1,000 readings** on stationary series: independent normal noise, and an
  AR(1) series with lag-1 autocorrelation 0.5 (vital signs sampled every minute are
  autocorrelated; the detectors assume independent readings, so this shows the cost);
* **detection delay** (readings from the shift to the alarm) for mean shifts of 0.5, 1, 2 and
  3 SD after 200 in-control readings: median, 90th percentile, and the share missed within
  200 readings after the shift (an alarm before the shift counts as a false alarm, not a
  detection, and that series is not scored);
* **throughput**: readings per second through ``learn_many`` and through ``learn_one``, on
  four interleaved codes;
* **real minute-level heart rate** (``../shared/data/wearables/covid-hr-steps``, two
  participants of the Stanford COVID-19 wearables study): alerts per day, with and without the
  autocorrelation adjustment (skipped when the shared data folder is absent).

Run: ``.venv/bin/python benchmarks/eval_trend.py [--series 200] [--json out.json]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from _common import REPO, machine  # noqa: E402

from medtwin.monitor.base import FactRef, Monitor, Reading  # noqa: E402
from medtwin.monitor.trend import CusumMonitor, PageHinkleyMonitor  # noqa: E402

HR = "8867-4"
MEAN, SD = 70.0, 3.0


def readings(values: np.ndarray, code: str = HR) -> list[Reading]:
    return [
        Reading("p", code, 60.0 * i, float(v), "/min", FactRef("eval", str(i)))
        for i, v in enumerate(values)
    ]


def ar1(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) noise with unit marginal SD."""
    shocks = rng.normal(0.0, np.sqrt(1 - phi * phi), n)
    out = np.empty(n)
    out[0] = rng.normal()
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


def false_alarms(
    cls: type[Monitor], params: dict[str, Any], phi: float, series: int, n: int
) -> float:
    rng = np.random.default_rng(1)
    alarms = 0
    for _ in range(series):
        noise = rng.normal(size=n) if phi == 0 else ar1(n, phi, rng)
        alarms += len(cls("p", params).learn_many(readings(MEAN + SD * noise)))
    return 1000.0 * alarms / (series * n)


def delays(
    cls: type[Monitor], params: dict[str, Any], shift_sd: float, series: int
) -> dict[str, Any]:
    rng = np.random.default_rng(2)
    found: list[int] = []
    missed = early = 0
    for _ in range(series):
        values = MEAN + SD * rng.normal(size=400)
        values[200:] += shift_sd * SD
        alerts = cls("p", params).learn_many(readings(values))
        positions = [int(a.evidence[-1].source_id) for a in alerts]
        if any(p < 200 for p in positions):
            early += 1
            continue
        if positions:
            found.append(positions[0] - 200 + 1)
        else:
            missed += 1
    scored = len(found) + missed
    return {
        "shift_sd": shift_sd,
        "median_delay": float(np.median(found)) if found else None,
        "p90_delay": float(np.percentile(found, 90)) if found else None,
        "missed_share": missed / scored if scored else None,
        "false_alarm_before_shift_share": early / series,
    }


def throughput(cls: type[Monitor], n: int = 200_000) -> dict[str, float]:
    rng = np.random.default_rng(3)
    codes = ["8867-4", "9279-1", "59408-5", "8480-6"]
    values = MEAN + SD * rng.normal(size=n)
    stream = [
        Reading("p", codes[i % 4], 15.0 * i, float(v), "/min", FactRef("eval", str(i)))
        for i, v in enumerate(values)
    ]
    monitor = cls("p")
    began = time.perf_counter()
    monitor.learn_many(stream)
    many = n / (time.perf_counter() - began)
    monitor = cls("p")
    began = time.perf_counter()
    for reading in stream:
        monitor.learn_one(reading)
    one = n / (time.perf_counter() - began)
    return {"learn_many_per_s": many, "learn_one_per_s": one}


def real_heart_rate(folder: Path) -> dict[str, Any]:
    """Alerts per day on each participant's minute heart rate (naive times read as UTC)."""
    import csv
    import io
    import zipfile
    from datetime import UTC, datetime

    out: dict[str, Any] = {}
    for path in sorted(folder.glob("*_hr.csv.zip")):
        participant = path.name.split("_")[0]
        with zipfile.ZipFile(path) as archive:
            text = archive.read(path.name.removesuffix(".zip")).decode()
        stream = [
            Reading(
                participant,
                HR,
                datetime.fromisoformat(row["datetime"]).replace(tzinfo=UTC).timestamp(),
                float(row["heartrate"]),
                "/min",
                FactRef("covid-hr-steps", f"{participant}/{i}"),
            )
            for i, row in enumerate(csv.DictReader(io.StringIO(text)))
        ]
        days = (stream[-1].epoch_s - stream[0].epoch_s) / 86_400.0
        row: dict[str, Any] = {"readings": len(stream), "days": days}
        for cls in (CusumMonitor, PageHinkleyMonitor):
            for adjust in (True, False):
                alerts = cls(participant, {"adjust_autocorrelation": adjust}).learn_many(stream)
                row[f"{cls.name}_{'adjusted' if adjust else 'plain'}_per_day"] = len(alerts) / days
        out[participant] = row
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--series", type=int, default=200, help="series per setting")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    print(machine())
    results: dict[str, Any] = {}
    for cls in (CusumMonitor, PageHinkleyMonitor):
        row: dict[str, Any] = {
            "params": {k: v for k, v in cls.defaults.items() if k != "codes"},
            "false_alarms_per_1000_iid": false_alarms(cls, {}, 0.0, args.series, 2000),
            "false_alarms_per_1000_ar1_0.5": false_alarms(cls, {}, 0.5, args.series // 4, 2000),
            "delays": [delays(cls, {}, s, args.series) for s in (0.5, 1.0, 2.0, 3.0)],
            **throughput(cls),
        }
        results[cls.name] = row
        print(cls.name, json.dumps(row, default=lambda x: round(x, 3)))
    folder = Path(os.environ.get("MEDTWIN_SHARED_DATA", REPO.parent / "shared" / "data"))
    folder = folder / "wearables" / "covid-hr-steps"
    if folder.is_dir():
        results["real_heart_rate"] = real_heart_rate(folder)
        print(
            "real minute heart rate",
            json.dumps(results["real_heart_rate"], default=lambda x: round(x, 2)),
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
