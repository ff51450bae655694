"""Glycaemic summary of a glucose trace: mean, range, time in ranges and GMI.

- Time in range 70-180 mg/dL, below 70 mg/dL (level 1 and 2 together) and below 54 mg/dL,
  above 180 mg/dL: Battelino T et al. Clinical targets for continuous glucose monitoring data
  interpretation: recommendations from the International Consensus on Time in Range.
  Diabetes Care 2019;42(8):1593-1603 (Table 2: the ranges and targets).
- Glucose management indicator: Bergenstal RM et al. Glucose Management Indicator (GMI): a new
  term for estimating A1C from continuous glucose monitoring. Diabetes Care
  2018;41(11):2275-2280: GMI (%) = 3.31 + 0.02392 x mean glucose (mg/dL).

Samples are taken as equally spaced (each one stands for the same time), as in CGM reports.

:func:`cgm_metrics` is the standardised CGM report of a patient's own readings (the core
metrics of Battelino et al. 2019, Table 1, with the targets of its Table 2): data sufficiency,
mean glucose, GMI, the coefficient of variation and the time below, in and above range at
both levels, each reading standing for the time until the next (at most 15 minutes), so that
a Libre's scans, clustered around meals, do not outweigh its 15-minute history.

>>> s = glycemic_summary(np.array([60.0, 100.0, 150.0, 200.0]))
>>> s["time_in_range_70_180_pct"], s["time_below_70_pct"], s["gmi_pct"]
(50.0, 25.0, 6.4)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from medtwin.model.base import FloatArray

__all__ = [
    "AGP_PERCENTILES",
    "CGM_TARGETS",
    "CGM_TARGET_SETS",
    "CgmTargets",
    "agp_profile",
    "cgm_metrics",
    "glycemic_summary",
    "gmi_pct",
    "write_agp_html",
]

AGP_PERCENTILES = (5, 25, 50, 75, 95)
"""The ambulatory glucose profile's curves: the median, the interquartile range and the 5th
to 95th percentile over a modal day (Johnson ML, Martens TW, Criego AB, Carlson AL, Simonson
GD, Bergenstal RM. Utilizing the ambulatory glucose profile to standardize and implement
continuous glucose monitoring in clinical practice. Diabetes Technol Ther 2019;21(S2); the
profile of Mazze RS, Lucido D, Langer O, Hartmann K, Rodbard D. Ambulatory glucose profile:
representation of verified self-monitored blood glucose data. Diabetes Care
1987;10(1):111-117)."""


@dataclass(frozen=True, slots=True)
class CgmTargets:
    """A group's targets for the CGM metrics (Battelino et al. 2019): the glucose range its time
    in range is counted over (``low``-``high`` mg/dL), and each metric's target as ``(operator,
    limit)`` on the metric's key in :func:`cgm_metrics`' output."""

    name: str
    label: str
    low: float
    high: float
    targets: Mapping[str, tuple[str, float]]
    note: str = ""


_SUFFICIENCY_AND_CV: dict[str, tuple[str, float]] = {
    "active_pct": (">=", 70.0),
    "cv_pct": ("<=", 36.0),
}
"""Table 1 of Battelino 2019 for every group: data sufficiency (at least 70 % of 14 days with
data) and glycaemic variability (%CV target <= 36 %)."""

CGM_TARGET_SETS: dict[str, CgmTargets] = {
    "adult": CgmTargets(
        "adult",
        "most adults with type 1 or type 2 diabetes",
        70.0,
        180.0,
        {
            **_SUFFICIENCY_AND_CV,
            "time_in_range_70_180_pct": (">", 70.0),
            "time_below_70_pct": ("<", 4.0),
            "time_below_54_pct": ("<", 1.0),
            "time_above_180_pct": ("<", 25.0),
            "time_above_250_pct": ("<", 5.0),
        },
        "under 25 with an HbA1c goal of 7.5 %, the consensus sets time in range to about 60 %",
    ),
    "older": CgmTargets(
        "older",
        "older or high-risk adults with type 1 or type 2 diabetes",
        70.0,
        180.0,
        {
            **_SUFFICIENCY_AND_CV,
            "time_in_range_70_180_pct": (">", 50.0),
            "time_below_70_pct": ("<", 1.0),
            "time_above_250_pct": ("<", 10.0),
        },
        "at higher risk of hypoglycaemia (older age, long duration of diabetes or of insulin "
        "therapy, impaired awareness of hypoglycaemia ...): fewer lows matter more than more "
        "time in range",
    ),
    "pregnancy-type1": CgmTargets(
        "pregnancy-type1",
        "pregnancy with type 1 diabetes",
        63.0,
        140.0,
        {
            **_SUFFICIENCY_AND_CV,
            "time_in_range_63_140_pct": (">", 70.0),
            "time_below_63_pct": ("<", 4.0),
            "time_below_54_pct": ("<", 1.0),
            "time_above_140_pct": ("<", 25.0),
        },
        "the consensus bases these percentages on limited evidence",
    ),
    "pregnancy-other": CgmTargets(
        "pregnancy-other",
        "pregnancy with type 2 or gestational diabetes",
        63.0,
        140.0,
        dict(_SUFFICIENCY_AND_CV),
        "the consensus sets no time-in-range targets for type 2 or gestational diabetes in "
        "pregnancy (very limited evidence)",
    ),
}
"""The target groups of the International Consensus on Time in Range (Battelino T, Danne T,
Bergenstal RM, et al. Diabetes Care 2019;42(8):1593-1603: Table 2 and Figure 3, the ranges and
targets by group; Table 1, data sufficiency and %CV):

- ``adult``: most adults with type 1 or type 2 diabetes: time in range 70-180 mg/dL > 70 %,
  below 70 < 4 % and below 54 < 1 %, above 180 < 25 % and above 250 < 5 % (for people under 25
  with an HbA1c goal of 7.5 %, time in range about 60 %: a note, not applied);
- ``older``: older or high-risk adults: time in range 70-180 > 50 %, below 70 < 1 %, above 250
  < 10 %;
- ``pregnancy-type1``: pregnancy with type 1 diabetes: time in range 63-140 mg/dL > 70 %, below
  63 < 4 % and below 54 < 1 %, above 140 < 25 % (the consensus: on limited evidence);
- ``pregnancy-other``: pregnancy with type 2 or gestational diabetes: the 63-140 mg/dL ranges,
  no targets for them (the consensus gives none: very limited evidence).

Data sufficiency (at least 70 % of the time with data) and the CV (<= 36 %) apply to every
group."""

CGM_TARGETS: Mapping[str, tuple[str, float]] = CGM_TARGET_SETS["adult"].targets
"""The targets for most adults (:data:`CGM_TARGET_SETS` ``["adult"]``)."""


def gmi_pct(mean_glucose_mg_dl: float) -> float:
    """GMI (%) = 3.31 + 0.02392 x mean glucose (mg/dL) (Bergenstal et al. 2018, eq in Results).

    >>> round(gmi_pct(154.0), 2)
    6.99
    """
    return 3.31 + 0.02392 * mean_glucose_mg_dl


def glycemic_summary(glucose_mg_dl: FloatArray) -> dict[str, Any]:
    """Mean, min, max, time in ranges (% of samples, Battelino et al. 2019) and GMI (%)."""
    g = np.asarray(glucose_mg_dl, dtype=np.float64)
    g = g[np.isfinite(g)]
    if g.size == 0:
        raise ValueError("no glucose values to summarise")
    mean = float(g.mean())

    def pct(mask: Any) -> float:
        return round(100.0 * float(np.mean(mask)), 1)

    return {
        "mean_mg_dl": round(mean, 1),
        "min_mg_dl": round(float(g.min()), 1),
        "max_mg_dl": round(float(g.max()), 1),
        "time_in_range_70_180_pct": pct((g >= 70.0) & (g <= 180.0)),
        "time_below_70_pct": pct(g < 70.0),
        "time_below_54_pct": pct(g < 54.0),
        "time_above_180_pct": pct(g > 180.0),
        "gmi_pct": round(gmi_pct(mean), 1),
        "samples": int(g.size),
    }


def cgm_metrics(
    times_s: FloatArray,
    glucose_mg_dl: FloatArray,
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    max_gap_s: float = 900.0,
    bounds: int = 0,
    targets: str = "adult",
) -> dict[str, Any]:
    """The standardised CGM metrics of readings ``glucose_mg_dl`` at ``times_s`` (epoch seconds)
    over ``[start_s, end_s]`` (default: the first reading to the end of the last one).

    Each reading stands for the time until the next one when that is at most ``max_gap_s``
    (15 min, the interval of a Libre's history); before a longer gap (time without data) and at
    the end, for the typical interval (the median time between readings, within the same cap). The time in ranges (Battelino 2019, Table
    2: below 54, 54-69, 70-180, 181-250, above 250 mg/dL), the mean and the SD are weighted by
    that time; on readings at a fixed interval they are the plain per-reading figures of CGM
    software (checked against iglu, tests). ``active_pct`` is the share of the window with data
    (data sufficiency: at least 70 % of 14 days), the CV is the SD over the mean (target <= 36
    %), GMI (%) = 3.31 + 0.02392 x mean (Bergenstal 2018). The Glycemia Risk Index (Klonoff
    DC, Wang J, Rodbard D, et al. J Diabetes Sci Technol 2023;17(5):1226-1242) is GRI = 3.0 x
    VLow + 2.4 x Low + 1.6 x VHigh + 0.8 x High (the % time below 54, 54-69, above 250 and
    181-250), at most 100, with its hypoglycaemia (VLow + 0.8 Low) and hyperglycaemia (VHigh
    + 0.5 High) components and its zone, A (0-20) to E (81-100). The pregnancy ranges (below
    63, 63-140, above 140 mg/dL) are reported too. ``targets`` names the group whose targets
    are checked (:data:`CGM_TARGET_SETS`: ``adult``, ``older``, ``pregnancy-type1``,
    ``pregnancy-other``); ``targets_group`` says which. ``bounds`` readings (a sensor's LOW
    and HIGH) are at their bound: they fall in the right range (LOW below 54, HIGH above 250),
    and the mean and SD understate the extremes a little; the count is reported.

    >>> t = np.arange(0.0, 86400.0, 300.0)
    >>> m = cgm_metrics(t, np.where(t < 43200.0, 100.0, 200.0))
    >>> m["time_in_range_70_180_pct"], m["time_above_180_pct"], m["mean_mg_dl"], m["active_pct"]
    (50.0, 50.0, 150.0, 100.0)
    """
    group = CGM_TARGET_SETS.get(targets)
    if group is None:
        raise ValueError(f"targets: one of {', '.join(CGM_TARGET_SETS)}, got {targets!r}")
    t = np.asarray(times_s, dtype=np.float64)
    g = np.asarray(glucose_mg_dl, dtype=np.float64)
    keep = np.isfinite(t) & np.isfinite(g)
    t, g = t[keep], g[keep]
    order = np.argsort(t, kind="stable")
    t, g = t[order], g[order]
    if t.size < 2:
        raise ValueError(f"{t.size} glucose reading(s): a CGM report needs at least 2")
    gaps = np.diff(t)
    positive = gaps[gaps > 0]
    typical = min(float(np.median(positive)) if positive.size else max_gap_s, max_gap_s)
    # a reading stands for the time to the next one; before a gap (or at the end) for the
    # typical interval: on readings at a fixed interval every weight is that interval
    w = np.append(np.where(gaps <= max_gap_s, gaps, typical), typical)
    begin = float(t[0]) if start_s is None else float(start_s)
    finish = float(t[-1] + w[-1]) if end_s is None else float(end_s)
    covered = float(w.sum())
    span = max(finish - begin, covered)
    mean = float(np.sum(w * g) / covered)
    n = g.size
    var = float(np.sum(w * (g - mean) ** 2) / covered) * n / (n - 1)
    sd = var**0.5

    def pct(mask: Any) -> float:
        return 100.0 * float(np.sum(w[mask])) / covered

    out: dict[str, Any] = {
        "start_s": begin,
        "end_s": finish,
        "days": (finish - begin) / 86400.0,
        "readings": int(n),
        "bounds": int(bounds),
        "active_pct": 100.0 * covered / span,
        "mean_mg_dl": mean,
        "sd_mg_dl": sd,
        "cv_pct": 100.0 * sd / mean,
        "gmi_pct": gmi_pct(mean),
        "time_below_54_pct": pct(g < 54.0),
        "time_54_69_pct": pct((g >= 54.0) & (g < 70.0)),
        "time_below_70_pct": pct(g < 70.0),
        "time_in_range_70_180_pct": pct((g >= 70.0) & (g <= 180.0)),
        "time_181_250_pct": pct((g > 180.0) & (g <= 250.0)),
        "time_above_180_pct": pct(g > 180.0),
        "time_above_250_pct": pct(g > 250.0),
        # the pregnancy ranges (Battelino 2019, Table 2: 63-140 mg/dL)
        "time_below_63_pct": pct(g < 63.0),
        "time_in_range_63_140_pct": pct((g >= 63.0) & (g <= 140.0)),
        "time_above_140_pct": pct(g > 140.0),
    }
    # Glycemia Risk Index (Klonoff 2023): hypoglycaemia and hyperglycaemia components
    hypo = out["time_below_54_pct"] + 0.8 * out["time_54_69_pct"]
    hyper = out["time_above_250_pct"] + 0.5 * out["time_181_250_pct"]
    out["gri_hypo"] = hypo
    out["gri_hyper"] = hyper
    out["gri"] = min(3.0 * hypo + 1.6 * hyper, 100.0)
    out["gri_zone"] = "ABCDE"[min(int(max(out["gri"] - 1e-9, 0.0) // 20), 4)]
    out["targets_group"] = group.name
    out["targets"] = {
        name: {"target": f"{op} {limit:g} %", "met": _meets(float(out[name]), op, limit)}
        for name, (op, limit) in group.targets.items()
    }
    return out


def _meets(value: float, op: str, limit: float) -> bool:
    return {
        ">": value > limit,
        ">=": value >= limit,
        "<": value < limit,
        "<=": value <= limit,
    }[op]


def agp_profile(
    times_s: FloatArray,
    glucose_mg_dl: FloatArray,
    *,
    tz: str = "UTC",
    bin_minutes: int = 15,
    min_readings: int = 5,
) -> dict[str, Any]:
    """The ambulatory glucose profile: the readings of every day folded onto one day by their
    local time of day in ``tz`` (``bin_minutes`` bins), and the percentiles
    :data:`AGP_PERCENTILES` of each bin (linear interpolation between readings; no smoothing
    across bins). A bin with fewer than ``min_readings`` readings has no percentiles (None).

    >>> t = np.arange(0.0, 7 * 86400.0, 300.0)
    >>> agp = agp_profile(t, np.where((t % 86400.0) < 43200.0, 100.0, 150.0), bin_minutes=60)
    >>> agp["p50"][0], agp["p50"][12], agp["minute"][:3]
    (100.0, 150.0, [0, 60, 120])
    """
    from datetime import UTC, datetime

    from medtwin.record.time import get_zone

    if not 1 <= bin_minutes <= 240 or 1440 % bin_minutes:
        raise ValueError(f"bin_minutes: a divisor of 1440 from 1 to 240, got {bin_minutes!r}")
    zone = get_zone(tz)
    t = np.asarray(times_s, dtype=np.float64)
    g = np.asarray(glucose_mg_dl, dtype=np.float64)
    keep = np.isfinite(t) & np.isfinite(g)
    t, g = t[keep], g[keep]
    minute = np.empty(t.size, dtype=np.int64)
    for i, ts in enumerate(t.tolist()):
        local = datetime.fromtimestamp(ts, UTC).astimezone(zone)
        minute[i] = local.hour * 60 + local.minute
    bins = minute // bin_minutes
    n_bins = 1440 // bin_minutes
    out: dict[str, Any] = {
        "tz": tz,
        "bin_minutes": bin_minutes,
        "minute": [b * bin_minutes for b in range(n_bins)],
        "readings": np.bincount(bins, minlength=n_bins).tolist(),
    }
    curves: dict[int, list[float | None]] = {q: [None] * n_bins for q in AGP_PERCENTILES}
    for b in range(n_bins):
        values = g[bins == b]
        if values.size < min_readings:
            continue
        for q, v in zip(AGP_PERCENTILES, np.percentile(values, AGP_PERCENTILES), strict=True):
            curves[q][b] = float(v)
    for q in AGP_PERCENTILES:
        out[f"p{q}"] = curves[q]
    return out


def write_agp_html(
    agp: dict[str, Any],
    path: str,
    *,
    title: str,
    target_range: tuple[float, float] = (70.0, 180.0),
) -> None:
    """A self-contained HTML plot of an :func:`agp_profile` (plotly, no network needed): the
    median, the 25-75 % and 5-95 % bands over the day, and the lines of the ``target_range``
    (mg/dL: 70-180, or 63-140 in pregnancy, :data:`CGM_TARGET_SETS`)."""
    import plotly.graph_objects as go

    hours = [m / 60.0 for m in agp["minute"]]
    fig = go.Figure()
    for low, high, alpha in (("p5", "p95", 0.15), ("p25", "p75", 0.35)):
        fig.add_trace(
            go.Scatter(
                x=hours + hours[::-1],
                y=list(agp[high]) + list(agp[low])[::-1],
                fill="toself",
                fillcolor=f"rgba(31,119,180,{alpha})",
                line={"width": 0},
                connectgaps=False,
                name=f"{low[1:]}-{high[1:]} %",
            )
        )
    fig.add_trace(
        go.Scatter(x=hours, y=agp["p50"], line={"color": "#1f77b4", "width": 3}, name="median")
    )
    for level in target_range:
        fig.add_hline(y=level, line_dash="dot", line_color="green")
    fig.update_layout(
        title=title,
        xaxis_title=f"time of day ({agp['tz']}), hours",
        yaxis_title="glucose, mg/dL",
        template="plotly_white",
    )
    fig.update_xaxes(range=[0, 24], dtick=3)
    fig.write_html(path, include_plotlyjs=True, full_html=True)
