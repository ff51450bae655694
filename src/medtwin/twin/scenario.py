"""What-if: interventions applied to a twin's posterior ensemble, outcomes as distributions.

:func:`compare` simulates every arm (the baseline and each alternative scenario) with the same
``M`` parameter sets (posterior samples of a calibrated twin, or presets) and the same
starting states, then summarises each arm:

- **bands** of every observable over time: the median and the 5th and 95th percentiles across
  the ensemble (a 90% band);
- **clinical metrics** per ensemble member, summarised as median and 90% band, and the
  **paired difference** from the baseline (the same member under both arms, so the band of a
  difference reflects the uncertainty of the effect, not of the patient's level).

Metrics come from the observables a model has (:data:`METRICS`):

- glucose (``cgm_mg_dl``, else ``bg_mg_dl``): time in range 70-180 mg/dL, below 70 and
  54 mg/dL, above 180 mg/dL (Battelino T et al. Diabetes Care 2019;42:1593-1603, Table 2) and
  mean glucose and GMI (Bergenstal RM et al. Diabetes Care 2018;41:2275-2280; GMI is defined on
  14 days or more of CGM, so over a short what-if it is the GMI *equivalent of the simulated
  mean*, not an estimate of HbA1c), see :mod:`medtwin.physiology.glycemia`;
- body weight (``weight_kg``): weight at the end and its change from the start;
- arterial pressure (``map_mmhg``): the lowest mean arterial pressure and the minutes below
  65 mmHg (the threshold below which intraoperative hypotension is associated with acute kidney
  and myocardial injury: Salmasi V et al. Anesthesiology 2017;126:47-65; Sessler DI et al.
  Br J Anaesth 2019;122:563-574, the POQI consensus);
- heart rate (``heart_rate_per_min``): the highest rate;
- any other observable: its value at the end.

>>> from medtwin.model import get_model, parse_scenario
>>> m = get_model("uva_padova_2008")
>>> base = parse_scenario([{"type": "basal"}, {"type": "meal", "t_min": 60, "carbs_g": 60},
...                        {"type": "bolus", "t_min": 60, "insulin_u": 4}])
>>> smaller = parse_scenario([{"type": "basal"}, {"type": "meal", "t_min": 60, "carbs_g": 30},
...                           {"type": "bolus", "t_min": 60, "insulin_u": 4}])
>>> c = compare(m, m.preset(["adult#001", "adult#002"]), base, {"smaller meal": smaller},
...             t_end=360)
>>> [a.name for a in c.arms]
['baseline', 'smaller meal']
>>> c.arms[1].difference["mean_mg_dl"].median < 0
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medtwin.model.base import FloatArray, Model, ModelError
from medtwin.model.events import Scenario
from medtwin.model.solver import simulate

__all__ = [
    "METRICS",
    "QUANTILES",
    "Arm",
    "Band",
    "Comparison",
    "Metric",
    "Summary",
    "compare",
]

QUANTILES: tuple[float, float, float] = (0.05, 0.5, 0.95)
"""The band: 5th percentile, median, 95th percentile (a 90% band)."""

HYPOTENSION_MAP_MMHG = 65.0
"""MAP below which intraoperative hypotension is harmful (Salmasi et al. 2017; POQI 2019)."""


@dataclass(frozen=True)
class Band:
    """An observable over time across the ensemble: 5th percentile, median, 95th percentile."""

    low: FloatArray
    median: FloatArray
    high: FloatArray

    def to_dict(self) -> dict[str, list[float]]:
        """The three curves as lists (JSON)."""
        return {
            "p05": _round(self.low),
            "p50": _round(self.median),
            "p95": _round(self.high),
        }


@dataclass(frozen=True)
class Summary:
    """One metric across the ensemble: median and 90% band."""

    median: float
    low: float
    high: float

    def text(self, digits: int = 1) -> str:
        """``median [low to high]``."""
        if self.low == self.high:
            return f"{self.median:.{digits}f}"
        return f"{self.median:.{digits}f} [{self.low:.{digits}f} to {self.high:.{digits}f}]"

    def to_dict(self) -> dict[str, float]:
        """``{"median", "p05", "p95"}``."""
        return {"median": self.median, "p05": self.low, "p95": self.high}


@dataclass(frozen=True)
class Metric:
    """A clinical metric computed per ensemble member from one observable's trajectories."""

    name: str
    unit: str
    description: str
    observable: str
    function: Callable[[FloatArray, FloatArray], FloatArray]
    """``function(times [T] in minutes, values [M, T]) -> [M]``."""


def _summarise(values: FloatArray) -> Summary:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Summary(float("nan"), float("nan"), float("nan"))
    lo, mid, hi = np.quantile(finite, QUANTILES)
    return Summary(float(mid), float(lo), float(hi))


def _round(a: FloatArray, digits: int = 3) -> list[float]:
    return [round(float(x), digits) for x in a]


def _time_weights(t: FloatArray) -> FloatArray:
    """Each sample's share of the span (trapezoid weights), so uneven outputs weigh right."""
    if t.size < 2:
        return np.ones_like(t)
    w = np.zeros_like(t)
    d = np.diff(t)
    w[:-1] += d / 2
    w[1:] += d / 2
    out: FloatArray = w / w.sum()
    return out


def _pct(mask: Callable[[FloatArray], Any]) -> Callable[[FloatArray, FloatArray], FloatArray]:
    def f(t: FloatArray, y: FloatArray) -> FloatArray:
        return 100.0 * (np.asarray(mask(y), dtype=np.float64) @ _time_weights(t))

    return f


def _glucose_metrics(observable: str) -> tuple[Metric, ...]:
    def mean(t: FloatArray, y: FloatArray) -> FloatArray:
        return np.asarray(y @ _time_weights(t))

    return (
        Metric(
            "time_in_range_70_180_pct",
            "%",
            "time in range 70-180 mg/dL (Battelino 2019)",
            observable,
            _pct(lambda y: (y >= 70.0) & (y <= 180.0)),
        ),
        Metric(
            "time_below_70_pct",
            "%",
            "time below 70 mg/dL (Battelino 2019, levels 1+2)",
            observable,
            _pct(lambda y: y < 70.0),
        ),
        Metric(
            "time_below_54_pct",
            "%",
            "time below 54 mg/dL (Battelino 2019, level 2)",
            observable,
            _pct(lambda y: y < 54.0),
        ),
        Metric(
            "time_above_180_pct",
            "%",
            "time above 180 mg/dL (Battelino 2019)",
            observable,
            _pct(lambda y: y > 180.0),
        ),
        Metric("mean_mg_dl", "mg/dL", "mean glucose", observable, mean),
        Metric(
            "min_mg_dl",
            "mg/dL",
            "lowest glucose",
            observable,
            lambda t, y: np.asarray(y.min(axis=1)),
        ),
        Metric(
            "gmi_pct",
            "%",
            "GMI equivalent of the mean, 3.31 + 0.02392 x mean (Bergenstal 2018)",
            observable,
            lambda t, y: 3.31 + 0.02392 * np.asarray(y @ _time_weights(t)),
        ),
    )


def _glucose_observable(names: Sequence[str]) -> str | None:
    for candidate in ("cgm_mg_dl", "bg_mg_dl"):
        if candidate in names:
            return candidate
    return None


def _below_minutes(threshold: float) -> Callable[[FloatArray, FloatArray], FloatArray]:
    def f(t: FloatArray, y: FloatArray) -> FloatArray:
        span = float(t[-1] - t[0]) if t.size > 1 else 0.0
        return np.asarray((y < threshold).astype(np.float64) @ _time_weights(t)) * span

    return f


METRICS: dict[str, tuple[Metric, ...]] = {
    "weight_kg": (
        Metric(
            "weight_end_kg",
            "kg",
            "body weight at the end",
            "weight_kg",
            lambda t, y: np.asarray(y[:, -1]),
        ),
        Metric(
            "weight_change_kg",
            "kg",
            "change of body weight from the start",
            "weight_kg",
            lambda t, y: np.asarray(y[:, -1] - y[:, 0]),
        ),
    ),
    "map_mmhg": (
        Metric(
            "lowest_map_mmhg",
            "mmHg",
            "lowest mean arterial pressure",
            "map_mmhg",
            lambda t, y: np.asarray(y.min(axis=1)),
        ),
        Metric(
            "minutes_map_below_65",
            "min",
            "minutes with MAP < 65 mmHg (Salmasi 2017; POQI 2019)",
            "map_mmhg",
            _below_minutes(HYPOTENSION_MAP_MMHG),
        ),
        Metric(
            "map_end_mmhg",
            "mmHg",
            "mean arterial pressure at the end (how far it has recovered)",
            "map_mmhg",
            lambda t, y: np.asarray(y[:, -1]),
        ),
    ),
    "heart_rate_per_min": (
        Metric(
            "highest_heart_rate_per_min",
            "/min",
            "highest heart rate",
            "heart_rate_per_min",
            lambda t, y: np.asarray(y.max(axis=1)),
        ),
    ),
}
"""Clinical metrics by observable name (glucose observables get the consensus CGM metrics)."""


def metrics_for(model: type[Model]) -> tuple[Metric, ...]:
    """The metrics :func:`compare` reports for a model, from its observables."""
    names = [o.name for o in model.observables]
    out: list[Metric] = []
    glucose = _glucose_observable(names)
    if glucose is not None:
        out.extend(_glucose_metrics(glucose))
    for name in names:
        if name in METRICS:
            out.extend(METRICS[name])
    if not out:
        for o in model.observables:
            out.append(
                Metric(
                    f"{o.name}_end",
                    o.unit,
                    f"{o.description} at the end",
                    o.name,
                    lambda t, y: np.asarray(y[:, -1]),
                )
            )
    return tuple(out)


@dataclass(frozen=True)
class Arm:
    """One arm of a what-if: its scenario, bands over time, metrics and paired differences."""

    name: str
    scenario: Scenario
    bands: dict[str, Band]
    metrics: dict[str, Summary]
    members: dict[str, FloatArray]
    """Each metric per ensemble member (``[M]``)."""
    difference: dict[str, Summary] = field(default_factory=dict)
    """Paired difference from the baseline, per metric (empty for the baseline)."""


@dataclass(frozen=True)
class Comparison:
    """The arms of a what-if on one model and one ensemble."""

    model: str
    version: str
    time_unit: str
    times: FloatArray
    arms: list[Arm]
    metrics: tuple[Metric, ...]
    members: int
    provenance: dict[str, Any]

    def arm(self, name: str) -> Arm:
        """One arm by name."""
        for a in self.arms:
            if a.name == name:
                return a
        raise KeyError(f"no arm {name!r} (arms: {', '.join(a.name for a in self.arms)})")

    def rows(self) -> list[list[str]]:
        """The comparison table: a header, then one row per metric with each arm's
        ``median [5th to 95th]`` and, for the alternatives, the paired difference."""
        header = ["metric"]
        for i, a in enumerate(self.arms):
            header.append(a.name)
            if i:
                header.append(f"{a.name} - {self.arms[0].name}")
        out = [header]
        for m in self.metrics:
            row = [f"{m.name} ({m.unit})"]
            for i, a in enumerate(self.arms):
                row.append(a.metrics[m.name].text())
                if i:
                    row.append(_signed(a.difference[m.name]))
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain data (JSON): times, bands, metrics, differences, provenance."""
        return {
            "model": self.model,
            "version": self.version,
            f"times_{self.time_unit}": _round(self.times),
            "members": self.members,
            "quantiles": list(QUANTILES),
            "arms": [
                {
                    "name": a.name,
                    "scenario": a.scenario.to_dict(),
                    "bands": {k: b.to_dict() for k, b in a.bands.items()},
                    "metrics": {k: s.to_dict() for k, s in a.metrics.items()},
                    "difference": {k: s.to_dict() for k, s in a.difference.items()},
                }
                for a in self.arms
            ],
            "metric_units": {m.name: m.unit for m in self.metrics},
            "provenance": self.provenance,
        }

    def write_html(self, path: str | Path, *, observables: Sequence[str] | None = None) -> Path:
        """Write a self-contained HTML plot (plotly, no network needed): each observable over
        time, every arm's median with its 90% band."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        names = list(observables or self.arms[0].bands)
        fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, subplot_titles=names)
        palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
        scale, label = _axis(self.time_unit, float(self.times[-1]))
        x = (self.times * scale).tolist()
        for row, name in enumerate(names, start=1):
            for i, a in enumerate(self.arms):
                colour = palette[i % len(palette)]
                band = a.bands[name]
                fig.add_trace(
                    go.Scatter(
                        x=x + x[::-1],
                        y=band.high.tolist() + band.low.tolist()[::-1],
                        fill="toself",
                        fillcolor=_rgba(colour, 0.18),
                        line={"width": 0},
                        hoverinfo="skip",
                        name=f"{a.name} 90% band",
                        showlegend=row == 1,
                        legendgroup=a.name,
                    ),
                    row=row,
                    col=1,
                )
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=band.median.tolist(),
                        line={"color": colour, "width": 2},
                        name=f"{a.name} (median)",
                        showlegend=row == 1,
                        legendgroup=a.name,
                    ),
                    row=row,
                    col=1,
                )
            if name in ("cgm_mg_dl", "bg_mg_dl"):
                for level in (70.0, 180.0):
                    fig.add_hline(y=level, line_dash="dot", line_color="grey", row=row, col=1)
            if name == "map_mmhg":
                fig.add_hline(
                    y=HYPOTENSION_MAP_MMHG, line_dash="dot", line_color="grey", row=row, col=1
                )
        fig.update_xaxes(title_text=label, row=len(names), col=1)
        fig.update_layout(
            title=f"What-if on {self.model} {self.version}: {self.members} ensemble members "
            "(median and 90% band)",
            height=320 * len(names) + 120,
            template="plotly_white",
        )
        out = Path(path)
        fig.write_html(out, include_plotlyjs=True, full_html=True)
        return out


def _axis(time_unit: str, t_end: float) -> tuple[float, str]:
    minutes = {"min": 1.0, "h": 60.0, "d": 1440.0}[time_unit] * t_end
    if minutes > 3 * 1440:
        return {"min": 1 / 1440, "h": 1 / 24, "d": 1.0}[time_unit], "days"
    return {"min": 1 / 60, "h": 1.0, "d": 24.0}[time_unit], "hours"


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _signed(s: Summary) -> str:
    if s.low == s.high:
        return f"{s.median:+.1f}"
    return f"{s.median:+.1f} [{s.low:+.1f} to {s.high:+.1f}]"


def compare(
    model: type[Model],
    params: FloatArray,
    baseline: Scenario,
    alternatives: Mapping[str, Scenario],
    *,
    t_end: float,
    dt_out: float | None = None,
    x0: FloatArray | None = None,
    baseline_name: str = "baseline",
    metrics: Sequence[Metric] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Comparison:
    """Simulate the baseline and each alternative on the ensemble ``params`` (``[M, P]``).

    ``t_end`` and ``dt_out`` are in the model's time unit (``dt_out`` default: 5 minutes for
    minute models, 1 for hour and day models); ``x0`` (``[M, S]``) are the members' starting
    states (default: each member's own initial state). Every arm uses the same members and
    starting states, so differences are paired. ``provenance`` (e.g. the calibration the
    ensemble came from) is recorded with the result.

    Raises :class:`~medtwin.model.base.ModelError` when there are no alternatives, an arm is
    named twice, or a scenario has an event the model does not take (naming the arm).
    """
    if not alternatives:
        raise ModelError("compare: give at least one alternative scenario")
    if baseline_name in alternatives:
        raise ModelError(f"compare: an alternative is named {baseline_name!r} like the baseline")
    p = np.atleast_2d(np.asarray(params, dtype=np.float64))
    if dt_out is None:
        dt_out = 5.0 if model.time_unit == "min" else 1.0
    chosen = tuple(metrics) if metrics is not None else metrics_for(model)
    arms_in = [(baseline_name, baseline), *alternatives.items()]
    results = []
    for name, scenario in arms_in:
        try:
            results.append(simulate(model, p, scenario, t_end=t_end, dt_out=dt_out, x0=x0))
        except ModelError as exc:
            raise ModelError(f"scenario {name!r}: {exc}") from None
    times = results[0].times
    minutes = times * {"min": 1.0, "h": 60.0, "d": 1440.0}[model.time_unit]
    members: list[dict[str, FloatArray]] = []
    for r in results:
        members.append({m.name: m.function(minutes, r.observables[m.observable]) for m in chosen})
    arms: list[Arm] = []
    for i, ((name, scenario), r) in enumerate(zip(arms_in, results, strict=True)):
        bands = {}
        for obs, values in r.observables.items():
            lo, mid, hi = np.quantile(values, QUANTILES, axis=0)
            bands[obs] = Band(lo, mid, hi)
        summary = {k: _summarise(v) for k, v in members[i].items()}
        diff = {} if i == 0 else {k: _summarise(v - members[0][k]) for k, v in members[i].items()}
        arms.append(Arm(name, scenario, bands, summary, members[i], diff))
    return Comparison(
        model=model.name,
        version=model.version,
        time_unit=model.time_unit,
        times=times,
        arms=arms,
        metrics=chosen,
        members=int(p.shape[0]),
        provenance={
            "model": model.name,
            "version": model.version,
            "solver": results[0].options,
            **(dict(provenance) if provenance else {}),
        },
    )
