"""Peak memory while importing a 1 GB Bulk Data NDJSON file.

Target (issue 2): peak resident memory under 1 GB. The file is built from the
shared Synthea resources, copied with fresh ids until it reaches the size; the
import runs in a child process (``medtwin import``) whose peak RSS is read from
``getrusage``. The reference is the file size itself: reading the whole file into
memory (as a naive importer would) needs at least that much.

Run: ``.venv/bin/python benchmarks/bench_ndjson_memory.py [--size-mb 1024]``
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from _common import machine, shared_data


def build_file(path: Path, size_mb: int) -> int:
    """Write Patients then Observations copied from synthea-r4 with fresh ids; returns lines."""
    folder = shared_data() / "fhir" / "synthea-r4"
    patients, observations = [], []
    for file in sorted(folder.glob("*.json"))[:20]:
        for entry in orjson.loads(file.read_bytes())["entry"]:
            res = entry["resource"]
            if res["resourceType"] == "Patient":
                patients.append(res)
            elif res["resourceType"] == "Observation" and "encounter" not in res:
                observations.append(res)
            elif res["resourceType"] == "Observation":
                res = {k: v for k, v in res.items() if k != "encounter"}
                observations.append(res)
    target = size_mb * 1024 * 1024
    lines = 0
    written = 0
    copy = 0
    with path.open("wb") as out:
        while written < target:
            for pat in patients:
                new = dict(pat, id=f"{pat['id']}-c{copy}")
                new.pop("identifier", None)
                line = orjson.dumps(new) + b"\n"
                out.write(line)
                written += len(line)
                lines += 1
            for obs in observations:
                subject = (
                    obs["subject"]["reference"].removeprefix("urn:uuid:").removeprefix("Patient/")
                )
                new = dict(
                    obs,
                    id=f"{obs['id']}-c{copy}",
                    subject={"reference": f"Patient/{subject}-c{copy}"},
                )
                line = orjson.dumps(new) + b"\n"
                out.write(line)
                written += len(line)
                lines += 1
                if written >= target:
                    break
            copy += 1
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "Observation.ndjson"
        lines = build_file(data, args.size_mb)
        size = data.stat().st_size
        medtwin = Path(sys.executable).with_name("medtwin")
        t = time.perf_counter()
        done = subprocess.run(
            [str(medtwin), "import", str(data), "--store", str(Path(tmp) / "mem.db"), "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - t
        if done.returncode != 0:
            sys.exit(f"import failed: {done.stderr}")
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = orjson.loads(done.stdout)
    print(f"machine: {machine()}")
    print(
        f"file: {size / 2**20:,.0f} MiB, {lines:,} resources; imported {result['inserted']:,} facts "
        f"in {elapsed:.0f} s ({lines / elapsed:,.0f} resources/s), quarantined {result['quarantined']}"
    )
    print(
        f"peak RSS of the import process: {peak_mb:,.0f} MiB (file size {size / 2**20:,.0f} MiB; "
        f"ratio {peak_mb / (size / 2**20):.2f})"
    )
    print(
        f"| import {size / 2**20:,.0f} MiB NDJSON | peak RSS {peak_mb:,.0f} MiB | < 1,024 MiB | "
        f"file size {size / 2**20:,.0f} MiB | {peak_mb / (size / 2**20):.2f} of file size |"
    )


if __name__ == "__main__":
    main()
