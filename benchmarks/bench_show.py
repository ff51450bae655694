"""``medtwin show`` on a record with wearable streams: the clinician's summary of one patient.

What it measures: :func:`medtwin.store.summary.patient_summary` for synthetic patients with
``--wearables-days`` of minute-level streams (about 100,000 facts each for 60 days), and, as
the reference in the same run, what the summary read before session 18: the patient's whole
timeline, every fact decoded (``store.timeline(patient)``), which is now replaced by the
non-observation facts, the newest observation per code picked in the database
(``Store.latest``) and two counts. The summaries are checked to list the same latest vital
signs and labs as the newest of the whole timeline.

Run: ``.venv/bin/python benchmarks/bench_show.py [--days 60] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60, help="days of wearable streams")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from medtwin.ingest import import_paths
    from medtwin.record.facts import VOID_RESULT_STATUSES, Observation
    from medtwin.store import open_store
    from medtwin.store.summary import patient_summary

    medtwin = Path(sys.executable).with_name("medtwin")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "people"
        subprocess.run(
            [str(medtwin), "synth", "--patients", "2", "--seed", "3", "--wearables-days",
             str(args.days), str(out)],
            check=True, capture_output=True,
        )  # fmt: skip
        store = open_store(str(Path(tmp) / "show.db"), actor="bench")
        import_paths(store, [out], workers=0)
        import_paths(store, [Path(f"{out}-wearables")], workers=0)
        print(machine())
        for summary in store.patients():
            pid = summary.id
            ours, whole = [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                result = patient_summary(store, pid)
                ours.append(time.perf_counter() - t)
                t = time.perf_counter()
                facts = store.timeline(pid)
                whole.append(time.perf_counter() - t)
            newest: dict[str, str] = {}
            for stored in facts:
                fact = stored.fact
                if (
                    isinstance(fact, Observation)
                    and fact.code is not None
                    and fact.status not in VOID_RESULT_STATUSES
                ):
                    newest[fact.code.code] = str(fact.effective_start or "")[:10]
            shown = {
                row["code"].split()[-1]: row["date"]
                for row in result["vital_signs"] + result["labs"]
            }
            assert all(newest[code] == day for code, day in shown.items()), "not the newest"
            a, b = statistics.median(ours), statistics.median(whole)
            print(
                f"{summary.name}: {result['fact_count']:,} facts; summary median {a:.3f} s "
                f"(runs {', '.join(f'{x:.3f}' for x in ours)}); whole timeline decoded "
                f"median {b:.3f} s; ratio {b / a:.1f}x faster than reading the timeline"
            )
        store.close()


if __name__ == "__main__":
    main()
