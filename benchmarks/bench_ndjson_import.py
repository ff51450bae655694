"""Import throughput of a Bulk Data NDJSON export: in parts by the import workers vs one process.

Data: ``fhir/synthea-r4`` (100 patients, 29,214 resources) imported once and written back
by medtwin's own Bulk Data export (``write_bulk_ndjson``: one NDJSON file per resource type),
then imported into a fresh SQLite store by the default import (FHIR NDJSON files in parts of
about 4 MB, parsed by the workers in parallel and written in file order) and by one process
(``workers=1``: the line-by-line reader, the reference). The two alternate ``--repeat`` times
after one untimed run of each; the ratio is of the medians, with the run-by-run ratios.
Both must store the same facts (checked on the last pair).

Run: ``.venv/bin/python benchmarks/bench_ndjson_import.py [--repeat 5]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import machine, shared_data


def export(tmp: Path) -> tuple[Path, int, int]:
    from medtwin.export import write_bulk_ndjson
    from medtwin.ingest import import_paths
    from medtwin.store import open_store

    store = open_store(str(tmp / "source.db"), actor="bench")
    import_paths(store, [shared_data() / "fhir" / "synthea-r4"])
    folder = tmp / "bulk"
    write_bulk_ndjson(store, folder)
    store.close()
    files = sorted(folder.glob("*.ndjson"))
    lines = sum(f.read_bytes().count(b"\n") for f in files)
    return folder, lines, sum(f.stat().st_size for f in files)


def run(folder: Path, tmp: Path, workers: int | None) -> tuple[float, int, set[tuple[str, str]]]:
    from medtwin.ingest import import_paths
    from medtwin.store import open_store

    db = tmp / f"import-{workers}.db"
    for leftover in tmp.glob(db.name + "*"):
        leftover.unlink()
    store = open_store(str(db), actor="bench")
    start = time.perf_counter()
    report = import_paths(store, [folder], workers=workers)
    elapsed = time.perf_counter() - start
    facts = {
        (r[0], r[1])
        for r in store.conn.execute("SELECT source_id, content_hash FROM facts").fetchall()
    }
    store.close()
    return elapsed, report.counts["resources_read"], facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        folder, lines, size = export(tmp)
        run(folder, tmp, None)
        run(folder, tmp, 1)
        parts: list[float] = []
        serial: list[float] = []
        for _ in range(args.repeat):
            elapsed, read, facts_parts = run(folder, tmp, None)
            parts.append(elapsed)
            elapsed, read_one, facts_one = run(folder, tmp, 1)
            serial.append(elapsed)
        if facts_parts != facts_one or read != read_one:
            raise SystemExit("the two imports stored different facts")
    fast, slow = statistics.median(parts), statistics.median(serial)
    print(f"machine: {machine()}")
    print(
        f"data: {lines:,} NDJSON lines in {size / 2**20:.1f} MiB (synthea-r4 exported by medtwin)"
    )
    print(
        f"in parts (workers): {read / fast:,.0f} resources/s (median of {args.repeat}: "
        f"{[round(x, 2) for x in parts]} s)"
    )
    print(f"one process: {read / slow:,.0f} resources/s ({[round(x, 2) for x in serial]} s)")
    ratios = ", ".join(f"{s / p:.2f}" for p, s in zip(parts, serial, strict=True))
    print(f"ratio: {slow / fast:.2f}x (run by run: {ratios})")
    print(
        f"| import synthea-r4 as Bulk NDJSON into SQLite | {read / fast:,.0f} res/s | - | "
        f"one process {read / slow:,.0f} res/s | {slow / fast:.2f}x |"
    )


if __name__ == "__main__":
    main()
