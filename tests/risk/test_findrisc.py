"""FINDRISC (Lindström & Tuomilehto 2003): every item at both sides of every threshold, band edges.

Expected points are the FINDRISC form's, typed here by hand: age < 45: 0, 45-54: 2, 55-64: 3,
> 64: 4; BMI < 25: 0, 25-30: 1, > 30: 3; waist men < 94: 0, 94-102: 3, > 102: 4, women < 80: 0,
80-88: 3, > 88: 4; not active 30 min daily 2; vegetables not daily 1; antihypertensives 2;
high glucose 5; family history second-degree 3, first-degree 5. Bands < 7, 7-11, 12-14,
15-20, > 20. One worked example from an independent online implementation (age 35, BMI 24.2,
waist 90 cm male, inactive, no daily vegetables, otherwise no: 3 points, low).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from medtwin.risk import get, score_list
from medtwin.risk.findrisc import FINDRISC

ZERO: dict[str, Any] = {
    "age_years": 30,
    "sex": "male",
    "bmi_kg_m2": 22.0,
    "waist_cm": 75,
    "physically_active_30min_daily": True,
    "vegetables_fruit_berries_daily": True,
    "antihypertensive_medication_ever": False,
    "high_blood_glucose_ever": False,
    "family_history_diabetes": "none",
}
MAX: dict[str, Any] = {
    "age_years": 70,
    "sex": "female",
    "bmi_kg_m2": 35.0,
    "waist_cm": 100,
    "physically_active_30min_daily": False,
    "vegetables_fruit_berries_daily": False,
    "antihypertensive_medication_ever": True,
    "high_blood_glucose_ever": True,
    "family_history_diabetes": "first_degree",
}


def pick(rng: np.random.Generator, options: list[Any], n: int) -> list[Any]:
    """n values drawn from ``options`` (None included: a missing value)."""
    return [options[i] for i in rng.integers(0, len(options), n).tolist()]


def score(**change: Any) -> Any:
    r = FINDRISC.compute_one({**ZERO, **change})
    assert r.refused is None, r.refused
    return r


def test_all_zero_and_maximum() -> None:
    assert (score().value, score().band) == (0, "low")
    r = FINDRISC.compute_one(MAX)
    assert (r.value, r.band) == (26, "very_high")


def test_independent_worked_example() -> None:
    r = score(
        age_years=35,
        bmi_kg_m2=24.2,
        waist_cm=90,
        physically_active_30min_daily=False,
        vegetables_fruit_berries_daily=False,
    )
    assert (r.value, r.band) == (3, "low")


@pytest.mark.parametrize(
    ("age", "points"),
    [(18, 0), (44, 0), (44.99, 0), (45, 2), (54, 2), (54.9, 2), (55, 3), (64, 3), (64.9, 3),
     (65, 4), (99, 4)],
)  # fmt: skip
def test_age_edges_completed_years(age: float, points: int) -> None:
    assert score(age_years=age).components["age_years"] == points


@pytest.mark.parametrize(
    ("bmi", "points"),
    [(24.9, 0), (24.999, 0), (25.0, 1), (30.0, 1), (30.01, 3), (45, 3)],
)
def test_bmi_edges(bmi: float, points: int) -> None:
    assert score(bmi_kg_m2=bmi).components["bmi_kg_m2"] == points


@pytest.mark.parametrize(
    ("sex", "waist", "points"),
    [("male", 93.9, 0), ("male", 94, 3), ("male", 102, 3), ("male", 102.5, 4),
     ("female", 79.9, 0), ("female", 80, 3), ("female", 88, 3), ("female", 88.1, 4),
     ("male", 85, 0), ("female", 95, 4)],
)  # fmt: skip
def test_waist_edges_by_sex(sex: str, waist: float, points: int) -> None:
    assert score(sex=sex, waist_cm=waist).components["waist_cm"] == points


def test_waist_without_sex_scored_only_where_sexes_agree() -> None:
    for waist, points in ((70, 0), (79.9, 0), (85, None), (100, None), (103, 4)):
        r = FINDRISC.compute_one({**ZERO, "sex": None, "waist_cm": waist})
        assert r.components["waist_cm"] == points
        assert r.partial is (points is None)


@pytest.mark.parametrize(
    ("item", "value", "points"),
    [
        ("physically_active_30min_daily", True, 0),
        ("physically_active_30min_daily", False, 2),
        ("vegetables_fruit_berries_daily", True, 0),
        ("vegetables_fruit_berries_daily", False, 1),
        ("antihypertensive_medication_ever", False, 0),
        ("antihypertensive_medication_ever", True, 2),
        ("high_blood_glucose_ever", False, 0),
        ("high_blood_glucose_ever", True, 5),
        ("family_history_diabetes", "none", 0),
        ("family_history_diabetes", "second_degree", 3),
        ("family_history_diabetes", "first_degree", 5),
        ("family_history_diabetes", "First-Degree", 5),
    ],
)
def test_yes_no_items(item: str, value: Any, points: int) -> None:
    r = score(**{item: value})
    assert r.components[item] == points and r.value == points


@pytest.mark.parametrize(
    ("change", "total", "band"),
    [
        ({"family_history_diabetes": "second_degree", "physically_active_30min_daily": False,
          "vegetables_fruit_berries_daily": False}, 6, "low"),
        ({"high_blood_glucose_ever": True, "physically_active_30min_daily": False}, 7,
         "slightly_elevated"),
        ({"high_blood_glucose_ever": True, "family_history_diabetes": "second_degree",
          "age_years": 50, "bmi_kg_m2": 26}, 11, "slightly_elevated"),
        ({"high_blood_glucose_ever": True, "family_history_diabetes": "first_degree",
          "age_years": 50}, 12, "moderate"),
        ({"high_blood_glucose_ever": True, "family_history_diabetes": "first_degree",
          "age_years": 60, "bmi_kg_m2": 26}, 14, "moderate"),
        ({"high_blood_glucose_ever": True, "family_history_diabetes": "first_degree",
          "age_years": 70, "bmi_kg_m2": 26}, 15, "high"),
        ({"high_blood_glucose_ever": True, "family_history_diabetes": "first_degree",
          "age_years": 70, "bmi_kg_m2": 31, "waist_cm": 96, "physically_active_30min_daily": False},
         22, "very_high"),
        ({"high_blood_glucose_ever": True, "family_history_diabetes": "first_degree",
          "age_years": 70, "bmi_kg_m2": 31, "physically_active_30min_daily": False,
          "antihypertensive_medication_ever": True}, 21, "very_high"),
        ({"high_blood_glucose_ever": True, "family_history_diabetes": "first_degree",
          "age_years": 70, "bmi_kg_m2": 31, "physically_active_30min_daily": False,
          "vegetables_fruit_berries_daily": False}, 20, "high"),
    ],
)  # fmt: skip
def test_band_edges_both_sides(change: dict[str, Any], total: int, band: str) -> None:
    r = score(**change)
    assert (r.value, r.band) == (total, band)


def test_partial_is_lower_bound_band_only_when_fixed() -> None:
    r = FINDRISC.compute_one({**MAX, "bmi_kg_m2": None})
    assert r.partial and r.value == 23 and r.band == "very_high"  # 23 + 0..3: still > 20
    r = FINDRISC.compute_one({**ZERO, "high_blood_glucose_ever": None})
    assert r.partial and r.value == 0 and r.band == "low"  # 0 + 0..5: still < 7
    r = FINDRISC.compute_one(
        {**ZERO, "high_blood_glucose_ever": None, "physically_active_30min_daily": False}
    )
    assert r.partial and r.value == 2 and r.band is None  # 2..7: low or slightly elevated
    assert r.missing == ("high_blood_glucose_ever",)


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"age_years": 17}, "age_years=17: FINDRISC was derived and validated in adults"),
        ({"bmi_kg_m2": 5}, "bmi_kg_m2=5 is outside the plausible range 10 to 100 kg/m2"),
        ({"waist_cm": 35.4 / 2}, "waist_cm=17.7 is outside the plausible range 30 to 300 cm"),
        ({"waist_cm": 900}, "waist_cm=900 is outside"),
        ({"family_history_diabetes": "cousin"}, "family_history_diabetes='cousin' is not one of"),
        ({"age_years": 131}, "age_years=131 is outside"),
    ],
)
def test_refusals_name_input_and_range(change: dict[str, Any], text: str) -> None:
    r = FINDRISC.compute_one({**ZERO, **change})
    assert r.value is None and r.band is None and r.refused is not None
    assert text in r.refused


def test_range_edges_accepted() -> None:
    assert score(age_years=18, bmi_kg_m2=10, waist_cm=30).value == 0
    assert score(age_years=130, bmi_kg_m2=100, waist_cm=300).value == 4 + 3 + 4


def test_vectorised_equals_row_by_row() -> None:
    rng = np.random.default_rng(11)
    n = 300
    cols: dict[str, list[Any]] = {
        "age_years": rng.uniform(15, 90, n).round(1).tolist(),
        "sex": pick(rng, ["female", "male", None], n),
        "bmi_kg_m2": rng.uniform(18, 40, n).round(1).tolist(),
        "waist_cm": rng.uniform(60, 120, n).round(0).tolist(),
        "family_history_diabetes": pick(rng, ["none", "second_degree", "first_degree", None], n),
    }
    for name in (
        "physically_active_30min_daily",
        "vegetables_fruit_berries_daily",
        "antihypertensive_medication_ever",
        "high_blood_glucose_ever",
    ):
        cols[name] = pick(rng, [True, False, None], n)
    many = FINDRISC.compute_many(cols)
    for i in range(n):
        assert FINDRISC.compute_one({k: v[i] for k, v in cols.items()}) == many[i]


def test_listed_with_inputs_and_risks() -> None:
    assert get("FINDRISC") is FINDRISC
    desc = next(d for d in score_list() if d["name"] == "findrisc")
    assert len(desc["inputs"]) == 9 and all(i["description"] for i in desc["inputs"])
    risk = desc["ten_year_risk"]
    assert [risk[b]["one_in"] for b in ("low", "slightly_elevated", "moderate", "high")] == [
        100,
        25,
        6,
        3,
    ]
    assert risk["very_high"]["one_in"] == 2
