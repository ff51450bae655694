"""A pump's programmed basal profile, recorded as the insulin rates the twin reads.

A CGM export (Dexcom Clarity, LibreView) holds glucose, carbohydrates and boluses, not the
basal insulin a pump gives: that is in the pump's own export, which medtwin does not read yet.
The UVA/Padova twin needs it (the model starts at the basal steady state on the patient's
basal rate). A pump gives basal as a daily program of rates, ``00:00=0.8, 06:00=1.1,
22:00=0.9`` U/h, the same every day; :func:`basal_profile_facts` writes that program, day by
day over a period and in the patient's time zone, as MedicationAdministration rates of
rapid-acting insulin (the facts :func:`medtwin.twin.twin.patient_data` reads as ``basal``
events).

What the program says is what the pump was set to give, not what it gave: a temporary basal,
a suspension or a closed loop's automatic changes are not in it, and a twin fitted to it
takes them as unexplained glucose. The facts say so (their code, "pump basal program
(programmed rate)", and source ``medtwin:basal-profile``), and recording a changed program for
the same days corrects them (a new version of each rate).

>>> parse_basal_profile("00:00=0.8, 06:00=1.1,22:00=0.9")
[(0, 0.8), (360, 1.1), (1320, 0.9)]
"""

from __future__ import annotations

import datetime as dt
import re

from medtwin.record.facts import Coding, Identifier, MedicationAdministration
from medtwin.twin.data import DataError

__all__ = ["BASAL_CODING", "BASAL_SOURCE", "basal_profile_facts", "parse_basal_profile"]

BASAL_SOURCE = "medtwin:basal-profile"
BASAL_CODING = Coding(
    "urn:medtwin:basal-profile",
    "rapid-acting-basal",
    "Rapid-acting insulin, pump basal program (programmed rate)",
)
_SEGMENT = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*=\s*(\d+(?:\.\d+)?)\s*$")
MAX_RATE_U_PER_H = 10.0
"""The highest basal rate accepted (U/h): pumps program up to 15-35 U/h, but an adult's basal
is about 0.5-2 U/h (a total daily basal of 10-40 U); a rate above 10 U/h is refused as the
likely slip of a dose for a rate."""


def parse_basal_profile(text: str) -> list[tuple[int, float]]:
    """``"HH:MM=RATE, ..."`` (U/h) -> ``[(minute of the day, rate), ...]`` in time order.

    Refused (:class:`~medtwin.twin.data.DataError`, naming the segment): a segment that is not
    ``HH:MM=RATE``, a time that is not one, a program that does not start at 00:00, a time
    given twice, a rate above :data:`MAX_RATE_U_PER_H`.
    """
    segments: list[tuple[int, float]] = []
    for part in text.split(","):
        m = _SEGMENT.match(part)
        if m is None:
            raise DataError(f"basal profile: {part.strip()!r} is not HH:MM=RATE (U/h)")
        hour, minute, rate = int(m[1]), int(m[2]), float(m[3])
        if hour > 23 or minute > 59:
            raise DataError(f"basal profile: {part.strip()!r}: {hour:02d}:{minute:02d} is no time")
        if rate > MAX_RATE_U_PER_H:
            raise DataError(
                f"basal profile: {part.strip()!r}: {rate:g} U/h is above {MAX_RATE_U_PER_H:g} "
                "U/h (a basal rate, not a dose)"
            )
        segments.append((hour * 60 + minute, rate))
    segments.sort()
    times = [t for t, _ in segments]
    if len(set(times)) != len(times):
        raise DataError("basal profile: a time is given twice")
    if times[0] != 0:
        raise DataError("basal profile: a pump's program starts at 00:00; give its rate")
    return segments


def basal_profile_facts(
    subject: Identifier,
    profile: list[tuple[int, float]],
    first_day: dt.date,
    last_day: dt.date,
    zone: dt.tzinfo,
) -> list[MedicationAdministration]:
    """The program's rates, each from its time to the next, on every day from ``first_day`` to
    ``last_day`` (local dates in ``zone``), as MedicationAdministrations of ``subject``."""
    if last_day < first_day:
        raise DataError(f"basal profile: {last_day} is before {first_day}")
    if (last_day - first_day).days > 366:
        raise DataError("basal profile: at most a year of days at once")
    facts = []
    day = first_day
    while day <= last_day:
        midnight = dt.datetime.combine(day, dt.time(), zone)
        for i, (minute, rate) in enumerate(profile):
            end_minute = profile[i + 1][0] if i + 1 < len(profile) else 1440
            start = (midnight + dt.timedelta(minutes=minute)).astimezone(dt.UTC)
            end = (midnight + dt.timedelta(minutes=end_minute)).astimezone(dt.UTC)
            facts.append(
                MedicationAdministration(
                    source=BASAL_SOURCE,
                    source_id=f"Basal/{subject.value}/{start.isoformat()}",
                    subject=subject,
                    code=BASAL_CODING,
                    status="completed",
                    effective_start=start,
                    effective_end=end,
                    rate_value=rate,
                    rate_unit="U/h",
                    route="subcutaneous",
                )
            )
        day += dt.timedelta(days=1)
    return facts
