"""``medtwin twin fit|show`` and ``medtwin whatif``: a patient's calibrated twin, and what-if.

A part of the ``medtwin`` command (:mod:`medtwin.cli` imports it, and it registers itself on
:func:`medtwin.cli.main`). The machinery lives in :mod:`medtwin.twin`; these commands read
options, call it and print.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from medtwin.cli import DAYS, HOURS, Positive, _json_option, _open, _print_json, _store_option, main
from medtwin.cli_model import _model, sbml_options

__all__ = ["forecast_command", "twin_group", "whatif_command"]


def _fail(exc: Exception) -> None:
    click.echo(f"medtwin: error: {exc}", err=True)
    raise click.exceptions.Exit(1)


def _resolve(model_name: str, sbml: dict[str, Any]) -> Any:
    """The model of ``--model`` (a registered name, or an SBML file with its options)."""
    return _model(
        model_name,
        sbml.get("time_unit"),
        tuple(sbml.get("doses", ())),
        tuple(sbml.get("units_per_mg", ())),
        sbml.get("priors"),
        tuple(sbml.get("loinc", ())),
        tuple(sbml.get("units", ())),
    )


def _errors() -> tuple[type[Exception], ...]:
    from medtwin.model.base import ModelError
    from medtwin.store.base import StoreError

    return (ModelError, StoreError, LookupError)


@main.group("twin")
def twin_group() -> None:
    """A patient's twin: fit the model to their own data, show what is stored."""


def _until(text: str | None) -> Any:
    """``--until``: a date means to the end of that day (UTC); a time is taken as given."""
    if text is None:
        return None
    import datetime as dt

    from medtwin.cli import _parse_time

    if len(text) == 10:
        try:
            day = dt.date.fromisoformat(text)
        except ValueError as exc:
            raise click.BadParameter(
                f"{text!r} is not a date YYYY-MM-DD", param_hint="--until"
            ) from exc
        return dt.datetime.combine(day, dt.time(23, 59, 59, 999999), dt.UTC)
    return _parse_time(text, "--until")


@twin_group.command("fit")
@click.argument("patient")
@_store_option
@click.option("--model", "model_name", default="uva_padova_2008", show_default=True)
@click.option(
    "--days",
    default=None,
    type=DAYS,
    help="Fit to the last N days of data (default: the model's: 7 for glucose, 3650 for body "
    "weight).",
)
@click.option(
    "--until",
    default=None,
    metavar="WHEN",
    help="Fit the data up to this date (YYYY-MM-DD: to its end, UTC) or time (ISO 8601), "
    "e.g. the period before a change of treatment (default: up to the latest reading).",
)
@click.option(
    "--starts",
    default=None,
    type=click.IntRange(min=1),
    help="Optimiser starts (default: the model's).",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the multi-start draws.")
@click.option("--no-save", is_flag=True, help="Fit and print, but do not keep it in the store.")
@sbml_options
@_json_option
def twin_fit_command(
    patient: str,
    store_url: str,
    model_name: str,
    days: float | None,
    until: str | None,
    starts: int | None,
    seed: int,
    no_save: bool,
    as_json: bool,
    **sbml: Any,
) -> None:
    """Fit PATIENT's model parameters (MAP with population priors, and uncertainty).

    Glucose models (uva_padova_2008) fit CGM with the recorded insulin and carbohydrates;
    hall_2011_body_weight fits the weight history (LOINC 29463-7) with sex, age and height from
    the record, and reports the habitual energy intake it implies; cardiovascular_ursino fits
    resting blood pressure and heart rate. An SBML file (--model FILE.xml) fits the parameters
    its --priors give, to the readings --loinc names, with the doses --dose reads from the
    record's administrations.
    """
    from medtwin.twin.calibrate import fit_spec
    from medtwin.twin.twin import Twin

    end = _until(until)
    store = _open(store_url)
    try:
        model = _resolve(model_name, sbml)
        spec = fit_spec(model)
        window = spec.window_days if days is None else days
        twin = Twin.from_store(store, patient, model=model, days=window, end=end, load=False)
        options: dict[str, Any] = {"seed": seed}
        if starts is not None:
            options["starts"] = starts
        cal = twin.fit(**options)
        twin_id = None if no_save else twin.save(store)
    except _errors() as exc:
        _fail(exc)
        return
    finally:
        store.close()
    data = cal.to_dict()
    if as_json:
        _print_json({"twin": twin_id, "patient": twin.data.patient, **data})
        return
    click.echo(
        f"{twin.model.name} {twin.model.version} fitted to {twin.data.patient}: "
        f"{len(twin.data.fact_ids)} facts over {twin.data.span_min / 1440:.1f} days"
        + ("" if twin_id is None else f" (twin #{twin_id})")
    )
    import math

    for name, value in cal.values.items():
        sd = cal.log_sd[name]
        lo, hi = value * math.exp(-1.645 * sd), value * math.exp(1.645 * sd)
        click.echo(f"  {name} = {value:.4g}  (90% interval {lo:.4g} to {hi:.4g})")
    if spec.describe is not None:
        for line in spec.describe(cal):
            click.echo(f"  {line}")
    bounds = int(cal.provenance.get("censored_readings", 0))
    if bounds:
        click.echo(
            f"  {bounds} reading{'s were bounds' if bounds > 1 else ' was a bound'} (a sensor's "
            "LOW or HIGH, '<40' or '>400'): fitted as beyond the bound, not at it"
        )
    for line in twin.data.skipped[:3]:
        click.echo(f"  not used: {line}")
    if len(twin.data.skipped) > 3:
        click.echo(f"  not used: {len(twin.data.skipped) - 3} more (see --json)")
    d = cal.diagnostics
    click.echo(
        f"  residual SD {cal.residual_sd:.1f}, base {d.get('base')}, "
        f"{d.get('agreeing_starts')}/{d.get('starts')} starts agree, "
        f"{'converged' if d.get('converged') else 'NOT converged'}"
    )


@twin_group.command("show")
@click.argument("patient")
@_store_option
@click.option("--model", "model_name", default=None, help="Only twins of this model.")
@_json_option
def twin_show_command(patient: str, store_url: str, model_name: str | None, as_json: bool) -> None:
    """List PATIENT's fitted twins, newest first."""
    store = _open(store_url)
    try:
        pid = store.resolve_patient(patient)
        rows = store.twins(pid, model=model_name)
    except _errors() as exc:
        _fail(exc)
        return
    finally:
        store.close()
    if as_json:
        _print_json(
            [
                {
                    "id": t.id,
                    "model": t.model,
                    "version": t.model_version,
                    "created_at": t.created_at.isoformat(),
                    "created_by": t.created_by,
                    "data_start": t.data_start.isoformat() if t.data_start else None,
                    "data_end": t.data_end.isoformat() if t.data_end else None,
                    "facts_used": t.facts_used,
                    "calibration": t.calibration,
                }
                for t in rows
            ]
        )
        return
    if not rows:
        click.echo(f"no fitted twins for {patient} (run 'medtwin twin fit {patient}')")
        return
    for t in rows:
        window = (
            f"{t.data_start:%Y-%m-%d %H:%M} to {t.data_end:%Y-%m-%d %H:%M}"
            if t.data_start and t.data_end
            else "?"
        )
        click.echo(
            f"#{t.id} {t.model} {t.model_version}  fitted {t.created_at:%Y-%m-%d %H:%M} by "
            f"{t.created_by}  data {window}  ({t.facts_used} facts)"
        )
        provenance = t.calibration.get("provenance", {}) if isinstance(t.calibration, dict) else {}
        for line in provenance.get("context", ()):
            click.echo(f"    {line}")


@twin_group.command("basal")
@click.argument("patient")
@_store_option
@click.option(
    "--profile",
    required=True,
    help="The pump's basal program, 'HH:MM=U/h,...' from 00:00, e.g. '00:00=0.8,06:00=1.1'.",
)
@click.option("--since", required=True, help="First day it ran (YYYY-MM-DD, local).")
@click.option("--until", "until_day", required=True, help="Last day it ran (YYYY-MM-DD, local).")
@click.option("--tz", default="UTC", show_default=True, help="The patient's time zone.")
def twin_basal_command(
    patient: str, store_url: str, profile: str, since: str, until_day: str, tz: str
) -> None:
    """Record PATIENT's pump basal program over days, as the basal rates a glucose twin reads.

    For a pump user whose CGM export (Dexcom Clarity, LibreView) has the boluses but not the
    basal: the program's rates are written day by day as programmed (not delivered: temporary
    basals and suspensions are not in it). Recording a changed program for the same days
    corrects the rates.
    """
    import datetime as dt

    from medtwin.record.time import get_zone
    from medtwin.twin.basal import basal_profile_facts, parse_basal_profile
    from medtwin.twin.data import DataError

    store = _open(store_url)
    try:
        try:
            first, last = dt.date.fromisoformat(since), dt.date.fromisoformat(until_day)
        except ValueError as exc:
            raise DataError(f"--since / --until: a date YYYY-MM-DD: {exc}") from None
        segments = parse_basal_profile(profile)
        pid = store.resolve_patient(patient)
        who = store.patient(pid).identifiers
        if not who:
            raise DataError(f"patient {patient}: no identifier to record the rates under")
        facts = basal_profile_facts(who[0], segments, first, last, get_zone(tz))
        result = store.append_facts(facts, source="medtwin:basal-profile")
    except _errors() as exc:  # DataError is a ModelError
        _fail(exc)
        return
    finally:
        store.close()
    daily = sum(
        rate * ((segments[i + 1][0] if i + 1 < len(segments) else 1440) - minute) / 60.0
        for i, (minute, rate) in enumerate(segments)
    )
    click.echo(
        f"{pid}: basal program of {len(segments)} rates ({daily:.2f} U a day) recorded from "
        f"{first} to {last} ({tz}): {result.inserted} rates new, {result.new_versions} corrected, "
        f"{result.unchanged} unchanged"
    )


@twin_group.command("events")
@click.argument("patient")
@_store_option
@click.option("--model", "model_name", default="uva_padova_2008", show_default=True)
@click.option(
    "--hours", default=24.0, type=HOURS, show_default=True, help="The last N hours of data."
)
@sbml_options
def twin_events_command(
    patient: str, store_url: str, model_name: str, hours: float, **sbml: Any
) -> None:
    """Print what was recorded over PATIENT's last N hours as a scenario file (JSON).

    Edit it (a smaller dinner, a bigger bolus) and pass it back with
    'medtwin whatif PATIENT --scenario FILE --mode replace --hours N'.
    """
    from medtwin.twin.twin import Twin

    store = _open(store_url)
    try:
        twin = Twin.from_store(
            store, patient, model=_resolve(model_name, sbml), days=hours / 24.0 + 1.0
        )
    except _errors() as exc:
        _fail(exc)
        return
    finally:
        store.close()
    span = twin.data.span_min
    t0 = max(0.0, span - hours * 60.0)
    _print_json({"events": twin.recorded(t0, span)})


@main.command("forecast")
@click.argument("patient")
@_store_option
@click.option("--model", "model_name", default="uva_padova_2008", show_default=True)
@click.option(
    "--hours", default=2.0, type=HOURS, show_default=True, help="Forecast horizon, hours."
)
@click.option(
    "--days",
    "horizon_days",
    default=None,
    type=DAYS,
    help="Forecast horizon in days (instead of --hours; e.g. 180 for a body-weight twin).",
)
@click.option(
    "--scenario",
    "scenario_path",
    default=None,
    help="Planned events (JSON), times in minutes from the latest reading.",
)
@click.option(
    "--assimilate-hours",
    default=6.0,
    type=Positive("hours", zero=True),
    show_default=True,
    help="Readings of the last N hours are absorbed by the particle filter.",
)
@click.option("--particles", default=500, type=click.IntRange(min=1), show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--unannounced/--no-unannounced",
    default=True,
    show_default=True,
    help="Let each particle eat meals nobody records, at the rate and sizes the calibration "
    "found (docs/models/uva-padova.md); --no-unannounced forecasts the recorded and planned "
    "events only.",
)
@sbml_options
@_json_option
def forecast_command(
    patient: str,
    store_url: str,
    model_name: str,
    hours: float,
    horizon_days: float | None,
    scenario_path: str | None,
    assimilate_hours: float,
    particles: int,
    seed: int,
    unannounced: bool,
    as_json: bool,
    **sbml: Any,
) -> None:
    """Forecast PATIENT's next hours from their fitted twin, with 90% bands of the readings."""
    from medtwin.model.events import load_scenario
    from medtwin.twin.twin import Twin

    if horizon_days is not None:
        hours = horizon_days * 24.0
    store = _open(store_url)
    try:
        days = max(1.0, (assimilate_hours + 24.0) / 24.0)
        twin = Twin.from_store(store, patient, model=_resolve(model_name, sbml), days=days)
        if twin.calibration is None:
            raise LookupError(
                f"{patient} has no fitted {model_name} twin: run 'medtwin twin fit {patient}'"
            )
        scenario = None if scenario_path is None else load_scenario(scenario_path)
        forecast = twin.forecast(
            hours,
            scenario=scenario,
            assimilate_hours=assimilate_hours,
            n=particles,
            seed=seed,
            unannounced=unannounced,
        )
    except _errors() as exc:
        _fail(exc)
        return
    finally:
        store.close()
    start = twin.data.start
    if as_json:
        out = forecast.to_dict()
        out["patient"] = twin.data.patient
        out["twin"] = twin.stored_id
        out["start"] = None if start is None else start.isoformat()
        _print_json(out)
        return
    import datetime as dt

    cal = twin.calibration
    obs = cal.observable if cal.observable in forecast.bands else next(iter(forecast.bands))
    lo, mid, hi = (forecast.band(obs, q) for q in (0.05, 0.5, 0.95))
    click.echo(f"{obs} forecast for {patient} ({particles} particles; median [5th to 95th]):")
    step = max(1, len(forecast.times_min) // 12)
    per_day = twin.model.time_unit == "d"
    last = len(forecast.times_min) - 1
    for i in sorted({*range(0, last + 1, step), last}):
        t = float(forecast.times_min[i])
        when = "" if start is None else f"{start + dt.timedelta(minutes=t):%Y-%m-%d %H:%M}  "
        ahead = t - forecast.times_min[0]
        offset = f"+{ahead / 1440.0:5.0f} d" if per_day else f"+{ahead:5.0f} min"
        click.echo(f"  {when}{offset}  {mid[i]:6.1f} [{lo[i]:.1f} to {hi[i]:.1f}]")


OLD_DATA_DAYS = 30
"""A what-if ahead from data that end longer ago than this says so: the twin describes the
patient then (a medtwin choice: a month, within which resting state and weight change little)."""


def _old_data_note(data_end: dt.datetime | None) -> str | None:
    """What a what-if ahead from data that end more than :data:`OLD_DATA_DAYS` ago says."""
    if data_end is None:
        return None
    days = (dt.datetime.now(dt.UTC) - data_end).total_seconds() / 86400.0
    if days <= OLD_DATA_DAYS:
        return None
    return (
        f"the twin's data end on {data_end:%Y-%m-%d}, {days:.0f} days ago: what it says is of "
        "the patient then; fit it again after new readings ('medtwin twin fit')"
    )


@main.command("whatif")
@click.argument("patient")
@_store_option
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    required=True,
    help='Scenario JSON file ({"events": [...]}); repeat for several arms (named by file).',
)
@click.option("--model", "model_name", default="uva_padova_2008", show_default=True)
@click.option(
    "--hours",
    default=24.0,
    type=HOURS,
    show_default=True,
    help="The period: the last N hours of the twin's data; event times count from its start.",
)
@click.option(
    "--days",
    "period_days",
    default=None,
    type=DAYS,
    help="The period in days (instead of --hours; e.g. 180 ahead for a body-weight twin).",
)
@click.option(
    "--ahead",
    is_flag=True,
    help="Ask about the next N hours/days from the latest reading (the baseline: going on as "
    "now) instead of the last ones of the data; scenario times count from now.",
)
@click.option(
    "--mode",
    type=click.Choice(["add", "replace"]),
    default="add",
    show_default=True,
    help="add: the scenario's events are added to what was recorded; replace: they replace it.",
)
@click.option(
    "--members",
    default=200,
    type=click.IntRange(min=1),
    show_default=True,
    help="Posterior ensemble size.",
)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--plot",
    "plot_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the comparison plot here (self-contained HTML).",
)
@sbml_options
@_json_option
def whatif_command(
    patient: str,
    store_url: str,
    scenarios: tuple[str, ...],
    model_name: str,
    hours: float,
    period_days: float | None,
    ahead: bool,
    mode: str,
    members: int,
    seed: int,
    plot_path: Path | None,
    as_json: bool,
    **sbml: Any,
) -> None:
    """What would PATIENT's last day have looked like with other meals, doses or activity?

    Uses the patient's latest fitted twin ('medtwin twin fit'); prints the comparison table
    (median [5th to 95th percentile] over the posterior ensemble, and the paired difference
    from what was recorded) and writes a plot with --plot.
    """
    from medtwin.model.events import load_scenario
    from medtwin.twin.twin import Twin

    if period_days is not None:
        hours = period_days * 24.0
    store = _open(store_url)
    try:
        days = 2.0 if ahead else hours / 24.0 + 1.0
        twin = Twin.from_store(store, patient, model=_resolve(model_name, sbml), days=days)
        if twin.calibration is None:
            raise LookupError(
                f"{patient} has no fitted {model_name} twin: run 'medtwin twin fit {patient}'"
            )
        arms: dict[str, Any] = {}
        for path in scenarios:
            name = Path(path).stem
            if name in arms or name == "recorded":
                name = f"{name}#{len(arms) + 1}"
            arms[name] = load_scenario(path)
        comparison = twin.whatif(arms, hours=hours, mode=mode, n=members, seed=seed, ahead=ahead)
        data_end = (
            None
            if twin.data.start is None
            else twin.data.start + dt.timedelta(minutes=twin.data.span_min)
        )
    except _errors() as exc:
        _fail(exc)
        return
    finally:
        store.close()
    if plot_path is not None:
        comparison.write_html(plot_path)
    old = _old_data_note(data_end) if ahead else None
    if as_json:
        _print_json(
            comparison.to_dict()
            | {
                "plot": None if plot_path is None else str(plot_path),
                "data_end": None if data_end is None else data_end.isoformat(),
                "note": old,
            }
        )
        return
    from rich.console import Console
    from rich.table import Table

    period = f"{hours / 24.0:g} d" if period_days is not None else f"{hours:g} h"
    when = ""
    if data_end is not None:
        when = f" {'from' if ahead else 'to'} {data_end:%Y-%m-%d %H:%M} UTC (the end of its data)"
    table = Table(
        title=f"What-if for {patient}: {comparison.members} posterior members, "
        f"{'next' if ahead else 'last'} {period}{when}"
    )
    rows = comparison.rows()
    for name in rows[0]:
        table.add_column(name)
    for row in rows[1:]:
        table.add_row(*row)
    import sys

    Console(width=None if sys.stdout.isatty() else 200).print(table)
    if old is not None:
        click.echo(f"note: {old}")
    if plot_path is not None:
        click.echo(f"plot: {plot_path}")
