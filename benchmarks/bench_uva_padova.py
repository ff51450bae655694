"""UVA/Padova speed: one patient-day, batched patient-days/s, and the ratio to simglucose.

Targets (issue 4): one patient-day < 5 ms; batched >= 5,000 patient-days/s on 2 cores;
>= 100x faster than simglucose for the same 30 patient-days (all 30 virtual patients, the
same scenario) in the same run, with the same results (max |difference| of plasma glucose is
printed). The machine may be shared and loaded: wall time and this process's CPU time are both
printed; each batched figure is the median of ``--batch-repeat`` runs, with 1 thread and with
``--threads``. The scenario is the reference day of ``tools/gen_simglucose_reference.py`` (own
basal, four meals, three boluses).

Run: ``.venv/bin/python benchmarks/bench_uva_padova.py [--batch 6000] [--simglucose 30]``
(``--simglucose 0`` skips simglucose, which takes several CPU seconds per patient-day).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import numpy as np
from _common import REPO, machine

sys.path.insert(0, str(REPO))

from tools.gen_simglucose_reference import SCENARIO, run_patient

from medtwin.model import get_model, parse_scenario, simulate


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=6000, help="patient-days in the batched run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--simglucose", type=int, default=30, help="patients run in simglucose")
    ap.add_argument("--repeat", type=int, default=30, help="repeats of the one patient-day")
    ap.add_argument("--batch-repeat", type=int, default=3, help="repeats of each batched run")
    args = ap.parse_args()
    model = get_model("uva_padova_2008")
    names = model.preset_names()
    scenario = parse_scenario(SCENARIO)
    print(machine())
    one = model.preset("adolescent#001")
    simulate(model, one, scenario, t_end=1440, dt_out=5)  # load the compiled kernels

    walls, cpus = [], []
    for _ in range(args.repeat):
        w0, c0 = clocks()
        simulate(model, one, scenario, t_end=1440, dt_out=5)
        w1, c1 = clocks()
        walls.append(w1 - w0)
        cpus.append(c1 - c0)
    print(
        f"one patient-day (5-min output): median {1e3 * statistics.median(walls):.2f} ms wall, "
        f"{1e3 * statistics.median(cpus):.2f} ms CPU (target < 5 ms)"
    )

    params = model.preset([names[i % len(names)] for i in range(args.batch)])
    for dt in (15.0, 5.0):
        for threads in sorted({1, args.threads}):
            walls, cpus = [], []
            for _ in range(args.batch_repeat):
                w0, c0 = clocks()
                simulate(model, params, scenario, t_end=1440, dt_out=dt, threads=threads)
                w1, c1 = clocks()
                walls.append(w1 - w0)
                cpus.append(c1 - c0)
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            print(
                f"batched {args.batch} patient-days ({dt:g}-min output, {threads} thread"
                f"{'s' if threads > 1 else ''}, median of {args.batch_repeat}): "
                f"{args.batch / wall:,.0f} patient-days/s wall, "
                f"{args.batch / cpu:,.0f} per CPU-second ({cpu:.2f} s CPU) "
                f"(target >= 5,000/s on 2 cores)"
            )

    if args.simglucose <= 0:
        return 0
    warnings.filterwarnings("ignore")
    chosen = names[: args.simglucose]
    times = np.arange(0.0, 1441.0, 5.0)
    w0, c0 = clocks()
    ours = simulate(model, model.preset(chosen), scenario, t_end=1440, times=times, threads=1)
    w1, c1 = clocks()
    ours_wall, ours_cpu = w1 - w0, c1 - c0
    vg = model.preset(chosen)[:, model.parameter_names().index("vg_dl_per_kg")]
    w0, c0 = clocks()
    theirs = np.stack([run_patient(n, SCENARIO, 1440)[::5, 3] for n in chosen]) / vg[:, None]
    w1, c1 = clocks()
    diff = float(np.abs(ours.observables["bg_mg_dl"] - theirs).max())
    print(
        f"{len(chosen)} patient-days: medtwin {ours_wall * 1e3:.1f} ms wall / "
        f"{ours_cpu * 1e3:.1f} ms CPU (1 thread); simglucose {w1 - w0:.1f} s wall / "
        f"{c1 - c0:.1f} s CPU; ratio {(w1 - w0) / ours_wall:,.0f}x wall, "
        f"{(c1 - c0) / max(ours_cpu, 1e-9):,.0f}x CPU (target >= 100x); "
        f"max |plasma glucose difference| {diff:.4f} mg/dL"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
