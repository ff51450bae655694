"""Levels reported as a bound ("<0.5 mg/L"): Beal's M3 method, not the limit taken as a value.

Extended-interval gentamicin gives troughs below the assay's limit of quantification as a
rule; a vancomycin trough can be too. The fit must read "<0.5" as "somewhere below 0.5".
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from medtwin.pharmacology import pk
from medtwin.pharmacology.antibiotics import get_pop_model
from medtwin.pharmacology.case import CaseError, parse_case
from medtwin.pharmacology.covariates import PatientCovariates
from medtwin.pharmacology.tdm import Level, TdmError, fit_map, objective

POP = get_pop_model("gentamicin_hull1976")
PATIENT = PatientCovariates.from_dict(
    {"age_years": 45, "weight_kg": 80, "height_cm": 178, "sex": "male", "creatinine_mg_dl": 0.9}
)
DOSES = [pk.Dose(0.0, 560.0, 0.5, 24.0, 1)]  # 7 mg/kg once daily, over 30 min


def test_a_censored_term_is_minus_two_log_the_probability_of_the_bound() -> None:
    """Checked against scipy's normal CDF: the objective with one level "<LOQ" minus the
    objective without it is -2 log Phi((LOQ - f) / sd), at several etas."""
    peak = Level(1.5, 18.0)
    trough = Level(23.0, 0.5, "below")
    typ = POP.typical(PATIENT)
    rng = np.random.default_rng(3)
    etas = rng.normal(0.0, 0.3, size=(5, len(POP.eta_names)))
    both = objective(POP, typ, DOSES, [peak, trough], etas)
    alone = objective(POP, typ, DOSES, [peak], etas)
    a, lam = POP.modes(POP.from_typical(typ, etas))
    f = pk.concentrations(a, lam, DOSES, np.array([23.0]))[:, 0]
    sd = np.sqrt(POP.residual.variance(f))
    expected = -2.0 * np.log(norm.cdf((0.5 - f) / sd))
    assert np.allclose(both - alone, expected, rtol=1e-9, atol=1e-9)
    above = objective(POP, typ, DOSES, [peak, Level(23.0, 0.5, "above")], etas)
    assert np.allclose(above - alone, -2.0 * np.log(norm.sf((0.5 - f) / sd)), rtol=1e-9)


def test_a_trough_below_the_limit_is_not_read_as_the_limit() -> None:
    """A 70-year-old (creatinine 1.8 mg/dL: a typical trough of 1.5 mg/L) who clears
    gentamicin 60 % faster than typical: peak 1 h after the infusion, trough at 23 h of
    0.26 mg/L, which the laboratory reports as "<0.5". Fitted as a bound (M3), the clearance
    is that of the true levels within 5 %, and well above the peak's alone (the bound is
    information); read as 0.5 exactly, it comes out slower."""
    patient = PatientCovariates.from_dict(
        {"age_years": 70, "weight_kg": 80, "height_cm": 178, "sex": "male",
         "creatinine_mg_dl": 1.8}
    )  # fmt: skip
    eta = np.array([np.log(1.6), 0.0])
    assert POP.eta_names == ("cl_l_per_h", "v_l")
    a, lam = POP.modes(POP.individual(patient, eta[None, :]))
    peak, trough = pk.concentrations(a, lam, DOSES, np.array([1.5, 23.0]))[0]
    assert 0.2 < trough < 0.3  # below the 0.5 mg/L limit: reported "<0.5"

    def clearance(levels: list[Level]) -> float:
        return fit_map(POP, patient, DOSES, levels).params["cl_l_per_h"]

    true = clearance([Level(1.5, peak), Level(23.0, trough)])
    m3 = clearance([Level(1.5, peak), Level(23.0, 0.5, "below")])
    limit = clearance([Level(1.5, peak), Level(23.0, 0.5)])
    peak_only = clearance([Level(1.5, peak)])
    assert m3 == pytest.approx(true, rel=0.05)
    assert peak_only < 0.8 * m3
    assert limit < 0.95 * m3
    fit = fit_map(POP, patient, DOSES, [Level(1.5, peak), Level(23.0, 0.5, "below")])
    assert fit.to_dict()["levels"][1]["censored"] == "below"
    assert fit.predictions[1] < 0.5  # the fit agrees with what the laboratory said


def test_a_case_file_and_bad_bounds() -> None:
    base = {
        "model": "gentamicin_hull1976",
        "patient": {"age_years": 45, "weight_kg": 80, "sex": "male", "creatinine_mg_dl": 0.9},
        "events": [{"type": "infusion", "t_h": 0, "amount_mg": 560, "duration_h": 0.5}],
    }
    case = parse_case({**base, "observations": [{"t_h": 23, "conc_mg_l": 0.5, "comparator": "<"}]})
    assert case.levels == [Level(23.0, 0.5, "below")]
    with pytest.raises(CaseError, match="comparator must be one of"):
        parse_case({**base, "observations": [{"t_h": 23, "conc_mg_l": 0.5, "comparator": "~"}]})
    with pytest.raises(CaseError, match="optionally 'comparator'"):
        parse_case({**base, "observations": [{"t_h": 23, "conc_mg_l": 0.5, "flag": "L"}]})
    with pytest.raises(TdmError, match="censored must be 'below' or 'above'"):
        fit_map(POP, PATIENT, DOSES, [Level(23.0, 0.5, "under")])
    with pytest.raises(TdmError, match="limit of quantification must be > 0"):
        fit_map(POP, PATIENT, DOSES, [Level(23.0, 0.0, "below")])
