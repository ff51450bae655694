"""Medication orders over time: whether an order was being taken at a time, and a regimen.

A record's medication orders (FHIR MedicationRequest) say when a drug was started, and
sometimes when it was stopped; often the end is only implied: an order ``stopped`` or
``completed`` with no end date was taken until a renewal of the same ingredients, or until a
date the record does not give. :func:`order_state` reads one order at one time that way, and
:func:`regimen_at` the set of orders of one drug group (WHO ATC class prefixes) being taken at a
time, so that a reading can be told apart by the treatment it was taken under
(:func:`regimen_since`: since when the treatment at a time has been unchanged).

The risk inputs (:mod:`medtwin.risk.inputs`: "on antihypertensive treatment", "on a statin") and
the circulation twin (:mod:`medtwin.twin._cardiovascular_fit`: readings under the current
antihypertensive treatment) read orders through this module, so both read them alike.

>>> import datetime as dt
>>> day = lambda d: dt.datetime.fromisoformat(d + "T09:00:00+00:00")
>>> old = MedicationOrder("1", "310798", "HCTZ 25 MG", "hydrochlorothiazide", ("C03AA03",),
...                       day("2020-01-01"), None, "stopped", day("2024-01-01"))
>>> new = MedicationOrder("2", "197361", "amlodipine 5 MG", "amlodipine", ("C08CA01",),
...                       day("2023-06-01"), None, "active", day("2023-06-01"))
>>> r = regimen_at([old, new], day("2023-09-01"), ("C03", "C08"))
>>> r.taken, r.unknown
(('amlodipine 5 MG',), ('HCTZ 25 MG',))
>>> regimen_at([old, new], day("2024-03-01"), ("C03", "C08")).describe()
'amlodipine 5 MG'
>>> regimen_since([old, new], day("2024-03-01"), ("C03", "C08")).date()
datetime.date(2024, 1, 1)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACTIVE_STATUSES",
    "ANTIHYPERTENSIVE_ATC",
    "ATC_SYSTEM",
    "ENDED_STATUSES",
    "NOT_BLOOD_PRESSURE_PRODUCTS",
    "NOT_ORDERED_INTENTS",
    "VOID_STATUSES",
    "MedicationOrder",
    "Regimen",
    "atc_classes",
    "not_counted",
    "order_from_fact",
    "order_state",
    "regimen_at",
    "regimen_since",
]

ACTIVE_STATUSES = frozenset({"active", "on-hold", "in-progress"})
"""FHIR MedicationRequest.status values of an order being taken."""
VOID_STATUSES = frozenset({"cancelled", "entered-in-error", "draft", "not-taken", "intended"})
"""Statuses of an order never taken (MedicationRequest's cancelled, draft; a MedicationStatement's
not-taken and intended, a drug the patient does not or does not yet take)."""
ENDED_STATUSES = frozenset({"stopped", "completed"})
"""Statuses of an order taken once and ended (with or without an end date)."""

ANTIHYPERTENSIVE_ATC = ("C02", "C03", "C07", "C08", "C09")
"""WHO ATC classes taken as blood-pressure treatment: antihypertensives (C02), diuretics (C03),
beta blockers (C07), calcium channel blockers (C08), renin-angiotensin agents (C09). WHO
Collaborating Centre for Drug Statistics Methodology, ATC index 2024. Read from the ``atc_class``
column of medtwin's RxNorm table (``record/data/rxnorm.csv``) through the drug's ingredient."""


NOT_BLOOD_PRESSURE_PRODUCTS = {
    "1013930": "12 HR clonidine hydrochloride 0.1 MG Extended Release Oral Tablet",
    "1013937": "12 HR clonidine hydrochloride 0.2 MG Extended Release Oral Tablet",
}
"""Products of an antihypertensive ingredient indicated for something else, by RxCUI: twice-daily
extended-release clonidine (Kapvay and its generics) is indicated for attention deficit
hyperactivity disorder only (Kapvay prescribing information: "for the treatment of ADHD as
monotherapy or as adjunctive therapy to stimulant medications"), and the eCQM value set "ADHD
Medications" (OID 2.16.840.1.113883.3.464.1003.196.12.1171, eCQM update 2021-05-06) lists these
two codes. WHO gives clonidine one systemic ATC code, C02AC01, whatever the use, so the ATC class
cannot tell them apart. Immediate-release clonidine, which that value set also lists (it is used
for both), and the weekly patches stay blood-pressure treatment."""

_NOT_BLOOD_PRESSURE_NAME = re.compile(
    r"\b(?:12 ?HR clonidine|clonidine\b[^/]*\b12 ?HR\b[^/]*extended release|kapvay)\b",
    re.IGNORECASE,
)
"""The same products by name: the RxNorm name (``"12 HR clonidine hydrochloride 0.1 MG Extended
Release Oral Tablet"``; before 2013 ``"clonidine hydrochloride 0.1 MG 12HR Extended Release Oral
Tablet"``), or the brand, for a code of another strength, a branded code or another code
system."""


def not_counted(fact: Any) -> str:
    """Why an order of an antihypertensive ingredient is not blood-pressure treatment: a
    product indicated only for something else (:data:`NOT_BLOOD_PRESSURE_PRODUCTS`); ``""``
    for every other order.

    >>> from medtwin.record.facts import Coding, MedicationRequest
    >>> kapvay = Coding("http://www.nlm.nih.gov/research/umls/rxnorm", "1013930",
    ...                 "12 HR clonidine hydrochloride 0.1 MG Extended Release Oral Tablet")
    >>> not_counted(MedicationRequest(source="s", source_id="m", code=kapvay))
    'twice-daily extended-release clonidine, indicated for ADHD'
    >>> catapres = Coding("local", "c", "clonidine hydrochloride 0.1 MG Oral Tablet")
    >>> not_counted(MedicationRequest(source="s", source_id="m", code=catapres))
    ''
    """
    from medtwin.record.codes import RXNORM

    code = fact.code
    if code is None:
        return ""
    if (code.system == RXNORM and code.code in NOT_BLOOD_PRESSURE_PRODUCTS) or (
        code.display and _NOT_BLOOD_PRESSURE_NAME.search(code.display)
    ):
        return "twice-daily extended-release clonidine, indicated for ADHD"
    return ""


ATC_SYSTEM = "http://www.whocc.no/atc"
"""The FHIR system of the WHO ATC classification (European records code drugs in it)."""


def atc_classes(fact: Any) -> tuple[str, list[str]]:
    """The ingredients' names (``", "``-joined) and ATC classes of an order.

    An RxNorm code in medtwin's RxNorm table gives its ingredients; one it lacks (another
    strength or form) gives the table's ingredients its RxNorm name names
    (:func:`medtwin.record.codes.ingredients_named`: "lisinopril 20 MG Oral Tablet" is
    lisinopril). An ATC code (system ``http://www.whocc.no/atc``) is its own class. An order in
    another code system (the UK's dm+d, SNOMED CT, a national product code) or only in text
    gives the ingredients its name names ("Amlodipine 5mg tablets", "Co-amilozide 2.5mg/25mg
    tablets": INN, British Approved and BNF combination names are read too); naming none of
    them, it has none.
    """
    from medtwin.record.codes import RXNORM, ingredients, ingredients_named

    code = fact.code
    if code is None:
        return "", []
    if code.system == ATC_SYSTEM and code.code:
        return (code.display or code.code), [code.code]
    found = ingredients(code.code) if code.system == RXNORM else ()
    if not found and code.display:
        found = ingredients_named(code.display)
    return ", ".join(i.display or "" for i in found), [i.extra.get("atc_class", "") for i in found]


@dataclass(frozen=True, slots=True)
class MedicationOrder:
    """One medication order as :func:`order_state` reads it."""

    source_id: str
    code: str
    """The drug's code (RxNorm: ingredient and strength, so a new dose is another code)."""
    display: str
    """The drug as the record names it (``"Amlodipine 5 MG Oral Tablet"``)."""
    ingredients: str
    """The ingredients' names: a later order of the same ones renews this one."""
    classes: tuple[str, ...]
    """The ingredients' ATC classes (empty: not in medtwin's table)."""
    start: dt.datetime
    end: dt.datetime | None
    status: str | None
    recorded_at: dt.datetime
    """When the store learnt this version of the order (a stop without a date is known from
    then on)."""
    fact_id: int | None = None
    not_counted: str = ""
    """Why the order is not counted in its ingredients' ATC groups (:func:`not_counted`: a
    product indicated only for another use); ``""``: it is."""


NOT_ORDERED_INTENTS = frozenset({"proposal", "option"})
"""MedicationRequest intents that order nothing (FHIR R4 medicationrequest-intent: a proposal is
a suggestion, e.g. of decision support, not yet a decision; an option is one choice of an order
set): not a drug the patient takes. Plans (a UK GP's repeat authorisation) and orders are."""


def order_from_fact(
    fact: Any, recorded_at: dt.datetime, fact_id: int | None = None
) -> MedicationOrder | None:
    """The order a MedicationRequest fact states (``None`` without a start time, or for a
    proposal or an option: :data:`NOT_ORDERED_INTENTS`)."""
    start = fact.effective_start
    if start is None or getattr(fact, "intent", None) in NOT_ORDERED_INTENTS:
        return None
    label, classes = atc_classes(fact)
    code = fact.code
    display = (code.display or code.code) if code is not None else ""
    return MedicationOrder(
        source_id=fact.source_id,
        code="" if code is None else f"{code.system}|{code.code}",
        display=display or fact.source_id,
        ingredients=label,
        classes=tuple(classes),
        start=start,
        end=fact.effective_end,
        status=fact.status,
        recorded_at=recorded_at,
        fact_id=fact_id,
        not_counted=not_counted(fact),
    )


def order_state(order: MedicationOrder, renewals: Sequence[dt.datetime], at: dt.datetime) -> str:
    """Whether an order was being taken at ``at``: "active", "ended" or "unknown".

    The status an order has now is later news for an earlier ``at`` (as for conditions): an
    order ``stopped`` or ``completed`` with no end date was taken until a renewal of the same
    ingredients (``renewals``: later orders' start times; a renewal after ``at`` shows it was
    still taken then, one before ``at`` replaced it), else until a date the record does not
    give: at an ``at`` before the stop was on record (the version's recorded time) that is
    "unknown", after it "ended". An order starting after ``at`` is "ended" (not yet taken).
    """
    start = order.start
    if start > at or order.status in VOID_STATUSES:
        return "ended"
    if order.end is not None:
        return "active" if order.end > at else "ended"
    if order.status in ACTIVE_STATUSES:
        return "active"
    if order.status not in ENDED_STATUSES:
        return "ended"  # unknown or missing status: not counted
    later = [t for t in renewals if t > start]
    if later:
        return "active" if min(later) > at else "ended"
    return "ended" if at >= order.recorded_at else "unknown"


@dataclass(frozen=True, slots=True)
class Regimen:
    """The orders of a drug group being taken at a time."""

    taken_orders: tuple[MedicationOrder, ...] = ()
    unknown_orders: tuple[MedicationOrder, ...] = ()
    """Orders that may or may not have been taken then (stopped on a date not given)."""

    @property
    def taken(self) -> tuple[str, ...]:
        """The drugs taken, as the record names them, sorted."""
        return tuple(sorted({o.display for o in self.taken_orders}))

    @property
    def unknown(self) -> tuple[str, ...]:
        """The drugs perhaps taken, sorted."""
        return tuple(sorted({o.display for o in self.unknown_orders}))

    @property
    def known(self) -> bool:
        """Whether the record says for every order of the group whether it was taken."""
        return not self.unknown_orders

    def key(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """What tells two regimens apart: the drugs' codes (with the dose) taken, and those
        perhaps taken; a repeat prescription of the same drug is the same regimen."""
        return (
            tuple(sorted({o.code for o in self.taken_orders})),
            tuple(sorted({o.code for o in self.unknown_orders})),
        )

    def describe(self) -> str:
        """``"Amlodipine 5 MG Oral Tablet, Lisinopril 10 MG"``, or ``"none"``; unknown ones said."""
        text = ", ".join(self.taken) if self.taken else "none"
        if self.unknown_orders:
            text += f" (and perhaps {', '.join(self.unknown)}: stopped on a date not recorded)"
        return text


def _group(orders: Iterable[MedicationOrder], prefixes: Sequence[str]) -> list[MedicationOrder]:
    wanted = tuple(prefixes)
    return [o for o in orders if not o.not_counted and any(c.startswith(wanted) for c in o.classes)]


def _renewals(orders: Sequence[MedicationOrder]) -> dict[str, list[dt.datetime]]:
    starts: dict[str, list[dt.datetime]] = {}
    for o in orders:
        if o.ingredients:
            starts.setdefault(o.ingredients, []).append(o.start)
    return starts


def regimen_at(
    orders: Iterable[MedicationOrder], at: dt.datetime, prefixes: Sequence[str]
) -> Regimen:
    """The orders of the ATC group ``prefixes`` taken (or perhaps taken) at ``at``."""
    group = _group(orders, prefixes)
    starts = _renewals(group)
    taken: list[MedicationOrder] = []
    unknown: list[MedicationOrder] = []
    for o in group:
        state = order_state(o, starts.get(o.ingredients, ()), at)
        if state == "active":
            taken.append(o)
        elif state == "unknown":
            unknown.append(o)
    return Regimen(taken_orders=tuple(taken), unknown_orders=tuple(unknown))


def regimen_since(
    orders: Iterable[MedicationOrder], at: dt.datetime, prefixes: Sequence[str]
) -> dt.datetime | None:
    """Since when the group's regimen at ``at`` has been the same (``None``: always, as far as
    the record goes: no order of the group started at or before ``at``, or none changed).

    The regimen changes only where an order starts or ends, where a renewal replaces an order
    and where a stop becomes known (the stopped order's recorded time), so those are the times
    looked at, latest first.
    """
    group = _group(orders, prefixes)
    current = regimen_at(group, at, prefixes).key()
    points = sorted(
        {
            t
            for o in group
            for t in (o.start, o.end, o.recorded_at if o.status in ENDED_STATUSES else None)
            if t is not None and t <= at
        },
        reverse=True,
    )
    tick = dt.timedelta(microseconds=1)
    for t in points:
        if regimen_at(group, t - tick, prefixes).key() != current:
            return t
    return None
