"""Synthetic vancomycin courses: the record carries the simulated doses and levels, and
``medtwin dose recommend --patient`` works on a synthetic patient."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from medtwin.cli import main
from medtwin.pharmacology.antibiotics import get_pop_model
from medtwin.pharmacology.covariates import PatientCovariates
from medtwin.pharmacology.pk import Dose, concentrations
from medtwin.store import open_store
from medtwin.store.summary import patient_summary
from medtwin.twin.dosing_record import case_from_store


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, object]]:
    folder = tmp_path_factory.mktemp("pharmacy")
    out = folder / "patients"
    store = str(folder / "store.db")
    _invoke(
        "synth", str(out), "--patients", "12", "--seed", "5", "--vancomycin", "6",
        "--warfarin", "3", "--genotypes",
    )  # fmt: skip
    _invoke("import", "--store", store, str(out))
    _invoke("import", "--store", store, str(folder / "patients-pharmacy" / "fhir"))
    _invoke("import", "--store", store, str(folder / "patients-genotypes" / "vcf"))
    truth = json.loads((folder / "patients-pharmacy" / "truth.json").read_text())
    return store, truth


def test_truth_levels_are_the_closed_form_of_the_truth_parameters(
    synthetic: tuple[str, dict[str, object]],
) -> None:
    """Recompute each noise-free level from the stored individual parameters (pk closed form)
    and check the typical parameters from the covariates (Goti 2018 Table 2 equations)."""
    _, truth = synthetic
    pop = get_pop_model("vancomycin_goti2018")
    courses = truth["courses"]
    assert isinstance(courses, list) and len(courses) == 6
    for course in courses:
        p = course["parameters"]
        a, lam = pop.modes(np.array([[p["cl_l_per_h"], p["v1_l"], p["q_l_per_h"], p["v2_l"]]]))
        doses = [Dose(d["t_h"], d["amount_mg"], d["duration_h"]) for d in course["doses"]]
        times = np.array([lv["t_h"] for lv in course["levels"]])
        expected = concentrations(a, lam, doses, times)[0]
        got = [lv["true_mg_l"] for lv in course["levels"]]
        assert np.allclose(got, expected, rtol=1e-12)
        typical = pop.typical(PatientCovariates.from_dict(course["covariates"]))
        etas = course["etas"]
        assert p["cl_l_per_h"] == pytest.approx(typical[0] * math.exp(etas["cl_l_per_h"]))
        assert p["v1_l"] == pytest.approx(typical[1] * math.exp(etas["v1_l"]))
        # Rybak 2020 loading dose: 25 mg/kg total body weight in 250 mg steps, <= 3000 mg
        w = course["covariates"]["weight_kg"]
        assert abs(course["doses"][0]["amount_mg"] - min(25 * w, 3000)) <= 125 + 1e-9


def test_record_case_carries_the_simulated_doses_and_levels(
    synthetic: tuple[str, dict[str, object]],
) -> None:
    store_url, truth = synthetic
    store = open_store(store_url)
    try:
        for course in truth["courses"]:  # type: ignore[attr-defined]
            case = case_from_store(store, course["mrn"], "vancomycin_goti2018")
            events = [(d.t_h, d.amount_mg, d.duration_h) for d in case.doses]
            assert events == [
                pytest.approx((d["t_h"], d["amount_mg"], d["duration_h"])) for d in course["doses"]
            ]
            levels = [(lv.t_h, lv.conc_mg_l) for lv in case.levels]
            assert levels == [
                pytest.approx((lv["t_h"], lv["conc_mg_l"])) for lv in course["levels"]
            ]
            assert case.patient.weight_kg == course["covariates"]["weight_kg"]
            assert case.patient.creatinine_mg_dl == course["covariates"]["creatinine_mg_dl"]
    finally:
        store.close()


def test_dose_recommend_on_a_synthetic_patient(synthetic: tuple[str, dict[str, object]]) -> None:
    store_url, truth = synthetic
    covered = 0
    for course in truth["courses"]:  # type: ignore[attr-defined]
        rec = json.loads(
            _invoke(
                "dose", "recommend", "--store", store_url, "--patient", course["mrn"],
                "--model", "vancomycin_goti2018", "--json",
            )
        )  # fmt: skip
        assert rec["recommended"] is True, rec.get("reason")
        band = rec["exposure"]["auc24_ss_mg_h_l"]["band_5_95"]
        assert band[0] < rec["exposure"]["auc24_ss_mg_h_l"]["predicted"] < band[1]
        fit = json.loads(
            _invoke(
                "dose", "fit", "--store", store_url, "--patient", course["mrn"],
                "--model", "vancomycin_goti2018", "--json",
            )
        )  # fmt: skip
        low, _, high = fit["params_band_5_50_95"]["cl_l_per_h"]
        covered += low <= course["parameters"]["cl_l_per_h"] <= high
    # the fit's 5-95 % band of clearance holds the simulated patient's own clearance
    # (nominal coverage 90 %: at least 5 of the 6)
    assert covered >= 5


def test_warfarin_start_uses_the_vcf_genotype_and_reaches_the_record(
    synthetic: tuple[str, dict[str, object]],
) -> None:
    """The warfarin course's CYP2C9/VKORC1 are what ``pgx call`` reads from the patient's VCF;
    the noise-free INR is the Hamberg model's for the stored parameters; the INR results
    (LOINC 6301-6) are in the record."""
    from medtwin.model import parse_scenario, simulate
    from medtwin.pharmacology.warfarin import WarfarinHamberg2007, covariates_from_calls

    store_url, truth = synthetic
    starts = truth["warfarin"]
    assert isinstance(starts, list) and len(starts) == 3
    store = open_store(store_url)
    try:
        for course in starts:
            report = json.loads(
                _invoke("pgx", "call", "--store", store_url, "--patient", course["mrn"], "--json")
            )
            assert covariates_from_calls(report["genes"]) == {
                "cyp2c9": course["cyp2c9"],
                "vkorc1_1639": course["vkorc1_1639"],
            }
            names = [p.name for p in WarfarinHamberg2007.parameters]
            params = np.array([[course["parameters"][n] for n in names]])
            scenario = parse_scenario(
                [{"type": "oral", "drug": "warfarin", "t_h": 0, "amount_mg": 5.0,
                  "every_h": 24, "count": len(course["doses"])}]
            )  # fmt: skip
            times = [lv["t_h"] for lv in course["levels"]]
            r = simulate(WarfarinHamberg2007, params, scenario, t_end=max(times), dt_out=2.0)
            expected = np.interp(times, r.times, r.observables["inr"][0])
            assert np.allclose([lv["true_inr"] for lv in course["levels"]], expected, rtol=1e-6)
            pid = store.resolve_patient(course["mrn"])
            stored = [
                sf.fact.value_num  # type: ignore[attr-defined]
                for sf in store.timeline(pid, codes=["6301-6"])
            ]
            assert stored == [lv["inr"] for lv in course["levels"]]
            # laboratory results: the patient summary's latest labs show the last INR
            labs = {row["name"]: row for row in patient_summary(store, pid)["labs"]}
            assert labs["INR"]["value_num"] == course["levels"][-1]["inr"]
    finally:
        store.close()
