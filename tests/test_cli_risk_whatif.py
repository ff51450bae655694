"""``medtwin risk --whatif`` on a shared Synthea patient: diet through the body-weight model,
explained rows, sources, --horizon and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from medtwin.cli import main

# A 65-year-old man on verapamil and simvastatin, 91.5 kg, 1.80 m, SBP 130 in mid-2020 (Synthea R4).
AUSTIN = "Austin_Spencer_29195483-ce99-4a73-9cee-2d6728078472.json"
DATE = "2020-12-01"


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def austin(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> list[str]:
    path = shared / "fhir" / "synthea-r4" / AUSTIN
    db = str(tmp_path_factory.mktemp("whatif") / "medtwin.db")
    _cli("import", str(path), "--store", db)
    return ["risk", path.stem.rsplit("_", 1)[1], "--store", db, "--date", DATE, "--no-save"]


def test_risk_whatif_through_the_body_weight_model(austin: list[str]) -> None:
    """diet= runs the Hall 2011 model from the recorded weight to --horizon; each row says which
    inputs moved, through what, with the sources' keys and the ARR's range."""
    from medtwin.twin.prevention import SOURCES, project_weight

    changes = "diet=-500kcal,weight=-5kg,statin"
    out = json.loads(_cli(*austin, "--whatif", changes, "--horizon", "6m", "--json").output)
    assert out["whatif_horizon_days"] == 182.5
    inputs = out["inputs"]
    weight, height = inputs["weight_kg"]["value"], inputs["height_cm"]["value"] / 100.0
    sbp = inputs["systolic_bp_mm_hg"]["value"]
    assert inputs["age_years"]["value"] == 65 and inputs["sex"]["value"] == "male"
    rows = {(r["score"], r["change"]): r for r in out["whatif"]}
    diet = rows["prevent_10y", "diet=-500kcal"]
    moved = {c["input"]: c for c in diet["inputs"]}
    expected = project_weight(
        "male", 65, height, weight, intake_change_kcal_per_day=-500, horizon_days=182.5
    )
    assert moved["weight_kg"]["before"] == weight
    assert moved["weight_kg"]["after"] == pytest.approx(expected.weight_kg, abs=1e-9)
    assert moved["weight_kg"]["sources"] == ["hall2011", "fao2004"]
    lost = weight - expected.weight_kg
    assert moved["systolic_bp_mm_hg"]["after"] == pytest.approx(max(sbp - 1.05 * lost, 120.0))
    assert diet["arr_low"] <= diet["arr"] <= diet["arr_high"]
    assert diet["rank"] is not None
    assert rows["prevent_10y", "statin"]["arr"] is None  # on simvastatin
    assert rows["prevent_10y", "statin"]["note"] == "already on a statin"
    assert {"hall2011", "neter2003"} <= set(out["whatif_sources"])
    assert out["whatif_sources"]["neter2003"] == SOURCES["neter2003"]
    text = _cli(*austin, "--whatif", "diet=-500kcal", "--horizon", "26w").output
    assert "hall_2011_body_weight, 182 d" in text and "Sources" in text


def test_risk_whatif_bad_input(austin: list[str]) -> None:
    bad = CliRunner().invoke(main, [*austin, "--whatif", "diet=-500kcal", "--horizon", "soon"])
    assert bad.exit_code == 2 and "--horizon" in bad.output and "not a duration" in bad.output
    bad = CliRunner().invoke(main, [*austin, "--whatif", "diet=lots"])
    assert bad.exit_code == 2 and "'diet=lots'" in bad.output
