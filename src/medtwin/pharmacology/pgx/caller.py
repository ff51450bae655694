"""Star-allele diplotypes, phenotypes and activity scores from genotypes.

The calling follows the method of PharmCAT's Named Allele Matcher (Sangkuhl K et al.,
Clin Pharmacol Ther 2020;107:203-210; pharmcat.org/methods/NamedAlleleMatcher-101), written
here from its description and checked against PharmCAT's expected output (docs/models/pgx.md):

1. **Positions.** A gene's allele definitions name a set of GRCh38 positions. A position
   the file lacks, or calls ``./.`` or half (``0/.``), is *missing*: it is left out of every
   definition. An allele whose every defining position is missing cannot be told apart and
   is dropped. A called allele that is neither the reference nor a defined alternate at a
   position (an undocumented variant) makes the gene *not called*.
2. **Matching.** An allele definition gives, per position, the base(s) it requires (IUPAC
   codes allowed); a position it leaves empty is read as the reference base (CPIC tables list
   only an allele's variant positions; PharmCAT matches the same way, e.g. its expected
   SLCO1B1 ``*5/*45`` for the s5s45 test). Two alleles ``A``, ``B`` explain an
   unphased genotype when at every available position the two called bases can be given
   one to ``A`` and one to ``B``; each heterozygous position may be given either way
   because nothing ties them. With phased calls (all ``|``) the orientation is fixed:
   ``A`` must fit haplotype 1 and ``B`` haplotype 2 everywhere, or the reverse.
3. **Score.** An allele's score is the number of available positions its definition names;
   a diplotype's score is the sum. Of all pairs that explain the genotype, the top-scoring
   ones are the call: the most specific explanation wins (CYP2C19 ``*1`` names all 35
   positions, ``*17`` one, so ``*1/*17`` scores 36). Several top-scoring pairs are reported as an ambiguous call, with the reason.
4. **Phenotype.** Each allele's CPIC clinical function (activity value for CYP2C9 and DPYD)
   is looked up in medtwin's gene table; the unordered pair of function keys gives the CPIC
   phenotype (and activity score). An ambiguous call gets a phenotype only when every
   candidate diplotype gives the same one.

DPYD is called as CPIC's DPYD guideline (Amstutz et al. 2018) and PharmCAT prescribe: the
variants are looked up one by one (each DPYD allele is one variant, except HapB3), and the
diplotype used for the phenotype is the two lowest-activity variant alleles found, filling
with ``Reference`` (with more than two variant copies and no phase, CPIC assumes they lie
on different chromosomes: the two lowest decide).

Not called, with the reason: no position of the gene in the file; every position missing;
an undocumented allele; no pair of defined alleles explaining the genotype (a novel
haplotype). Structural variants (gene deletions and duplications, CYP2D6-style copy
number) are out of scope: a VCF of single-nucleotide and short indel calls cannot show them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "GENES",
    "Allele",
    "GeneCall",
    "GeneTable",
    "SampleGenotype",
    "call_all",
    "call_gene",
    "gene_table",
]

#: The genes medtwin calls, in the order of issue 5 item 5.
GENES = ("CYP2C19", "CYP2C9", "VKORC1", "CYP4F2", "SLCO1B1", "TPMT", "NUDT15", "DPYD", "CYP3A5")

_IUPAC = {
    "A": "A",
    "C": "C",
    "G": "G",
    "T": "T",
    "R": "AG",
    "Y": "CT",
    "S": "CG",
    "W": "AT",
    "K": "GT",
    "M": "AC",
    "B": "CGT",
    "D": "AGT",
    "H": "ACT",
    "V": "ACG",
    "N": "ACGT",
}


@dataclass(frozen=True, slots=True)
class Allele:
    """One named allele of a gene table."""

    name: str
    report_as: str
    reference: bool
    pattern: tuple[str | None, ...]
    function: str | None
    activity_value: str | None
    phenotype_key: str | None


@dataclass(frozen=True, slots=True)
class GeneTable:
    """medtwin's table of one gene (``data/<GENE>.json``, see ``tools/pgx_tables.py``)."""

    gene: str
    chromosome: str
    positions: tuple[int, ...]
    rsids: tuple[str | None, ...]
    refs: tuple[str, ...]
    alts: tuple[tuple[str, ...], ...]
    alleles: tuple[Allele, ...]
    phenotypes: Mapping[tuple[str, ...], tuple[str, str | None]]
    source: Mapping[str, str]

    @property
    def reference(self) -> Allele:
        """The reference allele (``*1``, ``*38`` for CYP2C19, ``Reference`` for DPYD)."""
        return next(a for a in self.alleles if a.reference)


@cache
def gene_table(gene: str) -> GeneTable:
    """Load one gene's table (cached).

    >>> table = gene_table("CYP2C19")
    >>> table.reference.name, len(table.positions)
    ('*38', 35)
    """
    if gene not in GENES:
        raise KeyError(f"no pharmacogene table for {gene!r}; medtwin calls {', '.join(GENES)}")
    text = resources.files("medtwin.pharmacology.pgx").joinpath(f"data/{gene}.json").read_text()
    data: dict[str, Any] = json.loads(text)
    alleles = tuple(
        Allele(
            name=a["name"],
            report_as=a["report_as"],
            reference=a["reference"],
            pattern=tuple(a["pattern"]),
            function=a["function"],
            activity_value=a["activity_value"],
            phenotype_key=a["phenotype_key"],
        )
        for a in data["alleles"]
    )
    return GeneTable(
        gene=gene,
        chromosome=data["chromosome"],
        positions=tuple(p["position"] for p in data["positions"]),
        rsids=tuple(p["rsid"] for p in data["positions"]),
        refs=tuple(p["ref"] for p in data["positions"]),
        alts=tuple(tuple(p["alts"]) for p in data["positions"]),
        alleles=alleles,
        phenotypes={
            tuple(p["keys"]): (p["phenotype"], p["activity_score"]) for p in data["phenotypes"]
        },
        source=data["source"],
    )


@dataclass(frozen=True, slots=True)
class SampleGenotype:
    """A sample's call at one position: two bases (``None``: not called) and phase."""

    alleles: tuple[str | None, str | None]
    phased: bool = False


@dataclass(frozen=True, slots=True)
class GeneCall:
    """The call for one gene; ``uncalled_reason`` says why ``diplotype`` is ``None``.

    ``outside_call`` is set when the call was supplied from outside (a laboratory or another
    tool, :mod:`medtwin.pharmacology.pgx.outside`) and says where from.
    """

    gene: str
    diplotype: str | None
    diplotypes: tuple[str, ...]
    phenotype: str | None
    activity_score: float | None
    haplotypes: tuple[str, ...] = ()
    functions: tuple[str | None, ...] = ()
    score: int = 0
    positions_used: int = 0
    missing_positions: tuple[int, ...] = ()
    uncalled_reason: str | None = None
    notes: tuple[str, ...] = ()
    source: str = ""
    outside_call: str | None = None

    @classmethod
    def uncalled(cls, gene: str, reason: str, **details: Any) -> GeneCall:
        """A gene without a call, and why (``details``: positions, notes, source ...).

        >>> GeneCall.uncalled("TPMT", "no positions of TPMT in the file").diplotype is None
        True
        """
        return cls(
            gene=gene,
            diplotype=None,
            diplotypes=(),
            phenotype=None,
            activity_score=None,
            uncalled_reason=reason,
            **details,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the ``medtwin pgx call --json`` entry of one gene)."""
        return {
            "gene": self.gene,
            "diplotype": self.diplotype,
            "diplotypes": list(self.diplotypes),
            "phenotype": self.phenotype,
            "activity_score": self.activity_score,
            "haplotypes": list(self.haplotypes),
            "functions": list(self.functions),
            "match_score": self.score,
            "positions_used": self.positions_used,
            "missing_positions": list(self.missing_positions),
            "uncalled_reason": self.uncalled_reason,
            "notes": list(self.notes),
            "source": self.source,
            "outside_call": self.outside_call,
        }


def _name_key(name: str) -> tuple[Any, ...]:
    """``*2`` < ``*10`` < ``*4A``: numbers as numbers."""
    parts = []
    for chunk in name.replace("*", " ").replace(".", " ").split():
        digits = "".join(c for c in chunk if c.isdigit())
        parts.append((int(digits) if digits else 10**9, chunk))
    return tuple(parts)


def _order(pair: Sequence[Allele]) -> tuple[Allele, Allele]:
    """Star alleles by number (``*4/*38``, as PharmCAT prints them); otherwise reference first."""
    first, second = sorted(
        pair,
        key=lambda a: (
            (0, _name_key(a.report_as))
            if a.report_as.startswith("*")
            else (1, (not a.reference, a.report_as))
        ),
    )
    return first, second


def _fits(pattern: str | None, base: str) -> bool:
    if pattern is None:
        return True
    if len(pattern) == 1 and len(base) == 1:
        return base in _IUPAC.get(pattern, pattern)
    return pattern == base


def _score(allele: Allele, available: Iterable[int]) -> int:
    """Positions the definition names among ``available``; an IUPAC ambiguity code (``R``:
    A or G) names none (PharmCAT's match score: 6 for CYP2C19 ``*2/*2``, whose definition
    has ``R`` at rs58973490, in its pharmcat.example2 report)."""
    return sum(
        1
        for i in available
        if (p := allele.pattern[i]) is not None and not (len(p) == 1 and len(_IUPAC.get(p, p)) > 1)
    )


def _phenotype(
    table: GeneTable, pair: Sequence[Allele]
) -> tuple[str | None, float | None, str | None]:
    """CPIC phenotype and activity score of a pair, or the reason there is none."""
    if not table.phenotypes:
        return None, None, f"CPIC assigns no phenotype to {table.gene}"
    keys = [a.phenotype_key for a in pair]
    if any(k is None for k in keys):
        names = ", ".join(a.report_as for a in pair if a.phenotype_key is None)
        return None, None, f"no CPIC function assigned to {names}"
    found = table.phenotypes.get(tuple(sorted(k for k in keys if k is not None)))
    if found is None:
        return None, None, f"no CPIC phenotype for the function pair {keys}"
    phenotype, score = found
    try:
        activity = float(score) if score not in (None, "n/a") else None
    except ValueError:
        activity = None
    return phenotype, activity, None


def call_gene(gene: str, genotypes: Mapping[int, SampleGenotype]) -> GeneCall:
    """Call one gene from the sample's genotypes keyed by GRCh38 position.

    >>> table = gene_table("CYP2C19")
    >>> calls = {p: SampleGenotype((r, r)) for p, r in zip(table.positions, table.refs)}
    >>> calls[94842866] = SampleGenotype(("G", "G"))  # rs3758581: *1, not the reference *38
    >>> calls[94761900] = SampleGenotype(("C", "T"))  # rs12248560: *17
    >>> call = call_gene("CYP2C19", calls)
    >>> call.diplotype, call.phenotype, call.score
    ('*1/*17', 'Rapid Metabolizer', 37)
    >>> call_gene("CYP2C19", {94761900: SampleGenotype(("C", "T"))}).diplotypes
    ('*1/*17', '*17/*38')
    """
    table = gene_table(gene)
    source = table.source["citation"]
    available: list[int] = []
    missing: list[int] = []
    first: list[str] = []
    second: list[str] = []
    phased = True
    for index, position in enumerate(table.positions):
        call = genotypes.get(position)
        if call is None or call.alleles[0] is None or call.alleles[1] is None:
            missing.append(position)
            continue
        known = (table.refs[index], *table.alts[index])
        for base in call.alleles:
            if base not in known:
                return GeneCall.uncalled(
                    gene,
                    f"undocumented allele {base} at {table.chromosome}:{position} "
                    f"({table.rsids[index] or 'no rsid'}); the definitions allow "
                    + ", ".join(known),
                    missing_positions=tuple(missing),
                    source=source,
                )
        available.append(index)
        first.append(call.alleles[0])
        second.append(call.alleles[1])
        if call.alleles[0] != call.alleles[1]:
            phased = phased and call.phased  # homozygous calls need no phase
    if not available:
        reason = (
            f"none of the {len(table.positions)} {gene} positions is called in the file"
            if genotypes
            else f"no {gene} position in the file"
        )
        return GeneCall.uncalled(gene, reason, missing_positions=tuple(missing), source=source)
    if gene == "DPYD":
        return _call_dpyd(table, available, first, second, missing, source)
    alleles = [a for a in table.alleles if any(a.pattern[i] is not None for i in available)]
    # fits[a, i, h]: allele a accepts the base of haplotype h at available position i
    fits = np.array(
        [
            [
                [_fits(a.pattern[i] or table.refs[i], first[j]),
                 _fits(a.pattern[i] or table.refs[i], second[j])]
                for j, i in enumerate(available)
            ]
            for a in alleles
        ],
        dtype=bool,
    )  # fmt: skip
    scores = np.array([_score(a, available) for a in alleles])
    ok = _pairs(fits, phased)
    notes: list[str] = []
    if missing:
        notes.append(
            f"{len(missing)} of {len(table.positions)} positions missing: left out of every definition"
        )
    if not ok.any():
        return GeneCall.uncalled(
            gene,
            "no pair of defined alleles explains the genotypes (a novel or undefined haplotype)",
            positions_used=len(available),
            missing_positions=tuple(missing),
            notes=tuple(notes),
            source=source,
        )
    total = scores[:, None] + scores[None, :]
    best = int(total[ok].max())
    rows, cols = np.nonzero(ok & (total == best) & np.triu(np.ones_like(ok)))
    if missing:
        # lower-scoring pairs also fit the available positions: the missing ones might decide
        others: dict[str, int] = {}
        low_rows, low_cols = np.nonzero(ok & (total < best) & np.triu(np.ones_like(ok)))
        for r, c in zip(low_rows.tolist(), low_cols.tolist(), strict=True):
            pair = _order((alleles[r], alleles[c]))
            name = f"{pair[0].report_as}/{pair[1].report_as}"
            others[name] = max(others.get(name, 0), int(total[r, c]))
        if others:
            ranked = sorted(others, key=lambda n: -others[n])
            shown = ", ".join(ranked[:6]) + (
                f" and {len(ranked) - 6} more" if len(ranked) > 6 else ""
            )
            notes.append(f"also consistent with the available positions (lower score): {shown}")
    candidates: dict[str, tuple[Allele, Allele]] = {}
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        pair = _order((alleles[r], alleles[c]))
        candidates.setdefault(f"{pair[0].report_as}/{pair[1].report_as}", pair)
    names = tuple(sorted(candidates, key=lambda n: [_name_key(p) for p in n.split("/")]))
    if len(names) == 1:
        pair = candidates[names[0]]
        phenotype, activity, why = _phenotype(table, pair)
        if why:
            notes.append(why)
        return GeneCall(
            gene=gene,
            diplotype=names[0],
            diplotypes=names,
            phenotype=phenotype,
            activity_score=activity,
            haplotypes=(pair[0].report_as, pair[1].report_as),
            functions=(pair[0].function, pair[1].function),
            score=best,
            positions_used=len(available),
            missing_positions=tuple(missing),
            notes=tuple(notes),
            source=source,
        )
    results = {_phenotype(table, candidates[n])[:2] for n in names}
    heterozygous = sum(1 for a, b in zip(first, second, strict=True) if a != b)
    causes = []
    if not phased and heterozygous > 1:
        causes.append(f"{heterozygous} unphased heterozygous positions")
    if missing:
        causes.append(f"{len(missing)} missing positions")
    if not causes:
        causes.append("alleles with the same definition at the available positions")
    phenotype = activity = None
    if len(results) == 1:
        phenotype, activity = next(iter(results))
        notes.append("every candidate diplotype has the same phenotype")
    return GeneCall(
        gene=gene,
        diplotype=None,
        diplotypes=names,
        phenotype=phenotype,
        activity_score=activity,
        score=best,
        positions_used=len(available),
        missing_positions=tuple(missing),
        uncalled_reason=f"ambiguous: {len(names)} diplotypes fit equally well ({'; '.join(causes)})",
        notes=tuple(notes),
        source=source,
    )


def _pairs(fits: npt.NDArray[np.bool_], phased: bool) -> npt.NDArray[np.bool_]:
    """``ok[a, b]``: alleles a and b together explain every available position."""
    h1 = fits[:, :, 0]
    h2 = fits[:, :, 1]
    straight = h1[:, None, :] & h2[None, :, :]
    swapped = h2[:, None, :] & h1[None, :, :]
    # phased: one orientation for every position; unphased: each position on its own
    ok = straight.all(axis=2) | swapped.all(axis=2) if phased else (straight | swapped).all(axis=2)
    return np.asarray(ok, dtype=bool)


def _call_dpyd(
    table: GeneTable,
    available: list[int],
    first: list[str],
    second: list[str],
    missing: list[int],
    source: str,
) -> GeneCall:
    """DPYD: the variant alleles present, the two lowest-activity ones decide (CPIC 2017)."""
    notes: list[str] = []
    if missing:
        notes.append(
            f"{len(missing)} of {len(table.positions)} positions missing: variants there cannot be seen"
        )
    found: list[Allele] = []
    index = {i: j for j, i in enumerate(available)}
    for allele in table.alleles:
        if allele.reference:
            continue
        defined = [i for i, p in enumerate(allele.pattern) if p is not None]
        if any(i not in index for i in defined):
            continue
        copies = []
        for hap in (first, second):
            copies.append(all(_fits(allele.pattern[i], hap[index[i]]) for i in defined))
        if not any(copies):
            continue
        # homozygous at every defining position: two copies
        both = all(
            _fits(allele.pattern[i], first[index[i]]) and _fits(allele.pattern[i], second[index[i]])
            for i in defined
        )
        found += [allele] * (2 if both else 1)
    # HapB3 is c.1129-5923C>G with c.1236G>A: its deep-intronic variant, also an allele of
    # its own, is then counted once, as HapB3
    for _ in [a for a in found if "HapB3" in a.name]:
        single = next((a for a in found if a.name == "c.1129-5923C>G"), None)
        if single is not None:
            found.remove(single)
    reference = table.reference
    if not found:
        pair: tuple[Allele, Allele] = (reference, reference)
    else:
        ranked = sorted(found, key=lambda a: float(a.activity_value or 1.0))
        chosen = ranked[:2] if len(ranked) >= 2 else [ranked[0], reference]
        pair = _order(chosen)
        if len(found) > 2:
            notes.append(
                f"{len(found)} variant allele copies found ({', '.join(a.name for a in found)}); "
                "phase unknown: the two lowest-activity alleles decide (CPIC DPYD guideline)"
            )
    phenotype, activity, why = _phenotype(table, pair)
    if why:
        notes.append(why)
    name = f"{pair[0].report_as}/{pair[1].report_as}"
    score = _score(pair[0], available) + _score(pair[1], available)
    return GeneCall(
        gene="DPYD",
        diplotype=name,
        diplotypes=(name,),
        phenotype=phenotype,
        activity_score=activity,
        haplotypes=(pair[0].report_as, pair[1].report_as),
        functions=(pair[0].function, pair[1].function),
        score=score,
        positions_used=len(available),
        missing_positions=tuple(missing),
        notes=tuple(notes),
        source=source,
    )


def call_all(
    genotypes: Mapping[tuple[str, int], SampleGenotype], genes: Iterable[str] = GENES
) -> list[GeneCall]:
    """Call every gene from genotypes keyed by ``(chromosome, GRCh38 position)``."""
    out = []
    for gene in genes:
        table = gene_table(gene)
        mine = {pos: call for (chrom, pos), call in genotypes.items() if chrom == table.chromosome}
        out.append(call_gene(gene, mine))
    return out
