"""The same patients recorded the US way and the UK way give the same risk.

medtwin's synthetic patients (LOINC codes, US units, RxNorm) are rewritten as UK general
practice would record them: every result whose LOINC code a SNOMED CT observable of
``snomed_loinc.csv`` maps back to is coded in that observable only and given in SI units
(cholesterol in mmol/L, creatinine in umol/L, HbA1c in IFCC mmol/mol), blood pressure as GP
Connect's panel, the smoking status as its finding (the Observation's code, no value), and every
prescription only by its name. Both forms are imported into their own store; every input of the
risk scores and every score must be the same. This checks the SNOMED CT mapping, the choice of
LOINC code by unit, the SI conversions (molar masses, the HbA1c master equation) and the reading
of drugs by name against the US form, over years of check-ups of many people.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from typing import Any

import pytest

from medtwin.ingest import import_paths
from medtwin.record.codes import nhs_number
from medtwin.record.facts import Observation
from medtwin.risk.from_record import evaluate, parse_given
from medtwin.store import open_store
from medtwin.synth.generator import generate_patient, patient_rng
from medtwin.synth.uk import nhs_test_numbers, uk_form

SCT = "http://snomed.info/sct"
TODAY = dt.date(2026, 6, 30)
PATIENTS = 25
SI_UNITS = ("mmol/L", "umol/L", "mmol/mol")
"""The units a UK laboratory reports what a US one reports in mg/dL or % (HbA1c)."""
SAME_PEOPLE = parse_given(["race=white", "ethnicity=white"])
"""Race (US Core) and ethnicity (the NHS category) are recorded differently in the two forms by
design; given alike to both, every score can be compared."""
BY_COUNTRY = {"esc_country", "risk_region"}
"""Inputs the address country decides: the US form's patients live in the United States (no
ESC risk region), the UK form's in England."""
SCORE2_FAMILY = {"score2_10y", "score2_op_10y", "score2_diabetes_10y"}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("forms")
    us, uk = [], []
    numbers = nhs_test_numbers(7, PATIENTS)
    for index in range(PATIENTS):
        bundle = generate_patient(patient_rng(7, index), index, today=TODAY, seed=7)
        us.append(bundle)
        own = random.Random(f"uk-7-{index}")
        uk.append(uk_form(bundle, nhs=numbers[index], rng=own, lab_rounding=False))
    opened = []
    for name, bundles in (("us", us), ("uk", uk)):
        files = []
        for i, bundle in enumerate(bundles):
            file = folder / f"{name}-{i}.json"
            file.write_text(json.dumps(bundle), encoding="utf-8")
            files.append(file)
        store = open_store(str(folder / f"{name}.db"), actor="test")
        report = import_paths(store, files, workers=0)
        assert report.counts.get("quarantined", 0) == 0, (name, report.counts)
        opened.append(store)
    yield opened, uk
    for store in opened:
        store.close()


def test_the_uk_form_is_coded_the_uk_way(stores: Any) -> None:
    _, uk = stores
    codes = {
        c["system"]
        for bundle in uk
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        for c in e["resource"]["code"]["coding"]
    }
    # every result in SNOMED CT, none in LOINC: the direct LDL and the CKD-EPI 2021 eGFR too
    assert codes == {SCT}
    units = {
        e["resource"]["valueQuantity"]["unit"]
        for bundle in uk
        for e in bundle["entry"]
        if "valueQuantity" in e["resource"]
    }
    assert set(SI_UNITS) <= units  # cholesterol, glucose, creatinine, HbA1c
    assert "mg/dL" not in units and "%" not in units


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def test_every_risk_input_and_score_is_the_same(stores: Any) -> None:
    (us, uk), _ = stores
    compared = computed = score2 = 0
    treated: set[str] = set()
    for index in range(PATIENTS):
        ident = f"SYN-7-{index}"
        a = evaluate(us, us.resolve_patient(ident), TODAY, variation=False, given=SAME_PEOPLE)
        b = evaluate(uk, uk.resolve_patient(ident), TODAY, variation=False, given=SAME_PEOPLE)
        for name, x in a.inputs.items():
            if name in BY_COUNTRY:
                continue
            y = b.inputs[name]
            assert (x.status, name) == (y.status, name), (ident, x, y)
            assert _same(x.value, y.value), (ident, name, x.value, y.value)
            compared += 1
            if name in ("statin", "bp_treated", "smoker") and y.value is True:
                treated.add(name)  # read from a drug's name / a finding as the code
        for s, t in zip(a.scores, b.scores, strict=True):
            if s.name in SCORE2_FAMILY:
                # not for the United States; in England, for whom it applies
                assert s.status == "refused" and "no ESC cardiovascular risk region" in s.message
                score2 += t.status == "computed"
                continue
            assert (s.name, s.status) == (t.name, t.status), (ident, s.message, t.message)
            assert _same(s.value, t.value) and _same(s.low, t.low), (ident, s.name)
            computed += s.status == "computed"
    assert compared > 1000 and computed > 40 and score2 >= 5
    assert treated == {"statin", "bp_treated", "smoker"}


def test_glucose_in_mmol_per_litre_reads_as_the_same_blood_glucose(stores: Any) -> None:
    """The UK form gives the random glucose as "Blood glucose level" (997671000000106) in
    mmol/L; imported, it is LOINC 2339-0 in mg/dL again, equal to the US form's value."""
    (us, uk), bundles = stores
    sent = [
        e["resource"]
        for bundle in bundles
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["code"]["coding"][0]["code"] == "997671000000106"
    ]
    assert sent and {r["valueQuantity"]["unit"] for r in sent} == {"mmol/L"}
    assert all(len(r["code"]["coding"]) == 1 for r in sent)  # no LOINC coding beside it
    compared = 0
    for index in range(PATIENTS):
        ident = f"SYN-7-{index}"
        a = us.timeline(us.resolve_patient(ident), codes=["2339-0"])
        b = uk.timeline(uk.resolve_patient(ident), codes=["2339-0"])
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            us_fact, uk_fact = x.fact, y.fact
            assert isinstance(us_fact, Observation) and isinstance(uk_fact, Observation)
            assert (uk_fact.unit, uk_fact.original_unit) == ("mg/dL", "mmol/L")
            assert us_fact.value_num is not None and uk_fact.value_num is not None
            assert math.isclose(us_fact.value_num, uk_fact.value_num, rel_tol=1e-9)
            compared += 1
    assert compared == len(sent)


def test_the_uk_form_is_a_uk_record(stores: Any) -> None:
    """NHS test numbers that pass their check, the NHS ethnic category, an English address,
    times at English clock time, drugs by dm+d-style names only."""
    (_, store), uk = stores
    seen = set()
    for bundle in uk:
        resources = [e["resource"] for e in bundle["entry"]]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        nhs = patient["identifier"][0]["value"]
        assert nhs.startswith("999") and nhs_number(nhs) == nhs and nhs not in seen
        seen.add(nhs)
        assert patient["address"][0]["country"] == "GB"
        (category,) = [e for e in patient["extension"] if "EthnicCategory" in e["url"]]
        assert category["valueCodeableConcept"]["coding"][0]["code"] in "ABCDEFGHJKLMNPRS"
        assert not any("us-core" in e["url"] for e in patient["extension"])
        for r in resources:
            when = r.get("effectiveDateTime") or r.get("authoredOn") or ""
            assert len(when) < 17 or when.endswith(("+00:00", "+01:00")), when
            if r["resourceType"] == "MedicationRequest":
                assert set(r["medicationCodeableConcept"]) == {"text"}
        assert store.resolve_patient(f"https://fhir.nhs.uk/Id/nhs-number|{nhs}")


def test_rounded_as_a_laboratory_reports(stores: Any) -> None:
    """With the laboratory's rounding (the default), cholesterol has one decimal, creatinine and
    HbA1c none."""
    bundle = generate_patient(patient_rng(7, 3), 3, today=TODAY, seed=7)
    uk = uk_form(bundle, nhs=nhs_test_numbers(7, 4)[3], rng=random.Random(1))
    units = {
        e["resource"]["valueQuantity"]["unit"]: e["resource"]["valueQuantity"]["value"]
        for e in uk["entry"]
        if "valueQuantity" in e["resource"]
    }
    assert units["mmol/L"] == round(units["mmol/L"], 1)
    assert isinstance(units["umol/L"], int) and isinstance(units["mmol/mol"], int)
