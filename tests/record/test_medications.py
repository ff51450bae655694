"""Medication orders over time: when an order was taken, and the regimen of a drug group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from medtwin.record.facts import Coding, Identifier, MedicationRequest
from medtwin.record.medications import (
    ANTIHYPERTENSIVE_ATC,
    MedicationOrder,
    order_from_fact,
    order_state,
    regimen_at,
    regimen_since,
)

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
WHO = Identifier("urn:test:mrn", "MED-1")
RECORDED = datetime(2026, 1, 1, tzinfo=UTC)
LISINOPRIL_10 = ("314076", "lisinopril 10 MG Oral Tablet")
LISINOPRIL_OTHER = ("29046", "lisinopril")  # another code of the same ingredient: a new dose
AMLODIPINE_5 = ("197361", "Amlodipine 5 MG Oral Tablet")
ATORVASTATIN = ("259255", "Atorvastatin 80 MG Oral Tablet")


def _day(d: str) -> datetime:
    return datetime.fromisoformat(d + "T09:00:00+00:00")


def _order(
    drug: tuple[str, str],
    start: str,
    *,
    end: str | None = None,
    status: str = "active",
    sid: str | None = None,
    recorded: datetime = RECORDED,
) -> MedicationOrder:
    fact = MedicationRequest(
        source="ehr",
        source_id=sid or f"MedicationRequest/{drug[0]}-{start}",
        subject=WHO,
        code=Coding(RXNORM, drug[0], drug[1]),
        status=status,
        effective_start=_day(start),
        effective_end=None if end is None else _day(end),
    )
    order = order_from_fact(fact, recorded, 7)
    assert order is not None
    return order


def test_an_order_is_read_with_its_ingredients_and_atc_classes() -> None:
    order = _order(LISINOPRIL_10, "2024-01-01")
    assert order.display == "lisinopril 10 MG Oral Tablet"
    assert order.ingredients == "lisinopril"
    assert order.classes == ("C09AA03",)
    assert order.code.endswith("|314076") and order.fact_id == 7


def test_order_states_follow_end_dates_renewals_and_when_a_stop_was_recorded() -> None:
    at = _day("2024-06-01")
    assert order_state(_order(LISINOPRIL_10, "2024-07-01"), (), at) == "ended"  # not yet
    assert order_state(_order(LISINOPRIL_10, "2024-01-01"), (), at) == "active"
    ended = _order(LISINOPRIL_10, "2024-01-01", end="2024-05-01", status="stopped")
    assert order_state(ended, (), at) == "ended"
    cancelled = _order(LISINOPRIL_10, "2024-01-01", status="cancelled")
    assert order_state(cancelled, (), at) == "ended"
    # stopped without a date: taken until a renewal of the same ingredients ...
    stopped = _order(LISINOPRIL_10, "2024-01-01", status="stopped")
    assert order_state(stopped, (_day("2024-09-01"),), at) == "active"
    assert order_state(stopped, (_day("2024-03-01"),), at) == "ended"
    # ... else unknown until the stop was on record, ended after
    assert order_state(stopped, (), at) == "unknown"
    late = _order(LISINOPRIL_10, "2024-01-01", status="stopped", recorded=_day("2024-05-01"))
    assert order_state(late, (), at) == "ended"


def test_a_regimen_changes_with_a_new_drug_a_new_dose_and_a_stop_not_a_repeat() -> None:
    orders = [
        _order(LISINOPRIL_10, "2020-01-01", status="stopped"),
        _order(LISINOPRIL_10, "2021-01-01", status="stopped"),  # a repeat prescription
        _order(LISINOPRIL_OTHER, "2022-03-01"),  # a new dose renews (ends) the 10 mg orders
        _order(AMLODIPINE_5, "2023-05-01", end="2024-02-01", status="stopped"),
        _order(ATORVASTATIN, "2021-06-01"),  # not in the group
    ]
    group = ANTIHYPERTENSIVE_ATC
    assert regimen_at(orders, _day("2019-06-01"), group).taken == ()
    assert regimen_at(orders, _day("2021-06-01"), group).taken == (LISINOPRIL_10[1],)
    assert regimen_at(orders, _day("2022-06-01"), group).taken == (LISINOPRIL_OTHER[1],)
    both = regimen_at(orders, _day("2023-06-01"), group)
    assert both.taken == (AMLODIPINE_5[1], LISINOPRIL_OTHER[1]) and both.known
    assert regimen_at(orders, _day("2024-06-01"), group).describe() == LISINOPRIL_OTHER[1]
    # since when unchanged: the repeat prescription is no change, the new dose is
    assert regimen_since(orders, _day("2021-06-01"), group) == _day("2020-01-01")
    assert regimen_since(orders, _day("2022-06-01"), group) == _day("2022-03-01")
    assert regimen_since(orders, _day("2023-06-01"), group) == _day("2023-05-01")
    assert regimen_since(orders, _day("2024-06-01"), group) == _day("2024-02-01")
    assert regimen_since(orders, _day("2019-06-01"), group) is None
    assert regimen_since(orders, _day("2024-06-01") + timedelta(days=900), group) == _day(
        "2024-02-01"
    )


def test_an_order_stopped_on_an_unrecorded_date_makes_the_regimen_unknown_until_then() -> None:
    orders = [_order(AMLODIPINE_5, "2023-01-01", status="stopped", recorded=_day("2024-01-01"))]
    group = ANTIHYPERTENSIVE_ATC
    unknown = regimen_at(orders, _day("2023-06-01"), group)
    assert not unknown.known and unknown.unknown == (AMLODIPINE_5[1],)
    assert "stopped on a date not recorded" in unknown.describe()
    assert regimen_at(orders, _day("2024-06-01"), group).taken == ()
    # the stop becomes known when it was recorded: the regimen changes then
    assert regimen_since(orders, _day("2024-06-01"), group) == _day("2024-01-01")


def test_a_new_strength_missing_from_the_table_is_read_by_its_name_and_changes_the_regimen() -> (
    None
):
    orders = [
        _order(LISINOPRIL_10, "2022-01-01", status="stopped"),
        _order(("314077", "lisinopril 20 MG Oral Tablet"), "2023-01-01"),  # not in the table
    ]
    assert orders[1].ingredients == "lisinopril" and orders[1].classes == ("C09AA03",)
    regimen = regimen_at(orders, _day("2023-06-01"), ANTIHYPERTENSIVE_ATC)
    assert regimen.taken == ("lisinopril 20 MG Oral Tablet",)
    assert regimen_since(orders, _day("2023-06-01"), ANTIHYPERTENSIVE_ATC) == _day("2023-01-01")
    pack = _order(("748962", "Camila 28 Day Pack"), "2023-01-01")
    assert pack.classes == () and pack.ingredients == ""


def test_an_adhd_product_of_an_antihypertensive_is_not_in_the_blood_pressure_regimen() -> None:
    """The circulation twin reads the treatment through :func:`regimen_at`: starting Kapvay
    (ADHD clonidine, RxCUI 1013930) does not change the antihypertensive regimen, so readings
    before and after it stay one treatment; its ATC class is still clonidine's."""
    kapvay = ("1013930", "12 HR clonidine hydrochloride 0.1 MG Extended Release Oral Tablet")
    orders = [_order(AMLODIPINE_5, "2023-01-01"), _order(kapvay, "2024-06-01")]
    assert orders[1].classes == ("C02AC01",) and "ADHD" in orders[1].not_counted
    assert orders[0].not_counted == ""
    regimen = regimen_at(orders, _day("2025-01-01"), ANTIHYPERTENSIVE_ATC)
    assert regimen.taken == ("Amlodipine 5 MG Oral Tablet",)
    assert regimen_since(orders, _day("2025-01-01"), ANTIHYPERTENSIVE_ATC) == _day("2023-01-01")


def _coded(system: str, code: str, display: str) -> MedicationOrder:
    fact = MedicationRequest(
        source="ehr", source_id=f"MedicationRequest/{code}", subject=WHO,
        code=Coding(system, code, display), status="active", effective_start=_day("2024-01-01"),
    )  # fmt: skip
    order = order_from_fact(fact, RECORDED)
    assert order is not None
    return order


DMD = "https://dmd.nhs.uk"


def test_an_order_in_another_code_system_is_read_by_the_ingredients_its_name_names() -> None:
    """The UK's dm+d (and SNOMED CT, or no code): the product's name, in British usage."""
    amlodipine = _coded(DMD, "39732311000001104", "Amlodipine 5mg tablets")
    assert (amlodipine.ingredients, amlodipine.classes) == ("amlodipine", ("C08CA01",))
    # the INN / British Approved Name of chlorthalidone, the BNF's combination names
    assert _coded(DMD, "1", "Chlortalidone 50mg tablets").classes == ("C03BA04",)
    co_amilozide = _coded(DMD, "2", "Co-amilozide 2.5mg/25mg tablets")
    assert co_amilozide.ingredients == "amiloride, hydrochlorothiazide"
    assert set(co_amilozide.classes) == {"C03DB01", "C03AA03"}
    assert _coded(DMD, "3", "Bendroflumethiazide 2.5mg tablets").classes == ("C03AA01",)
    assert _coded("http://snomed.info/sct", "4", "Atorvastatin 20mg tablets").classes == (
        "C10AA05",
    )
    # a name that names none of the table's ingredients has none
    assert _coded(DMD, "5", "Gaviscon Advance oral suspension").classes == ()


def test_an_atc_coded_order_is_its_own_class() -> None:
    """European records code drugs in WHO ATC (system http://www.whocc.no/atc)."""
    order = _coded("http://www.whocc.no/atc", "C09AA05", "Ramipril")
    assert (order.ingredients, order.classes) == ("Ramipril", ("C09AA05",))
    r = regimen_at([order], _day("2024-06-01"), ANTIHYPERTENSIVE_ATC)
    assert r.taken == ("Ramipril",)
