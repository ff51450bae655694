"""CYP2D6 from a diplotype called elsewhere: allele activity values, activity score, phenotype.

medtwin does not call CYP2D6 from a VCF: the gene's deletions (``*5``), duplications
(``*1x2``) and CYP2D7 hybrids (``*36``) are structural variants that a file of SNVs and short
indels cannot show. A CYP2D6 diplotype called by another tool or a laboratory (an *outside
call*, :mod:`medtwin.pharmacology.pgx.outside`) is translated here, the CPIC way:

1. **Allele activity values** (``data/cyp2d6_activity.json``): CPIC's CYP2D6 allele
   functionality table for the common alleles ``*1 *2`` (1.0, normal function), ``*3 *4 *5
   *6 *36`` (0, no function), ``*9 *10 *41`` (0.25) and ``*17 *29`` (0.5, decreased function).
   An allele outside this compact table is not called, and the call says so.
2. **Copies.** ``*1x2`` is two copies of ``*1``: the allele's value times the copy number
   (Caudle 2020); a copy number written ``x≥3`` (or ``x>=3``) is a lower bound. The CPIC
   values of CPIC's own ``xN`` alleles (``*41x3`` 0.75, ``*1x2`` 2.0, ``*4x2`` 0 ...) equal
   that product (a test checks each). A haplotype written with ``+`` (a tandem arrangement,
   ``*36x2+*10``) adds the activity of its gene copies: medtwin's reading of the activity
   score as a sum over gene copies (CPIC's table lists ``xN`` duplications, not these
   tandems; ``*36`` has value 0, so ``*36+*10`` is worth the ``*10``).
3. **Activity score** = the sum of the two haplotypes' values.
4. **Phenotype** (Caudle KE et al. Clin Transl Sci 2020;13:116-124, the CPIC/DPWG consensus;
   the same ranges as Crews KR et al. Clin Pharmacol Ther 2021;110:888-896 Table 1):
   score 0 Poor Metabolizer; 0 < score < 1.25 Intermediate Metabolizer;
   1.25 <= score <= 2.25 Normal Metabolizer; score > 2.25 Ultrarapid Metabolizer.
   A lower bound (``x≥3``) gives a phenotype only when every score above it has the same one
   (``*1/*1x≥3``: at least 4.0, Ultrarapid); otherwise the phenotype is ``Indeterminate``.

>>> call = cyp2d6_call("*1/*4")
>>> call.phenotype, call.activity_score
('Intermediate Metabolizer', 1.0)
>>> phenotype_from_activity(1.25), phenotype_from_activity(2.5)
('Normal Metabolizer', 'Ultrarapid Metabolizer')
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from medtwin.pharmacology.pgx.caller import GeneCall

__all__ = [
    "CYP2D6",
    "CYP2D6_PHENOTYPES",
    "DiplotypeError",
    "Haplotype",
    "activity_table",
    "cyp2d6_call",
    "parse_haplotype",
    "phenotype_from_activity",
]

CYP2D6 = "CYP2D6"

CYP2D6_PHENOTYPES = (
    "Poor Metabolizer",
    "Intermediate Metabolizer",
    "Normal Metabolizer",
    "Ultrarapid Metabolizer",
    "Indeterminate",
)
"""The CPIC CYP2D6 phenotypes (Caudle 2020), and ``Indeterminate``."""

_COMPONENT = re.compile(r"^(\*\d+)(?:x(\d+|≥\d+|>=\d+))?$")


class DiplotypeError(ValueError):
    """A CYP2D6 diplotype that cannot be read (the message says what is wrong)."""


@cache
def activity_table() -> dict[str, Any]:
    """``data/cyp2d6_activity.json``: alleles, CPIC copy-number values, phenotype ranges."""
    text = resources.files("medtwin.pharmacology.pgx").joinpath("data/cyp2d6_activity.json")
    return json.loads(text.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Haplotype:
    """One CYP2D6 haplotype (gene copies on one chromosome) and its activity value.

    ``components`` are ``(allele, copies, at_least)``; ``activity`` is the sum of
    ``copies x activity value`` (a lower bound when ``at_least``); ``unknown`` names the
    alleles missing from medtwin's table (then ``activity`` is meaningless).
    """

    text: str
    components: tuple[tuple[str, int, bool], ...]
    activity: float
    at_least: bool
    unknown: tuple[str, ...]

    @property
    def function(self) -> str:
        """The CPIC function of each gene copy, ``Normal function x2`` for duplications."""
        alleles = activity_table()["alleles"]
        parts = []
        for allele, copies, at_least in self.components:
            function = alleles[allele]["function"] if allele in alleles else "not in table"
            if copies > 1 or at_least:
                function += f" x{'≥' if at_least else ''}{copies}"
            parts.append(function if len(self.components) == 1 else f"{allele} {function}")
        return " + ".join(parts)


def parse_haplotype(text: str) -> Haplotype:
    """Read ``*1``, ``*1x2``, ``*2x≥3``, ``*36x2+*10`` (a tandem) into a :class:`Haplotype`.

    Raises
    ------
    DiplotypeError
        For text that is not star-allele syntax (PharmCAT's ``[*2 + *3]`` combination
        syntax included: medtwin does not read combination calls).

    >>> parse_haplotype("*41x3").activity
    0.75
    >>> parse_haplotype("*36x2+*10").activity
    0.25
    """
    alleles = activity_table()["alleles"]
    stripped = text.strip()
    if stripped.startswith("[") or " + " in stripped:
        raise DiplotypeError(
            f"{text!r}: combination calls ([*2 + *3]) are not read; give the star alleles "
            "of the haplotype (tandems as *36+*10)"
        )
    components: list[tuple[str, int, bool]] = []
    for part in stripped.split("+"):
        match = _COMPONENT.match(part.strip())
        if match is None:
            raise DiplotypeError(
                f"{text!r}: {part.strip()!r} is not a star allele (expected *N, *NxM or *Nx≥M)"
            )
        allele, copy_text = match.group(1), match.group(2)
        at_least = bool(copy_text) and not copy_text[0].isdigit()
        copies = int(copy_text.lstrip("≥>=")) if copy_text else 1
        if copies < 1 or (copy_text and not at_least and copies < 2):
            raise DiplotypeError(f"{text!r}: copy number {copy_text} must be 2 or more")
        components.append((allele, copies, at_least))
    unknown = tuple(dict.fromkeys(a for a, _, _ in components if a not in alleles))
    activity = sum(
        float(alleles[a]["activity_value"]) * copies for a, copies, _ in components if a in alleles
    )
    at_least = any(
        flag and a in alleles and float(alleles[a]["activity_value"]) > 0
        for a, _, flag in components
    )
    return Haplotype(stripped, tuple(components), activity, at_least, unknown)


def phenotype_from_activity(score: float) -> str:
    """The CPIC CYP2D6 phenotype of an activity score (Caudle 2020 consensus ranges).

    Raises
    ------
    ValueError
        For a negative score.

    >>> [phenotype_from_activity(s) for s in (0, 0.25, 1.0, 1.25, 2.25, 2.5)]  # doctest: +NORMALIZE_WHITESPACE
    ['Poor Metabolizer', 'Intermediate Metabolizer', 'Intermediate Metabolizer',
     'Normal Metabolizer', 'Normal Metabolizer', 'Ultrarapid Metabolizer']
    """
    ranges = activity_table()["phenotypes"]
    if score < 0:
        raise ValueError(f"activity score {score}: negative")
    if score <= ranges["poor_metabolizer_score"]:
        return "Poor Metabolizer"
    if score < ranges["normal_metabolizer_min"]:
        return "Intermediate Metabolizer"
    if score <= ranges["normal_metabolizer_max"]:
        return "Normal Metabolizer"
    return "Ultrarapid Metabolizer"


def split_diplotype(text: str) -> tuple[str, str]:
    """``"*1/*4"`` -> ``("*1", "*4")``; anything but two non-empty halves is refused."""
    parts = text.split("/")
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise DiplotypeError(
            f"{text!r}: a diplotype is two haplotypes separated by one '/' (e.g. *1/*4)"
        )
    return parts[0].strip(), parts[1].strip()


def cyp2d6_call(diplotype: str, *, source: str = "") -> GeneCall:
    """The CPIC phenotype and activity score of a CYP2D6 diplotype (see the module docstring).

    An allele missing from medtwin's table gives a call without phenotype, with the reason.

    Raises
    ------
    DiplotypeError
        For a diplotype that is not two star-allele haplotypes.

    >>> cyp2d6_call("*1/*1x≥3").phenotype
    'Ultrarapid Metabolizer'
    >>> cyp2d6_call("*7/*1").uncalled_reason
    "*7 is not in medtwin's CYP2D6 table (*1, *2, *3, *4, *5, *6, *9, *10, *17, *29, *36, *41)"
    """
    first_text, second_text = split_diplotype(diplotype)
    first, second = parse_haplotype(first_text), parse_haplotype(second_text)
    name = f"{first.text}/{second.text}"
    unknown = tuple(dict.fromkeys(first.unknown + second.unknown))

    def result(
        phenotype: str | None,
        score: float | None,
        reason: str | None = None,
        notes: tuple[str, ...] = (),
    ) -> GeneCall:
        return GeneCall(
            gene=CYP2D6,
            diplotype=name,
            diplotypes=(name,),
            phenotype=phenotype,
            activity_score=score,
            haplotypes=(first.text, second.text),
            functions=(first.function, second.function),
            uncalled_reason=reason,
            notes=notes,
            source=source or activity_table()["source"]["phenotypes"],
        )

    if unknown:
        table = ", ".join(activity_table()["alleles"])
        verb = "is" if len(unknown) == 1 else "are"
        return result(
            None, None, f"{', '.join(unknown)} {verb} not in medtwin's CYP2D6 table ({table})"
        )
    score = first.activity + second.activity
    if first.at_least or second.at_least:
        low = phenotype_from_activity(score)
        unbounded = phenotype_from_activity(score + 100.0)  # any higher score
        note = f"activity score at least {score:g} (a copy number given as a lower bound)"
        if low == unbounded:
            return result(low, None, notes=(note,))
        return result("Indeterminate", None, notes=(f"{note}: {low} or higher",))
    return result(phenotype_from_activity(score), round(score, 2))
