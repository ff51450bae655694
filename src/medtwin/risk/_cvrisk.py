"""Shared parts of the 10-year cardiovascular risk equations (PCE 2013, revised PCE 2018, Framingham).

The three equations read the same risk factors under the same names (issue 6, "common input
names"): ``age_years``, ``sex``, ``race`` (PCE only), ``total_cholesterol_mg_dl``, ``hdl_mg_dl``,
``systolic_bp_mm_hg``, ``bp_treated``, ``smoker``, ``diabetes``. This module declares those inputs
once and turns a risk array plus the refusal masks into :class:`~medtwin.risk.base.ScoreResults`.

Two layers of limits, each refused with its own reason:

* the **plausibility range** of the input (``ScoreInput.valid_range``: a cholesterol of 5000 mg/dL
  is an entry or unit error; the same limit in every score);
* the **accepted range** of the equation (:class:`AcceptedRange`): the population or the input
  range the source validated or its calculator accepts (PCE: age 40-79, total cholesterol 130-320,
  HDL 20-100, systolic 90-200). A value there is plausible but the equation does not apply.

A risk equation has no lower bound to report when an input is missing: the row then has no
value, ``partial`` is true and the missing inputs are listed (never a default).
"""

from __future__ import annotations

import tomllib
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from medtwin.risk.base import (
    Band,
    BoolArray,
    CodeArray,
    FloatArray,
    InputData,
    IntArray,
    Score,
    ScoreInput,
    ScoreResults,
)

__all__ = [
    "AcceptedRange",
    "RangedScore",
    "assemble",
    "assemble_rows",
    "cv_inputs",
    "load_toml",
    "percent_bands",
]

_LIMIT = "medtwin data-quality limit, not a clinical threshold"


@cache
def load_toml(filename: str) -> dict[str, Any]:
    """A coefficient file from ``medtwin/risk/data`` (parsed once)."""
    text = resources.files("medtwin.risk").joinpath(f"data/{filename}").read_text(encoding="utf-8")
    return tomllib.loads(text)


@dataclass(frozen=True, slots=True)
class AcceptedRange:
    """The range of an input in which the equation applies (inclusive low; high per ``high_open``).

    ``high_open`` is used for ages: "40 to 79 years" admits 79.9 years (still 79 years old) and
    refuses 80.
    """

    input: str
    low: float
    high: float
    unit: str
    source: str
    high_open: bool = False

    @classmethod
    def from_pair(
        cls, name: str, pair: Sequence[float], unit: str, source: str, *, high_open: bool = False
    ) -> AcceptedRange:
        """From a ``[low, high]`` pair as written in a coefficient file."""
        low, high = (float(v) for v in pair)
        return cls(name, low, high, unit, source, high_open=high_open)

    def outside(self, x: FloatArray) -> BoolArray:
        with np.errstate(invalid="ignore"):
            above = x >= self.high if self.high_open else x > self.high
            out: BoolArray = ~np.isnan(x) & ((x < self.low) | above)
        return out

    def text(self) -> str:
        if self.high_open:
            return f"{self.low:g} to {self.high - 1:g} {self.unit} (under {self.high:g})"
        return f"{self.low:g} to {self.high:g} {self.unit}"

    def describe(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "low": self.low,
            "high": self.high,
            "high_inclusive": not self.high_open,
            "unit": self.unit,
            "source": self.source,
        }


def cv_inputs(*, race: bool, race_description: str = "") -> tuple[ScoreInput, ...]:
    """The common inputs (``race`` only where the equation uses it)."""
    inputs: list[ScoreInput] = [
        ScoreInput(
            "age_years",
            "a",
            "number",
            "Age in years at the evaluation date (the equation's population range is checked)",
            valid_range=(0.0, 130.0),
            range_source=f"{_LIMIT}: above the oldest verified human age (122 years)",
        ),
        ScoreInput(
            "sex",
            None,
            "category",
            "Sex: female or male (sex-specific equations)",
            categories=("female", "male"),
            aliases={"f": "female", "m": "male", "woman": "female", "man": "male"},
        ),
    ]
    if race:
        inputs.append(
            ScoreInput(
                "race",
                None,
                "category",
                race_description,
                categories=("white", "black", "other"),
                aliases={
                    "african american": "black",
                    "black or african american": "black",
                    "aa": "black",
                    "caucasian": "white",
                    # the other OMB race categories (US Core race, as medtwin derives them from
                    # a record): the equations for white adults, as Goff 2014 advises
                    "asian": "other",
                    "american_indian_or_alaska_native": "other",
                    "native_hawaiian_or_pacific_islander": "other",
                },
            )
        )
    inputs += [
        ScoreInput(
            "total_cholesterol_mg_dl",
            "mg/dL",
            "number",
            "Total cholesterol, mg/dL (mmol/L x 38.67)",
            valid_range=(20.0, 2000.0),
            range_source=(
                f"{_LIMIT}: beyond the extremes of familial hypercholesterolaemia; a value in "
                "mmol/L (5.2) is refused"
            ),
        ),
        ScoreInput(
            "hdl_mg_dl",
            "mg/dL",
            "number",
            "HDL cholesterol, mg/dL (mmol/L x 38.67)",
            valid_range=(5.0, 250.0),
            range_source=f"{_LIMIT}: a value in mmol/L (1.3) is refused",
        ),
        ScoreInput(
            "systolic_bp_mm_hg",
            "mm[Hg]",
            "number",
            "Systolic blood pressure, mmHg (treated or untreated as bp_treated says)",
            valid_range=(40.0, 350.0),
            range_source=f"{_LIMIT}: above 350 mmHg is an entry error",
        ),
        ScoreInput(
            "bp_treated",
            None,
            "bool",
            "Taking antihypertensive medication (the systolic pressure is a treated value)",
        ),
        ScoreInput("smoker", None, "bool", "Current cigarette smoker"),
        ScoreInput("diabetes", None, "bool", "Diabetes mellitus"),
    ]
    return tuple(inputs)


class RangedScore(Score):
    """A score whose population is also a set of accepted input ranges (:meth:`accepted`),
    which ``describe`` lists beside the declared inputs."""

    @abstractmethod
    def accepted(self) -> tuple[AcceptedRange, ...]:
        """The input ranges in which the equation applies (rows outside are refused)."""

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["accepted_ranges"] = [r.describe() for r in self.accepted()]
        return out


def percent_bands(source: str) -> tuple[Band, ...]:
    """The 2019 ACC/AHA primary-prevention risk categories of a 10-year ASCVD risk in percent."""
    return (
        Band("low", "under 5%", source),
        Band("borderline", "5% to under 7.5%", source),
        Band("intermediate", "7.5% to under 20%", source),
        Band("high", "20% or more", source),
    )


BAND_CUTS = np.array([5.0, 7.5, 20.0])
"""Lower edges of the borderline, intermediate and high bands (percent, applied unrounded)."""


def _reason(
    data: InputData,
    i: int,
    outside: Mapping[str, BoolArray],
    accepted: Sequence[AcceptedRange],
    population_words: str,
) -> str:
    """The refusal reason of row ``i``: implausible inputs, then accepted ranges."""
    parts = [data.reason(name, i) for name in data.inputs if data.invalid[name][i]]
    for rng in accepted:
        mask = outside.get(rng.input)
        if mask is None or not mask[i]:
            continue
        what = "population" if rng.input == "age_years" else "accepted input range"
        x = float(data.values[rng.input][i])  # given, plausible (else invalid above)
        parts.append(
            f"{rng.input}={x:g} is outside the {what} of {population_words}: "
            f"{rng.text()} ({rng.source})"
        )
    return "; ".join(parts)


def assemble(
    *,
    score: Score,
    data: InputData,
    risk_percent: FloatArray,
    accepted: Sequence[AcceptedRange],
    population_words: str,
    cuts: FloatArray | None,
) -> ScoreResults:
    """Build the results: refusals (plausibility, then accepted range), missing, value, band."""
    return assemble_rows(
        score=score,
        data=data,
        risk_of=lambda rows: risk_percent[rows],
        accepted=accepted,
        population_words=population_words,
        cuts=cuts,
    )


def assemble_rows(
    *,
    score: Score,
    data: InputData,
    risk_of: Callable[[IntArray], FloatArray],
    accepted: Sequence[AcceptedRange],
    population_words: str,
    cuts: FloatArray | None,
    refuse: Sequence[tuple[BoolArray, str]] = (),
    bands_of: Callable[[IntArray, FloatArray], CodeArray] | None = None,
) -> ScoreResults:
    """As :func:`assemble`, the risk computed only for the rows that get a value.

    ``risk_of(rows)`` returns the risk (percent) of the rows ``rows`` (row indices, ascending),
    one value each: a row refused or missing an input is never computed. ``refuse``: more
    refusals, (rows, reason) (SCORE2: diabetes); ``bands_of(rows, values)``: the band codes
    when they depend on more than the value (SCORE2: age-specific cuts), instead of ``cuts``.
    """
    n = data.n
    refused = data.any_invalid()
    for mask, _ in refuse:
        refused = refused | mask
    outside: dict[str, BoolArray] = {}
    for rng in accepted:
        mask = rng.outside(data.number(rng.input))
        if mask.any():
            outside[rng.input] = mask
            refused |= mask
    missing = {
        i.name: ~data.present[i.name] & ~data.invalid[i.name]
        for i in data.inputs.values()
        if i.required  # an optional input (SCORE2-Diabetes' UACR) leaves a row complete
    }
    incomplete = np.zeros(n, dtype=np.bool_)
    for m in missing.values():
        incomplete |= m
    rows_ok = np.flatnonzero(~(refused | incomplete))
    value = np.full(n, np.nan)
    value[rows_ok] = risk_of(rows_ok)
    band = np.full(n, -1, dtype=np.int8)
    if bands_of is not None:
        band[rows_ok] = bands_of(rows_ok, value[rows_ok])
    elif cuts is not None:
        ok = ~np.isnan(value)
        band[ok] = np.searchsorted(cuts, value[ok], side="right").astype(np.int8)

    def reason_of(i: int) -> str:
        said = [_reason(data, i, outside, accepted, population_words)]
        said += [why for mask, why in refuse if mask[i]]
        return "; ".join(s for s in said if s)

    return score.results(
        value=value,
        band_code=band,
        partial=incomplete & ~refused,
        refused=refused,
        missing=missing,
        reason_of=reason_of,
    )
