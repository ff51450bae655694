"""Offline change points of a stored series (for review), with PELT from ``ruptures``.

Not a streaming monitor: :func:`changepoints` takes a whole series (one code of one patient, as
read from the store) and splits it into segments of constant mean, returning each segment with
its mean. The online detectors are in :mod:`medtwin.monitor.trend`. Model card:
``docs/models/trend-detectors.md``.

**Method.** PELT (Killick, Fearnhead and Eckley 2012) minimises, over the number and places of
the change points, ``sum of segment costs + penalty x number of changes`` exactly, in linear
expected time. The segment cost is ``ruptures``' ``l2`` (the sum of squared deviations from the
segment mean: a Gaussian change in mean with a common variance), run through ``ruptures``'
``KernelCPD(kernel="linear")``, its compiled PELT for that same cost (the pure-Python
``Pelt(model="l2")`` gives the same change points, several hundred times slower).

**Penalty.** A BIC-like penalty (Schwarz 1978; for change points Yao 1988): in units of twice
the negative Gaussian log-likelihood each change adds two parameters (its place and the new
mean), so a change must reduce ``SSE / sigma^2`` by more than ``2 log n``; in the ``l2`` cost's
units that is ``penalty = beta * sigma^2 * log(n)`` with ``beta = 2``. ``sigma`` is estimated
from the first differences, ``sigma = MAD(diff(x)) / (0.6745 * sqrt(2))`` (the difference-based
robust estimate used by Fryzlewicz 2014 for wild binary segmentation): a plain SD of the
series would count the mean shifts themselves as noise and hide them.

References
----------
Killick R, Fearnhead P, Eckley IA. Optimal detection of changepoints with a linear computational
cost. J Am Stat Assoc. 2012;107(500):1590-1598.
Truong C, Oudre L, Vayatis N. Selective review of offline change point detection methods.
Signal Processing. 2020;167:107299 (the ``ruptures`` library).
Schwarz G. Estimating the dimension of a model. Ann Stat. 1978;6(2):461-464.
Yao YC. Estimating the number of change-points via Schwarz' criterion. Stat Probab Lett.
1988;6(3):181-189.
Fryzlewicz P. Wild binary segmentation for multiple change-point detection. Ann Stat.
2014;42(6):2243-2281.

Examples
--------
>>> result = changepoints([0, 60, 120, 180, 240, 300], [70, 71, 70, 90, 91, 90], min_size=2)
>>> [(s.start, s.end, round(s.mean, 1)) for s in result.segments]
[(0, 3, 70.3), (3, 6, 90.3)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from medtwin.store.base import Store

__all__ = [
    "ChangePointResult",
    "Segment",
    "bic_penalty",
    "changepoints",
    "changepoints_for",
    "robust_sigma",
]


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment of constant mean: readings ``start`` (inclusive) to ``end`` (exclusive)."""

    start: int
    end: int
    start_epoch_s: float
    end_epoch_s: float
    mean: float
    sd: float

    @property
    def n(self) -> int:
        """Number of readings in the segment."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class ChangePointResult:
    """Segments of a series, the change points (first index of each new segment), the penalty."""

    segments: tuple[Segment, ...]
    breakpoints: tuple[int, ...]
    penalty: float
    sigma: float


def robust_sigma(values: Sequence[float] | np.ndarray) -> float:
    """Noise SD from first differences: ``MAD(diff(x)) / (0.6745 * sqrt(2))``.

    Robust to a few mean shifts (each spoils one difference), unlike the SD of the series.

    Examples
    --------
    >>> noise = np.random.default_rng(0).normal(0.0, 2.0, 1000)
    >>> steps = np.repeat([0.0, 30.0], 500)
    >>> round(robust_sigma(noise + steps), 1), round(float(np.std(noise + steps)), 1)
    (1.9, 15.1)
    """
    x = np.asarray(values, dtype=float)
    if x.size < 3:
        return 0.0
    d = np.diff(x)
    mad = float(np.median(np.abs(d - np.median(d))))
    return mad / (0.6744897501960817 * math.sqrt(2.0))


def bic_penalty(n: int, sigma: float, beta: float = 2.0) -> float:
    """The BIC-like PELT penalty ``beta * sigma^2 * log(n)`` (in the ``l2`` cost's units).

    Examples
    --------
    >>> round(bic_penalty(100, 2.0), 3)
    36.841
    """
    return beta * sigma * sigma * math.log(max(n, 2))


def changepoints(
    times_s: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    penalty: float | None = None,
    beta: float = 2.0,
    min_size: int = 5,
    sd_floor: float = 0.0,
) -> ChangePointResult:
    """Change points of the mean of a series (PELT, ``l2`` cost, BIC-like penalty).

    Parameters
    ----------
    times_s
        Epoch seconds of the readings, ascending.
    values
        The readings (one code, its canonical unit).
    penalty
        PELT penalty; default :func:`bic_penalty` with the :func:`robust_sigma` of the series.
    beta
        Multiplier of the default penalty (2: BIC with a place and a mean per change).
    min_size
        Fewest readings per segment.
    sd_floor
        Lower bound on the noise SD (the measurement resolution), so that a series of
        identical readings with one step still has a finite penalty.

    Returns
    -------
    ChangePointResult
        Segments with their means and SDs, the change points and the penalty used.

    Raises
    ------
    ImportError
        When ``ruptures`` is not installed (``pip install 'medtwin[review]'``).
    ValueError
        When the times and values differ in length or are not finite.
    """
    t = np.asarray(times_s, dtype=float)
    x = np.asarray(values, dtype=float)
    if t.shape != x.shape or x.ndim != 1:
        raise ValueError(
            f"times_s and values must be 1-D and equal length, got {t.shape}, {x.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(t).all()):
        raise ValueError("times_s and values must be finite (drop missing readings first)")
    n = x.size
    sigma = max(robust_sigma(x), sd_floor)
    if penalty is None:
        penalty = bic_penalty(n, sigma, beta) if sigma > 0 else 0.0
    if n < 2 * min_size or penalty <= 0:
        breaks = [n]
    else:
        try:
            import ruptures
        except ImportError as exc:  # pragma: no cover - dev installs have it
            raise ImportError(
                "medtwin.monitor.changepoint needs ruptures: pip install 'medtwin[review]'"
            ) from exc
        # KernelCPD with the linear kernel is ruptures' C implementation of PELT with the l2
        # cost (same segmentation as Pelt(model="l2"), checked in the tests, ~500x faster)
        algo = ruptures.KernelCPD(kernel="linear", min_size=min_size, jump=1)
        algo.fit(x.reshape(-1, 1))
        breaks = [int(b) for b in algo.predict(pen=penalty)]
    segments = []
    start = 0
    for end in breaks:
        part = x[start:end]
        segments.append(
            Segment(
                start=start,
                end=end,
                start_epoch_s=float(t[start]),
                end_epoch_s=float(t[end - 1]),
                mean=float(part.mean()),
                sd=float(part.std(ddof=1)) if part.size > 1 else 0.0,
            )
        )
        start = end
    return ChangePointResult(tuple(segments), tuple(breaks[:-1]), float(penalty), sigma)


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


def changepoints_for(
    store: Store,
    patient_id: str,
    code: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    beta: float = 2.0,
    min_size: int = 5,
) -> dict[str, Any]:
    """Change points of one code of one stored patient, JSON-ready (``medtwin changepoints``).

    Reads the patient's numeric observations of ``code`` (current versions, not retracted),
    drops values outside the trend monitors' plausibility limits for that code
    (:data:`medtwin.monitor.trend.PLAUSIBLE`: sensor dropouts such as 0 /min), floors the noise
    SD at their resolution (:data:`medtwin.monitor.trend.SD_FLOORS`) and runs
    :func:`changepoints`.

    Parameters
    ----------
    store
        An open medtwin store.
    patient_id
        The patient (medtwin id).
    code
        LOINC code of the series.
    since, until
        Optional time window (aware datetimes; ``until`` exclusive).
    beta, min_size
        As :func:`changepoints`.

    Returns
    -------
    dict
        ``patient_id``, ``code``, ``display``, ``unit``, ``n``, ``implausible_dropped`` and
        ``bounds_dropped`` (readings left out: outside the code's plausible range, or sent as a
        bound such as ">90", whose value is not known), ``penalty``, ``sigma``,
        ``segments`` (start and end time, readings, mean, SD) and ``changes`` (time, mean before
        and after, shift, evidence fact).

    Examples
    --------
    >>> from medtwin.store import open_store
    >>> review = changepoints_for(open_store("medtwin.db"), "mt-1", "29463-7")  # doctest: +SKIP
    >>> [(c["time"][:10], round(c["shift"], 1)) for c in review["changes"]]  # doctest: +SKIP
    [('2019-03-02', 2.4)]
    """
    from medtwin.monitor.hub import readings_from_stored
    from medtwin.monitor.trend import PLAUSIBLE, SD_FLOORS
    from medtwin.record.codes import LOINC, display

    rows = store.timeline(patient_id, codes=[code], start=since, end=until)
    low, high = PLAUSIBLE.get(code, (-math.inf, math.inf))
    stored = [r for r in readings_from_stored(rows) if r.code == code]
    # a bound (an eGFR ">90", a CGM "<40") is not a value: the segments' means leave it out
    bounds = [r for r in stored if r.comparator is not None]
    readings = [r for r in stored if r.comparator is None and low <= r.value <= high]
    out: dict[str, Any] = {
        "patient_id": patient_id,
        "code": code,
        "display": display(LOINC, code, code),
        "unit": readings[0].unit if readings else None,
        "n": len(readings),
        "implausible_dropped": len(stored) - len(bounds) - len(readings),
        "bounds_dropped": len(bounds),
        "method": "PELT, l2 cost, penalty beta * sigma^2 * log(n) (Killick et al. 2012)",
        "segments": [],
        "changes": [],
    }
    if not readings:
        return out
    times = np.array([r.epoch_s for r in readings])
    values = np.array([r.value for r in readings])
    result = changepoints(
        times, values, beta=beta, min_size=min_size, sd_floor=SD_FLOORS.get(code, 0.0)
    )
    out["penalty"] = result.penalty
    out["sigma"] = result.sigma
    out["segments"] = [
        {
            "start": _iso(seg.start_epoch_s),
            "end": _iso(seg.end_epoch_s),
            "n": seg.n,
            "mean": seg.mean,
            "sd": seg.sd,
        }
        for seg in result.segments
    ]
    for before, after in zip(result.segments, result.segments[1:], strict=False):
        first = readings[after.start]
        out["changes"].append(
            {
                "time": _iso(first.epoch_s),
                "mean_before": before.mean,
                "mean_after": after.mean,
                "shift": after.mean - before.mean,
                "evidence": list(first.ref),
            }
        )
    return out
