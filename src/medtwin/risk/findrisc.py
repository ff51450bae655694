"""FINDRISC: the Finnish Diabetes Risk Score, 10-year risk of type 2 diabetes (Lindström 2003).

Eight items, points as on the FINDRISC form (Lindström & Tuomilehto 2003; the Finnish Diabetes
Association's risk-test form that implements the score):

=====================================================  ============================================
age (completed years)                                  < 45: 0; 45-54: 2; 55-64: 3; > 64: 4
body-mass index (kg/m2)                                < 25: 0; 25-30: 1; > 30: 3
waist circumference (cm), men                          < 94: 0; 94-102: 3; > 102: 4
waist circumference (cm), women                        < 80: 0; 80-88: 3; > 88: 4
at least 30 min physical activity daily                yes: 0; no: 2
vegetables, fruit or berries every day                 yes: 0; no: 1
ever taken antihypertensive medication regularly       no: 0; yes: 2
ever found to have high blood glucose                  no: 0; yes: 5
family history of diabetes (type 1 or 2)               no: 0; second-degree only: 3; first-degree: 5
=====================================================  ============================================

Total 0-26. Bands with the estimated 10-year risk printed on the form: ``low`` (< 7, about 1
in 100), ``slightly_elevated`` (7-11, 1 in 25), ``moderate`` (12-14, 1 in 6), ``high`` (15-20,
1 in 3), ``very_high`` (> 20, 1 in 2); the risks are data (``data/findrisc_2003.toml``,
:func:`ten_year_risk`).

BMI and waist are continuous: a value between the printed whole-number bands takes the
higher points (medtwin's rule for printed charts, :class:`~medtwin.risk.base.BandTable`): BMI
30.0 scores 1, 30.01 scores 3; waist 102.0 cm (men) scores 3, 102.5 scores 4. Age counts
birthdays: 44.9 years scores 0. When ``sex`` is missing, waist scores only where both sexes'
rows agree (under 80 cm: 0; over 102 cm: 4). Model card: ``docs/models/findrisc.md``.

References
----------
Lindström J, Tuomilehto J. The diabetes risk score: a practical tool to predict type 2
diabetes risk. Diabetes Care 2003;26(3):725-731.

Examples
--------
>>> from medtwin.risk.findrisc import FINDRISC
>>> r = FINDRISC.compute_one({"age_years": 58, "sex": "male", "bmi_kg_m2": 28.0,
...     "waist_cm": 98, "physically_active_30min_daily": False,
...     "vegetables_fruit_berries_daily": True, "antihypertensive_medication_ever": True,
...     "high_blood_glucose_ever": False, "family_history_diabetes": "none"})
>>> r.value, r.band
(11, 'slightly_elevated')
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
    category_points,
)

__all__ = ["FINDRISC", "Findrisc", "ten_year_risk"]

SOURCE = (
    "Lindström J, Tuomilehto J. The diabetes risk score: a practical tool to predict type 2 "
    "diabetes risk. Diabetes Care 2003;26(3):725-731 (FINDRISC; points and risk bands as on "
    "the FINDRISC form)."
)
_FORM = "Lindström & Tuomilehto 2003; FINDRISC form"
_LIMIT = "medtwin data-quality limit, not a clinical threshold"
SEXES = ("female", "male")
FAMILY = ("none", "second_degree", "first_degree")

AGE = BandTable("age_years", (("<45", 0), ("45–54", 2), ("55–64", 3), (">64", 4)), _FORM)
BMI = BandTable("bmi_kg_m2", (("<25", 0), ("25–30", 1), (">30", 3)), _FORM)
WAIST_MEN = BandTable("waist_cm (men)", (("<94", 0), ("94–102", 3), (">102", 4)), _FORM)
WAIST_WOMEN = BandTable("waist_cm (women)", (("<80", 0), ("80–88", 3), (">88", 4)), _FORM)


@cache
def ten_year_risk() -> dict[str, Any]:
    """Estimated 10-year risk of type 2 diabetes by band (``data/findrisc_2003.toml``)."""
    text = (
        resources.files("medtwin.risk")
        .joinpath("data/findrisc_2003.toml")
        .read_text(encoding="utf-8")
    )
    return tomllib.loads(text)


def _risk_rule(band: str, points: str) -> str:
    return f"{points}; estimated 10-year risk of type 2 diabetes {band}"


class Findrisc(PointsScore):
    """FINDRISC (Lindström & Tuomilehto 2003); ``FINDRISC`` is the instance."""

    name = "findrisc"
    title = "FINDRISC 10-year type 2 diabetes risk score"
    version = "1.0.0"
    source = SOURCE
    valid_population = (
        "Adults without known diabetes (Lindström & Tuomilehto 2003: derived in the Finnish "
        "population survey of 1987, ages 35-64, 10-year follow-up for drug-treated diabetes; "
        "validated in the 1992 survey, ages 25-64). Rows with age_years < 18 are refused. "
        "Developed in a Finnish (European) population: South Asian and other populations "
        "develop diabetes at lower waist and BMI."
    )
    inputs = (
        ScoreInput(
            "age_years",
            "a",
            "number",
            "Age in years, counted in completed years",
            valid_range=(0.0, 130.0),
            range_source=f"{_LIMIT}: above the oldest verified human age (122 years)",
        ),
        ScoreInput(
            "sex",
            None,
            "category",
            "Sex (female or male): sets the waist-circumference thresholds",
            categories=SEXES,
            aliases={"f": "female", "m": "male", "woman": "female", "man": "male"},
        ),
        ScoreInput(
            "bmi_kg_m2",
            "kg/m2",
            "number",
            "Body-mass index, kg/m2",
            valid_range=(10.0, 100.0),
            range_source=f"{_LIMIT}: outside 10-100 kg/m2 is an entry or unit error",
        ),
        ScoreInput(
            "waist_cm",
            "cm",
            "number",
            "Waist circumference, cm, measured below the ribs (usually at the navel)",
            valid_range=(30.0, 300.0),
            range_source=f"{_LIMIT}: a waist in inches (below 30) or mm is refused",
        ),
        ScoreInput(
            "physically_active_30min_daily",
            None,
            "bool",
            "Usually at least 30 minutes of physical activity daily, at work and/or in leisure "
            "time (including normal daily activity)",
        ),
        ScoreInput(
            "vegetables_fruit_berries_daily",
            None,
            "bool",
            "Eats vegetables, fruit or berries every day",
        ),
        ScoreInput(
            "antihypertensive_medication_ever",
            None,
            "bool",
            "Has ever taken medication for high blood pressure regularly",
        ),
        ScoreInput(
            "high_blood_glucose_ever",
            None,
            "bool",
            "Has ever been found to have high blood glucose (health examination, illness, "
            "pregnancy)",
        ),
        ScoreInput(
            "family_history_diabetes",
            None,
            "category",
            "Relatives diagnosed with diabetes (type 1 or 2): none; second_degree "
            "(grandparent, aunt, uncle or first cousin, but no parent, sibling or child); "
            "first_degree (parent, brother, sister or own child)",
            categories=FAMILY,
            aliases={
                "no": "none",
                "second-degree": "second_degree",
                "first-degree": "first_degree",
                "grandparent, aunt, uncle or first cousin": "second_degree",
                "parent, brother, sister or own child": "first_degree",
            },
        ),
    )
    components: Mapping[str, int] = {
        "age_years": 4,
        "bmi_kg_m2": 3,
        "waist_cm": 4,
        "physically_active_30min_daily": 2,
        "vegetables_fruit_berries_daily": 1,
        "antihypertensive_medication_ever": 2,
        "high_blood_glucose_ever": 5,
        "family_history_diabetes": 5,
    }
    tables: Mapping[str, BandTable] = {t.label: t for t in (AGE, BMI, WAIST_MEN, WAIST_WOMEN)}
    population_rules = (
        PopulationRule(
            "age_years",
            lambda age: age < 18.0,
            "age_years={value}: FINDRISC was derived and validated in adults (Lindström & "
            "Tuomilehto 2003: ages 25-64)",
        ),
    )
    bands = (
        Band("low", _risk_rule("about 1 in 100 (1 %)", "score below 7"), _FORM),
        Band("slightly_elevated", _risk_rule("about 1 in 25 (4 %)", "score 7-11"), _FORM),
        Band("moderate", _risk_rule("about 1 in 6 (17 %)", "score 12-14"), _FORM),
        Band("high", _risk_rule("about 1 in 3 (33 %)", "score 15-20"), _FORM),
        Band("very_high", _risk_rule("about 1 in 2 (50 %)", "score above 20"), _FORM),
    )

    def points(self, data: InputData) -> dict[str, CodeArray]:
        """Points per item; -1 where the item cannot be determined."""
        waist = data.number("waist_cm")
        men = WAIST_MEN.points(waist)
        women = WAIST_WOMEN.points(waist)
        sex = data.code("sex")
        unknown_sex = np.where(men == women, men, np.int8(-1))
        waist_points = np.where(sex == 0, women, np.where(sex == 1, men, unknown_sex))
        return {
            "age_years": AGE.points(np.floor(data.number("age_years"))),
            "bmi_kg_m2": BMI.points(data.number("bmi_kg_m2")),
            "waist_cm": waist_points.astype(np.int8),
            "physically_active_30min_daily": bool_points(
                data.number("physically_active_30min_daily"), 0, 2
            ),
            "vegetables_fruit_berries_daily": bool_points(
                data.number("vegetables_fruit_berries_daily"), 0, 1
            ),
            "antihypertensive_medication_ever": bool_points(
                data.number("antihypertensive_medication_ever"), 2
            ),
            "high_blood_glucose_ever": bool_points(data.number("high_blood_glucose_ever"), 5),
            "family_history_diabetes": category_points(
                data.code("family_history_diabetes"), (0, 3, 5)
            ),
        }

    def band_codes(self, value: IntArray, points: Mapping[str, CodeArray]) -> CodeArray:
        """<7 low, 7-11 slightly elevated, 12-14 moderate, 15-20 high, >20 very high."""
        out: CodeArray = np.zeros(value.shape[0], dtype=np.int8)
        for lower in (7, 12, 15, 21):  # the band index: how many band lower bounds are <= value
            out += value >= lower
        return out

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        risk = ten_year_risk()
        out["ten_year_risk"] = {**risk["ten_year_risk"], "source": risk["source"]}
        return out


FINDRISC = Findrisc()
"""The FINDRISC score (registered as ``"findrisc"``)."""
