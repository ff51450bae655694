"""IWPC pharmacogenetic warfarin dosing algorithm (NEJM 2009): the predicted weekly dose.

The International Warfarin Pharmacogenetics Consortium's pharmacogenetic algorithm predicts the
**square root of the stable weekly warfarin dose** (mg) by linear regression on age (in
decades), height, weight, VKORC1 -1639 G>A genotype, CYP2C9 diplotype, race, use of an enzyme
inducer (carbamazepine, phenytoin, rifampin / rifampicin) and amiodarone; the dose is its
square. Coefficients: IWPC 2009, Supplementary Appendix (the pharmacogenetic dosing
algorithm), shipped as data in ``data/iwpc_warfarin_2009.toml``::

    sqrt(dose) = 5.6044 - 0.2614 age_decades + 0.0087 height_cm + 0.0128 weight_kg
                 - 0.8677 VKORC1 A/G - 1.6974 A/A - 0.4854 unknown
                 - 0.5211 *1/*2 - 0.9357 *1/*3 - 1.0616 *2/*2 - 1.9206 *2/*3 - 2.3312 *3/*3
                 - 0.2188 CYP2C9 unknown
                 - 0.1092 Asian - 0.2760 Black or African American - 0.1032 missing or mixed
                 + 1.1816 enzyme inducer - 0.5503 amiodarone

**Age in decades** is the decade of life as the IWPC data set codes age (10-19 years: 1,
20-29: 2, ..., 90 or more: 9): ``floor(age_years / 10)``, at most 9.

Bands: the dose groups the IWPC paper analysed separately: ``low`` (21 mg/week or less, i.e.
3 mg/day or less), ``intermediate``, ``high`` (49 mg/week or more, 7 mg/day or more).

Missing inputs: the algorithm has explicit ``unknown`` genotype and ``mixed_or_missing`` race
categories (give them as such); any input left blank gives no value (``value`` None, the blank
inputs listed in ``missing``): a regression has no lower bound to report. Model card:
``docs/models/iwpc-warfarin.md``.

References
----------
International Warfarin Pharmacogenetics Consortium; Klein TE, Altman RB, Eriksson N, et al.
Estimation of the warfarin dose with clinical and pharmacogenetic data. N Engl J Med
2009;360(8):753-764, and its Supplementary Appendix (pharmacogenetic dosing algorithm).

Examples
--------
>>> from medtwin.risk.iwpc_warfarin import IWPC_WARFARIN
>>> r = IWPC_WARFARIN.compute_one({"age_years": 65, "height_cm": 170, "weight_kg": 80,
...     "race": "white", "vkorc1_1639": "GA", "cyp2c9": "*1/*3", "enzyme_inducer": False,
...     "amiodarone": False})
>>> round(r.value, 2), r.band
(22.43, 'intermediate')
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from medtwin.risk.base import (
    Band,
    InputData,
    Score,
    ScoreInput,
    ScoreResults,
)

__all__ = ["IWPC_WARFARIN", "IwpcWarfarin", "coefficients"]

SOURCE = (
    "International Warfarin Pharmacogenetics Consortium. Estimation of the warfarin dose with "
    "clinical and pharmacogenetic data. N Engl J Med 2009;360(8):753-764, Supplementary "
    "Appendix: pharmacogenetic dosing algorithm (square root of the weekly dose)."
)
_LIMIT = "medtwin data-quality limit, not a clinical threshold"

RACES = ("white", "asian", "black", "mixed_or_missing")
VKORC1 = ("GG", "GA", "AA", "unknown")
CYP2C9 = ("*1/*1", "*1/*2", "*1/*3", "*2/*2", "*2/*3", "*3/*3", "unknown")
MIN_AGE_YEARS = 18.0


@cache
def coefficients() -> dict[str, Any]:
    """The algorithm's coefficients as shipped (``data/iwpc_warfarin_2009.toml``)."""
    text = (
        resources.files("medtwin.risk")
        .joinpath("data/iwpc_warfarin_2009.toml")
        .read_text(encoding="utf-8")
    )
    return tomllib.loads(text)


class IwpcWarfarin(Score):
    """IWPC 2009 pharmacogenetic algorithm; ``IWPC_WARFARIN`` is the instance."""

    name = "iwpc_warfarin_weekly_dose_mg"
    title = "IWPC pharmacogenetic warfarin dose (mg/week)"
    version = "1.0.0"
    source = SOURCE
    integer_value = False
    valid_population = (
        "Adults (18 years or over) starting warfarin, target INR 2-3 (IWPC 2009: 4043 patients "
        "in the derivation and 1009 in the validation cohort, 9 countries, 4 continents). "
        "Rows with age_years < 18 are refused. It predicts the stable maintenance dose, not a "
        "loading dose."
    )
    bands = (
        Band("low", "21 mg/week or less (3 mg/day or less)", "IWPC 2009 Results: low-dose group"),
        Band("intermediate", "more than 21 and less than 49 mg/week", "IWPC 2009 Results"),
        Band("high", "49 mg/week or more (7 mg/day or more)", "IWPC 2009 Results: high-dose group"),
    )
    inputs = (
        ScoreInput(
            "age_years",
            "a",
            "number",
            "Age in years (the algorithm uses the decade: floor(age / 10), at most 9)",
            valid_range=(0.0, 130.0),
            range_source=f"{_LIMIT}: above the oldest verified human age (122 years)",
        ),
        ScoreInput(
            "height_cm",
            "cm",
            "number",
            "Height in centimetres",
            valid_range=(50.0, 272.0),
            range_source=f"{_LIMIT}: the tallest recorded human was 272 cm",
        ),
        ScoreInput(
            "weight_kg",
            "kg",
            "number",
            "Body weight in kilograms",
            valid_range=(10.0, 650.0),
            range_source=f"{_LIMIT}: the heaviest recorded human was about 635 kg",
        ),
        ScoreInput(
            "race",
            None,
            "category",
            "Race as the IWPC recorded it: white, asian, black (Black or African American), "
            "mixed_or_missing",
            categories=RACES,
            aliases={
                "caucasian": "white",
                "black or african american": "black",
                "african american": "black",
                "mixed": "mixed_or_missing",
                "missing": "mixed_or_missing",
                "unknown": "mixed_or_missing",
            },
        ),
        ScoreInput(
            "vkorc1_1639",
            None,
            "category",
            "VKORC1 -1639 G>A (rs9923231) genotype: GG, GA, AA or unknown",
            categories=VKORC1,
            aliases={
                "g/g": "GG",
                "g/a": "GA",
                "a/g": "GA",
                "ag": "GA",
                "a/a": "AA",
                "gg": "GG",
                "ga": "GA",
                "aa": "AA",
            },
        ),
        ScoreInput(
            "cyp2c9",
            None,
            "category",
            "CYP2C9 diplotype: *1/*1, *1/*2, *1/*3, *2/*2, *2/*3, *3/*3 or unknown",
            categories=CYP2C9,
            aliases={"*2/*1": "*1/*2", "*3/*1": "*1/*3", "*3/*2": "*2/*3"},
        ),
        ScoreInput(
            "enzyme_inducer",
            None,
            "bool",
            "Taking an enzyme inducer: carbamazepine, phenytoin, rifampin or rifampicin (IWPC)",
        ),
        ScoreInput("amiodarone", None, "bool", "Taking amiodarone"),
    )

    def compute_data(self, data: InputData) -> ScoreResults:
        n = data.n
        c = coefficients()
        refused = data.any_invalid()
        age = data.number("age_years")
        with np.errstate(invalid="ignore"):
            young = ~np.isnan(age) & (age < MIN_AGE_YEARS)
        refused = refused | young
        decades = np.minimum(np.floor(age / 10.0), 9.0)
        root = (
            c["intercept"]
            + c["age_decades"] * decades
            + c["height_cm"] * data.number("height_cm")
            + c["weight_kg"] * data.number("weight_kg")
            + c["enzyme_inducer"] * data.number("enzyme_inducer")
            + c["amiodarone"] * data.number("amiodarone")
        )
        for name, table, cats in (
            ("race", c["race"], RACES),
            ("vkorc1_1639", c["vkorc1_1639"], VKORC1),
            ("cyp2c9", c["cyp2c9"], CYP2C9),
        ):
            lut = np.array([table[k] for k in cats] + [np.nan, np.nan])  # -2, -1 -> nan
            root = root + lut[data.code(name)]
        missing = {i.name: ~data.present[i.name] & ~data.invalid[i.name] for i in self.inputs}
        incomplete = np.zeros(n, dtype=np.bool_)
        for m in missing.values():
            incomplete |= m
        # a regression on the square root: a prediction at or below 0 has no dose (cannot
        # happen for plausible inputs; refuse rather than square a negative root)
        with np.errstate(invalid="ignore"):
            nonpositive = ~np.isnan(root) & (root <= 0.0)
        refused = refused | nonpositive
        value = np.where(refused | incomplete, np.nan, root * root)
        # 0 up to 21, 1 above 21 and below 49, 2 from 49 mg/week, -1 without a value
        # (arithmetic: no per-row branches)
        band = (
            (value > 21.0).view(np.int8)
            + (value >= 49.0).view(np.int8)
            - np.isnan(value).view(np.int8)
        )

        def reason_of(i: int) -> str:
            parts = [data.reason(inp.name, i) for inp in self.inputs if data.invalid[inp.name][i]]
            if young[i]:
                parts.append(
                    f"age_years={age[i]:g} is under {MIN_AGE_YEARS:g}: the IWPC algorithm was "
                    "derived and validated in adults"
                )
            if nonpositive[i] and not parts:
                parts.append("the algorithm's square root of the dose is not positive")
            return "; ".join(parts)

        return self.results(
            value=value,
            band_code=band,
            partial=incomplete & ~refused,
            refused=refused,
            missing=missing,
            reason_of=reason_of,
        )


IWPC_WARFARIN = IwpcWarfarin()
"""The IWPC 2009 pharmacogenetic warfarin dosing algorithm."""
