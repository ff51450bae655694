"""A clinician's summary of one patient, built from the store.

Sections: demographics and identifiers, active and past problems, active medications,
allergies (each problem and allergy once: :func:`_merged_problems`), latest vital signs and
labs (value as sent, unit, date; a cancelled test left out; the newest per code picked in the
database, :meth:`~medtwin.store.sql.SqlStore.latest`), recent encounters (not planned or
cancelled ones), immunizations (not one not given) and, for a patient who has died, how many
facts are dated after the death. The CLI (``medtwin show``) and, later, the service render
it; ``--json`` prints it as is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from medtwin.record.codes import lookup
from medtwin.record.facts import (
    FACT_KINDS,
    LOINC,
    NOT_DONE_STATUSES,
    AllergyIntolerance,
    Coding,
    Condition,
    Demographics,
    Encounter,
    Identifier,
    Immunization,
    MedicationRequest,
    Observation,
    death_date,
    value_comparator,
)
from medtwin.record.medications import NOT_ORDERED_INTENTS
from medtwin.record.smoking import SMOKING_STATUS_LOINC
from medtwin.store.base import StoredFact
from medtwin.store.sql import SqlStore

__all__ = ["CLINICAL_LABELS", "patient_summary", "sent_otherwise", "unit_label"]

_ACTIVE_CONDITION = {"active", "recurrence", "relapse"}
_SUSPECTED_CONDITION = {"unconfirmed", "provisional", "differential"}
"""FHIR R4 condition-ver-status codes of a diagnosis not yet established: listed, marked."""
_RULED_OUT_CONDITION = {"refuted", "entered-in-error"}
"""A diagnosis ruled out or recorded in error: not a problem of the patient's (counted)."""
_ACTIVE_MEDICATION = {"active", "on-hold", "draft"}
_NOT_HAPPENED_ENCOUNTER = {"planned", "cancelled"}


_IDENTIFIER_LABELS = {
    "http://hl7.org/fhir/sid/us-ssn": "SSN",
    "urn:oid:2.16.840.1.113883.4.1": "SSN",
    "urn:oid:2.16.840.1.113883.4.3.25": "Driver's licence",
    "http://standardhealthrecord.org/fhir/StructureDefinition/passportNumber": "Passport",
    "https://github.com/synthetichealth/synthea": "Synthea id",
    "https://medtwin.org/fhir/sid/synthetic-mrn": "MRN (synthetic)",
    # the NHS number is the patient's clinical identifier in the UK: shown whole, 3-3-4 as NHS
    # systems print it
    "https://fhir.nhs.uk/Id/nhs-number": "NHS number",
    "http://fhir.nhs.net/Id/nhs-number": "NHS number",
    "urn:oid:2.16.840.1.113883.2.1.4.1": "NHS number",
}
# National identifiers are shown masked: the last four characters only.
_MASKED = {"SSN", "Passport", "Driver's licence"}


def _identifiers(identifiers: Sequence[Identifier]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for ident in identifiers:
        if ident.system.startswith("urn:medtwin:") or ident.value in seen:
            continue
        seen.add(ident.value)
        label = _IDENTIFIER_LABELS.get(ident.system, "")
        value = ident.value
        if label in _MASKED and len(value) > 4:
            value = "*" * (len(value) - 4) + value[-4:]
        elif label == "NHS number" and len(value) == 10 and value.isdigit():
            value = f"{value[:3]} {value[3:6]} {value[6:]}"
        out.append({"system": ident.system, "label": label, "value": value})
    return out


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


# Short labels a clinician reads at a glance, for the commonest LOINC codes; others show
# their display text (shortened).
CLINICAL_LABELS = {
    "8480-6": "Systolic BP",
    "8462-4": "Diastolic BP",
    "8478-0": "Mean arterial pressure",
    "8867-4": "Heart rate",
    "9279-1": "Respiratory rate",
    "59408-5": "SpO2 (pulse oximetry)",
    "2708-6": "SaO2 (arterial)",
    "8310-5": "Body temperature",
    "8302-2": "Height",
    "29463-7": "Weight",
    "39156-5": "BMI",
    "72514-3": "Pain score (0-10)",
    "2093-3": "Total cholesterol",
    "14647-2": "Total cholesterol",  # in mmol/L (UK and European laboratories)
    "2085-9": "HDL cholesterol",
    "14646-4": "HDL cholesterol",
    "22748-8": "LDL cholesterol",
    "2089-1": "LDL cholesterol",
    "18262-6": "LDL cholesterol (direct)",
    "13457-7": "LDL cholesterol (calculated)",
    "2571-8": "Triglycerides",
    "4548-4": "HbA1c",
    "59261-8": "HbA1c (IFCC)",
    "2339-0": "Glucose (blood)",
    "2345-7": "Glucose (serum/plasma)",
    "2160-0": "Creatinine",
    "14682-9": "Creatinine",
    "38483-4": "Creatinine (blood)",
    "98979-8": "eGFR (CKD-EPI 2021)",
    "62238-1": "eGFR (CKD-EPI)",
    "33914-3": "eGFR (MDRD)",
    "69405-9": "eGFR",
    "6299-2": "Urea nitrogen (BUN)",
    "3094-0": "Urea nitrogen (BUN)",
    "2951-2": "Sodium",
    "2947-0": "Sodium (blood)",
    "2823-3": "Potassium",
    "6298-4": "Potassium (blood)",
    "2075-0": "Chloride",
    "2069-3": "Chloride (blood)",
    "2028-9": "Bicarbonate (CO2)",
    "20565-8": "Bicarbonate (CO2)",
    "17861-6": "Calcium",
    "49765-1": "Calcium",
    "718-7": "Haemoglobin",
    "4544-3": "Haematocrit",
    "6690-2": "White cells",
    "789-8": "Red cells",
    "777-3": "Platelets",
    "1742-6": "ALT",
    "1920-8": "AST",
    "6768-6": "Alkaline phosphatase",
    "1975-2": "Bilirubin (total)",
    "1751-7": "Albumin",
    "14959-1": "Urine albumin/creatinine",
    "9318-7": "Urine albumin/creatinine",
    "64218-1": "Cigarettes a day",
    "6301-6": "INR",
}

_UNIT_LABELS = {
    "mm[Hg]": "mmHg",
    "Cel": "°C",
    "[degF]": "°F",
    "kg/m2": "kg/m²",
    "mL/min/{1.73_m2}": "mL/min/1.73m²",
    "10*3/uL": "×10³/µL",
    "10*6/uL": "×10⁶/µL",
    "10*9/L": "×10⁹/L",
    "ug/dL": "µg/dL",
    "umol/L": "µmol/L",
    "[lb_av]": "lb",
    "[in_i]": "in",
}


def unit_label(unit: str | None) -> str:
    """A UCUM unit as a clinician writes it (``mm[Hg]`` -> ``mmHg``); annotations dropped."""
    if not unit:
        return ""
    if unit in _UNIT_LABELS:
        return _UNIT_LABELS[unit]
    if unit.startswith("{") and unit.endswith("}"):
        return ""
    return unit.replace("{", "").replace("}", "")


def _name(stored: StoredFact) -> str:
    code = stored.fact.code
    if code is None:
        return stored.fact.resource_type or stored.fact.kind
    if code.system == "http://loinc.org" and code.code in CLINICAL_LABELS:
        return CLINICAL_LABELS[code.code]
    text = (code.display or code.code).translate(_INVISIBLE)
    return text if len(text) <= 60 else text[:57].rstrip() + "..."


ENCOUNTER_CLASSES = {
    "AMB": "ambulatory",
    "EMER": "emergency",
    "FLD": "field",
    "HH": "home health",
    "IMP": "inpatient encounter",
    "ACUTE": "inpatient acute",
    "NONAC": "inpatient non-acute",
    "OBSENC": "observation encounter",
    "PRENC": "pre-admission",
    "SS": "short stay",
    "VR": "virtual",
}
"""The FHIR R4 encounter classes (HL7 v3 ActEncounterCode, the value set v3-ActEncounterCode)
by their display names: what an encounter is called when it has no type (an HL7 v2 PV1 gives
only the patient class, PV1-2, mapped to these at import)."""


def _encounter_type(stored: StoredFact) -> str:
    """An encounter's type (its code's display), else its class, else "encounter": never the
    name of the segment or resource it came from."""
    if stored.fact.code is not None:
        return _name(stored)
    klass = getattr(stored.fact, "class_code", None)
    return ENCOUNTER_CLASSES.get(klass or "", klass or "encounter")


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
"""Zero-width characters some sources put in displays (Synthea's "Globulin [Mass/\u200bvolume]"):
invisible, but they break the summary's columns and a search for the words."""


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


def _loinc_category(code: Coding) -> str | None:
    """medtwin's observation category for a LOINC code (``loinc.csv``), else ``None``."""
    if code.system != LOINC:
        return None
    info = lookup(LOINC, code.code)
    category = info.extra.get("category") if info is not None else None
    return str(category) if category else None


def _number(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"


def _sent_digits(fact: Observation, value: float) -> str | None:
    """``value`` written as the source's resource wrote it, where it holds the number: "5.0"
    for a FHIR ``"value": 5.0`` (a laboratory's one decimal), which a float prints as 5."""
    raw = fact.raw
    quantity = raw.get("valueQuantity") if isinstance(raw, Mapping) else None
    sent = quantity.get("value") if isinstance(quantity, Mapping) else None
    if isinstance(sent, bool) or not isinstance(sent, int | float) or float(sent) != value:
        return None  # a component, another source, or a value the fact does not hold as sent
    text = repr(sent) if isinstance(sent, float) else str(sent)
    # only the trailing zeros the float lost ("1.0", "177.0"): a source's long decimals
    # (Synthea's 3.6734...) are still shown to four significant digits
    shown = _number(value)
    return text if "." in text and text.rstrip("0").rstrip(".") == shown else None


def _value(fact: Observation) -> str:
    """The value as the source sent it: a glucose sent as 5.4 mmol/L is shown so, not as the
    97.3 mg/dL medtwin computes with (``value_num`` / ``unit`` keep that), and with the
    decimals the source wrote when its resource is at hand ("1.0 mmol/L")."""
    if fact.value_num is not None:
        bound = value_comparator(fact) or ""  # ">90": a bound is shown as one
        if sent_otherwise(fact):
            assert fact.original_value is not None
            sent = _sent_digits(fact, fact.original_value) or _number(fact.original_value)
            return f"{bound}{sent} {unit_label(fact.original_unit)}".strip()
        shown = _sent_digits(fact, fact.value_num) or _number(fact.value_num)
        return f"{bound}{shown} {unit_label(fact.unit)}".strip()
    if fact.value_code is not None:
        return fact.value_code.display or fact.value_code.code
    return fact.value_text or "-"


def _key(item: Mapping[str, Any]) -> str:
    """What makes two list entries the same problem or allergy: the code, else the name."""
    return str(item["code"] or item["name"]).lower()


def _merged_problems(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per problem (code, else name): a record holds the same diagnosis from several
    sources or encounters, and a problem that came back has an entry per episode. The
    earliest onset, the latest abatement; suspected only while every record of it is;
    ``records`` counts them. In the order each was first recorded."""
    merged: dict[str, dict[str, Any]] = {}
    for item in items:
        key = _key(item)
        seen = merged.get(key)
        if seen is None:
            merged[key] = {**item, "records": 1}
            continue
        seen["records"] += 1
        seen["onset"] = _earliest(seen["onset"], item["onset"])
        seen["abated"] = _latest(seen["abated"], item["abated"])
        if seen["suspected"] and not item["suspected"]:
            seen.update(verification=item["verification"], suspected=False)
    return list(merged.values())


_CRITICALITY_ORDER = {"high": 3, "unable-to-assess": 2, "low": 1}
"""FHIR R4 allergy-intolerance-criticality, the most severe first when records differ."""


def _merged_allergies(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per allergy (code, else name), as :func:`_merged_problems`: the highest
    criticality any record gives, every reaction once, the earliest date; unconfirmed only
    while every record of it is."""
    merged: dict[str, dict[str, Any]] = {}
    for item in items:
        key = _key(item)
        seen = merged.get(key)
        if seen is None:
            merged[key] = {**item, "reactions": list(item["reactions"]), "records": 1}
            continue
        seen["records"] += 1
        if _CRITICALITY_ORDER.get(item["criticality"] or "", 0) > _CRITICALITY_ORDER.get(
            seen["criticality"] or "", 0
        ):
            seen["criticality"] = item["criticality"]
        seen["reactions"] += [r for r in item["reactions"] if r not in seen["reactions"]]
        seen["since"] = _earliest(seen["since"], item["since"])
        seen["unconfirmed"] = seen["unconfirmed"] and item["unconfirmed"]
    return list(merged.values())


def _earliest(a: str | None, b: str | None) -> str | None:
    return min((d for d in (a, b) if d), default=None)


def _latest(a: str | None, b: str | None) -> str | None:
    return max((d for d in (a, b) if d), default=None)


def sent_otherwise(fact: Observation) -> bool:
    """Whether the source sent ``fact``'s value in another unit than the one it is stored in
    (pounds, degrees Fahrenheit, a glucose in mmol/L); a unit only spelt otherwise ("mmol/l")
    with the same number is not."""
    return (
        fact.original_value is not None
        and fact.value_num is not None
        and fact.original_unit is not None
        and fact.original_unit != fact.unit
        and not math.isclose(fact.original_value, fact.value_num, rel_tol=1e-12)
    )


def patient_summary(store: SqlStore, patient: str, *, today: date | None = None) -> dict[str, Any]:
    """Everything ``medtwin show`` prints about ``patient`` (a medtwin id or linked identifier)."""
    summary = store.patient(patient)
    # everything but the observations, and of those the newest per code (read in the
    # database: a year of minute-by-minute wearable readings costs one row per code)
    facts = store.timeline(summary.id, kinds=[k for k in FACT_KINDS if k != "Observation"])
    newest_observations = store.latest(summary.id, include_raw=True)
    today = today or date.today()
    demographics = [s for s in facts if isinstance(s.fact, Demographics)]
    demo = demographics[-1].fact if demographics else None
    assert demo is None or isinstance(demo, Demographics)
    deceased = demo.deceased if demo else None
    died = death_date(deceased)
    age_on = died or today
    out: dict[str, Any] = {
        "id": summary.id,
        "name": summary.name,
        "gender": summary.gender,
        "birth_date": summary.birth_date,
        "age_years": _age(summary.birth_date, age_on),
        "deceased": deceased,
        "address": demo.address if demo else None,
        "identifiers": _identifiers(summary.identifiers),
    }
    problems: list[dict[str, Any]] = []
    past: list[dict[str, Any]] = []
    ruled_out: list[dict[str, Any]] = []
    for stored in facts:
        if isinstance(stored.fact, Condition):
            verification = stored.fact.verification_status
            item = {
                "name": _name(stored),
                "code": _code(stored),
                "onset": _day(stored.fact.effective_start),
                "abated": _day(stored.fact.effective_end),
                "status": stored.fact.clinical_status,
                "verification": verification,
                "suspected": verification in _SUSPECTED_CONDITION,
            }
            if verification in _RULED_OUT_CONDITION:
                ruled_out.append(item)
                continue
            active = stored.fact.clinical_status in _ACTIVE_CONDITION or (
                stored.fact.clinical_status is None and stored.fact.effective_end is None
            )
            (problems if active else past).append(item)
    out["problems"] = _merged_problems(problems)
    # a past episode of a problem active now is not a resolved problem
    active_keys = {_key(item) for item in out["problems"]}
    out["past_problems"] = _merged_problems(i for i in past if _key(i) not in active_keys)
    out["ruled_out_problems"] = _merged_problems(ruled_out)
    medications: dict[str, dict[str, Any]] = {}
    for stored in facts:
        if (
            isinstance(stored.fact, MedicationRequest)
            and stored.fact.status in _ACTIVE_MEDICATION
            and stored.fact.intent not in NOT_ORDERED_INTENTS
        ):
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
    out["allergies"] = _merged_allergies(
        {
            "name": _name(s),
            "code": _code(s),
            "criticality": s.fact.criticality,
            "reactions": list(s.fact.reactions),
            "since": _day(s.fact.effective_start),
            "unconfirmed": s.fact.status == "unconfirmed",
        }
        for s in facts
        if isinstance(s.fact, AllergyIntolerance)
        and s.fact.clinical_status not in ("resolved", "inactive")
        and s.fact.status != "refuted"
    )
    latest: dict[str, dict[str, StoredFact]] = {"vital-signs": {}, "laboratory": {}}
    for stored in newest_observations.values():  # cancelled tests are not among them
        obs = stored.fact
        if not isinstance(obs, Observation) or obs.code is None:
            continue
        # the source's category; without one (GP Connect sends none), medtwin's for the LOINC
        # code (record/data/loinc.csv)
        category = obs.category or _loinc_category(obs.code)
        group = category if category in ("vital-signs", "laboratory") else None
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
                "original_value": s.fact.original_value,
                "original_unit": s.fact.original_unit,
                "date": _day(s.fact.effective_start),
            }
            for s in rows
            if isinstance(s.fact, Observation)
        ]
    # an encounter planned or cancelled has not happened (FHIR R4 encounter-status)
    encounters = [
        s
        for s in facts
        if isinstance(s.fact, Encounter) and s.fact.status not in _NOT_HAPPENED_ENCOUNTER
    ]
    out["recent_encounters"] = [
        {
            "date": _day(s.fact.effective_start),
            "type": _encounter_type(s),
            "class": s.fact.class_code,
            "reason": s.fact.reason,
        }
        for s in encounters[-5:][::-1]
        if isinstance(s.fact, Encounter)
    ]
    out["encounter_count"] = len(encounters)
    # the newest smoking status (LOINC 72166-2; a UK finding recorded as the code is stored so)
    newest = newest_observations.get(SMOKING_STATUS_LOINC)
    if newest is not None and not (
        isinstance(newest.fact, Observation)
        and newest.fact.code is not None
        and newest.fact.code.system == LOINC
        and (newest.fact.value_code is not None or newest.fact.value_text)
    ):
        newest = None
    out["smoking"] = (
        {
            "status": _value(newest.fact),
            "code": (f"SNOMED {newest.fact.value_code.code}" if newest.fact.value_code else None),
            "date": _day(newest.fact.effective_start),
        }
        if newest is not None and isinstance(newest.fact, Observation)
        else None
    )
    immunizations: dict[str, str | None] = {}
    for stored in facts:
        if isinstance(stored.fact, Immunization) and stored.fact.status not in NOT_DONE_STATUSES:
            immunizations[_name(stored)] = _day(stored.fact.effective_start)
    out["immunizations"] = [{"name": k, "last": v} for k, v in sorted(immunizations.items())]
    out["fact_count"] = store.count_facts(summary.id)
    # a record that goes on after the death it records has an error in it: say how much
    out["facts_after_death"] = (
        store.count_facts(summary.id, after=datetime.combine(died, time.max, tzinfo=UTC))
        if died
        else 0
    )
    return out
