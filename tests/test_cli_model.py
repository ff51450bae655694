"""``medtwin simulate`` and ``medtwin model list``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner, Result

from medtwin.cli import main
from medtwin.model import get_model, parse_scenario, simulate

MEDTWIN = Path(sys.executable).with_name("medtwin")
SCENARIO = {
    "events": [
        {"type": "basal"},
        {"type": "meal", "t_h": 7, "carbs_g": 50},
        {"type": "bolus", "t_h": 7, "insulin_u": 4},
        {"type": "meal", "t_h": 12, "carbs_g": 70},
    ]
}


ADULT_001 = ("simulate", "--model", "uva_padova_2008", "--preset", "adult#001")


def invoke(*args: str, code: int = 0, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)
    assert result.exit_code == code, (args, result.output)
    return result


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "day.json"
    path.write_text(json.dumps(SCENARIO))
    return path


def test_simulate_json_is_the_model_run(scenario_file: Path) -> None:
    out = invoke(
        "simulate",
        "--model",
        "uva_padova_2008",
        "--preset",
        "adolescent#001",
        "--scenario",
        str(scenario_file),
        "--hours",
        "24",
        "--json",
    ).output
    data = orjson.loads(out)
    assert data["model"] == "uva_padova_2008"
    assert data["version"] == get_model("uva_padova_2008").version
    assert data["times_min"][:3] == [0.0, 5.0, 10.0]
    assert data["times_min"][-1] == 1440.0
    assert len(data["bg_mg_dl"]) == len(data["cgm_mg_dl"]) == len(data["times_min"]) == 289
    m = get_model("uva_padova_2008")
    r = simulate(m, m.preset("adolescent#001"), parse_scenario(SCENARIO), t_end=1440, dt_out=5)
    np.testing.assert_allclose(data["bg_mg_dl"], r.observables["bg_mg_dl"][0], atol=1e-4)
    cgm = np.array(data["cgm_mg_dl"])
    summary = data["summary"]
    assert summary["mean_mg_dl"] == round(float(cgm.mean()), 1)
    assert summary["gmi_pct"] == round(3.31 + 0.02392 * float(cgm.mean()), 1)
    tir = 100 * np.mean((cgm >= 70) & (cgm <= 180))
    assert summary["time_in_range_70_180_pct"] == round(float(tir), 1)
    assert data["provenance"]["scenario"]["events"][1]["t_min"] == 420.0
    assert data["parameters"]["bw_kg"] == 68.706


def test_simulate_summary_and_noise(scenario_file: Path) -> None:
    text = invoke(
        "simulate",
        "--model",
        "uva_padova_2008",
        "--preset",
        "adult#001",
        "--scenario",
        str(scenario_file),
    ).output
    assert text.startswith("uva_padova_2008 1.0.0, adult#001, 24 h, 4 events")
    assert "time in range 70-180" in text and "GMI" in text
    noisy = orjson.loads(
        invoke(
            "simulate",
            "--model",
            "uva_padova_2008",
            "--preset",
            "adult#001",
            "--scenario",
            str(scenario_file),
            "--json",
            "--cgm-noise-seed",
            "7",
        ).output
    )
    clean = orjson.loads(
        invoke(
            "simulate",
            "--model",
            "uva_padova_2008",
            "--preset",
            "adult#001",
            "--scenario",
            str(scenario_file),
            "--json",
        ).output
    )
    diff = np.array(noisy["cgm_mg_dl"]) - np.array(clean["cgm_mg_dl"])
    assert np.abs(diff).max() > 1.0  # the sensor error is mg/dL-sized
    assert noisy["bg_mg_dl"] == clean["bg_mg_dl"]  # plasma glucose has no sensor


def test_scenario_from_stdin() -> None:
    data = orjson.loads(
        invoke(
            "simulate",
            "--model",
            "uva_padova_2008",
            "--preset",
            "child#002",
            "--scenario",
            "-",
            "--hours",
            "2",
            "--json",
            stdin=json.dumps([{"type": "basal"}]),
        ).output
    )
    gb = get_model("uva_padova_2008").preset("child#002")[0][
        get_model("uva_padova_2008").parameter_names().index("gb_mg_dl")
    ]
    assert abs(data["bg_mg_dl"][-1] - gb) < 0.05


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "glucose", "--preset", "adult#001"], "unknown model 'glucose' (known: "),
        (["--model", "uva_padova_2008", "--preset", "adult#011"], "unknown preset 'adult#011'"),
    ],
)
def test_unknown_model_or_preset_is_one_line(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [str(MEDTWIN), "simulate", *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medtwin: error: ")
    assert message in lines[0]
    assert "uva_padova_2008" in lines[0] or "adolescent#001" in lines[0]


def test_bad_scenario_names_event_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"events": [{"type": "meal", "t_min": 60, "carbs_g": -1}]}))
    result = invoke(
        "simulate",
        "--model",
        "uva_padova_2008",
        "--preset",
        "adult#001",
        "--scenario",
        str(path),
        code=1,
    )
    assert "event 0 (meal): field 'carbs_g' must be >= 0" in result.output
    path.write_text(
        json.dumps(
            {"events": [{"type": "blood_loss", "t_min": 1, "volume_ml": 1, "duration_min": 1}]}
        )
    )
    result = invoke(
        "simulate",
        "--model",
        "uva_padova_2008",
        "--preset",
        "adult#001",
        "--scenario",
        str(path),
        code=1,
    )
    assert "does not take 'blood_loss' events" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hours", "-3"], "--hours must be a positive number, got -3"),
        (["--hours", "nan"], "--hours must be a positive number, got nan"),
        (["--every-min", "0"], "--every-min must be a positive number, got 0"),
        # 1e9 h every 5 min: 168 billion values, refused before allocating them
        (["--hours", "1e9"], "is 168,000,000,028 values, more than the 200,000,000"),
    ],
)
def test_bad_times_name_the_option(args: list[str], message: str) -> None:
    result = invoke(
        "simulate", "--model", "uva_padova_2008", "--preset", "adult#001", *args, code=1
    )
    assert message in result.output


def test_no_basal_event_is_noted(scenario_file: Path) -> None:
    """The UVA/Padova model gives no basal insulin without a basal event (as simglucose):
    glucose climbs; the output says why and how to give the patient's own basal."""
    bare = invoke(*ADULT_001, "--json")
    data = orjson.loads(bare.output)
    assert data["cgm_mg_dl"][-1] > 300 and '{"type": "basal"}' in data["note"]
    text = invoke(*ADULT_001).output
    assert "note: no basal event, so no basal insulin" in text
    basal = invoke(*ADULT_001, "--scenario", str(scenario_file), "--json")
    assert orjson.loads(basal.output)["note"] is None
    propofol = invoke(
        "simulate", "--model", "propofol_marsh", "--preset", "adult-female-40y", "--json"
    )
    assert orjson.loads(propofol.output)["note"] is None


def test_model_list() -> None:
    text = invoke("model", "list").output
    assert "uva_padova_2008 1.0.0" in text and "presets: adolescent#001" in text
    data = orjson.loads(invoke("model", "list", "--json").output)
    uva = next(m for m in data if m["name"] == "uva_padova_2008")
    assert len(uva["presets"]) == 30
    assert uva["event_types"] == ["basal", "bolus", "meal"]
    assert {p["name"] for p in uva["parameters"]} >= {"bw_kg", "kabs_per_min", "vg_dl_per_kg"}
