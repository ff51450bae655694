"""CPIC recommendations from gene calls: coverage of every CPIC phenotype, refusals, combinations."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from medtwin.ingest.vcf import genotype_facts, read_vcf
from medtwin.pharmacology.pgx import call_facts, gene_table
from medtwin.pharmacology.pgx.caller import GeneCall
from medtwin.pharmacology.pgx.cyp2d6 import CYP2D6, CYP2D6_PHENOTYPES
from medtwin.pharmacology.pgx.recommendations import DRUGS, recommend


def _call(gene: str, phenotype: str | None, activity: float | None = None) -> GeneCall:
    return GeneCall(
        gene=gene,
        diplotype="x/y" if phenotype else None,
        diplotypes=("x/y",) if phenotype else (),
        phenotype=phenotype,
        activity_score=activity,
        uncalled_reason=None if phenotype else "no pair of defined alleles explains the genotypes",
    )


def test_every_cpic_phenotype_has_advice_or_is_indeterminate() -> None:
    data = json.loads(
        resources.files("medtwin.pharmacology.pgx")
        .joinpath("data/recommendations.json")
        .read_text()
    )["drugs"]
    for drug in DRUGS:
        entry = data[drug]
        table = data[entry.get("same_as", drug)]
        for gene in entry["genes"]:
            if gene == CYP2D6:  # an outside call: the four activity-score phenotypes
                rows = [(p, None) for p in CYP2D6_PHENOTYPES]
            else:
                rows = list(gene_table(gene).phenotypes.values())
            if "by_phenotype" in table:
                for phenotype, _ in rows:
                    assert phenotype == "Indeterminate" or phenotype in table["by_phenotype"], (
                        drug,
                        phenotype,
                    )
            elif "by_activity_score" in table:
                for _, score in rows:
                    assert f"{float(score):.1f}" in table["by_activity_score"], (drug, score)


def test_clopidogrel_for_pharmcat_example2(shared: Path) -> None:
    vcf = shared / "genomics" / "pharmcat" / "examples" / "pharmcat.example2.vcf"
    calls = call_facts(genotype_facts(read_vcf(vcf)))
    advice = recommend("clopidogrel", calls)
    assert advice.basis == ("CYP2C19 Poor Metabolizer",)
    assert advice.advice[0].startswith("Avoid clopidogrel") and advice.strength == ("strong",)
    assert "Lee CR" in advice.source


def test_dpyd_by_activity_score(shared: Path) -> None:
    vcf = shared / "genomics" / "pharmcat" / "haplotype-tests" / "DPYD" / "c1156het.vcf"
    calls = call_facts(genotype_facts(read_vcf(vcf)))
    for drug in ("fluorouracil", "capecitabine"):
        advice = recommend(drug, calls)
        assert advice.basis == ("DPYD activity score 1.0 (Intermediate Metabolizer)",)
        assert "50%" in advice.advice[0]
    assert recommend("fluorouracil", [_call("DPYD", "Poor Metabolizer", 0.0)]).advice == (
        "Avoid fluorouracil or its prodrugs.",
    )


def test_thiopurines_use_both_genes() -> None:
    both = recommend(
        "mercaptopurine",
        [_call("TPMT", "Intermediate Metabolizer"), _call("NUDT15", "Intermediate Metabolizer")],
    )
    assert len(both.advice) == 3 and "both genes" in both.advice[-1]
    poor = recommend(
        "azathioprine", [_call("TPMT", "Normal Metabolizer"), _call("NUDT15", "Poor Metabolizer")]
    )
    assert poor.advice[0].startswith("NUDT15: Non-malignant")  # the lower function first


def test_refusals_say_why() -> None:
    refused = recommend("clopidogrel", [_call("CYP2C19", None)])
    assert refused.advice == () and "CYP2C19 has no phenotype" in (refused.cannot_recommend or "")
    indeterminate = recommend("simvastatin", [_call("SLCO1B1", "Indeterminate")])
    assert "no recommendation for SLCO1B1 Indeterminate" in (indeterminate.cannot_recommend or "")
    warfarin = recommend("warfarin", [_call("CYP2C9", "Normal Metabolizer")])
    assert "VKORC1 not called" in (warfarin.cannot_recommend or "")
    with pytest.raises(KeyError, match="no CPIC recommendation table"):
        recommend("oxycodone", [])  # not in medtwin's table
    codeine = recommend("codeine", [])
    assert codeine.advice == () and codeine.cannot_recommend == (
        "cannot recommend: CYP2D6 has no phenotype (no call)"
    )


def test_tacrolimus_and_warfarin() -> None:
    assert (
        "1.5-2 times" in recommend("tacrolimus", [_call("CYP3A5", "Normal Metabolizer")]).advice[0]
    )
    assert "standard" in recommend("tacrolimus", [_call("CYP3A5", "Poor Metabolizer")]).advice[0]
    warfarin = recommend(
        "warfarin", [_call("CYP2C9", "Normal Metabolizer"), _call("VKORC1", "-1639 AG")]
    )
    assert "pharmacogenetic algorithm" in warfarin.advice[0] and warfarin.cannot_recommend is None


def test_cli_drug_option(shared: Path) -> None:
    from click.testing import CliRunner

    from medtwin.cli import main

    vcf = shared / "genomics" / "pharmcat" / "examples" / "pharmcat.example2.vcf"
    result = CliRunner().invoke(main, ["pgx", "call", str(vcf), "--drug", "clopidogrel", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["recommendations"][0]["basis"] == ["CYP2C19 Poor Metabolizer"]
    bad = CliRunner().invoke(main, ["pgx", "call", str(vcf), "--drug", "aspirin"])
    assert bad.exit_code == 1 and "no CPIC table" in bad.output
