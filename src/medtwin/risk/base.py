"""The Score contract: declared inputs, one vectorised computation, explicit missing and refusals.

A score (NEWS2, qSOFA, MEWS ...) is an object with a ``name``, a ``version``, its ``source`` (full
citation), the ``inputs`` it reads (:class:`ScoreInput`, units in the names), the population it
was validated in (``valid_population``, text plus a check), its ``bands`` and two methods:

* ``compute_many(columns) -> ScoreResults``: N rows at once, columns as sequences or numpy arrays;
* ``compute_one(row) -> ScoreResult``: one patient, through the very same code (a 1-row call).

Rules that hold for every score (shared/DESIGN.md, "Score" and "Clinical truth"):

* **Never a silent default for a measurement.** A missing input is listed in ``missing``; the row
  is then ``partial`` and its ``value`` is the sum of the points of the parameters that *are*
  present. Points are never negative, so **a partial value is a lower bound** of the score the
  complete observation set would give. ``band`` is given for a partial row only when the missing
  inputs cannot change it (the band of the lower bound equals the band of the upper bound, every
  missing parameter at its maximum points); otherwise it is ``None``. A row with no scored
  parameter at all has ``value`` ``None``.
* **Implausible values are refused, not scored.** A value outside an input's plausibility range
  (``valid_range``: heart rate 900 /min, SpO2 120 %, a negative rate), not a number, or not one
  of the declared categories makes that row *refused*: ``value`` and ``band`` are ``None`` and
  ``refused`` says which input and why. Other rows are unaffected.
* **Outside the validated population, refuse.** When a population input (``age_years``,
  ``pregnant``) is given and outside the score's population, the row is refused with the reason.

Printed score charts band integer measurements (``9-11``) and temperatures to 0.1 °C
(``35.1-36.0``). :class:`BandTable` turns a chart row, written exactly as printed, into cut
points; a value that falls *between* two printed bands (20.5 /min between ``12-20`` and
``21-24``; 35.05 °C between ``≤35.0`` and ``35.1-36.0``) takes the band with the **higher**
points (see :class:`BandTable` for the rule and why).

Examples
--------
>>> from medtwin.risk import get
>>> news2 = get("news2")
>>> r = news2.compute_one({"respiratory_rate_per_min": 18, "spo2_percent": 97,
...                        "on_oxygen": False, "systolic_bp_mm_hg": 120, "pulse_per_min": 70,
...                        "consciousness": "A", "temperature_c": 37.0})
>>> (r.value, r.band, r.partial)
(0, 'low', False)
>>> many = news2.compute_many({"respiratory_rate_per_min": [18, 26], "pulse_per_min": [70, 135]})
>>> [row.value for row in many], many[1].missing[:2]
([0, 6], ('spo2_percent', 'on_oxygen'))
"""

from __future__ import annotations

import itertools
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

__all__ = [
    "NOT_ON_STATIN",
    "NO_HEART_FAILURE",
    "NO_KNOWN_ASCVD",
    "NO_SEVERE_HYPERCHOLESTEROLAEMIA",
    "Band",
    "BandTable",
    "ColumnLike",
    "InputData",
    "LazyReasons",
    "PointsScore",
    "PopulationRule",
    "Score",
    "ScoreError",
    "ScoreInput",
    "ScoreInputError",
    "ScoreResult",
    "ScoreResults",
    "UnknownScoreError",
    "age_input",
    "bool_points",
    "category_points",
    "pulse_input",
    "respiratory_rate_input",
    "spo2_input",
    "systolic_bp_input",
    "temperature_input",
]

FloatArray = npt.NDArray[np.float64]
CodeArray = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

ColumnLike = Sequence[Any] | npt.NDArray[Any]
"""One input column: a sequence (list, tuple) or a 1-D numpy array, one value per row."""

Kind = Literal["number", "bool", "category"]

MISSING_CODE = -1
"""Category code (and component points) meaning "not given / not determined"."""
INVALID_CODE = -2
"""Category code meaning "given but not one of the categories"."""


class ScoreError(ValueError):
    """Base class of the errors of ``medtwin.risk``; the message names the score and the fix."""


class UnknownScoreError(ScoreError):
    """No score of that name is registered; the message lists the registered names."""


class ScoreInputError(ScoreError):
    """The columns as a whole cannot be read (unknown input in strict mode, unequal lengths ...).

    Problems with single values never raise: they refuse that row, with the reason.
    """


@dataclass(frozen=True, slots=True)
class ScoreInput:
    """One declared input of a score.

    Parameters
    ----------
    name
        The key in rows and columns; carries its unit (``respiratory_rate_per_min``).
    unit
        UCUM code of the unit (``/min``, ``%``, ``mm[Hg]``, ``Cel``, ``a``), ``None`` for
        booleans and categories.
    kind
        ``"number"``, ``"bool"`` or ``"category"``.
    description
        What the value is, in words a clinician would use.
    required
        True when the score is incomplete (``partial``) without it.
    valid_range
        ``(low, high)``, inclusive: the plausibility range of a number. Values outside are
        refused, not scored. This is a data-quality limit, not a clinical threshold.
    categories
        The accepted values of a category, canonical spelling (``("A", "C", "V", "P", "U")``).
    aliases
        Other accepted spellings of a category, lower case, mapped to the canonical value.
    default
        Value used when the input is absent; only for options whose default the source itself
        states (NEWS2 ``spo2_scale`` 1), never for a measurement.
    integer
        True when only whole numbers are meaningful (GCS).
    range_source
        Why ``valid_range`` is what it is (the source of the limit).
    population
        True for inputs that are not scored but checked against ``valid_population``.
    not_a_fraction
        True for a percentage that a fraction can be mistaken for (SpO2 0.95 for 95 %): a value
        strictly between 0 and 1 is refused, saying so.
    """

    name: str
    unit: str | None
    kind: Kind
    description: str
    required: bool = True
    valid_range: tuple[float, float] | None = None
    categories: tuple[str | int, ...] | None = None
    aliases: Mapping[str, str | int] = field(default_factory=dict)
    default: str | int | float | bool | None = None
    integer: bool = False
    range_source: str = ""
    population: bool = False
    not_a_fraction: bool = False

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (name, unit, kind, range or categories, source of the range)."""
        return {
            "name": self.name,
            "unit": self.unit,
            "kind": self.kind,
            "required": self.required,
            "valid_range": list(self.valid_range) if self.valid_range else None,
            "categories": list(self.categories) if self.categories else None,
            "aliases": dict(self.aliases) or None,
            "default": self.default,
            "integer": self.integer,
            "population": self.population,
            "not_a_fraction": self.not_a_fraction,
            "description": self.description,
            "range_source": self.range_source or None,
        }


@dataclass(frozen=True, slots=True)
class Band:
    """A named result band (``"high"``) with the rule that assigns it and its source."""

    name: str
    rule: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """The result of one row.

    ``value`` is ``None`` when the row was refused or had no scored parameter. When ``partial``
    is true, ``value`` is the sum over the parameters present: a **lower bound** of the complete
    score. ``components`` maps each scored parameter to its points (``None``: not scored).
    """

    name: str
    version: str
    source: str
    value: int | float | None
    band: str | None
    components: Mapping[str, int | None]
    missing: tuple[str, ...]
    partial: bool
    refused: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: value, band, components, missing, partial, refused, source, name, version."""
        return {
            "name": self.name,
            "version": self.version,
            "value": self.value,
            "band": self.band,
            "partial": self.partial,
            "missing": list(self.missing),
            "refused": self.refused,
            "components": dict(self.components),
            "source": self.source,
        }


class LazyReasons(Mapping[int, str]):
    """Refusal reasons, row -> text, written when a row is read and then kept.

    A million-row table with many refused rows costs nothing for its reasons until someone
    reads them (the CLI prints a few; a population query usually counts refusals only).
    ``build(i)`` writes the reason of refused row ``i``.

    >>> r = LazyReasons(np.array([False, True, True]), lambda i: f"row {i} is bad")
    >>> len(r), list(r), r[1], r.get(0)
    (2, [1, 2], 'row 1 is bad', None)
    """

    def __init__(self, refused: BoolArray, build: Callable[[int], str]) -> None:
        self._refused = np.asarray(refused, dtype=np.bool_)
        self._build = build
        self._done: dict[int, str] = {}

    def __getitem__(self, i: int) -> str:
        i = int(i)
        if i in self._done:
            return self._done[i]
        if not (0 <= i < self._refused.shape[0]) or not self._refused[i]:
            raise KeyError(i)
        text = self._build(i)
        self._done[i] = text
        return text

    def __iter__(self) -> Iterator[int]:
        return iter(np.nonzero(self._refused)[0].tolist())

    def __len__(self) -> int:
        return int(self._refused.sum())


class ScoreResults(Sequence[ScoreResult]):
    """Results of ``compute_many``, kept as columns (no per-row objects until asked for).

    Attributes
    ----------
    value
        float64 array, ``nan`` where the row has no value (refused, or nothing to score).
    band_code
        int8 array, index into ``bands`` or -1 (no band, or band not determined).
    partial, refused
        bool arrays.
    components
        Parameter name -> int8 points array, -1 where not scored.
    missing
        Input name -> bool array, true where that required input was missing.
    reasons
        Row index -> refusal reason, for refused rows only.
    """

    def __init__(
        self,
        *,
        name: str,
        version: str,
        source: str,
        bands: tuple[Band, ...],
        integer_value: bool,
        value: FloatArray,
        band_code: CodeArray,
        partial: BoolArray,
        refused: BoolArray,
        components: Mapping[str, CodeArray],
        missing: Mapping[str, BoolArray],
        reasons: Mapping[int, str],
    ) -> None:
        self.name = name
        self.version = version
        self.source = source
        self.bands = bands
        self.integer_value = integer_value
        self.value = value
        self.band_code = band_code
        self.partial = partial
        self.refused = refused
        self.components = components
        self.missing = missing
        self.reasons = reasons

    def __len__(self) -> int:
        return int(self.value.shape[0])

    @overload
    def __getitem__(self, index: int) -> ScoreResult: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ScoreResult]: ...

    def __getitem__(self, index: int | slice) -> ScoreResult | Sequence[ScoreResult]:
        if isinstance(index, slice):
            return [self._row(i) for i in range(*index.indices(len(self)))]
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"row {index} out of range for {len(self)} rows")
        return self._row(i)

    def __iter__(self) -> Iterator[ScoreResult]:
        for i in range(len(self)):
            yield self._row(i)

    def _row(self, i: int) -> ScoreResult:
        raw = float(self.value[i])
        value: int | float | None
        if math.isnan(raw):
            value = None
        elif self.integer_value:
            value = int(raw)
        else:
            value = raw
        code = int(self.band_code[i])
        components: dict[str, int | None] = {}
        for key, points in self.components.items():
            p = int(points[i])
            components[key] = None if p < 0 else p
        return ScoreResult(
            name=self.name,
            version=self.version,
            source=self.source,
            value=value,
            band=self.bands[code].name if code >= 0 else None,
            components=components,
            missing=tuple(k for k, m in self.missing.items() if m[i]),
            partial=bool(self.partial[i]),
            refused=self.reasons.get(i),
        )

    def band_names(self) -> list[str | None]:
        """The band of every row (``None`` where there is none)."""
        names: list[str | None] = [b.name for b in self.bands]
        names.append(None)  # code -1 indexes this
        return [names[c] for c in self.band_code.tolist()]

    def to_dicts(self) -> list[dict[str, Any]]:
        """Every row as :meth:`ScoreResult.to_dict` (materialises N objects: for small N)."""
        return [r.to_dict() for r in self]


# --- chart tables -----------------------------------------------------------------------------

_BOUND = r"(-?\d+(?:\.\d+)?)"
_RANGE_RE = re.compile(rf"^{_BOUND}\s*[–\-]\s*{_BOUND}$")
_SINGLE_RE = re.compile(rf"^{_BOUND}$")
_CMP_RE = re.compile(rf"^(≤|<=|<|≥|>=|>)\s*{_BOUND}$")


@dataclass(frozen=True, slots=True)
class _Interval:
    low: float | None
    low_inclusive: bool
    high: float | None
    high_inclusive: bool


def _parse_printed(text: str) -> _Interval:
    t = text.strip()
    m = _RANGE_RE.match(t)
    if m:
        return _Interval(float(m.group(1)), True, float(m.group(2)), True)
    m = _SINGLE_RE.match(t)
    if m:
        return _Interval(float(m.group(1)), True, float(m.group(1)), True)
    m = _CMP_RE.match(t)
    if m:
        op, x = m.group(1), float(m.group(2))
        if op in ("≤", "<="):
            return _Interval(None, False, x, True)
        if op == "<":
            return _Interval(None, False, x, False)
        if op in ("≥", ">="):
            return _Interval(x, True, None, False)
        return _Interval(x, False, None, False)
    raise ValueError(f"cannot read the printed band {text!r} (expected '≤a', 'a–b', '≥b' ...)")


class BandTable:
    """One row of a printed score chart: bands as printed, in increasing order, with points.

    ``BandTable("pulse", (("≤40", 3), ("41–50", 1), ("51–90", 0), ("91–110", 1),
    ("111–130", 2), ("≥131", 3)))`` is the NEWS2 pulse row (RCP 2017, Chart 1).

    **The rule for values between printed bands.** Charts print bands at the resolution the
    measurement is charted at (whole breaths, beats, mmHg and % ; 0.1 °C), so a value such as
    20.5 /min or 35.05 °C falls in a gap between two printed bands. medtwin assigns it to the
    neighbouring band with the **higher** points (the one further from normal). Equivalently: a
    band printed closer to normal is taken as the closed interval printed; everything beyond it,
    up to the next printed bound, already belongs to the more abnormal band. So, for NEWS2
    temperature, 35.05 °C scores 3 (not 1) and 38.05 °C scores 1 (not 0); for MEWS, systolic
    70 mmHg, printed in neither ``<70`` nor ``71–80`` by Subbe et al. (2001), scores 3.

    Why: (1) these are early-warning scores, where missing a deterioration costs more than an
    extra review, and the reasoning behind the NEWS red score (RCP NEWS report 2012: extreme
    values in one physiological parameter "could not be ignored") sets the same direction; (2) the rule needs no rounding,
    whose half-way cases fail in binary floating point (35.05 is stored as 35.0499999...,
    so "round half up" silently gives 35.0); (3) at the printed resolution it reproduces the
    chart exactly, and it keeps every row monotone (a more abnormal value never scores less).
    Values are compared as given, in the declared unit: convert units before scoring.

    The compiled form is a sorted array of cut points ``t_k``: the band index of ``x`` is the
    number of ``t_k <= x`` (``numpy.searchsorted(..., side="right")``).
    """

    __slots__ = ("bands", "label", "max_points", "points_lut", "source", "thresholds")

    def __init__(self, label: str, bands: tuple[tuple[str, int], ...], source: str = "") -> None:
        if len(bands) < 2:
            raise ValueError(f"{label}: a table needs at least two bands")
        self.label = label
        self.bands = bands
        self.source = source
        intervals = [_parse_printed(text) for text, _ in bands]
        cuts: list[float] = []
        for i in range(len(bands) - 1):
            left, right = intervals[i], intervals[i + 1]
            p_left, p_right = bands[i][1], bands[i + 1][1]
            if left.high is not None and right.low is not None:
                touching = left.high == right.low and left.high_inclusive and right.low_inclusive
                if right.low < left.high or touching:
                    raise ValueError(
                        f"{label}: bands are not in increasing order at {bands[i + 1][0]!r}"
                    )
            if p_left >= p_right:
                # falling (or level): the right band starts at its printed lower bound
                if right.low is None:
                    raise ValueError(f"{label}: band {bands[i + 1][0]!r} has no lower bound")
                cut = right.low if right.low_inclusive else float(np.nextafter(right.low, np.inf))
            else:
                # rising: the left band ends at its printed upper bound
                if left.high is None:
                    raise ValueError(f"{label}: band {bands[i][0]!r} has no upper bound")
                cut = float(np.nextafter(left.high, np.inf)) if left.high_inclusive else left.high
            if cuts and cut <= cuts[-1]:
                raise ValueError(
                    f"{label}: bands are not in increasing order at {bands[i + 1][0]!r}"
                )
            cuts.append(cut)
        self.thresholds: FloatArray = np.array(cuts, dtype=np.float64)
        self.points_lut: CodeArray = np.array([p for _, p in bands], dtype=np.int8)
        self.max_points = int(self.points_lut.max())

    def points(self, x: FloatArray) -> CodeArray:
        """Points for each value of ``x``; -1 where ``x`` is ``nan`` (missing).

        The band index is the number of cut points ``t_k <= x``. On many rows it is counted with
        one comparison per cut point (a chart row has a handful): about ten times faster than
        ``numpy.searchsorted``, which gives the same index for every number and is quicker on a
        few rows (``compute_one``).
        """
        idx: npt.NDArray[np.integer[Any]]
        if np.size(x) < 512:
            idx = np.searchsorted(self.thresholds, x, side="right")
        else:
            idx = np.zeros(np.shape(x), dtype=np.int8)
            for cut in self.thresholds.tolist():
                idx += x >= cut
        out: CodeArray = self.points_lut[idx]
        nan = np.isnan(x)
        if nan.any():
            out = out.copy()
            out[nan] = MISSING_CODE
        return out

    def describe(self) -> list[list[Any]]:
        """``[[printed band, points], ...]`` as printed in the source."""
        return [[text, points] for text, points in self.bands]


# --- coercing columns ---------------------------------------------------------------------------

_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


def _is_blank(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and not v.strip()


def _parse_number(v: Any) -> float:
    """nan for missing; raises ValueError/TypeError for values that are not numbers."""
    if _is_blank(v):
        return math.nan
    if isinstance(v, (bool, np.bool_)):
        raise TypeError("a boolean is not a number")
    if isinstance(v, str):
        return float(v.strip())
    return float(v)


def _parse_bool(v: Any) -> float:
    if _is_blank(v):
        return math.nan
    if isinstance(v, str):
        s = v.strip().lower()
        if s in _TRUE:
            return 1.0
        if s in _FALSE:
            return 0.0
        raise ValueError(v)
    f = float(v)
    if f not in (0.0, 1.0):
        raise ValueError(v)
    return f


def _category_key(v: Any) -> Any:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, str):
        return v.strip().lower()
    return None


_CATEGORY_TABLES: dict[int, tuple[ScoreInput, dict[Any, int], dict[Any, int] | None]] = {}


def _category_tables(inp: ScoreInput) -> tuple[dict[Any, int], dict[Any, int] | None]:
    """The look-up table of a category input, value -> code, and the same for :func:`_look_up`.

    Built once per declared input (inputs are frozen): the canonical spelling, its text and lower
    case, and the aliases. The second table holds the codes plus 2 (``None`` beyond 120
    categories, which would not fit a byte).
    """
    hit = _CATEGORY_TABLES.get(id(inp))
    if hit is not None and hit[0] is inp:
        return hit[1], hit[2]
    assert inp.categories is not None
    lut: dict[Any, int] = {}
    for code, cat in enumerate(inp.categories):
        lut[cat] = code
        lut[str(cat)] = code
        if isinstance(cat, str):
            lut[cat.lower()] = code
    for alias, cat in inp.aliases.items():
        lut[alias] = inp.categories.index(cat)
    shifted = {key: code + 2 for key, code in lut.items()} if len(inp.categories) < 120 else None
    if len(_CATEGORY_TABLES) > 4096:  # inputs declared on the fly: do not grow without bound
        _CATEGORY_TABLES.clear()
    _CATEGORY_TABLES[id(inp)] = (inp, lut, shifted)
    return lut, shifted


def _look_up(shifted: Mapping[Any, int], seq: Sequence[Any]) -> CodeArray | None:
    """``lut.get(v, INVALID_CODE)`` for every value, looped in C; ``None`` if a value is unhashable.

    About 30 ns a row: ``shifted`` holds the codes plus 2, which travel as the bytes of a
    ``bytes`` object (0: not in the table) and are shifted back.
    """
    try:
        packed = bytes(map(shifted.get, seq, itertools.repeat(0)))
    except TypeError:
        return None
    codes: CodeArray = np.frombuffer(packed, dtype=np.int8) - np.int8(2)
    return codes


class InputData:
    """The columns of one ``compute_many`` call, coerced and checked against the inputs.

    Numbers and booleans become float64 arrays (``nan`` = missing; booleans 0.0 / 1.0);
    categories become int8 codes (index into ``categories``, -1 missing, -2 invalid).
    ``invalid[name]`` marks rows whose value was refused.
    """

    def __init__(
        self,
        score_name: str,
        inputs: tuple[ScoreInput, ...],
        columns: Mapping[str, ColumnLike],
        *,
        strict: bool,
        rows: int | None,
    ) -> None:
        known = {i.name for i in inputs}
        if strict:
            unknown = sorted(k for k in columns if k not in known)
            if unknown:
                raise ScoreInputError(
                    f"{score_name}: unknown input(s) {', '.join(map(repr, unknown))}; "
                    f"the inputs are: {', '.join(sorted(known))}"
                )
        lengths: dict[str, int] = {}
        for key, col in columns.items():
            if key not in known:
                if hasattr(col, "__len__") and not isinstance(col, (str, bytes)):
                    lengths[key] = len(col)  # other columns of the caller's table
                continue
            if isinstance(col, (str, bytes)) or not hasattr(col, "__len__"):
                raise ScoreInputError(
                    f"{score_name}: input {key!r} must be a sequence of values (one per row), "
                    f"got {type(col).__name__}; use compute_one for a single row"
                )
            if isinstance(col, np.ndarray) and col.ndim != 1:
                raise ScoreInputError(f"{score_name}: input {key!r} must be 1-D, got {col.shape}")
            lengths[key] = len(col)
        sizes = set(lengths.values())
        if rows is not None:
            sizes.add(rows)
        if len(sizes) > 1:
            detail = ", ".join(f"{k}={n}" for k, n in sorted(lengths.items()))
            raise ScoreInputError(f"{score_name}: input columns differ in length ({detail})")
        self.n = sizes.pop() if sizes else 0
        self.score_name = score_name
        self.inputs = {i.name: i for i in inputs}
        self.raw: dict[str, ColumnLike] = {}
        self.values: dict[str, FloatArray] = {}
        self.codes: dict[str, CodeArray] = {}
        self.present: dict[str, BoolArray] = {}
        self.invalid: dict[str, BoolArray] = {}
        for inp in inputs:
            given = columns.get(inp.name)
            if given is None:
                self._absent(inp)
            elif inp.kind == "category":
                self.raw[inp.name] = given
                self._category(inp, given)
            else:
                self.raw[inp.name] = given
                self._numeric(inp, given)

    # -- per kind

    def _absent(self, inp: ScoreInput) -> None:
        n = self.n
        if inp.kind == "category":
            fill = MISSING_CODE
            if inp.default is not None and inp.categories is not None:
                fill = inp.categories.index(inp.default)
            self.codes[inp.name] = np.full(n, fill, dtype=np.int8)
            self.present[inp.name] = np.full(n, fill != MISSING_CODE, dtype=np.bool_)
        else:
            fill_value = math.nan if inp.default is None else float(inp.default)
            self.values[inp.name] = np.full(n, fill_value, dtype=np.float64)
            self.present[inp.name] = np.full(n, not math.isnan(fill_value), dtype=np.bool_)
        self.invalid[inp.name] = np.zeros(n, dtype=np.bool_)

    def _numeric(self, inp: ScoreInput, col: ColumnLike) -> None:
        if (
            isinstance(col, np.ndarray)
            and col.dtype.kind in "biuf"
            and not (inp.kind == "number" and col.dtype.kind == "b")
        ):
            self._numeric_array(inp, col)
            return
        bad = np.zeros(self.n, dtype=np.bool_)
        try:
            if isinstance(col, np.ndarray) and col.dtype.kind in "US":
                raise ValueError("text array")
            if inp.kind == "number":
                if isinstance(col, np.ndarray):
                    if col.dtype == np.bool_:
                        raise TypeError("a boolean is not a number")
                elif bool in set(map(type, col)):
                    raise TypeError("a boolean is not a number")  # True is not 1 /min
            x = np.asarray(col, dtype=np.float64)
        except (TypeError, ValueError):
            parse = _parse_number if inp.kind == "number" else _parse_bool
            values = np.empty(self.n, dtype=np.float64)
            for i, v in enumerate(col.tolist() if isinstance(col, np.ndarray) else col):
                try:
                    values[i] = parse(v)
                except (TypeError, ValueError, OverflowError):
                    values[i] = math.nan
                    bad[i] = True
            x = values
        present = ~np.isnan(x) & ~bad
        if inp.kind == "bool":
            bad |= present & (x != 0.0) & (x != 1.0)
        else:
            if inp.valid_range is not None:
                low, high = inp.valid_range
                bad |= present & ((x < low) | (x > high))
            if inp.not_a_fraction:
                bad |= present & (x > 0.0) & (x < 1.0)
            if inp.integer:
                with np.errstate(invalid="ignore"):
                    bad |= present & (x != np.floor(x))
            bad |= np.isinf(x)
        if inp.default is not None:
            missing = np.isnan(x) & ~bad
            if missing.any():
                x = x.copy()
                x[missing] = float(inp.default)
        self.values[inp.name] = x
        self.present[inp.name] = ~np.isnan(x) & ~bad
        self.invalid[inp.name] = bad

    def _numeric_array(self, inp: ScoreInput, col: npt.NDArray[Any]) -> None:
        """:meth:`_numeric` for a numeric or boolean array: the same checks, fewer passes.

        No value of such an array fails to parse, so a value is refused only by the checks below
        (a comparison with ``nan`` is false: missing values are never refused).
        """
        n = self.n
        x: FloatArray = np.asarray(col, dtype=np.float64)
        if col.dtype.kind == "b":  # a boolean input given as booleans: nothing to check
            self.values[inp.name] = x
            self.present[inp.name] = np.ones(n, dtype=np.bool_)
            self.invalid[inp.name] = np.zeros(n, dtype=np.bool_)
            return
        nan = np.isnan(x)
        if inp.kind == "bool":
            bad = ~nan & (x != 0.0) & (x != 1.0)
        else:
            finite_range = False
            if inp.valid_range is not None:
                low, high = inp.valid_range
                bad = (x < low) | (x > high)
                finite_range = math.isfinite(low) and math.isfinite(high)
            else:
                bad = np.zeros(n, dtype=np.bool_)
            if inp.not_a_fraction:
                bad |= (x > 0.0) & (x < 1.0)
            if inp.integer:
                with np.errstate(invalid="ignore"):
                    bad |= ~nan & (x != np.floor(x))
            if not finite_range:  # else an infinite value is outside the range already
                bad |= np.isinf(x)
        if inp.default is not None:
            missing = nan & ~bad
            if missing.any():
                x = x.copy()
                x[missing] = float(inp.default)
                nan = np.isnan(x)
        self.values[inp.name] = x
        self.present[inp.name] = ~nan & ~bad
        self.invalid[inp.name] = bad

    def _category(self, inp: ScoreInput, col: ColumnLike) -> None:
        assert inp.categories is not None
        lut, shifted = _category_tables(inp)
        default = MISSING_CODE
        if inp.default is not None:
            default = inp.categories.index(inp.default)

        def slow(v: Any) -> int:
            if _is_blank(v):
                return default
            try:
                return lut.get(_category_key(v), INVALID_CODE)
            except TypeError:
                return INVALID_CODE

        codes: CodeArray
        if isinstance(col, np.ndarray) and col.dtype.kind in "US":
            codes = np.full(self.n, INVALID_CODE, dtype=np.int8)
            for key, code in lut.items():
                if isinstance(key, str):
                    codes[col == key] = code
            rest = np.nonzero(codes == INVALID_CODE)[0]
            for i in rest.tolist():
                codes[i] = slow(col[i].item())
        else:
            seq = col.tolist() if isinstance(col, np.ndarray) else col
            # a few rows (compute_one): the plain loop below is quicker
            looked_up = _look_up(shifted, seq) if shifted is not None and self.n >= 32 else None
            if looked_up is not None:
                codes = looked_up
            else:  # few rows, or an unhashable value (a list): look up row by row
                get = lut.get
                fast: list[int] = []
                append = fast.append
                for v in seq:
                    try:
                        append(get(v, INVALID_CODE))
                    except TypeError:
                        append(INVALID_CODE)
                codes = np.array(fast, dtype=np.int8) if fast else np.zeros(0, dtype=np.int8)
            for i in np.nonzero(codes == INVALID_CODE)[0].tolist():
                codes[i] = slow(seq[i])
        self.codes[inp.name] = codes
        self.present[inp.name] = codes >= 0
        self.invalid[inp.name] = codes == INVALID_CODE

    # -- access for scores

    def number(self, name: str) -> FloatArray:
        """Float column of a number or bool input; ``nan`` where missing or refused."""
        x = self.values[name]
        bad = self.invalid[name]
        if bad.any():
            x = np.where(bad, np.nan, x)
        return x

    def code(self, name: str) -> CodeArray:
        """Category codes (index into ``categories``); -1 missing, -2 refused."""
        return self.codes[name]

    def any_invalid(self) -> BoolArray:
        """Rows with at least one refused value."""
        out = np.zeros(self.n, dtype=np.bool_)
        for mask in self.invalid.values():
            out |= mask
        return out

    def reason(self, name: str, i: int) -> str:
        """Why row ``i`` of input ``name`` was refused (names the input, the value and the fix)."""
        inp = self.inputs[name]
        col = self.raw[name]
        v = col[i]
        if isinstance(v, np.generic):
            v = v.item()
        shown = _show(v)
        if inp.kind == "category":
            cats = ", ".join(str(c) for c in inp.categories or ())
            return f"{name}={shown} is not one of {cats}"
        if inp.kind == "bool":
            return f"{name}={shown} is not true or false"
        try:
            x = _parse_number(v)
        except (TypeError, ValueError, OverflowError):
            return f"{name}={shown} is not a number"
        if inp.integer and not x.is_integer():
            return f"{name}={shown} is not a whole number"
        if inp.not_a_fraction and 0.0 < x < 1.0:
            return (
                f"{name}={shown} looks like a fraction, not a percentage: give "
                f"{_show(round(x * 100.0, 6))} for {_show(round(x * 100.0, 6))} %"
            )
        if inp.valid_range is not None:
            low, high = inp.valid_range
            unit = f" {inp.unit}" if inp.unit else ""
            return (
                f"{name}={shown} is outside the plausible range {low:g} to {high:g}{unit} "
                "(check the value and its unit)"
            )
        return f"{name}={shown} is not a finite number"


def _show(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return repr(v)
    return repr(v)


# --- the contract ---------------------------------------------------------------------------------


NO_KNOWN_ASCVD = (
    "clinical_ascvd",
    False,
    "clinical atherosclerotic cardiovascular disease is recorded, and this equation estimates a "
    "first event (primary prevention)",
)
"""``Score.record_population`` of the primary-prevention equations: no recorded clinical ASCVD
(:mod:`medtwin.risk.af_inputs`, ``risk/data/record_conditions.toml``)."""
NO_HEART_FAILURE = (
    "congestive_heart_failure",
    False,
    "heart failure is recorded, and this equation was derived in people free of cardiovascular "
    "disease, heart failure included",
)
"""The same for heart failure (PREVENT, whose outcomes include it; Framingham 2008)."""
NOT_ON_STATIN = (
    "statin",
    False,
    "on a statin: derived in people not taking one, the equation would read treated "
    "cholesterol as untreated (for the risk before it, give --date before its start)",
)
"""``Score.record_population`` of equations derived without statin users: the Pooled Cohort
Equations (Goff 2014: "not on a statin"; the ACC/AHA Risk Estimator Plus asks for pre-treatment
values) and QRISK3 (Hippisley-Cox 2017: "not prescribed statins at baseline"). An order of unknown
state makes the score "cannot compute" (whether the statin was taken is not known)."""
NO_SEVERE_HYPERCHOLESTEROLAEMIA = (
    "severe_hypercholesterolaemia",
    False,
    "LDL cholesterol of 190 mg/dL or more, or familial hypercholesterolaemia, is recorded: a "
    "statin is indicated without a risk estimate (Grundy 2019 cholesterol guideline), and the "
    "equation was not made for this group",
)
"""The Pooled Cohort Equations' third exclusion (Goff 2014; Grundy SM et al., 2018 ACC/AHA
cholesterol guideline, Circulation 2019;139:e1082-e1143, section 4.2: LDL-C >= 190 mg/dL,
maximally tolerated statin therapy without calculating 10-year ASCVD risk)."""


class Score(ABC):
    """A validated score. Subclasses declare the attributes below and implement ``compute_many``.

    Attributes
    ----------
    name
        Registry key, lower case (``"news2"``).
    title
        Human name.
    version
        Version of medtwin's implementation (bumped whenever a result could change).
    source
        Full citation of the primary source, with the table or chart implemented.
    inputs
        The declared inputs, units in their names.
    valid_population
        Who the score was validated in, in words; ``compute_many`` refuses rows outside it.
    bands
        Result bands, in order, each with its rule and source.
    integer_value
        True when the value is a whole number of points.
    record_population
        What a patient's *record* must say for the score to apply to them, beyond its inputs:
        ``(derived input, value it must have, why)`` (CHA2DS2-VASc: ``atrial_fibrillation``
        true and ``mitral_stenosis`` false). ``medtwin risk`` says "not applicable: why" for a
        record that does not, and "cannot compute" for one that cannot say (a statin order of
        unknown state); a row given directly (``medtwin score``) is the caller's claim.
    """

    name: str
    title: str
    version: str
    source: str
    inputs: tuple[ScoreInput, ...]
    valid_population: str
    bands: tuple[Band, ...] = ()
    integer_value: bool = True
    record_population: tuple[tuple[str, bool, str], ...] = ()
    partial_is_estimate: bool = False
    """True when a ``partial`` result is the score's own estimate with its documented
    substitutes for missing optional inputs (QRISK3: Townsend 0, ethnicity white or not
    stated ...), which a report may show as a value; False when it is a lower bound (points
    scores), which a report does not."""

    def companions(self) -> tuple[Score, ...]:
        """Other forms of this score a patient's risk report shows beside it (none by default;
        PREVENT: its ASCVD and heart-failure outcomes, see
        :func:`medtwin.risk.from_record.chosen_scores`)."""
        return ()

    def compute_many(
        self,
        columns: Mapping[str, ColumnLike],
        *,
        strict: bool = False,
        rows: int | None = None,
    ) -> ScoreResults:
        """Score every row: the columns read and checked against :attr:`inputs`
        (:class:`InputData`), then :meth:`compute_data`.

        Parameters
        ----------
        columns
            Input name -> column (sequence or 1-D array), all of one length. An absent input is
            missing in every row; ``None``, ``nan`` or ``""`` is missing in that row. Keys that
            are not inputs are ignored (``strict=False``) or raise :class:`ScoreInputError`.
        strict
            Raise on keys that are not inputs of this score (typos would otherwise look like
            missing inputs).
        rows
            Number of rows, needed only when ``columns`` is empty.
        """
        return self.compute_data(
            InputData(self.name, self.inputs, columns, strict=strict, rows=rows)
        )

    def compute_data(self, data: InputData) -> ScoreResults:
        """Score every row of ``data``, the columns as :class:`InputData` read and checked them.

        A score implements this (or overrides :meth:`compute_many` itself, as PREVENT does to
        add the outcome its name fixes)."""
        raise NotImplementedError(
            f"{type(self).__name__} implements neither compute_data nor compute_many"
        )

    def compute_one(self, row: Mapping[str, Any], *, strict: bool = False) -> ScoreResult:
        """Score one patient: the same computation as ``compute_many`` on a 1-row column set."""
        return self.compute_many(
            {key: [value] for key, value in row.items()}, strict=strict, rows=1
        )[0]

    def results(
        self,
        *,
        value: FloatArray,
        band_code: CodeArray,
        partial: BoolArray,
        refused: BoolArray,
        missing: Mapping[str, BoolArray],
        reason_of: Callable[[int], str],
        components: Mapping[str, CodeArray] | None = None,
    ) -> ScoreResults:
        """This score's :class:`ScoreResults` for computed columns; the refusal reason of a row
        is built by ``reason_of`` only when it is read (:class:`LazyReasons`)."""
        return ScoreResults(
            name=self.name,
            version=self.version,
            source=self.source,
            bands=self.bands,
            integer_value=self.integer_value,
            value=value,
            band_code=band_code,
            partial=partial,
            refused=refused,
            components=components or {},
            missing=missing,
            reasons=LazyReasons(refused, reason_of),
        )

    def input(self, name: str) -> ScoreInput:
        """The declared input called ``name``."""
        for inp in self.inputs:
            if inp.name == name:
                return inp
        raise KeyError(f"{self.name} has no input {name!r}")

    def describe(self) -> dict[str, Any]:
        """JSON-ready description: name, version, source, population, inputs, bands."""
        return {
            "name": self.name,
            "title": self.title,
            "version": self.version,
            "source": self.source,
            "valid_population": self.valid_population,
            "inputs": [i.describe() for i in self.inputs],
            "bands": [{"name": b.name, "rule": b.rule, "source": b.source} for b in self.bands],
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.version}>"


@dataclass(frozen=True, slots=True)
class PopulationRule:
    """Refuse rows whose population input fails ``outside`` (given values only).

    ``reason`` is formatted with ``value`` (the input's value in that row).
    """

    input: str
    outside: Callable[[FloatArray], BoolArray]
    reason: str


_NAN_WHERE_TRUE = np.array([0.0, np.nan])
"""Added to a value: nan where a boolean mask (as int8) is 1, the value unchanged where 0."""


class PointsScore(Score):
    """A sum-of-points score (NEWS2, qSOFA, MEWS): each parameter gives points, the value sums them.

    Subclasses declare ``components`` (parameter -> maximum points, in chart order) and
    ``population_rules``, and implement :meth:`points` and :meth:`band_codes`.
    """

    components: Mapping[str, int]
    population_rules: tuple[PopulationRule, ...] = ()
    tables: Mapping[str, BandTable] = {}

    @abstractmethod
    def points(self, data: InputData) -> dict[str, CodeArray]:
        """Points per component (int8), -1 where the component cannot be determined."""

    @abstractmethod
    def band_codes(self, value: IntArray, points: Mapping[str, CodeArray]) -> CodeArray:
        """Band index per row from a complete value and complete points (no -1)."""

    def missing_inputs(self, data: InputData) -> dict[str, BoolArray]:
        """Required inputs missing per row (refused values are reported as refused, not missing)."""
        return {
            inp.name: ~data.present[inp.name] & ~data.invalid[inp.name]
            for inp in self.inputs
            if inp.required
        }

    def compute_data(self, data: InputData) -> ScoreResults:
        n = data.n
        refused = data.any_invalid()
        outside = np.zeros(n, dtype=np.bool_)
        rule_masks: list[tuple[PopulationRule, BoolArray]] = []
        for rule in self.population_rules:
            x = data.number(rule.input)
            with np.errstate(invalid="ignore"):
                mask = ~np.isnan(x) & rule.outside(x)
            if mask.any():
                rule_masks.append((rule, mask))
                outside |= mask
        refused = refused | outside

        points = self.points(data)
        # int8 points of up to 257 components cannot overflow an int16 sum
        small = len(self.components) <= 257 and all(
            points[key].dtype == np.int8 for key in self.components
        )
        total: npt.NDArray[np.signedinteger[Any]] = np.zeros(
            n, dtype=np.int16 if small else np.int64
        )
        undetermined = np.zeros(n, dtype=np.bool_)
        lower_points: dict[str, CodeArray] = {}
        for key in self.components:
            p = points[key]
            undetermined |= p < 0
            low = np.maximum(p, np.int8(0))
            lower_points[key] = low
            total += low
        value: IntArray = total.astype(np.int64, copy=False)
        band = self.band_codes(value, lower_points)
        scored_any = np.ones(n, dtype=np.bool_)
        if undetermined.any():
            # A partial row keeps its band only if the missing parameters, all at their maximum
            # points, would give the same band (bands only rise with points).
            upper = value.copy()
            upper_points: dict[str, CodeArray] = {}
            scored_any[:] = False
            for key, top in self.components.items():
                p = points[key]
                unknown = p < 0
                scored_any |= ~unknown
                upper_points[key] = np.where(unknown, np.int8(top), p).astype(np.int8, copy=False)
                upper += np.where(unknown, top, 0)
            band_high = self.band_codes(upper, upper_points)
            band = np.where(band == band_high, band, np.int8(-1)).astype(np.int8, copy=False)
        no_value = refused | ~scored_any
        # -1 / nan where no value, by arithmetic: masked assignment branches on every row
        band = band * ~no_value
        band -= no_value
        value_f = value + _NAN_WHERE_TRUE[no_value.view(np.int8)]
        partial = undetermined & ~refused
        if refused.any():
            kept = ~refused
            for key in points:
                p = (points[key] * kept).astype(np.int8, copy=False)
                p -= refused  # -1 in refused rows
                points[key] = p

        def reason_of(i: int) -> str:
            msgs = [data.reason(inp.name, i) for inp in self.inputs if data.invalid[inp.name][i]]
            for rule, mask in rule_masks:
                if mask[i]:
                    value = _show(float(data.number(rule.input)[i]))
                    msgs.append(rule.reason.format(value=value))
            return "; ".join(msgs)

        return self.results(
            value=value_f,
            band_code=band,
            partial=partial,
            refused=refused,
            missing=self.missing_inputs(data),
            reason_of=reason_of,
            components={key: points[key] for key in self.components},
        )

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["components"] = dict(self.components)
        out["tables"] = {label: table.describe() for label, table in self.tables.items()}
        return out


def category_points(codes: CodeArray, points_by_code: Sequence[int]) -> CodeArray:
    """Points of category codes through a look-up list; -1 for missing or refused codes."""
    lut = np.array([*points_by_code, MISSING_CODE, MISSING_CODE], dtype=np.int8)
    # codes -1 (missing) and -2 (refused) index the two trailing MISSING_CODE entries
    out: CodeArray = lut[codes]
    return out


def bool_points(x: FloatArray, if_true: int, if_false: int = 0) -> CodeArray:
    """Points of a 0/1/nan column: ``if_true``, ``if_false`` or -1 (missing)."""
    lut = np.array([if_false, if_true, MISSING_CODE], dtype=np.int8)
    # index 1 where x is 1, 2 where x is nan (missing), else 0
    index = (x == 1.0).view(np.int8) | (np.isnan(x).view(np.int8) << np.int8(1))
    out: CodeArray = lut[index]
    return out


# --- shared inputs ----------------------------------------------------------------------------
# The same vital sign has the same name, unit and plausibility range in every score, so one row
# of observations feeds NEWS2, qSOFA and MEWS alike. The ranges are medtwin's data-quality limits,
# not clinical thresholds: wide enough to keep every survivable extreme (a refused row raises no
# warning, so a real extreme must never be refused), narrow enough to catch entry and unit errors.

_LIMIT = "medtwin data-quality limit, not a clinical threshold"


def respiratory_rate_input(description: str = "Respiration rate, breaths per minute") -> ScoreInput:
    """``respiratory_rate_per_min``: 0 (apnoea) to 100 /min."""
    return ScoreInput(
        "respiratory_rate_per_min",
        "/min",
        "number",
        description,
        valid_range=(0.0, 100.0),
        range_source=f"{_LIMIT}: 0 is apnoea (scored, not refused); above 100 /min is an entry error",
    )


def spo2_input() -> ScoreInput:
    """``spo2_percent``: 0 to 100 % (a saturation is a percentage)."""
    return ScoreInput(
        "spo2_percent",
        "%",
        "number",
        "Peripheral oxygen saturation by pulse oximetry (SpO2), percent",
        valid_range=(0.0, 100.0),
        range_source=f"{_LIMIT}: a saturation is a percentage, 0-100 by definition; a value "
        "between 0 and 1 is a fraction given for it (0.95 for 95 %), no oximeter's reading",
        not_a_fraction=True,
    )


def systolic_bp_input() -> ScoreInput:
    """``systolic_bp_mm_hg``: 0 to 350 mmHg."""
    return ScoreInput(
        "systolic_bp_mm_hg",
        "mm[Hg]",
        "number",
        "Systolic blood pressure, mmHg",
        valid_range=(0.0, 350.0),
        range_source=(
            f"{_LIMIT}: 0 is no measurable pressure (cardiac arrest, scored); above 350 mmHg "
            "is an entry error"
        ),
    )


def pulse_input(description: str = "Pulse (heart rate), beats per minute") -> ScoreInput:
    """``pulse_per_min``: 0 to 350 /min."""
    return ScoreInput(
        "pulse_per_min",
        "/min",
        "number",
        description,
        valid_range=(0.0, 350.0),
        range_source=(
            f"{_LIMIT}: 0 is asystole (scored); above 350 /min is an entry error (HR 900)"
        ),
    )


def temperature_input() -> ScoreInput:
    """``temperature_c``: 10 to 47 °C."""
    return ScoreInput(
        "temperature_c",
        "Cel",
        "number",
        "Body temperature, degrees Celsius",
        valid_range=(10.0, 47.0),
        range_source=(
            f"{_LIMIT}: below the lowest core temperature reported with survival, 13.7 °C "
            "(Gilbert et al., Lancet 2000;355:375-376), above the highest reported in heat "
            "stroke survivors (about 46-47 °C); a Fahrenheit value such as 98.6 is refused"
        ),
    )


def age_input(minimum_text: str) -> ScoreInput:
    """``age_years`` (population input, not scored): 0 to 130 years."""
    return ScoreInput(
        "age_years",
        "a",
        "number",
        f"Age in years; checked against the validated population ({minimum_text}), not scored",
        required=False,
        valid_range=(0.0, 130.0),
        range_source=f"{_LIMIT}: above the oldest verified human age (122 years)",
        population=True,
    )
