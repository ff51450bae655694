"""Dosing cases: one JSON file with the model, the patient, the doses, the levels and a target.

The format read by ``medtwin dose simulate|fit|recommend CASE.json``::

    {"model": "vancomycin_goti2018",
     "patient": {"age_years": 50, "weight_kg": 70, "height_cm": 175, "sex": "male",
                 "creatinine_mg_dl": 1.0},
     "events": [{"type": "infusion", "t_h": 0, "amount_mg": 1000, "duration_h": 1,
                 "every_h": 12, "count": 10}],
     "observations": [{"t_h": 13, "conc_mg_l": 12.0},
                      {"t_h": 35, "conc_mg_l": 4.0, "comparator": "<"}],
     "times_h": [1, 2, 12],
     "target": {"auc24_mg_h_l": 500},
     "allergies": ["penicillin"]}

An observation with a ``comparator`` (``<``, ``<=``, ``>``, ``>=``) is a level the laboratory
reports as a bound ("<4.0 mg/L", below the assay's limit): fitted as such (Beal's M3 method,
:mod:`medtwin.pharmacology.tdm`), never as the value. ``events`` are in the shared event
format (:mod:`medtwin.model.events`; ``drug`` may be left out: the model's drug); ``patient``
fields are those of
:class:`~medtwin.pharmacology.covariates.PatientCovariates`; ``allergies`` (optional) are the
patient's recorded allergies as text. ``t0`` (optional) is the clock time of hour 0 (ISO 8601
with its offset: the recommendation then gives its start as a clock time too) and ``now_h``
(optional) the time of the recommendation in hours from it: the next dose of the current
regimen, when due before ``now_h``, is overdue and the new regimen starts at ``now_h``, not in
the past. A case read from the record (``medtwin dose recommend --patient``) has both.

>>> case = parse_case({"model": "vancomycin_goti2018", "patient": {"age_years": 50,
...     "weight_kg": 70, "sex": "male", "creatinine_mg_dl": 1.0}, "events": [{"type":
...     "infusion", "t_h": 0, "amount_mg": 1000, "duration_h": 1}]})
>>> out = simulate_case(case)
>>> round(out["auc24_first_day_mg_h_l"], 1)
167.1
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from medtwin.model.base import ModelError
from medtwin.model.events import parse_scenario
from medtwin.pharmacology.antibiotics import POP_MODEL_NAMES, PopPKModel, get_pop_model
from medtwin.pharmacology.covariates import PatientCovariates
from medtwin.pharmacology.pk import Dose, auc, concentrations, doses_from_events, first_dose_h
from medtwin.pharmacology.tdm import Level, TdmError, fit_map

_LEVEL_KEYS = frozenset({"t_h", "conc_mg_l", "comparator"})
_CENSORED_BY = {"<": "below", "<=": "below", ">": "above", ">=": "above"}
"""A level's comparator (FHIR ``Quantity.comparator``) -> how it is censored (the M3 method of
:mod:`medtwin.pharmacology.tdm`)."""

__all__ = [
    "CASE_KEYS",
    "DOSING_MODELS",
    "CaseError",
    "DosingCase",
    "check_dosing_model",
    "fit_case",
    "load_case",
    "parse_case",
    "simulate_case",
]


class CaseError(ModelError):
    """A dosing case file that cannot be read; the message names the key."""


@dataclass(frozen=True)
class DosingCase:
    """A parsed dosing case."""

    pop: PopPKModel
    patient: PatientCovariates
    doses: list[Dose]
    levels: list[Level]
    times_h: list[float] | None
    target: Mapping[str, Any] | None
    allergies: list[str] = field(default_factory=list)
    t0: str | None = None
    now_h: float | None = None


CASE_KEYS = frozenset(
    ("model", "patient", "events", "observations", "times_h", "target", "allergies", "t0", "now_h")
)
"""The keys of a dosing case file (antibiotic and warfarin cases alike)."""


DOSING_MODELS: tuple[str, ...] = (*POP_MODEL_NAMES, "warfarin_hamberg2007")
"""Every dosing model of ``medtwin dose`` (warfarin's case is read by
:func:`medtwin.pharmacology.warfarin_dosing.parse_warfarin_case`)."""


def check_dosing_model(name: str) -> None:
    """Refuse a name that is no dosing model, listing them all."""
    if name not in DOSING_MODELS:
        raise CaseError(f"unknown dosing model {name!r} (known: {', '.join(DOSING_MODELS)})")


def parse_case(raw: Any) -> DosingCase:
    """Validate a dosing case (see the module docstring)."""
    if not isinstance(raw, Mapping):
        raise CaseError("case: must be a JSON object")
    unknown = sorted(set(raw) - CASE_KEYS)
    if unknown:
        raise CaseError(f"case: unknown key {unknown[0]!r} (known: {', '.join(sorted(CASE_KEYS))})")
    if "model" not in raw or not isinstance(raw["model"], str):
        raise CaseError("case: missing key 'model' (a dosing model name)")
    check_dosing_model(raw["model"])
    pop = get_pop_model(raw["model"])
    if "patient" not in raw:
        raise CaseError("case: missing key 'patient'")
    patient = PatientCovariates.from_dict(raw["patient"])
    events = raw.get("events", [])
    if not isinstance(events, list):
        raise CaseError("case: 'events' must be a list")
    events = [
        {**e, "drug": e.get("drug", pop.drug)} if isinstance(e, Mapping) else e for e in events
    ]
    for i, e in enumerate(events):
        if isinstance(e, Mapping) and str(e.get("drug")).lower() != pop.drug:
            raise CaseError(f"event {i}: drug {e.get('drug')!r} is not the model's ({pop.drug})")
    doses = doses_from_events(parse_scenario(events).events)
    levels = []
    obs = raw.get("observations", [])
    if not isinstance(obs, list):
        raise CaseError("case: 'observations' must be a list")
    for i, o in enumerate(obs):
        if not isinstance(o, Mapping) or not {"t_h", "conc_mg_l"} <= set(o) <= _LEVEL_KEYS:
            raise CaseError(
                f"observation {i}: must be an object with 't_h' and 'conc_mg_l' (and "
                "optionally 'comparator')"
            )
        if not all(
            isinstance(o[k], int | float) and not isinstance(o[k], bool)
            for k in ("t_h", "conc_mg_l")
        ):
            raise CaseError(f"observation {i}: 't_h' and 'conc_mg_l' must be numbers")
        comparator = o.get("comparator")
        if comparator is not None and comparator not in _CENSORED_BY:
            raise CaseError(
                f"observation {i}: comparator must be one of {', '.join(_CENSORED_BY)} "
                f"(a level reported as a bound), got {comparator!r}"
            )
        censored = _CENSORED_BY[comparator] if comparator is not None else None
        levels.append(Level(float(o["t_h"]), float(o["conc_mg_l"]), censored))
    times = raw.get("times_h")
    if times is not None:
        if not isinstance(times, list) or not all(
            isinstance(t, int | float) and not isinstance(t, bool) and t >= 0 for t in times
        ):
            raise CaseError("case: 'times_h' must be a list of numbers >= 0")
        times = [float(t) for t in times]
    allergies = raw.get("allergies", [])
    if not isinstance(allergies, list) or not all(isinstance(a, str) for a in allergies):
        raise CaseError("case: 'allergies' must be a list of texts")
    target = raw.get("target")
    if target is not None and not isinstance(target, Mapping):
        raise CaseError("case: 'target' must be a JSON object")
    t0, now_h = parse_clock(raw)
    return DosingCase(pop, patient, doses, levels, times, target, list(allergies), t0, now_h)


def parse_clock(raw: Mapping[str, Any]) -> tuple[str | None, float | None]:
    """A case's optional ``t0`` (ISO 8601 with an offset) and ``now_h`` (a number >= 0).

    >>> parse_clock({"t0": "2026-12-01T08:00:00+01:00", "now_h": 50})
    ('2026-12-01T08:00:00+01:00', 50.0)
    >>> parse_clock({"now_h": -1})
    Traceback (most recent call last):
    ...
    medtwin.pharmacology.case.CaseError: case: 'now_h' must be a number >= 0 (hours from hour 0), got -1
    """
    t0 = raw.get("t0")
    if t0 is not None:
        try:
            parsed = dt.datetime.fromisoformat(t0) if isinstance(t0, str) else None
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise CaseError(
                f"case: 't0' must be an ISO 8601 time with its offset "
                f"(e.g. 2026-12-01T08:00:00+01:00), got {t0!r}"
            )
    now = raw.get("now_h")
    if now is not None and (
        not isinstance(now, int | float)
        or isinstance(now, bool)
        or not math.isfinite(now)
        or now < 0
    ):
        raise CaseError(f"case: 'now_h' must be a number >= 0 (hours from hour 0), got {now!r}")
    return t0, (float(now) if now is not None else None)


def load_case(path: str | Path) -> DosingCase:
    """Read and validate a case file."""
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise CaseError(f"case {path}: cannot read ({exc.strerror})") from None
    except orjson.JSONDecodeError as exc:
        raise CaseError(f"case {path}: not valid JSON ({exc})") from None
    return parse_case(data)


def _regimen_summary(case: DosingCase, params: np.ndarray) -> dict[str, Any]:
    """AUC24 of the first day and, for the last repeated dose, at steady state; peak, trough."""
    pop = case.pop
    a, lam = pop.modes(params)
    out: dict[str, Any] = {}
    if not case.doses:
        return out
    t0 = first_dose_h(case.doses)
    out["auc24_first_day_mg_h_l"] = float(auc(a, lam, case.doses, t0, t0 + 24.0)[0])
    rep = [d for d in case.doses if d.every_h > 0]
    if rep:
        d = rep[-1]
        from medtwin.pharmacology.pk import steady_state_profile

        prof = steady_state_profile(
            a, lam, d.amount_mg, d.duration_h, d.every_h, np.array([d.duration_h, d.every_h])
        )
        out["auc24_steady_state_mg_h_l"] = float(24.0 / d.every_h * d.amount_mg / params[0, 0])
        out["peak_steady_state_mg_l"] = float(prof[0, 0])
        out["trough_steady_state_mg_l"] = float(prof[0, 1])
        out["steady_state_regimen"] = {
            "amount_mg": d.amount_mg,
            "duration_h": d.duration_h,
            "every_h": d.every_h,
        }
    return out


def _times(case: DosingCase) -> np.ndarray:
    if case.times_h is not None:
        return np.array(case.times_h)
    last = max((s + d.duration_h for d in case.doses for s in d.starts()), default=0.0)
    return np.arange(0.0, last + 24.0 + 1e-9, 1.0)


def simulate_case(case: DosingCase) -> dict[str, Any]:
    """Concentrations of the typical patient at ``times_h`` (default: hourly to 24 h after the
    last dose), the first day's AUC24 and, for a repeated regimen, steady-state AUC24, peak
    and trough."""
    params = case.pop.individual(case.patient)
    a, lam = case.pop.modes(params)
    t = _times(case)
    conc = concentrations(a, lam, case.doses, t)[0]
    names = case.pop.model.parameter_names()
    return {
        "model": case.pop.name,
        "params": dict(zip(names, params[0].tolist(), strict=True)),
        "crcl_ml_min": case.pop.check_patient(case.patient),
        "times_h": t.tolist(),
        "conc_mg_l": conc.tolist(),
        **_regimen_summary(case, params),
    }


def fit_case(case: DosingCase, *, n_samples: int = 1000) -> dict[str, Any]:
    """MAP fit to the case's observations, with predictions at ``times_h`` (with a 5-95 %
    band) and the regimen summary of the individual."""
    if not case.levels:
        raise TdmError("case: no observations to fit")
    fit = fit_map(case.pop, case.patient, case.doses, case.levels, n_samples=n_samples)
    t = _times(case)
    a, lam = case.pop.modes(fit.param_array[None, :])
    pred = concentrations(a, lam, case.doses, t)[0]
    sa, sl = case.pop.modes(fit.samples)
    band = np.percentile(concentrations(sa, sl, case.doses, t), [5, 95], axis=0)
    return {
        **fit.to_dict(),
        "times_h": t.tolist(),
        "conc_mg_l": pred.tolist(),
        "conc_band_5_95_mg_l": band.T.tolist(),
        **_regimen_summary(case, fit.param_array[None, :]),
    }
