"""HAS-BLED (Pisters et al., Chest 2010): every item, the age edge, the >= 3 band, refusals.

Expected points typed by hand from the paper: one point each for uncontrolled hypertension,
abnormal renal function, abnormal liver function, stroke, bleeding, labile INR, age > 65,
antiplatelet/NSAID, alcohol excess (total 0-9); 3 or more is "high" (Pisters et al. 2010; ESC
2010 AF guideline).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from medtwin.risk import get, score_list
from medtwin.risk.has_bled import HAS_BLED

ITEMS = (
    "hypertension_uncontrolled",
    "abnormal_renal_function",
    "abnormal_liver_function",
    "stroke_history",
    "bleeding_history_or_predisposition",
    "labile_inr",
    "antiplatelet_or_nsaid",
    "alcohol_excess",
)
NONE: dict[str, Any] = {"age_years": 50, **{k: False for k in ITEMS}}


def pick(rng: np.random.Generator, options: list[Any], n: int) -> list[Any]:
    """n values drawn from ``options`` (None included: a missing value)."""
    return [options[i] for i in rng.integers(0, len(options), n).tolist()]


def score(**change: Any) -> Any:
    r = HAS_BLED.compute_one({**NONE, **change})
    assert r.refused is None, r.refused
    return r


def test_zero_and_maximum_nine() -> None:
    assert (score().value, score().band) == (0, "low_moderate")
    r = score(age_years=80, **{k: True for k in ITEMS})
    assert (r.value, r.band) == (9, "high")


@pytest.mark.parametrize("item", ITEMS)
def test_each_item_one_point(item: str) -> None:
    r = score(**{item: True})
    assert r.components[item] == 1 and r.value == 1


@pytest.mark.parametrize(("age", "points"), [(18, 0), (65, 0), (65.99, 0), (66, 1), (100, 1)])
def test_elderly_is_over_65(age: float, points: int) -> None:
    assert score(age_years=age).components["age_years"] == points


def test_band_edge_two_and_three() -> None:
    r = score(stroke_history=True, labile_inr=True)
    assert (r.value, r.band) == (2, "low_moderate")
    r = score(stroke_history=True, labile_inr=True, age_years=66)
    assert (r.value, r.band) == (3, "high")
    r = score(abnormal_renal_function=True, abnormal_liver_function=True)
    assert r.value == 2  # renal and liver: one point each
    r = score(antiplatelet_or_nsaid=True, alcohol_excess=True, age_years=70)
    assert (r.value, r.band) == (3, "high")  # drugs and alcohol: one point each


def test_partial() -> None:
    r = HAS_BLED.compute_one({**NONE, "labile_inr": None, "stroke_history": True})
    assert r.partial and r.value == 1 and r.band == "low_moderate"  # 1..2 < 3
    assert r.missing == ("labile_inr",)
    r = HAS_BLED.compute_one(
        {**NONE, "labile_inr": None, "stroke_history": True, "alcohol_excess": True}
    )
    assert r.partial and r.value == 2 and r.band is None  # 2 or 3


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"age_years": 12}, "age_years=12: HAS-BLED was derived in adults"),
        ({"age_years": -1}, "age_years=-1 is outside the plausible range 0 to 130 a"),
        ({"labile_inr": 2}, "labile_inr=2 is not true or false"),
    ],
)
def test_refusals(change: dict[str, Any], text: str) -> None:
    r = HAS_BLED.compute_one({**NONE, **change})
    assert r.value is None and r.band is None and r.refused is not None
    assert text in r.refused


def test_vectorised_equals_row_by_row() -> None:
    rng = np.random.default_rng(9)
    n = 300
    cols: dict[str, list[Any]] = {"age_years": rng.uniform(10, 95, n).round(1).tolist()}
    for item in ITEMS:
        cols[item] = pick(rng, [True, False, None], n)
    many = HAS_BLED.compute_many(cols)
    for i in range(n):
        assert HAS_BLED.compute_one({k: v[i] for k, v in cols.items()}) == many[i]


def test_listed_with_inputs_and_rates() -> None:
    assert get("HAS_BLED") is HAS_BLED
    desc = next(d for d in score_list() if d["name"] == "has_bled")
    assert {i["name"] for i in desc["inputs"]} == {*ITEMS, "age_years"}
    rates = desc["event_rates"]["bleeds_per_100_patient_years_by_score"]
    assert rates == pytest.approx([1.13, 1.02, 1.88, 3.74, 8.70, 12.50])  # Pisters 2010
