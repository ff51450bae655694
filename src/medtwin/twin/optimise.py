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

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from medtwin.model.base import FloatArray, ModelError
from medtwin.pharmacology.antibiotics import PopPKModel
from medtwin.pharmacology.covariates import PatientCovariates
from medtwin.pharmacology.pk import Dose, auc, steady_state_profile
from medtwin.pharmacology.tdm import OUTSIDE_Z, UNUSUAL_Z, MapFit, fit_map

if TYPE_CHECKING:
    from medtwin.pharmacology.case import DosingCase
    from medtwin.pharmacology.warfarin_dosing import WarfarinCase, WarfarinFit

__all__ = [
    "DEFAULT_TARGET_INR",
    "WARFARIN_TABLETS_MG",
    "Recommendation",
    "Target",
    "TargetError",
    "parse_inr_target",
    "parse_target",
    "recommend",
    "recommend_case",
    "recommend_warfarin",
    "recommend_warfarin_case",
    "regimen_exposure",
    "warfarin_tablet_doses",
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
    inr: tuple[float, float] | None = None

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
                ("inr", self.inr),
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
    warnings: list[str] = field(default_factory=list)
    """What to check before giving it (a fit more than 3 SD from the model's population)."""

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
            "warnings": self.warnings,
        }


def _round_step(x: float, step: float) -> float:
    return float(step * math.floor(x / step + 0.5))


def next_start_h(due_h: float | None, now_h: float | None) -> tuple[float, str]:
    """When a new regimen starts, and a note when the next dose is overdue.

    ``due_h``: when the next dose of the current regimen is due (None: no dose given yet);
    ``now_h``: the time of the recommendation on the case's clock (None: unknown). A dose due
    in the past is given now, not at its missed time: a regimen cannot start in the past.

    >>> next_start_h(36.0, 30.0)
    (36.0, '')
    >>> next_start_h(36.0, 50.5)
    (50.5, 'the next dose was due at hour 36 (14.5 h ago): the regimen starts now, at hour 50.5')
    >>> next_start_h(36.0, 8212.54)[1]
    'the next dose was due at hour 36 (340.7 days ago): the regimen starts now, at hour 8212.5'
    >>> next_start_h(None, 7.0), next_start_h(None, None)
    ((7.0, ''), (0.0, ''))
    """
    if due_h is None:
        return (now_h if now_h is not None else 0.0), ""
    if now_h is None or now_h <= due_h:
        return due_h, ""
    late = now_h - due_h
    ago = f"{late:.1f} h" if late < 48.0 else f"{late / 24.0:.1f} days"
    return now_h, (
        f"the next dose was due at hour {due_h:g} ({ago} ago): the regimen starts now, at "
        f"hour {now_h:.1f}"
    )


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


_CHECK = {"level": "value, unit and time", "INR": "value and time"}
"""What to check of a measured value that the fit puts outside the population."""


def _outside_reason(model: str, findings: Sequence[str], measured: str) -> str:
    """Why no regimen: the fit to the ``measured`` values (``level``, ``INR``) puts the patient
    more than :data:`OUTSIDE_Z` SD from the model's population (``findings`` say where)."""
    return (
        f"cannot recommend because the measured {measured}s put this patient outside the "
        f"population of {model} (more than {OUTSIDE_Z:g} SD, fewer than 1 in 15,800 of its "
        f"patients): {'; '.join(findings)}. Check each {measured}'s {_CHECK[measured]} and "
        "the doses given; if they are right, this model does not describe the patient"
    )


def _unusual_warnings(findings: Sequence[str], measured: str) -> list[str]:
    """A warning for each finding more than :data:`UNUSUAL_Z` SD from the population."""
    return [
        f"unusual fit (more than {UNUSUAL_Z:g} SD from the model's population): {text}; "
        f"check the {measured}'s {_CHECK[measured]} and the doses given"
        for text in findings
    ]


def recommend(
    pop: PopPKModel,
    patient: PatientCovariates,
    *,
    target: Target | None = None,
    fit: MapFit | None = None,
    history: Sequence[Dose] = (),
    allergies: Sequence[str] = (),
    start_h: float | None = None,
    now_h: float | None = None,
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
    or 0, but not before ``now_h``, the time of the recommendation, when it is given: an
    overdue dose starts now, and the reason says so); ``loading``:
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
        outside = fit.findings(OUTSIDE_Z)
        if outside:
            return Recommendation(
                recommended=False, reason=_outside_reason(pop.name, outside, "level"), **base
            )
        base["warnings"] = _unusual_warnings(fit.findings(UNUSUAL_Z), "level")
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
    overdue = ""
    if start_h is None:
        start_h, overdue = next_start_h((max(given) + last_every) if given else None, now_h)
    # a course restarted after five terminal half-lives is a new course: about 97 % of the
    # last dose is gone (0.5^5 = 3 %; Rowland M, Tozer TN. Clinical Pharmacokinetics and
    # Pharmacodynamics, 4th ed., 2011, ch. 3), so it gets the loading dose a first course gets
    washed_out = bool(given) and start_h - max(given) > 5.0 * half_life
    reloaded = loading is None and washed_out
    if loading is None:
        loading = (not given or washed_out) and float(d["loading_mg_per_kg"]) > 0
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
    if reloaded:
        gap = (start_h - max(given)) / 24.0
        overdue = (f"{overdue}; " if overdue else "") + (
            f"the last dose was {gap:.1f} days before, more than five half-lives "
            f"({5.0 * half_life:.0f} h): a new course"
            + (
                ", with a loading dose"
                if loading_mg
                else ", whose loading dose would not be above the maintenance dose"
            )
        )
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
        reason=f"{text}: highest probability of target attainment among practical regimens"
        + (f"; {overdue}" if overdue else ""),
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


# ------------------------------------------------------------------------------- warfarin
WARFARIN_TABLETS_MG = (1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.5, 10.0)
"""Warfarin sodium tablet strengths (mg), scored for halving: COUMADIN (warfarin sodium)
tablets, US prescribing information (Bristol-Myers Squibb), How Supplied: 1, 2, 2-1/2, 3, 4,
5, 6, 7-1/2 and 10 mg."""
WARFARIN_MIN_DAILY_MG = 0.5
"""Half of the smallest tablet."""
WARFARIN_MAX_DAILY_MG = 15.0
"""medtwin's limit, unverified as a clinical maximum: the label's usual maintenance dose is
2-10 mg a day; higher doses are not proposed without a prescriber's decision."""
DEFAULT_TARGET_INR = (2.0, 3.0)
"""INR 2.0-3.0 (target 2.5) for most indications (ACCP 2012: Holbrook A, Schulman S, Witt DM,
et al. Evidence-based management of anticoagulant therapy. Chest 2012;141(2 Suppl):
e152S-e184S; Ageno W et al. Chest 2012;141:e44S-e88S)."""
INR_TARGET_HALF_WIDTH = 0.5
"""A single target INR means the range target +/- 0.5 (2.5 -> 2.0-3.0, as ACCP 2012)."""
NEXT_CHECK_DAYS = 7
"""The next INR check, 7 days after the new regimen starts: rechecking within 1-2 weeks of a
dose change is the ACCP 2012 advice (Holbrook 2012) as summarised by secondary sources
(unverified against the paper here); medtwin takes the first week."""
WITHHOLD_INR = 5.0
"""A latest INR at or above this is managed by withholding warfarin, not by a new daily dose:
BSH 2011 (Keeling D, Baglin T, Tait C, et al. Guidelines on oral anticoagulation with warfarin,
fourth edition. Br J Haematol 2011;154:311-324, section on high INR without bleeding): INR
5.0-8.0, withhold one or two doses and reduce the maintenance dose; above 8.0, stop warfarin
and give 1-5 mg of vitamin K by mouth. ACCP 2012 (Holbrook 2012) likewise: INR 4.5-10
without bleeding, no routine vitamin K; above 10, oral vitamin K. Bleeding at any INR needs
reversal. The model's steady-state dose says nothing of that."""
_HALVES = {1: "half a", 2: "one", 3: "one and a half", 4: "two"}


def warfarin_tablet_doses(
    strengths: Sequence[float] = WARFARIN_TABLETS_MG,
    min_mg: float = WARFARIN_MIN_DAILY_MG,
    max_mg: float = WARFARIN_MAX_DAILY_MG,
) -> list[tuple[float, float, int, str]]:
    """The daily doses a pharmacist can give with whole or half tablets of one strength
    (half a tablet to two tablets a day), as ``(dose_mg, tablet_mg, halves, text)`` sorted by
    dose; each dose is given with the fewest tablets, whole tablets preferred.

    >>> [d[0] for d in warfarin_tablet_doses(max_mg=3)]
    [0.5, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0]
    >>> warfarin_tablet_doses()[9]
    (4.5, 3.0, 3, 'one and a half 3 mg tablets')
    """
    best: dict[float, tuple[tuple[int, int], float, int]] = {}
    for s in strengths:
        for n in (2, 4, 1, 3):
            dose = round(n * s / 2.0, 4)
            if not min_mg - 1e-9 <= dose <= max_mg + 1e-9:
                continue
            key = (n % 2, n)
            if dose not in best or key < best[dose][0]:
                best[dose] = (key, float(s), n)
    out = []
    for dose in sorted(best):
        _, s, n = best[dose]
        noun = "tablet" if n <= 2 else "tablets"
        out.append((dose, s, n, f"{_HALVES[n]} {s:g} mg {noun}"))
    return out


def parse_inr_target(raw: Mapping[str, Any] | None) -> Target:
    """A warfarin case's ``target``: ``{"inr": [low, high]}`` or ``{"inr": 2.5}`` (+/- 0.5);
    none: INR 2-3 (:data:`DEFAULT_TARGET_INR`)."""
    if not raw:
        return Target(inr=DEFAULT_TARGET_INR)
    if not isinstance(raw, Mapping):
        raise TargetError("target: must be a JSON object")
    unknown = sorted(set(raw) - {"inr"})
    if unknown:
        raise TargetError(f"target: unknown field {unknown[0]!r} (known for warfarin: inr)")
    if "inr" not in raw:
        raise TargetError("target: field 'inr' is needed for warfarin ([low, high] or a number)")
    lo, hi = _range("inr", raw["inr"], INR_TARGET_HALF_WIDTH)
    if lo < 1.0 or hi > 10.0:
        raise TargetError(f"target: field 'inr' must lie within 1-10, got {raw['inr']!r}")
    return Target(inr=(lo, hi))


def _band(values: FloatArray) -> list[float]:
    lo, hi = np.percentile(values, [5, 95])
    return [float(lo), float(hi)]


def _iwpc_daily_mg(case: WarfarinCase) -> tuple[float | None, dict[str, Any]]:
    """The IWPC 2009 weekly dose / 7 (:mod:`medtwin.risk.iwpc_warfarin`) and its result."""
    from medtwin.risk.iwpc_warfarin import IWPC_WARFARIN, RACES

    race = case.iwpc.get("race")
    row = {
        "age_years": case.age_years,
        "height_cm": case.iwpc.get("height_cm"),
        "weight_kg": case.iwpc.get("weight_kg"),
        "race": race if race in RACES else "mixed_or_missing",
        "vkorc1_1639": case.vkorc1_1639,
        "cyp2c9": case.cyp2c9,
        "enzyme_inducer": case.iwpc.get("enzyme_inducer"),
        "amiodarone": case.iwpc.get("amiodarone"),
    }
    res = IWPC_WARFARIN.compute_one(row)
    info = {"inputs": row, **res.to_dict()}
    if res.value is None:
        return None, info
    return float(res.value) / 7.0, info


def recommend_warfarin(
    case: WarfarinCase,
    *,
    fit: WarfarinFit | None = None,
    n_samples: int = 300,
    seed: int = 0,
) -> Recommendation:
    """The daily warfarin dose, in whole or half tablets, for ``case``
    (:class:`~medtwin.pharmacology.warfarin_dosing.WarfarinCase`) on ``warfarin_hamberg2007``.

    With INRs (``fit``: :func:`~medtwin.pharmacology.warfarin_dosing.fit_inr`) the posterior
    samples, else the population prior, predict the INR of every practical daily dose
    (:func:`warfarin_tablet_doses`) at steady state; the doses whose MAP (or typical)
    prediction is in the target range are ranked by the probability of target attainment
    (PTA: the share of samples in range at steady state, in steps of 0.05), then by the
    distance from the middle of the range, then by the number of tablets. Without INRs the
    starting dose is the IWPC 2009 dose rounded to the nearest practical dose (the model's
    best dose is reported beside it), or the model's best dose when IWPC lacks an input.
    Predictions are at the time of day of the INR checks
    (:func:`~medtwin.pharmacology.warfarin_dosing.check_after_dose_h`), at steady state and
    at the next check (:data:`NEXT_CHECK_DAYS` after the new regimen starts, one day after
    the last dose given), with 5-95 % bands. A recorded allergy to warfarin, a target no
    practical dose reaches, or an IWPC dose outside the limits gives "cannot recommend".
    """
    from medtwin.pharmacology.warfarin import WarfarinHamberg2007
    from medtwin.pharmacology.warfarin_dosing import (
        check_after_dose_h,
        daily_course,
        prior_samples,
        simulate_inr,
        steady_state_inr,
    )

    target = parse_inr_target(case.target)
    assert target.inr is not None
    lo, hi = target.inr
    mid = 0.5 * (lo + hi)
    allergic, allergy_text = _allergy_check("warfarin", case.allergies)
    base: dict[str, Any] = {
        "drug": "warfarin",
        "model": "warfarin_hamberg2007",
        "allergy_check": allergy_text,
        "target": target,
    }
    if allergic:
        return Recommendation(
            recommended=False,
            reason="cannot recommend because an allergy to warfarin is recorded "
            f"({allergy_text}); choose another anticoagulant or confirm the allergy is not "
            "relevant",
            **base,
        )
    if case.inrs and case.inrs[-1][1] >= WITHHOLD_INR:
        t_last, inr_last = case.inrs[-1]
        when = (
            (dt.datetime.fromisoformat(case.t0) + dt.timedelta(hours=t_last)).isoformat()[:16]
            if case.t0
            else f"hour {t_last:g}"
        )
        return Recommendation(
            recommended=False,
            reason=(
                f"cannot recommend a daily dose because the latest INR, {inr_last:.1f} "
                f"({when}), is {WITHHOLD_INR:.1f} or above: that is managed by withholding "
                "warfarin, not by a new dose (BSH 2011: INR 5.0-8.0 without bleeding, withhold "
                "one or two doses and reduce the maintenance dose; above 8.0, stop warfarin "
                "and give 1-5 mg of vitamin K by mouth; bleeding needs reversal). Dose again "
                "from the next INR"
            ),
            **base,
        )
    typ = case.typical("recommend")
    if fit is not None:
        outside = fit.findings(OUTSIDE_Z)
        if outside:
            return Recommendation(
                recommended=False,
                reason=_outside_reason("warfarin_hamberg2007", outside, "INR"),
                **base,
            )
        base["warnings"] = _unusual_warnings(fit.findings(UNUSUAL_Z), "INR")
        mode, samples = fit.params, fit.samples[:n_samples]
        source = f"MAP fit to {len(fit.inrs)} INR result(s)"
    else:
        mode, samples = typ, prior_samples(typ, n_samples, seed=seed)
        source = "population prior (no INR yet)"
    after = check_after_dose_h(case)
    start_h, overdue = next_start_h(
        max(t for t, _ in case.doses) + 24.0 if case.doses else None, case.now_h
    )
    both = np.vstack([mode, samples])
    if case.doses:
        _, x_start = simulate_inr(both, case.doses, [start_h])
    else:
        x_start = WarfarinHamberg2007.initial_state(both)
    cands = warfarin_tablet_doses()
    doses = np.array([c[0] for c in cands])
    ss_mode = steady_state_inr(np.repeat(mode, doses.size, axis=0), doses, after)
    ok = np.flatnonzero((ss_mode >= lo) & (ss_mode <= hi))
    best_k: int | None = None
    pta_all: dict[int, float] = {}
    if ok.size:
        s = samples.shape[0]
        ss_s = steady_state_inr(np.tile(samples, (ok.size, 1)), np.repeat(doses[ok], s), after)
        ss_s = ss_s.reshape(ok.size, s)
        pta = ((ss_s >= lo) & (ss_s <= hi)).mean(axis=1)
        pta_all = {int(k): float(p) for k, p in zip(ok, pta, strict=True)}
        order = np.lexsort(
            (
                np.array([cands[k][2] for k in ok]),
                np.abs(ss_mode[ok] - mid),
                -np.round(pta * 20.0),
            )
        )
        best_k = int(ok[order[0]])
    limits = f"{doses[0]:g}-{doses[-1]:g} mg a day in whole or half tablets"
    iwpc_info: dict[str, Any] | None = None
    note = ""
    if not case.inrs and (lo, hi) != DEFAULT_TARGET_INR:
        note = (
            f"no IWPC 2009 start: it predicts the dose for INR 2-3, the target is {lo:g}-{hi:g}; "
            "the model's best dose instead"
        )
        chosen = -1
    elif not case.inrs:
        iwpc_daily, iwpc_info = _iwpc_daily_mg(case)
        if iwpc_daily is not None:
            if not doses[0] <= iwpc_daily <= doses[-1]:
                return Recommendation(
                    recommended=False,
                    reason=f"cannot recommend because the IWPC 2009 dose "
                    f"({iwpc_daily * 7.0:.1f} mg/week, {iwpc_daily:.2f} mg a day) is outside "
                    f"{limits}",
                    **base,
                )
            chosen = int(np.argmin(np.abs(doses - iwpc_daily) + 1e-6 * doses))
            note = (
                f"the IWPC 2009 starting dose ({iwpc_daily * 7.0:.1f} mg/week, "
                f"{iwpc_daily:.2f} mg a day) rounded to tablets"
            )
        else:
            note = (
                "IWPC 2009 dose not computed (missing: "
                f"{', '.join(iwpc_info.get('missing', ())) or iwpc_info.get('refused')}); "
                "the model's best dose instead"
            )
            chosen = -1
    else:
        chosen = -1
    if chosen < 0:
        if best_k is None:
            k = int(np.argmin(np.abs(ss_mode - mid)))
            return Recommendation(
                recommended=False,
                reason=f"cannot recommend because no dose of {limits} is predicted to bring "
                f"the steady-state INR into {lo:g}-{hi:g} (closest: {doses[k]:g} mg a day, "
                f"INR {ss_mode[k]:.2f}; {source})",
                **base,
            )
        chosen = best_k
    dose, tablet, halves, tablets_text = cands[chosen]
    ss_c = steady_state_inr(samples, dose, after)
    ss_m = float(ss_mode[chosen])
    pta_c = float(((ss_c >= lo) & (ss_c <= hi)).mean())
    course, _ = daily_course(both, x_start, np.full(both.shape[0], dose), NEXT_CHECK_DAYS, after)
    check = course[:, -1]
    check_h = start_h + 24.0 * (NEXT_CHECK_DAYS - 1) + after
    exposure: dict[str, Any] = {
        "inr_steady_state": {"predicted": ss_m, "band_5_95": _band(ss_c)},
        "inr_next_check": {
            "predicted": float(check[0]),
            "band_5_95": _band(check[1:]),
            "t_h": check_h,
        },
        "probability_of_target_attainment": pta_c,
        "probability_in_range_at_next_check": float(((check[1:] >= lo) & (check[1:] <= hi)).mean()),
        "inr_after_dose_h": after,
        "samples": int(samples.shape[0]),
        "source": source,
    }
    text = f"warfarin {dose:g} mg once a day ({tablets_text})"
    regimen: dict[str, Any] = {
        "daily_dose_mg": dose,
        "weekly_dose_mg": 7.0 * dose,
        "tablet_mg": tablet,
        "tablets_per_day": halves / 2.0,
        "every_h": 24.0,
        "start_h": start_h,
        "next_check_h": check_h,
        "text": text,
    }
    if case.t0 is not None:
        t0 = dt.datetime.fromisoformat(case.t0)
        regimen["start_at"] = (t0 + dt.timedelta(hours=start_h)).isoformat()
        regimen["next_check_at"] = (t0 + dt.timedelta(hours=check_h)).isoformat()
    if iwpc_info is not None:
        regimen["iwpc"] = iwpc_info
    if best_k is not None:
        regimen["model_best"] = {
            "daily_dose_mg": cands[best_k][0],
            "text": cands[best_k][3],
            "inr_steady_state": float(ss_mode[best_k]),
            "probability_of_target_attainment": pta_all[best_k],
        }
    if note.startswith("the IWPC"):
        why = f"{note}; INR predicted by Hamberg 2007 (no INR yet)"
    else:
        why = (f"{note}; " if note else "") + (
            "highest probability of target attainment among practical doses"
        )
    if overdue:
        why = f"{why}; {overdue}"
    events = [
        {
            "type": "oral",
            "drug": "warfarin",
            "t_h": start_h,
            "amount_mg": dose,
            "every_h": 24.0,
            "count": NEXT_CHECK_DAYS,
        }
    ]
    return Recommendation(
        recommended=True,
        reason=f"{text}, INR check after {NEXT_CHECK_DAYS} days: {why}",
        regimen=regimen,
        exposure=exposure,
        events=events,
        **base,
    )


def recommend_case(case: DosingCase) -> dict[str, Any]:
    """The recommended regimen of a dosing case (:func:`recommend`; a MAP fit first when the case
    has levels), with its start as a date when the case has a clock."""
    target = parse_target(case.target, case.pop)
    fit = fit_map(case.pop, case.patient, case.doses, case.levels) if case.levels else None
    rec = recommend(
        case.pop,
        case.patient,
        target=target,
        fit=fit,
        history=case.doses,
        allergies=case.allergies,
        now_h=case.now_h,
    )
    out = rec.to_dict()
    if case.t0 is not None and "start_h" in out["regimen"]:
        t0 = dt.datetime.fromisoformat(case.t0)
        out["regimen"]["start_at"] = (
            t0 + dt.timedelta(hours=out["regimen"]["start_h"])
        ).isoformat()
    if fit is not None:
        out["fit"] = {
            "params": fit.params,
            "etas": dict(zip(fit.eta_names, fit.etas.tolist(), strict=True)),
        }
    return out


def recommend_warfarin_case(case: WarfarinCase, *, n_samples: int = 300) -> dict[str, Any]:
    """The recommended daily dose (:func:`recommend_warfarin`; MAP fit
    first when the case has INRs), with the covariates used and the fit."""
    from medtwin.pharmacology.warfarin_dosing import fit_inr

    fit = fit_inr(case, n_samples=n_samples) if case.inrs else None
    out = recommend_warfarin(case, fit=fit, n_samples=n_samples).to_dict()
    out["covariates"] = case.covariates()
    if case.provenance:
        out["provenance"] = dict(case.provenance)
    if fit is not None:
        d = fit.to_dict()
        out["fit"] = {k: d[k] for k in ("etas", "eta_sd", "params", "inrs")}
    return out
