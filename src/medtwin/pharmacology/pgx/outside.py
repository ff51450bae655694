"""Outside calls: gene calls made by another tool or a laboratory, in PharmCAT's format.

PharmCAT's *outside call* file (pharmcat.org/using/Outside-Call-Format, PharmCAT v3) is
tab-separated, one gene per line, lines starting with ``#`` ignored; each line has up to
four fields:

1. HGNC gene symbol (required);
2. diplotype (``*1/*4``);
3. phenotype (``Intermediate Metabolizer``; ``PM``, ``IM``, ``NM``, ``EM``, ``UM`` and
   British spelling are read as PharmCAT reads them);
4. activity score (``1.0``), for the activity-score genes (CYP2D6, CYP2C9, DPYD).

At least one of fields 2-4 is given. As in PharmCAT, an outside call **overrides** the call
medtwin makes from the genotypes for that gene, and the call says so; a given activity
score trumps the phenotype and the diplotype, a given phenotype trumps the diplotype, and
a disagreement between them is kept as a note.

Genes: CYP2D6 (which medtwin only takes from outside, :mod:`~medtwin.pharmacology.pgx.cyp2d6`)
and the nine genes medtwin calls from a VCF (:data:`~medtwin.pharmacology.pgx.caller.GENES`).
Any other gene (HLA-A, HLA-B, G6PD, MT-RNR1, UGT1A1 ...) is refused with its name and line:
medtwin has no table to read it with, and silently dropping a line of a laboratory result
would hide it. So are a gene given twice, a malformed diplotype, an unknown phenotype and an
activity score that is not a number.

Outside calls can be stored for a patient as :class:`~medtwin.record.facts.Genotype` facts
(:func:`outside_call_facts`; code system :data:`OUTSIDE_CALL_SYSTEM`, the file's line kept
verbatim as the code display), so every later report uses them; recording a new call for the
same gene makes a new version of the fact.

>>> calls = parse_outside_calls("CYP2D6\\t*1/*3\\n")
>>> call = outside_gene_call(calls[0])
>>> call.diplotype, call.phenotype, call.activity_score
('*1/*3', 'Intermediate Metabolizer', 1.0)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from medtwin.pharmacology.pgx.caller import GENES, GeneCall, _phenotype, gene_table
from medtwin.pharmacology.pgx.cyp2d6 import (
    CYP2D6,
    CYP2D6_PHENOTYPES,
    DiplotypeError,
    cyp2d6_call,
    phenotype_from_activity,
)
from medtwin.record.facts import Coding, Fact, Genotype, Identifier

__all__ = [
    "OUTSIDE_CALL_SOURCE",
    "OUTSIDE_CALL_SYSTEM",
    "OUTSIDE_GENES",
    "OutsideCall",
    "OutsideCallError",
    "apply_outside_calls",
    "outside_call_facts",
    "outside_calls_from_facts",
    "outside_gene_call",
    "parse_outside_calls",
    "read_outside_calls",
]

OUTSIDE_GENES = (*GENES, CYP2D6)
"""The genes an outside call may name: medtwin's nine VCF genes and CYP2D6."""

OUTSIDE_CALL_SYSTEM = "urn:medtwin:pgx-outside-call"
"""Code system of the Genotype facts that hold an outside call (code: the gene)."""

OUTSIDE_CALL_SOURCE = "medtwin:pgx-outside-call"
"""The ``source`` of those facts."""

_ACTIVITY_GENES = frozenset({CYP2D6, "CYP2C9", "DPYD"})
_SYNONYMS = {
    "PM": "Poor Metabolizer",
    "IM": "Intermediate Metabolizer",
    "NM": "Normal Metabolizer",
    "EM": "Normal Metabolizer",
    "UM": "Ultrarapid Metabolizer",
}
_SCORE = re.compile(r"^(≥|>=)?\s*(\d+(?:\.\d+)?)$")


class OutsideCallError(ValueError):
    """An outside-call file that cannot be used; the message names the file, line and field."""


@dataclass(frozen=True, slots=True)
class OutsideCall:
    """One line of an outside-call file, checked (phenotype in CPIC's spelling)."""

    gene: str
    diplotype: str | None
    phenotype: str | None
    activity_score: str | None
    where: str
    line_text: str

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready dict."""
        return {
            "gene": self.gene,
            "diplotype": self.diplotype,
            "phenotype": self.phenotype,
            "activity_score": self.activity_score,
            "from": self.where,
        }


def _phenotypes(gene: str) -> tuple[str, ...]:
    if gene == CYP2D6:
        return CYP2D6_PHENOTYPES
    found = {phenotype for phenotype, _ in gene_table(gene).phenotypes.values()}
    return tuple(sorted(found | {"Indeterminate"}))


def _normalise_phenotype(gene: str, text: str, where: str) -> str:
    """CPIC's spelling of a phenotype, as PharmCAT reads outside phenotypes."""
    known = _phenotypes(gene)
    if not known or known == ("Indeterminate",):
        raise OutsideCallError(f"{where}: phenotype {text!r}: CPIC assigns {gene} no phenotype")
    words = text.strip()
    if words.upper() in _SYNONYMS:
        words = _SYNONYMS[words.upper()]
    words = re.sub(r"metaboli[sz]er", "metabolizer", words, flags=re.IGNORECASE)
    words = re.sub(rf"^{gene}\s+", "", words, flags=re.IGNORECASE)
    words = re.sub(r"\s*\((PM|IM|NM|EM|UM)\)$", "", words, flags=re.IGNORECASE)
    words = re.sub(r"(metabolizer|function)s\b", r"\1", words, flags=re.IGNORECASE)
    by_lower = {p.lower(): p for p in known}
    found = by_lower.get(words.lower())
    if found is None:
        raise OutsideCallError(
            f"{where}: phenotype {text!r} is not a CPIC {gene} phenotype ({', '.join(known)})"
        )
    return found


def _score_text(value: float) -> str:
    """``1.0``, ``0.25``, ``0.5``: an activity score as CPIC writes it."""
    text = f"{value:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _check_score(gene: str, text: str, where: str) -> str:
    if gene not in _ACTIVITY_GENES:
        return text  # PharmCAT: ignored for genes without an activity score (kept for display)
    match = _SCORE.match(text.strip())
    if match is None:
        raise OutsideCallError(f"{where}: activity score {text!r} is not a number")
    value = float(match.group(2))
    if value * 4 != int(value * 4):
        raise OutsideCallError(
            f"{where}: activity score {text!r} is not a CPIC {gene} value (steps of 0.25)"
        )
    return ("≥" if match.group(1) else "") + _score_text(value)


def _check_diplotype(gene: str, text: str, where: str) -> str:
    try:
        if gene == CYP2D6:
            return cyp2d6_call(text).diplotype or text
        _pair(gene, text)
    except DiplotypeError as exc:
        raise OutsideCallError(f"{where}: diplotype {exc}") from None
    return text


def _pair(gene: str, text: str) -> tuple[str, str]:
    """The two allele names of a diplotype of one of the nine VCF genes.

    Allele names are free text (DPYD ``c.1905+1G>A (*2A)``), so every ``/`` is tried as the
    separator; with a single ``/`` the halves are returned even when a name is not in the
    table (the call then says so).
    """
    table = gene_table(gene)
    names = {a.report_as for a in table.alleles} | {a.name for a in table.alleles}
    splits = [
        (text[:i].strip(), text[i + 1 :].strip()) for i, char in enumerate(text) if char == "/"
    ]
    for first, second in splits:
        if first in names and second in names:
            return first, second
    if len(splits) == 1 and splits[0][0] and splits[0][1]:
        return splits[0]
    example = table.reference.report_as
    raise DiplotypeError(
        f"{text!r}: a diplotype is two {gene} alleles separated by '/' (e.g. {example}/{example})"
    )


def parse_outside_calls(text: str, *, source: str = "outside call") -> list[OutsideCall]:
    """Parse the text of an outside-call file (see the module docstring).

    Raises
    ------
    OutsideCallError
        Naming ``source``, the line and the field: a gene medtwin has no table for (all
        such genes of the file are named at once), a gene given twice, a line without a
        diplotype, phenotype or activity score, a malformed diplotype, an unknown
        phenotype, an activity score that is not a number, more than four fields.
    """
    calls: list[OutsideCall] = []
    seen: dict[str, int] = {}
    unknown: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{source}, line {number}"
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) > 4:
            raise OutsideCallError(
                f"{where}: {len(fields)} tab-separated fields; the format has at most 4 "
                "(gene, diplotype, phenotype, activity score)"
            )
        fields += [""] * (4 - len(fields))
        gene_text, diplotype, phenotype, score = fields
        gene = gene_text.upper()
        if not gene:
            raise OutsideCallError(f"{where}: no gene symbol in the first field")
        if gene not in OUTSIDE_GENES:
            unknown.append(f"{gene_text} (line {number})")
            continue
        if gene in seen:
            raise OutsideCallError(
                f"{where}: {gene} is given twice (lines {seen[gene]} and {number}); "
                "give one call per gene"
            )
        seen[gene] = number
        if not (diplotype or phenotype or score):
            raise OutsideCallError(
                f"{where}: {gene} has no diplotype, phenotype or activity score "
                "(fields 2-4 are all empty)"
            )
        calls.append(
            OutsideCall(
                gene=gene,
                diplotype=_check_diplotype(gene, diplotype, where) if diplotype else None,
                phenotype=_normalise_phenotype(gene, phenotype, where) if phenotype else None,
                activity_score=_check_score(gene, score, where) if score else None,
                where=where,
                line_text=line,
            )
        )
    if unknown:
        raise OutsideCallError(
            f"{source}: medtwin reads outside calls for {', '.join(OUTSIDE_GENES)} only; "
            f"not for {', '.join(unknown)} (remove or comment out those lines with #)"
        )
    return calls


def read_outside_calls(path: Path) -> list[OutsideCall]:
    """Read an outside-call file (UTF-8, as PharmCAT expects: ``≥`` in copy numbers).

    Raises
    ------
    OutsideCallError
        For a missing or unreadable file, or bad content (:func:`parse_outside_calls`).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OutsideCallError(f"{path}: no such outside-call file") from None
    except UnicodeDecodeError as exc:
        raise OutsideCallError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return parse_outside_calls(text, source=str(path))


def _gene_call_from_diplotype(gene: str, diplotype: str, source: str) -> GeneCall:
    if gene == CYP2D6:
        return cyp2d6_call(diplotype, source=source)
    table = gene_table(gene)
    first, second = _pair(gene, diplotype)
    by_name = {a.report_as: a for a in table.alleles} | {a.name: a for a in table.alleles}
    missing = [n for n in (first, second) if n not in by_name]
    name = f"{first}/{second}"
    if missing:
        return GeneCall(
            gene=gene,
            diplotype=name,
            diplotypes=(name,),
            phenotype=None,
            activity_score=None,
            haplotypes=(first, second),
            uncalled_reason=f"{', '.join(missing)} not in medtwin's {gene} allele table",
            source=source,
        )
    pair = (by_name[first], by_name[second])
    phenotype, activity, why = _phenotype(table, pair)
    return GeneCall(
        gene=gene,
        diplotype=name,
        diplotypes=(name,),
        phenotype=phenotype,
        activity_score=activity,
        haplotypes=(first, second),
        functions=(pair[0].function, pair[1].function),
        notes=(why,) if why else (),
        source=source,
    )


def _phenotype_of_score(gene: str, value: float) -> str | None:
    if gene == CYP2D6:
        return phenotype_from_activity(value)
    found = {
        phenotype
        for phenotype, score in gene_table(gene).phenotypes.values()
        if score not in (None, "n/a") and float(score) == value
    }
    return found.pop() if len(found) == 1 else None


def outside_gene_call(call: OutsideCall) -> GeneCall:
    """The :class:`GeneCall` of one outside call (``outside_call`` says where it came from).

    As PharmCAT reads outside calls: for the activity-score genes a given activity score
    decides the phenotype; otherwise a given phenotype is used as given; otherwise the
    diplotype's phenotype. Each disagreement between the fields is kept as a note.
    """
    source = f"outside call ({call.where})"
    if call.diplotype:
        base = _gene_call_from_diplotype(call.gene, call.diplotype, source)
    else:
        base = GeneCall(
            gene=call.gene,
            diplotype=None,
            diplotypes=(),
            phenotype=None,
            activity_score=None,
            source=source,
        )
    notes = list(base.notes)
    phenotype, activity, reason = base.phenotype, base.activity_score, base.uncalled_reason
    if call.activity_score is not None and call.gene in _ACTIVITY_GENES:
        at_least = call.activity_score.startswith("≥")
        value = float(call.activity_score.lstrip("≥"))
        from_score = _phenotype_of_score(call.gene, value)
        unbounded = phenotype_from_activity(value + 100.0)  # any higher score
        if at_least and call.gene == CYP2D6 and from_score != unbounded:
            from_score = "Indeterminate"
        if base.activity_score is not None and base.activity_score != value:
            notes.append(
                f"the diplotype {call.diplotype} gives activity score "
                f"{_score_text(base.activity_score)}; "
                f"the file's activity score {call.activity_score} is used (it trumps)"
            )
        phenotype, activity = from_score, None if at_least else value
        reason = (
            None if from_score else f"activity score {call.activity_score} has no CPIC phenotype"
        )
        if call.phenotype and call.phenotype != phenotype:
            notes.append(
                f"the file's phenotype {call.phenotype!r} disagrees with its activity score "
                f"({phenotype}); the activity score is used"
            )
    elif call.phenotype:
        if base.phenotype is not None and base.phenotype != call.phenotype:
            notes.append(
                f"the file's phenotype {call.phenotype!r} disagrees with its diplotype "
                f"({base.phenotype}); the given phenotype is used"
            )
            activity = None
        phenotype, reason = call.phenotype, None
    if call.activity_score is not None and call.gene not in _ACTIVITY_GENES:
        notes.append(
            f"activity score {call.activity_score} ignored: CPIC gives {call.gene} no activity score"
        )
    if phenotype is None and reason is None and base.diplotype is None:
        reason = "the outside call gives no phenotype"
    return replace(
        base,
        phenotype=phenotype,
        activity_score=activity,
        uncalled_reason=None if phenotype is not None else reason,
        notes=tuple(notes),
        outside_call=call.where,
    )


def _describe(call: GeneCall) -> str:
    if call.diplotype:
        what = call.diplotype
    elif call.diplotypes:
        what = " or ".join(call.diplotypes)
    else:
        return f"not called: {call.uncalled_reason or 'no call'}"
    return what + (f", {call.phenotype}" if call.phenotype else "")


def apply_outside_calls(
    calls: Sequence[GeneCall], outside: Iterable[OutsideCall], *, always_cyp2d6: bool = False
) -> list[GeneCall]:
    """``calls`` with each outside call in place of the gene's own call, CYP2D6 last.

    An overridden call is named in a note of the outside one ("overrides the call from the
    genotypes (*2/*2, Poor Metabolizer)"), when the genotypes called any position of the gene. With ``always_cyp2d6`` a CYP2D6 entry is added when no outside call
    gives one, saying why it is not called.
    """
    given = {c.gene: outside_gene_call(c) for c in outside}
    out: list[GeneCall] = []
    for call in calls:
        replacement = given.pop(call.gene, None)
        if replacement is None:
            out.append(call)
        elif call.positions_used or call.diplotypes:  # the genotypes said something
            note = f"overrides the call from the genotypes ({_describe(call)})"
            out.append(replace(replacement, notes=(*replacement.notes, note)))
        else:
            out.append(replacement)
    for gene in OUTSIDE_GENES:
        if gene in given:
            out.append(given.pop(gene))
        elif gene == CYP2D6 and always_cyp2d6 and not any(c.gene == CYP2D6 for c in out):
            out.append(uncalled_cyp2d6())
    return out


def uncalled_cyp2d6() -> GeneCall:
    """CYP2D6 without an outside call: not called, and why."""
    return GeneCall(
        gene=CYP2D6,
        diplotype=None,
        diplotypes=(),
        phenotype=None,
        activity_score=None,
        uncalled_reason=(
            "medtwin calls CYP2D6 only from an outside call (its deletions, duplications "
            "and hybrids are structural variants a VCF of SNVs cannot show); none given"
        ),
    )


def outside_call_facts(
    calls: Iterable[OutsideCall], *, subject: Identifier, result_date: datetime | None = None
) -> list[Genotype]:
    """Genotype facts holding outside calls for the patient ``subject``.

    One fact per gene, ``source_id`` ``outside-call/<GENE>``: recording a different call for
    a gene makes a new version (the old one stays, superseded); recording the same one again
    changes nothing. ``result_date`` (the laboratory's date, if known) is the effective time.
    The file's line is kept verbatim as the code display; :func:`outside_calls_from_facts`
    reads it back.
    """
    return [
        Genotype(
            source=OUTSIDE_CALL_SOURCE,
            source_id=f"outside-call/{call.gene}",
            subject=subject,
            code=Coding(OUTSIDE_CALL_SYSTEM, call.gene, call.line_text),
            status="final",
            effective_start=result_date,
            gene=call.gene,
            genotype=call.diplotype,
            sample=call.where,
        )
        for call in calls
    ]


def is_outside_call_fact(fact: Fact) -> bool:
    """Whether ``fact`` holds an outside call (rather than a genotype at a position)."""
    return (
        isinstance(fact, Genotype)
        and fact.code is not None
        and fact.code.system == OUTSIDE_CALL_SYSTEM
    )


def outside_calls_from_facts(facts: Iterable[Fact]) -> list[OutsideCall]:
    """The outside calls stored as facts (retracted ones left out), latest per gene.

    Raises
    ------
    OutsideCallError
        When a stored line no longer reads (it is re-checked as when it was recorded).
    """
    latest: dict[str, tuple[datetime | None, OutsideCall]] = {}
    for fact in facts:
        if not is_outside_call_fact(fact) or fact.retracted or fact.code is None:
            continue
        when = fact.effective_start
        where = f"result of {when:%Y-%m-%d}" if when else "on record"
        if isinstance(fact, Genotype) and fact.sample:
            where += f" from {fact.sample}"
        for call in parse_outside_calls(fact.code.display or "", source=where):
            call = replace(call, where=where)
            previous = latest.get(call.gene)
            if previous is None or (
                when is not None and (previous[0] is None or when > previous[0])
            ):
                latest[call.gene] = (when, call)
    return [latest[g][1] for g in OUTSIDE_GENES if g in latest]
