"""AHA PREVENT equations: 10-year and 30-year risk of total CVD, ASCVD and heart failure (%).

Khan SS, Matsushita K, Sang Y, et al. Development and Validation of the American Heart
Association's PREVENT Equations. *Circulation* 2024;149(6):430-449, Supplemental Material
(Table S12A: 10-year base model; the 30-year base model table of the same supplement).
Coefficients: ``data/prevent_2024.toml`` (with the transformation of every term).

Two scores, one per horizon: ``prevent_10y`` and ``prevent_30y``. The input ``outcome`` picks the
equation: ``cvd`` (total cardiovascular disease: ASCVD or heart failure; the paper's primary
outcome and the default), ``ascvd`` or ``hf``.

What this version does **not** compute, and refuses with the reason:

* ``outcome`` ``chd`` or ``stroke``: Khan et al. 2024 publish equations for total CVD, ASCVD and
  heart failure; medtwin has no primary-source coefficients for separate CHD and stroke equations.
* the base + SDI model: a row giving ``sdi_decile`` and neither UACR nor HbA1c is refused.

**The model follows from the optional inputs given** (the rule of the preventr package): none:
the base model; ``uacr_mg_g`` only: base + UACR; ``hba1c_percent`` only: base + HbA1c; two or
three of ``uacr_mg_g``, ``hba1c_percent``, ``sdi_decile``: the full model, whose missing-value
indicator terms stand for the one not given. ``PREVENT_10Y.model_of(row)`` names it.

**Bands** (10-year ASCVD only): the 2026 ACC/AHA dyslipidemia guideline's PREVENT-ASCVD
categories, low < 3 %, borderline 3 to < 5 %, intermediate 5 to < 10 %, high >= 10 %
(:data:`BANDS`); total CVD, heart failure and 30-year risks have none (no guideline defines one).

Ranges are the equations' (Khan et al. 2024; the AHA PREVENT calculator): age 30-79 years
(30-59 for 30-year risk), total cholesterol 130-320 mg/dL, HDL 20-100 mg/dL, SBP 90-200 mmHg,
BMI 18.5 to below 40 (39.99) kg/m2, eGFR 15-150 mL/min/1.73 m2. A value outside is refused, naming the input
and the range; a missing input that the chosen outcome uses gives no value and is listed in
``missing`` (BMI is used by heart failure only; cholesterol and statin by CVD and ASCVD only).

Examples
--------
>>> from medtwin.risk.prevent import PREVENT_10Y
>>> r = PREVENT_10Y.compute_one({"age_years": 50, "sex": "female", "total_cholesterol_mg_dl": 200,
...     "hdl_mg_dl": 45, "systolic_bp_mm_hg": 160, "bp_treated": True, "statin": False,
...     "diabetes": True, "smoker": False, "bmi_kg_m2": 35, "egfr_ml_min_1_73m2": 90})
>>> round(r.value, 1), r.band  # total CVD (the default outcome): no guideline category
(14.7, None)
>>> r = PREVENT_10Y.compute_one({"outcome": "ascvd", "age_years": 50, "sex": "female",
...     "total_cholesterol_mg_dl": 200, "hdl_mg_dl": 45, "systolic_bp_mm_hg": 160,
...     "bp_treated": True, "statin": False, "diabetes": True, "smoker": False,
...     "egfr_ml_min_1_73m2": 90})
>>> round(r.value, 1), r.band
(9.2, 'intermediate')
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from medtwin.risk.base import (
    NO_HEART_FAILURE,
    NO_KNOWN_ASCVD,
    Band,
    BoolArray,
    ColumnLike,
    FloatArray,
    InputData,
    IntArray,
    Score,
    ScoreInput,
    ScoreInputError,
    ScoreResults,
)

__all__ = [
    "MODELS",
    "OUTCOMES",
    "PREVENT_10Y",
    "PREVENT_30Y",
    "Prevent",
    "addon_terms",
    "coefficients",
    "model_codes",
    "terms",
    "with_outcome",
]

SOURCE = (
    "Khan SS, Matsushita K, Sang Y, et al. Development and Validation of the American Heart "
    "Association's PREVENT Equations. Circulation 2024;149(6):430-449, Supplemental Material: "
    "coefficients of the base (Table S12A, 10-year), base + UACR, base + HbA1c and full models."
)
_RANGE_SOURCE = "range of the PREVENT equations (Khan et al. 2024; AHA PREVENT calculator)"

OUTCOMES = ("cvd", "ascvd", "hf", "chd", "stroke")
SHIPPED = ("cvd", "ascvd", "hf")
OUTCOME_TITLES = {"cvd": "total CVD", "ascvd": "ASCVD", "hf": "heart failure"}
SEXES = ("female", "male")
OPTIONAL = ("uacr_mg_g", "hba1c_percent", "sdi_decile")
MODELS = ("base", "uacr", "hba1c", "full", "sdi")
"""Model codes of :func:`model_codes`; ``sdi`` (base + SDI alone) is not shipped: refused."""
# inputs each outcome's equation uses (besides outcome itself)
_COMMON = ("age_years", "sex", "systolic_bp_mm_hg", "bp_treated", "diabetes", "smoker",
           "egfr_ml_min_1_73m2")  # fmt: skip
USES: dict[str, tuple[str, ...]] = {
    "cvd": (*_COMMON, "total_cholesterol_mg_dl", "hdl_mg_dl", "statin"),
    "ascvd": (*_COMMON, "total_cholesterol_mg_dl", "hdl_mg_dl", "statin"),
    "hf": (*_COMMON, "bmi_kg_m2"),
}

BANDS_SOURCE = (
    "2026 ACC/AHA/multisociety guideline on the management of dyslipidemia (Blumenthal RS, "
    "Morris PB et al., Circulation 2026, doi:10.1161/CIR.0000000000001423): 10-year "
    "PREVENT-ASCVD risk categories, as four summaries of it give them (guideline text not read)"
)
BANDS = (
    Band("low", "10-year ASCVD risk below 3 %", BANDS_SOURCE),
    Band("borderline", "3 % to below 5 %", BANDS_SOURCE),
    Band("intermediate", "5 % to below 10 %", BANDS_SOURCE),
    Band("high", "10 % or more", BANDS_SOURCE),
)
"""The categories of the 10-year ASCVD outcome only: the 2026 guideline, which replaces the
Pooled Cohort Equations with PREVENT-ASCVD, defines them for that risk; total CVD, heart
failure and 30-year risks get no band (no guideline defines one). Applied to the unrounded
estimate."""
BAND_CUTS_PERCENT = (3.0, 5.0, 10.0)


@cache
def coefficients() -> dict[str, Any]:
    """The coefficients as shipped (``data/prevent_2024.toml``)."""
    text = resources.files("medtwin.risk").joinpath("data/prevent_2024.toml").read_text("utf-8")
    return tomllib.loads(text)


def terms(
    *,
    age_years: FloatArray,
    total_cholesterol_mg_dl: FloatArray,
    hdl_mg_dl: FloatArray,
    systolic_bp_mm_hg: FloatArray,
    bp_treated: FloatArray,
    statin: FloatArray,
    diabetes: FloatArray,
    smoker: FloatArray,
    bmi_kg_m2: FloatArray,
    egfr_ml_min_1_73m2: FloatArray,
) -> dict[str, FloatArray]:
    """The transformed predictors of the PREVENT equations (Khan 2024 supplement), per row.

    Cholesterol is converted to mmol/L (x 0.02586) and non-HDL cholesterol (TC - HDL) is used;
    SBP, BMI and eGFR enter as linear splines with knots at 110 mmHg, 30 kg/m2 and 60.
    """
    k = float(coefficients()["mg_dl_to_mmol_l"])
    age = (age_years - 55.0) / 10.0
    non_hdl = (total_cholesterol_mg_dl - hdl_mg_dl) * k - 3.5
    hdl = (hdl_mg_dl * k - 1.3) / 0.3
    sbp_hi = (np.maximum(systolic_bp_mm_hg, 110.0) - 130.0) / 20.0
    bmi_hi = (np.maximum(bmi_kg_m2, 30.0) - 30.0) / 5.0
    egfr_lo = (np.minimum(egfr_ml_min_1_73m2, 60.0) - 60.0) / -15.0
    return {
        "constant": np.ones_like(age),
        "age": age,
        "age_squared": age * age,
        "non_hdl_c": non_hdl,
        "hdl_c": hdl,
        "sbp_lt_110": (np.minimum(systolic_bp_mm_hg, 110.0) - 110.0) / 20.0,
        "sbp_ge_110": sbp_hi,
        "diabetes": diabetes,
        "smoker": smoker,
        "bmi_lt_30": (np.minimum(bmi_kg_m2, 30.0) - 25.0) / 5.0,
        "bmi_ge_30": bmi_hi,
        "egfr_lt_60": egfr_lo,
        "egfr_ge_60": (np.maximum(egfr_ml_min_1_73m2, 60.0) - 90.0) / -15.0,
        "bp_treated": bp_treated,
        "statin": statin,
        "bp_treated_x_sbp_ge_110": bp_treated * sbp_hi,
        "statin_x_non_hdl_c": statin * non_hdl,
        "age_x_non_hdl_c": age * non_hdl,
        "age_x_hdl_c": age * hdl,
        "age_x_sbp_ge_110": age * sbp_hi,
        "age_x_diabetes": age * diabetes,
        "age_x_smoker": age * smoker,
        "age_x_bmi_ge_30": age * bmi_hi,
        "age_x_egfr_lt_60": age * egfr_lo,
    }


def addon_terms(
    *,
    uacr_mg_g: FloatArray,
    hba1c_percent: FloatArray,
    sdi_decile: FloatArray,
    diabetes: FloatArray,
) -> dict[str, FloatArray]:
    """The add-on terms (UACR, HbA1c, SDI) with their missing-value indicators, per row.

    ``nan`` means not given: the indicator is 1 and the value term 0. UACR below 0.1 mg/g is
    taken as 0.1 (as the AHA calculator does); SDI deciles 1-3 are the reference group.
    """
    has_u = ~np.isnan(uacr_mg_g)
    has_h = ~np.isnan(hba1c_percent)
    has_s = ~np.isnan(sdi_decile)
    with np.errstate(invalid="ignore"):
        ln_uacr = np.where(has_u, np.log(np.maximum(np.where(has_u, uacr_mg_g, 1.0), 0.1)), 0.0)
        a1c = np.where(has_h, hba1c_percent - 5.3, 0.0)
        dm = np.where(np.isnan(diabetes), 0.0, diabetes)
        sdi_mid = (has_s & (sdi_decile >= 4) & (sdi_decile <= 6)).astype(np.float64)
        sdi_high = (has_s & (sdi_decile >= 7)).astype(np.float64)
    return {
        "ln_uacr": ln_uacr,
        "missing_uacr": (~has_u).astype(np.float64),
        "hba1c_dm": a1c * dm,
        "hba1c_no_dm": a1c * (1.0 - dm),
        "missing_hba1c": (~has_h).astype(np.float64),
        "sdi_4_to_6": sdi_mid,
        "sdi_7_to_10": sdi_high,
        "missing_sdi": (~has_s).astype(np.float64),
    }


def model_codes(has_uacr: BoolArray, has_hba1c: BoolArray, has_sdi: BoolArray) -> IntArray:
    """Index into :data:`MODELS` per row, from which optional inputs are given (preventr's rule)."""
    # which inputs are given, as bits (UACR 1, HbA1c 2, SDI 4) -> the model
    by_bits = np.array(
        [MODELS.index(m) for m in ("base", "uacr", "hba1c", "full", "sdi", "full", "full", "full")],
        dtype=np.int64,
    )
    bits = (
        np.asarray(has_uacr, dtype=np.bool_).view(np.int8)
        | (np.asarray(has_hba1c, dtype=np.bool_).view(np.int8) << np.int8(1))
        | (np.asarray(has_sdi, dtype=np.bool_).view(np.int8) << np.int8(2))
    )
    code: IntArray = by_bits[bits]
    return code


def _number(name: str, unit: str, description: str, low: float, high: float) -> ScoreInput:
    return ScoreInput(name, unit, "number", description, valid_range=(low, high),
                      range_source=_RANGE_SOURCE)  # fmt: skip


def _inputs(max_age: float) -> tuple[ScoreInput, ...]:
    return (
        ScoreInput(
            "outcome",
            None,
            "category",
            "Which equation: cvd (total CVD = ASCVD or heart failure), ascvd, hf (heart "
            "failure); chd and stroke are refused (no published PREVENT coefficients shipped)",
            categories=OUTCOMES,
            aliases={"total_cvd": "cvd", "heart_failure": "hf"},
            default="cvd",
            range_source="default: total CVD, the primary outcome of Khan et al. 2024",
        ),
        ScoreInput(
            "age_years",
            "a",
            "number",
            f"Age in years; the equations are valid from 30 to {max_age:g}",
            valid_range=(0.0, 130.0),
            population=True,
            range_source="data-quality limit; population 30-79 years (30-year risk: 30-59), "
            "Khan et al. 2024",
        ),
        ScoreInput(
            "sex",
            None,
            "category",
            "Sex: female or male",
            categories=SEXES,
            aliases={"f": "female", "m": "male"},
        ),
        _number("total_cholesterol_mg_dl", "mg/dL", "Total cholesterol", 130.0, 320.0),
        _number("hdl_mg_dl", "mg/dL", "HDL cholesterol", 20.0, 100.0),
        _number("systolic_bp_mm_hg", "mm[Hg]", "Systolic blood pressure", 90.0, 200.0),
        ScoreInput("bp_treated", None, "bool", "On antihypertensive medication"),
        ScoreInput("statin", None, "bool", "On a statin"),
        ScoreInput("diabetes", None, "bool", "Diabetes mellitus"),
        ScoreInput("smoker", None, "bool", "Current smoker (cigarettes within the last 30 days)"),
        _number("bmi_kg_m2", "kg/m2", "Body-mass index (used by heart failure only)", 18.5, 39.99),
        _number("egfr_ml_min_1_73m2", "mL/min/{1.73_m2}", "Estimated GFR", 15.0, 150.0),
        ScoreInput(
            "uacr_mg_g",
            "mg/g",
            "number",
            "Urine albumin-to-creatinine ratio, optional (selects the UACR or full model; "
            "below 0.1 taken as 0.1)",
            required=False,
            valid_range=(0.0, 25000.0),
            range_source=_RANGE_SOURCE,
        ),
        ScoreInput(
            "hba1c_percent",
            "%",
            "number",
            "HbA1c, optional (selects the HbA1c or full model)",
            required=False,
            valid_range=(3.0, 15.0),
            range_source=_RANGE_SOURCE,
        ),
        ScoreInput(
            "sdi_decile",
            None,
            "number",
            "Social Deprivation Index decile 1-10, optional (with UACR or HbA1c: the full "
            "model; alone: refused, the base + SDI model is not shipped)",
            required=False,
            valid_range=(1.0, 10.0),
            integer=True,
            range_source="SDI deciles (Robert Graham Center)",
        ),
    )


class Prevent(Score):
    """One horizon of the PREVENT base equations; ``PREVENT_10Y`` and ``PREVENT_30Y``."""

    version = "1.0.0"
    source = SOURCE
    integer_value = False
    record_population = (NO_KNOWN_ASCVD, NO_HEART_FAILURE)

    def __init__(self, years: int, outcome: str | None = None) -> None:
        if years not in (10, 30):
            raise ValueError("PREVENT has 10-year and 30-year equations")
        if outcome is not None and outcome not in SHIPPED:
            raise ValueError(f"outcome {outcome!r}: one of {', '.join(SHIPPED)}")
        self.years = years
        self.fixed_outcome = outcome
        self.max_age = 79.0 if years == 10 else 59.0
        self.name = f"prevent_{years}y" + (f"_{outcome}" if outcome else "")
        self.title = (
            f"AHA PREVENT {years}-year risk (%) of {OUTCOME_TITLES[outcome]}"
            if outcome
            else f"AHA PREVENT {years}-year risk (%) of total CVD (input outcome: or of ASCVD "
            "or heart failure)"
        )
        self.valid_population = (
            f"Adults aged 30-{self.max_age:g} years without known cardiovascular disease "
            "(Khan et al. 2024: derivation in 3,281,919 US adults from 25 data sets, "
            "validation in 3,330,085). Rows outside the age range are refused; medtwin risk "
            "says 'not applicable' for a record with clinical ASCVD or heart failure."
        )
        self.bands = BANDS if years == 10 and outcome in (None, "ascvd") else ()
        self._equation_inputs = _inputs(self.max_age)
        self.inputs = tuple(
            i for i in self._equation_inputs if not (outcome and i.name == "outcome")
        )

    def compute_many(
        self,
        columns: Mapping[str, ColumnLike],
        *,
        strict: bool = False,
        rows: int | None = None,
    ) -> ScoreResults:
        if self.fixed_outcome is not None:
            if "outcome" in columns:
                raise ScoreInputError(
                    f"{self.name}: the outcome is {self.fixed_outcome!r} by the score's name; "
                    f"use prevent_{self.years}y to choose it"
                )
            sizes = {
                len(c)
                for c in columns.values()
                if hasattr(c, "__len__") and not isinstance(c, str | bytes)
            }
            n_rows = rows if rows is not None else (max(sizes) if sizes else 0)
            columns = {**columns, "outcome": [self.fixed_outcome] * n_rows}
        data = InputData(self.name, self._equation_inputs, columns, strict=strict, rows=rows)
        n = data.n
        tables = coefficients()
        outcome = data.code("outcome")
        sex = data.code("sex")
        age = data.number("age_years")
        with np.errstate(invalid="ignore"):
            out_of_age = ~np.isnan(age) & ((age < 30.0) | (age > self.max_age))
        not_shipped = (outcome == OUTCOMES.index("chd")) | (outcome == OUTCOMES.index("stroke"))
        model = model_codes(
            data.present["uacr_mg_g"], data.present["hba1c_percent"], data.present["sdi_decile"]
        )
        sdi_only = model == MODELS.index("sdi")
        refused = data.any_invalid()
        refused |= out_of_age
        refused |= not_shipped
        refused |= sdi_only

        # an input is missing where the row's outcome uses it (every outcome when not given)
        unknown_outcome = outcome < 0
        used_by: dict[str, BoolArray] = {}
        for o_code, o_name in enumerate(OUTCOMES):
            if o_name not in SHIPPED:
                continue
            used = (outcome == o_code) | unknown_outcome
            for name in USES[o_name]:
                if name in used_by:
                    used_by[name] |= used
                else:
                    used_by[name] = used.copy()
        missing: dict[str, BoolArray] = {}
        incomplete = np.zeros(n, dtype=np.bool_)
        for inp in self.inputs:
            if inp.name in OPTIONAL:
                continue
            absent = ~data.present[inp.name] & ~data.invalid[inp.name]
            if inp.name == "outcome":
                m = absent
            elif inp.name in used_by:
                m = used_by[inp.name] & absent
            else:
                m = np.zeros(n, dtype=np.bool_)
            missing[inp.name] = m
            incomplete |= m

        # the equations, only for the rows that get a value, grouped by (outcome, model, sex)
        rows_ok = np.flatnonzero(~(refused | incomplete))
        group = (outcome[rows_ok].astype(np.int64) * len(MODELS) + model[rows_ok]) * 2 + sex[
            rows_ok
        ]
        order = np.argsort(group, kind="stable")
        rows_ok = rows_ok[order]
        starts = np.searchsorted(group[order], np.arange(len(OUTCOMES) * len(MODELS) * 2 + 1))

        def col(name: str) -> FloatArray:
            out: FloatArray = data.number(name)[rows_ok]
            return out

        diabetes = col("diabetes")
        x = terms(
            age_years=age[rows_ok],
            total_cholesterol_mg_dl=col("total_cholesterol_mg_dl"),
            hdl_mg_dl=col("hdl_mg_dl"),
            systolic_bp_mm_hg=col("systolic_bp_mm_hg"),
            bp_treated=col("bp_treated"),
            statin=col("statin"),
            diabetes=diabetes,
            smoker=col("smoker"),
            bmi_kg_m2=col("bmi_kg_m2"),
            egfr_ml_min_1_73m2=col("egfr_ml_min_1_73m2"),
        )
        x.update(
            addon_terms(
                uacr_mg_g=col("uacr_mg_g"),
                hba1c_percent=col("hba1c_percent"),
                sdi_decile=col("sdi_decile"),
                diabetes=diabetes,
            )
        )
        logit = np.empty(rows_ok.shape[0])
        for o_code, o_name in enumerate(OUTCOMES):
            if o_name not in SHIPPED:
                continue
            for m_code, m_name in enumerate(MODELS[:4]):
                for s_code, s_name in enumerate(SEXES):
                    g = (o_code * len(MODELS) + m_code) * 2 + s_code
                    lo, hi = int(starts[g]), int(starts[g + 1])
                    if lo == hi:
                        continue
                    coef = tables[f"{m_name}_{self.years}y"][s_name][o_name]
                    lp = np.zeros(hi - lo)
                    for term, beta in coef.items():
                        lp += float(beta) * x[term][lo:hi]
                    logit[lo:hi] = lp
        value = np.full(n, np.nan)
        value[rows_ok] = 100.0 / (1.0 + np.exp(-logit))
        band = np.full(n, -1, dtype=np.int8)
        if self.bands:
            valued = value[rows_ok]
            ascvd = outcome[rows_ok] == OUTCOMES.index("ascvd")
            banded = rows_ok[ascvd & ~np.isnan(valued)]
            band[banded] = np.searchsorted(BAND_CUTS_PERCENT, value[banded], side="right")
        return self.results(
            value=value,
            band_code=band,
            partial=incomplete & ~refused,
            refused=refused,
            missing=missing,
            reason_of=lambda i: "; ".join(self._reasons(data, i, outcome, out_of_age, sdi_only)),
        )

    def _reasons(
        self, data: InputData, i: int, outcome: Any, out_of_age: Any, sdi_only: Any
    ) -> list[str]:
        parts: list[str] = []
        for inp in self.inputs:
            if not data.invalid[inp.name][i]:
                continue
            reason = data.reason(inp.name, i)
            if inp.valid_range is not None and "plausible range" in reason:
                low, high = inp.valid_range
                value = data.values[inp.name][i]
                reason = (
                    f"{inp.name}={value:g} is outside {low:g}-{high:g} {inp.unit or ''}".rstrip()
                    + f", the {_RANGE_SOURCE}"
                )
            parts.append(reason)
        if out_of_age[i]:
            parts.append(
                f"age_years={data.values['age_years'][i]:g} is outside 30-{self.max_age:g}: the "
                f"PREVENT {self.years}-year equations were derived and validated in adults aged "
                f"30-{self.max_age:g}"
            )
        code = int(outcome[i])
        if code >= 0 and OUTCOMES[code] not in SHIPPED:
            parts.append(
                f"outcome={OUTCOMES[code]!r}: Khan et al. 2024 publish PREVENT equations for "
                "total CVD, ASCVD and heart failure; medtwin ships no primary-source "
                "coefficients for a separate CHD or stroke equation"
            )
        if sdi_only[i]:
            parts.append(
                "sdi_decile given without uacr_mg_g or hba1c_percent: that selects the PREVENT "
                "base + SDI model, whose coefficients medtwin does not ship; leave sdi_decile "
                "out for the base model, or add UACR or HbA1c for the full model"
            )
        return parts

    def companions(self) -> tuple[Score, ...]:
        """A patient's report shows the ASCVD risk, which carries the 2026 ACC/AHA dyslipidemia
        guideline's category (total CVD, the default outcome, has none), and the heart-failure
        risk beside this score; none beside a score whose outcome is already fixed."""
        if self.fixed_outcome is not None:
            return ()
        return (with_outcome(self.years, "ascvd"), with_outcome(self.years, "hf"))

    def model_of(self, row: Mapping[str, Any]) -> str:
        """Which PREVENT model a row uses: base, uacr, hba1c, full (or sdi: refused)."""
        data = InputData(self.name, self._equation_inputs, {k: [v] for k, v in row.items()},
                         strict=False, rows=1)  # fmt: skip
        code = model_codes(
            data.present["uacr_mg_g"], data.present["hba1c_percent"], data.present["sdi_decile"]
        )
        return MODELS[int(code[0])]


PREVENT_10Y = Prevent(10)
"""AHA PREVENT 10-year risk (%), base model."""
PREVENT_30Y = Prevent(30)
"""AHA PREVENT 30-year risk (%), base model (ages 30-59)."""


@cache
def with_outcome(years: int, outcome: str) -> Prevent:
    """PREVENT with its outcome fixed (``prevent_10y_ascvd``): the inputs without ``outcome``.

    A patient's risk report shows the 10-year ASCVD risk, which carries the 2026 guideline's
    category, beside the total CVD risk of ``prevent_10y`` (see
    :func:`medtwin.risk.from_record.chosen_scores`).

    >>> with_outcome(10, "ascvd").name, [b.name for b in with_outcome(10, "ascvd").bands]
    ('prevent_10y_ascvd', ['low', 'borderline', 'intermediate', 'high'])
    """
    return Prevent(years, outcome)
