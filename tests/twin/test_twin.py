"""Twin.from_store: the record read back as the model's observations and events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from medtwin.model import ModelError, OutsidePopulationError, get_model, parse_scenario, simulate
from medtwin.record.facts import (
    Coding,
    Condition,
    Demographics,
    Identifier,
    MedicationAdministration,
    Observation,
)
from medtwin.store.sql import SqlStore
from medtwin.twin import DataError
from medtwin.twin.twin import Twin, characteristics

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
WHO = Identifier("urn:test:mrn", "T1D-1")
UVA = get_model("uva_padova_2008")
DAY = [
    {"type": "basal", "u_per_h": 1.1},
    {"type": "meal", "t_min": 420, "carbs_g": 45},
    {"type": "bolus", "t_min": 420, "insulin_u": 4.5},
    {"type": "meal", "t_min": 780, "carbs_g": 60},
    {"type": "bolus", "t_min": 775, "insulin_u": 6},
]


def _record(store: SqlStore, *, days: int = 2) -> np.ndarray:
    """A patient with CGM every 5 min simulated from adult#002, meals, insulin, conditions."""
    facts: list[object] = [
        Demographics(
            source="reg",
            source_id="Patient/1",
            subject=WHO,
            identifiers=(WHO,),
            birth_date="1990-05-01",
            gender="female",
        ),
        Condition(
            source="reg",
            source_id="Condition/1",
            subject=WHO,
            code=Coding(SNOMED, "46635009", "Diabetes mellitus type 1"),
            clinical_status="active",
            effective_start=datetime(2005, 1, 1, tzinfo=UTC),
        ),
        Observation(
            source="reg",
            source_id="Weight/1",
            subject=WHO,
            code=Coding(LOINC, "29463-7", "Body weight"),
            effective_start=T0,
            value_num=64.0,
            unit="kg",
        ),
    ]
    events = []
    for d in range(days):
        for e in DAY:
            events.append({**e, "t_min": e.get("t_min", 0) + 1440 * d})
    scenario = parse_scenario(events)
    r = simulate(UVA, UVA.preset("adult#002"), scenario, t_end=1440 * days, dt_out=5)
    cgm = r.observables["cgm_mg_dl"][0]
    for i, (t, g) in enumerate(zip(r.times, cgm, strict=True)):
        facts.append(
            Observation(
                source="cgm",
                source_id=f"cgm/{i}",
                subject=WHO,
                code=Coding(LOINC, "99504-3", "Glucose [Mass/volume] in Interstitial fluid"),
                effective_start=T0 + timedelta(minutes=float(t)),
                value_num=round(float(g) / 18.0156, 4),  # stored in mmol/L: read back in mg/dL
                unit="mmol/L",
            )
        )
    for i, e in enumerate(scenario.events):
        when = T0 + timedelta(minutes=e.t_min)
        if e.type == "meal":
            facts.append(
                Observation(
                    source="app",
                    source_id=f"carbs/{i}",
                    subject=WHO,
                    code=Coding(LOINC, "9059-7", "Carbohydrate intake Estimated"),
                    effective_start=when,
                    value_num=e["carbs_g"],
                    unit="g",
                )
            )
        elif e.type == "bolus":
            facts.append(
                MedicationAdministration(
                    source="pump",
                    source_id=f"bolus/{i}",
                    subject=WHO,
                    code=Coding(RXNORM, "86009", "insulin lispro"),
                    effective_start=when,
                    dose_value=e["insulin_u"],
                    dose_unit="U",
                )
            )
        elif e.type == "basal":
            facts.append(
                MedicationAdministration(
                    source="pump",
                    source_id=f"basal/{i}",
                    subject=WHO,
                    code=Coding(RXNORM, "86009", "insulin lispro"),
                    effective_start=when,
                    rate_value=e["u_per_min"] * 60,
                    rate_unit="U/h",
                )
            )
    store.append_facts(facts, source="test")  # type: ignore[arg-type]
    return cgm


def test_the_record_reads_back_as_observations_and_events(store: SqlStore) -> None:
    cgm = _record(store)
    twin = Twin.from_store(store, "urn:test:mrn|T1D-1", days=2)
    t, y = twin.data.series("cgm_mg_dl")
    assert t[0] == 0.0 and t[-1] == 2880.0 and t.size == 577
    assert np.abs(y - cgm).max() < 0.01  # mmol/L -> mg/dL with 4 decimals
    kinds = [(e.type, e.t_min) for e in twin.data.scenario.events]
    one_day = [("basal", 0.0), ("meal", 420.0), ("bolus", 420.0), ("bolus", 775.0), ("meal", 780.0)]
    assert sorted(kinds) == sorted(one_day + [(k, t + 1440) for k, t in one_day])
    meals = twin.data.scenario.of_type("meal")
    assert [m["carbs_g"] for m in meals] == [45.0, 60.0, 45.0, 60.0]
    basal = twin.data.scenario.of_type("basal")[0]
    assert basal["u_per_min"] == pytest.approx(1.1 / 60)
    who = twin.characteristics
    assert who["sex"] == "female" and who["weight_kg"] == 64.0
    assert 35.8 < who["age_y"] < 35.9
    assert who["conditions"] == {"http://snomed.info/sct|46635009"}
    # re-simulating the recorded events reproduces the recorded CGM: nothing was lost
    r = simulate(UVA, UVA.preset("adult#002"), twin.data.scenario, t_end=2880, dt_out=5)
    assert np.abs(r.observables["cgm_mg_dl"][0] - y).max() < 0.01


def test_what_did_not_happen_is_not_read(store: SqlStore) -> None:
    """A bolus not given (status not-done), a cancelled CGM reading and a cancelled
    carbohydrate entry, both with values, and a ruled-out diagnosis: the twin reads none."""
    cgm = _record(store)
    when = T0 + timedelta(minutes=602)
    store.append_facts(
        [
            MedicationAdministration(
                source="pump",
                source_id="bolus/not-given",
                subject=WHO,
                status="not-done",
                code=Coding(RXNORM, "86009", "insulin lispro"),
                effective_start=when,
                dose_value=10.0,
                dose_unit="U",
            ),
            Observation(
                source="cgm",
                source_id="cgm/void",
                subject=WHO,
                status="cancelled",
                code=Coding(LOINC, "99504-3", "Glucose [Mass/volume] in Interstitial fluid"),
                effective_start=when,
                value_num=22.2,
                unit="mmol/L",
            ),
            Observation(
                source="app",
                source_id="carbs/void",
                subject=WHO,
                status="cancelled",
                code=Coding(LOINC, "9059-7", "Carbohydrate intake Estimated"),
                effective_start=when,
                value_num=100.0,
                unit="g",
            ),
            Condition(
                source="reg",
                source_id="Condition/2",
                subject=WHO,
                code=Coding(SNOMED, "44054006", "Diabetes mellitus type 2"),
                clinical_status="active",
                verification_status="refuted",
                effective_start=datetime(2020, 1, 1, tzinfo=UTC),
            ),
        ],
        source="test",
    )
    twin = Twin.from_store(store, "urn:test:mrn|T1D-1", days=2)
    t, y = twin.data.series("cgm_mg_dl")
    assert t.size == 577 and np.abs(y - cgm).max() < 0.01
    assert len(twin.data.scenario.events) == 10
    assert 10.0 not in [e["insulin_u"] for e in twin.data.scenario.of_type("bolus")]
    assert twin.characteristics["conditions"] == {"http://snomed.info/sct|46635009"}


@pytest.mark.parametrize(
    ("display", "route", "message"),
    [
        ("insulin glargine 100 UNT/ML [Lantus]", None, "is not a rapid- or short-acting insulin"),
        ("Humalog Mix 75/25", None, "is not a rapid- or short-acting insulin"),
        ("NPH insulin, human (isophane)", None, "is not a rapid- or short-acting insulin"),
        ("insulin regular, human", "Intravenous route", "was given intravenously"),
        ("Afrezza 4 UNT Inhalation Powder", None, "is inhaled insulin"),
    ],
)
def test_insulin_the_model_does_not_take_is_refused_naming_the_fact(
    sqlite_store: SqlStore, display: str, route: str | None, message: str
) -> None:
    """20 U of glargine read as a bolus would act as 20 U of lispro; left out, the insulin
    given would be missing from the fit: the twin refuses the window instead."""
    _record(sqlite_store)
    when = T0 + timedelta(hours=22)
    sqlite_store.append_facts(
        [
            MedicationAdministration(
                source="ward",
                source_id="mar/1",
                subject=WHO,
                code=Coding(RXNORM, "0", display),
                effective_start=when,
                dose_value=20.0,
                dose_unit="U",
                route=route,
            )
        ],
        source="test",
    )
    with pytest.raises(DataError, match=r"MedicationAdministration mar/1 \(2026-03-02 22:00\): "):
        Twin.from_store(sqlite_store, "urn:test:mrn|T1D-1", days=2)
    with pytest.raises(DataError, match=message):
        Twin.from_store(sqlite_store, "urn:test:mrn|T1D-1", days=2)
    # a window without it is fitted as before
    twin = Twin.from_store(
        sqlite_store, "urn:test:mrn|T1D-1", days=0.5, end=T0 + timedelta(hours=20)
    )
    assert twin.data.count("cgm_mg_dl") > 100


def test_a_rapid_acting_bolus_with_a_brand_and_a_strength_is_a_bolus(
    sqlite_store: SqlStore,
) -> None:
    _record(sqlite_store)
    sqlite_store.append_facts(
        [
            MedicationAdministration(
                source="ward",
                source_id="mar/2",
                subject=WHO,
                code=Coding(RXNORM, "0", "insulin lispro 100 UNT/ML Injection [Humalog]"),
                effective_start=T0 + timedelta(hours=22),
                dose_value=3.0,
                dose_unit="U",
                route="Subcutaneous route",
            ),
            MedicationAdministration(  # a brand alone, as a ward's record may name it
                source="ward",
                source_id="mar/3",
                subject=WHO,
                code=Coding(RXNORM, "0", "NovoRapid FlexPen"),
                effective_start=T0 + timedelta(hours=23),
                dose_value=2.5,
                dose_unit="U",
            ),
        ],
        source="test",
    )
    twin = Twin.from_store(sqlite_store, "urn:test:mrn|T1D-1", days=2)
    boluses = [e["insulin_u"] for e in twin.data.scenario.of_type("bolus")]
    assert 3.0 in boluses and 2.5 in boluses


def test_a_patient_without_readings_or_fit_is_refused_clearly(store: SqlStore) -> None:
    store.append_facts(
        [Demographics(source="reg", source_id="Patient/2", subject=WHO, identifiers=(WHO,))],
        source="reg",
    )
    with pytest.raises(DataError, match=r"no readings of bg_mg_dl, cgm_mg_dl"):
        Twin.from_store(store, "urn:test:mrn|T1D-1")
    _record(store, days=1)
    twin = Twin.from_store(store, "urn:test:mrn|T1D-1", days=1)
    with pytest.raises(DataError, match="not fitted yet"):
        twin.ensemble(10)


def test_models_refuse_patients_outside_their_population(store: SqlStore) -> None:
    _record(store, days=1)
    pid = store.resolve_patient("urn:test:mrn|T1D-1")
    who = characteristics(store, pid, T0 + timedelta(days=1))
    assert issubclass(OutsidePopulationError, ModelError)
    UVA.check_population(who)  # an adult with type 1 diabetes: accepted


def test_fitted_twin_whatif_has_bands_and_agrees_with_simglucose(sqlite_store: SqlStore) -> None:
    """The issue's acceptance: a what-if on a fitted synthetic patient shows, with bands, what
    a smaller dinner or a bigger bolus would have done, and agrees with simglucose."""
    from tests.physiology.test_uva_padova import _simglucose_live

    from medtwin.physiology.uva_padova import VG
    from medtwin.twin.scenario import compare

    _record(sqlite_store, days=2)
    twin = Twin.from_store(sqlite_store, "urn:test:mrn|T1D-1", days=2)
    cal = twin.fit(starts=2, seed=1)
    assert cal.diagnostics["converged"]
    twin_id = twin.save(sqlite_store)
    again = Twin.from_store(sqlite_store, "urn:test:mrn|T1D-1", days=2)
    assert again.stored_id == twin_id
    assert np.array_equal(again.calibration.params, cal.params)

    # forecast: the twin as of 20:00 on day 2, next 2 hours, against what was recorded
    end = T0 + timedelta(days=1, hours=20)
    earlier = Twin.from_store(sqlite_store, "urn:test:mrn|T1D-1", days=1.5, end=end)
    f = earlier.forecast(2.0, n=200, seed=3)
    t_all, y_all = twin.data.series("cgm_mg_dl")
    offset = (end - T0).total_seconds() / 60 - earlier.data.span_min
    ahead = (t_all > (end - T0).total_seconds() / 60) & (
        t_all <= (end - T0).total_seconds() / 60 + 120
    )
    median = np.interp(t_all[ahead] - offset, f.times_min, f.band("cgm_mg_dl", 0.5))
    lo = np.interp(t_all[ahead] - offset, f.times_min, f.band("cgm_mg_dl", 0.05))
    hi = np.interp(t_all[ahead] - offset, f.times_min, f.band("cgm_mg_dl", 0.95))
    inside = (y_all[ahead] >= lo) & (y_all[ahead] <= hi)
    assert ahead.sum() == 24 and inside.mean() >= 0.8
    assert np.abs(median - y_all[ahead]).mean() < 15.0

    day = twin.recorded(1440.0, 2880.0)
    smaller = [{**e, "carbs_g": 30.0} if e.get("carbs_g") == 60.0 else e for e in day]
    bigger = [{**e, "insulin_u": 8.0} if e.get("insulin_u") == 6.0 else e for e in day]
    c = twin.whatif(
        {"smaller dinner": smaller, "bigger bolus": bigger}, hours=24, mode="replace", n=40
    )
    recorded, small, big = c.arms
    assert recorded.name == "recorded"
    band = small.bands["cgm_mg_dl"]
    assert np.all(band.low <= band.median) and np.all(band.median <= band.high)
    assert float((band.high - band.low).max()) > 0  # the posterior leaves some uncertainty
    assert small.difference["mean_mg_dl"].high < 0
    assert big.difference["min_mg_dl"].high < 0

    # the MAP twin through each arm, simulated by simglucose from the start of the record
    p = cal.params[None, :]
    x0 = twin.states_at(1440.0, p)
    single = compare(
        UVA,
        p,
        parse_scenario(day),
        {"smaller dinner": parse_scenario(smaller), "bigger bolus": parse_scenario(bigger)},
        t_end=1440,
        dt_out=1,
        x0=x0,
    )
    for arm, events in (("baseline", day), ("smaller dinner", smaller), ("bigger bolus", bigger)):
        meals = [e for e in events if e["type"] != "basal"]
        states = _simglucose_live("adult#002", {"events": meals}, 1440, cal.params, x0[0])
        ours = single.arm(arm).bands["bg_mg_dl"].median
        assert np.abs(ours - states[:, 3] / cal.params[VG]).max() < 0.01


@pytest.mark.parametrize("name", ["uva_padova_2008", "hovorka_2004", "bergman_1979"])
def test_type1_models_refuse_a_record_of_type2_diabetes(name: str) -> None:
    model = get_model(name)
    type2 = {"conditions": {"http://snomed.info/sct|44054006"}}
    with pytest.raises(OutsidePopulationError, match="describes type 1 diabetes"):
        model.check_population(type2)
    with pytest.raises(OutsidePopulationError, match="type 2 diabetes"):
        model.check_population({"conditions": {"http://hl7.org/fhir/sid/icd-10-cm|E11.9"}})
    model.check_population({"conditions": {"http://hl7.org/fhir/sid/icd-10|E10.9"}})
    model.check_population({"conditions": set()})  # nothing coded: device data alone
    both = {"conditions": type2["conditions"] | {"http://snomed.info/sct|46635009"}}
    model.check_population(both)


def test_forecast_cli_draws_unannounced_meals_unless_told_not_to(
    sqlite_store: SqlStore, tmp_path: object
) -> None:
    """``medtwin forecast``: JSON bands; ``--no-unannounced`` forecasts the recorded events only,
    so its upper band (meals only add glucose) is not above the default's."""
    import json

    from click.testing import CliRunner

    from medtwin.cli import main

    _record(sqlite_store, days=1)
    twin = Twin.from_store(sqlite_store, "urn:test:mrn|T1D-1", days=1)
    twin.fit(starts=1, seed=2)
    twin.save(sqlite_store)
    runner = CliRunner()
    out = {}
    for flag in ("--unannounced", "--no-unannounced"):
        result = runner.invoke(
            main,
            [
                *("forecast", "urn:test:mrn|T1D-1", "--hours", "6", "--particles", "200"),
                *(flag, "--json", "--store", sqlite_store.url),
            ],
        )
        assert result.exit_code == 0, result.output
        out[flag] = json.loads(result.output)
    with_meals = np.asarray(out["--unannounced"]["bands"]["cgm_mg_dl"])
    without = np.asarray(out["--no-unannounced"]["bands"]["cgm_mg_dl"])
    quantiles = out["--unannounced"]["quantiles"]
    top = quantiles.index(max(quantiles))
    assert with_meals.shape == without.shape and with_meals.shape[1] == 6 * 12 + 1
    # all of this record's meals were recorded; the search, with the parameters re-adjusted
    # to each candidate, takes a misfit for one small meal (8 g at 03:45 when written; none
    # with the parameters held), so the drawn meals are small and rare (0.74 a day): they
    # lift the top of the band a little (1.1 mg/dL when written)
    assert not np.array_equal(with_meals, without)
    assert with_meals[top].mean() > without[top].mean() + 0.5
    # no readings absorbed: the forecast starts from the standing events at the latest reading
    result = runner.invoke(
        main,
        [
            *("forecast", "urn:test:mrn|T1D-1", "--hours", "1", "--assimilate-hours", "0"),
            *("--particles", "100", "--json", "--store", sqlite_store.url),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["bands"]["cgm_mg_dl"][0]) == 13
    # a recorded what-if reaching back before the first reading (a day of data, 48 h asked)
    # simulated hours with no readings and no recorded insulin: refused, saying what is covered
    twin = Twin.from_store(sqlite_store, "urn:test:mrn|T1D-1", days=3)
    first = twin.data.first_reading_min
    assert first is not None
    covered = (twin.data.span_min - first) / 60.0
    with pytest.raises(
        DataError, match=r"the last 48 h reach back before the first reading"
    ) as err:
        twin.whatif({"snack": [{"type": "meal", "t_min": 60, "carbs_g": 20}]}, hours=48, n=20)
    assert f"they cover {covered:.4g} h" in str(err.value)
    whole = twin.whatif(
        {"snack": [{"type": "meal", "t_min": 60, "carbs_g": 20}]}, hours=covered, n=20
    )
    assert whole.members == 20


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["forecast", "P", "--hours", "nan"],
            "'--hours': nan is not a number of hours from above 0",
        ),
        (["forecast", "P", "--days", "0"], "'--days': 0 is not a number of days from above 0"),
        (["forecast", "P", "--assimilate-hours", "-1"], "-1 is not a number of hours from 0 to"),
        (["forecast", "P", "--particles", "0"], "'--particles': 0 is not in the range x>=1"),
        (["twin", "events", "P", "--hours", "1e9"], "to 876,600 (100 years)"),
        (["twin", "events", "P", "--hours", "0"], "'--hours': 0 is not a number of hours"),
        (["twin", "fit", "P", "--days", "-7"], "'--days': -7 is not a number of days"),
        (["twin", "fit", "P", "--starts", "0"], "'--starts': 0 is not in the range x>=1"),
        (["whatif", "P", "--scenario", "x.json", "--members", "0"], "0 is not in the range x>=1"),
        (["whatif", "P", "--scenario", "x.json", "--days", "-2"], "-2 is not a number of days"),
    ],
)
def test_periods_and_counts_are_checked_by_the_options(args: list[str], message: str) -> None:
    """A period that is not positive, not finite or over 100 years, or no particles, is refused
    naming the option (were tracebacks: 'window: need t0 < t1', an OverflowError)."""
    from click.testing import CliRunner

    from medtwin.cli import main

    result = CliRunner().invoke(main, [*args, "--store", "unused.db"])
    assert result.exit_code == 2 and message in result.output, result.output
