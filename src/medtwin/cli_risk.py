"""``medtwin risk PATIENT``: every applicable score from the record, with each input's provenance.

A part of the ``medtwin`` command (:mod:`medtwin.cli` imports it, and it registers itself on
:func:`medtwin.cli.main`). Deriving inputs lives in :mod:`medtwin.risk.inputs`, computing in
:mod:`medtwin.risk.from_record`, the what-if in :mod:`medtwin.twin.prevention`; this module reads
options, calls them and prints.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from medtwin.cli import _json_option, _open, _print_json, _store_option, main

if TYPE_CHECKING:
    from medtwin.twin.prevention import Change

__all__ = ["risk_command"]


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _parse_date(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not a date YYYY-MM-DD", param_hint="--date") from exc
    return dt.datetime.combine(day, dt.time(23, 59, 59), dt.UTC)


def _whatif_options(whatif: str | None, horizon_text: str) -> tuple[list[Change], float]:
    """The --whatif changes and the --horizon in days; a bad one is a usage error naming it."""
    from medtwin.twin.prevention import PreventionError, parse_changes, parse_horizon

    try:
        horizon_days = parse_horizon(horizon_text)
    except PreventionError as exc:
        raise click.BadParameter(str(exc), param_hint="--horizon") from exc
    if not whatif:
        return [], horizon_days
    try:
        return list(parse_changes(whatif)), horizon_days
    except PreventionError as exc:
        raise click.BadParameter(str(exc), param_hint="--whatif") from exc


@main.command("risk")
@click.argument("patient")
@click.option(
    "--date", "date_text", default=None, help="Evaluation date YYYY-MM-DD (default today)."
)
@click.option(
    "--score",
    "scores",
    multiple=True,
    help="Only this score (repeatable); default: every registered score whose inputs can be read "
    "from a record.",
)
@click.option(
    "--whatif",
    default=None,
    help="Comma-separated changes to try: quit_smoking, statin, sbp=-10 (mm Hg), bmi=-2 "
    "(kg/m2), weight=-5kg, hba1c=-0.5 (%), diet=-500kcal (daily intake), activity=+20% "
    "(physical-activity expenditure). Each is applied alone and ranked by absolute risk "
    "reduction, with the inputs it changed and why; diet and activity run the Hall 2011 "
    "body-weight model to --horizon, and a weight loss lowers systolic pressure and HbA1c by "
    "published effect sizes, with their 95% CI as a range (docs/models/prevention.md).",
)
@click.option(
    "--horizon",
    "horizon_text",
    default="12m",
    show_default=True,
    help="How long a --whatif diet or activity change is simulated: e.g. 12m, 1y, 26w, 180d.",
)
@click.option(
    "--no-save", is_flag=True, help="Do not store the results as facts (source medtwin:risk)."
)
@_store_option
@_json_option
def risk_command(
    patient: str,
    date_text: str | None,
    scores: tuple[str, ...],
    whatif: str | None,
    horizon_text: str,
    no_save: bool,
    store_url: str,
    as_json: bool,
) -> None:
    """Risk scores for PATIENT from the record, with where each input came from and its age.

    Inputs are the newest facts within their validity window (risk/data/record_inputs.toml);
    a stale or missing input is never defaulted: the score says "cannot compute: missing X".
    Computed results are stored as Observation facts (code system urn:medtwin:score) so that
    the risk has a history.
    """
    from medtwin.risk.from_record import evaluate, store_results

    at = _parse_date(date_text)
    changes, horizon_days = _whatif_options(whatif, horizon_text)
    store = _open(store_url)
    pid = store.resolve_patient(patient)
    report = evaluate(store, pid, at, scores=scores)
    saved = 0
    if not no_save:
        saved = len(store_results(store, report).changed)
    plan = None
    if changes:
        from medtwin.twin.prevention import rank_changes

        plan = rank_changes(report, changes, horizon_days=horizon_days)
    if as_json:
        out = report.to_dict()
        out["stored"] = saved
        if plan is not None:
            from medtwin.twin.prevention import SOURCES

            out["whatif"] = [row.to_dict() for row in plan]
            out["whatif_horizon_days"] = horizon_days
            cited = dict.fromkeys(k for row in plan for k in row.sources)
            out["whatif_sources"] = {k: SOURCES[k] for k in cited}
        _print_json(out)
        return
    summary = store.patient(pid)
    click.echo(f"{summary.name} ({pid}), risk at {report.at.date().isoformat()}")
    click.echo("")
    click.echo("Inputs")
    for name, d in report.inputs.items():
        if d.usable:
            value = _show(d.value)
        elif d.status == "stale":
            value = f"stale ({_show(d.stale_value)})"
        else:
            value = "missing"
        where = d.detail if d.usable else d.reason()
        prov = ""
        if d.provenance and d.provenance[0].date:
            p = d.provenance[0]
            prov = f" [{p.source}:{p.source_id}, {p.date}, {p.age_days} d old]"
            if len(d.provenance) > 1:
                prov += f" +{len(d.provenance) - 1} more"
        click.echo(f"  {name:<24} {value:<14} {where}{prov}")
    click.echo("")
    click.echo("Scores")
    for s in report.scores:
        if s.status == "computed":
            unit = f" {s.unit}" if s.unit and s.unit != "points" else (" points" if s.unit else "")
            band = f"  band {s.band}" if s.band else ""
            click.echo(f"  {s.name:<24} {_show(s.value)}{unit}{band}")
            if s.message:
                click.echo(f"  {'':<24} ({s.message})")
        else:
            click.echo(f"  {s.name:<24} {s.message}")
    if report.not_derivable:
        click.echo("")
        click.echo(
            "Not read from a record (need other inputs; use 'medtwin score NAME'): "
            + ", ".join(sorted(report.not_derivable))
        )
    if plan is not None:
        from medtwin.twin.prevention import format_plan

        click.echo("")
        for line in format_plan(plan):
            click.echo(line)
    if saved:
        click.echo("")
        click.echo(f"{saved} result(s) stored (source medtwin:risk)")
