"""The ``medtwin`` command.

Every read command takes ``--json`` ("print JSON"); inputs are arguments or files.
The store is chosen by ``--store`` or ``MEDTWIN_STORE`` (default ``./medtwin.db``).
Bad input gives one clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from medtwin.cli_live import listen_command, replay_command

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])


def _store_option(func: F) -> F:
    return click.option(
        "--store",
        "store_url",
        envvar="MEDTWIN_STORE",
        default="./medtwin.db",
        show_default=True,
        help="Store URL: a SQLite file path or postgresql://host:port/db (env MEDTWIN_STORE).",
    )(func)


def _json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def _open(store_url: str) -> Any:
    from medtwin.store import open_store

    return open_store(store_url)


def _print_json(value: Any) -> None:
    sys.stdout.write(
        orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    )
    sys.stdout.write("\n")


def _parse_time(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    from medtwin.record.time import InvalidTimeError, parse_fhir_datetime

    try:
        return parse_fhir_datetime(text, require_zone=False).instant
    except InvalidTimeError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from exc


def _birth_date_prefix(text: str | None) -> str | None:
    """``--birth-date``: a date or its year or month, each a real one ("1999-13" is refused)."""
    if text is None:
        return None
    import datetime as dt

    parts = text.split("-")
    try:
        widths = [len(p) for p in parts]
        if widths not in ([4], [4, 2], [4, 2, 2]) or not all(p.isdigit() for p in parts):
            raise ValueError(text)
        dt.date(int(parts[0]), *(int(p) for p in parts[1:]), *([1] * (3 - len(parts))))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a date or its prefix (YYYY, YYYY-MM or YYYY-MM-DD)",
            param_hint="--birth-date",
        ) from None
    return text


MAX_PERIOD_DAYS = 36_525.0
"""The longest period an option may name: 100 years (longer is no patient's record)."""


class Positive(click.ParamType[float, Any]):
    """A positive, finite number; a period (``unit`` ``"hours"`` or ``"days"``) of at most
    :data:`MAX_PERIOD_DAYS`; ``zero``: 0 allowed too (``--assimilate-hours``). ``nan`` and
    ``inf``, which click's float type lets through, are refused."""

    name = "float"

    def __init__(self, unit: str | None = None, *, zero: bool = False) -> None:
        self.unit, self.zero = unit, zero
        self.most = MAX_PERIOD_DAYS * {"hours": 24.0, "days": 1.0}.get(unit or "", math.inf)

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        low = 0.0 if self.zero else math.nextafter(0.0, 1.0)
        if not (math.isfinite(number) and low <= number <= self.most):
            if self.unit is None:
                self.fail(f"{value} is not a {'' if self.zero else 'positive '}number", param, ctx)
            low_text = "0" if self.zero else "above 0"
            self.fail(
                f"{value} is not a number of {self.unit} from {low_text} to {self.most:,.0f} "
                "(100 years)",
                param,
                ctx,
            )
        return number


HOURS, DAYS = Positive("hours"), Positive("days")


class Failure(click.ClickException):
    """A user-facing error of a command, shown as every other one is: ``medtwin: error: ...``
    on standard error, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"medtwin: error: {self.format_message()}", err=True)


def _time_range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until`` as times; refused when the range is empty (since not before
    until), which would otherwise find nothing and say so only by its silence."""
    start, end = _parse_time(since, "--since"), _parse_time(until, "--until")
    if start is not None and end is not None and start >= end:
        raise click.BadParameter(
            f"--since {since} is not before --until {until}", param_hint="--since/--until"
        )
    return start, end


class _Group(click.Group):
    """Turns medtwin's user-facing errors into one line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        from medtwin.ingest.base import IngestError
        from medtwin.monitor.base import MonitorConfigError
        from medtwin.monitor.registry import UnknownMonitorError
        from medtwin.record.time import InvalidTimeError
        from medtwin.risk import ScoreError
        from medtwin.store.base import PatientNotFoundError, StoreError

        try:
            return super().invoke(ctx)
        except (
            IngestError,
            InvalidTimeError,
            PatientNotFoundError,
            StoreError,
            ScoreError,
            MonitorConfigError,
            UnknownMonitorError,
        ) as exc:
            click.echo(f"medtwin: error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_Group)
@click.version_option(package_name="medtwin")
def main() -> None:
    """medtwin: patient digital twins from real data."""


@main.command("import")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@_store_option
@click.option("--tz", default="UTC", show_default=True, help="Zone for naive source timestamps.")
@click.option("--source", default=None, help="Source name for the facts (default per format).")
@click.option(
    "--fhir-server", default=None, help="Import from this FHIR server base URL instead of files."
)
@click.option(
    "--patient",
    default=None,
    help="With --fhir-server: only this patient (id). With files: the device-user id of Open mHealth "
    "data points without header.user_id, of CSV readings without a patient column, of "
    "Dexcom Clarity and LibreView exports, Apple Health export.xml and FIT files, and of WFDB records "
    "(default: the record name).",
)
@click.option(
    "--create-patient",
    is_flag=True,
    help="With --patient and files: when no patient has that device-user id, give it a patient "
    "of its own first (its readings would wait in quarantine otherwise); merge it into the "
    "patient's record later with 'medtwin link PATIENT urn:medtwin:device-user|ID'.",
)
@click.option(
    "--page-size",
    default=100,
    type=click.IntRange(min=1),
    show_default=True,
    help="With --fhir-server: _count per page.",
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    help="With --fhir-server: 'Name: value' HTTP header; repeatable.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes that parse and write FHIR Bundle and NDJSON files (default: the number of "
    "cores, at most 4; 1: this process only).",
)
@_json_option
def import_command(
    paths: tuple[Path, ...],
    store_url: str,
    tz: str,
    source: str | None,
    fhir_server: str | None,
    patient: str | None,
    create_patient: bool,
    page_size: int,
    headers: tuple[str, ...],
    workers: int | None,
    as_json: bool,
) -> None:
    """Import FHIR Bundles / NDJSON, HL7 v2, Open mHealth, CSV readings, Apple Health export.xml, FIT files and WFDB numerics (.hea) (files or folders), or a FHIR server."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from medtwin.ingest import IngestError, discover, import_paths
    from medtwin.record.time import get_zone

    get_zone(tz)
    if bool(paths) == bool(fhir_server):
        raise IngestError("give files or folders to import, or --fhir-server URL (not both)")
    if fhir_server is None and headers:
        raise IngestError("--header goes with --fhir-server")
    if fhir_server is not None and workers is not None:
        raise IngestError("--workers goes with files (a FHIR server is read page by page)")
    if create_patient and (patient is None or fhir_server is not None):
        raise IngestError("--create-patient goes with files and --patient (the device-user id)")
    header_map: dict[str, str] = {}
    for header in headers:
        name, colon, value = header.partition(":")
        if not colon:
            raise IngestError(f"--header {header!r}: expected 'Name: value'")
        header_map[name.strip()] = value.strip()
    store = _open(store_url)
    created = None
    if create_patient:
        assert patient is not None
        from medtwin.ingest import register_device_user

        pid, made = register_device_user(store, patient)
        created = pid if made else None
    files = discover(paths)[0] if paths else []
    console = Console(stderr=True)
    unit = "files" if paths else "pages"
    progress = Progress(
        TextColumn("[bold]importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit + "  {task.fields[resources]} resources"),
        TimeElapsedColumn(),
        console=console,
        disable=as_json or not console.is_terminal,
    )
    seen: set[Path] = set()
    resources = 0
    with progress:
        task = progress.add_task("import", total=len(files) or None, resources=0)

        def on_batch(path: Path, batch: Any) -> None:
            nonlocal resources
            resources += batch.resources_read
            if path not in seen:
                seen.add(path)
                progress.advance(task)
            progress.update(task, resources=resources)

        if fhir_server:
            from medtwin.ingest.fhir_server import import_server

            def on_page(url: str, batch: Any) -> None:
                on_batch(Path(url), batch)

            report = import_server(
                store,
                fhir_server,
                patient=patient,
                source=source,
                tz=tz,
                page_size=page_size,
                headers=header_map or None,
                on_batch=on_page,
            )
        else:
            report = import_paths(
                store,
                paths,
                source=source,
                tz=tz,
                on_batch=on_batch,
                patient=patient,
                workers=workers,
            )
    counts = store.counts()
    store.close()
    if as_json:
        _print_json(
            {
                "files": report.files,
                "skipped": report.skipped,
                **report.counts,
                "patient_registered": created,
                "store": counts,
            }
        )
        return
    c = report.counts
    if created is not None:
        click.echo(
            f"device user {patient!r} had no patient: registered as {created} (merge it into "
            f"the patient's record with 'medtwin link PATIENT \"urn:medtwin:device-user|{patient}\"')"
        )
    click.echo(
        f"{report.files} {unit}, {c.get('resources_read', 0)} resources: "
        f"{c.get('inserted', 0)} facts new, {c.get('new_versions', 0)} new versions, "
        f"{c.get('retracted', 0)} retracted, {c.get('unchanged', 0)} unchanged, "
        f"{c.get('quarantined', 0)} quarantined, {c.get('patients_created', 0)} patients new"
    )
    if c.get("resolved_quarantine"):
        # A Bulk export or a folder of bundles sends resources before what they reference
        # (a Condition before its Encounter): they wait in quarantine and are stored when
        # it arrives, so "quarantined" alone would overstate what was lost.
        click.echo(
            f"{c['resolved_quarantine']} quarantined resources were stored once what they "
            "referenced arrived"
        )
    if c.get("stale"):
        click.echo(
            f"{c['stale']} older versions arrived after newer ones: kept in the history, not current",
            err=True,
        )
    if c.get("missing_samples"):
        click.echo(f"{c['missing_samples']} missing samples skipped (not stored)", err=True)
    not_stored = {k.partition(":")[2]: v for k, v in c.items() if k.startswith("not_stored:")}
    if not_stored:  # a device export's rows medtwin does not keep (alerts, the preamble)
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(not_stored.items()))
        n = sum(not_stored.values())
        click.echo(f"{n} row{'' if n == 1 else 's'} not stored ({kinds})", err=True)
    if report.skipped:
        broken = [p for p in report.skipped if Path(p).is_symlink() and not Path(p).exists()]
        unknown = len(report.skipped) - len(broken)
        if unknown:
            click.echo(f"skipped {unknown} files with unknown extensions", err=True)
        if broken:
            click.echo(
                f"skipped {len(broken)} link(s) to nothing: {', '.join(broken[:3])}"
                + (" ..." if len(broken) > 3 else ""),
                err=True,
            )
    if counts["quarantine_open"]:
        click.echo(
            f"{counts['quarantine_open']} open quarantine entries: see 'medtwin quarantine'",
            err=True,
        )


@main.command("patients")
@_store_option
@click.option("--search", default=None, help="Words to find in names and identifiers.")
@click.option(
    "--birth-date",
    default=None,
    callback=lambda _ctx, _param, value: _birth_date_prefix(value),
    help="Birth date or its prefix (YYYY, YYYY-MM, YYYY-MM-DD).",
)
@click.option("--limit", default=1000, type=click.IntRange(min=1), show_default=True)
@_json_option
def patients_command(
    store_url: str, search: str | None, birth_date: str | None, limit: int, as_json: bool
) -> None:
    """List patients, optionally searching by name, identifier or birth date.

    A patient the record says has died has the date (or "yes") in a "died" column.
    """
    store = _open(store_url)
    rows = store.patients(search=search, birth_date=birth_date, limit=limit)
    died = store.deaths([p.id for p in rows])
    store.close()
    if as_json:
        _print_json(
            [
                {
                    "id": p.id,
                    "name": p.name,
                    "birth_date": p.birth_date,
                    "gender": p.gender,
                    "deceased": died.get(p.id),
                }
                for p in rows
            ]
        )
        return
    from rich.console import Console
    from rich.table import Table

    from medtwin.record.facts import death_date

    columns = ("medtwin id", "name", "born", "sex") + (("died",) if died else ())
    table = Table(*columns, box=None)
    for p in rows:
        cells = [p.id, p.name, p.birth_date or "-", p.gender or "-"]
        if died:
            when = died.get(p.id)
            day = death_date(when)
            cells.append(day.isoformat() if day else ("yes" if when else ""))
        table.add_row(*cells)
    Console().print(table)
    click.echo(f"{len(rows)} patients", err=True)


@main.command("show")
@click.argument("patient")
@_store_option
@_json_option
def show_command(patient: str, store_url: str, as_json: bool) -> None:
    """A readable summary of one patient (medtwin id or any linked identifier).

    Demographics and identifiers, active problems (a suspected diagnosis marked as not
    confirmed; one ruled out or recorded in error left off the list, named on a line of its
    own), active medications, allergies (a suspected one marked unconfirmed, a refuted one left
    off; each problem and allergy once, however many records hold it), the latest vital signs
    and labs with units and dates (as the source sent them: a glucose in mmol/L, a weight in
    pounds; --json adds the value in the unit medtwin computes with), the smoking status and
    recent encounters; a pregnancy the record shows now (a pregnancy condition, or a pregnancy
    status observation); the CGM headline figures for a patient with CGM readings; for a
    patient who has died, how many facts are dated after the death.
    """
    from datetime import UTC, datetime

    from medtwin.monitor.cgm import cgm_headline
    from medtwin.risk.context import patient_context
    from medtwin.store.summary import patient_summary

    store = _open(store_url)
    try:
        summary = patient_summary(store, patient)
        if not summary["deceased"]:
            context = patient_context(store, summary["id"])
            summary["pregnancy"] = context.pregnancy_at(datetime.now(UTC).timestamp())
        summary["cgm"] = cgm_headline(store, summary["id"])
    finally:
        store.close()
    if as_json:
        _print_json(summary)
        return
    _render_summary(summary)


def _render_summary(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    facts = [s["gender"] or "sex unknown"]
    if s["birth_date"]:
        age = f", {s['age_years']} y" if s["age_years"] is not None else ""
        facts.append(f"born {s['birth_date']}{age}")
    if s["deceased"]:
        facts.append(f"deceased {s['deceased'][:10]}")
    if s["address"]:
        facts.append(s["address"])
    console.print(f"[bold]{s['name']}[/bold]  ({'; '.join(facts)})")
    console.print(
        f"medtwin id {s['id']}  ·  {s['fact_count']} facts  ·  {s['encounter_count']} encounters"
    )
    idents = [f"{i['label']} {i['value']}".strip() for i in s["identifiers"]]
    if idents:
        console.print("identifiers: " + " · ".join(idents[:5]), highlight=False)
    if s.get("pregnancy"):
        console.print(f"[bold]pregnant[/bold] (the record: {s['pregnancy']})", highlight=False)
    if s["facts_after_death"]:
        console.print(
            f"[bold]check the record:[/bold] {s['facts_after_death']} facts are dated after the "
            f"recorded death ({s['deceased'][:10]})",
            highlight=False,
        )

    def section(
        title: str,
        rows: list[Any],
        columns: tuple[str, ...],
        render: Callable[[Any], tuple[str, ...]],
    ) -> None:
        console.print(f"\n[bold underline]{title}[/]")
        if not rows:
            console.print("  none recorded")
            return
        table = Table(*columns, box=None, padding=(0, 2, 0, 2))
        for row in rows:
            table.add_row(*render(row))
        console.print(table)

    section(
        "Active problems",
        s["problems"],
        ("problem", "since", "code"),
        lambda r: (
            f"{r['name']} ({r['verification']}, not confirmed)" if r["suspected"] else r["name"],
            r["onset"] or "-",
            r["code"] or "",
        ),
    )
    section(
        "Medications (active)",
        s["medications"],
        ("medication", "since", "dose"),
        lambda r: (r["name"], r["since"] or "-", r["instructions"] or r["dose"] or ""),
    )
    section(
        "Allergies",
        s["allergies"],
        ("allergy", "criticality", "reactions"),
        lambda r: (
            f"{r['name']} (unconfirmed)" if r["unconfirmed"] else r["name"],
            r["criticality"] or "-",
            ", ".join(r["reactions"]),
        ),
    )
    section(
        "Latest vital signs",
        s["vital_signs"],
        ("measure", "value", "date"),
        lambda r: (r["name"], r["value"], r["date"] or "-"),
    )
    section(
        "Latest labs",
        s["labs"],
        ("test", "value", "date"),
        lambda r: (r["name"], r["value"], r["date"] or "-"),
    )
    cgm = s.get("cgm")
    if cgm:
        met = cgm["targets_met"]

        def pct(key: str, label: str) -> str:
            mark = "" if met.get(key, True) else " (target not met)"
            return f"{label} {cgm[key]:.1f} %{mark}"

        console.print(
            f"\n[bold underline]CGM[/], {cgm['days']:.0f} days to {cgm['end'][:10]} "
            f"({cgm['readings']:,} readings, {pct('active_pct', 'active')})\n  "
            + ", ".join(
                pct(key, label.replace("of which ", "").replace("time ", "").strip())
                for label, key in _cgm_ranges(cgm["targets_group"])
            )
            + f"\n  mean {cgm['mean_mg_dl']:.0f} mg/dL, GMI {cgm['gmi_pct']:.1f} %, "
            f"CV {cgm['cv_pct']:.1f} %, GRI {cgm['gri']:.0f} (zone {cgm['gri_zone']}); "
            + (f"targets for {cgm['targets_label']}; " if cgm["targets_group"] != "adult" else "")
            + "'medtwin cgm' for the report",
            highlight=False,
        )
    smoking = s.get("smoking")
    if smoking:
        console.print(
            f"\n[bold underline]Smoking[/]\n  {smoking['status']}  ({smoking['date'] or '-'})",
            highlight=False,
        )
    section(
        "Recent encounters",
        s["recent_encounters"],
        ("date", "encounter", "reason"),
        lambda r: (r["date"] or "-", r["type"], r["reason"] or ""),
    )
    if s["past_problems"]:
        past, vaccines = len(s["past_problems"]), len(s["immunizations"])
        console.print(
            f"\n{past} resolved problem{'s' if past != 1 else ''}; "
            f"{vaccines} vaccine{'s' if vaccines != 1 else ''} on record"
        )
    if s["ruled_out_problems"]:
        names = ", ".join(r["name"] for r in s["ruled_out_problems"][:3])
        more = len(s["ruled_out_problems"]) - 3
        console.print(
            f"ruled out or recorded in error: {names}" + (f" (+{more})" if more > 0 else ""),
            highlight=False,
        )


@main.command("timeline")
@click.argument("patient")
@_store_option
@click.option(
    "--code",
    "codes",
    multiple=True,
    help="Only facts with this code (LOINC, SNOMED ...); repeatable.",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    help="Only this kind (Observation, Condition ...); repeatable.",
)
@click.option("--since", default=None, help="From this date/time (inclusive).")
@click.option("--until", default=None, help="Up to this date/time (exclusive).")
@click.option("--as-of", default=None, help="The record as it was known at this recorded time.")
@_json_option
def timeline_command(
    patient: str,
    store_url: str,
    codes: tuple[str, ...],
    kinds: tuple[str, ...],
    since: str | None,
    until: str | None,
    as_of: str | None,
    as_json: bool,
) -> None:
    """A patient's facts in time order.

    Values in the unit medtwin computes with; one sent in another is followed by what was
    sent ("97.28 mg/dL (sent as 5.4 mmol/L)").
    """
    from medtwin.record.facts import FACT_KINDS, Observation, fact_to_dict, value_comparator
    from medtwin.store.summary import sent_otherwise, unit_label

    unknown = [k for k in kinds if k not in FACT_KINDS]
    if unknown:
        raise click.BadParameter(
            f"unknown kind {unknown[0]!r} (kinds: {', '.join(sorted(FACT_KINDS))})",
            param_hint="--kind",
        )
    start, end = _time_range(since, until)
    store = _open(store_url)
    rows = store.timeline(
        patient,
        codes=codes,
        kinds=kinds,
        start=start,
        end=end,
        as_of=_parse_time(as_of, "--as-of"),
    )
    store.close()
    if as_json:
        _print_json(
            [
                {
                    **fact_to_dict(s.fact),
                    "version": s.version,
                    "recorded_at": s.recorded_at.isoformat(),
                }
                for s in rows
            ]
        )
        return
    if not rows:
        asked = [
            f"{label} {', '.join(values)}"
            for label, values in (("with code", codes), ("of kind", kinds))
            if values
        ] + [
            f"{label} {value}"
            for label, value in (("since", since), ("until", until), ("as recorded at", as_of))
            if value
        ]
        click.echo(f"no facts of {' '.join([patient, *asked])}", err=True)
    for s in rows:
        f = s.fact
        when = (
            f.effective_start.strftime("%Y-%m-%d %H:%M")
            if f.effective_start
            else "????-??-?? ??:??"
        )
        name = (f.code.display or f.code.code) if f.code else (f.resource_type or f.kind)
        value = ""
        if isinstance(f, Observation):
            if f.value_num is not None:
                bound = value_comparator(f) or ""  # ">90": a bound, shown as one
                value = f"{bound}{f.value_num:g} {unit_label(f.unit)}".rstrip()
                if sent_otherwise(f):  # converted: no more digits than were sent, about
                    sent = f"{bound}{f.original_value:g} {unit_label(f.original_unit)}".rstrip()
                    value = f"{bound}{f.value_num:.4g} {unit_label(f.unit)} (sent as {sent})"
            elif f.value_code is not None:
                value = f.value_code.display or f.value_code.code
            elif f.value_text:
                value = f.value_text
        code = f" [{f.code.code}]" if f.code and f.code.code else ""
        click.echo(f"{when}  {f.kind:<18} {name}{code}  {value}".rstrip())


@main.group("export")
def export_group() -> None:
    """Export the record."""


@export_group.command("fhir")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--patient",
    default=None,
    help="One patient as a Bundle; without it, the whole store as Bulk NDJSON.",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Bulk NDJSON: remove the NDJSON files OUT already holds (else such a folder is refused: "
    "the export would mix with them).",
)
@_store_option
def export_fhir_command(out: Path, patient: str | None, replace: bool, store_url: str) -> None:
    """Export as FHIR R4: a patient Bundle (OUT file or folder) or Bulk NDJSON (OUT folder).

    Files are written whole or not at all (written beside, then renamed).
    """
    from medtwin.export import ExportError, write_bulk_ndjson, write_patient_bundle

    store = _open(store_url)
    try:
        if patient:
            written = write_patient_bundle(store, patient, out)
            click.echo(f"wrote {written}")
        else:
            counts = write_bulk_ndjson(store, out, replace=replace)
            click.echo(
                f"wrote {sum(counts.values())} resources in {len(counts)} NDJSON files to {out}"
            )
    except ExportError as exc:
        raise Failure(str(exc)) from None
    finally:
        store.close()


@main.group("quarantine", invoke_without_command=True)
@_store_option
@click.option("--all", "show_all", is_flag=True, help="Include resolved entries.")
@_json_option
@click.pass_context
def quarantine_group(ctx: click.Context, store_url: str, show_all: bool, as_json: bool) -> None:
    """List data that could not be used, with the reason and where it came from."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = store_url
        return
    store = _open(store_url)
    entries = store.quarantine(status=None if show_all else "open")
    store.close()
    if as_json:
        _print_json(
            [
                {
                    "id": e.id,
                    "status": e.status,
                    "created_at": e.created_at.isoformat(),
                    "source": e.item.source,
                    "file": e.item.file,
                    "location": e.item.location,
                    "resource_type": e.item.resource_type,
                    "resource_id": e.item.resource_id,
                    "field": e.item.field,
                    "reason": e.item.reason,
                    "waits_for": e.item.waits_for,
                }
                for e in entries
            ]
        )
        return
    for e in entries:
        what = "/".join(x for x in (e.item.resource_type, e.item.resource_id) if x)
        click.echo(f"#{e.id} [{e.status}] {e.item.describe()} {what}".rstrip())
    click.echo(f"{len(entries)} entries", err=True)


@quarantine_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--tz", default="UTC", show_default=True)
@click.option("--store", "own_store", default=None, help="Store URL (as for 'medtwin quarantine').")
@click.pass_obj
def quarantine_retry_command(
    store_url: str, ids: tuple[int, ...], tz: str, own_store: str | None
) -> None:
    """Re-import quarantined data (all open entries, or the given ids) after a fix."""
    from medtwin.ingest import retry_quarantine

    store = _open(own_store or store_url)
    if ids:
        open_ids = {e.id for e in store.quarantine(status="open")}
        unknown = [i for i in ids if i not in open_ids]
        if unknown:
            store.close()
            raise Failure(
                f"no open quarantine entry #{', #'.join(map(str, unknown))} (see "
                "'medtwin quarantine'; 'medtwin quarantine --all' lists resolved ones too)"
            )
    report = retry_quarantine(store, ids=ids or None, tz=tz)
    left = store.counts()["quarantine_open"]
    store.close()
    c = report.counts
    click.echo(
        f"retried: {c.get('inserted', 0)} facts stored, {c.get('quarantined', 0)} still quarantined; "
        f"{left} open entries left"
    )


@main.command("link")
@click.argument("keep")
@click.argument("merge")
@_store_option
def link_command(keep: str, merge: str, store_url: str) -> None:
    """Merge patient MERGE into KEEP (ids or identifiers); MERGE's identifiers then find KEEP."""
    store = _open(store_url)
    try:
        keep_id, merge_id = store.resolve_patient(keep), store.resolve_patient(merge)
        if keep_id == merge_id:
            click.echo(f"nothing to link: {keep} and {merge} are one patient already ({keep_id})")
            return
        survivor = store.link(keep_id, merge_id)
    finally:
        store.close()
    click.echo(f"linked: {merge} -> {survivor}")


@main.command("access-log")
@_store_option
@click.option("--patient", default=None)
@click.option("--limit", default=50, type=click.IntRange(min=1), show_default=True)
@_json_option
def access_log_command(store_url: str, patient: str | None, limit: int, as_json: bool) -> None:
    """Who read or wrote which patient's data, newest first."""
    store = _open(store_url)
    pid = store.resolve_patient(patient) if patient else None
    rows = store.access_log(patient_id=pid, limit=limit)
    store.close()
    if as_json:
        _print_json(
            [
                {
                    "at": r.at.isoformat(),
                    "actor": r.actor,
                    "action": r.action,
                    "patient_id": r.patient_id,
                    "what": r.what,
                    "count": r.count,
                }
                for r in rows
            ]
        )
        return
    for r in rows:
        click.echo(
            f"{r.at:%Y-%m-%d %H:%M:%S}  {r.actor:<14} {r.action:<7} {r.patient_id or '-':<20} {r.what}"
        )


@main.command("jobs")
@_store_option
@click.option("--limit", default=20, type=click.IntRange(min=1), show_default=True)
@_json_option
def jobs_command(store_url: str, limit: int, as_json: bool) -> None:
    """Imports and other long jobs, newest first (``running`` with no process left = interrupted)."""
    store = _open(store_url)
    rows = store.jobs(limit=limit)
    store.close()
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        detail = r["detail"] or {}
        counts = ", ".join(
            f"{k} {detail[k]}" for k in ("files", "inserted", "quarantined") if k in detail
        )
        click.echo(
            f"#{r['id']} {r['kind']:<7} {r['status']:<8} {r['started_at'][:19]}  {r['actor']}  {counts}"
        )


class _ScoreGroup(click.Group):
    """``medtwin score list`` or ``medtwin score NAME INPUT``: an unknown sub-command is a score name."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "compute", self.commands["compute"], args
        return super().resolve_command(ctx, args)


@main.group("score", cls=_ScoreGroup)
def score_group() -> None:
    """Validated scores (NEWS2, qSOFA, MEWS ...): `medtwin score NAME INPUT` or `medtwin score list`."""


@score_group.command("list")
@_json_option
def score_list_command(as_json: bool) -> None:
    """Every score with its inputs, units, ranges and source."""
    from medtwin.risk import score_list

    scores = score_list()
    if as_json:
        _print_json(scores)
        return
    for score in scores:
        inputs = ", ".join(i["name"] for i in score["inputs"])
        click.echo(
            f"{score['name']:<8} {score.get('title', '')}\n         inputs: {inputs}\n         {score['source']}"
        )


@score_group.command("compute", hidden=True)
@click.argument("name")
@click.argument("payload", metavar="INPUT")
@_json_option
def score_compute_command(name: str, payload: str, as_json: bool) -> None:
    """Compute score NAME from INPUT: a JSON object, a JSON file, or - for stdin."""
    from medtwin.risk import ScoreInputError, score_json

    if payload == "-":
        text = sys.stdin.read()
    elif payload.lstrip().startswith("{"):
        text = payload
    else:
        path = Path(payload)
        if not path.is_file():
            raise ScoreInputError(f"INPUT {payload!r} is neither a JSON object nor a file")
        text = path.read_text()
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ScoreInputError(f"INPUT is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ScoreInputError("INPUT must be a JSON object of input names to values")
    result = score_json(name, data)
    if as_json:
        _print_json(result)
        return
    if result.get("refused"):
        click.echo(f"{result['name']}: refused: {result['refused']}")
        return
    partial = (
        " (partial: missing " + ", ".join(result["missing"]) + ")" if result["partial"] else ""
    )
    band = f", {result['band']}" if result.get("band") else ""
    click.echo(f"{result['name']} = {result['value']}{band}{partial}\n{result['source']}")


@main.group("monitor")
def monitor_group() -> None:
    """Streaming monitors: list them, or run them over a stored patient's record."""


def _monitor_params(pairs: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    from medtwin.monitor import MonitorConfigError

    params: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        monitor, dot, name = key.partition(".")
        if not sep or not dot or not monitor or not name:
            raise MonitorConfigError(f"--param {pair!r}: expected MONITOR.NAME=VALUE")
        try:
            value: Any = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = text
        params.setdefault(monitor.lower(), {})[name] = value
    return params


@monitor_group.command("list")
@_json_option
def monitor_list_command(as_json: bool) -> None:
    """Every monitor with its codes, parameters and source."""
    from medtwin.monitor import registry

    rows = [cls.describe() for cls in registry.all_monitors()]
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items()) or "none"
        click.echo(
            f"{row['name']:<12} {row['description']}\n"
            f"             codes: {', '.join(row['codes']) or 'any'}; parameters: {params}\n"
            f"             {row['source']}"
        )


@monitor_group.command("run")
@click.argument("patient")
@_store_option
@click.option(
    "--monitors",
    default="news2,qsofa,mews,artefact",
    show_default=True,
    help="Comma-separated monitor names (see 'medtwin monitor list').",
)
@click.option(
    "--param", "params", multiple=True, help="MONITOR.NAME=VALUE, e.g. news2.window_min=30."
)
@click.option("--since", default=None, help="From this date/time (inclusive).")
@click.option("--until", default=None, help="Up to this date/time (exclusive).")
@click.option("--save", is_flag=True, help="File the alerts in the store's alert book.")
@_json_option
def monitor_run_command(
    patient: str,
    store_url: str,
    monitors: str,
    params: tuple[str, ...],
    since: str | None,
    until: str | None,
    save: bool,
    as_json: bool,
) -> None:
    """Run monitors over PATIENT's stored observations in time order; print the alerts."""
    from medtwin.monitor import MonitorHub, readings_from_stored
    from medtwin.risk.context import patient_context

    names = [m.strip() for m in monitors.split(",") if m.strip()]
    if not names:
        raise click.BadParameter(
            "name at least one monitor (see 'medtwin monitor list')", param_hint="--monitors"
        )
    start, end = _time_range(since, until)
    store = _open(store_url)
    try:
        pid = store.resolve_patient(patient)
        timeline = store.timeline(pid, kinds=["Observation"], start=start, end=end)
        readings = readings_from_stored(timeline)
        sink = store if save and hasattr(store, "raise_alerts") else None
        hub = MonitorHub(
            names,
            params=_monitor_params(params),
            sink=sink,
            context=lambda pid: patient_context(store, pid),
        )
        alerts = hub.feed(readings)
    finally:
        store.close()
    if as_json:
        _print_json(
            {
                "patient_id": pid,
                "readings": len(readings),
                "monitors": names,
                "alerts": [a.to_dict() for a in alerts],
            }
        )
        return
    cleared = sum(a.clears for a in alerts)
    also = f", {cleared} cleared" if cleared else ""
    click.echo(
        f"{pid}: {len(readings)} readings through {', '.join(names)}: "
        f"{len(alerts) - cleared} alerts{also}"
    )
    for a in alerts:
        refs = ", ".join(str(ref) for ref in a.evidence[:6])
        more = f" (+{len(a.evidence) - 6})" if len(a.evidence) > 6 else ""
        level = "cleared" if a.clears else a.severity
        click.echo(f"{a.time:%Y-%m-%d %H:%M} {level:<10} {a.rule:<22} {a.message}")
        click.echo(f"{'':17}evidence: {refs}{more}")


@main.command("synth")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--patients",
    "n",
    default=20,
    type=click.IntRange(min=1),
    show_default=True,
    help="How many patients.",
)
@click.option(
    "--seed", default=1, show_default=True, help="Random seed (same seed, same patients)."
)
@click.option(
    "--wearables-days",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also write this many days of wearable streams (HR, steps, SpO2, RR, CGM) with known onsets.",
)
@click.option(
    "--onset-fraction",
    type=click.FloatRange(0.0, 1.0),
    default=0.3,
    show_default=True,
    help="With --wearables-days: share of patients with an onset (infection, respiratory, glucose low).",
)
@click.option(
    "--type1-minimum",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Least number of people with type 1 diabetes (CGM + insulin pump); a smaller run is "
    "enriched (tagged type1-enrichment). 0: the prevalence draw alone (0.5 %).",
)
@click.option(
    "--wearables-out",
    type=click.Path(path_type=Path),
    default=None,
    help="With --wearables-days: folder for streams/ and truth.json (default: OUT-wearables beside OUT).",
)
@click.option(
    "--genotypes",
    is_flag=True,
    default=False,
    help="Also write each patient's pharmacogene genotypes as a GRCh38 VCF (CPIC allele "
    "frequencies) to OUT-genotypes/vcf/, the true diplotypes to OUT-genotypes/truth.json.",
)
@click.option(
    "--vancomycin",
    "vancomycin",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Give this many patients a simulated IV vancomycin course (doses and two levels, "
    "model vancomycin_goti2018) in OUT-pharmacy/fhir/ (import after OUT), truth in OUT-pharmacy/truth.json.",
)
@click.option(
    "--warfarin",
    "warfarin",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Give this many patients a simulated warfarin start for atrial fibrillation (the "
    "diagnosis, a 5 mg daily order, the doses and five INR results; model warfarin_hamberg2007 "
    "with the genotype of --genotypes) in OUT-pharmacy/fhir/.",
)
@click.option(
    "--today",
    default=None,
    metavar="YYYY-MM-DD",
    help="The date the data run up to (check-ups, medication courses, wearable streams end "
    "before it). Default 2026-01-01, fixed so that a seed gives the same files whenever it "
    "runs; give today's date for a record that is current.",
)
@click.option(
    "--form",
    type=click.Choice(["us", "uk"]),
    default="us",
    show_default=True,
    help="How the records are written: us (LOINC, US units, RxNorm, US Core race) or uk, the "
    "same people as UK general practice records them (SNOMED CT observables in SI units, "
    "dm+d-style drug names, NHS test numbers 999..., the NHS ethnic category, an English "
    "address). Not with --vancomycin or --warfarin.",
)
def synth_command(
    out: Path,
    n: int,
    seed: int,
    wearables_days: int,
    onset_fraction: float,
    type1_minimum: int,
    wearables_out: Path | None,
    genotypes: bool,
    vancomycin: int,
    warfarin: int,
    today: str | None,
    form: str,
) -> None:
    """Write synthetic demo patients as FHIR R4 Bundles (medtwin's own generator)."""
    from medtwin.synth import write_synthetic_patients
    from medtwin.synth.generator import DEFAULT_TODAY

    as_of = DEFAULT_TODAY
    if today is not None:
        try:
            as_of = datetime.strptime(today, "%Y-%m-%d").date()
        except ValueError:
            raise click.UsageError(f"--today: {today!r} is not a date (YYYY-MM-DD)") from None
    if form == "uk" and (vancomycin > 0 or warfarin > 0):
        raise click.UsageError(
            "--form uk writes the patients only: the simulated courses (--vancomycin, "
            "--warfarin) read the US form's LOINC-coded weights and creatinine; leave them out"
        )
    out.mkdir(parents=True, exist_ok=True)
    files = write_synthetic_patients(
        n,
        seed,
        out,
        today=as_of,
        device_user=wearables_days > 0,
        type1_minimum=type1_minimum,
        vcf_sample=genotypes,
        form=form,
    )
    click.echo(f"wrote {len(files)} synthetic patients to {out}")
    if genotypes:
        from medtwin.synth.genotypes import write_genotypes

        folder = out.with_name(out.name + "-genotypes")
        written = write_genotypes(n, seed, folder)
        click.echo(
            f"wrote {len(written) - 1} genotype VCFs to {folder / 'vcf'} "
            f"and the diplotypes to {folder / 'truth.json'}"
        )
    if vancomycin > 0 or warfarin > 0:
        from medtwin.synth.pharmacy import write_pharmacy

        folder = out.with_name(out.name + "-pharmacy")
        written = write_pharmacy(
            files, seed, folder, count=vancomycin, today=as_of, warfarin=warfarin
        )
        click.echo(
            f"wrote {len(written) - 1} vancomycin / warfarin courses to {folder / 'fhir'} "
            f"and the truth to {folder / 'truth.json'}"
        )
    if wearables_days > 0:
        from medtwin.synth.streams import write_wearable_streams

        folder = wearables_out or out.with_name(out.name + "-wearables")
        streams = write_wearable_streams(
            n,
            seed,
            folder,
            days=wearables_days,
            onset_fraction=onset_fraction,
            type1_minimum=type1_minimum,
            today=as_of,
        )
        click.echo(
            f"wrote {wearables_days} days of wearable streams to {folder / 'streams'} "
            f"and {len(streams.truth)} onsets to {folder / 'truth.json'}"
        )


def _cgm_panel(store_url: str, days: float, until: datetime | None, as_json: bool) -> None:
    """``medtwin cgm --all``: the panel of every patient with CGM readings."""
    from medtwin.monitor.cgm import cgm_panel

    store = _open(store_url)
    try:
        rows = cgm_panel(store, days=days, until=until)
    finally:
        store.close()
    if as_json:
        _print_json(rows)
        return
    click.echo(
        f"CGM panel: {len(rows)} patients with CGM readings ({days:g} days to each one's newest"
        + (f" before {until:%Y-%m-%d %H:%M} UTC" if until else "")
        + "), the most at risk first (Glycemia Risk Index)"
    )
    if not rows:
        return
    click.echo(
        f"  {'patient':<22}{'name':<24}{'to':<12}{'active':>7}{'in range':>10}{'change':>8}"
        f"{'<70':>7}{'<54':>7}{'>250':>7}{'GRI':>6}  zone  targets not met"
    )
    for r in rows:
        pregnant = str(r["targets_group"]).startswith("pregnancy")
        tir, low = (
            ("time_in_range_63_140_pct", "time_below_63_pct")
            if pregnant
            else ("time_in_range_70_180_pct", "time_below_70_pct")
        )
        missed = ", ".join(_CGM_SHORT.get(k, k) for k in r["not_met"]) or "-"
        mark = "*" if pregnant else "%"
        before = (r["previous"] or {}).get(tir)
        change = f"{r[tir] - before:+.1f}" if before is not None else "-"
        click.echo(
            f"  {r['patient_id']:<22}{str(r['name'])[:23]:<24}{r['end'][:10]:<12}"
            f"{r['active_pct']:>6.0f}%{r[tir]:>9.1f}{mark}{change:>8}{r[low]:>6.1f}{mark}"
            f"{r['time_below_54_pct']:>6.1f}%{r['time_above_250_pct']:>6.1f}%"
            f"{r['gri']:>6.0f}  {r['gri_zone']:<4}  {missed}"
        )
    if any(str(r["targets_group"]).startswith("pregnancy") for r in rows):
        click.echo("  * pregnancy: % in range 63-140 and below 63 mg/dL")


_CGM_SHORT = {
    "active_pct": "active",
    "cv_pct": "CV",
    "time_in_range_70_180_pct": "in range",
    "time_in_range_63_140_pct": "in range",
    "time_below_70_pct": "<70",
    "time_below_63_pct": "<63",
    "time_below_54_pct": "<54",
    "time_above_180_pct": ">180",
    "time_above_140_pct": ">140",
    "time_above_250_pct": ">250",
}
"""The short names of the CGM targets in ``medtwin cgm --all``."""


def _cgm_ranges(group: str) -> list[tuple[str, str]]:
    """The time-in-range lines of a CGM report for the target ``group``: the pregnancy range
    (63-140 mg/dL) in pregnancy, else the standard one (70-180)."""
    if group.startswith("pregnancy"):
        return [
            ("time in range 63-140", "time_in_range_63_140_pct"),
            ("time below 63", "time_below_63_pct"),
            ("  of which below 54", "time_below_54_pct"),
            ("time above 140", "time_above_140_pct"),
        ]
    return [
        ("time in range 70-180", "time_in_range_70_180_pct"),
        ("time below 70", "time_below_70_pct"),
        ("  of which below 54", "time_below_54_pct"),
        ("time above 180", "time_above_180_pct"),
        ("  of which above 250", "time_above_250_pct"),
    ]


@main.command("cgm")
@click.argument("patient", required=False)
@_store_option
@click.option(
    "--all",
    "panel",
    is_flag=True,
    help="Every patient with CGM readings, the most at risk first (a clinic's panel).",
)
@click.option(
    "--days",
    default=14.0,
    type=DAYS,
    show_default=True,
    help="Report the last N days (the consensus' 14).",
)
@click.option(
    "--until", default=None, help="Up to this date/time (default: the newest CGM reading)."
)
@click.option(
    "--tz",
    default="UTC",
    show_default=True,
    help="The patient's time zone: the ambulatory glucose profile is over their day.",
)
@click.option(
    "--plot",
    "plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the ambulatory glucose profile (median, 25-75 % and 5-95 %) as an HTML plot.",
)
@click.option(
    "--targets",
    type=click.Choice(["auto", "adult", "older", "pregnancy-type1", "pregnancy-other"]),
    default="auto",
    show_default=True,
    help="The consensus' target group; auto: pregnancy (with type 1 diabetes or not) from the "
    "record, else most adults.",
)
@_json_option
def cgm_command(
    patient: str | None,
    store_url: str,
    panel: bool,
    days: float,
    until: str | None,
    tz: str,
    plot: Path | None,
    targets: str,
    as_json: bool,
) -> None:
    """PATIENT's CGM report: time in ranges, mean, GMI, CV and data sufficiency, with targets.

    The core metrics of the International Consensus on Time in Range (Battelino 2019) over the
    patient's continuous glucose readings (LOINC 99504-3: a Dexcom or Libre export, a live
    feed), against the targets of the patient's group: most adults with type 1 or type 2
    diabetes, older or high-risk adults, or pregnancy (range 63-140 mg/dL).

    With --all instead of PATIENT: every patient with CGM readings, one line each (the last
    --days to their newest reading, the targets of their group), the most at risk first by the
    Glycemia Risk Index, with the targets each one misses.
    """
    from medtwin.monitor.cgm import cgm_report
    from medtwin.physiology.glycemia import CGM_TARGET_SETS

    if panel == (patient is not None):
        raise click.UsageError("give PATIENT or --all (every patient with CGM readings)")
    if panel:
        if plot is not None or targets != "auto":
            raise click.UsageError("--plot and --targets are for one PATIENT, not --all")
        _cgm_panel(store_url, days, _parse_time(until, "--until"), as_json)
        return
    assert patient is not None
    store = _open(store_url)
    try:
        report = cgm_report(
            store,
            patient,
            days=days,
            until=_parse_time(until, "--until"),
            tz=tz,
            targets=targets,
        )
    except (LookupError, ValueError) as exc:
        raise Failure(str(exc).strip("'\"")) from None
    finally:
        store.close()
    group = CGM_TARGET_SETS[report["targets_group"]]
    if plot is not None:
        from medtwin.physiology.glycemia import write_agp_html

        write_agp_html(
            report["agp"],
            str(plot),
            title=f"Ambulatory glucose profile, {report['patient_id']}, "
            f"{report['start'][:10]} to {report['end'][:10]} ({report['readings']:,} readings)",
            target_range=(group.low, group.high),
        )
    if as_json:
        _print_json(report)
        return
    checks = report["targets"]
    previous = report["previous"] or {}

    def line(label: str, key: str, unit: str = "%") -> None:
        value = report[key]
        shown = f"{value:.1f} {unit}" if unit == "%" else f"{value:.0f} {unit}"
        check = checks.get(key)
        verdict = ""
        if check is not None:
            verdict = f"target {check['target']}: {'met' if check['met'] else 'NOT met'}"
        was = previous.get(key)
        then = (f"  {was:.1f} %" if was is not None else "").rjust(11) if previous else ""
        click.echo(f"  {label:<26}{shown:>12}{then}   {verdict}".rstrip())

    bounds = report["bounds"]
    click.echo(
        f"CGM report for {report['patient_id']}: {report['start'][:16]} to {report['end'][:16]} "
        f"UTC ({report['days']:.1f} days), {report['readings']:,} readings"
        + (f", {bounds} sent as bounds (LOW/HIGH, counted at the bound)" if bounds else "")
    )
    if previous:
        click.echo(
            f"  {'':<26}{'':>12}{'previous':>11}   (the {days:g} days before: "
            f"{previous['readings']:,} readings)"
        )
    line("CGM active", "active_pct")
    mean = report["mean_mg_dl"]
    shown = f"{mean:.0f} mg/dL"
    was = f"{previous['mean_mg_dl']:.0f} mg/dL".rjust(11) if previous else ""
    click.echo(f"  {'mean glucose':<26}{shown:>12}{was}   ({mean / 18.016:.1f} mmol/L)")
    line("GMI", "gmi_pct")
    line("coefficient of variation", "cv_pct")
    for label, key in _cgm_ranges(report["targets_group"]):
        line(label, key)
    click.echo(
        f"  {'glycemia risk index':<26}{report['gri']:>10.1f}     zone {report['gri_zone']} "
        f"(hypoglycaemia {report['gri_hypo']:.1f}, hyperglycaemia {report['gri_hyper']:.1f})"
        + (f"; previous {previous['gri']:.1f}, zone {previous['gri_zone']}" if previous else "")
    )
    click.echo(
        "Targets: International Consensus on Time in Range (Battelino 2019), "
        f"{report['targets_label']} ({report['targets_basis']})."
    )
    if group.name != "adult" and group.note:
        click.echo(f"  {group.note[0].upper()}{group.note[1:]}.")
    for hint in report["targets_hints"]:
        click.echo(f"  Note: {hint}.")
    if plot is not None:
        click.echo(f"ambulatory glucose profile ({tz}): {plot}")
    if report["unconvertible_readings"]:
        click.echo(
            f"{report['unconvertible_readings']} readings in a unit that is not a glucose "
            "concentration were left out",
            err=True,
        )


@main.command("changepoints")
@click.argument("patient")
@click.argument("code")
@_store_option
@click.option("--since", default=None, help="From this date/time (inclusive).")
@click.option("--until", default=None, help="Up to this date/time (exclusive).")
@click.option(
    "--beta", default=2.0, type=Positive(), show_default=True, help="Penalty multiplier (2 = BIC)."
)
@click.option(
    "--min-size",
    default=5,
    type=click.IntRange(min=1),
    show_default=True,
    help="Fewest readings per segment.",
)
@_json_option
def changepoints_command(
    patient: str,
    code: str,
    store_url: str,
    since: str | None,
    until: str | None,
    beta: float,
    min_size: int,
    as_json: bool,
) -> None:
    """Segments of constant mean of one code of a patient (offline PELT, for review)."""
    from medtwin.monitor.changepoint import changepoints_for

    store = _open(store_url)
    start, end = _parse_time(since, "--since"), _parse_time(until, "--until")
    result = changepoints_for(
        store, patient, code, since=start, until=end, beta=beta, min_size=min_size
    )
    store.close()
    if as_json:
        _print_json(result)
        return
    unit = result["unit"] or ""
    left_out = []
    if result["bounds_dropped"]:
        left_out.append(f"{result['bounds_dropped']} sent as bounds ('<40', '>90')")
    if result["implausible_dropped"]:
        left_out.append(f"{result['implausible_dropped']} implausible")
    click.echo(
        f"{result['display']} [{code}]: {result['n']} readings"
        + (f" (left out: {', '.join(left_out)})" if left_out else "")
    )
    for seg in result["segments"]:
        click.echo(
            f"  {seg['start'][:16]} .. {seg['end'][:16]}  n={seg['n']:<5} "
            f"mean {seg['mean']:.4g} {unit} (SD {seg['sd']:.3g})"
        )


main.add_command(listen_command)
main.add_command(replay_command)

import medtwin.cli_alerts  # noqa: E402  (registers 'medtwin alerts' on main)
import medtwin.cli_dose  # noqa: E402  (registers 'medtwin dose')
import medtwin.cli_model  # noqa: E402  (registers 'medtwin simulate' and 'medtwin model')
import medtwin.cli_pgx  # noqa: E402  (registers 'medtwin pgx')
import medtwin.cli_risk  # noqa: E402  (registers 'medtwin risk')
import medtwin.cli_twin  # noqa: E402, F401  (registers 'medtwin twin' and 'medtwin whatif')

if __name__ == "__main__":  # pragma: no cover
    main()
