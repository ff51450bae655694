"""Patient covariates of the PK models: body weights and Cockcroft-Gault creatinine clearance.

- Cockcroft-Gault (Cockcroft DW, Gault MH. Prediction of creatinine clearance from serum
  creatinine. Nephron 1976;16:31-41):
  ``CrCL (mL/min) = (140 - age) * weight / (72 * SCr)``, times 0.85 for women;
- ideal body weight (Devine BJ. Gentamicin therapy. Drug Intell Clin Pharm 1974;8:650-655):
  ``50 kg (men) or 45.5 kg (women) + 2.3 kg per inch of height over 5 feet``;
- adjusted body weight: ``IBW + 0.4 (TBW - IBW)`` (the aminoglycoside dosing weight of obese
  patients; Bauer LA, Applied Clinical Pharmacokinetics, 3rd ed. 2014, ch. 4).

Impossible values are refused with :class:`CovariateError` naming the field.

>>> p = PatientCovariates.from_dict({"age_years": 50, "weight_kg": 70, "height_cm": 175,
...     "sex": "male", "creatinine_mg_dl": 1.0})
>>> round(p.crcl_ml_min(), 1), round(p.ideal_weight_kg(), 1)
(87.5, 70.5)
>>> PatientCovariates.from_dict({"age_years": 50, "weight_kg": 0, "sex": "male",
...     "creatinine_mg_dl": 1.0})
Traceback (most recent call last):
...
medtwin.pharmacology.covariates.CovariateError: patient: field 'weight_kg' must be > 0, got 0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from medtwin.model.base import ModelError

__all__ = [
    "CovariateError",
    "PatientCovariates",
    "adjusted_weight_kg",
    "cockcroft_gault_ml_min",
    "ideal_weight_kg",
]


class CovariateError(ModelError):
    """A patient covariate is missing or impossible; the message names the field."""


def cockcroft_gault_ml_min(
    age_years: float, weight_kg: float, creatinine_mg_dl: float, sex: str
) -> float:
    """Cockcroft-Gault creatinine clearance (mL/min), Cockcroft & Gault 1976 eq. 1.

    >>> round(cockcroft_gault_ml_min(60, 72, 1.0, "female"), 1)
    68.0
    """
    crcl = (140.0 - age_years) * weight_kg / (72.0 * creatinine_mg_dl)
    return crcl * 0.85 if sex == "female" else crcl


def ideal_weight_kg(height_cm: float, sex: str) -> float:
    """Ideal body weight (kg), Devine 1974: 50 (men) / 45.5 (women) + 2.3 kg per inch over 60."""
    inches_over = height_cm / 2.54 - 60.0
    return (50.0 if sex == "male" else 45.5) + 2.3 * inches_over


def adjusted_weight_kg(total_kg: float, ideal_kg: float, fraction: float = 0.4) -> float:
    """Adjusted body weight ``IBW + fraction (TBW - IBW)`` (kg)."""
    return ideal_kg + fraction * (total_kg - ideal_kg)


_FIELDS = {
    "age_years",
    "weight_kg",
    "height_cm",
    "sex",
    "creatinine_mg_dl",
    "dialysis",
    "crcl_ml_min",
    "pregnant",
}


def _positive(raw: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    if name not in raw or raw[name] is None:
        if required:
            raise CovariateError(f"patient: missing field {name!r}")
        return None
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CovariateError(f"patient: field {name!r} must be a number, got {value!r}")
    if not math.isfinite(float(value)) or value <= 0:
        raise CovariateError(f"patient: field {name!r} must be > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class PatientCovariates:
    """What the PK models need to know about a patient.

    ``creatinine_mg_dl`` (serum creatinine) gives the Cockcroft-Gault CrCL; ``crcl_ml_min``,
    when given, is used instead (a measured clearance). ``dialysis``: intermittent
    haemodialysis. ``pregnant``: pregnant now (a model whose population did not include
    pregnancy refuses her: :meth:`medtwin.pharmacology.antibiotics.PopPKModel.check_patient`).
    """

    age_years: float
    weight_kg: float
    sex: Literal["male", "female"]
    creatinine_mg_dl: float | None = None
    height_cm: float | None = None
    dialysis: bool = False
    crcl_given_ml_min: float | None = None
    pregnant: bool = False

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PatientCovariates:
        """Validate a ``patient`` object of a dosing case (fields named with units)."""
        if not isinstance(raw, Mapping):
            raise CovariateError("patient: must be a JSON object")
        unknown = sorted(set(raw) - _FIELDS)
        if unknown:
            raise CovariateError(
                f"patient: unknown field {unknown[0]!r} (known: {', '.join(sorted(_FIELDS))})"
            )
        age = _positive(raw, "age_years", required=True)
        weight = _positive(raw, "weight_kg", required=True)
        height = _positive(raw, "height_cm", required=False)
        scr = _positive(raw, "creatinine_mg_dl", required=False)
        crcl = _positive(raw, "crcl_ml_min", required=False)
        sex = raw.get("sex")
        if sex not in ("male", "female"):
            raise CovariateError(f"patient: field 'sex' must be 'male' or 'female', got {sex!r}")
        dialysis = raw.get("dialysis", False)
        if not isinstance(dialysis, bool):
            raise CovariateError(
                f"patient: field 'dialysis' must be true or false, got {dialysis!r}"
            )
        pregnant = raw.get("pregnant", False)
        if not isinstance(pregnant, bool):
            raise CovariateError(
                f"patient: field 'pregnant' must be true or false, got {pregnant!r}"
            )
        if pregnant and sex != "female":
            raise CovariateError("patient: field 'pregnant' is true for a patient of sex 'male'")
        if scr is None and crcl is None:
            raise CovariateError("patient: missing field 'creatinine_mg_dl' (or 'crcl_ml_min')")
        if age is not None and age > 130:
            raise CovariateError(f"patient: field 'age_years' = {age!r} is not a human age")
        if weight is not None and weight > 700:
            raise CovariateError(f"patient: field 'weight_kg' = {weight!r} is not a human weight")
        if height is not None and not 50 <= height <= 275:
            raise CovariateError(f"patient: field 'height_cm' = {height!r} is not a human height")
        if scr is not None and scr > 30:
            raise CovariateError(
                f"patient: field 'creatinine_mg_dl' = {scr!r} is implausible (> 30)"
            )
        assert age is not None and weight is not None
        return cls(
            age_years=age,
            weight_kg=weight,
            sex=sex,
            creatinine_mg_dl=scr,
            height_cm=height,
            dialysis=dialysis,
            crcl_given_ml_min=crcl,
            pregnant=pregnant,
        )

    def ideal_weight_kg(self) -> float:
        """Devine ideal body weight (kg); needs ``height_cm``."""
        if self.height_cm is None:
            raise CovariateError(
                "patient: missing field 'height_cm' (needed for ideal body weight)"
            )
        return ideal_weight_kg(self.height_cm, self.sex)

    def dosing_weight_kg(
        self, kind: str, *, obesity_ratio: float = 1.3, fraction: float = 0.4
    ) -> float:
        """The weight a model was built with: ``total``, ``ideal`` or ``ideal_or_adjusted``
        (ideal, or adjusted when total > ``obesity_ratio`` x ideal; total when below ideal)."""
        if kind == "total":
            return self.weight_kg
        ibw = self.ideal_weight_kg()
        if kind == "ideal":
            return ibw
        if kind == "ideal_or_adjusted":
            if self.weight_kg < ibw:
                return self.weight_kg
            if self.weight_kg > obesity_ratio * ibw:
                return adjusted_weight_kg(self.weight_kg, ibw, fraction)
            return ibw
        raise CovariateError(f"unknown dosing weight {kind!r}")

    def crcl_ml_min(
        self,
        weight: str = "total",
        *,
        scr_floor_mg_dl: float = 0.0,
        scr_floor_above_age_years: float = math.inf,
    ) -> float:
        """Creatinine clearance (mL/min): the given one, or Cockcroft-Gault with the weight
        ``weight`` (see :meth:`dosing_weight_kg`); a model may raise serum creatinine to
        ``scr_floor_mg_dl`` in patients older than ``scr_floor_above_age_years`` (as Goti 2018
        did above 60 y)."""
        if self.crcl_given_ml_min is not None:
            return self.crcl_given_ml_min
        assert self.creatinine_mg_dl is not None
        if self.age_years >= 140:
            raise CovariateError("patient: Cockcroft-Gault needs age_years < 140")
        scr = self.creatinine_mg_dl
        if self.age_years > scr_floor_above_age_years:
            scr = max(scr, scr_floor_mg_dl)
        return cockcroft_gault_ml_min(self.age_years, self.dosing_weight_kg(weight), scr, self.sex)

    def to_dict(self) -> dict[str, Any]:
        """The covariates as plain data."""
        return {
            "age_years": self.age_years,
            "weight_kg": self.weight_kg,
            "sex": self.sex,
            "creatinine_mg_dl": self.creatinine_mg_dl,
            "height_cm": self.height_cm,
            "dialysis": self.dialysis,
            "crcl_ml_min": self.crcl_given_ml_min,
            "pregnant": self.pregnant,
        }
