"""Bayesian therapeutic drug monitoring: MAP estimates of a patient's etas from measured levels.

The objective is the standard MAP Bayesian one (Sheiner LB, Beal SL. Bayesian
individualization of pharmacokinetics: simple implementation and comparison with
non-Bayesian methods. J Pharm Sci 1982;71(12):1344-1348; the NONMEM POSTHOC objective):

    OFV(eta) = sum_j [ (y_j - f_j(eta))^2 / var_j(eta) + log var_j(eta) ] + eta' Omega^-1 eta

with ``var_j`` the model's residual variance at the prediction ``f_j`` (additive,
proportional or combined). Predictions are the closed forms of :mod:`medtwin.pharmacology.pk`.

A level the laboratory reports as a bound (a gentamicin trough "<0.5 mg/L", below the assay's
limit of quantification; "> 80" above its range) is censored, not a value: its term is
``-2 log P(y < LOQ | eta) = -2 log Phi((LOQ - f_j) / sd_j)`` (``1 - Phi`` above), Beal's M3
method (Beal SL. Ways to fit a PK model with some data below the quantification limit.
J Pharmacokinet Pharmacodyn 2001;28(5):481-504; Ahn JE et al. 2008;35:401-421 found it the
least biased of the methods). Taking the limit as the value instead biases the clearance: a
trough "<0.5" read as 0.5 says the drug is cleared more slowly than it is.
Uncertainty: the Laplace approximation, ``Cov(eta) = 2 H^-1`` with ``H`` the Hessian of
OFV at the mode (OFV is -2 log posterior), and draws of the individual parameters from it.

Whether the levels fit the model's population: under the model each eta is normal with the
source's variance (``eta_k / omega_k`` standard normal) and each level's residual
``(y_j - f_j) / sd_j`` is standard normal. A fit whose standardised eta or residual is beyond
:data:`UNUSUAL_Z` (3: 0.27 % of the model's patients or levels) is reported as unusual; beyond
:data:`OUTSIDE_Z` (4: 1 in 15,800) the patient is outside what the model describes, and
:func:`medtwin.twin.optimise.recommend` recommends nothing: most often a level's value, unit
or time, or the dose record, is wrong (a vancomycin level of 2200 mg/L typed for 22.00 makes
the clearance 5.0 SD and the central volume 6.8 SD below this patient's typical values).

>>> from medtwin.pharmacology.antibiotics import get_pop_model
>>> from medtwin.pharmacology.covariates import PatientCovariates
>>> from medtwin.pharmacology.pk import Dose
>>> pop = get_pop_model("vancomycin_goti2018")
>>> pt = PatientCovariates.from_dict({"age_years": 50, "weight_kg": 70, "sex": "male",
...     "creatinine_mg_dl": 1.0})
>>> fit = fit_map(pop, pt, [Dose(0, 1000, 1, 12, 4)], [Level(13, 30.0), Level(24, 15.0)])
>>> fit.params["cl_l_per_h"] < 3.495  # levels above the typical prediction: lower clearance
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_ndtr

from medtwin.model.base import FloatArray, ModelError
from medtwin.pharmacology.antibiotics import PopPKModel
from medtwin.pharmacology.covariates import PatientCovariates
from medtwin.pharmacology.pk import Dose, concentrations, first_dose_h

__all__ = [
    "CENSORED",
    "OUTSIDE_Z",
    "UNUSUAL_Z",
    "Level",
    "MapFit",
    "TdmError",
    "eta_findings",
    "fit_map",
    "objective",
]


class TdmError(ModelError):
    """Measured levels that cannot be used (before the first dose, negative, not finite)."""


UNUSUAL_Z = 3.0
"""A fitted eta or a level's residual this many SD from the model's (0.27 % two-sided of a
normal): the fit is reported as unusual."""

OUTSIDE_Z = 4.0
"""This many SD (6.3e-5 two-sided, 1 in 15,800): the patient or the level is outside what the
model describes, and no regimen is recommended from the fit."""

CENSORED = ("below", "above")
"""How a level may be a bound: below the limit ``conc_mg_l`` ("<0.5") or above it ("> 80")."""


@dataclass(frozen=True)
class Level:
    """A measured drug level: ``conc_mg_l`` at ``t_h`` (h on the dosing clock); with
    ``censored`` ``"below"`` or ``"above"``, only a bound: the level is below (above) the
    limit ``conc_mg_l`` (fitted by the M3 method, see the module)."""

    t_h: float
    conc_mg_l: float
    censored: str | None = None


def eta_findings(
    names: Sequence[str],
    eta_z: FloatArray,
    params: Mapping[str, float],
    typical: Mapping[str, float],
    beyond: float,
) -> list[str]:
    """Each eta more than ``beyond`` SD of the population from 0, as its parameter against the
    patient's typical value ("cl_l_per_h 0.478 is 5.0 SD below the typical 3.5 for this
    patient")."""
    return [
        f"{name} {params[name]:.3g} is {abs(z):.1f} SD {'below' if z < 0 else 'above'} the "
        f"typical {typical[name]:.3g} for this patient"
        for name, z in zip(names, eta_z, strict=True)
        if abs(z) > beyond
    ]


@dataclass(frozen=True)
class MapFit:
    """A MAP fit: ``etas`` ``[E]``, individual ``params`` (name -> value), the Laplace
    covariance of the etas ``cov`` ``[E, E]``, the objective at the mode and posterior
    ``samples`` of the individual parameters ``[S, P]`` (row 0 is not special)."""

    model: str
    etas: FloatArray
    eta_names: tuple[str, ...]
    params: dict[str, float]
    param_array: FloatArray
    cov: FloatArray
    ofv: float
    samples: FloatArray
    predictions: FloatArray
    levels: tuple[Level, ...]
    typical: FloatArray
    eta_z: FloatArray
    """Each eta over its population SD (``sqrt(Omega_kk)``): standard normal under the model."""
    residual_z: FloatArray
    """Each level's ``(y - f) / sd`` at the fit (the model's residual error); NaN for a bound."""

    def findings(self, beyond: float = UNUSUAL_Z) -> list[str]:
        """What lies more than ``beyond`` SD from the model: each eta (as its parameter against
        the patient's typical value) and each level the fit cannot reproduce."""
        names = list(self.params)
        typical = {n: float(v) for n, v in zip(names, self.typical, strict=True)}
        out = eta_findings(self.eta_names, self.eta_z, self.params, typical, beyond)
        for level, pred, z in zip(self.levels, self.predictions, self.residual_z, strict=True):
            if math.isfinite(z) and abs(z) > beyond:
                out.append(
                    f"the level of {level.conc_mg_l:g} mg/L at {level.t_h:g} h is {abs(z):.1f} "
                    f"residual SD from the fit's {pred:.3g} mg/L"
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for ``medtwin dose fit --json``)."""
        sd = np.sqrt(np.diag(self.cov))
        q = np.percentile(self.samples, [5, 50, 95], axis=0)
        names = list(self.params)
        return {
            "model": self.model,
            "etas": dict(zip(self.eta_names, self.etas.tolist(), strict=True)),
            "eta_sd": dict(zip(self.eta_names, sd.tolist(), strict=True)),
            "eta_covariance": self.cov.tolist(),
            "params": self.params,
            "typical_params": dict(zip(names, self.typical.tolist(), strict=True)),
            "params_band_5_50_95": {n: q[:, i].tolist() for i, n in enumerate(names)},
            "objective": self.ofv,
            "eta_z": dict(zip(self.eta_names, self.eta_z.tolist(), strict=True)),
            "levels": [
                {
                    "t_h": lv.t_h,
                    "conc_mg_l": lv.conc_mg_l,
                    **({"censored": lv.censored} if lv.censored else {}),
                    "pred_mg_l": float(p),
                    "residual_z": float(z) if math.isfinite(z) else None,
                }
                for lv, p, z in zip(self.levels, self.predictions, self.residual_z, strict=True)
            ],
            "unusual": self.findings(UNUSUAL_Z),
            "outside_population": self.findings(OUTSIDE_Z),
        }


def _check_levels(doses: Sequence[Dose], levels: Sequence[Level]) -> None:
    if not doses:
        raise TdmError("no doses: a level cannot be interpreted without the dosing history")
    if not levels:
        raise TdmError("no levels to fit")
    first = first_dose_h(doses)
    steady = any(d.steady_state and d.t_h == first for d in doses)
    for i, lv in enumerate(levels):
        if not (math.isfinite(lv.t_h) and math.isfinite(lv.conc_mg_l)):
            raise TdmError(f"level {i}: t_h and conc_mg_l must be finite numbers")
        if lv.conc_mg_l < 0:
            raise TdmError(f"level {i}: conc_mg_l must be >= 0, got {lv.conc_mg_l:g}")
        if lv.censored not in (None, *CENSORED):
            raise TdmError(f"level {i}: censored must be 'below' or 'above', got {lv.censored!r}")
        if lv.censored == "below" and lv.conc_mg_l <= 0:
            raise TdmError(f"level {i}: a limit of quantification must be > 0")
        if lv.t_h <= first and not steady:
            raise TdmError(
                f"level {i}: t_h = {lv.t_h:g} h is not after the first dose ({first:g} h)"
            )


def objective(
    pop: PopPKModel,
    typ: FloatArray,
    doses: Sequence[Dose],
    levels: Sequence[Level],
    etas: FloatArray,
) -> FloatArray:
    """The MAP objective for etas ``[N, E]`` (``[N]``)."""
    e = np.atleast_2d(etas)
    params = pop.from_typical(typ, e)
    a, lam = pop.modes(params)
    t = np.array([lv.t_h for lv in levels])
    y = np.array([lv.conc_mg_l for lv in levels])
    f = concentrations(a, lam, doses, t)
    var = pop.residual.variance(f)
    below = np.array([lv.censored == "below" for lv in levels])
    above = np.array([lv.censored == "above" for lv in levels])
    exact = ~(below | above)
    ll = ((y[None, :] - f) ** 2 / var + np.log(var))[:, exact].sum(axis=1)
    if not exact.all():  # Beal's M3: the probability of the bound, -2 log Phi
        z = (y[None, :] - f) / np.sqrt(var)
        ll = ll - 2.0 * log_ndtr(z[:, below]).sum(axis=1) - 2.0 * log_ndtr(-z[:, above]).sum(axis=1)
    prior = np.einsum("ni,ij,nj->n", e, np.linalg.inv(pop.omega), e)
    return np.asarray(ll + prior, dtype=np.float64)


def _hessian(fun: Any, x: FloatArray, h: float = 1e-3) -> FloatArray:
    """Central finite-difference Hessian, all points in one batched call."""
    k = x.size
    pts = [x]
    idx = []
    for i in range(k):
        for j in range(i, k):
            for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                p = x.copy()
                p[i] += si * h
                p[j] += sj * h
                pts.append(p)
            idx.append((i, j))
    vals = fun(np.array(pts))
    hess = np.zeros((k, k))
    for n, (i, j) in enumerate(idx):
        v = vals[1 + 4 * n : 5 + 4 * n]
        hess[i, j] = hess[j, i] = (v[0] - v[1] - v[2] + v[3]) / (4 * h * h)
    return hess


def fit_map(
    pop: PopPKModel,
    patient: PatientCovariates,
    doses: Sequence[Dose],
    levels: Sequence[Level],
    *,
    n_samples: int = 1000,
    seed: int = 0,
) -> MapFit:
    """MAP estimate of the etas from ``levels`` (see the module docstring)."""
    _check_levels(doses, levels)
    typ = pop.typical(patient)
    e0 = np.zeros(len(pop.eta_names))

    def f(x: FloatArray) -> float:
        return float(objective(pop, typ, doses, levels, x)[0])

    res = minimize(f, e0, method="BFGS", options={"gtol": 1e-6})
    eta = np.asarray(res.x, dtype=np.float64)
    hess = _hessian(lambda x: objective(pop, typ, doses, levels, x), eta)
    try:
        cov = 2.0 * np.linalg.inv(hess)
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        cov = 2.0 * np.asarray(res.hess_inv)
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(eta, cov, size=n_samples, method="cholesky")
    samples = pop.from_typical(typ, draws)
    params = pop.from_typical(typ, eta)
    a, lam = pop.modes(params)
    pred = concentrations(a, lam, doses, np.array([lv.t_h for lv in levels]))[0]
    names = pop.model.parameter_names()
    y = np.array([lv.conc_mg_l for lv in levels])
    residual_z = (y - pred) / np.sqrt(pop.residual.variance(pred))
    residual_z[[lv.censored is not None for lv in levels]] = np.nan
    return MapFit(
        model=pop.name,
        etas=eta,
        eta_names=pop.eta_names,
        params={n: float(v) for n, v in zip(names, params[0], strict=True)},
        param_array=params[0],
        cov=np.asarray(cov, dtype=np.float64),
        ofv=float(res.fun),
        samples=samples,
        predictions=pred,
        levels=tuple(levels),
        typical=typ,
        eta_z=eta / np.sqrt(np.diag(pop.omega)),
        residual_z=np.asarray(residual_z, dtype=np.float64),
    )
