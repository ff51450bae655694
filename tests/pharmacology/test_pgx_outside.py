"""Outside calls (PharmCAT format), CYP2D6 activity score and phenotype, codeine and tramadol.

Expected values come from outside medtwin's code:

* PharmCAT v3.1's own report of its example (``pharmcat.example.report.tsv``), which was run
  with the outside call ``CYP2D6 *1/*3``: ``*1`` Normal function 1.0, ``*3`` No function 0.0,
  activity score 1.0, Intermediate Metabolizer;
* rows of CPIC's CYP2D6 diplotype-phenotype table (as distributed in PharmCAT's
  ``phenotype/cpic/CYP2D6.json``): ``*1/*9`` 1.25 Normal, ``*1/*1x2`` 3.0 Ultrarapid ...;
* the activity-score ranges of Caudle KE et al. Clin Transl Sci 2020;13:116-124;
* the GeT-RM outside-call files of PharmCAT's tutorial (``outside_calls_from_get-rm.*.txt``).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from medtwin.cli import main
from medtwin.ingest.vcf import genotype_facts, read_vcf
from medtwin.pharmacology.pgx.caller import GeneCall
from medtwin.pharmacology.pgx.calls import call_facts_with_outside
from medtwin.pharmacology.pgx.cyp2d6 import (
    DiplotypeError,
    activity_table,
    cyp2d6_call,
    parse_haplotype,
    phenotype_from_activity,
)
from medtwin.pharmacology.pgx.outside import (
    OutsideCallError,
    outside_gene_call,
    parse_outside_calls,
    read_outside_calls,
)
from medtwin.pharmacology.pgx.recommendations import recommend

TABLE = json.loads(
    resources.files("medtwin.pharmacology.pgx").joinpath("data/recommendations.json").read_text()
)["drugs"]


def _one(text: str) -> GeneCall:
    [call] = parse_outside_calls(text)
    return outside_gene_call(call)


# --- CYP2D6 activity values, copies and phenotype -------------------------------------------


def test_copies_multiply_the_activity_value_as_cpic_lists_them() -> None:
    """Each CPIC xN allele's value (PharmCAT's CPIC file) equals copies x the allele's value."""
    values = activity_table()["cpic_copy_number_values"]
    assert len(values) == 15
    for name, cpic in values.items():
        haplotype = parse_haplotype(name)
        if cpic.startswith("≥"):
            assert haplotype.activity == float(cpic[1:]), name
            assert haplotype.at_least
        else:
            assert haplotype.activity == float(cpic), name
    assert parse_haplotype("*4x≥3").activity == 0.0 and not parse_haplotype("*4x≥3").at_least


@pytest.mark.parametrize(
    ("score", "phenotype"),
    [
        (0.0, "Poor Metabolizer"),
        (0.25, "Intermediate Metabolizer"),
        (1.0, "Intermediate Metabolizer"),  # IM since the 2020 consensus (was NM)
        (1.25, "Normal Metabolizer"),
        (2.25, "Normal Metabolizer"),
        (2.5, "Ultrarapid Metabolizer"),
        (3.0, "Ultrarapid Metabolizer"),
    ],
)
def test_phenotype_at_each_threshold(score: float, phenotype: str) -> None:
    assert phenotype_from_activity(score) == phenotype


def test_negative_score_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        phenotype_from_activity(-0.25)


@pytest.mark.parametrize(
    ("diplotype", "score", "phenotype"),
    [  # rows of CPIC's CYP2D6 diplotype-phenotype table
        ("*1/*1", 2.0, "Normal Metabolizer"),
        ("*1/*1x2", 3.0, "Ultrarapid Metabolizer"),
        ("*1/*2x2", 3.0, "Ultrarapid Metabolizer"),
        ("*1/*3", 1.0, "Intermediate Metabolizer"),
        ("*1/*4x2", 1.0, "Intermediate Metabolizer"),
        ("*1/*5", 1.0, "Intermediate Metabolizer"),
        ("*1/*9", 1.25, "Normal Metabolizer"),
        ("*1/*9x2", 1.5, "Normal Metabolizer"),
        ("*1/*10", 1.25, "Normal Metabolizer"),
        ("*1/*10x2", 1.5, "Normal Metabolizer"),
        ("*1/*17", 1.5, "Normal Metabolizer"),
        ("*1/*17x2", 2.0, "Normal Metabolizer"),
        ("*1/*6x2", 1.0, "Intermediate Metabolizer"),
    ],
)
def test_cpic_diplotype_rows(diplotype: str, score: float, phenotype: str) -> None:
    call = cyp2d6_call(diplotype)
    assert (call.activity_score, call.phenotype) == (score, phenotype)


def test_poor_and_lower_bound_and_unknown_alleles() -> None:
    assert cyp2d6_call("*4/*5").phenotype == "Poor Metabolizer"
    assert cyp2d6_call("*4/*41").activity_score == 0.25  # IM
    # CPIC: *1/*1x≥3 is "≥4.0", Ultrarapid; *4/*10x≥3 could be IM, NM or UM
    at_least = cyp2d6_call("*1/*1x≥3")
    assert at_least.phenotype == "Ultrarapid Metabolizer" and at_least.activity_score is None
    assert "at least 4" in at_least.notes[0]
    open_ended = cyp2d6_call("*4/*10x>=3")
    assert open_ended.phenotype == "Indeterminate"
    assert "Intermediate Metabolizer or higher" in open_ended.notes[0]
    unknown = cyp2d6_call("*1/*7")  # CPIC no function, but not in medtwin's compact table
    assert unknown.phenotype is None and "*7 is not in medtwin's CYP2D6 table" in (
        unknown.uncalled_reason or ""
    )


@pytest.mark.parametrize(
    "text", ["*1*4", "*1/", "*1/*4/*2", "*1/[*2 + *3]", "*1/*4x1", "*1/4", "*1/*4xN"]
)
def test_malformed_diplotypes(text: str) -> None:
    with pytest.raises(DiplotypeError):
        cyp2d6_call(text)


# --- the outside-call file --------------------------------------------------------------------


def test_pharmcat_example_outside_call_gives_pharmcat_s_cyp2d6_row(shared: Path) -> None:
    examples = shared / "genomics/pharmcat/examples"
    row = next(
        line.split("\t")
        for line in (examples / "pharmcat.example.report.tsv").read_text().splitlines()
        if line.startswith("CYP2D6\t")
    )
    # PharmCAT's example outside-call file also names HLA-B and MT-RNR1: medtwin refuses it
    with pytest.raises(OutsideCallError) as refused:
        read_outside_calls(examples / "pharmcat.example.outsideCall.tsv")
    assert "HLA-B (line 2)" in str(refused.value) and "MT-RNR1 (line 3)" in str(refused.value)
    cyp2d6_line = (examples / "pharmcat.example.outsideCall.tsv").read_text().splitlines()[0]
    call = _one(cyp2d6_line)
    assert (call.diplotype, call.phenotype, f"{call.activity_score:.1f}") == (
        row[1],
        row[2],
        row[3],
    )
    assert call.haplotypes == (row[4], row[7])
    assert call.functions == (row[5], row[8])


def test_get_rm_outside_call_files(shared: Path) -> None:
    genomics = shared / "genomics"
    [call] = read_outside_calls(genomics / "outside_calls_from_get-rm.NA18526.txt")
    assert call.gene == "CYP2D6" and call.diplotype == "*1/*36x2+*10"  # '#G6PD' is a comment
    gene_call = outside_gene_call(call)
    # *1 (1.0) + two *36 copies (0) + *10 (0.25)
    assert gene_call.activity_score == 1.25 and gene_call.phenotype == "Normal Metabolizer"
    for sample in ("NA18565", "NA18861"):
        with pytest.raises(OutsideCallError, match=r"not for G6PD \(line 2\)"):
            read_outside_calls(genomics / f"outside_calls_from_get-rm.{sample}.txt")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("HLA-B\t*57:01/*01:01\n", r"not for HLA-B \(line 1\)"),
        ("CYP2D6\t*1/*4\nFOO1\t*1/*1\nHLA-A\t\tpositive\n", r"FOO1 \(line 2\), HLA-A \(line 3\)"),
        ("CYP2D6\t*1/*4\n# a comment\nCYP2D6\t*1/*1\n", r"line 3: CYP2D6 is given twice"),
        ("CYP2D6\t*1*4\n", r"line 1: diplotype '\*1\*4'"),
        ("CYP2C19\t*1/*2/*3\n", r"a diplotype is two CYP2C19 alleles"),
        ("CYP2D6\n", r"no diplotype, phenotype or activity score"),
        ("CYP2D6\t*1/*4\tIM\t1.0\textra\n", r"at most 4"),
        ("CYP2D6\t\tfast\n", r"phenotype 'fast' is not a CPIC CYP2D6 phenotype"),
        ("CYP2D6\t\t\tone\n", r"activity score 'one' is not a number"),
        ("CYP2D6\t\t\t1.1\n", r"steps of 0.25"),
        ("CYP4F2\t\tNormal Metabolizer\n", r"CPIC assigns CYP4F2 no phenotype"),
        ("\t*1/*4\n", r"no gene symbol"),
    ],
)
def test_bad_files_are_refused_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(OutsideCallError, match=message):
        parse_outside_calls(text)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(OutsideCallError, match="no such outside-call file"):
        read_outside_calls(tmp_path / "missing.tsv")
    latin = tmp_path / "latin.tsv"
    latin.write_bytes("CYP2D6\t*1/*1x\xb33\n".encode("latin-1"))
    with pytest.raises(OutsideCallError, match="not UTF-8"):
        read_outside_calls(latin)


def test_comments_blank_lines_crlf_and_phenotype_spelling() -> None:
    calls = parse_outside_calls(
        "# lab report\r\n\r\ncyp2d6\t\tCYP2D6 Ultrarapid Metabolizers (UM)\r\n"
        "CYP2C19\t\tlikely poor metaboliser\r\nTPMT\t\tPM\r\n"
    )
    assert [(c.gene, c.phenotype) for c in calls] == [
        ("CYP2D6", "Ultrarapid Metabolizer"),
        ("CYP2C19", "Likely Poor Metabolizer"),
        ("TPMT", "Poor Metabolizer"),
    ]
    assert [c.where for c in calls] == [
        "outside call, line 3",
        "outside call, line 4",
        "outside call, line 5",
    ]


def test_activity_score_trumps_then_phenotype_then_diplotype() -> None:
    by_score = _one("CYP2D6\t*1/*4\t\t2.0")
    assert (by_score.phenotype, by_score.activity_score) == ("Normal Metabolizer", 2.0)
    assert "gives activity score 1.0; the file's activity score 2.0 is used" in by_score.notes[0]
    by_phenotype = _one("CYP2D6\t*1/*4\tPoor Metabolizer")
    assert by_phenotype.phenotype == "Poor Metabolizer"
    assert by_phenotype.activity_score is None
    assert "disagrees with its diplotype (Intermediate Metabolizer)" in by_phenotype.notes[0]
    agreeing = _one("CYP2D6\t*1/*4\tIM\t1.0")
    assert agreeing.phenotype == "Intermediate Metabolizer" and agreeing.notes == ()
    score_only = _one("CYP2D6\t\t\t≥3.0")
    assert score_only.phenotype == "Ultrarapid Metabolizer" and score_only.diplotype is None
    bounded = _one("CYP2D6\t\t\t≥1.0")  # IM, NM or UM: CPIC cannot say which
    assert bounded.phenotype == "Indeterminate" and bounded.activity_score is None
    no_row = _one("CYP2C9\t\t\t3.0")  # CYP2C9 scores end at 2.0
    assert no_row.phenotype is None
    assert no_row.uncalled_reason == "activity score 3.0 has no CPIC phenotype"
    cyp2c9 = _one("CYP2C9\t\t\t1.0")  # CYP2C9's own activity-score table
    assert cyp2c9.phenotype == "Intermediate Metabolizer"
    ignored = _one("TPMT\t*1/*3A\t\t1.0")  # PharmCAT ignores it for genes without a score
    assert ignored.phenotype == "Intermediate Metabolizer" and ignored.activity_score is None
    assert ignored.notes == ("activity score 1.0 ignored: CPIC gives TPMT no activity score",)
    dpyd = _one("DPYD\tc.1905+1G>A (*2A)/Reference")
    assert (dpyd.phenotype, dpyd.activity_score) == ("Intermediate Metabolizer", 1.0)


def test_outside_call_overrides_the_vcf_call(shared: Path) -> None:
    vcf = shared / "genomics/pharmcat/examples/pharmcat.example2.vcf"  # CYP2C19 *2/*2 (PharmCAT)
    facts = genotype_facts(read_vcf(vcf))
    outside = parse_outside_calls("CYP2C19\t*1/*1\nCYP2D6\t*1/*4\n")
    calls, used = call_facts_with_outside(facts, outside)
    assert [c.gene for c in used] == ["CYP2C19", "CYP2D6"]
    by_gene = {c.gene: c for c in calls}
    assert len(calls) == 10 and list(by_gene)[-1] == "CYP2D6"
    cyp2c19 = by_gene["CYP2C19"]
    assert (cyp2c19.diplotype, cyp2c19.phenotype) == ("*1/*1", "Normal Metabolizer")
    assert cyp2c19.outside_call == "outside call, line 1"
    assert "overrides the call from the genotypes (*2/*2, Poor Metabolizer)" in cyp2c19.notes
    assert by_gene["SLCO1B1"].outside_call is None  # the other genes keep the VCF call
    advice = recommend("clopidogrel", calls)
    assert advice.advice[0].startswith("Use clopidogrel at the standard dose")
    without, _ = call_facts_with_outside(facts, always_cyp2d6=True)
    assert without[-1].gene == "CYP2D6" and "only from an outside call" in (
        without[-1].uncalled_reason or ""
    )


# --- codeine and tramadol (Crews 2021 Tables 2 and 3) -----------------------------------------


@pytest.mark.parametrize(
    ("diplotype", "phenotype", "codeine_start", "codeine_strength", "tramadol_strength"),
    [
        (
            "*1/*1x2",
            "Ultrarapid Metabolizer",
            "Avoid codeine use because of potential",
            "strong",
            "strong",
        ),
        ("*1/*2", "Normal Metabolizer", "Use codeine label recommended", "strong", "strong"),
        (
            "*4/*10",
            "Intermediate Metabolizer",
            "Use codeine label recommended",
            "moderate",
            "optional",
        ),
        (
            "*4/*5",
            "Poor Metabolizer",
            "Avoid codeine use because of possibility",
            "strong",
            "strong",
        ),
    ],
)
def test_codeine_and_tramadol_per_phenotype(
    diplotype: str,
    phenotype: str,
    codeine_start: str,
    codeine_strength: str,
    tramadol_strength: str,
) -> None:
    call = cyp2d6_call(diplotype)
    assert call.phenotype == phenotype
    codeine = recommend("codeine", [call])
    assert codeine.basis == (f"CYP2D6 {phenotype}",)
    assert codeine.advice == (TABLE["codeine"]["by_phenotype"][phenotype]["advice"],)
    assert codeine.advice[0].startswith(codeine_start)
    assert codeine.strength == (codeine_strength,)
    assert "Crews KR" in codeine.source and "Table 2" in codeine.source
    tramadol = recommend("tramadol", [call])
    assert tramadol.strength == (tramadol_strength,) and "Table 3" in tramadol.source
    assert "tramadol" in tramadol.advice[0]
    if phenotype in ("Ultrarapid Metabolizer", "Poor Metabolizer"):
        assert "non-tramadol opioid" in codeine.advice[0]
        assert "non-codeine opioid" in tramadol.advice[0]


def test_codeine_refuses_without_a_cyp2d6_phenotype() -> None:
    indeterminate = recommend("codeine", [cyp2d6_call("*4/*10x≥3")])
    assert indeterminate.cannot_recommend == (
        "cannot recommend: CPIC gives no recommendation for CYP2D6 Indeterminate"
    )
    unknown = recommend("codeine", [cyp2d6_call("*1/*7")])
    assert "CYP2D6 has no phenotype (*7 is not in medtwin's CYP2D6 table" in (
        unknown.cannot_recommend or ""
    )


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_call_with_outside_call(shared: Path, tmp_path: Path) -> None:
    vcf = shared / "genomics/pharmcat/examples/pharmcat.example.vcf"
    outside = shared / "genomics/outside_calls_from_get-rm.NA18526.txt"
    result = CliRunner().invoke(
        main,
        ["pgx", "call", str(vcf), "--outside-call", str(outside), "--drug", "codeine", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [g["gene"] for g in report["genes"]][-1] == "CYP2D6"
    cyp2d6 = report["genes"][-1]
    assert cyp2d6["diplotype"] == "*1/*36x2+*10" and cyp2d6["phenotype"] == "Normal Metabolizer"
    assert cyp2d6["outside_call"].endswith("NA18526.txt, line 1")
    [codeine] = report["recommendations"]
    assert codeine["advice"] == [TABLE["codeine"]["by_phenotype"]["Normal Metabolizer"]["advice"]]

    text = CliRunner().invoke(main, ["pgx", "call", str(vcf), "--gene", "CYP2D6"])
    assert text.exit_code == 0, text.output
    assert "CYP2D6   not called" in text.output and "only from an outside call" in text.output

    bad = tmp_path / "bad.tsv"
    bad.write_text("CYP2D6\t*1/*4\nHLA-B\t*57:01/*01:01\n")
    refused = CliRunner().invoke(main, ["pgx", "call", str(vcf), "--outside-call", str(bad)])
    assert refused.exit_code == 1
    assert "medtwin: error:" in refused.output and "not for HLA-B (line 2)" in refused.output

    alone = CliRunner().invoke(main, ["pgx", "call", "--outside-call", str(outside)])
    assert alone.exit_code == 0, alone.output
    assert "outside calls only" in alone.output and "CYP2C19" not in alone.output
