"""``medtwin pgx call`` and ``medtwin pgx report``: diplotypes, phenotypes and CPIC advice.

A part of the ``medtwin`` command (:mod:`medtwin.cli` imports it, and it registers itself on
:func:`medtwin.cli.main`). Reading lives in :mod:`medtwin.ingest.vcf`, calling in
:mod:`medtwin.pharmacology.pgx`; this module reads options, calls them and prints.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from medtwin.cli import _json_option, _open, _print_json, _store_option, main

__all__ = ["pgx_call_command", "pgx_group", "pgx_record_call_command", "pgx_report_command"]

_OUTSIDE_HELP = (
    "A PharmCAT outside-call file (tab-separated: gene, diplotype, phenotype, activity score; "
    "e.g. 'CYP2D6<TAB>*1/*4'): calls made elsewhere, which override medtwin's call for their "
    "gene. CYP2D6 is called only this way."
)


def _read_outside(path: Path | None) -> list[Any]:
    """The outside calls of ``path`` (none without it); bad files become one-line errors."""
    from medtwin.ingest.base import IngestError
    from medtwin.pharmacology.pgx.outside import OutsideCallError, read_outside_calls

    if path is None:
        return []
    try:
        return read_outside_calls(path)
    except OutsideCallError as exc:
        raise IngestError(str(exc)) from None


def _call_line(call: Any) -> list[str]:
    """Text lines of one gene call (diplotype, phenotype, where an outside call came from)."""
    if call.diplotype is not None:
        what = call.diplotype
    elif call.diplotypes:
        what = " or ".join(call.diplotypes)
    elif call.phenotype is not None:
        what = "(no diplotype)"
    else:
        what = "not called"
    score = f" (activity score {call.activity_score:g})" if call.activity_score is not None else ""
    pheno = f"  {call.phenotype}{score}" if call.phenotype else ""
    lines = [f"{call.gene:<8} {what}{pheno}"]
    if call.outside_call:
        lines.append(f"{'':9}outside call: {call.outside_call}")
    if call.uncalled_reason:
        lines.append(f"{'':9}{call.uncalled_reason}")
    lines += [f"{'':9}note: {n}" for n in call.notes if call.outside_call]
    return lines


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
    help="Only this gene (CYP2C19, CYP2C9, VKORC1, CYP4F2, SLCO1B1, TPMT, NUDT15, DPYD, CYP3A5, "
    "or CYP2D6 from an outside call); repeatable.",
)
@click.option(
    "--drug",
    "drugs",
    multiple=True,
    help="Also the CPIC advice for this drug (clopidogrel, warfarin, simvastatin, mercaptopurine, "
    "azathioprine, fluorouracil, capecitabine, tacrolimus, codeine, tramadol); repeatable.",
)
@click.option(
    "--outside-call",
    "outside_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help=_OUTSIDE_HELP,
)
@_store_option
@_json_option
def pgx_call_command(
    path: Path | None,
    sample: str | None,
    patient: str | None,
    genes: tuple[str, ...],
    drugs: tuple[str, ...],
    outside_path: Path | None,
    store_url: str,
    as_json: bool,
) -> None:
    """Call diplotypes from PATH (VCF, .vcf.gz/.bgz, 23andMe or AncestryDNA raw file) or --patient.

    Per gene: diplotype (or the equally possible ones), CPIC phenotype, activity score
    (CYP2C9, DPYD, CYP2D6) and, when there is no single call, the reason. Only the
    pharmacogene positions of the file are read. GRCh37 files and multi-sample files without
    --sample are refused. --outside-call adds calls made elsewhere (CYP2D6 only comes this
    way), overriding medtwin's call for their gene; with --patient the outside calls stored
    with 'medtwin pgx record-call' apply too. --outside-call alone shows just those calls.
    """
    from medtwin.ingest.base import IngestError
    from medtwin.ingest.vcf import genotype_facts, read_genotype_file
    from medtwin.pharmacology.pgx import GENES
    from medtwin.pharmacology.pgx.calls import call_facts_with_outside
    from medtwin.pharmacology.pgx.outside import OUTSIDE_GENES

    wanted = tuple(g.upper() for g in genes) or GENES
    unknown = [g for g in wanted if g not in OUTSIDE_GENES]
    if unknown:
        raise IngestError(
            f"--gene {unknown[0]}: not a gene medtwin calls ({', '.join(OUTSIDE_GENES)})"
        )
    if path is not None and patient is not None:
        raise IngestError("give a genotype FILE or --patient PATIENT (one of them)")
    if path is None and patient is None and outside_path is None:
        raise IngestError("give a genotype FILE, --patient PATIENT or --outside-call FILE")
    outside = _read_outside(outside_path)
    report: dict[str, Any]
    facts: list[Any] = []
    if path is None and patient is None:
        report = {"positions_read": 0, "problems": []}
    elif path is not None:
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
        from medtwin.pharmacology.pgx.outside import is_outside_call_fact

        store = _open(store_url)
        try:
            pid = store.resolve_patient(patient)
            facts = [s.fact for s in store.timeline(pid, kinds=["Genotype"])]
        finally:
            store.close()
        positions = [f for f in facts if not is_outside_call_fact(f)]
        report = {"patient_id": pid, "positions_read": len(positions), "problems": []}
    from medtwin.pharmacology.pgx.outside import OutsideCallError
    from medtwin.pharmacology.pgx.recommendations import DRUGS, recommend

    for drug in drugs:
        if drug.lower() not in DRUGS:
            raise IngestError(f"--drug {drug}: no CPIC table in medtwin ({', '.join(DRUGS)})")
    try:
        calls, used = call_facts_with_outside(
            facts, outside, wanted, always_cyp2d6="CYP2D6" in wanted
        )
        everything, _ = call_facts_with_outside(facts, outside, always_cyp2d6=True)
    except OutsideCallError as exc:  # a stored outside call that no longer reads
        raise IngestError(str(exc)) from None
    if path is None and patient is None:
        calls = [c for c in calls if c.outside_call or c.gene in genes]
    report["outside_calls"] = [c.to_dict() for c in used]
    report["genes"] = [c.to_dict() for c in calls]
    advice = [recommend(drug, everything) for drug in drugs]
    if drugs:
        report["recommendations"] = [a.to_dict() for a in advice]
    if as_json:
        _print_json(report)
        return
    where = report.get("file") or report.get("patient_id")
    if where is not None:
        build = report.get("build") or "build not stated (read as GRCh38)"
        click.echo(
            f"{where}: sample {report.get('sample', '-')}, {build}, {report['positions_read']} pharmacogene positions"
        )
    else:
        click.echo(f"{outside_path}: outside calls only (no genotype file)")
    for problem in report["problems"]:
        click.echo(f"  quarantined: {problem}", err=True)
    for call in calls:
        for line in _call_line(call):
            click.echo(line)
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
@click.option(
    "--outside-call",
    "outside_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help=_OUTSIDE_HELP + " Used for this report only (to keep it: 'pgx record-call').",
)
@_store_option
@_json_option
def pgx_report_command(
    patient: str,
    days: int,
    all_drugs: bool,
    outside_path: Path | None,
    store_url: str,
    as_json: bool,
) -> None:
    """The drugs on PATIENT's record with their CPIC advice from PATIENT's stored genotypes.

    Genes are called from the stored Genotype facts (import a VCF with 'medtwin import' and link
    its sample). Medications are MedicationRequest and MedicationAdministration facts: active
    orders, and orders and administrations within --days; RxNorm products are mapped to their
    ingredients. For each drug with a CPIC table: the genes, diplotypes, phenotypes, advice,
    strength, CPIC level and source, or why there is no advice. Drugs without a table are
    listed as such; genes that could not be called are listed with the reason. Outside calls
    (CYP2D6 for codeine and tramadol) come from 'pgx record-call' or --outside-call and
    override the call from the genotypes for their gene; the report says so.
    """
    from medtwin.ingest.base import IngestError
    from medtwin.pharmacology.pgx.outside import OutsideCallError
    from medtwin.pharmacology.pgx.report import patient_report

    outside = _read_outside(outside_path)
    store = _open(store_url)
    try:
        report = patient_report(store, patient, days=days, all_drugs=all_drugs, outside=outside)
    except OutsideCallError as exc:  # a stored outside call that no longer reads
        raise IngestError(str(exc)) from None
    finally:
        store.close()
    if as_json:
        _print_json(report.to_dict())
        return
    click.echo(
        f"Patient {report.patient_id}: {report.genotype_positions} genotype positions, "
        f"{len(report.outside_calls)} outside calls"
    )
    click.echo(f"Medications: {report.window}")
    if not report.has_genotypes:
        click.echo("No genotypes on record: cannot recommend for any drug.")
    else:
        click.echo("\nGenes")
        for call in report.calls:
            if call.uncalled_reason and not call.diplotype and not call.phenotype:
                continue  # listed below with the reason
            for line in _call_line(call):
                click.echo(f"  {line}")
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
                outside = "  (outside call)" if call.outside_call else ""
                click.echo(f"    {call.gene} {what}  {call.phenotype or '-'}{outside}")
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


@pgx_group.command("record-call")
@click.argument("patient")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--date",
    "result_date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The date of the result (YYYY-MM-DD), shown with the call; none: not stated.",
)
@_store_option
@_json_option
def pgx_record_call_command(
    patient: str, path: Path, result_date: datetime | None, store_url: str, as_json: bool
) -> None:
    """Store the calls of outside-call file PATH (PharmCAT format) for PATIENT.

    Each gene's call becomes a Genotype fact of the patient (source medtwin:pgx-outside-call,
    source id outside-call/GENE, the file's line kept verbatim): every later 'pgx report' and
    'pgx call --patient' uses it, overriding medtwin's call for that gene. Recording a gene
    again with a different content makes a new version of its fact (the old one stays in the
    record's history); recording the same file again changes nothing.
    """
    from medtwin.ingest.base import IngestError
    from medtwin.pharmacology.pgx.outside import outside_call_facts, outside_gene_call

    calls = _read_outside(path)
    if not calls:
        raise IngestError(f"{path}: no outside call in the file (only comments or blank lines)")
    store = _open(store_url)
    try:
        pid = store.resolve_patient(patient)
        summary = store.patient(pid)
        if not summary.identifiers:
            raise IngestError(f"patient {patient}: has no identifier to file the calls under")
        when = result_date.replace(tzinfo=UTC) if result_date is not None else None
        facts = outside_call_facts(calls, subject=summary.identifiers[0], result_date=when)
        result = store.append_facts(facts, source=facts[0].source)
    finally:
        store.close()
    gene_calls = [outside_gene_call(c) for c in calls]
    if as_json:
        _print_json(
            {
                "patient_id": pid,
                "file": str(path),
                "counts": result.as_dict(),
                "calls": [c.to_dict() for c in gene_calls],
            }
        )
        return
    counts = ", ".join(f"{n} {what}" for what, n in result.as_dict().items() if n)
    click.echo(f"Patient {pid}: {len(calls)} outside calls from {path} ({counts})")
    for call in gene_calls:
        for line in _call_line(call):
            click.echo(f"  {line}")
