"""CPIC recommendations for the core drugs, from gene calls (data: ``data/recommendations.json``).

Drugs: clopidogrel (CYP2C19), warfarin (CYP2C9 + VKORC1 + CYP4F2: the pharmacogenetic
algorithm applies), simvastatin (SLCO1B1), mercaptopurine and azathioprine (TPMT + NUDT15),
fluorouracil and capecitabine (DPYD activity score), tacrolimus (CYP3A5), codeine and
tramadol (CYP2D6 phenotype from an outside call; Crews KR et al. Clin Pharmacol Ther
2021;110:888-896, Tables 2 and 3). Each entry cites its guideline table. A gene that is not called, or is ``Indeterminate``, gives no recommendation
and says why: never a silent default.

For the thiopurines both genes are looked up; when both give advice, the one for the lower
function (Poor < Intermediate < Possible Intermediate < Normal) is shown first, and the
guideline's note applies: patients reduced in both genes may need further dose reduction.

>>> from medtwin.pharmacology.pgx.caller import GeneCall
>>> call = GeneCall(gene="CYP2C19", diplotype="*2/*2", diplotypes=("*2/*2",),
...                 phenotype="Poor Metabolizer", activity_score=None)
>>> recommend("clopidogrel", [call]).advice[0][:25]
'Avoid clopidogrel if poss'
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from medtwin.pharmacology.pgx.caller import GeneCall

__all__ = ["DRUGS", "Recommendation", "recommend"]

_ORDER = {
    "Poor Metabolizer": 0,
    "Intermediate Metabolizer": 1,
    "Possible Intermediate Metabolizer": 2,
    "Normal Metabolizer": 3,
}


@cache
def _data() -> dict[str, Any]:
    text = resources.files("medtwin.pharmacology.pgx").joinpath("data/recommendations.json")
    return json.loads(text.read_text())  # type: ignore[no-any-return]


DRUGS = (
    "clopidogrel",
    "warfarin",
    "simvastatin",
    "mercaptopurine",
    "azathioprine",
    "fluorouracil",
    "capecitabine",
    "tacrolimus",
    "codeine",
    "tramadol",
)


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The advice for one drug: texts with strengths, the genes used, the source; or why not."""

    drug: str
    genes: tuple[str, ...]
    basis: tuple[str, ...]
    advice: tuple[str, ...]
    strength: tuple[str, ...]
    source: str
    cannot_recommend: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "drug": self.drug,
            "genes": list(self.genes),
            "basis": list(self.basis),
            "advice": list(self.advice),
            "strength": list(self.strength),
            "source": self.source,
            "cannot_recommend": self.cannot_recommend,
        }


def recommend(drug: str, calls: Iterable[GeneCall]) -> Recommendation:
    """The CPIC advice for ``drug`` from the patient's gene calls.

    Raises
    ------
    KeyError
        For a drug medtwin has no recommendation table for.
    """
    entries = _data()["drugs"]
    name = drug.lower()
    if name not in entries:
        raise KeyError(f"no CPIC recommendation table for {drug!r}; medtwin has {', '.join(DRUGS)}")
    entry = entries[name]
    table = entries[entry["same_as"]] if "same_as" in entry else entry
    genes = tuple(entry["genes"])
    by_gene = {c.gene: c for c in calls}
    source = entry["source"]

    def refuse(reason: str, basis: tuple[str, ...] = ()) -> Recommendation:
        return Recommendation(name, genes, basis, (), (), source, f"cannot recommend: {reason}")

    if "algorithm" in table:  # warfarin: the dose comes from an algorithm, not a table row
        needed = [
            g
            for g in ("CYP2C9", "VKORC1")
            if by_gene.get(g) is None or by_gene[g].diplotype is None
        ]
        basis = tuple(
            f"{g} {by_gene[g].diplotype}" for g in genes if g in by_gene and by_gene[g].diplotype
        )
        if needed:
            return refuse(f"{' and '.join(needed)} not called (the algorithm needs both)", basis)
        return Recommendation(
            name,
            genes,
            basis,
            (table["algorithm"]["advice"],),
            (table["algorithm"]["strength"],),
            source,
        )
    rows: list[tuple[int, str, str, str]] = []
    basis_list: list[str] = []
    for gene in genes:
        call = by_gene.get(gene)
        if call is None or call.phenotype is None:
            why = call.uncalled_reason if call is not None else "no call"
            return refuse(f"{gene} has no phenotype ({why})", tuple(basis_list))
        if "by_activity_score" in table:
            if call.activity_score is None:
                return refuse(f"{gene} has no activity score", tuple(basis_list))
            key = f"{call.activity_score:.1f}"
            row = table["by_activity_score"].get(key)
            basis_list.append(f"{gene} activity score {key} ({call.phenotype})")
        else:
            row = table["by_phenotype"].get(call.phenotype)
            basis_list.append(f"{gene} {call.phenotype}")
        if row is None:
            return refuse(
                f"CPIC gives no recommendation for {gene} {call.phenotype}", tuple(basis_list)
            )
        rows.append((_ORDER.get(call.phenotype, 9), gene, row["advice"], row["strength"]))
    rows.sort()
    advice = tuple(f"{gene}: {text}" if len(genes) > 1 else text for _, gene, text, _ in rows)
    strength = tuple(s for *_, s in rows)
    if len(genes) > 1 and sum(1 for r in rows if r[0] < 3) > 1:
        advice += (
            "Reduced function in both genes: further dose reduction may be needed (CPIC 2018).",
        )
        strength += ("",)
    return Recommendation(name, genes, tuple(basis_list), advice, strength, source)
