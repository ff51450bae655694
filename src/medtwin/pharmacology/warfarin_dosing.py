"""Warfarin dosing cases: INR simulation and the Bayesian (MAP) fit of ``warfarin_hamberg2007``.

The warfarin counterpart of :mod:`medtwin.pharmacology.case` and :mod:`~medtwin.pharmacology.tdm`
for ``medtwin dose simulate|fit|recommend`` (the IV antibiotic cases use closed-form PK; this
model is an ODE system, :mod:`medtwin.pharmacology.warfarin`). The case format::

    {"model": "warfarin_hamberg2007",
     "patient": {"age_years": 67, "cyp2c9": "*1/*2", "vkorc1_1639": "GA", "base_inr": 1.0,
                 "weight_kg": 80, "height_cm": 175, "race": "white"},
     "events": [{"type": "oral", "t_h": 0, "amount_mg": 5, "every_h": 24, "count": 7}],
     "observations": [{"t_h": 62, "inr": 1.3}, {"t_h": 110, "inr": 1.8}],
     "target": {"inr": [2, 3]},
     "allergies": []}

``cyp2c9`` and ``vkorc1_1639`` are the covariates of Hamberg 2007 (Tables 2 and 4). A missing
genotype is **refused**, never read as wild type: the model has no "unknown genotype" category,
and integrating over genotype frequencies would need the patient's ancestry-specific allele
frequencies, which this model does not cite. ``base_inr`` is the pre-treatment INR (Hamberg
2007 Methods: BASE, the patient's measured baseline; 1.0 when not given, as Ravvaz 2017).
``weight_kg``, ``height_cm``, ``race``, ``enzyme_inducer`` and ``amiodarone`` are only used
by the IWPC starting dose (:mod:`medtwin.risk.iwpc_warfarin`). ``t0`` and ``now_h``
(optional) are the clock time of hour 0 and the time of the recommendation, as in
:mod:`medtwin.pharmacology.case`: a next dose due before ``now_h`` starts at ``now_h``.

**Fit** (:func:`fit_inr`): MAP estimates of the interindividual random effects (etas) on CL,
V1, V2, EC50, MTT1 and MTT2 (Hamberg 2007 Tables 2 and 4, log-normal, variances omega^2) from
the measured INRs, the standard MAP Bayesian objective (Sheiner LB, Beal SL. J Pharm Sci
1982;71:1344-1348)::

    OFV(eta) = sum_j (log y_j - log f_j(eta))^2 / s_j^2 + eta' Omega^-1 eta

with the exponential INR residual error of Table 4 (SD 0.0325 on the log scale) plus the
rounding of the reported INR to 0.1 (a uniform error of variance 0.1^2 / 12, Sheppard's
correction; medtwin's addition, as laboratories report the INR to one decimal):
``s_j^2 = 0.0325^2 + (0.1^2 / 12) / y_j^2``. Gauss-Newton (``scipy.optimize.least_squares``)
on the stacked residuals, Jacobians from one batched simulation per step, from four starts of
the MTT2 eta (:data:`MTT2_STARTS`): with two weeks of INRs a slow rise to a high INR and an
early plateau can both fit, so the posterior may have two modes. Uncertainty: sampling
importance resampling (Rubin DB. Using the SIR algorithm to simulate posterior
distributions. Bayesian Statistics 3, 1988:395-402; Dosne AG, Bergstrand M, Harling K,
Karlsson MO. J Pharmacokinet Pharmacodyn 2016;43:583-596): proposals from the Laplace
approximation ``Cov(eta) = (J' J)^-1`` at each mode (covariance doubled) and from the prior
(:data:`PRIOR_SHARE`), weighted by posterior / proposal density, resampled.

Times are hours from the first dose (the case's clock).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medtwin.model.base import FloatArray
from medtwin.pharmacology.case import CASE_KEYS, CaseError
from medtwin.pharmacology.tdm import OUTSIDE_Z, UNUSUAL_Z, TdmError, eta_findings

__all__ = [
    "INR_RESOLUTION",
    "MODEL",
    "WarfarinCase",
    "WarfarinFit",
    "check_after_dose_h",
    "daily_course",
    "fit_inr",
    "fit_warfarin_case",
    "parse_warfarin_case",
    "prior_samples",
    "simulate_inr",
    "simulate_warfarin_case",
    "steady_state_inr",
]

MODEL = "warfarin_hamberg2007"
INR_RESOLUTION = 0.1
"""INRs are reported to one decimal place; rounding adds a uniform error of variance 0.1^2/12."""
_PATIENT_KEYS = {
    "age_years",
    "cyp2c9",
    "vkorc1_1639",
    "base_inr",
    "weight_kg",
    "height_cm",
    "race",
    "enzyme_inducer",
    "amiodarone",
}


@dataclass(frozen=True)
class WarfarinCase:
    """A warfarin dosing case (see the module docstring).

    ``doses``: ``(t_h, amount_mg)`` of racemic warfarin; ``inrs``: ``(t_h, INR)``;
    ``genotype_note``: why a genotype is missing (from the record reader); ``iwpc``: the extra
    inputs of the IWPC algorithm; ``t0``: the clock time of hour 0 (ISO 8601) when known;
    ``now_h``: the time of the recommendation in hours from ``t0`` (a next dose due before
    it starts then, not in the past); ``provenance``: where the record reader found each
    covariate.
    """

    age_years: float
    cyp2c9: str | None
    vkorc1_1639: str | None
    base_inr: float | None = None
    doses: tuple[tuple[float, float], ...] = ()
    inrs: tuple[tuple[float, float], ...] = ()
    allergies: tuple[str, ...] = ()
    target: Mapping[str, Any] | None = None
    times_h: tuple[float, ...] | None = None
    iwpc: Mapping[str, Any] = field(default_factory=dict)
    genotype_note: str = ""
    t0: str | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    now_h: float | None = None

    def typical(self, action: str = "fit") -> FloatArray:
        """The typical parameters ``[1, P]`` of this patient (Hamberg 2007 Tables 2, 4).

        Raises :class:`CaseError` naming a missing genotype ("cannot fit: CYP2C9 genotype
        missing") and the model's errors for an age outside 18-95 years.
        """
        from medtwin.pharmacology.warfarin import params_for

        for gene, value in (("CYP2C9", self.cyp2c9), ("VKORC1 -1639G>A", self.vkorc1_1639)):
            if value is None:
                note = f" ({self.genotype_note})" if self.genotype_note else ""
                raise CaseError(
                    f"cannot {action}: {gene} genotype missing{note}; warfarin_hamberg2007 "
                    "has genotype covariates and medtwin does not assume the wild type"
                )
        assert self.cyp2c9 is not None and self.vkorc1_1639 is not None
        return params_for(self.age_years, self.cyp2c9, self.vkorc1_1639, base_inr=self.base_inr)

    def covariates(self) -> dict[str, Any]:
        """The model's covariates as plain data."""
        return {
            "age_years": self.age_years,
            "cyp2c9": self.cyp2c9,
            "vkorc1_1639": self.vkorc1_1639,
            "base_inr": self.base_inr,
            **dict(self.iwpc),
        }


def _number(where: str, value: Any, *, low: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CaseError(f"{where}: must be a number, got {value!r}")
    if low is not None and value <= low:
        raise CaseError(f"{where}: must be > {low:g}, got {value!r}")
    return float(value)


def parse_warfarin_case(raw: Any) -> WarfarinCase:
    """Validate a warfarin case (see the module docstring); errors name the key."""
    from medtwin.model.events import parse_scenario
    from medtwin.pharmacology.case import parse_clock
    from medtwin.pharmacology.warfarin import dose_times_h

    if not isinstance(raw, Mapping):
        raise CaseError("case: must be a JSON object")
    unknown = sorted(set(raw) - CASE_KEYS)
    if unknown:
        raise CaseError(f"case: unknown key {unknown[0]!r} (known: {', '.join(sorted(CASE_KEYS))})")
    if raw.get("model") != MODEL:
        raise CaseError(f"case: 'model' must be {MODEL!r} for a warfarin case")
    pt = raw.get("patient")
    if not isinstance(pt, Mapping):
        raise CaseError("case: missing key 'patient' (an object)")
    bad = sorted(set(pt) - _PATIENT_KEYS)
    if bad:
        raise CaseError(
            f"patient: unknown field {bad[0]!r} (known: {', '.join(sorted(_PATIENT_KEYS))})"
        )
    if "age_years" not in pt:
        raise CaseError("patient: missing field 'age_years'")
    age = _number("patient.age_years", pt["age_years"])
    genes: dict[str, str | None] = {}
    for key in ("cyp2c9", "vkorc1_1639"):
        value = pt.get(key)
        if value is not None and not isinstance(value, str):
            raise CaseError(f"patient.{key}: must be a text such as '*1/*2' or 'GA'")
        genes[key] = value
    base = pt.get("base_inr")
    base_inr = None if base is None else _number("patient.base_inr", base, low=0.0)
    iwpc: dict[str, Any] = {}
    for key in ("weight_kg", "height_cm"):
        if pt.get(key) is not None:
            iwpc[key] = _number(f"patient.{key}", pt[key], low=0.0)
    if pt.get("race") is not None:
        if not isinstance(pt["race"], str):
            raise CaseError("patient.race: must be a text (white, asian, black, mixed_or_missing)")
        iwpc["race"] = pt["race"]
    for key in ("enzyme_inducer", "amiodarone"):
        if pt.get(key) is not None:
            if not isinstance(pt[key], bool):
                raise CaseError(f"patient.{key}: must be true or false")
            iwpc[key] = pt[key]
    events = raw.get("events", [])
    if not isinstance(events, list):
        raise CaseError("case: 'events' must be a list")
    events = [
        {**e, "drug": e.get("drug", "warfarin")} if isinstance(e, Mapping) else e for e in events
    ]
    doses = tuple(sorted(dose_times_h(parse_scenario(events).events)))
    obs = raw.get("observations", [])
    if not isinstance(obs, list):
        raise CaseError("case: 'observations' must be a list")
    inrs = []
    for i, o in enumerate(obs):
        if not isinstance(o, Mapping) or set(o) != {"t_h", "inr"}:
            raise CaseError(f"observation {i}: must be an object with 't_h' and 'inr'")
        inrs.append(
            (
                _number(f"observation {i}.t_h", o["t_h"]),
                _number(f"observation {i}.inr", o["inr"], low=0.0),
            )
        )
    times = raw.get("times_h")
    times_h = None
    if times is not None:
        if not isinstance(times, list) or not times:
            raise CaseError("case: 'times_h' must be a non-empty list of numbers >= 0")
        times_h = tuple(_number(f"times_h[{i}]", t, low=None) for i, t in enumerate(times))
        if min(times_h) < 0:
            raise CaseError("case: 'times_h' must be a non-empty list of numbers >= 0")
    allergies = raw.get("allergies", [])
    if not isinstance(allergies, list) or not all(isinstance(a, str) for a in allergies):
        raise CaseError("case: 'allergies' must be a list of texts")
    target = raw.get("target")
    if target is not None and not isinstance(target, Mapping):
        raise CaseError("case: 'target' must be a JSON object")
    t0, now_h = parse_clock(raw)
    return WarfarinCase(
        age_years=age,
        cyp2c9=genes["cyp2c9"],
        vkorc1_1639=genes["vkorc1_1639"],
        base_inr=base_inr,
        doses=doses,
        inrs=tuple(sorted(inrs)),
        allergies=tuple(allergies),
        target=target,
        times_h=times_h,
        iwpc=iwpc,
        t0=t0,
        now_h=now_h,
    )


# ------------------------------------------------------------------------------ simulation
def _scenario(doses: Sequence[tuple[float, float]]) -> Any:
    from medtwin.model.events import parse_scenario

    return parse_scenario(
        [{"type": "oral", "drug": "warfarin", "t_h": t, "amount_mg": a} for t, a in doses]
    )


def simulate_inr(
    params: FloatArray,
    doses: Sequence[tuple[float, float]],
    times_h: Sequence[float] | FloatArray,
    *,
    x0: FloatArray | None = None,
    rtol: float | None = None,
) -> tuple[FloatArray, FloatArray]:
    """INR ``[N, T]`` at ``times_h`` (> 0) and the states ``[N, S]`` at the last time, for
    params ``[N, P]`` and ``doses`` given to every row (one batched simulation)."""
    from medtwin.model.solver import simulate
    from medtwin.pharmacology.warfarin import WarfarinHamberg2007

    t = np.asarray(times_h, dtype=np.float64)
    t_end = float(t.max())
    r = simulate(
        WarfarinHamberg2007,
        params,
        _scenario([d for d in doses if d[0] <= t_end]),
        t_end=t_end,
        times=t,
        x0=x0,
        rtol=rtol,
    )
    idx = np.searchsorted(np.asarray(r.times), t)
    inr = np.asarray(r.observables["inr"], dtype=np.float64)[:, idx]
    return inr, np.asarray(r.states[:, -1, :], dtype=np.float64)


def _one_day(
    params: FloatArray, x: FloatArray, amounts_mg: FloatArray, after_dose_h: float
) -> tuple[FloatArray, FloatArray]:
    """One 24 h dosing interval from states ``x`` just before a dose of ``amounts_mg`` (one
    per row): the INR ``after_dose_h`` after the dose and the states 24 h after it. The dose
    is put in the depot at the start (a dose is a jump into the depot: the model's own
    dosing), so each row may have its own amount in one batched simulation."""
    from medtwin.model.events import Scenario
    from medtwin.model.solver import simulate
    from medtwin.pharmacology.warfarin import SFRAC, WarfarinHamberg2007

    start = np.array(x, dtype=np.float64)
    start[:, 0] += params[:, SFRAC] * amounts_mg
    times = sorted({after_dose_h, 24.0} - {0.0})
    r = simulate(WarfarinHamberg2007, params, Scenario(()), t_end=24.0, times=times, x0=start)
    rt = np.asarray(r.times)
    inr = np.asarray(r.observables["inr"], dtype=np.float64)
    at = int(np.searchsorted(rt, after_dose_h))
    return inr[:, at], np.asarray(r.states[:, -1, :], dtype=np.float64)


def daily_course(
    params: FloatArray,
    x0: FloatArray,
    amounts_mg: FloatArray,
    days: int,
    after_dose_h: float = 14.0,
) -> tuple[FloatArray, FloatArray]:
    """``days`` days of one dose a day, a different amount per row (``amounts_mg`` ``[N]``),
    from states ``x0`` ``[N, S]`` just before the first dose: the INR ``after_dose_h`` after
    each day's dose ``[N, days]`` and the states ``[N, S]`` just before the next dose."""
    x = np.asarray(x0, dtype=np.float64)
    out = np.empty((x.shape[0], days))
    for d in range(days):
        out[:, d], x = _one_day(params, x, np.asarray(amounts_mg, dtype=np.float64), after_dose_h)
    return out, x


def steady_state_inr(
    params: FloatArray, amounts_mg: FloatArray | float, after_dose_h: float = 14.0
) -> FloatArray:
    """INR ``[N]`` ``after_dose_h`` after a daily dose at the periodic steady state of
    ``amounts_mg`` a day (one amount per row or one for all), from
    :func:`~medtwin.pharmacology.warfarin.steady_state_x0`."""
    from medtwin.pharmacology.warfarin import steady_state_x0

    n = params.shape[0]
    amounts = np.broadcast_to(np.asarray(amounts_mg, dtype=np.float64), (n,)).copy()
    x0 = steady_state_x0(params, amounts, 24.0)
    return _one_day(params, x0, amounts, after_dose_h)[0]


def _check_inrs(case: WarfarinCase) -> None:
    if not case.doses:
        raise TdmError("no warfarin doses: an INR cannot be interpreted without the dosing history")
    if not case.inrs:
        raise TdmError("no INR results to fit")
    first = case.doses[0][0]
    for i, (t, _) in enumerate(case.inrs):
        if t <= first:
            raise TdmError(
                f"INR {i}: t_h = {t:g} h is not after the first dose ({first:g} h); a "
                "pre-treatment INR is the patient's baseline: give it as patient.base_inr"
            )


DEFAULT_CHECK_AFTER_DOSE_H = 14.0
"""An evening dose and a morning INR check (18:00 -> 08:00); medtwin's assumption when the
patient has no INR yet (the synthetic courses use this schedule)."""


def check_after_dose_h(case: WarfarinCase) -> float:
    """Hours between a dose and the INR check: those of the patient's latest INR after the
    dose before it (when under 24 h), else :data:`DEFAULT_CHECK_AFTER_DOSE_H`. INRs swing
    within a day in patients with a small V1, so predictions are made at that time of day."""
    if case.inrs and case.doses:
        t = case.inrs[-1][0]
        before = [d for d, _ in case.doses if d < t]
        if before and 0.0 < t - before[-1] < 24.0:
            return float(t - before[-1])
    return DEFAULT_CHECK_AFTER_DOSE_H


def _default_times(case: WarfarinCase) -> FloatArray:
    if case.times_h is not None:
        return np.array(sorted(set(case.times_h) - {0.0}) or [24.0])
    last = max((t for t, _ in case.doses), default=0.0)
    last = max(last, max((t for t, _ in case.inrs), default=0.0))
    return np.arange(24.0, last + 7 * 24.0 + 1e-9, 24.0)


def simulate_warfarin_case(case: WarfarinCase) -> dict[str, Any]:
    """The typical patient's INR and S-warfarin concentration at ``times_h`` (default: daily
    to 7 days after the last dose or INR), and the steady-state INR of the last dose given
    every 24 h."""
    from medtwin.model.solver import simulate
    from medtwin.pharmacology.warfarin import PARAMETERS, WarfarinHamberg2007

    typ = case.typical("simulate")
    if not case.doses:
        raise CaseError("cannot simulate: no warfarin doses (events)")
    t = _default_times(case)
    r = simulate(
        WarfarinHamberg2007,
        typ,
        _scenario([d for d in case.doses if d[0] <= t.max()]),
        t_end=float(t.max()),
        times=t,
    )
    idx = np.searchsorted(np.asarray(r.times), t)
    last = case.doses[-1][1]
    return {
        "model": MODEL,
        "covariates": case.covariates(),
        "params": {p.name: float(v) for p, v in zip(PARAMETERS, typ[0], strict=True)},
        "times_h": t.tolist(),
        "inr": np.asarray(r.observables["inr"])[0, idx].tolist(),
        "s_warfarin_conc_mg_l": np.asarray(r.observables["s_warfarin_conc_mg_l"])[0, idx].tolist(),
        "steady_state_inr_of_last_dose": float(
            steady_state_inr(typ, last, check_after_dose_h(case))[0]
        ),
        "last_dose_mg": last,
        "inr_after_dose_h": check_after_dose_h(case),
    }


# ------------------------------------------------------------------------------ MAP fit
@dataclass(frozen=True)
class WarfarinFit:
    """A MAP fit to INRs: ``etas`` ``[E]`` (names ``eta_names``) at the best mode, their
    Laplace covariance there (``cov``), the individual ``params`` ``[1, P]``, posterior
    ``samples`` ``[S, P]`` (importance-resampled, effective sample size ``ess``), the
    objective and the predicted INR at each measured one."""

    etas: FloatArray
    eta_names: tuple[str, ...]
    cov: FloatArray
    params: FloatArray
    typical: FloatArray
    samples: FloatArray
    ofv: float
    predictions: FloatArray
    inrs: tuple[tuple[float, float], ...]
    ess: float = 0.0
    eta_z: FloatArray | None = None
    """Each eta over its population SD (Hamberg 2007's omega): standard normal under the model
    (:data:`medtwin.pharmacology.tdm.UNUSUAL_Z`, ``OUTSIDE_Z``)."""

    def findings(self, beyond: float) -> list[str]:
        """The etas more than ``beyond`` SD from the population's (the INRs' residuals are not
        read: Hamberg's INR error, 3 %, is smaller than a real patient's day-to-day INR
        variation, so they would flag most real courses)."""
        if self.eta_z is None:
            return []
        from medtwin.pharmacology.warfarin import PARAMETERS

        names = [p.name for p in PARAMETERS]
        params = dict(zip(names, self.params[0].tolist(), strict=True))
        typical = dict(zip(names, self.typical[0].tolist(), strict=True))
        return eta_findings(self.eta_names, self.eta_z, params, typical, beyond)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for ``medtwin dose fit --json``)."""
        from medtwin.pharmacology.warfarin import PARAMETERS

        names = [p.name for p in PARAMETERS]
        q = np.percentile(self.samples, [5, 50, 95], axis=0)
        z = self.eta_z.tolist() if self.eta_z is not None else [None] * len(self.eta_names)
        return {
            "eta_z": dict(zip(self.eta_names, z, strict=True)),
            "unusual": self.findings(UNUSUAL_Z),
            "outside_population": self.findings(OUTSIDE_Z),
            "model": MODEL,
            "etas": dict(zip(self.eta_names, self.etas.tolist(), strict=True)),
            "eta_sd": dict(zip(self.eta_names, np.sqrt(np.diag(self.cov)).tolist(), strict=True)),
            "eta_covariance": self.cov.tolist(),
            "params": dict(zip(names, self.params[0].tolist(), strict=True)),
            "typical_params": dict(zip(names, self.typical[0].tolist(), strict=True)),
            "params_band_5_50_95": {
                n: q[:, i].tolist() for i, n in enumerate(names) if n in self.eta_names
            },
            "objective": self.ofv,
            "samples": int(self.samples.shape[0]),
            "importance_ess": self.ess,
            "inrs": [
                {"t_h": t, "inr": y, "pred_inr": float(p)}
                for (t, y), p in zip(self.inrs, self.predictions, strict=True)
            ],
        }


def _etas_to_params(typ: FloatArray, idx: list[int], etas: FloatArray) -> FloatArray:
    from medtwin.pharmacology.warfarin import WarfarinHamberg2007

    out = np.repeat(typ, etas.shape[0], axis=0)
    out[:, idx] *= np.exp(etas)
    return np.clip(out, WarfarinHamberg2007.lower_bounds(), WarfarinHamberg2007.upper_bounds())


def prior_samples(typ: FloatArray, n: int, *, seed: int = 0) -> FloatArray:
    """``n`` draws ``[n, P]`` of a patient's parameters from the population prior: typical
    values times ``exp(eta)``, ``eta ~ N(0, omega^2)`` (Hamberg 2007 Tables 2, 4)."""
    from medtwin.pharmacology.warfarin import _ETA, _OMEGA, _P, _meta

    var = _meta()["variability"]
    sd = np.sqrt(np.array([var[o] for o in _OMEGA]))
    rng = np.random.default_rng(seed)
    return _etas_to_params(typ, [_P[x] for x in _ETA], rng.normal(0.0, 1.0, (n, sd.size)) * sd)


MTT2_STARTS = (0.0, -1.5, 1.5, 2.5)
"""Starts of the MAP search: MTT2 eta in omega units (the other etas start at 0)."""
SIR_PROPOSALS = 3000
SIR_MIN_ESS = 50.0
"""Importance-sampling rounds of :data:`SIR_PROPOSALS` continue until this effective sample
size ..."""
SIR_MAX_ROUNDS = 4
"""... or this many rounds (the fit reports the effective sample size it reached)."""
PRIOR_SHARE = 0.2
"""Share of the importance-sampling proposals drawn from the prior (covers modes the search
missed)."""


def _sir_round(
    case: WarfarinCase,
    typ: FloatArray,
    idx: list[int],
    t: FloatArray,
    y: FloatArray,
    sd: FloatArray,
    omega_sd: FloatArray,
    comps: list[tuple[FloatArray, FloatArray]],
    share: FloatArray,
    m: int,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray]:
    """``m`` proposals from the mixture ``comps`` and their log importance weights."""
    k = len(idx)
    which = rng.choice(len(comps), size=m, p=share)
    proposals = np.empty((m, k))
    for j, (mean, cv) in enumerate(comps):
        sel = which == j
        proposals[sel] = rng.multivariate_normal(mean, cv, size=int(sel.sum()), method="cholesky")
    f, _ = simulate_inr(_etas_to_params(typ, idx, proposals), case.doses, t, rtol=1e-6)
    ofv = (((np.log(y)[None, :] - np.log(f)) / sd[None, :]) ** 2).sum(axis=1)
    ofv += ((proposals / omega_sd[None, :]) ** 2).sum(axis=1)
    log_q = np.empty((len(comps), m))
    for j, (mean, cv) in enumerate(comps):
        dev = proposals - mean
        _, logdet = np.linalg.slogdet(cv)
        log_q[j] = (
            math.log(share[j])
            - 0.5 * np.einsum("ni,ij,nj->n", dev, np.linalg.inv(cv), dev)
            - 0.5 * logdet
        )
    top = log_q.max(axis=0)
    log_w = -0.5 * ofv - (top + np.log(np.exp(log_q - top).sum(axis=0)))
    return proposals, log_w


def fit_inr(case: WarfarinCase, *, n_samples: int = 300, seed: int = 0) -> WarfarinFit:
    """MAP fit of the case's INRs (see the module docstring)."""
    from scipy.optimize import least_squares

    from medtwin.pharmacology.warfarin import _ETA, _OMEGA, _P, _meta

    _check_inrs(case)
    typ = case.typical("fit")
    var = _meta()["variability"]
    idx = [_P[n] for n in _ETA]
    omega_sd = np.sqrt(np.array([var[o] for o in _OMEGA]))
    t = np.array([x[0] for x in case.inrs])
    y = np.array([x[1] for x in case.inrs])
    sd = np.sqrt(var["sigma_inr"] ** 2 + (INR_RESOLUTION**2 / 12.0) / y**2)
    k = len(idx)
    h = 1e-4
    cache: dict[bytes, tuple[FloatArray, FloatArray]] = {}

    def residuals_and_jac(x: FloatArray) -> tuple[FloatArray, FloatArray]:
        key = np.asarray(x, dtype=np.float64).tobytes()
        if key not in cache:
            pts = np.vstack([x, x + h * np.eye(k)])
            f, _ = simulate_inr(_etas_to_params(typ, idx, pts), case.doses, t)
            r = np.concatenate(
                [(np.log(y)[None, :] - np.log(f)) / sd[None, :], pts / omega_sd[None, :]], axis=1
            )
            cache.clear()
            cache[key] = (r[0], ((r[1:] - r[0]) / h).T)
        return cache[key]

    # MTT2 (the slow chain) is hard to tell from EC50 with two weeks of INRs: the posterior
    # can have two modes (a slow rise to a high INR, or a plateau), so the search starts
    # from several MTT2 etas and every distinct mode joins the proposal below
    modes: list[tuple[float, FloatArray, FloatArray]] = []
    mtt2 = list(_ETA).index("mtt2_h")
    for z in MTT2_STARTS:
        x0 = np.zeros(k)
        x0[mtt2] = z * omega_sd[mtt2]
        res = least_squares(
            lambda x: residuals_and_jac(x)[0],
            x0,
            jac=lambda x: residuals_and_jac(x)[1],
            method="trf",
            x_scale=omega_sd,
            xtol=1e-8,
            ftol=1e-10,
        )
        e = np.asarray(res.x, dtype=np.float64)
        r, jac = residuals_and_jac(e)
        c = np.linalg.inv(jac.T @ jac)
        if all(np.abs((e - m[1]) / omega_sd).max() > 0.1 for m in modes):
            modes.append((float(r @ r), e, 0.5 * (c + c.T)))
    modes.sort(key=lambda m: m[0])
    best_ofv, eta, cov = modes[0]
    # sampling importance resampling (Rubin 1988; Dosne 2016): proposals from the Laplace
    # approximation at each mode (covariance doubled) and the prior, weights = posterior /
    # proposal density
    rng = np.random.default_rng(seed)
    m = max(SIR_PROPOSALS, 5 * n_samples)
    comps = [(e, 2.0 * c) for _, e, c in modes] + [(np.zeros(k), np.diag(omega_sd**2))]
    share = np.array([(1.0 - PRIOR_SHARE) / len(modes)] * len(modes) + [PRIOR_SHARE])
    # rounds of proposals from the same mixture pool into one weighted sample, until the
    # effective sample size is SIR_MIN_ESS (a narrow posterior far from the Laplace modes
    # keeps few proposals: more rounds, not a different proposal, keep the weights exact)
    batches: list[tuple[FloatArray, FloatArray]] = []
    for _ in range(SIR_MAX_ROUNDS):
        batches.append(_sir_round(case, typ, idx, t, y, sd, omega_sd, comps, share, m, rng))
        proposals = np.concatenate([b[0] for b in batches])
        log_w = np.concatenate([b[1] for b in batches])
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        ess = float(1.0 / (w**2).sum())
        if ess >= SIR_MIN_ESS:
            break
    draws = proposals[rng.choice(len(proposals), size=n_samples, replace=True, p=w)]
    params = _etas_to_params(typ, idx, eta[None, :])
    pred, _ = simulate_inr(params, case.doses, t)
    return WarfarinFit(
        etas=eta,
        eta_names=_ETA,
        cov=cov,
        params=params,
        typical=typ,
        samples=_etas_to_params(typ, idx, draws),
        ofv=best_ofv,
        predictions=pred[0],
        inrs=case.inrs,
        ess=ess,
        eta_z=eta / omega_sd,
    )


def fit_warfarin_case(case: WarfarinCase, *, n_samples: int = 300) -> dict[str, Any]:
    """MAP fit to the case's INRs with INR predictions (and a 5-95 % band) at ``times_h``,
    the maintenance dose for INR 2.5 of the individual and the steady-state INR of the last
    dose."""
    from medtwin.pharmacology.warfarin import maintenance_dose_mg_per_day

    fit = fit_inr(case, n_samples=n_samples)
    t = _default_times(case)
    pred, _ = simulate_inr(fit.params, case.doses, t)
    band_rows, _ = simulate_inr(fit.samples, case.doses, t)
    band = np.percentile(band_rows, [5, 95], axis=0)
    last = case.doses[-1][1]
    ss = steady_state_inr(np.vstack([fit.params, fit.samples]), last, check_after_dose_h(case))
    md = maintenance_dose_mg_per_day(np.vstack([fit.params, fit.samples]))
    return {
        **fit.to_dict(),
        "covariates": case.covariates(),
        "times_h": t.tolist(),
        "inr": pred[0].tolist(),
        "inr_band_5_95": band.T.tolist(),
        "steady_state_inr_of_last_dose": {
            "dose_mg": last,
            "after_dose_h": check_after_dose_h(case),
            "predicted": float(ss[0]),
            "band_5_95": np.percentile(ss[1:], [5, 95]).tolist(),
        },
        "maintenance_dose_mg_per_day_for_inr_2_5": {
            "predicted": float(md[0]),
            "band_5_95": np.percentile(md[1:], [5, 95]).tolist(),
        },
    }
