"""``medtwin risk`` on shared Synthea patients: the derived inputs equal what the bundle says."""

from __future__ import annotations

import datetime as dt
import json
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


def test_risk_bad_input(synthea_store: tuple[str, Path]) -> None:
    db, path = synthea_store
    pid = path.stem.rsplit("_", 1)[1]
    result = CliRunner().invoke(main, ["risk", pid, "--store", db, "--score", "no_such_score"])
    assert result.exit_code == 1 and "no_such_score" in result.output
    result = CliRunner().invoke(main, ["risk", pid, "--store", db, "--date", "12/01/2020"])
    assert result.exit_code == 2 and "--date" in result.output
