"""What monitors raise and the store keeps: :class:`Alert`, its severities and categories, and
:class:`FactRef`, the key of the stored fact an alert cites as evidence.

Data types only: the monitors (:mod:`medtwin.monitor.base`, which re-exports them with the
monitor contract) make alerts, the alert book (:mod:`medtwin.store.alerts`) keeps them, and
both build on the record, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

__all__ = ["CATEGORIES", "SEVERITIES", "Alert", "FactRef", "severity_rank"]

SEVERITIES: tuple[str, ...] = ("info", "low", "low-medium", "medium", "high")
"""Alert severities, lowest first.

``low``, ``low-medium``, ``medium`` and ``high`` are the clinical-risk levels of the NEWS2
clinical response (Royal College of Physicians 2017, NEWS2 report, Table 2 / Chart 4); other
monitors map onto the same scale so one escalation policy serves all. ``info`` is for
artefacts and data-quality notes that need no clinical response.
"""

CATEGORIES: tuple[str, ...] = ("clinical", "artefact", "data-quality")
"""What an alert is about: a change in the patient, an implausible value, or the data feed."""


def severity_rank(severity: str) -> int:
    """Position of ``severity`` in :data:`SEVERITIES` (higher is more severe).

    >>> severity_rank("high") > severity_rank("medium")
    True
    """
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        raise ValueError(
            f"unknown severity {severity!r} (one of {', '.join(SEVERITIES)})"
        ) from None


class FactRef(NamedTuple):
    """The key of a stored fact: its source and its source id (stable across versions)."""

    source: str
    source_id: str

    def __str__(self) -> str:
        return f"{self.source}|{self.source_id}"


@dataclass(frozen=True, slots=True)
class Alert:
    """What a monitor says when a rule fires.

    Attributes
    ----------
    patient_id
        The medtwin patient id.
    monitor, monitor_version
        Name and version of the monitor that fired.
    rule
        The rule within the monitor, e.g. ``news2.high``, ``rhr.cusum``, ``glucose.low``.
    severity
        One of :data:`SEVERITIES`.
    epoch_s
        When the condition was met (effective time of the last evidence), UTC epoch seconds.
    message
        One line for a clinician: what changed, with the numbers and the threshold.
    source
        The published source of the rule (paper, table, equation).
    evidence
        The facts that fired it, oldest first.
    category
        One of :data:`CATEGORIES`.
    detail
        JSON-ready numbers behind the message (score components, baseline, statistic ...).
    key
        De-duplication key: alerts with the same patient and key within the suppression window
        are one alert. Defaults to ``monitor:rule``.
    clears
        True for a notice that the condition has ended (e.g. a baseline that was pending is
        built): the alert book resolves the live alert of this patient and key, with this
        message as the reason, and opens nothing; with no live alert it changes nothing.
    """

    patient_id: str
    monitor: str
    monitor_version: str
    rule: str
    severity: str
    epoch_s: float
    message: str
    source: str
    evidence: tuple[FactRef, ...] = ()
    category: str = "clinical"
    detail: Mapping[str, Any] = field(default_factory=dict)
    key: str | None = None
    clears: bool = False

    def __post_init__(self) -> None:
        severity_rank(self.severity)
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown alert category {self.category!r}")

    @property
    def dedup_key(self) -> str:
        """The key that groups repeats of this alert (``key`` or ``monitor:rule``)."""
        return self.key or f"{self.monitor}:{self.rule}"

    @property
    def time(self) -> datetime:
        """When the condition was met, as an aware UTC datetime."""
        return datetime.fromtimestamp(self.epoch_s, UTC)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "patient_id": self.patient_id,
            "monitor": self.monitor,
            "monitor_version": self.monitor_version,
            "rule": self.rule,
            "severity": self.severity,
            "category": self.category,
            "time": self.time.isoformat(),
            "message": self.message,
            "source": self.source,
            "evidence": [list(ref) for ref in self.evidence],
            "detail": dict(self.detail),
            "key": self.dedup_key,
            "clears": self.clears,
        }
