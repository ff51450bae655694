"""Peak memory while importing a 1 GB Bulk Data NDJSON file.

Target (issue 2): peak memory under 1 GB. The file is built from the shared Synthea
resources, copied with fresh ids until it reaches the size; the import runs in a child
process (``medtwin import``, with its import workers: the file is parsed in parts by
them). Its memory is the peak of the summed PSS (proportional set size: pages the forked
workers share with their parent counted once, in shares) of the import process and its
workers, sampled every 50 ms from /proc (``_memory.TreeMemory``); the peak of the summed
RSS (shared pages counted once per process, an upper bound) and the largest single
process (``getrusage``) are printed too. The reference is the file size itself: reading
the whole file into memory (as a naive importer would) needs at least that much.

Run: ``.venv/bin/python benchmarks/bench_ndjson_memory.py [--size-mb 1024] [--workers N]``
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
from _memory import TreeMemory


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
    parser.add_argument("--workers", type=int, default=None, help="medtwin import --workers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "Observation.ndjson"
        lines = build_file(data, args.size_mb)
        size = data.stat().st_size
        medtwin = Path(sys.executable).with_name("medtwin")
        command = [
            str(medtwin),
            "import",
            str(data),
            "--store",
            str(Path(tmp) / "mem.db"),
            "--json",
        ]
        if args.workers is not None:
            command += ["--workers", str(args.workers)]
        t = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        memory = TreeMemory(process)
        stdout, stderr = process.communicate()
        elapsed = time.perf_counter() - t
        memory.join()
        if process.returncode != 0:
            sys.exit(f"import failed: {stderr.decode()}")
        largest_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = orjson.loads(stdout)
    pss_mb, rss_mb = memory.peak_pss_kib / 1024, memory.peak_rss_kib / 1024
    file_mb = size / 2**20
    print(f"machine: {machine()}")
    print(
        f"file: {file_mb:,.0f} MiB, {lines:,} resources; imported {result['inserted']:,} facts "
        f"in {elapsed:.0f} s ({lines / elapsed:,.0f} resources/s), quarantined {result['quarantined']}"
    )
    print(
        f"peak memory of the import and its workers ({memory.peak_processes} processes): "
        f"PSS {pss_mb:,.0f} MiB, RSS summed {rss_mb:,.0f} MiB; largest process {largest_mb:,.0f} "
        f"MiB (file size {file_mb:,.0f} MiB; PSS / file {pss_mb / file_mb:.2f})"
    )
    print(
        f"| import {file_mb:,.0f} MiB NDJSON | peak PSS {pss_mb:,.0f} MiB (RSS summed "
        f"{rss_mb:,.0f}) | < 1,024 MiB | file size {file_mb:,.0f} MiB | "
        f"{pss_mb / file_mb:.2f} of file size |"
    )


if __name__ == "__main__":
    main()
