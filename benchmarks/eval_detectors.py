"""Detectors on synthetic streams with known onsets: detection rate, lead time, false alarms.

medtwin's synthetic wearable streams (``medtwin.synth.streams``) give each person minute heart
rate and steps, nightly SpO2 and respiratory rate, CGM for people with type 1 diabetes (20 of the
40 by default: an enrichment, ``--type1-minimum``), and, for a share
of them, one onset at a known time (an infection that raises the resting heart rate, a
respiratory deterioration, a glucose heading low). Every registered detector runs over every
person (one monitor instance per person, in the person's own time zone), and
:func:`medtwin.monitor.evaluate.evaluate` scores the alerts against the truth:

* detected: a clinical alert within the detector's window around the onset (``WINDOWS_H``; for
  infection 7 days before to 3 days after: the window of Mishra et al. 2020 was 21 days before to
  7 after, ours is stricter);
* lead time: onset minus the first alert in that window (positive: before the onset);
* false alarms: alert episodes (one key, alerts less than 24 h apart) outside every window, per
  patient-month of monitored time;
* by chance: the detection rate that alarms at that false-alarm rate would reach by luck.

Each detector is judged only on the onset kinds it is built for (``KINDS``).

Run: ``.venv/bin/python benchmarks/eval_detectors.py [--patients 40 --days 60 --seed 11
--type1-minimum 20]``
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from _common import machine

from medtwin.monitor import FactRef, Reading, registry
from medtwin.monitor.evaluate import Onset, evaluate
from medtwin.synth.streams import PatientStreams, generate_streams

KINDS: dict[str, set[str]] = {
    "rhr": {"infection"},
    "nightsignal": {"infection"},
    "news2": {"respiratory"},
    "cusum": {"infection", "respiratory"},
    "page_hinkley": {"infection", "respiratory"},
    "glucose": {"glucose_low"},
}
"""Which onsets each detector is meant to find."""

WINDOWS_H: dict[str, tuple[float, float]] = {
    "rhr": (168.0, 72.0),
    "nightsignal": (168.0, 72.0),
    "news2": (24.0, 120.0),
    "cusum": (168.0, 120.0),
    "page_hinkley": (168.0, 120.0),
    "glucose": (2.0, 2.0),
}
"""Detection window per detector (hours before, after the onset): infection is judged from 7 days
before symptom onset (the resting heart rate rises 3 days before it), a respiratory decline from a
day before its start to 5 days after (it develops over 2-5 days), a glucose fall within 2 hours."""

RULES: dict[str, tuple[str, ...]] = {"glucose": ("glucose.hypo", "glucose.falling_fast")}
"""Alert rules judged (others, e.g. hyperglycaemia, are neither detections nor false alarms)."""

# the wearable's own codes (as the CSV/Open mHealth readers store them)
HR, STEPS, SPO2, RR, CGM = "8867-4", "55423-8", "59408-5", "9279-1", "99504-3"


def _epoch(times: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return times.astype("datetime64[s]").astype(np.int64).astype(np.float64)


def readings(p: PatientStreams) -> list[Reading]:
    """One person's streams as readings, in time order (as the listener would store them)."""
    pid = p.profile.patient
    out: list[Reading] = []
    t = _epoch(p.minute_time)
    hr, steps, worn = p.heart_rate_per_min, p.steps_per_min, p.worn
    for i in np.nonzero(worn)[0].tolist():
        ti = float(t[i])
        if not np.isnan(hr[i]):
            out.append(
                Reading(pid, HR, ti, float(hr[i]), "/min", FactRef("synth", f"{pid}/hr/{i}"))
            )
        out.append(
            Reading(
                pid,
                STEPS,
                ti,
                float(steps[i]),
                "{steps}",
                FactRef("synth", f"{pid}/st/{i}"),
                ti + 60.0,
            )
        )
    nights = _epoch(p.night_time)
    for j in range(nights.size):
        tj = float(nights[j])
        out.append(
            Reading(pid, SPO2, tj, float(p.spo2_percent[j]), "%", FactRef("synth", f"{pid}/sp/{j}"))
        )
        out.append(
            Reading(
                pid,
                RR,
                tj,
                float(p.respiratory_rate_per_min[j]),
                "/min",
                FactRef("synth", f"{pid}/rr/{j}"),
            )
        )
    if p.cgm_time is not None and p.glucose_mg_dl is not None:
        tc = _epoch(p.cgm_time)
        for k in range(tc.size):
            g = p.glucose_mg_dl[k]
            if not np.isnan(g):
                out.append(
                    Reading(
                        pid,
                        CGM,
                        float(tc[k]),
                        float(g),
                        "mg/dL",
                        FactRef("synth", f"{pid}/cgm/{k}"),
                    )
                )
    out.sort(key=lambda r: r.epoch_s)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=40)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--onset-fraction", type=float, default=0.5)
    parser.add_argument(
        "--type1-minimum",
        type=int,
        default=20,
        help="people with type 1 diabetes (CGM wearers), enriched beyond the 0.55 %% prevalence "
        "so that the glucose monitor meets a few glucose-low onsets",
    )
    args = parser.parse_args()

    known = set(registry.names())
    names = [name for name in KINDS if name in known]
    print(machine())
    start = time.perf_counter()
    streams = generate_streams(
        args.patients,
        args.seed,
        days=args.days,
        onset_fraction=args.onset_fraction,
        type1_minimum=args.type1_minimum,
    )
    print(
        f"{args.patients} people x {args.days} days (seed {args.seed}): {len(streams.truth)} onsets, "
        f"generated in {time.perf_counter() - start:.1f} s"
    )
    alerts = []
    spans: dict[str, tuple[float, float]] = {}
    observations = 0
    cpu = 0.0
    for p in streams.patients:
        rows = readings(p)
        observations += len(rows)
        pid = p.profile.patient
        spans[pid] = (
            _epoch(np.array([np.datetime64(streams.start.replace(tzinfo=None), "s")]))[0],
            rows[-1].epoch_s if rows else 0.0,
        )
        for name in names:
            cls = registry.get(name)
            params = {"timezone": p.profile.time_zone} if "timezone" in cls.defaults else {}
            monitor = cls(pid, params)
            chosen = [r for r in rows if not cls.codes or r.code in cls.codes]
            t0 = time.process_time()
            for i in range(0, len(chosen), 20_000):
                alerts.extend(monitor.learn_many(chosen[i : i + 20_000]))
            cpu += time.process_time() - t0
    truth = [Onset(o.patient, o.kind, o.onset_time.timestamp()) for o in streams.truth]
    reports = {}
    for name in names:
        before_h, after_h = WINDOWS_H[name]
        own = [a for a in alerts if a.monitor == name]
        reports[name] = evaluate(
            own,
            truth,
            spans,
            before_h=before_h,
            after_h=after_h,
            kinds={name: KINDS[name]},
            rules=RULES,
        )[name]
    print(f"{observations:,} observations; monitors took {cpu:.1f} CPU-s")
    print(
        f"onsets by kind: { {k: sum(1 for o in truth if o.kind == k) for k in sorted({o.kind for o in truth})} }"
    )
    print()
    print(
        "| detector | judged on | window (h before, after) | onsets | detected | rate | by chance "
        "| median lead (h) | lead range (h) | false-alarm episodes | per patient-month |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        r = reports[name].as_dict()
        rate = "-" if r["detection_rate"] is None else f"{r['detection_rate']:.0%}"
        lead = "-" if r["lead_h_median"] is None else f"{r['lead_h_median']:.0f}"
        span = (
            "-"
            if r["lead_h_range"] is None
            else f"{r['lead_h_range'][0]:.0f} to {r['lead_h_range'][1]:.0f}"
        )
        fa = r["false_alarms_per_patient_month"]
        chance = "-" if r["chance_detection_rate"] is None else f"{r['chance_detection_rate']:.0%}"
        print(
            f"| {name} | {', '.join(sorted(KINDS[name]))} | {WINDOWS_H[name][0]:g}, {WINDOWS_H[name][1]:g} "
            f"| {r['onsets']} | {r['detected']} | {rate} | {chance} | {lead} | {span} | "
            f"{r['false_alarm_episodes']} | {'-' if fa is None else f'{fa:.2f}'} |"
        )


if __name__ == "__main__":
    main()
