"""``medtwin risk`` on shared Synthea patients: the derived inputs equal what the bundle says."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from medtwin.cli import main

# A 65-year-old man on verapamil and simvastatin with labs in mid-2020 (Synthea R4 sample).
AUSTIN = "Austin_Spencer_29195483-ce99-4a73-9cee-2d6728078472.json"
DATE = "2020-12-01"


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _bundle_latest(bundle: dict[str, Any], code: str, before: dt.datetime) -> tuple[float, str]:
    """Newest value of LOINC ``code`` (top-level or component) at or before ``before``."""
    best: tuple[str, float] | None = None
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] != "Observation":
            continue
        when = res.get("effectiveDateTime")
        if when is None or dt.datetime.fromisoformat(when) > before:
            continue
        parts = [res, *res.get("component", [])]
        for part in parts:
            codes = {c.get("code") for c in part.get("code", {}).get("coding", [])}
            found = code in codes and "valueQuantity" in part
            if found and (best is None or when >= best[0]):
                best = (when, float(part["valueQuantity"]["value"]))
    assert best is not None, code
    return best[1], best[0][:10]


@pytest.fixture(scope="module")
def synthea_store(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> tuple[str, Path]:
    folder = shared / "fhir" / "synthea-r4"
    files = [folder / AUSTIN, *sorted(folder.glob("*.json"))[:2]]
    db = str(tmp_path_factory.mktemp("risk") / "medtwin.db")
    _cli("import", *map(str, files), "--store", db)
    return db, folder / AUSTIN


def test_risk_inputs_equal_the_bundle(synthea_store: tuple[str, Path]) -> None:
    db, path = synthea_store
    bundle = json.loads(path.read_text())
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    out = json.loads(_cli("risk", patient["id"], "--date", DATE, "--store", db, "--json").output)
    at = dt.datetime(2020, 12, 1, 23, 59, 59, tzinfo=dt.UTC)
    inputs = out["inputs"]
    for name, code in (
        ("total_cholesterol_mg_dl", "2093-3"),
        ("hdl_mg_dl", "2085-9"),
        ("systolic_bp_mm_hg", "8480-6"),
        ("bmi_kg_m2", "39156-5"),
        ("creatinine_mg_dl", "38483-4"),
    ):
        value, day = _bundle_latest(bundle, code, at)
        assert inputs[name]["value"] == pytest.approx(value, rel=1e-9), name
        assert inputs[name]["provenance"][0]["date"] == day
        assert inputs[name]["age_days"] == (at.date() - dt.date.fromisoformat(day)).days
    born = dt.date.fromisoformat(patient["birthDate"])
    assert (
        inputs["age_years"]["value"]
        == 65
        == (2020 - born.year - ((born.month, born.day) > (12, 1)))
    )
    assert inputs["sex"]["value"] == patient["gender"]
    assert inputs["smoker"]["value"] is False  # 266919005 Never smoker
    # active MedicationRequests in the bundle: verapamil (C08DA01) and simvastatin (C10AA01)
    active = {
        c["code"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
        and e["resource"]["status"] == "active"
        for c in e["resource"]["medicationCodeableConcept"]["coding"]
    }
    assert "316672" in active  # Synthea's "Simvistatin 10 MG", simvastatin in RxNorm
    assert inputs["bp_treated"]["value"] is True and inputs["statin"]["value"] is True
    scores = {s["name"]: s for s in out["scores"]}
    assert scores["prevent_10y"]["status"] == "computed"
    assert scores["prevent_30y"]["status"] == "refused"  # 65 is outside 30-59
    assert out["stored"] >= 1


def test_risk_text_and_stale(synthea_store: tuple[str, Path]) -> None:
    db, path = synthea_store
    pid = path.stem.rsplit("_", 1)[1]
    text = _cli("risk", pid, "--store", db, "--date", "2026-01-01", "--no-save").output
    # labs of 2020 are stale in 2026: the score says so instead of using them
    assert (
        "cannot compute: missing total_cholesterol_mg_dl (latest 2020-07-07 is older than 365 days)"
        in text
    )
    whatif = _cli(
        "risk", pid, "--store", db, "--date", DATE, "--no-save", "--whatif", "sbp=-10,quit_smoking"
    ).output
    assert "1. sbp=-10" in whatif and "not applicable: not a current smoker" in whatif


def test_named_scores_list_only_their_inputs(synthea_store: tuple[str, Path]) -> None:
    """With --score, the Inputs section lists what those scores rest on (CKD-EPI: age, sex,
    creatinine) and counts the rest; --json still has every input."""
    db, path = synthea_store
    pid = path.stem.rsplit("_", 1)[1]
    args = ["risk", pid, "--store", db, "--date", DATE, "--no-save", "--score", "ckd_epi_2021"]
    lines = _cli(*args).output.splitlines()
    block = lines[lines.index("Inputs") + 1 : lines.index("Scores") - 1]
    names = [line.split()[0] for line in block if not line.lstrip().startswith("(")]
    assert names == ["age_years", "sex", "creatinine_mg_dl"]
    everything = json.loads(_cli(*args, "--json").output)["inputs"]
    assert (
        block[-1]
        == f"  ({len(everything) - 3} more inputs read for other scores: --json lists every input)"
    )


def test_risk_bad_input(synthea_store: tuple[str, Path]) -> None:
    db, path = synthea_store
    pid = path.stem.rsplit("_", 1)[1]
    result = CliRunner().invoke(main, ["risk", pid, "--store", db, "--score", "no_such_score"])
    assert result.exit_code == 1 and "no_such_score" in result.output
    result = CliRunner().invoke(main, ["risk", pid, "--store", db, "--date", "12/01/2020"])
    assert result.exit_code == 2 and "--date" in result.output


def test_risk_history(synthea_store: tuple[str, Path], tmp_path: Path) -> None:
    db, path = synthea_store
    pid = path.stem.rsplit("_", 1)[1]
    plot = tmp_path / "risk.html"
    args = ["risk", pid, "--store", db, "--history", "--every", "2y", "--from", "2010-01-01"]
    text = _cli(*args, "--plot", str(plot)).output
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("date "))
    # no PCE or QRISK3 column: he takes simvastatin throughout (both derived without statin
    # users); HAS-BLED is a range (on warfarin, no INRs: labile INR not known)
    assert header.split() == [
        "date", "cha2ds2_vasc", "ckd_epi_2021", "framingham_cvd_10y", "has_bled", "prevent_10y",
        "prevent_10y_ascvd", "prevent_10y_hf", "prevent_30y", "prevent_30y_ascvd", "prevent_30y_hf",
    ]  # fmt: skip
    rows = {line[:10]: line for line in lines if line[:4].isdigit() and line[4] == "-"}
    # 2010 .. 2020 every 2 years, then the record's last date
    assert list(rows) == [
        "2010-01-01", "2012-01-01", "2014-01-01", "2016-01-01", "2018-01-01", "2020-01-01",
        "2020-07-07",
    ]  # fmt: skip
    assert "cannot compute" in rows["2010-01-01"]  # no lipids yet
    assert "not applicable" in rows["2020-07-07"]  # PREVENT 30-year stops at 59
    # each computed risk with its interval over measurement variation, and what it is
    assert re.search(r"\d% \[[\d.]+-[\d.]+\]", rows["2020-07-07"])
    assert "[low-high]: the central 90 % of the risk over the day-to-day variation" in text
    stored = int(text.split(" result(s) stored (source medtwin:risk)")[0].rsplit("\n", 1)[1])
    html = plot.read_text()
    assert '"name":"prevent_10y"' in html and '"name":"framingham_cvd_10y"' in html
    assert '"name":"pce_ascvd_10y"' not in html
    # the same history again: JSON, nothing new to store; values equal the single-date command
    out = json.loads(_cli(*args, "--json").output)
    assert out["stored"] == 0 and out["every"] == "2y"
    computed = sum(
        c["status"].count("computed") + c["status"].count("range") for c in out["scores"].values()
    )
    assert stored == computed >= 20
    assert [p["date"] for p in out["points"]][-1] == "2020-07-07"
    single = json.loads(
        _cli("risk", pid, "--store", db, "--date", "2020-07-07", "--no-save", "--json").output
    )
    by_name = {s["name"]: s for s in single["scores"]}
    for name, column in out["scores"].items():
        assert column["values"][-1] == by_name[name]["value"], name
        assert column["status"][-1] == by_name[name]["status"], name
        assert column["variation"][-1] == by_name[name].get("variation"), name
    assert out["scores"]["prevent_10y"]["variation"][-1]["level"] == 0.9


def test_risk_history_bad_input(synthea_store: tuple[str, Path]) -> None:
    db, path = synthea_store
    pid = path.stem.rsplit("_", 1)[1]
    base = ["risk", pid, "--store", db, "--history"]
    result = CliRunner().invoke(main, [*base, "--every", "fortnightly"])
    assert result.exit_code == 2 and "--every" in result.output and "1y or 6m" in result.output
    result = CliRunner().invoke(main, [*base, "--from", "2020-13-01"])
    assert result.exit_code == 2 and "--from" in result.output
    result = CliRunner().invoke(main, [*base, "--from", "2020-01-01", "--to", "2019-01-01"])
    assert result.exit_code == 1 and "before --from" in result.output
    result = CliRunner().invoke(main, [*base, "--date", "2020-01-01"])
    assert result.exit_code == 2 and "--history takes --from/--to" in result.output
    result = CliRunner().invoke(main, ["risk", pid, "--store", db, "--plot", "x.html"])
    assert result.exit_code == 2 and "go with --history" in result.output


def test_scores_refused_for_one_reason_share_one_entry() -> None:
    """Three SCORE2 models outside Europe: one entry naming the three; a score refused for
    another reason, and a computed one, keep their own."""
    from medtwin.cli_risk import score_lines
    from medtwin.risk.from_record import ScoreOutcome

    def out(name: str, status: str, message: str, value: float | None = None) -> ScoreOutcome:
        return ScoreOutcome(name, name, value, None, "%", status, message, ())

    esc = "not applicable: the address country has no ESC cardiovascular risk region"
    lines = list(
        score_lines(
            [
                out("pce_ascvd_10y", "computed", "", 6.5),
                out("score2_10y", "refused", esc),
                out("qrisk3_10y", "missing", "cannot compute: missing bmi_kg_m2"),
                out("score2_op_10y", "refused", esc),
                out("score2_diabetes_10y", "refused", esc),
            ]
        )
    )
    assert lines[0].startswith("  pce_ascvd_10y") and "6.5 %" in lines[0]
    assert lines[1] == "  score2_10y, score2_op_10y, score2_diabetes_10y"
    assert lines[2].strip() == esc
    assert lines[3].split() == ["qrisk3_10y", "cannot", "compute:", "missing", "bmi_kg_m2"]
    assert len(lines) == 4
