"""``medtwin pgx report PATIENT``: the drugs on the record with the CPIC advice for the patient's calls.

The expected diplotypes and phenotypes are PharmCAT v3.1's own report of the example VCF
(``pharmcat.example2.report.tsv``, independent of medtwin's caller); the expected advice is the
row of medtwin's CPIC table (``data/recommendations.json``, which cites the guideline tables)
for that phenotype, and its first words are checked against the guideline's action
(Lee 2022 Table 2: a CYP2C19 poor metabolizer should avoid clopidogrel; Cooper-DeHoff 2022
Table 2: SLCO1B1 normal function, the desired starting dose of simvastatin).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from medtwin.cli import main
from medtwin.ingest import import_paths
from medtwin.ingest.vcf import VCF_SAMPLE_SYSTEM, genotype_facts, read_genotype_file
from medtwin.pharmacology.pgx.recommendations import DRUGS
from medtwin.pharmacology.pgx.report import build_report, medications_on_record
from medtwin.record.codes import RXNORM
from medtwin.record.facts import (
    Coding,
    Demographics,
    Identifier,
    MedicationAdministration,
    MedicationRequest,
)

NOW = datetime.now(UTC)
TABLE = json.loads(
    (
        Path(__file__).resolve().parents[2]
        / "src/medtwin/pharmacology/pgx/data/recommendations.json"
    ).read_text()
)["drugs"]


def _pharmcat_report(path: Path) -> dict[str, tuple[str, str]]:
    """Gene -> (diplotype, phenotype) from a PharmCAT ``.report.tsv``."""
    out = {}
    for line in path.read_text().splitlines()[2:]:
        cells = line.split("\t")
        if len(cells) > 2:
            out[cells[0]] = (cells[1], cells[2])
    return out


def _request(
    ident: Identifier, n: int, rxcui: str | None, display: str, **kw: object
) -> MedicationRequest:
    return MedicationRequest(
        source="t",
        source_id=f"MedicationRequest/{ident.value}-{n}",
        subject=ident,
        code=Coding(RXNORM if rxcui else "http://example.org/local", rxcui or f"L{n}", display),
        intent="order",
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def store_path(tmp_path: Path, shared: Path) -> Path:
    """A store with patient Sample_2 (PharmCAT example2 VCF, medications) and one without genotypes."""
    from medtwin.store import open_store

    path = tmp_path / "m.db"
    store = open_store(str(path))
    ident = Identifier(VCF_SAMPLE_SYSTEM, "Sample_2")
    other = Identifier("urn:test:mrn", "NOGENO")
    store.append_facts(
        [
            Demographics(source="t", source_id="Patient/1", subject=ident, identifiers=(ident,)),
            Demographics(source="t", source_id="Patient/2", subject=other, identifiers=(other,)),
        ],
        source="t",
    )
    result = import_paths(
        store, [shared / "genomics/pharmcat/examples/pharmcat.example2.vcf"], workers=0
    )
    assert result.counts.get("inserted", 0) > 100
    recent = NOW - timedelta(days=30)
    meds = [
        _request(
            ident,
            1,
            "309362",
            "Clopidogrel 75 MG Oral Tablet",
            status="active",
            effective_start=NOW - timedelta(days=800),
        ),
        _request(
            ident,
            2,
            "312961",
            "Simvastatin 20 MG Oral Tablet",
            status="completed",
            effective_start=recent,
        ),
        _request(
            ident,
            3,
            "860975",
            "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
            status="active",
            effective_start=recent,
        ),
        # stopped two years ago: outside the default window of 365 days
        _request(
            ident,
            4,
            "855332",
            "Warfarin Sodium 5 MG Oral Tablet",
            status="stopped",
            effective_start=NOW - timedelta(days=730),
        ),
        # cancelled: never on the record as a drug taken
        _request(ident, 5, "42316", "tacrolimus", status="cancelled", effective_start=recent),
        _request(
            other,
            6,
            "309362",
            "Clopidogrel 75 MG Oral Tablet",
            status="active",
            effective_start=recent,
        ),
    ]
    store.append_facts(meds, source="t")
    store.close()
    return path


def test_report_gives_cpic_advice_for_the_drugs_on_the_record(
    store_path: Path, shared: Path
) -> None:
    expected = _pharmcat_report(shared / "genomics/pharmcat/examples/pharmcat.example2.report.tsv")
    assert expected["CYP2C19"] == ("*2/*2", "Poor Metabolizer")
    result = CliRunner().invoke(
        main, ["pgx", "report", "Sample_2", "--store", str(store_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["genotype_positions"] > 100 and report["note"] is None
    by_drug = {d["drug"]: d for d in report["drugs_with_guidance"]}
    # warfarin stopped 730 days ago and tacrolimus cancelled are not on the report
    assert set(by_drug) == {"clopidogrel", "simvastatin"}
    for drug, gene in (("clopidogrel", "CYP2C19"), ("simvastatin", "SLCO1B1")):
        item = by_drug[drug]
        diplotype, phenotype = expected[gene]
        assert [(g["gene"], g["diplotype"], g["phenotype"]) for g in item["genes"]] == [
            (gene, diplotype, phenotype)
        ]
        row = TABLE[drug]["by_phenotype"][phenotype]
        assert item["advice"] == [row["advice"]] and item["strength"] == [row["strength"]]
        assert item["cpic_level"] == "A (final)" and item["source"] == TABLE[drug]["source"]
        assert item["cannot_recommend"] is None
    assert by_drug["clopidogrel"]["advice"][0].startswith("Avoid clopidogrel")
    assert by_drug["clopidogrel"]["on_record"]["active_order"] is True  # old but active
    assert by_drug["simvastatin"]["advice"][0].startswith("Prescribe the desired starting dose")
    assert [d["drug"] for d in report["drugs_without_guidance"]] == ["metformin"]
    assert report["other_drugs"] == []
    # CYP4F2 has a diplotype but CPIC gives it no phenotype: it is called, not "uncalled"
    assert "CYP4F2" not in {u["gene"] for u in report["uncalled"]}

    text = CliRunner().invoke(main, ["pgx", "report", "Sample_2", "--store", str(store_path)])
    assert text.exit_code == 0, text.output
    assert "CYP2C19 *2/*2  Poor Metabolizer" in text.output
    assert "without PGx guidance" in text.output and "  metformin" in text.output

    wide = CliRunner().invoke(
        main,
        [
            "pgx",
            "report",
            "Sample_2",
            "--store",
            str(store_path),
            "--json",
            "--all-drugs",
            "--days",
            "0",
        ],
    )
    assert wide.exit_code == 0, wide.output
    everything = json.loads(wide.output)
    on_record = {d["drug"] for d in everything["drugs_with_guidance"]}
    assert on_record == {"clopidogrel", "simvastatin", "warfarin"}  # --days 0: whole record
    assert on_record | {d["drug"] for d in everything["other_drugs"]} == set(DRUGS)


def test_patient_without_genotypes(store_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["pgx", "report", "NOGENO", "--store", str(store_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["genotype_positions"] == 0 and report["note"] == "no genotypes on record"
    [item] = report["drugs_with_guidance"]
    assert item["drug"] == "clopidogrel" and item["advice"] == []
    assert item["cannot_recommend"] == "cannot recommend: no genotypes on record"
    text = CliRunner().invoke(main, ["pgx", "report", "NOGENO", "--store", str(store_path)])
    assert "No genotypes on record" in text.output


def test_uncalled_gene_says_why(shared: Path) -> None:
    path = shared / "genomics/pharmcat/haplotype-tests/cyp2c19/noCall.vcf"
    facts = genotype_facts(read_genotype_file(path))
    ident = Identifier(VCF_SAMPLE_SYSTEM, "x")
    req = _request(ident, 1, None, "clopidogrel 75 mg tablet", status="active")
    report = build_report(facts, [req], patient_id="p", now=NOW)
    uncalled = dict(report.uncalled)
    assert "no pair of defined alleles" in uncalled["CYP2C19"]  # noCall: a novel haplotype
    assert uncalled["VKORC1"] == "no VKORC1 position in the file"
    [item] = report.advice
    assert item.drug == "clopidogrel" and not item.recommendation.advice
    assert item.recommendation.cannot_recommend == (
        f"cannot recommend: CYP2C19 has no phenotype ({uncalled['CYP2C19']})"
    )


def test_medication_window_and_mapping() -> None:
    ident = Identifier("urn:test", "p")
    old = NOW - timedelta(days=400)
    facts = [
        MedicationAdministration(
            source="t",
            source_id="a1",
            subject=ident,
            code=Coding(RXNORM, "1664463", "24 HR tacrolimus 1 MG"),
            status="completed",
            effective_start=NOW - timedelta(days=2),
        ),
        MedicationAdministration(
            source="t",
            source_id="a2",
            subject=ident,
            code=Coding(RXNORM, "1664463", "24 HR tacrolimus 1 MG"),
            status="not-done",
            effective_start=NOW - timedelta(days=1),
        ),
        _request(
            ident, 1, "562251", "amoxicillin / clavulanate", status="completed", effective_start=old
        ),
        _request(ident, 2, None, "Unknownium 5 mg", status="active"),
    ]
    meds = {m.drug: m for m in medications_on_record(facts, now=NOW, days=365)}
    assert set(meds) == {"tacrolimus", "Unknownium 5 mg"}
    assert meds["tacrolimus"].source_ids == ("a1",) and not meds["Unknownium 5 mg"].recognised
    everything = {m.drug for m in medications_on_record(facts, now=NOW, days=500)}
    assert {"amoxicillin", "clavulanate"} <= everything
    with pytest.raises(ValueError, match="days"):
        medications_on_record(facts, now=NOW, days=-1)


@pytest.mark.parametrize(
    ("name", "rxcui", "drug", "phenotype", "advice_start"),
    [
        # Amstutz 2018 Table 2: DPYD activity score 1 (a c.1905+1G>A (*2A) carrier): reduce the
        # starting dose by 50%; capecitabine by its RxNorm ingredient code, given (administration)
        (
            "DPYD/s1s2b.vcf",
            "194000",
            "capecitabine",
            "Intermediate Metabolizer",
            "Reduce the starting dose by 50%",
        ),
        # Cooper-DeHoff 2022 Tables 1-2: *1/*15 decreased function, *5/*15 poor function
        (
            "SLCO1B1/s1s15.vcf",
            "312961",
            "simvastatin",
            "Decreased Function",
            "Prescribe an alternative statin",
        ),
        (
            "SLCO1B1/s5s15.vcf",
            "314231",
            "simvastatin",
            "Poor Function",
            "Prescribe an alternative statin",
        ),
    ],
)
def test_reduced_function_gives_the_guideline_action(
    shared: Path, name: str, rxcui: str, drug: str, phenotype: str, advice_start: str
) -> None:
    facts = genotype_facts(read_genotype_file(shared / "genomics/pharmcat/haplotype-tests" / name))
    given = MedicationAdministration(
        source="t",
        source_id="a",
        code=Coding(RXNORM, rxcui, None),
        status="completed",
        effective_start=NOW - timedelta(hours=3),
    )
    [item] = build_report(facts, [given], patient_id="p", now=NOW).advice
    assert item.drug == drug and [c.phenotype for c in item.calls] == [phenotype]
    assert item.recommendation.advice[0].startswith(advice_start)
    assert item.on_record is not None and item.on_record.kinds == ("MedicationAdministration",)


def _report(store_path: Path, patient: str, *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        main, ["pgx", "report", patient, "--store", str(store_path), "--json", *extra]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_recorded_cyp2d6_outside_call_gives_codeine_and_tramadol_advice(
    store_path: Path, tmp_path: Path
) -> None:
    """CYP2D6 from a laboratory's file (PharmCAT outside-call format) -> codeine on the record.

    Expected advice: the Crews 2021 Table 2/3 rows of medtwin's table for the phenotype CPIC
    assigns (``*1/*1x2`` activity score 3.0 Ultrarapid, ``*4/*4`` 0 Poor, ``*1/*2`` 2.0 Normal,
    ``*1/*4`` 1.0 Intermediate; CPIC's CYP2D6 diplotype-phenotype table).
    """
    from medtwin.store import open_store

    ident = Identifier(VCF_SAMPLE_SYSTEM, "Sample_2")
    other = Identifier("urn:test:mrn", "NOGENO")
    store = open_store(str(store_path))
    store.append_facts(
        [
            _request(
                ident,
                10,
                "993781",
                "Acetaminophen 300 MG / Codeine Phosphate 30 MG Oral Tablet",
                status="active",
                effective_start=NOW - timedelta(days=2),
            ),
            _request(
                other,
                11,
                "835603",
                "tramadol hydrochloride 50 MG Oral Tablet",
                status="active",
                effective_start=NOW - timedelta(days=2),
            ),
        ],
        source="t",
    )
    store.close()

    before = _report(store_path, "Sample_2")
    codeine = {d["drug"]: d for d in before["drugs_with_guidance"]}["codeine"]
    assert (
        codeine["advice"] == []
        and "CYP2D6 has no phenotype (medtwin calls CYP2D6 only" in (codeine["cannot_recommend"])
    )
    assert "CYP2D6" in {u["gene"] for u in before["uncalled"]}
    assert "acetaminophen" in {d["drug"] for d in before["drugs_without_guidance"]}

    lab = tmp_path / "lab.tsv"
    lab.write_text("# CYP2D6 from the laboratory\nCYP2D6\t*1/*1x2\n")
    recorded = CliRunner().invoke(
        main, ["pgx", "record-call", "Sample_2", str(lab), "--store", str(store_path), "--json"]
    )
    assert recorded.exit_code == 0, recorded.output
    assert json.loads(recorded.output)["counts"]["inserted"] == 1
    resent = CliRunner().invoke(  # the same file again: nothing changes
        main, ["pgx", "record-call", "Sample_2", str(lab), "--store", str(store_path), "--json"]
    )
    assert json.loads(resent.output)["counts"]["unchanged"] == 1

    rows = TABLE["codeine"]["by_phenotype"]
    after = _report(store_path, "Sample_2")
    by_drug = {d["drug"]: d for d in after["drugs_with_guidance"]}
    codeine = by_drug["codeine"]
    [gene] = codeine["genes"]
    assert (gene["gene"], gene["diplotype"], gene["phenotype"], gene["activity_score"]) == (
        "CYP2D6",
        "*1/*1x2",
        "Ultrarapid Metabolizer",
        3.0,
    )
    assert codeine["advice"] == [rows["Ultrarapid Metabolizer"]["advice"]]
    assert codeine["strength"] == ["strong"] and codeine["cpic_level"] == "A (final)"
    assert [c["gene"] for c in after["outside_calls"]] == ["CYP2D6"]
    assert "lab.tsv, line 2" in after["outside_calls"][0]["from"]
    assert "CYP2D6" not in {u["gene"] for u in after["uncalled"]}
    called = CliRunner().invoke(
        main, ["pgx", "call", "--patient", "Sample_2", "--store", str(store_path), "--json"]
    )
    assert called.exit_code == 0, called.output
    patient_calls = json.loads(called.output)
    assert patient_calls["positions_read"] == 323  # the outside-call fact is not a position
    assert patient_calls["genes"][-1]["gene"] == "CYP2D6"
    assert patient_calls["genes"][-1]["phenotype"] == "Ultrarapid Metabolizer"
    # the VCF genes are untouched: CYP2C19 is still PharmCAT's *2/*2
    assert by_drug["clopidogrel"]["genes"][0]["diplotype"] == "*2/*2"
    assert after["genotype_positions"] == before["genotype_positions"]

    # a corrected result: recording again makes a new version, the report uses it
    lab.write_text("CYP2D6\t*4/*4\n")
    again = CliRunner().invoke(
        main,
        [
            *("pgx", "record-call", "Sample_2", str(lab)),
            *("--store", str(store_path), "--date", "2026-11-30"),
        ],
    )
    assert again.exit_code == 0, again.output
    assert "(1 new_versions)" in again.output
    poor = {d["drug"]: d for d in _report(store_path, "Sample_2")["drugs_with_guidance"]}
    assert poor["codeine"]["advice"] == [rows["Poor Metabolizer"]["advice"]]

    # --outside-call: for this report only, over the stored call
    today = tmp_path / "today.tsv"
    today.write_text("CYP2D6\t*1/*2\n")
    once = _report(store_path, "Sample_2", "--outside-call", str(today))
    once_codeine = {d["drug"]: d for d in once["drugs_with_guidance"]}["codeine"]
    assert once_codeine["advice"] == [rows["Normal Metabolizer"]["advice"]]
    stored = {d["drug"]: d for d in _report(store_path, "Sample_2")["drugs_with_guidance"]}
    assert stored["codeine"]["advice"] == [rows["Poor Metabolizer"]["advice"]]

    text = CliRunner().invoke(main, ["pgx", "report", "Sample_2", "--store", str(store_path)])
    assert text.exit_code == 0, text.output
    assert "CYP2D6   *4/*4  Poor Metabolizer (activity score 0)" in text.output
    assert "outside call: result of 2026-11-30 from " in text.output

    # a patient with no genotypes but a CYP2D6 result: tramadol advised, clopidogrel not
    lab.write_text("CYP2D6\t*1/*4\n")
    assert (
        CliRunner()
        .invoke(main, ["pgx", "record-call", "NOGENO", str(lab), "--store", str(store_path)])
        .exit_code
        == 0
    )
    nogeno = _report(store_path, "NOGENO")
    assert nogeno["genotype_positions"] == 0 and nogeno["note"] is None
    by_drug = {d["drug"]: d for d in nogeno["drugs_with_guidance"]}
    assert by_drug["tramadol"]["advice"] == [
        TABLE["tramadol"]["by_phenotype"]["Intermediate Metabolizer"]["advice"]
    ]
    assert by_drug["tramadol"]["strength"] == ["optional"]
    assert by_drug["clopidogrel"]["cannot_recommend"] == "cannot recommend: no genotypes on record"


def test_record_call_refuses_bad_input(store_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("CYP2D6\t*1/*4\nCYP2D6\t*1/*1\n")
    result = CliRunner().invoke(
        main, ["pgx", "record-call", "Sample_2", str(bad), "--store", str(store_path)]
    )
    assert result.exit_code == 1 and "CYP2D6 is given twice (lines 1 and 2)" in result.output
    empty = tmp_path / "empty.tsv"
    empty.write_text("# nothing\n")
    result = CliRunner().invoke(
        main, ["pgx", "record-call", "Sample_2", str(empty), "--store", str(store_path)]
    )
    assert result.exit_code == 1 and "no outside call in the file" in result.output
    good = tmp_path / "good.tsv"
    good.write_text("CYP2D6\t*1/*4\n")
    result = CliRunner().invoke(
        main, ["pgx", "record-call", "NOBODY", str(good), "--store", str(store_path)]
    )
    assert result.exit_code == 1 and "medtwin: error:" in result.output
