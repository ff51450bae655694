"""Star-allele calling against PharmCAT: its example reports, its haplotype tests, its tables.

Expected values come from PharmCAT's expected output (examples/*.report.tsv, PharmCAT
v3.1.0 on the same 2025-11 definitions), from the haplotype test file names and PharmCAT's
own test suite (see pgx_expected.py, which says where each expectation comes from), and from
PharmCAT's definition and phenotype files read independently of medtwin's tables.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medtwin.ingest.vcf import genotype_facts, read_vcf
from medtwin.pharmacology.pgx import GENES, SampleGenotype, call_facts, call_gene, gene_table
from medtwin.pharmacology.pgx.caller import _phenotype, _score

from .pgx_expected import HAPLOTYPE_TESTS


def _pharmcat(shared: Path) -> Path:
    return shared / "genomics" / "pharmcat"


def _calls(path: Path, sample: str | None = None) -> dict[str, object]:
    return {c.gene: c for c in call_facts(genotype_facts(read_vcf(path, sample=sample)))}


@pytest.mark.parametrize("example", ["pharmcat.example", "pharmcat.example2"])
def test_pharmcat_example_reports_are_reproduced(shared: Path, example: str) -> None:
    folder = _pharmcat(shared) / "examples"
    with (folder / f"{example}.report.tsv").open() as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    header = rows[1]
    expected = {row[0]: dict(zip(header, row, strict=False)) for row in rows[2:]}
    calls = _calls(folder / f"{example}.vcf")
    for gene in GENES:
        call = calls[gene]
        want = expected[gene]
        assert call.diplotype == want["Source Diplotype"], gene  # type: ignore[attr-defined]
        assert (call.phenotype or "") == want["Phenotype"], gene  # type: ignore[attr-defined]
        score = want["Activity Score"]
        activity = call.activity_score  # type: ignore[attr-defined]
        assert (activity is None and score == "") or activity == float(score), gene
        assert call.score == int(want["Match Score"]), gene  # type: ignore[attr-defined]


def test_every_haplotype_test_file_has_an_expectation(shared: Path) -> None:
    folder = _pharmcat(shared) / "haplotype-tests"
    files = {str(p.relative_to(folder)) for p in folder.rglob("*.vcf")}
    assert files == set(HAPLOTYPE_TESTS)
    assert len(files) == 89


@pytest.mark.parametrize("name", sorted(HAPLOTYPE_TESTS))
def test_haplotype_test_files(shared: Path, name: str) -> None:
    expected, _, note = HAPLOTYPE_TESTS[name]
    gene = name.split("/")[0].upper()
    call = _calls(_pharmcat(shared) / "haplotype-tests" / name)[gene]
    assert call.diplotypes == expected, note  # type: ignore[attr-defined]
    if not expected:
        assert call.uncalled_reason  # type: ignore[attr-defined]
    elif len(expected) > 1:
        assert call.diplotype is None  # type: ignore[attr-defined]
        assert call.uncalled_reason.startswith("ambiguous")  # type: ignore[attr-defined]


@pytest.mark.parametrize("gene", GENES)
def test_tables_agree_with_pharmcat_definitions(shared: Path, gene: str) -> None:
    """medtwin's gene table holds PharmCAT's positions and allele definitions unchanged."""
    definitions = _pharmcat(shared) / "definitions"
    source = json.loads((definitions / "alleles" / f"{gene}_translation.json").read_text())
    table = gene_table(gene)
    assert table.positions == tuple(v["position"] for v in source["variants"])
    assert table.refs == tuple(v["ref"] for v in source["variants"])
    assert {a.name: a.pattern for a in table.alleles} == {
        a["name"]: tuple(a["alleles"]) for a in source["namedAlleles"]
    }
    assert table.source["data_version"] == source["version"]


@pytest.mark.parametrize("gene", [g for g in GENES if g != "CYP4F2"])
def test_every_pharmcat_diplotype_gets_its_phenotype(shared: Path, gene: str) -> None:
    """All CPIC diplotype-phenotype rows (e.g. 2,850 for CYP2C9) via medtwin's function-pair table."""
    source = json.loads(
        (_pharmcat(shared) / "definitions" / "phenotype" / f"{gene}.json").read_text()
    )
    table = gene_table(gene)
    by_name = {a.report_as: a for a in table.alleles}
    checked = 0
    for row in source["diplotypes"]:
        pair = []
        for name, count in row["diplotypekey"].items():
            if name not in by_name:
                break
            pair += [by_name[name]] * count
        else:
            phenotype, activity, _ = _phenotype(table, pair)
            assert phenotype == row["generesult"], row["diplotype"]
            want = row["activityScore"]
            if want not in (None, "n/a"):
                assert activity == float(want), row["diplotype"]
            checked += 1
    # rows naming alleles without a definition (structural variants such as CYP2C19 *36) are skipped
    assert checked >= 0.75 * len(source["diplotypes"]), (checked, len(source["diplotypes"]))


def test_thousand_genomes_bgzip_and_preprocessed_files_agree(shared: Path) -> None:
    """The same three people: the chr10 bgzip panel and PharmCAT-preprocessed VCFs."""
    genomics = shared / "genomics"
    panel = genomics / "PharmCAT_tutorial_get-rm_wgs_30x_grch38_chr10.vcf.bgz"
    for sample in ("NA18526", "NA18565", "NA18861"):
        whole = _calls(genomics / f"{sample}.preprocessed.vcf")
        chr10 = _calls(panel, sample=sample)
        for gene in ("CYP2C19", "CYP2C9"):
            assert chr10[gene].diplotypes == whole[gene].diplotypes, (sample, gene)  # type: ignore[attr-defined]


def test_dpyd_more_than_two_variants_takes_the_two_lowest() -> None:
    table = gene_table("DPYD")
    names = {
        "c.1905+1G>A (*2A)": None,
        "c.2846A>T": None,
        "c.85T>C (*9A)": None,
    }
    genotypes: dict[int, SampleGenotype] = {}
    for allele in table.alleles:
        if allele.name in names:
            (index,) = [i for i, p in enumerate(allele.pattern) if p is not None]
            genotypes[table.positions[index]] = SampleGenotype(
                (table.refs[index], allele.pattern[index])  # type: ignore[arg-type]
            )
    for index, position in enumerate(table.positions):
        genotypes.setdefault(position, SampleGenotype((table.refs[index], table.refs[index])))
    call = call_gene("DPYD", genotypes)
    # CPIC DPYD: *2A activity 0, c.2846A>T 0.5, *9A 1: the two lowest sum to 0.5
    assert call.diplotype == "c.1905+1G>A (*2A)/c.2846A>T"
    assert call.activity_score == 0.5
    assert call.phenotype == "Poor Metabolizer"
    assert any("3 variant allele copies" in note for note in call.notes)


def test_no_positions_and_cyp4f2_have_reasons() -> None:
    empty = call_gene("CYP2C19", {})
    assert empty.diplotype is None and "no CYP2C19 position" in (empty.uncalled_reason or "")
    table = gene_table("CYP4F2")
    ref = {p: SampleGenotype((r, r)) for p, r in zip(table.positions, table.refs, strict=True)}
    call = call_gene("CYP4F2", ref)
    assert call.diplotype == "*1/*1" and call.phenotype is None
    assert "CPIC assigns no phenotype" in call.notes[-1]


def _genotypes_of(gene: str, first: int, second: int, phased: bool) -> dict[int, SampleGenotype]:
    table = gene_table(gene)
    a, b = table.alleles[first], table.alleles[second]
    out = {}
    for i, position in enumerate(table.positions):
        x = a.pattern[i] or table.refs[i]
        y = b.pattern[i] or table.refs[i]
        out[position] = SampleGenotype((x, y), phased)
    return out


def _plain(gene: str, index: int) -> bool:
    allele = gene_table(gene).alleles[index]
    return all(p is None or len(p) > 1 or p in "ACGT" for p in allele.pattern)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([g for g in GENES if g != "DPYD"]), st.data())
def test_a_genotype_made_of_two_defined_alleles_is_explained(
    gene: str, data: st.DataObject
) -> None:
    """Invariant: two defined alleles (no IUPAC codes) always give a call that explains them,
    and the order of the two haplotypes does not change it."""
    size = len(gene_table(gene).alleles)
    choices = [i for i in range(size) if _plain(gene, i)]
    first = data.draw(st.sampled_from(choices))
    second = data.draw(st.sampled_from(choices))
    phased = data.draw(st.booleans())
    call = call_gene(gene, _genotypes_of(gene, first, second, phased))
    assert call.diplotypes, call.uncalled_reason
    swapped = call_gene(gene, _genotypes_of(gene, second, first, phased))
    assert swapped.diplotypes == call.diplotypes
    # the generating pair fits, so the top score is at least its score
    table = gene_table(gene)
    everywhere = range(len(table.positions))
    own = _score(table.alleles[first], everywhere) + _score(table.alleles[second], everywhere)
    assert call.score >= own
