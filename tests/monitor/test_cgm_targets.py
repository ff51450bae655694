"""The CGM report's target groups (Battelino et al. Diabetes Care 2019;42:1593-1603, Table 2).

Most adults, older or high-risk adults, and pregnancy (range 63-140 mg/dL) with type 1 diabetes
or with type 2 or gestational diabetes. ``medtwin cgm`` chooses pregnancy from the record: the
shared Synthea patients' pregnancies (SNOMED 72892002 Normal pregnancy, from conception to
delivery) with CGM readings added during and after one.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from medtwin.cli import cgm_command, main
from medtwin.physiology.glycemia import CGM_TARGET_SETS, cgm_metrics

iglu = pytest.importorskip("iglu_python", reason="iglu-python is a dev dependency (make test)")

BONNIE = "Bonnie_Kemmer_b67d9cf2-bfd2-4461-94a9-8b"  # pregnant 2019-11-13 to 2020-06-17
ALMEDA = "Almeda_Conn_67e13ece-8aed-46fa-ab6c-6731"  # born 1942-09-05
SCT = "http://snomed.info/sct"


def _trace(days: int, start: datetime, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """5-minute readings: a daily wave 60-200 mg/dL with noise, so every range has time."""
    t = start.timestamp() + 300.0 * np.arange(days * 288)
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * (t % 86400.0) / 86400.0
    return t, np.clip(130.0 + 70.0 * np.sin(phase) + rng.normal(0, 15, t.size), 40.0, 400.0)


def test_the_pregnancy_ranges_agree_with_iglu() -> None:
    import pandas as pd

    t, g = _trace(14, datetime(2024, 3, 1, tzinfo=UTC))
    mine = cgm_metrics(t, g, targets="pregnancy-type1")
    frame = pd.DataFrame({"id": "p", "time": pd.to_datetime(t, unit="s", utc=True), "gl": g})
    theirs = {
        "time_in_range_63_140_pct": iglu.in_range_percent(frame, [[63, 140]])["in_range_63_140"],
        "time_below_63_pct": iglu.below_percent(frame, [63])["below_63"],
        "time_above_140_pct": iglu.above_percent(frame, [140])["above_140"],
    }
    for key, column in theirs.items():
        assert mine[key] == pytest.approx(float(column.iloc[0]), abs=1e-9), key
    assert 10 < mine["time_below_63_pct"] < mine["time_above_140_pct"]  # a trace with both
    assert mine["targets_group"] == "pregnancy-type1"
    assert set(mine["targets"]) == {
        "active_pct", "cv_pct", "time_in_range_63_140_pct", "time_below_63_pct",
        "time_below_54_pct", "time_above_140_pct",
    }  # fmt: skip
    assert mine["targets"]["time_in_range_63_140_pct"] == {
        "target": "> 70 %",
        "met": mine["time_in_range_63_140_pct"] > 70,
    }


def test_the_same_readings_meet_the_older_targets_and_not_the_adult_ones() -> None:
    """60 % in range, 0.5 % below 70 and 8 % above 250: not enough time in range for most
    adults (> 70 %) nor few enough highs (< 5 %), enough for an older or high-risk adult (> 50 %,
    < 10 %); the lows meet both (< 4 % and < 1 %)."""
    n = 2000
    g = np.full(n, 120.0)
    g[: int(0.005 * n)] = 65.0
    g[int(0.005 * n) : int(0.085 * n)] = 280.0
    g[int(0.085 * n) : int(0.40 * n)] = 200.0
    t = 300.0 * np.arange(n)
    adult = cgm_metrics(t, g)
    older = cgm_metrics(t, g, targets="older")
    assert adult["time_in_range_70_180_pct"] == pytest.approx(60.0)
    assert adult["targets_group"] == "adult" and older["targets_group"] == "older"
    assert not adult["targets"]["time_in_range_70_180_pct"]["met"]
    assert not adult["targets"]["time_above_250_pct"]["met"]
    assert older["targets"]["time_in_range_70_180_pct"] == {"target": "> 50 %", "met": True}
    assert older["targets"]["time_above_250_pct"] == {"target": "< 10 %", "met": True}
    assert older["targets"]["time_below_70_pct"] == {"target": "< 1 %", "met": True}
    assert "time_above_180_pct" not in older["targets"]  # the consensus sets none for them
    # the figures do not depend on the group
    assert {k: v for k, v in adult.items() if "targets" not in k} == {
        k: v for k, v in older.items() if "targets" not in k
    }
    with pytest.raises(ValueError, match="targets: one of adult, older, pregnancy-type1"):
        cgm_metrics(t, g, targets="children")


def test_the_command_offers_every_group() -> None:
    option = next(p for p in cgm_command.params if p.name == "targets")
    assert isinstance(option.type, click.Choice)
    assert list(option.type.choices) == ["auto", *CGM_TARGET_SETS]


def _observation(patient: str, when: datetime, value: float) -> dict[str, Any]:
    key = f"cgm-{patient[:8]}-{when:%Y%m%d%H%M}"
    return {
        "fullUrl": f"urn:uuid:{key}",
        "resource": {
            "resourceType": "Observation",
            "id": key,
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "99504-3"}]},
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": when.isoformat(),
            "valueQuantity": {
                "value": round(value),
                "unit": "mg/dL",
                "system": "http://unitsofmeasure.org",
                "code": "mg/dL",
            },
        },
    }


def _readings(path: Path, patient: str, start: datetime, days: int) -> Path:
    t, g = _trace(days, start)
    entries = [
        _observation(patient, datetime.fromtimestamp(ts, UTC), v)
        for ts, v in zip(t.tolist(), g.tolist(), strict=True)
    ]
    path.write_bytes(
        orjson.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})
    )
    return path


def _type1(path: Path, patient: str) -> Path:
    condition = {
        "resourceType": "Condition",
        "id": f"t1d-{patient[:8]}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": SCT, "code": "46635009", "display": "Type 1 diabetes"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "onsetDateTime": "1995-06-01",
    }
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": condition}]}
    path.write_bytes(orjson.dumps(bundle))
    return path


def _patient_id(bundle: Path) -> str:
    entries = orjson.loads(bundle.read_bytes())["entry"]
    return next(e["resource"]["id"] for e in entries if e["resource"]["resourceType"] == "Patient")


def _report(runner: CliRunner, db: str, patient: str, *more: str) -> dict[str, Any]:
    out = runner.invoke(main, ["cgm", patient, "--store", db, "--json", *more])
    assert out.exit_code == 0, out.output
    return dict(json.loads(out.output))


def test_the_record_chooses_the_pregnancy_targets(shared: Path, tmp_path: Path) -> None:
    """Bonnie Kemmer's record holds a pregnancy from 2019-11-13 to its end on 2020-06-17. CGM
    readings in February 2020 get the pregnancy range; once type 1 diabetes is recorded, its
    targets; readings in August 2020, after the delivery, most adults' targets."""
    bundle = next((shared / "fhir" / "synthea-r4").glob(BONNIE + "*.json"))
    pid = _patient_id(bundle)
    db = str(tmp_path / "m.db")
    runner = CliRunner()
    during = _readings(tmp_path / "feb.json", pid, datetime(2020, 2, 1, tzinfo=UTC), 14)
    done = runner.invoke(main, ["import", str(bundle), str(during), "--store", db])
    assert done.exit_code == 0, done.output

    other = _report(runner, db, pid)
    assert other["targets_group"] == "pregnancy-other"
    assert other["targets_basis"].startswith(
        "pregnancy in the record: 72892002 Normal pregnancy (2019-11-13)"
    )
    assert set(other["targets"]) == {"active_pct", "cv_pct"}  # no range targets: no evidence
    text = runner.invoke(main, ["cgm", pid, "--store", db]).output
    assert "time in range 63-140" in text and "time in range 70-180" not in text
    assert "pregnancy with type 2 or gestational diabetes" in text
    assert "no time-in-range targets for type 2 or gestational diabetes" in text

    t1d = _type1(tmp_path / "t1d.json", pid)
    assert runner.invoke(main, ["import", str(t1d), "--store", db]).exit_code == 0
    type1 = _report(runner, db, pid)
    assert type1["targets_group"] == "pregnancy-type1"
    assert "type 1 diabetes: 46635009 Type 1 diabetes (1995-06-01)" in type1["targets_basis"]
    in_range = type1["time_in_range_63_140_pct"]
    assert type1["targets"]["time_in_range_63_140_pct"] == {"target": "> 70 %", "met": False}
    assert 20 < in_range < 70
    text = runner.invoke(main, ["cgm", pid, "--store", db]).output
    assert f"time in range 63-140            {in_range:.1f} %   target > 70 %: NOT met" in text
    html = tmp_path / "agp.html"
    assert runner.invoke(main, ["cgm", pid, "--store", db, "--plot", str(html)]).exit_code == 0
    lines = re.findall(r'"y0":([0-9.]+),"y1":\1', html.read_text())
    assert sorted(float(v) for v in lines) == [63.0, 140.0]  # the pregnancy range
    shown = " ".join(runner.invoke(main, ["show", pid, "--store", db]).output.split())
    assert f"in range 63-140 {in_range:.1f} % (target not met)" in shown
    assert "targets for pregnancy with type 1 diabetes" in shown

    # the user's choice wins, and says so
    chosen = _report(runner, db, pid, "--targets", "adult")
    assert chosen["targets_group"] == "adult" and chosen["targets_basis"] == "chosen by the user"
    assert chosen["time_in_range_70_180_pct"] == type1["time_in_range_70_180_pct"]

    after = _readings(tmp_path / "aug.json", pid, datetime(2020, 8, 1, tzinfo=UTC), 14)
    assert runner.invoke(main, ["import", str(after), "--store", db]).exit_code == 0
    adult = _report(runner, db, pid)
    assert adult["end"][:10] == "2020-08-14" and adult["readings"] == 14 * 288
    assert adult["targets_group"] == "adult" and adult["targets_hints"] == []
    assert adult["targets_basis"] == "no pregnancy at the date in the record"
    # February again: the pregnancy then is still read (the record is read at the report's end)
    again = _report(runner, db, pid, "--until", "2020-02-15")
    assert again["targets_group"] == "pregnancy-type1"


def test_an_older_patient_is_told_of_the_older_adults_targets(shared: Path, tmp_path: Path) -> None:
    bundle = next((shared / "fhir" / "synthea-r4").glob(ALMEDA + "*.json"))
    pid = _patient_id(bundle)
    db = str(tmp_path / "m.db")
    runner = CliRunner()
    readings = _readings(tmp_path / "cgm.json", pid, datetime(2020, 2, 1, tzinfo=UTC), 14)
    assert runner.invoke(main, ["import", str(bundle), str(readings), "--store", db]).exit_code == 0
    report = _report(runner, db, pid)
    assert report["targets_group"] == "adult"  # a hint, not applied: the clinician's call
    assert report["targets_hints"] == [
        "aged 77: for an older or high-risk adult the consensus sets other targets (time in "
        "range > 50 %, below 70 < 1 %): --targets older"
    ]
    text = runner.invoke(main, ["cgm", pid, "--store", db]).output
    assert "Note: aged 77: for an older or high-risk adult" in text
    older = _report(runner, db, pid, "--targets", "older")
    assert older["targets"]["time_in_range_70_180_pct"]["target"] == "> 50 %"


def test_a_young_adult_is_reminded_of_the_60_percent_note(tmp_path: Path) -> None:
    from medtwin.monitor.cgm import cgm_targets
    from medtwin.record.batch import Batch, ResourceUnit
    from medtwin.record.facts import Demographics, Identifier
    from medtwin.store import open_store

    who = Identifier("urn:test", "y")
    demo = Demographics(
        source="t", source_id="Patient/y", subject=who, identifiers=(who,), birth_date="2004-05-01"
    )
    store = open_store(str(tmp_path / "m.db"), actor="test")
    try:
        store.append(Batch(source="t", units=[ResourceUnit(key="Patient/y", facts=[demo])]))
        chosen = cgm_targets(store, store.resolve_patient("y"), datetime(2024, 3, 1, tzinfo=UTC))
    finally:
        store.close()
    assert chosen["group"] == "adult"
    assert chosen["hints"] == [  # 19 years and 10 months: 19 (completed years, not rounded)
        "aged 19: under 25 with an HbA1c goal of 7.5 %, the consensus sets time in range to "
        "about 60 %"
    ]


def test_the_panel_lists_every_cgm_patient_the_most_at_risk_first(
    shared: Path, tmp_path: Path
) -> None:
    """`medtwin cgm --all`: two shared Synthea patients with CGM readings added (one pregnant,
    readings with many lows; one of 77, steadier) and 98 without: two rows, ordered by the
    Glycemia Risk Index, each with the targets of its group and those it misses."""
    folder = shared / "fhir" / "synthea-r4"
    bonnie = next(folder.glob(BONNIE + "*.json"))
    almeda = next(folder.glob(ALMEDA + "*.json"))
    db = str(tmp_path / "m.db")
    runner = CliRunner()
    steady = tmp_path / "almeda.json"
    _readings(steady, _patient_id(almeda), datetime(2020, 2, 1, tzinfo=UTC), 14)
    # the same wave, narrower: fewer lows and highs
    bundle = orjson.loads(steady.read_bytes())
    for entry in bundle["entry"]:
        quantity = entry["resource"]["valueQuantity"]
        quantity["value"] = round(130 + 0.4 * (quantity["value"] - 130))
    steady.write_bytes(orjson.dumps(bundle))
    wavy = _readings(
        tmp_path / "bonnie.json", _patient_id(bonnie), datetime(2020, 2, 1, tzinfo=UTC), 14
    )
    done = runner.invoke(main, ["import", str(folder), str(steady), str(wavy), "--store", db])
    assert done.exit_code == 0, done.output
    out = runner.invoke(main, ["cgm", "--all", "--store", db, "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["name"] for r in rows] == ["Bonnie Kemmer", "Almeda Conn"]
    assert rows[0]["gri"] > rows[1]["gri"]
    assert rows[0]["targets_group"] == "pregnancy-other" and rows[1]["targets_group"] == "adult"
    assert rows[0]["not_met"] == ["cv_pct"]  # no range targets in this group
    one = _report(runner, db, _patient_id(almeda))
    assert rows[1]["not_met"] == [k for k, v in one["targets"].items() if not v["met"]]
    assert rows[1]["time_in_range_70_180_pct"] == one["time_in_range_70_180_pct"]
    text = runner.invoke(main, ["cgm", "--all", "--store", db]).output
    assert text.startswith("CGM panel: 2 patients with CGM readings (14 days")
    assert "* pregnancy: % in range 63-140 and below 63 mg/dL" in text
    both = runner.invoke(main, ["cgm", _patient_id(almeda), "--all", "--store", db])
    assert both.exit_code == 2 and "give PATIENT or --all" in both.output


def test_the_report_compares_with_the_period_before(shared: Path, tmp_path: Path) -> None:
    """28 days of readings, the last 14 lower (a new basal rate too high, say): the report's
    ``previous`` is the report of the 14 days before, the text shows both, and the panel the
    change of time in range."""
    almeda = next((shared / "fhir" / "synthea-r4").glob(ALMEDA + "*.json"))
    pid = _patient_id(almeda)
    path = _readings(tmp_path / "cgm.json", pid, datetime(2020, 2, 1, tzinfo=UTC), 28)
    bundle = orjson.loads(path.read_bytes())
    for entry in bundle["entry"][14 * 288 :]:
        entry["resource"]["valueQuantity"]["value"] -= 25
    path.write_bytes(orjson.dumps(bundle))
    db = str(tmp_path / "m.db")
    runner = CliRunner()
    assert runner.invoke(main, ["import", str(almeda), str(path), "--store", db]).exit_code == 0
    now = _report(runner, db, pid)
    then = _report(runner, db, pid, "--until", now["start"])
    assert now["previous"]["readings"] == then["readings"] == 14 * 288
    for key in ("time_in_range_70_180_pct", "time_below_70_pct", "gri", "mean_mg_dl"):
        assert now["previous"][key] == pytest.approx(then[key], abs=1e-9), key
    assert now["time_below_70_pct"] > now["previous"]["time_below_70_pct"] + 5
    text = runner.invoke(main, ["cgm", pid, "--store", db]).output
    was = now["previous"]["time_below_70_pct"]
    assert f"{now['time_below_70_pct']:.1f} %     {was:.1f} %   target < 4 %" in text
    assert "previous   (the 14 days before: 4,032 readings)" in text
    panel = runner.invoke(main, ["cgm", "--all", "--store", db]).output
    change = now["time_in_range_70_180_pct"] - now["previous"]["time_in_range_70_180_pct"]
    assert f"{change:+.1f}" in panel
    assert then["previous"] is None  # nothing before the first readings
    # a window after the data says where the readings end
    later = runner.invoke(main, ["cgm", pid, "--until", "2021-01-01", "--store", db])
    assert later.exit_code == 1
    assert "0 CGM reading(s) between 2020-12-18 00:00 and 2021-01-01 00:00 UTC" in later.output
    assert f"(the newest is of {now['end'][:10]}" in later.output
