"""Every registered score on 1,000,000 patients (a columnar table), and one patient per score.

Target (issue 6): all registered scores for 1,000,000 patients in under 5 s on this machine;
the single-patient path under 1 ms per score.

Each score's columns are generated from its own declarations (no score is named here): numbers
uniform within the input's declared ``valid_range`` (whole numbers where ``integer``), booleans
half true, categories drawn uniformly from ``categories``; where a score takes one quantity in two
units (``creatinine_mg_dl`` / ``creatinine_umol_l``) only the first is filled. Rows outside a
score's valid population are refused with their reason, as in real use. The script prints, per score,
seconds for the million rows (wall clock and CPU time of the process: on a shared machine the CPU
time is the steadier figure), the share of rows with a value, and the single-patient time (median
of 200 ``compute_one`` calls), then the totals and the slowest single-patient score.
Plausible-range uniform inputs are a throughput load, not a realistic population.

Run: ``.venv/bin/python benchmarks/bench_all_scores.py [--rows 1000000]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
from _common import machine

from medtwin.risk import all_scores


def table(score: Any, rows: int, seed: int) -> dict[str, Any]:
    """Columns for one score's declared inputs."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    stems: set[str] = set()
    for spec in score.inputs:
        stem = spec.name.rsplit("_", 2)[0] if spec.unit else spec.name
        if spec.unit and stem in stems:
            continue  # the same quantity in another unit: give one
        stems.add(stem)
        if spec.kind == "bool":
            columns[spec.name] = rng.random(rows) < 0.5
        elif spec.kind == "category" and spec.categories:
            choices = np.array(list(spec.categories), dtype=object)
            columns[spec.name] = choices[rng.integers(0, len(choices), rows)]
        elif spec.valid_range is not None:
            lo, hi = spec.valid_range
            values = rng.uniform(lo, hi, rows)
            columns[spec.name] = np.round(values) if spec.integer else values
    return columns


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(machine())
    total_wall = total_cpu = slowest_one = 0.0
    print(f"{'score':34} {'1M rows s':>10} {'CPU s':>7} {'valued':>7} {'one ms':>7}")
    for score in sorted(all_scores(), key=lambda s: s.name):
        cols = table(score, args.rows, args.seed)
        score.compute_many({k: v[:10] for k, v in cols.items()}, rows=10)  # warm caches
        w0, c0 = time.perf_counter(), time.process_time()
        result = score.compute_many(cols, rows=args.rows)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        total_wall += wall
        total_cpu += cpu
        valued = float(np.mean(np.isfinite(result.value)))
        row = {k: v[0].item() if hasattr(v[0], "item") else v[0] for k, v in cols.items()}
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            score.compute_one(row)
            times.append(time.perf_counter() - t0)
        one_ms = statistics.median(times) * 1e3
        slowest_one = max(slowest_one, one_ms)
        print(f"{score.name:34} {wall:10.3f} {cpu:7.3f} {valued:7.1%} {one_ms:7.3f}")
    print(
        f"all {len(all_scores())} scores on {args.rows:,} rows: {total_wall:.2f} s wall, "
        f"{total_cpu:.2f} s CPU (target < 5 s)"
    )
    print(f"single patient: slowest score {slowest_one:.3f} ms (target < 1 ms per score)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
