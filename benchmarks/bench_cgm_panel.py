"""The CGM panel (``medtwin cgm --all``): every CGM patient's report headline, the most at risk first.

The store: ``--patients`` patients with ``--days`` days of 5-minute CGM readings each (LOINC
99504-3, a daily curve with noise and an afternoon dip), and as many patients without CGM (a
clinic's other patients, which the panel must pass over). Timed: :func:`medtwin.monitor.cgm.
cgm_panel` (median of ``--repeat``); the reference in the same run is one full report per CGM
patient (``cgm_report`` with the ambulatory glucose profile, as ``medtwin cgm PATIENT`` makes).

Run: ``.venv/bin/python benchmarks/bench_cgm_panel.py [--patients 50 --days 14]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from _common import machine

from medtwin.record.facts import LOINC, Coding, Demographics, Identifier, Observation
from medtwin.store import open_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def facts(k: int, days: int, cgm: bool) -> list[object]:
    who = Identifier("urn:bench", f"p{k}")
    out: list[object] = [
        Demographics(source="reg", source_id=f"Patient/{k}", subject=who, identifiers=(who,),
                     family=f"Patient{k}", birth_date="1980-01-01", gender="female")
    ]  # fmt: skip
    if not cgm:
        return out
    rng = np.random.default_rng(k)
    t = np.arange(0.0, days * 1440.0, 5.0)
    day = (t % 1440.0) / 1440.0
    g = 140.0 + (30.0 + 3.0 * k % 40) * np.sin(2 * np.pi * day) + rng.normal(0, 10, t.size)
    for i, (minute, value) in enumerate(zip(t.tolist(), np.clip(g, 40, 400).tolist(), strict=True)):
        out.append(
            Observation(source="cgm", source_id=f"g{k}/{i}", subject=who,
                        code=Coding(LOINC, "99504-3"), status="final",
                        effective_start=T0 + timedelta(minutes=minute),
                        value_num=round(value), unit="mg/dL")
        )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    from medtwin.monitor.cgm import cgm_panel, cgm_report

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(str(Path(tmp) / "panel.db"), actor="bench")
        for k in range(2 * args.patients):
            store.append_facts(facts(k, args.days, cgm=k % 2 == 0), source="bench")  # type: ignore[arg-type]
        readings = args.patients * args.days * 288
        panel_s = []
        rows: list[dict[str, object]] = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            rows = cgm_panel(store)
            panel_s.append(time.perf_counter() - began)
        began = time.perf_counter()
        for row in rows:
            cgm_report(store, str(row["patient_id"]))
        one_by_one = time.perf_counter() - began
        store.close()
    panel = statistics.median(panel_s)
    print(
        f"panel of {len(rows)} CGM patients ({readings:,} readings) among {2 * args.patients} "
        f"patients: {panel:.2f} s (median of {args.repeat}: "
        f"{', '.join(f'{s:.2f}' for s in panel_s)}), {1000 * panel / len(rows):.0f} ms a patient; "
        f"a full report (with the AGP) per patient: {one_by_one:.2f} s; ratio "
        f"{one_by_one / panel:.2f}x"
    )


if __name__ == "__main__":
    main()
