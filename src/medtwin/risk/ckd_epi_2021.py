"""CKD-EPI 2021: estimated GFR from serum creatinine, the race-free equation (Inker et al. 2021).

::

    eGFR = 142 x min(Scr/k, 1)^a x max(Scr/k, 1)^-1.200 x 0.9938^age x 1.012 [if female]

with ``k`` = 0.7 mg/dL (female) or 0.9 mg/dL (male) and ``a`` = -0.241 (female) or -0.302
(male); Scr is the IDMS-traceable serum creatinine in mg/dL, age in years, eGFR in
mL/min/1.73 m2 (Inker et al. 2021, the paper and its Supplementary Appendix). The coefficients are
data: ``data/ckd_epi_2021.toml``.

Creatinine is given in exactly one unit: ``creatinine_mg_dl`` or ``creatinine_umol_l``
(1 mg/dL = 88.4 umol/L). Giving both refuses the row (they could disagree); giving neither
leaves the row without a value, ``missing`` naming both.

The value is the unrounded eGFR; laboratories report it as a whole number. Bands are the
KDIGO 2012 GFR categories (Kidney Int Suppl 2013;3:1-150, Table 5): G1 >= 90, G2 60-89,
G3a 45-59, G3b 30-44, G4 15-29, G5 < 15 mL/min/1.73 m2, applied to the unrounded value
(89.6 is G2). A GFR category alone does not diagnose CKD (KDIGO needs markers of kidney
damage or GFR < 60 for more than 3 months). Model card: ``docs/models/ckd-epi-2021.md``.

:func:`egfr` is the one implementation of the equation in medtwin (the synthetic-population
generator calls it too).

References
----------
Inker LA, Eneanya ND, Coresh J, et al. New creatinine- and cystatin C-based equations to
estimate GFR without race. N Engl J Med 2021;385(19):1737-1749.
Kidney Disease: Improving Global Outcomes (KDIGO) CKD Work Group. KDIGO 2012 clinical practice
guideline for the evaluation and management of chronic kidney disease. Kidney Int Suppl
2013;3(1):1-150, Table 5.

Examples
--------
>>> from medtwin.risk.ckd_epi_2021 import CKD_EPI_2021
>>> r = CKD_EPI_2021.compute_one({"creatinine_mg_dl": 1.0, "age_years": 50, "sex": "male"})
>>> round(r.value, 1), r.band
(91.7, 'G1')
>>> r = CKD_EPI_2021.compute_one({"creatinine_umol_l": 88.4, "age_years": 50, "sex": "male"})
>>> round(r.value, 1)
91.7
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from medtwin.risk.base import (
    Band,
    InputData,
    Score,
    ScoreInput,
    ScoreResults,
)

__all__ = ["CKD_EPI_2021", "CkdEpi2021", "coefficients", "egfr", "egfr_scalar"]

SOURCE = (
    "Inker LA, Eneanya ND, Coresh J, et al. New creatinine- and cystatin C-based equations to "
    "estimate GFR without race. N Engl J Med 2021;385(19):1737-1749 (eGFRcr 2021, race-free). "
    "GFR categories: KDIGO 2012 CKD guideline, Kidney Int Suppl 2013;3:1-150, Table 5."
)
_LIMIT = "medtwin data-quality limit, not a clinical threshold"
_KDIGO = "KDIGO 2012, Kidney Int Suppl 2013;3:1-150, Table 5"
MIN_AGE_YEARS = 18.0
SEXES = ("female", "male")


@cache
def coefficients() -> dict[str, Any]:
    """The equation's coefficients as shipped (``data/ckd_epi_2021.toml``)."""
    text = (
        resources.files("medtwin.risk")
        .joinpath("data/ckd_epi_2021.toml")
        .read_text(encoding="utf-8")
    )
    return tomllib.loads(text)


def egfr(
    creatinine_mg_dl: npt.ArrayLike, age_years: npt.ArrayLike, female: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """eGFR (mL/min/1.73 m2) by CKD-EPI 2021, elementwise; no checks (``nan`` propagates).

    Parameters
    ----------
    creatinine_mg_dl
        Serum creatinine, mg/dL, positive.
    age_years
        Age in years.
    female
        True (or 1.0) for female, False (0.0) for male.

    Examples
    --------
    >>> [round(float(x), 1) for x in egfr([0.8, 1.0], [60, 50], [True, False])]
    [84.3, 91.7]
    """
    c = coefficients()
    scr = np.asarray(creatinine_mg_dl, dtype=np.float64)
    age = np.asarray(age_years, dtype=np.float64)
    is_female = np.asarray(female, dtype=np.float64) == 1.0
    kappa = np.where(is_female, c["female"]["kappa_mg_dl"], c["male"]["kappa_mg_dl"])
    alpha = np.where(is_female, c["female"]["alpha"], c["male"]["alpha"])
    ratio = scr / kappa
    out: npt.NDArray[np.float64] = (
        c["multiplier"]
        * np.power(np.minimum(ratio, 1.0), alpha)
        * np.power(np.maximum(ratio, 1.0), c["exponent_above_kappa"])
        * np.power(c["age_base"], age)
        * np.where(is_female, c["female_factor"], 1.0)
    )
    return out


def egfr_scalar(creatinine_mg_dl: float, age_years: float, sex: str) -> float:
    """One eGFR (mL/min/1.73 m2); raises ``ValueError`` for a creatinine <= 0 or unknown sex.

    >>> round(egfr_scalar(0.8, 60, "female"), 1)
    84.3
    """
    if not creatinine_mg_dl > 0:
        raise ValueError(f"creatinine_mg_dl must be positive, got {creatinine_mg_dl!r}")
    if sex not in SEXES:
        raise ValueError(f"sex must be 'female' or 'male', got {sex!r}")
    return float(egfr(creatinine_mg_dl, age_years, sex == "female"))


def _creatinine_range_umol() -> tuple[float, float]:
    k = 88.4
    return (round(0.1 * k, 2), round(40.0 * k, 1))


class CkdEpi2021(Score):
    """CKD-EPI 2021 creatinine eGFR; ``CKD_EPI_2021`` is the instance."""

    name = "ckd_epi_2021"
    title = "eGFR, CKD-EPI 2021 creatinine equation (race-free), mL/min/1.73 m2"
    version = "1.0.0"
    source = SOURCE
    integer_value = False
    valid_population = (
        "Adults (18 years or over) with creatinine in a steady state (Inker et al. 2021: "
        "development and validation in adult cohorts with measured GFR). Rows with "
        "age_years < 18 are refused. Not valid in acute kidney injury (non-steady state), or "
        "at extremes of muscle mass or diet (amputation, paraplegia, very high or low body "
        "mass, vegetarian diet, creatine supplements), where a measured GFR or a cystatin C "
        "equation is preferred."
    )
    bands = (
        Band("G1", "eGFR 90 or more (normal or high)", _KDIGO),
        Band("G2", "eGFR 60 to less than 90 (mildly decreased)", _KDIGO),
        Band("G3a", "eGFR 45 to less than 60 (mildly to moderately decreased)", _KDIGO),
        Band("G3b", "eGFR 30 to less than 45 (moderately to severely decreased)", _KDIGO),
        Band("G4", "eGFR 15 to less than 30 (severely decreased)", _KDIGO),
        Band("G5", "eGFR less than 15 (kidney failure)", _KDIGO),
    )
    inputs = (
        ScoreInput(
            "creatinine_mg_dl",
            "mg/dL",
            "number",
            "Serum creatinine (IDMS-traceable), mg/dL. Give creatinine_mg_dl or "
            "creatinine_umol_l, not both",
            required=False,
            valid_range=(0.1, 40.0),
            range_source=(
                f"{_LIMIT}: below 0.1 mg/dL and above 40 mg/dL are not seen in living "
                "patients; a value in umol/L given as mg/dL (88) is refused"
            ),
        ),
        ScoreInput(
            "creatinine_umol_l",
            "umol/L",
            "number",
            "Serum creatinine (IDMS-traceable), umol/L (1 mg/dL = 88.4 umol/L). Give "
            "creatinine_mg_dl or creatinine_umol_l, not both",
            required=False,
            valid_range=_creatinine_range_umol(),
            range_source=f"{_LIMIT}: 0.1-40 mg/dL converted at 88.4 umol/L per mg/dL",
        ),
        ScoreInput(
            "age_years",
            "a",
            "number",
            "Age in years (the equation uses exact age; adults 18 or over)",
            valid_range=(0.0, 130.0),
            range_source=f"{_LIMIT}: above the oldest verified human age (122 years)",
        ),
        ScoreInput(
            "sex",
            None,
            "category",
            "Sex (female or male), as the equation was developed",
            categories=SEXES,
            aliases={"f": "female", "m": "male", "woman": "female", "man": "male"},
        ),
    )

    def compute_data(self, data: InputData) -> ScoreResults:
        n = data.n
        c = coefficients()
        mg = data.number("creatinine_mg_dl")
        umol = data.number("creatinine_umol_l")
        both = ~np.isnan(mg) & ~np.isnan(umol)
        scr = np.where(np.isnan(mg), umol / c["umol_l_per_mg_dl"], mg)
        age = data.number("age_years")
        with np.errstate(invalid="ignore"):
            young = ~np.isnan(age) & (age < MIN_AGE_YEARS)
        sex = data.code("sex")
        female = np.where(sex < 0, np.nan, (sex == 0).astype(np.float64))
        refused = data.any_invalid() | young | both

        no_creatinine = (
            ~data.present["creatinine_mg_dl"]
            & ~data.present["creatinine_umol_l"]
            & ~data.invalid["creatinine_mg_dl"]
            & ~data.invalid["creatinine_umol_l"]
        )
        missing = {
            "creatinine_mg_dl": no_creatinine,
            "creatinine_umol_l": no_creatinine.copy(),
            "age_years": ~data.present["age_years"] & ~data.invalid["age_years"],
            "sex": ~data.present["sex"] & ~data.invalid["sex"],
        }
        incomplete = np.zeros(n, dtype=np.bool_)
        for m in missing.values():
            incomplete |= m
        # the equation only for the rows that get a value
        rows_ok = np.flatnonzero(~(refused | incomplete))
        with np.errstate(invalid="ignore"):
            raw = egfr(scr[rows_ok], age[rows_ok], female[rows_ok])
        value = np.full(n, np.nan)
        value[rows_ok] = raw

        lower = [float(c["gfr_categories"][b.name]) for b in self.bands]
        band = np.full(n, -1, dtype=np.int8)
        has = np.flatnonzero(~np.isnan(value))
        # bands run from G1 (highest eGFR) down: the index is the number of lower bounds
        # above the value (95 -> 0, G1; 59.9 -> 2, G3a; 14.9 -> 5, G5)
        valued = value[has]
        index = np.zeros(has.shape[0], dtype=np.int8)
        for bound in lower:
            index += valued < bound
        band[has] = index

        def reason_of(i: int) -> str:
            parts = [data.reason(inp.name, i) for inp in self.inputs if data.invalid[inp.name][i]]
            if both[i]:
                parts.append(
                    "creatinine given twice (creatinine_mg_dl and creatinine_umol_l): give "
                    "exactly one"
                )
            if young[i]:
                parts.append(
                    f"age_years={age[i]:g} is under {MIN_AGE_YEARS:g}: CKD-EPI 2021 was "
                    "developed and validated in adults (use a paediatric equation)"
                )
            return "; ".join(parts)

        return self.results(
            value=value,
            band_code=band,
            partial=incomplete & ~refused,
            refused=refused,
            missing=missing,
            reason_of=reason_of,
        )

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        c = coefficients()
        out["equation"] = {
            "text": (
                "eGFR = 142 x min(Scr/k,1)^a x max(Scr/k,1)^-1.200 x 0.9938^age x 1.012 [female]"
            ),
            "female": dict(c["female"]),
            "male": dict(c["male"]),
            "umol_l_per_mg_dl": c["umol_l_per_mg_dl"],
        }
        return out


CKD_EPI_2021 = CkdEpi2021()
"""The CKD-EPI 2021 eGFR (registered as ``"ckd_epi_2021"``)."""
