"""A dosing case read from the patient's record (``medtwin dose ... --patient P``).

From the store, for one patient and one dosing model:

- covariates: age and sex (demographics), the latest body weight (LOINC 29463-7), height
  (8302-2) and serum creatinine (2160-0, mg/dL; umol/L divided by 88.42), dialysis when an
  active condition "dependence on renal dialysis" (SNOMED CT 105502003) or a haemodialysis
  procedure (302497006) in the last 7 days is recorded;
- doses: ``MedicationAdministration`` facts whose code names the drug (mg or g), as
  ``infusion`` events (duration from the administration's start and end, 0 = bolus);
- levels: observations of the model's LOINC codes (mg/L = ug/mL);
- allergies: active ``AllergyIntolerance`` facts (code text and reactions).

Hours count from the first dose. Missing covariates are refused naming what is missing.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from medtwin.pharmacology.antibiotics import get_pop_model
from medtwin.pharmacology.case import CaseError, DosingCase, parse_case
from medtwin.store.base import Store

__all__ = ["CREATININE_CODES", "case_from_store"]

CREATININE_CODES = ("2160-0",)
"""Creatinine [Mass/volume] in Serum or Plasma."""
DIALYSIS_CONDITION = "105502003"
HAEMODIALYSIS_PROCEDURE = "302497006"
UMOL_PER_MG_DL = 88.42


def _hours(t: dt.datetime, t0: dt.datetime) -> float:
    return (t - t0).total_seconds() / 3600.0


def case_from_store(
    store: Store, patient: str, model: str, *, target: dict[str, Any] | None = None
) -> DosingCase:
    """The dosing case of ``patient`` for ``model`` from the record (see the module docstring)."""
    from medtwin.twin.twin import HEIGHT_CODE, WEIGHT_CODE, characteristics

    pop = get_pop_model(model)
    pid = store.resolve_patient(patient)
    now = dt.datetime.now(dt.UTC)
    who = characteristics(store, pid, now)
    latest = store.latest(pid, codes=[WEIGHT_CODE, HEIGHT_CODE, *CREATININE_CODES])
    cov: dict[str, Any] = {}
    if "age_y" in who:
        cov["age_years"] = round(float(who["age_y"]), 2)
    if "sex" in who:
        cov["sex"] = who["sex"]
    if "weight_kg" in who:
        cov["weight_kg"] = who["weight_kg"]
    if "height_m" in who:
        cov["height_cm"] = round(float(who["height_m"]) * 100.0, 1)
    for code in CREATININE_CODES:
        sf = latest.get(code)
        value = getattr(sf.fact, "value_num", None) if sf is not None else None
        if sf is not None and value is not None:
            unit = (getattr(sf.fact, "unit", "") or "").lower()
            cov["creatinine_mg_dl"] = (
                float(value) / UMOL_PER_MG_DL if "umol" in unit else float(value)
            )
            break
    missing = [k for k in ("age_years", "sex", "weight_kg", "creatinine_mg_dl") if k not in cov]
    if missing:
        raise CaseError(
            f"patient {patient}: the record has no {', '.join(missing)} "
            "(birth date, gender, body weight LOINC 29463-7, serum creatinine LOINC 2160-0)"
        )
    dialysis = any(c.endswith(f"|{DIALYSIS_CONDITION}") for c in who.get("conditions", ()))
    for sf in store.timeline(pid, kinds=["Procedure"], start=now - dt.timedelta(days=7)):
        if sf.fact.code is not None and sf.fact.code.code == HAEMODIALYSIS_PROCEDURE:
            dialysis = True
    cov["dialysis"] = dialysis
    drug = re.compile(rf"\b{re.escape(pop.drug)}\b", re.IGNORECASE)
    admins = []
    for sf in store.timeline(pid, kinds=["MedicationAdministration"]):
        f = sf.fact
        text = " ".join(x for x in ((f.code.display or "", f.code.code) if f.code else ()) if x)
        dose = getattr(f, "dose_value", None)
        unit = (getattr(f, "dose_unit", "") or "").lower()
        if f.effective_start is None or not drug.search(text) or dose is None:
            continue
        if unit not in {"mg", "g"}:
            raise CaseError(
                f"patient {patient}: {pop.drug} dose {sf.fact.source_id} in {unit!r} (mg or g needed)"
            )
        admins.append(
            (f.effective_start, f.effective_end, float(dose) * (1000.0 if unit == "g" else 1.0))
        )
    if not admins:
        raise CaseError(f"patient {patient}: no {pop.drug} administrations in the record")
    admins.sort(key=lambda x: x[0])
    t0 = admins[0][0]
    events = [
        {
            "type": "infusion",
            "drug": pop.drug,
            "t_h": _hours(start, t0),
            "amount_mg": amount,
            "duration_h": max(_hours(end, start), 0.0) if end is not None else 0.0,
        }
        for start, end, amount in admins
    ]
    codes = [c for o in pop.model.observables for c in o.loinc]
    observations = []
    for sf in store.timeline(pid, codes=codes):
        value = getattr(sf.fact, "value_num", None)
        if sf.fact.effective_start is None or value is None:
            continue
        unit = (getattr(sf.fact, "unit", "") or "mg/L").lower()
        if unit not in {"mg/l", "ug/ml", "µg/ml"}:
            raise CaseError(
                f"patient {patient}: level {sf.fact.source_id} in {unit!r} (mg/L needed)"
            )
        observations.append({"t_h": _hours(sf.fact.effective_start, t0), "conc_mg_l": float(value)})
    allergies = []
    for sf in store.timeline(pid, kinds=["AllergyIntolerance"]):
        f = sf.fact
        if getattr(f, "clinical_status", None) in {"inactive", "resolved"}:
            continue
        parts = [f.code.display or f.code.code] if f.code is not None else []
        parts += list(getattr(f, "reactions", ()) or ())
        allergies.append(" ".join(p for p in parts if p))
    raw: dict[str, Any] = {
        "model": model,
        "patient": cov,
        "events": events,
        "observations": observations,
        "allergies": allergies,
    }
    if target:
        raw["target"] = target
    return parse_case(raw)
