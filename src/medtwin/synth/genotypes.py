"""Synthetic pharmacogene genotypes: one single-sample GRCh38 VCF per synthetic patient.

Each synthetic patient ``i`` of run ``seed`` is given a biogeographic group (drawn with the
2020 US Census shares) and, per core pharmacogene (CYP2C19, CYP2C9, VKORC1, CYP4F2,
SLCO1B1, TPMT, NUDT15, DPYD, CYP3A5), two star alleles drawn independently (Hardy-Weinberg)
from the CPIC allele frequency table of that group (``data/pgx_allele_frequencies.toml``,
with its citations). The haplotypes are spelled out at every position of medtwin's own gene
tables (``medtwin/pharmacology/pgx/data/<GENE>.json``): a position an allele definition
names gets the allele's base, every other position the reference base. The VCF holds all
those positions, reference calls included, **phased** (``0|1``): the truth is two
haplotypes, and a phased call lets the caller recover it without the unphased ambiguity
(e.g. SLCO1B1 ``*5/*37`` versus ``*1/*15``, identical unphased genotypes).

The sample name is the patient's medical-record number ``SYN-<seed>-<index>``; the Patient
of :func:`medtwin.synth.generator.generate_patient` (with ``vcf_sample=True``) carries the
identifier ``urn:medtwin:vcf-sample|SYN-<seed>-<index>``, the identifier
``medtwin import`` gives a VCF's genotype facts, so importing both links them.

Scope: single-nucleotide and short indel alleles only; gene deletions / duplications
(structural variants) are not drawn, rare alleles are folded into the reference allele, and
the genes are drawn independently (no linkage between CYP2C19 and CYP2C9 on chr10).

>>> g = patient_genotype(42, 0)
>>> sorted(g.diplotypes) == sorted(GENES)
True
>>> g.sample
'SYN-42-0'
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "CONTIG_LENGTHS",
    "GENES",
    "PatientGenotype",
    "allele_frequencies",
    "patient_genotype",
    "vcf_text",
    "write_genotypes",
]

#: The genes drawn, in the order of the PGx caller.
GENES = ("CYP2C19", "CYP2C9", "VKORC1", "CYP4F2", "SLCO1B1", "TPMT", "NUDT15", "DPYD", "CYP3A5")

#: GRCh38 primary-assembly lengths of the chromosomes the genes lie on (GRC assembly report
#: GCF_000001405.26), for the ``##contig`` header lines.
CONTIG_LENGTHS: dict[str, int] = {
    "chr1": 248956422,
    "chr6": 170805979,
    "chr7": 159345973,
    "chr10": 133797422,
    "chr12": 133275309,
    "chr13": 114364328,
    "chr16": 90338345,
    "chr19": 58617616,
}
_CONTIG_ORDER = ("chr1", "chr6", "chr7", "chr10", "chr12", "chr13", "chr16", "chr19")

_IUPAC = {"R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC"}


class GenotypeDataError(ValueError):
    """The bundled frequency table and the PGx gene tables disagree (names the gene/allele)."""


@dataclass(frozen=True, slots=True)
class _Site:
    position: int
    rsid: str
    ref: str
    alts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Gene:
    gene: str
    chromosome: str
    sites: tuple[_Site, ...]
    haplotypes: Mapping[str, tuple[str, ...]]  # allele name -> base per site


@cache
def allele_frequencies() -> dict[str, Any]:
    """The bundled table ``data/pgx_allele_frequencies.toml`` (groups, genes, citations)."""
    text = resources.files("medtwin.synth").joinpath("data/pgx_allele_frequencies.toml")
    with text.open("rb") as handle:
        data: dict[str, Any] = tomllib.load(handle)
    return data


def _spell(base: str | None, ref: str) -> str:
    """One concrete VCF allele for a definition's base (``None``: the reference)."""
    if base is None:
        return ref
    if base in _IUPAC:  # an IUPAC code: the reference when it allows it, else its first base
        return ref if ref in _IUPAC[base] else _IUPAC[base][0]
    return base


@cache
def _gene(gene: str) -> _Gene:
    text = resources.files("medtwin.pharmacology.pgx").joinpath(f"data/{gene}.json")
    with text.open("r", encoding="utf-8") as handle:
        data = json.load(handle)
    sites = tuple(
        _Site(
            int(p["position"]),
            str(p.get("rsid") or "."),
            str(p["ref"]),
            tuple(str(a) for a in p["alts"]),
        )
        for p in data["positions"]
    )
    reference = next(a for a in data["alleles"] if a["reference"])
    ref_bases = [_spell(b, s.ref) for b, s in zip(reference["pattern"], sites, strict=True)]
    haplotypes: dict[str, tuple[str, ...]] = {}
    for allele in data["alleles"]:
        bases = tuple(
            _spell(b, r) if b is not None else r
            for b, r in zip(allele["pattern"], ref_bases, strict=True)
        )
        haplotypes[str(allele["report_as"])] = bases
    return _Gene(gene, str(data["chromosome"]), sites, haplotypes)


@dataclass(frozen=True, slots=True)
class PatientGenotype:
    """One synthetic patient's truth: group and per gene the two drawn alleles (haplotype order)."""

    sample: str
    group: str
    diplotypes: Mapping[str, tuple[str, str]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready truth (one entry of ``truth.json``)."""
        return {
            "sample": self.sample,
            "identifier": f"urn:medtwin:vcf-sample|{self.sample}",
            "group": self.group,
            "diplotypes": {g: "/".join(pair) for g, pair in self.diplotypes.items()},
            "haplotypes": {g: list(pair) for g, pair in self.diplotypes.items()},
        }


def _draw(rng: random.Random, table: Mapping[str, float], remainder: str) -> str:
    u = rng.random()
    total = 0.0
    for name, frequency in table.items():
        total += float(frequency)
        if u < total:
            return name
    return remainder


def patient_genotype(seed: int, index: int) -> PatientGenotype:
    """The drawn genotype of synthetic patient ``index`` of run ``seed`` (own generator).

    The draw uses its own ``random.Random`` seeded from ``(seed, index)``, so it does not
    change the patient's FHIR record and the same ``(seed, index)`` always gives the same truth.

    Raises
    ------
    GenotypeDataError
        When an allele of the frequency table is not in medtwin's gene table, or a group's
        frequencies add up to more than 1.
    """
    data = allele_frequencies()
    rng = random.Random(f"medtwin.synth.genotypes:{seed}:{index}")
    groups: dict[str, float] = {k: float(v) for k, v in data["groups"].items()}
    total = sum(groups.values())
    u = rng.random() * total
    group = list(groups)[-1]
    acc = 0.0
    for name, share in groups.items():
        acc += share
        if u < acc:
            group = name
            break
    diplotypes: dict[str, tuple[str, str]] = {}
    for gene in GENES:
        spec = data["genes"][gene]
        remainder = str(spec["remainder"])
        table = {str(k): float(v) for k, v in spec.get(group, {}).items()}
        if sum(table.values()) > 1.0:
            raise GenotypeDataError(f"{gene} {group}: allele frequencies add up to more than 1")
        known = _gene(gene).haplotypes
        for name in (*table, remainder):
            if name not in known:
                raise GenotypeDataError(f"{gene}: allele {name!r} is not in the PGx gene table")
        diplotypes[gene] = (_draw(rng, table, remainder), _draw(rng, table, remainder))
    return PatientGenotype(f"SYN-{seed}-{index}", group, diplotypes)


def vcf_text(genotype: PatientGenotype) -> str:
    """The single-sample, phased GRCh38 VCF of a patient's genotype (every table position)."""
    lines = [
        "##fileformat=VCFv4.2",
        "##source=medtwin.synth.genotypes",
        "##reference=GRCh38",
        *(f"##contig=<ID={c},length={CONTIG_LENGTHS[c]},assembly=GRCh38>" for c in _CONTIG_ORDER),
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "\t".join(
            [
                "#CHROM",
                "POS",
                "ID",
                "REF",
                "ALT",
                "QUAL",
                "FILTER",
                "INFO",
                "FORMAT",
                genotype.sample,
            ]
        ),
    ]
    records: list[tuple[int, int, str]] = []
    for gene in GENES:
        table = _gene(gene)
        first, second = (table.haplotypes[a] for a in genotype.diplotypes[gene])
        chrom = table.chromosome
        for i, site in enumerate(table.sites):
            alleles = [site.ref, *site.alts]
            extra = [b for b in (first[i], second[i]) if b not in alleles]
            for b in extra:
                if b not in alleles:
                    alleles.append(b)
            gt = f"{alleles.index(first[i])}|{alleles.index(second[i])}"
            alt = ",".join(alleles[1:]) or "."
            row = "\t".join(
                [chrom, str(site.position), site.rsid, site.ref, alt, ".", "PASS", ".", "GT", gt]
            )
            records.append((_CONTIG_ORDER.index(chrom), site.position, row))
    records.sort()
    seen: set[tuple[int, int]] = set()
    for contig, position, row in records:
        if (contig, position) in seen:  # a position shared by two gene tables: write once
            continue
        seen.add((contig, position))
        lines.append(row)
    return "\n".join(lines) + "\n"


def write_genotypes(
    n: int, seed: int, out_dir: pathlib.Path, *, indices: Sequence[int] | None = None
) -> list[pathlib.Path]:
    """Write ``out_dir/vcf/patient-XXXXX.vcf`` per patient and ``out_dir/truth.json``.

    ``truth.json`` lists per patient the sample name, the identifier that links it, the
    biogeographic group, the diplotypes and the frequency table's citation. Import the VCFs
    with ``medtwin import out_dir/vcf`` (not ``out_dir``: the truth is not patient data).

    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     [p.name for p in write_genotypes(2, 1, pathlib.Path(folder))]
    ['patient-00000.vcf', 'patient-00001.vcf', 'truth.json']
    """
    if n < 0:
        raise ValueError(f"--patients must be 0 or more, got {n}")
    out = pathlib.Path(out_dir)
    folder = out / "vcf"
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[pathlib.Path] = []
    truth: list[dict[str, Any]] = []
    for index in range(n) if indices is None else indices:
        genotype = patient_genotype(seed, index)
        path = folder / f"patient-{index:05d}.vcf"
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(vcf_text(genotype), encoding="utf-8")
        os.replace(temporary, path)
        paths.append(path)
        truth.append({"index": index, **genotype.to_dict()})
    data = allele_frequencies()
    document = {
        "frequencies": data["source"]["citation"],
        "groups": data["source"]["groups_citation"],
        "patients": truth,
    }
    truth_path = out / "truth.json"
    truth_path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    paths.append(truth_path)
    return paths
