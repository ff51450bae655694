"""Score inputs that pregnancy changes (lipids, blood pressure, weight, HbA1c, kidney
function): a measurement taken in a pregnancy the record shows, or in the 42 days after it, is
not the person's usual level and is not read (``in_pregnancy`` of ``record_inputs.toml``)."""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path

import pytest
from tests.risk.records import lab, registered

from medtwin.ingest import import_paths
from medtwin.record.context import PUERPERIUM_DAYS
from medtwin.record.facts import LOINC, SNOMED, Coding, Condition, Fact, Identifier, Observation
from medtwin.risk.from_record import evaluate
from medtwin.risk.inputs import derive_inputs, validity
from medtwin.store import open_store
from medtwin.store.sql import SqlStore

WHO = Identifier("urn:test", "mother")
UTC = dt.UTC
PREGNANCY_START = dt.datetime(2023, 6, 1, tzinfo=UTC)
DELIVERY = dt.datetime(2024, 2, 20, tzinfo=UTC)


def _day(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(hour=9, tzinfo=UTC)


def _pregnancy(
    start: dt.datetime = PREGNANCY_START, end: dt.datetime | None = DELIVERY
) -> Condition:
    return Condition(
        source="ehr", source_id=f"preg-{start.date()}", subject=WHO,
        code=Coding(SNOMED, "72892002", "Normal pregnancy"),
        clinical_status="resolved" if end else "active", effective_start=start, effective_end=end,
    )  # fmt: skip


def _status(code: str, display: str, when: dt.datetime) -> Observation:
    return Observation(
        source="ehr", source_id=f"status-{when.date()}", subject=WHO,
        code=Coding(LOINC, "82810-3"), status="final", effective_start=when,
        value_code=Coding(SNOMED, code, display),
    )  # fmt: skip


def _panel(day: str, total: float, hdl: float, ldl: float, sbp: float) -> list[Fact]:
    when = _day(day)
    return [
        lab(WHO, "2093-3", total, "mg/dL", when),
        lab(WHO, "2085-9", hdl, "mg/dL", when),
        lab(WHO, "18262-6", ldl, "mg/dL", when),
        lab(WHO, "8480-6", sbp, "mm[Hg]", when),
    ]


def _record(store: SqlStore, *facts: Fact) -> str:
    store.append_facts([registered(WHO, "1990-03-01", "female"), *facts], source="test")
    return store.resolve_patient("urn:test|mother")


def test_a_pregnancys_panel_is_left_out_for_the_usual_one_before(store: SqlStore) -> None:
    pid = _record(
        store,
        _pregnancy(),
        *_panel("2023-01-10", 180.0, 60.0, 100.0, 112.0),
        *_panel("2023-11-01", 270.0, 75.0, 160.0, 125.0),  # in the pregnancy
    )
    inputs = derive_inputs(store, pid, dt.date(2023, 12, 1))
    assert inputs["pregnant"].value is True
    for name, usual in [
        ("total_cholesterol_mg_dl", 180.0),
        ("hdl_mg_dl", 60.0),
        ("ldl_mg_dl", 100.0),
        ("systolic_bp_mm_hg", 112.0),
    ]:
        got = inputs[name]
        assert (got.value, got.status) == (usual, "ok"), name
        assert "of 2023-11-01 left out: in a pregnancy" in got.detail
        # what it read, then what it left out
        assert [p.date for p in got.provenance] == ["2023-01-10", "2023-11-01"]
    assert inputs["cholesterol_hdl_ratio"].value == pytest.approx(3.0)


def test_the_same_record_without_the_pregnancy_reads_the_newest(store: SqlStore) -> None:
    """The control: nothing is left out when the record shows no pregnancy."""
    pid = _record(
        store,
        *_panel("2023-01-10", 180.0, 60.0, 100.0, 112.0),
        *_panel("2023-11-01", 270.0, 75.0, 160.0, 125.0),
    )
    inputs = derive_inputs(store, pid, dt.date(2023, 12, 1))
    assert inputs["total_cholesterol_mg_dl"].value == 270.0
    assert inputs["total_cholesterol_mg_dl"].detail == "LOINC 2093-3"


@pytest.mark.parametrize(
    ("after_days", "read"), [(PUERPERIUM_DAYS - 1, False), (PUERPERIUM_DAYS, True)]
)
def test_the_weeks_after_a_delivery_count_with_the_pregnancy(
    sqlite_store: SqlStore, after_days: int, read: bool
) -> None:
    taken = (DELIVERY + dt.timedelta(days=after_days)).date().isoformat()
    pid = _record(sqlite_store, _pregnancy(), *_panel(taken, 250.0, 55.0, 150.0, 130.0))
    got = derive_inputs(sqlite_store, pid, dt.date(2024, 6, 30))["total_cholesterol_mg_dl"]
    if read:
        assert (got.value, got.status) == (250.0, "ok")
    else:
        assert (got.value, got.status) == (None, "missing")
        assert got.reason().endswith("not the usual level; no other in the record")
        assert got.provenance[0].date == taken


def test_a_not_pregnant_status_ends_the_pregnancy(sqlite_store: SqlStore) -> None:
    """A pregnancy status "Pregnant" then "Not pregnant" a month later (a miscarriage): a panel
    45 days after the second is the usual level (without it, the next test)."""
    panel = _panel("2023-08-15", 210.0, 50.0, 130.0, 118.0)
    pregnant = _status("77386006", "Pregnant", _day("2023-06-01"))
    ended = _status("60001007", "Not pregnant", _day("2023-07-01"))
    pid = _record(sqlite_store, pregnant, ended, *panel)
    got = derive_inputs(sqlite_store, pid, dt.date(2023, 9, 1))["total_cholesterol_mg_dl"]
    assert (got.value, got.status) == (210.0, "ok")


def test_a_pregnancy_without_its_end_leaves_out_the_panel(sqlite_store: SqlStore) -> None:
    pid = _record(
        sqlite_store,
        _status("77386006", "Pregnant", _day("2023-06-01")),
        *_panel("2023-08-15", 210.0, 50.0, 130.0, 118.0),
    )
    got = derive_inputs(sqlite_store, pid, dt.date(2023, 9, 1))["total_cholesterol_mg_dl"]
    assert got.value is None
    assert "pregnancy status 82810-3: Pregnant (2023-06-01)" in got.reason()


def test_an_older_usual_panel_past_its_window_is_stale_and_says_why(sqlite_store: SqlStore) -> None:
    pid = _record(
        sqlite_store,
        _pregnancy(),
        *_panel("2022-03-01", 180.0, 60.0, 100.0, 112.0),
        *_panel("2023-11-01", 270.0, 75.0, 160.0, 125.0),
    )
    got = derive_inputs(sqlite_store, pid, dt.date(2023, 12, 1))["total_cholesterol_mg_dl"]
    assert got.status == "stale"
    assert got.reason().startswith("latest 2022-03-01 is older than 365 days (LOINC 2093-3 of")
    assert "2023-11-01 left out" in got.reason()


def test_weight_bmi_hba1c_and_kidney_function_of_a_pregnancy_are_left_out(
    sqlite_store: SqlStore,
) -> None:
    before, during = _day("2023-02-01"), _day("2023-10-01")
    facts: list[Fact] = [_pregnancy()]
    for code, unit, usual, pregnant in [
        ("29463-7", "kg", 70.0, 82.0),
        ("39156-5", "kg/m2", 25.7, 30.1),
        ("4548-4", "%", 5.6, 5.1),
        ("2160-0", "mg/dL", 0.8, 0.5),
        ("9318-7", "mg/g", 10.0, 40.0),
    ]:
        facts += [lab(WHO, code, usual, unit, before), lab(WHO, code, pregnant, unit, during)]
    pid = _record(sqlite_store, *facts)
    inputs = derive_inputs(sqlite_store, pid, dt.date(2023, 12, 1))
    assert inputs["weight_kg"].value == 70.0
    assert inputs["bmi_kg_m2"].value == 25.7
    assert inputs["hba1c_percent"].value == 5.6
    assert inputs["creatinine_mg_dl"].value == 0.8
    assert inputs["uacr_mg_g"].value == 10.0
    # eGFR is computed from the usual creatinine (CKD-EPI 2021, female, 33 years): not the
    # pregnancy's 0.5 mg/dL
    assert inputs["egfr_ml_min_1_73m2"].status == "computed"
    assert "0.8 mg/dL" in inputs["egfr_ml_min_1_73m2"].detail
    # height and haemoglobin are not changed by pregnancy in the scores' sense: read as they are
    assert not validity()["height_cm"].get("in_pregnancy")
    assert not validity()["haemoglobin_g_dl"].get("in_pregnancy")


def test_qrisk3_blood_pressure_variability_leaves_out_a_pregnancys_readings(
    sqlite_store: SqlStore,
) -> None:
    readings = [
        ("2021-05-01", 118.0),
        ("2022-05-01", 122.0),
        ("2023-08-01", 100.0),
        ("2023-10-01", 140.0),
    ]
    pid = _record(
        sqlite_store,
        _pregnancy(),
        *(lab(WHO, "8480-6", v, "mm[Hg]", _day(d)) for d, v in readings),
    )
    got = derive_inputs(sqlite_store, pid, dt.date(2024, 6, 30))["systolic_bp_sd_mm_hg"]
    assert got.value == pytest.approx(statistics.stdev([118.0, 122.0]))
    assert "(2 taken in a pregnancy or the 42 days after it left out)" in got.detail


def test_a_pregnancys_high_ldl_is_not_severe_hypercholesterolaemia(sqlite_store: SqlStore) -> None:
    pid = _record(
        sqlite_store, _pregnancy(), lab(WHO, "18262-6", 205.0, "mg/dL", _day("2023-11-01"))
    )
    got = derive_inputs(sqlite_store, pid, dt.date(2024, 6, 30))["severe_hypercholesterolaemia"]
    assert got.value is False
    assert "no LDL cholesterol outside a pregnancy in the record (1 in one" in got.detail

    later = lab(WHO, "18262-6", 205.0, "mg/dL", _day("2024-05-01"))
    sqlite_store.append_facts([later], source="test")
    assert (
        derive_inputs(sqlite_store, pid, dt.date(2024, 6, 30))["severe_hypercholesterolaemia"].value
        is True
    )


SUZI = "Suzi_Bechtelar_7c8e5aa3"  # pregnant 2017-06-20 to 2018-01-02, lipids 2017-12-19


def test_a_shared_record_with_lipids_taken_in_a_pregnancy(shared: Path, tmp_path: Path) -> None:
    """Suzi Bechtelar (Synthea): her only panel before 2020 was taken in her fourth pregnancy,
    a fortnight before delivery. The cardiovascular scores cannot use it, and say why; her next
    panel (2020-12-22) is read."""
    path = next((shared / "fhir" / "synthea-r4").glob(SUZI + "*.json"))
    store = open_store(str(tmp_path / "s.db"), actor="test")
    import_paths(store, [path])
    (pid,) = [p.id for p in store.patients()]
    report = evaluate(store, pid, dt.date(2018, 1, 31))
    tc = report.inputs["total_cholesterol_mg_dl"]
    assert (tc.value, tc.provenance[0].date) == (None, "2017-12-19")
    assert "72892002 Normal pregnancy (2017-06-20)" in tc.reason()
    qrisk3 = next(s for s in report.scores if s.name == "qrisk3_10y")
    assert qrisk3.status == "missing"
    assert "2017-12-19 left out: in a pregnancy" in qrisk3.message
    later = derive_inputs(store, pid, dt.date(2021, 1, 31))["total_cholesterol_mg_dl"]
    assert later.status == "ok"
    assert later.value == pytest.approx(166.89, abs=0.01)
    assert later.detail == "LOINC 2093-3"
    store.close()


def _with_range(code: str, value: float, unit: str, high: float, day: str) -> Observation:
    """A result with its reference range's upper limit (HAS-BLED's liver item reads it)."""
    when = _day(day)
    return Observation(
        source="lab", source_id=f"{code}-{day}", subject=WHO, code=Coding(LOINC, code),
        status="final", effective_start=when, value_num=value, unit=unit, reference_high=high,
    )  # fmt: skip


def test_has_bled_reads_the_state_now_also_in_pregnancy(sqlite_store: SqlStore) -> None:
    """HAS-BLED's uncontrolled hypertension and renal function are bleeding risks now, whatever
    their cause: a pregnancy's readings count (the cardiovascular scores leave them out as not
    the usual level). Its liver item does not read a pregnancy's alkaline phosphatase (the
    placenta makes it); bilirubin and the transaminases still count."""
    pid = _record(
        sqlite_store,
        _pregnancy(),
        lab(WHO, "8480-6", 120.0, "mm[Hg]", _day("2023-03-01")),
        lab(WHO, "8480-6", 168.0, "mm[Hg]", _day("2023-12-20")),  # severe, in the pregnancy
        lab(WHO, "2160-0", 0.7, "mg/dL", _day("2023-03-01")),
        lab(WHO, "2160-0", 2.5, "mg/dL", _day("2023-12-20")),  # 221 umol/L
        _with_range("1975-2", 2.6, "mg/dL", 1.2, "2023-12-20"),  # bilirubin 2.2 x ULN
        _with_range("6768-6", 480.0, "U/L", 120.0, "2023-12-20"),  # ALP 4 x ULN, placental
        _with_range("1742-6", 30.0, "U/L", 35.0, "2023-12-20"),  # ALT normal
    )
    inputs = derive_inputs(sqlite_store, pid, dt.date(2023, 12, 31))
    assert inputs["systolic_bp_mm_hg"].value == 120.0  # the usual level, for the CVD scores
    assert inputs["hypertension_uncontrolled"].value is True
    assert "latest systolic 168 mmHg > 160" in inputs["hypertension_uncontrolled"].detail
    assert inputs["abnormal_renal_function"].value is True
    liver = inputs["abnormal_liver_function"]
    assert liver.value is False
    assert "1 alkaline phosphatase of a pregnancy or the 42 days after it not read" in liver.detail
    # an ALT 4 x ULN with the same bilirubin is the liver's
    sqlite_store.append_facts(
        [_with_range("1742-6", 140.0, "U/L", 35.0, "2023-12-21")], source="test"
    )
    liver = derive_inputs(sqlite_store, pid, dt.date(2023, 12, 31))["abnormal_liver_function"]
    assert liver.value is True and "ALT 4.0 x ULN" in liver.detail
