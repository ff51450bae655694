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


def diet_effect(params: np.ndarray, at: float, t_end: float) -> np.ndarray:
    """Weight at ``t_end`` eating 300 kcal/day less from ``at`` minus going on as now (kg)."""
    diet = parse_scenario([{"type": "diet", "t_d": at, "intake_change_kcal_per_day": -300}])
    times = [t_end]
    less = simulate(M, params, diet, t_end=t_end, times=times).observables["weight_kg"][:, -1]
    same = simulate(M, params, parse_scenario([]), t_end=t_end, times=times)
    return np.asarray(less - same.observables["weight_kg"][:, -1])


def scored(cal: Any, out_t: np.ndarray, out_y: np.ndarray, seed: int) -> dict[str, list[float]]:
    """Held-out errors of the median, whether each weight is inside the 90 % band, widths.

    ``seed``: the person's own (a seed shared by everyone would give every band the same
    Monte Carlo error of its 400 draws, which does not average out over people)."""
    bands = cal.predict([], t_end=float(out_t[-1]), times=out_t, n=400, seed=seed, level=0.9)
    at = np.searchsorted(bands.times, out_t)
    median, lo, hi = bands.median[at], bands.lower[at], bands.upper[at]
    return {
        "errors": (median - out_y).tolist(),
        "inside": ((out_y >= lo) & (out_y <= hi)).astype(float).tolist(),
        "width": (hi - lo).tolist(),
    }


def one(rng: np.random.Generator, scheme: str, fat_sd: float, pal_sd: float) -> dict[str, Any]:
    every, n_fit, n_out, sd = SCHEMES[scheme]
    sex, age, height, weight = person(rng)
    f0, f1 = float(np.exp(rng.normal(0, 0.03))), float(np.exp(rng.normal(0, 0.06)))
    pal = float(np.clip(rng.normal(1.6, pal_sd), 1.3, 2.2))
    p = params_for(sex, age, height, weight, pal)  # type: ignore[arg-type]
    fat = float(np.clip(p[0, IX["fat_fraction"]] + rng.normal(0.0, fat_sd), 0.05, 0.6))
    p = params_for(sex, age, height, weight, pal, fat_fraction=fat)  # type: ignore[arg-type]
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
    held = [n for n in fit if n != "fat_fraction"]
    variants = {
        "twin": cal,
        "fat held": calibrate(M, data, base=base, fit=held) if held != list(fit) else cal,
    }
    prior = simulate(M, base[None, :], parse_scenario([]), t_end=float(out_t[-1]), times=out_t)
    slope, intercept = np.polyfit(fit_t, fit_y, 1)
    # the what-if: 300 kcal/day less from the last fitted weight, its effect at the end
    at, end = float(fit_t[-1]), float(out_t[-1])
    truth_effect = float(diet_effect(p, at, end)[0])
    out: dict[str, Any] = {
        "fat_fitted": "fat_fraction" in fit,
        "baselines": {
            "last": (fit_y[-1] - out_y).tolist(),
            "prior": (prior.observables["weight_kg"][0, -out_t.size :] - out_y).tolist(),
            "linear": (intercept + slope * out_t - out_y).tolist(),
        },
        "cpu_s": cpu,
        "converged": bool(cal.diagnostics["converged"]),
        "fitted": len(cal.fitted),
        "effective_parameters": float(cal.diagnostics.get("effective_parameters", np.nan)),
        "residual_dof": float(cal.diagnostics.get("residual_dof", np.nan)),
    }
    seed = int(rng.integers(2**31))  # the person's: both variants get the same draws
    for label, c in variants.items():
        e = diet_effect(c.sample(400, seed=seed + 7), at, end)
        lo_e, hi_e = np.quantile(e, [0.05, 0.95])
        out[label] = scored(c, out_t, out_y, seed) | {
            "effect_inside": float(lo_e <= truth_effect <= hi_e),
            "effect_width": float(hi_e - lo_e),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fat-sd", type=float, default=0.041)
    ap.add_argument("--pal-sd", type=float, default=0.15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    report: dict[str, Any] = {}
    for scheme in SCHEMES:
        rng = np.random.default_rng(args.seed)
        runs = [one(rng, scheme, args.fat_sd, args.pal_sd) for _ in range(args.people)]

        def rmse(values: list[list[float]]) -> float:
            return float(np.sqrt(np.mean(np.square(np.concatenate(values)))))

        report[scheme] = {
            "people": args.people,
            "rmse_kg": {
                k: rmse([r["baselines"][k] for r in runs]) for k in ("last", "prior", "linear")
            },
            "median_fit_cpu_s": float(np.median([r["cpu_s"] for r in runs])),
            "converged": int(sum(r["converged"] for r in runs)),
            "fat_fitted": int(sum(r["fat_fitted"] for r in runs)),
            "median_fitted": float(np.median([r["fitted"] for r in runs])),
            "median_effective_parameters": float(
                np.median([r["effective_parameters"] for r in runs])
            ),
            "median_residual_dof": float(np.median([r["residual_dof"] for r in runs])),
        }
        for label in ("twin", "fat held"):
            inside = np.concatenate([r[label]["inside"] for r in runs])
            report[scheme][label] = {
                "rmse_kg": rmse([r[label]["errors"] for r in runs]),
                "coverage_90": float(inside.mean()),
                "coverage_se": float(np.sqrt(inside.mean() * (1 - inside.mean()) / args.people)),
                "mean_band_width_kg": float(
                    np.mean(np.concatenate([r[label]["width"] for r in runs]))
                ),
                "effect_coverage_90": float(np.mean([r[label]["effect_inside"] for r in runs])),
                "effect_width_kg": float(np.mean([r[label]["effect_width"] for r in runs])),
            }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for scheme, r in report.items():
        every, n_fit, n_out, sd = SCHEMES[scheme]
        print(
            f"{scheme}: {r['people']} adults, {n_fit} weights every {every:g} d (SD {sd} kg), "
            f"{n_out} held out; fat fraction fitted in {r['fat_fitted']}; fit median "
            f"{r['median_fit_cpu_s']:.3f} CPU s; converged {r['converged']}/{r['people']}"
        )
        print(
            "  RMSE kg of the baselines: last value {last:.2f}, prior {prior:.2f}, "
            "straight line {linear:.2f}".format(**r["rmse_kg"])
        )
        print(
            f"  median of the fits: {r['median_fitted']:g} parameters fitted, "
            f"{r['median_effective_parameters']:.2f} effective, "
            f"{r['median_residual_dof']:.2f} degrees of freedom left for the reading error"
        )
        for label in ("twin", "fat held"):
            v = r[label]
            print(
                f"  {label}: RMSE {v['rmse_kg']:.2f} kg, 90 % band coverage "
                f"{v['coverage_90']:.3f} (SE ~{v['coverage_se']:.3f}), width "
                f"{v['mean_band_width_kg']:.2f} kg; what-if -300 kcal/day, the truth's effect "
                f"inside the 90 % interval {v['effect_coverage_90']:.3f} (width "
                f"{v['effect_width_kg']:.2f} kg)"
            )


if __name__ == "__main__":
    main()
