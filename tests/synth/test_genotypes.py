"""Synthetic pharmacogene genotypes: VCF form, allele frequencies, and the import -> call round trip."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from medtwin.cli import main
from medtwin.ingest.vcf import _CONTIG_LENGTHS, detect_build, read_genotype_file
from medtwin.synth.genotypes import (
    CONTIG_LENGTHS,
    GENES,
    allele_frequencies,
    patient_genotype,
    vcf_text,
)


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_vcf_header_is_grch38_with_contig_lengths(tmp_path: Path) -> None:
    text = vcf_text(patient_genotype(7, 3))
    header = [line for line in text.splitlines() if line.startswith("##")]
    assert header[0] == "##fileformat=VCFv4.2"
    assert detect_build(header)[0] == "GRCh38"
    # every contig length is a GRCh38 primary chromosome length of the GRC assembly report,
    # as the VCF reader's own independent table has them
    for contig, length in CONTIG_LENGTHS.items():
        assert f"##contig=<ID={contig},length={length},assembly=GRCh38>" in header
        assert _CONTIG_LENGTHS[length] == "GRCh38"
    path = tmp_path / "one.vcf"
    path.write_text(text)
    result = read_genotype_file(path)
    assert result.sample == "SYN-7-3"
    assert result.build == "GRCh38"
    assert not result.problems
    assert len(result.calls) == 323  # every pharmacogene position the reader keeps


def test_allele_frequencies_match_the_table() -> None:
    """Drawn allele frequencies per group agree with the CPIC table within 4 binomial SE."""
    data = allele_frequencies()
    n = 3000
    counts: dict[tuple[str, str, str], int] = {}
    chromosomes: dict[str, int] = {}
    for index in range(n):
        g = patient_genotype(11, index)
        chromosomes[g.group] = chromosomes.get(g.group, 0) + 2
        for gene, pair in g.diplotypes.items():
            for allele in pair:
                counts[(g.group, gene, allele)] = counts.get((g.group, gene, allele), 0) + 1
    # group shares (2020 US Census, normalised)
    total = sum(data["groups"].values())
    for group, share in data["groups"].items():
        p = share / total
        observed = chromosomes.get(group, 0) / 2 / n
        assert abs(observed - p) < 4 * math.sqrt(p * (1 - p) / n) + 1e-9, group
    checked = 0
    for gene in GENES:
        for group in data["groups"]:
            m = chromosomes[group]
            for allele, p in data["genes"][gene].get(group, {}).items():
                observed = counts.get((group, gene, allele), 0) / m
                se = math.sqrt(p * (1 - p) / m)
                assert abs(observed - p) < 4 * se + 2 / m, (gene, group, allele, observed, p)
                checked += 1
    assert checked > 40


def test_same_seed_same_truth_and_different_patients_differ() -> None:
    assert patient_genotype(5, 2) == patient_genotype(5, 2)
    draws = {tuple(sorted(patient_genotype(5, i).diplotypes.items())) for i in range(30)}
    assert len(draws) > 10


@pytest.mark.slow
def test_import_then_pgx_call_recovers_the_truth(tmp_path: Path) -> None:
    """``synth --genotypes`` -> ``import`` -> ``pgx call --patient``: every diplotype as drawn."""
    out = tmp_path / "patients"
    store = str(tmp_path / "store.db")
    _invoke("synth", str(out), "--patients", "12", "--seed", "3", "--genotypes")
    folder = tmp_path / "patients-genotypes"
    truth = json.loads((folder / "truth.json").read_text())
    assert "CPIC" in truth["frequencies"]
    _invoke("import", "--store", store, str(out))
    _invoke("import", "--store", store, str(folder / "vcf"))
    compared = 0
    variant_calls = 0
    for patient in truth["patients"]:
        bundle = json.loads((out / f"patient-{patient['index']:05d}.json").read_text())
        identifiers = bundle["entry"][0]["resource"]["identifier"]
        assert {"system": "urn:medtwin:vcf-sample", "value": patient["sample"]} in [
            {"system": i["system"], "value": i["value"]} for i in identifiers
        ]
        report = json.loads(
            _invoke("pgx", "call", "--store", store, "--patient", patient["sample"], "--json")
        )
        assert report["positions_read"] == 323
        for call in report["genes"]:
            expected = sorted(patient["haplotypes"][call["gene"]])
            assert call["diplotype"] is not None, call
            assert sorted(call["haplotypes"]) == expected, (patient["sample"], call)
            compared += 1
            reference = {"*1", "Reference", "rs9923231 reference (C)"}
            if call["gene"] != "CYP3A5" and set(expected) - reference:
                variant_calls += 1
    assert compared == 12 * len(GENES)
    assert variant_calls >= 12  # the check is not only reference calls
