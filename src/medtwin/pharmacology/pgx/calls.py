"""From :class:`~medtwin.record.facts.Genotype` facts to gene calls.

Genotypes are facts (stored, versioned); calls are derived results, recomputed from the
facts whenever they are asked for and never stored as facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medtwin.pharmacology.pgx.caller import GENES, GeneCall, SampleGenotype, call_all
from medtwin.record.facts import Fact, Genotype

__all__ = ["call_facts", "calls_report", "genotypes_from_facts"]


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


def calls_report(calls: Iterable[GeneCall]) -> list[dict[str, Any]]:
    """The calls as JSON-ready dicts."""
    return [call.to_dict() for call in calls]
