"""Import throughput of ``fhir/synthea-r4`` into SQLite vs parsing with ``fhir.resources.R4B`` alone.

Targets (issue 2): at least 20,000 resources/s, and at least 10x the throughput of
parsing the same files with ``fhir.resources.R4B``, measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_import.py [--repeat 5]``

Each side runs once untimed (imports, set-up), then the two alternate ``--repeat``
times, so that a shared host's changing load falls on both; the ratio is of the medians,
and the run-by-run ratios are printed too.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import orjson
from _common import machine, shared_data


def medtwin_import(folder: Path) -> tuple[float, int]:
    from medtwin.ingest import import_paths
    from medtwin.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(str(Path(tmp) / "bench.db"), actor="bench")
        start = time.perf_counter()
        report = import_paths(store, [folder])
        elapsed = time.perf_counter() - start
        store.close()
    return elapsed, report.counts["resources_read"]


def fhir_resources_parse(folder: Path) -> tuple[float, int]:
    from fhir.resources.R4B.bundle import Bundle

    files = sorted(folder.glob("*.json"))
    start = time.perf_counter()
    count = 0
    for file in files:
        bundle = Bundle.model_validate_json(file.read_bytes())
        count += len(bundle.entry or [])
    return time.perf_counter() - start, count


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float, float] | None:
    """Distribution-free interval for the median of ``values``: the order statistics
    ``(x_(k), x_(n-k+1))`` with the largest ``k`` whose coverage, 1 - 2 P(Binomial(n, 1/2) < k),
    is at least ``level``; returns ``(low, high, coverage)``, or None when even the range
    covers less (fewer than 6 values at 95 %). Conover WJ. *Practical Nonparametric
    Statistics*, 3rd ed., 1999, section 3.2 (confidence interval for a quantile).

    >>> median_interval([float(v) for v in range(1, 16)])
    (4.0, 12.0, 0.96484375)
    >>> median_interval([1.0, 2.0, 3.0]) is None
    True
    """
    x = sorted(values)
    n = len(x)
    best = None
    for k in range(1, n // 2 + 1):
        below = sum(math.comb(n, i) for i in range(k)) / 2**n
        coverage = 1.0 - 2.0 * below
        if coverage >= level:
            best = (x[k - 1], x[n - k], coverage)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = shared_data() / "fhir" / "synthea-r4"
    total = sum(len(orjson.loads(f.read_bytes())["entry"]) for f in folder.glob("*.json"))
    # one untimed run of each first (module imports, schema and model set-up), then timed
    # runs in alternation, so that both see the same state of a shared host
    medtwin_import(folder)
    fhir_resources_parse(folder)
    ours: list[tuple[float, int]] = []
    theirs: list[tuple[float, int]] = []
    for _ in range(args.repeat):
        ours.append(medtwin_import(folder))
        theirs.append(fhir_resources_parse(folder))
    assert all(n == total for _, n in ours + theirs), "resource counts differ"
    ours_rate = total / statistics.median(t for t, _ in ours)
    theirs_rate = total / statistics.median(t for t, _ in theirs)
    pairs = sorted(b / a for (a, _), (b, _) in zip(ours, theirs, strict=True))
    print(f"machine: {machine()}")
    print(f"resources: {total} in {len(list(folder.glob('*.json')))} bundles")
    print(
        f"medtwin import into SQLite: {ours_rate:,.0f} resources/s "
        f"(median of {len(ours)}: {[round(t, 2) for t, _ in ours]} s)"
    )
    print(
        f"fhir.resources.R4B parse only: {theirs_rate:,.0f} resources/s "
        f"(median of {len(theirs)}: {[round(t, 2) for t, _ in theirs]} s)"
    )
    print(
        f"ratio medtwin / fhir.resources: {ours_rate / theirs_rate:.1f}x "
        f"(run by run: {', '.join(f'{r:.1f}' for r in pairs)})"
    )
    interval = median_interval(pairs)
    if interval is not None:
        low, high, coverage = interval
        print(
            f"median of the run-by-run ratios {statistics.median(pairs):.2f}x, "
            f"{coverage:.0%} interval {low:.2f}-{high:.2f}x (distribution-free, over the pairs)"
        )
    print(
        f"| import synthea-r4 into SQLite | {ours_rate:,.0f} res/s | >= 20,000 res/s | "
        f"fhir.resources.R4B parse {theirs_rate:,.0f} res/s | {ours_rate / theirs_rate:.1f}x (>= 10x) |"
    )


if __name__ == "__main__":
    main()
