"""SCORE2-OP (ESC 2021): 10-year risk of fatal and non-fatal cardiovascular disease, 70 and over (%).

The sex-specific competing-risk model of the SCORE2-OP working group (Eur Heart J 2021), derived
in the Cohort of Norway (people over 65 without atherosclerotic CVD) and recalibrated to the
four ESC risk regions, the same form as SCORE2 (:class:`~medtwin.risk.score2.Score2Family`)::

    lp   = sum of the coefficients x centred age, smoking, SBP, diabetes, total and HDL
           cholesterol, and their interactions with age  -  the cohort's mean lp
    r0   = 1 - S0(10) ^ exp(lp)                                   (uncalibrated)
    risk = 1 - exp(-exp(scale1 + scale2 x ln(-ln(1 - r0))))       (the region's scales)

with age centred as age - 73, SBP - 150 mmHg, total cholesterol - 6 and HDL - 1.4 mmol/L (each
per unit). Unlike SCORE2, diabetes is a predictor. Coefficients, baseline survival and scales:
``data/score2_op_2021.toml``, with where they were read.

Outcome: cardiovascular death, non-fatal myocardial infarction and non-fatal stroke.

Population: 70-89 years (SCORE2 below 70; the 2021 ESC guideline's SCORE2-OP charts stop at
85-89), without established atherosclerotic cardiovascular disease, in a country with an ESC
risk region.

Bands: the 2021 ESC prevention guideline's categories for 70 and over (Visseren et al. 2021,
Table 4): low to moderate < 7.5 %, high 7.5 to < 15 %, very high >= 15 %.

Model card: ``docs/models/score2.md``.

References
----------
SCORE2-OP working group and ESC Cardiovascular risk collaboration. SCORE2-OP risk prediction
algorithms: estimating incident cardiovascular event risk in older persons in four geographical
risk regions. Eur Heart J 2021;42(25):2455-2467.
Visseren FLJ, Mach F, Smulders YM, et al. 2021 ESC Guidelines on cardiovascular disease
prevention in clinical practice. Eur Heart J 2021;42:3227-3337.

Examples
--------
A 75-year-old smoker without diabetes, SBP 140 mmHg, total cholesterol 5.5 mmol/L and HDL
1.3 mmol/L, in a low-risk country:

>>> from medtwin.risk.score2_op import SCORE2_OP
>>> r = SCORE2_OP.compute_one({"age_years": 75, "sex": "male", "smoker": True,
...     "systolic_bp_mm_hg": 140, "total_cholesterol_mg_dl": 5.5 * 38.6664,
...     "hdl_mg_dl": 1.3 * 38.6664, "diabetes": False, "risk_region": "low"})
>>> round(r.value, 1), r.band
(18.4, 'very_high')
"""

from __future__ import annotations

from medtwin.risk._cvrisk import AcceptedRange, cv_inputs
from medtwin.risk.base import NO_KNOWN_ASCVD, Band
from medtwin.risk.score2 import ESC_COUNTRY, GUIDELINE, Score2Family, region_input

__all__ = ["SCORE2_OP", "Score2OP"]

SOURCE = (
    "SCORE2-OP working group and ESC Cardiovascular risk collaboration. SCORE2-OP risk "
    "prediction algorithms: estimating incident cardiovascular event risk in older persons in "
    "four geographical risk regions. Eur Heart J 2021;42(25):2455-2467 (coefficients, baseline "
    "survival and region scales as the authors' program score2oprisk states them)."
)


class Score2OP(Score2Family):
    """SCORE2-OP 10-year CVD risk (70-89 years, Europe); ``SCORE2_OP`` is the instance."""

    name = "score2_op_10y"
    title = "SCORE2-OP 10-year risk of fatal and non-fatal cardiovascular disease (Europe, 70+, %)"
    version = "1.0.0"
    source = SOURCE
    data_file = "score2_op_2021.toml"
    population_words = "SCORE2-OP"
    valid_population = (
        "Adults aged 70-89 years without established atherosclerotic cardiovascular disease, "
        "in Europe: derived in 28,503 people over 65 of the Cohort of Norway, externally "
        "validated in 338,615 people of 6 study populations, recalibrated to the four ESC risk "
        "regions (SCORE2-OP 2021). Diabetes is one of its predictors. Under 70 is SCORE2 "
        "(score2_10y, or score2_diabetes_10y with type 2 diabetes); 90 and over is refused "
        "(beyond the 2021 ESC guideline's SCORE2-OP charts). The risk region is that of the "
        "country of residence (ESC)."
    )
    record_population = (NO_KNOWN_ASCVD, ESC_COUNTRY)
    bands = (
        Band("low_to_moderate", "< 7.5% (70 years and over)", GUIDELINE),
        Band("high", "7.5% to < 15%", GUIDELINE),
        Band("very_high", ">= 15%", GUIDELINE),
    )
    inputs = (
        *(i for i in cv_inputs(race=False) if i.name != "bp_treated"),
        region_input(),
    )

    def accepted(self) -> tuple[AcceptedRange, ...]:
        return (
            self.age_range(
                "SCORE2-OP 2021: 70 and over (SCORE2 for 40-69); the ESC 2021 SCORE2-OP charts "
                "stop at 89"
            ),
        )


SCORE2_OP = Score2OP()
"""SCORE2-OP 10-year CVD risk (ESC 2021)."""
