"""The synthetic check-ups against medtwin's own models (``medtwin.synth.physiology``).

Weight at every check-up is the Hall 2011 model run with the person's own intake (re-run here
with the public ``simulate`` and the plan's diet events); blood pressure and heart rate are the
resting steady state of the circulation model (re-computed here with ``initial_state`` and the
drug effect as a scenario event); the measured values add visit-to-visit noise of the SDs in
``population.toml`` [within_person]. Race and ethnicity travel as US Core extensions, are
imported into the record and reach the Pooled Cohort Equations.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from medtwin.cli import main
from medtwin.model import parse_scenario, simulate
from medtwin.physiology.body_weight import Hall2011BodyWeight
from medtwin.physiology.cardiovascular import CardiovascularUrsino
from medtwin.synth.generator import (
    US_CORE_ETHNICITY,
    US_CORE_RACE,
    _build,
    _load_population,
    _PatientGenerator,
    patient_rng,
)
from medtwin.synth.physiology import (
    VitalsRequest,
    WeightRequest,
    plan_vitals,
    plan_weights,
)

TODAY = dt.date(2026, 1, 1)
SEED = 20260101
WEIGHT_NOISE_SD_KG = 1.2  # population.toml [within_person] weight_sd_kg
SYSTOLIC_NOISE_SD, DIASTOLIC_NOISE_SD, RATE_NOISE_SD = 8.0, 5.0, 6.0
RACE_SYSTEM = "urn:oid:2.16.840.1.113883.6.238"


def generators(indices: Sequence[int], seed: int = SEED) -> list[_PatientGenerator]:
    population = _load_population()
    return [_PatientGenerator(population, patient_rng(seed, i), i, TODAY, seed) for i in indices]


def built(indices: Sequence[int], seed: int = SEED) -> tuple[list[_PatientGenerator], list[Any]]:
    people = generators(indices, seed)
    return people, _build(people)


def checkups(bundle: dict[str, Any]) -> list[dict[str, float]]:
    """Per check-up (in time order): weight, systolic, diastolic, heart rate as recorded."""
    rows: dict[str, dict[str, float]] = {}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] != "Observation":
            continue
        row = rows.setdefault(resource["encounter"]["reference"], {})
        row["when"] = dt.datetime.fromisoformat(resource["effectiveDateTime"]).timestamp()
        for part in [resource, *resource.get("component", [])]:
            code = part["code"]["coding"][0]["code"]
            if "valueQuantity" in part:
                row[code] = float(part["valueQuantity"]["value"])
    return sorted(rows.values(), key=lambda row: row["when"])


def observables_at(states: np.ndarray, params: np.ndarray) -> dict[str, float]:
    return {
        o.name: float(o.function(states[None, None, :], params[None, :])[0, 0])
        for o in CardiovascularUrsino.observables
    }


def test_checkup_weights_are_the_hall_model_run_with_the_persons_intake() -> None:
    people, bundles = built(range(16))
    residuals: list[float] = []
    checked = 0
    for person, bundle in zip(people, bundles, strict=True):
        plan = person.weight_plan
        assert plan is not None and plan.refused is None, plan
        days = plan.visit_days
        recorded = [row["29463-7"] for row in checkups(bundle)]
        assert len(recorded) == len(days) == len(plan.weights_kg)
        # the model ends at the weight drawn from the NHANES table for the last check-up
        assert plan.weights_kg[-1] == pytest.approx(person.weight_last, abs=0.05)
        for measured, model in zip(recorded, plan.weights_kg, strict=True):
            assert abs(measured - model) <= 4 * WEIGHT_NOISE_SD_KG + 0.05
            residuals.append(measured - model)
        if len(days) < 2:
            continue
        # the intake is a ramp of monthly steps: step m = slope (m + 1/2) / 12 kcal/day
        events = plan.events()
        slope = plan.intake_slope_kcal_per_day_per_year
        assert events[3]["intake_change_kcal_per_day"] == pytest.approx(slope * 3.5 / 12)
        assert (slope > 0) == (plan.weights_kg[-1] > plan.weights_kg[0])
        # an independent run of the public solver with those events gives the same weights
        run = simulate(
            Hall2011BodyWeight,
            plan.params[None, :],
            parse_scenario(events),
            t_end=float(days[-1]),
            times=[float(d) for d in days],
        )
        again = run.observables["weight_kg"][0]
        assert np.allclose(again, plan.weights_kg, atol=1e-3), (again, plan.weights_kg)
        checked += 1
    assert checked >= 12
    # visit-to-visit variation around the model: mean 0, SD 1.2 kg (rounding adds 0.03)
    assert abs(statistics.fmean(residuals)) <= 4 * WEIGHT_NOISE_SD_KG / math.sqrt(len(residuals))
    assert 0.8 <= statistics.stdev(residuals) <= 1.6


def test_weight_plan_refuses_outside_halls_population() -> None:
    plans = plan_weights(
        [
            WeightRequest("female", 50.0, 1.60, 170.0, 172.0, (0, 365)),  # BMI 66
            WeightRequest("female", 50.0, 1.60, 70.0, 68.0, (0, 365, 730)),
        ]
    )
    assert plans[0].refused is not None and "BMI" in plans[0].refused
    assert plans[0].weights_kg == ()
    assert plans[1].refused is None
    assert plans[1].weights_kg[0] == pytest.approx(70.0, abs=1e-6)  # in energy balance at first
    assert plans[1].weights_kg[-1] == pytest.approx(68.0, abs=0.05)
    assert plans[1].intake_slope_kcal_per_day_per_year < 0


def _treated_and_untreated(count: int) -> list[int]:
    """Indices of ``count`` people inside the circulation model, half of them treated."""
    treated: list[int] = []
    untreated: list[int] = []
    for person in generators(range(400)):
        person.prepare()
        inside = 45.0 <= person.weight_last <= 115.0
        if not inside:
            continue
        bucket = treated if person.antihypertensives else untreated
        if len(bucket) < count // 2:
            bucket.append(person.index)
    return sorted(treated + untreated)


def test_checkup_vitals_are_the_circulation_models_steady_state() -> None:
    people, bundles = built(_treated_and_untreated(8))
    treated_seen = 0
    for person, bundle in zip(people, bundles, strict=True):
        plan = person.vitals_plan
        assert plan is not None and plan.refused is None, plan
        rows = checkups(bundle)
        for visit, row in enumerate(rows):
            params = plan.params[visit]
            x = CardiovascularUrsino.initial_state(params[None, :])
            if plan.treated[visit]:
                drug = parse_scenario(
                    [
                        {
                            "type": "drug_effect",
                            "t_min": 0,
                            "target": "svr",
                            "change_pct": plan.svr_change_pct,
                        }
                    ]
                )
                run = simulate(CardiovascularUrsino, params[None, :], drug, t_end=60.0, x0=x)
                state = run.states[0, -1]
            else:
                state = x[0]
            steady = observables_at(state, params)
            assert plan.systolic_mm_hg[visit] == pytest.approx(steady["sbp_mmhg"], abs=0.5)
            assert plan.diastolic_mm_hg[visit] == pytest.approx(steady["dbp_mmhg"], abs=0.5)
            assert plan.heart_rate_per_min[visit] == pytest.approx(
                steady["heart_rate_per_min"], abs=0.5
            )
            # the record adds visit-to-visit noise to the model's values
            assert abs(row["8480-6"] - plan.systolic_mm_hg[visit]) <= 4 * SYSTOLIC_NOISE_SD + 0.5
            assert abs(row["8867-4"] - plan.heart_rate_per_min[visit]) <= 4 * RATE_NOISE_SD + 0.5
        if any(plan.treated):
            treated_seen += 1
            # the drug lowers the peripheral resistances; at the last check-up the treated
            # pressure is the drawn one: untreated minus the drawn drug effect
            assert -60.0 < plan.svr_change_pct < 0.0
            request = person.vitals_request()
            wanted = request.systolic_mm_hg[-1] - request.systolic_drop_mm_hg
            assert plan.systolic_mm_hg[-1] == pytest.approx(wanted, abs=1.5)
        else:
            assert plan.svr_change_pct == 0.0
            assert plan.systolic_mm_hg[-1] == pytest.approx(person.sbp_last, abs=1.5)
            assert plan.diastolic_mm_hg[-1] == pytest.approx(person.dbp_last, abs=1.5)
            assert plan.heart_rate_per_min[-1] == pytest.approx(person.heart_rate, abs=1.5)
    assert treated_seen >= 3


def test_vitals_hit_the_drawn_values_for_most_people() -> None:
    """At the last check-up the steady state is within 1 mmHg / 1 per min of the drawn values
    for at least 90 % of 120 people (the rest sit at a parameter bound)."""
    people = generators(range(120))
    for person in people:
        person.prepare()
    requests = [person.vitals_request() for person in people]
    plans = plan_vitals(requests)
    close = []
    for request, plan in zip(requests, plans, strict=True):
        if plan.refused is not None:
            assert "blood_volume_ml" in plan.refused or "weight_kg" in plan.refused
            continue
        drop = request.systolic_drop_mm_hg if plan.treated[-1] else 0.0
        close.append(
            abs(plan.systolic_mm_hg[-1] - (request.systolic_mm_hg[-1] - drop)) <= 1.0
            and abs(plan.heart_rate_per_min[-1] - request.heart_rate_per_min) <= 1.0
        )
    assert len(close) >= 100
    assert sum(close) >= 0.9 * len(close)


def test_vitals_plan_refuses_a_circulation_it_cannot_scale() -> None:
    """The cardiovascular model is sized for adults of 40-150 kg (``for_patient``): outside that
    the plan says why and keeps no model values; at 135 kg it scales."""
    heavy, light, large = plan_vitals(
        [
            VitalsRequest("male", 50.0, 160.0, (140.0,), (88.0,), 72.0),
            VitalsRequest("female", 50.0, 38.0, (120.0,), (78.0,), 72.0),
            VitalsRequest("male", 50.0, 135.0, (140.0,), (88.0,), 72.0),
        ]
    )
    for plan in (heavy, light):
        assert plan.refused is not None and "weight_kg" in plan.refused and "40-150" in plan.refused
        assert plan.systolic_mm_hg == ()
    assert large.refused is None and abs(large.systolic_mm_hg[0] - 140.0) < 0.5


def test_race_and_ethnicity_follow_the_census() -> None:
    people = generators(range(4000), seed=5)
    for person in people:
        person._race_ethnicity()
    n = len(people)

    def near(flags: list[bool], expected: float, label: str) -> None:
        share = sum(flags) / n
        tolerance = 4 * math.sqrt(expected * (1 - expected) / n)
        assert abs(share - expected) <= tolerance, (label, share, expected)

    # 2020 Census (Jones et al. 2021): shares of the listed groups sum to 99.9 %
    total = 0.616 + 0.124 + 0.011 + 0.060 + 0.002 + 0.084 + 0.102
    near([p.races == [("2106-3", "White")] for p in people], 0.616 / total, "White alone")
    near(
        [p.races == [("2054-5", "Black or African American")] for p in people],
        0.124 / total,
        "Black alone",
    )
    near([len(p.races) == 2 for p in people], 0.102 / total, "two or more races")
    near([p.ethnicity[0] == "2135-2" for p in people], 0.187, "Hispanic or Latino")
    assert all(len({code for code, _ in p.races}) == len(p.races) for p in people)


def test_patient_carries_us_core_race_and_ethnicity() -> None:
    _, bundles = built([0, 1, 2])
    for bundle in bundles:
        patient = bundle["entry"][0]["resource"]
        extensions = {e["url"]: e["extension"] for e in patient["extension"]}
        race = extensions[US_CORE_RACE]
        categories = [e["valueCoding"] for e in race if e["url"] == "ombCategory"]
        assert categories and all(c["system"] == RACE_SYSTEM for c in categories)
        assert [e["url"] for e in race][-1] == "text"
        ethnicity = extensions[US_CORE_ETHNICITY]
        assert ethnicity[0]["valueCoding"]["code"] in {"2135-2", "2186-5"}


def test_synthetic_race_is_imported_and_used_by_the_pooled_cohort_equations(
    tmp_path: Path,
) -> None:
    out, db = tmp_path / "synth", str(tmp_path / "medtwin.db")
    runner = CliRunner()
    result = runner.invoke(main, ["synth", "--patients", "25", "--seed", "42", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["import", str(out), "--store", db])
    assert result.exit_code == 0, result.output
    expected = {"2106-3": "white", "2054-5": "black", "2131-1": "other", "2028-9": "asian"}
    computed_by_race: dict[str, int] = {}
    for path in sorted(out.glob("patient-*.json")):
        patient = json.loads(path.read_text())["entry"][0]["resource"]
        race = next(e for e in patient["extension"] if e["url"] == US_CORE_RACE)
        first = race["extension"][0]["valueCoding"]["code"]
        result = runner.invoke(
            main,
            ["risk", patient["id"], "--store", db, "--date", "2026-01-01", "--no-save", "--json"],
        )
        assert result.exit_code == 0, result.output
        answer = json.loads(result.output)
        assert answer["inputs"]["race"]["status"] == "ok"
        if first in expected:
            assert answer["inputs"]["race"]["value"] == expected[first]
        pce = next(s for s in answer["scores"] if s["name"] == "pce_ascvd_10y")
        if pce["status"] == "computed":
            race_name = answer["inputs"]["race"]["value"]
            computed_by_race[race_name] = computed_by_race.get(race_name, 0) + 1
    # the demo run has Black and White adults of 40-79 whose risk the PCE computes
    assert computed_by_race.get("white", 0) >= 1 and computed_by_race.get("black", 0) >= 1
