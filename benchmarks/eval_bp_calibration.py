"""Validation of the circulation twin on synthetic adults with a known resting state.

Each adult (sex 50/50, age 25-80, weight 55-110 kg) is the Ursino circulation scaled to them
(``for_patient``) with the set point, vagal gain, pulse compliance and basal heart period
drawn from the model's priors: their true resting systolic and diastolic pressure and heart
rate are the model's steady state. ``--visits`` check-ups (default 3) read them with the
visit-to-visit variation of office readings (normal, SD 8 / 5 mmHg and 6 /min, the synthetic
population's ``[within_person]``); one more visit is held out.

The twin is :func:`medtwin.twin.calibrate.calibrate` with the circulation fit specification
(base from sex, age and weight; every reading compared with the resting state). Reported:
coverage of the true resting values by the posterior 90 % intervals, the held-out visit's
RMSE for the twin (posterior median), the mean of the fitted visits and the population prior
(the model scaled to the person), the 90 % predictive band's coverage of the held-out readings,
and the fit's median wall time.

    .venv/bin/python benchmarks/eval_bp_calibration.py [--people 60] [--visits 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from medtwin.model import get_model
from medtwin.physiology.cardiovascular import for_patient
from medtwin.twin._cardiovascular_fit import OBSERVABLES
from medtwin.twin.calibrate import calibrate, fit_spec, steady_observables
from medtwin.twin.data import PatientData

M = get_model("cardiovascular_ursino")
IX = {n: i for i, n in enumerate(M.parameter_names())}
DRAWN = ("pn_mmhg", "g_tv_s2", "pulse_compliance_ml_per_mmhg", "t0_s")
NOISE = {"sbp_mmhg": 8.0, "dbp_mmhg": 5.0, "heart_rate_per_min": 6.0}


def one(rng: np.random.Generator, visits: int) -> dict[str, Any]:
    sex = "female" if rng.random() < 0.5 else "male"
    age, weight = float(rng.uniform(25, 80)), float(rng.uniform(55, 110))
    p = for_patient(age_years=age, weight_kg=weight, sex=sex)  # type: ignore[arg-type]
    base = p[0].copy()
    for name in DRAWN:
        par = M.parameters[IX[name]]
        p[0, IX[name]] = float(np.clip(par.prior.sample(rng, 1)[0], par.lower, par.upper))
    truth = {k: float(v[0]) for k, v in steady_observables(M, p, OBSERVABLES).items()}
    days = np.arange(visits + 1) * 365.0 * 1440.0
    readings = {k: v + rng.normal(0.0, NOISE[k], visits + 1) for k, v in truth.items()}
    data = PatientData({k: (days[:-1], y[:-1]) for k, y in readings.items()})
    spec = fit_spec(M)
    assert spec.personalise is not None
    b, data, fit = spec.personalise(M, {"sex": sex, "age_y": age, "weight_kg": weight}, data)
    wall = time.perf_counter()
    cal = calibrate(M, data, base=b, fit=fit)
    wall = time.perf_counter() - wall
    # the person's own seeds: a seed shared by everyone would give every interval the same
    # Monte Carlo error of its 300 draws, which does not average out over people
    seed = int(rng.integers(2**31))
    rest = steady_observables(M, cal.sample(300, seed=seed), OBSERVABLES)
    prior = steady_observables(M, base[None, :], OBSERVABLES)
    out: dict[str, Any] = {
        "seconds": wall,
        "inside": {},
        "errors": {},
        "band": {},
        "fitted": len(cal.fitted),
        "readings": sum(data.count(name) for name in OBSERVABLES),
        "effective_parameters": float(cal.diagnostics.get("effective_parameters", np.nan)),
        "residual_dof": float(cal.diagnostics.get("residual_dof", np.nan)),
    }
    for name in OBSERVABLES:
        lo, hi = np.quantile(rest[name], [0.05, 0.95])
        out["inside"][name] = bool(lo <= truth[name] <= hi)
        held = float(readings[name][-1])
        bands = cal.predict([], t_end=1.0, times=[1.0], n=300, seed=seed + 1, observable=name)
        out["band"][name] = bool(bands.lower[-1] <= held <= bands.upper[-1])
        out["errors"][name] = {
            "twin": float(bands.median[-1]) - held,
            "mean": float(np.mean(readings[name][:-1])) - held,
            "prior": float(prior[name][0]) - held,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, default=60)
    ap.add_argument("--visits", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    runs = [one(rng, args.visits) for _ in range(args.people)]
    report: dict[str, Any] = {"people": args.people, "visits": args.visits}
    for name in OBSERVABLES:
        errs = {
            k: float(np.sqrt(np.mean([r["errors"][name][k] ** 2 for r in runs])))
            for k in ("twin", "mean", "prior")
        }
        report[name] = {
            "truth_in_90pct_interval": float(np.mean([r["inside"][name] for r in runs])),
            "heldout_in_90pct_band": float(np.mean([r["band"][name] for r in runs])),
            "heldout_rmse": errs,
        }
    report["median_fit_seconds"] = float(np.median([r["seconds"] for r in runs]))
    report["median_fitted"] = float(np.median([r["fitted"] for r in runs]))
    report["median_readings"] = float(np.median([r["readings"] for r in runs]))
    report["median_effective_parameters"] = float(
        np.median([r["effective_parameters"] for r in runs])
    )
    report["median_residual_dof"] = float(np.median([r["residual_dof"] for r in runs]))
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.people} adults, {args.visits} visits fitted, one held out")
    for name in OBSERVABLES:
        r = report[name]
        e = r["heldout_rmse"]
        print(
            f"  {name}: true resting value in the 90 % interval {r['truth_in_90pct_interval']:.2f}; "
            f"held-out visit in the 90 % band {r['heldout_in_90pct_band']:.2f}; RMSE twin "
            f"{e['twin']:.1f}, mean of the visits {e['mean']:.1f}, prior {e['prior']:.1f}"
        )
    print(f"  fit median {report['median_fit_seconds']:.1f} s wall")
    print(
        f"  median of the fits: {report['median_readings']:g} readings, "
        f"{report['median_fitted']:g} parameters fitted, "
        f"{report['median_effective_parameters']:.2f} effective, "
        f"{report['median_residual_dof']:.2f} degrees of freedom left for the reading error"
    )


if __name__ == "__main__":
    main()
