"""The body-weight twin: the Hall 2011 model's habitual intake, fitted to a weight history.

The model's habitual intake (``intake_factor`` ... ``intake_ramp_d``) is checked against the
model's own diet events (an independent route through the input schedule), the calibration
against weight histories the model generated with known intakes (recovery and held-out
prediction with their coverage), and the twin through the store and the command line.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from click.testing import CliRunner
from tests.twin.records import person, reading

from medtwin.cli import main
from medtwin.model import get_model, parse_scenario, simulate
from medtwin.physiology.body_weight import OutsidePopulationError, params_for
from medtwin.record.facts import Identifier
from medtwin.store.sql import SqlStore
from medtwin.twin import DataError
from medtwin.twin._body_weight_fit import (
    FIT_ORDER,
    FIT_ORDER_NO_FAT_READING,
    FIT_ORDER_WITH_FAT,
    NOISE_FLOOR_KG,
    intake_kcal_per_day,
)
from medtwin.twin.calibrate import CalibrationError, calibrate, fit_spec
from medtwin.twin.data import PatientData
from medtwin.twin.twin import Twin

M = get_model("hall_2011_body_weight")
IX = {n: i for i, n in enumerate(M.parameter_names())}
WHO = Identifier("urn:test:mrn", "BW-1")
T0 = datetime(2017, 3, 1, 9, 0, tzinfo=UTC)


def _person(f0: float = 1.0, f1: float = 1.0, ramp_d: float = 0.0) -> np.ndarray:
    p = params_for("male", 40, 1.80, 90, 1.6)
    p[0, IX["intake_factor"]] = f0
    p[0, IX["intake_factor_end"]] = f1
    p[0, IX["intake_ramp_d"]] = ramp_d
    return p


def _maintenance(p: np.ndarray) -> float:
    return float(p[0, IX["physical_activity_level"]] * p[0, IX["rmr_kcal_per_day"]])


# ---------------------------------------------------------------- the model's habitual intake
def test_a_constant_habitual_intake_is_the_same_as_a_diet_event() -> None:
    p = _person(0.92)
    gap = (0.92 - 1.0) * _maintenance(p)
    habit = simulate(M, p, parse_scenario([]), t_end=730, dt_out=73)
    diet = simulate(
        M,
        _person(),
        parse_scenario([{"type": "diet", "t_d": 0, "intake_change_kcal_per_day": gap}]),
        t_end=730,
        dt_out=73,
    )
    for name in ("weight_kg", "fat_mass_kg", "energy_expenditure_kcal_per_day"):
        np.testing.assert_allclose(habit.observables[name], diet.observables[name], atol=1e-5)
    np.testing.assert_allclose(
        habit.observables["energy_intake_kcal_per_day"],
        _maintenance(p) * 0.92,
        rtol=1e-12,
    )
    assert habit.observables["weight_kg"][0, -1] < 90 - 5  # -8 % of intake for two years


def test_a_ramped_intake_matches_daily_diet_steps_and_stays_at_its_end() -> None:
    """Intake from 1.0 to 1.10 x maintenance over 400 days, then held: against the same ramp
    as 1-day diet steps at each day's mean (the error of the steps is second order)."""
    p = _person(1.0, 1.10, 400.0)
    ei0 = _maintenance(p)
    ramp = simulate(M, p, parse_scenario([]), t_end=800, times=[0, 100, 400, 800])
    steps = [
        {
            "type": "diet",
            "t_d": d,
            "intake_change_kcal_per_day": ei0 * 0.10 * min((d + 0.5) / 400, 1),
        }
        for d in range(800)
    ]
    stepped = simulate(M, _person(), parse_scenario(steps), t_end=800, times=[0, 100, 400, 800])
    w_ramp = ramp.observables["weight_kg"][0]
    np.testing.assert_allclose(w_ramp, stepped.observables["weight_kg"][0], atol=0.01)
    intake = ramp.observables["energy_intake_kcal_per_day"][0]
    np.testing.assert_allclose(intake, ei0 * np.array([1.0, 1.025, 1.10, 1.10]), rtol=1e-9)
    assert w_ramp[-1] > w_ramp[-2] > w_ramp[1] > 90.0


def test_a_run_restarted_mid_ramp_continues_the_ramp() -> None:
    """A what-if or forecast starts from the state at the end of the data: the ramp must go on
    from its state, not from its start."""
    p = _person(0.95, 1.05, 300.0)
    one = simulate(M, p, parse_scenario([]), t_end=500, times=[0, 200, 500])
    first = simulate(M, p, parse_scenario([]), t_end=200, times=[0, 200])
    rest = simulate(M, p, parse_scenario([]), t_end=300, times=[0, 300], x0=first.states[:, -1])
    np.testing.assert_allclose(rest.states[0, -1], one.states[0, -1], rtol=1e-6, atol=1e-5)


def test_the_intake_at_the_last_weight_is_the_one_the_model_runs() -> None:
    """Without a ramp the intake is ``intake_factor`` throughout: ``intake_factor_end`` (1 by
    default) is not the intake at the last weight (it was read as such, so a twin fitted to
    fewer than 7 weights reported its last intake as the first weight's maintenance)."""
    held = _person(0.92, 1.0, 0.0)
    first, last = intake_kcal_per_day(held)
    assert first[0] == pytest.approx(0.92 * _maintenance(held))
    assert last[0] == pytest.approx(first[0])
    r = simulate(M, held, parse_scenario([]), t_end=365, dt_out=365)
    assert r.observables["energy_intake_kcal_per_day"][0, -1] == pytest.approx(last[0], rel=1e-9)
    ramped = _person(0.92, 1.05, 200.0)
    first, last = intake_kcal_per_day(ramped)
    assert last[0] == pytest.approx(1.05 * _maintenance(ramped))
    r = simulate(M, ramped, parse_scenario([]), t_end=365, dt_out=365)
    assert r.observables["energy_intake_kcal_per_day"][0, -1] == pytest.approx(last[0], rel=1e-9)


def test_an_absolute_diet_replaces_the_habitual_intake_and_a_change_adds_to_it() -> None:
    p = _person(1.1, 1.1)
    ei0 = _maintenance(p)
    s = parse_scenario(
        [
            {"type": "diet", "t_d": 10, "intake_change_kcal_per_day": -200},
            {"type": "diet", "t_d": 20, "intake_kcal_per_day": 2000},
        ]
    )
    r = simulate(M, p, s, t_end=30, times=[5, 15, 25])
    at = np.searchsorted(r.times, [5, 15, 25])
    np.testing.assert_allclose(
        r.observables["energy_intake_kcal_per_day"][0, at],
        [1.1 * ei0, 1.1 * ei0 - 200, 2000.0],
        rtol=1e-9,
    )


# ---------------------------------------------------------------- calibration
def _history(
    rng: np.random.Generator, every_d: float, years: float, sd_kg: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """A man's weights every ``every_d`` days over ``years`` from a drawn intake ramp."""
    truth = {
        "weight_kg": 90.0,
        "intake_factor": float(np.exp(rng.normal(0, 0.03))),
        "intake_factor_end": float(np.exp(rng.normal(0, 0.05))),
    }
    p = _person(truth["intake_factor"], truth["intake_factor_end"], years * 365.0)
    days = np.arange(0.0, years * 365.0 + 1e-9, every_d)
    r = simulate(M, p, parse_scenario([]), t_end=float(days[-1]), times=days)
    clean = r.observables["weight_kg"][0]
    return days, clean, clean + rng.normal(0.0, sd_kg, clean.size), truth


def test_calibration_recovers_the_intake_of_weight_histories() -> None:
    """40 men with quarterly weights over 5 years (reading SD 1 kg): the posterior 90 %
    intervals of the three fitted parameters hold the truth in about 90 % of cases."""
    rng = np.random.default_rng(11)
    spec = fit_spec(M)
    inside = []
    for _ in range(40):
        days, _, y, truth = _history(rng, 91.25, 5.0, 1.0)
        data = PatientData({"weight_kg": (days * 1440.0, y)})
        who = {"sex": "male", "age_y": 45.0, "height_m": 1.80}
        base, data, fit = spec.personalise(M, who, data)
        assert fit == FIT_ORDER_NO_FAT_READING  # the fat fraction last, about its prior
        cal = calibrate(M, data, base=base, fit=fit, starts=2)
        assert cal.diagnostics["converged"]
        for name, value in truth.items():
            z = (np.log(cal.values[name]) - np.log(value)) / cal.log_sd[name]
            inside.append(abs(z) <= 1.645)
    coverage = float(np.mean(inside))
    assert 0.80 <= coverage <= 0.98, coverage


def test_a_twin_fitted_to_years_of_weights_predicts_the_next_year() -> None:
    """30 men with 9 yearly check-ups (visit-to-visit SD 1.2 kg, the synthetic population's):
    fitted to the first 8, the twin predicts the 9th year's weight better than
    the last value and the population prior (intake in balance), and its 90 % predictive band
    holds the held-out weight in about 90 % of cases."""
    rng = np.random.default_rng(3)
    spec = fit_spec(M)
    errors: dict[str, list[float]] = {"twin": [], "last": [], "prior": []}
    inside = []
    for _ in range(30):
        days, _clean, y, _ = _history(rng, 365.0, 8.0, 1.2)
        fit_part = PatientData({"weight_kg": (days[:-1] * 1440.0, y[:-1])})
        who = {"sex": "male", "age_y": 47.0, "height_m": 1.80}
        base, data, fit = spec.personalise(M, who, fit_part)
        assert fit == FIT_ORDER  # 8 weights: the intake may change; the fat fraction held
        cal = calibrate(M, data, base=base, fit=fit, starts=2)
        bands = cal.predict([], t_end=days[-1], times=[days[-1]], n=400, seed=1, level=0.90)
        lo, hi = bands.lower[-1], bands.upper[-1]  # times start at 0
        inside.append(lo <= y[-1] <= hi)
        median = bands.median[-1]
        errors["twin"].append(median - y[-1])
        errors["last"].append(y[-2] - y[-1])
        prior = simulate(M, base[None, :], parse_scenario([]), t_end=days[-1], times=[days[-1]])
        errors["prior"].append(float(prior.observables["weight_kg"][0, -1]) - y[-1])
    rmse = {k: float(np.sqrt(np.mean(np.square(v)))) for k, v in errors.items()}
    assert rmse["twin"] < rmse["last"] and rmse["twin"] < rmse["prior"], rmse
    assert 0.75 <= float(np.mean(inside)) <= 1.0, np.mean(inside)


def test_the_reading_error_has_a_floor_and_few_weights_are_refused() -> None:
    days = np.array([0.0, 365.0, 730.0, 1095.0, 1460.0, 1825.0])
    y = np.full(days.size, 80.0)  # a scale that always says 80.0: no residual at all
    data = PatientData({"weight_kg": (days * 1440.0, y)})
    who = {"sex": "female", "age_y": 50.0, "height_m": 1.65}
    base, data, fit = fit_spec(M).personalise(M, who, data)
    assert fit == FIT_ORDER[:3] and base[IX["intake_ramp_d"]] == 0.0  # 6 weights: no ramp
    cal = calibrate(M, data, base=base, fit=fit, starts=1)
    assert cal.noise_scale >= NOISE_FLOOR_KG
    few = PatientData({"weight_kg": (days[:4] * 1440.0, y[:4])}, patient="p-1")
    with pytest.raises(
        DataError,
        match=r"p-1: 4 weights \(LOINC 29463-7\) in the fitted "
        r"period \(day 0 to day 1095\), and a body-weight twin needs 5",
    ):
        fit_spec(M).personalise(M, who, few)
    with pytest.raises(CalibrationError, match=r"4 readings .* need at least 5"):
        calibrate(M, few, base=base, fit=fit[:2])  # the calibration's own check, given them


def test_the_twin_refuses_a_child_and_a_record_without_height() -> None:
    days = np.arange(0.0, 6 * 365.0, 365.0)
    data = PatientData({"weight_kg": (days * 1440.0, np.linspace(40.0, 55.0, days.size))})
    spec = fit_spec(M)
    with pytest.raises(OutsidePopulationError, match=r"age_y = 14.*child"):
        spec.personalise(M, {"sex": "male", "age_y": 19.0, "height_m": 1.70}, data)
    with pytest.raises(DataError, match=r"no height \(LOINC 8302-2\)"):
        spec.personalise(M, {"sex": "male", "age_y": 40.0}, data)


# ---------------------------------------------------------------- through the store and CLI
def _record(store: SqlStore) -> np.ndarray:
    """A woman born 1975 with her height and twelve weights over 6 years (a home scale and
    check-ups), generated by the model with an intake ramp, kept in the store."""
    p = params_for("female", 42.0, 1.64, 78.0, 1.6)
    p[0, IX["intake_factor"]] = 1.02
    p[0, IX["intake_factor_end"]] = 0.94
    p[0, IX["intake_ramp_d"]] = 6 * 365.0
    days = np.linspace(0.0, 6 * 365.0, 12)
    r = simulate(M, p, parse_scenario([]), t_end=float(days[-1]), times=days)
    rng = np.random.default_rng(7)
    weights = np.round(r.observables["weight_kg"][0] + rng.normal(0, 0.8, days.size), 1)
    facts: list[object] = [
        person(WHO, "1975-01-15", "female"),
        reading(WHO, "Height/1", "8302-2", T0, 164.0, "cm"),
    ]
    for i, (d, w) in enumerate(zip(days, weights, strict=True)):
        when = T0 + timedelta(days=float(d))
        facts.append(reading(WHO, f"Weight/{i}", "29463-7", when, w, "kg", source="scale"))
    store.append_facts(facts, source="test")  # type: ignore[arg-type]
    return weights


def test_a_body_weight_twin_from_the_store_fits_forecasts_and_answers_whatif(
    store: SqlStore,
) -> None:
    weights = _record(store)
    twin = Twin.from_store(store, "urn:test:mrn|BW-1", model=M, days=3650, load=False)
    cal = twin.fit(starts=2)
    assert cal.fitted == FIT_ORDER_NO_FAT_READING and cal.diagnostics["converged"]
    assert twin.data.start == T0  # fitted from the first weight on
    first, last = intake_kcal_per_day(cal.params)
    assert last[0] < first[0]  # the ramp went down: her weight fell over the last years
    twin_id = twin.save(store)

    # loaded a year later with a short window: the twin still starts at its first weight
    again = Twin.from_store(store, "urn:test:mrn|BW-1", model=M, days=2)
    assert again.stored_id == twin_id and again.data.start == T0
    assert again.data.count("weight_kg") == weights.size
    f = again.forecast(24 * 180, n=200, seed=1)
    mid = f.band("weight_kg", 0.5)
    assert f.times_min[1] - f.times_min[0] == 1440.0  # daily output for a model in days
    assert abs(mid[0] - weights[-1]) < 3.0

    c = again.whatif(
        {"less 300": [{"type": "diet", "t_min": 0, "intake_change_kcal_per_day": -300}]},
        hours=24 * 365,
        ahead=True,
        n=100,
    )
    table = {row[0]: row for row in c.rows()[1:]}
    change = table["weight_end_kg (kg)"][-1]
    # -300 kcal/day for a year: Hall's rule (about 1 kg per 100 kJ/day at steady state, half
    # of it in the first year) gives roughly -6 to -7 kg; the table says it with its band
    drop = float(change.split()[0])
    assert -9.0 < drop < -5.0, change


def test_twin_fit_command_reports_the_intake(tmp_path: object, sqlite_store: SqlStore) -> None:
    _record(sqlite_store)
    # a weight in a unit that is not one: kept in the store, not used, and said
    odd = reading(WHO, "Weight/odd", "29463-7", T0 + timedelta(days=40), 71.0, "mmol/L")
    sqlite_store.append_facts([odd], source="test")
    url = sqlite_store.url
    sqlite_store.close()
    runner = CliRunner()
    out = runner.invoke(
        main,
        ["twin", "fit", "urn:test:mrn|BW-1", "--model", "hall_2011_body_weight", "--store", url],
    )
    assert out.exit_code == 0, out.output
    assert "intake minus maintenance at the first weight" in out.output
    assert "weights barely tell it" in out.output
    assert "not used: Observation Weight/odd: weight_kg:" in out.output
    ahead = runner.invoke(
        main,
        [
            "forecast",
            "urn:test:mrn|BW-1",
            "--model",
            "hall_2011_body_weight",
            "--days",
            "90",
            "--particles",
            "100",
            "--store",
            url,
        ],
    )
    assert ahead.exit_code == 0, ahead.output
    assert "weight_kg forecast" in ahead.output and "+   90 d" in ahead.output


def test_weights_and_body_fat_are_fitted_jointly() -> None:
    """Two observables of a trajectory (not a steady state): weights and body-fat percentages
    (a scale with bioimpedance) every 30 days for two years. Fitted jointly, the body-fat
    fraction at the start is recovered and its posterior is much narrower than from the
    weights alone, which barely inform it."""
    p = _person(1.05, 1.05)
    p[0, IX["fat_fraction"]] = 0.22
    days = np.arange(0.0, 731.0, 30.0)
    r = simulate(M, p, parse_scenario([]), t_end=float(days[-1]), times=days)
    rng = np.random.default_rng(4)
    weight = r.observables["weight_kg"][0] + rng.normal(0, 0.5, days.size)
    fat = r.observables["body_fat_pct"][0] + rng.normal(0, 1.0, days.size)
    data = PatientData({"weight_kg": (days * 1440.0, weight), "body_fat_pct": (days * 1440.0, fat)})
    base = _person()[0]
    fit = ("weight_kg", "intake_factor", "fat_fraction")
    both = calibrate(M, data, base=base, fit=fit, observable=("weight_kg", "body_fat_pct"))
    alone = calibrate(M, data, base=base, fit=fit, observable="weight_kg")
    assert both.observables == ("weight_kg", "body_fat_pct")
    assert abs(both.values["fat_fraction"] - 0.22) < 0.01
    assert both.log_sd["fat_fraction"] < 0.5 * alone.log_sd["fat_fraction"]
    assert 0.3 < both.noise_scales["body_fat_pct"] < 2.0  # its own scale, in percent
    assert abs(both.values["intake_factor"] - 1.05) < 0.01


def test_a_twin_with_body_fat_readings_fits_them_with_the_weights() -> None:
    """The body-weight fit specification adds a scale's body-fat readings (LOINC 41982-0)
    when the data hold some: both observables are fitted, and the body-fat fraction too. Over
    15 men (weights SD 0.5 kg and body fat SD 1 point every 45 days for two years, drawn fat
    fractions and intake ramps) its 90 % interval holds the truth in most cases."""
    rng = np.random.default_rng(8)
    days = np.arange(0.0, 731.0, 45.0)
    who = {"sex": "male", "age_y": 42.0, "height_m": 1.80}
    inside, errors = [], []
    for _ in range(15):
        truth = float(rng.uniform(0.15, 0.35))
        p = _person(float(np.exp(rng.normal(0, 0.03))), float(np.exp(rng.normal(0, 0.05))), 730.0)
        p[0, IX["fat_fraction"]] = truth
        r = simulate(M, p, parse_scenario([]), t_end=float(days[-1]), times=days)
        at = np.searchsorted(r.times, days)
        weight = r.observables["weight_kg"][0, at] + rng.normal(0, 0.5, days.size)
        fat = r.observables["body_fat_pct"][0, at] + rng.normal(0, 1.0, days.size)
        data = PatientData(
            {"weight_kg": (days * 1440.0, weight), "body_fat_pct": (days * 1440.0, fat)}
        )
        base, data, fit = fit_spec(M).personalise(M, who, data)
        assert fit == FIT_ORDER_WITH_FAT
        cal = calibrate(M, data, base=base, fit=fit, starts=2)
        assert cal.observables == ("weight_kg", "body_fat_pct")
        z = (np.log(cal.values["fat_fraction"]) - np.log(truth)) / cal.log_sd["fat_fraction"]
        inside.append(abs(z) <= 1.645)
        errors.append(abs(cal.values["fat_fraction"] - truth))
    assert np.mean(inside) >= 0.7, np.mean(inside)
    assert np.mean(errors) < 0.015, np.mean(errors)


def test_a_fat_fraction_no_reading_measured_is_fitted_about_its_prediction_from_bmi() -> None:
    """Without a body-fat reading the start's fat fraction is the regression's guess (SEE
    4.1 %, Deurenberg 1991): fitted from 8 weights about that prior, which the weights barely
    move, so its uncertainty reaches the posterior; a reading at the start fixes it."""
    from medtwin.model.base import Prior
    from medtwin.physiology.body_weight import baseline_body_fat_fraction
    from medtwin.twin._body_weight_fit import FAT_FRACTION_SEE

    days, _, y, _ = _history(np.random.default_rng(5), 365.0, 8.0, 1.2)
    who = {"sex": "male", "age_y": 48.0, "height_m": 1.80}
    spec = fit_spec(M)
    base, data, fit = spec.personalise(M, who, PatientData({"weight_kg": (days * 1440.0, y)}))
    assert fit == FIT_ORDER_NO_FAT_READING
    cal = calibrate(M, data, base=base, fit=fit, starts=2)
    prior = cal.provenance["priors"]["fat_fraction"]
    expected = baseline_body_fat_fraction("male", base[IX["age_y"]], 1.80, base[IX["weight_kg"]])
    assert prior["kind"] == "normal" and prior["scale"] == FAT_FRACTION_SEE
    assert prior["loc"] == pytest.approx(expected) and "Deurenberg" in prior["source"]
    sd = cal.values["fat_fraction"] * cal.log_sd["fat_fraction"]
    assert 0.6 * FAT_FRACTION_SEE < sd < 1.05 * FAT_FRACTION_SEE
    assert abs(cal.values["fat_fraction"] - expected) < FAT_FRACTION_SEE
    assert spec.describe is not None
    (said,) = [line for line in spec.describe(cal) if line.startswith("body fat at the first")]
    assert "predicted from sex, age and BMI; the weights barely tell it" in said

    # a body-fat reading at the first weight sets it: not fitted
    fat_t = np.array([days[0] * 1440.0])
    measured = PatientData(
        {"weight_kg": (days * 1440.0, y), "body_fat_pct": (fat_t, np.array([31.0]))}
    )
    base_m, _, fit_m = spec.personalise(M, who, measured)
    assert "fat_fraction" not in fit_m and base_m[IX["fat_fraction"]] == pytest.approx(0.31)

    # priors given by hand are checked
    good = Prior("normal", 0.25, 0.04, "a test")
    with pytest.raises(CalibrationError, match="'ecf_l' is not fitted"):
        calibrate(M, data, base=base, fit=fit, priors={"ecf_l": good})
    with pytest.raises(CalibrationError, match="positive scale"):
        calibrate(
            M, data, base=base, fit=fit, priors={"fat_fraction": Prior("normal", 0.2, 0.0, "x")}
        )
    with pytest.raises(CalibrationError, match="source"):
        calibrate(M, data, base=base, fit=fit, priors={"fat_fraction": Prior("normal", 0.2, 0.04)})
    given = calibrate(M, data, base=base, fit=fit, starts=1, priors={"fat_fraction": good})
    assert given.provenance["priors"]["fat_fraction"]["loc"] == 0.25


def test_posterior_draws_stay_inside_the_models_population() -> None:
    """A thin woman (BMI about 16.4) weighed yearly with 1.2 kg error: draws of her first
    weight reach below BMI 16, which the model refuses; they are kept inside it, so that
    forecasts work and no draw is of a body the model was not built for."""
    rng = np.random.default_rng(4)
    height = 1.65
    days = np.arange(8) * 365.0
    y = 16.4 * height**2 + rng.normal(0.0, 1.2, days.size)
    who = {"sex": "female", "age_y": 40.0, "height_m": height}
    spec = fit_spec(M)
    base, data, fit = spec.personalise(M, who, PatientData({"weight_kg": (days * 1440.0, y)}))
    cal = calibrate(M, data, base=base, fit=fit, starts=2)
    draws = cal.sample(2000, seed=3)
    bmi = draws[:, IX["weight_kg"]] / height**2
    assert bmi.min() >= 16.0 and float(np.mean(bmi < 16.05)) < 0.2
    bands = cal.predict([], t_end=3000.0, times=[3000.0], n=200, seed=1)
    assert np.isfinite(bands.median).all()


# ---------------------------------------------------------------- pregnancy
PREGNANCY = (datetime(2020, 2, 10, tzinfo=UTC), datetime(2020, 10, 20, tzinfo=UTC))


def _pregnancy_record(store: SqlStore, *, ended: bool = True) -> np.ndarray:
    """The woman of :func:`_record` with a pregnancy (SNOMED 72892002, 2020-02-10 to 2020-10-20)
    and three more weights: in the 6th month (+9 kg over her trajectory), 3 weeks after the
    delivery (+5 kg) and 8 weeks after it (on her trajectory)."""
    from medtwin.record.facts import Coding, Condition

    weights = _record(store)  # twelve weights, 2017-03-01 to 2023-02-28
    p = params_for("female", 42.0, 1.64, 78.0, 1.6)
    p[0, IX["intake_factor"]] = 1.02
    p[0, IX["intake_factor_end"]] = 0.94
    p[0, IX["intake_ramp_d"]] = 6 * 365.0
    extra = [
        (PREGNANCY[0] + timedelta(days=140), 9.0),
        (PREGNANCY[1] + timedelta(days=21), 5.0),
        (PREGNANCY[1] + timedelta(days=56), 0.0),
    ]
    days = np.array([(when - T0).total_seconds() / 86400.0 for when, _ in extra])
    r = simulate(M, p, parse_scenario([]), t_end=float(days[-1]), times=days)
    trajectory = r.observables["weight_kg"][0][-days.size :]  # the run starts at day 0
    facts: list[object] = [
        reading(WHO, f"Weight/p{i}", "29463-7", when, round(float(w) + gain, 1), "kg")
        for i, ((when, gain), w) in enumerate(zip(extra, trajectory, strict=True))
    ]
    facts.append(
        Condition(
            source="ehr",
            source_id="Condition/preg",
            subject=WHO,
            code=Coding("http://snomed.info/sct", "72892002", "Normal pregnancy"),
            effective_start=PREGNANCY[0],
            effective_end=PREGNANCY[1] if ended else None,
            clinical_status="resolved" if ended else "active",
        )
    )
    store.append_facts(facts, source="test")  # type: ignore[arg-type]
    return weights


def test_weights_in_a_pregnancy_and_the_six_weeks_after_are_not_fitted(store: SqlStore) -> None:
    """The model describes a body that is not pregnant (Hall 2011): the weight in the 6th
    month, a check-up in the 4th and the weight 3 weeks after the delivery are left out, and
    said; the one 8 weeks after is fitted."""
    _pregnancy_record(store)
    until = datetime(2023, 3, 1, tzinfo=UTC)
    twin = Twin.from_store(store, "urn:test:mrn|BW-1", model=M, days=3650, end=until, load=False)
    cal = twin.fit(starts=2)
    assert cal.diagnostics["converged"]
    assert twin.data.count("weight_kg") == 12 + 3 - 3
    (reason,) = [s for s in twin.data.skipped if "pregnan" in s]
    assert reason == (
        "3 readings taken during a pregnancy or within 42 days after it (72892002 Normal "
        "pregnancy (2020-02-10), to 2020-12-01): the body weight model describes adults who are "
        "not pregnant"
    )
    # what the record says: one pregnancy, from the condition's onset to its abatement
    from medtwin.twin.twin import characteristics

    who = characteristics(store, twin.data.patient or "", until)
    assert len(who["pregnancies"]) == 1


def test_a_twin_of_a_pregnant_woman_is_refused(store: SqlStore) -> None:
    """Dated in a pregnancy (one with no recorded end: 44 weeks at most) the twin is refused by
    the model's population check, before anything is fitted; a last weight in one is refused by
    the fit, saying how to fit the time before it."""
    _pregnancy_record(store, ended=False)
    with pytest.raises(OutsidePopulationError) as caught:
        Twin.from_store(
            store,
            "urn:test:mrn|BW-1",
            model=M,
            days=3650,
            end=datetime(2020, 12, 1, tzinfo=UTC),
            load=False,
        )
    message = str(caught.value)
    assert message.startswith(
        "hall_2011_body_weight describes adults who are not pregnant (Hall 2011); the record "
        "shows a pregnancy at 2020-12-01 (72892002 Normal pregnancy (2020-02-10);"
    )
    assert message.endswith("Fit the time before it (--until 2020-02-10) or after it")
    spec = fit_spec(M)
    twin = Twin.from_store(
        store, "urn:test:mrn|BW-1", model=M, days=3650, end=PREGNANCY[0] - timedelta(days=1),
        load=False,
    )  # fmt: skip
    pregnant_later = dict(twin.characteristics)
    pregnant_later["pregnancies"] = ((PREGNANCY[0].timestamp() - 400 * 86400.0,
                                      PREGNANCY[0].timestamp(), "a test pregnancy"),)  # fmt: skip
    with pytest.raises(DataError, match=r"the last weight .* falls in a pregnancy"):
        spec.personalise(M, pregnant_later, twin.data)
    # before the pregnancy she has a twin
    before = Twin.from_store(
        store,
        "urn:test:mrn|BW-1",
        model=M,
        days=3650,
        end=PREGNANCY[0] - timedelta(days=1),
        load=False,
    )
    assert before.fit(starts=1).diagnostics["converged"]


def test_a_forecast_or_whatif_into_a_pregnancy_is_refused(store: SqlStore) -> None:
    """A twin of the weights up to 60 days before the pregnancy: a 30-day forecast is answered;
    a 90-day one, and a year-ahead what-if, run into the pregnancy the record shows and are
    refused, naming it."""
    _pregnancy_record(store)
    twin = Twin.from_store(
        store, "urn:test:mrn|BW-1", model=M, days=3650,
        end=PREGNANCY[0] - timedelta(days=60), load=False,
    )  # fmt: skip
    twin.fit(starts=1)
    ahead = twin.forecast(24 * 30, n=50, seed=1)
    assert ahead.times_min[-1] - ahead.times_min[0] >= 29 * 1440
    with pytest.raises(OutsidePopulationError) as caught:
        twin.forecast(24 * 90, n=50, seed=1)
    assert "runs into a pregnancy the record shows (72892002 Normal pregnancy (2020-02-10)" in (
        str(caught.value)
    )
    diet = {"less": [{"type": "diet", "t_min": 0, "intake_change_kcal_per_day": -300}]}
    with pytest.raises(OutsidePopulationError, match="ask about a period that ends before it"):
        twin.whatif(diet, hours=24 * 365, ahead=True, n=50)
    assert twin.whatif(diet, hours=24 * 30, ahead=True, n=50).rows()


def test_weights_before_the_18th_birthday_are_left_out() -> None:
    """A record whose weights reach back to childhood (Synthea's start at birth): the twin fits
    the adult years, saying what it left out; a record whose last weight was taken as a child
    is refused, naming the date and the 18th birthday. Before, the fit started at the first
    weight of the window and refused the patient as a child ("age_y = 14.0 is outside"), or,
    for weights from birth, with "age_y must be a positive number"."""
    start = datetime(2010, 1, 1, tzinfo=UTC)
    days = np.arange(11) * 365.25  # yearly, ages 14 to 24
    data = PatientData(
        {"weight_kg": (days * 1440.0, np.linspace(50.0, 72.0, days.size))},
        start=start,
        patient="p-2",
    )
    at = start + timedelta(days=float(days[-1]))
    who = {"sex": "male", "age_y": 24.0, "height_m": 1.78, "at": at}
    spec = fit_spec(M)
    base, kept, _ = spec.personalise(M, {**who, "birth_date": datetime(1996, 1, 1).date()}, data)
    t, y = kept.series("weight_kg")
    assert t.size == 7 and y[0] == pytest.approx(50.0 + 4 * 2.2)
    assert kept.skipped == (
        "4 readings taken before the 18th birthday (2014-01-01): the body weight model "
        "describes adults",
    )
    assert base[IX["age_y"]] == pytest.approx(18.0, abs=1e-3)
    assert base[IX["weight_kg"]] == pytest.approx(58.8)
    with pytest.raises(
        OutsidePopulationError,
        match=r"p-2: the last weight \(2020-01-01\) was "
        r"taken before the 18th birthday \(2021-01-01\).*paediatric",
    ):
        spec.personalise(M, {**who, "birth_date": datetime(2003, 1, 1).date()}, data)
    # 29 February: the 18th birthday in a year without one is 1 March
    _, kept, _ = spec.personalise(M, {**who, "birth_date": datetime(1996, 2, 29).date()}, data)
    assert "before the 18th birthday (2014-03-01)" in kept.skipped[0]
