"""SCORE2-Diabetes (ESC 2023): 10-year risk of fatal and non-fatal CVD in type 2 diabetes (%).

SCORE2 extended with three diabetes-related variables by the SCORE2-Diabetes working group (Eur
Heart J 2023), recalibrated with SCORE2's region scales, the same form as SCORE2
(:class:`~medtwin.risk.score2.Score2Family`)::

    lp   = SCORE2's terms (with new coefficients; the diabetes indicator is 1)
           + age at diagnosis + HbA1c + ln eGFR + (ln eGFR)^2 + HbA1c x age + ln eGFR x age
    r0   = 1 - S0(10) ^ exp(lp)
    risk = 1 - exp(-exp(scale1 + scale2 x ln(-ln(1 - r0))))

with age centred as (age - 60) / 5, SBP (SBP - 120) / 20, total cholesterol - 6 mmol/L, HDL
(HDL - 1.3) / 0.5, age at diagnosis (age - 50) / 5, HbA1c (mmol/mol - 31) / 9.34 and eGFR
(ln eGFR - 4.5) / 0.15. HbA1c is given in % (NGSP/DCCT, as medtwin's other inputs) and converted
to IFCC mmol/mol with the IFCC-NGSP master equation as :mod:`medtwin.record.units` applies it,
IFCC = (NGSP - 2.15) x 10.929 (Hoelzel W et al., Clin Chem 2004;50:166-174). Coefficients: ``data/score2_diabetes_2023.toml``, with where
they were read.

Outcome: cardiovascular death, non-fatal myocardial infarction and non-fatal stroke.

Population: type 2 diabetes, 40-69 years, without established atherosclerotic cardiovascular
disease or severe target-organ damage, in a country with an ESC risk region. The 2023 ESC
diabetes guideline puts severe target-organ damage at very high risk without a risk estimate;
rows with eGFR < 45 mL/min/1.73 m2, a UACR > 300 mg/g, or eGFR 45-59 with a UACR of 30-300 mg/g
are refused with that reason (UACR is optional: without it, only the eGFR criterion is checked;
microvascular disease in three sites is not read). Whether the diabetes is type 2 is the
caller's claim for a row; from a record, ``type_2_diabetes`` must hold.

Bands: the 2023 ESC diabetes guideline's categories for SCORE2-Diabetes: low < 5 %, moderate 5 to
< 10 %, high 10 to < 20 %, very high >= 20 %.

Model card: ``docs/models/score2.md``.

References
----------
SCORE2-Diabetes Working Group and the ESC Cardiovascular Risk Collaboration. SCORE2-Diabetes:
10-year cardiovascular risk estimation in type 2 diabetes in Europe. Eur Heart J
2023;44(28):2544-2556.
Marx N, Federici M, Schuett K, et al. 2023 ESC Guidelines for the management of cardiovascular
disease in patients with diabetes. Eur Heart J 2023;44(39):4043-4140.

Examples
--------
The paper's example man (moderate-risk region, 60 years, non-smoker, SBP 140 mmHg, total
cholesterol 5.5 and HDL 1.3 mmol/L, diagnosed at 60, HbA1c 50 mmol/mol = 6.73 %, eGFR 90):

>>> from medtwin.risk.score2_diabetes import SCORE2_DIABETES, hba1c_percent
>>> r = SCORE2_DIABETES.compute_one({"age_years": 60, "sex": "male", "smoker": False,
...     "systolic_bp_mm_hg": 140, "total_cholesterol_mg_dl": 5.5 * 38.6664,
...     "hdl_mg_dl": 1.3 * 38.6664, "age_at_diabetes_diagnosis_years": 60,
...     "hba1c_percent": hba1c_percent(50), "egfr_ml_min_1_73m2": 90, "risk_region": "moderate"})
>>> round(r.value), r.band  # the abstract: 11 %
(11, 'high')
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medtwin.record.units import convert
from medtwin.risk._cvrisk import AcceptedRange, cv_inputs
from medtwin.risk.base import (
    NO_KNOWN_ASCVD,
    Band,
    BoolArray,
    FloatArray,
    InputData,
    IntArray,
    ScoreInput,
)
from medtwin.risk.score2 import ESC_COUNTRY, Score2Family, region_input

__all__ = [
    "SCORE2_DIABETES",
    "TYPE_2_DIABETES",
    "Score2Diabetes",
    "hba1c_mmol_mol",
    "hba1c_percent",
]

SOURCE = (
    "SCORE2-Diabetes Working Group and the ESC Cardiovascular Risk Collaboration. "
    "SCORE2-Diabetes: 10-year cardiovascular risk estimation in type 2 diabetes in Europe. "
    "Eur Heart J 2023;44(28):2544-2556 (supplementary methods: coefficients; SCORE2's baseline "
    "survival and region scales)."
)
GUIDELINE = (
    "Marx N, Federici M, Schuett K, et al. 2023 ESC Guidelines for the management of "
    "cardiovascular disease in patients with diabetes. Eur Heart J 2023;44(39):4043-4140 "
    "(10-year CVD risk categories with SCORE2-Diabetes)"
)
TYPE_2_DIABETES = (
    "type_2_diabetes",
    True,
    "no type 2 diabetes is recorded: SCORE2-Diabetes is for people with type 2 diabetes "
    "(SCORE2 or SCORE2-OP without diabetes)",
)
"""``Score.record_population`` entry: the record holds type 2 diabetes
(:mod:`medtwin.risk.score2_inputs`)."""


def _master() -> tuple[float, float]:
    """(slope, intercept) of NGSP % -> IFCC mmol/mol as :mod:`medtwin.record.units` applies the
    master equation (one definition in medtwin)."""
    at0 = convert(0.0, "%", "mmol/mol", analyte="hba1c")
    return convert(1.0, "%", "mmol/mol", analyte="hba1c") - at0, at0


def hba1c_mmol_mol(percent: Any) -> Any:
    """HbA1c in IFCC mmol/mol from NGSP % (the master equation, (% - 2.15) x 10.929).

    >>> round(hba1c_mmol_mol(6.5), 1)  # the diagnostic threshold, 48 mmol/mol
    47.5
    """
    slope, intercept = _master()
    return slope * percent + intercept


def hba1c_percent(mmol_mol: Any) -> Any:
    """HbA1c in NGSP % from IFCC mmol/mol (the master equation).

    >>> round(hba1c_percent(53), 2)
    7.0
    """
    slope, intercept = _master()
    return (mmol_mol - intercept) / slope


_LIMIT = "medtwin data-quality limit, not a clinical threshold"


class Score2Diabetes(Score2Family):
    """SCORE2-Diabetes 10-year CVD risk (type 2 diabetes, 40-69 years, Europe);
    ``SCORE2_DIABETES`` is the instance."""

    name = "score2_diabetes_10y"
    title = (
        "SCORE2-Diabetes 10-year risk of fatal and non-fatal cardiovascular disease in type 2 "
        "diabetes (Europe, %)"
    )
    version = "1.0.0"
    source = SOURCE
    data_file = "score2_diabetes_2023.toml"
    population_words = "SCORE2-Diabetes"
    valid_population = (
        "Adults aged 40-69 years with type 2 diabetes, without established atherosclerotic "
        "cardiovascular disease or severe target-organ damage, in Europe: derived in 229,460 "
        "people with type 2 diabetes of four data sets in seven countries, externally validated "
        "in 217,036 (Sweden, Spain, Malta, Croatia), recalibrated to the four ESC risk regions "
        "(SCORE2-Diabetes 2023). Rows outside 40-69 years are refused (70 and over: "
        "score2_op_10y, which takes diabetes), and rows with severe target-organ damage (eGFR "
        "< 45, UACR > 300 mg/g, or eGFR 45-59 with UACR 30-300 mg/g: very high risk by the 2023 "
        "ESC diabetes guideline without a risk estimate). The risk region is that of the "
        "country of residence (ESC)."
    )
    record_population = (NO_KNOWN_ASCVD, ESC_COUNTRY, TYPE_2_DIABETES)
    bands = (
        Band("low", "< 5%", GUIDELINE),
        Band("moderate", "5% to < 10%", GUIDELINE),
        Band("high", "10% to < 20%", GUIDELINE),
        Band("very_high", ">= 20%", GUIDELINE),
    )
    inputs = (
        *(i for i in cv_inputs(race=False) if i.name not in ("bp_treated", "diabetes")),
        ScoreInput(
            "age_at_diabetes_diagnosis_years",
            "a",
            "number",
            "Age in years when type 2 diabetes was diagnosed",
            valid_range=(0.0, 130.0),
            range_source=f"{_LIMIT}: above the oldest verified human age (122 years)",
        ),
        ScoreInput(
            "hba1c_percent",
            "%",
            "number",
            "HbA1c, % (NGSP/DCCT); converted to IFCC mmol/mol by the master equation",
            valid_range=(3.0, 20.0),
            range_source=f"{_LIMIT}: outside what HbA1c assays report",
        ),
        ScoreInput(
            "egfr_ml_min_1_73m2",
            "mL/min/{1.73_m2}",
            "number",
            "Estimated GFR (CKD-EPI from creatinine), mL/min/1.73 m2",
            valid_range=(1.0, 250.0),
            range_source=f"{_LIMIT}: beyond any measured GFR",
        ),
        ScoreInput(
            "uacr_mg_g",
            "mg/g",
            "number",
            "Urine albumin-to-creatinine ratio, optional: not scored, checked for severe "
            "target-organ damage (> 300 mg/g; 30-300 mg/g with eGFR 45-59)",
            required=False,
            valid_range=(0.0, 25000.0),
            range_source=f"{_LIMIT}: beyond nephrotic-range albuminuria",
            population=True,
        ),
        region_input(),
    )

    def accepted(self) -> tuple[AcceptedRange, ...]:
        return (
            self.age_range(
                "SCORE2-Diabetes 2023: 40-69 years; SCORE2-OP (score2_op_10y) for 70 and over"
            ),
        )

    def variables(self, data: InputData, rows: IntArray) -> dict[str, FloatArray]:
        out = super().variables(data, rows)
        out["agediab"] = data.number("age_at_diabetes_diagnosis_years")[rows]
        out["hba1c"] = hba1c_mmol_mol(data.number("hba1c_percent")[rows])
        out["egfr"] = data.number("egfr_ml_min_1_73m2")[rows]
        return out

    def refusals(self, data: InputData) -> tuple[tuple[BoolArray, str], ...]:
        tod = self.coefficients()["severe_tod"]
        egfr = data.number("egfr_ml_min_1_73m2")
        uacr = data.number("uacr_mg_g")
        age = data.number("age_years")
        onset = data.number("age_at_diabetes_diagnosis_years")
        with np.errstate(invalid="ignore"):
            later = onset > age
            low_egfr = egfr < tod["egfr_below"]
            proteinuria = uacr > tod["proteinuria_above"]
            albuminuria = (
                (uacr >= tod["albuminuria_from"])
                & (egfr < tod["egfr_with_albuminuria_below"])
                & ~low_egfr
                & ~proteinuria
            )
        very_high = (
            "very high risk by the 2023 ESC diabetes guideline without a risk estimate, and "
            "SCORE2-Diabetes is not used"
        )
        return (
            (
                later,
                "age_at_diabetes_diagnosis_years is after age_years: the diagnosis cannot be in "
                "the future",
            ),
            (low_egfr, f"severe target-organ damage (eGFR below 45 mL/min/1.73 m2): {very_high}"),
            (proteinuria, f"severe target-organ damage (UACR above 300 mg/g): {very_high}"),
            (
                albuminuria,
                "severe target-organ damage (eGFR 45-59 mL/min/1.73 m2 with UACR 30-300 mg/g): "
                f"{very_high}",
            ),
        )


SCORE2_DIABETES = Score2Diabetes()
"""SCORE2-Diabetes 10-year CVD risk (ESC 2023)."""
