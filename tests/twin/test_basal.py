"""A pump's basal program recorded for the twin (medtwin.twin.basal, medtwin twin basal)."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from medtwin.cli import main
from medtwin.record.facts import Coding, Demographics, Identifier, Observation
from medtwin.store import open_store
from medtwin.twin import DataError
from medtwin.twin.basal import basal_profile_facts, parse_basal_profile
from medtwin.twin.twin import Twin

WHO = Identifier("urn:medtwin:device-user", "pump-1")
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("06:00=1.1", "starts at 00:00"),
        ("00:00=0.8,25:00=1", "is no time"),
        ("00:00=0.8,06:00", "is not HH:MM=RATE"),
        ("00:00=0.8,00:00=0.9", "a time is given twice"),
        ("00:00=12", "above 10 U/h"),
    ],
)
def test_a_program_that_is_not_one_is_refused(text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_basal_profile(text)


def test_the_rates_cover_every_day_on_the_patient_s_clock() -> None:
    """Three rates a day over Berlin's fall back (27 October 2024): each rate runs from its
    time to the next on the wall clock, so that night's 00:00-06:00 rate runs 7 hours."""
    profile = parse_basal_profile("00:00=0.8,06:00=1.1,22:00=0.9")
    facts = basal_profile_facts(WHO, profile, dt.date(2024, 10, 26), dt.date(2024, 10, 27), BERLIN)
    assert len(facts) == 6
    hours = [
        (f.effective_end - f.effective_start).total_seconds() / 3600  # type: ignore[operator]
        for f in facts
    ]
    assert hours == [6.0, 16.0, 2.0, 7.0, 16.0, 2.0]
    assert [f.rate_value for f in facts] == [0.8, 1.1, 0.9] * 2
    assert facts[0].effective_start == dt.datetime(2024, 10, 25, 22, 0, tzinfo=dt.UTC)
    for a, b in itertools.pairwise(facts):
        assert a.effective_end == b.effective_start  # no gap, no overlap
    assert len({f.source_id for f in facts}) == 6


def test_the_twin_reads_the_program_as_its_basal_rates(tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    store = open_store(db, actor="test")
    try:
        readings = [
            Observation(
                source="cgm",
                source_id=f"cgm/{i}",
                subject=WHO,
                code=Coding("http://loinc.org", "99504-3", "Glucose"),
                effective_start=dt.datetime(2024, 3, 2, 0, 0, tzinfo=dt.UTC)
                + dt.timedelta(minutes=5 * i),
                value_num=120.0,
                unit="mg/dL",
            )
            for i in range(288)
        ]
        store.append_facts(
            [Demographics(source="reg", source_id="P/1", subject=WHO, identifiers=(WHO,))],
            source="reg",
        )
        store.append_facts(readings, source="cgm")
    finally:
        store.close()
    args = ["twin", "basal", "pump-1", "--store", db, "--since", "2024-03-01", "--until"]
    args += ["2024-03-02", "--profile", "00:00=0.8,06:00=1.1,22:00=0.9", "--tz", "UTC"]
    runner = CliRunner()
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "basal program of 3 rates (24.20 U a day)" in first.output
    assert "6 rates new, 0 corrected, 0 unchanged" in first.output
    again = runner.invoke(main, args)
    assert "0 rates new, 0 corrected, 6 unchanged" in again.output
    store = open_store(db, actor="test")
    try:
        twin = Twin.from_store(store, "pump-1", days=1)
    finally:
        store.close()
    basal = [(e.t_min, e["u_per_min"] * 60) for e in twin.data.scenario.events if e.type == "basal"]
    # the window is the day up to the last reading (23:55 on 2 March): minute 0 is 23:55 on
    # 1 March, under that evening's 22:00 rate; midnight is minute 5
    assert basal == [
        (0.0, pytest.approx(0.9)),
        (5.0, pytest.approx(0.8)),
        (5.0 + 360.0, pytest.approx(1.1)),
        (5.0 + 1320.0, pytest.approx(0.9)),
    ]
    changed = runner.invoke(main, [*args[:-4], "--profile", "00:00=0.7,06:00=1.1,22:00=0.9"])
    assert "0 rates new, 2 corrected, 4 unchanged" in changed.output
    bad = runner.invoke(main, [*args[:-4], "--profile", "06:00=1"])
    assert bad.exit_code != 0 and "starts at 00:00" in bad.output
