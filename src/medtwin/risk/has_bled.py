"""HAS-BLED: one-year risk of major bleeding in atrial fibrillation (Pisters et al. 2010).

One point each (Pisters et al. 2010, the HAS-BLED scheme): **H**ypertension, uncontrolled (systolic blood
pressure > 160 mmHg); **A**bnormal renal function (chronic dialysis, renal transplantation or
serum creatinine >= 200 umol/L) and **A**bnormal liver function (chronic hepatic disease such as
cirrhosis, or bilirubin > 2 x the upper limit of normal with AST/ALT/ALP > 3 x the upper limit
of normal), 1 point each; **S**troke; **B**leeding history or predisposition (anaemia,
bleeding diathesis); **L**abile INR (unstable or high INRs, time in therapeutic range < 60 %);
**E**lderly (age > 65 years); **D**rugs (antiplatelet agents, NSAIDs) and alcohol (8 or more
units a week), 1 point each. Total 0-9.

Age is taken in completed years (``floor(age_years)``): "> 65" is 66 or over; 65.9 scores 0.

Bands: ``high`` for a score of 3 or more, the threshold Pisters et al. 2010 and the ESC 2010
AF guideline name for "caution and regular review"; ``low_moderate`` below it. The bleeds per
100 patient-years by score in the paper's validation cohort (scores 0-5; 6-9 had too few
patients) are data (``data/has_bled_2010.toml``, :func:`bleed_rates`) shown by
``score list``. Model card: ``docs/models/has-bled.md``.

References
----------
Pisters R, Lane DA, Nieuwlaat R, de Vos CB, Crijns HJGM, Lip GYH. A novel user-friendly score
(HAS-BLED) to assess 1-year risk of major bleeding in patients with atrial fibrillation: the
Euro Heart Survey. Chest 2010;138(5):1093-1100.
Camm AJ, Kirchhof P, Lip GYH, et al. Guidelines for the management of atrial fibrillation.
Eur Heart J 2010;31:2369-2429 (HAS-BLED >= 3: high risk).

Examples
--------
>>> from medtwin.risk.has_bled import HAS_BLED
>>> r = HAS_BLED.compute_one({"hypertension_uncontrolled": False,
...     "abnormal_renal_function": False, "abnormal_liver_function": False,
...     "stroke_history": True, "bleeding_history_or_predisposition": False,
...     "labile_inr": False, "age_years": 70, "antiplatelet_or_nsaid": True,
...     "alcohol_excess": False})
>>> r.value, r.band
(3, 'high')
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from medtwin.risk.base import (
    Band,
    BandTable,
    CodeArray,
    InputData,
    IntArray,
    PointsScore,
    PopulationRule,
    ScoreInput,
    bool_points,
)

__all__ = ["HAS_BLED", "HasBled", "bleed_rates"]

SOURCE = (
    "Pisters R, Lane DA, Nieuwlaat R, de Vos CB, Crijns HJGM, Lip GYH. A novel user-friendly "
    "score (HAS-BLED) to assess 1-year risk of major bleeding in patients with atrial "
    "fibrillation: the Euro Heart Survey. Chest 2010;138(5):1093-1100."
)
_PISTERS = "Pisters et al. Chest 2010"
_LIMIT = "medtwin data-quality limit, not a clinical threshold"

ELDERLY = BandTable("age_years", (("≤65", 0), (">65", 1)), _PISTERS + ": E, age > 65 years")

_BOOL_ITEMS: tuple[tuple[str, str], ...] = (
    (
        "hypertension_uncontrolled",
        "Hypertension, uncontrolled: systolic blood pressure > 160 mmHg (H)",
    ),
    (
        "abnormal_renal_function",
        "Abnormal renal function: chronic dialysis, renal transplantation or serum creatinine "
        ">= 200 umol/L (A)",
    ),
    (
        "abnormal_liver_function",
        "Abnormal liver function: chronic hepatic disease (e.g. cirrhosis) or bilirubin > 2 x "
        "ULN with AST/ALT/ALP > 3 x ULN (A)",
    ),
    ("stroke_history", "Prior stroke (S)"),
    (
        "bleeding_history_or_predisposition",
        "Bleeding history or predisposition to bleeding (e.g. bleeding diathesis, anaemia) (B)",
    ),
    (
        "labile_inr",
        "Labile INR: unstable or high INRs, time in therapeutic range < 60 % (L); false when "
        "not on a vitamin K antagonist",
    ),
    (
        "antiplatelet_or_nsaid",
        "Concomitant drugs predisposing to bleeding: antiplatelet agents, NSAIDs (D)",
    ),
    ("alcohol_excess", "Alcohol: 8 or more units (drinks) a week (D)"),
)


@cache
def bleed_rates() -> dict[str, Any]:
    """Bleeds per 100 patient-years by score as shipped (``data/has_bled_2010.toml``)."""
    text = (
        resources.files("medtwin.risk")
        .joinpath("data/has_bled_2010.toml")
        .read_text(encoding="utf-8")
    )
    return tomllib.loads(text)


class HasBled(PointsScore):
    """HAS-BLED (Pisters et al. 2010); ``HAS_BLED`` is the instance."""

    name = "has_bled"
    title = "HAS-BLED one-year major bleeding risk in atrial fibrillation"
    version = "1.0.0"
    source = SOURCE
    valid_population = (
        "Adults with atrial fibrillation, on or considered for oral anticoagulation (Pisters "
        "et al. 2010: Euro Heart Survey on AF, 3978 patients with 1-year follow-up). Rows with "
        "age_years < 18 are refused."
    )
    inputs = (
        *(ScoreInput(name, None, "bool", text) for name, text in _BOOL_ITEMS[:6]),
        ScoreInput(
            "age_years",
            "a",
            "number",
            "Age in years, in completed years: elderly, over 65 (66 or over) scores 1 (E)",
            valid_range=(0.0, 130.0),
            range_source=f"{_LIMIT}: above the oldest verified human age (122 years)",
        ),
        *(ScoreInput(name, None, "bool", text) for name, text in _BOOL_ITEMS[6:]),
    )
    record_population = (
        (
            "atrial_fibrillation",
            True,
            "no atrial fibrillation or flutter in the record (HAS-BLED is the bleeding risk of "
            "anticoagulation in atrial fibrillation)",
        ),
    )
    components: Mapping[str, int] = {
        **{name: 1 for name, _ in _BOOL_ITEMS[:6]},
        "age_years": 1,
        **{name: 1 for name, _ in _BOOL_ITEMS[6:]},
    }
    tables: Mapping[str, BandTable] = {"age_years": ELDERLY}
    population_rules = (
        PopulationRule(
            "age_years",
            lambda age: age < 18.0,
            "age_years={value}: HAS-BLED was derived in adults with atrial fibrillation "
            "(Pisters et al. 2010)",
        ),
    )
    bands = (
        Band("low_moderate", "score 0-2", _PISTERS),
        Band(
            "high",
            "score 3 or more: caution and regular review (correct modifiable factors; not by "
            "itself a reason to withhold anticoagulation)",
            _PISTERS + "; ESC 2010 AF guideline",
        ),
    )

    def points(self, data: InputData) -> dict[str, CodeArray]:
        """One point per item present; -1 where the item is not given."""
        out = {name: bool_points(data.number(name), 1) for name, _ in _BOOL_ITEMS}
        out["age_years"] = ELDERLY.points(np.floor(data.number("age_years")))
        return out

    def band_codes(self, value: IntArray, points: Mapping[str, CodeArray]) -> CodeArray:
        """3 or more -> high."""
        out: CodeArray = (value >= 3).astype(np.int8)
        return out

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        rates = bleed_rates()
        out["event_rates"] = {
            "bleeds_per_100_patient_years_by_score": rates["bleeds_per_100_patient_years"],
            "note": "scores 6-9: insufficient data in the validation cohort",
            "source": rates["source"],
        }
        return out


HAS_BLED = HasBled()
"""The HAS-BLED score (registered as ``"has_bled"``)."""
