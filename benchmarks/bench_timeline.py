"""Timeline query latency: all observations of one code for one patient, at 10,000 patients.

Target (issue 2): under 5 ms per query (SQLite, the embedded default). The query
goes through the public Store API, so the time includes resolving the patient,
decoding the facts and writing the access-log row.

Run: ``.venv/bin/python benchmarks/bench_timeline.py [--patients 10000] [--store URL]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import machine

CODES = [
    ("8867-4", "/min"),
    ("8480-6", "mm[Hg]"),
    ("8462-4", "mm[Hg]"),
    ("29463-7", "kg"),
    ("2339-0", "mg/dL"),
]


def populate(store_url: str, patients: int, per_code: int) -> None:
    from medtwin.record.batch import Batch, ResourceUnit
    from medtwin.record.facts import LOINC, Coding, Demographics, Identifier, Observation
    from medtwin.store import open_store

    store = open_store(store_url, actor="bench")
    rng = random.Random(1)
    system = "urn:bench:patient"
    start = datetime(2020, 1, 1, tzinfo=UTC)
    for block in range(0, patients, 200):
        units = []
        for p in range(block, min(block + 200, patients)):
            ident = Identifier(system, f"P{p}")
            demo = Demographics(
                source="bench",
                source_id=f"Patient/P{p}",
                subject=ident,
                identifiers=(ident,),
                family=f"Family{p}",
                given=("Test",),
                birth_date="1970-01-01",
                gender="female",
            )
            units.append(ResourceUnit(key=demo.source_id, facts=(demo,)))
            for code, unit in CODES:
                for i in range(per_code):
                    obs = Observation(
                        source="bench",
                        source_id=f"Observation/P{p}-{code}-{i}",
                        subject=ident,
                        code=Coding(LOINC, code),
                        status="final",
                        effective_start=start + timedelta(days=7 * i, minutes=rng.randrange(600)),
                        value_num=rng.gauss(100, 10),
                        unit=unit,
                        category="vital-signs",
                    )
                    units.append(ResourceUnit(key=obs.source_id, facts=(obs,)))
        store.append(Batch(source="bench", units=units))
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument(
        "--per-code", type=int, default=10, help="observations per code per patient"
    )
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument(
        "--store", default=None, help="store URL (default: a temporary SQLite file)"
    )
    args = parser.parse_args()
    from medtwin.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or str(Path(tmp) / "timeline.db")
        t0 = time.perf_counter()
        populate(url, args.patients, args.per_code)
        load_s = time.perf_counter() - t0
        store = open_store(url, actor="bench")
        rng = random.Random(2)
        timings = []
        sizes = []
        for _ in range(args.queries):
            pid = f"P{rng.randrange(args.patients)}"
            code = rng.choice(CODES)[0]
            t = time.perf_counter()
            rows = store.timeline(pid, codes=[code])
            timings.append((time.perf_counter() - t) * 1000)
            sizes.append(len(rows))
        counts = store.counts()
        store.close()
    timings.sort()
    median = statistics.median(timings)
    p95 = timings[int(0.95 * len(timings))]
    print(f"machine: {machine()}")
    print(
        f"store: {counts['patients']} patients, {counts['facts']} facts (loaded in {load_s:.1f} s)"
    )
    print(
        f"timeline(patient, code): {len(timings)} queries, {statistics.mean(sizes):.0f} rows each; "
        f"median {median:.2f} ms, p95 {p95:.2f} ms, max {timings[-1]:.2f} ms"
    )
    print(
        f"| timeline one patient one code, {counts['patients']:,} patients | median {median:.2f} ms, "
        f"p95 {p95:.2f} ms | < 5 ms |"
    )


if __name__ == "__main__":
    main()
