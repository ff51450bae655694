"""Prevention what-if: recompute the risk scores with one changed input, rank by risk reduction.

``medtwin risk PATIENT --whatif quit_smoking,sbp=-10,statin,weight=-5kg,diet=-500kcal`` derives
the inputs from the record (:mod:`medtwin.risk.inputs`), applies each change **alone** to a copy
of them, recomputes every score of the report whose value is a risk in percent, and ranks the
changes by the absolute risk reduction (ARR, percentage points: baseline risk minus risk with the
change) of each score. Each row says which inputs changed, by how much, through which model or
effect size, with the keys of :data:`SOURCES`; where an effect size has a confidence interval (or
an assumption a plausible range) the row also gives the ARR at both ends (``arr_low``,
``arr_high``). ``docs/models/prevention.md`` lists every effect size with its source.

What a change does (each cited; a change that does not apply to this patient says why):

* ``quit_smoking``: ``smoker`` becomes ``False``, and QRISK3's smoking group (light, moderate or
  heavy) becomes ex-smoker, QRISK3's group for one who stopped. Only for a current smoker. The equations give the
  risk of a never/former smoker with otherwise the same inputs; the benefit of quitting accrues
  over years (the equations do not model the time course).
* ``sbp=D``: systolic blood pressure changes by ``D`` mm Hg (``sbp=-10``); the result must stay
  within the score's valid range, else the score refuses it. Lowering is not offered when systolic
  pressure is already below 120 mm Hg, the intensive target (SPRINT Research Group, N Engl J Med
  2015;373:2103-2116; the 2017 ACC/AHA guideline's target is < 130 mm Hg): some equations (PREVENT's
  spline below 110 mm Hg) would otherwise report a lower pressure as a higher risk.
* ``statin``: ``statin`` becomes ``True`` and total cholesterol falls by 30 % of the recorded LDL
  cholesterol: a moderate-intensity statin lowers LDL-C by 30-49 % (Grundy SM et al., 2018
  AHA/ACC Guideline on the Management of Blood Cholesterol, Circulation 2019;139:e1082, Table 3);
  the lower bound is the point estimate and 30-49 % the range, and the LDL fall is carried to
  total cholesterol one for one (statins lower LDL-C; HDL-C changes little). Without a valid LDL
  only the ``statin`` flag changes, and the row says so. Only for a patient not on a statin.
* ``weight=Dkg``: body weight changes by ``D`` kg; BMI by ``D / height^2`` with the recorded
  height (``weight=-5kg``). ``bmi=D``: BMI changes by ``D`` kg/m2, a weight change of
  ``D x height^2`` where a height is recorded. Losing weight is not offered below a BMI of
  25 kg/m2, the upper limit of the WHO normal range (WHO Technical Report Series 894, 2000), nor
  down to a BMI below 18.5 kg/m2 (underweight, same source).
* ``diet=Dkcal``: daily energy intake changes by ``D`` kcal/day from now on; ``activity=P%``: the
  physical-activity expenditure changes by ``P`` % (the ``activity_change_pct`` of the Hall model,
  its coefficient delta). Both go through the Hall 2011 body-weight model
  (:mod:`medtwin.physiology.body_weight`, ``hall_2011_body_weight``), started in energy balance
  at this patient's recorded weight, height, age and sex, simulated to the horizon (default
  :data:`DEFAULT_HORIZON_DAYS`, 12 months); the weight at the horizon is the weight change. The
  record has no physical activity level (PAL): :data:`PAL_ASSUMED` (1.55, the middle of the
  FAO/WHO/UNU "sedentary or light activity" range 1.40-1.69) is assumed, and the ends of that
  range give the range of the weight change. The model refuses, and the row says why, someone
  outside its population (under 18 or over 100 years, BMI outside 16-60 kg/m2), and a
  trajectory that leaves that BMI range before the horizon.
* ``hba1c=D``: HbA1c changes by ``D`` percentage points.

A weight **loss** (from ``weight``, ``bmi``, ``diet`` or ``activity``) then moves (see
:data:`EFFECTS`):

* systolic blood pressure by 1.05 mm Hg per kg lost (95 % CI 0.66-1.43; Neter et al. 2003,
  meta-analysis of 25 randomised trials), not below :data:`SBP_TARGET_MM_HG` (a pressure already
  at or below it is not lowered);
* HbA1c, for a patient with diabetes, by 1.5 mmol/mol per kg/m2 of BMI lost (95 % CI 1.1-1.9),
  and for non-diabetic hyperglycaemia (HbA1c 6.0-6.4 %) by 0.6 mmol/mol per kg/m2 (0.4-0.8)
  (Pidd et al. 2025, pooled analysis of two behavioural weight-management trials), converted to
  percentage points with the IFCC-NGSP master equation (0.09148 % per mmol/mol); not below
  :data:`HBA1C_NDH_MIN_PERCENT` (6.0 %, the lower limit of non-diabetic hyperglycaemia: below it
  these groups' estimates do not apply). Normoglycaemia: HbA1c unchanged (Pidd et al. give a
  loss about 0.2 mmol/mol per kg/m2 there, without its own CI: negligible, not applied).

The effect sizes are per kg (or kg/m2) of weight actually lost and maintained; they are applied
linearly and only to a loss (they come from weight-loss trials). The point estimate ranks the
changes; ``arr_low``/``arr_high`` are the ARR with every uncertain quantity of the row at the end
of its range that gives the smaller, respectively larger, effect (a joint extreme, so wider than
any single interval).

References
----------
See :data:`SOURCES` (keys used in rows and in ``docs/models/prevention.md``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from medtwin.risk.base import Score
    from medtwin.risk.from_record import RiskReport
    from medtwin.risk.inputs import DerivedInput

__all__ = [
    "BMI_NORMAL_MAX",
    "BMI_UNDERWEIGHT",
    "DEFAULT_HORIZON_DAYS",
    "EFFECTS",
    "HBA1C_DIABETES_PERCENT",
    "HBA1C_NDH_MIN_PERCENT",
    "HBA1C_PERCENT_PER_MMOL_MOL",
    "MAX_HORIZON_DAYS",
    "PAL_ASSUMED",
    "PAL_RANGE",
    "SBP_TARGET_MM_HG",
    "SOURCES",
    "STATIN_LDL_REDUCTION",
    "STATIN_LDL_REDUCTION_RANGE",
    "Change",
    "EffectSize",
    "InputChange",
    "PreventionError",
    "WeightProjection",
    "WhatIfRow",
    "apply_change",
    "format_plan",
    "parse_changes",
    "parse_horizon",
    "project_weight",
    "rank_changes",
]

SOURCES: Mapping[str, str] = {
    "sprint2015": "SPRINT Research Group. A randomized trial of intensive versus standard "
    "blood-pressure control. N Engl J Med 2015;373:2103-2116",
    "grundy2018": "Grundy SM, Stone NJ, Bailey AL, et al. 2018 AHA/ACC Guideline on the "
    "Management of Blood Cholesterol. Circulation 2019;139:e1082-e1143, Table 3",
    "who2000": "WHO. Obesity: preventing and managing the global epidemic. WHO Technical Report "
    "Series 894, 2000 (BMI classes: underweight < 18.5, normal 18.5-24.9 kg/m2)",
    "hall2011": "Hall KD, Sacks G, Chandramohan D, et al. Quantification of the effect of energy "
    "imbalance on bodyweight. Lancet 2011;378:826-837 (model hall_2011_body_weight, "
    "docs/models/body-weight.md)",
    "fao2004": "FAO/WHO/UNU. Human energy requirements: report of a joint expert consultation, "
    "Rome 2001. FAO Food and Nutrition Technical Report Series 1, 2004, Table 5.3 (PAL of a "
    "sedentary or light activity lifestyle 1.40-1.69)",
    "neter2003": "Neter JE, Stam BE, Kok FJ, Grobbee DE, Geleijnse JM. Influence of weight "
    "reduction on blood pressure: a meta-analysis of randomized controlled trials. Hypertension "
    "2003;42:878-884 (abstract: -1.05 mm Hg systolic per kg, 95% CI -1.43 to -0.66)",
    "pidd2025": "Pidd K, Breeze P, Ahern A, Griffin SJ, Brennan A. Effects of weight loss and "
    "weight gain on HbA1c, systolic blood pressure and total cholesterol in three subgroups "
    "defined by blood glucose: a pooled analysis of two behavioural weight management trials in "
    "England. BMJ Open 2025;15:e095046 (abstract: HbA1c 1.5 mmol/mol per kg/m2, 95% CI 1.1-1.9, "
    "in type 2 diabetes; 0.6, 0.4-0.8, in non-diabetic hyperglycaemia)",
    "ngsp_ifcc": "Hoelzel W, Weykamp C, Jeppsson JO, et al. IFCC reference system for "
    "measurement of hemoglobin A1c in human blood and the national standardization schemes. "
    "Clin Chem 2004;50:166-174 (master equation NGSP % = 0.09148 IFCC mmol/mol + 2.152)",
    "nice_ph38": "NICE public health guideline PH38, Type 2 diabetes: prevention in people at "
    "high risk, 2012 (non-diabetic hyperglycaemia: HbA1c 42-47 mmol/mol, 6.0-6.4 %)",
}
"""Every source a what-if row cites, by key (also in ``docs/models/prevention.md``)."""

STATIN_LDL_REDUCTION = 0.30
"""Fractional LDL-C reduction of a moderate-intensity statin, the lower bound of 30-49 %
(Grundy et al. 2018 AHA/ACC cholesterol guideline, Table 3)."""
STATIN_LDL_REDUCTION_RANGE = (0.30, 0.49)
"""The moderate-intensity range (same source): the ends give the row's ARR range."""

SBP_TARGET_MM_HG = 120.0
"""Below this systolic pressure, lowering it is not offered (SPRINT 2015 intensive target)."""
BMI_NORMAL_MAX = 25.0
"""Below this BMI, weight loss is not offered (WHO TRS 894, 2000: normal range 18.5-24.9)."""
BMI_UNDERWEIGHT = 18.5
"""A loss that would take BMI below this is refused (WHO TRS 894, 2000: underweight)."""
HBA1C_NDH_MIN_PERCENT = 6.0
"""Lower limit of non-diabetic hyperglycaemia, HbA1c 42 mmol/mol = 6.0 % (NICE PH38): weight
loss does not lower HbA1c below it in the what-if (below it a person is in Pidd et al.'s
normoglycaemic group, whose loss effect, about 0.2 mmol/mol per kg/m2, is not applied)."""
HBA1C_DIABETES_PERCENT = 6.5
"""Upper end (exclusive) of non-diabetic hyperglycaemia, 48 mmol/mol = 6.5 % (NICE PH38)."""
HBA1C_PERCENT_PER_MMOL_MOL = 0.09148
"""Slope of the IFCC-NGSP master equation, NGSP % = 0.09148 IFCC + 2.152 (Hoelzel et al.
2004): a difference of 1 mmol/mol is 0.09148 percentage points."""

DEFAULT_HORIZON_DAYS = 365.0
"""Default horizon of ``diet``/``activity``: 12 months (365 days)."""
MAX_HORIZON_DAYS = 3650.0
"""Longest horizon accepted (10 years; Hall 2011's model approaches its new steady state over
about 3 years for small changes, docs/models/body-weight.md)."""
PAL_ASSUMED = 1.55
"""Physical activity level assumed when the record has none (it never has): the middle of
FAO/WHO/UNU 2004 Table 5.3's "sedentary or light activity" range 1.40-1.69 (medtwin's
assumption that the patient's lifestyle is in that class)."""
PAL_RANGE = (1.40, 1.69)
"""The ends of that range, giving the range of a simulated weight change."""


class PreventionError(ValueError):
    """A --whatif change that cannot be read; the message names it and the accepted forms."""


@dataclass(frozen=True, slots=True)
class EffectSize:
    """A published effect of weight loss on an input: ``estimate`` (``low``-``high``, 95 % CI)
    ``unit`` of the input per ``per`` lost, in ``group``; ``source`` is a :data:`SOURCES` key."""

    key: str
    input: str
    estimate: float
    low: float
    high: float
    unit: str
    per: Literal["kg", "kg/m2"]
    group: str
    source: str

    def at(self, level: str) -> float:
        """The estimate (``"estimate"``) or the CI end with the smaller/larger effect."""
        return {"estimate": self.estimate, "low": self.low, "high": self.high}[level]


_K = HBA1C_PERCENT_PER_MMOL_MOL
EFFECTS: Mapping[str, EffectSize] = {
    "sbp_per_kg": EffectSize(
        "sbp_per_kg", "systolic_bp_mm_hg", 1.05, 0.66, 1.43, "mm Hg", "kg",
        "adults in weight-reduction trials (normotensive and hypertensive)", "neter2003",
    ),
    "hba1c_per_bmi_t2d": EffectSize(
        "hba1c_per_bmi_t2d", "hba1c_percent", 1.5 * _K, 1.1 * _K, 1.9 * _K, "%", "kg/m2",
        "type 2 diabetes (1.5 mmol/mol, 1.1-1.9)", "pidd2025",
    ),
    "hba1c_per_bmi_ndh": EffectSize(
        "hba1c_per_bmi_ndh", "hba1c_percent", 0.6 * _K, 0.4 * _K, 0.8 * _K, "%", "kg/m2",
        "non-diabetic hyperglycaemia, HbA1c 6.0-6.4 % (0.6 mmol/mol, 0.4-0.8)", "pidd2025",
    ),
}  # fmt: skip
"""Falls of an input per unit of weight lost (positive numbers), each with its 95 % CI."""

_NUMERIC = {
    "sbp": ("systolic_bp_mm_hg", "mm Hg"),
    "bmi": ("bmi_kg_m2", "kg/m2"),
    "hba1c": ("hba1c_percent", "%"),
    "weight": ("bmi_kg_m2", "kg"),
    "diet": ("weight_kg", "kcal/day"),
    "activity": ("weight_kg", "%"),
}
_SUFFIX = {
    "weight": ("kg",),
    "diet": ("kcal/day", "kcal/d", "kcal"),
    "activity": ("%",),
    "sbp": ("mmhg",),
    "bmi": ("kg/m2",),
    "hba1c": ("%",),
}
_FORMS = (
    "use quit_smoking, statin, sbp=-10, bmi=-2, weight=-5kg, hba1c=-0.5, diet=-500kcal or "
    "activity=+20%"
)


@dataclass(frozen=True, slots=True)
class Change:
    """One what-if change: ``kind`` (quit_smoking, statin, sbp, bmi, weight, hba1c, diet,
    activity) and ``delta`` in the kind's unit (mm Hg, kg/m2, kg, %, kcal/day, %)."""

    kind: str
    delta: float | None = None
    text: str = ""


def parse_changes(text: str) -> list[Change]:
    """Read ``quit_smoking,sbp=-10,statin,weight=-5kg,diet=-500kcal,activity=+20%``.

    >>> [c.kind for c in parse_changes("quit_smoking, sbp=-10 ,statin")]
    ['quit_smoking', 'sbp', 'statin']
    >>> parse_changes("sbp=-10")[0].delta
    -10.0
    >>> [(c.kind, c.delta) for c in parse_changes("diet=-500kcal,activity=+20%")]
    [('diet', -500.0), ('activity', 20.0)]
    """
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part in ("quit_smoking", "statin"):
            out.append(Change(part, None, part))
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in _NUMERIC:
            raise PreventionError(f"--whatif {part!r}: not a change; {_FORMS}")
        value = value.strip().lower().replace(" ", "")
        for suffix in _SUFFIX[key]:
            if value.endswith(suffix):
                value = value[: -len(suffix)]
                break
        try:
            delta = float(value)
        except ValueError as exc:
            raise PreventionError(f"--whatif {part!r}: {value!r} is not a number") from exc
        if not math.isfinite(delta):
            raise PreventionError(f"--whatif {part!r}: {value!r} is not a finite number")
        if key == "activity" and delta < -100.0:
            raise PreventionError(f"--whatif {part!r}: activity cannot fall by more than 100 %")
        out.append(Change(key, delta, part))
    if not out:
        raise PreventionError("--whatif: no change given")
    return out


_HORIZON = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|w|m|y)\s*$", re.IGNORECASE)
_DAYS_PER = {"d": 1.0, "w": 7.0, "m": 365.0 / 12.0, "y": 365.0}


def parse_horizon(text: str) -> float:
    """Days in ``"12m"``, ``"1y"``, ``"26w"`` or ``"180d"`` (a month is 365/12 days, a year 365).

    >>> parse_horizon("1y"), parse_horizon("6m"), parse_horizon("90d")
    (365.0, 182.5, 90.0)
    """
    match = _HORIZON.match(text)
    if match is None:
        raise PreventionError(f"--horizon {text!r}: not a duration; use e.g. 12m, 1y, 26w or 180d")
    days = float(match.group(1)) * _DAYS_PER[match.group(2).lower()]
    if not 1.0 <= days <= MAX_HORIZON_DAYS:
        raise PreventionError(
            f"--horizon {text!r}: must be between 1 day and {MAX_HORIZON_DAYS / 365:g} years"
        )
    return days


# --------------------------------------------------------------------- explained input changes


@dataclass(frozen=True, slots=True)
class InputChange:
    """One input a what-if row changed: ``before`` -> ``after`` (point estimate), ``low`` and
    ``high`` its values at the ends of the row's range (None when no range applies), ``via``
    the model or effect size that moved it, ``sources`` keys of :data:`SOURCES`."""

    input: str
    before: float | bool | str | None
    after: float | bool | str | None
    via: str
    sources: tuple[str, ...] = ()
    low: float | bool | None = None
    high: float | bool | None = None

    def text(self) -> str:
        """``bmi_kg_m2 25.9 -> 24.3 (via; keys)``."""
        rng = ""
        if isinstance(self.low, float) and isinstance(self.high, float):
            lo, hi = sorted((self.low, self.high))
            if _fmt(lo) != _fmt(hi):
                rng = f" [{_fmt(lo)} to {_fmt(hi)}]"
        keys = f"; {', '.join(self.sources)}" if self.sources else ""
        return f"{self.input} {_fmt(self.before)} -> {_fmt(self.after)}{rng} ({self.via}{keys})"


def _fmt(value: float | bool | str | None) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "?"
    return value if isinstance(value, str) else f"{value:.3g}"


def _set(d: DerivedInput, value: Any) -> DerivedInput:
    return dataclasses.replace(d, value=value, status="computed", detail=f"what-if: {value}")


@dataclass(frozen=True, slots=True)
class WeightProjection:
    """Weight at the horizon from the Hall 2011 model: at :data:`PAL_ASSUMED` and at the ends of
    :data:`PAL_RANGE` (kg), the baseline weight (kg) and the horizon (days)."""

    weight_kg: float
    baseline_kg: float
    low_pal_kg: float
    high_pal_kg: float
    horizon_days: float
    pal: float = PAL_ASSUMED


def project_weight(
    sex: Literal["male", "female"],
    age_y: float,
    height_m: float,
    weight_kg: float,
    *,
    intake_change_kcal_per_day: float = 0.0,
    activity_change_pct: float = 0.0,
    horizon_days: float = DEFAULT_HORIZON_DAYS,
) -> WeightProjection:
    """Weight at ``horizon_days`` after an intake and activity change, by the Hall 2011 model.

    The person starts in energy balance (the model's assumption) at the given weight; one batch
    of three parameter sets: PAL :data:`PAL_ASSUMED` and the ends of :data:`PAL_RANGE`.

    Raises
    ------
    medtwin.model.base.OutsidePopulationError
        Outside the model's population at the start (e.g. a child), or when the simulated BMI
        leaves it before the horizon (the message gives the day).
    medtwin.model.base.ModelError
        Other bad input (e.g. an intake that would be negative).

    Examples
    --------
    At PAL 1.55 (the bw package's reference case of this man, at PAL 1.5, is 76.26 kg at day 364,
    ``docs/models/body-weight.md``):

    >>> p = project_weight("male", 40, 1.80, 90, intake_change_kcal_per_day=-500)
    >>> round(p.weight_kg, 1), p.baseline_kg, p.horizon_days
    (76.5, 90.0, 365.0)
    """
    import numpy as np

    from medtwin.model import parse_scenario, simulate
    from medtwin.physiology.body_weight import (
        Hall2011BodyWeight,
        OutsidePopulationError,
        params_for,
        population_exit_day,
    )

    params = np.vstack(
        [params_for(sex, age_y, height_m, weight_kg, pal) for pal in (PAL_ASSUMED, *PAL_RANGE)]
    )
    events: list[dict[str, Any]] = []
    if intake_change_kcal_per_day:
        events.append(
            {"type": "diet", "t_d": 0, "intake_change_kcal_per_day": intake_change_kcal_per_day}
        )
    if activity_change_pct:
        events.append({"type": "activity", "t_d": 0, "activity_change_pct": activity_change_pct})
    result = simulate(
        Hall2011BodyWeight, params, parse_scenario(events), t_end=horizon_days, dt_out=1.0
    )
    exits = [day for day in population_exit_day(result) if day is not None]
    if exits:
        raise OutsidePopulationError(
            f"the simulated BMI leaves the population of {Hall2011BodyWeight.name} (BMI 16-60 "
            f"kg/m2) on day {min(exits):.0f}, before the horizon of {horizon_days:.0f} days"
        )
    weights = np.asarray(result.observables["weight_kg"])[:, -1]
    return WeightProjection(
        float(weights[0]), float(weight_kg), float(weights[1]), float(weights[2]), horizon_days
    )


# --------------------------------------------------------------------- applying one change

_Level = Literal["estimate", "low", "high"]
_LEVELS: tuple[_Level, ...] = ("estimate", "low", "high")


@dataclass(frozen=True, slots=True)
class _Applied:
    """A change applied: inputs per level (``low``/``high`` absent without a range), the input
    changes and notes."""

    inputs: Mapping[_Level, dict[str, DerivedInput]]
    changes: tuple[InputChange, ...]
    notes: tuple[str, ...] = ()

    @property
    def note(self) -> str:
        return "; ".join([*(c.text() for c in self.changes), *self.notes])

    @property
    def sources(self) -> tuple[str, ...]:
        """The changes' source keys, then any key cited in their text or the notes (a floor)."""
        keys = [k for c in self.changes for k in c.sources]
        said = " ".join([*(c.via for c in self.changes), *self.notes])
        keys.extend(k for k in SOURCES if re.search(rf"\b{k}\b", said))
        return tuple(dict.fromkeys(keys))


def _number(d: DerivedInput | None) -> float | None:
    if d is None or not d.usable or isinstance(d.value, bool | str):
        return None
    return float(d.value)  # type: ignore[arg-type]


def _height_m(derived: Mapping[str, DerivedInput], height_m: float | None) -> float | None:
    if height_m is not None:
        return height_m
    cm = _number(derived.get("height_cm"))
    return None if cm is None else cm / 100.0


def _weight_effects(
    derived: Mapping[str, DerivedInput], lost: Mapping[_Level, float], height_m: float
) -> tuple[dict[_Level, dict[str, DerivedInput]], list[InputChange], list[str]]:
    """SBP and HbA1c after losing ``lost[level]`` kg (> 0), per level, with the explanations."""
    out: dict[_Level, dict[str, DerivedInput]] = {lv: {} for lv in lost}
    changes: list[InputChange] = []
    notes: list[str] = []
    sbp = _number(derived.get("systolic_bp_mm_hg"))
    if sbp is not None:
        per_kg = EFFECTS["sbp_per_kg"]
        if sbp <= SBP_TARGET_MM_HG:
            notes.append(
                f"systolic pressure {sbp:.0f} mm Hg not lowered: already at or below "
                f"{SBP_TARGET_MM_HG:.0f} (sprint2015)"
            )
        else:
            after = {lv: max(sbp - per_kg.at(lv) * kg, SBP_TARGET_MM_HG) for lv, kg in lost.items()}
            for lv, v in after.items():
                out[lv]["systolic_bp_mm_hg"] = _set(derived["systolic_bp_mm_hg"], v)
            floor = " (floor 120, sprint2015)" if min(after.values()) == SBP_TARGET_MM_HG else ""
            changes.append(
                InputChange(
                    "systolic_bp_mm_hg",
                    sbp,
                    after["estimate"],
                    f"-{per_kg.estimate:g} (CI {per_kg.low:g}-{per_kg.high:g}) mm Hg per kg "
                    f"lost{floor}",
                    (per_kg.source,),
                    after.get("low"),
                    after.get("high"),
                )
            )
    hba1c = _number(derived.get("hba1c_percent"))
    diabetes = derived.get("diabetes")
    if hba1c is None:
        notes.append("HbA1c not in the record (or stale): its change with weight not computed")
    else:
        effect: EffectSize | None
        if diabetes is not None and diabetes.value is True:
            effect = EFFECTS["hba1c_per_bmi_t2d"]
        elif HBA1C_NDH_MIN_PERCENT <= hba1c < HBA1C_DIABETES_PERCENT:
            effect = EFFECTS["hba1c_per_bmi_ndh"]
        elif hba1c >= HBA1C_DIABETES_PERCENT:
            effect = None
            notes.append(
                f"HbA1c {hba1c:.1f} % unchanged: in the diabetes range without a recorded "
                "diabetes, so neither group of pidd2025 is known to apply"
            )
        else:
            effect = None
            notes.append(
                f"HbA1c {hba1c:.1f} % unchanged: normoglycaemia (below 6.0 %, nice_ph38), where "
                "the loss effect is about 0.2 mmol/mol per kg/m2 without its own CI (pidd2025): "
                "not applied"
            )
        if effect is not None and hba1c <= HBA1C_NDH_MIN_PERCENT:
            notes.append(
                f"HbA1c {hba1c:.1f} % not lowered: already at or below "
                f"{HBA1C_NDH_MIN_PERCENT:.1f} % (nice_ph38)"
            )
        elif effect is not None:
            after = {
                lv: max(hba1c - effect.at(lv) * kg / height_m**2, HBA1C_NDH_MIN_PERCENT)
                for lv, kg in lost.items()
            }
            for lv, v in after.items():
                out[lv]["hba1c_percent"] = _set(derived["hba1c_percent"], v)
            changes.append(
                InputChange(
                    "hba1c_percent",
                    hba1c,
                    after["estimate"],
                    f"-{effect.estimate:.3f} (CI {effect.low:.3f}-{effect.high:.3f}) % per "
                    f"kg/m2 lost, {effect.group}; floor {HBA1C_NDH_MIN_PERCENT:.1f} %, nice_ph38",
                    (effect.source, "ngsp_ifcc"),
                    after.get("low"),
                    after.get("high"),
                )
            )
    return out, changes, notes


def _weight_change(
    derived: Mapping[str, DerivedInput],
    dw: Mapping[_Level, float],
    height_m: float,
    via: str,
    sources: tuple[str, ...],
) -> _Applied | str:
    """Weight by ``dw[level]`` kg: weight, BMI, and the effects of a loss on SBP and HbA1c."""
    bmi = _number(derived.get("bmi_kg_m2"))
    weight = _number(derived.get("weight_kg"))
    if weight is None and bmi is not None:
        weight = bmi * height_m**2
    inputs: dict[_Level, dict[str, DerivedInput]] = {lv: dict(derived) for lv in dw}
    changes: list[InputChange] = []
    notes: list[str] = []
    if weight is not None:
        after = {lv: weight + d for lv, d in dw.items()}
        if "weight_kg" in derived:
            for lv, v in after.items():
                inputs[lv]["weight_kg"] = _set(derived["weight_kg"], v)
        changes.append(
            InputChange(
                "weight_kg",
                weight,
                after["estimate"],
                via,
                sources,
                after.get("low"),
                after.get("high"),
            )
        )
    if bmi is not None:
        after = {lv: bmi + d / height_m**2 for lv, d in dw.items()}
        if min(after.values()) < BMI_UNDERWEIGHT:
            return (
                f"BMI would fall to {min(after.values()):.1f}, below {BMI_UNDERWEIGHT} kg/m2 "
                "(WHO underweight, who2000)"
            )
        for lv, v in after.items():
            inputs[lv]["bmi_kg_m2"] = _set(derived["bmi_kg_m2"], v)
        changes.append(
            InputChange(
                "bmi_kg_m2",
                bmi,
                after["estimate"],
                f"weight / height {height_m:.2f} m squared",
                (),
                after.get("low"),
                after.get("high"),
            )
        )
    if all(d < 0 for d in dw.values()):
        effects, more, why = _weight_effects(derived, {lv: -d for lv, d in dw.items()}, height_m)
        for lv, new in effects.items():
            inputs[lv].update(new)
        changes.extend(more)
        notes.extend(why)
    elif any(d > 0 for d in dw.values()):
        notes.append("weight gain: the effect sizes (weight-loss trials) are not applied")
    return _Applied(inputs, tuple(changes), tuple(notes))


WEIGHT_CHANGES = frozenset({"weight", "bmi", "diet", "activity"})
"""The what-ifs that change body weight: refused for a patient the record shows pregnant (and
so is starting a statin)."""


def _same(delta: float) -> dict[_Level, float]:
    """A weight change without a range of its own (the effect sizes still have theirs)."""
    return {"estimate": delta, "low": delta, "high": delta}


def _no_loss_below_normal(bmi: float | None) -> str | None:
    if bmi is not None and bmi < BMI_NORMAL_MAX:
        return f"BMI {bmi:.1f} is already below {BMI_NORMAL_MAX:.0f} kg/m2 (WHO normal range)"
    return None


def _simulated(
    change: Change,
    derived: Mapping[str, DerivedInput],
    height_m: float | None,
    horizon_days: float,
) -> _Applied | str:
    """``diet``/``activity`` through the Hall 2011 model, then :func:`_weight_change`."""
    from medtwin.model.base import ModelError

    delta = float(change.delta or 0.0)
    losing = (change.kind == "diet" and delta < 0) or (change.kind == "activity" and delta > 0)
    if losing and (why := _no_loss_below_normal(_number(derived.get("bmi_kg_m2")))):
        return why
    age, sex = _number(derived.get("age_years")), derived.get("sex")
    if age is None or sex is None or not sex.usable or sex.value not in ("male", "female"):
        return "the body-weight model needs age and sex (male or female) from the record"
    if height_m is None:
        return "no valid height for the body-weight model"
    weight = _number(derived.get("weight_kg"))
    bmi = _number(derived.get("bmi_kg_m2"))
    if weight is None and bmi is not None:
        weight = bmi * height_m**2
    if weight is None:
        return "no valid weight (nor BMI) for the body-weight model"
    kw = (
        {"intake_change_kcal_per_day": delta}
        if change.kind == "diet"
        else {"activity_change_pct": delta}
    )
    try:
        p = project_weight(
            sex.value,  # type: ignore[arg-type]
            age,
            height_m,
            weight,
            horizon_days=horizon_days,
            **kw,
        )
    except ModelError as exc:
        return f"hall_2011_body_weight refuses: {exc}"
    lo, hi = sorted((p.low_pal_kg - weight, p.high_pal_kg - weight), key=abs)
    via = (
        f"hall_2011_body_weight, {horizon_days:g} d, PAL {p.pal:.2f} assumed "
        f"(range {PAL_RANGE[0]:.2f}-{PAL_RANGE[1]:.2f})"
    )
    return _weight_change(
        derived,
        {"estimate": p.weight_kg - weight, "low": lo, "high": hi},
        height_m,
        via,
        ("hall2011", "fao2004"),
    )


def _apply(
    change: Change,
    derived: Mapping[str, DerivedInput],
    *,
    height_m: float | None = None,
    horizon_days: float = DEFAULT_HORIZON_DAYS,
) -> _Applied | str:
    """The change applied, or the reason it does not apply."""
    new = dict(derived)
    if change.kind == "quit_smoking":
        d = derived["smoker"]
        if not d.usable:
            return f"smoking status unknown ({d.reason()})"
        if d.value is not True:
            return "not a current smoker"
        new["smoker"] = _set(d, False)
        changed = [InputChange("smoker", True, False, "quit")]
        # QRISK3's group: a current one (also one the record leaves open among the current
        # groups: light to heavy) becomes ex-smoker
        group = derived.get("smoking_category")
        current = {"light", "moderate", "heavy"}
        if group is not None and (
            (group.usable and group.value in current)
            or (not group.usable and group.alternatives and set(group.alternatives) <= current)
        ):
            new["smoking_category"] = _set(group, "ex_smoker")
            before = group.value if group.usable else " or ".join(map(str, group.alternatives))
            changed.append(InputChange("smoking_category", before, "ex_smoker", "quit"))
        return _Applied({"estimate": new}, tuple(changed))
    if change.kind == "statin":
        d = derived["statin"]
        if d.value is True:
            return "already on a statin"
        pregnant = derived.get("pregnant")
        if pregnant is not None and pregnant.value is True:
            return (
                f"pregnant ({pregnant.detail}): starting a statin is not a what-if for "
                "pregnancy (most pregnant patients should stop statins: FDA Drug Safety "
                "Communication, 20 July 2021, which removed the contraindication but kept that "
                "advice; its benefit is long-term, its risk to the pregnancy not known)"
            )
        new["statin"] = _set(d, True)
        flag = InputChange("statin", False, True, "start a moderate-intensity statin")
        ldl, tc = _number(derived.get("ldl_mg_dl")), _number(derived.get("total_cholesterol_mg_dl"))
        if ldl is None or tc is None:
            return _Applied({"estimate": new}, (flag,), ("no valid LDL: cholesterol unchanged",))
        levels: dict[_Level, float] = {
            "estimate": STATIN_LDL_REDUCTION,
            "low": STATIN_LDL_REDUCTION_RANGE[0],
            "high": STATIN_LDL_REDUCTION_RANGE[1],
        }
        # the total/HDL ratio (QRISK3) follows the total cholesterol, HDL unchanged
        hdl = _number(derived.get("hdl_mg_dl"))
        ratio = derived.get("cholesterol_hdl_ratio")
        follows = hdl is not None and hdl > 0 and ratio is not None and ratio.usable
        inputs: dict[_Level, dict[str, DerivedInput]] = {}
        for lv, fraction in levels.items():
            row = dict(new)
            row["total_cholesterol_mg_dl"] = _set(
                derived["total_cholesterol_mg_dl"], tc - fraction * ldl
            )
            if follows:
                row["cholesterol_hdl_ratio"] = _set(ratio, (tc - fraction * ldl) / hdl)  # type: ignore[arg-type,operator]
            inputs[lv] = row
        drop = STATIN_LDL_REDUCTION * ldl
        chol = InputChange(
            "total_cholesterol_mg_dl",
            tc,
            tc - drop,
            f"total cholesterol -{drop:.0f} mg/dL = 30 % of LDL {ldl:.0f}, range 30-49 %",
            ("grundy2018",),
            tc - levels["low"] * ldl,
            tc - levels["high"] * ldl,
        )
        if not follows:
            return _Applied(inputs, (flag, chol))
        assert hdl is not None
        ratio_change = InputChange(
            "cholesterol_hdl_ratio",
            tc / hdl,
            (tc - drop) / hdl,
            f"total cholesterol / HDL {hdl:.0f} mg/dL (unchanged)",
            (),
            (tc - levels["low"] * ldl) / hdl,
            (tc - levels["high"] * ldl) / hdl,
        )
        return _Applied(inputs, (flag, chol, ratio_change))
    height = _height_m(derived, height_m)
    pregnant = derived.get("pregnant")
    if change.kind in WEIGHT_CHANGES and pregnant is not None and pregnant.value is True:
        return (
            f"pregnant ({pregnant.detail}): weight, diet and activity changes are not what-ifs "
            "for pregnancy (weight gain in pregnancy is expected; the body weight model and the "
            "weight-loss trials describe people who are not pregnant)"
        )
    if change.kind in ("diet", "activity"):
        return _simulated(change, derived, height, horizon_days)
    name = _NUMERIC[change.kind][0]
    d = derived[name]
    if not d.usable:
        return f"{name} unknown ({d.reason()})"
    delta = float(change.delta or 0.0)
    value = float(d.value)  # type: ignore[arg-type]
    if change.kind == "sbp" and delta < 0 and value < SBP_TARGET_MM_HG:
        return (
            f"systolic pressure {value:.0f} mm Hg is already below {SBP_TARGET_MM_HG:.0f} "
            "(the intensive target, SPRINT 2015)"
        )
    if change.kind in ("bmi", "weight") and delta < 0 and (why := _no_loss_below_normal(value)):
        return why
    if change.kind == "weight":
        if height is None:
            return "no valid height to convert a weight change to BMI"
        return _weight_change(derived, _same(delta), height, "as given", ())
    if change.kind == "bmi":
        if height is not None:
            dw = delta * height**2
            return _weight_change(derived, _same(dw), height, f"BMI {delta:+g} kg/m2", ())
        new[name] = _set(d, value + delta)
        return _Applied(
            {"estimate": new},
            (InputChange(name, value, value + delta, "as given"),),
            ("no valid height: weight change unknown, its effects not applied",),
        )
    new[name] = _set(d, value + delta)
    return _Applied({"estimate": new}, (InputChange(name, value, value + delta, "as given"),))


def apply_change(
    change: Change,
    derived: Mapping[str, DerivedInput],
    *,
    height_m: float | None = None,
    horizon_days: float = DEFAULT_HORIZON_DAYS,
) -> tuple[dict[str, DerivedInput] | None, str]:
    """The inputs with ``change`` applied (point estimate), and a note saying what changed and
    through what; ``None`` and the reason when it does not apply."""
    applied = _apply(change, derived, height_m=height_m, horizon_days=horizon_days)
    if isinstance(applied, str):
        return None, applied
    return applied.inputs["estimate"], applied.note


# --------------------------------------------------------------------- ranking


@dataclass(frozen=True, slots=True)
class WhatIfRow:
    """One change for one score: baseline, new value and absolute risk reduction (points of %).

    ``arr_low``/``arr_high``: the ARR at the ends of the row's range (None without one);
    ``inputs``: what changed and through what; ``sources``: keys of :data:`SOURCES`;
    ``notes``: what the change left alone and why (e.g. a pressure already at target). ``note``
    says all of it in one line. For a baseline that is a range (an input the record leaves
    open, :func:`medtwin.risk.from_record.range_outcome`), ``baseline``/``baseline_high`` and
    ``value``/``value_high`` are its ends and the risk's with the change, ``arr`` the smallest
    reduction over what the record leaves possible, and ``arr_low``/``arr_high`` span them all.
    """

    score: str
    change: str
    note: str
    baseline: float | None
    value: float | None
    arr: float | None
    rank: int | None
    arr_low: float | None = None
    arr_high: float | None = None
    inputs: tuple[InputChange, ...] = ()
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    baseline_high: float | None = None
    value_high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dataclasses.asdict(self)


_FOLLOWS = frozenset({"smoking_category", "cholesterol_hdl_ratio"})
"""Inputs a change moves only because another changed input moves them (QRISK3's smoking group
with ``smoker``, its ratio with total cholesterol): shown only for the scores that read them."""


def _shown(changes: tuple[InputChange, ...], score: Score) -> tuple[InputChange, ...]:
    declared = {i.name for i in score.inputs}
    return tuple(c for c in changes if c.input not in _FOLLOWS or c.input in declared)


def rank_changes(
    report: RiskReport,
    changes: Sequence[Change],
    *,
    height_m: float | None = None,
    horizon_days: float = DEFAULT_HORIZON_DAYS,
) -> list[WhatIfRow]:
    """Each change alone on every computed percent-risk score of ``report``, ranked by ARR.

    Each change is applied once (a ``diet``/``activity`` change runs the body-weight model
    once, for all scores); rows with a range give the ARR at both of its ends.
    """
    from medtwin.risk.from_record import (
        choices_text,
        score_outcome,
        settlements,
        unsettled_inputs,
    )
    from medtwin.risk.registry import get

    applied = [
        _apply(c, report.inputs, height_m=height_m, horizon_days=horizon_days) for c in changes
    ]
    rows: list[WhatIfRow] = []
    for base in report.scores:
        if base.unit != "%" or base.status not in ("computed", "range"):
            continue
        score = get(base.name)
        # a range: the what-if runs on each value the record leaves possible for its open inputs
        open_names = unsettled_inputs(score, report.inputs) if base.status == "range" else []
        settled = settlements(report.inputs, open_names)
        bases = [
            score_outcome(score, {**report.inputs, **s}, population=False).value for s in settled
        ]
        if any(b is None for b in bases):
            continue
        b_low, b_high = min(bases), max(bases)  # type: ignore[type-var]
        over = (
            ["over what the record leaves possible: " + "; ".join(
                f"{n} {choices_text(report.inputs[n].alternatives)}"
                for n in open_names
            )]
            if open_names else []
        )  # fmt: skip
        scored: list[WhatIfRow] = []
        for change, a in zip(changes, applied, strict=True):
            if isinstance(a, str):
                scored.append(
                    WhatIfRow(
                        base.name, change.text, a, b_low, None, None, None,
                        baseline_high=b_high if open_names else None,
                    )
                )  # fmt: skip
                continue
            estimates: list[float] = []
            arrs: list[float] = []
            message = ""
            for s, b in zip(settled, bases, strict=True):
                for lv, inputs in a.inputs.items():
                    # the baseline was computed, so the record is inside the score's population;
                    # a change (a statin started) does not take it out. An open input the
                    # change itself sets keeps the change's value.
                    keep = {n: d for n, d in s.items() if inputs[n] is report.inputs[n]}
                    out = score_outcome(score, {**inputs, **keep}, population=False)
                    if out.value is None:
                        message = message or out.message
                        continue
                    arrs.append(b - out.value)  # type: ignore[operator]
                    if lv == "estimate":
                        estimates.append(out.value)
            if len(estimates) < len(settled):
                scored.append(
                    WhatIfRow(
                        base.name, change.text, f"{a.note}; {message}", b_low, None, None, None,
                        inputs=_shown(a.changes, score), sources=a.sources,
                        baseline_high=b_high if open_names else None,
                    )
                )  # fmt: skip
                continue
            point_arrs = [b - v for b, v in zip(bases, estimates, strict=True)]  # type: ignore[operator]
            arr = min(point_arrs)  # whatever the open inputs are
            lo: float | None = min(arrs)
            hi: float | None = max(arrs)
            if hi - lo < 1e-12:  # type: ignore[operator]
                lo = hi = None  # no range: nothing uncertain moved this score
            scored.append(
                WhatIfRow(
                    base.name,
                    change.text,
                    "; ".join([a.note, *over]) if over else a.note,
                    b_low,
                    min(estimates),
                    arr,
                    None,
                    lo,
                    hi,
                    _shown(a.changes, score),
                    a.sources,
                    (*a.notes, *over),
                    b_high if open_names else None,
                    max(estimates) if open_names else None,
                )
            )
        ranked = sorted((r for r in scored if r.arr is not None), key=lambda r: -(r.arr or 0.0))
        for i, r in enumerate(ranked, 1):
            rows.append(dataclasses.replace(r, rank=i))
        rows.extend(r for r in scored if r.arr is None)
    return rows


def format_plan(rows: Sequence[WhatIfRow], *, sources: bool = True) -> list[str]:
    """Printable lines: per score, the changes by absolute risk reduction, each explained (the
    inputs it changed, by how much, through what), then the sources cited."""
    lines = [
        "What-if (each change alone; ARR = absolute risk reduction, percentage points; "
        "[range] = ends of the effect sizes' 95 % CI / assumptions)"
    ]
    current = None
    cited: list[str] = []
    for r in rows:
        if r.score != current:
            current = r.score
            now = f"{r.baseline:.1f}" + (
                f" to {r.baseline_high:.1f}" if r.baseline_high is not None else ""
            )
            lines.append(f"  {r.score} (now {now} %)")
        cited.extend(r.sources)
        if r.arr is None:
            lines.append(f"    -  {r.change:<16} not applicable: {r.note}")
            continue
        rng = ""
        if r.arr_low is not None and r.arr_high is not None:
            rng = f" [{r.arr_low:+.1f} to {r.arr_high:+.1f}]"
        value = f"{r.value:.1f}" + (f" to {r.value_high:.1f}" if r.value_high is not None else "")
        lines.append(f"    {r.rank}. {r.change:<16} {value} %  ARR {r.arr:+.1f}{rng}")
        lines.extend(f"         {c.text()}" for c in r.inputs)
        lines.extend(f"         {n}" for n in r.notes)
    keys = list(dict.fromkeys(cited))
    if sources and keys:
        lines.append("  Sources")
        lines.extend(f"    {k}: {SOURCES[k]}" for k in keys)
    return lines
