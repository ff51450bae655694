"""Tests of medtwin's synthetic demo patients (``medtwin.synth``).

Four groups: (1) every resource is valid FHIR R4 (``fhir.resources.R4B``); (2) determinism;
(3) the generated population against the targets in ``population.toml`` and the published
effect sizes, with the tolerances stated next to each check; (4) writing files.

Tolerances of the population checks: a mean is within 4 standard errors (sample SD / sqrt(n))
of its target AND within 3 %; a prevalence is within 4 binomial standard errors
(sqrt(p (1 - p) / n)) of its target. With these, a correct generator fails by chance far less
than once in 10,000 runs; the population is drawn from a fixed seed anyway, so the checks are
deterministic.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
import statistics
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class
from hypothesis import example, given, settings
from hypothesis import strategies as st

from medtwin.synth import (
    DEFAULT_TODAY,
    ckd_epi_2021_egfr,
    generate_patient,
    patient_rng,
    write_synthetic_patients,
)

POPULATION_TOML = (
    Path(__file__).resolve().parents[2] / "src" / "medtwin" / "synth" / "data" / "population.toml"
)
TODAY = dt.date(2026, 1, 1)
N_POPULATION = 2000
SEED = 20260101
ANTIHYPERTENSIVES = {"314076", "197361", "310798"}
ATORVASTATIN_20 = "617310"
OFFSET_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?[+-]\d{2}:\d{2}$")


# --------------------------------------------------------------------------------------------
# helpers: read population.toml independently of the generator, and summarise one bundle
# --------------------------------------------------------------------------------------------


def load_targets() -> dict[str, Any]:
    with POPULATION_TOML.open("rb") as handle:
        return tomllib.load(handle)


def target(targets: Mapping[str, Any], table: str, column: str, sex: str, age: int) -> float:
    for row in targets[table]["rows"]:
        if row.get("sex", sex) == sex and row["age_min"] <= age <= row["age_max"]:
            return float(row[column])
    raise LookupError(f"{table}: no row for {sex} {age}")


def make(seed: int, index: int) -> dict[str, Any]:
    """Patient ``index`` of run ``seed``, as write_synthetic_patients would make it."""
    bundle = generate_patient(patient_rng(seed, index), index, today=TODAY, seed=seed)
    return cast(dict[str, Any], bundle)


def age_on(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def instant(text: str) -> dt.datetime:
    """A FHIR dateTime as an aware datetime (a date alone is read as its start, UTC)."""
    if len(text) == 10:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(text)


def codes(concept: Mapping[str, Any]) -> set[str]:
    return {coding["code"] for coding in concept.get("coding", [])}


def independent_egfr(creatinine: float, age: float, female: bool) -> float:
    """CKD-EPI 2021 written out again from Inker et al., NEJM 2021, for cross-checking."""
    if female:
        ratio = creatinine / 0.7
        low, high = min(ratio, 1.0) ** -0.241, max(ratio, 1.0) ** -1.2
        return float(142 * low * high * 0.9938**age * 1.012)
    ratio = creatinine / 0.9
    return float(142 * min(ratio, 1.0) ** -0.302 * max(ratio, 1.0) ** -1.2 * 0.9938**age)


@dataclass
class Summary:
    """What the population checks need from one patient."""

    sex: str
    age_today: int
    age_last: int
    height_cm: float
    weight_kg: float
    bmi: float
    systolic: float
    hba1c: float
    diabetes: bool
    """Any diabetes: type 2 (44054006) or type 1 (46635009)."""
    type1: bool
    hypertension: bool
    systolic_drop: float | None
    ldl_drop_fraction: float | None
    egfr_rows: list[tuple[float, int, bool, float]] = field(default_factory=list)


def resources(bundle: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for entry in bundle["entry"]:
        yield entry["resource"]


def loinc_value(observation: Mapping[str, Any]) -> tuple[str, float] | None:
    if "valueQuantity" not in observation:
        return None
    return next(iter(codes(observation["code"]))), float(observation["valueQuantity"]["value"])


def mean_drop(
    series: Sequence[tuple[dt.datetime, float]], start: dt.datetime
) -> tuple[float, float] | None:
    before = [value for when, value in series if when < start]
    after = [value for when, value in series if when > start]
    if not before or not after:
        return None
    return statistics.fmean(before), statistics.fmean(after)


def summarise(bundle: Mapping[str, Any]) -> Summary:
    patient = bundle["entry"][0]["resource"]
    birth = dt.date.fromisoformat(patient["birthDate"])
    female = patient["gender"] == "female"
    encounters = sorted(
        (r for r in resources(bundle) if r["resourceType"] == "Encounter"),
        key=lambda r: instant(r["period"]["start"]),
    )
    last_ref = f"urn:uuid:{encounters[-1]['id']}"
    last: dict[str, float] = {}
    per_encounter: dict[str, dict[str, float]] = {}
    systolic_series: list[tuple[dt.datetime, float]] = []
    ldl_series: list[tuple[dt.datetime, float]] = []
    conditions: set[str] = set()
    antihypertensive_start: dt.datetime | None = None
    statin_start: dt.datetime | None = None
    for resource in resources(bundle):
        kind = resource["resourceType"]
        if kind == "Condition":
            conditions |= codes(resource["code"])
        elif kind == "MedicationRequest":
            drug = codes(resource["medicationCodeableConcept"])
            authored = instant(resource["authoredOn"])
            if drug & ANTIHYPERTENSIVES:
                antihypertensive_start = authored
            if ATORVASTATIN_20 in drug:
                statin_start = authored
        elif kind == "Observation":
            encounter = resource["encounter"]["reference"]
            when = instant(resource["effectiveDateTime"])
            values = per_encounter.setdefault(encounter, {"date": when.date().toordinal()})
            if "component" in resource:
                for component in resource["component"]:
                    code = next(iter(codes(component["code"])))
                    values[code] = float(component["valueQuantity"]["value"])
                systolic_series.append((when, values["8480-6"]))
            pair = loinc_value(resource)
            if pair is not None:
                values[pair[0]] = pair[1]
                if pair[0] == "18262-6":
                    ldl_series.append((when, pair[1]))
    last = per_encounter[last_ref]
    egfr_rows = []
    for values in per_encounter.values():
        visit_day = dt.date.fromordinal(int(values["date"]))
        egfr_rows.append((values["2160-0"], age_on(birth, visit_day), female, values["98979-8"]))
    systolic_drop = None
    if antihypertensive_start is not None:
        means = mean_drop(systolic_series, antihypertensive_start)
        systolic_drop = None if means is None else means[0] - means[1]
    ldl_drop = None
    if statin_start is not None:
        means = mean_drop(ldl_series, statin_start)
        ldl_drop = None if means is None else 1.0 - means[1] / means[0]
    last_day = instant(encounters[-1]["period"]["start"]).date()
    return Summary(
        sex=patient["gender"],
        age_today=age_on(birth, TODAY),
        age_last=age_on(birth, last_day),
        height_cm=last["8302-2"],
        weight_kg=last["29463-7"],
        bmi=last["39156-5"],
        systolic=last["8480-6"],
        hba1c=last["4548-4"],
        diabetes=bool({"44054006", "46635009"} & conditions),
        type1="46635009" in conditions,
        hypertension="38341003" in conditions,
        systolic_drop=systolic_drop,
        ldl_drop_fraction=ldl_drop,
        egfr_rows=egfr_rows,
    )


@pytest.fixture(scope="module")
def population() -> list[Summary]:
    """2,000 patients, summarised one by one (the bundles are not kept)."""
    return [summarise(make(SEED, i)) for i in range(N_POPULATION)]


@pytest.fixture(scope="module")
def targets() -> dict[str, Any]:
    return load_targets()


def assert_mean_near(values: Sequence[float], expected: float, label: str) -> None:
    """Mean within 4 standard errors of ``expected`` and within 3 % of it."""
    mean = statistics.fmean(values)
    standard_error = statistics.stdev(values) / math.sqrt(len(values))
    assert abs(mean - expected) <= 4 * standard_error, (
        f"{label}: mean {mean:.2f} vs target {expected:.2f} (4 SE = {4 * standard_error:.2f})"
    )
    assert abs(mean - expected) <= 0.03 * expected, f"{label}: {mean:.2f} not within 3 %"


def assert_prevalence_near(flags: Sequence[bool], expected: float, label: str) -> None:
    """Share of True within 4 binomial standard errors of ``expected``."""
    share = sum(flags) / len(flags)
    tolerance = 4 * math.sqrt(expected * (1 - expected) / len(flags))
    assert abs(share - expected) <= tolerance, (
        f"{label}: {share:.3f} vs target {expected:.3f} (+-{tolerance:.3f}, n={len(flags)})"
    )


# --------------------------------------------------------------------------------------------
# (1) valid FHIR R4
# --------------------------------------------------------------------------------------------


def test_every_resource_of_50_bundles_is_valid_fhir_r4() -> None:
    for index in range(50):
        bundle = make(3, index)
        get_fhir_model_class("Bundle").model_validate(bundle)
        for resource in resources(bundle):
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_bundle_shape_and_patient() -> None:
    bundle = make(5, 12)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "transaction"
    patient = bundle["entry"][0]["resource"]
    assert patient["resourceType"] == "Patient"
    assert patient["identifier"][0] == {
        "use": "usual",
        "type": patient["identifier"][0]["type"],
        "system": "https://medtwin.org/fhir/sid/synthetic-mrn",
        "value": "SYN-5-12",
    }
    assert set(patient["address"][0]) == {"use", "city", "state", "country"}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{resource['resourceType']}/{resource['id']}",
        }
        assert {"system": "https://medtwin.org/fhir/tags", "code": "synthetic"}.items() <= (
            resource["meta"]["tag"][0].items()
        )


def all_references(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from all_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_references(item)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**31), index=st.integers(0, 99_999))
@example(seed=289243678, index=56)  # came of age within the visit gap: a visit fell on today
def test_invariants_for_any_seed(seed: int, index: int) -> None:
    bundle = make(seed, index)
    full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
    assert set(all_references(bundle)) <= full_urls
    patient = bundle["entry"][0]["resource"]
    age = age_on(dt.date.fromisoformat(patient["birthDate"]), TODAY)
    assert 18 <= age <= 85
    end_of_today = dt.datetime.combine(TODAY, dt.time(), tzinfo=dt.UTC)
    for resource in resources(bundle):
        if resource["resourceType"] == "Observation":
            assert resource["status"] == "final"
            assert OFFSET_DATETIME.match(resource["effectiveDateTime"])
            assert instant(resource["effectiveDateTime"]) < end_of_today
            quantities = [resource.get("valueQuantity")] + [
                c["valueQuantity"] for c in resource.get("component", [])
            ]
            for quantity in filter(None, quantities):
                assert quantity["system"] == "http://unitsofmeasure.org"
                assert quantity["code"] == quantity["unit"]
                assert quantity["value"] > 0
        if resource["resourceType"] == "Encounter":
            age_there = age_on(
                dt.date.fromisoformat(patient["birthDate"]),
                instant(resource["period"]["start"]).date(),
            )
            assert age_there >= 18


# --------------------------------------------------------------------------------------------
# (2) determinism
# --------------------------------------------------------------------------------------------


def read_all(paths: Sequence[Path]) -> list[bytes]:
    return [path.read_bytes() for path in paths]


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    first = read_all(write_synthetic_patients(4, 11, tmp_path / "a"))
    again = read_all(write_synthetic_patients(4, 11, tmp_path / "b"))
    other = read_all(write_synthetic_patients(4, 12, tmp_path / "c"))
    assert first == again
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_patient_does_not_depend_on_run_size_and_today_is_fixed(tmp_path: Path) -> None:
    small = read_all(write_synthetic_patients(2, 9, tmp_path / "small"))
    large = read_all(write_synthetic_patients(5, 9, tmp_path / "large"))
    assert small == large[:2]
    explicit = read_all(write_synthetic_patients(2, 9, tmp_path / "today", today=DEFAULT_TODAY))
    assert explicit == small
    later = read_all(write_synthetic_patients(2, 9, tmp_path / "later", today=dt.date(2027, 6, 1)))
    assert later != small


# --------------------------------------------------------------------------------------------
# (3) the population against its targets
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sex", ["female", "male"])
@pytest.mark.parametrize(
    ("attribute", "column"),
    [
        ("bmi", "bmi_kg_m2"),
        ("height_cm", "height_cm"),
        ("weight_kg", "weight_kg"),
    ],
)
def test_body_measures_match_nhanes_targets(
    population: list[Summary], targets: dict[str, Any], sex: str, attribute: str, column: str
) -> None:
    people = [p for p in population if p.sex == sex]
    expected = statistics.fmean(
        target(targets, "anthropometry", column, sex, p.age_last) for p in people
    )
    assert_mean_near([getattr(p, attribute) for p in people], expected, f"{attribute} {sex}")


@pytest.mark.parametrize("sex", ["female", "male"])
def test_systolic_pressure_matches_targets(
    population: list[Summary], targets: dict[str, Any], sex: str
) -> None:
    people = [p for p in population if p.sex == sex]
    expected = statistics.fmean(
        target(targets, "blood_pressure", "systolic_mm_hg", sex, p.age_last) for p in people
    )
    assert_mean_near([p.systolic for p in people], expected, f"systolic {sex}")


def test_age_and_sex_mix(population: list[Summary], targets: dict[str, Any]) -> None:
    assert_prevalence_near([p.sex == "female" for p in population], 0.5, "female share")
    bands = targets["demographics"]["age_bands"]
    total = sum(band["population_millions"] for band in bands)
    for band in bands:
        assert_prevalence_near(
            [band["age_min"] <= p.age_today <= band["age_max"] for p in population],
            band["population_millions"] / total,
            f"age band {band['age_min']}-{band['age_max']}",
        )


def test_diabetes_prevalence_by_age_band(
    population: list[Summary], targets: dict[str, Any]
) -> None:
    for row in targets["diabetes"]["rows"]:
        people = [p for p in population if row["age_min"] <= p.age_last <= row["age_max"]]
        assert_prevalence_near(
            [p.diabetes for p in people],
            row["prevalence"],
            f"diabetes {row['age_min']}-{row['age_max']}",
        )


def test_type1_diabetes_prevalence(population: list[Summary], targets: dict[str, Any]) -> None:
    """Type 1 in 0.5 % of adults (Xu G et al. BMJ 2018;362:k1497), within 4 binomial SE (a
    2,000-person run is large enough that the enrichment of small runs adds nobody)."""
    assert_prevalence_near(
        [p.type1 for p in population], targets["type1_diabetes"]["prevalence"], "type 1"
    )
    assert any(p.type1 for p in population)


def test_hypertension_prevalence_by_sex_and_age_band(
    population: list[Summary], targets: dict[str, Any]
) -> None:
    for row in targets["hypertension"]["rows"]:
        people = [
            p
            for p in population
            if p.sex == row["sex"] and row["age_min"] <= p.age_last <= row["age_max"]
        ]
        assert_prevalence_near(
            [p.hypertension for p in people],
            row["prevalence"],
            f"hypertension {row['sex']} {row['age_min']}-{row['age_max']}",
        )


def test_hba1c_separates_diabetics(population: list[Summary]) -> None:
    diabetic = [p.hba1c for p in population if p.diabetes and not p.type1]  # type 2
    other = [p.hba1c for p in population if not p.diabetes]
    # ADA: HbA1c >= 6.5 % diagnoses diabetes; treated diabetics average about 7 % (Fang 2021).
    assert statistics.fmean(diabetic) >= 6.5
    assert statistics.fmean(diabetic) - statistics.fmean(other) >= 1.0
    assert max(other) < 6.5


def test_bmi_and_systolic_pressure_are_positively_correlated(population: list[Summary]) -> None:
    r = statistics.correlation([p.bmi for p in population], [p.systolic for p in population])
    assert r > 0.1, f"r(BMI, SBP) = {r:.3f}"


def test_antihypertensive_treatment_lowers_systolic_pressure(population: list[Summary]) -> None:
    # Law et al. BMJ 2003 (the reductions behind Law et al. BMJ 2009): one standard-dose drug
    # lowers SBP by 8.5-10.3 mmHg depending on its class, and a second drug adds about as much.
    # The modelled mix (65 % one drug, 35 % two) averages about 11.7 mmHg; ageing between the
    # visits before and after the start (+0.5 mmHg a year) and noise take a little off. Range
    # checked: 8-15 mmHg.
    drops = [p.systolic_drop for p in population if p.systolic_drop is not None]
    assert len(drops) >= 50
    assert 8.0 <= statistics.fmean(drops) <= 15.0, statistics.fmean(drops)


def test_atorvastatin_lowers_ldl_by_about_43_percent(population: list[Summary]) -> None:
    # Law, Wald, Rudnicka BMJ 2003: atorvastatin 20 mg lowers LDL by 43 %. Checked: 38-48 %
    # (ageing drift of LDL before 55 and visit noise).
    drops = [p.ldl_drop_fraction for p in population if p.ldl_drop_fraction is not None]
    assert len(drops) >= 30
    assert 0.38 <= statistics.fmean(drops) <= 0.48, statistics.fmean(drops)


@pytest.mark.parametrize(
    ("creatinine", "age", "sex", "expected"),
    [
        # Worked step by step from the published equation (Inker et al. NEJM 2021):
        # 142 x (1.0/0.9)^-1.2 x 0.9938^50 = 142 x 0.88123 x 0.73274 = 91.69
        (1.0, 50, "male", 91.69),
        # 142 x (0.8/0.7)^-1.2 x 0.9938^60 x 1.012 = 142 x 0.85194 x 0.68856 x 1.012 = 84.30
        (0.8, 60, "female", 84.30),
        # below kappa: 142 x (0.6/0.7)^-0.241 x 0.9938^30 x 1.012
        # = 142 x 1.03785 x 0.82979 x 1.012 = 123.76
        (0.6, 30, "female", 123.76),
        # 142 x (2.0/0.9)^-1.2 x 0.9938^75 = 142 x 0.38358 x 0.62723 = 34.16
        (2.0, 75, "male", 34.16),
    ],
)
def test_ckd_epi_2021_worked_examples(
    creatinine: float, age: int, sex: str, expected: float
) -> None:
    value = ckd_epi_2021_egfr(creatinine, age, "female" if sex == "female" else "male")
    assert value == pytest.approx(expected, abs=0.02)
    assert value == pytest.approx(independent_egfr(creatinine, age, sex == "female"), rel=1e-12)


def test_reported_egfr_follows_reported_creatinine(population: list[Summary]) -> None:
    rows = [row for p in population[:300] for row in p.egfr_rows]
    for creatinine, age, female, egfr in rows:
        assert egfr == round(independent_egfr(creatinine, age, female))


def test_ckd_is_recorded_after_two_low_egfr_values() -> None:
    found = 0
    for index in range(400):
        bundle = make(SEED, index)
        egfr = [
            (instant(r["effectiveDateTime"]), float(r["valueQuantity"]["value"]))
            for r in resources(bundle)
            if r["resourceType"] == "Observation" and "98979-8" in codes(r["code"])
        ]
        egfr.sort()
        values = [value for _, value in egfr]
        two_low = any(a < 60 and b < 60 for a, b in itertools.pairwise(values))
        ckd = [
            r
            for r in resources(bundle)
            if r["resourceType"] == "Condition" and codes(r["code"]) & {"433144002", "431857002"}
        ]
        assert bool(ckd) == two_low
        found += bool(ckd)
    assert found > 0


# --------------------------------------------------------------------------------------------
# (4) files
# --------------------------------------------------------------------------------------------


def test_write_three_patients(tmp_path: Path) -> None:
    paths = write_synthetic_patients(3, 1, tmp_path)
    assert [path.name for path in paths] == [
        "patient-00000.json",
        "patient-00001.json",
        "patient-00002.json",
    ]
    assert sorted(tmp_path.iterdir()) == paths
    for path in paths:
        bundle = orjson.loads(path.read_bytes())
        assert bundle["resourceType"] == "Bundle"
        assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"


def test_write_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="0 or more"):
        write_synthetic_patients(-1, 1, tmp_path)
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        write_synthetic_patients(1, 1, not_a_folder)
