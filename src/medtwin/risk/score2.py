"""SCORE2 (ESC 2021): 10-year risk of fatal and non-fatal cardiovascular disease in Europe (%).

The sex-specific competing-risk model of the SCORE2 working group (Eur Heart J 2021), for
apparently healthy people aged 40-69 years without diabetes, recalibrated to the four ESC
cardiovascular risk regions (low, moderate, high, very high: the country of residence decides)::

    lp   = sum of the coefficients x centred age, smoking, SBP, diabetes, total and HDL
           cholesterol, and their interactions with age
    r0   = 1 - S0(10) ^ exp(lp)                                   (uncalibrated)
    risk = 1 - exp(-exp(scale1 + scale2 x ln(-ln(1 - r0))))       (the region's scales)

with age centred as (age - 60) / 5, SBP (SBP - 120) / 20, total cholesterol (mmol/L) - 6 and
HDL (HDL - 1.3) / 0.5. Cholesterol is given in mg/dL like the other equations and converted with
cholesterol's molar mass (386.664 g/mol, :mod:`medtwin.record.units`). Coefficients, baseline
survivals and the region scales are data: ``data/score2_2021.toml``, with where they were read.

Outcome: cardiovascular death, non-fatal myocardial infarction and non-fatal stroke.

Population: 40-69 years (SCORE2-OP covers 70 and over; it is not in medtwin), without diabetes
(SCORE2-Diabetes is the model for them; SCORE2's diabetes terms serve its recalibration only,
the authors note), without established atherosclerotic cardiovascular disease (``medtwin risk``
refuses a record with it). Rows outside are refused with the reason.

Bands: the 2021 ESC prevention guideline's categories (Visseren et al. 2021, Table 4), by age:
under 50 years low to moderate < 2.5 %, high 2.5 to < 7.5 %, very high >= 7.5 %; 50-69 years
< 5 %, 5 to < 10 %, >= 10 %.

The risk region is an input (``risk_region``: low, moderate, high or very_high); from a record
it is the ESC region of the patient's address country (:mod:`medtwin.risk.score2_inputs`), and
a country outside the ESC regions makes SCORE2 "not applicable". Model card:
``docs/models/score2.md``.

References
----------
SCORE2 working group and ESC Cardiovascular Risk Collaboration. SCORE2 risk prediction
algorithms: new models to estimate 10-year risk of cardiovascular disease in Europe. Eur Heart J
2021;42(25):2439-2454.
Visseren FLJ, Mach F, Smulders YM, et al. 2021 ESC Guidelines on cardiovascular disease
prevention in clinical practice. Eur Heart J 2021;42:3227-3337.

Examples
--------
Supplementary Table 4's example person (50 years, smoker, SBP 140 mmHg, total cholesterol
6.3 mmol/L = 243.6 mg/dL, HDL 1.4 mmol/L = 54.1 mg/dL), a man in a low-risk country:

>>> from medtwin.risk.score2 import SCORE2
>>> r = SCORE2.compute_one({"age_years": 50, "sex": "male", "smoker": True,
...     "systolic_bp_mm_hg": 140, "total_cholesterol_mg_dl": 6.3 * 38.6664,
...     "hdl_mg_dl": 1.4 * 38.6664, "diabetes": False, "risk_region": "low"})
>>> round(r.value, 2), r.band
(6.31, 'high')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from medtwin.risk._cvrisk import AcceptedRange, RangedScore, assemble_rows, cv_inputs, load_toml
from medtwin.risk.base import (
    NO_KNOWN_ASCVD,
    Band,
    CodeArray,
    ColumnLike,
    FloatArray,
    InputData,
    IntArray,
    ScoreInput,
    ScoreResults,
)

__all__ = ["CHOLESTEROL_MG_PER_MMOL", "REGIONS", "SCORE2", "Score2", "coefficients", "uncalibrated"]

SOURCE = (
    "SCORE2 working group and ESC Cardiovascular Risk Collaboration. SCORE2 risk prediction "
    "algorithms: new models to estimate 10-year risk of cardiovascular disease in Europe. "
    "Eur Heart J 2021;42(25):2439-2454 (supplementary methods: coefficients, baseline survival, "
    "recalibration scales of the four ESC risk regions)."
)
GUIDELINE = (
    "Visseren FLJ, Mach F, Smulders YM, et al. 2021 ESC Guidelines on cardiovascular disease "
    "prevention in clinical practice. Eur Heart J 2021;42:3227-3337, Table 4"
)
REGIONS = ("low", "moderate", "high", "very_high")
"""The ESC cardiovascular risk regions SCORE2 is recalibrated to."""
CHOLESTEROL_MG_PER_MMOL = 38.6664
"""mg/dL per mmol/L of cholesterol: its molar mass 386.664 g/mol (:mod:`medtwin.record.units`)."""


def coefficients() -> dict[str, Any]:
    """SCORE2's coefficients, baseline survivals and region scales as shipped."""
    return load_toml("score2_2021.toml")


def uncalibrated(
    sex: str, age: FloatArray, smoking: FloatArray, sbp: FloatArray, tchol_mmol: FloatArray,
    hdl_mmol: FloatArray, diabetes: FloatArray,
) -> FloatArray:  # fmt: skip
    """SCORE2's uncalibrated 10-year risk (fraction) of one sex, before the region's scales.

    >>> import numpy as np
    >>> one = lambda v: np.array([v], dtype=float)
    >>> r = uncalibrated("female", one(50), one(1), one(140), one(6.3), one(1.4), one(0))
    >>> round(float(r[0]) * 100, 2)  # Supplementary Table 4: 3.32 %
    3.32
    """
    c = coefficients()
    k = c[sex]
    cen = c["centring"]
    a = (age - cen["age"][0]) / cen["age"][1]
    s = (sbp - cen["sbp"][0]) / cen["sbp"][1]
    t = (tchol_mmol - cen["tchol"][0]) / cen["tchol"][1]
    h = (hdl_mmol - cen["hdl"][0]) / cen["hdl"][1]
    lp = (
        k["age"] * a
        + k["smoking"] * smoking
        + k["sbp"] * s
        + k["diabetes"] * diabetes
        + k["tchol"] * t
        + k["hdl"] * h
        + k["smoking_age"] * smoking * a
        + k["sbp_age"] * a * s
        + k["diabetes_age"] * diabetes * a
        + k["tchol_age"] * a * t
        + k["hdl_age"] * a * h
    )
    survival = np.full(lp.shape[0], float(k["baseline_survival"]))
    out: FloatArray = 1.0 - survival ** np.exp(lp)
    return out


class Score2(RangedScore):
    """SCORE2 10-year CVD risk (40-69 years, Europe); ``SCORE2`` is the instance."""

    name = "score2_10y"
    title = "SCORE2 10-year risk of fatal and non-fatal cardiovascular disease (Europe, %)"
    version = "1.0.0"
    source = SOURCE
    integer_value = False
    valid_population = (
        "Apparently healthy adults aged 40-69 years without diabetes or established "
        "atherosclerotic cardiovascular disease, in Europe: derived in 677,684 people of 45 "
        "cohorts in 13 countries (Emerging Risk Factors Collaboration) and recalibrated to the "
        "four ESC risk regions with contemporary incidence (SCORE2 2021). Rows outside 40-69 "
        "years, or with diabetes (use SCORE2-Diabetes), are refused; 70 and over is SCORE2-OP "
        "(not in medtwin). The risk region is that of the country of residence (ESC)."
    )
    record_population = (
        NO_KNOWN_ASCVD,
        (
            "esc_country",
            True,
            "the address country has no ESC cardiovascular risk region, the regions SCORE2 is "
            "recalibrated to (Europe and neighbouring countries)",
        ),
    )
    bands = (
        Band(
            "low_to_moderate",
            "under 50 years: < 2.5%; 50-69 years: < 5%",
            GUIDELINE,
        ),
        Band(
            "high",
            "under 50 years: 2.5% to < 7.5%; 50-69 years: 5% to < 10%",
            GUIDELINE,
        ),
        Band("very_high", "under 50 years: >= 7.5%; 50-69 years: >= 10%", GUIDELINE),
    )
    inputs = (
        *(i for i in cv_inputs(race=False) if i.name != "bp_treated"),
        ScoreInput(
            "risk_region",
            None,
            "category",
            "ESC cardiovascular risk region of the country of residence: low, moderate, high "
            "or very_high (SCORE2 2021, Figure 1)",
            categories=REGIONS,
            aliases={"very high": "very_high", "very-high": "very_high", "veryhigh": "very_high"},
        ),
    )

    def accepted(self) -> tuple[AcceptedRange, ...]:
        return (
            AcceptedRange.from_pair(
                "age_years",
                coefficients()["accepted"]["age_years"],
                "years",
                "SCORE2 2021: 40-69 years; SCORE2-OP for 70 and over",
                high_open=True,
            ),
        )

    def compute_many(
        self,
        columns: Mapping[str, ColumnLike],
        *,
        strict: bool = False,
        rows: int | None = None,
    ) -> ScoreResults:
        data = InputData(self.name, self.inputs, columns, strict=strict, rows=rows)
        age = data.number("age_years")
        cuts = coefficients()["bands"]

        def bands_of(ok: IntArray, value: FloatArray) -> CodeArray:
            young = age[ok] < 50.0
            out: CodeArray = np.where(
                young,
                np.searchsorted(np.asarray(cuts["under_50"], dtype=float), value, side="right"),
                np.searchsorted(np.asarray(cuts["from_50"], dtype=float), value, side="right"),
            ).astype(np.int8)
            return out

        diabetes = (
            data.number("diabetes") == 1.0,
            "diabetes: SCORE2 is for people without diabetes (SCORE2-Diabetes is the ESC model "
            "for them, not in medtwin)",
        )
        return assemble_rows(
            score=self,
            data=data,
            risk_of=lambda ok: self._risk(data, ok),
            accepted=self.accepted(),
            population_words="SCORE2",
            cuts=None,
            refuse=(diabetes,),
            bands_of=bands_of,
        )

    def _risk(self, data: InputData, rows: IntArray) -> FloatArray:
        """Risk (%) of the rows ``rows``, each with every input given and plausible."""
        c = coefficients()
        sex = data.code("sex")[rows]
        region = data.code("risk_region")[rows]
        risk = np.full(rows.shape[0], np.nan)
        tchol = data.number("total_cholesterol_mg_dl")[rows] / CHOLESTEROL_MG_PER_MMOL
        hdl = data.number("hdl_mg_dl")[rows] / CHOLESTEROL_MG_PER_MMOL
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            for code, key in ((0, "female"), (1, "male")):  # one equation per sex
                of_sex = np.nonzero(sex == code)[0]
                if of_sex.size == 0:
                    continue
                r0 = uncalibrated(
                    key,
                    data.number("age_years")[rows][of_sex],
                    data.number("smoker")[rows][of_sex],
                    data.number("systolic_bp_mm_hg")[rows][of_sex],
                    tchol[of_sex],
                    hdl[of_sex],
                    data.number("diabetes")[rows][of_sex],
                )
                scales = np.array([c["scales"][key][r] for r in REGIONS], dtype=float)
                s1 = scales[region[of_sex], 0]
                s2 = scales[region[of_sex], 1]
                risk[of_sex] = 100.0 * (1.0 - np.exp(-np.exp(s1 + s2 * np.log(-np.log(1.0 - r0)))))
        return risk


SCORE2 = Score2()
"""SCORE2 10-year CVD risk (ESC 2021)."""
