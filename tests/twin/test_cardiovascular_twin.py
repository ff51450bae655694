"""The circulation twin: the Ursino model fitted to a patient's resting blood pressure and heart
rate (several observables at once, readings of a steady state), then asked what a haemorrhage
would do to this patient."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from tests.twin.records import person, reading

from medtwin.cli import main
from medtwin.model import get_model
from medtwin.model.base import OutsidePopulationError
from medtwin.physiology.cardiovascular import for_patient
from medtwin.record.facts import Coding, Identifier, MedicationRequest
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
    with pytest.raises(
        DataError,
        match=r"3 resting readings \(SBP, DBP, heart rate\) in the "
        r"fitted period, and a circulation twin needs 6 \(two visits at least\)",
    ):
        fit_spec(M).personalise(M, who, one)
    base = for_patient(age_years=58.0, weight_kg=90.0, sex="male")[0]
    with pytest.raises(CalibrationError, match=r"3 readings .* need at least 6"):
        calibrate(M, one, base=base, fit=FIT_ORDER[:3])  # the calibration's own check
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
    # the what-if ahead says from when: the end of the twin's data (2026-11-03, the last
    # visit), and that the data are old (more than 30 days before now)
    bleed = Path(__file__).parents[2] / "examples" / "scenarios" / "blood-loss-1000ml.json"
    args = ["whatif", "urn:test:mrn|CV-1", "--model", "cardiovascular_ursino", "--ahead",
            "--hours", "1", "--members", "20", "--scenario", str(bleed), "--store", url]  # fmt: skip
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    assert "next 1 h from 2026-11-03 10:00 UTC (the end of its data)" in out.output
    assert "note: the twin's data end on 2026-11-03, " in out.output
    assert "days ago: what it says is of the patient then" in out.output
    said = orjson.loads(CliRunner().invoke(main, [*args, "--json"]).output)
    assert said["data_end"] == "2026-11-03T10:00:00+00:00" and said["note"].startswith("the twin")


LISINOPRIL = Coding("http://www.nlm.nih.gov/research/umls/rxnorm", "314076", "lisinopril 10 MG")
CHANGE = T0 + timedelta(days=90)


def _treated_record(store: SqlStore, treated_days: tuple[int, ...]) -> dict[str, float]:
    """Four untreated visits (the last where lisinopril was started, at the same time), then
    visits on treatment 12/7 mmHg lower; readings without noise. Returns the treated values."""
    _, truth = _person()
    treated = dict(truth, sbp_mmhg=truth["sbp_mmhg"] - 12.0, dbp_mmhg=truth["dbp_mmhg"] - 7.0)
    facts: list[object] = [
        person(WHO, "1967-03-10", "male"),
        reading(WHO, "Weight/1", "29463-7", T0, 90.0, "kg"),
        MedicationRequest(
            source="test",
            source_id="MedicationRequest/1",
            subject=WHO,
            code=LISINOPRIL,
            status="active",
            effective_start=CHANGE,
        ),
    ]
    for day in (0, 30, 60, 90, *treated_days):
        when = T0 + timedelta(days=day)
        values = truth if when <= CHANGE else treated
        for name, value in values.items():
            unit = "mm[Hg]" if name != "heart_rate_per_min" else "/min"
            facts.append(reading(WHO, f"{name}/{day}", CODES[name], when, round(value), unit))
    store.append_facts(facts, source="test")  # type: ignore[arg-type]
    return treated


def test_only_readings_under_the_current_antihypertensive_treatment_are_fitted(
    store: SqlStore,
) -> None:
    treated = _treated_record(store, (150, 210, 270))
    twin = Twin.from_store(store, "urn:test:mrn|CV-1", model=M, days=730, load=False)
    cal = twin.fit(starts=2)
    # the visit at the order (day 90) was measured before the drug; the 28 days after it
    # are the drug taking effect: three treated visits remain
    assert [twin.data.count(n) for n in OBSERVABLES] == [3, 3, 3]
    assert cal.provenance["context"] == [
        "antihypertensive treatment: lisinopril 10 MG, unchanged since 2025-05-02"
    ]
    assert cal.provenance["skipped"] == [
        "12 resting readings before 2025-05-30: taken under other antihypertensive treatment "
        "(none before 2025-05-02) or within 28 days of the change to lisinopril 10 MG"
    ]
    order = store.timeline(twin.data.patient or "", kinds=["MedicationRequest"])[0]
    assert order.id in cal.provenance["fact_ids"]  # the twin records what it stood on
    rest = steady_observables(M, cal.sample(200, seed=1), ["sbp_mmhg", "dbp_mmhg"])
    untreated_sbp = treated["sbp_mmhg"] + 12.0
    lo, hi = np.quantile(rest["sbp_mmhg"], [0.05, 0.95])
    assert lo < treated["sbp_mmhg"] < hi < untreated_sbp
    assert abs(float(np.median(rest["dbp_mmhg"])) - treated["dbp_mmhg"]) < 3.0
    assert "antihypertensive treatment: lisinopril 10 MG" in fit_spec(M).describe(cal)[0]  # type: ignore[misc]

    # without the orders (characteristics built by hand) the readings of both are pooled
    pooled = Twin.from_store(store, "urn:test:mrn|CV-1", model=M, days=730, load=False)
    pooled.characteristics = {
        k: v for k, v in pooled.characteristics.items() if k != "medication_orders"
    }
    both = pooled.fit(starts=2)
    assert pooled.data.count("sbp_mmhg") == 7 and both.provenance["context"] == []
    mixed = steady_observables(M, both.sample(200, seed=1), ["sbp_mmhg"])["sbp_mmhg"]
    assert float(np.median(mixed)) > float(np.median(rest["sbp_mmhg"])) + 4.0


def test_too_few_treated_readings_refuse_and_say_how_to_fit_the_period_before(
    sqlite_store: SqlStore,
) -> None:
    _treated_record(sqlite_store, (150,))
    twin = Twin.from_store(sqlite_store, "urn:test:mrn|CV-1", model=M, days=730, load=False)
    with pytest.raises(DataError, match=r"3 resting readings .* needs 6") as err:
        twin.fit(starts=2)
    assert "--until 2025-05-02T10:00:00+00:00" in str(err.value)
    url = sqlite_store.url
    sqlite_store.close()
    args = ["twin", "fit", "urn:test:mrn|CV-1", "--model", "cardiovascular_ursino"]
    out = CliRunner().invoke(
        main, [*args, "--until", "2025-05-02T10:00:00+00:00", "--starts", "2", "--store", url]
    )
    assert out.exit_code == 0, out.output
    assert "antihypertensive treatment: none" in out.output
    assert (
        "the treatment changed after the last reading (2025-05-02) to lisinopril 10 MG: the "
        "twin is of the patient before that change" in out.output
    )
    shown = CliRunner().invoke(main, ["twin", "show", "urn:test:mrn|CV-1", "--store", url])
    assert shown.exit_code == 0 and "    antihypertensive treatment: none" in shown.output
    bad = CliRunner().invoke(main, [*args, "--until", "2025-13-01", "--store", url])
    assert bad.exit_code != 0 and "--until" in bad.output and "not a date" in bad.output


def _woman_record(
    store: SqlStore, *, pregnancy: tuple[int, int | None], heart_rate: bool = True
) -> None:
    """A woman of 65 kg, resting readings at 6 visits 120 days apart (days 0-600), and a
    pregnancy (SNOMED 72892002) from day ``pregnancy[0]`` to ``pregnancy[1]`` (None: no end)."""
    from medtwin.record.facts import Condition

    _, truth = _person()
    start, end = pregnancy
    facts: list[object] = [
        person(WHO, "1990-03-10", "female"),
        reading(WHO, "Weight/1", "29463-7", T0, 65.0, "kg"),
        Condition(
            source="test", source_id="Condition/preg", subject=WHO,
            code=Coding("http://snomed.info/sct", "72892002", "Normal pregnancy"),
            clinical_status="active" if end is None else "resolved",
            effective_start=T0 + timedelta(days=start),
            effective_end=None if end is None else T0 + timedelta(days=end),
        ),
    ]  # fmt: skip
    for day in range(0, 601, 120):
        when = T0 + timedelta(days=day)
        for name, value in truth.items():
            if name == "heart_rate_per_min" and not heart_rate:
                continue
            unit = "mm[Hg]" if name != "heart_rate_per_min" else "/min"
            facts.append(reading(WHO, f"{name}/{day}", CODES[name], when, round(value), unit))
    store.append_facts(facts, source="test")  # type: ignore[arg-type]


def test_a_pregnancys_readings_are_not_fitted(sqlite_store: SqlStore) -> None:
    """Pregnancy raises blood volume and cardiac output (Sanghavi and Rutherford 2014): the
    readings of a pregnancy (days 100-300) and the 42 days after it are left out, saying so."""
    _woman_record(sqlite_store, pregnancy=(100, 300))
    twin = Twin.from_store(sqlite_store, "urn:test:mrn|CV-1", model=M, days=730, load=False)
    assert twin.data.count("sbp_mmhg") == 6
    twin.fit(starts=1)
    assert twin.data.count("sbp_mmhg") == 4  # days 0, 360, 480, 600
    (reason,) = [s for s in twin.data.skipped if "pregnan" in s]
    assert reason == (
        "6 readings taken during a pregnancy or within 42 days after it (72892002 Normal "
        "pregnancy (2025-05-12), to 2026-01-09): the circulation model describes adults who "
        "are not pregnant"
    )


def test_a_circulation_twin_dated_in_a_pregnancy_is_refused(sqlite_store: SqlStore) -> None:
    _woman_record(sqlite_store, pregnancy=(550, None))
    with pytest.raises(OutsidePopulationError) as refused:
        Twin.from_store(sqlite_store, "urn:test:mrn|CV-1", model=M, days=730, load=False)
    said = str(refused.value)
    assert "describes the circulation of adults who are not pregnant" in said
    assert "blood volume by 40-50 %" in said and "--until 2026-08-05" in said


def test_a_record_without_heart_rates_says_what_the_fit_lacks(sqlite_store: SqlStore) -> None:
    _woman_record(sqlite_store, pregnancy=(1000, 1100), heart_rate=False)
    twin = Twin.from_store(sqlite_store, "urn:test:mrn|CV-1", model=M, days=730, load=False)
    with pytest.raises(DataError, match=r"no heart rate \(8867-4\) among the resting readings"):
        twin.fit(starts=1)
