"""CKD-EPI 2021 (Inker et al., NEJM 2021): values, units, KDIGO bands, refusals, vectorisation.

Expected values: the National Kidney Foundation's online calculator (kidney.org, CKD-EPI 2021
creatinine) as reported in a third-party comparison (55-year-old man, creatinine 1.2 mg/dL:
71, G2; the calculator reports whole numbers, tolerance 0.5), the unit tests of independent
implementations (female 50 y, 1.0 mg/dL: 68.63; male 60 y, 1.5 mg/dL: 52.96, tolerance 0.01
as printed; 90 y, 1.5 mg/dL: male 44, female 33 as whole numbers), and the equation written
out again below from the paper's text.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from medtwin.risk import get, score_json, score_list
from medtwin.risk.ckd_epi_2021 import CKD_EPI_2021
from medtwin.synth.generator import ckd_epi_2021_egfr


def pick(rng: np.random.Generator, options: list[Any], n: int) -> list[Any]:
    """n values drawn from ``options`` (None included: a missing value)."""
    return [options[i] for i in rng.integers(0, len(options), n).tolist()]


def by_hand(scr_mg_dl: float, age: float, female: bool) -> float:
    """eGFRcr 2021 typed again from Inker et al. 2021 (kappa, alpha per sex)."""
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    r = scr_mg_dl / kappa
    out = 142 * min(r, 1) ** alpha * max(r, 1) ** -1.2 * 0.9938**age
    return float(out * 1.012 if female else out)


def one(**row: Any) -> Any:
    return CKD_EPI_2021.compute_one(row)


@pytest.mark.parametrize(
    ("scr", "age", "sex", "expected", "tol"),
    [
        (1.2, 55, "male", 71, 0.5),  # NKF calculator: 71 mL/min/1.73 m2
        (1.0, 50, "female", 68.63, 0.01),
        (1.5, 60, "male", 52.96, 0.01),
        (1.5, 90, "male", 44, 0.5),
        (1.5, 90, "female", 33, 0.5),
    ],
)
def test_published_and_independent_values(
    scr: float, age: float, sex: str, expected: float, tol: float
) -> None:
    r = one(creatinine_mg_dl=scr, age_years=age, sex=sex)
    assert r.value == pytest.approx(expected, abs=tol)
    assert r.refused is None and not r.partial and r.missing == ()


@pytest.mark.parametrize("female", [True, False])
@pytest.mark.parametrize("scr", [0.3, 0.6, 0.7, 0.85, 0.9, 1.3, 4.0, 12.0])
@pytest.mark.parametrize("age", [18, 40, 75, 101])
def test_matches_equation_typed_again(female: bool, scr: float, age: float) -> None:
    sex = "female" if female else "male"
    r = one(creatinine_mg_dl=scr, age_years=age, sex=sex)
    assert r.value == pytest.approx(by_hand(scr, age, female), rel=1e-12)


def test_continuous_at_kappa() -> None:
    """At Scr = kappa both branches give 142 x 0.9938^age (x 1.012 for women)."""
    for sex, kappa, factor in (("female", 0.7, 1.012), ("male", 0.9, 1.0)):
        at = one(creatinine_mg_dl=kappa, age_years=50, sex=sex).value
        assert at == pytest.approx(142 * 0.9938**50 * factor, rel=1e-12)
        below = one(creatinine_mg_dl=kappa * (1 - 1e-9), age_years=50, sex=sex).value
        above = one(creatinine_mg_dl=kappa * (1 + 1e-9), age_years=50, sex=sex).value
        assert below == pytest.approx(at, rel=1e-8) and above == pytest.approx(at, rel=1e-8)
        assert below > at > above  # eGFR falls as creatinine rises


def test_umol_l_equals_mg_dl_times_88_4() -> None:
    for scr in (0.5, 1.0, 2.26, 7.0):
        mg = one(creatinine_mg_dl=scr, age_years=63, sex="female").value
        si = one(creatinine_umol_l=scr * 88.4, age_years=63, sex="female").value
        assert si == pytest.approx(mg, rel=1e-12)


def creatinine_for(target: float, age: float) -> float:
    """Male creatinine (> 0.9 mg/dL branch) giving eGFR ``target`` at ``age``."""
    return float(0.9 * (target / (142 * 0.9938**age)) ** (-1 / 1.2))


@pytest.mark.parametrize(
    ("edge", "above", "below"),
    [(90, "G1", "G2"), (60, "G2", "G3a"), (45, "G3a", "G3b"), (30, "G3b", "G4"), (15, "G4", "G5")],
)
def test_kdigo_band_edges_both_sides(edge: float, above: str, below: str) -> None:
    age = 20 if edge == 90 else 50  # at 50 a male's eGFR at creatinine 0.9 is below 90
    scr = creatinine_for(edge, age)
    assert scr > 0.9
    hi = one(creatinine_mg_dl=scr * (1 - 1e-6), age_years=age, sex="male")
    lo = one(creatinine_mg_dl=scr * (1 + 1e-6), age_years=age, sex="male")
    assert hi.value > edge > lo.value
    assert (hi.band, lo.band) == (above, below)


def test_exactly_sixty_is_g2_and_fraction_below_is_g3a() -> None:
    values = np.array([60.0, 59.999, 89.6, 90.0, 14.99, 15.0])
    lower = np.array([90.0, 60.0, 45.0, 30.0, 15.0, 0.0])
    codes = np.sum(values[:, None] < lower[None, :], axis=1)
    names = [CKD_EPI_2021.bands[c].name for c in codes]
    assert names == ["G2", "G3a", "G2", "G1", "G5", "G4"]


def test_both_units_refused_and_neither_missing() -> None:
    r = one(creatinine_mg_dl=1.0, creatinine_umol_l=88.4, age_years=50, sex="male")
    assert r.value is None and r.band is None
    assert r.refused is not None and "exactly one" in r.refused
    r = one(age_years=50, sex="male")
    assert r.value is None and r.partial and r.refused is None
    assert r.missing == ("creatinine_mg_dl", "creatinine_umol_l")
    r = one(creatinine_mg_dl=1.0, age_years=50)
    assert r.value is None and r.missing == ("sex",)


@pytest.mark.parametrize(
    ("row", "names"),
    [
        (
            {"creatinine_mg_dl": 88.0},
            "creatinine_mg_dl=88 is outside the plausible range 0.1 to 40",
        ),
        ({"creatinine_mg_dl": 0.05}, "creatinine_mg_dl=0.05 is outside"),
        ({"creatinine_umol_l": 5000}, "creatinine_umol_l=5000 is outside"),
        ({"creatinine_umol_l": 1.0}, "creatinine_umol_l=1 is outside"),
        ({"creatinine_mg_dl": 1.0, "age_years": 17}, "age_years=17 is under 18"),
        ({"creatinine_mg_dl": 1.0, "age_years": 140}, "age_years=140 is outside"),
        ({"creatinine_mg_dl": 1.0, "sex": "x"}, "sex='x' is not one of female, male"),
    ],
)
def test_refusals_name_the_input_and_range(row: dict[str, Any], names: str) -> None:
    full = {"creatinine_mg_dl": None, "age_years": 50, "sex": "male", **row}
    r = CKD_EPI_2021.compute_one(full)
    assert r.value is None and r.band is None
    assert r.refused is not None and names in r.refused


def test_range_edges_accepted() -> None:
    assert one(creatinine_mg_dl=0.1, age_years=18, sex="female").value is not None
    assert one(creatinine_mg_dl=40.0, age_years=130, sex="male").band == "G5"
    assert one(creatinine_umol_l=8.84, age_years=18, sex="male").value is not None


def test_vectorised_equals_row_by_row() -> None:
    rng = np.random.default_rng(3)
    n = 300
    cols: dict[str, Any] = {
        "creatinine_mg_dl": rng.uniform(0.2, 12, n).round(2).tolist(),
        "age_years": rng.uniform(10, 100, n).round(1).tolist(),
        "sex": pick(rng, ["female", "male", None], n),
    }
    for i in rng.choice(n, 30, replace=False).tolist():
        cols["creatinine_mg_dl"][i] = None
    many = CKD_EPI_2021.compute_many(cols)
    for i in range(n):
        single = CKD_EPI_2021.compute_one({k: v[i] for k, v in cols.items()})
        assert single == many[i]


def test_generator_uses_the_same_equation() -> None:
    for scr, age, sex in ((0.8, 60, "female"), (1.0, 50, "male"), (3.1, 77, "female")):
        score = one(creatinine_mg_dl=scr, age_years=age, sex=sex).value
        assert ckd_epi_2021_egfr(scr, age, sex) == score  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="creatinine_mg_dl must be positive"):
        ckd_epi_2021_egfr(0.0, 50, "male")


def test_registry_json_and_documented_inputs() -> None:
    assert get("CKD_EPI_2021") is CKD_EPI_2021
    out = score_json("ckd_epi_2021", {"creatinine_umol_l": 106, "age_years": 55, "sex": "male"})
    assert out["band"] == "G2" and math.isclose(out["value"], by_hand(106 / 88.4, 55, False))
    desc = next(d for d in score_list() if d["name"] == "ckd_epi_2021")
    assert {i["name"] for i in desc["inputs"]} == {
        "creatinine_mg_dl",
        "creatinine_umol_l",
        "age_years",
        "sex",
    }
    assert all(i["description"] and i["kind"] for i in desc["inputs"])
    assert [b["name"] for b in desc["bands"]] == ["G1", "G2", "G3a", "G3b", "G4", "G5"]
