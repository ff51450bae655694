"""Monitors: streaming detectors over each patient's readings, and the alerts they raise.

The contract is in :mod:`medtwin.monitor.base` (:class:`Monitor`, :class:`Reading`,
:class:`Alert`); :mod:`medtwin.monitor.registry` finds monitors by name;
:class:`~medtwin.monitor.hub.MonitorHub` feeds them and keeps their state in the store.

Importing ``medtwin.monitor`` loads no monitor module.
"""

from __future__ import annotations

from medtwin.monitor.base import (
    CATEGORIES,
    SEVERITIES,
    Alert,
    AlertSink,
    FactRef,
    Monitor,
    MonitorConfigError,
    MonitorStateStore,
    Reading,
    severity_rank,
)
from medtwin.monitor.hub import MonitorHub, readings_from_batch, readings_from_stored

__all__ = [
    "CATEGORIES",
    "SEVERITIES",
    "Alert",
    "AlertSink",
    "FactRef",
    "Monitor",
    "MonitorConfigError",
    "MonitorHub",
    "MonitorStateStore",
    "Reading",
    "readings_from_batch",
    "readings_from_stored",
    "severity_rank",
]
