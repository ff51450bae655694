"""``medtwin listen`` and ``medtwin replay``: the live feed commands (registered by ``cli.py``).

They wire :mod:`medtwin.ingest.mqtt` (and :mod:`medtwin.ingest.replay`) to the store and the
monitor hub; the logic lives there.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import click

__all__ = ["listen_command", "make_hub", "monitor_names", "replay_command"]


def monitor_names(monitors: str | None) -> list[str]:
    """Names from a comma list (``None``: every registered monitor); an unknown one is refused."""
    from medtwin.monitor import registry

    if monitors is None:
        return registry.names()
    names = [n.strip() for n in monitors.split(",") if n.strip()]
    for name in names:
        try:
            registry.get(name)
        except registry.UnknownMonitorError as exc:
            raise click.BadParameter(str(exc), param_hint="--monitors") from None
    return names


def make_hub(store: Any, monitors: str | None) -> Any:
    """A :class:`~medtwin.monitor.hub.MonitorHub` over ``monitors`` (comma list; ``None``: all).

    The store keeps monitor state and receives alerts when it offers those methods
    (``load_monitor_state`` / ``save_monitor_states``, ``raise_alerts``), and gives the early-
    warning monitors each patient's age and pregnancies (:mod:`medtwin.risk.context`).
    """
    from medtwin.monitor.hub import MonitorHub
    from medtwin.risk.context import patient_context

    state = store if hasattr(store, "save_monitor_states") else None
    sink = store if hasattr(store, "raise_alerts") else None
    return MonitorHub(
        monitor_names(monitors),
        state=state,
        sink=sink,
        context=lambda pid: patient_context(store, pid),
    )


def _print_alert(alert: Any) -> None:
    click.echo(
        f"{alert.time:%Y-%m-%d %H:%M:%S}Z  {alert.patient_id}  "
        f"{'cleared' if alert.clears else alert.severity:<10} "
        f"{alert.monitor}/{alert.rule}: {alert.message}"
    )


def _monitors_option(func: Any) -> Any:
    return click.option(
        "--monitors",
        default=None,
        help="Comma-separated monitor names (default: every registered monitor; '' for none).",
    )(func)


@click.command("listen")
@click.option("--mqtt", "url", default="mqtt://127.0.0.1:1883", show_default=True)
@click.option("--topic", default="devices/#", show_default=True, help="Subscription filter.")
@click.option(
    "--store",
    "store_url",
    envvar="MEDTWIN_STORE",
    default="./medtwin.db",
    show_default=True,
    help="Store URL (env MEDTWIN_STORE).",
)
@_monitors_option
@click.option(
    "--client-id",
    default="medtwin-listener",
    show_default=True,
    help="Stable id of the broker session that queues messages while the listener is down.",
)
@click.option(
    "--create-patients",
    is_flag=True,
    help="Give an unknown device user a new patient (merge later with 'medtwin link') "
    "instead of quarantining its readings.",
)
@click.option(
    "--skew-tolerance-s",
    default=300.0,
    show_default=True,
    help="Quarantine readings stamped further than this ahead of the clock.",
)
@click.option("--window-ms", default=50.0, show_default=True, help="Batching window.")
@click.option("-v", "--verbose", is_flag=True, help="Log connections and each batch.")
def listen_command(
    url: str,
    topic: str,
    store_url: str,
    monitors: str | None,
    client_id: str,
    create_patients: bool,
    skew_tolerance_s: float,
    window_ms: float,
    verbose: bool,
) -> None:
    """Store device readings published to an MQTT broker, run the monitors, print alerts.

    Payloads are Open mHealth data points or FHIR Observations; the topic is
    devices/{patient identifier}/{device id}. QoS 1 on a persistent session: a message is
    acknowledged only after it is stored. Stops cleanly on Ctrl-C or SIGTERM.
    """
    from medtwin.ingest.mqtt import LiveIngest, MqttListener, parse_mqtt_url, topic_prefix
    from medtwin.store import open_store

    try:
        parse_mqtt_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--mqtt") from exc
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("medtwin.mqtt").setLevel(logging.INFO)
    store = open_store(store_url)
    hub = make_hub(store, monitors)
    live = LiveIngest(
        store,
        downstream=hub,
        prefix=topic_prefix(topic),
        skew_tolerance_s=skew_tolerance_s,
        create_patients=create_patients,
        on_alert=_print_alert,
    )
    listener = MqttListener(url, topic, live, client_id=client_id, window_s=window_ms / 1000)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    monitors_run = ", ".join(cls.name for cls in hub.classes) or "none"
    click.echo(f"listening on {url} topic {topic!r} (monitors: {monitors_run})", err=True)
    report = listener.run(stop)
    store.close()
    c = report.as_dict()
    click.echo(
        f"stopped: {c['messages']} messages, {c['facts_changed']} facts stored, "
        f"{c['unchanged']} repeats, {c['quarantined']} quarantined, {c['alerts']} alerts",
        err=True,
    )


@click.command("replay")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--speed", default="60x", show_default=True, help="Time factor (60x) or max.")
@click.option("--mqtt", "url", default=None, help="Publish to this broker instead of storing.")
@click.option("--topic-prefix", default="devices", show_default=True)
@click.option(
    "--store",
    "store_url",
    envvar="MEDTWIN_STORE",
    default="./medtwin.db",
    show_default=True,
    help="Store URL (env MEDTWIN_STORE); not used with --mqtt.",
)
@_monitors_option
@click.option("--tz", default="UTC", show_default=True, help="Zone of naive timestamps.")
@click.option("--patient", default=None, help="Device-user id of records that name none.")
@click.option("--create-patients", is_flag=True, help="As for 'medtwin listen'.")
def replay_command(
    files: tuple[Path, ...],
    speed: str,
    url: str | None,
    topic_prefix: str,
    store_url: str,
    monitors: str | None,
    tz: str,
    patient: str | None,
    create_patients: bool,
) -> None:
    """Feed recorded FILES (CSV, Open mHealth, FHIR) through the live path in time order.

    Without --mqtt the messages go straight to the store and the monitors (alerts are
    printed as they fire); with --mqtt they are published for 'medtwin listen'.
    """
    from medtwin.ingest.replay import parse_speed, recorded_messages, replay

    try:
        factor = parse_speed(speed)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--speed") from exc
    if url is None:
        monitor_names(monitors)  # refuse a bad name before reading the files
    recorded = recorded_messages(list(files), prefix=topic_prefix, tz=tz, patient=patient)
    click.echo(
        f"replaying {len(recorded.messages)} readings at {speed} "
        f"({recorded.skipped} non-observations skipped, {recorded.unreadable} unreadable records)",
        err=True,
    )
    if url is not None:
        sent = _publish(url, recorded.messages, factor)
        click.echo(f"published {sent} messages to {url}", err=True)
        return
    from medtwin.ingest.mqtt import LiveIngest
    from medtwin.store import open_store

    store = open_store(store_url)
    hub = make_hub(store, monitors)
    live = LiveIngest(
        store,
        downstream=hub,
        prefix=topic_prefix,
        create_patients=create_patients,
        on_alert=_print_alert,
        skew_tolerance_s=float("inf"),
    )
    try:
        replay(recorded.messages, live.handle, speed=factor)
    finally:
        live.close()
        store.close()
    c = live.report.as_dict()
    click.echo(
        f"replayed: {c['facts_changed']} facts stored, {c['unchanged']} repeats, "
        f"{c['quarantined']} quarantined, {c['alerts']} alerts",
        err=True,
    )


def _publish(url: str, messages: list[tuple[float, Any]], speed: float | None) -> int:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from medtwin.ingest.mqtt import parse_mqtt_url
    from medtwin.ingest.replay import replay

    host, port, tls = parse_mqtt_url(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv311)
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(100)
    if tls:
        client.tls_set()
    try:
        client.connect(host, port)
    except OSError as exc:  # refused, unknown host, unreachable: nothing was published
        click.echo(f"medtwin: error: cannot reach the broker {url}: {exc}", err=True)
        raise click.exceptions.Exit(1) from None
    client.loop_start()
    pending: list[Any] = []

    def send(group: Any) -> None:
        for message in group:
            pending.append(client.publish(message.topic, message.payload, qos=1))

    try:
        sent = replay(messages, send, speed=speed)
        for info in pending:
            info.wait_for_publish(timeout=60)
    finally:
        client.disconnect()
        client.loop_stop()
    return sent
