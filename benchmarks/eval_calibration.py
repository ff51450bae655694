"""Validation of twin calibration on synthetic patients with a known truth.

For each virtual patient (UVA/Padova presets, their basal glucose, Vmx, kp2 and kabs altered):
two days of CGM with the simglucose sensor noise, three announced meals a day with boluses,
an unannounced snack each day, and insulin sensitivity (Vmx) falling by 25 % on day 2. The
twin is calibrated on day 1 only (default options: nearest preset, 4 starts) and predicts
day 2 from the known events. Reported per patient and in total:

- recovery: fitted / true value of each fitted parameter and |log ratio| / posterior SD;
- day-2 RMSE (mg/dL, against the noisy CGM readings) of the calibrated twin (MAP), of the
  population-prior model (prior medians, steady state at the patient's basal rate) and of the
  "last value" forecast (the last day-1 reading held);
- coverage of the 90 % predictive band (300 posterior samples with the reading noise and, on
  day 2, the day-to-day variability of insulin sensitivity and the unannounced meals estimated
  from day 1) on day 1 and day 2, and its mean width (mg/dL) on each day;
- the share of the readings above and below the band on day 2;
- the unannounced meals the calibration found on day 1 (onsets, grams) next to the true snack,
  and the posterior probability of the hypothesis that they are meals (the bands are the
  Bayesian model average of it and the MAP without them; ``--no-meal-hypothesis``: the MAP
  alone, as before);
- with ``--no-joint`` the meals are searched with the fitted parameters held at the MAP
  (``calibrate(jointly=False)``, before), not re-adjusted to each candidate;
- the sandwich (Newey-West) posterior SD over the Laplace one of each fitted parameter, a check
  of the residual model's uncertainty (``diagnostics["robust_sd_ratio"]``).

    .venv/bin/python benchmarks/eval_calibration.py [--patients 10] [--drift 1] [--no-snack]
        [--si-sd SD] [--day-to-day SD] [--no-unannounced] [--no-meal-hypothesis] [--no-joint]
        [--json]

The validation in docs/models/uva-padova.md: ``--drift 1 --si-sd 0.17 --patients 30``, with
and without ``--no-snack``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np

from medtwin.model import parse_scenario, simulate
from medtwin.physiology import uva_padova as up
from medtwin.twin._uva_padova_fit import basal_egp_mg_per_kg_min, basal_steady_state
from medtwin.twin.calibrate import _prior_median, calibrate
from medtwin.twin.data import PatientData

M = up.UvaPadova2008
NAMES = M.parameter_names()
FIT = ("gb_mg_dl", "vmx_mg_per_kg_min_per_pmol_l", "kp2_per_min", "kabs_per_min")
DAY = 1440.0


def truth_patient(preset: str, seed: int) -> np.ndarray:
    """A preset with basal glucose, Vmx, kp2 and kabs moved at random (steady state solved)."""
    rng = np.random.default_rng(seed)
    p = M.preset(preset).copy()
    egp = basal_egp_mg_per_kg_min(p)
    p[0, NAMES.index("gb_mg_dl")] = rng.uniform(120.0, 165.0)
    for name in FIT[1:]:
        p[0, NAMES.index(name)] *= math.exp(rng.uniform(-0.4, 0.4))
    return basal_steady_state(p, egp)


def day_events(
    day: int, rng: np.random.Generator, carb_ratio: float, snack: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Three meals with boluses (carbs / carb ratio) and, with ``snack``, an unannounced snack
    between 15:00 and 17:00: the events that happen and the events the data record."""
    out: list[dict[str, Any]] = []
    for t, carbs in ((7 * 60, 45.0), (12.5 * 60, 70.0), (19 * 60, 80.0)):
        t_min = day * DAY + t + rng.uniform(-30, 30)
        grams = carbs * rng.uniform(0.8, 1.2)
        out.append({"type": "meal", "t_min": round(t_min), "carbs_g": round(grams)})
        out.append(
            {"type": "bolus", "t_min": round(t_min), "insulin_u": round(grams / carb_ratio, 1)}
        )
    recorded = list(out)
    if snack:  # unannounced: in `out` (what happens), not in `recorded`
        t_snack = day * DAY + 16 * 60 + rng.uniform(-60, 60)
        out.append({"type": "meal", "t_min": round(t_snack), "carbs_g": round(rng.uniform(15, 30))})
    return out, recorded


def make_case(
    preset: str,
    seed: int,
    days: int = 2,
    drift: float = 0.75,
    snack: bool = True,
    si_sd: float = 0.0,
) -> dict[str, Any]:
    """True parameters, the data a twin sees and the true noisy readings over ``days``.

    After day 1, Vmx is multiplied by ``drift``; with ``si_sd`` > 0, Vmx and kp3 are also
    multiplied by exp(si_sd z), z ~ N(0, 1) drawn per patient (a day-to-day change of insulin
    sensitivity of the published size, 0.17)."""
    rng = np.random.default_rng(seed + 1000)
    z = float(np.random.default_rng(seed + 2000).standard_normal())
    p1 = truth_patient(preset, seed)
    rate = float(up.steady_state_basal_u_per_min(p1)[0])
    carb_ratio = 500.0 / (rate * 60 * 24 * 2)  # "rule of 500" with basal = half the daily dose
    basal = {"type": "basal", "t_min": 0, "u_per_min": rate}
    announced: list[dict[str, Any]] = [basal]
    actual: list[dict[str, Any]] = [basal]
    for d in range(days):
        happened, recorded = day_events(d, rng, carb_ratio, snack)
        actual += happened
        announced += recorded
    # day 1 with p1, later days with insulin sensitivity times `drift` (state carried over)
    r1 = simulate(
        M, p1, parse_scenario([e for e in actual if e["t_min"] < DAY]), t_end=DAY, dt_out=5.0
    )
    p2 = p1.copy()
    p2[0, NAMES.index("vmx_mg_per_kg_min_per_pmol_l")] *= drift * math.exp(si_sd * z)
    p2[0, NAMES.index("kp3_mg_per_kg_min_per_pmol_l")] *= math.exp(si_sd * z)
    later = [{**e, "t_min": e["t_min"] - DAY} for e in actual if e["t_min"] >= DAY]
    r2 = simulate(
        M,
        p2,
        parse_scenario([{"type": "basal", "u_per_min": rate}, *later]),
        t_end=(days - 1) * DAY,
        dt_out=5.0,
        x0=r1.states[:, -1, :],
    )
    cgm = np.concatenate([r1.observables["cgm_mg_dl"][0, :-1], r2.observables["cgm_mg_dl"][0]])
    t_all = np.arange(0.0, days * DAY + 1e-9, 5.0)
    cgm = cgm[: t_all.size]
    noisy = np.clip(cgm + up.cgm_noise_mg_dl(t_all, 1, seed=seed, sensor="Dexcom")[0], 39.0, 600.0)
    keep = t_all < days * DAY
    return {
        "truth": p1[0],
        "times": t_all[keep],
        "cgm": noisy[keep],
        "announced": parse_scenario(announced),
        "rate_u_per_min": rate,
        "snack_day1": [
            (e["t_min"], e["carbs_g"])
            for e in actual
            if e["type"] == "meal" and e["t_min"] < DAY and e not in announced
        ],
    }


def evaluate(
    preset: str,
    seed: int,
    samples: int = 300,
    drift: float = 0.75,
    snack: bool = True,
    day_to_day: float | None = None,
    si_sd: float = 0.0,
    noise_model: str = "t",
    unannounced: bool = True,
    find_meals: bool = True,
    hypotheses: bool = True,
    jointly: bool = True,
) -> dict[str, Any]:
    case = make_case(preset, seed, drift=drift, snack=snack, si_sd=si_sd)
    t, y = case["times"], case["cgm"]
    day1 = t < DAY
    data = PatientData(
        {"cgm_mg_dl": (t[day1], y[day1])}, scenario=case["announced"], patient=preset
    )
    data1 = data.window(0.0, DAY - 5.0)
    t0, c0 = time.perf_counter(), time.process_time()
    cal = calibrate(
        M,
        data1,
        seed=seed,
        find_meals=find_meals,
        meal_hypotheses=hypotheses,
        jointly=jointly,
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    day2 = ~day1
    t_end = float(t[-1])
    bands = cal.predict(
        case["announced"],
        t_end,
        n=samples,
        seed=seed,
        times=t,
        day_to_day=day_to_day,
        noise_model=noise_model,
        unannounced=unannounced,
        meal_hypothesis=hypotheses,
    )
    map_pred = simulate(M, cal.params[None, :], case["announced"], t_end=t_end, times=t)
    map_y = map_pred.observables["cgm_mg_dl"][0][np.searchsorted(map_pred.times, t)]
    prior = _prior_median(M)
    prior[NAMES.index("bw_kg")] = case["truth"][NAMES.index("bw_kg")]
    from medtwin.twin._uva_padova_fit import prepare_base

    prior_p = prepare_base(prior, case["announced"])[0]
    prior_y = simulate(M, prior_p, case["announced"], t_end=t_end, times=t).observables[
        "cgm_mg_dl"
    ][0]
    last = np.full(day2.sum(), y[day1][-1])

    def rmse(a: np.ndarray) -> float:
        return float(np.sqrt(np.mean((a - y[day2]) ** 2)))

    sd = cal.log_sd
    recovery = {
        n: {
            "true": float(case["truth"][NAMES.index(n)]),
            "fitted": float(cal.params[NAMES.index(n)]),
            "z": abs(math.log(cal.params[NAMES.index(n)] / case["truth"][NAMES.index(n)])) / sd[n],
        }
        for n in cal.fitted
    }
    return {
        "patient": preset,
        "base": cal.diagnostics["base"],
        "starts_agree": cal.diagnostics["starts_agree"],
        "recovery": recovery,
        "rmse_twin": rmse(map_y[day2]),
        "rmse_band_median": rmse(np.interp(t[day2], bands.times, bands.median)),
        "rmse_prior": rmse(prior_y[day2]),
        "rmse_last": rmse(last),
        "coverage90": bands.coverage(t[day2], y[day2]),
        "coverage90_day1": bands.coverage(t[day1], y[day1]),
        "width90": float(np.mean((bands.upper - bands.lower)[bands.times >= DAY])),
        "width90_day1": float(np.mean((bands.upper - bands.lower)[bands.times < DAY])),
        "meals_found": cal.unannounced.count,
        "meals_g": cal.unannounced.carbs_g.tolist(),
        "meals_t_min": cal.unannounced.times_min.tolist(),
        "snack_day1": case["snack_day1"],
        "meal_weight": 0.0 if cal.meal_hypothesis is None else cal.meal_hypothesis.weight,
        "log_bayes_factor": None
        if cal.meal_hypothesis is None
        else cal.meal_hypothesis.log_bayes_factor,
        "above90": float(np.mean(y[day2] > np.interp(t[day2], bands.times, bands.upper))),
        "below90": float(np.mean(y[day2] < np.interp(t[day2], bands.times, bands.lower))),
        "seconds": wall,
        "cpu_seconds": cpu,
        "robust_sd_ratio": cal.diagnostics["robust_sd_ratio"],
        "noise_scale": cal.noise_scale,
        "tau": cal.autocorrelation_time,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=10)
    ap.add_argument("--drift", type=float, default=0.75, help="day-2 Vmx factor (1: none)")
    ap.add_argument("--no-snack", action="store_true", help="no unannounced snack")
    ap.add_argument(
        "--si-sd",
        type=float,
        default=0.0,
        help="day-2 Vmx and kp3 times exp(SD z), z ~ N(0, 1) per patient (0.17: published)",
    )
    ap.add_argument(
        "--day-to-day",
        type=float,
        default=None,
        help="log SD of the daily insulin-sensitivity factor in the day-2 bands "
        "(default: the model's, 0.17; 0: off)",
    )
    ap.add_argument(
        "--noise-model",
        choices=("empirical", "t"),
        default="t",
        help="reading error in the bands: Student-t (default) or resampled day-1 residuals",
    )
    ap.add_argument(
        "--no-unannounced",
        action="store_true",
        help="bands without the unannounced meals estimated from day 1",
    )
    ap.add_argument(
        "--no-meal-hypothesis",
        action="store_true",
        help="bands from the MAP alone, not averaged with the refit that eats the meals found",
    )
    ap.add_argument(
        "--no-joint",
        action="store_true",
        help="search the unannounced meals in the MAP's residuals with the physiology held "
        "(before: not re-adjusted to each candidate meal)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    presets = M.preset_names()
    chosen = [presets[(3 * i + 2) % len(presets)] for i in range(args.patients)]
    rows = [
        evaluate(
            p,
            seed=i,
            drift=args.drift,
            snack=not args.no_snack,
            day_to_day=args.day_to_day,
            si_sd=args.si_sd,
            noise_model=args.noise_model,
            unannounced=not args.no_unannounced,
            hypotheses=not args.no_meal_hypothesis,
            jointly=not args.no_joint,
        )
        for i, p in enumerate(chosen)
    ]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(
        f"{'patient':16} {'base':26} RMSE day 2: twin  prior  last | cover90 d2  d1 | "
        "fitted/true Gb Vmx kp2 kabs | width d2 | meals found (g) | CPU s"
    )
    for r in rows:
        rec = " ".join(f"{v['fitted'] / v['true']:.2f}" for v in r["recovery"].values())
        print(
            f"{r['patient']:16} {r['base']:26} {r['rmse_twin']:16.1f} {r['rmse_prior']:6.1f} "
            f"{r['rmse_last']:5.1f} | {r['coverage90']:8.2f} {r['coverage90_day1']:4.2f} | "
            f"{rec:27} | {r['width90']:8.1f} | "
            f"{' '.join(f'{g:.0f}' for g in r['meals_g']) or '-':15} | {r['cpu_seconds']:.2f}"
        )
    mean = {
        k: float(np.mean([r[k] for r in rows]))
        for k in (
            "rmse_twin",
            "rmse_prior",
            "rmse_last",
            "coverage90",
            "coverage90_day1",
            "width90",
            "width90_day1",
            "meals_found",
            "cpu_seconds",
            "above90",
            "below90",
            "meal_weight",
            "rmse_band_median",
        )
    }
    z = np.array([v["z"] for r in rows for v in r["recovery"].values()])
    # the case is the unit: each draws one day-2 change of insulin sensitivity, which moves
    # the whole day inside or outside the band, so readings of a day are not independent
    se = float(np.std([r["coverage90"] for r in rows], ddof=1) / math.sqrt(len(rows)))
    print(
        f"mean: RMSE twin {mean['rmse_twin']:.1f}, prior {mean['rmse_prior']:.1f}, last value "
        f"{mean['rmse_last']:.1f} mg/dL; 90% band coverage day 2 {mean['coverage90']:.3f} "
        f"(SE {se:.3f} over the {len(rows)} cases; day 1 {mean['coverage90_day1']:.3f}); "
        f"|log error| / posterior SD: median {np.median(z):.2f}, within 2 SD "
        f"{np.mean(z <= 2):.2f}; CPU {mean['cpu_seconds']:.2f} s"
    )
    print(
        f"mean 90% band width day 2 {mean['width90']:.1f} mg/dL (day 1 {mean['width90_day1']:.1f});"
        f" unannounced meals found on day 1: {mean['meals_found']:.2f} per patient"
    )
    ratio = np.array([list(r["robust_sd_ratio"].values()) for r in rows])
    print(
        f"day 2 above the band {mean['above90']:.3f}, below {mean['below90']:.3f}; "
        f"RMSE of the band median {mean['rmse_band_median']:.1f} mg/dL; mean weight of the "
        f"meal hypothesis {mean['meal_weight']:.2f}; sandwich / Laplace SD, median per "
        f"parameter: {' '.join(f'{v:.2f}' for v in np.median(ratio, axis=0))}"
    )


if __name__ == "__main__":
    main()
