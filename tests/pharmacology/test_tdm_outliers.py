"""Levels the model's population cannot produce: reported as unusual past 3 SD, and no regimen
past 4 SD (a vancomycin level of 2200 mg/L typed for 22.00 gave a central volume of 0.23 L
and a recommended peak of 281 mg/L before)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import norm
from tests.pharmacology.test_dosing import CASE as BASE

from medtwin.cli import main
from medtwin.pharmacology.case import fit_case, parse_case
from medtwin.pharmacology.tdm import OUTSIDE_Z, UNUSUAL_Z, Level, fit_map
from medtwin.twin.optimise import recommend_case

# the case of test_dosing (a 50-year-old man, 70 kg, creatinine 1.0; 1000 mg every 12 h x 3)
CASE = {"model": BASE["model"], "patient": BASE["patient"], "events": BASE["events"]}


def case_with(*levels: dict[str, object]) -> dict[str, object]:
    return {**CASE, "observations": list(levels)}


def test_the_thresholds_are_the_normal_tails_the_docs_give() -> None:
    assert 2 * norm.sf(UNUSUAL_Z) == pytest.approx(0.0027, abs=5e-5)
    assert 1 / (2 * norm.sf(OUTSIDE_Z)) == pytest.approx(15_800, rel=0.01)


def test_standardised_etas_and_residuals_are_the_model_s_own() -> None:
    """eta / sqrt(Omega_kk) and (y - f) / sd(f), recomputed from the model's tables; a level
    reported as a bound has no residual."""
    case = parse_case(case_with({"t_h": 13, "conc_mg_l": 30.0}, {"t_h": 23.5, "conc_mg_l": 12.0}))
    fit = fit_map(case.pop, case.patient, case.doses, case.levels)
    omega = np.array(case.pop.omega)
    assert np.allclose(fit.eta_z, fit.etas / np.sqrt(np.diag(omega)), rtol=1e-12)
    add, prop = case.pop.residual.additive_mg_l, case.pop.residual.proportional
    sd = np.sqrt(add**2 + (prop * fit.predictions) ** 2)
    assert np.allclose(fit.residual_z, (np.array([30.0, 12.0]) - fit.predictions) / sd)
    bound = fit_map(case.pop, case.patient, case.doses, [Level(13, 30.0), Level(23.5, 5, "below")])
    assert np.isfinite(bound.residual_z[0]) and np.isnan(bound.residual_z[1])
    assert bound.to_dict()["levels"][1]["residual_z"] is None


def test_a_usual_level_gives_no_finding() -> None:
    out = recommend_case(parse_case(case_with({"t_h": 13, "conc_mg_l": 22.0})))
    assert out["recommended"] and out["warnings"] == []
    fit = fit_case(parse_case(case_with({"t_h": 13, "conc_mg_l": 22.0})))
    assert fit["unusual"] == [] and fit["outside_population"] == []


def test_a_level_ten_times_too_high_is_recommended_on_with_a_warning() -> None:
    out = recommend_case(parse_case(case_with({"t_h": 13, "conc_mg_l": 220.0})))
    assert out["recommended"]
    [warning] = out["warnings"]
    assert (
        warning.startswith("unusual fit (more than 3 SD") and "v1_l 3.13 is 3.6 SD below" in warning
    )


def test_a_level_a_hundred_times_too_high_gets_no_regimen() -> None:
    raw = case_with({"t_h": 13, "conc_mg_l": 2200.0})
    out = recommend_case(parse_case(raw))
    assert not out["recommended"] and out["regimen"] == {} and out["exposure"] == {}
    reason = out["reason"]
    assert reason.startswith("cannot recommend because the measured levels put this patient")
    assert "cl_l_per_h 0.478 is 5.0 SD below the typical 3.5" in reason
    assert "Check each level's value, unit and time" in reason
    fit = fit_case(parse_case(raw))
    assert len(fit["outside_population"]) == 4 and fit["eta_z"]["v2_l"] < -OUTSIDE_Z


def test_the_command_line_says_it(tmp_path: object) -> None:
    import json
    from pathlib import Path

    path = Path(str(tmp_path)) / "case.json"
    path.write_text(json.dumps(case_with({"t_h": 13, "conc_mg_l": 2200.0})))
    text = CliRunner().invoke(main, ["dose", "recommend", str(path)]).output
    assert (
        text.startswith("cannot recommend because the measured levels")
        and "Recommended" not in text
    )
    text = CliRunner().invoke(main, ["dose", "fit", str(path)]).output
    assert "Outside the model's population (more than 4 SD): cl_l_per_h 0.478" in text
    path.write_text(json.dumps(case_with({"t_h": 13, "conc_mg_l": 220.0})))
    text = CliRunner().invoke(main, ["dose", "recommend", str(path)]).output
    assert text.startswith("Recommended: ") and "\nWarning: unusual fit" in text
