"""``medtwin dose ... --patient P``: the dosing case read from the record."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from medtwin.cli import main
from medtwin.model.base import OutsidePopulationError
from medtwin.pharmacology import pk
from medtwin.pharmacology.antibiotics import get_pop_model
from medtwin.pharmacology.case import CaseError
from medtwin.record.facts import (
    AllergyIntolerance,
    Coding,
    Condition,
    Demographics,
    Identifier,
    MedicationAdministration,
    Observation,
)
from medtwin.store import open_store
from medtwin.twin.dosing_record import case_from_store
from medtwin.twin.optimise import recommend_case

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
WHO = Identifier("urn:test:mrn", "VAN-1")


# the first dose 30 h ago: the next one (hour 36) is still ahead
def thirty_hours_ago() -> datetime:
    """Hour 0 of the test record: 30 h before now (taken when the record is written, not when
    the module is collected: the suite runs for minutes)."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=30)


def _level(source_id: str, when: datetime, mg_l: float, **extra: str) -> Observation:
    """A vancomycin level of the test patient (``extra``: status, value_text)."""
    return Observation(
        source="lab",
        source_id=source_id,
        subject=WHO,
        code=Coding(LOINC, "20578-1", "Vancomycin [Mass/volume] in Serum or Plasma"),
        effective_start=when,
        value_num=mg_l,
        unit="mg/L",
        **extra,  # type: ignore[arg-type]
    )


def _record(path: Path, *, creatinine: bool = True, t0: datetime | None = None) -> datetime:
    """A 64-year-old man, 82 kg, creatinine 1.1 mg/dL, vancomycin 1 g over 1 h every 12 h x3
    from ``t0`` (default :func:`thirty_hours_ago`), two levels simulated from the Goti model with
    eta = (0.2, -0.1, 0); returns ``t0``."""
    t0 = t0 or thirty_hours_ago()
    facts: list[object] = [
        Demographics(
            source="reg",
            source_id="Patient/1",
            subject=WHO,
            identifiers=(WHO,),
            birth_date="1962-06-01",
            gender="male",
        ),
        Observation(
            source="lab",
            source_id="wt",
            subject=WHO,
            code=Coding(LOINC, "29463-7", "Body weight"),
            effective_start=t0,
            value_num=82.0,
            unit="kg",
        ),
        Observation(
            source="lab",
            source_id="ht",
            subject=WHO,
            code=Coding(LOINC, "8302-2", "Body height"),
            effective_start=t0,
            value_num=178.0,
            unit="cm",
        ),
        AllergyIntolerance(
            source="reg",
            source_id="Allergy/1",
            subject=WHO,
            code=Coding(RXNORM, "7980", "Penicillin G"),
            clinical_status="active",
            reactions=("urticaria",),
        ),
    ]
    if creatinine:
        facts.append(
            Observation(
                source="lab",
                source_id="scr",
                subject=WHO,
                code=Coding(LOINC, "2160-0", "Creatinine [Mass/volume] in Serum or Plasma"),
                effective_start=t0,
                value_num=1.1,
                unit="mg/dL",
            )
        )
    for k in range(3):
        start = t0 + timedelta(hours=12 * k)
        facts.append(
            MedicationAdministration(
                source="mar",
                source_id=f"vanco/{k}",
                subject=WHO,
                code=Coding(RXNORM, "11124", "Vancomycin"),
                effective_start=start,
                effective_end=start + timedelta(hours=1),
                dose_value=1.0,
                dose_unit="g",
            )
        )
    pop = get_pop_model("vancomycin_goti2018")
    from medtwin.pharmacology.covariates import PatientCovariates

    pt = PatientCovariates.from_dict(
        {"age_years": 64.5, "weight_kg": 82.0, "sex": "male", "creatinine_mg_dl": 1.1}
    )
    a, lam = pop.modes(pop.individual(pt, np.array([[0.2, -0.1, 0.0]])))
    t = np.array([25.5, 35.5])
    conc = pk.concentrations(a, lam, [pk.Dose(0, 1000, 1, 12, 3)], t)[0]
    for i, (ti, c) in enumerate(zip(t, conc, strict=True)):
        facts.append(_level(f"lvl/{i}", t0 + timedelta(hours=float(ti)), round(float(c), 1)))
    store = open_store(str(path), actor="test")
    store.append_facts(facts, source="test")  # type: ignore[arg-type]
    store.close()
    return t0


def test_case_from_record_and_recommendation(tmp_path: Path) -> None:
    db = tmp_path / "medtwin.db"
    t0 = _record(db)
    store = open_store(str(db), actor="test")
    try:
        case = case_from_store(store, "urn:test:mrn|VAN-1", "vancomycin_goti2018")
    finally:
        store.close()
    assert case.patient.weight_kg == 82.0 and case.patient.creatinine_mg_dl == 1.1
    assert case.patient.height_cm == 178.0 and not case.patient.dialysis
    assert [(d.t_h, d.amount_mg, d.duration_h) for d in case.doses] == [
        (0.0, 1000.0, 1.0),
        (12.0, 1000.0, 1.0),
        (24.0, 1000.0, 1.0),
    ]
    assert [lv.t_h for lv in case.levels] == [25.5, 35.5]
    assert case.allergies == ["Penicillin G urticaria"]
    out = recommend_case(case)
    assert out["recommended"] and "none to vancomycin" in out["allergy_check"]
    assert out["fit"]["etas"]["cl_l_per_h"] == pytest.approx(0.2, abs=0.15)
    assert case.now_h == pytest.approx(30.0, abs=0.05)
    assert out["regimen"]["start_h"] == 36.0
    assert out["regimen"]["start_at"] == (t0 + timedelta(hours=36)).isoformat()
    assert "was due" not in out["reason"]


def test_an_overdue_dose_starts_now_not_in_the_past(tmp_path: Path) -> None:
    """The last dose (hour 24 of three every 12 h) was 76 h ago: the next one was due at hour
    36, 64 h ago. The recommendation starts now and says so; the predicted exposure is from
    now, after the washout."""
    db = tmp_path / "medtwin.db"
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=100)
    _record(db, t0=t0)
    store = open_store(str(db), actor="test")
    try:
        case = case_from_store(store, "urn:test:mrn|VAN-1", "vancomycin_goti2018")
    finally:
        store.close()
    assert case.now_h == pytest.approx(100.0, abs=0.05)
    out = recommend_case(case)
    assert out["recommended"]
    reg = out["regimen"]
    assert reg["start_h"] == case.now_h
    start_at = datetime.fromisoformat(reg["start_at"])
    assert abs((start_at - datetime.now(UTC)).total_seconds()) < 60
    assert (
        "the next dose was due at hour 36 (2.7 days ago): the regimen starts now" in out["reason"]
    )
    assert out["events"][0]["t_h"] == case.now_h
    # 76 h after the last dose: within five terminal half-lives (about 5 x 26 h for this
    # patient's fit), so the course goes on without a new loading dose
    assert reg["loading_dose_mg"] == 0 and "new course" not in out["reason"]
    # 200 h after it: more than five half-lives, a new course with its loading dose
    new = recommend_case(replace(case, now_h=224.0))
    assert re.search(
        r"8\.3 days before, more than five half-lives \(1[23]\d h\): a new course", new["reason"]
    )
    assert new["regimen"]["loading_dose_mg"] > 0
    assert new["regimen"]["maintenance_start_h"] > new["regimen"]["start_h"] == 224.0
    # the same case without the clock: the old default, one interval after the last dose
    again = recommend_case(replace(case, now_h=None))["regimen"]
    assert again["start_h"] == 36.0 and again["loading_dose_mg"] == 0
    # 4 h overdue (hour 40): well within five half-lives, so no new loading dose
    late = recommend_case(replace(case, now_h=40.0))
    assert late["regimen"]["start_h"] == 40.0 and late["regimen"]["loading_dose_mg"] == 0
    assert "(4.0 h ago)" in late["reason"] and "new course" not in late["reason"]


def test_cli_patient_path_and_missing_creatinine(tmp_path: Path) -> None:
    db = tmp_path / "medtwin.db"
    _record(db)
    res = CliRunner().invoke(
        main,
        [
            "dose",
            "recommend",
            "--patient",
            "urn:test:mrn|VAN-1",
            "--model",
            "vancomycin_goti2018",
            "--store",
            str(db),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.output)["recommended"]
    res = CliRunner().invoke(main, ["dose", "fit", "--store", str(db)])
    assert res.exit_code == 1 and "either CASE.json or --patient" in res.output
    db2 = tmp_path / "other.db"
    _record(db2, creatinine=False)
    store = open_store(str(db2), actor="test")
    try:
        with pytest.raises(CaseError, match="creatinine_mg_dl"):
            case_from_store(store, "urn:test:mrn|VAN-1", "vancomycin_goti2018")
    finally:
        store.close()


def test_si_creatinine_and_what_did_not_happen(tmp_path: Path) -> None:
    """A creatinine in umol/L (LOINC 14682-9, as a UK or European laboratory reports it) is the
    covariate, converted; a dose not given (status not-done) is no dose, a cancelled level no
    level, and a level below the assay's limit ("<4.0") a bound. Before, the first was "the
    record has no creatinine_mg_dl" and the second counted as 1 g given, lowering the
    recommendation."""
    db = tmp_path / "medtwin.db"
    t0 = _record(db, creatinine=False)
    store = open_store(str(db), actor="test")
    store.append_facts(
        [
            Observation(
                source="lab",
                source_id="scr-si",
                subject=WHO,
                code=Coding(LOINC, "14682-9", "Creatinine [Moles/volume] in Serum or Plasma"),
                effective_start=t0,
                value_num=97.3,
                unit="umol/L",
            ),
            MedicationAdministration(
                source="mar",
                source_id="vanco/not-given",
                subject=WHO,
                status="not-done",
                code=Coding(RXNORM, "11124", "Vancomycin"),
                effective_start=t0 + timedelta(hours=6),
                dose_value=1.0,
                dose_unit="g",
            ),
            _level("lvl/cancelled", t0 + timedelta(hours=8), 40.0, status="cancelled"),
            # below the assay's limit, as the FHIR reader keeps a comparator
            _level("lvl/below-limit", t0 + timedelta(hours=29), 4.0, value_text="<4.0"),
        ],
        source="test",
    )
    try:
        case = case_from_store(store, "urn:test:mrn|VAN-1", "vancomycin_goti2018")
    finally:
        store.close()
    assert case.patient.creatinine_mg_dl == pytest.approx(97.3 / 88.42, rel=1e-12)
    assert [d.t_h for d in case.doses] == [0.0, 12.0, 24.0]
    assert [(lv.t_h, lv.censored) for lv in case.levels] == [
        (25.5, None),
        (29.0, "below"),
        (35.5, None),
    ]


def test_no_dose_for_a_patient_who_has_died(tmp_path: Path) -> None:
    """The record says the patient died (a later Patient with deceasedDateTime): no dose is
    recommended, and the refusal says why."""
    db = tmp_path / "medtwin.db"
    _record(db)
    store = open_store(str(db), actor="test")
    store.append_facts(
        [
            Demographics(
                source="reg",
                source_id="Patient/1",
                subject=WHO,
                identifiers=(WHO,),
                birth_date="1962-06-01",
                gender="male",
                deceased="2026-01-02T03:00:00+00:00",
            )
        ],
        source="reg",
    )
    try:
        with pytest.raises(CaseError, match="the record says the patient died on 2026-01-02"):
            case_from_store(store, "urn:test:mrn|VAN-1", "vancomycin_goti2018")
    finally:
        store.close()


def test_no_model_dose_for_a_patient_the_record_shows_pregnant(tmp_path: Path) -> None:
    """The test patient recorded as a woman with a pregnancy condition that began 90 days ago:
    the case says she is pregnant, and both vancomycin models refuse her, saying why (neither
    was derived in pregnancy; GFR rises ~50 %, so Cockcroft-Gault does not give her clearance). `medtwin dose recommend --patient` says so and exits 1.
    The pregnancy's recorded end (abatement) makes the case computable again."""
    db = tmp_path / "medtwin.db"
    _record(db)
    now = datetime.now(UTC)

    def pregnancy(end: datetime | None) -> Condition:
        return Condition(
            source="ehr", source_id="preg", subject=WHO,
            code=Coding("http://snomed.info/sct", "72892002", "Normal pregnancy"),
            clinical_status="resolved" if end else "active",
            effective_start=now - timedelta(days=90), effective_end=end,
        )  # fmt: skip

    woman = Demographics(
        source="reg", source_id="Patient/1", subject=WHO, identifiers=(WHO,),
        birth_date="1992-06-01", gender="female",
    )  # fmt: skip
    store = open_store(str(db), actor="test")
    try:
        store.append_facts([woman, pregnancy(None)], source="reg")
        for model in ("vancomycin_goti2018", "vancomycin_buelga2005"):
            case = case_from_store(store, "urn:test:mrn|VAN-1", model)
            assert case.patient.pregnant and case.patient.to_dict()["pregnant"] is True
            with pytest.raises(OutsidePopulationError) as refused:
                recommend_case(case)
            said = str(refused.value)
            assert "pregnancy was not part of the model's population" in said
            assert "glomerular filtration rate by about 50 %" in said
            assert "fetal harm" not in said
        res = CliRunner().invoke(
            main,
            ["dose", "recommend", "--patient", "urn:test:mrn|VAN-1",
             "--model", "vancomycin_goti2018", "--store", str(db)],
        )  # fmt: skip
        assert res.exit_code == 1
        assert "pregnancy was not part of the model's population" in res.output
        store.append_facts([pregnancy(now - timedelta(days=1))], source="reg")
        case = case_from_store(store, "urn:test:mrn|VAN-1", "vancomycin_goti2018")
        assert not case.patient.pregnant
        assert recommend_case(case)["recommended"]
    finally:
        store.close()


def test_a_dosing_case_file_says_pregnant() -> None:
    """``"pregnant": true`` in a case file's patient: refused the same way; not a boolean, or a
    man: a clear error naming the field."""
    from medtwin.pharmacology.covariates import CovariateError, PatientCovariates

    base = {"age_years": 30, "weight_kg": 70, "sex": "female", "creatinine_mg_dl": 0.6}
    pt = PatientCovariates.from_dict({**base, "pregnant": True})
    with pytest.raises(OutsidePopulationError, match="reports no pregnant patients"):
        get_pop_model("vancomycin_goti2018").check_patient(pt)
    get_pop_model("vancomycin_goti2018").check_patient(PatientCovariates.from_dict(base))
    with pytest.raises(OutsidePopulationError, match="aminoglycosides can cause fetal harm"):
        get_pop_model("gentamicin_hull1976").check_patient(pt)
    with pytest.raises(CovariateError, match="field 'pregnant' must be true or false"):
        PatientCovariates.from_dict({**base, "pregnant": "yes"})
    with pytest.raises(CovariateError, match="'pregnant' is true for a patient of sex 'male'"):
        PatientCovariates.from_dict({**base, "sex": "male", "pregnant": True})
