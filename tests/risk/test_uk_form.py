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

import copy
import datetime as dt
import json
import math
from typing import Any

import pytest

from medtwin.ingest import import_paths
from medtwin.ingest.snomed import snomed_table
from medtwin.record.codes import canonical_unit
from medtwin.record.units import convert
from medtwin.risk.from_record import evaluate
from medtwin.store import open_store
from medtwin.synth.generator import generate_patient, patient_rng

LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
TODAY = dt.date(2026, 6, 30)
PATIENTS = 25
SI_UNITS = ("mmol/L", "umol/L", "mmol/mol")
"""The units a UK laboratory reports what a US one reports in mg/dL or % (HbA1c)."""


def _snomed_for(loinc: str) -> tuple[str, str] | None:
    """The SNOMED CT observable whose LOINC candidates include ``loinc``, and the unit a UK
    laboratory gives it in (its SI candidate's, where the US unit is mg/dL or %), or ``None``."""
    for code, row in snomed_table().items():
        if loinc in row.loinc:
            unit = canonical_unit(loinc) or ""
            if unit in ("mg/dL", "%"):
                si = [u for c in row.loinc if (u := canonical_unit(c)) in SI_UNITS]
                unit = si[0] if si else unit
            return code, unit
    return None


def _uk_quantity(loinc: str, quantity: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    mapped = _snomed_for(loinc)
    if mapped is None:
        return None
    snomed, unit = mapped
    source_unit = quantity.get("code") or quantity.get("unit")
    value = quantity["value"]
    if unit and source_unit != unit:
        value = convert(float(value), str(source_unit), unit, analyte=loinc)
    return snomed, {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                    "code": unit}  # fmt: skip


def uk_form(bundle: dict[str, Any]) -> dict[str, Any]:
    """``bundle`` as UK general practice would record it (see the module)."""
    out = copy.deepcopy(bundle)
    for entry in out["entry"]:
        r = entry["resource"]
        if r["resourceType"] == "MedicationRequest":
            concept = r.get("medicationCodeableConcept")
            if concept:  # the name only, as a dm+d product is named ("Amlodipine 5 MG ...")
                r["medicationCodeableConcept"] = {"text": concept["coding"][0]["display"]}
            continue
        if r["resourceType"] != "Observation":
            continue
        coding = r["code"]["coding"][0]
        if coding["system"] != LOINC:
            continue
        if coding["code"] == "72166-2":  # the finding as the code, no value
            answer = r.pop("valueCodeableConcept")["coding"][0]
            r["code"] = {"coding": [{"system": SCT, "code": answer["code"],
                                     "display": answer.get("display")}]}  # fmt: skip
            continue
        if coding["code"] == "85354-9":
            r["code"] = {"coding": [{"system": SCT, "code": "75367002"}]}
            for component in r.get("component", ()):
                code = component["code"]["coding"][0]["code"]
                mapped = _uk_quantity(code, component["valueQuantity"])
                assert mapped is not None, code
                component["code"] = {"coding": [{"system": SCT, "code": mapped[0]}]}
                component["valueQuantity"] = mapped[1]
            continue
        if "valueQuantity" in r:
            mapped = _uk_quantity(coding["code"], r["valueQuantity"])
            if mapped is not None:
                r["code"] = {"coding": [{"system": SCT, "code": mapped[0]}]}
                r["valueQuantity"] = mapped[1]
    return out


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("forms")
    us, uk = [], []
    for index in range(PATIENTS):
        bundle = generate_patient(patient_rng(7, index), index, today=TODAY, seed=7)
        us.append(bundle)
        uk.append(uk_form(bundle))
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
    assert SCT in codes
    units = {
        e["resource"]["valueQuantity"]["unit"]
        for bundle in uk
        for e in bundle["entry"]
        if "valueQuantity" in e["resource"]
    }
    assert set(SI_UNITS) <= units  # cholesterol, creatinine, HbA1c (glucose stays mg/dL)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def test_every_risk_input_and_score_is_the_same(stores: Any) -> None:
    (us, uk), _ = stores
    compared = computed = 0
    treated: set[str] = set()
    for index in range(PATIENTS):
        ident = f"SYN-7-{index}"
        a = evaluate(us, us.resolve_patient(ident), TODAY, variation=False)
        b = evaluate(uk, uk.resolve_patient(ident), TODAY, variation=False)
        for name, x in a.inputs.items():
            y = b.inputs[name]
            assert (x.status, name) == (y.status, name), (ident, x, y)
            assert _same(x.value, y.value), (ident, name, x.value, y.value)
            compared += 1
            if name in ("statin", "bp_treated", "smoker") and y.value is True:
                treated.add(name)  # read from a drug's name / a finding as the code
        for s, t in zip(a.scores, b.scores, strict=True):
            assert (s.name, s.status) == (t.name, t.status), (ident, s.message, t.message)
            assert _same(s.value, t.value) and _same(s.low, t.low), (ident, s.name)
            computed += s.status == "computed"
    assert compared > 1000 and computed > 40
    assert treated == {"statin", "bp_treated", "smoker"}
