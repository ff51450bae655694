"""``medtwin pgx call`` and ``medtwin pgx report``: diplotypes, phenotypes and CPIC advice.

A part of the ``medtwin`` command (:mod:`medtwin.cli` imports it, and it registers itself on
:func:`medtwin.cli.main`). Reading lives in :mod:`medtwin.ingest.vcf`, calling in
:mod:`medtwin.pharmacology.pgx`; this module reads options, calls them and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from medtwin.cli import _json_option, _open, _print_json, _store_option, main

__all__ = ["pgx_call_command", "pgx_group", "pgx_report_command"]


@main.group("pgx")
def pgx_group() -> None:
    """Pharmacogenomics: star-allele diplotypes, phenotypes and activity scores (CPIC)."""


@pgx_group.command("call")
@click.argument("path", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--sample", default=None, help="The sample column of a multi-sample VCF (required there)."
)
@click.option(
    "--patient",
    default=None,
    help="Call from PATIENT's stored Genotype facts instead of a file (id or identifier).",
)
@click.option(
    "--gene",
    "genes",
    multiple=True,
    help="Only this gene (CYP2C19, CYP2C9, VKORC1, CYP4F2, SLCO1B1, TPMT, NUDT15, DPYD, CYP3A5); repeatable.",
)
@click.option(
    "--drug",
    "drugs",
    multiple=True,
    help="Also the CPIC advice for this drug (clopidogrel, warfarin, simvastatin, mercaptopurine, "
    "azathioprine, fluorouracil, capecitabine, tacrolimus); repeatable.",
)
@_store_option
@_json_option
def pgx_call_command(
    path: Path | None,
    sample: str | None,
    patient: str | None,
    genes: tuple[str, ...],
    drugs: tuple[str, ...],
    store_url: str,
    as_json: bool,
) -> None:
    """Call diplotypes from PATH (VCF, .vcf.gz/.bgz, 23andMe or AncestryDNA raw file) or --patient.

    Per gene: diplotype (or the equally possible ones), CPIC phenotype, activity score
    (CYP2C9, DPYD) and, when there is no single call, the reason. Only the pharmacogene
    positions of the file are read. GRCh37 files and multi-sample files without --sample
    are refused.
    """
    from medtwin.ingest.base import IngestError
    from medtwin.ingest.vcf import genotype_facts, read_genotype_file
    from medtwin.pharmacology.pgx import GENES, call_facts

    wanted = tuple(g.upper() for g in genes) or GENES
    unknown = [g for g in wanted if g not in GENES]
    if unknown:
        raise IngestError(f"--gene {unknown[0]}: not a gene medtwin calls ({', '.join(GENES)})")
    if (path is None) == (patient is None):
        raise IngestError("give a genotype FILE or --patient PATIENT (one of them)")
    report: dict[str, Any]
    if path is not None:
        if not path.is_file():
            raise IngestError(f"{path}: no such file")
        result = read_genotype_file(path, sample=sample)
        facts = genotype_facts(result)
        report = {
            "file": str(path),
            "format": result.format,
            "sample": result.sample,
            "build": result.build,
            "build_evidence": result.build_evidence,
            "positions_read": len(result.calls),
            "problems": [p.describe() for p in result.problems],
        }
    else:
        store = _open(store_url)
        try:
            pid = store.resolve_patient(patient)
            facts = [s.fact for s in store.timeline(pid, kinds=["Genotype"])]
        finally:
            store.close()
        report = {"patient_id": pid, "positions_read": len(facts), "problems": []}
    from medtwin.pharmacology.pgx.recommendations import DRUGS, recommend

    for drug in drugs:
        if drug.lower() not in DRUGS:
            raise IngestError(f"--drug {drug}: no CPIC table in medtwin ({', '.join(DRUGS)})")
    calls = call_facts(facts, wanted)
    report["genes"] = [c.to_dict() for c in calls]
    advice = [recommend(drug, call_facts(facts)) for drug in drugs]
    if drugs:
        report["recommendations"] = [a.to_dict() for a in advice]
    if as_json:
        _print_json(report)
        return
    where = report.get("file") or report.get("patient_id")
    build = report.get("build") or "build not stated (read as GRCh38)"
    click.echo(
        f"{where}: sample {report.get('sample', '-')}, {build}, {report['positions_read']} pharmacogene positions"
    )
    for problem in report["problems"]:
        click.echo(f"  quarantined: {problem}", err=True)
    for call in calls:
        if call.diplotype is not None:
            what = call.diplotype
        elif call.diplotypes:
            what = " or ".join(call.diplotypes)
        else:
            what = "not called"
        score = (
            f" (activity score {call.activity_score:g})" if call.activity_score is not None else ""
        )
        pheno = f"  {call.phenotype}{score}" if call.phenotype else ""
        click.echo(f"{call.gene:<8} {what}{pheno}")
        if call.uncalled_reason:
            click.echo(f"{'':9}{call.uncalled_reason}")
    for item in advice:
        click.echo(f"\n{item.drug} ({', '.join(item.basis) or 'no genotype'})")
        if item.cannot_recommend:
            click.echo(f"  {item.cannot_recommend}")
        for text, strength in zip(item.advice, item.strength, strict=True):
            click.echo(f"  {text}" + (f" [{strength}]" if strength else ""))
        click.echo(f"  source: {item.source}")


@pgx_group.command("report")
@click.argument("patient")
@click.option(
    "--days",
    type=click.IntRange(min=0),
    default=365,
    show_default=True,
    help="Medications: active orders plus orders and administrations of the last DAYS days "
    "(0: the whole record).",
)
@click.option(
    "--all-drugs", is_flag=True, help="Also the advice for every drug in medtwin's CPIC table."
)
@_store_option
@_json_option
def pgx_report_command(
    patient: str, days: int, all_drugs: bool, store_url: str, as_json: bool
) -> None:
    """The drugs on PATIENT's record with their CPIC advice from PATIENT's stored genotypes.

    Genes are called from the stored Genotype facts (import a VCF with 'medtwin import' and link
    its sample). Medications are MedicationRequest and MedicationAdministration facts: active
    orders, and orders and administrations within --days; RxNorm products are mapped to their
    ingredients. For each drug with a CPIC table: the genes, diplotypes, phenotypes, advice,
    strength, CPIC level and source, or why there is no advice. Drugs without a table are
    listed as such; genes that could not be called are listed with the reason.
    """
    from medtwin.pharmacology.pgx.report import patient_report

    store = _open(store_url)
    try:
        report = patient_report(store, patient, days=days, all_drugs=all_drugs)
    finally:
        store.close()
    if as_json:
        _print_json(report.to_dict())
        return
    click.echo(f"Patient {report.patient_id}: {report.genotype_positions} genotype positions")
    click.echo(f"Medications: {report.window}")
    if not report.genotype_positions:
        click.echo("No genotypes on record: cannot recommend for any drug.")
    else:
        click.echo("\nGenes")
        for call in report.calls:
            what = call.diplotype or " or ".join(call.diplotypes) or "not called"
            score = (
                f" (activity score {call.activity_score:g})"
                if call.activity_score is not None
                else ""
            )
            pheno = f"  {call.phenotype}{score}" if call.phenotype else ""
            click.echo(f"  {call.gene:<8} {what}{pheno}")
        for gene, reason in report.uncalled:
            click.echo(f"  not called: {gene}: {reason}")

    def show(items: tuple[Any, ...]) -> None:
        for item in items:
            rec = item.recommendation
            where = ""
            if item.on_record is not None:
                med = item.on_record
                state = "active order" if med.active else "recent"
                where = f" ({'; '.join(med.displays) or med.drug}: {', '.join(med.kinds)}, {state})"
            click.echo(f"  {item.drug}{where}")
            for call in item.calls:
                what = call.diplotype or " or ".join(call.diplotypes) or "not called"
                click.echo(f"    {call.gene} {what}  {call.phenotype or '-'}")
            if rec.cannot_recommend:
                click.echo(f"    {rec.cannot_recommend}")
            for text, strength in zip(rec.advice, rec.strength, strict=True):
                click.echo(f"    {text}" + (f" [{strength}]" if strength else ""))
            level = item.to_dict()["cpic_level"]
            click.echo(f"    CPIC level {level}; source: {rec.source}")

    click.echo("\nDrugs on the record with CPIC guidance")
    if report.advice:
        show(report.advice)
    else:
        click.echo("  none")
    click.echo("\nDrugs on the record without PGx guidance in medtwin's table")
    for med in report.without_guidance or ():
        label = med.drug if med.recognised else f"{med.drug} (not recognised as an ingredient)"
        click.echo(f"  {label}")
    if not report.without_guidance:
        click.echo("  none")
    if all_drugs:
        click.echo("\nOther drugs in medtwin's CPIC table")
        show(report.other_drugs)
