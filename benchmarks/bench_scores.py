"""NEWS2 throughput: ``compute_many`` on 1,000,000 random rows vs a naive per-row reference.

Target: >= 200,000 rows/s on one core through ``medtwin.risk`` (numpy columns). The reference
is the plain way to score a table: a Python function with the chart as if/else, called once
per row over the same columns (zip). Both run in the same process on the same rows; the
script checks that they agree on every row and prints rows/s and the ratio. It also times
Python-list input (the columns converted by medtwin) and ``compute_one`` per row.

Run: ``.venv/bin/python benchmarks/bench_scores.py [--rows 1000000] [--repeat 3]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core

import argparse  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from _common import machine  # noqa: E402

from medtwin.risk import get  # noqa: E402


def random_columns(rows: int, seed: int) -> dict[str, Any]:
    """Plausible ward observations, with decimals on the temperature."""
    rng = np.random.default_rng(seed)
    return {
        "respiratory_rate_per_min": rng.integers(6, 36, rows).astype(np.float64),
        "spo2_percent": rng.integers(80, 101, rows).astype(np.float64),
        "spo2_scale": rng.choice(np.array([1, 2]), rows, p=[0.9, 0.1]),
        "on_oxygen": rng.random(rows) < 0.2,
        "systolic_bp_mm_hg": rng.integers(70, 230, rows).astype(np.float64),
        "pulse_per_min": rng.integers(35, 160, rows).astype(np.float64),
        "consciousness": rng.choice(np.array(list("ACVPU")), rows, p=[0.9, 0.04, 0.03, 0.02, 0.01]),
        "temperature_c": np.round(rng.normal(37.2, 0.9, rows), 1),
    }


def naive_news2(
    rr: float, spo2: float, scale: int, oxygen: bool, sbp: float, hr: float, avpu: str, t: float
) -> int:
    """RCP 2017 Chart 1, one row, if/else (values between printed bands: higher points)."""
    total = 3 if rr < 9 else 1 if rr < 12 else 0 if rr <= 20 else 2 if rr <= 24 else 3
    if scale == 1:
        total += 3 if spo2 < 92 else 2 if spo2 < 94 else 1 if spo2 < 96 else 0
    elif spo2 < 88:
        total += 3 if spo2 < 84 else 2 if spo2 < 86 else 1
    elif oxygen and spo2 > 92:
        total += 1 if spo2 <= 94 else 2 if spo2 <= 96 else 3
    total += 2 if oxygen else 0
    total += 3 if sbp < 91 else 2 if sbp < 101 else 1 if sbp < 111 else 0 if sbp <= 219 else 3
    if hr < 41:
        total += 3
    elif hr < 51:
        total += 1
    elif hr <= 90:
        pass
    elif hr <= 110:
        total += 1
    elif hr <= 130:
        total += 2
    else:
        total += 3
    total += 0 if avpu == "A" else 3
    total += 3 if t < 35.1 else 1 if t < 36.1 else 0 if t <= 38.0 else 1 if t <= 39.0 else 2
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for compute_many")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    score = get("news2")
    columns = random_columns(args.rows, args.seed)
    print(f"machine: {machine()}")
    print(f"rows: {args.rows:,}  (numpy {np.__version__})")

    best = float("inf")
    result = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = score.compute_many(columns)
        best = min(best, time.perf_counter() - start)
    assert result is not None
    rate = args.rows / best
    print(
        f"medtwin compute_many, numpy columns: {best:.3f} s  {rate:,.0f} rows/s (best of {args.repeat})"
    )

    lists = {key: col.tolist() for key, col in columns.items()}
    start = time.perf_counter()
    from_lists = score.compute_many(lists)
    list_time = time.perf_counter() - start
    print(
        f"medtwin compute_many, Python lists:  {list_time:.3f} s  {args.rows / list_time:,.0f} rows/s"
    )

    start = time.perf_counter()
    reference = [
        naive_news2(*row)
        for row in zip(
            lists["respiratory_rate_per_min"],
            lists["spo2_percent"],
            lists["spo2_scale"],
            lists["on_oxygen"],
            lists["systolic_bp_mm_hg"],
            lists["pulse_per_min"],
            lists["consciousness"],
            lists["temperature_c"],
            strict=True,
        )
    ]
    naive_time = time.perf_counter() - start
    naive_rate = args.rows / naive_time
    print(f"naive per-row reference (if/else):   {naive_time:.3f} s  {naive_rate:,.0f} rows/s")

    agree = np.array_equal(result.value, np.array(reference, dtype=np.float64))
    agree = agree and np.array_equal(from_lists.value, result.value)
    print(f"results identical on every row: {agree}")

    one_rows = min(20_000, args.rows)
    rows = [{key: lists[key][i] for key in lists} for i in range(one_rows)]
    start = time.perf_counter()
    for row in rows:
        score.compute_one(row)
    one_time = time.perf_counter() - start
    print(
        f"medtwin compute_one per row ({one_rows:,} rows): {one_rows / one_time:,.0f} rows/s "
        f"({one_time / one_rows * 1e6:.0f} µs per patient)"
    )

    print(f"ratio compute_many / naive per-row: {rate / naive_rate:.1f}x")
    print(f"target >= 200,000 rows/s: {'met' if rate >= 200_000 else 'NOT met'}")
    if not agree:
        raise SystemExit("medtwin and the reference disagree")


if __name__ == "__main__":
    main()
