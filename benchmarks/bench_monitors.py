"""Monitor throughput: observations/s through NEWS2 + the baseline detectors, one core.

Target (issue 3): at least 200,000 observations/s scored through NEWS2 + baseline detectors on
one core. The stream: ``--patients`` patients, each with minute heart rate and steps (a wearable)
and ward vitals every 15 minutes (RR, SpO2, SBP, temperature), ``--days`` days, fed through
:class:`medtwin.monitor.MonitorHub` (routing per patient and code, time order, the watermark) in
chunks of ``--chunk-min`` minutes of data, as the live listener does. Every registered monitor in
``--monitors`` that exists runs (missing ones are reported and skipped).

The reference in the same run is the plain way: NEWS2 ``compute_one`` on the latest vitals at
every observation (timed on a sample of the same stream, since it is ~1,000x slower).

Run: ``.venv/bin/python benchmarks/bench_monitors.py [--patients 20 --days 30]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _common import machine  # noqa: E402

from medtwin.monitor import FactRef, MonitorHub, Reading, registry  # noqa: E402

T0 = 1_767_225_600.0  # 2026-01-01 UTC
DEFAULT_MONITORS = "news2,artefact,rhr,nightsignal,cusum"


def stream(patients: int, days: int, seed: int) -> list[list[Reading]]:
    """Per patient, readings in time order (minute HR and steps, 15-minute ward vitals)."""
    rng = np.random.default_rng(seed)
    out: list[list[Reading]] = []
    minutes = days * 1440
    for p in range(patients):
        pid = f"mt-bench-{p}"
        t = T0 + np.arange(minutes) * 60.0
        circadian = np.cos(2 * np.pi * (np.arange(minutes) % 1440 - 240) / 1440.0)
        active = rng.random(minutes) < 0.25 * (1 - circadian) / 2
        steps = np.where(active, rng.integers(20, 120, minutes), 0)
        hr = 62 + 8 * (1 - circadian) / 2 + steps * 0.25 + rng.normal(0, 3, minutes)
        rows: list[Reading] = []
        for i in range(minutes):
            ti = float(t[i])
            rows.append(
                Reading(pid, "8867-4", ti, float(round(hr[i])), "/min", FactRef("b", f"{p}/hr/{i}"))
            )
            rows.append(
                Reading(
                    pid,
                    "55423-8",
                    ti,
                    float(steps[i]),
                    "{steps}",
                    FactRef("b", f"{p}/st/{i}"),
                    ti + 60.0,
                )
            )
            if i % 15 == 0:
                rows.append(
                    Reading(
                        pid,
                        "9279-1",
                        ti,
                        float(rng.integers(12, 24)),
                        "/min",
                        FactRef("b", f"{p}/rr/{i}"),
                    )
                )
                rows.append(
                    Reading(
                        pid,
                        "59408-5",
                        ti,
                        float(rng.integers(92, 100)),
                        "%",
                        FactRef("b", f"{p}/sp/{i}"),
                    )
                )
                rows.append(
                    Reading(
                        pid,
                        "8480-6",
                        ti,
                        float(rng.integers(95, 150)),
                        "mm[Hg]",
                        FactRef("b", f"{p}/bp/{i}"),
                    )
                )
                rows.append(
                    Reading(
                        pid,
                        "8310-5",
                        ti,
                        float(round(rng.normal(37, 0.5), 1)),
                        "Cel",
                        FactRef("b", f"{p}/t/{i}"),
                    )
                )
        out.append(rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--chunk-min", type=int, default=60)
    parser.add_argument("--monitors", default=DEFAULT_MONITORS)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    known = set(registry.names())
    wanted = [m for m in args.monitors.split(",") if m]
    chosen = [m for m in wanted if m in known]
    absent = [m for m in wanted if m not in known]
    per_patient = stream(args.patients, args.days, seed=7)
    total = sum(len(rows) for rows in per_patient)
    # chunks as the listener sees them: every patient's readings of the next chunk-min minutes
    span = args.chunk_min * 60.0
    chunks: list[list[Reading]] = []
    cursors = [0] * len(per_patient)
    edge = T0 + span
    while any(c < len(rows) for c, rows in zip(cursors, per_patient, strict=True)):
        chunk: list[Reading] = []
        for k, rows in enumerate(per_patient):
            c = cursors[k]
            while c < len(rows) and rows[c].epoch_s < edge:
                chunk.append(rows[c])
                c += 1
            cursors[k] = c
        chunks.append(chunk)
        edge += span

    print(machine())
    print(
        f"monitors: {', '.join(chosen)}"
        + (f" (not registered, skipped: {', '.join(absent)})" if absent else "")
    )
    print(
        f"{args.patients} patients x {args.days} days: {total:,} observations in {len(chunks)} chunks"
    )
    rates = []
    alerts = 0
    for _ in range(args.repeat):
        hub = MonitorHub(chosen)
        start = time.process_time()
        alerts = sum(len(hub.feed(chunk)) for chunk in chunks)
        elapsed = time.process_time() - start
        rates.append(total / elapsed)
    best = max(rates)
    print(
        f"medtwin hub: {np.median(rates):,.0f} observations/s (median of {args.repeat}; best {best:,.0f}), {alerts} alerts"
    )

    from medtwin.risk import get

    news2 = get("news2")
    sample = per_patient[0][:20_000]
    latest: dict[str, float] = {}
    names = {
        "9279-1": "respiratory_rate_per_min",
        "59408-5": "spo2_percent",
        "8480-6": "systolic_bp_mm_hg",
        "8867-4": "pulse_per_min",
        "8310-5": "temperature_c",
    }
    start = time.process_time()
    for reading in sample:
        name = names.get(reading.code)
        if name is not None:
            latest[name] = reading.value
        news2.compute_one(latest)
    ref_rate = len(sample) / (time.process_time() - start)
    print(f"reference (NEWS2 compute_one per observation): {ref_rate:,.0f} observations/s")
    print(
        f"ratio: {np.median(rates) / ref_rate:,.0f}x; target >= 200,000 observations/s: {'met' if np.median(rates) >= 200_000 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
