"""CHA2DS2-VASc (Lip et al., Chest 2010): every item, age edges, bands, refusals, vectorisation.

Expected points typed by hand from the paper: C 1, H 1, A2 (age >= 75) 2, D 1, S2 2, V 1,
A (65-74) 1, Sc (female) 1; bands 0 low, 1 intermediate, >= 2 high (Lip et al. 2010).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from medtwin.risk import get, score_list
from medtwin.risk.cha2ds2_vasc import CHA2DS2_VASC

ITEMS = (
    "congestive_heart_failure",
    "hypertension",
    "diabetes",
    "stroke_tia_thromboembolism",
    "vascular_disease",
)
NONE: dict[str, Any] = {"age_years": 50, "sex": "male", **{k: False for k in ITEMS}}


def pick(rng: np.random.Generator, options: list[Any], n: int) -> list[Any]:
    """n values drawn from ``options`` (None included: a missing value)."""
    return [options[i] for i in rng.integers(0, len(options), n).tolist()]


def score(**change: Any) -> Any:
    r = CHA2DS2_VASC.compute_one({**NONE, **change})
    assert r.refused is None, r.refused
    return r


def test_zero_and_maximum_nine() -> None:
    r = score()
    assert (r.value, r.band) == (0, "low")
    r = score(age_years=80, sex="female", **{k: True for k in ITEMS})
    assert (r.value, r.band) == (9, "high")


@pytest.mark.parametrize(
    ("item", "points"),
    [
        ("congestive_heart_failure", 1),
        ("hypertension", 1),
        ("diabetes", 1),
        ("stroke_tia_thromboembolism", 2),
        ("vascular_disease", 1),
    ],
)
def test_each_history_item(item: str, points: int) -> None:
    r = score(**{item: True})
    assert r.components[item] == points and r.value == points


def test_female_scores_one() -> None:
    assert score(sex="female").components["sex"] == 1
    assert score(sex="male").components["sex"] == 0
    r = score(sex="female")
    assert (r.value, r.band) == (1, "intermediate")


@pytest.mark.parametrize(
    ("age", "points"),
    [(18, 0), (64, 0), (64.99, 0), (65, 1), (74, 1), (74.99, 1), (75, 2), (101, 2)],
)
def test_age_edges(age: float, points: int) -> None:
    assert score(age_years=age).components["age_years"] == points


@pytest.mark.parametrize(
    ("change", "value", "band"),
    [
        ({}, 0, "low"),
        ({"hypertension": True}, 1, "intermediate"),
        ({"age_years": 65}, 1, "intermediate"),
        ({"age_years": 75}, 2, "high"),
        ({"hypertension": True, "diabetes": True}, 2, "high"),
        ({"stroke_tia_thromboembolism": True}, 2, "high"),
        ({"sex": "female", "age_years": 72, "hypertension": True}, 3, "high"),
    ],
)
def test_band_edges(change: dict[str, Any], value: int, band: str) -> None:
    r = score(**change)
    assert (r.value, r.band) == (value, band)


def test_cha2ds2_va_is_value_minus_sex_point() -> None:
    r = score(sex="female", age_years=70, diabetes=True)
    assert r.value == 3 and r.value - r.components["sex"] == 2


def test_partial_lower_bound_and_band() -> None:
    r = CHA2DS2_VASC.compute_one({**NONE, "stroke_tia_thromboembolism": True, "age_years": None})
    assert r.partial and r.value == 2 and r.band == "high"  # >= 2 whatever the age
    r = CHA2DS2_VASC.compute_one({**NONE, "sex": None})
    assert r.partial and r.value == 0 and r.band is None  # 0 (male) or 1 (female)
    assert r.missing == ("sex",)


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"age_years": 17}, "age_years=17: CHA2DS2-VASc was derived in adults"),
        ({"age_years": 200}, "age_years=200 is outside the plausible range 0 to 130 a"),
        ({"sex": "unknown"}, "sex='unknown' is not one of female, male"),
        ({"hypertension": "maybe"}, "hypertension='maybe' is not true or false"),
    ],
)
def test_refusals(change: dict[str, Any], text: str) -> None:
    r = CHA2DS2_VASC.compute_one({**NONE, **change})
    assert r.value is None and r.band is None and r.refused is not None
    assert text in r.refused


def test_vectorised_equals_row_by_row() -> None:
    rng = np.random.default_rng(5)
    n = 300
    cols: dict[str, list[Any]] = {
        "age_years": rng.uniform(10, 95, n).round(1).tolist(),
        "sex": pick(rng, ["female", "male", None], n),
    }
    for item in ITEMS:
        cols[item] = pick(rng, [True, False, None], n)
    many = CHA2DS2_VASC.compute_many(cols)
    for i in range(n):
        assert CHA2DS2_VASC.compute_one({k: v[i] for k, v in cols.items()}) == many[i]


def test_listed_with_inputs_and_rates() -> None:
    assert get("cha2ds2_vasc") is CHA2DS2_VASC
    desc = next(d for d in score_list() if d["name"] == "cha2ds2_vasc")
    assert {i["name"] for i in desc["inputs"]} == {*ITEMS, "age_years", "sex"}
    rates = desc["event_rates"]
    assert len(rates["thromboembolism_rate_percent_by_score"]) == 10  # scores 0-9
    assert len(rates["adjusted_stroke_rate_percent_per_year_by_score"]) == 10
    assert rates["thromboembolism_rate_percent_by_score"][0] == 0.0
