"""Scores from the patient record: derive the inputs, compute every applicable score, store results.

:func:`evaluate` is what ``medtwin risk PATIENT`` runs. It is generic over the score registry
(:mod:`medtwin.risk.registry`): a score is *applicable* when every input it needs (required and
without a default) is one :mod:`medtwin.risk.inputs` derives from a record; scores that need other
inputs (NEWS2's respiration rate, HAS-BLED's bleeding history) are listed as not derivable unless
named. A score whose inputs are missing or stale says "cannot compute: missing X (reason)"; one
that refuses the patient (outside its valid population) says why.

Results are stored as :class:`~medtwin.record.facts.Observation` facts of the source
``medtwin:risk`` with the code system :data:`SCORE_SYSTEM` and the score name as code: medtwin has
no RiskAssessment fact kind yet (FHIR RiskAssessment export is a later step). The source id holds
the patient, the score and the evaluation date, so evaluating the same date again replaces that
result (a new version when it changed) and different dates build the risk's history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from medtwin.risk.inputs import DERIVABLE, DerivedInput, derive_inputs

if TYPE_CHECKING:
    from medtwin.record.facts import Observation
    from medtwin.risk.base import Score, ScoreResult
    from medtwin.store.base import AppendResult, Store

__all__ = [
    "RISK_SOURCE",
    "SCORE_SYSTEM",
    "RiskReport",
    "ScoreOutcome",
    "evaluate",
    "needed_inputs",
    "row_from",
    "score_outcome",
    "store_results",
]

RISK_SOURCE = "medtwin:risk"
SCORE_SYSTEM = "urn:medtwin:score"
"""Code system of stored score results; the code is the registry name (``prevent_10y``)."""


def needed_inputs(score: Score) -> list[str]:
    """Inputs the score cannot do without: required and with no default."""
    return [i.name for i in score.inputs if i.required and i.default is None]


def row_from(score: Score, derived: Mapping[str, DerivedInput]) -> dict[str, Any]:
    """The input row for ``score``: every usable derived input it declares."""
    names = {i.name for i in score.inputs}
    return {name: d.value for name, d in derived.items() if name in names and d.usable}


@dataclass(frozen=True, slots=True)
class ScoreOutcome:
    """One score for one patient: the result, or why there is none, and the inputs it used."""

    name: str
    title: str
    value: float | None
    band: str | None
    unit: str | None
    status: str
    """``computed``, ``missing`` (cannot compute) or ``refused`` (outside the population)."""
    message: str
    inputs: tuple[str, ...]
    result: ScoreResult | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        out: dict[str, Any] = {
            "name": self.name,
            "title": self.title,
            "value": self.value,
            "band": self.band,
            "unit": self.unit,
            "status": self.status,
            "message": self.message,
            "inputs": list(self.inputs),
        }
        if self.result is not None:
            out["result"] = self.result.to_dict()
        return out


def _unit(score: Score) -> str | None:
    if getattr(score, "integer_value", True):
        return "points"
    name = score.name
    if any(word in name for word in ("10y", "30y", "risk")):
        return "%"
    return None


def _reasons(names: Sequence[str], derived: Mapping[str, DerivedInput]) -> str:
    parts = []
    for n in names:
        d = derived.get(n)
        if d is None:
            parts.append(n)
        else:
            parts.append(f"{n} ({d.reason()})")
    return ", ".join(parts)


def score_outcome(score: Score, derived: Mapping[str, DerivedInput]) -> ScoreOutcome:
    """Compute ``score`` from derived inputs; missing or stale inputs give "cannot compute"."""
    declared = tuple(i.name for i in score.inputs if i.name in derived)
    needed = needed_inputs(score)
    lacking = [n for n in needed if n not in derived or not derived[n].usable]
    title = getattr(score, "title", score.name)
    if lacking:
        return ScoreOutcome(
            score.name, title, None, None, _unit(score), "missing",
            "cannot compute: missing " + _reasons(lacking, derived), declared,
        )  # fmt: skip
    result = score.compute_one(row_from(score, derived))
    if result.refused:
        return ScoreOutcome(
            score.name, title, None, None, _unit(score), "refused",
            f"not applicable: {result.refused}", declared, result,
        )  # fmt: skip
    if result.value is None or result.partial:
        return ScoreOutcome(
            score.name, title, None, None, _unit(score), "missing",
            "cannot compute: missing " + (_reasons(result.missing, derived) or "an input"),
            declared, result,
        )  # fmt: skip
    unused = [
        i.name for i in score.inputs
        if i.name not in needed and i.name in derived and not derived[i.name].usable
    ]  # fmt: skip
    note = f"without optional {_reasons(unused, derived)}" if unused else ""
    return ScoreOutcome(
        score.name, title, float(result.value), result.band, _unit(score), "computed", note,
        declared, result,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class RiskReport:
    """Everything ``medtwin risk`` says about one patient at one date."""

    patient_id: str
    at: dt.datetime
    inputs: Mapping[str, DerivedInput]
    scores: tuple[ScoreOutcome, ...]
    not_derivable: Mapping[str, tuple[str, ...]]
    """Registered scores skipped because they need inputs not read from a record."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "patient": self.patient_id,
            "date": self.at.date().isoformat(),
            "inputs": {k: v.to_dict() for k, v in self.inputs.items()},
            "scores": [s.to_dict() for s in self.scores],
            "not_derivable": {k: list(v) for k, v in self.not_derivable.items()},
        }


def _chosen(names: Sequence[str]) -> tuple[list[Score], dict[str, tuple[str, ...]]]:
    from medtwin.risk.registry import all_scores, get

    if names:
        return [get(n) for n in names], {}
    chosen: list[Score] = []
    skipped: dict[str, tuple[str, ...]] = {}
    for score in all_scores():
        other = tuple(n for n in needed_inputs(score) if n not in DERIVABLE)
        if other:
            skipped[score.name] = other
        else:
            chosen.append(score)
    return chosen, skipped


def evaluate(
    store: Store,
    patient_id: str,
    at: dt.datetime | dt.date | None = None,
    *,
    scores: Sequence[str] = (),
    derived: Mapping[str, DerivedInput] | None = None,
) -> RiskReport:
    """Derive the inputs at ``at`` and compute ``scores`` (default: every applicable one)."""
    chosen, skipped = _chosen(scores)
    if derived is None:
        derived = derive_inputs(store, patient_id, at)
    when = _when(at)
    outcomes = tuple(score_outcome(s, derived) for s in chosen)
    return RiskReport(patient_id, when, derived, outcomes, skipped)


def _when(at: dt.datetime | dt.date | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    if not isinstance(at, dt.datetime):
        return dt.datetime.combine(at, dt.time(23, 59, 59), dt.UTC)
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def result_facts(store: Store, report: RiskReport) -> list[Observation]:
    """Observation facts for the computed scores of ``report`` (nothing for the others)."""
    from medtwin.record.facts import Coding, Observation

    summary = store.patient(report.patient_id)
    if not summary.identifiers:
        return []
    subject = summary.identifiers[0]
    day = report.at.date().isoformat()
    facts = []
    for s in report.scores:
        if s.status != "computed" or s.value is None:
            continue
        facts.append(
            Observation(
                source=RISK_SOURCE,
                source_id=f"risk/{report.patient_id}/{s.name}/{day}",
                subject=subject,
                code=Coding(SCORE_SYSTEM, s.name, s.title),
                status="final",
                category="survey",
                effective_start=report.at,
                value_num=s.value,
                unit=s.unit,
                value_text=s.band,
            )
        )
    return facts


def store_results(store: Store, report: RiskReport) -> AppendResult:
    """Append the computed results of ``report`` to ``store`` (source ``medtwin:risk``)."""
    return store.append_facts(result_facts(store, report), source=RISK_SOURCE)
