"""The pharmacogenomic report of a patient: the drugs on the record with their CPIC advice.

``medtwin pgx report PATIENT`` joins three things the store holds:

1. the patient's :class:`~medtwin.record.facts.Genotype` facts, called for every gene
   (:func:`~medtwin.pharmacology.pgx.calls.call_facts`; calls are recomputed, never stored),
   and the patient's *outside calls* (a laboratory's CYP2D6 diplotype ...: stored with
   ``medtwin pgx record-call`` or given with the report), which override the call of their
   gene (:mod:`~medtwin.pharmacology.pgx.outside`). CYP2D6 is only ever an outside call;
   without one the report says it is not called and why;
2. the patient's medications: ``MedicationRequest`` and ``MedicationAdministration`` facts
   that are *active* (a request with status ``active`` or ``on-hold``, whatever its date) or
   *recent* (effective time, start or end, within ``days`` before ``now``; ``days=0`` takes the
   whole record). Cancelled, draft, not-done and entered-in-error facts are left out. Each is
   mapped to its ingredients: RxNorm codes through :func:`medtwin.record.codes.ingredients`
   (``309362`` "Clopidogrel 75 MG Oral Tablet" -> clopidogrel), other codes and code-less
   facts by the ingredient names of medtwin's RxNorm table found as words in the display;
3. the CPIC table of :mod:`medtwin.pharmacology.pgx.recommendations`, with the CPIC level of
   each gene-drug pair (``data/cpic_levels.json``: CPIC Genes-Drugs table, cpicpgx.org; every
   pair medtwin has is level A, final).

For each drug on the record that has a table: the genes, their diplotypes and phenotypes, the
advice with its strength, the CPIC level and the source; or ``cannot recommend: ...`` with the
reason (a gene not called and why, no genotypes on record). Drugs without a table are listed
as having no PGx guidance in medtwin (which is not the same as "no PGx guidance exists":
medtwin's table has ten drugs). ``all_drugs`` adds the advice for every drug in the table.

>>> from datetime import datetime, timezone
>>> from medtwin.record.facts import Coding, MedicationRequest
>>> from medtwin.record.codes import RXNORM
>>> req = MedicationRequest(source="s", source_id="MedicationRequest/1", status="active",
...                         code=Coding(RXNORM, "309362", "Clopidogrel 75 MG Oral Tablet"))
>>> report = build_report([], [req], patient_id="p1",
...                       now=datetime(2026, 1, 1, tzinfo=timezone.utc))
>>> report.advice[0].drug, report.advice[0].recommendation.cannot_recommend
('clopidogrel', 'cannot recommend: no genotypes on record')
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from medtwin.pharmacology.pgx.caller import GENES, GeneCall
from medtwin.pharmacology.pgx.calls import call_facts_with_outside
from medtwin.pharmacology.pgx.outside import (
    OUTSIDE_GENES,
    OutsideCall,
    apply_outside_calls,
    is_outside_call_fact,
    outside_calls_from_facts,
)
from medtwin.pharmacology.pgx.recommendations import DRUGS, Recommendation, recommend
from medtwin.record import codes
from medtwin.record.facts import Fact, Genotype

__all__ = [
    "DEFAULT_DAYS",
    "MEDICATION_KINDS",
    "DrugAdvice",
    "MedicationOnRecord",
    "PgxReport",
    "build_report",
    "cpic_levels",
    "medications_on_record",
    "patient_report",
]

DEFAULT_DAYS = 365
"""The default window: medications active now or given/ordered in the last year."""

MEDICATION_KINDS = ("MedicationRequest", "MedicationAdministration")
_LEFT_OUT = frozenset({"cancelled", "entered-in-error", "draft", "not-done"})
_ACTIVE = frozenset({"active", "on-hold"})
NO_GENOTYPES = "no genotypes on record"


@cache
def _levels() -> dict[str, Any]:
    text = resources.files("medtwin.pharmacology.pgx").joinpath("data/cpic_levels.json")
    return json.loads(text.read_text())  # type: ignore[no-any-return]


def cpic_levels(drug: str) -> dict[str, str]:
    """The CPIC level of each gene of ``drug`` (``{"CYP2C19": "A"}``), empty when not in the table.

    >>> cpic_levels("warfarin")
    {'CYP2C9': 'A', 'VKORC1': 'A', 'CYP4F2': 'A'}
    """
    return dict(_levels()["levels"].get(drug.lower(), {}))


@cache
def _drug_names() -> frozenset[str]:
    """Ingredient names of medtwin's RxNorm table and the CPIC drugs' names, lower case."""
    names = {
        info.display.lower()
        for info in codes.all_codes(codes.RXNORM).values()
        if info.extra.get("tty") == "IN" and info.display
    }
    return frozenset(names | set(DRUGS))


def drug_names(fact: Fact) -> tuple[tuple[str, ...], bool]:
    """The ingredient names of a medication fact and whether they were recognised.

    RxNorm codes go through :func:`medtwin.record.codes.ingredients`; otherwise the
    ingredient names of the RxNorm table and the CPIC drugs' names are looked for as whole
    words in the display (:func:`medtwin.record.codes.names_in`, the rule the risk inputs
    use too), longest first. An unrecognised medication returns its display (or code) and
    ``False``.

    >>> from medtwin.record.facts import Coding, MedicationRequest
    >>> fact = MedicationRequest(source="s", source_id="m",
    ...                          code=Coding("local", "x1", "SIMVASTATIN 40mg tab"))
    >>> drug_names(fact)
    (('simvastatin',), True)
    """
    coding = fact.code
    if coding is None:
        return (), False
    if codes.system_alias(coding.system) == codes.RXNORM:
        found = codes.ingredients(coding.code)
        if found:
            return tuple(dict.fromkeys(info.display.lower() for info in found)), True
    hits = codes.names_in(coding.display or "", _drug_names())
    if hits:
        return hits, True
    return ((coding.display or coding.code),), False


@dataclass(frozen=True, slots=True)
class MedicationOnRecord:
    """One drug (ingredient) on the record, with the facts that put it there."""

    drug: str
    recognised: bool
    displays: tuple[str, ...]
    kinds: tuple[str, ...]
    source_ids: tuple[str, ...]
    last_time: datetime | None
    active: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "drug": self.drug,
            "recognised": self.recognised,
            "displays": list(self.displays),
            "kinds": list(self.kinds),
            "source_ids": list(self.source_ids),
            "last_time": self.last_time.isoformat() if self.last_time else None,
            "active_order": self.active,
        }


def _time(fact: Fact) -> datetime | None:
    return fact.effective_end or fact.effective_start


def medications_on_record(
    facts: Iterable[Fact], *, now: datetime, days: int = DEFAULT_DAYS
) -> list[MedicationOnRecord]:
    """The drugs of the active and recent medication facts, one entry per ingredient.

    ``days=0`` takes every medication fact of the record.
    """
    if days < 0:
        raise ValueError(f"days: {days} is negative (0 takes the whole record)")
    start = now - timedelta(days=days) if days else None
    grouped: dict[str, dict[str, Any]] = {}
    for fact in facts:
        if fact.kind not in MEDICATION_KINDS or fact.retracted:
            continue
        status = (fact.status or "").lower()
        if status in _LEFT_OUT:
            continue
        active = fact.kind == "MedicationRequest" and status in _ACTIVE
        when = _time(fact)
        if not active and start is not None and (when is None or when < start):
            continue
        names, recognised = drug_names(fact)
        display = fact.code.display if fact.code and fact.code.display else None
        for name in names:
            entry = grouped.setdefault(
                name,
                {
                    "recognised": recognised,
                    "displays": [],
                    "kinds": [],
                    "ids": [],
                    "last": None,
                    "active": False,
                },
            )
            if display and display not in entry["displays"]:
                entry["displays"].append(display)
            if fact.kind not in entry["kinds"]:
                entry["kinds"].append(fact.kind)
            entry["ids"].append(fact.source_id)
            entry["active"] = entry["active"] or active
            if when is not None and (entry["last"] is None or when > entry["last"]):
                entry["last"] = when
    return [
        MedicationOnRecord(
            drug=name,
            recognised=e["recognised"],
            displays=tuple(e["displays"]),
            kinds=tuple(e["kinds"]),
            source_ids=tuple(e["ids"]),
            last_time=e["last"],
            active=e["active"],
        )
        for name, e in sorted(grouped.items())
    ]


@dataclass(frozen=True, slots=True)
class DrugAdvice:
    """The CPIC advice for one drug, with the gene calls it rests on."""

    drug: str
    recommendation: Recommendation
    calls: tuple[GeneCall, ...]
    cpic_level: dict[str, str]
    on_record: MedicationOnRecord | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        rec = self.recommendation
        return {
            "drug": self.drug,
            "on_record": self.on_record.to_dict() if self.on_record else None,
            "genes": [
                {
                    "gene": c.gene,
                    "diplotype": c.diplotype,
                    "diplotypes": list(c.diplotypes),
                    "phenotype": c.phenotype,
                    "activity_score": c.activity_score,
                    "uncalled_reason": c.uncalled_reason,
                    "cpic_level": self.cpic_level.get(c.gene),
                }
                for c in self.calls
            ],
            "basis": list(rec.basis),
            "advice": list(rec.advice),
            "strength": list(rec.strength),
            "cpic_level": _level_text(self.cpic_level),
            "source": rec.source,
            "cannot_recommend": rec.cannot_recommend,
        }


def _level_text(levels: dict[str, str]) -> str | None:
    found = sorted(set(levels.values()))
    if not found:
        return None
    status = _levels().get("status", "")
    return "/".join(found) + (f" ({status})" if status else "")


@dataclass(frozen=True, slots=True)
class PgxReport:
    """A patient's pharmacogenomic report (see the module docstring)."""

    patient_id: str
    genotype_positions: int
    now: datetime
    days: int
    calls: tuple[GeneCall, ...]
    medications: tuple[MedicationOnRecord, ...]
    advice: tuple[DrugAdvice, ...]
    without_guidance: tuple[MedicationOnRecord, ...]
    other_drugs: tuple[DrugAdvice, ...] = field(default=())
    outside_calls: tuple[OutsideCall, ...] = field(default=())

    @property
    def has_genotypes(self) -> bool:
        """Whether anything genetic is on record: genotype positions or outside calls."""
        return bool(self.genotype_positions or self.outside_calls)

    @property
    def window(self) -> str:
        """The medication window in words."""
        if not self.days:
            return "every medication request and administration on the record"
        since = (self.now - timedelta(days=self.days)).date().isoformat()
        return (
            f"active orders, and orders and administrations since {since} "
            f"({self.days} days before {self.now.date().isoformat()})"
        )

    @property
    def uncalled(self) -> list[tuple[str, str]]:
        """Genes with neither a diplotype nor a phenotype, with the reason."""
        if not self.calls:
            return [(gene, NO_GENOTYPES) for gene in OUTSIDE_GENES]
        return [
            (c.gene, c.uncalled_reason or "not called")
            for c in self.calls
            if c.diplotype is None and c.phenotype is None
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``medtwin pgx report --json``)."""
        return {
            "patient_id": self.patient_id,
            "genotype_positions": self.genotype_positions,
            "outside_calls": [c.to_dict() for c in self.outside_calls],
            "note": None if self.has_genotypes else NO_GENOTYPES,
            "medication_window": {
                "days": self.days,
                "now": self.now.isoformat(),
                "start": (self.now - timedelta(days=self.days)).isoformat() if self.days else None,
                "rule": self.window,
            },
            "genes": [c.to_dict() for c in self.calls],
            "uncalled": [{"gene": g, "reason": r} for g, r in self.uncalled],
            "drugs_with_guidance": [a.to_dict() for a in self.advice],
            "drugs_without_guidance": [m.to_dict() for m in self.without_guidance],
            "other_drugs": [a.to_dict() for a in self.other_drugs],
        }


def _advice(
    drug: str,
    calls: Sequence[GeneCall],
    on_record: MedicationOnRecord | None,
) -> DrugAdvice:
    rec = recommend(drug, calls)
    by_gene = {c.gene: c for c in calls}
    used = tuple(by_gene[g] for g in rec.genes if g in by_gene)
    if all(c.uncalled_reason == NO_GENOTYPES for c in used):
        rec = Recommendation(
            rec.drug, rec.genes, (), (), (), rec.source, f"cannot recommend: {NO_GENOTYPES}"
        )
    return DrugAdvice(rec.drug, rec, used, cpic_levels(drug), on_record)


def _no_genotypes(gene: str) -> GeneCall:
    return GeneCall.uncalled(gene, NO_GENOTYPES)


def build_report(
    genotypes: Iterable[Fact],
    medications: Iterable[Fact],
    *,
    patient_id: str,
    now: datetime | None = None,
    days: int = DEFAULT_DAYS,
    all_drugs: bool = False,
    outside: Sequence[OutsideCall] = (),
) -> PgxReport:
    """The report from a patient's Genotype facts (positions and stored outside calls),
    medication facts and ``outside`` calls given now (which win over stored ones)."""
    when = now or datetime.now(UTC)
    genotype_list = [f for f in genotypes if isinstance(f, Genotype) and not f.retracted]
    positional = [f for f in genotype_list if not is_outside_call_fact(f)]
    calls: tuple[GeneCall, ...] = ()
    used: list[OutsideCall] = []
    if positional:
        found, used = call_facts_with_outside(genotype_list, outside, always_cyp2d6=True)
        calls = tuple(found)
    elif outside or outside_calls_from_facts(genotype_list):
        # outside calls only: the other genes have no genotypes
        _, used = call_facts_with_outside(genotype_list, outside, genes=())
        placeholders = [_no_genotypes(g) for g in GENES]
        calls = tuple(apply_outside_calls(placeholders, used, always_cyp2d6=True))
    if not calls:
        calls_for_advice: tuple[GeneCall, ...] = tuple(_no_genotypes(g) for g in OUTSIDE_GENES)
    else:
        calls_for_advice = calls
    meds = medications_on_record(medications, now=when, days=days)
    advice = tuple(_advice(m.drug, calls_for_advice, m) for m in meds if m.drug in DRUGS)
    without = tuple(m for m in meds if m.drug not in DRUGS)
    on_record = {m.drug for m in meds}
    other = (
        tuple(_advice(d, calls_for_advice, None) for d in DRUGS if d not in on_record)
        if all_drugs
        else ()
    )
    return PgxReport(
        patient_id=patient_id,
        genotype_positions=len(positional),
        now=when,
        days=days,
        calls=calls,
        medications=tuple(meds),
        advice=advice,
        without_guidance=without,
        other_drugs=other,
        outside_calls=tuple(used),
    )


def patient_report(
    store: Any,
    patient: str,
    *,
    now: datetime | None = None,
    days: int = DEFAULT_DAYS,
    all_drugs: bool = False,
    outside: Sequence[OutsideCall] = (),
) -> PgxReport:
    """:func:`build_report` for ``patient`` (id or identifier) of a :class:`~medtwin.store.Store`."""
    pid = store.resolve_patient(patient)
    genotypes = [s.fact for s in store.timeline(pid, kinds=["Genotype"])]
    medications = [s.fact for s in store.timeline(pid, kinds=list(MEDICATION_KINDS))]
    return build_report(
        genotypes,
        medications,
        patient_id=pid,
        now=now,
        days=days,
        all_drugs=all_drugs,
        outside=outside,
    )
