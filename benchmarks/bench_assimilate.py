"""Particle filter speed: 1,000 particles absorb one day of 5-minute CGM (288 readings).

Target (issue 4, item 5): under 2 s on 2 cores for 1,000 particles x 288 readings, with meals
and boluses. The day is the synthetic day of ``tests/twin/test_assimilate.py`` (UVA/Padova
adolescent#001, three announced meals with boluses, an unannounced meal, insulin sensitivity
falling at 10:00, simglucose Dexcom sensor error); the filter rejuvenates ``vmx`` and adds
process noise to plasma glucose. Timed: ``absorb`` of the whole day on a fresh filter (after
one warm-up run that compiles the kernels), wall time and this process's CPU time, median of
``--repeat`` runs; for comparison the same day through :func:`medtwin.model.simulate` called
once per reading (what the filter would cost without :mod:`medtwin.model.stepper`). The
machine may be shared and loaded: both clocks are printed.

Run: ``.venv/bin/python benchmarks/bench_assimilate.py [--particles 1000] [--threads 2]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from _common import REPO, machine

sys.path.insert(0, str(REPO / "tests" / "twin"))

from test_assimilate import KNOWN, PROCESS_NOISE, VMX_NAME, M, _particles, _truth

from medtwin.model import parse_scenario, simulate
from medtwin.twin.assimilate import ParticleFilter


def run_filter(n: int, threads: int, seed: int) -> tuple[float, float, ParticleFilter]:
    t, _, y = _truth()
    pf = ParticleFilter(
        M,
        _particles(n),
        seed=seed,
        rejuvenate=[VMX_NAME],
        process_noise=PROCESS_NOISE,
        threads=threads,
    )
    w0, c0 = time.perf_counter(), time.process_time()
    pf.absorb(t[1:], y[1:], KNOWN)
    return time.perf_counter() - w0, time.process_time() - c0, pf


def run_simulate_per_reading(n: int, threads: int, readings: int) -> tuple[float, float]:
    """Advance the same particles reading by reading with ``simulate`` (x0 = last state; the
    own basal plus the events that start in each 5-min window: for timing only, a meal is cut
    at the window's end)."""
    p = _particles(n)
    x = M.initial_state(p)
    w0, c0 = time.perf_counter(), time.process_time()
    for k in range(readings):
        events = [{"type": "basal", "t_min": 0}] + [
            dict(e, t_min=e["t_min"] - 5.0 * k)
            for e in KNOWN
            if e["type"] != "basal" and 5.0 * k <= e["t_min"] < 5.0 * (k + 1)
        ]
        r = simulate(M, p, parse_scenario(events), t_end=5.0, times=[5.0], x0=x, threads=threads)
        x = r.states[:, -1]
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--particles", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(machine())
    run_filter(args.particles, args.threads, seed=0)  # compile the kernels
    walls, cpus = [], []
    pf = None
    for r in range(args.repeat):
        wall, cpu, pf = run_filter(args.particles, args.threads, seed=r + 1)
        walls.append(wall)
        cpus.append(cpu)
    assert pf is not None
    cgm = _truth()[1]
    print(
        f"particle filter, {args.particles} particles x {pf.n_readings} readings, "
        f"{args.threads} threads: wall median {statistics.median(walls):.3f} s "
        f"(min {min(walls):.3f}), CPU median {statistics.median(cpus):.3f} s; "
        f"{pf.n_resampled} resamplings; target < 2 s"
    )
    wall1, cpu1, _ = run_filter(args.particles, 1, seed=1)
    print(f"  one thread: wall {wall1:.3f} s, CPU {cpu1:.3f} s")
    f = pf.forecast(1.0)
    print(
        f"  last run: filtered glucose now {pf.mean():.1f} mg/dL (truth {cgm[-1]:.1f}), "
        f"1-h forecast median {f.band('cgm_mg_dl', 0.5)[-1]:.1f} mg/dL"
    )
    n_cmp = 48
    wall_s, cpu_s = run_simulate_per_reading(args.particles, args.threads, n_cmp)
    print(
        f"simulate() once per reading (integration only, no weighting), {n_cmp} readings: "
        f"wall {wall_s:.3f} s, CPU {cpu_s:.3f} s -> {wall_s * 288 / n_cmp:.2f} s per day"
    )
    return 0 if statistics.median(walls) < 2.0 else 1


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
