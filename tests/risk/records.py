"""Building blocks of the risk tests' small records: a registered person (with an address
country), LOINC results and a smoking status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from medtwin.record.facts import LOINC, SNOMED, Coding, Demographics, Identifier, Observation


def registered(
    who: Identifier, birth_date: str, gender: str, *, country: str | None = None
) -> Demographics:
    """The registration of ``who``; with ``country``, a home address in it (the raw Patient)."""
    raw: dict[str, Any] = {"resourceType": "Patient"}
    if country is not None:
        raw["address"] = [{"use": "home", "country": country}]
    return Demographics(
        source="reg", source_id=f"Patient/{who.value}", subject=who, identifiers=(who,),
        birth_date=birth_date, gender=gender, raw=raw,
    )  # fmt: skip


def lab(who: Identifier, loinc: str, value: float, unit: str, when: datetime) -> Observation:
    """One final numeric result of ``who`` coded in LOINC (one per code and day)."""
    return Observation(
        source="lab", source_id=f"{who.value}-{loinc}-{when.date().isoformat()}", subject=who,
        code=Coding(LOINC, loinc), status="final", effective_start=when, value_num=value,
        unit=unit,
    )  # fmt: skip


def smoking_status(who: Identifier, snomed: str, display: str, when: datetime) -> Observation:
    """A smoking status (LOINC 72166-2) answered in SNOMED CT."""
    return Observation(
        source="ehr", source_id=f"{who.value}-smoking-{when.date().isoformat()}", subject=who,
        code=Coding(LOINC, "72166-2"), status="final", effective_start=when,
        value_code=Coding(SNOMED, snomed, display),
    )  # fmt: skip


def risk_text(store: Any, patient: str, date: str, *scores: str) -> str:
    """The text of ``medtwin risk PATIENT --date DATE --score ... --no-save`` on ``store``."""
    from click.testing import CliRunner

    from medtwin.cli import main

    args = ["risk", patient, "--store", store.url, "--date", date, "--no-save"]
    for name in scores:
        args += ["--score", name]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return str(result.output)
