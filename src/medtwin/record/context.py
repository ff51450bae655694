"""What the record says of a patient that population checks need: birth date and pregnancies.

Data only: :func:`medtwin.risk.context.patient_context` reads it from the store; the monitors
(:meth:`medtwin.monitor.base.Monitor.set_context`) and the twin use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

__all__ = ["PUERPERIUM_DAYS", "PatientContext", "pregnancy_at_date"]

PUERPERIUM_DAYS = 42
"""The weeks after a pregnancy ends that are counted with it: the puerperium, 42 days (the World
Health Organization's definition, ICD-10 volume 2: maternal deaths are those "within 42 days of
termination of pregnancy"), over which the uterus involutes and the fluid of pregnancy is lost.
The body-weight twin leaves these weeks out with the pregnancy
(:mod:`medtwin.physiology.body_weight`), and so do the risk scores' inputs that pregnancy
changes (:mod:`medtwin.risk.inputs`: lipids, blood pressure, weight, HbA1c, kidney function)."""


@dataclass(frozen=True, slots=True)
class PatientContext:
    """What the record says of a patient that a monitor's population check needs, read by
    :func:`medtwin.risk.context.patient_context`: the monitors' population checks (the hub hands
    it to them) and the twin's (a body-weight fit leaves out a pregnancy).

    Attributes
    ----------
    birth_date
        The patient's birth date, or None when the record has none.
    pregnancies, suspected_pregnancies
        ``(start, end, basis)`` intervals (UTC epoch seconds, end exclusive; what the record
        says): established pregnancies, and those recorded only as suspected.
    """

    birth_date: date | None = None
    pregnancies: tuple[tuple[float, float, str], ...] = ()
    suspected_pregnancies: tuple[tuple[float, float, str], ...] = ()

    def age_years(self, epoch_s: float) -> int | None:
        """Age in completed years at ``epoch_s`` (the UTC day), or None without a birth date.

        >>> PatientContext(date(2010, 3, 1)).age_years(datetime(2026, 2, 28, tzinfo=UTC).timestamp())
        15
        """
        born = self.birth_date
        if born is None:
            return None
        day = datetime.fromtimestamp(epoch_s, UTC).date()
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def pregnancy_at(self, epoch_s: float, *, after_days: float = 0.0) -> str | None:
        """What the record says of a pregnancy at ``epoch_s``, or None when it shows none;
        ``after_days``: count that many days after each pregnancy's end with it (the
        :data:`PUERPERIUM_DAYS`).

        >>> ctx = PatientContext(pregnancies=((0.0, 86400.0, "Z34"),))
        >>> ctx.pregnancy_at(2 * 86400.0), ctx.pregnancy_at(2 * 86400.0, after_days=PUERPERIUM_DAYS)
        (None, 'Z34')
        """
        after = after_days * 86400.0
        for start, end, basis in self.pregnancies:
            if start <= epoch_s < end + after:
                return basis
        return None


def pregnancy_at_date(patient: Mapping[str, Any]) -> str | None:
    """For a model's population check: what the record says of a pregnancy (or the
    :data:`PUERPERIUM_DAYS` after one) at the date ``patient["at"]`` (a datetime), with
    ``patient["pregnancies"]`` as :class:`PatientContext` holds them, and how to fit the time
    before it; None when it shows none.

    >>> at = datetime(2024, 3, 1, tzinfo=UTC)
    >>> span = (datetime(2023, 6, 1, tzinfo=UTC).timestamp(), datetime(2024, 2, 1, tzinfo=UTC).timestamp(), "Z34")
    >>> pregnancy_at_date({"at": at, "pregnancies": (span,)})
    'the record shows a pregnancy at 2024-03-01 (Z34; with the 42 days after it, to 2024-03-14). Fit the time before it (--until 2023-06-01) or after it'
    """
    at = patient.get("at")
    if not isinstance(at, datetime):
        return None
    t = at.timestamp()
    for start, end, basis in patient.get("pregnancies") or ():
        if start <= t < end + PUERPERIUM_DAYS * 86400.0:
            ended = datetime.fromtimestamp(end, at.tzinfo) + timedelta(days=PUERPERIUM_DAYS)
            begun = datetime.fromtimestamp(start, at.tzinfo)
            return (
                f"the record shows a pregnancy at {at:%Y-%m-%d} ({basis}; with the "
                f"{PUERPERIUM_DAYS} days after it, to {ended:%Y-%m-%d}). Fit the time before it "
                f"(--until {begun:%Y-%m-%d}) or after it"
            )
    return None
