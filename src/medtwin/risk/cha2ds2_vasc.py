"""CHA2DS2-VASc: stroke and thromboembolism risk in non-valvular atrial fibrillation (Lip 2010).

Points (Lip et al. 2010, the CHA2DS2-VASc scheme): **C**ongestive heart failure or
left ventricular dysfunction 1; **H**ypertension 1; **A**ge 75 years or over 2; **D**iabetes
mellitus 1; prior **S**troke, transient ischaemic attack or thromboembolism 2; **V**ascular
disease (prior myocardial infarction, peripheral artery disease, aortic plaque) 1; **A**ge
65-74 years 1; **S**ex **c**ategory female 1. Total 0-9.

Age is taken in completed years (``floor(age_years)``), as the score counts birthdays: 64.9
years scores 0, 65.0 scores 1, 74.9 scores 1, 75.0 scores 2.

Bands as Lip et al. 2010 analysed them: ``low`` (0), ``intermediate`` (1), ``high`` (2 or
more). The thromboembolism rate by score in the derivation cohort (the paper's table;
unverified against the printed table at scores 2-9) and the adjusted stroke-rate table of the
ESC 2010 guideline (from the anticoagulated SPORTIF III/V cohort of Lip et al. Stroke 2010, so
not untreated rates) are data (``data/cha2ds2_vasc_2010.toml``, :func:`event_rates`) and shown
by ``score list``; provenance in the model card.

**Sex criterion.** medtwin implements the original score: female sex scores 1 point at any
age. The 2023 ESC guidelines for AF (Van Gelder IC et al. Eur Heart J 2023;44:3503-3626) moved
to CHA2DS2-VA, dropping the sex point (female sex is an age-dependent risk *modifier* rather
than a risk factor, and the point complicated thresholds for non-binary and transgender
patients); the 2023 ACC/AHA/ACCP/HRS AF guideline (Joglar JA et al. Circulation
2024;149:e1-e156) kept CHA2DS2-VASc but treats female sex as a risk modifier (a woman with no
other factor, score 1, is low risk). The ``components`` output shows the sex point separately,
so a CHA2DS2-VA total is ``value - components["sex"]``. Model card:
``docs/models/cha2ds2-vasc.md``.

References
----------
Lip GYH, Nieuwlaat R, Pisters R, Lane DA, Crijns HJGM. Refining clinical risk stratification
for predicting stroke and thromboembolism in atrial fibrillation using a novel risk
factor-based approach: the Euro Heart Survey on atrial fibrillation. Chest 2010;137(2):263-272.

Examples
--------
>>> from medtwin.risk.cha2ds2_vasc import CHA2DS2_VASC
>>> r = CHA2DS2_VASC.compute_one({"age_years": 72, "sex": "female",
...     "congestive_heart_failure": False, "hypertension": True, "diabetes": False,
...     "stroke_tia_thromboembolism": False, "vascular_disease": False})
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
    category_points,
)

__all__ = ["CHA2DS2_VASC", "Cha2ds2Vasc", "event_rates"]

SOURCE = (
    "Lip GYH, Nieuwlaat R, Pisters R, Lane DA, Crijns HJGM. Refining clinical risk "
    "stratification for predicting stroke and thromboembolism in atrial fibrillation using a "
    "novel risk factor-based approach: the Euro Heart Survey on atrial fibrillation. Chest "
    "2010;137(2):263-272."
)
_LIP = "Lip et al. Chest 2010"
_LIMIT = "medtwin data-quality limit, not a clinical threshold"
SEXES = ("female", "male")

AGE = BandTable("age_years", (("<65", 0), ("65–74", 1), ("≥75", 2)), _LIP + ": A2 and A")


@cache
def event_rates() -> dict[str, Any]:
    """Event rates by score as shipped (``data/cha2ds2_vasc_2010.toml``)."""
    text = (
        resources.files("medtwin.risk")
        .joinpath("data/cha2ds2_vasc_2010.toml")
        .read_text(encoding="utf-8")
    )
    return tomllib.loads(text)


def _history(name: str, what: str) -> ScoreInput:
    return ScoreInput(name, None, "bool", what)


class Cha2ds2Vasc(PointsScore):
    """CHA2DS2-VASc (Lip et al. 2010); ``CHA2DS2_VASC`` is the instance."""

    name = "cha2ds2_vasc"
    title = "CHA2DS2-VASc stroke risk in atrial fibrillation"
    version = "1.0.0"
    source = SOURCE
    valid_population = (
        "Adults with non-valvular atrial fibrillation (Lip et al. 2010: Euro Heart Survey on "
        "AF, 1084 patients not on oral anticoagulation, 1-year follow-up). Not for AF with "
        "moderate-severe mitral stenosis or a mechanical valve. Rows with age_years < 18 are "
        "refused."
    )
    inputs = (
        _history(
            "congestive_heart_failure",
            "Congestive heart failure, or moderate to severe left ventricular systolic "
            "dysfunction (C)",
        ),
        _history("hypertension", "Hypertension (H)"),
        ScoreInput(
            "age_years",
            "a",
            "number",
            "Age in years, counted in completed years: 65-74 scores 1, 75 or over 2 (A2, A)",
            valid_range=(0.0, 130.0),
            range_source=f"{_LIMIT}: above the oldest verified human age (122 years)",
        ),
        _history("diabetes", "Diabetes mellitus (D)"),
        _history(
            "stroke_tia_thromboembolism",
            "Prior stroke, transient ischaemic attack or thromboembolism (S2)",
        ),
        _history(
            "vascular_disease",
            "Vascular disease: prior myocardial infarction, peripheral artery disease or "
            "complex aortic plaque (V)",
        ),
        ScoreInput(
            "sex",
            None,
            "category",
            "Sex category (Sc): female scores 1 (the original score; see the model card on "
            "the 2023 CHA2DS2-VA)",
            categories=SEXES,
            aliases={"f": "female", "m": "male", "woman": "female", "man": "male"},
        ),
    )
    record_population = (
        (
            "atrial_fibrillation",
            True,
            "no atrial fibrillation or flutter in the record (CHA2DS2-VASc is the stroke risk "
            "of atrial fibrillation)",
        ),
        (
            "mitral_stenosis",
            False,
            "mitral stenosis is recorded: CHA2DS2-VASc is not for valvular atrial fibrillation "
            "(moderate to severe mitral stenosis or a mechanical valve)",
        ),
    )
    components: Mapping[str, int] = {
        "congestive_heart_failure": 1,
        "hypertension": 1,
        "age_years": 2,
        "diabetes": 1,
        "stroke_tia_thromboembolism": 2,
        "vascular_disease": 1,
        "sex": 1,
    }
    tables: Mapping[str, BandTable] = {"age_years": AGE}
    population_rules = (
        PopulationRule(
            "age_years",
            lambda age: age < 18.0,
            "age_years={value}: CHA2DS2-VASc was derived in adults with atrial fibrillation "
            "(Lip et al. 2010)",
        ),
    )
    bands = (
        Band("low", "score 0", _LIP),
        Band("intermediate", "score 1", _LIP),
        Band("high", "score 2 or more", _LIP),
    )

    def points(self, data: InputData) -> dict[str, CodeArray]:
        """Points per item; -1 where the item is not given."""
        return {
            "congestive_heart_failure": bool_points(data.number("congestive_heart_failure"), 1),
            "hypertension": bool_points(data.number("hypertension"), 1),
            "age_years": AGE.points(np.floor(data.number("age_years"))),
            "diabetes": bool_points(data.number("diabetes"), 1),
            "stroke_tia_thromboembolism": bool_points(data.number("stroke_tia_thromboembolism"), 2),
            "vascular_disease": bool_points(data.number("vascular_disease"), 1),
            "sex": category_points(data.code("sex"), (1, 0)),
        }

    def band_codes(self, value: IntArray, points: Mapping[str, CodeArray]) -> CodeArray:
        """0 -> low, 1 -> intermediate, 2 or more -> high."""
        out: CodeArray = np.minimum(value, 2).astype(np.int8)
        return out

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        rates = event_rates()
        out["event_rates"] = {
            "thromboembolism_rate_percent_by_score": rates["thromboembolism_rate_percent"],
            "source": rates["source"],
            "adjusted_stroke_rate_percent_per_year_by_score": rates["adjusted"][
                "stroke_rate_percent_per_year"
            ],
            "adjusted_source": rates["adjusted"]["source"],
        }
        return out


CHA2DS2_VASC = Cha2ds2Vasc()
"""The CHA2DS2-VASc score (registered as ``"cha2ds2_vasc"``)."""
