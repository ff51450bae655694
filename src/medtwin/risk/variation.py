"""How far a risk estimate moves over the day-to-day variation of the measurements it rests on.

A risk equation takes one cholesterol and one blood pressure; the patient's usual levels, the
ones the equation's cohorts stand for, differ from a single result by the within-person
variation. :func:`measurement_interval` draws the measured inputs around the record's values and
recomputes the score (``compute_many`` over :data:`DRAWS` rows, a fixed seed: the same record
gives the same interval), and reports the central 90 % of the risk:

- total and HDL cholesterol: log-normal around the record's value (its median), with the within-person coefficients of variation of the
  meta-analysis of 30 studies by Smith SJ, Cooper GR, Myers GL, Sampson EJ (*Clin Chem*
  1993;39:1012-1022, random-effects averages: total cholesterol 6.1 %, HDL cholesterol 7.4 %),
  drawn independently; QRISK3's total/HDL ratio moves with both;
- systolic pressure: normal around the record's reading, with the standard deviation of the patient's own systolic readings
  of the last five years (``systolic_bp_sd_mm_hg``, at least two readings: the person's own
  variability, which also holds any drift or treatment change of those years, so the interval
  is wide rather than narrow); without two readings the pressure is not varied, and said.

- eGFR, where medtwin computed it from a creatinine: the creatinine log-normal with the
  within-person CV of 5.0 % of a meta-analysis of 37 studies (:data:`CREATININE_SOURCE`), and
  CKD-EPI 2021 recomputed for each draw; an eGFR the record reports as such is held, and said.

- HbA1c (SCORE2-Diabetes, PREVENT's HbA1c model): log-normal with the within-person CV of
  1.7 %, the median of 25 studies in people without diabetes of the meta-analysis of Gough A,
  Sitch A, Ferris E, Marshall T (*PLoS One* 2023;18:e0289085; :data:`HBA1C_SOURCE`). Its studies in
  diabetes report a median of 8.3 %, which holds changes of glycaemic control over their months
  of follow-up, not the variation of one result around the patient's current level; the
  interval does not cover a change of control.

Other inputs (age, sex, smoking, diabetes, treatment, BMI) are held at the record's values. The interval is the uncertainty from measurement alone, not that of the equation itself
(its calibration in this population). Draws that the equation refuses (a cholesterol drawn
outside its accepted range) are counted and left out. Model card:
``docs/models/measurement-variation.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from medtwin.risk.base import Score
    from medtwin.risk.inputs import DerivedInput

__all__ = [
    "CREATININE_CV",
    "CREATININE_SOURCE",
    "DRAWS",
    "HBA1C_CV",
    "HBA1C_SOURCE",
    "LEVEL",
    "LIPID_CV",
    "SOURCE",
    "Variation",
    "measurement_interval",
]

SOURCE = (
    "Smith SJ, Cooper GR, Myers GL, Sampson EJ. Biological variability in concentrations of "
    "serum lipids: sources of variation among results from published studies and composite "
    "predicted values. Clin Chem 1993;39:1012-1022 (30 studies; random-effects average "
    "within-person CV: total cholesterol 6.1 %, HDL cholesterol 7.4 %)"
)
LIPID_CV: Mapping[str, float] = {"total_cholesterol_mg_dl": 0.061, "hdl_mg_dl": 0.074}
"""Within-person coefficient of variation of each lipid input (Smith 1993)."""
CREATININE_SOURCE = (
    "Biological variation and reference change value of the estimated glomerular filtration "
    "rate in humans: a systematic review and meta-analysis. Front Med 2022;9:1009358 (37 "
    "studies; within-person CV of creatinine 5.0 %, 95 % CI 4.7-5.4, outlying studies left out)"
)
CREATININE_CV = 0.050
"""Within-person coefficient of variation of serum creatinine (:data:`CREATININE_SOURCE`)."""
HBA1C_SOURCE = (
    "Gough A, Sitch A, Ferris E, Marshall T. Within-subject variation of HbA1c: a systematic "
    "review and meta-analysis. PLoS One 2023;18(8):e0289085 (25 studies in healthy people: "
    "median within-subject CV of HbA1c % 1.7 %, IQR 1.3-2.2; in diabetes 8.3 %, which holds "
    "changes of control over follow-up)"
)
HBA1C_CV = 0.017
"""Within-person coefficient of variation of HbA1c (%, :data:`HBA1C_SOURCE`)."""
DRAWS = 10000
"""Rows drawn per score: between seeds the 5th and 95th percentiles move by 0.1-0.3 % of
themselves (standard deviation over 30 seeds, PCE, PREVENT and Framingham of a demo patient);
four scores take about 30 ms."""
LEVEL = 0.90
"""The central share of the drawn risks reported."""
SEED = 1993


@dataclass(frozen=True, slots=True)
class Variation:
    """The central ``level`` of a score over its inputs' measurement variation."""

    low: float
    high: float
    band_low: str | None
    band_high: str | None
    level: float
    varied: tuple[str, ...]
    """What was varied and by how much, in words ("total cholesterol CV 6.1 %")."""
    not_varied: tuple[str, ...]
    """Measured inputs held fixed, with why ("systolic (1 systolic reading(s) in the last 5
    years, at least 2 needed)")."""
    refused: int
    """Draws the equation refused (outside its accepted ranges), left out."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "low": self.low,
            "high": self.high,
            "band_low": self.band_low,
            "band_high": self.band_high,
            "level": self.level,
            "varied": list(self.varied),
            "not_varied": list(self.not_varied),
            "refused_draws": self.refused,
            "source": SOURCE,
            **(
                {"creatinine_source": CREATININE_SOURCE}
                if any("creatinine" in v for v in self.varied)
                else {}
            ),
            **({"hba1c_source": HBA1C_SOURCE} if any("HbA1c" in v for v in self.varied) else {}),
        }


def _lognormal(rng: np.random.Generator, cv: float, n: int) -> np.ndarray:
    """Multiplicative factors of median 1 (the record's value is the middle of the usual
    levels it may stand for) and coefficient of variation ``cv``."""
    sigma = math.sqrt(math.log1p(cv * cv))
    out: np.ndarray = np.exp(rng.normal(0.0, sigma, n))
    return out


def _egfr_draws(
    columns: dict[str, Any],
    varied: list[str],
    not_varied: list[str],
    derived: Mapping[str, DerivedInput],
    rng: np.random.Generator,
    draws: int,
) -> None:
    """eGFR computed from creatinine: the creatinine drawn (:data:`CREATININE_CV`) and CKD-EPI
    2021 recomputed for each draw; an eGFR the record gave as such is held, and said."""
    from medtwin.risk.registry import get

    egfr = derived.get("egfr_ml_min_1_73m2")
    creatinine = derived.get("creatinine_mg_dl")
    age, sex = derived.get("age_years"), derived.get("sex")
    if egfr is None or egfr.status != "computed" or creatinine is None or not creatinine.usable:
        not_varied.append("eGFR (a reported eGFR, not computed from a creatinine here)")
        return
    if age is None or sex is None or not (age.usable and sex.usable):  # pragma: no cover
        not_varied.append("eGFR (age or sex not known)")
        return
    drawn = float(creatinine.value) * _lognormal(rng, CREATININE_CV, draws)  # type: ignore[arg-type]
    result = get("ckd_epi_2021").compute_many(
        {"creatinine_mg_dl": drawn, "age_years": [age.value] * draws, "sex": [sex.value] * draws},
        rows=draws,
    )
    columns["egfr_ml_min_1_73m2"] = np.asarray(result.value, dtype=float)
    varied.append(f"creatinine CV {100 * CREATININE_CV:.1f} % (eGFR recomputed, CKD-EPI 2021)")


def measurement_interval(
    score: Score,
    derived: Mapping[str, DerivedInput],
    row: Mapping[str, Any],
    *,
    draws: int = DRAWS,
    seed: int = SEED,
) -> Variation | None:
    """The central :data:`LEVEL` of ``score`` over the measurement variation of ``row``'s
    cholesterol and systolic pressure (``derived`` gives the patient's own pressure SD).

    ``None`` when the score reads none of those inputs, or no draw could be scored.
    """
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {name: [value] * draws for name, value in row.items()}
    varied: list[str] = []
    not_varied: list[str] = []
    tc = _lognormal(rng, LIPID_CV["total_cholesterol_mg_dl"], draws)
    hdl = _lognormal(rng, LIPID_CV["hdl_mg_dl"], draws)
    for name, factor, label in (
        ("total_cholesterol_mg_dl", tc, "total cholesterol"),
        ("hdl_mg_dl", hdl, "HDL"),
    ):
        if name in row:
            columns[name] = float(row[name]) * factor
            varied.append(f"{label} CV {100 * LIPID_CV[name]:.1f} %")
    if "cholesterol_hdl_ratio" in row:
        columns["cholesterol_hdl_ratio"] = float(row["cholesterol_hdl_ratio"]) * tc / hdl
        cvs = " and ".join(f"{100 * cv:.1f} %" for cv in LIPID_CV.values())
        varied.append(f"total/HDL ratio (total cholesterol and HDL CV {cvs})")
    if "egfr_ml_min_1_73m2" in row:
        _egfr_draws(columns, varied, not_varied, derived, rng, draws)
    if "systolic_bp_mm_hg" in row:
        sd = derived.get("systolic_bp_sd_mm_hg")
        if sd is not None and sd.usable:
            spread = float(sd.value)  # type: ignore[arg-type]
            columns["systolic_bp_mm_hg"] = float(row["systolic_bp_mm_hg"]) + rng.normal(
                0.0, spread, draws
            )
            count = len(sd.provenance)
            varied.append(
                f"systolic SD {spread:.1f} mmHg, the patient's {count} readings in 5 years"
            )
        else:
            why = sd.reason() if sd is not None else "no systolic readings"
            not_varied.append(f"systolic ({why})")
    if "hba1c_percent" in row:  # drawn last: the draws above stay as they were
        columns["hba1c_percent"] = float(row["hba1c_percent"]) * _lognormal(rng, HBA1C_CV, draws)
        varied.append(f"HbA1c CV {100 * HBA1C_CV:.1f} %")
    if not varied:
        return None
    results = score.compute_many(columns, rows=draws)
    values = np.asarray(results.value, dtype=float)
    scored = np.flatnonzero(~np.isnan(values))
    if scored.size == 0:
        return None
    order = scored[np.argsort(values[scored], kind="stable")]
    tail = (1.0 - LEVEL) / 2.0
    lo_i = order[math.floor(tail * (order.size - 1))]
    hi_i = order[math.ceil((1.0 - tail) * (order.size - 1))]
    return Variation(
        low=float(values[lo_i]),
        high=float(values[hi_i]),
        band_low=results[int(lo_i)].band,
        band_high=results[int(hi_i)].band,
        level=LEVEL,
        varied=tuple(varied),
        not_varied=tuple(not_varied),
        refused=int(draws - scored.size),
    )
