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

Population: 40-69 years (SCORE2-OP covers 70 and over: :mod:`medtwin.risk.score2_op`), without
diabetes (SCORE2-Diabetes is the model for type 2 diabetes: :mod:`medtwin.risk.score2_diabetes`;
SCORE2's diabetes terms serve its recalibration only, the authors note), without established
atherosclerotic cardiovascular disease (``medtwin risk`` refuses a record with it). Rows outside
are refused with the reason.

The three models share one form and one evaluator (:class:`Score2Family`,
:func:`linear_predictor`): each variable centred, the terms of the coefficient file summed
(interactions as products), the 10-year baseline survival, and the region's two scales.

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
from typing import Any, ClassVar

import numpy as np

from medtwin.risk._cvrisk import AcceptedRange, RangedScore, assemble_rows, cv_inputs, load_toml
from medtwin.risk.base import (
    NO_KNOWN_ASCVD,
    Band,
    BoolArray,
    CodeArray,
    FloatArray,
    InputData,
    IntArray,
    ScoreInput,
    ScoreResults,
)

__all__ = [
    "CHOLESTEROL_MG_PER_MMOL",
    "ESC_COUNTRY",
    "REGIONS",
    "SCORE2",
    "Score2",
    "Score2Family",
    "coefficients",
    "linear_predictor",
    "recalibrated",
    "region_input",
    "uncalibrated",
]

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
"""The ESC cardiovascular risk regions the SCORE2 models are recalibrated to."""
CHOLESTEROL_MG_PER_MMOL = 38.6664
"""mg/dL per mmol/L of cholesterol: its molar mass 386.664 g/mol (:mod:`medtwin.record.units`)."""
ESC_COUNTRY = (
    "esc_country",
    True,
    "the address country has no ESC cardiovascular risk region, the regions the SCORE2 models "
    "are recalibrated to (Europe and neighbouring countries)",
)
"""``Score.record_population`` entry of the SCORE2 family: the patient lives in a country with
an ESC risk region (:mod:`medtwin.risk.score2_inputs`)."""


def region_input() -> ScoreInput:
    """The ``risk_region`` input every model of the family reads."""
    return ScoreInput(
        "risk_region",
        None,
        "category",
        "ESC cardiovascular risk region of the country of residence: low, moderate, high or "
        "very_high (SCORE2 2021, Figure 1)",
        categories=REGIONS,
        aliases={"very high": "very_high", "very-high": "very_high", "veryhigh": "very_high"},
    )


def coefficients(filename: str = "score2_2021.toml") -> dict[str, Any]:
    """A SCORE2-family coefficient file as shipped (default SCORE2's)."""
    return load_toml(filename)


def linear_predictor(c: Mapping[str, Any], sex: str, raw: Mapping[str, FloatArray]) -> FloatArray:
    """The linear predictor of one sex for the variables ``raw`` (uncentred, in the model's units).

    ``c`` is a coefficient table (:func:`coefficients`). Each variable is log-transformed when
    its ``log`` lists it, then centred by ``[centring]`` ((x - centre) / scale); ``[fixed]``
    variables are constants; the terms of ``[<sex>.terms]`` are summed (``"smoking*age"``:
    coefficient x smoking x centred age) and the table's ``lp_mean`` of that sex, where it has
    one, is subtracted.
    """
    centring = c["centring"]
    logged = set(c.get("log", ()))
    n = next(iter(raw.values())).shape[0]
    x: dict[str, FloatArray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, values in raw.items():
            v = np.log(values) if name in logged else values
            if name in centring:
                centre, scale = centring[name]
                v = (v - centre) / scale
            x[name] = v
    for name, value in c.get("fixed", {}).items():
        x[name] = np.full(n, float(value))
    lp = np.zeros(n)
    for key, coef in c[sex]["terms"].items():
        term = np.full(n, float(coef))
        for name in key.split("*"):
            term = term * x[name]
        lp += term
    out: FloatArray = lp - float(c[sex].get("lp_mean", 0.0))
    return out


def uncalibrated(c: Mapping[str, Any], sex: str, raw: Mapping[str, FloatArray]) -> FloatArray:
    """The uncalibrated 10-year risk (fraction) of one sex, before the region's scales.

    >>> import numpy as np
    >>> one = lambda v: np.array([v], dtype=float)
    >>> raw = {"age": one(50), "smoking": one(1), "sbp": one(140), "tchol": one(6.3),
    ...        "hdl": one(1.4), "diabetes": one(0)}
    >>> round(float(uncalibrated(coefficients(), "female", raw)[0]) * 100, 2)  # Suppl. T4
    3.32
    """
    survival = float(c[sex]["baseline_survival"])
    with np.errstate(over="ignore"):
        out: FloatArray = 1.0 - survival ** np.exp(linear_predictor(c, sex, raw))
    return out


def recalibrated(r0: FloatArray, scale1: FloatArray, scale2: FloatArray) -> FloatArray:
    """Risk (%) in a region from the uncalibrated risk ``r0`` (fraction) and the region's scales:
    ``1 - exp(-exp(scale1 + scale2 ln(-ln(1 - r0))))``."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out: FloatArray = 100.0 * (
            1.0 - np.exp(-np.exp(scale1 + scale2 * np.log(-np.log(1.0 - r0))))
        )
    return out


class Score2Family(RangedScore):
    """The shared evaluator of SCORE2, SCORE2-OP and SCORE2-Diabetes.

    A subclass names its coefficient file (``data_file``), declares its inputs, accepted age
    range and bands, and may add refusals (:meth:`refusals`) and variables (:meth:`variables`).
    """

    data_file: ClassVar[str]
    population_words: ClassVar[str]
    integer_value = False

    def coefficients(self) -> dict[str, Any]:
        return coefficients(self.data_file)

    def age_range(self, source: str) -> AcceptedRange:
        """The accepted ages of the coefficient file, under the upper one."""
        pair = self.coefficients()["accepted"]["age_years"]
        return AcceptedRange.from_pair("age_years", pair, "years", source, high_open=True)

    def variables(self, data: InputData, rows: IntArray) -> dict[str, FloatArray]:
        """The model's variables of the rows ``rows`` in its units (cholesterol in mmol/L)."""
        out = {
            "age": data.number("age_years")[rows],
            "smoking": data.number("smoker")[rows],
            "sbp": data.number("systolic_bp_mm_hg")[rows],
            "tchol": data.number("total_cholesterol_mg_dl")[rows] / CHOLESTEROL_MG_PER_MMOL,
            "hdl": data.number("hdl_mg_dl")[rows] / CHOLESTEROL_MG_PER_MMOL,
        }
        if "diabetes" in data.inputs:
            out["diabetes"] = data.number("diabetes")[rows]
        return out

    def refusals(self, data: InputData) -> tuple[tuple[BoolArray, str], ...]:
        """More refusals than the accepted ranges: (rows, reason)."""
        return ()

    def band_codes(self, data: InputData, rows: IntArray, value: FloatArray) -> CodeArray:
        """The band of each value (default: the file's ``[bands] cuts``)."""
        cuts = np.asarray(self.coefficients()["bands"]["cuts"], dtype=float)
        out: CodeArray = np.searchsorted(cuts, value, side="right").astype(np.int8)
        return out

    def compute_data(self, data: InputData) -> ScoreResults:
        return assemble_rows(
            score=self,
            data=data,
            risk_of=lambda ok: self._risk(data, ok),
            accepted=self.accepted(),
            population_words=self.population_words,
            cuts=None,
            refuse=self.refusals(data),
            bands_of=lambda ok, value: self.band_codes(data, ok, value),
        )

    def _risk(self, data: InputData, rows: IntArray) -> FloatArray:
        """Risk (%) of the rows ``rows``, each with every input given and plausible."""
        c = self.coefficients()
        sex = data.code("sex")[rows]
        region = data.code("risk_region")[rows]
        raw = self.variables(data, rows)
        risk = np.full(rows.shape[0], np.nan)
        for code, key in ((0, "female"), (1, "male")):  # one equation per sex
            of_sex = np.nonzero(sex == code)[0]
            if of_sex.size == 0:
                continue
            r0 = uncalibrated(c, key, {k: v[of_sex] for k, v in raw.items()})
            scales = np.array([c["scales"][key][r] for r in REGIONS], dtype=float)
            risk[of_sex] = recalibrated(r0, scales[region[of_sex], 0], scales[region[of_sex], 1])
        return risk


class Score2(Score2Family):
    """SCORE2 10-year CVD risk (40-69 years, Europe); ``SCORE2`` is the instance."""

    name = "score2_10y"
    title = "SCORE2 10-year risk of fatal and non-fatal cardiovascular disease (Europe, %)"
    version = "1.0.0"
    source = SOURCE
    data_file = "score2_2021.toml"
    population_words = "SCORE2"
    valid_population = (
        "Apparently healthy adults aged 40-69 years without diabetes or established "
        "atherosclerotic cardiovascular disease, in Europe: derived in 677,684 people of 45 "
        "cohorts in 13 countries (Emerging Risk Factors Collaboration) and recalibrated to the "
        "four ESC risk regions with contemporary incidence (SCORE2 2021). Rows outside 40-69 "
        "years, or with diabetes (use SCORE2-Diabetes, score2_diabetes_10y), are refused; 70 "
        "and over is SCORE2-OP (score2_op_10y). The risk region is that of the country of "
        "residence (ESC)."
    )
    record_population = (NO_KNOWN_ASCVD, ESC_COUNTRY)
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
        region_input(),
    )

    def accepted(self) -> tuple[AcceptedRange, ...]:
        return (self.age_range("SCORE2 2021: 40-69 years; SCORE2-OP for 70 and over"),)

    def refusals(self, data: InputData) -> tuple[tuple[BoolArray, str], ...]:
        return (
            (
                data.number("diabetes") == 1.0,
                "diabetes: SCORE2 is for people without diabetes (SCORE2-Diabetes, "
                "score2_diabetes_10y, is the ESC model for type 2 diabetes)",
            ),
        )

    def band_codes(self, data: InputData, rows: IntArray, value: FloatArray) -> CodeArray:
        """The 2021 ESC categories, whose cuts depend on age (under 50; 50-69)."""
        cuts = self.coefficients()["bands"]
        young = data.number("age_years")[rows] < 50.0
        out: CodeArray = np.where(
            young,
            np.searchsorted(np.asarray(cuts["under_50"], dtype=float), value, side="right"),
            np.searchsorted(np.asarray(cuts["from_50"], dtype=float), value, side="right"),
        ).astype(np.int8)
        return out


SCORE2 = Score2()
"""SCORE2 10-year CVD risk (ESC 2021)."""
