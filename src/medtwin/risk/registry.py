"""The score registry: one name -> one :class:`~medtwin.risk.base.Score`.

medtwin's own scores (NEWS2, qSOFA, MEWS) and third-party scores are found the same way, on the
first look-up (importing ``medtwin.risk`` loads nothing):

* built-ins: the modules in :data:`BUILTIN_MODULES`, each exporting ``SCORE``-like instances
  listed in ``BUILTINS``;
* other packages: entry points in the group ``medtwin.scores`` (:data:`ENTRY_POINT_GROUP`). The
  entry point names a :class:`~medtwin.risk.base.Score` instance, a ``Score`` subclass (called
  with no arguments) or a function returning a ``Score``. A plugin that fails to load is skipped
  with a warning (see :func:`plugin_errors`); a plugin may not replace a built-in score.

A package declares its score in its ``pyproject.toml``::

    [project.entry-points."medtwin.scores"]
    shock_index = "my_package.scores:SHOCK_INDEX"

Examples
--------
>>> from medtwin.risk import get, all_scores
>>> get("NEWS2").name
'news2'
>>> {"mews", "news2", "qsofa"} <= {s.name for s in all_scores()}
True
"""

from __future__ import annotations

import importlib
import re
import threading
import warnings
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from medtwin.risk.base import Score, ScoreInputError, UnknownScoreError

__all__ = [
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "all_scores",
    "get",
    "plugin_errors",
    "register",
    "reload",
    "score_json",
    "score_list",
]

ENTRY_POINT_GROUP = "medtwin.scores"
"""Entry-point group through which other packages add scores."""

BUILTINS: tuple[tuple[str, str], ...] = (
    ("medtwin.risk.news2", "NEWS2"),
    ("medtwin.risk.qsofa", "QSOFA"),
    ("medtwin.risk.mews", "MEWS"),
    ("medtwin.risk.iwpc_warfarin", "IWPC_WARFARIN"),
    ("medtwin.risk.findrisc", "FINDRISC"),
    ("medtwin.risk.cha2ds2_vasc", "CHA2DS2_VASC"),
    ("medtwin.risk.has_bled", "HAS_BLED"),
    ("medtwin.risk.ckd_epi_2021", "CKD_EPI_2021"),
    ("medtwin.risk.prevent", "PREVENT_10Y"),
    ("medtwin.risk.prevent", "PREVENT_30Y"),
    ("medtwin.risk.qrisk3", "QRISK3"),
    ("medtwin.risk.pce", "PCE_ASCVD_10Y"),
    ("medtwin.risk.pce", "PCE_ASCVD_10Y_2018"),
    ("medtwin.risk.framingham", "FRAMINGHAM_CVD_10Y"),
    ("medtwin.risk.score2", "SCORE2"),
    ("medtwin.risk.score2_op", "SCORE2_OP"),
    ("medtwin.risk.score2_diabetes", "SCORE2_DIABETES"),
)
"""(module, attribute) of every built-in score."""

_lock = threading.RLock()
_scores: dict[str, Score] | None = None
_builtin_names: set[str] = set()
_errors: dict[str, str] = {}


def _key(name: str) -> str:
    return name.strip().lower()


def _check(score: object, where: str) -> Score:
    if not isinstance(score, Score):
        raise TypeError(f"{where}: expected a medtwin.risk.base.Score, got {type(score).__name__}")
    for attr in ("name", "version", "source", "inputs", "valid_population"):
        if not getattr(score, attr, None):
            raise TypeError(f"{where}: score {score!r} does not declare {attr!r}")
    return score


def _resolve(obj: object, where: str) -> Score:
    if isinstance(obj, Score):
        return _check(obj, where)
    if isinstance(obj, type) and issubclass(obj, Score):
        return _check(obj(), where)
    if callable(obj):
        return _check(obj(), where)
    return _check(obj, where)


def _load() -> dict[str, Score]:
    global _scores
    with _lock:
        if _scores is not None:
            return _scores
        scores: dict[str, Score] = {}
        builtin: set[str] = set()
        for module_name, attr in BUILTINS:
            score = _check(getattr(importlib.import_module(module_name), attr), module_name)
            scores[_key(score.name)] = score
            builtin.add(_key(score.name))
        errors: dict[str, str] = {}
        for ep in _entry_points():
            where = f"entry point {ep.name!r} ({ep.value}) in group {ENTRY_POINT_GROUP!r}"
            try:
                score = _resolve(ep.load(), where)
            except Exception as exc:  # a broken plugin must not break medtwin's own scores
                errors[ep.name] = f"{where}: {type(exc).__name__}: {exc}"
                warnings.warn(f"medtwin: score plugin skipped: {errors[ep.name]}", stacklevel=3)
                continue
            key = _key(score.name)
            if key in scores:
                errors[ep.name] = f"{where}: the name {score.name!r} is already registered"
                warnings.warn(f"medtwin: score plugin skipped: {errors[ep.name]}", stacklevel=3)
                continue
            scores[key] = score
        _builtin_names.clear()
        _builtin_names.update(builtin)
        _errors.clear()
        _errors.update(errors)
        _scores = scores
        return scores


def _entry_points() -> list[EntryPoint]:
    return list(entry_points(group=ENTRY_POINT_GROUP))


def register(score: Score, *, replace: bool = False) -> Score:
    """Add ``score`` under ``score.name`` (case-insensitive) and return it.

    Parameters
    ----------
    score
        A :class:`~medtwin.risk.base.Score` instance declaring name, version, source, inputs and
        valid population.
    replace
        Replace a registered score of the same name (never a built-in).

    Raises
    ------
    ValueError
        The name is taken (and ``replace`` is false) or is a built-in score's.
    TypeError
        ``score`` is not a ``Score`` or lacks a declaration.
    """
    _check(score, "register()")
    scores = _load()
    key = _key(score.name)
    with _lock:
        if key in scores and scores[key] is not score:
            if key in _builtin_names:
                raise ValueError(
                    f"{score.name!r} is a built-in medtwin score and cannot be replaced"
                )
            if not replace:
                raise ValueError(
                    f"a score named {score.name!r} is already registered (pass replace=True)"
                )
        scores[key] = score
    return score


def get(name: str) -> Score:
    """The score registered as ``name`` (case-insensitive).

    PREVENT with its outcome fixed is found too, though not listed: ``prevent_10y_ascvd``,
    ``prevent_30y_hf`` ... (:func:`medtwin.risk.prevent.with_outcome`).

    Raises
    ------
    UnknownScoreError
        No such score; the message lists the registered names.
    """
    scores = _load()
    key = _key(name)
    if key in scores:
        return scores[key]
    fixed = _PREVENT_OUTCOME.fullmatch(key)
    if fixed is not None:
        from medtwin.risk.prevent import SHIPPED, with_outcome

        if fixed.group(2) in SHIPPED:
            return with_outcome(int(fixed.group(1)), fixed.group(2))
    raise UnknownScoreError(
        f"unknown score {name!r}; registered scores: {', '.join(sorted(scores))}"
    ) from None


_PREVENT_OUTCOME = re.compile(r"prevent_(10|30)y_([a-z]+)")


def all_scores() -> tuple[Score, ...]:
    """Every registered score, sorted by name."""
    scores = _load()
    return tuple(scores[k] for k in sorted(scores))


def plugin_errors() -> Mapping[str, str]:
    """Entry points that were skipped on loading, with the reason (empty when all loaded)."""
    _load()
    return dict(_errors)


def reload() -> None:
    """Forget the registry (scores registered by hand too); the next look-up loads it again."""
    global _scores
    with _lock:
        _scores = None


def score_json(name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Score one patient for the CLI and the service: a JSON-ready dict.

    ``payload`` maps input names to values (``{"respiratory_rate_per_min": 24, ...}``). Keys that
    are not inputs of the score raise :class:`~medtwin.risk.base.ScoreInputError` (a typo would
    otherwise look like a missing input). The result has ``name``, ``title``, ``version``,
    ``value``, ``band``, ``partial``, ``missing``, ``refused``, ``components`` and ``source``;
    when ``partial`` is true, ``value`` is a lower bound.

    Examples
    --------
    >>> out = score_json("qsofa", {"respiratory_rate_per_min": 24, "systolic_bp_mm_hg": 95})
    >>> out["value"], out["partial"], out["missing"], out["band"]
    (2, True, ['gcs', 'altered_mentation'], 'positive')
    """
    score = get(name)
    if not isinstance(payload, Mapping):
        raise ScoreInputError(
            f"{score.name}: the input must be a JSON object of input names and values, "
            f"got {type(payload).__name__}"
        )
    out = score.compute_one(payload, strict=True).to_dict()
    out["title"] = score.title
    return out


def score_list() -> list[dict[str, Any]]:
    """Every registered score described: inputs (units, ranges), bands, tables, source."""
    return [score.describe() for score in all_scores()]
