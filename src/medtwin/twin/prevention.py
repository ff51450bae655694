"""Prevention what-if: recompute the risk scores with one changed input, rank by risk reduction.

``medtwin risk PATIENT --whatif quit_smoking,sbp=-10,statin`` derives the inputs from the record
(:mod:`medtwin.risk.inputs`), applies each change **alone** to a copy of them, recomputes every
score of the report whose value is a risk in percent, and ranks the changes by the absolute risk
reduction (ARR, percentage points: baseline risk minus risk with the change) of each score.

What a change does (each cited; a change that does not apply to this patient says why):

* ``quit_smoking``: ``smoker`` becomes ``False``. Only for a current smoker. The equations give the
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
  the lower bound is used, and the LDL fall is carried to total cholesterol one for one (statins
  lower LDL-C; HDL-C changes little). Without a valid LDL only the ``statin`` flag changes, and the
  row says so. Only for a patient not on a statin.
* ``bmi=D``: BMI changes by ``D`` kg/m2; ``weight=Dkg`` converts a weight change to BMI with the
  recorded height (``weight=-5kg``). Losing weight is not offered below a BMI of 25 kg/m2, the upper
  limit of the WHO normal range (WHO Technical Report Series 894, 2000).
* ``hba1c=D``: HbA1c changes by ``D`` percentage points.

The physiological twin's simulated effect of a change (e.g. weight loss from an energy-balance model
lowering BP and HbA1c) is not used yet: each change moves only the inputs named above.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medtwin.risk.from_record import RiskReport
    from medtwin.risk.inputs import DerivedInput

__all__ = [
    "STATIN_LDL_REDUCTION",
    "Change",
    "PreventionError",
    "WhatIfRow",
    "apply_change",
    "format_plan",
    "parse_changes",
    "rank_changes",
]

STATIN_LDL_REDUCTION = 0.30
"""Fractional LDL-C reduction of a moderate-intensity statin, the lower bound of 30-49 %
(Grundy et al. 2018 AHA/ACC cholesterol guideline, Table 3)."""

_NUMERIC = {
    "sbp": ("systolic_bp_mm_hg", "mm Hg"),
    "bmi": ("bmi_kg_m2", "kg/m2"),
    "hba1c": ("hba1c_percent", "%"),
    "weight": ("bmi_kg_m2", "kg"),
}


class PreventionError(ValueError):
    """A --whatif change that cannot be read; the message names it and the accepted forms."""


@dataclass(frozen=True, slots=True)
class Change:
    """One what-if change: ``kind`` (quit_smoking, statin, sbp, bmi, weight, hba1c), ``delta``."""

    kind: str
    delta: float | None = None
    text: str = ""


def parse_changes(text: str) -> list[Change]:
    """Read ``quit_smoking,sbp=-10,statin,weight=-5kg``.

    >>> [c.kind for c in parse_changes("quit_smoking, sbp=-10 ,statin")]
    ['quit_smoking', 'sbp', 'statin']
    >>> parse_changes("sbp=-10")[0].delta
    -10.0
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
            raise PreventionError(
                f"--whatif {part!r}: not a change; use quit_smoking, statin, sbp=-10, bmi=-2, "
                "weight=-5kg or hba1c=-0.5"
            )
        value = value.strip().lower()
        if key == "weight" and value.endswith("kg"):
            value = value[:-2]
        try:
            delta = float(value)
        except ValueError as exc:
            raise PreventionError(f"--whatif {part!r}: {value!r} is not a number") from exc
        out.append(Change(key, delta, part))
    if not out:
        raise PreventionError("--whatif: no change given")
    return out


def _set(d: DerivedInput, value: Any) -> DerivedInput:
    return dataclasses.replace(d, value=value, status="computed", detail=f"what-if: {value}")


SBP_TARGET_MM_HG = 120.0
"""Below this systolic pressure, lowering it is not offered (SPRINT 2015 intensive target)."""
BMI_NORMAL_MAX = 25.0
"""Below this BMI, weight loss is not offered (WHO TRS 894, 2000: normal range 18.5-24.9)."""


def apply_change(
    change: Change, derived: Mapping[str, DerivedInput], *, height_m: float | None = None
) -> tuple[dict[str, DerivedInput] | None, str]:
    """The inputs with ``change`` applied, and a note; ``None`` and the reason when it does not apply."""
    new = dict(derived)
    if change.kind == "quit_smoking":
        d = derived["smoker"]
        if not d.usable:
            return None, f"smoking status unknown ({d.reason()})"
        if d.value is not True:
            return None, "not a current smoker"
        new["smoker"] = _set(d, False)
        return new, "smoker -> no"
    if change.kind == "statin":
        d = derived["statin"]
        if d.value is True:
            return None, "already on a statin"
        new["statin"] = _set(d, True)
        ldl, tc = derived.get("ldl_mg_dl"), derived["total_cholesterol_mg_dl"]
        if ldl is not None and ldl.usable and tc.usable:
            drop = STATIN_LDL_REDUCTION * float(ldl.value)  # type: ignore[arg-type]
            new["total_cholesterol_mg_dl"] = _set(tc, float(tc.value) - drop)  # type: ignore[arg-type]
            return new, f"statin -> yes, total cholesterol -{drop:.0f} mg/dL (30 % of LDL)"
        return new, "statin -> yes (no valid LDL: cholesterol unchanged)"
    name = _NUMERIC[change.kind][0]
    d = derived[name]
    if not d.usable:
        return None, f"{name} unknown ({d.reason()})"
    delta = float(change.delta or 0.0)
    value = float(d.value)  # type: ignore[arg-type]
    if change.kind == "sbp" and delta < 0 and value < SBP_TARGET_MM_HG:
        return None, (
            f"systolic pressure {value:.0f} mm Hg is already below {SBP_TARGET_MM_HG:.0f} "
            "(the intensive target, SPRINT 2015)"
        )
    if (
        change.kind in {"bmi", "weight"}
        and delta < 0
        and name == "bmi_kg_m2"
        and value < BMI_NORMAL_MAX
    ):
        return (
            None,
            f"BMI {value:.1f} is already below {BMI_NORMAL_MAX:.0f} kg/m2 (WHO normal range)",
        )
    if change.kind == "weight":
        height = derived.get("height_cm")
        if height_m is None and height is not None and height.usable:
            height_m = float(height.value) / 100.0  # type: ignore[arg-type]
        if height_m is None:
            return None, "no valid height to convert a weight change to BMI"
        delta = delta / (height_m * height_m)
    new[name] = _set(d, float(d.value) + delta)  # type: ignore[arg-type]
    return new, f"{name} {float(d.value):.3g} -> {float(d.value) + delta:.3g}"  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class WhatIfRow:
    """One change for one score: baseline, new value and absolute risk reduction (points of %)."""

    score: str
    change: str
    note: str
    baseline: float | None
    value: float | None
    arr: float | None
    rank: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dataclasses.asdict(self)


def rank_changes(
    report: RiskReport, changes: Sequence[Change], *, height_m: float | None = None
) -> list[WhatIfRow]:
    """Each change alone on every computed percent-risk score of ``report``, ranked by ARR."""
    from medtwin.risk.from_record import score_outcome
    from medtwin.risk.registry import get

    rows: list[WhatIfRow] = []
    for base in report.scores:
        if base.status != "computed" or base.unit != "%" or base.value is None:
            continue
        score = get(base.name)
        scored: list[WhatIfRow] = []
        for change in changes:
            new, note = apply_change(change, report.inputs, height_m=height_m)
            if new is None:
                scored.append(WhatIfRow(base.name, change.text, note, base.value, None, None, None))
                continue
            out = score_outcome(score, new)
            if out.value is None:
                scored.append(
                    WhatIfRow(
                        base.name,
                        change.text,
                        f"{note}; {out.message}",
                        base.value,
                        None,
                        None,
                        None,
                    )
                )
                continue
            arr = base.value - out.value
            scored.append(WhatIfRow(base.name, change.text, note, base.value, out.value, arr, None))
        ranked = sorted((r for r in scored if r.arr is not None), key=lambda r: -(r.arr or 0.0))
        for i, r in enumerate(ranked, 1):
            rows.append(dataclasses.replace(r, rank=i))
        rows.extend(r for r in scored if r.arr is None)
    return rows


def format_plan(rows: Sequence[WhatIfRow]) -> list[str]:
    """Printable lines: per score, the changes by absolute risk reduction."""
    lines = ["What-if (each change alone; ARR = absolute risk reduction, percentage points)"]
    current = None
    for r in rows:
        if r.score != current:
            current = r.score
            lines.append(f"  {r.score} (now {r.baseline:.1f} %)")
        if r.arr is None:
            lines.append(f"    -  {r.change:<16} not applicable: {r.note}")
        else:
            lines.append(
                f"    {r.rank}. {r.change:<16} {r.value:.1f} %  ARR {r.arr:+.1f}  ({r.note})"
            )
    return lines
