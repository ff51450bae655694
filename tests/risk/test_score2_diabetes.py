"""SCORE2-Diabetes (ESC 2023): the paper's and an independent implementation's examples, the
published coefficients against the authors' program term by term, a hand-written
implementation, the HbA1c master equation, bands, refusals (age, severe target-organ damage,
diagnosis after today), registry, and from the record (type 2 diabetes, age at diagnosis)."""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

import numpy as np
import pytest
from tests.risk.records import lab, registered, smoking_status

from medtwin.risk import get
from medtwin.risk.score2 import CHOLESTEROL_MG_PER_MMOL, REGIONS, coefficients
from medtwin.risk.score2_diabetes import SCORE2_DIABETES, hba1c_mmol_mol, hba1c_percent

MMOL = CHOLESTEROL_MG_PER_MMOL
FILE = "score2_diabetes_2023.toml"
KEYS = ("age", "smoking", "sbp", "diabetes", "tchol", "hdl", "smoking*age", "sbp*age",
        "diabetes*age", "tchol*age", "hdl*age", "diabetes*agediab", "hba1c", "egfr",
        "egfr*egfr", "hba1c*age", "egfr*age")  # fmt: skip
# The published model (SCORE2-Diabetes 2023, supplementary methods) by hand, in KEYS order,
# then the 10-year baseline survival.
PUBLISHED = {
    "male": (0.5368, 0.4774, 0.1322, 0.6457, 0.1102, -0.1087, -0.0672, -0.0268, -0.0983,
             -0.0181, 0.0095, -0.0998, 0.0955, -0.0591, 0.0058, -0.0134, 0.0115, 0.9605),
    "female": (0.6624, 0.6139, 0.1421, 0.8096, 0.1127, -0.1568, -0.1122, -0.0167, -0.1272,
               -0.0200, 0.0186, -0.1180, 0.1173, -0.0640, 0.0062, -0.0196, 0.0169, 0.9776),
}  # fmt: skip
# The authors' Stata program score2dmrisk (Apr 2022): SCORE2's coefficient plus the fully
# adjusted term of the diabetes cohorts, for the SCORE2 terms; the diabetes terms as they are.
_SCORE2 = {
    "male": dict(zip(KEYS[:11], (0.3742, 0.6012, 0.2777, 0.6457, 0.1458, -0.2698, -0.0755,
                                 -0.0255, -0.0983, -0.0281, 0.0426), strict=True)),
    "female": dict(zip(KEYS[:11], (0.4648, 0.7744, 0.3131, 0.8096, 0.1002, -0.2606, -0.1088,
                                   -0.0277, -0.1272, -0.0226, 0.0613), strict=True)),
}  # fmt: skip
_FULLADJ = {
    "male": {"age": 0.1626, "sbp": -0.1454, "tchol": -0.0356, "hdl": 0.1611, "smoking": -0.1238,
             "sbp*age": -0.0013, "tchol*age": 0.0100, "hdl*age": -0.0331, "smoking*age": 0.0083},
    "female": {"age": 0.1976, "sbp": -0.1709, "tchol": 0.0126, "hdl": 0.1038,
               "smoking": -0.1605, "sbp*age": 0.0111, "tchol*age": 0.0026, "hdl*age": -0.0426,
               "smoking*age": -0.0033},
}  # fmt: skip
_EXTRA = {
    "male": (-0.0998, 0.0955, -0.0591, 0.0058, -0.0134, 0.0115),
    "female": (-0.1180, 0.1173, -0.0640, 0.0062, -0.0196, 0.0169),
}


def _program(sex: str) -> dict[str, float]:
    out = {k: v + _FULLADJ[sex].get(k, 0.0) for k, v in _SCORE2[sex].items()}
    out.update(zip(KEYS[11:], _EXTRA[sex], strict=True))
    return out


def _row(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "age_years": 60, "sex": "male", "smoker": False, "systolic_bp_mm_hg": 140,
        "total_cholesterol_mg_dl": 5.5 * MMOL, "hdl_mg_dl": 1.3 * MMOL,
        "age_at_diabetes_diagnosis_years": 60, "hba1c_percent": hba1c_percent(50),
        "egfr_ml_min_1_73m2": 90, "risk_region": "moderate",
    }  # fmt: skip
    base.update(kw)
    return base


def _by_hand(r: dict[str, Any]) -> float:
    """Risk (%) written out from the published numbers."""
    b = PUBLISHED[r["sex"]]
    a = (r["age_years"] - 60) / 5
    s = (r["systolic_bp_mm_hg"] - 120) / 20
    t = r["total_cholesterol_mg_dl"] / MMOL - 6
    h = (r["hdl_mg_dl"] / MMOL - 1.3) / 0.5
    d = (r["age_at_diabetes_diagnosis_years"] - 50) / 5
    g = ((r["hba1c_percent"] - 2.15) * 10.929 - 31) / 9.34
    e = (math.log(r["egfr_ml_min_1_73m2"]) - 4.5) / 0.15
    k = int(r["smoker"])
    lp = (b[0] * a + b[1] * k + b[2] * s + b[3] + b[4] * t + b[5] * h + b[6] * k * a
          + b[7] * a * s + b[8] * a + b[9] * a * t + b[10] * a * h + b[11] * d + b[12] * g
          + b[13] * e + b[14] * e * e + b[15] * g * a + b[16] * e * a)  # fmt: skip
    r0 = 1 - b[17] ** math.exp(lp)
    s1, s2 = coefficients(FILE)["scales"][r["sex"]][r["risk_region"]]
    return 100 * (1 - math.exp(-math.exp(s1 + s2 * math.log(-math.log(1 - r0)))))


def test_the_papers_examples() -> None:
    """The abstract, moderate-risk region: a 60-year-old non-smoking man with type 2 diabetes
    and "average conventional risk factors" (read here as the SBP 140 mmHg, total cholesterol
    5.5 and HDL 1.3 mmol/L of the SCORE2 illustration), HbA1c 50 mmol/mol, eGFR 90, diagnosed
    at 60: 11 %; with HbA1c 70, eGFR 60, diagnosed at 50: 17 % (whole percent)."""
    first = SCORE2_DIABETES.compute_one(_row())
    second = SCORE2_DIABETES.compute_one(
        _row(hba1c_percent=hba1c_percent(70), egfr_ml_min_1_73m2=60,
             age_at_diabetes_diagnosis_years=50)
    )  # fmt: skip
    assert first.value is not None and round(first.value) == 11
    assert second.value is not None and round(second.value) == 17


def test_an_independent_implementations_example() -> None:
    """The same first man in a low-risk country: 8.4 %, as an independent R implementation
    documents it (one decimal)."""
    r = SCORE2_DIABETES.compute_one(_row(risk_region="low"))
    assert r.value is not None and round(r.value, 1) == 8.4


def test_published_coefficients_equal_the_authors_program_term_by_term() -> None:
    """Each shipped coefficient is the published one, and within 0.0001 (the rounding of a sum
    of two four-decimal numbers) of SCORE2's plus the diabetes cohorts' term in the authors'
    program; the baseline survivals and scales are SCORE2's."""
    c = coefficients(FILE)
    s2 = coefficients()
    for sex in ("male", "female"):
        assert tuple(c[sex]["terms"][k] for k in KEYS) == PUBLISHED[sex][:17]
        assert len(c[sex]["terms"]) == len(KEYS)
        assert c[sex]["baseline_survival"] == PUBLISHED[sex][17] == s2[sex]["baseline_survival"]
        program = _program(sex)
        for key in KEYS:
            assert c[sex]["terms"][key] == pytest.approx(program[key], abs=1.0001e-4), key
        assert c["scales"][sex] == s2["scales"][sex]


def test_equals_the_hand_written_equation_on_random_people() -> None:
    rng = random.Random(2023)
    rows = []
    for _ in range(300):
        age = rng.uniform(40, 69.99)
        rows.append(
            _row(
                age_years=age, sex=rng.choice(["male", "female"]), smoker=rng.random() < 0.3,
                systolic_bp_mm_hg=rng.uniform(95, 200),
                total_cholesterol_mg_dl=rng.uniform(3, 9) * MMOL,
                hdl_mg_dl=rng.uniform(0.7, 2.5) * MMOL,
                age_at_diabetes_diagnosis_years=rng.uniform(20, age),
                hba1c_percent=rng.uniform(5.5, 13), egfr_ml_min_1_73m2=rng.uniform(60, 130),
                risk_region=rng.choice(REGIONS),
            )
        )  # fmt: skip
    many = SCORE2_DIABETES.compute_many({k: [r[k] for r in rows] for k in rows[0]})
    for i, r in enumerate(rows):
        one = SCORE2_DIABETES.compute_one(r)
        assert one.value == pytest.approx(_by_hand(r), rel=1e-12)
        assert many[i].value == pytest.approx(one.value, rel=1e-12) and many[i].band == one.band


def test_hba1c_master_equation() -> None:
    """IFCC = (NGSP - 2.15) x 10.929 (Hoelzel 2004, as medtwin.record.units applies it): 48
    mmol/mol is 6.5 %, 53 is 7.0 %, 64 is 8.0 % (the conversions diabetes care uses, to 0.05
    %)."""
    for ifcc, ngsp in ((48, 6.5), (53, 7.0), (64, 8.0), (75, 9.0)):
        assert hba1c_percent(ifcc) == pytest.approx(ngsp, abs=0.05)
        assert hba1c_mmol_mol(hba1c_percent(ifcc)) == pytest.approx(ifcc, abs=1e-12)


@pytest.mark.parametrize(
    ("value", "band"),
    [(4.99, "low"), (5.0, "moderate"), (9.99, "moderate"), (10.0, "high"), (19.99, "high"),
     (20.0, "very_high")],
)  # fmt: skip
def test_bands(value: float, band: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        type(SCORE2_DIABETES), "_risk", lambda self, data, rows: np.full(rows.size, value)
    )
    assert SCORE2_DIABETES.compute_one(_row()).band == band


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"age_years": 70}, "SCORE2-OP (score2_op_10y) for 70 and over"),
        ({"age_years": 39}, "age_years=39 is outside the population of SCORE2-Diabetes"),
        ({"egfr_ml_min_1_73m2": 44.9}, "eGFR below 45"),
        ({"egfr_ml_min_1_73m2": 80, "uacr_mg_g": 301}, "UACR above 300 mg/g"),
        ({"egfr_ml_min_1_73m2": 59, "uacr_mg_g": 30}, "eGFR 45-59 mL/min/1.73 m2 with UACR"),
        ({"age_at_diabetes_diagnosis_years": 61}, "diagnosis cannot be in the future"),
    ],
)
def test_refusals_name_the_reason(change: dict[str, Any], words: str) -> None:
    r = SCORE2_DIABETES.compute_one(_row(**change))
    assert r.value is None and r.refused and words in r.refused


def test_uacr_is_optional_and_moderate_albuminuria_with_good_egfr_is_scored() -> None:
    plain = SCORE2_DIABETES.compute_one(_row())
    assert plain.value is not None and not plain.partial and plain.missing == ()
    # microalbuminuria with eGFR 60 or more is not severe target-organ damage
    assert SCORE2_DIABETES.compute_one(_row(uacr_mg_g=150)).value == plain.value
    assert SCORE2_DIABETES.compute_one(_row(egfr_ml_min_1_73m2=59, uacr_mg_g=29.9)).value


def test_registered_and_scored_by_the_cli() -> None:
    import json

    from click.testing import CliRunner

    from medtwin.cli import main

    assert get("score2_diabetes_10y") is SCORE2_DIABETES
    out = CliRunner().invoke(main, ["score", "score2_diabetes_10y", json.dumps(_row()), "--json"])
    assert out.exit_code == 0, out.output
    assert round(json.loads(out.output)["value"]) == 11


# --- from the record (medtwin.risk.score2_inputs.diabetes_inputs) ---

AT = dt.datetime(2024, 6, 30, 12, tzinfo=dt.UTC)


def _record(
    store: Any,
    key: str,
    conditions: list[tuple[str, str, dt.datetime | None]],
    condition_raw: dict[str, Any] | None = None,
    hba1c: tuple[str, float, str] = ("4548-4", round(hba1c_percent(50), 2), "%"),
) -> str:
    """A 60-year-old man in Germany with the risk factors of the paper's first example, the
    HbA1c of 50 mmol/mol in %, a creatinine and the diabetes ``conditions`` (system, code,
    onset)."""
    from medtwin.record.facts import SNOMED, Coding, Condition, Identifier

    who = Identifier("urn:test", key)
    systems = {
        "snomed": SNOMED, "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
        "icd10gm": "http://fhir.de/CodeSystem/bfarm/icd-10-gm",
    }  # fmt: skip
    when = AT - dt.timedelta(days=30)
    facts: list[Any] = [
        registered(who, "1964-01-15", "male", country="DE"),
        lab(who, "2093-3", 5.5 * MMOL, "mg/dL", when),
        lab(who, "2085-9", 1.3 * MMOL, "mg/dL", when),
        lab(who, "8480-6", 140.0, "mm[Hg]", when),
        lab(who, *hba1c, when),
        lab(who, "2160-0", 0.95, "mg/dL", when),
        smoking_status(who, "266919005", "Never smoked tobacco", when),
    ]
    for i, (system, code, onset) in enumerate(conditions):
        facts.append(
            Condition(
                source="ehr", source_id=f"dm{i}", subject=who, code=Coding(systems[system], code),
                effective_start=onset, clinical_status="active", verification_status="confirmed",
                raw=condition_raw,
            )
        )  # fmt: skip
    store.append_facts(facts, source="test")
    return str(store.resolve_patient(f"urn:test|{key}"))


def test_hba1c_in_mmol_mol_from_a_european_laboratory(store: Any) -> None:
    """HbA1c reported by the IFCC method in mmol/mol (LOINC 59261-8), as European laboratories
    do: read as the NGSP % the input takes (the master equation), and SCORE2-Diabetes of the
    paper's first man (50 mmol/mol, diagnosed at 60)."""
    from medtwin.risk.from_record import evaluate

    pid = _record(
        store, "ifcc", [("snomed", "44054006", dt.datetime(2024, 3, 1, tzinfo=dt.UTC))],
        hba1c=("59261-8", 50.0, "mmol/mol"),
    )  # fmt: skip
    report = evaluate(store, pid, AT.date(), scores=["score2_diabetes_10y"])
    derived = report.inputs["hba1c_percent"]
    assert derived.value == pytest.approx(hba1c_percent(50), abs=1e-9)
    assert derived.detail == "LOINC 59261-8"
    expected = SCORE2_DIABETES.compute_one(
        _row(egfr_ml_min_1_73m2=report.inputs["egfr_ml_min_1_73m2"].value)
    )
    assert report.scores[0].value == pytest.approx(expected.value, rel=1e-12)


def test_a_diagnosis_without_onset_uses_its_recorded_date_and_says_so(store: Any) -> None:
    """A FHIR Condition with a recordedDate and no onset (medtwin's ingest starts its valid
    time at the recorded date): the age then, said to be an upper bound of the age at
    diagnosis."""
    from medtwin.risk.from_record import evaluate

    raw = {"resourceType": "Condition", "recordedDate": "2019-03-01"}
    pid = _record(
        store, "rec", [("snomed", "44054006", dt.datetime(2019, 3, 1, tzinfo=dt.UTC))], raw
    )
    report = evaluate(store, pid, AT.date(), scores=["score2_diabetes_10y"])
    age = report.inputs["age_at_diabetes_diagnosis_years"]
    assert age.value == 55.0
    assert age.detail.startswith("diabetes recorded 2019-03-01 without an onset")
    assert report.scores[0].status == "computed"


def test_from_the_record_type_2_diabetes(store: Any) -> None:
    """Type 2 diabetes coded twice (the earlier onset counts: diagnosed at 51), HbA1c in %,
    eGFR by CKD-EPI 2021 from creatinine: equal to the score given the derived inputs; SCORE2
    refuses the same man and points to SCORE2-Diabetes."""
    from medtwin.risk.from_record import evaluate

    pid = _record(
        store, "t2",
        [("snomed", "44054006", dt.datetime(2019, 3, 1, tzinfo=dt.UTC)),
         ("icd10cm", "E11.9", dt.datetime(2015, 9, 1, tzinfo=dt.UTC))],
    )  # fmt: skip
    report = evaluate(store, pid, AT.date(), scores=["score2_diabetes_10y", "score2_10y"])
    dm, s2 = report.scores
    d = report.inputs
    assert d["type_2_diabetes"].value is True
    assert d["age_at_diabetes_diagnosis_years"].value == 51.0
    assert "2015-09-01" in d["age_at_diabetes_diagnosis_years"].detail
    egfr = d["egfr_ml_min_1_73m2"]
    assert egfr.status == "computed" and egfr.value is not None
    expected = SCORE2_DIABETES.compute_one(
        _row(age_at_diabetes_diagnosis_years=51, hba1c_percent=d["hba1c_percent"].value,
             egfr_ml_min_1_73m2=egfr.value)
    )  # fmt: skip
    assert dm.status == "computed" and dm.value == pytest.approx(expected.value, rel=1e-12)
    assert "without optional uacr_mg_g" in dm.message
    assert s2.status == "refused" and "SCORE2-Diabetes, score2_diabetes_10y" in s2.message


@pytest.mark.parametrize(
    ("conditions", "status", "words"),
    [
        ([], "refused", "not applicable: no type 2 diabetes is recorded"),
        ([("snomed", "46635009", dt.datetime(2000, 1, 1, tzinfo=dt.UTC))], "refused",
         "not applicable: no type 2 diabetes is recorded"),
        ([("snomed", "73211009", dt.datetime(2000, 1, 1, tzinfo=dt.UTC))], "missing",
         "cannot compute: missing type_2_diabetes (diabetes of an unrecorded type"),
    ],
)  # fmt: skip
def test_from_the_record_who_it_applies_to(
    store: Any, conditions: list[tuple[str, str, dt.datetime | None]], status: str, words: str
) -> None:
    """No diabetes or type 1: not applicable; diabetes of an unrecorded type: whether it
    applies is not known."""
    from medtwin.risk.from_record import evaluate

    pid = _record(store, "who", conditions)
    (dm,) = evaluate(store, pid, AT.date(), scores=["score2_diabetes_10y"]).scores
    assert dm.status == status and dm.message.startswith(words), dm.message


def test_a_european_fhir_record_end_to_end(tmp_path: Any) -> None:
    """A FHIR R4 Bundle as a German practice system might send it, SI units and their LOINC
    codes throughout (cholesterol 14647-2 / 14646-4 / 22748-8 in mmol/L, creatinine 14682-9 in
    umol/L, HbA1c 59261-8 in mmol/mol, UACR in mg/mmol), imported and
    read: SCORE2-Diabetes equals the score of the same numbers given directly; `medtwin risk`
    names the model and its interval."""
    import json

    from tests.risk.records import risk_text

    from medtwin.ingest import import_paths
    from medtwin.risk.from_record import evaluate
    from medtwin.store import open_store

    when = "2024-05-31T09:00:00+02:00"

    def obs(i: int, loinc: str, value: float, ucum: str) -> dict[str, Any]:
        return {
            "fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000000{i}",
            "resource": {
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"},
                "effectiveDateTime": when,
                "valueQuantity": {"value": value, "unit": ucum,
                                  "system": "http://unitsofmeasure.org", "code": ucum},
            },
            "request": {"method": "POST", "url": "Observation"},
        }  # fmt: skip

    patient = {
        "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000000",
        "resource": {
            "resourceType": "Patient", "gender": "male", "birthDate": "1964-01-15",
            "identifier": [{"system": "urn:example:de:kvnr", "value": "A123456789"}],
            "name": [{"family": "Muster", "given": ["Max"]}],
            "address": [{"use": "home", "city": "Köln", "country": "DE"}],
        },
        "request": {"method": "POST", "url": "Patient"},
    }  # fmt: skip
    diabetes = {
        "fullUrl": "urn:uuid:00000000-0000-4000-8000-00000000000a",
        "resource": {
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "confirmed"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11.9"}]},
            "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"},
            "onsetDateTime": "2015-09-01",
        },
        "request": {"method": "POST", "url": "Condition"},
    }  # fmt: skip
    smoking = {
        "fullUrl": "urn:uuid:00000000-0000-4000-8000-00000000000b",
        "resource": {
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
            "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"},
            "effectiveDateTime": when,
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                 "code": "266919005"}]},
        },
        "request": {"method": "POST", "url": "Observation"},
    }  # fmt: skip
    bundle = {
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            patient, diabetes, smoking,
            obs(1, "14647-2", 5.5, "mmol/L"), obs(2, "14646-4", 1.3, "mmol/L"),
            obs(7, "22748-8", 3.4, "mmol/L"),
            obs(3, "8480-6", 140, "mm[Hg]"), obs(4, "59261-8", 50, "mmol/mol"),
            obs(5, "14682-9", 84, "umol/L"), obs(6, "9318-7", 1.5, "mg/mmol"),
        ],
    }  # fmt: skip
    path = tmp_path / "de.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    store = open_store(str(tmp_path / "de.db"), actor="test")
    try:
        report = import_paths(store, [path], workers=0)
        assert report.counts.get("quarantined", 0) == 0, report.counts
        pid = str(store.resolve_patient("urn:example:de:kvnr|A123456789"))
        out = evaluate(store, pid, AT.date(), scores=["score2_diabetes_10y", "score2_10y"])
        d = out.inputs
        assert d["risk_region"].value == "moderate"
        # cholesterol in moles/volume codes (14647-2, 14646-4, 22748-8), read in mg/dL
        assert d["total_cholesterol_mg_dl"].value == pytest.approx(5.5 * MMOL, rel=1e-9)
        assert d["hdl_mg_dl"].value == pytest.approx(1.3 * MMOL, rel=1e-9)
        assert d["ldl_mg_dl"].value == pytest.approx(3.4 * MMOL, rel=1e-9)
        assert d["hba1c_percent"].value == pytest.approx(hba1c_percent(50), abs=1e-9)
        assert d["uacr_mg_g"].value == pytest.approx(1.5 * 8.8402, rel=1e-3)
        assert d["age_at_diabetes_diagnosis_years"].value == 51.0
        dm, s2 = out.scores
        expected = SCORE2_DIABETES.compute_one(
            _row(age_at_diabetes_diagnosis_years=51, egfr_ml_min_1_73m2=d["egfr_ml_min_1_73m2"].value,
                 uacr_mg_g=d["uacr_mg_g"].value)
        )  # fmt: skip
        assert dm.status == "computed", dm.message
        assert dm.value == pytest.approx(expected.value, rel=1e-12)
        assert dm.variation is not None and s2.status == "refused"
        text = risk_text(store, pid, AT.date().isoformat(), "score2_diabetes_10y")
        assert "score2_diabetes_10y" in text and "90 % over day-to-day variation" in text
    finally:
        store.close()


@pytest.mark.parametrize("code", ["E11.90", "E11.20+", "E1190"])
def test_a_german_icd_10_gm_diagnosis_is_type_2_diabetes(store: Any, code: str) -> None:
    """ICD-10-GM (the German modification, BfArM's system) with its markers (``+`` for a
    dagger code): type 2 diabetes, diagnosed at 51, SCORE2-Diabetes computed."""
    from medtwin.risk.from_record import evaluate

    pid = _record(store, "gm", [("icd10gm", code, dt.datetime(2015, 9, 1, tzinfo=dt.UTC))])
    report = evaluate(store, pid, AT.date(), scores=["score2_diabetes_10y"])
    assert report.inputs["type_2_diabetes"].value is True
    assert report.inputs["age_at_diabetes_diagnosis_years"].value == 51.0
    assert report.scores[0].status == "computed"


@pytest.mark.parametrize(("certainty", "verification", "counted"),
                         [("A", "refuted", False), ("G", "confirmed", True),
                          ("V", "provisional", None)])  # fmt: skip
def test_german_diagnosis_certainty(
    tmp_path: Any, certainty: str, verification: str, counted: bool | None
) -> None:
    """The ICD-10-GM Diagnosesicherheit extension: a diagnosis marked A (ausgeschlossen,
    excluded) is refuted at import and is not diabetes; G (gesichert) is confirmed; V (Verdacht,
    suspected) provisional, which is neither a diagnosis nor none: diabetes is not known."""
    import json

    from medtwin.ingest import import_paths
    from medtwin.risk.inputs import derive_inputs
    from medtwin.store import open_store

    patient_ref = "urn:uuid:00000000-0000-4000-8000-000000000000"
    bundle = {
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": patient_ref, "request": {"method": "POST", "url": "Patient"},
             "resource": {"resourceType": "Patient", "gender": "female", "birthDate": "1960-02-02",
                          "identifier": [{"system": "urn:example:de:kvnr", "value": "B1"}]}},
            {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001",
             "request": {"method": "POST", "url": "Condition"},
             "resource": {
                 "resourceType": "Condition", "subject": {"reference": patient_ref},
                 "onsetDateTime": "2018-03-01",
                 "code": {"coding": [{
                     "system": "http://fhir.de/CodeSystem/bfarm/icd-10-gm", "code": "E11.90",
                     "extension": [{
                         "url": "http://fhir.de/StructureDefinition/icd-10-gm-diagnosesicherheit",
                         "valueCoding": {
                             "system": "https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_ICD_DIAGNOSESICHERHEIT",
                             "code": certainty}}]}]}}},
        ],
    }  # fmt: skip
    path = tmp_path / "dx.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    store = open_store(str(tmp_path / "dx.db"), actor="test")
    try:
        import_paths(store, [path], workers=0)
        pid = str(store.resolve_patient("urn:example:de:kvnr|B1"))
        (condition,) = store.timeline(pid, kinds=["Condition"])
        assert condition.fact.verification_status == verification
        assert derive_inputs(store, pid, AT.date())["diabetes"].value is counted
    finally:
        store.close()
