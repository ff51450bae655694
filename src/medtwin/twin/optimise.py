"""Dose optimisation: the regimen a pharmacist would prescribe to hit an exposure target.

For a population PK model (:mod:`medtwin.pharmacology.antibiotics`) and a patient, either
fitted to measured levels (:func:`medtwin.pharmacology.tdm.fit_map`) or not (the population
prior), :func:`recommend` searches the practical regimens (doses in the model's steps, e.g.
250 mg for vancomycin; standard intervals 8/12/24/36/48 h; infusion time from the maximum
rate, 1 g/h for vancomycin, at least 1 h) and returns the one whose predicted exposure meets
the target with the highest probability of target attainment (PTA) over the posterior
samples, ties going to the exposure nearest the middle of the target.

Targets and rules (cited in the data files, ``docs/dosing.md``):

- vancomycin AUC24 400-600 mg h/L at steady state (Rybak MJ et al. Therapeutic monitoring
  of vancomycin for serious MRSA infections: a revised consensus guideline of ASHP, IDSA,
  PIDS and SIDP. Am J Health Syst Pharm 2020;77:835-864); a loading dose of 20-35 mg/kg
  actual body weight in serious infection (25 mg/kg here, not above 3000 mg), given when
  no dose has been given yet; infusion at no more than 1 g/h;
- a trough range and/or a peak range (gentamicin conventional dosing: peak 5-10 mg/L,
  trough below 2 mg/L; Bauer, Applied Clinical Pharmacokinetics 2014, ch. 4).

Exposure is linear in dose: steady-state AUC24 = daily dose / CL exactly; peaks, troughs and
the first day's AUC24 come from the closed forms. A target no regimen reaches, or a recorded
allergy to the drug, gives an explicit "cannot recommend because ...", never a number.

>>> from medtwin.pharmacology.antibiotics import get_pop_model
>>> from medtwin.pharmacology.covariates import PatientCovariates
>>> pop = get_pop_model("vancomycin_goti2018")
>>> pt = PatientCovariates.from_dict({"age_years": 50, "weight_kg": 70, "sex": "male",
...     "creatinine_mg_dl": 0.7})
>>> rec = recommend(pop, pt, target=Target.auc24(400, 600))
>>> rec.recommended, rec.regimen["loading_dose_mg"], rec.regimen["dose_mg"], rec.regimen["every_h"]
(True, 1750.0, 1250.0, 12.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medtwin.model.base import FloatArray, ModelError
from medtwin.pharmacology.antibiotics import PopPKModel
from medtwin.pharmacology.covariates import PatientCovariates
from medtwin.pharmacology.pk import Dose, auc, steady_state_profile
from medtwin.pharmacology.tdm import MapFit

__all__ = [
    "Recommendation",
    "Target",
    "TargetError",
    "parse_target",
    "recommend",
    "regimen_exposure",
]


class TargetError(ModelError):
    """A dosing target that is malformed; the message names the field."""


@dataclass(frozen=True)
class Target:
    """Exposure target: ranges (low, high) of steady-state AUC24, trough and peak (mg h/L,
    mg/L); ``None`` where not targeted."""

    auc24_mg_h_l: tuple[float, float] | None = None
    trough_mg_l: tuple[float, float] | None = None
    peak_mg_l: tuple[float, float] | None = None

    @classmethod
    def auc24(cls, low: float, high: float) -> Target:
        """An AUC24 range."""
        return cls(auc24_mg_h_l=(low, high))

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            k: list(v)
            for k, v in (
                ("auc24_mg_h_l", self.auc24_mg_h_l),
                ("trough_mg_l", self.trough_mg_l),
                ("peak_mg_l", self.peak_mg_l),
            )
            if v is not None
        }


def _range(name: str, value: Any, default_width: float | None) -> tuple[float, float]:
    if isinstance(value, bool):
        raise TargetError(f"target: field {name!r} must be a number or [low, high]")
    if isinstance(value, int | float):
        v = float(value)
        if not (math.isfinite(v) and v > 0):
            raise TargetError(f"target: field {name!r} must be > 0, got {value!r}")
        if default_width is None:
            return (0.0, v)
        return (v - default_width, v + default_width)
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        lo, hi = value
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (lo, hi)):
            raise TargetError(f"target: field {name!r} must hold two numbers")
        if not (0 <= float(lo) < float(hi) and math.isfinite(float(hi))):
            raise TargetError(f"target: field {name!r} needs 0 <= low < high, got {value!r}")
        return (float(lo), float(hi))
    raise TargetError(f"target: field {name!r} must be a number or [low, high], got {value!r}")


def parse_target(raw: Mapping[str, Any] | None, pop: PopPKModel) -> Target:
    """A case's ``target`` object; none: the model's default (vancomycin AUC24 400-600).

    ``auc24_mg_h_l``: a number (a target +/- 100, as the consensus 400-600 around 500) or
    ``[low, high]``; ``trough_mg_l``: a number (an upper limit) or ``[low, high]``;
    ``peak_mg_l``: ``[low, high]`` or a number (+/- 1 mg/L).
    """
    d = pop.dosing
    if not raw:
        if d["default_target"] == "auc24":
            return Target.auc24(float(d["auc24_low_mg_h_l"]), float(d["auc24_high_mg_h_l"]))
        return Target(
            trough_mg_l=(0.0, float(d["trough_max_mg_l"])),
            peak_mg_l=(float(d["peak_low_mg_l"]), float(d["peak_high_mg_l"])),
        )
    if not isinstance(raw, Mapping):
        raise TargetError("target: must be a JSON object")
    known = {"auc24_mg_h_l", "trough_mg_l", "peak_mg_l"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise TargetError(
            f"target: unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    return Target(
        auc24_mg_h_l=_range("auc24_mg_h_l", raw["auc24_mg_h_l"], 100.0)
        if "auc24_mg_h_l" in raw
        else None,
        trough_mg_l=_range("trough_mg_l", raw["trough_mg_l"], None)
        if "trough_mg_l" in raw
        else None,
        peak_mg_l=_range("peak_mg_l", raw["peak_mg_l"], 1.0) if "peak_mg_l" in raw else None,
    )


@dataclass(frozen=True)
class Recommendation:
    """A recommended regimen with its predicted exposure, or the reason there is none."""

    recommended: bool
    drug: str
    model: str
    reason: str
    allergy_check: str
    target: Target
    regimen: dict[str, Any] = field(default_factory=dict)
    exposure: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for ``medtwin dose recommend --json``)."""
        return {
            "recommended": self.recommended,
            "drug": self.drug,
            "model": self.model,
            "reason": self.reason,
            "allergy_check": self.allergy_check,
            "target": self.target.to_dict(),
            "regimen": self.regimen,
            "exposure": self.exposure,
            "events": self.events,
        }


def _round_step(x: float, step: float) -> float:
    return float(step * math.floor(x / step + 0.5))


def infusion_hours(pop: PopPKModel, dose_mg: float) -> float:
    """Infusion time (h): at most the model's maximum rate (vancomycin 1 g/h), at least its
    minimum time, rounded up to its step (0.5 h)."""
    d = pop.dosing
    need = max(float(d["min_infusion_h"]), dose_mg / float(d["max_rate_mg_per_h"]))
    step = float(d["infusion_step_h"])
    return float(step * math.ceil(need / step - 1e-9))


def _allergy_check(drug: str, allergies: Sequence[str]) -> tuple[bool, str]:
    hits = [a for a in allergies if drug.lower() in a.lower()]
    if hits:
        return True, f"allergy to {drug} recorded: {'; '.join(hits)}"
    if not allergies:
        return False, f"no allergies recorded; none to {drug}"
    return False, f"{len(allergies)} allergy record(s) checked; none to {drug}"


def _meets(target: Target, auc_ss: FloatArray, trough: FloatArray, peak: FloatArray) -> FloatArray:
    ok = np.ones(np.shape(auc_ss), dtype=bool)
    if target.auc24_mg_h_l is not None:
        lo, hi = target.auc24_mg_h_l
        ok &= (auc_ss >= lo) & (auc_ss <= hi)
    if target.trough_mg_l is not None:
        lo, hi = target.trough_mg_l
        ok &= (trough >= lo) & (trough <= hi)
    if target.peak_mg_l is not None:
        lo, hi = target.peak_mg_l
        ok &= (peak >= lo) & (peak <= hi)
    return ok


def _distance(
    target: Target, auc_ss: FloatArray, trough: FloatArray, peak: FloatArray
) -> FloatArray:
    """Relative distance of the exposure from the middle of each targeted range."""
    dist = np.zeros(np.shape(auc_ss))
    for rng, val in (
        (target.auc24_mg_h_l, auc_ss),
        (target.trough_mg_l, trough),
        (target.peak_mg_l, peak),
    ):
        if rng is not None:
            mid = 0.5 * (rng[0] + rng[1])
            dist += np.abs(val - mid) / max(mid, 1e-9)
    return dist


def _ss_metrics(
    pop: PopPKModel, params: FloatArray, dose: FloatArray, tinf: FloatArray, tau: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Steady-state AUC24, trough and peak ``[N, C]`` for params ``[N, P]`` and candidates
    ``[C]`` (linear in dose: computed per unit dose for each (infusion, interval) pair)."""
    a, lam = pop.modes(params)
    cl = params[:, 0]
    auc_ss = (24.0 / tau)[None, :] * dose[None, :] / cl[:, None]
    peak = np.empty((params.shape[0], dose.size))
    trough = np.empty_like(peak)
    for key in sorted(set(zip(tinf.tolist(), tau.tolist(), strict=True))):
        sel = (tinf == key[0]) & (tau == key[1])
        prof = steady_state_profile(a, lam, 1.0, key[0], key[1], np.array([key[0], key[1]]))
        peak[:, sel] = prof[:, :1] * dose[None, sel]
        trough[:, sel] = prof[:, 1:] * dose[None, sel]
    return auc_ss, trough, peak


def regimen_exposure(
    pop: PopPKModel,
    params: FloatArray,
    history: Sequence[Dose],
    regimen: Sequence[Dose],
    start_h: float,
    dose_mg: float,
    tinf_h: float,
    tau_h: float,
) -> dict[str, FloatArray]:
    """Exposure ``[N]`` of a regimen from ``start_h``: the first 24 h's AUC (with what is
    left of the history), steady-state AUC24, peak and trough."""
    a, lam = pop.modes(params)
    doses = [*history, *regimen]
    day1 = auc(a, lam, doses, start_h, start_h + 24.0)
    prof = steady_state_profile(a, lam, dose_mg, tinf_h, tau_h, np.array([tinf_h, tau_h]))
    return {
        "auc24_day1_mg_h_l": day1,
        "auc24_ss_mg_h_l": 24.0 / tau_h * dose_mg / params[:, 0],
        "peak_ss_mg_l": prof[:, 0],
        "trough_ss_mg_l": prof[:, 1],
    }


def recommend(
    pop: PopPKModel,
    patient: PatientCovariates,
    *,
    target: Target | None = None,
    fit: MapFit | None = None,
    history: Sequence[Dose] = (),
    allergies: Sequence[str] = (),
    start_h: float | None = None,
    loading: bool | None = None,
    n_samples: int = 1000,
    seed: int = 0,
) -> Recommendation:
    """The practical regimen that best meets ``target`` (see the module docstring).

    ``fit``: a MAP fit to the patient's levels (else the population prior: typical values
    and samples from Omega). Regimens are ranked by PTA (in steps of 0.05), then by how near
    the interval is to the longest standard one not above the terminal half-life, then by the distance from the target's middle.
    ``history``: doses already given; ``start_h``: when the new
    regimen starts (default: one interval of the current regimen after the last dose given,
    or 0); ``loading``:
    give a loading dose (default: when the model's source recommends one and no dose has
    been given).
    """
    target = target or parse_target(None, pop)
    d = pop.dosing
    allergic, allergy_text = _allergy_check(pop.drug, allergies)
    base: dict[str, Any] = {
        "drug": pop.drug,
        "model": pop.name,
        "allergy_check": allergy_text,
        "target": target,
    }
    if allergic:
        return Recommendation(
            recommended=False,
            reason=f"cannot recommend because an allergy to {pop.drug} is recorded "
            f"({allergy_text}); choose another agent or confirm the allergy is not relevant",
            **base,
        )
    if fit is not None:
        mode = fit.param_array[None, :]
        samples = fit.samples[:n_samples]
    else:
        typ = pop.typical(patient)
        mode = typ[None, :]
        rng = np.random.default_rng(seed)
        etas = rng.multivariate_normal(np.zeros(len(pop.eta_names)), pop.omega, size=n_samples)
        samples = pop.from_typical(typ, etas)
    # candidates
    doses = np.arange(
        float(d["dose_min_mg"]), float(d["dose_max_mg"]) + 1e-9, float(d["dose_step_mg"])
    )
    taus = np.array([float(x) for x in d["intervals_h"]])
    dose_c = np.repeat(doses, taus.size)
    tau_c = np.tile(taus, doses.size)
    tinf_c = np.array([infusion_hours(pop, x) for x in dose_c])
    keep = tinf_c <= tau_c
    dose_c, tau_c, tinf_c = dose_c[keep], tau_c[keep], tinf_c[keep]
    auc_m, tr_m, pk_m = _ss_metrics(pop, mode, dose_c, tinf_c, tau_c)
    ok = _meets(target, auc_m, tr_m, pk_m)[0]
    if not ok.any():
        dist = _distance(target, auc_m, tr_m, pk_m)[0]
        k = int(np.argmin(dist))
        closest = (
            f"closest: {dose_c[k]:g} mg every {tau_c[k]:g} h with AUC24 {auc_m[0, k]:.0f} mg h/L, "
            f"trough {tr_m[0, k]:.1f} mg/L, peak {pk_m[0, k]:.1f} mg/L"
        )
        return Recommendation(
            recommended=False,
            reason=f"cannot recommend because no regimen of {doses[0]:g}-{doses[-1]:g} mg every "
            f"{', '.join(f'{t:g}' for t in taus)} h is predicted to meet the target "
            f"{target.to_dict()} ({closest})",
            **base,
        )
    idx = np.flatnonzero(ok)
    auc_s, tr_s, pk_s = _ss_metrics(pop, samples, dose_c[idx], tinf_c[idx], tau_c[idx])
    pta = _meets(target, auc_s, tr_s, pk_s).mean(axis=0)
    dist = _distance(target, auc_m[:, idx], tr_m[:, idx], pk_m[:, idx])[0]
    # ties within 0.05 of PTA go to the longest standard interval not above the terminal
    # half-life (fewer doses when elimination is slow, at most a halving between doses),
    # then to the exposure nearest the middle of the target
    half_life = math.log(2.0) / float(pop.modes(mode)[1].min())
    below = taus[taus <= half_life]
    preferred = float(below.max()) if below.size else float(taus.min())
    near = np.abs(tau_c[idx] - preferred)
    order = np.lexsort((dist, near, -np.round(pta * 20.0)))
    k = int(idx[order[0]])
    dose, tau, tinf = float(dose_c[k]), float(tau_c[k]), float(tinf_c[k])
    given = [x for dd in history for x in dd.starts()]
    # the interval being given: the last repeated dose's, else the gap between the last two
    # doses, else the new regimen's
    repeated = [dd for dd in history if dd.every_h > 0]
    starts_sorted = sorted(given)
    if repeated:
        last_every = max(repeated, key=lambda dd: dd.starts()[-1]).every_h
    elif len(starts_sorted) >= 2:
        last_every = starts_sorted[-1] - starts_sorted[-2]
    else:
        last_every = tau
    if start_h is None:
        start_h = (max(given) + last_every) if given else 0.0
    if loading is None:
        loading = not given and float(d["loading_mg_per_kg"]) > 0
    regimen: list[Dose] = []
    loading_mg = 0.0
    maint_start = start_h
    if loading:
        w = patient.dosing_weight_kg(str(d["loading_weight"]))
        loading_mg = min(
            _round_step(float(d["loading_mg_per_kg"]) * w, float(d["dose_step_mg"])),
            float(d["loading_max_mg"]),
        )
        if loading_mg > dose:
            regimen.append(Dose(start_h, loading_mg, infusion_hours(pop, loading_mg)))
            maint_start = start_h + tau
        else:
            loading_mg = 0.0
    count = max(1, math.ceil(14 * 24 / tau))
    regimen.append(Dose(maint_start, dose, tinf, tau, count))
    expo_s = regimen_exposure(pop, samples, history, regimen, start_h, dose, tinf, tau)
    expo_m = regimen_exposure(pop, mode, history, regimen, start_h, dose, tinf, tau)
    exposure: dict[str, Any] = {}
    for name, vals in expo_s.items():
        lo, hi = np.percentile(vals, [5, 95])
        exposure[name] = {"predicted": float(expo_m[name][0]), "band_5_95": [float(lo), float(hi)]}
    exposure["probability_of_target_attainment"] = float(pta[order[0]])
    exposure["samples"] = int(samples.shape[0])
    exposure["source"] = "MAP fit to measured levels" if fit is not None else "population prior"
    events = [
        {
            "type": "infusion",
            "drug": pop.drug,
            "t_h": r.t_h,
            "amount_mg": r.amount_mg,
            "duration_h": r.duration_h,
            **({"every_h": r.every_h, "count": r.count} if r.count > 1 else {}),
        }
        for r in regimen
    ]
    text = f"{dose:g} mg every {tau:g} h, each over {tinf:g} h"
    if loading_mg:
        text = (
            f"loading dose {loading_mg:g} mg over {infusion_hours(pop, loading_mg):g} h, then "
            + text
        )
    return Recommendation(
        recommended=True,
        reason=f"{text}: highest probability of target attainment among practical regimens",
        regimen={
            "loading_dose_mg": loading_mg,
            "dose_mg": dose,
            "every_h": tau,
            "infusion_h": tinf,
            "start_h": start_h,
            "maintenance_start_h": maint_start,
            "daily_dose_mg": dose * 24.0 / tau,
            "dosing_weight_kg": pop.dosing_weight_kg(patient),
            "text": text,
        },
        exposure=exposure,
        events=events,
        **base,
    )
