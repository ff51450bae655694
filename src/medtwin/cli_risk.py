"""``medtwin risk PATIENT``: every applicable score from the record, with each input's provenance.

A part of the ``medtwin`` command (:mod:`medtwin.cli` imports it, and it registers itself on
:func:`medtwin.cli.main`). Deriving inputs lives in :mod:`medtwin.risk.inputs`, computing in
:mod:`medtwin.risk.from_record`, risk over time (``--history``) in :mod:`medtwin.risk.history`,
the what-if in :mod:`medtwin.twin.prevention`; this module reads options, calls them and prints.
"""

from __future__ import annotations

import collections
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medtwin.cli import Failure, _json_option, _open, _print_json, _store_option, main

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from medtwin.risk.from_record import ScoreOutcome
    from medtwin.twin.prevention import Change

__all__ = ["risk_command", "score_lines"]


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _parse_date(text: str | None, option: str = "--date") -> dt.datetime | None:
    if text is None:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not a date YYYY-MM-DD", param_hint=option) from exc
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
    "--set",
    "given_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Use this value for an input instead of the record's (repeatable): what the record "
    "cannot hold or does not yet (townsend_score=3.2, smoker=no, ethnicity=indian). Shown as "
    "given, with what the record said; inputs computed from it follow (the cholesterol ratio, "
    "eGFR, QRISK3's smoking group); a stored result names it.",
)
@click.option(
    "--no-save", is_flag=True, help="Do not store the results as facts (source medtwin:risk)."
)
@click.option(
    "--history",
    is_flag=True,
    help="Risk over time: every score at a series of dates across the record (inputs as of "
    "each date), stored as facts; see --every, --from, --to, --plot.",
)
@click.option(
    "--every",
    default="1y",
    show_default=True,
    help="With --history: the step between dates (y, m, w or d: 1y, 6m, 30d).",
)
@click.option(
    "--from",
    "from_text",
    default=None,
    help="With --history: first date YYYY-MM-DD (default the record's first).",
)
@click.option(
    "--to",
    "to_text",
    default=None,
    help="With --history: last date YYYY-MM-DD (default the record's last).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --history: write the trajectory as a self-contained HTML plot (plotly).",
)
@_store_option
@_json_option
def risk_command(
    patient: str,
    date_text: str | None,
    scores: tuple[str, ...],
    whatif: str | None,
    horizon_text: str,
    given_pairs: tuple[str, ...],
    no_save: bool,
    history: bool,
    every: str,
    from_text: str | None,
    to_text: str | None,
    plot_path: Path | None,
    store_url: str,
    as_json: bool,
) -> None:
    """Risk scores for PATIENT from the record, with where each input came from and its age.

    Inputs are the newest facts within their validity window (risk/data/record_inputs.toml);
    a stale or missing input is never defaulted: the score says "cannot compute: missing X".
    Computed results are stored as Observation facts (code system urn:medtwin:score; FHIR
    export writes them as RiskAssessment) so that the risk has a history. --history evaluates
    every score at each date from --from to --to, every --every, in one vectorised pass.
    """
    if history and given_pairs:
        raise click.UsageError("--set gives inputs for one date: not with --history")
    if history:
        _history(
            patient, scores, no_save, every, from_text, to_text, plot_path, store_url, as_json,
            date_text=date_text, whatif=whatif,
        )  # fmt: skip
        return
    if plot_path is not None or from_text or to_text or every != "1y":
        raise click.UsageError("--every, --from, --to and --plot go with --history")
    from medtwin.risk.from_record import evaluate, parse_given, store_results

    at = _parse_date(date_text)
    changes, horizon_days = _whatif_options(whatif, horizon_text)
    try:
        given = parse_given(given_pairs)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from exc
    store = _open(store_url)
    pid = store.resolve_patient(patient)
    report = evaluate(store, pid, at, scores=scores, given=given)
    saved = 0
    if not no_save:
        saved = len(store_results(store, report).changed)
    plan = None
    if changes:
        from medtwin.twin.prevention import rank_changes

        plan = rank_changes(report, changes, horizon_days=horizon_days)
    from medtwin.risk.from_record import stale_note

    if as_json:
        out = report.to_dict()
        out["stored"] = saved
        out["stale_note"] = stale_note(store, report)
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
    shown = report.inputs
    if scores:  # only what the named scores rest on (their inputs and who they apply to)
        used = {name for s in report.scores for name in s.inputs}
        shown = {name: d for name, d in report.inputs.items() if name in used}
    click.echo("Inputs")
    width = max(24, *(len(name) for name in shown))
    for name, d in shown.items():
        if d.usable:
            value = _show(d.value)
        elif d.status == "stale":
            value = f"stale ({_show(d.stale_value)})"
        elif d.status == "absent":  # no value to have (no diabetes: no age at its diagnosis)
            value = "n/a"
        else:
            value = "missing"
        where = d.detail if d.usable else d.reason()
        prov = ""
        if d.provenance and d.provenance[0].date:
            p = d.provenance[0]
            prov = f" [{p.source}:{p.source_id}, {p.date}, {p.age_days} d old]"
            if len(d.provenance) > 1:
                prov += f" +{len(d.provenance) - 1} more"
        click.echo(f"  {name:<{width}} {value:<14} {where}{prov}")
    if len(shown) < len(report.inputs):
        click.echo(
            f"  ({len(report.inputs) - len(shown)} more inputs read for other scores: "
            "--json lists every input)"
        )
    click.echo("")
    click.echo("Scores")
    for line in score_lines(report.scores):
        click.echo(line)
    note = stale_note(store, report)
    if note:
        click.echo("")
        click.echo(f"Note: {note}")
    _echo_not_derivable(report.not_derivable)
    if plan is not None:
        from medtwin.twin.prevention import format_plan

        click.echo("")
        for line in format_plan(plan):
            click.echo(line)
    if saved:
        click.echo("")
        click.echo(f"{saved} result(s) stored (source medtwin:risk)")


def score_lines(outcomes: Sequence[ScoreOutcome]) -> Iterator[str]:
    """The Scores section: one entry per score; scores refused or not computable for the same
    reason (three SCORE2 models outside Europe, PREVENT's 30-year outcomes past 59) share one,
    their names listed."""

    def plain(o: ScoreOutcome) -> bool:
        return o.status in ("refused", "missing") and o.untreated is None

    shared = collections.Counter(o.message for o in outcomes if plain(o))
    said: set[str] = set()
    for o in outcomes:
        if plain(o) and shared[o.message] > 1:
            if o.message not in said:
                said.add(o.message)
                yield "  " + ", ".join(
                    x.name for x in outcomes if plain(x) and x.message == o.message
                )
                yield f"  {'':<24} {o.message}"
            continue
        yield from _outcome_lines(o)


def _outcome_lines(s: ScoreOutcome) -> Iterator[str]:
    """One score's entry: value, unit and band (or why none), notes, its interval over
    measurement variation, a statin user's untreated estimate."""
    if s.status not in ("computed", "range"):
        yield f"  {s.name:<24} {s.message}"
    else:
        unit = f" {s.unit}" if s.unit and s.unit != "points" else (" points" if s.unit else "")
        if unit == " points" and s.value == 1:
            unit = " point"
        band = f"  band {s.band}" if s.band else ""
        said = _show(s.value) if s.status == "computed" else f"{_show(s.low)} to {_show(s.high)}"
        yield f"  {s.name:<24} {said}{unit}{band}"
        if s.message:
            yield f"  {'':<24} ({s.message})"
        if s.variation is not None:
            v = s.variation
            bands = f", bands {v.band_low} to {v.band_high}" if v.band_low != v.band_high else ""
            held = f"; not varied: {'; '.join(v.not_varied)}" if v.not_varied else ""
            yield (
                f"  {'':<24} {100 * v.level:.0f} % over day-to-day variation: "
                f"{_show(v.low)}-{_show(v.high)}{unit}{bands} ({'; '.join(v.varied)}{held})"
            )
    if s.untreated is not None and s.untreated_at is not None:
        u = s.untreated
        said = u.message
        if u.status in ("computed", "range"):
            value = _show(u.value) if u.status == "computed" else f"{_show(u.low)}-{_show(u.high)}"
            said = f"{value} {u.unit or ''}".rstrip() + (f"  band {u.band}" if u.band else "")
        if u.variation is not None:
            said += f" ({100 * u.variation.level:.0f} % over day-to-day variation "
            said += f"{_show(u.variation.low)}-{_show(u.variation.high)} %)"
        yield f"  {'':<24} before the statin (the record of {s.untreated_at.isoformat()}): {said}"


def _cell(outcome: ScoreOutcome, *, interval: bool = False) -> str:
    pct = "%" if outcome.unit == "%" else ""
    if outcome.value is not None:
        v = outcome.variation
        if interval and v is not None:
            return f"{_show(outcome.value)}{pct} [{_show(v.low)}-{_show(v.high)}]"
        return _show(outcome.value) + pct
    if outcome.status == "range":
        return f"{_show(outcome.low)}-{_show(outcome.high)}{pct}"
    return "cannot compute" if outcome.status == "missing" else "not applicable"


def _history(
    patient: str,
    scores: tuple[str, ...],
    no_save: bool,
    every: str,
    from_text: str | None,
    to_text: str | None,
    plot_path: Path | None,
    store_url: str,
    as_json: bool,
    *,
    date_text: str | None,
    whatif: str | None,
) -> None:
    """``medtwin risk PATIENT --history``: the table of scores over dates (risk.history)."""
    from medtwin.risk.history import HistoryError, history_facts, parse_every, risk_history

    if date_text or whatif:
        raise click.UsageError("--history takes --from/--to, not --date or --whatif")
    try:
        parse_every(every)
    except HistoryError as exc:
        raise click.BadParameter(str(exc), param_hint="--every") from exc
    start = _parse_date(from_text, "--from")
    end = _parse_date(to_text, "--to")
    store = _open(store_url)
    pid = store.resolve_patient(patient)
    try:
        table = risk_history(
            store, pid, every=every, start=start.date() if start else None,
            end=end.date() if end else None, scores=scores,
        )  # fmt: skip
        if plot_path is not None:
            summary = store.patient(pid)
            table.write_html(plot_path, title=f"Risk over time: {summary.name} ({pid})")
    except HistoryError as exc:
        raise Failure(str(exc)) from exc
    saved = 0
    if not no_save:
        from medtwin.risk.from_record import RISK_SOURCE

        facts = history_facts(store, table)
        saved = len(store.append_facts(facts, source=RISK_SOURCE).changed)
    if as_json:
        out = table.to_dict()
        out.update(patient=pid, every=every, stored=saved)
        if plot_path is not None:
            out["plot"] = str(plot_path)
        _print_json(out)
        return
    summary = store.patient(pid)
    days = [at.date().isoformat() for _, at in table.points]
    click.echo(f"{summary.name} ({pid}), risk every {every} from {days[0]} to {days[-1]}")
    click.echo("")
    shown = table.answered()
    columns = [table.column(name) for name in shown]
    texts = [[_cell(o, interval=True) for o in column] for column in columns]
    widths = [max(14, len(name), *map(len, t)) for name, t in zip(shown, texts, strict=True)]
    click.echo(
        "  ".join([f"{'date':<10}", *(f"{n:>{w}}" for n, w in zip(shown, widths, strict=True))])
    )
    for i, day in enumerate(days):
        cells = [t[i] for t in texts]
        click.echo("  ".join([day, *(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))]))
    levels = {o.variation.level for column in columns for o in column if o.variation}
    if levels:
        click.echo(
            f"[low-high]: the central {100 * max(levels):.0f} % of the risk over the day-to-day "
            "variation of its measured inputs (cholesterol, blood pressure ...; see --json)"
        )
    never = [name for name in table.scores if name not in shown]
    if never:
        click.echo("")
        click.echo("No value at any date (reason at the last date):")
        for name in never:
            click.echo(f"  {name:<24} {table.column(name)[-1].message}")
    _echo_not_derivable(table.not_derivable)
    if plot_path is not None:
        click.echo("")
        click.echo(f"plot written to {plot_path}")
    if saved:
        click.echo(f"{saved} result(s) stored (source medtwin:risk)")


def _echo_not_derivable(names: Iterable[str]) -> None:
    """The scores whose inputs a record does not give (NEWS2's respiration rate ...)."""
    names = sorted(names)
    if names:
        click.echo("")
        click.echo(
            "Not read from a record (need other inputs; use 'medtwin score NAME'): "
            + ", ".join(names)
        )
