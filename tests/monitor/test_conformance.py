"""Every registered monitor passes the same checks (river's check_estimator, for medtwin monitors).

* ``learn_many`` gives the same alerts and state as ``learn_one`` reading by reading;
* the state survives JSON and a restart: a monitor restored half-way continues exactly as the
  one that never stopped;
* alerts are well formed: known severity and category, a source, evidence drawn from the input,
  the patient of the stream, times within the stream;
* the description (``medtwin monitor list``) is complete.
"""

from __future__ import annotations

import json

import pytest

from medtwin.monitor import SEVERITIES, registry
from medtwin.monitor.base import Alert, Monitor

from .streams import plausible_stream

MONITORS = registry.all_monitors()


def _ids(cls: type[Monitor]) -> str:
    return cls.name


def test_there_are_monitors() -> None:
    assert registry.names() == sorted({cls.name for cls in MONITORS})
    assert {"news2", "qsofa", "mews", "artefact"} <= set(registry.names())


@pytest.mark.parametrize("cls", MONITORS, ids=_ids)
def test_describe_is_complete(cls: type[Monitor]) -> None:
    d = cls.describe()
    assert d["name"] == d["name"].lower() and d["name"]
    assert d["source"].strip(), "every monitor cites its published source"
    assert d["version"]
    json.dumps(d)


@pytest.mark.parametrize("cls", MONITORS, ids=_ids)
def test_learn_many_equals_learn_one(cls: type[Monitor]) -> None:
    stream = plausible_stream(cls.codes, days=35)
    one = cls("mt-conformance")
    alerts_one: list[Alert] = []
    for reading in stream:
        alerts_one.extend(one.learn_one(reading))
    many = cls("mt-conformance")
    alerts_many: list[Alert] = []
    for start in range(0, len(stream), 997):  # uneven chunks
        alerts_many.extend(many.learn_many(stream[start : start + 997]))
    assert [a.to_dict() for a in alerts_many] == [a.to_dict() for a in alerts_one]
    assert json.dumps(many.state_dict(), sort_keys=True) == json.dumps(
        one.state_dict(), sort_keys=True
    )


@pytest.mark.parametrize("cls", MONITORS, ids=_ids)
def test_state_survives_a_restart(cls: type[Monitor]) -> None:
    stream = plausible_stream(cls.codes, days=35, seed=1)
    half = len(stream) // 2
    steady = cls("mt-conformance")
    expected = steady.learn_many(stream)
    first = cls("mt-conformance")
    got = first.learn_many(stream[:half])
    saved = json.loads(json.dumps(first.state_dict(), allow_nan=False))
    second = cls("mt-conformance")
    second.load_state(saved)
    got += second.learn_many(stream[half:])
    assert [a.to_dict() for a in got] == [a.to_dict() for a in expected]


@pytest.mark.parametrize("cls", MONITORS, ids=_ids)
def test_alerts_are_well_formed(cls: type[Monitor]) -> None:
    stream = plausible_stream(cls.codes, days=35, seed=2)
    refs = {r.ref for r in stream}
    first, last = stream[0].epoch_s, stream[-1].epoch_s
    alerts = cls("mt-conformance").learn_many(stream)
    for alert in alerts:
        assert alert.patient_id == "mt-conformance"
        assert alert.monitor == cls.name and alert.monitor_version == cls.version
        assert alert.severity in SEVERITIES
        assert alert.source.strip() and alert.message.strip()
        assert set(alert.evidence) <= refs, "evidence must be facts the monitor was given"
        assert first <= alert.epoch_s <= last
        json.dumps(alert.to_dict(), allow_nan=False)


@pytest.mark.parametrize("cls", MONITORS, ids=_ids)
def test_unknown_parameter_is_refused(cls: type[Monitor]) -> None:
    from medtwin.monitor import MonitorConfigError

    with pytest.raises(MonitorConfigError, match="no_such_parameter"):
        cls("mt-conformance", {"no_such_parameter": 1})
