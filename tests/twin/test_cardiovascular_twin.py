"""The circulation twin: the Ursino model fitted to a patient's resting blood pressure and heart
rate (several observables at once, readings of a steady state), then asked what a haemorrhage
would do to this patient."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from click.testing import CliRunner
from tests.twin.records import person, reading

from medtwin.cli import main
from medtwin.model import get_model
from medtwin.model.base import OutsidePopulationError
from medtwin.physiology.cardiovascular import for_patient
from medtwin.record.facts import Identifier
from medtwin.store.sql import SqlStore
from medtwin.twin import DataError
from medtwin.twin._cardiovascular_fit import FIT_ORDER, OBSERVABLES
from medtwin.twin.calibrate import (
    Calibration,
    CalibrationError,
    calibrate,
    fit_spec,
    steady_observables,
)
from medtwin.twin.data import PatientData
from medtwin.twin.twin import Twin

M = get_model("cardiovascular_ursino")
IX = {n: i for i, n in enumerate(M.parameter_names())}
WHO = Identifier("urn:test:mrn", "CV-1")
T0 = datetime(2025, 2, 1, 10, 0, tzinfo=UTC)
CODES = {"sbp_mmhg": "8480-6", "dbp_mmhg": "8462-4", "heart_rate_per_min": "8867-4"}


def _person() -> tuple[np.ndarray, dict[str, float]]:
    """A 58-year-old man of 90 kg with a higher set point, a lower vagal gain and a stiffer
    aorta than the preset: resting values about 141/85 mmHg and 70 /min."""
    p = for_patient(age_years=58, weight_kg=90, sex="male")
    p[0, IX["pn_mmhg"]] = 104.0
    p[0, IX["g_tv_s2"]] = 0.07
    p[0, IX["pulse_compliance_ml_per_mmhg"]] = 1.6
    truth = {k: float(v[0]) for k, v in steady_observables(M, p, OBSERVABLES).items()}
    return p, truth


def test_several_observables_are_fitted_to_a_resting_state() -> None:
    """Three visits of exact readings: the fitted resting state gives them back within what
    the priors' pull allows (3 mmHg, 3 /min), each observable with its own error scale."""
    _, truth = _person()
    days = np.array([0.0, 300.0, 650.0]) * 1440.0
    data = PatientData({k: (days, np.full(3, v)) for k, v in truth.items()})
    who = {"sex": "male", "age_y": 58.0, "weight_kg": 90.0}
    base, data, fit = fit_spec(M).personalise(M, who, data)
    assert fit == FIT_ORDER  # 9 readings: six fitted
    cal = calibrate(M, data, base=base, fit=fit, starts=2)
    assert cal.observables == OBSERVABLES and set(cal.noise_scales) == set(OBSERVABLES)
    fitted = steady_observables(M, cal.params, OBSERVABLES)
    for name, value in truth.items():
        assert abs(float(fitted[name][0]) - value) < 3.0, (name, fitted[name], value)
    # the bands of each observable, and the calibration read back from its dict
    back = Calibration.from_dict(cal.to_dict())
    assert back.noise_scales == cal.noise_scales
    band = back.predict([], t_end=60.0, times=[0.0, 60.0], n=200, observable="heart_rate_per_min")
    assert band.lower[0] < truth["heart_rate_per_min"] < band.upper[0]
    with pytest.raises(CalibrationError, match="was not calibrated"):
        back.predict([], t_end=60.0, observable="cvp_mmhg")


def test_one_visit_is_refused_and_the_record_must_say_who() -> None:
    _, truth = _person()
    one = PatientData({k: (np.array([0.0]), np.array([v])) for k, v in truth.items()})
    who = {"sex": "male", "age_y": 58.0, "weight_kg": 90.0}
    base, one, fit = fit_spec(M).personalise(M, who, one)
    with pytest.raises(CalibrationError, match=r"3 readings .* need at least 6"):
        calibrate(M, one, base=base, fit=fit)
    with pytest.raises(DataError, match=r"no body weight \(LOINC 29463-7\)"):
        fit_spec(M).personalise(M, {"sex": "male", "age_y": 58.0}, one)
    with pytest.raises(OutsidePopulationError, match="adults"):
        fit_spec(M).personalise(M, {"sex": "male", "age_y": 15.0, "weight_kg": 60.0}, one)


def _record(store: SqlStore) -> dict[str, float]:
    _, truth = _person()
    rng = np.random.default_rng(2)
    facts: list[object] = [
        person(WHO, "1967-03-10", "male"),
        reading(WHO, "Weight/1", "29463-7", T0, 90.0, "kg"),
    ]
    noise = {"sbp_mmhg": 8.0, "dbp_mmhg": 5.0, "heart_rate_per_min": 6.0}
    for visit, day in enumerate((0, 200, 420, 640)):
        when = T0 + timedelta(days=day)
        for name, value in truth.items():
            measured = float(round(value + rng.normal(0, noise[name])))
            unit = "mm[Hg]" if name != "heart_rate_per_min" else "/min"
            facts.append(reading(WHO, f"{name}/{visit}", CODES[name], when, measured, unit))
    store.append_facts(facts, source="test")  # type: ignore[arg-type]
    return truth


def test_a_circulation_twin_from_the_store_answers_a_haemorrhage_whatif(
    store: SqlStore,
) -> None:
    truth = _record(store)
    twin = Twin.from_store(store, "urn:test:mrn|CV-1", model=M, days=730, load=False)
    cal = twin.fit(starts=2)
    assert cal.fitted == FIT_ORDER and cal.diagnostics["converged"]
    twin.save(store)
    again = Twin.from_store(store, "urn:test:mrn|CV-1", model=M, days=730)
    assert again.calibration is not None
    rest = steady_observables(M, again.ensemble(100, seed=1), ["sbp_mmhg", "heart_rate_per_min"])
    lo, hi = np.quantile(rest["sbp_mmhg"], [0.05, 0.95])
    assert lo < truth["sbp_mmhg"] < hi  # the resting systolic's 90 % interval holds the truth

    c = again.whatif(
        {"bleed": [{"type": "blood_loss", "t_min": 5, "volume_ml": 1000, "duration_min": 15}]},
        hours=1.0,
        ahead=True,
        n=60,
    )
    rows = {row[0]: row for row in c.rows()[1:]}
    drop = float(rows["lowest_map_mmhg (mmHg)"][-1].split()[0])
    # 1000 mL over 15 min: MAP fell 8.7 mmHg in Johnson 2013 (tolerance of the model card
    # 3.7-13.7); a twin of a hypertensive man with a stiffer aorta, 5-15 mmHg here
    assert -15.0 < drop < -4.0, rows["lowest_map_mmhg (mmHg)"]
    with pytest.raises(DataError, match="resting steady state"):
        again.forecast(1.0)
    with pytest.raises(DataError, match="ahead"):
        again.whatif({"bleed": []}, hours=1.0)


def test_twin_fit_command_fits_a_circulation(sqlite_store: SqlStore) -> None:
    _record(sqlite_store)
    url = sqlite_store.url
    sqlite_store.close()
    out = CliRunner().invoke(
        main,
        [
            "twin",
            "fit",
            "urn:test:mrn|CV-1",
            "--model",
            "cardiovascular_ursino",
            "--starts",
            "2",
            "--store",
            url,
        ],
    )
    assert out.exit_code == 0, out.output
    assert "resting systolic" in out.output and "reading-error scales" in out.output
