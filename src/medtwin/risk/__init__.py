"""Validated clinical scores: the Score contract, the registry, NEWS2, qSOFA and MEWS.

Every score declares its inputs (units in their names), its source and its valid population,
and computes one patient or a million rows through the same vectorised code. Missing inputs are
named, never filled: the value is then ``partial`` and a lower bound. Implausible values and
patients outside the validated population are refused with the reason.

>>> from medtwin.risk import get, score_json
>>> get("news2").compute_one({"respiratory_rate_per_min": 26}).value
3
>>> score_json("mews", {"systolic_bp_mm_hg": 70})["components"]["systolic_bp_mm_hg"]
3

Importing ``medtwin.risk`` loads no score module; the registry loads them on first use.
"""

from __future__ import annotations

from medtwin.risk.base import (
    Band,
    BandTable,
    ColumnLike,
    PointsScore,
    PopulationRule,
    Score,
    ScoreError,
    ScoreInput,
    ScoreInputError,
    ScoreResult,
    ScoreResults,
    UnknownScoreError,
)
from medtwin.risk.registry import (
    ENTRY_POINT_GROUP,
    all_scores,
    get,
    plugin_errors,
    register,
    score_json,
    score_list,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Band",
    "BandTable",
    "ColumnLike",
    "PointsScore",
    "PopulationRule",
    "Score",
    "ScoreError",
    "ScoreInput",
    "ScoreInputError",
    "ScoreResult",
    "ScoreResults",
    "UnknownScoreError",
    "all_scores",
    "get",
    "plugin_errors",
    "register",
    "score_json",
    "score_list",
]
