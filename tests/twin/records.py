"""Building blocks of the twin tests' small records: a person and their LOINC readings."""

from __future__ import annotations

from datetime import datetime

from medtwin.record.facts import Coding, Demographics, Identifier, Observation

LOINC = "http://loinc.org"


def person(who: Identifier, birth_date: str, gender: str) -> Demographics:
    """The registration of ``who``."""
    return Demographics(
        source="reg",
        source_id="Patient/1",
        subject=who,
        identifiers=(who,),
        birth_date=birth_date,
        gender=gender,
    )


def reading(
    who: Identifier,
    source_id: str,
    loinc: str,
    when: datetime,
    value: float,
    unit: str,
    *,
    source: str = "clinic",
) -> Observation:
    """One numeric observation of ``who`` coded in LOINC."""
    return Observation(
        source=source,
        source_id=source_id,
        subject=who,
        code=Coding(LOINC, loinc, loinc),
        effective_start=when,
        value_num=float(value),
        unit=unit,
    )
