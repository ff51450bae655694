"""PGx calling time: a whole-panel VCF to diplotypes and phenotypes for all nine genes.

Target: under 1 s per sample for all genes (issue 5). The reference figure is PharmCAT's
published one: 1-6 s per sample (PharmCAT cannot be installed here, so it is quoted, not
raced; Sangkuhl K et al. Clin Pharmacol Ther 2020;107:203-210 and the PharmCAT
documentation give seconds per single-sample VCF, dominated by JVM start-up and reporting).

Timed, each from the file on disk (median of ``--repeat`` runs, wall and CPU time):

* ``pharmcat.example.vcf``: PharmCAT's whole-panel example (every pharmacogene position);
* ``NA18526.preprocessed.vcf``: a real 1000 Genomes sample, PharmCAT-preprocessed;
* the 1000 Genomes chr10 bgzip panel (88,248 records, 3 samples, one chosen): streaming a
  large file for the pharmacogene positions.

Run: ``.venv/bin/python benchmarks/bench_pgx.py [--repeat 7]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from _common import machine, shared_data

from medtwin.ingest.vcf import genotype_facts, read_vcf
from medtwin.pharmacology.pgx import call_facts

PHARMCAT_SECONDS = (1.0, 6.0)


def one(path: Path, sample: str | None) -> tuple[float, float, int]:
    """Wall and CPU seconds of read -> facts -> calls; the number of genes called."""
    wall, cpu = time.perf_counter(), time.process_time()
    calls = call_facts(genotype_facts(read_vcf(path, sample=sample)))
    called = sum(1 for c in calls if c.diplotype is not None)
    return time.perf_counter() - wall, time.process_time() - cpu, called


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    data = shared_data() / "genomics"
    cases = [
        (
            "PharmCAT example (whole panel)",
            data / "pharmcat" / "examples" / "pharmcat.example.vcf",
            None,
        ),
        ("NA18526 preprocessed (1000 Genomes)", data / "NA18526.preprocessed.vcf", None),
        (
            "1000 Genomes chr10 panel, bgzip (88,248 records)",
            data / "PharmCAT_tutorial_get-rm_wgs_30x_grch38_chr10.vcf.bgz",
            "NA18526",
        ),
    ]
    print(f"machine: {machine()}")
    one(cases[0][1], None)  # warm-up: imports and gene tables
    for name, path, sample in cases:
        runs = [one(path, sample) for _ in range(args.repeat)]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        ratio = PHARMCAT_SECONDS[0] / wall
        print(
            f"{name}: {wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU, {runs[0][2]}/9 genes called; "
            f"PharmCAT's published 1-6 s per sample is {ratio:.0f}-{ratio * 6:.0f}x this "
            f"({'meets' if wall < 1.0 else 'MISSES'} the 1 s target)"
        )


if __name__ == "__main__":
    main()
