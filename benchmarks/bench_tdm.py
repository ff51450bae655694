"""Therapeutic drug monitoring speed: MAP fit from 2-4 levels and a dose recommendation.

Targets (issue 5): a MAP fit of a two-compartment model from 2-4 levels under 50 ms; a dose
recommendation under 200 ms. Timed for ``vancomycin_goti2018`` (two compartments, three
etas) and ``vancomycin_buelga2005`` (one compartment, two etas): a patient given 1000 mg
every 12 h, levels drawn from the model with residual error; the fit includes the Laplace
covariance and 1000 posterior samples, the recommendation the search over every practical
regimen, PTA over 1000 samples and the exposure bands (median of ``--repeat`` runs, wall
and CPU time).

Run: ``.venv/bin/python benchmarks/bench_tdm.py [--repeat 21]``
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import numpy as np
from _common import machine

from medtwin.pharmacology.antibiotics import get_pop_model
from medtwin.pharmacology.covariates import PatientCovariates
from medtwin.pharmacology.pk import Dose, concentrations
from medtwin.pharmacology.tdm import Level, fit_map
from medtwin.twin.optimise import recommend

PATIENT = {"age_years": 60, "weight_kg": 80, "sex": "female", "creatinine_mg_dl": 1.2}
LEVEL_TIMES = {2: [13.0, 23.5], 3: [2.0, 13.0, 23.5], 4: [2.0, 13.0, 23.5, 35.5]}


def _levels(name: str, n: int, seed: int) -> tuple[list[Dose], list[Level]]:
    pop = get_pop_model(name)
    pt = PatientCovariates.from_dict(PATIENT)
    rng = np.random.default_rng(seed)
    eta = rng.multivariate_normal(np.zeros(len(pop.eta_names)), pop.omega)
    params = pop.individual(pt, eta[None, :])
    doses = [Dose(0.0, 1000.0, 1.0, 12.0, 4)]
    t = np.array(LEVEL_TIMES[n])
    a, lam = pop.modes(params)
    f = concentrations(a, lam, doses, t)[0]
    y = np.maximum(f + rng.normal(0, 1, f.size) * np.sqrt(pop.residual.variance(f)), 0.5)
    return doses, [Level(float(ti), float(yi)) for ti, yi in zip(t, y, strict=True)]


def _time(fn: object, repeat: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()  # type: ignore[operator]
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls) * 1e3, statistics.median(cpus) * 1e3


def _fit_and_recommend(name: str, doses: list[Dose], levels: list[Level]) -> None:
    pop = get_pop_model(name)
    pt = PatientCovariates.from_dict(PATIENT)
    recommend(pop, pt, fit=fit_map(pop, pt, doses, levels), history=doses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    pt = PatientCovariates.from_dict(PATIENT)
    for name in ("vancomycin_goti2018", "vancomycin_buelga2005"):
        pop = get_pop_model(name)
        for n in (2, 3, 4):
            doses, levels = _levels(name, n, seed=n)
            fit_map(pop, pt, doses, levels)  # warm-up
            wall, cpu = _time(functools.partial(fit_map, pop, pt, doses, levels), args.repeat)
            ok = "meets" if wall < 50 else "MISSES"
            print(f"{name}: MAP fit, {n} levels: {wall:.1f} ms wall, {cpu:.1f} ms CPU ({ok} 50 ms)")
        doses, levels = _levels(name, 2, seed=2)
        fit = fit_map(pop, pt, doses, levels)
        rec = functools.partial(recommend, pop, pt, fit=fit, history=doses)
        wall, cpu = _time(rec, args.repeat)
        ok = "meets" if wall < 200 else "MISSES"
        print(
            f"{name}: recommendation after the fit: {wall:.1f} ms wall, {cpu:.1f} ms CPU ({ok} 200 ms)"
        )
        wall, cpu = _time(functools.partial(_fit_and_recommend, name, doses, levels), args.repeat)
        print(f"{name}: fit + recommendation: {wall:.1f} ms wall, {cpu:.1f} ms CPU")


if __name__ == "__main__":
    main()
