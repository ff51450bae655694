"""A clinician's summary of one patient, built from the store.

Sections: demographics and identifiers, active and past problems, active
medications, allergies, latest vital signs and labs (value, unit, date), recent
encounters and immunizations. The CLI (``medtwin show``) and, later, the service
render it; ``--json`` prints it as is.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from medtwin.record.facts import (
    AllergyIntolerance,
    Condition,
    Demographics,
    Encounter,
    Immunization,
    MedicationRequest,
    Observation,
)
from medtwin.store.base import StoredFact
from medtwin.store.sql import SqlStore

__all__ = ["patient_summary"]

_ACTIVE_CONDITION = {"active", "recurrence", "relapse"}
_ACTIVE_MEDICATION = {"active", "on-hold", "draft"}


def _day(value: datetime | None) -> str | None:
    return value.date().isoformat() if value else None


def _age(birth: str | None, on: date) -> int | None:
    if not birth or len(birth) < 4:
        return None
    try:
        year = int(birth[:4])
        month = int(birth[5:7]) if len(birth) >= 7 else 7
        day = int(birth[8:10]) if len(birth) >= 10 else 1
    except ValueError:
        return None
    return on.year - year - ((on.month, on.day) < (month, day))


def _name(stored: StoredFact) -> str:
    code = stored.fact.code
    if code is None:
        return stored.fact.resource_type or stored.fact.kind
    return code.display or code.code


def _code(stored: StoredFact) -> str | None:
    code = stored.fact.code
    if code is None or not code.code:
        return None
    system = {
        "http://loinc.org": "LOINC",
        "http://snomed.info/sct": "SNOMED",
        "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
        "http://hl7.org/fhir/sid/cvx": "CVX",
    }.get(code.system, code.system)
    return f"{system} {code.code}"


def _value(fact: Observation) -> str:
    if fact.value_num is not None:
        number = f"{fact.value_num:.4g}" if abs(fact.value_num) < 1e5 else f"{fact.value_num:.0f}"
        unit = fact.unit or ""
        if unit.startswith("{") and unit.endswith("}"):
            unit = ""
        return f"{number} {unit}".strip()
    if fact.value_code is not None:
        return fact.value_code.display or fact.value_code.code
    return fact.value_text or "-"


def patient_summary(store: SqlStore, patient: str, *, today: date | None = None) -> dict[str, Any]:
    """Everything ``medtwin show`` prints about ``patient`` (a medtwin id or linked identifier)."""
    summary = store.patient(patient)
    facts = store.timeline(summary.id)
    today = today or date.today()
    demographics = [s for s in facts if isinstance(s.fact, Demographics)]
    demo = demographics[-1].fact if demographics else None
    assert demo is None or isinstance(demo, Demographics)
    deceased = demo.deceased if demo else None
    age_on = today
    if deceased and len(deceased) >= 10 and deceased[:4].isdigit():
        age_on = date.fromisoformat(deceased[:10])
    out: dict[str, Any] = {
        "id": summary.id,
        "name": summary.name,
        "gender": summary.gender,
        "birth_date": summary.birth_date,
        "age_years": _age(summary.birth_date, age_on),
        "deceased": deceased,
        "address": demo.address if demo else None,
        "identifiers": [{"system": i.system, "value": i.value} for i in summary.identifiers],
    }
    problems: list[dict[str, Any]] = []
    past: list[dict[str, Any]] = []
    for stored in facts:
        if isinstance(stored.fact, Condition):
            item = {
                "name": _name(stored),
                "code": _code(stored),
                "onset": _day(stored.fact.effective_start),
                "abated": _day(stored.fact.effective_end),
                "status": stored.fact.clinical_status,
            }
            active = stored.fact.clinical_status in _ACTIVE_CONDITION or (
                stored.fact.clinical_status is None and stored.fact.effective_end is None
            )
            (problems if active else past).append(item)
    out["problems"] = problems
    out["past_problems"] = past
    medications: dict[str, dict[str, Any]] = {}
    for stored in facts:
        if isinstance(stored.fact, MedicationRequest) and stored.fact.status in _ACTIVE_MEDICATION:
            fact = stored.fact
            dose = None
            if fact.dose_value is not None:
                dose = f"{fact.dose_value:g} {fact.dose_unit or ''}".strip()
            medications[_name(stored)] = {
                "name": _name(stored),
                "code": _code(stored),
                "since": _day(fact.effective_start),
                "dose": dose,
                "frequency_per_day": fact.frequency_per_day,
                "instructions": fact.dosage_text,
            }
    out["medications"] = list(medications.values())
    out["allergies"] = [
        {
            "name": _name(s),
            "code": _code(s),
            "criticality": s.fact.criticality,
            "reactions": list(s.fact.reactions),
            "since": _day(s.fact.effective_start),
        }
        for s in facts
        if isinstance(s.fact, AllergyIntolerance) and s.fact.clinical_status != "resolved"
    ]
    latest: dict[str, dict[str, StoredFact]] = {"vital-signs": {}, "laboratory": {}}
    for stored in facts:
        obs = stored.fact
        if not isinstance(obs, Observation) or obs.code is None:
            continue
        group = (
            "vital-signs"
            if obs.category == "vital-signs"
            else ("laboratory" if obs.category == "laboratory" else None)
        )
        if group is None:
            continue
        if obs.value_num is None and obs.value_code is None and obs.value_text is None:
            continue  # a panel: its components carry the values
        latest[group][obs.code.code] = stored
    for group, key in (("vital-signs", "vital_signs"), ("laboratory", "labs")):
        rows = sorted(latest[group].values(), key=lambda s: _name(s).lower())
        out[key] = [
            {
                "name": _name(s),
                "code": _code(s),
                "value": _value(s.fact),
                "value_num": s.fact.value_num,
                "unit": s.fact.unit,
                "date": _day(s.fact.effective_start),
            }
            for s in rows
            if isinstance(s.fact, Observation)
        ]
    encounters = [s for s in facts if isinstance(s.fact, Encounter)]
    out["recent_encounters"] = [
        {
            "date": _day(s.fact.effective_start),
            "type": _name(s),
            "class": s.fact.class_code,
            "reason": s.fact.reason,
        }
        for s in encounters[-5:][::-1]
        if isinstance(s.fact, Encounter)
    ]
    out["encounter_count"] = len(encounters)
    immunizations: dict[str, str | None] = {}
    for stored in facts:
        if isinstance(stored.fact, Immunization):
            immunizations[_name(stored)] = _day(stored.fact.effective_start)
    out["immunizations"] = [{"name": k, "last": v} for k, v in sorted(immunizations.items())]
    out["fact_count"] = len(facts)
    return out
