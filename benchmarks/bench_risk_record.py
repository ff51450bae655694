"""``medtwin risk`` from the record: every input and every score for each shared Synthea patient.

What it measures: the time of :func:`medtwin.risk.from_record.evaluate` (read the record,
derive every input, compute every applicable score, ranges included) for the 100 patients of
``fhir/synthea-r4`` at one date, and, as the reference in the same run, the same evaluations
through :func:`medtwin.risk.history.score_table` (one read of each record, one
``compute_many`` per score for all patients), which must give the same outcomes; and the full
single-date report, whose extras the table does not compute (each percent risk's interval over
measurement variation, a statin user's untreated estimate). It also counts the outcomes by
status (computed, range, missing, refused) so that a change in what the record answers shows
next to its cost.

Run: ``.venv/bin/python benchmarks/bench_risk_record.py [--date 2019-12-31] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from _common import machine, shared_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--date", default="2019-12-31", help="evaluation date (default %(default)s)"
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from medtwin.ingest import import_paths
    from medtwin.risk.from_record import evaluate
    from medtwin.risk.history import score_table
    from medtwin.store import open_store

    at = dt.date.fromisoformat(args.date)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(str(Path(tmp) / "bench.db"), actor="bench")
        import_paths(store, [shared_data() / "fhir" / "synthea-r4"], workers=0)
        pids = [p.id for p in store.patients(limit=100_000)]
        single: list[float] = []
        full: list[float] = []
        table_times: list[float] = []
        evaluate(store, pids[0], at)  # imports, caches
        for _ in range(args.repeat):
            start = time.perf_counter()
            reports = [evaluate(store, pid, at, variation=False) for pid in pids]
            single.append(time.perf_counter() - start)
            start = time.perf_counter()
            table = score_table(store, [(pid, at) for pid in pids])
            table_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            complete = [evaluate(store, pid, at) for pid in pids]
            full.append(time.perf_counter() - start)
        for i, report in enumerate(reports):
            same = [
                {k: v for k, v in s.to_dict().items() if k != "untreated"} for s in report.scores
            ]
            assert same == [o.to_dict() for o in table.outcomes[i]]
        intervals = sum(s.variation is not None for r in complete for s in r.scores)
        untreated = sum(s.untreated is not None for r in complete for s in r.scores)
        store.close()
    counts = collections.Counter(s.status for r in reports for s in r.scores)
    per = statistics.median(single) / len(pids) * 1000
    print(f"patients: {len(pids)} at {at}; outcomes by status: {dict(sorted(counts.items()))}")
    print(
        f"evaluate, one patient at a time: median {statistics.median(single):.2f} s "
        f"({per:.1f} ms a patient; runs {', '.join(f'{t:.2f}' for t in single)})"
    )
    print(
        f"score_table, all patients at once: median {statistics.median(table_times):.2f} s "
        f"(runs {', '.join(f'{t:.2f}' for t in table_times)}); same outcomes"
    )
    ratio = statistics.median(single) / statistics.median(table_times)
    print(f"ratio evaluate / score_table: {ratio:.2f}x")
    extra = statistics.median(full) / statistics.median(single)
    print(
        f"full report (with {intervals} measurement intervals, {untreated} untreated estimates): "
        f"median {statistics.median(full):.2f} s, {extra:.2f}x evaluate without the intervals "
        f"(runs {', '.join(f'{t:.2f}' for t in full)})"
    )


if __name__ == "__main__":
    main()
