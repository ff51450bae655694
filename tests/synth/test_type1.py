"""Type 1 diabetes in the synthetic records, and its agreement with the wearable CGM.

(1) People with type 1 diabetes carry SNOMED 46635009, an insulin lispro pump order (RxNorm
86009) and no metformin and no type 2 code; the diagnosis lies before the first check-up.
(2) Their recorded HbA1c agrees with the mean of their simulated CGM by the ADAG relation
(Nathan et al. 2008). (3) The enrichment of small runs is explicit and deterministic.
(4) ``Twin.from_store`` works on a synthesised person with type 1 diabetes after the import
that ``make demo`` does. Prevalence in a large run: tests/synth/test_synth.py.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from pathlib import Path
from typing import Any, cast

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from medtwin.cli import main
from medtwin.store import open_store
from medtwin.synth.generator import (
    TAG_SYSTEM,
    generate_patient,
    patient_rng,
    type1_enriched_indices,
)
from medtwin.synth.streams import generate_patient_streams, profile_from_bundle

TODAY = dt.date(2026, 1, 1)
SEED = 7
TYPE1, TYPE2 = "46635009", "44054006"
INSULIN_LISPRO, METFORMIN = "86009", "861007"
ADAG_SLOPE, ADAG_INTERCEPT = 28.7, -46.7  # Nathan DM et al. Diabetes Care 2008;31:1473-1478


def bundle_of(index: int, *, enriched: bool = True, seed: int = SEED) -> dict[str, Any]:
    bundle = generate_patient(
        patient_rng(seed, index), index, today=TODAY, seed=seed, type1_enriched=enriched
    )
    return cast(dict[str, Any], bundle)


def of_type(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def codes(concept: dict[str, Any]) -> set[str]:
    return {c["code"] for c in concept.get("coding", [])}


@pytest.fixture(scope="module")
def type1_people() -> list[dict[str, Any]]:
    """Six people of run 7 given type 1 diabetes (enrichment), whatever their draw."""
    return [bundle_of(i) for i in range(6)]


def test_type1_record_has_its_own_condition_and_insulin(
    type1_people: list[dict[str, Any]],
) -> None:
    for bundle in type1_people:
        conditions = set().union(*(codes(c["code"]) for c in of_type(bundle, "Condition")))
        assert TYPE1 in conditions and TYPE2 not in conditions
        drugs = {
            code: request
            for request in of_type(bundle, "MedicationRequest")
            for code in codes(request["medicationCodeableConcept"])
        }
        assert INSULIN_LISPRO in drugs and METFORMIN not in drugs
        insulin = drugs[INSULIN_LISPRO]
        [condition] = [c for c in of_type(bundle, "Condition") if TYPE1 in codes(c["code"])]
        assert insulin["reasonReference"][0]["reference"] == f"urn:uuid:{condition['id']}"
        rate = insulin["dosageInstruction"][0]["doseAndRate"][0]["rateQuantity"]
        assert rate["code"] == "U/h" and 0.1 < rate["value"] < 5.0
        # diagnosed before the first check-up, after the 2nd birthday ([type1_diabetes])
        first_visit = min(e["period"]["start"][:10] for e in of_type(bundle, "Encounter"))
        birth = dt.date.fromisoformat(of_type(bundle, "Patient")[0]["birthDate"])
        onset = dt.date.fromisoformat(condition["onsetDateTime"])
        assert birth + dt.timedelta(days=700) < onset <= dt.date.fromisoformat(first_visit)
        tags = {(t["system"], t["code"]) for t in of_type(bundle, "Patient")[0]["meta"]["tag"]}
        assert (TAG_SYSTEM, "type1-enrichment") in tags


def test_recorded_hba1c_agrees_with_the_simulated_cgm(type1_people: list[dict[str, Any]]) -> None:
    """Last recorded HbA1c vs (mean CGM + 46.7) / 28.7 over 28 days of the person's streams.

    The record's level is the ADAG HbA1c of a 28-day reference simulation of the same virtual
    patient and pump settings (other meals); the record adds visit-to-visit noise (SD 0.12 %,
    population.toml [within_person]) and rounds to 0.1 %; the CGM adds sensor noise. Tolerance:
    each person within 0.4 % (about 3 SD of those together, measured SD about 0.07 %), the
    mean difference within 0.15 %.
    """
    differences = []
    for bundle in type1_people:
        profile = profile_from_bundle(bundle, today=TODAY)
        assert profile.type1 and profile.hba1c_percent is not None
        streams = generate_patient_streams(
            profile, seed=SEED, days=28, onset_fraction=0.0, today=TODAY
        )
        assert streams.glucose_mg_dl is not None
        mean = float(np.nanmean(streams.glucose_mg_dl))
        differences.append(profile.hba1c_percent - (mean - ADAG_INTERCEPT) / ADAG_SLOPE)
    assert max(abs(d) for d in differences) < 0.4, differences
    assert abs(statistics.fmean(differences)) < 0.15, differences


def test_hba1c_is_steady_across_visits(type1_people: list[dict[str, Any]]) -> None:
    """Every visit's HbA1c is the same level plus visit noise (SD 0.12 %): within 0.6 % of
    the person's mean (5 SD) and at least 4 % (never the non-diabetic cap of 6.4 forced)."""
    for bundle in type1_people:
        values = [
            o["valueQuantity"]["value"]
            for o in of_type(bundle, "Observation")
            if "4548-4" in codes(o["code"])
        ]
        centre = statistics.fmean(values)
        assert all(abs(v - centre) < 0.6 for v in values), values


def test_natural_type1_has_no_enrichment_tag() -> None:
    """A person whose own draw gave type 1 is not tagged, whatever the enrichment flag."""
    everyone_else = type1_enriched_indices(2000, SEED, 2000)  # all who did not draw type 1
    natural = [i for i in range(2000) if i not in everyone_else]
    assert natural, "0.5 % of 2,000: some should draw type 1 themselves"
    bundle = bundle_of(natural[0], enriched=False)
    patient = of_type(bundle, "Patient")[0]
    assert [t["code"] for t in patient["meta"]["tag"]] == ["synthetic"]
    assert any(TYPE1 in codes(c["code"]) for c in of_type(bundle, "Condition"))
    assert bundle == bundle_of(natural[0], enriched=True)


def test_enrichment_is_explicit_and_deterministic() -> None:
    # 25 people at 0.5 %: about 88 % of runs have nobody with type 1 (0.995^25)
    assert math.isclose(0.995**25, 0.882, abs_tol=0.001)
    demo = type1_enriched_indices(25, 42, 1)
    assert len(demo) == 1 and demo == type1_enriched_indices(25, 42, 1)
    assert type1_enriched_indices(25, 42, 0) == frozenset()
    assert len(type1_enriched_indices(25, 42, 3)) == 3 and demo <= type1_enriched_indices(25, 42, 3)
    # a large run has enough people who drew type 1 themselves: nobody is enriched
    assert type1_enriched_indices(2000, SEED, 1) == frozenset()
    with pytest.raises(ValueError, match="type1_minimum"):
        type1_enriched_indices(3, 1, -1)
    # same arguments, same bytes
    first = orjson.dumps(bundle_of(3))
    assert first == orjson.dumps(bundle_of(3))
    assert first != orjson.dumps(bundle_of(3, seed=SEED + 1))


def test_twin_from_store_after_the_demo_import(tmp_path: Path) -> None:
    """``make demo``'s path: ``medtwin synth`` (with wearables), ``medtwin import`` of the
    patients and of the type 1 wearer's streams, then ``Twin.from_store`` on that person: the
    twin holds their CGM, meals and pump insulin, and the record's characteristics show type 1
    diabetes."""
    from medtwin.twin.twin import Twin

    out, db = tmp_path / "patients", tmp_path / "medtwin.db"
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["synth", "--patients", "3", "--seed", "4", "--wearables-days", "3", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    [index] = type1_enriched_indices(3, 4, 1)
    truth = orjson.loads((tmp_path / "patients-wearables" / "truth.json").read_bytes())
    assert truth["type1_enrichment"]["patients"] == [f"SYN-4-{index}"]
    assert [g["patient"] for g in truth["glucose_model"]] == [f"SYN-4-{index}"]
    streams = tmp_path / "patients-wearables" / "streams" / f"patient-{index:05d}"
    assert (streams / "glucose_cgm.csv").is_file() and (streams / "insulin.ndjson").is_file()
    for path in (out, streams):
        result = runner.invoke(main, ["import", str(path), "--store", str(db)])
        assert result.exit_code == 0, result.output
    store = open_store(str(db), actor="test")
    try:
        twin = Twin.from_store(store, f"SYN-4-{index}", days=2.0)
        assert f"http://snomed.info/sct|{TYPE1}" in twin.characteristics["conditions"]
        _, cgm = twin.data.observations["cgm_mg_dl"]
        assert cgm.size > 0.9 * 2 * 288 and float(cgm.min()) >= 40.0
        kinds = {e.type for e in twin.data.scenario.events}
        assert {"meal", "bolus"} <= kinds, kinds
    finally:
        store.close()
