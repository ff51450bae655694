"""From :class:`~medtwin.record.facts.Genotype` facts to gene calls.

Genotypes are facts (stored, versioned); calls are derived results, recomputed from the
facts whenever they are asked for and never stored as facts. The exception is a call made
outside medtwin (a laboratory's CYP2D6 diplotype, :mod:`~medtwin.pharmacology.pgx.outside`):
it is itself the fact, stored as a Genotype fact of code system ``urn:medtwin:pgx-outside-call``,
and overrides the call from the positions for its gene.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medtwin.pharmacology.pgx.caller import GENES, GeneCall, SampleGenotype, call_all
from medtwin.pharmacology.pgx.outside import (
    OUTSIDE_GENES,
    OutsideCall,
    apply_outside_calls,
    is_outside_call_fact,
    outside_calls_from_facts,
)
from medtwin.record.facts import Fact, Genotype

__all__ = [
    "call_facts",
    "call_facts_with_outside",
    "calls_report",
    "genotypes_from_facts",
    "merge_outside_calls",
]


def genotypes_from_facts(facts: Iterable[Fact]) -> dict[tuple[str, int], SampleGenotype]:
    """The sample genotypes of Genotype facts, keyed by ``(chromosome, position)``.

    ``./.`` and half calls become ``None`` alleles (missing positions).

    >>> g = Genotype(source="s", source_id="g", chromosome="chr10", position=94761900,
    ...              genotype="C/T")
    >>> genotypes_from_facts([g])[("chr10", 94761900)]
    SampleGenotype(alleles=('C', 'T'), phased=False)
    """
    out: dict[tuple[str, int], SampleGenotype] = {}
    for fact in facts:
        if not isinstance(fact, Genotype) or fact.retracted:
            continue
        if fact.chromosome is None or fact.position is None or not fact.genotype:
            continue
        text = fact.genotype
        phased = "|" in text
        parts = text.replace("|", "/").split("/")
        if len(parts) != 2:
            continue
        first, second = (None if p in (".", "") else p for p in parts)
        out[(fact.chromosome, fact.position)] = SampleGenotype((first, second), phased)
    return out


def call_facts(facts: Iterable[Fact], genes: Iterable[str] = GENES) -> list[GeneCall]:
    """Call every gene from a sample's Genotype facts."""
    return call_all(genotypes_from_facts(facts), genes)


def merge_outside_calls(*groups: Iterable[OutsideCall]) -> list[OutsideCall]:
    """One outside call per gene, a later group winning (a file given now over the record)."""
    by_gene: dict[str, OutsideCall] = {}
    for group in groups:
        for call in group:
            by_gene[call.gene] = call
    return [by_gene[g] for g in OUTSIDE_GENES if g in by_gene]


def call_facts_with_outside(
    facts: Iterable[Fact],
    outside: Iterable[OutsideCall] = (),
    genes: Iterable[str] = GENES,
    *,
    always_cyp2d6: bool = False,
) -> tuple[list[GeneCall], list[OutsideCall]]:
    """Calls from the positions of ``facts``, overridden by outside calls, and those calls.

    The outside calls are the ones stored among ``facts`` (latest per gene) and then
    ``outside`` (given now, winning for its genes). Only the genes of ``genes`` are called
    from positions; an outside call is applied to its gene when that gene is in ``genes`` or
    is CYP2D6 (which medtwin takes only from outside). ``always_cyp2d6`` adds a CYP2D6 entry
    saying why it is not called when no outside call gives one.
    """
    facts = list(facts)
    positional = [f for f in facts if not is_outside_call_fact(f)]
    wanted = [g for g in genes if g in GENES]
    used = [
        c
        for c in merge_outside_calls(outside_calls_from_facts(facts), outside)
        if c.gene in wanted or c.gene not in GENES
    ]
    calls = call_all(genotypes_from_facts(positional), wanted)
    return apply_outside_calls(calls, used, always_cyp2d6=always_cyp2d6), used


def calls_report(calls: Iterable[GeneCall]) -> list[dict[str, Any]]:
    """The calls as JSON-ready dicts."""
    return [call.to_dict() for call in calls]
