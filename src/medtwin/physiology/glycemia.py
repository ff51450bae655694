"""Glycaemic summary of a glucose trace: mean, range, time in ranges and GMI.

- Time in range 70-180 mg/dL, below 70 mg/dL (level 1 and 2 together) and below 54 mg/dL,
  above 180 mg/dL: Battelino T et al. Clinical targets for continuous glucose monitoring data
  interpretation: recommendations from the International Consensus on Time in Range.
  Diabetes Care 2019;42(8):1593-1603 (Table 2: the ranges and targets).
- Glucose management indicator: Bergenstal RM et al. Glucose Management Indicator (GMI): a new
  term for estimating A1C from continuous glucose monitoring. Diabetes Care
  2018;41(11):2275-2280: GMI (%) = 3.31 + 0.02392 x mean glucose (mg/dL).

Samples are taken as equally spaced (each one stands for the same time), as in CGM reports.

>>> s = glycemic_summary(np.array([60.0, 100.0, 150.0, 200.0]))
>>> s["time_in_range_70_180_pct"], s["time_below_70_pct"], s["gmi_pct"]
(50.0, 25.0, 6.4)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medtwin.model.base import FloatArray

__all__ = ["glycemic_summary", "gmi_pct"]


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
