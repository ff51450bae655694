"""``medtwin pgx call``: star-allele diplotypes and CPIC phenotypes from a genotype file or the store.

A part of the ``medtwin`` command (:mod:`medtwin.cli` imports it, and it registers itself on
:func:`medtwin.cli.main`). Reading lives in :mod:`medtwin.ingest.vcf`, calling in
:mod:`medtwin.pharmacology.pgx`; this module reads options, calls them and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from medtwin.cli import _json_option, _open, _print_json, _store_option, main

__all__ = ["pgx_call_command", "pgx_group"]


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
