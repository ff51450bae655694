"""Framingham general cardiovascular disease risk (D'Agostino 2008): 10-year risk in percent.

The sex-specific Cox model of D'Agostino et al. (2008), lipid version, Table 2::

    risk = 1 - S0(10) ^ exp(sum(beta x value) - mean_sum)

with ln(age), ln(total cholesterol), ln(HDL), ln(systolic BP) (a different coefficient when
treated), current smoker and diabetes. Coefficients, 10-year baseline survival (women 0.95012,
men 0.88936) and the means of the linear predictor (women 26.1931, men 23.9802) are shipped as
data in ``data/framingham_dagostino_2008.toml``.

Outcome: first **general CVD** event (coronary death, myocardial infarction, coronary
insufficiency, angina, ischaemic and haemorrhagic stroke, transient ischaemic attack, peripheral
artery disease, heart failure): a wider outcome than the Pooled Cohort Equations' hard ASCVD, so
its risks are higher for the same person.

Population: 30 to 74 years, free of CVD (the derivation cohort); rows outside this age are
refused. The paper states no other input limits; values are checked against medtwin's
plausibility limits. The paper defines no risk bands, so none are given (``band`` is ``None``).
Model card: ``docs/models/framingham.md``.

References
----------
D'Agostino RB Sr, Vasan RS, Pencina MJ, Wolf PA, Cobain M, Massaro JM, Kannel WB. General
cardiovascular risk profile for use in primary care: the Framingham Heart Study. Circulation
2008;117(6):743-753.

Examples
--------
>>> from medtwin.risk.framingham import FRAMINGHAM_CVD_10Y
>>> r = FRAMINGHAM_CVD_10Y.compute_one({"age_years": 61, "sex": "female",
...     "total_cholesterol_mg_dl": 180, "hdl_mg_dl": 47, "systolic_bp_mm_hg": 124,
...     "bp_treated": False, "smoker": True, "diabetes": False})
>>> round(r.value, 2), r.band
(10.48, None)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medtwin.risk._cvrisk import AcceptedRange, RangedScore, assemble_rows, cv_inputs, load_toml
from medtwin.risk.base import (
    NO_HEART_FAILURE,
    NO_KNOWN_ASCVD,
    FloatArray,
    InputData,
    IntArray,
    ScoreResults,
)

__all__ = ["FRAMINGHAM_CVD_10Y", "FraminghamCvd2008", "coefficients"]

SOURCE = (
    "D'Agostino RB Sr, Vasan RS, Pencina MJ, Wolf PA, Cobain M, Massaro JM, Kannel WB. General "
    "cardiovascular risk profile for use in primary care: the Framingham Heart Study. "
    "Circulation 2008;117(6):743-753, Table 2 (general CVD, lipid model)."
)
TERMS = (
    "ln_age",
    "ln_tc",
    "ln_hdl",
    "ln_untreated_sbp",
    "ln_treated_sbp",
    "smoker",
    "diabetes",
    "mean_sum",
    "baseline_survival",
)


def coefficients() -> dict[str, Any]:
    """D'Agostino 2008 Table 2 as shipped (``data/framingham_dagostino_2008.toml``)."""
    return load_toml("framingham_dagostino_2008.toml")


class FraminghamCvd2008(RangedScore):
    """Framingham general CVD 10-year risk; ``FRAMINGHAM_CVD_10Y`` is the instance."""

    name = "framingham_cvd_10y"
    title = "Framingham general cardiovascular disease 10-year risk (D'Agostino 2008, %)"
    version = "1.0.0"
    source = SOURCE
    integer_value = False
    valid_population = (
        "Adults 30-74 years free of cardiovascular disease (8491 Framingham participants, "
        "original and offspring cohorts, mostly white). Rows with age outside 30-74 are "
        "refused. Prior CVD is not an input: do not apply the score to those patients "
        "(medtwin risk says 'not applicable' for a record with clinical ASCVD or heart failure)."
    )
    record_population = (NO_KNOWN_ASCVD, NO_HEART_FAILURE)
    bands = ()
    inputs = cv_inputs(race=False)

    def accepted(self) -> tuple[AcceptedRange, ...]:
        a = coefficients()["accepted"]
        return (
            AcceptedRange.from_pair(
                "age_years",
                a["age_years"],
                "years",
                "D'Agostino 2008: derived in participants 30-74 years",
                high_open=True,
            ),
        )

    def compute_data(self, data: InputData) -> ScoreResults:
        return assemble_rows(
            score=self,
            data=data,
            risk_of=lambda scored: self._risk(data, scored),
            accepted=self.accepted(),
            population_words="the Framingham general CVD equation",
            cuts=None,
        )

    def _risk(self, data: InputData, rows: IntArray) -> FloatArray:
        """Risk (%) of the rows ``rows``, each with every input given and plausible."""
        c = coefficients()
        sex = data.code("sex")[rows]
        treated_all = data.number("bp_treated")[rows]
        risk = np.full(rows.shape[0], np.nan)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            la = np.log(data.number("age_years")[rows])
            ltc = np.log(data.number("total_cholesterol_mg_dl")[rows])
            lhdl = np.log(data.number("hdl_mg_dl")[rows])
            lsbp = np.log(data.number("systolic_bp_mm_hg")[rows])
            smk = data.number("smoker")[rows]
            dm = data.number("diabetes")[rows]
            for code, key in ((0, "female"), (1, "male")):  # one equation per sex
                of_sex = np.nonzero(sex == code)[0]
                if of_sex.size == 0:
                    continue
                k = c[key]
                sbp_beta = np.where(
                    treated_all[of_sex] == 1.0, k["ln_treated_sbp"], k["ln_untreated_sbp"]
                )
                s = (
                    k["ln_age"] * la[of_sex]
                    + k["ln_tc"] * ltc[of_sex]
                    + k["ln_hdl"] * lhdl[of_sex]
                    + sbp_beta * lsbp[of_sex]
                    + k["smoker"] * smk[of_sex]
                    + k["diabetes"] * dm[of_sex]
                )
                # the survival as an array, as before: numpy may take another path for a scalar
                survival = np.full(of_sex.shape[0], float(k["baseline_survival"]))
                risk[of_sex] = 100.0 * (1.0 - survival ** np.exp(s - k["mean_sum"]))
        return risk


FRAMINGHAM_CVD_10Y = FraminghamCvd2008()
"""Framingham general CVD 10-year risk (D'Agostino 2008)."""
