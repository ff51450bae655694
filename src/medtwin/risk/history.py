"""Risk over time: every applicable score at many (patient, date) points, one call per score.

:func:`score_table` is the vectorised path: it derives the inputs of each ``(patient, date)``
point with :func:`medtwin.risk.inputs.derive_inputs` (which reads only facts whose valid time is
at or before the date; each of a patient's record queries is read once and cut at each date in
memory), builds one table of rows, and calls each score's ``compute_many`` once for all the rows
that have the inputs it needs. Each cell says the same as
:func:`medtwin.risk.from_record.evaluate` at that date (both go through
:func:`~medtwin.risk.from_record.outcome_from_result`). The population tools reuse it with many
patients.

:func:`risk_history` is what ``medtwin risk PATIENT --history`` runs: the dates are every
``--every`` (``1y``, ``6m``, ``3m``, ``30d``) from the first to the last date of the patient's
record, or ``--from`` / ``--to``. :func:`history_facts` turns the computed cells into the same
stored result facts (source ``medtwin:risk``, FHIR RiskAssessment raw) as a single evaluation,
so the history is kept; :meth:`ScoreTable.write_html` plots it. Each computed percent risk
of a history carries its interval over the day-to-day variation of its measured inputs (as a
single evaluation does: :mod:`medtwin.risk.variation`), so a trend is read against what the
measurements alone could move.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from medtwin.risk.from_record import (
    RiskReport,
    ScoreOutcome,
    chosen_scores,
    evaluation_time,
    input_columns,
    outcome_fact,
    outcome_from_result,
    record_refusal,
    result_subject,
    row_from,
    unsettled_outcome,
    with_variation,
)
from medtwin.risk.inputs import DerivedInput, derive_inputs

if TYPE_CHECKING:
    from medtwin.record.facts import Observation
    from medtwin.store.base import PatientSummary, Store, StoredFact

__all__ = [
    "HistoryError",
    "ScoreTable",
    "history_dates",
    "history_facts",
    "parse_every",
    "record_span",
    "risk_history",
    "score_table",
]

_EVERY = re.compile(r"(\d+)\s*([ymwd])")
_RISK_KINDS = ("Observation", "Condition", "MedicationRequest")
"""Fact kinds :func:`derive_inputs` reads; their dates bound the record's history."""


class HistoryError(ValueError):
    """Bad history request: the message names the option and the fix."""


@dataclass(frozen=True, slots=True)
class ScoreTable:
    """Scores at ``(patient, date)`` points: one row per point, one column per score."""

    points: tuple[tuple[str, dt.datetime], ...]
    """``(patient id, evaluation time)`` of each row."""
    scores: tuple[str, ...]
    """Score names, the columns."""
    outcomes: tuple[tuple[ScoreOutcome, ...], ...]
    """``outcomes[row][column]``."""
    inputs: tuple[Mapping[str, DerivedInput], ...]
    """The derived inputs of each row."""
    not_derivable: Mapping[str, tuple[str, ...]]
    """Registered scores skipped because they need inputs not read from a record."""

    def __len__(self) -> int:
        return len(self.points)

    def column(self, name: str) -> list[ScoreOutcome]:
        """Every row's outcome of score ``name``."""
        try:
            j = self.scores.index(name)
        except ValueError:
            raise KeyError(f"no score {name!r} in this table: {', '.join(self.scores)}") from None
        return [row[j] for row in self.outcomes]

    def report(self, row: int) -> RiskReport:
        """Row ``row`` as the :class:`~medtwin.risk.from_record.RiskReport` ``evaluate`` gives."""
        pid, at = self.points[row]
        return RiskReport(pid, at, self.inputs[row], self.outcomes[row], self.not_derivable)

    def computed(self) -> list[str]:
        """Scores computed at one row at least, in column order."""
        return self._with(("computed",))

    def answered(self) -> list[str]:
        """Scores with a value or a range (over inputs the record cannot settle) at one row at
        least, in column order: the columns of ``medtwin risk --history``."""
        return self._with(("computed", "range"))

    def _with(self, statuses: tuple[str, ...]) -> list[str]:
        return [
            name
            for j, name in enumerate(self.scores)
            if any(row[j].status in statuses for row in self.outcomes)
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the points and, per score, its value, band, status and message per row."""
        columns: dict[str, Any] = {}
        for j, name in enumerate(self.scores):
            cells = [row[j] for row in self.outcomes]
            first = cells[0] if cells else None
            columns[name] = {
                "title": first.title if first else name,
                "unit": first.unit if first else None,
                "values": [c.value for c in cells],
                "lows": [c.low for c in cells],
                "highs": [c.high for c in cells],
                "bands": [c.band for c in cells],
                "status": [c.status for c in cells],
                "messages": [c.message for c in cells],
                "variation": [c.variation.to_dict() if c.variation else None for c in cells],
            }
        return {
            "points": [{"patient": pid, "date": at.date().isoformat()} for pid, at in self.points],
            "scores": columns,
            "not_derivable": {k: list(v) for k, v in self.not_derivable.items()},
        }

    def write_html(self, path: str | Path, *, title: str | None = None) -> Path:
        """Write a self-contained HTML plot (plotly.js inlined, no network needed).

        One trace per computed score over the dates (a gap where it cannot be computed), hover
        showing the band; a risk's interval over measurement variation as its error bar; risks
        in percent share the first panel, points the second, any other unit (eGFR, dose) has
        its own panel. Meant for one patient's rows.
        """
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        names = self.computed()
        if not names:
            raise HistoryError("no score could be computed at any date: nothing to plot")
        panels: dict[str, list[str]] = {}
        for name in names:
            unit = self.column(name)[0].unit
            key = "risk (%)" if unit == "%" else "points" if unit == "points" else name
            panels.setdefault(key, []).append(name)
        keys = list(panels)
        fig = make_subplots(rows=len(keys), cols=1, shared_xaxes=True, subplot_titles=keys)
        x = [at.date().isoformat() for _, at in self.points]
        for row, key in enumerate(keys, start=1):
            for name in panels[key]:
                cells = self.column(name)
                up = [c.variation.high - c.value if c.variation and c.value is not None else None
                      for c in cells]  # fmt: skip
                down = [c.value - c.variation.low if c.variation and c.value is not None else None
                        for c in cells]  # fmt: skip
                errors = (
                    {"type": "data", "array": up, "arrayminus": down, "visible": True}
                    if any(u is not None for u in up)
                    else None
                )
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=[c.value for c in cells],
                        error_y=errors,
                        mode="lines+markers",
                        name=name,
                        text=[_hover(c) for c in cells],
                        hovertemplate="%{x}: %{y:.3g} %{text}<extra>" + name + "</extra>",
                        connectgaps=False,
                    ),
                    row=row,
                    col=1,
                )
        fig.update_xaxes(title_text="evaluation date", row=len(keys), col=1)
        fig.update_layout(
            title=title or "Risk over time",
            height=300 * len(keys) + 140,
            template="plotly_white",
        )
        out = Path(path)
        fig.write_html(out, include_plotlyjs=True, full_html=True)
        return out


def _hover(cell: ScoreOutcome) -> str:
    """A plotted point's hover text: its band, and its interval over measurement variation."""
    said = cell.band or cell.message
    if cell.variation is not None:
        v = cell.variation
        said += f"; {100 * v.level:.0f} % over day-to-day variation {v.low:.3g}-{v.high:.3g}"
    return said


class _ReadOnce:
    """A store view for deriving one patient's inputs at many dates: each timeline query is
    read once, without its ``end``, and cut at each date in memory (``effective_start < end``,
    as the store does), so N dates cost one read per query instead of N. Anything else goes to
    the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._timelines: dict[tuple[Any, ...], list[StoredFact]] = {}
        self._patients: dict[str, PatientSummary] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def patient(self, patient_id: str) -> PatientSummary:
        if patient_id not in self._patients:
            self._patients[patient_id] = self._store.patient(patient_id)
        return self._patients[patient_id]

    def timeline(
        self,
        patient_id: str,
        *,
        codes: Sequence[str] = (),
        kinds: Sequence[str] = (),
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        as_of: dt.datetime | None = None,
        include_raw: bool = False,
        resource_types: Sequence[str] = (),
    ) -> list[StoredFact]:
        if start is not None or as_of is not None:
            return self._store.timeline(
                patient_id, codes=codes, kinds=kinds, start=start, end=end, as_of=as_of,
                include_raw=include_raw, resource_types=resource_types,
            )  # fmt: skip
        key = (patient_id, tuple(codes), tuple(kinds), include_raw, tuple(resource_types))
        facts = self._timelines.get(key)
        if facts is None:
            facts = self._timelines[key] = self._store.timeline(
                patient_id, codes=codes, kinds=kinds, include_raw=include_raw,
                resource_types=resource_types,
            )  # fmt: skip
        if end is None:
            return list(facts)
        return [
            sf for sf in facts
            if sf.fact.effective_start is not None and sf.fact.effective_start < end
        ]  # fmt: skip


def score_table(
    store: Store,
    points: Sequence[tuple[str, dt.datetime | dt.date]],
    *,
    scores: Sequence[str] = (),
    variation: bool = False,
) -> ScoreTable:
    """Every score (default: every applicable one) at each ``(patient id, date)`` point.

    Inputs are derived per point as of its date (a date means the end of that day, UTC); the
    scores are computed with one ``compute_many`` call per score over all the points that have
    its needed inputs, not one call per point. ``variation``: each computed percent risk also
    gets its interval over measurement variation (:func:`~medtwin.risk.from_record
    .with_variation`; about 10 ms a cell, so off for population tables).

    Examples
    --------
    >>> from medtwin.store import open_store
    >>> store = open_store(":memory:", actor="doctest")
    >>> table = score_table(store, [], scores=["prevent_10y"])
    >>> len(table), table.scores
    (0, ('prevent_10y',))
    """
    chosen, skipped = chosen_scores(scores)
    whens = tuple((pid, evaluation_time(at)) for pid, at in points)
    views: dict[str, Store] = {}
    inputs = []
    for pid, at in whens:
        view = views.get(pid)
        if view is None:
            views.clear()  # one patient's reads at a time: memory stays one record's
            view = views[pid] = cast("Store", _ReadOnce(store))
        inputs.append(derive_inputs(view, pid, at))
    columns: list[list[ScoreOutcome]] = []
    for score in chosen:
        cells: list[ScoreOutcome | None] = [None] * len(whens)
        todo: list[int] = []
        lacking: list[int] = []  # "cannot compute" unless what they have refuses them
        for i, derived in enumerate(inputs):
            refused = record_refusal(score, derived)
            unsettled = (
                unsettled_outcome(score, derived, partial=False) if refused is None else None
            )
            if refused is not None:
                cells[i] = refused
            elif unsettled is not None:
                cells[i] = unsettled
                if unsettled.status == "missing":
                    lacking.append(i)
            else:
                todo.append(i)
        if todo or lacking:
            rows = [row_from(score, inputs[i]) for i in todo + lacking]
            results = score.compute_many(input_columns(score, rows), rows=len(rows))
            for k, i in enumerate(todo):
                cell = outcome_from_result(score, inputs[i], results[k])
                cells[i] = with_variation(score, inputs[i], cell) if variation else cell
            for k, i in enumerate(lacking, start=len(todo)):
                if results[k].refused:  # outside the population whatever is missing
                    cells[i] = outcome_from_result(score, inputs[i], results[k])
        columns.append([c for c in cells if c is not None])
    outcomes = tuple(
        tuple(col[i] for col in columns) for i in range(len(whens))
    )  # fmt: skip
    return ScoreTable(whens, tuple(s.name for s in chosen), outcomes, tuple(inputs), skipped)


def parse_every(text: str) -> tuple[int, str]:
    """``1y``, ``6m``, ``2w``, ``30d`` as ``(count, unit)``; unit ``y``, ``m``, ``w`` or ``d``.

    >>> parse_every("6m")
    (6, 'm')
    """
    found = _EVERY.fullmatch(text.strip().lower())
    if found is None or int(found.group(1)) < 1:
        raise HistoryError(
            f"--every {text!r} is not a step: use a whole number and y (years), m (months), "
            "w (weeks) or d (days), e.g. 1y or 6m"
        )
    return int(found.group(1)), found.group(2)


def _add_months(day: dt.date, months: int) -> dt.date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def history_dates(start: dt.date, end: dt.date, every: str = "1y") -> list[dt.date]:
    """``start``, then every ``every`` (counted from ``start``, month ends clamped) before
    ``end``, then ``end``.

    >>> history_dates(dt.date(2020, 1, 31), dt.date(2020, 7, 1), "2m")
    [datetime.date(2020, 1, 31), datetime.date(2020, 3, 31), datetime.date(2020, 5, 31), datetime.date(2020, 7, 1)]
    """
    if end < start:
        raise HistoryError(f"--to {end.isoformat()} is before --from {start.isoformat()}")
    count, unit = parse_every(every)
    out: list[dt.date] = []
    k = 0
    while True:
        if unit in ("y", "m"):
            day = _add_months(start, k * count * (12 if unit == "y" else 1))
        else:
            day = start + dt.timedelta(days=k * count * (7 if unit == "w" else 1))
        if day >= end:
            break
        out.append(day)
        k += 1
    out.append(end)
    return out


def record_span(store: Store, patient_id: str) -> tuple[dt.date, dt.date] | None:
    """First and last effective dates of the observations, conditions and medication requests
    in the patient's record (``None`` when it has none); stored score results do not count."""
    from medtwin.risk.from_record import RISK_SOURCE

    days = [
        sf.fact.effective_start.date()
        for sf in store.timeline(patient_id, kinds=_RISK_KINDS)
        if sf.fact.effective_start is not None and sf.fact.source != RISK_SOURCE
    ]
    if not days:
        return None
    return min(days), max(days)


def risk_history(
    store: Store,
    patient_id: str,
    *,
    every: str = "1y",
    start: dt.date | None = None,
    end: dt.date | None = None,
    scores: Sequence[str] = (),
    variation: bool = True,
) -> ScoreTable:
    """Scores of one patient at every ``every`` from ``start`` to ``end`` (default: the record's
    first and last dates, :func:`record_span`), each computed percent risk with its interval
    over measurement variation unless ``variation`` is false."""
    parse_every(every)
    if start is None or end is None:
        span = record_span(store, patient_id)
        if span is None:
            raise HistoryError(
                f"patient {patient_id} has no dated observation, condition or medication: "
                "give --from and --to"
            )
        start = start or span[0]
        end = end or span[1]
    days = history_dates(start, end, every)
    return score_table(store, [(patient_id, d) for d in days], scores=scores, variation=variation)


def history_facts(store: Store, table: ScoreTable) -> list[Observation]:
    """The stored result facts of every computed cell (as :func:`store_results` writes them)."""
    subjects: dict[str, Any] = {}
    facts: list[Observation] = []
    for (pid, at), row, derived in zip(table.points, table.outcomes, table.inputs, strict=True):
        if pid not in subjects:
            subjects[pid] = result_subject(store.patient(pid).identifiers)
        if subjects[pid] is None:
            continue
        for outcome in row:
            fact = outcome_fact(subjects[pid], pid, at, outcome, derived)
            if fact is not None:
                facts.append(fact)
    return facts
