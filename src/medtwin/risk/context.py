"""What a patient's record says that population checks need: age and pregnancy.

The early-warning scores are validated in a population: NEWS2 in adults aged 16 or over and not
in pregnancy (Royal College of Physicians, NEWS2, 2017), qSOFA in adults aged 18 or over
(Seymour et al. 2016), MEWS in adult medical admissions (Subbe et al. 2001). A monitor that
scores a child or a pregnant woman with them applies adult thresholds where they do not hold (a
toddler's resting heart rate of 120 /min scores NEWS2 points). :func:`patient_context` reads from
the record what the checks need, and the hub hands it to the monitors
(:meth:`medtwin.monitor.base.Monitor.set_context`):

- the birth date (the age at each reading follows from it);
- the pregnancies, as intervals of time:

  - a condition of the code list ``pregnancy`` (``risk/data/record_conditions.toml``: Pregnancy,
    Normal pregnancy, High risk, Multiple or Twin pregnancy, Gestational diabetes; ICD-10 Z33,
    Z34, Z35, O09, O24.4) from its onset to its abatement; one recorded only as suspected
    (verification status unconfirmed, provisional, differential) is kept apart, and one
    refuted or entered in error is not read;
  - a pregnancy status observation (LOINC 82810-3, the US Core Pregnancy Status profile's code):
    "Pregnant" (SNOMED CT 77386006) from its time (to the recorded end of a pregnancy condition
    that holds then, if there is one), "Not pregnant" (60001007) ends any pregnancy begun before
    it; "Unknown" (261665006) changes nothing;
  - a pregnancy whose end the record does not give (an active condition without abatement, a
    status observation) ends :data:`PREGNANCY_MAX_DAYS` after it began: a record that was never
    closed does not make a woman pregnant for ever.

Nothing recorded is "not pregnant", as the risk scores read conditions (none recorded: no).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from medtwin.record.context import PatientContext
from medtwin.record.facts import VOID_RESULT_STATUSES

if TYPE_CHECKING:
    from medtwin.store.base import Store, StoredFact

__all__ = [
    "NOT_PREGNANT",
    "PREGNANCY_MAX_DAYS",
    "PREGNANCY_STATUS_CODE",
    "PREGNANT",
    "patient_context",
    "pregnancies_from",
]

PREGNANCY_STATUS_CODE = "82810-3"
"""LOINC Pregnancy status (the code of the US Core Pregnancy Status observation profile)."""
PREGNANT = "77386006"
"""SNOMED CT Pregnant (finding), a value of the pregnancy status."""
NOT_PREGNANT = "60001007"
"""SNOMED CT Not pregnant (finding), a value of the pregnancy status."""
PREGNANCY_MAX_DAYS = 44 * 7
"""The longest a pregnancy with no recorded end is taken to last after the record first shows it:
44 weeks. A pregnancy is post-term from 42 weeks 0 days of gestation (ACOG Committee Opinion 579,
Definition of term pregnancy, 2013), and a record shows it at or after conception, so 44 weeks
from the first record is a bound, not an estimate; the record's own end (an abatement, a "Not
pregnant" status) is used when there is one."""


def _interval_end(start: float, end: float | None) -> float:
    limit = start + PREGNANCY_MAX_DAYS * 86400.0
    return limit if end is None else min(end, limit) if end > start else end


def patient_context(
    store: Store, patient_id: str, *, conditions: Sequence[StoredFact] | None = None
) -> PatientContext:
    """The birth date and pregnancies of ``patient_id`` from the record (module docstring);
    ``conditions``: the patient's Condition facts (with their source resources) when the caller
    has read them already."""
    summary = store.patient(patient_id)
    born: dt.date | None = None
    if summary.birth_date:
        try:
            born = dt.date.fromisoformat(summary.birth_date[:10])
        except ValueError:
            born = None
    if conditions is None:
        conditions = store.timeline(patient_id, kinds=["Condition"], include_raw=True)
    established, suspected = pregnancies_from(
        conditions,
        store.timeline(patient_id, codes=[PREGNANCY_STATUS_CODE]),
    )
    return PatientContext(born, established, suspected)


Interval = tuple[float, float, str]


def pregnancies_from(
    conditions: Iterable[StoredFact], statuses: Iterable[StoredFact]
) -> tuple[tuple[Interval, ...], tuple[Interval, ...]]:
    """The established and the suspected pregnancies (``(start, end, basis)``, UTC epoch
    seconds) that ``conditions`` (any conditions: those of the code list ``pregnancy`` are
    read) and pregnancy status observations ``statuses`` show (module docstring)."""
    from medtwin.risk.af_inputs import SUSPECTED, condition_sets, matches

    spec = condition_sets()["pregnancy"]
    established: list[Interval] = []
    suspected: list[Interval] = []
    ended: list[tuple[float, float]] = []  # conditions with a recorded end (a delivery)
    for sf in conditions:
        f = sf.fact
        if f.effective_start is None or not matches(f, spec):
            continue
        verification = getattr(f, "verification_status", None)
        if verification in {"refuted", "entered-in-error"}:
            continue
        start = f.effective_start.timestamp()
        end = f.effective_end.timestamp() if f.effective_end is not None else None
        label = f"{f.code.code} {f.code.display or ''}".strip() if f.code else f.source_id
        interval = (start, _interval_end(start, end), f"{label} ({f.effective_start:%Y-%m-%d})")
        (suspected if verification in SUSPECTED else established).append(interval)
        if end is not None and verification not in SUSPECTED:
            ended.append((start, end))
    said = []
    for sf in statuses:
        f = sf.fact
        value = getattr(f, "value_code", None)
        if f.code is None or f.code.code != PREGNANCY_STATUS_CODE:
            continue
        if f.effective_start is None or value is None or f.status in VOID_RESULT_STATUSES:
            continue
        said.append((f.effective_start.timestamp(), value.code, f.effective_start))
    for t, code, when in sorted(said):
        if code == PREGNANT:
            label = f"pregnancy status {PREGNANCY_STATUS_CODE}: Pregnant ({when:%Y-%m-%d})"
            # a pregnancy condition that holds this time and records its end ends it too
            end = min((e for s, e in ended if s <= t < e), default=None)
            established.append((t, _interval_end(t, end), label))
        elif code == NOT_PREGNANT:  # ends every pregnancy begun before it
            established = [(s, min(e, t) if s < t else e, b) for s, e, b in established]
    return (
        tuple(sorted(i for i in established if i[1] > i[0])),
        tuple(sorted(i for i in suspected if i[1] > i[0])),
    )
