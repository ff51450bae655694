"""Tests for medtwin.risk: NEWS2, qSOFA, MEWS and the registry.

Expected values come from the printed sources, written out here by hand, not from the code:
RCP 2017 NEWS2 Chart 1 (scoring) and Chart 3 (clinical risk); Seymour et al. 2016 / Singer et
al. 2016 Box 4 (qSOFA); Subbe et al. 2001 Table 1 (MEWS). Values between printed bands take the
band with the higher points (medtwin's documented rule, docs/models/news2.md). The independent
reference implementations below are plain if/else chains over the same charts; the vectorised
code must agree with them and with itself row by row.
"""

from __future__ import annotations

import doctest
import importlib
import math
import random
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import EntryPoint
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medtwin.risk import (
    BandTable,
    PointsScore,
    ScoreInput,
    ScoreInputError,
    UnknownScoreError,
    all_scores,
    get,
    plugin_errors,
    register,
    score_json,
    score_list,
)
from medtwin.risk import registry as registry_module
from medtwin.risk.base import InputData
from medtwin.risk.mews import MEWS
from medtwin.risk.news2 import NEWS2
from medtwin.risk.qsofa import QSOFA

NORMAL_NEWS2: dict[str, Any] = {
    "respiratory_rate_per_min": 16,
    "spo2_percent": 97,
    "spo2_scale": 1,
    "on_oxygen": False,
    "systolic_bp_mm_hg": 125,
    "pulse_per_min": 72,
    "consciousness": "A",
    "temperature_c": 37.0,
}
NORMAL_MEWS: dict[str, Any] = {
    "systolic_bp_mm_hg": 125,
    "pulse_per_min": 72,
    "respiratory_rate_per_min": 12,
    "temperature_c": 37.0,
    "consciousness": "A",
}


def news2_points(name: str, value: Any, **context: Any) -> int | None:
    """The NEWS2 points of one parameter, computed with only that parameter (and context)."""
    result = NEWS2.compute_one({name: value, **context})
    assert result.refused is None, result.refused
    return result.components[name]


# --- NEWS2: every band edge of Chart 1, both sides ---------------------------------------------

RR_EDGES: list[tuple[float, int]] = [  # ≤8 [3] | 9–11 [1] | 12–20 [0] | 21–24 [2] | ≥25 [3]
    (0, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3),
]  # fmt: skip
SPO2_SCALE_1_EDGES: list[tuple[float, int]] = [  # ≤91 [3] | 92–93 [2] | 94–95 [1] | ≥96 [0]
    (50, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0),
]  # fmt: skip
SPO2_SCALE_2_AIR_EDGES: list[tuple[float, int]] = [  # ≤83 [3] | 84–85 [2] | 86–87 [1] | 88–92 [0] | ≥93 on air [0]
    (70, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 0), (100, 0),
]  # fmt: skip
SPO2_SCALE_2_OXYGEN_EDGES: list[tuple[float, int]] = [  # ... 88–92 [0] | 93–94 on O2 [1] | 95–96 on O2 [2] | ≥97 on O2 [3]
    (70, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 1), (94, 1),
    (95, 2), (96, 2), (97, 3), (100, 3),
]  # fmt: skip
SBP_EDGES: list[tuple[float, int]] = [  # ≤90 [3] | 91–100 [2] | 101–110 [1] | 111–219 [0] | ≥220 [3]
    (0, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3), (300, 3),
]  # fmt: skip
PULSE_EDGES: list[tuple[float, int]] = [  # ≤40 [3] | 41–50 [1] | 51–90 [0] | 91–110 [1] | 111–130 [2] | ≥131 [3]
    (0, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2),
    (131, 3), (200, 3),
]  # fmt: skip
TEMPERATURE_EDGES: list[tuple[float, int]] = [  # ≤35.0 [3] | 35.1–36.0 [1] | 36.1–38.0 [0] | 38.1–39.0 [1] | ≥39.1 [2]
    (30.0, 3), (35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1),
    (39.1, 2), (42.0, 2),
]  # fmt: skip

# Values between two printed bands take the band with the higher points (BandTable rule).
BETWEEN_BANDS = [
    ("respiratory_rate_per_min", 8.5, 3, {}),  # between ≤8 [3] and 9–11 [1]
    ("respiratory_rate_per_min", 11.5, 1, {}),  # between 9–11 [1] and 12–20 [0]
    ("respiratory_rate_per_min", 20.5, 2, {}),  # between 12–20 [0] and 21–24 [2]
    ("respiratory_rate_per_min", 24.5, 3, {}),  # between 21–24 [2] and ≥25 [3]
    ("spo2_percent", 91.5, 3, {}),
    ("spo2_percent", 93.5, 2, {}),
    ("spo2_percent", 95.5, 1, {}),
    ("spo2_percent", 87.5, 1, {"spo2_scale": 2, "on_oxygen": False}),
    ("spo2_percent", 92.5, 0, {"spo2_scale": 2, "on_oxygen": False}),  # both neighbours 0
    ("spo2_percent", 92.5, 1, {"spo2_scale": 2, "on_oxygen": True}),
    ("spo2_percent", 94.5, 2, {"spo2_scale": 2, "on_oxygen": True}),
    ("spo2_percent", 96.5, 3, {"spo2_scale": 2, "on_oxygen": True}),
    ("systolic_bp_mm_hg", 90.5, 3, {}),
    ("systolic_bp_mm_hg", 100.5, 2, {}),
    ("systolic_bp_mm_hg", 110.5, 1, {}),
    ("systolic_bp_mm_hg", 219.5, 3, {}),
    ("pulse_per_min", 40.5, 3, {}),
    ("pulse_per_min", 50.5, 1, {}),
    ("pulse_per_min", 90.5, 1, {}),
    ("pulse_per_min", 110.5, 2, {}),
    ("pulse_per_min", 130.5, 3, {}),
    ("temperature_c", 35.05, 3, {}),  # between ≤35.0 [3] and 35.1–36.0 [1]
    ("temperature_c", 35.09, 3, {}),
    ("temperature_c", 36.05, 1, {}),  # between 35.1–36.0 [1] and 36.1–38.0 [0]
    ("temperature_c", 38.05, 1, {}),  # between 36.1–38.0 [0] and 38.1–39.0 [1]
    ("temperature_c", 38.01, 1, {}),
    ("temperature_c", 39.05, 2, {}),  # between 38.1–39.0 [1] and ≥39.1 [2]
]


@pytest.mark.parametrize(("value", "points"), RR_EDGES)
def test_news2_respiration_edges(value: float, points: int) -> None:
    assert news2_points("respiratory_rate_per_min", value) == points


@pytest.mark.parametrize("on_oxygen", [False, True])
@pytest.mark.parametrize(("value", "points"), SPO2_SCALE_1_EDGES)
def test_news2_spo2_scale_1_edges(value: float, points: int, on_oxygen: bool) -> None:
    # Scale 1 does not depend on oxygen (oxygen scores separately); scale 1 is the default
    assert news2_points("spo2_percent", value, on_oxygen=on_oxygen) == points
    assert news2_points("spo2_percent", value, on_oxygen=on_oxygen, spo2_scale=1) == points


@pytest.mark.parametrize(("value", "points"), SPO2_SCALE_2_AIR_EDGES)
def test_news2_spo2_scale_2_on_air_edges(value: float, points: int) -> None:
    assert news2_points("spo2_percent", value, spo2_scale=2, on_oxygen=False) == points


@pytest.mark.parametrize(("value", "points"), SPO2_SCALE_2_OXYGEN_EDGES)
def test_news2_spo2_scale_2_on_oxygen_edges(value: float, points: int) -> None:
    assert news2_points("spo2_percent", value, spo2_scale=2, on_oxygen=True) == points


@pytest.mark.parametrize(("value", "points"), SBP_EDGES)
def test_news2_systolic_edges(value: float, points: int) -> None:
    assert news2_points("systolic_bp_mm_hg", value) == points


@pytest.mark.parametrize(("value", "points"), PULSE_EDGES)
def test_news2_pulse_edges(value: float, points: int) -> None:
    assert news2_points("pulse_per_min", value) == points


@pytest.mark.parametrize(("value", "points"), TEMPERATURE_EDGES)
def test_news2_temperature_edges(value: float, points: int) -> None:
    assert news2_points("temperature_c", value) == points


@pytest.mark.parametrize(
    ("value", "points"),
    [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3), ("a", 0), (" v ", 3), ("alert", 0),
     ("new confusion", 3), ("New Confusion", 3), ("unresponsive", 3)],
)  # fmt: skip
def test_news2_consciousness(value: str, points: int) -> None:
    assert news2_points("consciousness", value) == points


def test_news2_confused_is_not_new_confusion() -> None:
    """Chart 1 scores *new* confusion; a bare "confused" (maybe chronic) is refused, not guessed."""
    result = NEWS2.compute_one({"consciousness": "confused"})
    assert result.refused == "consciousness='confused' is not one of A, C, V, P, U"


@pytest.mark.parametrize(("value", "points"), [(False, 0), (True, 2), (0, 0), (1, 2), ("yes", 2)])
def test_news2_air_or_oxygen(value: Any, points: int) -> None:
    assert news2_points("on_oxygen", value) == points


@pytest.mark.parametrize(("name", "value", "points", "context"), BETWEEN_BANDS)
def test_news2_values_between_printed_bands(
    name: str, value: float, points: int, context: dict[str, Any]
) -> None:
    assert news2_points(name, value, **context) == points


def test_news2_edges_vectorised_in_one_call() -> None:
    """The same edges through one compute_many call per parameter (the million-row path)."""
    table_edges: list[tuple[str, list[tuple[float, int]]]] = [
        ("respiratory_rate_per_min", RR_EDGES),
        ("spo2_percent", SPO2_SCALE_1_EDGES),
        ("systolic_bp_mm_hg", SBP_EDGES),
        ("pulse_per_min", PULSE_EDGES),
        ("temperature_c", TEMPERATURE_EDGES),
    ]
    for name, edges in table_edges:
        values = np.array([v for v, _ in edges], dtype=np.float64)
        got = NEWS2.compute_many({name: values}).components[name].tolist()
        assert got == [p for _, p in edges], name
    n = len(SPO2_SCALE_2_OXYGEN_EDGES)
    result = NEWS2.compute_many(
        {
            "spo2_percent": [v for v, _ in SPO2_SCALE_2_OXYGEN_EDGES],
            "spo2_scale": [2] * n,
            "on_oxygen": [True] * n,
        }
    )
    assert result.components["spo2_percent"].tolist() == [p for _, p in SPO2_SCALE_2_OXYGEN_EDGES]


# --- NEWS2: clinical risk bands (Chart 3) -----------------------------------------------------


def news2_row(**changes: Any) -> dict[str, Any]:
    return {**NORMAL_NEWS2, **changes}


@pytest.mark.parametrize(
    ("changes", "value", "band"),
    [
        ({}, 0, "low"),
        # RR 21 [2] + pulse 91 [1] + temperature 38.1 [1] = 4, no single 3: low
        ({"respiratory_rate_per_min": 21, "pulse_per_min": 91, "temperature_c": 38.1}, 4, "low"),
        # new confusion alone: 3 in a single parameter, aggregate 3: low-medium (red score)
        ({"consciousness": "C"}, 3, "low-medium"),
        # SBP 90 [3] + pulse 91 [1] = 4 with a red score: low-medium
        ({"systolic_bp_mm_hg": 90, "pulse_per_min": 91}, 4, "low-medium"),
        # RR 25 [3] + oxygen [2] = 5: medium (5-6 overrides the red-score band)
        ({"respiratory_rate_per_min": 25, "on_oxygen": True}, 5, "medium"),
        # oxygen [2] + SpO2 93 [2] + pulse 91 [1] + temperature 35.5 [1] = 6: medium
        (
            {"on_oxygen": True, "spo2_percent": 93, "pulse_per_min": 91, "temperature_c": 35.5},
            6,
            "medium",
        ),
        # RR 21 [2] + oxygen [2] + SpO2 94 [1] + pulse 111 [2] = 7: high
        (
            {
                "respiratory_rate_per_min": 21,
                "on_oxygen": True,
                "spo2_percent": 94,
                "pulse_per_min": 111,
            },
            7,
            "high",
        ),
        # everything at its worst: 3+3+2+3+3+3+3 = 20
        (
            {
                "respiratory_rate_per_min": 30,
                "spo2_percent": 85,
                "on_oxygen": True,
                "systolic_bp_mm_hg": 80,
                "pulse_per_min": 150,
                "consciousness": "U",
                "temperature_c": 34.0,
            },
            20,
            "high",
        ),
    ],
)
def test_news2_clinical_risk_bands(changes: dict[str, Any], value: int, band: str) -> None:
    result = NEWS2.compute_one(news2_row(**changes))
    assert (result.value, result.band, result.partial) == (value, band, False)


def test_news2_band_rule_over_every_aggregate() -> None:
    """Chart 3 for every aggregate 0-20, with and without a single-parameter 3."""
    values = np.arange(21, dtype=np.int64)
    for red in (False, True):
        points = {"pulse_per_min": np.full(21, 3 if red else 0, dtype=np.int8)}
        codes = NEWS2.band_codes(values, points).tolist()
        names = [NEWS2.bands[c].name for c in codes]
        expected = [
            "high" if v >= 7 else "medium" if v >= 5 else "low-medium" if red else "low"
            for v in range(21)
        ]
        assert names == expected


def test_news2_worked_example_from_the_brief() -> None:
    # RR 24/min: 21–24 -> 2; SpO2 93 % on Scale 1: 92–93 -> 2; air -> 0;
    # SBP 105 mmHg: 101–110 -> 1; pulse 115/min: 111–130 -> 2; alert -> 0;
    # temperature 38.5 °C: 38.1–39.0 -> 1. Total 2+2+0+1+2+0+1 = 8 -> "high" (7 or more).
    result = NEWS2.compute_one(
        {
            "respiratory_rate_per_min": 24,
            "spo2_percent": 93,
            "spo2_scale": 1,
            "on_oxygen": False,
            "systolic_bp_mm_hg": 105,
            "pulse_per_min": 115,
            "consciousness": "A",
            "temperature_c": 38.5,
        }
    )
    assert result.components == {
        "respiratory_rate_per_min": 2,
        "spo2_percent": 2,
        "on_oxygen": 0,
        "systolic_bp_mm_hg": 1,
        "pulse_per_min": 2,
        "consciousness": 0,
        "temperature_c": 1,
    }
    assert (result.value, result.band, result.partial, result.missing) == (8, "high", False, ())
    assert result.refused is None
    assert result.source.startswith("Royal College of Physicians")


def test_news2_worked_example_scale_2() -> None:
    # COPD, target 88-92 % (Scale 2), on oxygen, SpO2 95 %: 95–96 on oxygen -> 2; oxygen -> 2;
    # RR 22 -> 2; SBP 130 -> 0; pulse 88 -> 0; alert -> 0; 37.4 °C -> 0. Total 6 -> medium.
    row = news2_row(
        respiratory_rate_per_min=22, spo2_percent=95, spo2_scale=2, on_oxygen=True,
        systolic_bp_mm_hg=130, pulse_per_min=88, temperature_c=37.4,
    )  # fmt: skip
    result = NEWS2.compute_one(row)
    assert (result.value, result.band) == (6, "medium")
    # The same observations on Scale 1: SpO2 95 % -> 1, total 5, still medium.
    result = NEWS2.compute_one({**row, "spo2_scale": 1})
    assert (result.value, result.band, result.components["spo2_percent"]) == (5, "medium", 1)
    # On air with SpO2 93 % on Scale 2: 0 (≥93 on air), total 2 -> low.
    result = NEWS2.compute_one({**row, "on_oxygen": False, "spo2_percent": 93})
    assert (result.value, result.band, result.components["spo2_percent"]) == (2, "low", 0)


# --- missing inputs -------------------------------------------------------------------------------


def test_missing_inputs_are_named_and_the_value_is_a_lower_bound() -> None:
    row = news2_row(respiratory_rate_per_min=24, pulse_per_min=115)
    del row["temperature_c"], row["on_oxygen"]
    result = NEWS2.compute_one(row)
    # present: RR 24 -> 2, SpO2 97 -> 0, SBP 125 -> 0, pulse 115 -> 2, alert -> 0: sum 4
    assert result.partial
    assert result.missing == ("on_oxygen", "temperature_c")
    assert result.value == 4
    assert result.components["temperature_c"] is None
    assert result.components["on_oxygen"] is None
    # 4 could become up to 4 + 2 + 3 = 9 with a red score: the band is not determined
    assert result.band is None


def test_partial_band_is_given_only_when_missing_inputs_cannot_change_it() -> None:
    row = news2_row(respiratory_rate_per_min=30, pulse_per_min=150, systolic_bp_mm_hg=85)
    del row["temperature_c"]
    result = NEWS2.compute_one(row)  # 3 + 3 + 3 = 9 already: high whatever the temperature
    assert (result.value, result.band, result.partial) == (9, "high", True)


def test_no_input_at_all() -> None:
    result = NEWS2.compute_one({})
    assert result.value is None and result.band is None and result.partial
    assert result.refused is None
    assert set(result.missing) == {
        "respiratory_rate_per_min", "spo2_percent", "on_oxygen", "systolic_bp_mm_hg",
        "pulse_per_min", "consciousness", "temperature_c",
    }  # fmt: skip
    assert "spo2_scale" not in result.missing  # an option with the source's default (Scale 1)


@pytest.mark.parametrize("missing_value", [None, math.nan, "", "  "])
def test_missing_values_inside_a_column(missing_value: Any) -> None:
    result = NEWS2.compute_many({"temperature_c": [37.0, missing_value], "pulse_per_min": [72, 72]})
    assert result[0].components["temperature_c"] == 0
    assert result[1].components["temperature_c"] is None
    assert "temperature_c" in result[1].missing
    assert "temperature_c" not in result[0].missing


def test_scale_2_without_air_or_oxygen() -> None:
    # SpO2 90 % on Scale 2 scores 0 on air and on oxygen: determined without the answer
    result = NEWS2.compute_one({"spo2_percent": 90, "spo2_scale": 2})
    assert result.components["spo2_percent"] == 0
    assert result.components["on_oxygen"] is None
    assert "on_oxygen" in result.missing
    # SpO2 95 % on Scale 2: 0 on air, 2 on oxygen: not guessed
    result = NEWS2.compute_one({"spo2_percent": 95, "spo2_scale": 2})
    assert result.components["spo2_percent"] is None
    assert "on_oxygen" in result.missing and "spo2_percent" not in result.missing


NEWS2_STRATEGY = st.fixed_dictionaries(
    {
        "respiratory_rate_per_min": st.integers(0, 60),
        "spo2_percent": st.integers(60, 100),
        "spo2_scale": st.sampled_from([1, 2]),
        "on_oxygen": st.booleans(),
        "systolic_bp_mm_hg": st.integers(50, 260),
        "pulse_per_min": st.integers(20, 200),
        "consciousness": st.sampled_from(["A", "C", "V", "P", "U"]),
        "temperature_c": st.integers(320, 420).map(lambda t: t / 10),
    }
)


MEASUREMENTS = sorted(set(NORMAL_NEWS2) - {"spo2_scale"})


@settings(max_examples=300, deadline=None)
@given(row=NEWS2_STRATEGY, drop=st.sets(st.sampled_from(MEASUREMENTS), min_size=1))
def test_partial_value_never_exceeds_the_complete_value(
    row: dict[str, Any], drop: set[str]
) -> None:
    """Leaving out measurements gives a lower bound (spo2_scale is an option, not a measurement:
    absent, it is Scale 1 as the RCP says, which can score more than Scale 2)."""
    full = NEWS2.compute_one(row)
    partial = NEWS2.compute_one({k: v for k, v in row.items() if k not in drop})
    assert full.value is not None
    if partial.value is not None:
        assert partial.value <= full.value
    if partial.band is not None:
        assert partial.band == full.band
    assert set(partial.missing) <= drop


# --- implausible values and population ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("pulse_per_min", 900, "plausible range"),
        ("spo2_percent", 120, "plausible range"),
        # a fraction for a percentage: was scored as SpO2 0.95 % (3 points)
        (
            "spo2_percent",
            0.95,
            "spo2_percent=0.95 looks like a fraction, not a percentage: give 95",
        ),
        ("respiratory_rate_per_min", -1, "plausible range"),
        ("temperature_c", 98.6, "plausible range"),  # Fahrenheit given as Celsius
        ("systolic_bp_mm_hg", 400, "plausible range"),
        ("pulse_per_min", math.inf, "plausible range"),
        ("pulse_per_min", "abc", "not a number"),
        ("pulse_per_min", True, "not a number"),
        ("consciousness", "X", "not one of A, C, V, P, U"),
        ("on_oxygen", 2, "not true or false"),
        ("on_oxygen", "maybe", "not true or false"),
        ("spo2_scale", 3, "not one of 1, 2"),
        ("age_years", 200, "plausible range"),
    ],
)
def test_implausible_values_are_refused_naming_the_input(name: str, value: Any, words: str) -> None:
    result = NEWS2.compute_one(news2_row(**{name: value}))
    assert result.value is None and result.band is None and not result.partial
    assert result.refused is not None
    assert result.refused.startswith(f"{name}=")
    assert words in result.refused
    assert all(points is None for points in result.components.values())


def test_refusal_is_per_row() -> None:
    result = NEWS2.compute_many(
        {"pulse_per_min": [72, 900, 72], "respiratory_rate_per_min": [16, 16, -3]}
    )
    assert [r.refused is None for r in result] == [True, False, False]
    assert "pulse_per_min=900" in (result[1].refused or "")
    assert "respiratory_rate_per_min=-3" in (result[2].refused or "")
    assert result[0].value == 0
    assert result.refused.tolist() == [False, True, True]


def test_input_arrays_are_not_modified() -> None:
    temps = np.array([37.0, np.nan, 98.6])
    NEWS2.compute_many({"temperature_c": temps})
    assert np.isnan(temps[1]) and temps[2] == 98.6


@pytest.mark.parametrize(
    ("score", "row", "refused"),
    [
        (NEWS2, {"age_years": 15}, True),
        (NEWS2, {"age_years": 15.9}, True),
        (NEWS2, {"age_years": 16}, False),
        (NEWS2, {"pregnant": True}, True),
        (NEWS2, {"pregnant": False}, False),
        (QSOFA, {"age_years": 17}, True),
        (QSOFA, {"age_years": 18}, False),
        (MEWS, {"age_years": 15}, True),
        (MEWS, {"age_years": 80}, False),
    ],
)
def test_population_checks(score: PointsScore, row: dict[str, Any], refused: bool) -> None:
    result = score.compute_one({"respiratory_rate_per_min": 16, **row})
    assert (result.refused is not None) is refused
    if refused:
        key = next(iter(row))
        assert result.refused is not None and result.refused.startswith(f"{key}=")
        assert result.value is None
    else:
        assert result.value is not None


# --- vectorised == row by row == independent reference -------------------------------------------


def ref_news2(row: dict[str, Any]) -> int:
    """RCP 2017 Chart 1 as if/else; gaps between printed bands go to the higher points."""
    rr, s, o2 = row["respiratory_rate_per_min"], row["spo2_percent"], row["on_oxygen"]
    sbp, hr, t = row["systolic_bp_mm_hg"], row["pulse_per_min"], row["temperature_c"]
    total = 3 if rr < 9 else 1 if rr < 12 else 0 if rr <= 20 else 2 if rr <= 24 else 3
    if row["spo2_scale"] == 1:
        total += 3 if s < 92 else 2 if s < 94 else 1 if s < 96 else 0
    elif s < 88:
        total += 3 if s < 84 else 2 if s < 86 else 1
    elif s <= 92 or not o2:
        total += 0
    else:
        total += 1 if s <= 94 else 2 if s <= 96 else 3
    total += 2 if o2 else 0
    total += 3 if sbp < 91 else 2 if sbp < 101 else 1 if sbp < 111 else 0 if sbp <= 219 else 3
    total += 3 if hr < 41 else 1 if hr < 51 else 0 if hr <= 90 else 1 if hr <= 110 else 2 if hr <= 130 else 3  # fmt: skip
    total += 0 if row["consciousness"] == "A" else 3
    total += 3 if t < 35.1 else 1 if t < 36.1 else 0 if t <= 38.0 else 1 if t <= 39.0 else 2
    return total


def ref_mews(row: dict[str, Any]) -> int:
    """Subbe et al. 2001 Table 1 as if/else; 70 mmHg -> 3 and 40 /min -> 2 (gaps, higher points)."""
    sbp, hr = row["systolic_bp_mm_hg"], row["pulse_per_min"]
    rr, t = row["respiratory_rate_per_min"], row["temperature_c"]
    total = 3 if sbp < 71 else 2 if sbp < 81 else 1 if sbp < 101 else 0 if sbp <= 199 else 2
    total += 2 if hr < 41 else 1 if hr < 51 else 0 if hr <= 100 else 1 if hr <= 110 else 2 if hr <= 129 else 3  # fmt: skip
    total += 2 if rr < 9 else 0 if rr <= 14 else 1 if rr <= 20 else 2 if rr <= 29 else 3
    total += 2 if t < 35 else 0 if t <= 38.4 else 2
    total += {"A": 0, "V": 1, "P": 2, "U": 3}[row["consciousness"]]
    return total


def ref_qsofa(row: dict[str, Any]) -> int:
    """Seymour et al. 2016: RR >= 22, GCS < 15, SBP <= 100."""
    return (
        int(row["respiratory_rate_per_min"] >= 22)
        + int(row["gcs"] < 15)
        + int(row["systolic_bp_mm_hg"] <= 100)
    )


def _value(rng: random.Random, low: float, high: float, decimals: int) -> float:
    """Mostly chart-resolution values, some finer (to exercise the between-bands rule)."""
    x = rng.uniform(low, high)
    return round(x, decimals if rng.random() < 0.7 else decimals + 2)


def random_rows(n: int, seed: int, kind: str) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        if kind == "news2":
            row: dict[str, Any] = {
                "respiratory_rate_per_min": _value(rng, 4, 40, 0),
                "spo2_percent": _value(rng, 75, 100, 0),
                "spo2_scale": rng.choice([1, 1, 1, 2]),
                "on_oxygen": rng.random() < 0.3,
                "systolic_bp_mm_hg": _value(rng, 60, 250, 0),
                "pulse_per_min": _value(rng, 25, 180, 0),
                "consciousness": rng.choice("AAAACVPU"),
                "temperature_c": _value(rng, 33, 41, 1),
            }
        elif kind == "mews":
            row = {
                "systolic_bp_mm_hg": _value(rng, 55, 230, 0),
                "pulse_per_min": _value(rng, 25, 170, 0),
                "respiratory_rate_per_min": _value(rng, 4, 40, 0),
                "temperature_c": _value(rng, 33, 41, 1),
                "consciousness": rng.choice("AAAAVPU"),
            }
        else:
            row = {
                "respiratory_rate_per_min": _value(rng, 8, 40, 0),
                "systolic_bp_mm_hg": _value(rng, 60, 180, 0),
                "gcs": rng.randint(3, 15),
            }
        rows.append(row)
    return rows


def spoil(rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Drop or corrupt some values (missing and implausible rows)."""
    rng = random.Random(seed)
    out = []
    for row in rows:
        row = dict(row)
        for key in list(row):
            r = rng.random()
            if r < 0.05:
                row[key] = None
            elif r < 0.06:
                row[key] = {"consciousness": "Z", "spo2_scale": 7, "on_oxygen": 5}.get(key, 9999)
        out.append(row)
    return out


def columns_of(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {key: [row.get(key) for row in rows] for key in rows[0]}


@pytest.mark.parametrize(
    ("score", "reference", "kind", "n"),
    [(NEWS2, ref_news2, "news2", 10_000), (MEWS, ref_mews, "mews", 3_000),
     (QSOFA, ref_qsofa, "qsofa", 3_000)],
)  # fmt: skip
def test_vectorised_equals_row_by_row_and_reference(
    score: PointsScore, reference: Callable[[dict[str, Any]], int], kind: str, n: int
) -> None:
    rows = random_rows(n, seed=20261124, kind=kind)
    many = score.compute_many(columns_of(rows))
    assert [r.value for r in many] == [reference(row) for row in rows]
    assert not many.partial.any() and not many.refused.any()
    one_by_one = [score.compute_one(row) for row in rows]
    assert list(many) == one_by_one

    spoilt = spoil(rows[:3_000], seed=7)
    many = score.compute_many(columns_of(spoilt))
    assert list(many) == [score.compute_one(row) for row in spoilt]
    assert many.partial.any() and many.refused.any()
    # numpy columns give the same answer as lists
    arrays = {
        key: np.array(col, dtype=object if key == "consciousness" else np.float64)
        for key, col in columns_of(rows).items()
    }
    assert list(score.compute_many(arrays)) == list(score.compute_many(columns_of(rows)))


# --- monotonicity: a worse vital never scores fewer points ---------------------------------------

# (table, value where the chart is normal, low, high): moving away from the normal value never
# lowers the points.
MONOTONE_TABLES = [
    (NEWS2.tables["respiratory_rate_per_min"], 16.0, 0.0, 100.0),
    (NEWS2.tables["spo2_percent (Scale 1)"], 100.0, 0.0, 100.0),
    (NEWS2.tables["spo2_percent (Scale 2, on air)"], 100.0, 0.0, 100.0),
    (NEWS2.tables["spo2_percent (Scale 2, on oxygen)"], 90.0, 0.0, 100.0),
    (NEWS2.tables["systolic_bp_mm_hg"], 150.0, 0.0, 350.0),
    (NEWS2.tables["pulse_per_min"], 70.0, 0.0, 350.0),
    (NEWS2.tables["temperature_c"], 37.0, 10.0, 47.0),
    (MEWS.tables["systolic_bp_mm_hg"], 150.0, 0.0, 350.0),
    (MEWS.tables["pulse_per_min"], 70.0, 0.0, 350.0),
    (MEWS.tables["respiratory_rate_per_min"], 12.0, 0.0, 100.0),
    (MEWS.tables["temperature_c"], 37.0, 10.0, 47.0),
    (QSOFA.tables["respiratory_rate_per_min"], 12.0, 0.0, 100.0),
    (QSOFA.tables["systolic_bp_mm_hg"], 150.0, 0.0, 350.0),
]


@pytest.mark.parametrize(("table", "normal", "low", "high"), MONOTONE_TABLES)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_points_are_monotone_away_from_normal(
    table: BandTable, normal: float, low: float, high: float, data: st.DataObject
) -> None:
    side = data.draw(st.sampled_from(["below", "above"]))
    lo, hi = (low, normal) if side == "below" else (normal, high)
    a = data.draw(st.floats(lo, hi))
    b = data.draw(st.floats(lo, hi))
    near, far = sorted((a, b), key=lambda x: abs(x - normal))
    points = table.points(np.array([near, far]))
    assert points[1] >= points[0], (near, far, points)
    assert table.points(np.array([normal]))[0] == 0


@settings(max_examples=200, deadline=None)
@given(row=NEWS2_STRATEGY, data=st.data())
def test_a_worse_vital_never_lowers_news2(row: dict[str, Any], data: st.DataObject) -> None:
    """Moving one vital further from normal never lowers its component or the total."""
    name, normal = data.draw(
        st.sampled_from(
            [("respiratory_rate_per_min", 16), ("systolic_bp_mm_hg", 150),
             ("pulse_per_min", 70), ("temperature_c", 37.0)]
        )
    )  # fmt: skip
    step = data.draw(st.floats(0, 30))
    worse = row[name] + step if row[name] >= normal else row[name] - step
    low, high = NEWS2.input(name).valid_range or (0, 0)
    worse = min(max(worse, low), high)
    before = NEWS2.compute_one(row)
    after = NEWS2.compute_one({**row, name: worse})
    points_after, points_before = after.components[name], before.components[name]
    assert points_after is not None and points_before is not None
    assert points_after >= points_before
    assert after.value is not None and before.value is not None and after.value >= before.value


# --- qSOFA -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "value", "band"),
    [
        ({"respiratory_rate_per_min": 21, "systolic_bp_mm_hg": 101, "gcs": 15}, 0, "negative"),
        ({"respiratory_rate_per_min": 22, "systolic_bp_mm_hg": 101, "gcs": 15}, 1, "negative"),
        ({"respiratory_rate_per_min": 21.5, "systolic_bp_mm_hg": 101, "gcs": 15}, 0, "negative"),
        ({"respiratory_rate_per_min": 21, "systolic_bp_mm_hg": 100, "gcs": 15}, 1, "negative"),
        ({"respiratory_rate_per_min": 21, "systolic_bp_mm_hg": 100.5, "gcs": 15}, 0, "negative"),
        ({"respiratory_rate_per_min": 21, "systolic_bp_mm_hg": 101, "gcs": 14}, 1, "negative"),
        ({"respiratory_rate_per_min": 22, "systolic_bp_mm_hg": 100, "gcs": 15}, 2, "positive"),
        ({"respiratory_rate_per_min": 22, "systolic_bp_mm_hg": 120, "gcs": 3}, 2, "positive"),
        ({"respiratory_rate_per_min": 30, "systolic_bp_mm_hg": 80, "gcs": 9}, 3, "positive"),
        (
            {"respiratory_rate_per_min": 22, "systolic_bp_mm_hg": 120, "altered_mentation": True},
            2,
            "positive",
        ),
        (
            {"respiratory_rate_per_min": 22, "systolic_bp_mm_hg": 120, "altered_mentation": False},
            1,
            "negative",
        ),
        # both given: either one saying "altered" scores the point
        (
            {
                "respiratory_rate_per_min": 22,
                "systolic_bp_mm_hg": 120,
                "gcs": 15,
                "altered_mentation": True,
            },
            2,
            "positive",
        ),
    ],
)
def test_qsofa_edges(row: dict[str, Any], value: int, band: str) -> None:
    result = QSOFA.compute_one(row)
    assert (result.value, result.band, result.partial, result.refused) == (value, band, False, None)


def test_qsofa_missing_mentation() -> None:
    result = QSOFA.compute_one({"respiratory_rate_per_min": 22, "systolic_bp_mm_hg": 120})
    assert result.partial and result.value == 1 and result.band is None
    assert result.missing == ("gcs", "altered_mentation")
    # two criteria already met: positive whatever the mentation
    result = QSOFA.compute_one({"respiratory_rate_per_min": 22, "systolic_bp_mm_hg": 90})
    assert (result.value, result.band, result.partial) == (2, "positive", True)
    # gcs alone completes the score
    result = QSOFA.compute_one(
        {"respiratory_rate_per_min": 12, "systolic_bp_mm_hg": 120, "gcs": 15}
    )
    assert (result.missing, result.partial) == ((), False)


@pytest.mark.parametrize(("gcs", "words"), [(14.5, "whole number"), (2, "plausible"), (16, "plau")])
def test_qsofa_gcs_is_checked(gcs: float, words: str) -> None:
    result = QSOFA.compute_one(
        {"respiratory_rate_per_min": 22, "systolic_bp_mm_hg": 90, "gcs": gcs}
    )
    assert (
        result.refused is not None and result.refused.startswith("gcs=") and words in result.refused
    )


# --- MEWS ------------------------------------------------------------------------------------------

MEWS_EDGES = [
    # systolic: <70 [3] | 71–80 [2] | 81–100 [1] | 101–199 [0] | ≥200 [2]; 70 is printed in no
    # band and takes the higher points (3)
    ("systolic_bp_mm_hg", [(50, 3), (69, 3), (70, 3), (70.5, 3), (71, 2), (80, 2), (80.5, 2),
                           (81, 1), (100, 1), (100.5, 1), (101, 0), (199, 0), (199.5, 2),
                           (200, 2), (300, 2)]),
    # heart rate: <40 [2] | 41–50 [1] | 51–100 [0] | 101–110 [1] | 111–129 [2] | ≥130 [3]; 40 -> 2
    ("pulse_per_min", [(20, 2), (39, 2), (40, 2), (40.5, 2), (41, 1), (50, 1), (51, 0), (100, 0),
                       (100.5, 1), (101, 1), (110, 1), (111, 2), (129, 2), (129.5, 3), (130, 3)]),
    # respiratory rate: <9 [2] | 9–14 [0] | 15–20 [1] | 21–29 [2] | ≥30 [3]
    ("respiratory_rate_per_min", [(4, 2), (8, 2), (8.5, 2), (9, 0), (14, 0), (14.5, 1), (15, 1),
                                  (20, 1), (21, 2), (29, 2), (30, 3), (50, 3)]),
    # temperature: <35 [2] | 35–38.4 [0] | ≥38.5 [2]
    ("temperature_c", [(33.0, 2), (34.9, 2), (34.99, 2), (35.0, 0), (38.4, 0), (38.45, 2),
                       (38.5, 2), (41.0, 2)]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "edges"), MEWS_EDGES)
def test_mews_edges(name: str, edges: list[tuple[float, int]]) -> None:
    for value, points in edges:
        assert MEWS.compute_one({name: value}).components[name] == points, (name, value)
    result = MEWS.compute_many({name: [v for v, _ in edges]})
    assert result.components[name].tolist() == [p for _, p in edges]


@pytest.mark.parametrize(("avpu", "points"), [("A", 0), ("V", 1), ("P", 2), ("U", 3), ("pain", 2)])
def test_mews_avpu(avpu: str, points: int) -> None:
    assert MEWS.compute_one({"consciousness": avpu}).components["consciousness"] == points


def test_mews_has_no_new_confusion_category() -> None:
    result = MEWS.compute_one({**NORMAL_MEWS, "consciousness": "C"})
    assert result.refused == "consciousness='C' is not one of A, V, P, U"


@pytest.mark.parametrize(
    ("changes", "value", "band"),
    [
        ({}, 0, "low"),
        # HR 115 [2] + RR 22 [2] = 4: below the paper's threshold
        ({"pulse_per_min": 115, "respiratory_rate_per_min": 22}, 4, "low"),
        # + voice [1] = 5: "score of 5 or more" (Subbe et al. 2001) -> high
        ({"pulse_per_min": 115, "respiratory_rate_per_min": 22, "consciousness": "V"}, 5, "high"),
        # SBP 95 [1] + HR 115 [2] + RR 22 [2] + 38.6 °C [2] + voice [1] = 8
        (
            {
                "systolic_bp_mm_hg": 95,
                "pulse_per_min": 115,
                "respiratory_rate_per_min": 22,
                "temperature_c": 38.6,
                "consciousness": "V",
            },
            8,
            "high",
        ),
        # the maximum: 3 + 3 + 3 + 2 + 3 = 14
        (
            {
                "systolic_bp_mm_hg": 60,
                "pulse_per_min": 140,
                "respiratory_rate_per_min": 35,
                "temperature_c": 34.0,
                "consciousness": "U",
            },
            14,
            "high",
        ),
    ],
)
def test_mews_bands(changes: dict[str, Any], value: int, band: str) -> None:
    result = MEWS.compute_one({**NORMAL_MEWS, **changes})
    assert (result.value, result.band, result.partial) == (value, band, False)


# --- input handling ------------------------------------------------------------------------------


def test_numeric_strings_and_numpy_scalars_are_read() -> None:
    result = NEWS2.compute_one(
        news2_row(respiratory_rate_per_min="24", pulse_per_min=np.int64(115), on_oxygen="false")
    )
    assert result.components["respiratory_rate_per_min"] == 2
    assert result.components["pulse_per_min"] == 2
    assert result.components["on_oxygen"] == 0


def test_text_arrays_for_categories() -> None:
    avpu = np.array(["A", "c", "V", "alert", "", "Q"])
    result = NEWS2.compute_many({"consciousness": avpu})
    assert result.components["consciousness"].tolist() == [0, 3, 3, 0, -1, -1]
    assert result.refused.tolist() == [False] * 5 + [True]


def test_whole_column_errors_raise() -> None:
    with pytest.raises(ScoreInputError, match="differ in length"):
        NEWS2.compute_many({"pulse_per_min": [1, 2], "temperature_c": [37.0]})
    with pytest.raises(ScoreInputError, match="sequence"):
        NEWS2.compute_many({"consciousness": "A"})
    with pytest.raises(ScoreInputError, match="unknown input"):
        NEWS2.compute_many({"heart_rate": [72]}, strict=True)
    assert len(NEWS2.compute_many({"heart_rate": [72]})) == 1  # not strict: ignored


def test_results_container() -> None:
    result = NEWS2.compute_many({"pulse_per_min": [72, 135, 900]})
    assert len(result) == 3
    assert result[-1].refused is not None
    assert [r.value for r in result[0:2]] == [0, 3]
    assert result.band_names() == [None, None, None]  # partial and undetermined
    with pytest.raises(IndexError):
        result[3]
    dicts = result.to_dicts()
    assert dicts[1]["components"]["pulse_per_min"] == 3
    orjson.dumps(dicts)


def test_band_table_reads_printed_bands() -> None:
    table = BandTable("x", (("<5", 2), ("5–9.5", 0), (">9.5", 1)))
    assert table.points(np.array([4.99, 5.0, 9.5, 9.51, np.nan])).tolist() == [2, 0, 0, 1, -1]
    assert table.describe() == [["<5", 2], ["5–9.5", 0], [">9.5", 1]]
    with pytest.raises(ValueError, match="cannot read"):
        BandTable("x", (("about 5", 1), ("≥6", 0)))
    with pytest.raises(ValueError, match="increasing"):
        BandTable("x", (("≤10", 1), ("5–6", 0)))


def test_input_data_keeps_defaults_out_of_missing() -> None:
    data = InputData("news2", NEWS2.inputs, {}, strict=False, rows=2)
    assert data.code("spo2_scale").tolist() == [0, 0]  # Scale 1, the source's default
    assert data.present["spo2_scale"].all()


# --- registry ------------------------------------------------------------------------------------


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    registry_module.reload()
    yield
    registry_module.reload()


def test_registry_lists_all_three_with_inputs_units_ranges_source() -> None:
    names = [s.name for s in all_scores()]
    assert {"news2", "qsofa", "mews"} <= set(names)
    listed = {d["name"]: d for d in score_list()}
    orjson.dumps(score_list())
    for name in ("news2", "qsofa", "mews"):
        entry = listed[name]
        assert entry["source"] and entry["version"] and entry["valid_population"]
        assert entry["bands"]
        for inp in entry["inputs"]:
            assert inp["description"]
            if inp["kind"] == "number":
                assert inp["unit"] and inp["valid_range"] and inp["range_source"]
                assert inp["valid_range"][0] < inp["valid_range"][1]
            if inp["kind"] == "category":
                assert inp["categories"]
    news2_inputs = [i["name"] for i in listed["news2"]["inputs"] if not i["population"]]
    assert news2_inputs == [
        "respiratory_rate_per_min", "spo2_percent", "spo2_scale", "on_oxygen",
        "systolic_bp_mm_hg", "pulse_per_min", "consciousness", "temperature_c",
    ]  # fmt: skip
    units = {i["name"]: i["unit"] for i in listed["news2"]["inputs"]}
    assert units["systolic_bp_mm_hg"] == "mm[Hg]" and units["temperature_c"] == "Cel"
    assert listed["news2"]["tables"]["temperature_c"][0] == ["≤35.0", 3]


def test_registry_lookup() -> None:
    assert get("NEWS2") is NEWS2 and get(" qsofa ") is QSOFA and get("mews") is MEWS
    with pytest.raises(UnknownScoreError, match=r"registered scores: .*news2"):
        get("news3")
    with pytest.raises(ValueError, match="built-in"):
        register(type(NEWS2)())


class ToyScore(PointsScore):
    """A one-parameter score, used to test registration and entry points."""

    name = "toy_shock"
    title = "toy"
    version = "0.0.1"
    source = "test only"
    valid_population = "tests"
    inputs = (ScoreInput("pulse_per_min", "/min", "number", "pulse", valid_range=(0, 350)),)
    components: Mapping[str, int] = {"pulse_per_min": 1}
    tables: Mapping[str, BandTable] = {
        "pulse_per_min": BandTable("pulse_per_min", (("≤100", 0), (">100", 1)))
    }

    def points(self, data: InputData) -> dict[str, Any]:
        return {"pulse_per_min": self.tables["pulse_per_min"].points(data.number("pulse_per_min"))}

    def band_codes(self, value: Any, points: Any) -> Any:
        return np.zeros(len(value), dtype=np.int8) - 1


def test_register_by_hand(fresh_registry: None) -> None:
    toy = register(ToyScore())
    assert get("toy_shock") is toy
    with pytest.raises(ValueError, match="already registered"):
        register(ToyScore())
    register(ToyScore(), replace=True)
    assert score_json("toy_shock", {"pulse_per_min": 120})["value"] == 1


def test_entry_points_load_lazily_and_tolerate_broken_plugins(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = registry_module.ENTRY_POINT_GROUP
    points = [
        EntryPoint(name="toy", value=f"{__name__}:ToyScore", group=group),
        EntryPoint(name="broken", value="medtwin_no_such_module:SCORE", group=group),
        EntryPoint(name="clash", value="medtwin.risk.news2:NEWS2", group=group),
    ]
    monkeypatch.setattr(registry_module, "_entry_points", lambda: points)
    with pytest.warns(UserWarning, match="score plugin skipped"):
        assert get("toy_shock").name == "toy_shock"
    errors = plugin_errors()
    assert set(errors) == {"broken", "clash"}
    assert "ModuleNotFoundError" in errors["broken"]
    assert "already registered" in errors["clash"]
    assert get("news2") is NEWS2


def test_no_plugins_installed(fresh_registry: None) -> None:
    assert registry_module._entry_points() == [] or plugin_errors() == {}
    assert {"news2", "qsofa", "mews"} <= {s.name for s in all_scores()}


# --- the CLI's functions -------------------------------------------------------------------------


def test_score_json() -> None:
    out = score_json("news2", news2_row(respiratory_rate_per_min=24))
    for key in ("value", "band", "missing", "partial", "refused", "components", "source",
                "name", "version"):  # fmt: skip
        assert key in out
    assert (out["value"], out["band"], out["missing"], out["partial"]) == (2, "low", [], False)
    orjson.dumps(out)
    with pytest.raises(ScoreInputError, match=r"unknown input.*'heart_rate'"):
        score_json("news2", {"heart_rate": 72})
    with pytest.raises(ScoreInputError, match="JSON object"):
        score_json("news2", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(UnknownScoreError):
        score_json("nope", {})


# --- docstring examples ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    ["medtwin.risk", "medtwin.risk.base", "medtwin.risk.registry", "medtwin.risk.news2",
     "medtwin.risk.qsofa", "medtwin.risk.mews"],
)  # fmt: skip
def test_docstring_examples(module: str) -> None:
    failures, tried = doctest.testmod(importlib.import_module(module), verbose=False)
    assert failures == 0
    assert tried > 0
