"""A patient's CGM report: the standardised metrics of their own readings in the store.

:func:`cgm_report` reads the continuous glucose readings (LOINC 99504-3, from a Dexcom or Libre
export, a FHIR server or a live feed) of the last ``days`` up to the newest one (or ``until``),
converts them to mg/dL, and computes the core metrics of the International Consensus on Time in
Range (:func:`medtwin.physiology.glycemia.cgm_metrics`; Battelino T et al. Diabetes Care
2019;42(8):1593-1603) with the targets of the patient's group (:func:`cgm_targets`: pregnancy
from the record, with type 1 diabetes or not; else most adults, with a hint where the patient's
age points to other targets). A cancelled reading is not read; a reading sent as a bound (a
sensor's LOW "<40", HIGH ">400") counts at its bound and is counted. Model card:
``docs/models/cgm-metrics.md``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from medtwin.physiology.glycemia import CGM_TARGET_SETS, agp_profile, cgm_metrics
from medtwin.record.facts import VOID_RESULT_STATUSES, text_comparator

if TYPE_CHECKING:
    from medtwin.store.sql import SqlStore

__all__ = [
    "CGM_CODE",
    "CGM_DAYS",
    "OLDER_ADULT_YEARS",
    "YOUNG_ADULT_YEARS",
    "cgm_report",
    "cgm_targets",
]

CGM_CODE = "99504-3"
"""Glucose [Mass/volume] in Interstitial fluid: what a CGM measures."""
CGM_DAYS = 14.0
"""The report's default span: 14 days, the consensus' (Battelino 2019, Table 1)."""
OLDER_ADULT_YEARS = 65.0
"""From this age the report says the targets for older or high-risk adults may apply: the
older adults of the American Diabetes Association's Standards of Care in Diabetes (section 13,
Older Adults, is about people aged 65 years and over). Whether a patient is in the consensus'
older or high-risk group (Battelino 2019, Table 2) is the clinician's judgement (frailty, risk
of hypoglycaemia), so it is a hint, not applied."""
YOUNG_ADULT_YEARS = 25.0
"""Under this age the report repeats the consensus' note to its type 1 targets: "for age <25
yr, if the A1C goal is 7.5%, then set TIR target to approximately 60%" (Battelino 2019, Table
2, footnote); the HbA1c goal is not in the record, so it is a hint."""


def cgm_targets(store: SqlStore, patient_id: str, at: dt.datetime) -> dict[str, Any]:
    """The consensus' target group for ``patient_id`` at ``at`` from their record (Battelino 2019,
    Table 2): ``pregnancy-type1`` for a pregnancy at ``at`` (:func:`medtwin.risk.context.
    patient_context`: a condition of the code list ``pregnancy`` of
    ``risk/data/record_conditions.toml``, or a pregnancy status observation) with type 1
    diabetes (code list ``diabetes_type1``), ``pregnancy-other`` for one without it (type 2 or
    gestational diabetes: the pregnancy range, no targets), else ``adult``. Returns ``group``,
    ``basis`` (what was read) and ``hints``: older or young age in completed years
    (:data:`OLDER_ADULT_YEARS`, :data:`YOUNG_ADULT_YEARS`), a pregnancy recorded only as
    suspected (not applied)."""
    from medtwin.risk.af_inputs import found_at
    from medtwin.risk.context import patient_context

    conditions = store.timeline(patient_id, kinds=["Condition"], include_raw=True)
    context = patient_context(store, patient_id, conditions=conditions)
    t = at.timestamp()
    pregnancy = context.pregnancy_at(t)
    hints: list[str] = []
    suspected = [b for s, e, b in context.suspected_pregnancies if s <= t < e]
    if suspected and pregnancy is None:
        hints.append(
            f"pregnancy only suspected in the record ({suspected[0]}): with a confirmed "
            "pregnancy the pregnancy targets apply (--targets pregnancy-type1 or pregnancy-other)"
        )
    if pregnancy is not None:
        type1 = found_at(conditions, "diabetes_type1", at)  # begun by ``at`` (found_at)
        group = "pregnancy-type1" if type1 else "pregnancy-other"
        first = type1[0].fact if type1 else None
        said = (
            f"type 1 diabetes: {first.code.code} {first.code.display or ''}".strip()
            + (f" ({first.effective_start:%Y-%m-%d})" if first.effective_start else "")
            if first is not None and first.code is not None
            else "no type 1 diabetes in the record"
        )
        basis = f"pregnancy in the record: {pregnancy}; {said}"
    else:
        group = "adult"
        basis = "no pregnancy at the date in the record"
    age = context.age_years(t)
    if age is not None and not group.startswith("pregnancy"):
        if age >= OLDER_ADULT_YEARS:
            hints.append(
                f"aged {age}: for an older or high-risk adult the consensus sets other "
                "targets (time in range > 50 %, below 70 < 1 %): --targets older"
            )
        elif age < YOUNG_ADULT_YEARS:
            hints.append(f"aged {age}: {CGM_TARGET_SETS['adult'].note}")
    return {"group": group, "basis": basis, "hints": hints}


def cgm_report(
    store: SqlStore,
    patient: str,
    *,
    days: float = CGM_DAYS,
    until: dt.datetime | None = None,
    tz: str = "UTC",
    targets: str = "auto",
    agp: bool = True,
) -> dict[str, Any]:
    """The CGM metrics of ``patient``'s readings over the ``days`` before ``until`` (default:
    up to the newest reading), and their ambulatory glucose profile over the day in ``tz``
    (``agp``: :func:`~medtwin.physiology.glycemia.agp_profile`), checked against the targets of
    the group ``targets`` (:data:`~medtwin.physiology.glycemia.CGM_TARGET_SETS`), or with
    ``auto`` the group the record says (:func:`cgm_targets`; ``targets_basis`` and
    ``targets_hints`` say why), and ``previous``: the same figures (:data:`PREVIOUS_KEYS`) over
    the ``days`` before (None with fewer than two readings there), to see a change. Raises
    :class:`LookupError` for an unknown patient and
    :class:`ValueError` when there are fewer than two usable readings or ``targets`` is not a
    group, naming why. ``agp=False`` leaves the profile out (``agp`` is None)."""
    from medtwin.record.units import convert

    if not days > 0:
        raise ValueError(f"days: need a positive number of days, got {days!r}")
    if targets != "auto" and targets not in CGM_TARGET_SETS:
        raise ValueError(f"targets: auto or one of {', '.join(CGM_TARGET_SETS)}, got {targets!r}")
    pid = store.resolve_patient(patient)
    if until is None:
        newest = store.latest(pid, codes=[CGM_CODE]).get(CGM_CODE)
        if newest is None or newest.fact.effective_start is None:
            raise ValueError(f"patient {patient}: no CGM readings (LOINC {CGM_CODE}) in the record")
        until = newest.fact.effective_start + dt.timedelta(microseconds=1)
    start = until - dt.timedelta(days=days)
    before = start - dt.timedelta(days=days)  # the previous period, to compare with
    times: list[float] = []
    values: list[float] = []
    bound: list[bool] = []
    skipped = 0
    factors: dict[str, float | None] = {"mg/dL": 1.0}
    for row in store.observation_values(pid, codes=[CGM_CODE], start=before, end=until):
        if row.value is None or row.status in VOID_RESULT_STATUSES:
            continue
        unit = row.unit or "mg/dL"
        if unit not in factors:
            try:
                factors[unit] = convert(1.0, unit, "mg/dL", analyte=CGM_CODE)
            except ValueError:
                factors[unit] = None  # not a glucose concentration: said in the report
        factor = factors[unit]
        if factor is None:
            skipped += row.time >= start
            continue
        times.append(row.time.timestamp())
        values.append(row.value * factor)
        bound.append(text_comparator(row.text) is not None)
    t_all, g_all, b_all = np.asarray(times), np.asarray(values), np.asarray(bound, dtype=bool)
    now = t_all >= start.timestamp()
    earlier = ~now
    times, values = t_all[now].tolist(), g_all[now].tolist()
    bounds = int(b_all[now].sum())
    if len(times) < 2:
        newest = store.latest(pid, codes=[CGM_CODE]).get(CGM_CODE)
        when = newest.fact.effective_start if newest is not None else None
        hint = "" if when is None else f" (the newest is of {when:%Y-%m-%d %H:%M} UTC)"
        raise ValueError(
            f"patient {patient}: {len(times)} CGM reading(s) between {start:%Y-%m-%d %H:%M} and "
            f"{until:%Y-%m-%d %H:%M} UTC; a report needs at least 2{hint}"
        )
    if targets == "auto":
        chosen = cgm_targets(store, pid, until)
    else:
        chosen = {"group": targets, "basis": "chosen by the user", "hints": []}
    metrics = cgm_metrics(
        np.asarray(times),
        np.asarray(values),
        start_s=start.timestamp(),
        end_s=until.timestamp(),
        bounds=bounds,
        targets=chosen["group"],
    )
    previous = None
    if int(earlier.sum()) >= 2:
        was = cgm_metrics(
            t_all[earlier],
            g_all[earlier],
            start_s=before.timestamp(),
            end_s=start.timestamp(),
            bounds=int(b_all[earlier].sum()),
            targets=chosen["group"],
        )
        previous = {k: was[k] for k in PREVIOUS_KEYS}
        previous["start"] = before.astimezone(dt.UTC).isoformat()
        previous["end"] = start.astimezone(dt.UTC).isoformat()
    profile = agp_profile(np.asarray(times), np.asarray(values), tz=tz) if agp else None
    return {
        "patient_id": pid,
        "code": CGM_CODE,
        "start": start.astimezone(dt.UTC).isoformat(),
        "end": until.astimezone(dt.UTC).isoformat(),
        "unconvertible_readings": skipped,
        **metrics,
        "targets_label": CGM_TARGET_SETS[chosen["group"]].label,
        "targets_basis": chosen["basis"],
        "targets_hints": chosen["hints"],
        "previous": previous,
        "agp": profile,
    }


PREVIOUS_KEYS = (
    "readings",
    "active_pct",
    "mean_mg_dl",
    "gmi_pct",
    "cv_pct",
    "time_below_54_pct",
    "time_below_63_pct",
    "time_below_70_pct",
    "time_in_range_63_140_pct",
    "time_in_range_70_180_pct",
    "time_above_140_pct",
    "time_above_180_pct",
    "time_above_250_pct",
    "gri",
    "gri_zone",
)
"""What the report gives of the previous period (the ``days`` before its start), to compare."""


HEADLINE_KEYS = (
    "readings",
    "bounds",
    "days",
    "active_pct",
    "time_in_range_70_180_pct",
    "time_below_70_pct",
    "time_below_54_pct",
    "time_above_180_pct",
    "time_above_250_pct",
    "time_in_range_63_140_pct",
    "time_below_63_pct",
    "time_above_140_pct",
    "mean_mg_dl",
    "gmi_pct",
    "cv_pct",
    "gri",
    "gri_zone",
    "start",
    "end",
    "targets_group",
    "targets_label",
)
"""What ``medtwin show`` prints of the CGM report."""


def cgm_headline(store: SqlStore, patient_id: str) -> dict[str, Any] | None:
    """The CGM report's headline figures (:data:`HEADLINE_KEYS`, and ``targets_met``: each
    target met or not) over the 14 days to the newest CGM reading, for ``medtwin show``
    (``medtwin cgm`` prints the report whole); None when the patient has fewer than two
    usable readings."""
    try:
        report = cgm_report(store, patient_id, agp=False)
    except ValueError:
        return None
    out = {k: report[k] for k in HEADLINE_KEYS}
    out["targets_met"] = {k: v["met"] for k, v in report["targets"].items()}
    out["previous"] = report["previous"]
    return out


def cgm_panel(
    store: SqlStore,
    *,
    days: float = CGM_DAYS,
    until: dt.datetime | None = None,
    limit: int = 100_000,
) -> list[dict[str, Any]]:
    """Every patient with CGM readings (of the first ``limit`` in the store), each with the
    headline of their report (:func:`cgm_headline`'s figures over the ``days`` to their newest
    reading, or to ``until``; the targets of their group) and ``not_met``, the targets they
    miss; the patients at most risk first: by the Glycemia Risk Index, highest first (Klonoff DC
    et al. J Diabetes Sci Technol 2023;17(5):1226-1242: one number for the hypo- and
    hyperglycaemia, weighted as clinicians ranked ambulatory glucose profiles), then by time
    below 54 mg/dL."""
    rows: list[dict[str, Any]] = []
    for summary in store.patients(limit=limit):
        try:
            report = cgm_report(store, summary.id, days=days, until=until, agp=False)
        except ValueError:
            continue  # no CGM readings (or too few) in the window
        row: dict[str, Any] = {"patient_id": summary.id, "name": summary.name}
        row.update({k: report[k] for k in HEADLINE_KEYS})
        row["not_met"] = [k for k, v in report["targets"].items() if not v["met"]]
        row["previous"] = report["previous"]
        rows.append(row)
    rows.sort(key=lambda r: (-float(r["gri"]), -float(r["time_below_54_pct"]), r["patient_id"]))
    return rows
