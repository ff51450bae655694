"""Validation of the body-weight twin on synthetic adults with a known truth.

Each adult (sex 50/50; age, height, weight drawn from the Hall model's priors, BMI 18.5-45)
eats a habitual intake that changes linearly over the observed years (the way the synthetic
population of ``medtwin synth`` gains and loses weight): from ``exp(N(0, 0.03))`` to
``exp(N(0, 0.06))`` times their maintenance intake. Two ways of weighing are scored:

- ``checkups``: 9 yearly weights with the synthetic population's visit-to-visit SD (1.2 kg);
  the twin is fitted to the first 8 and predicts the 9th;
- ``scale``: a home scale every 7 days for 52 weeks (day-to-day SD 0.5 kg), the intake ramp
  over those weeks and on for 12 more; fitted to the 52 weeks, the twin predicts the next 12
  weekly weights.

The twin is :func:`medtwin.twin.calibrate.calibrate` with the body-weight fit specification
(base from sex, age, height and the first weight; fitted: the first weight and the intake at
the first and the last weight), and its prediction the median of
:meth:`~medtwin.twin.calibrate.Calibration.predict` (400 posterior samples with the reading
noise); the 90 % band is its 5th-95th percentiles. Compared against the last weight held, the
population prior (energy balance at the first weight) and a straight line fitted to the
weights by least squares and extrapolated. Reported: RMSE (kg) of each, the band's coverage of
the held-out weights and its mean width, the fit's median CPU time.

    .venv/bin/python benchmarks/eval_weight_calibration.py [--people 200] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from medtwin.model import get_model, parse_scenario, simulate
from medtwin.physiology.body_weight import params_for
from medtwin.twin.calibrate import calibrate, fit_spec
from medtwin.twin.data import PatientData

M = get_model("hall_2011_body_weight")
IX = {n: i for i, n in enumerate(M.parameter_names())}
SCHEMES = {
    # name: (interval days, fitted readings, held-out readings, reading SD kg)
    "checkups": (365.0, 8, 1, 1.2),
    "scale": (7.0, 52, 12, 0.5),
}


def person(rng: np.random.Generator) -> tuple[str, float, float, float]:
    """Sex, age, height and weight from the model's priors, BMI kept within 18.5-45."""
    sex = "female" if rng.random() < 0.5 else "male"
    age = float(np.clip(rng.normal(45, 12), 25, 75))
    height = float(np.clip(rng.normal(1.64 if sex == "female" else 1.77, 0.07), 1.45, 2.05))
    bmi = float(np.clip(np.exp(rng.normal(np.log(27.5), 0.18)), 18.5, 45.0))
    return sex, age, height, bmi * height * height


def one(rng: np.random.Generator, scheme: str) -> dict[str, Any]:
    every, n_fit, n_out, sd = SCHEMES[scheme]
    sex, age, height, weight = person(rng)
    f0, f1 = float(np.exp(rng.normal(0, 0.03))), float(np.exp(rng.normal(0, 0.06)))
    p = params_for(sex, age, height, weight, 1.6)  # type: ignore[arg-type]
    days = np.arange(n_fit + n_out) * every
    p[0, IX["intake_factor"]] = f0
    p[0, IX["intake_factor_end"]] = f1
    p[0, IX["intake_ramp_d"]] = float(days[-1])
    r = simulate(M, p, parse_scenario([]), t_end=float(days[-1]), times=days)
    y = r.observables["weight_kg"][0] + rng.normal(0.0, sd, days.size)
    fit_t, fit_y = days[:n_fit], y[:n_fit]
    out_t, out_y = days[n_fit:], y[n_fit:]
    spec = fit_spec(M)
    assert spec.personalise is not None
    who = {"sex": sex, "age_y": age + fit_t[-1] / 365.25, "height_m": height}
    base, data, fit = spec.personalise(M, who, PatientData({"weight_kg": (fit_t * 1440.0, fit_y)}))
    cpu = time.process_time()
    cal = calibrate(M, data, base=base, fit=fit)
    cpu = time.process_time() - cpu
    bands = cal.predict([], t_end=float(out_t[-1]), times=out_t, n=400, seed=1, level=0.9)
    at = np.searchsorted(bands.times, out_t)
    median, lo, hi = bands.median[at], bands.lower[at], bands.upper[at]
    prior = simulate(M, base[None, :], parse_scenario([]), t_end=float(out_t[-1]), times=out_t)
    slope, intercept = np.polyfit(fit_t, fit_y, 1)
    return {
        "errors": {
            "twin": (median - out_y).tolist(),
            "last": (fit_y[-1] - out_y).tolist(),
            "prior": (prior.observables["weight_kg"][0, -out_t.size :] - out_y).tolist(),
            "linear": (intercept + slope * out_t - out_y).tolist(),
        },
        "inside": ((out_y >= lo) & (out_y <= hi)).tolist(),
        "width": (hi - lo).tolist(),
        "cpu_s": cpu,
        "converged": bool(cal.diagnostics["converged"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    report: dict[str, Any] = {}
    for scheme in SCHEMES:
        rng = np.random.default_rng(args.seed)
        runs = [one(rng, scheme) for _ in range(args.people)]
        rmse = {
            k: float(np.sqrt(np.mean(np.square(np.concatenate([r["errors"][k] for r in runs])))))
            for k in ("twin", "last", "prior", "linear")
        }
        inside = np.concatenate([r["inside"] for r in runs])
        report[scheme] = {
            "people": args.people,
            "rmse_kg": rmse,
            "coverage_90": float(inside.mean()),
            "coverage_se": float(np.sqrt(inside.mean() * (1 - inside.mean()) / args.people)),
            "mean_band_width_kg": float(np.mean(np.concatenate([r["width"] for r in runs]))),
            "median_fit_cpu_s": float(np.median([r["cpu_s"] for r in runs])),
            "converged": int(sum(r["converged"] for r in runs)),
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for scheme, r in report.items():
        every, n_fit, n_out, sd = SCHEMES[scheme]
        print(
            f"{scheme}: {r['people']} adults, {n_fit} weights every {every:g} d (SD {sd} kg), "
            f"{n_out} held out"
        )
        print(
            "  RMSE kg: twin {twin:.2f}, last value {last:.2f}, prior {prior:.2f}, "
            "straight line {linear:.2f}".format(**r["rmse_kg"])
        )
        print(
            f"  90 % band coverage {r['coverage_90']:.3f} (SE over people ~{r['coverage_se']:.3f}), "
            f"mean width {r['mean_band_width_kg']:.2f} kg; fit median {r['median_fit_cpu_s']:.3f} "
            f"CPU s; converged {r['converged']}/{r['people']}"
        )


if __name__ == "__main__":
    main()
