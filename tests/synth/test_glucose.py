"""Tests of the model-based CGM, meals and insulin of synthetic people (``medtwin.synth.glucose``).

(1) The written records reproduce the CGM: re-simulating the ground-truth parameters of
``truth.json`` with the carbohydrate and insulin records (read back from the files, events
built here, not by the module) and adding the recorded sensor-noise seed gives every CGM
reading exactly. (2) The parameter set follows the person (age group, recorded weight, per-kg
parameters unchanged, steady-state basal) and a basal-only day stays at the basal glucose.
(3) Daily life: meals, bolus errors and missed boluses as in ``glucose.toml``. (4) Determinism.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from medtwin.model import parse_scenario, simulate
from medtwin.physiology.uva_padova import (
    UvaPadova2008,
    cgm_noise_mg_dl,
    steady_state_basal_u_per_min,
)
from medtwin.synth.glucose import age_group, choose_parameters, params, simulate_life
from medtwin.synth.streams import (
    CARBS_CODE,
    Profile,
    generate_patient_streams,
    generate_streams,
    write_streams,
)

NAMES = UvaPadova2008.parameter_names()


def _minutes(text: str, start: dt.datetime) -> float:
    return (dt.datetime.fromisoformat(text.replace("Z", "+00:00")) - start).total_seconds() / 60


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed 4, patients 0-2 (two given type 1 diabetes by enrichment, one with a glucose-low
    onset), 12 days."""
    folder = tmp_path_factory.mktemp("glucose")
    streams = generate_streams(3, 4, days=12, onset_fraction=1.0, type1_minimum=2)
    assert sum(p.glucose_life is not None for p in streams.patients) == 2
    assert any(o.kind == "glucose_low" for o in streams.truth)
    write_streams(streams, folder)
    return folder


def test_cgm_is_the_model_for_the_recorded_meals_and_insulin_plus_noise(written: Path) -> None:
    """Every CGM reading = round(clip(model CGM + Dexcom noise, 40, 400)), the model run from
    the truth's parameters with the meals and insulin read back from the record files."""
    truth = orjson.loads((written / "truth.json").read_bytes())
    start = dt.datetime.fromisoformat(truth["start"].replace("Z", "+00:00"))
    t_end = truth["days"] * 1440.0
    assert len(truth["glucose_model"]) == 2
    for entry in truth["glucose_model"]:
        index = truth["patients"].index(entry["patient"])
        folder = written / "streams" / f"patient-{index:05d}"
        p = np.array([[entry["parameters"][n] for n in NAMES]])
        events: list[dict[str, Any]] = []
        with (folder / "carbs.csv").open(newline="") as handle:
            for row in csv.DictReader(handle):
                assert row["metric"] == CARBS_CODE and row["unit"] == "g"
                t = _minutes(row["time"], start)
                events.append({"type": "meal", "t_min": t, "carbs_g": float(row["value"])})
        basal_rates = set()
        for line in (folder / "insulin.ndjson").read_bytes().splitlines():
            resource = orjson.loads(line)
            assert resource["medicationCodeableConcept"]["coding"][0]["code"] == "86009"
            dosage = resource["dosage"]
            if "dose" in dosage:
                assert dosage["dose"]["code"] == "[iU]"
                t = _minutes(resource["effectiveDateTime"], start)
                events.append({"type": "bolus", "t_min": t, "insulin_u": dosage["dose"]["value"]})
            else:
                assert dosage["rateQuantity"]["code"] == "[iU]/h"
                basal_rates.add(dosage["rateQuantity"]["value"])
        [rate] = basal_rates
        events.insert(0, {"type": "basal", "t_min": 0, "u_per_h": rate})
        times = np.arange(0.0, t_end, 5.0)
        run = simulate(
            UvaPadova2008, p, parse_scenario(events, t_end_min=t_end), t_end=t_end, times=times
        )
        model = run.observables["cgm_mg_dl"][0][: times.size]
        noise = cgm_noise_mg_dl(times, 1, entry["cgm_noise_seed"], entry["cgm_sensor"])[0]
        expected = np.round(np.clip(model + noise, 40.0, 400.0))
        with (folder / "glucose_cgm.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        at = np.array([_minutes(r["time"], start) / 5.0 for r in rows]).astype(int)
        got = np.array([float(r["value"]) for r in rows])
        assert got.size > 0.95 * times.size  # only the sensor warm-ups are missing
        np.testing.assert_array_equal(got, expected[at])


@pytest.mark.parametrize(
    ("age", "group"),
    [(9, "child"), (16, "adolescent"), (19, "adolescent"), (20, "adult"), (75, "adult")],
)
def test_the_parameter_set_follows_the_person(age: int, group: str) -> None:
    """Age group by age; BW = the recorded weight, every other parameter the preset's; the
    basal rate is u2ss x BW (steady state), rounded to the pump step of 0.01 U/h."""
    assert age_group(age) == group
    for seed in range(4):
        name, p, preset_bw = choose_parameters(np.random.default_rng(seed), age, 73.5)
        assert name.startswith(group + "#")
        preset = UvaPadova2008.preset(name).reshape(-1)
        assert preset_bw == preset[0] and p[0] == 73.5
        np.testing.assert_array_equal(p[1:], preset[1:])
    profile = Profile("SYN-5-0", 0, "female", age, True, 7.5, "UTC", 73.5, type1=True)
    life = generate_patient_streams(profile, seed=5, days=1, onset_fraction=0.0).glucose_life
    assert life is not None and life.age_group == group and life.params[0] == 73.5
    exact = float(steady_state_basal_u_per_min(life.params)[0]) * 60.0
    assert abs(life.basal_u_per_h - exact) <= 0.005 + 1e-12
    assert life.carb_ratio_g_per_u > 0 and life.correction_factor_mg_dl_per_u > 0


def test_a_basal_only_day_stays_at_the_basal_glucose() -> None:
    """With no meal, the exact steady-state basal (u2ss x BW) holds every person at
    Gb = Gpb / VG (the preset's basal glucose, Dalla Man 2007 eq 1) within 0.05 mg/dL over
    24 h, whatever their weight; the recorded rate, rounded to 0.01 U/h (an error of at most
    0.005 U/h, <= 1 % of these rates), moves it by less than 3 mg/dL."""
    for seed, age in enumerate((9, 15, 25, 45, 65, 80)):
        life = simulate_life(
            np.random.default_rng(seed),
            age_years=age,
            weight_kg=55.0 + 8 * seed,
            days=1,
            utc_offset_min=0.0,
        )
        p = life.params[None, :]
        gb = p[0, NAMES.index("gpb_mg_per_kg")] / p[0, NAMES.index("vg_dl_per_kg")]
        exact = float(steady_state_basal_u_per_min(p)[0])
        for rate, tolerance in ((exact, 0.05), (life.basal_u_per_h / 60.0, 3.0)):
            scenario = parse_scenario([{"type": "basal", "t_min": 0, "u_per_min": rate}])
            run = simulate(UvaPadova2008, p, scenario, t_end=1440.0, dt_out=30.0)
            drift = np.abs(run.observables["cgm_mg_dl"][0] - gb)
            assert drift.max() < tolerance, (life.preset, rate, drift.max())


def test_event_free_nights_return_towards_the_basal_glucose() -> None:
    """At night, 6 h or more after the last meal or bolus, the noise-free CGM of a population
    lies around the person's Gb: the median deviation within 20 % of Gb (the model's slow
    return after an over- or under-bolus keeps single nights further away)."""
    deviations = []
    for seed in range(16):
        life = simulate_life(
            np.random.default_rng(100 + seed),
            age_years=15 + 4 * seed,
            weight_kg=70.0,
            days=10,
            utc_offset_min=0.0,
        )
        p = life.params
        gb = p[NAMES.index("gpb_mg_per_kg")] / p[NAMES.index("vg_dl_per_kg")]
        events = np.sort(np.concatenate([life.meal_t_min, life.bolus_t_min]))
        last = events[np.clip(np.searchsorted(events, life.cgm_time_min, "right") - 1, 0, None)]
        quiet = (life.cgm_time_min - last >= 360) & (life.cgm_time_min >= events[0])
        if quiet.any():
            deviations.append(float(np.median(life.cgm_model_mg_dl[quiet] - gb) / gb))
    assert len(deviations) >= 12
    assert abs(float(np.median(deviations))) < 0.20, deviations


def test_meals_and_boluses_follow_the_plan() -> None:
    """Over 30 days x 12 people: about 3 main meals a day (p 0.95 each) and 0.9 snacks
    (3 x 0.3), carbohydrate per main meal 45/70/80 g on average; the bolus / meal ratio
    scatters by the counting error (log SD 0.25) around 1/CR; adults miss about 5 % of boluses.
    Tolerances: 4 standard errors of the drawn quantities."""
    therapy = params()["therapy"]
    meals = bolused = missed = 0
    ratios = []
    for seed in range(12):
        life = simulate_life(
            np.random.default_rng(seed),
            age_years=40,
            weight_kg=80.0,
            days=30,
            utc_offset_min=0.0,
        )
        meals += life.meal_t_min.size - life.treatments
        missed += life.missed_boluses
        for t, u in zip(life.bolus_t_min, life.bolus_u, strict=True):
            g = life.meal_carbs_g[life.meal_t_min == t]
            if g.size == 1 and g[0] >= 40:  # main meals (rounding of small snacks aside)
                ratios.append(np.log(u * life.carb_ratio_g_per_u / g[0]))
                bolused += 1
    days = 12 * 30
    per_day = meals / days
    # meals per day: 3 x 0.95 + 3 x 0.3 = 3.75, variance 3 x 0.95 x 0.05 + 3 x 0.3 x 0.7
    assert abs(per_day - 3.75) < 4 * np.sqrt((3 * 0.95 * 0.05 + 3 * 0.3 * 0.7) / days)
    assert abs(missed / meals - 0.05) < 4 * np.sqrt(0.05 * 0.95 / meals)
    log_sd = therapy["carb_error_log_sd"]
    # SD of the log ratio: the drawn 0.25 plus the 0.05 U rounding (< 0.03 for these doses)
    assert abs(float(np.std(ratios)) - log_sd) < 0.03, np.std(ratios)
    assert abs(float(np.mean(ratios))) < 4 * log_sd / np.sqrt(bolused) + 0.01


def test_same_seed_same_glucose_and_records() -> None:
    first = generate_streams(3, 4, days=3, onset_fraction=1.0)
    again = generate_streams(3, 4, days=3, onset_fraction=1.0)
    other = generate_streams(3, 6, days=3, onset_fraction=1.0)
    for a, b in zip(first.patients, again.patients, strict=True):
        if a.glucose_life is None:
            assert b.glucose_life is None
            continue
        assert b.glucose_life is not None
        np.testing.assert_array_equal(a.glucose_mg_dl, b.glucose_mg_dl)  # type: ignore[arg-type]
        np.testing.assert_array_equal(a.glucose_life.bolus_u, b.glucose_life.bolus_u)
        np.testing.assert_array_equal(a.glucose_life.meal_carbs_g, b.glucose_life.meal_carbs_g)
        assert a.glucose_life.truth_record("x") == b.glucose_life.truth_record("x")
    lives = [p.glucose_life for p in other.patients if p.glucose_life is not None]
    mine = [p.glucose_life for p in first.patients if p.glucose_life is not None]
    assert not any(
        a.meal_carbs_g.size == b.meal_carbs_g.size
        and np.array_equal(a.meal_carbs_g, b.meal_carbs_g)
        for a in lives
        for b in mine
    )
