"""`medtwin monitor list` and `medtwin monitor run` over real US Core vitals."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from medtwin.cli import main


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_monitor_list_names_every_monitor_with_its_source() -> None:
    rows = orjson.loads(run("monitor", "list", "--json"))
    by_name = {row["name"]: row for row in rows}
    assert {"news2", "qsofa", "mews", "artefact"} <= set(by_name)
    assert (
        "8867-4" in by_name["news2"]["codes"] and by_name["news2"]["params"]["window_min"] == 60.0
    )
    assert all(row["source"] for row in rows)


def test_monitor_run_on_us_core_vitals(tmp_path: Path, shared: Path) -> None:
    db = str(tmp_path / "m.db")
    run("import", str(shared / "fhir" / "uscore"), "--store", db)
    # Peter James Chalmers' US Core vitals of 1999-07-02: RR 26 (3 points), SBP 109 (1), HR 44
    # (1), SpO2 99 on air, temperature 36.6 (RCP 2017 Chart 1): NEWS2 5, medium, consciousness
    # not recorded, so the score is a lower bound
    (patient,) = orjson.loads(run("patients", "--search", "Chalmers", "--store", db, "--json"))
    pid = patient["id"]
    out = orjson.loads(run("monitor", "run", pid, "--store", db, "--json"))
    news2 = [a for a in out["alerts"] if a["monitor"] == "news2"]
    assert [a["rule"] for a in news2] == ["news2.medium"]
    detail = news2[0]["detail"]
    assert detail["value"] == 5 and detail["partial"] and detail["missing"] == ["consciousness"]
    assert detail["components"]["respiratory_rate_per_min"] == 3
    assert any("respiratory-rate" in ref[1] for ref in news2[0]["evidence"])
    text = run("monitor", "run", pid, "--store", db, "--param", "news2.window_min=1")
    assert "alerts" in text
    bad = CliRunner().invoke(
        main, ["monitor", "run", pid, "--store", db, "--param", "news2.windo=5"]
    )
    assert bad.exit_code == 1 and "unknown parameter 'windo'" in bad.output
    bad = CliRunner().invoke(main, ["monitor", "run", pid, "--store", db, "--monitors", "nope"])
    assert bad.exit_code == 1 and "unknown monitor 'nope'" in bad.output
