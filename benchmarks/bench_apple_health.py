"""Peak memory and speed while importing a ~1 GB Apple Health ``export.xml``.

Target (issue 3): peak resident memory under 500 MB for a 1 GB export. The file is built in a
temporary folder from the Records of the shared export (``wearables/apple-health/export.xml``)
plus typical watch samples (heart rate with its device, step intervals, SpO2, a blood-pressure
correlation), repeated with dates shifted by one minute per copy so every record is distinct.
``medtwin import FILE --patient bench`` then runs in a child process into a SQLite store; its
peak RSS is its own ``getrusage`` maximum.

The reference, in the same run and another child: ``xml.etree.ElementTree.parse`` of the
export (whole tree, as a naive importer would). On a cut of at most ``--reference-mb`` (default
100 MB) of the same records, its peak RSS is measured and, when the cut is smaller than the
file, extrapolated linearly to the full size; the output labels that number as extrapolated.

Run: ``.venv/bin/python benchmarks/bench_apple_health.py [--size-mb 1024] [--reference-mb 100]``
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import orjson
from _common import machine, shared_data

_DATE = re.compile(r'(startDate|endDate|creationDate)="([^"]+)"')

_EXTRA = [
    '<Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Apple Watch" sourceVersion="9.1" '
    'device="&lt;&lt;HKDevice: 0x283c1a0d0&gt;, name:Apple Watch, manufacturer:Apple Inc., '
    'model:Watch, hardware:Watch6,2, software:9.1&gt;" unit="count/min" '
    'creationDate="2022-11-01 08:01:10 +0100" startDate="2022-11-01 08:00:05 +0100" '
    'endDate="2022-11-01 08:00:05 +0100" value="64">\n'
    '  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="1"/>\n</Record>',
    '<Record type="HKQuantityTypeIdentifierStepCount" sourceName="iPhone" sourceVersion="16.1" '
    'unit="count" creationDate="2022-11-01 08:12:00 +0100" startDate="2022-11-01 08:01:00 +0100" '
    'endDate="2022-11-01 08:10:00 +0100" value="734"/>',
    '<Record type="HKQuantityTypeIdentifierOxygenSaturation" sourceName="Apple Watch" '
    'sourceVersion="9.1" unit="%" creationDate="2022-11-01 08:03:00 +0100" '
    'startDate="2022-11-01 08:02:30 +0100" endDate="2022-11-01 08:02:30 +0100" value="0.97"/>',
    '<Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Apple Watch" '
    'sourceVersion="9.1" creationDate="2022-11-01 08:03:00 +0100" '
    'startDate="2022-11-01 01:00:00 +0100" endDate="2022-11-01 06:30:00 +0100" '
    'value="HKCategoryValueSleepAnalysisAsleepCore"/>',
    # exports list the parts of a blood-pressure correlation on their own too
    '<Record type="HKQuantityTypeIdentifierBloodPressureSystolic" sourceName="Cuff" unit="mmHg" '
    'creationDate="2022-11-01 08:05:00 +0100" startDate="2022-11-01 08:04:00 +0100" '
    'endDate="2022-11-01 08:04:00 +0100" value="121"/>',
    '<Record type="HKQuantityTypeIdentifierBloodPressureDiastolic" sourceName="Cuff" unit="mmHg" '
    'creationDate="2022-11-01 08:05:00 +0100" startDate="2022-11-01 08:04:00 +0100" '
    'endDate="2022-11-01 08:04:00 +0100" value="79"/>',
    '<Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Cuff" '
    'creationDate="2022-11-01 08:05:00 +0100" startDate="2022-11-01 08:04:00 +0100" '
    'endDate="2022-11-01 08:04:00 +0100">\n'
    '  <Record type="HKQuantityTypeIdentifierBloodPressureSystolic" sourceName="Cuff" unit="mmHg" '
    'creationDate="2022-11-01 08:05:00 +0100" startDate="2022-11-01 08:04:00 +0100" '
    'endDate="2022-11-01 08:04:00 +0100" value="121"/>\n'
    '  <Record type="HKQuantityTypeIdentifierBloodPressureDiastolic" sourceName="Cuff" unit="mmHg" '
    'creationDate="2022-11-01 08:05:00 +0100" startDate="2022-11-01 08:04:00 +0100" '
    'endDate="2022-11-01 08:04:00 +0100" value="79"/>\n</Correlation>',
]


def _templates() -> list[str]:
    """The Records of the shared export plus :data:`_EXTRA`, as XML texts."""
    text = (shared_data() / "wearables" / "apple-health" / "export.xml").read_text("utf-8")
    records = re.findall(r"<Record .*?</Record>|<Record [^>]*/>", text, flags=re.DOTALL)
    return records + _EXTRA


def build_export(path: Path, size_mb: float) -> tuple[int, int]:
    """Write an export of about ``size_mb`` MiB; returns (top-level elements, copies)."""
    templates = _templates()
    # pre-split each template around its dates so a copy costs one format call
    pieces = []
    for template in templates:
        parts = _DATE.split(template)  # text, name, date, text, name, date, ..., text
        pieces.append(parts)
    target = int(size_mb * 1024 * 1024)
    written = copies = elements = 0
    with path.open("w", encoding="utf-8") as out:
        head = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE HealthData [\n'
            "<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>\n"
            ']>\n<HealthData locale="en_US">\n <ExportDate value="2022-11-02 10:00:00 +0100"/>\n'
        )
        out.write(head)
        written += len(head)
        cache: dict[str, datetime] = {}
        while written < target:
            shift = timedelta(minutes=copies)
            for parts in pieces:
                chunk = [parts[0]]
                for i in range(1, len(parts), 3):
                    original = parts[i + 1]
                    when = cache.get(original)
                    if when is None:
                        when = cache[original] = datetime.strptime(original, "%Y-%m-%d %H:%M:%S %z")
                    chunk.append(f'{parts[i]}="{(when + shift).strftime("%Y-%m-%d %H:%M:%S %z")}"')
                    chunk.append(parts[i + 2])
                line = " " + "".join(chunk) + "\n"
                out.write(line)
                written += len(line)
                elements += 1
            copies += 1
        out.write("</HealthData>\n")
    return elements, copies


_IMPORT = """
import resource, sys
from medtwin.cli import main
main(sys.argv[1:], standalone_mode=False)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(usage.ru_utime + usage.ru_stime, usage.ru_maxrss, file=sys.stderr)
"""

_REFERENCE = """
import resource, sys, time
import xml.etree.ElementTree as ET
t = time.perf_counter()
root = ET.parse(sys.argv[1]).getroot()
n = sum(1 for _ in root.iter("Record"))
print(n, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _child(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"child failed: {done.stderr[-2000:]}")
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=float, default=1024)
    parser.add_argument("--reference-mb", type=float, default=100)
    args = parser.parse_args()
    from medtwin.record.facts import Demographics, Identifier
    from medtwin.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "export.xml"
        elements, copies = build_export(export, args.size_mb)
        size_mib = export.stat().st_size / 2**20
        db = str(Path(tmp) / "bench.db")
        store = open_store(db, actor="bench")
        user = Identifier("urn:medtwin:device-user", "bench")
        store.append_facts(
            [
                Demographics(
                    source="registry", source_id="Patient/bench", subject=user, identifiers=(user,)
                )
            ],
            source="registry",
        )
        store.close()
        t = time.perf_counter()
        done = _child(_IMPORT, "import", str(export), "--patient", "bench", "--store", db, "--json")
        elapsed = time.perf_counter() - t
        cpu_text, peak_text = done.stderr.strip().splitlines()[-1].split()
        cpu_s, peak_mib = float(cpu_text), int(peak_text) / 1024
        result = orjson.loads(done.stdout)
        # the reference: whole-tree ElementTree.parse, on the file or a cut of it
        reference_path = export
        if size_mib > args.reference_mb:
            reference_path = Path(tmp) / "cut.xml"
            build_export(reference_path, args.reference_mb)
        ref_mib = reference_path.stat().st_size / 2**20
        records, ref_s, ref_kb = _child(_REFERENCE, str(reference_path)).stdout.split()
        ref_peak = int(ref_kb) / 1024
        scaled = ref_peak * size_mib / ref_mib
    label = (
        "measured" if reference_path == export else f"extrapolated from a {ref_mib:,.0f} MiB cut"
    )
    rate = result["resources_read"] / elapsed
    print(f"machine: {machine()}")
    print(
        f"file: {size_mib:,.0f} MiB, {elements:,} top-level elements ({copies:,} copies); imported "
        f"{result['inserted']:,} facts from {result['resources_read']:,} mapped records in {elapsed:.0f} s "
        f"({rate:,.0f} records/s; {result['resources_read'] / cpu_s:,.0f} per CPU second, "
        f"{cpu_s:.0f} s of CPU: the machine is shared); quarantined {result['quarantined']}"
    )
    print(f"peak RSS of the import process: {peak_mib:,.0f} MiB (target < 500 MiB)")
    print(
        f"reference ElementTree.parse (whole tree): {ref_peak:,.0f} MiB for {ref_mib:,.0f} MiB "
        f"({int(records):,} Records in {float(ref_s):.1f} s); for {size_mib:,.0f} MiB: "
        f"{scaled:,.0f} MiB ({label}); ratio {scaled / peak_mib:.1f}x"
    )
    print(
        f"| import {size_mib:,.0f} MiB Apple Health export.xml | peak RSS {peak_mib:,.0f} MiB, "
        f"{rate:,.0f} records/s | < 500 MiB | ElementTree.parse {scaled:,.0f} MiB ({label}) | "
        f"{scaled / peak_mib:.1f}x less memory |"
    )


if __name__ == "__main__":
    main()
