"""Readers for the Stanford COVID-19 wearables minute data in ``shared/data/wearables/covid-hr-steps``.

Each participant has ``<id>_hr.csv.zip`` (``,user,datetime,heartrate``) and
``<id>_steps.csv.zip`` (``,user,datetime,steps``) with naive local timestamps and no time
zone. The naive clock time is read as if it were UTC, so monitors run with ``timezone="UTC"``
see the participant's own local clock (nights, hours of the day).
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from medtwin.monitor.base import FactRef, Reading

__all__ = ["PARTICIPANTS", "read_participant"]

PARTICIPANTS = ("A3OU183", "AS2MVDL")


def _rows(path: Path) -> list[list[str]]:
    with zipfile.ZipFile(path) as archive:
        name = archive.namelist()[0]
        text = archive.read(name).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    return rows[1:]


def read_participant(folder: Path, participant: str) -> list[Reading]:
    """Heart rate (LOINC 8867-4) and steps (55423-8, one-minute intervals), in time order."""
    source = f"covid-wearables:{participant}"
    readings: list[Reading] = []
    for kind, code, unit in (("hr", "8867-4", "/min"), ("steps", "55423-8", "{steps}")):
        for row in _rows(folder / f"{participant}_{kind}.csv.zip"):
            index, _user, stamp, value = row
            epoch = datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()
            readings.append(
                Reading(
                    participant,
                    code,
                    epoch,
                    float(value),
                    unit,
                    FactRef(source, f"{kind}/{index}"),
                    epoch + 60.0 if kind == "steps" else None,
                )
            )
    readings.sort(key=lambda r: r.epoch_s)
    return readings
