"""Fixtures shared by the monitor tests: the real COVID-19 wearables participants, read once."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import missing
from medtwin.monitor.base import Reading

from .covid_data import PARTICIPANTS, read_participant


@pytest.fixture(scope="session")
def covid(shared: Path) -> dict[str, list[Reading]]:
    """Minute heart rate and steps of A3OU183 and AS2MVDL (Mishra et al. 2020 study)."""
    folder = shared / "wearables" / "covid-hr-steps"
    if not folder.is_dir():
        missing(f"{folder} not found (COVID-19 wearables minute data)")
    return {p: read_participant(folder, p) for p in PARTICIPANTS}
