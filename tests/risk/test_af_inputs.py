"""CHA2DS2-VASc and HAS-BLED from a record (medtwin.risk.af_inputs), on both store back-ends and
on the shared Synthea patients."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from pathlib import Path

import pytest

from medtwin.record.codes import snomed_check_digit_ok
from medtwin.record.facts import (
    LOINC,
    RXNORM,
    SNOMED,
    Coding,
    Condition,
    Demographics,
    Fact,
    Identifier,
    MedicationRequest,
    Observation,
    Procedure,
)
from medtwin.risk.af_inputs import condition_sets, time_in_range
from medtwin.risk.from_record import evaluate, result_facts
from medtwin.risk.inputs import derive_inputs
from medtwin.store.sql import SqlStore

WHO = Identifier("urn:test", "af1")
AT = dt.datetime(2024, 6, 30, 12, tzinfo=dt.UTC)
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def _ago(days: float) -> dt.datetime:
    return AT - dt.timedelta(days=days)


def _patient(born: str, gender: str) -> Demographics:
    return Demographics(
        source="reg", source_id="Patient/af1", subject=WHO, identifiers=(WHO,),
        birth_date=born, gender=gender,
    )  # fmt: skip


def _cond(
    sid: str,
    system: str,
    code: str,
    days_before: int,
    *,
    ended_days_before: int | None = None,
    status: str = "active",
    verification: str | None = None,
) -> Condition:
    return Condition(
        source="ehr", source_id=sid, subject=WHO, code=Coding(system, code),
        clinical_status=status, verification_status=verification,
        effective_start=_ago(days_before),
        effective_end=_ago(ended_days_before) if ended_days_before is not None else None,
    )  # fmt: skip


def _med(rxcui: str, display: str, days_before: int = 200) -> MedicationRequest:
    return MedicationRequest(
        source="ehr", source_id=f"med-{rxcui}", subject=WHO, code=Coding(RXNORM, rxcui, display),
        status="active", effective_start=_ago(days_before),
    )  # fmt: skip


def _obs(
    code: str, value: float, unit: str, days_before: float, *, high: float | None = None
) -> Observation:
    return Observation(
        source="lab", source_id=f"{code}-{days_before}", subject=WHO, code=Coding(LOINC, code),
        status="final", effective_start=_ago(days_before), value_num=value, unit=unit,
        original_value=value, original_unit=unit, reference_high=high,
    )  # fmt: skip


def _load(store: SqlStore, facts: list[Fact]) -> str:
    store.append_facts(facts, source="test")
    return store.resolve_patient(f"{WHO.system}|{WHO.value}")


def _report(store: SqlStore, pid: str) -> dict[str, tuple[str, float | None, str]]:
    report = evaluate(store, pid, AT, scores=["cha2ds2_vasc", "has_bled"])
    return {s.name: (s.status, s.value, s.message) for s in report.scores}


def test_cha2ds2_vasc_reads_every_item_from_the_record(store: SqlStore) -> None:
    """A 78-year-old woman with atrial fibrillation (ICD-10-CM I48.91), heart failure (SNOMED),
    treated blood pressure without a hypertension diagnosis, type 2 diabetes, a TIA two years
    ago that has resolved (a history item) and an old myocardial infarction (I25.2): every
    item of CHA2DS2-VASc is present, 9 points (Lip et al. 2010)."""
    pid = _load(
        store,
        [
            _patient("1946-01-15", "female"),
            _cond("af", ICD10CM, "I48.91", 400),
            _cond("hf", SNOMED, "88805009", 900),
            _cond("dm", ICD10CM, "E11.9", 3000),
            _cond("tia", ICD10CM, "G45.9", 730, ended_days_before=725, status="resolved"),
            _cond("mi", ICD10CM, "I25.2", 2000),
            _med("314076", "lisinopril 10 MG Oral Tablet"),
        ],
    )
    d = derive_inputs(store, pid, AT)
    assert d["atrial_fibrillation"].value is True and "I48.91" in d["atrial_fibrillation"].detail
    assert d["hypertension"].value is True
    assert d["hypertension"].detail.startswith("antihypertensive treatment (active lisinopril")
    assert d["stroke_tia_thromboembolism"].value is True  # resolved, but a history item
    assert d["vascular_disease"].value is True and d["congestive_heart_failure"].value is True
    (cha,) = evaluate(store, pid, AT, scores=["cha2ds2_vasc"]).scores
    assert (cha.status, cha.value, cha.band) == ("computed", 9.0, "high")
    assert cha.result is not None
    assert dict(cha.result.components) == {
        "congestive_heart_failure": 1, "hypertension": 1, "age_years": 2, "diabetes": 1,
        "stroke_tia_thromboembolism": 2, "vascular_disease": 1, "sex": 1,
    }  # fmt: skip


def test_without_atrial_fibrillation_the_af_scores_are_not_applicable(store: SqlStore) -> None:
    """The scores' population is patients with atrial fibrillation: a record without it says
    so instead of a score; a refuted AF diagnosis is no AF; mitral stenosis (valvular AF)
    excludes CHA2DS2-VASc but not HAS-BLED."""
    pid = _load(
        store,
        [
            _patient("1950-03-01", "male"),
            _cond("af?", SNOMED, "49436004", 100, verification="refuted"),
            _obs("8480-6", 130.0, "mm[Hg]", 20),
            _obs("2160-0", 1.0, "mg/dL", 20),
        ],
    )
    out = _report(store, pid)
    assert out["cha2ds2_vasc"][0] == out["has_bled"][0] == "refused"
    assert out["cha2ds2_vasc"][2].startswith("not applicable: no atrial fibrillation or flutter")
    assert derive_inputs(store, pid, AT)["atrial_fibrillation"].status == "absent"

    store.append_facts(
        [
            _cond("paf", SNOMED, "282825002", 300),  # paroxysmal AF
            _cond("ms", ICD10CM, "I05.0", 1000),  # rheumatic mitral stenosis
        ],
        source="test",
    )
    out = _report(store, pid)
    assert out["cha2ds2_vasc"][0] == "refused" and "mitral stenosis" in out["cha2ds2_vasc"][2]
    assert "I05.0" in out["cha2ds2_vasc"][2]
    # HAS-BLED: age 74 (elderly > 65) is its only item here
    assert out["has_bled"][:2] == ("computed", 1.0)


def test_active_items_end_with_their_abatement_history_items_do_not(store: SqlStore) -> None:
    """Hypertension is counted while active; a stroke (history) counts even after it has
    resolved; AF resolved after an ablation still makes the scores apply (history)."""
    pid = _load(
        store,
        [
            _patient("1970-05-05", "male"),
            _cond("af", SNOMED, "49436004", 2000, ended_days_before=1500, status="resolved"),
            _cond("htn", SNOMED, "59621000", 3000, ended_days_before=1000, status="resolved"),
            _cond("stroke", SNOMED, "230690007", 1800, ended_days_before=1790, status="resolved"),
        ],
    )
    d = derive_inputs(store, pid, AT)
    assert d["atrial_fibrillation"].value is True
    assert d["hypertension"].value is False and d["hypertension"].status == "absent"
    assert d["stroke_tia_thromboembolism"].value is True and d["stroke_history"].value is True
    # before the hypertension ended, it counted
    assert derive_inputs(store, pid, _ago(1200))["hypertension"].value is True
    # before the AF began, the scores do not apply
    before = evaluate(store, pid, _ago(2100), scores=["cha2ds2_vasc"]).scores[0]
    assert before.status == "refused"


def _inrs(values: list[float], every_days: int = 14) -> list[Observation]:
    n = len(values)
    return [_obs("6301-6", v, "{INR}", every_days * (n - 1 - i)) for i, v in enumerate(values)]


def test_has_bled_reads_every_item_from_the_record(store: SqlStore) -> None:
    """A 70-year-old woman on warfarin with every HAS-BLED item: systolic 172 mmHg,
    creatinine 250 umol/L, cirrhosis (K74.60), a previous ischaemic stroke, haemoglobin 11.2
    g/dL (below the WHO 12.0 for women), INRs mostly out of range (time in range 25 %),
    aspirin, and alcohol dependence (F10.20): 9 points."""
    pid = _load(
        store,
        [
            _patient("1954-01-10", "female"),
            _cond("af", SNOMED, "49436004", 800),
            _cond("cirr", ICD10CM, "K74.60", 1200),
            _cond("stroke", ICD10CM, "I63.9", 1500),
            _cond("etoh", ICD10CM, "F10.20", 2000),
            _obs("8480-6", 172.0, "mm[Hg]", 10),
            _obs("2160-0", 250.0 / 88.4, "mg/dL", 30),
            _obs("718-7", 11.2, "g/dL", 30),
            *_inrs([1.5, 1.6, 2.5, 3.8, 4.0, 1.4]),
            _med("855332", "Warfarin Sodium 5 MG Oral Tablet"),
            _med("243670", "Aspirin 81 MG Oral Tablet"),
        ],
    )
    d = derive_inputs(store, pid, AT)
    assert d["hypertension_uncontrolled"].value is True
    assert d["abnormal_renal_function"].value is True
    assert d["abnormal_renal_function"].detail.startswith("creatinine 250 umol/L >= 200")
    assert (
        d["abnormal_liver_function"].value is True
        and "K74.60" in d["abnormal_liver_function"].detail
    )
    assert d["bleeding_history_or_predisposition"].detail.startswith("haemoglobin 11.2 g/dL < 12")
    labile = d["labile_inr"]
    assert labile.value is True and labile.status == "computed"
    assert "over 6 readings" in labile.detail
    assert d["antiplatelet_or_nsaid"].detail.startswith("active aspirin")
    assert d["alcohol_excess"].value is True
    (bled,) = evaluate(store, pid, AT, scores=["has_bled"]).scores
    assert (bled.status, bled.value, bled.band) == ("computed", 9.0, "high")


def test_has_bled_of_a_well_controlled_patient(store: SqlStore) -> None:
    """A 60-year-old man on warfarin with INRs in range, normal pressure, creatinine and
    haemoglobin, no bleeding, no antiplatelet: 0 points; the items say why they are "no"."""
    pid = _load(
        store,
        [
            _patient("1964-02-02", "male"),
            _cond("af", SNOMED, "440059007", 800),  # persistent AF
            _obs("8480-6", 150.0, "mm[Hg]", 10),
            _obs("2160-0", 1.1, "mg/dL", 30),
            _obs("718-7", 14.5, "g/dL", 30),
            *_inrs([2.2, 2.6, 2.9, 2.4, 2.1]),
            _med("855332", "Warfarin Sodium 5 MG Oral Tablet"),
        ],
    )
    d = derive_inputs(store, pid, AT)
    assert d["hypertension_uncontrolled"].detail == "latest systolic 150 mmHg <= 160"
    assert d["labile_inr"].value is False and "100 %" in d["labile_inr"].detail
    bleed = d["bleeding_history_or_predisposition"]
    assert bleed.value is False and "latest haemoglobin 14.5 g/dL" in bleed.detail
    assert d["abnormal_liver_function"].detail.endswith("no liver tests in the last year")
    (bled,) = evaluate(store, pid, AT, scores=["has_bled"]).scores
    assert (bled.status, bled.value, bled.band) == ("computed", 0.0, "low_moderate")


def test_what_the_record_cannot_say_is_missing_not_no(store: SqlStore) -> None:
    """On warfarin with two INRs, the time in range cannot be computed; without a recent
    creatinine or dialysis record renal function is not known; HAS-BLED does not count them as
    no: it gives its range over them (1 point, age over 65, to 3) and says why each is not
    known. Not on a vitamin K antagonist, labile INR is "no"."""
    pid = _load(
        store,
        [
            _patient("1955-07-07", "male"),
            _cond("af", SNOMED, "49436004", 800),
            _obs("8480-6", 140.0, "mm[Hg]", 10),
            _obs("2160-0", 1.0, "mg/dL", 900),  # stale
            *_inrs([2.5, 2.6]),
            _med("855332", "Warfarin Sodium 5 MG Oral Tablet"),
        ],
    )
    (bled,) = evaluate(store, pid, AT, scores=["has_bled"]).scores
    assert bled.status == "range" and bled.value is None
    assert (bled.low, bled.high, bled.band) == (1.0, 3.0, None)
    assert bled.message.startswith(
        "range over what the record leaves possible (band low_moderate to high): "
    )
    assert (
        "labile_inr not known (on a vitamin K antagonist (active warfarin, first ordered"
        in bled.message
        and "2 INR reading(s) of the last 180 days count" in bled.message
    )
    assert (
        "abnormal_renal_function not known (no dialysis or kidney transplant recorded"
        in bled.message
    )
    assert bled.message.endswith("for the time in range): no or yes")
    # a range is stored as one: no value, its ends in the text and the RiskAssessment
    [stored] = result_facts(store, evaluate(store, pid, AT, scores=["has_bled"]))
    assert stored.value_num is None and stored.value_text == f"{bled.low:g} to {bled.high:g} points"
    ends = stored.raw["prediction"][0]["extension"][0]["valueRange"]  # type: ignore[index]
    assert (ends["low"]["value"], ends["high"]["value"]) == (bled.low, bled.high)
    # a dialysis session 30 days ago answers the renal item; 100 days ago it does not
    store.append_facts(
        [
            Procedure(
                source="ehr", source_id="hd", subject=WHO,
                code=Coding(SNOMED, "302497006", "Hemodialysis (procedure)"),
                status="completed", effective_start=_ago(30),
            )
        ],
        source="test",
    )  # fmt: skip
    renal = derive_inputs(store, pid, AT)["abnormal_renal_function"]
    assert renal.value is True and "302497006" in renal.detail
    assert derive_inputs(store, pid, _ago(-70))["abnormal_renal_function"].value is None


def test_liver_tests_are_judged_against_their_own_reference_range(store: SqlStore) -> None:
    """Bilirubin 3.0 mg/dL (upper limit 1.2: 2.5 x) with ALT 150 U/L (limit 40: 3.75 x) is
    HAS-BLED's biochemical liver item; the same values without reference ranges are not
    judged (the record does not say the limits)."""
    base: list[Fact] = [_patient("1960-01-01", "male"), _cond("af", SNOMED, "49436004", 100)]
    pid = _load(
        store,
        [
            *base,
            _obs("1975-2", 3.0, "mg/dL", 20, high=1.2),
            _obs("1742-6", 150, "U/L", 20, high=40),
        ],
    )
    liver = derive_inputs(store, pid, AT)["abnormal_liver_function"]
    assert liver.value is True and liver.detail.startswith("bilirubin 2.5 x ULN with ALT 3.8 x ULN")
    # one step below either limit: no
    store.append_facts([_obs("1742-6", 119, "U/L", 10, high=40)], source="test")
    assert derive_inputs(store, pid, AT)["abnormal_liver_function"].value is False


def test_liver_tests_without_a_reference_range_are_not_judged(store: SqlStore) -> None:
    pid = _load(
        store,
        [
            _patient("1960-01-01", "male"),
            _cond("af", SNOMED, "49436004", 100),
            _obs("1975-2", 3.0, "mg/dL", 20),
            _obs("1742-6", 150, "U/L", 20),
        ],
    )
    liver = derive_inputs(store, pid, AT)["abnormal_liver_function"]
    assert liver.value is False and liver.status == "absent"
    assert liver.detail.endswith("liver tests without a reference range are not judged")


def _ttr_by_day(readings: list[tuple[dt.datetime, float]], low: float, high: float) -> float:
    """Rosendaal's method as described: an INR for every day by linear interpolation,
    counted in range or not (here on a grid of 1/100 day)."""
    steps = inside = 0
    for (t0, a), (t1, b) in itertools.pairwise(readings):
        n = round((t1 - t0).total_seconds() / 864)
        for k in range(n):
            v = a + (b - a) * (k + 0.5) / n
            inside += low <= v <= high
            steps += 1
    return 100.0 * inside / steps


def test_time_in_range_agrees_with_day_by_day_interpolation() -> None:
    """The closed form of :func:`time_in_range` against a step-by-step interpolation over 200
    random INR series (irregular intervals of 3-42 days, INR 1.0-5.0)."""
    rng = random.Random(7)
    for _ in range(200):
        t = AT
        series = []
        for _ in range(rng.randint(2, 9)):
            series.append((t, round(rng.uniform(1.0, 5.0), 1)))
            t += dt.timedelta(days=rng.randint(3, 42))
        assert time_in_range(series) == pytest.approx(_ttr_by_day(series, 2.0, 3.0), abs=0.05)
    with pytest.raises(ValueError, match="two INR readings"):
        time_in_range([(AT, 2.5)])


def test_the_code_lists_are_well_formed() -> None:
    """Every SNOMED CT id passes its Verhoeff check digit; every list says what it is, whether
    it is a history or an active item, and its basis; ICD-10 prefixes look like ICD-10."""
    sets = condition_sets()
    assert {"atrial_fibrillation", "congestive_heart_failure", "bleeding_history"} <= set(sets)
    for name, spec in sets.items():
        if name == "qrisk3_drugs":  # drug names, not codes
            assert all(d["names"] and d["what"] for d in spec.values())
            continue
        assert spec["when"] in ("history", "active"), name
        assert spec["what"] and len(spec["basis"]) > 40, name
        for sctid in spec.get("snomed", ()):
            assert snomed_check_digit_ok(sctid), (name, sctid)
        for prefix in spec.get("icd10", ()):
            assert prefix[0].isalpha() and prefix[1:3].isdigit(), (name, prefix)


# --- the shared Synthea patients ---

AF_PATIENT = "29195483-ce99-4a73-9cee-2d6728078472"  # Austin Spencer: AF since 2020


@pytest.fixture(scope="module")
def synthea(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> SqlStore:
    from medtwin.ingest import import_paths
    from medtwin.store import open_store

    store = open_store(str(tmp_path_factory.mktemp("af") / "medtwin.db"), actor="test")
    import_paths(store, [shared / "fhir" / "synthea-r4"], workers=0)
    return store


def test_the_synthea_patients_with_atrial_fibrillation_get_their_stroke_risk(
    synthea: SqlStore,
) -> None:
    """Of the 100 shared Synthea patients, those whose record holds atrial fibrillation get a
    CHA2DS2-VASc and everyone else "not applicable"; each computed score equals the sum of
    its items as derived."""
    computed = refused = dead = 0
    for summary in synthea.patients():
        report = evaluate(synthea, summary.id, scores=["cha2ds2_vasc"])
        (cha,) = report.scores
        af = report.inputs["atrial_fibrillation"].value
        if report.inputs["deceased"].value:  # no stroke risk after death
            dead += 1
            assert cha.status == "refused" and "had died by the date (died " in cha.message
        elif af:
            computed += 1
            assert cha.status == "computed" and cha.result is not None
            assert cha.value == sum(p or 0 for p in cha.result.components.values())
            assert report.inputs["mitral_stenosis"].value is False
        else:
            refused += 1
            assert cha.status == "refused" and "no atrial fibrillation" in cha.message
    assert (computed, refused, dead) == (4, 82, 14)  # 5 of the 9 with AF had died


def test_the_stored_result_names_the_atrial_fibrillation_it_rests_on(store: SqlStore) -> None:
    """The RiskAssessment of a CHA2DS2-VASc lists the AF condition among its basis, beside the
    facts its items came from."""
    pid = _load(
        store,
        [
            _patient("1950-01-15", "male"),
            _cond("Condition/af", SNOMED, "49436004", 400),
            _cond("Condition/htn", SNOMED, "59621000", 2000),
        ],
    )
    report = evaluate(store, pid, AT, scores=["cha2ds2_vasc"])
    (cha,) = report.scores
    assert cha.value == 2.0 and "atrial_fibrillation" in cha.inputs
    (fact,) = result_facts(store, report)
    assert fact.raw is not None
    assert [b["reference"] for b in fact.raw["basis"]] == ["Condition/htn", "Condition/af"]


def test_the_inrs_of_the_first_six_weeks_of_warfarin_do_not_count(store: SqlStore) -> None:
    """A warfarin start 20 days ago with five INRs rising into range: its time in range is
    not a measure of control yet (NICE: leave out the first 6 weeks), so, as when HAS-BLED is
    taken at the start of anticoagulation, there is no labile INR to count; 50 days after the
    start, with no INR after the first 42 days, it is not known; 60 days later, with INRs after
    the first 42 days, it is judged."""
    pid = _load(
        store,
        [
            _patient("1950-01-01", "male"),
            _cond("af", SNOMED, "49436004", 30),
            _med("855332", "Warfarin Sodium 5 MG Oral Tablet", days_before=20),
            *[
                _obs("6301-6", v, "{INR}", d)
                for v, d in ((1.1, 17), (1.4, 15), (1.9, 13), (2.4, 10), (2.7, 6))
            ],
        ],
    )
    labile = derive_inputs(store, pid, AT)["labile_inr"]
    assert labile.value is False and labile.status == "computed"
    start = _ago(20).date().isoformat()
    assert labile.detail == (
        f"on a vitamin K antagonist since {start} (20 days): the time in range is judged after "
        f"the first 42 days (from {_ago(-22).date().isoformat()}); until then no labile INR, as "
        "at the start of anticoagulation"
    )
    (has_bled,) = evaluate(store, pid, AT, scores=["has_bled"]).scores
    # no blood pressure or creatinine (a range over them), but L is settled
    assert has_bled.status == "range" and "labile_inr" not in has_bled.message
    settling = derive_inputs(store, pid, _ago(-30))["labile_inr"]
    assert settling.value is None and settling.status == "missing"
    assert "the INRs of the first 42 days of treatment (until" in settling.detail
    assert "are not counted, and 0 INR reading(s) of the last 180 days count" in settling.detail
    store.append_facts(
        [_obs("6301-6", v, "{INR}", -d) for v, d in ((2.5, 25), (3.4, 40), (2.8, 55))],
        source="test",
    )
    later = derive_inputs(store, pid, _ago(-60))["labile_inr"]
    assert later.status == "computed" and "over 3 readings" in later.detail


def test_doses_given_count_as_taking_the_drug(store: SqlStore) -> None:
    """Warfarin doses recorded as given (MedicationAdministration, no order in the record)
    make the patient on a vitamin K antagonist for 7 days after the last dose; aspirin given
    yesterday is an antiplatelet."""
    from medtwin.record.facts import MedicationAdministration

    def given(rxcui: str, display: str, days_before: float, k: int) -> MedicationAdministration:
        return MedicationAdministration(
            source="ward", source_id=f"dose-{rxcui}-{k}", subject=WHO,
            code=Coding(RXNORM, rxcui, display), status="completed",
            effective_start=_ago(days_before), dose_value=5.0, dose_unit="mg",
        )  # fmt: skip

    pid = _load(
        store,
        [
            _patient("1950-01-01", "male"),
            *[given("11289", "warfarin", d, d) for d in (6, 5, 4, 3)],
            given("1191", "aspirin", 1, 0),
        ],
    )
    d = derive_inputs(store, pid, AT)
    vka = d["vitamin_k_antagonist"]
    assert vka.value is True and vka.detail == f"active warfarin (given {_ago(3).date()})"
    assert d["antiplatelet_or_nsaid"].detail.startswith("active aspirin (given")
    assert derive_inputs(store, pid, _ago(-4))["vitamin_k_antagonist"].value is True
    assert derive_inputs(store, pid, _ago(-5))["vitamin_k_antagonist"].value is False


def test_the_synthea_patients_with_cardiovascular_disease_get_no_first_event_risk(
    synthea: SqlStore, shared: Path
) -> None:
    """The patients whose bundles hold a Condition or Procedure of the clinical ASCVD list
    (read here straight from the files) are exactly those with clinical ASCVD, for whom PCE
    says "not applicable" (for the ASCVD, or for a death before today)."""
    import json

    codes = set(condition_sets()["clinical_ascvd"]["snomed"])
    expected = set()
    for path in (shared / "fhir" / "synthea-r4").glob("*.json"):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        resources = [e["resource"] for e in bundle.get("entry", ())]
        kinds = ("Condition", "Procedure")
        if any(
            c.get("code") in codes
            for r in resources
            if r["resourceType"] in kinds
            for c in r.get("code", {}).get("coding", ())
        ):
            patient = next(r for r in resources if r["resourceType"] == "Patient")
            expected.add(patient["id"])
    refused = set()
    for summary in synthea.patients():
        report = evaluate(synthea, summary.id, scores=["pce_ascvd_10y"])
        (pce,) = report.scores
        if report.inputs["clinical_ascvd"].value is True:
            refused.add(summary.id)
            assert pce.status == "refused"  # for the ASCVD, or first for a death
            assert "clinical atherosclerotic" in pce.message or report.inputs["deceased"].value
    assert len(expected) == 9
    assert refused == {synthea.resolve_patient(fhir_id) for fhir_id in expected}


def test_a_suspected_diagnosis_is_neither_yes_nor_no(store: SqlStore) -> None:
    """A provisional heart failure and a differential diagnosis of cirrhosis are not
    diagnoses yet, nor nothing: each item is "not known" with yes / no left open, and the
    scores give their range over them (CHA2DS2-VASc 2 to 3, HAS-BLED 1 to 2), saying why. The
    same heart failure confirmed is 1 point; a suspected atrial fibrillation alone leaves the
    AF scores not computable."""
    facts = [
        _patient("1956-03-03", "male"),
        _cond("af", SNOMED, "49436004", 800),
        _cond("hf", SNOMED, "703272007", 60, verification="provisional"),
        _cond("liver", SNOMED, "19943007", 30, verification="differential"),
        _obs("8480-6", 138.0, "mm[Hg]", 10),
        _obs("2160-0", 1.0, "mg/dL", 20),
        _obs("718-7", 14.5, "g/dL", 20),
    ]
    pid = _load(store, facts)
    d = derive_inputs(store, pid, AT)
    hf = d["congestive_heart_failure"]
    assert (hf.value, hf.status, hf.alternatives) == (None, "missing", (False, True))
    assert hf.detail.startswith("heart failure only suspected, not confirmed: 703272007")
    assert "provisional" in hf.detail
    liver = d["abnormal_liver_function"]
    assert (
        liver.value is None and "only suspected" in liver.detail and "differential" in liver.detail
    )
    assert "no liver tests in the last year" in liver.detail
    cha, bled = evaluate(store, pid, AT, scores=["cha2ds2_vasc", "has_bled"]).scores
    assert (cha.status, cha.low, cha.high) == ("range", 1.0, 2.0)  # age 68: 1; HF: 0 or 1
    assert "congestive_heart_failure not known (heart failure only suspected" in cha.message
    assert (bled.status, bled.low, bled.high) == ("range", 1.0, 2.0)  # age: 1; liver: 0 or 1
    # confirmed, it counts
    store.append_facts(
        [_cond("hf", SNOMED, "703272007", 60, verification="confirmed")], source="test"
    )
    (cha,) = evaluate(store, pid, AT, scores=["cha2ds2_vasc"]).scores
    assert (cha.status, cha.value) == ("computed", 2.0)


def test_a_suspected_atrial_fibrillation_leaves_the_af_scores_open(store: SqlStore) -> None:
    """Whether CHA2DS2-VASc applies rests on the AF: only suspected, the scores cannot be
    computed (not "not applicable", not a score), and the report says why; a suspected
    diabetes gives QRISK3's diabetes type as not known, with none or the suspected type."""
    pid = _load(
        store,
        [
            _patient("1956-03-03", "male"),
            _cond("af", SNOMED, "49436004", 30, verification="unconfirmed"),
            _cond("dm", SNOMED, "44054006", 30, verification="provisional"),
        ],
    )
    d = derive_inputs(store, pid, AT)
    assert d["atrial_fibrillation"].value is None
    cha, bled = evaluate(store, pid, AT, scores=["cha2ds2_vasc", "has_bled"]).scores
    for outcome in (cha, bled):
        assert outcome.status == "missing", outcome
        assert "atrial fibrillation or flutter only suspected" in outcome.message
    assert d["diabetes"].value is None and d["diabetes_type"].value is None
    assert d["diabetes_type"].alternatives == ("none", "type2")


def test_a_procedure_not_done_does_not_count(store: SqlStore) -> None:
    """A haemodialysis recorded "not-done" (or only in preparation) is no dialysis: the renal
    item falls back to the creatinine; completed, it counts."""
    pid = _load(
        store,
        [
            _patient("1950-05-05", "male"),
            _cond("af", SNOMED, "49436004", 800),
            _obs("2160-0", 1.0, "mg/dL", 20),
        ],
    )

    def dialysis(status: str) -> Procedure:
        return Procedure(
            source="ehr", source_id="hd", subject=WHO,
            code=Coding(SNOMED, "302497006", "Hemodialysis (procedure)"),
            status=status, effective_start=_ago(10),
        )  # fmt: skip

    for status, counted in (("not-done", False), ("preparation", False), ("completed", True)):
        store.append_facts([dialysis(status)], source="test")
        renal = derive_inputs(store, pid, AT)["abnormal_renal_function"]
        assert renal.value is counted, (status, renal.detail)


def test_a_cancelled_result_is_not_read(store: SqlStore) -> None:
    """A creatinine whose test was cancelled (status ``cancelled``, a value left in it) is not
    the latest creatinine: the one before it is."""
    cancelled = Observation(
        source="lab", source_id="creat-cancelled", subject=WHO, code=Coding(LOINC, "2160-0"),
        status="cancelled", effective_start=_ago(5), value_num=3.0, unit="mg/dL",
        original_value=3.0, original_unit="mg/dL",
    )  # fmt: skip
    pid = _load(
        store, [_patient("1950-05-05", "male"), _obs("2160-0", 1.0, "mg/dL", 20), cancelled]
    )
    creatinine = derive_inputs(store, pid, AT)["creatinine_mg_dl"]
    assert creatinine.value == 1.0 and creatinine.provenance[0].source_id == "2160-0-20"


def test_a_haemoglobin_measured_in_pregnancy_is_read_with_the_pregnancy_threshold(
    store: SqlStore,
) -> None:
    """WHO 2011 Table 1: anaemia is a haemoglobin below 12.0 g/dL in a non-pregnant woman and
    below 11.0 in pregnancy. A woman of 34 with atrial fibrillation and a haemoglobin of 11.5
    measured in the 6th month of a pregnancy (SNOMED 72892002, ended 100 days ago) has no
    anaemia for HAS-BLED's B; the same value 30 days after the pregnancy's end is anaemia."""
    facts: list[Fact] = [
        _patient("1990-02-01", "female"),
        _cond("af", SNOMED, "49436004", 500),
        _cond("preg", SNOMED, "72892002", 370, ended_days_before=100, status="resolved"),
        _obs("718-7", 11.5, "g/dL", 180),
    ]
    pid = _load(store, facts)
    d = derive_inputs(store, pid, AT)
    assert d["pregnant"].value is False and d["pregnant"].status == "absent"
    bleeding = d["bleeding_history_or_predisposition"]
    assert bleeding.value is False and "latest haemoglobin 11.5 g/dL" in bleeding.detail
    during = derive_inputs(store, pid, AT - dt.timedelta(days=200))
    assert during["pregnant"].value is True
    assert during["pregnant"].detail == f"72892002 ({_ago(370):%Y-%m-%d})"
    store.append_facts([_obs("718-7", 11.5, "g/dL", 70)], source="test")  # after: anaemia
    after = derive_inputs(store, pid, AT)["bleeding_history_or_predisposition"]
    assert after.value is True
    assert after.detail == "haemoglobin 11.5 g/dL < 12 (WHO anaemia threshold, female)"
