"""A patient's CGM report from the store: the standardised metrics of their own readings.

:func:`cgm_report` reads the continuous glucose readings (LOINC 99504-3, from a Dexcom or Libre
export, a FHIR server or a live feed) of the last ``days`` up to the newest one (or ``until``),
converts them to mg/dL, and computes the core metrics of the International Consensus on Time in
Range (:func:`medtwin.physiology.glycemia.cgm_metrics`; Battelino T et al. Diabetes Care
2019;42(8):1593-1603) with their targets for most adults. A cancelled reading is not read; a
reading sent as a bound (a sensor's LOW "<40", HIGH ">400") counts at its bound and is counted.
Model card: ``docs/models/cgm-metrics.md``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from medtwin.physiology.glycemia import agp_profile, cgm_metrics
from medtwin.record.facts import VOID_RESULT_STATUSES, value_comparator

if TYPE_CHECKING:
    from medtwin.store.sql import SqlStore

__all__ = ["CGM_CODE", "CGM_DAYS", "cgm_report"]

CGM_CODE = "99504-3"
"""Glucose [Mass/volume] in Interstitial fluid: what a CGM measures."""
CGM_DAYS = 14.0
"""The report's default span: 14 days, the consensus' (Battelino 2019, Table 1)."""


def cgm_report(
    store: SqlStore,
    patient: str,
    *,
    days: float = CGM_DAYS,
    until: dt.datetime | None = None,
    tz: str = "UTC",
) -> dict[str, Any]:
    """The CGM metrics of ``patient``'s readings over the ``days`` before ``until`` (default:
    up to the newest reading), and their ambulatory glucose profile over the day in ``tz``
    (``agp``: :func:`~medtwin.physiology.glycemia.agp_profile`). Raises :class:`LookupError`
    for an unknown patient and :class:`ValueError` when there are fewer than two usable
    readings, naming why."""
    from medtwin.record.units import convert

    if not days > 0:
        raise ValueError(f"days: need a positive number of days, got {days!r}")
    pid = store.resolve_patient(patient)
    if until is None:
        newest = store.latest(pid, codes=[CGM_CODE]).get(CGM_CODE)
        if newest is None or newest.fact.effective_start is None:
            raise ValueError(f"patient {patient}: no CGM readings (LOINC {CGM_CODE}) in the record")
        until = newest.fact.effective_start + dt.timedelta(microseconds=1)
    start = until - dt.timedelta(days=days)
    times: list[float] = []
    values: list[float] = []
    bounds = skipped = 0
    for sf in store.timeline(pid, codes=[CGM_CODE], start=start, end=until):
        f = sf.fact
        value = getattr(f, "value_num", None)
        if value is None or f.effective_start is None or f.status in VOID_RESULT_STATUSES:
            continue
        unit = getattr(f, "unit", None) or "mg/dL"
        try:
            mg_dl = (
                float(value)
                if unit == "mg/dL"
                else convert(float(value), unit, "mg/dL", analyte=CGM_CODE)
            )
        except ValueError:
            skipped += 1  # a unit that is not a glucose concentration: said in the report
            continue
        times.append(f.effective_start.timestamp())
        values.append(mg_dl)
        bounds += value_comparator(f) is not None
    if len(times) < 2:
        raise ValueError(
            f"patient {patient}: {len(times)} CGM reading(s) between {start:%Y-%m-%d %H:%M} and "
            f"{until:%Y-%m-%d %H:%M} UTC; a report needs at least 2"
        )
    metrics = cgm_metrics(
        np.asarray(times),
        np.asarray(values),
        start_s=start.timestamp(),
        end_s=until.timestamp(),
        bounds=bounds,
    )
    agp = agp_profile(np.asarray(times), np.asarray(values), tz=tz)
    return {
        "patient_id": pid,
        "code": CGM_CODE,
        "start": start.astimezone(dt.UTC).isoformat(),
        "end": until.astimezone(dt.UTC).isoformat(),
        "unconvertible_readings": skipped,
        **metrics,
        "agp": agp,
    }
