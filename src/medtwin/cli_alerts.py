"""``medtwin alerts``: list, show, acknowledge, resolve and escalate the store's alerts.

A part of the ``medtwin`` command (:mod:`medtwin.cli` imports it, and it registers itself on
:func:`medtwin.cli.main`), kept in its own module so that the alert commands and the rest of
the command line can change independently. Domain logic lives in :mod:`medtwin.store.alerts`;
these commands only call the store and print.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from medtwin.cli import _json_option, _open, _parse_time, _print_json, _store_option, main

__all__ = ["alerts_group"]


def _own_store(func: Any) -> Any:
    return click.option(
        "--store",
        "own_store",
        default=None,
        help="Store URL (as for 'medtwin alerts'; default MEDTWIN_STORE or ./medtwin.db).",
    )(func)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


@main.group("alerts", invoke_without_command=True)
@_store_option
@click.option("--patient", default=None, help="Only this patient (medtwin id or identifier).")
@click.option(
    "--open", "only_open", is_flag=True, help="Only alerts not yet resolved (open or acknowledged)."
)
@click.option(
    "--limit",
    default=200,
    type=click.IntRange(min=1),
    show_default=True,
    help="At most this many, newest first.",
)
@_json_option
@click.pass_context
def alerts_group(
    ctx: click.Context,
    store_url: str,
    patient: str | None,
    only_open: bool,
    limit: int,
    as_json: bool,
) -> None:
    """Monitor alerts, newest first: `medtwin alerts [--patient P] [--open]`, or a sub-command."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = store_url
        return
    store = _open(store_url)
    try:
        pid = store.resolve_patient(patient) if patient else None
        rows = store.alerts(
            patient_id=pid, status=("open", "acknowledged") if only_open else None, limit=limit
        )
    finally:
        store.close()
    if as_json:
        _print_json([a.to_dict() for a in rows])
        return
    header = (
        "id",
        "patient",
        "severity",
        "status",
        "rule",
        "first",
        "last",
        "count",
        "escalated to",
        "message",
    )
    table: list[tuple[str, ...]] = [header] + [
        (
            str(a.id),
            a.patient_id,
            a.severity,
            a.status,
            a.rule,
            _when(a.first_at),
            _when(a.last_at),
            str(a.count),
            "-" if a.escalation_level is None else f"{a.escalation_level} {a.responder}",
            a.message,
        )
        for a in rows
    ]
    # Plain aligned columns (not wrapped to the terminal: a worklist is read whole or piped).
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())
    click.echo(f"{len(rows)} alerts", err=True)


@alerts_group.command("show")
@click.argument("alert_id", metavar="ID", type=int)
@_own_store
@_json_option
@click.pass_obj
def alerts_show_command(
    store_url: str, alert_id: int, own_store: str | None, as_json: bool
) -> None:
    """One alert with its evidence and its trail of events."""
    store = _open(own_store or store_url)
    try:
        alert = store.alert(alert_id)
        events = store.alert_events(alert_id)
    finally:
        store.close()
    if as_json:
        _print_json({**alert.to_dict(), "events": [e.to_dict() for e in events]})
        return
    lines = [
        f"alert {alert.id}  [{alert.severity}] {alert.status}  patient {alert.patient_id}",
        f"  {alert.message}",
        f"  rule {alert.rule} ({alert.monitor} v{alert.monitor_version}, {alert.category}); "
        f"key {alert.key}",
        f"  source: {alert.source}",
        f"  fired {alert.count} time{'s' if alert.count != 1 else ''}, first {_when(alert.first_at)}, last {_when(alert.last_at)}",
    ]
    if alert.escalation_level is not None:
        lines.append(f"  escalation level {alert.escalation_level}: {alert.responder}")
    if alert.acknowledged_by:
        lines.append(f"  acknowledged by {alert.acknowledged_by} at {_when(alert.acknowledged_at)}")
    if alert.resolved_by:
        reason = f": {alert.resolved_reason}" if alert.resolved_reason else ""
        lines.append(f"  resolved by {alert.resolved_by} at {_when(alert.resolved_at)}{reason}")
    omitted = alert.evidence_total - len(alert.evidence)
    lines.append(
        f"evidence ({alert.evidence_total} facts"
        + (f"; {omitted} between the first and the latest not kept" if omitted else "")
        + "):"
    )
    lines += [f"  {ref.source}|{ref.source_id}" for ref in alert.evidence]
    if alert.detail:
        lines.append("detail: " + ", ".join(f"{k}={v}" for k, v in alert.detail.items()))
    lines.append("events:")
    for e in events:
        detail = ", ".join(f"{k}={v}" for k, v in e.detail.items() if v is not None)
        lines.append(
            f"  {e.at:%Y-%m-%d %H:%M:%S}  {e.event:<12} {e.actor}"
            + (f"  {detail}" if detail else "")
        )
    click.echo("\n".join(lines))


@alerts_group.command("ack")
@click.argument("alert_id", metavar="ID", type=int)
@click.option("--note", default=None, help="What you are doing about it (kept in the trail).")
@_own_store
@click.pass_obj
def alerts_ack_command(
    store_url: str, alert_id: int, note: str | None, own_store: str | None
) -> None:
    """Acknowledge an open alert (as MEDTWIN_USER or the OS user): it stops escalating."""
    store = _open(own_store or store_url)
    try:
        alert = store.acknowledge_alert(alert_id, note=note)
    finally:
        store.close()
    click.echo(
        f"alert {alert.id} acknowledged by {alert.acknowledged_by} at {_when(alert.acknowledged_at)}"
    )


@alerts_group.command("resolve")
@click.argument("alert_id", metavar="ID", type=int)
@click.option("--reason", default=None, help="Why it is closed (kept on the alert).")
@_own_store
@click.pass_obj
def alerts_resolve_command(
    store_url: str, alert_id: int, reason: str | None, own_store: str | None
) -> None:
    """Resolve an open or acknowledged alert."""
    store = _open(own_store or store_url)
    try:
        alert = store.resolve_alert(alert_id, reason=reason)
    finally:
        store.close()
    click.echo(f"alert {alert.id} resolved by {alert.resolved_by} at {_when(alert.resolved_at)}")


@alerts_group.command("escalate")
@click.option(
    "--now", "now_text", default=None, help="Escalate as if it were this time (default: now)."
)
@_own_store
@_json_option
@click.pass_obj
def alerts_escalate_command(
    store_url: str, now_text: str | None, own_store: str | None, as_json: bool
) -> None:
    """Move open, unacknowledged alerts whose time is up to the next responder."""
    now = _parse_time(now_text, "--now")
    store = _open(own_store or store_url)
    try:
        ids = store.escalate_alerts(now)
        escalated = [store.alert(i) for i in ids]
    finally:
        store.close()
    if as_json:
        _print_json([a.to_dict() for a in escalated])
        return
    for a in escalated:
        click.echo(
            f"alert {a.id} [{a.severity}] {a.patient_id}: level {a.escalation_level}, {a.responder}"
        )
    click.echo(f"{len(escalated)} alerts escalated", err=True)
