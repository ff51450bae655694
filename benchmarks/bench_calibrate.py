"""Calibration speed: one patient-week of CGM (2,016 readings every 5 min) with uncertainty.

Target (issue 4): under 5 s for the whole calibration (nearest-preset search, 4 starts,
Laplace covariance) of a UVA/Padova twin. The machine may be shared and loaded: wall time and
this process's CPU time are both printed (calibration is single-threaded: the solver splits rows
over threads only from 128 rows). The week: a virtual patient (adult#003 with basal glucose,
Vmx, kp2 and kabs moved), three meals a day with boluses, an unannounced snack a day, the
simglucose CGM noise. The first call compiles nothing (the kernels are cached), but it is run
once untimed to warm the caches.

Run: ``.venv/bin/python benchmarks/bench_calibrate.py [--repeat 3] [--days 7] [--no-joint]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import machine

from medtwin.model import parse_scenario, simulate
from medtwin.physiology import uva_padova as up
from medtwin.twin import PatientData
from medtwin.twin._uva_padova_fit import basal_egp_mg_per_kg_min, basal_steady_state
from medtwin.twin.calibrate import calibrate

M = up.UvaPadova2008
NAMES = M.parameter_names()


def week(days: int) -> tuple[PatientData, np.ndarray]:
    p = M.preset("adult#003").copy()
    egp = basal_egp_mg_per_kg_min(p)
    for name, factor in (
        ("gb_mg_dl", 0.92),
        ("vmx_mg_per_kg_min_per_pmol_l", 1.3),
        ("kp2_per_min", 0.8),
        ("kabs_per_min", 1.4),
    ):
        p[0, NAMES.index(name)] *= factor
    p = basal_steady_state(p, egp)
    rate = float(up.steady_state_basal_u_per_min(p)[0])
    announced: list[dict[str, object]] = [{"type": "basal", "t_min": 0, "u_per_min": rate}]
    actual = list(announced)
    for d in range(days):
        for t, carbs, units in ((420, 50, 4.0), (750, 70, 5.5), (1140, 80, 6.5)):
            ev = [
                {"type": "meal", "t_min": d * 1440 + t, "carbs_g": carbs},
                {"type": "bolus", "t_min": d * 1440 + t, "insulin_u": units},
            ]
            announced += ev
            actual += ev
        actual.append({"type": "meal", "t_min": d * 1440 + 960, "carbs_g": 20})
    t = np.arange(0.0, days * 1440, 5.0)
    r = simulate(M, p, parse_scenario(actual), t_end=float(t[-1]), times=t)
    y = r.observables["cgm_mg_dl"][0] + up.cgm_noise_mg_dl(t, 1, seed=7, sensor="Dexcom")[0]
    data = PatientData({"cgm_mg_dl": (t, np.clip(y, 39, 600))}, scenario=parse_scenario(announced))
    return data, p[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument(
        "--no-joint",
        action="store_true",
        help="unannounced meals searched with the parameters held (calibrate(jointly=False))",
    )
    args = ap.parse_args()
    data, truth = week(args.days)
    calibrate(M, data.window(0, 1435), seed=0)  # warm-up (loads the compiled kernels)
    walls, cpus = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        cal = calibrate(M, data, seed=0, jointly=not args.no_joint)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    d = cal.diagnostics
    print(machine())
    print(
        f"calibration of {data.count('cgm_mg_dl')} CGM readings ({args.days} days), "
        f"{d['starts']} starts, {d['simulations']} solver calls, {d['rows']} simulated rows: "
        f"median {statistics.median(walls):.2f} s wall, {statistics.median(cpus):.2f} s CPU "
        f"(target < 5 s)"
    )
    print(f"base {d['base']}, converged {d['converged']}, starts agree {d['starts_agree']}")
    for name, value in cal.values.items():
        true = truth[NAMES.index(name)]
        print(f"  {name:30} fitted {value:.4g}  true {true:.4g}  log SD {cal.log_sd[name]:.3f}")


if __name__ == "__main__":
    main()
