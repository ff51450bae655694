"""The column fast paths of medtwin.risk give what the row-by-row path gives (issue 6 speed work).

``compute_many`` takes shortcuts on large numpy columns: categories looked up in C, numeric and
boolean arrays checked in fewer passes, chart bands counted by comparison instead of
``searchsorted``, risk equations evaluated only on the rows that get a value, grouped by
equation. ``compute_one`` (a 1-row column set, mostly through the plain paths) is the reference:
on a table mixing valid, missing, implausible, out-of-population and oddly typed values, every
row of a large ``compute_many`` must equal ``compute_one`` of that row, bit for bit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from medtwin.risk import BandTable, all_scores, get
from medtwin.risk.base import InputData, ScoreInput
from medtwin.risk.prevent import MODELS, model_codes

ROWS = 700  # above the 512 rows where BandTable.points switches to counting comparisons


# plausible everyday values, so that the equations' narrower accepted ranges are met often
TYPICAL = {
    "age_years": (35.0, 75.0),
    "bmi_kg_m2": (19.0, 39.0),
    "cholesterol_hdl_ratio": (2.0, 8.0),
    "creatinine_mg_dl": (0.5, 2.5),
    "creatinine_umol_l": (50.0, 200.0),
    "egfr_ml_min_1_73m2": (30.0, 120.0),
    "hba1c_percent": (4.5, 10.0),
    "hdl_mg_dl": (30.0, 90.0),
    "height_cm": (150.0, 195.0),
    "pulse_per_min": (40.0, 150.0),
    "respiratory_rate_per_min": (8.0, 30.0),
    "spo2_percent": (85.0, 100.0),
    "systolic_bp_mm_hg": (95.0, 190.0),
    "systolic_bp_sd_mm_hg": (0.0, 20.0),
    "temperature_c": (35.0, 40.0),
    "total_cholesterol_mg_dl": (140.0, 300.0),
    "townsend_score": (-6.0, 10.0),
    "uacr_mg_g": (1.0, 300.0),
    "waist_cm": (60.0, 130.0),
    "weight_kg": (45.0, 120.0),
}


def _value(spec: ScoreInput, rng: np.random.Generator, messy: bool) -> Any:
    """One value for ``spec``: plausible, or (``messy``) maybe missing, implausible or odd."""
    r = rng.random() if messy else 1.0
    if r < 0.05 or (spec.name == "creatinine_umol_l" and rng.random() < 0.8):
        return None  # (one creatinine unit at a time, mostly)
    if r < 0.08:
        return math.nan
    if r < 0.09:
        return ""
    if spec.kind == "bool":
        odd: list[Any] = [True, False, 1, 0, 1.0, 0.0, "yes", "no", "F", 2, 0.5, "maybe"]
        return odd[int(rng.integers(0, len(odd)))] if r < 0.2 else bool(rng.random() < 0.5)
    if spec.kind == "category":
        assert spec.categories is not None
        if r > 0.2:
            return spec.categories[int(rng.integers(0, len(spec.categories)))]
        options: list[Any] = [*spec.categories, *spec.aliases, "zzz", 99]
        options.append(f" {str(spec.categories[0]).upper()} ")
        return options[int(rng.integers(0, len(options)))]
    low, high = spec.valid_range or (0.0, 10.0)
    if r > 0.2:
        low, high = TYPICAL.get(spec.name, (low, high))
        x = float(rng.uniform(low, high))
        return float(round(x)) if spec.integer else x
    span = high - low
    x = float(rng.uniform(low - 0.1 * span, high + 0.1 * span))
    if spec.integer or r < 0.15:
        x = float(round(x))
    if r < 0.18:
        return str(x)
    if r < 0.2:
        return math.inf
    return x


def _rows(score: Any, n: int, seed: int) -> list[dict[str, Any]]:
    """Half the rows plausible throughout, half with an odd value anywhere."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        messy = bool(rng.random() < 0.5)
        rows.append({spec.name: _value(spec, rng, messy) for spec in score.inputs})
    return rows


def _same(a: Any, b: Any) -> bool:
    """Equal, with ``nan == nan`` and floats compared bit for bit."""
    if isinstance(a, float) and isinstance(b, float):
        return a.hex() == b.hex() or (math.isnan(a) and math.isnan(b))
    return bool(a == b) and type(a) is type(b)


@pytest.mark.parametrize("name", sorted(s.name for s in all_scores()))
def test_many_rows_equal_one_row_at_a_time(name: str) -> None:
    score = get(name)
    rows = _rows(score, ROWS, seed=len(name))
    # numeric and boolean inputs as numpy arrays (the fast paths), categories as object arrays
    columns: dict[str, Any] = {}
    for spec in score.inputs:
        column = [row[spec.name] for row in rows]
        if spec.kind == "category":
            columns[spec.name] = np.array(column, dtype=object)
        elif spec.kind == "bool":
            columns[spec.name] = np.array(
                [v if isinstance(v, bool) else None for v in column], dtype=object
            )
        else:
            columns[spec.name] = np.array(
                [v if isinstance(v, float) else math.nan for v in column], dtype=np.float64
            )
    many = score.compute_many(columns)
    for i in range(ROWS):
        row = {key: column[i] for key, column in columns.items()}
        one = score.compute_one(row)
        got = many[i]
        assert _same(got.value, one.value) if got.value is not None else one.value is None, i
        assert (got.band, got.partial, got.refused, got.missing) == (
            one.band,
            one.partial,
            one.refused,
            one.missing,
        ), i
        assert dict(got.components) == dict(one.components), i
    # the table exercises values, refusals and (where the score has them) partial rows
    assert np.isfinite(many.value).any() and many.refused.any()

    # the same rows as Python lists, with the odd values the array columns left out
    listed = score.compute_many(
        {spec.name: [row[spec.name] for row in rows] for spec in score.inputs}
    )
    for i in range(ROWS):
        one = score.compute_one(rows[i])
        got = listed[i]
        assert (got.band, got.partial, got.refused) == (one.band, one.partial, one.refused), i
        assert _same(got.value, one.value) if got.value is not None else one.value is None, i


def test_band_table_counts_like_searchsorted_on_every_edge() -> None:
    tables = [t for s in all_scores() for t in getattr(s, "tables", {}).values()]
    assert len(tables) >= 10
    for table in tables:
        cuts = table.thresholds
        edges = np.concatenate(
            [cuts, np.nextafter(cuts, -np.inf), np.nextafter(cuts, np.inf), cuts.round(1)]
        )
        x = np.concatenate([edges, [-np.inf, np.inf, np.nan, -1e9, 1e9, 0.0, -0.0]])
        x = np.tile(x, 1 + 600 // x.size)  # > 512 values: the comparison path
        assert x.size > 512
        expected = table.points_lut[np.searchsorted(cuts, x, side="right")]
        expected[np.isnan(x)] = -1
        assert table.points(x).tolist() == expected.tolist(), table.label
        # a few values at a time (compute_one) give the same points
        assert [int(table.points(x[i : i + 1])[0]) for i in range(40)] == expected[:40].tolist()


def test_band_table_example_on_many_rows() -> None:
    table = BandTable("x", (("<5", 2), ("5–9.5", 0), (">9.5", 1)))
    x = np.tile(np.array([4.99, 5.0, 9.5, 9.51, np.nan]), 200)
    assert table.points(x)[:5].tolist() == [2, 0, 0, 1, -1]
    assert table.points(x).tolist() == [2, 0, 0, 1, -1] * 200


def test_category_lookup_of_a_large_object_column() -> None:
    spec = get("news2").input("consciousness")
    values: list[Any] = [
        "A",
        "alert",
        " v ",
        "p",
        "U",
        "C",
        None,
        math.nan,
        "",
        "Q",
        3,
        "new confusion",
    ]
    expected = [0, 0, 2, 3, 4, 1, -1, -1, -1, -2, -2, 1]
    column = np.array(values * 100, dtype=object)
    data = InputData("news2", (spec,), {"consciousness": column}, strict=False, rows=None)
    assert data.code("consciousness").tolist() == expected * 100
    assert data.invalid["consciousness"].tolist() == [c == -2 for c in expected] * 100
    # an unhashable value refuses its row only (the row-by-row fallback)
    with_list = [*values * 100, ["A"]]
    data = InputData("news2", (spec,), {"consciousness": with_list}, strict=False, rows=None)
    assert data.code("consciousness").tolist() == [*expected * 100, -2]
    # a few rows (compute_one) take the plain loop: the same codes
    for value, code in zip(values, expected, strict=True):
        one = InputData("news2", (spec,), {"consciousness": [value]}, strict=False, rows=None)
        assert one.code("consciousness").tolist() == [code], value


def test_numeric_array_checks_equal_the_list_path() -> None:
    spec = ScoreInput("gcs", None, "number", "GCS", valid_range=(3.0, 15.0), integer=True)
    values = [3.0, 15.0, 2.0, 16.0, 7.5, math.nan, math.inf, -math.inf, 14.0, 0.0]
    for column in (np.array(values), values):
        data = InputData("t", (spec,), {"gcs": column}, strict=False, rows=None)
        assert data.invalid["gcs"].tolist() == [
            False, False, True, True, True, False, True, True, False, True,
        ]  # fmt: skip
        assert data.present["gcs"].tolist() == [
            True, True, False, False, False, False, False, False, True, False,
        ]  # fmt: skip
    ints = InputData("t", (spec,), {"gcs": np.array([3, 16, 9])}, strict=False, rows=None)
    assert ints.invalid["gcs"].tolist() == [False, True, False]
    flag = ScoreInput("flag", None, "bool", "a flag")
    for column in (np.array([1.0, 0.0, 2.0, math.nan]), [1.0, 0.0, 2.0, math.nan]):
        data = InputData("t", (flag,), {"flag": column}, strict=False, rows=None)
        assert data.invalid["flag"].tolist() == [False, False, True, False]
        assert data.present["flag"].tolist() == [True, True, False, False]
    given = InputData("t", (flag,), {"flag": np.array([True, False])}, strict=False, rows=None)
    assert given.number("flag").tolist() == [1.0, 0.0] and given.present["flag"].all()
    # a boolean array is not a number: refused row by row
    spec_rr = ScoreInput("rr", "/min", "number", "rate", valid_range=(0.0, 100.0))
    data = InputData("t", (spec_rr,), {"rr": np.array([True, False])}, strict=False, rows=None)
    assert data.invalid["rr"].tolist() == [True, True]


def test_a_fraction_for_a_percentage_is_refused_on_both_paths() -> None:
    """SpO2 0.95 (a fraction) is refused by the array path and the list path alike; 0 and 1 %
    are percentages (scored)."""
    from medtwin.risk.base import spo2_input

    spec = spo2_input()
    values = [0.95, 0.0, 1.0, 95.0, 0.5, 99.5]
    for column in (np.array(values), values):
        data = InputData("t", (spec,), {"spo2_percent": column}, strict=False, rows=None)
        assert data.invalid["spo2_percent"].tolist() == [True, False, False, False, True, False]
    assert "looks like a fraction" in data.reason("spo2_percent", 4)


def test_prevent_model_codes_for_every_combination() -> None:
    bits = np.arange(8)
    uacr, hba1c, sdi = (bits & 1) > 0, (bits & 2) > 0, (bits & 4) > 0
    got = [MODELS[c] for c in model_codes(uacr, hba1c, sdi)]
    # preventr's rule: none -> base; one of UACR / HbA1c / SDI -> that add-on; two or more -> full
    assert got == ["base", "uacr", "hba1c", "full", "sdi", "full", "full", "full"]
