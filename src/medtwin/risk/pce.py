"""ACC/AHA Pooled Cohort Equations: 10-year risk of a first hard ASCVD event, in percent.

Two scores:

``pce_ascvd_10y``
    The 2013 Pooled Cohort Equations (Goff et al. 2014, Table A), four sex/race-specific Cox
    models::

        risk = 1 - S10 ^ exp(sum(coefficient x value) - mean_sum)

    with ln(age), ln(age)^2, ln(total cholesterol), ln(age) x ln(total cholesterol), ln(HDL),
    ln(age) x ln(HDL), ln(treated or untreated systolic BP), ln(age) x ln(systolic BP), current
    smoker, ln(age) x smoker, diabetes. Coefficients in ``data/pce_goff_2013.toml``.
``pce_ascvd_10y_2018``
    The revised equations (Yadlowsky et al. 2018, Appendix), one logistic model per sex with a
    Black indicator and interactions; total/HDL cholesterol ratio, systolic BP and its square.
    Coefficients in ``data/pce_yadlowsky_2018.toml``.

**Race.** Both were derived in non-Hispanic white and African American adults. ``race`` is
``white``, ``black`` or ``other``: the guideline (Goff 2014) advises the equations for white
adults for other groups ("other", and the OMB categories ``asian``,
``american_indian_or_alaska_native`` and ``native_hawaiian_or_pacific_islander`` that a record's
US Core race gives, use the white equations; the revised equations' Black indicator is 0), knowing the estimate may be too high for East Asian and Hispanic adults and too
low for South Asian adults.

**Accepted range** (ACC/AHA ASCVD Risk Estimator, the guideline's calculator): age 40-79 years,
total cholesterol 130-320 mg/dL, HDL 20-100 mg/dL, systolic BP 90-200 mmHg. Rows outside are
refused with the range, not extrapolated. Values are also checked against plausibility limits
(a cholesterol of 5000 is refused as an entry or unit error).

**Bands** (Arnett et al. 2019 ACC/AHA primary prevention guideline, section 2.2): low < 5%,
borderline 5% to < 7.5%, intermediate 7.5% to < 20%, high >= 20%, applied to the unrounded
estimate (a 7.46% displayed as "7.5%" by a calculator rounding to 0.1 is borderline here).

The equations are for primary prevention: people without clinical ASCVD, LDL under 190 mg/dL and
not on a statin (Goff 2014; Arnett 2019); medtwin cannot check those from these inputs and says
so in ``valid_population``. From a record (``medtwin risk``) it does: clinical ASCVD, an active
statin and severe hypercholesterolaemia (familial, or LDL >= 190 mg/dL) make it "not applicable"
(``record_population``). Model card: ``docs/models/pce.md``.

References
----------
Goff DC Jr, Lloyd-Jones DM, Bennett G, et al. 2013 ACC/AHA Guideline on the Assessment of
Cardiovascular Risk. Circulation 2014;129(25 Suppl 2):S49-S73 (Table A).
Yadlowsky S, Hayward RA, Sussman JB, et al. Clinical implications of revised pooled cohort
equations for estimating atherosclerotic cardiovascular disease risk. Ann Intern Med
2018;169(1):20-29.
Arnett DK, Blumenthal RS, Albert MA, et al. 2019 ACC/AHA Guideline on the Primary Prevention of
Cardiovascular Disease. Circulation 2019;140(11):e596-e646.

Examples
--------
The worked example of Goff 2014, Table A (55 years, total cholesterol 213, HDL 50, untreated
systolic 120 mmHg, non-smoker, no diabetes), white woman:

>>> from medtwin.risk.pce import PCE_ASCVD_10Y
>>> row = {"age_years": 55, "sex": "female", "race": "white", "total_cholesterol_mg_dl": 213,
...        "hdl_mg_dl": 50, "systolic_bp_mm_hg": 120, "bp_treated": False, "smoker": False,
...        "diabetes": False}
>>> r = PCE_ASCVD_10Y.compute_one(row)
>>> round(r.value, 1), r.band
(2.1, 'low')
>>> PCE_ASCVD_10Y.compute_one({**row, "age_years": 35}).refused
'age_years=35 is outside the population of the Pooled Cohort Equations: 40 to 79 years (under 80) (ACC/AHA 2013: derived and validated in adults 40-79 years)'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from medtwin.risk._cvrisk import (
    BAND_CUTS,
    AcceptedRange,
    RangedScore,
    assemble_rows,
    cv_inputs,
    load_toml,
    percent_bands,
)
from medtwin.risk.base import (
    NO_KNOWN_ASCVD,
    NO_SEVERE_HYPERCHOLESTEROLAEMIA,
    NOT_ON_STATIN,
    FloatArray,
    InputData,
    IntArray,
    ScoreResults,
)

__all__ = [
    "GROUPS",
    "PCE_ASCVD_10Y",
    "PCE_ASCVD_10Y_2018",
    "PooledCohort2013",
    "PooledCohort2018",
    "coefficients_2013",
    "coefficients_2018",
]

GOFF_SOURCE = (
    "Goff DC Jr, Lloyd-Jones DM, Bennett G, et al. 2013 ACC/AHA Guideline on the Assessment of "
    "Cardiovascular Risk. Circulation 2014;129(25 Suppl 2):S49-S73, Appendix Table A (Pooled "
    "Cohort Equations). Risk bands: Arnett DK et al. 2019 ACC/AHA Guideline on the Primary "
    "Prevention of Cardiovascular Disease. Circulation 2019;140:e596-e646."
)
YADLOWSKY_SOURCE = (
    "Yadlowsky S, Hayward RA, Sussman JB, McClelland RL, Min YI, Basu S. Clinical implications "
    "of revised pooled cohort equations for estimating atherosclerotic cardiovascular disease "
    "risk. Ann Intern Med 2018;169(1):20-29, Appendix (revised PCE coefficients). Risk bands: "
    "Arnett DK et al. Circulation 2019;140:e596-e646."
)
BANDS_SOURCE = "Arnett DK et al. 2019 ACC/AHA primary prevention guideline, section 2.2"

GROUPS = ("white_female", "black_female", "white_male", "black_male")
"""Table A's four equations; index = 2 x male + black (race ``other`` uses the white equations)."""

RACE_TEXT = (
    "Race: white, black (African American) or other; 'other' uses the equations for white "
    "adults, as the 2013 ACC/AHA guideline advises (the estimate may be off for other groups)"
)

RACE_TEXT_2018 = (
    "Race: white, black (African American) or other; the revised equations have a Black "
    "indicator, which is 0 for white and other"
)

_CALC = "ACC/AHA ASCVD Risk Estimator (2013 guideline calculator) accepted range"


def coefficients_2013() -> dict[str, Any]:
    """Goff 2014 Table A as shipped (``data/pce_goff_2013.toml``)."""
    return load_toml("pce_goff_2013.toml")


def coefficients_2018() -> dict[str, Any]:
    """Yadlowsky 2018 revised coefficients as shipped (``data/pce_yadlowsky_2018.toml``)."""
    return load_toml("pce_yadlowsky_2018.toml")


def _accepted(table: Mapping[str, Any]) -> tuple[AcceptedRange, ...]:
    a = table["accepted"]
    return (
        AcceptedRange.from_pair(
            "age_years",
            a["age_years"],
            "years",
            "ACC/AHA 2013: derived and validated in adults 40-79 years",
            high_open=True,
        ),
        AcceptedRange.from_pair(
            "total_cholesterol_mg_dl", a["total_cholesterol_mg_dl"], "mg/dL", _CALC
        ),
        AcceptedRange.from_pair("hdl_mg_dl", a["hdl_mg_dl"], "mg/dL", _CALC),
        AcceptedRange.from_pair("systolic_bp_mm_hg", a["systolic_bp_mm_hg"], "mm[Hg]", _CALC),
    )


_POPULATION_TEXT = (
    "Adults 40-79 years without clinical ASCVD (primary prevention), LDL cholesterol under "
    "190 mg/dL and not on a statin, derived in non-Hispanic white and African American adults "
    "(other groups use the white equations). Rows outside age 40-79, total cholesterol 130-320 "
    "mg/dL, HDL 20-100 mg/dL or systolic BP 90-200 mmHg (the guideline calculator's ranges) "
    "are refused. Prior ASCVD, LDL >= 190 mg/dL and statin use are not inputs: do not apply "
    "the score to those patients (medtwin risk says 'not applicable' for a record with "
    "clinical ASCVD, an active statin, familial hypercholesterolaemia or an LDL of 190 mg/dL "
    "or more)."
)


class _PceBase(RangedScore):
    integer_value = False
    record_population = (NO_KNOWN_ASCVD, NOT_ON_STATIN, NO_SEVERE_HYPERCHOLESTEROLAEMIA)
    _table: str

    def accepted(self) -> tuple[AcceptedRange, ...]:
        return _accepted(load_toml(self._table))

    def _risk(self, data: InputData, rows: IntArray) -> FloatArray:  # pragma: no cover
        raise NotImplementedError

    def compute_data(self, data: InputData) -> ScoreResults:

        def risk_of(scored: IntArray) -> FloatArray:
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                return self._risk(data, scored)

        return assemble_rows(
            score=self,
            data=data,
            risk_of=risk_of,
            accepted=self.accepted(),
            population_words="the Pooled Cohort Equations",
            cuts=BAND_CUTS,
        )


class PooledCohort2013(_PceBase):
    """The 2013 Pooled Cohort Equations; ``PCE_ASCVD_10Y`` is the instance."""

    name = "pce_ascvd_10y"
    title = "ACC/AHA Pooled Cohort Equations 2013: 10-year ASCVD risk (%)"
    version = "1.0.0"
    source = GOFF_SOURCE
    valid_population = _POPULATION_TEXT
    bands = percent_bands(BANDS_SOURCE)
    inputs = cv_inputs(race=True, race_description=RACE_TEXT)
    _table = "pce_goff_2013.toml"

    def _risk(self, data: InputData, rows: IntArray) -> FloatArray:
        """Risk (%) of the rows ``rows``, each with every input given and plausible."""
        c = coefficients_2013()
        sex = data.code("sex")[rows]
        race = data.code("race")[rows]
        group = 2 * sex + (race == 1)
        la_all = np.log(data.number("age_years")[rows])
        ltc_all = np.log(data.number("total_cholesterol_mg_dl")[rows])
        lhdl_all = np.log(data.number("hdl_mg_dl")[rows])
        lsbp_all = np.log(data.number("systolic_bp_mm_hg")[rows])
        tx_all = data.number("bp_treated")[rows]
        smk_all = data.number("smoker")[rows]
        dm_all = data.number("diabetes")[rows]
        risk = np.full(rows.shape[0], np.nan)
        for g, name in enumerate(GROUPS):  # one equation per sex/race group, scalar coefficients
            in_group = np.nonzero(group == g)[0]
            if in_group.size == 0:
                continue
            k = c[name]
            la, ltc = la_all[in_group], ltc_all[in_group]
            lhdl, lsbp = lhdl_all[in_group], lsbp_all[in_group]
            tx, smk = tx_all[in_group], smk_all[in_group]
            treated = (k["ln_treated_sbp"] + k["ln_age_x_ln_treated_sbp"] * la) * lsbp
            untreated = (k["ln_untreated_sbp"] + k["ln_age_x_ln_untreated_sbp"] * la) * lsbp
            s = (
                k["ln_age"] * la
                + k["ln_age_sq"] * la * la
                + (k["ln_tc"] + k["ln_age_x_ln_tc"] * la) * ltc
                + (k["ln_hdl"] + k["ln_age_x_ln_hdl"] * la) * lhdl
                + tx * treated
                + (1.0 - tx) * untreated
                + (k["smoker"] + k["ln_age_x_smoker"] * la) * smk
                + k["diabetes"] * dm_all[in_group]
            )
            risk[in_group] = 100.0 * (1.0 - k["baseline_survival"] ** np.exp(s - k["mean_sum"]))
        return risk


TERMS_2018 = (
    "intercept",
    "age",
    "black",
    "sbp_sq",
    "sbp",
    "bp_treated",
    "diabetes",
    "smoker",
    "tc_hdl_ratio",
    "age_x_black",
    "sbp_x_bp_treated",
    "sbp_x_black",
    "black_x_bp_treated",
    "age_x_sbp",
    "black_x_diabetes",
    "black_x_smoker",
    "black_x_tc_hdl_ratio",
    "black_x_sbp_x_bp_treated",
    "black_x_age_x_sbp",
)


class PooledCohort2018(_PceBase):
    """The revised Pooled Cohort Equations (Yadlowsky 2018); ``PCE_ASCVD_10Y_2018``."""

    name = "pce_ascvd_10y_2018"
    title = "Revised Pooled Cohort Equations (Yadlowsky 2018): 10-year ASCVD risk (%)"
    version = "1.0.0"
    source = YADLOWSKY_SOURCE
    valid_population = _POPULATION_TEXT.replace(
        "derived in non-Hispanic white and African American adults",
        "derived in white and Black adults of 6 US cohorts (Yadlowsky 2018)",
    )
    bands = percent_bands(BANDS_SOURCE + " (defined for the 2013 PCE; applied here as well)")
    inputs = cv_inputs(race=True, race_description=RACE_TEXT_2018)
    _table = "pce_yadlowsky_2018.toml"

    def _risk(self, data: InputData, rows: IntArray) -> FloatArray:
        """Risk (%) of the rows ``rows``, each with every input given and plausible."""
        c = coefficients_2018()
        sex = data.code("sex")[rows]
        # race is given in every row scored: the Black indicator is 0 or 1
        black_all = (data.code("race")[rows] == 1).astype(np.float64)
        age_all = data.number("age_years")[rows]
        sbp_all = data.number("systolic_bp_mm_hg")[rows]
        tx_all = data.number("bp_treated")[rows]
        dm_all = data.number("diabetes")[rows]
        smk_all = data.number("smoker")[rows]
        ratio_all = data.number("total_cholesterol_mg_dl")[rows] / data.number("hdl_mg_dl")[rows]
        risk = np.full(rows.shape[0], np.nan)
        for code, key in ((0, "female"), (1, "male")):  # one equation per sex
            of_sex = np.nonzero(sex == code)[0]
            if of_sex.size == 0:
                continue
            k = c[key]
            black, age, sbp = black_all[of_sex], age_all[of_sex], sbp_all[of_sex]
            tx, dm, smk, ratio = tx_all[of_sex], dm_all[of_sex], smk_all[of_sex], ratio_all[of_sex]
            x = (
                k["intercept"]
                + k["age"] * age
                + k["black"] * black
                + k["sbp_sq"] * sbp * sbp
                + k["sbp"] * sbp
                + k["bp_treated"] * tx
                + k["diabetes"] * dm
                + k["smoker"] * smk
                + k["tc_hdl_ratio"] * ratio
                + k["age_x_black"] * age * black
                + k["sbp_x_bp_treated"] * sbp * tx
                + k["sbp_x_black"] * sbp * black
                + k["black_x_bp_treated"] * black * tx
                + k["age_x_sbp"] * age * sbp
                + k["black_x_diabetes"] * black * dm
                + k["black_x_smoker"] * black * smk
                + k["black_x_tc_hdl_ratio"] * black * ratio
                + k["black_x_sbp_x_bp_treated"] * black * sbp * tx
                + k["black_x_age_x_sbp"] * black * age * sbp
            )
            risk[of_sex] = 100.0 / (1.0 + np.exp(-x))
        return risk


PCE_ASCVD_10Y = PooledCohort2013()
"""ACC/AHA Pooled Cohort Equations 2013 (Goff 2014, Table A)."""

PCE_ASCVD_10Y_2018 = PooledCohort2018()
"""Revised Pooled Cohort Equations (Yadlowsky 2018)."""
