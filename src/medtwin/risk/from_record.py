"""Scores from the patient record: derive the inputs, compute every applicable score, store results.

:func:`evaluate` is what ``medtwin risk PATIENT`` runs. It is generic over the score registry
(:mod:`medtwin.risk.registry`): a score is *applicable* when every input it needs (required and
without a default) is one :mod:`medtwin.risk.inputs` derives from a record; scores that need other
inputs (NEWS2's respiration rate, FINDRISC's questionnaire) are listed as not derivable unless
named. A score whose inputs are missing or stale says "cannot compute: missing X (reason)"; one
that refuses the patient (outside its valid population) says why, and so does one whose
``record_population`` the record is outside (:func:`record_refusal`: a first-event equation after
a myocardial infarction, CHA2DS2-VASc without atrial fibrillation).

Results are stored as :class:`~medtwin.record.facts.Observation` facts of the source
``medtwin:risk`` with the code system :data:`SCORE_SYSTEM` and the score name as code (medtwin has
no RiskAssessment fact kind). The source id holds the patient, the score and the evaluation date,
so evaluating the same date again replaces that result (a new version when it changed) and
different dates build the risk's history (:mod:`medtwin.risk.history` evaluates many dates at
once). Each result fact keeps, as its raw resource, the FHIR R4 ``RiskAssessment`` that FHIR
export writes (:func:`risk_assessment`): the score as ``code`` and ``method``, the value as
``prediction.probabilityDecimal`` (risks in percent) or in the :data:`SCORE_VALUE_URL` extension,
the band as ``prediction.qualitativeRisk``, the facts the inputs came from as ``basis`` and the
score's source as ``note``; FHIR import reads it back into the same fact.

References
----------
HL7 FHIR R4 (4.0.1) RiskAssessment (riskassessment.html): ``status``, ``subject``,
``occurrenceDateTime``, ``method``, ``code``, ``basis``, ``prediction.probabilityDecimal``,
``prediction.qualitativeRisk``, ``note``. R4 does not fix the scale of ``probabilityDecimal``
(its invariant ras-2 only says "Must be <= 100"); medtwin writes the probability as a 0-1
decimal (a 7.5 % risk is 0.075) and the exact value with its unit in the extension.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from medtwin.risk.inputs import DERIVABLE, DerivedInput, derive_inputs, given_input
from medtwin.risk.variation import Variation, measurement_interval

if TYPE_CHECKING:
    from medtwin.record.facts import Coding, Identifier, Observation
    from medtwin.risk.base import Score, ScoreInput, ScoreResult
    from medtwin.store.base import AppendResult, Store

__all__ = [
    "MEASUREMENT_INTERVAL_URL",
    "RISK_IDENTIFIER_SYSTEM",
    "RISK_SOURCE",
    "SCORE_SYSTEM",
    "SCORE_VALUE_URL",
    "RiskReport",
    "ScoreOutcome",
    "choices_text",
    "chosen_scores",
    "evaluate",
    "evaluation_time",
    "lacking_inputs",
    "missing_outcome",
    "needed_inputs",
    "outcome_fact",
    "outcome_from_result",
    "parse_given",
    "range_text",
    "record_refusal",
    "result_facts",
    "result_subject",
    "risk_assessment",
    "row_from",
    "score_outcome",
    "stale_note",
    "store_results",
    "untreated_outcomes",
    "with_variation",
]

RISK_SOURCE = "medtwin:risk"
SCORE_SYSTEM = "urn:medtwin:score"
"""Code system of stored score results; the code is the registry name (``prevent_10y``)."""
RISK_IDENTIFIER_SYSTEM = "urn:medtwin:risk"
"""Identifier system of exported RiskAssessments; the value is the result fact's source id."""
SCORE_VALUE_URL = "urn:medtwin:fhir:StructureDefinition:score-value"
"""medtwin's extension on ``RiskAssessment.prediction``: the score's value as a Quantity in its own
unit (points, %, mL/min/1.73 m2), exact, for scores that are not a probability and so that a
risk in percent round-trips without the rounding of ``probabilityDecimal``."""
MEASUREMENT_INTERVAL_URL = "urn:medtwin:fhir:StructureDefinition:measurement-interval"
"""medtwin's extension on ``RiskAssessment.prediction``: the central share (sub-extension
``level``, 0.9) of the risk over the day-to-day variation of its measured inputs (``range``, in
the score's unit; :mod:`medtwin.risk.variation`), with what was varied (``varied``, text)."""
_UCUM = "http://unitsofmeasure.org"


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
    """``computed``, ``range`` (``low`` to ``high`` over what the record leaves possible for
    inputs it cannot settle), ``missing`` (cannot compute) or ``refused`` (outside the
    population)."""
    message: str
    inputs: tuple[str, ...]
    result: ScoreResult | None = field(default=None, repr=False)
    low: float | None = None
    high: float | None = None
    untreated: ScoreOutcome | None = None
    """For a score refused only because the patient is on a statin: the same score from the
    record the day before the statin was first ordered (:func:`untreated_outcomes`)."""
    untreated_at: dt.date | None = None
    variation: Variation | None = None
    """For a computed percent risk: its central 90 % over the day-to-day variation of the
    cholesterol and systolic pressure it rests on (:mod:`medtwin.risk.variation`)."""

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
        if self.status == "range":
            out["low"], out["high"] = self.low, self.high
        if self.result is not None:
            out["result"] = self.result.to_dict()
        if self.untreated is not None and self.untreated_at is not None:
            out["untreated"] = {"date": self.untreated_at.isoformat(), **self.untreated.to_dict()}
        if self.variation is not None:
            out["variation"] = self.variation.to_dict()
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


def lacking_inputs(score: Score, derived: Mapping[str, DerivedInput]) -> list[str]:
    """The needed inputs of ``score`` that ``derived`` lacks or holds stale."""
    return [n for n in needed_inputs(score) if n not in derived or not derived[n].usable]


def _declared(score: Score, derived: Mapping[str, DerivedInput]) -> tuple[str, ...]:
    """The score's inputs, then what its record population reads (atrial fibrillation for
    CHA2DS2-VASc: a fact the result rests on), that ``derived`` holds."""
    names = [i.name for i in score.inputs]
    names += [name for name, _, _ in score.record_population if name not in names]
    return tuple(name for name in names if name in derived)


def record_refusal(score: Score, derived: Mapping[str, DerivedInput]) -> ScoreOutcome | None:
    """The outcome when the record is outside ``score.record_population`` ("not applicable":
    CHA2DS2-VASc for a patient with no atrial fibrillation, the Pooled Cohort Equations for one
    on a statin), or cannot say whether it is ("cannot compute": a statin order whose end the
    record does not give); else ``None``. A patient who had died by the date (the ``deceased``
    input) is outside every score's population: a risk of what is to come is for the living."""
    died = derived.get("deceased")
    if died is not None and died.value is True:
        return ScoreOutcome(
            score.name, getattr(score, "title", score.name), None, None, _unit(score),
            "refused", f"not applicable: the patient had died by the date ({died.detail})",
            _declared(score, derived),
        )  # fmt: skip
    for name, wanted, why in score.record_population:
        d = derived.get(name)
        if d is None or d.value is None:
            return missing_outcome(score, derived, [name])
        if d.value is not wanted:
            title = getattr(score, "title", score.name)
            said = f" ({d.detail})" if d.value is True and d.detail else ""
            return ScoreOutcome(
                score.name, title, None, None, _unit(score), "refused",
                f"not applicable: {why}{said}", _declared(score, derived),
            )  # fmt: skip
    return None


def score_outcome(
    score: Score, derived: Mapping[str, DerivedInput], *, population: bool = True
) -> ScoreOutcome:
    """Compute ``score`` from derived inputs; missing or stale inputs give "cannot compute", a
    record outside the score's population (or a patient who had died by the date:
    :func:`record_refusal`) "not applicable".

    ``population=False`` skips the record-population check: a what-if on a record already
    found inside it (starting a statin does not take the patient out of the population whose
    risk the equation estimates; :func:`medtwin.twin.prevention.rank_changes`)."""
    refused = record_refusal(score, derived) if population else None
    if refused is not None:
        return refused
    unsettled = unsettled_outcome(score, derived)
    if unsettled is not None:
        return unsettled
    return outcome_from_result(score, derived, score.compute_one(row_from(score, derived)))


def unsettled_outcome(
    score: Score, derived: Mapping[str, DerivedInput], *, partial: bool = True
) -> ScoreOutcome | None:
    """The outcome when ``derived`` cannot settle an input of ``score``, else ``None`` (compute
    it from the row): a needed input missing or stale gives the range over its alternatives
    (:func:`range_outcome`) or "cannot compute"; an optional one with alternatives (QRISK3's
    family history with a relative's age at onset not recorded) gives the range over them
    rather than the score's substitute.

    Before "cannot compute", the score is run on what the record does give (``partial``): when
    that already puts the patient outside the score's population (an 11-year-old for a 10-year
    CVD risk), "not applicable" is the answer, not "missing cholesterol", which would ask for
    a test that cannot help. ``partial=False`` leaves that to the caller (a population table
    runs those rows in its one batched call, :func:`medtwin.risk.history.score_table`)."""
    lacking = lacking_inputs(score, derived)
    if lacking:
        ranged = range_outcome(score, derived, lacking)
        if ranged is not None:
            return ranged
        if partial:
            result = score.compute_one(row_from(score, derived))
            if result.refused:
                return outcome_from_result(score, derived, result)
        return missing_outcome(score, derived, lacking)
    optional = _open_optional(score, derived)
    return range_outcome(score, derived, optional) if optional else None


def unsettled_inputs(score: Score, derived: Mapping[str, DerivedInput]) -> list[str]:
    """The inputs of ``score`` a range runs over: the needed ones ``derived`` lacks, or when
    none, the optional ones it cannot use but narrows to alternatives."""
    return lacking_inputs(score, derived) or _open_optional(score, derived)


def _open_optional(score: Score, derived: Mapping[str, DerivedInput]) -> list[str]:
    needed = set(needed_inputs(score))
    return [
        i.name for i in score.inputs
        if i.name not in needed and i.name in derived and not derived[i.name].usable
        and derived[i.name].alternatives
    ]  # fmt: skip


def settlements(
    derived: Mapping[str, DerivedInput], names: Sequence[str]
) -> list[dict[str, DerivedInput]]:
    """One mapping per combination of the alternatives of ``names``, each input set to one of
    them (a what-if runs on each, :func:`medtwin.twin.prevention.rank_changes`); ``[{}]`` for
    no names."""
    choices = [derived[n].alternatives for n in names]
    return [
        {
            n: dataclasses.replace(
                derived[n], value=v, status="computed", detail=f"one of {derived[n].alternatives}"
            )
            for n, v in zip(names, combo, strict=True)
        }
        for combo in itertools.product(*choices)
    ]


RANGE_COMBINATIONS = 32
"""The most combinations of unsettled inputs' alternatives computed for one range (five yes/no
inputs); more, and the score says "cannot compute"."""


def input_columns(score: Score, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Input columns of ``score`` for ``rows``; an input no row has stays absent, as in
    ``compute_one`` (so its declared default applies)."""
    columns: dict[str, list[Any]] = {}
    for inp in score.inputs:
        values = [r.get(inp.name) for r in rows]
        if any(v is not None for v in values):
            columns[inp.name] = values
    return columns


def _said(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def choices_text(alternatives: Sequence[Any]) -> str:
    """The values left possible, as said: "yes or no", "light or moderate or heavy"; numbers
    (the two ends of a result reported as a bound) as the interval "90 to 150"."""
    if len(alternatives) == 2 and all(
        isinstance(v, float) and not isinstance(v, bool) for v in alternatives
    ):
        return f"{min(alternatives):.4g} to {max(alternatives):.4g}"
    return " or ".join(_said(v) for v in alternatives)


def range_outcome(
    score: Score, derived: Mapping[str, DerivedInput], lacking: Sequence[str]
) -> ScoreOutcome | None:
    """The score over every value the record leaves possible for the ``lacking`` inputs, as a
    range (``status`` ``range``, ``low`` to ``high``), when each has alternatives
    (:attr:`~medtwin.risk.inputs.DerivedInput.alternatives`: a daily smoker of unrecorded
    amount, a statin order of unknown state) and every combination computes; else ``None``.

    No value is assumed: the range is what the score is whatever those inputs are, so a
    clinician sees how much the unknown matters (HAS-BLED 2 to 3 points when the INR control
    is not known). It is not stored as a result. At most :data:`RANGE_COMBINATIONS`.
    """
    choices: list[tuple[Any, ...]] = []
    for name in lacking:
        d = derived.get(name)
        if d is None or not d.alternatives:
            return None
        choices.append(d.alternatives)
    combos = list(itertools.product(*choices))
    if len(combos) > RANGE_COMBINATIONS:
        return None
    base = row_from(score, derived)
    rows = [{**base, **dict(zip(lacking, combo, strict=True))} for combo in combos]
    results = score.compute_many(input_columns(score, rows), rows=len(rows))
    if all(r.refused for r in results) and len({r.refused for r in results}) == 1:
        # refused whatever the unknown is (the patient's age is outside the score's): that
        # is the answer, not "cannot compute"
        return outcome_from_result(score, derived, results[0])
    estimate = getattr(score, "partial_is_estimate", False)
    if any(r.refused or r.value is None or (r.partial and not estimate) for r in results):
        return None
    lo = min(results, key=lambda r: float(r.value))  # type: ignore[arg-type]
    hi = max(results, key=lambda r: float(r.value))  # type: ignore[arg-type]
    unsettled = "; ".join(
        f"{name} not known ({derived[name].reason()}): " + choices_text(derived[name].alternatives)
        for name in lacking
    )
    substituted = [n for n in lo.missing if n not in lacking]
    if estimate and substituted:  # QRISK3's own substitutes for the other missing ones, said
        unsettled += (
            f"; with {score.name}'s substitutes for missing {_reasons(substituted, derived)}"
        )
    title = getattr(score, "title", score.name)
    if float(lo.value) == float(hi.value):  # type: ignore[arg-type]
        return ScoreOutcome(
            score.name, title, float(lo.value), lo.band, _unit(score), "computed",  # type: ignore[arg-type]
            f"the same whatever the record leaves possible: {unsettled}",
            _declared(score, derived), lo,
        )  # fmt: skip
    band = lo.band if lo.band == hi.band else None
    bands = f" (band {lo.band} to {hi.band})" if band is None and lo.band and hi.band else ""
    return ScoreOutcome(
        score.name, title, None, band, _unit(score), "range",
        f"range over what the record leaves possible{bands}: {unsettled}",
        _declared(score, derived), None, float(lo.value), float(hi.value),  # type: ignore[arg-type]
    )  # fmt: skip


def missing_outcome(
    score: Score, derived: Mapping[str, DerivedInput], lacking: Sequence[str]
) -> ScoreOutcome:
    """The "cannot compute: missing X (reason)" outcome for the ``lacking`` needed inputs."""
    title = getattr(score, "title", score.name)
    return ScoreOutcome(
        score.name, title, None, None, _unit(score), "missing",
        "cannot compute: missing " + _reasons(lacking, derived), _declared(score, derived),
    )  # fmt: skip


def outcome_from_result(
    score: Score, derived: Mapping[str, DerivedInput], result: ScoreResult
) -> ScoreOutcome:
    """The outcome of ``result``, computed from the usable inputs in ``derived``.

    :func:`score_outcome` computes one row; :func:`medtwin.risk.history.score_table` computes
    many rows with one ``compute_many`` call per score and passes each row's result here, so
    both say the same thing for the same inputs. Call it only when :func:`lacking_inputs` is
    empty.
    """
    declared = _declared(score, derived)
    needed = needed_inputs(score)
    title = getattr(score, "title", score.name)
    if result.refused:
        return ScoreOutcome(
            score.name, title, None, None, _unit(score), "refused",
            f"not applicable: {result.refused}", declared, result,
        )  # fmt: skip
    estimate = result.partial and getattr(score, "partial_is_estimate", False)
    if result.value is None or (result.partial and not estimate):
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
    if estimate:  # the score's own substitutes (QRISK3: Townsend 0 ...), said
        note = f"with {score.name}'s substitutes for missing {_reasons(result.missing, derived)}"
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


def stale_note(store: Store, report: RiskReport) -> str | None:
    """When scores cannot be computed because inputs they read are stale at the report's date
    (a record whose data end long before it, as a synthetic record read today): how many, the
    newest stale measurement, and where to look instead. When the record read at that
    measurement's date computes some of those scores, ``--date`` with it is suggested (a past
    risk, labelled with its date); else ``--history`` (the risk at each past year). ``None``
    when no score is blocked by a stale input."""
    blocked = [s for s in report.scores if s.status == "missing"]
    used = {name for s in blocked for name in s.inputs}
    stale = [d for name, d in report.inputs.items() if name in used and d.status == "stale"]
    dates = [p.date[:10] for d in stale for p in d.provenance[:1] if p.date]
    if not dates:
        return None
    newest = max(dates)
    text = (
        f"{len(blocked)} score(s) cannot be computed, {len(stale)} of the inputs they read "
        f"being stale at {report.at.date().isoformat()} (the newest from {newest})"
    )
    then = evaluate(
        store,
        report.patient_id,
        dt.date.fromisoformat(newest),
        scores=[s.name for s in blocked],
        variation=False,
    )
    computed = sum(s.status in ("computed", "range") for s in then.scores)
    if computed:
        return (
            f"{text}: --date {newest} gives the risk as the record stood then "
            f"({computed} of them computed)"
        )
    return f"{text}: --history shows the risk at each past year of the record"


def chosen_scores(names: Sequence[str]) -> tuple[list[Score], dict[str, tuple[str, ...]]]:
    """The scores ``names`` (default: every registered score whose needed inputs a record gives)
    and the skipped ones with the inputs they need that are not read from a record."""
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
            chosen.extend(score.companions())
    return chosen, skipped


def parse_given(pairs: Sequence[str]) -> dict[str, DerivedInput]:
    """Inputs given as ``NAME=VALUE`` (``medtwin risk --set``), each checked against the scores
    that declare it: a number, a yes/no, or one of a category's values (or aliases).

    Raises
    ------
    ValueError
        Naming the pair: not ``NAME=VALUE``, a name no record-read score declares, a value of
        the wrong kind, or a name given twice.

    Examples
    --------
    >>> d = parse_given(["townsend_score=3.2", "smoker=no", "ethnicity=Indian"])
    >>> [(x.value, x.status) for x in d.values()]
    [(3.2, 'given'), (False, 'given'), ('indian', 'given')]
    """
    from medtwin.risk.base import _FALSE, _TRUE
    from medtwin.risk.registry import all_scores

    specs: dict[str, ScoreInput] = {}
    for score in all_scores():
        for inp in score.inputs:
            if inp.name in DERIVABLE:
                specs.setdefault(inp.name, inp)
    out: dict[str, DerivedInput] = {}
    for pair in pairs:
        name, sep, text = (part.strip() for part in pair.partition("="))
        if not sep or not name or not text:
            raise ValueError(f"{pair!r}: give an input as NAME=VALUE (townsend_score=3.2)")
        spec = specs.get(name)
        if spec is None:
            raise ValueError(
                f"{pair!r}: {name!r} is not an input medtwin reads from a record for a score; "
                f"known: {', '.join(sorted(specs))}"
            )
        if name in out:
            raise ValueError(f"{pair!r}: {name} given twice")
        value: str | float | bool
        if spec.kind == "number":
            try:
                value = float(text)
            except ValueError:
                raise ValueError(
                    f"{pair!r}: {name} is a number ({spec.unit or 'no unit'})"
                ) from None
            if not math.isfinite(value):
                raise ValueError(f"{pair!r}: {name} must be a finite number")
        elif spec.kind == "bool":
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError(f"{pair!r}: {name} is yes or no")
            value = text.lower() in _TRUE
        else:
            canonical = {str(c).lower(): c for c in spec.categories or ()}
            canonical.update({str(k).lower(): v for k, v in spec.aliases.items()})
            found = canonical.get(text.lower())
            if found is None:
                raise ValueError(
                    f"{pair!r}: {name} is one of {', '.join(map(str, spec.categories or ()))}"
                )
            value = str(found)
        out[name] = given_input(name, value, text)
    return out


def evaluate(
    store: Store,
    patient_id: str,
    at: dt.datetime | dt.date | None = None,
    *,
    scores: Sequence[str] = (),
    derived: Mapping[str, DerivedInput] | None = None,
    variation: bool = True,
    given: Mapping[str, DerivedInput] | None = None,
) -> RiskReport:
    """Derive the inputs at ``at`` and compute ``scores`` (default: every applicable one).

    Each computed percent risk carries its interval over the measurement variation of its
    inputs (``variation=False``: not drawn); a score refused for a statin carries its untreated
    estimate (:func:`untreated_outcomes`). ``given`` inputs (:func:`parse_given`) replace the
    record's, also for the untreated estimate."""
    chosen, skipped = chosen_scores(scores)
    if derived is None:
        derived = derive_inputs(store, patient_id, at, given=given)
    when = evaluation_time(at)
    outcomes = tuple(score_outcome(s, derived) for s in chosen)
    outcomes = untreated_outcomes(
        store, patient_id, chosen, derived, outcomes, variation=variation, given=given
    )
    if variation:
        outcomes = tuple(
            with_variation(s, derived, o) for s, o in zip(chosen, outcomes, strict=True)
        )
    return RiskReport(patient_id, when, derived, outcomes, skipped)


def with_variation(
    score: Score, derived: Mapping[str, DerivedInput], outcome: ScoreOutcome
) -> ScoreOutcome:
    """``outcome`` with its interval over the measurement variation of its inputs, when it is
    a computed percent risk (:func:`medtwin.risk.variation.measurement_interval`)."""
    if outcome.status != "computed" or outcome.unit != "%" or outcome.value is None:
        return outcome
    interval = measurement_interval(score, derived, row_from(score, derived))
    return outcome if interval is None else replace(outcome, variation=interval)


def untreated_outcomes(
    store: Store,
    patient_id: str,
    chosen: Sequence[Score],
    derived: Mapping[str, DerivedInput],
    outcomes: tuple[ScoreOutcome, ...],
    *,
    variation: bool = True,
    given: Mapping[str, DerivedInput] | None = None,
) -> tuple[ScoreOutcome, ...]:
    """``outcomes`` with the untreated estimate of each score refused only for a statin (with
    its own interval over measurement variation, unless ``variation`` is false).

    The Pooled Cohort Equations and QRISK3 do not apply to a patient on a statin (their
    cholesterol inputs would be treated values, ``NOT_ON_STATIN``); their guidelines' own tools
    ask for the pre-treatment values instead (the ACC/AHA Risk Estimator Plus). The record is
    read again the day before the first order of the statin group (``statin.since``) and the
    score computed there: its age, values and validity windows are those of that day, and it
    may itself be "cannot compute" (no lipid panel in the year before) or "not applicable".
    """
    statin = derived.get("statin")
    if statin is None or statin.value is not True or statin.since is None:
        return outcomes
    off = {**derived, "statin": DerivedInput("statin", False, "absent")}
    refused_for_statin = [
        i for i, (score, out) in enumerate(zip(chosen, outcomes, strict=True))
        if out.status == "refused" and record_refusal(score, derived) is not None
        and record_refusal(score, off) is None
    ]  # fmt: skip
    if not refused_for_statin:
        return outcomes
    before = statin.since - dt.timedelta(days=1)
    then = derive_inputs(store, patient_id, before, given=given)
    changed = list(outcomes)
    for i in refused_for_statin:
        untreated = score_outcome(chosen[i], then)
        if variation:
            untreated = with_variation(chosen[i], then, untreated)
        changed[i] = replace(outcomes[i], untreated=untreated, untreated_at=before)
    return tuple(changed)


def evaluation_time(at: dt.datetime | dt.date | None) -> dt.datetime:
    """``at`` as an aware UTC time: a date means the end of that day (23:59:59 UTC); ``None``
    means now."""
    if at is None:
        return dt.datetime.now(dt.UTC)
    if not isinstance(at, dt.datetime):
        return dt.datetime.combine(at, dt.time(23, 59, 59), dt.UTC)
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def _fhir_patient_id(ident: Identifier) -> bool:
    """True for a FHIR Patient logical id (``urn:medtwin:fhir:<source>:Patient``, see
    :func:`medtwin.ingest.fhir.patient_identifier_system`)."""
    return ident.system.startswith("urn:medtwin:fhir:") and ident.system.endswith(":Patient")


def result_subject(identifiers: Sequence[Identifier]) -> Identifier | None:
    """The patient's FHIR logical id where it has one (a literal ``Patient/id`` on export)."""
    for ident in identifiers:
        if _fhir_patient_id(ident):
            return ident
    return identifiers[0] if identifiers else None


_FHIR_REFERENCE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}")


def _basis(outcome: ScoreOutcome, derived: Mapping[str, DerivedInput]) -> list[str]:
    """``Type/id`` of the facts the outcome's usable inputs were read from (components: their
    resource), in input order; facts whose source id is not a FHIR reference are left out."""
    out: dict[str, None] = {}
    for name in outcome.inputs:
        d = derived.get(name)
        if d is None or not d.usable:
            continue
        for p in d.provenance:
            ref = p.source_id.split("#", 1)[0]
            if _FHIR_REFERENCE.fullmatch(ref):
                out[ref] = None
    return list(out)


def risk_assessment(
    *,
    source_id: str,
    subject: Identifier | None,
    code: Coding,
    at: dt.datetime,
    value: float | None,
    unit: str | None,
    band: str | None,
    basis: Sequence[str] = (),
    note: str | None = None,
    interval: Variation | None = None,
    value_range: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The FHIR R4 RiskAssessment of one stored score result.

    ``interval``, the risk over measurement variation, goes in the
    :data:`MEASUREMENT_INTERVAL_URL` extension of the prediction. A result that is a range over
    what the record leaves open (``value=None``, ``value_range=(low, high)``) has the range in
    the :data:`SCORE_VALUE_URL` extension (``valueRange``) and, in percent, as
    ``probabilityRange``.

    ``subject`` becomes a literal ``Patient/id`` when it is a FHIR logical id
    (``urn:medtwin:fhir:<source>:Patient``), else a logical reference by identifier. A value
    in percent is also ``prediction.probabilityDecimal`` (value / 100); the exact value and its
    unit are in the :data:`SCORE_VALUE_URL` extension.

    Examples
    --------
    >>> from medtwin.record.facts import Coding
    >>> ra = risk_assessment(
    ...     source_id="risk/p1/prevent_10y/2024-01-01", subject=None,
    ...     code=Coding(SCORE_SYSTEM, "prevent_10y", "PREVENT 10-year CVD"),
    ...     at=dt.datetime(2024, 1, 1, 23, 59, 59, tzinfo=dt.UTC), value=7.5, unit="%",
    ...     band="intermediate",
    ... )
    >>> ra["prediction"][0]["probabilityDecimal"], ra["prediction"][0]["qualitativeRisk"]
    (0.075, {'text': 'intermediate'})
    """
    coding: dict[str, Any] = {"system": code.system, "code": code.code}
    if code.display:
        coding["display"] = code.display
    quantity: dict[str, Any] = {}
    if unit:
        quantity["unit"] = unit
        if unit == "%":
            quantity.update(system=_UCUM, code="%")
    if value is None:
        if value_range is None:
            raise ValueError("a RiskAssessment needs a value or a range")
        ends = {
            "low": {"value": value_range[0], **quantity},
            "high": {"value": value_range[1], **quantity},
        }
        prediction: dict[str, Any] = {
            "extension": [{"url": SCORE_VALUE_URL, "valueRange": ends}],
            "outcome": {"text": code.display or code.code},
        }
        if unit == "%":
            prediction["probabilityRange"] = ends
    else:
        quantity = {"value": value, **quantity}
        prediction = {
            "extension": [{"url": SCORE_VALUE_URL, "valueQuantity": quantity}],
            "outcome": {"text": code.display or code.code},
        }
        if unit == "%":
            prediction["probabilityDecimal"] = value / 100.0
    if band:
        prediction["qualitativeRisk"] = {"text": band}
    if interval is not None:
        ends = {
            "low": {**quantity, "value": interval.low},
            "high": {**quantity, "value": interval.high},
        }
        prediction["extension"].append(
            {
                "url": MEASUREMENT_INTERVAL_URL,
                "extension": [
                    {"url": "range", "valueRange": ends},
                    {"url": "level", "valueDecimal": interval.level},
                    *({"url": "varied", "valueString": v} for v in interval.varied),
                ],
            }
        )
    digest = hashlib.blake2b(f"{RISK_SOURCE}|{source_id}".encode(), digest_size=16).hexdigest()
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "id": digest,
        "meta": {"source": RISK_SOURCE},
        "identifier": [{"system": RISK_IDENTIFIER_SYSTEM, "value": source_id}],
        "status": "final",
        "method": {"coding": [coding]},
        "code": {"coding": [dict(coding)]},
    }
    if subject is not None:
        if _fhir_patient_id(subject):
            resource["subject"] = {"reference": f"Patient/{subject.value}"}
        else:
            resource["subject"] = {"identifier": {"system": subject.system, "value": subject.value}}
    resource["occurrenceDateTime"] = at.isoformat()
    if basis:
        resource["basis"] = [{"reference": ref} for ref in basis]
    resource["prediction"] = [prediction]
    if note:
        resource["note"] = [{"text": note}]
    return resource


def _note(outcome: ScoreOutcome, derived: Mapping[str, DerivedInput] | None = None) -> str | None:
    from medtwin.risk.registry import get

    result = outcome.result
    if result is not None:
        version, source = result.version, result.source
    else:  # a range: the score's own
        score = get(outcome.name)
        version, source = score.version, score.source
    text = f"medtwin {outcome.name} {version}. Source: {source}"
    if outcome.message:
        text += f" ({outcome.message})"
    given = [
        f"{name}={derived[name].value}"
        for name in outcome.inputs
        if derived is not None and name in derived and derived[name].status == "given"
    ]
    if given:
        text += f". Inputs given by the user, not from the record: {', '.join(given)}"
    return text


def outcome_fact(
    subject: Identifier | None,
    patient_id: str,
    at: dt.datetime,
    outcome: ScoreOutcome,
    derived: Mapping[str, DerivedInput],
) -> Observation | None:
    """The stored fact of one computed outcome, or of a range over what the record leaves open
    (``value_num`` none, the range in ``value_text`` and the RiskAssessment); ``None`` for the
    others (cannot compute, not applicable)."""
    from medtwin.record.facts import Coding, Observation

    value_range: tuple[float, float] | None = None
    if outcome.status == "range" and outcome.low is not None and outcome.high is not None:
        value_range = (outcome.low, outcome.high)
    elif outcome.status != "computed" or outcome.value is None:
        return None
    source_id = f"risk/{patient_id}/{outcome.name}/{at.date().isoformat()}"
    code = Coding(SCORE_SYSTEM, outcome.name, outcome.title)
    raw = risk_assessment(
        source_id=source_id, subject=subject, code=code, at=at, value=outcome.value,
        unit=outcome.unit, band=outcome.band, basis=_basis(outcome, derived),
        note=_note(outcome, derived), interval=outcome.variation, value_range=value_range,
    )  # fmt: skip
    return Observation(
        source=RISK_SOURCE,
        source_id=source_id,
        subject=subject,
        code=code,
        status="final",
        category="survey",
        effective_start=at,
        value_num=outcome.value,
        unit=outcome.unit,
        value_text=outcome.band if value_range is None else range_text(*value_range, outcome.unit),
        resource_type="RiskAssessment",
        raw=raw,
    )


def range_text(low: float, high: float, unit: str | None) -> str:
    """A stored range result's text: ``"25.2 to 30.4 %"``.

    >>> range_text(25.24, 30.41, "%"), range_text(1, 2, "{points}")
    ('25.2 to 30.4 %', '1 to 2 {points}')
    """
    return f"{low:.3g} to {high:.3g}" + (f" {unit}" if unit else "")


def result_facts(store: Store, report: RiskReport) -> list[Observation]:
    """Observation facts for the computed scores of ``report`` (nothing for the others)."""
    summary = store.patient(report.patient_id)
    if not summary.identifiers:
        return []
    subject = result_subject(summary.identifiers)
    facts = []
    for s in report.scores:
        fact = outcome_fact(subject, report.patient_id, report.at, s, report.inputs)
        if fact is not None:
            facts.append(fact)
    return facts


def store_results(store: Store, report: RiskReport) -> AppendResult:
    """Append the computed results of ``report`` to ``store`` (source ``medtwin:risk``)."""
    return store.append_facts(result_facts(store, report), source=RISK_SOURCE)
