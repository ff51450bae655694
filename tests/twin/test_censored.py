"""Readings that are bounds, not values: a CGM's "LOW" ("<40") and "HIGH" (">400").

The record keeps such a reading as a bound (FHIR ``Quantity.comparator``, a CSV's "<40");
the twin reads it as one (``PatientData.censored``), calibration fits it with a censored
likelihood and the particle filter weighs it by the probability of a reading beyond it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from tests.twin.test_calibrate import FIT, M, altered, col

from medtwin.ingest import import_paths
from medtwin.model import parse_scenario, simulate
from medtwin.physiology import uva_padova as up
from medtwin.record.facts import Demographics, Identifier
from medtwin.store.sql import SqlStore
from medtwin.twin import DataError, PatientData
from medtwin.twin.assimilate import ParticleFilter
from medtwin.twin.calibrate import NU, CalibrationError, _Problem, calibrate, fit_spec
from medtwin.twin.data import ABOVE, BELOW, EXACT
from medtwin.twin.twin import Twin

DAY = 1440.0


# ------------------------------------------------------------------ the data
def test_codes_follow_their_readings_through_sorting_dropping_and_windows() -> None:
    d = PatientData(
        {"cgm_mg_dl": ([10.0, 0.0, 5.0, 15.0], [400.0, 40.0, float("nan"), 120.0])},
        censored={"cgm_mg_dl": [ABOVE, BELOW, EXACT, EXACT]},
    )
    assert d.observations["cgm_mg_dl"][1].tolist() == [40.0, 400.0, 120.0]
    assert d.censoring("cgm_mg_dl").tolist() == [BELOW, ABOVE, EXACT]
    assert d.count_censored() == 2 and d.count_censored("cgm_mg_dl") == 2
    w = d.window(5.0, 15.0)
    assert w.censoring("cgm_mg_dl").tolist() == [ABOVE, EXACT]
    assert w.observations["cgm_mg_dl"][0].tolist() == [5.0, 10.0]
    assert w.window(7.0, 10.0).count_censored() == 0  # only the 120 is left
    plain = PatientData({"cgm_mg_dl": ([0.0, 5.0], [100.0, 101.0])})
    assert plain.censoring("cgm_mg_dl").tolist() == [EXACT, EXACT] and not plain.censored


@pytest.mark.parametrize(
    ("censored", "message"),
    [
        ({"cgm_mg_dl": [BELOW]}, "1 codes but 2 readings"),
        ({"cgm_mg_dl": [2, 0]}, "codes must be 0"),
        ({"weight_kg": [0, 0]}, "censored['weight_kg']: no such observable"),
    ],
)
def test_bad_codes_are_refused_naming_the_field(censored: dict, message: str) -> None:
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        PatientData({"cgm_mg_dl": ([0.0, 5.0], [40.0, 60.0])}, censored=censored)


def test_a_bound_in_the_record_reaches_the_twin_as_one(store: SqlStore, tmp_path: Path) -> None:
    """A meter's CSV with LOW and HIGH rows ("<40", ">22.2" mmol/L), imported for real."""
    who = Identifier("urn:medtwin:device-user", "cgm-1")
    store.append_facts(
        [
            Demographics(
                source="reg",
                source_id="Patient/c1",
                subject=who,
                identifiers=(who,),
                birth_date="1990-01-01",
                gender="female",
            )
        ],
        source="reg",
    )
    rows = ["time,metric,value,unit"]
    values = ["52", "<40", "<40", "61", "250", ">400", ">22.2", "300"]
    for i, v in enumerate(values):
        unit = "mmol/L" if v == ">22.2" else "mg/dL"
        rows.append(f"2024-03-01T{8 + i // 12:02d}:{(i % 12) * 5:02d}:00Z,99504-3,{v},{unit}")
    file = tmp_path / "cgm.csv"
    file.write_text("\n".join(rows) + "\n")
    report = import_paths(store, [file], patient="cgm-1", source="meter")
    assert report.counts["inserted"] == len(values)
    twin = Twin.from_store(store, "cgm-1", days=1)
    t, y = twin.data.series("cgm_mg_dl")
    codes = twin.data.censoring("cgm_mg_dl")
    assert codes.tolist() == [EXACT, BELOW, BELOW, EXACT, EXACT, ABOVE, ABOVE, EXACT]
    # the bound is kept as sent, converted like a value: 22.2 mmol/L is 400 mg/dL
    assert y[codes == ABOVE] == pytest.approx([400.0, 22.2 * 18.0156], abs=0.05)
    assert np.diff(t).tolist() == [5.0] * (len(values) - 1) and t[-1] == 1440.0


# ------------------------------------------------------------------ the likelihood
def _problem(censor: list[int], sigma: float) -> _Problem:
    y = np.array([100.0, 40.0, 400.0, 120.0])
    prob = _Problem(
        M,
        fit_spec(M),
        [col("gb_mg_dl")],
        np.arange(4.0),
        y,
        parse_scenario([]),
        "cgm_mg_dl",
        censor=np.array(censor),
    )
    prob.sigma = sigma
    return prob


def test_a_bound_s_term_is_the_t_probability_beyond_it() -> None:
    """Checked against scipy's Student-t distribution, an independent implementation."""
    sigma = 7.5
    prob = _problem([EXACT, BELOW, ABOVE, EXACT], sigma)
    pred = np.array([[95.0, 52.0, 380.0, 120.0], [140.0, 5.0, 900.0, 60.0]])
    got = prob.terms(prob.y[None, :] - pred)
    t = stats.t(df=NU, scale=sigma)
    want = np.column_stack(
        [
            -t.logpdf(prob.y[0] - pred[:, 0]),
            -t.logcdf(prob.y[1] - pred[:, 1]),  # P(reading <= 40)
            -t.logsf(prob.y[2] - pred[:, 2]),  # P(reading >= 400)
            -t.logpdf(prob.y[3] - pred[:, 3]),
        ]
    )
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # far beyond the bound the probability is 1 and the term 0; far short of it, large
    assert got[1, 1] == pytest.approx(-math.log(t.cdf(35.0)), rel=1e-9) and got[1, 1] < 0.01
    assert got[1, 2] < 1e-3 and got[0, 2] > 2.0


def test_the_step_s_score_and_curvature_are_the_derivatives_of_the_terms() -> None:
    sigma = 6.0
    prob = _problem([EXACT, BELOW, ABOVE, ABOVE], sigma)
    for pred in ([103.0, 45.0, 390.0, 405.0], [97.0, 30.0, 420.0, 380.0]):
        p = np.array(pred)
        psi, w = prob.irls(prob.y - p)
        h = 1e-4
        up_ = prob.terms(prob.y - (p + h))
        dn = prob.terms(prob.y - (p - h))
        mid = prob.terms(prob.y - p)
        np.testing.assert_allclose(-psi, (up_ - dn) / (2 * h), rtol=1e-6, atol=1e-9)
        second = (up_ + dn - 2 * mid) / (h * h)
        bound = prob.censor != EXACT
        np.testing.assert_allclose(w[bound], np.maximum(second[bound], 0.0), rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ calibration
def _hyperglycaemic_day(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, object, np.ndarray]:
    """adolescent#006 with four parameters moved and the lunch bolus missed: glucose above
    400 mg/dL for over three hours, which a Dexcom sensor reports as HIGH (">400")."""
    p = altered(
        "adolescent#006",
        {"gb_mg_dl": 0.95, "vmx_mg_per_kg_min_per_pmol_l": 1.2, "kp2_per_min": 0.8,
         "kabs_per_min": 1.2},
    )  # fmt: skip
    rate = float(up.steady_state_basal_u_per_min(p)[0])
    events: list[dict[str, float | str]] = [{"type": "basal", "t_min": 0, "u_per_min": rate}]
    for t0, carbs, units in ((420, 60, 4.0), (750, 120, 0.0), (1140, 70, 4.0)):
        events.append({"type": "meal", "t_min": t0, "carbs_g": carbs})
        if units:
            events.append({"type": "bolus", "t_min": t0, "insulin_u": units * rate / 0.02})
    s = parse_scenario(events)
    t = np.arange(0.0, DAY, 5.0)
    true = simulate(M, p, s, t_end=t[-1], times=t).observables["cgm_mg_dl"][0]
    y = true + up.cgm_noise_mg_dl(t, 1, seed=seed, sensor="Dexcom")[0]
    return t, y, true, s, p


def test_a_sensor_s_high_is_fitted_as_a_bound_not_as_400() -> None:
    t, y, true, s, p = _hyperglycaemic_day(seed=1)
    high = y > 400.0
    assert 30 <= high.sum() <= 50 and true.max() > 500  # over 3 h above the sensor's range
    sent = np.where(high, 400.0, y)
    codes = np.where(high, ABOVE, EXACT)

    def fit(censored: dict) -> tuple[object, np.ndarray]:
        cal = calibrate(M, PatientData({"cgm_mg_dl": (t, sent)}, scenario=s, censored=censored))
        pred = simulate(M, cal.params[None], s, t_end=t[-1], times=t).observables["cgm_mg_dl"]
        return cal, pred[0]

    cal, pred = fit({"cgm_mg_dl": codes})
    as_400, pred_400 = fit({})
    rmse = float(np.sqrt(np.mean((pred - true) ** 2)))
    rmse_400 = float(np.sqrt(np.mean((pred_400 - true) ** 2)))
    # as bounds: the twin follows the true glucose through the HIGH hours (1.2 mg/dL RMSE
    # when written, peak 526 against 525); read as 400 it is capped near 400 (RMSE 40, peak
    # 398) and the parameters move to make it so
    assert rmse < 4.0 and rmse_400 > 25.0, (rmse, rmse_400)
    assert abs(pred.max() - true.max()) < 15.0 and pred_400.max() < 420.0
    for name in FIT:
        z = abs(math.log(cal.params[col(name)] / p[0, col(name)])) / cal.log_sd[name]
        assert z < 3.0, (name, z)
    assert max(abs(math.log(as_400.params[col(n)] / p[0, col(n)])) for n in FIT) > 0.3
    assert cal.provenance["censored_readings"] == int(high.sum())
    assert as_400.provenance["censored_readings"] == 0
    # the reading error is estimated from the values: the bounds are not residuals
    assert cal.residuals.size == t.size - high.sum()
    assert 3.0 < cal.noise_scale < 12.0 and as_400.noise_scale > cal.noise_scale
    # the 90 % band of the fitted day covers the HIGH readings as bounds
    band = cal.predict(s, float(t[-1]), n=200, seed=1, times=t, meal_hypothesis=False)
    assert band.coverage(t[high], sent[high], codes[high]) > 0.9
    assert band.coverage(t[high], sent[high]) < 0.5  # as values, 400 is below the band


def test_readings_that_are_all_bounds_are_refused() -> None:
    t = np.arange(0.0, 600.0, 5.0)
    data = PatientData(
        {"cgm_mg_dl": (t, np.full(t.size, 400.0))},
        scenario=parse_scenario([{"type": "basal", "u_per_h": 1.0}]),
        censored={"cgm_mg_dl": np.full(t.size, ABOVE)},
    )
    with pytest.raises(CalibrationError, match="all 120 readings are bounds"):
        calibrate(M, data)


# ------------------------------------------------------------------ the particle filter
def test_the_filter_follows_glucose_above_the_sensor_s_range() -> None:
    """Absorbing the HIGH readings as bounds keeps the particles' glucose above 400; read as
    400 the filter's mean is pulled down to it."""
    t, y, true, s, p = _hyperglycaemic_day(seed=2)
    high = y > 400.0
    sent = np.where(high, 400.0, y)
    codes = np.where(high, ABOVE, EXACT)
    k = int(np.argmax(np.where(high, true, 0.0)))  # the highest glucose sent as HIGH
    means = {}
    # the particles: the patient's parameters with insulin sensitivity spread 40 % (as a
    # calibration's posterior would be), glucose moved by process noise
    rng = np.random.default_rng(4)
    vmx = "vmx_mg_per_kg_min_per_pmol_l"
    particles = np.repeat(p, 300, axis=0)
    particles[:, col(vmx)] *= np.exp(rng.normal(0.0, 0.4, 300))
    particles = np.clip(particles, M.lower_bounds(), M.upper_bounds())
    for label, c in (("bound", codes), ("value", None)):
        pf = ParticleFilter(
            M,
            particles,
            t0_min=0.0,
            seed=3,
            rejuvenate=[vmx],
            process_noise={"gp_mg_per_kg": 0.3},
        )
        pf.absorb(t[1 : k + 1], sent[1 : k + 1], s, censored=None if c is None else c[1 : k + 1])
        means[label] = pf.mean()
    # when written: 541 as bounds, 400 as values, against a true 525 mg/dL
    assert true[k] > 500.0
    assert abs(means["bound"] - true[k]) < 25.0, (means, true[k])
    assert means["value"] < true[k] - 20.0, (means, true[k])
    pf = ParticleFilter(M, np.repeat(p, 50, axis=0), t0_min=0.0, seed=3)
    with pytest.raises(DataError, match="censored"):
        pf.absorb([5.0, 10.0], [400.0, 410.0], s, censored=[ABOVE])
    with pytest.raises(DataError, match=r"censored\[1\] = 3"):
        pf.absorb([5.0, 10.0], [400.0, 410.0], s, censored=[ABOVE, 3])


def test_a_bound_with_gaussian_noise_is_the_normal_probability_beyond_it() -> None:
    sd = 10.0
    a = ParticleFilter(M, np.repeat(M.preset("adult#001"), 20, axis=0), t0_min=0.0, noise=sd)
    b = ParticleFilter(M, np.repeat(M.preset("adult#001"), 20, axis=0), t0_min=0.0, noise=sd)
    basal = [{"type": "basal", "t_min": 0}]
    a.absorb([5.0], [150.0], basal, censored=[ABOVE])
    b.absorb([5.0], [150.0], basal)
    g = float(a.mean())
    assert a.log_likelihood == pytest.approx(float(stats.norm.logsf(150.0, g, sd)), abs=1e-6)
    assert b.log_likelihood == pytest.approx(float(stats.norm.logpdf(150.0, g, sd)), abs=1e-6)
