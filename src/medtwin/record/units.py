"""UCUM units for the patient record: parse, convert and normalise measured values.

medtwin writes units as UCUM codes at the FHIR boundary and as unit-suffixed names in code
(``glucose_mg_dl``). This module is the thin layer between the two: it reads UCUM syntax
(prefixes, ``.`` and ``/``, exponents, parentheses, ``10*n`` factors, ``{annotations}``),
hands the dimensional algebra to `pint <https://pint.readthedocs.io>`_, and adds what pint
lacks: UCUM's clinical atoms (``mm[Hg]``, ``[IU]``, ``meq``, ``[lb_av]`` ...), an alias table
for non-UCUM spellings seen in real data (``mmHg``, ``mcg``, ``lbs``), mass <-> molar
conversions for named analytes, and the HbA1c NGSP <-> IFCC master equation.

pint is imported, and its registry built, on first use only: importing this module is cheap.
Parses and conversion factors are cached, so the per-observation cost is a dictionary look-up.

Examples
--------
>>> parse_ucum("10*3/uL").dimension
'1 / [length] ** 3'
>>> round(convert(100, "mg/dL", "mmol/L", analyte="glucose"), 3)
5.551
>>> round(convert(98.6, "[degF]", "Cel"), 6)
37.0
>>> normalise(150, "[lb_av]", code="29463-7").unit
'kg'

References
----------
.. [UCUM] Schadow G, McDonald CJ. The Unified Code for Units of Measure, version 2.1.
   Regenstrief Institute, 2017. https://ucum.org/ucum (atom values from ``ucum-essence.xml``).
.. [IUPAC2021] Prohaska T, Irrgeher J, Benefield J, et al. Standard atomic weights of the
   elements 2021 (IUPAC Technical Report). Pure Appl Chem. 2022;94(5):573-600.
.. [Young1987] Young DS. Implementation of SI units for clinical laboratory data: style
   specifications and conversion tables. Ann Intern Med. 1987;106(1):114-129.
.. [ICSH1996] International Council for Standardization in Haematology. Recommendations for
   reference method for haemoglobinometry in human blood (ICSH standard 1995) and
   specifications for international haemiglobincyanide standard (4th edition).
   J Clin Pathol. 1996;49(4):271-274.
.. [Hoelzel2004] Hoelzel W, Weykamp C, Jeppsson JO, et al. IFCC reference system for
   measurement of hemoglobin A1c in human blood and the national standardization schemes in
   the United States, Japan, and Sweden: a method-comparison study. Clin Chem.
   2004;50(1):166-174.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "ANALYTES",
    "ATOMIC_WEIGHTS",
    "ATOM_ALIASES",
    "CANONICAL_UNITS",
    "STRING_ALIASES",
    "Analyte",
    "IncompatibleUnitsError",
    "Normalised",
    "UcumUnit",
    "UnitsError",
    "UnknownAnalyteError",
    "UnknownUnitError",
    "convert",
    "convert_many",
    "find_analyte",
    "normalise",
    "parse_ucum",
]


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class UnitsError(ValueError):
    """Base class of the errors raised by :mod:`medtwin.record.units`."""


class UnknownUnitError(UnitsError):
    """A unit string that is neither valid UCUM nor a documented alias.

    The message names the string, the position and the reason, and suggests a fix.
    """


class IncompatibleUnitsError(UnitsError):
    """No conversion path between two units (for the given analyte, if any)."""


class UnknownAnalyteError(UnitsError):
    """An ``analyte`` argument that is neither a known analyte name nor a known LOINC code."""


# --------------------------------------------------------------------------------------
# UCUM tables
# --------------------------------------------------------------------------------------

#: UCUM prefixes -> pint prefix names. Values are UCUM's (e.g. ``u`` = 1e-6) [UCUM]_;
#: pint's prefixes carry the same values (checked in tests/record/test_units.py).
_PREFIXES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Y": "yotta",
        "Z": "zetta",
        "E": "exa",
        "P": "peta",
        "T": "tera",
        "G": "giga",
        "M": "mega",
        "k": "kilo",
        "h": "hecto",
        "da": "deca",
        "d": "deci",
        "c": "centi",
        "m": "milli",
        "u": "micro",
        "n": "nano",
        "p": "pico",
        "f": "femto",
        "a": "atto",
        "z": "zepto",
        "y": "yocto",
    }
)

# Flags of an atom.
_METRIC: Final = 1  # UCUM isMetric="yes": may carry a prefix
_SPECIAL: Final = 2  # non-ratio scale (Cel, [degF], [pH]): stands alone, no prefix/power
_ARBITRARY: Final = 4  # UCUM "arbitrary" unit: commensurable only with itself


@dataclass(frozen=True, slots=True)
class _Atom:
    pint: str
    flags: int


#: UCUM atoms that medtwin understands -> pint unit name and flags. Values of the
#: pint units that pint lacks are defined in ``_PINT_DEFINITIONS`` from [UCUM]_; every other
#: pint unit named here has the UCUM value (pint's definitions, from NIST SP 811, agree
#: with ucum-essence.xml for all of them; tests/record/test_units.py checks the clinical ones).
_ATOMS: Final[Mapping[str, _Atom]] = MappingProxyType(
    {
        # base units
        "m": _Atom("meter", _METRIC),
        "s": _Atom("second", _METRIC),
        "g": _Atom("gram", _METRIC),
        "rad": _Atom("radian", _METRIC),
        "K": _Atom("kelvin", _METRIC),
        "C": _Atom("coulomb", _METRIC),
        "cd": _Atom("candela", _METRIC),
        # dimensionless
        "%": _Atom("percent", 0),
        "[ppth]": _Atom("permille", 0),
        "[ppm]": _Atom("ppm", 0),
        "[ppb]": _Atom("parts_per_billion", 0),
        # SI derived
        "mol": _Atom("mole", _METRIC),
        "sr": _Atom("steradian", _METRIC),
        "Hz": _Atom("hertz", _METRIC),
        "N": _Atom("newton", _METRIC),
        "Pa": _Atom("pascal", _METRIC),
        "J": _Atom("joule", _METRIC),
        "W": _Atom("watt", _METRIC),
        "A": _Atom("ampere", _METRIC),
        "V": _Atom("volt", _METRIC),
        "F": _Atom("farad", _METRIC),
        "Ohm": _Atom("ohm", _METRIC),
        "S": _Atom("siemens", _METRIC),
        "Wb": _Atom("weber", _METRIC),
        "T": _Atom("tesla", _METRIC),
        "H": _Atom("henry", _METRIC),
        "lm": _Atom("lumen", _METRIC),
        "lx": _Atom("lux", _METRIC),
        "Bq": _Atom("becquerel", _METRIC),
        "Gy": _Atom("gray", _METRIC),
        "Sv": _Atom("sievert", _METRIC),
        "Cel": _Atom("degree_Celsius", _METRIC | _SPECIAL),
        # ISO 1000 and other metric-compatible units
        "l": _Atom("liter", _METRIC),
        "L": _Atom("liter", _METRIC),
        "ar": _Atom("are", _METRIC),
        "t": _Atom("metric_ton", _METRIC),
        "bar": _Atom("bar", _METRIC),
        "u": _Atom("dalton", _METRIC),
        "eV": _Atom("electron_volt", _METRIC),
        "Ci": _Atom("curie", _METRIC),
        "min": _Atom("minute", 0),
        "h": _Atom("hour", 0),
        "d": _Atom("day", 0),
        "wk": _Atom("week", 0),
        "a_j": _Atom("julian_year", 0),
        "a_g": _Atom("gregorian_year", 0),
        "a": _Atom("julian_year", 0),  # UCUM: a = a_j = 365.25 d
        "mo_j": _Atom("month", 0),  # pint: month = julian_year / 12 = UCUM mo_j
        "mo_g": _Atom("mean_gregorian_month", 0),
        "mo": _Atom("month", 0),  # UCUM: mo = mo_j
        "deg": _Atom("degree", 0),
        "atm": _Atom("atmosphere", 0),
        "Ao": _Atom("angstrom", 0),
        # international customary and US volumes
        "[in_i]": _Atom("inch", 0),
        "[ft_i]": _Atom("foot", 0),
        "[yd_i]": _Atom("yard", 0),
        "[mi_i]": _Atom("mile", 0),
        "[gal_us]": _Atom("gallon", 0),
        "[qt_us]": _Atom("quart", 0),
        "[pt_us]": _Atom("pint", 0),
        "[cup_us]": _Atom("cup", 0),
        "[foz_us]": _Atom("fluid_ounce", 0),
        "[tbs_us]": _Atom("tablespoon", 0),
        "[tsp_us]": _Atom("teaspoon", 0),
        "[gr]": _Atom("grain", 0),
        "[lb_av]": _Atom("pound", 0),
        "[oz_av]": _Atom("ounce", 0),
        "[stone_av]": _Atom("stone", 0),
        # heat
        "[degF]": _Atom("degree_Fahrenheit", _SPECIAL),
        "cal": _Atom("calorie", _METRIC),  # UCUM cal = cal_th = 4.184 J
        "cal_th": _Atom("calorie", _METRIC),
        "cal_IT": _Atom("international_calorie", _METRIC),
        "[Cal]": _Atom("kilocalorie", 0),  # nutrition label Calorie = kcal_th
        # clinical
        "m[Hg]": _Atom("meter_of_mercury_ucum", _METRIC),
        "m[H2O]": _Atom("meter_of_water_ucum", _METRIC),
        "[in_i'Hg]": _Atom("inch_of_mercury_ucum", 0),
        "[in_i'H2O]": _Atom("inch_of_water_ucum", 0),
        "[psi]": _Atom("psi", 0),
        "[MET]": _Atom("metabolic_equivalent", 0),
        "[HPF]": _Atom("high_power_field", 0),
        "[LPF]": _Atom("low_power_field", 0),
        "[hnsf'U]": _Atom("hounsfield_unit", 0),
        # chemical
        "eq": _Atom("equivalent", _METRIC),
        "osm": _Atom("osmole", _METRIC),
        "[pH]": _Atom("pH_unit", _SPECIAL),
        "g%": _Atom("gram_percent", _METRIC),
        "kat": _Atom("katal", _METRIC),
        "U": _Atom("enzyme_unit", _METRIC),  # UCUM U = umol/min
        "[iU]": _Atom("international_unit", _METRIC | _ARBITRARY),
        "[IU]": _Atom("international_unit", _METRIC | _ARBITRARY),  # UCUM [IU] = [iU]
        "[arb'U]": _Atom("arbitrary_unit", _ARBITRARY),
        "[USP'U]": _Atom("usp_unit", _ARBITRARY),
        "[CFU]": _Atom("colony_forming_unit", _METRIC | _ARBITRARY),
    }
)

#: Units pint lacks, or whose UCUM value differs from pint's, defined from [UCUM]_.
_PINT_DEFINITIONS: Final[tuple[str, ...]] = (
    # UCUM m[Hg] = 133.3220 kPa; pint's mmHg (13.5951 g/cm3 x g_n) is 133.322387 Pa, so
    # UCUM's own value is used to keep UCUM codes exact.
    "meter_of_mercury_ucum = 133.3220 * kilopascal",
    # UCUM m[H2O] = 9.80665 kPa
    "meter_of_water_ucum = 9.80665 * kilopascal",
    # UCUM [in_i'Hg] = m[Hg].[in_i]/m, [in_i'H2O] = m[H2O].[in_i]/m
    "inch_of_mercury_ucum = meter_of_mercury_ucum * inch / meter",
    "inch_of_water_ucum = meter_of_water_ucum * inch / meter",
    # UCUM g% = g/dl
    "gram_percent = gram / deciliter",
    # UCUM [ppb] = 10*-9
    "parts_per_billion = 1e-9",
    # UCUM mo_g = a_g/12
    "mean_gregorian_month = gregorian_year / 12",
    # UCUM [MET] = 3.5 mL/min/kg
    "metabolic_equivalent = 3.5 * milliliter / minute / kilogram",
    # UCUM [HPF] = 1, [LPF] = 100
    "high_power_field = 1",
    "low_power_field = 100",
    # Deliberate deviations from UCUM, each its own base dimension (docs/models/units.md):
    # UCUM sets eq = osm = mol, which would make meq/L == mmol/L for every ion (wrong for
    # Ca2+, Mg2+); medtwin converts eq <-> mol only through an analyte's valence.
    "equivalent = [charge_equivalent]",
    "osmole = [osmole]",
    # UCUM arbitrary units are commensurable only with themselves ([UCUM]_, "arbitrary units").
    "international_unit = [international_unit]",
    "arbitrary_unit = [arbitrary_unit]",
    "usp_unit = [usp_unit]",
    "colony_forming_unit = [colony_forming_unit]",
    # UCUM gives [hnsf'U] = 1; medtwin keeps CT numbers apart from fractions such as %.
    "hounsfield_unit = [hounsfield]",
    # UCUM [pH] is a logarithmic special unit; medtwin only converts it to itself.
    "pH_unit = [acidity]",
)

#: Whole-string aliases: spellings seen in real data that are not UCUM, each mapped to the
#: UCUM code it unambiguously means. Looked up only after a strict UCUM parse fails, so an
#: alias never shadows a valid UCUM code (tests assert every key fails the strict parse).
STRING_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        # Synthea MMSE total score (LOINC 72106-8) writes the annotation in parentheses.
        "(score)": "{score}",
        # US Core SpO2 example: display text "%O2".
        "%O2": "%",
        # HL7 PHD SampledData.origin display.
        "{unitless} 1": "1",
        # US Core / HL7 PHD heart-rate display with an unbalanced brace.
        "{beat}/min}": "{beat}/min",
        "breaths per minute": "{breaths}/min",
        "beats per minute": "{beats}/min",
        "bpm": "{beats}/min",
        "pack-years": "{pack-years}",
        # cigarettes a day as clinical systems write it (SNOMED CT 230056004 "Cigarette
        # consumption", LOINC 64218-1)
        "cigs/day": "{cigarettes}/d",
        "cigarettes/day": "{cigarettes}/d",
        "cigarettes per day": "{cigarettes}/d",
        "mm Hg": "mm[Hg]",
        "cm H2O": "cm[H2O]",
    }
)

#: Token aliases: a single unit symbol that is not UCUM, replaced inside a larger
#: expression (``mcg/dL`` -> ``ug/dL``, ``mIU/mL`` -> ``m[IU]/mL``). Only unambiguous clinical
#: spellings are listed; symbols that *are* UCUM keep their UCUM meaning: ``C`` is the
#: coulomb, ``ft`` is a femtotonne, ``F`` the farad (use ``Cel``, ``[ft_i]``, ``[degF]``).
ATOM_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "mmHg": "mm[Hg]",
        "cmH2O": "cm[H2O]",
        "inHg": "[in_i'Hg]",
        "mcg": "ug",
        "degF": "[degF]",
        "°F": "[degF]",
        "degC": "Cel",
        "°C": "Cel",
        "lb": "[lb_av]",
        "lbs": "[lb_av]",
        "oz": "[oz_av]",
        "in": "[in_i]",
        "inch": "[in_i]",
        "inches": "[in_i]",
        "feet": "[ft_i]",
        "IU": "[IU]",
        "iU": "[iU]",
        "mIU": "m[IU]",
        "uIU": "u[IU]",
        "kIU": "k[IU]",
        "Eq": "eq",
        "mEq": "meq",
        "mOsm": "mosm",
        "gm": "g",
        "cc": "mL",
        "Cal": "[Cal]",
        "ppm": "[ppm]",
        "ppb": "[ppb]",
        "ppth": "[ppth]",
        "sec": "s",
        "mins": "min",
        "hr": "h",
        "hrs": "h",
        "day": "d",
        "days": "d",
        "Day": "d",
        "Days": "d",
        "week": "wk",
        "weeks": "wk",
        "month": "mo",
        "months": "mo",
        "yr": "a",
        "yrs": "a",
        "year": "a",
        "years": "a",
        "beat": "{beat}",
        "beats": "{beats}",
        "breath": "{breath}",
        "breaths": "{breaths}",
        "score": "{score}",
    }
)

#: Annotations that change what a value means, so ``convert`` keeps them apart even though
#: UCUM ignores annotations: an eGFR per 1.73 m2 of body surface area is not an absolute
#: clearance (converting needs the patient's BSA).
_SIGNIFICANT_ANNOTATIONS: Final[tuple[str, ...]] = ("{1.73_m2}",)

# "mL/min/1.73.m2" is valid UCUM, but it means (mL/min/1).73.m2 = 73 mL.m2/min: "1.73" is
# not a UCUM number. Every such spelling means "per 1.73 m2 BSA", so it is rewritten to the
# annotation form LOINC uses before anything else.
_BSA_SPELLING: Final = re.compile(r"/\(?1\.73(?:\.|_| )?m(?:2|\^2|²)\)?")
_SUPERSCRIPTS: Final = str.maketrans({"²": "2", "³": "3", "µ": "u", "μ": "u"})
_CARET_EXPONENT: Final = re.compile(r"(?<=[A-Za-z\]])\^(?=[+-]?[0-9])")
_TEN_POWER: Final = re.compile(r"10[*^]([+-]?[0-9]+)?")
_EXPONENT: Final = re.compile(r"(.*?)([+-]?[0-9]+)?", re.DOTALL)
_DIGITS: Final = re.compile(r"[0-9]+")
_MAX_EXPONENT: Final = 300  # beyond this a float factor overflows; no unit needs it
_OPERATORS: Final = frozenset("./(){}")


# --------------------------------------------------------------------------------------
# Parsed units
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UcumUnit:
    """A parsed unit.

    Attributes
    ----------
    code
        The string exactly as given.
    canonical
        The normalised UCUM code: aliases resolved, ``l`` written ``L``, ``10^`` written
        ``10*``, exponent signs ``+`` dropped; the structure (order, grouping) is kept.
    pint_expr
        The same unit as a pint expression, e.g. ``'milligram / deciliter'``; a numeric
        factor (``10*3``, ``6``) is written in front: ``'1000.0 / microliter'``.
    dimension
        pint's dimensionality, e.g. ``'[mass] / [length] ** 3'`` or ``'dimensionless'``.
    annotation
        The ``{...}`` annotations, concatenated in order (``'{score}'``), or ``None``.
    is_arbitrary
        True for UCUM arbitrary units (``[IU]``, ``[arb'U]`` ...) and annotation-only
        units (``{score}``): values are comparable only with the same unit.
    is_ucum
        True when ``code`` is valid UCUM as written (no alias or rewrite was needed).
    is_special
        True for non-ratio scales (``Cel``, ``[degF]``, ``[pH]``): conversions are affine.
    atoms
        The UCUM atoms used, without prefixes, in order (``('g', 'L')`` for ``mg/dL``).
    quantity
        The pint ``Quantity`` of one ``code``: magnitude is the numeric factor.

    Examples
    --------
    >>> unit = parse_ucum("mL/min/{1.73_m2}")
    >>> unit.canonical, unit.annotation, unit.dimension
    ('mL/min/{1.73_m2}', '{1.73_m2}', '[length] ** 3 / [time]')
    """

    code: str
    canonical: str
    pint_expr: str
    dimension: str
    annotation: str | None
    is_arbitrary: bool
    is_ucum: bool
    is_special: bool
    atoms: tuple[str, ...]
    quantity: Any = field(compare=False, repr=False, hash=False)


class _ParseError(Exception):
    """Internal: a reason and a position, turned into :class:`UnknownUnitError` at the top."""

    def __init__(self, reason: str, position: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position


@dataclass(slots=True)
class _Term:
    """A parsed (sub)term: canonical text plus what pint needs."""

    text: str
    factors: list[tuple[str, int]]  # (prefixed pint unit name, exponent)
    scale: float
    annotations: list[str]
    atoms: list[str]
    specials: list[str]
    arbitrary: bool
    pieces: int  # non-annotation components
    simple: bool  # a single prefixed atom, no exponent/annotation (may take an exponent)

    def combine(self, operator: str, other: _Term) -> None:
        sign = -1 if operator == "/" else 1
        self.text = f"{self.text}{operator}{other.text}"
        self.factors.extend((name, sign * exponent) for name, exponent in other.factors)
        self.scale = self.scale / other.scale if sign < 0 else self.scale * other.scale
        self.annotations.extend(other.annotations)
        self.atoms.extend(other.atoms)
        self.specials.extend(other.specials)
        self.arbitrary = self.arbitrary or other.arbitrary
        self.pieces += other.pieces
        self.simple = False
        if sign < 0 and other.specials:
            raise _ParseError(f"special unit {other.specials[0]!r} cannot be a divisor")

    def power(self, exponent: int) -> None:
        self.factors = [(name, e * exponent) for name, e in self.factors]
        self.scale = self.scale**exponent
        self.text = f"{self.text}{exponent}"
        self.simple = False


def _empty_term(text: str) -> _Term:
    return _Term(text, [], 1.0, [], [], [], False, 0, False)


class _Parser:
    """Recursive-descent parser of the UCUM grammar ([UCUM]_, syntax rules and their BNF).

    ``main := '/' term | term``; ``term := component (('.' | '/') component)*``;
    ``component := '(' term ')' | symbol [annotation] | annotation``; a symbol is a prefixed
    atom with an optional signed integer exponent, an integer factor, or ``10*n``/``10^n``.
    """

    def __init__(self, text: str, *, lenient: bool) -> None:
        self.text = text
        self.pos = 0
        self.lenient = lenient

    def parse(self) -> _Term:
        if not self.text:
            raise _ParseError("the string is empty (use '1' for a dimensionless quantity)")
        if not self.lenient:
            for index, char in enumerate(self.text):
                if char.isspace():
                    raise _ParseError("UCUM does not allow whitespace", index)
                if not " " < char <= "~":
                    raise _ParseError(f"{char!r} is not a UCUM character (ASCII only)", index)
        if self.text.startswith("/"):
            self.pos = 1
            term = _empty_term("")
            term.combine("/", self._term())
        else:
            term = self._term()
        if self.pos != len(self.text):
            char = self.text[self.pos]
            hint = "unbalanced ')'" if char == ")" else f"unexpected {char!r}"
            raise _ParseError(f"{hint}; expected '.', '/' or the end", self.pos)
        if not 0.0 < term.scale < math.inf:
            raise _ParseError("the numeric factor is out of range")
        return term

    def _term(self) -> _Term:
        term = self._component()
        while self.pos < len(self.text) and self.text[self.pos] in "./":
            operator = self.text[self.pos]
            self.pos += 1
            term.combine(operator, self._component())
        return term

    def _component(self) -> _Term:
        if self.pos >= len(self.text):
            raise _ParseError("a unit is missing after the operator", self.pos)
        char = self.text[self.pos]
        if char == "(":
            start = self.pos
            self.pos += 1
            inner = self._term()
            if self.pos >= len(self.text) or self.text[self.pos] != ")":
                raise _ParseError("'(' is never closed", start)
            self.pos += 1
            inner.text = f"({inner.text})"
            inner.simple = False
            if self.pos < len(self.text) and self.text[self.pos] == "{":
                annotation = self._annotation()
                inner.text += annotation
                inner.annotations.append(annotation)
            return inner
        if char == "{":
            annotation = self._annotation()
            term = _empty_term(annotation)
            term.annotations.append(annotation)
            return term
        if char in ")./}":
            raise _ParseError(f"a unit is missing before {char!r}", self.pos)
        start = self.pos
        symbol = self._symbol()
        term = self._interpret(symbol, start)
        if self.pos < len(self.text) and self.text[self.pos] == "{":
            annotation = self._annotation()
            term.text += annotation
            term.annotations.append(annotation)
            term.simple = False
        return term

    def _annotation(self) -> str:
        start = self.pos
        end = self.text.find("}", start + 1)
        if end < 0:
            raise _ParseError("'{' is never closed", start)
        content = self.text[start + 1 : end]
        if "{" in content:
            raise _ParseError("annotations cannot be nested", start)
        self.pos = end + 1
        return self.text[start : end + 1]

    def _symbol(self) -> str:
        start = self.pos
        text = self.text
        while self.pos < len(text) and text[self.pos] not in _OPERATORS:
            if text[self.pos] == "[":
                close = text.find("]", self.pos)
                if close < 0:
                    raise _ParseError("'[' is never closed", self.pos)
                self.pos = close + 1
            else:
                self.pos += 1
        return text[start : self.pos]

    def _interpret(self, symbol: str, start: int) -> _Term:
        if _DIGITS.fullmatch(symbol):
            number = int(symbol)
            if number == 0 or len(symbol) > _MAX_EXPONENT:
                raise _ParseError(f"the factor {symbol!r} is out of range", start)
            term = _empty_term(str(number))
            term.scale = float(number)
            term.pieces = 1
            return term
        ten = _TEN_POWER.fullmatch(symbol)
        if ten is not None:
            exponent = int(ten.group(1)) if ten.group(1) else 1
            if abs(exponent) > _MAX_EXPONENT:
                raise _ParseError(f"exponent {exponent} in {symbol!r} is out of range", start)
            term = _empty_term(f"10*{exponent}" if ten.group(1) else "10*")
            term.scale = 10.0**exponent
            term.pieces = 1
            return term
        match = _EXPONENT.fullmatch(symbol)
        assert match is not None  # the pattern matches every string
        name, exponent_text = match.group(1), match.group(2)
        exponent = int(exponent_text) if exponent_text else 1
        if not name:
            raise _ParseError(f"{symbol!r} is a signed number, not a unit", start)
        if exponent == 0:
            raise _ParseError(f"exponent 0 in {symbol!r}", start)
        if abs(exponent) > _MAX_EXPONENT:
            raise _ParseError(f"exponent {exponent} in {symbol!r} is out of range", start)
        resolved = _resolve_atom(name)
        if isinstance(resolved, str):
            if self.lenient and name in ATOM_ALIASES:
                term = _parse_strict(ATOM_ALIASES[name])
                if exponent != 1:
                    if not term.simple:
                        raise _ParseError(f"alias {name!r} cannot take an exponent", start)
                    term.power(exponent)
                return term
            raise _ParseError(resolved, start)
        prefix, atom_code = resolved
        atom = _ATOMS[atom_code]
        if atom.flags & _SPECIAL and (prefix or exponent != 1):
            raise _ParseError(
                f"special unit {atom_code!r} is a non-ratio scale and cannot take a prefix "
                "or an exponent",
                start,
            )
        pint_name = f"{_PREFIXES[prefix]}{atom.pint}" if prefix else atom.pint
        canonical_atom = "L" if atom_code == "l" else atom_code
        text = f"{prefix}{canonical_atom}" + (str(exponent) if exponent != 1 else "")
        return _Term(
            text=text,
            factors=[(pint_name, exponent)],
            scale=1.0,
            annotations=[],
            atoms=[canonical_atom],
            specials=[atom_code] if atom.flags & _SPECIAL else [],
            arbitrary=bool(atom.flags & _ARBITRARY),
            pieces=1,
            simple=exponent == 1,
        )


def _resolve_atom(name: str) -> tuple[str, str] | str:
    """Return ``(prefix, atom)`` for a UCUM symbol, or the reason it is not one.

    An exact atom wins over a prefixed reading (``cd`` is candela, ``Pa`` pascal, ``min``
    minute), as UCUM requires.
    """
    if name in _ATOMS:
        return "", name
    non_metric = None
    for size in (2, 1):
        prefix, rest = name[:size], name[size:]
        if prefix in _PREFIXES and rest in _ATOMS:
            if _ATOMS[rest].flags & _METRIC:
                return prefix, rest
            non_metric = rest
    if non_metric is not None:
        return f"{non_metric!r} is not a metric unit, so it cannot take the prefix in {name!r}"
    reason = f"{name!r} is not a UCUM unit (UCUM is case-sensitive)"
    import difflib  # only on the error path: keeps importing this module cheap

    close = difflib.get_close_matches(name, [*_ATOMS, *ATOM_ALIASES], n=1)
    if close:
        reason += f"; did you mean {ATOM_ALIASES.get(close[0], close[0])!r}?"
    return reason


@lru_cache(maxsize=512)
def _parse_strict_cached(text: str) -> _Term:
    return _Parser(text, lenient=False).parse()


def _parse_strict(text: str) -> _Term:
    term = _parse_strict_cached(text)
    # Callers mutate terms (combine/power): hand out a copy.
    return _Term(
        term.text,
        list(term.factors),
        term.scale,
        list(term.annotations),
        list(term.atoms),
        list(term.specials),
        term.arbitrary,
        term.pieces,
        term.simple,
    )


# --------------------------------------------------------------------------------------
# pint registry (built once, on first use)
# --------------------------------------------------------------------------------------

_REGISTRY_LOCK: Final = threading.Lock()
_REGISTRY: list[Any] = []


def _registry() -> Any:
    """Return medtwin's pint ``UnitRegistry`` (the default one plus the UCUM additions)."""
    if _REGISTRY:
        return _REGISTRY[0]
    with _REGISTRY_LOCK:
        if not _REGISTRY:
            import pint

            registry: Any = pint.UnitRegistry(cache_folder=None)
            for definition in _PINT_DEFINITIONS:
                registry.define(definition)
            _REGISTRY.append(registry)
    return _REGISTRY[0]


def _build(code: str, term: _Term, *, is_ucum: bool) -> UcumUnit:
    registry = _registry()
    if term.specials:
        if term.pieces != 1 or len(term.factors) != 1 or term.scale != 1.0:
            raise _ParseError(
                f"special unit {term.specials[0]!r} is a non-ratio scale and cannot be "
                "combined with other units or factors"
            )
        unit = registry.Unit(term.factors[0][0])
    else:
        unit = registry.dimensionless
        for name, exponent in term.factors:
            unit = unit * registry.Unit(name) ** exponent
    quantity = registry.Quantity(term.scale, unit)
    pint_expr = _pint_expression(term.scale, str(unit))
    dimension = str(unit.dimensionality)
    annotation = "".join(term.annotations) or None
    annotation_only = not term.atoms and term.pieces == 0
    return UcumUnit(
        code=code,
        canonical=term.text,
        pint_expr=pint_expr,
        dimension=dimension,
        annotation=annotation,
        is_arbitrary=term.arbitrary or annotation_only,
        is_ucum=is_ucum,
        is_special=bool(term.specials),
        atoms=tuple(term.atoms),
        quantity=quantity,
    )


def _pint_expression(scale: float, unit_text: str) -> str:
    if scale == 1.0:
        return unit_text
    if unit_text == "dimensionless":
        return repr(scale)
    if unit_text.startswith("1 / "):
        return f"{scale!r} / {unit_text[4:]}"
    return f"{scale!r} * {unit_text}"


def _unknown(code: str, error: _ParseError) -> UnknownUnitError:
    where = f" at position {error.position}" if error.position is not None else ""
    return UnknownUnitError(
        f"unknown unit {code!r}: {error.reason}{where}. Write the unit in UCUM "
        "(https://ucum.org/ucum), e.g. 'mg/dL', 'mm[Hg]', '10*3/uL', '{score}', or add a "
        "documented alias to medtwin.record.units.ATOM_ALIASES / STRING_ALIASES."
    )


@lru_cache(maxsize=4096)
def _parse_cached(code: str) -> UcumUnit:
    rewritten = _BSA_SPELLING.sub("/{1.73_m2}", code)
    try:
        term = _parse_strict(rewritten)
        return _build(code, term, is_ucum=rewritten == code)
    except _ParseError as strict_error:
        first_error = strict_error
    candidate = code.strip().translate(_SUPERSCRIPTS)
    candidate = _BSA_SPELLING.sub("/{1.73_m2}", _CARET_EXPONENT.sub("", candidate))
    try:
        if candidate in STRING_ALIASES:
            term = _parse_strict(STRING_ALIASES[candidate])
        elif code.strip() in STRING_ALIASES:
            term = _parse_strict(STRING_ALIASES[code.strip()])
        else:
            term = _Parser(candidate, lenient=True).parse()
            if any(char.isspace() for char in candidate):
                raise _ParseError("UCUM does not allow whitespace")
        return _build(code, term, is_ucum=False)
    except _ParseError:
        raise _unknown(code, first_error) from None


def parse_ucum(code: str) -> UcumUnit:
    """Parse a UCUM unit code (or a documented non-UCUM alias) into a :class:`UcumUnit`.

    Parameters
    ----------
    code
        A UCUM code such as ``'mg/dL'``, ``'10*3/uL'``, ``'mm[Hg]'``, ``'{beats}/min'``.
        Non-UCUM spellings listed in :data:`STRING_ALIASES` and :data:`ATOM_ALIASES`
        (``'mmHg'``, ``'mcg/dL'``, ``'lbs'``) are accepted with ``is_ucum=False``.

    Returns
    -------
    UcumUnit
        The parsed unit; results are cached, so repeated calls cost a dictionary look-up.

    Raises
    ------
    UnknownUnitError
        When the string is neither UCUM nor an alias; the message names the string, the
        position and the reason.

    Notes
    -----
    UCUM's grammar and atoms follow [UCUM]_. medtwin departs from it in four documented
    places: ``eq`` and ``osm`` are not ``mol`` (an analyte's valence links ``eq`` to
    ``mol``); ``[hnsf'U]`` is its own dimension; ``mL/min/1.73.m2`` and similar spellings
    mean ``mL/min/{1.73_m2}`` (strict UCUM would read ``73 mL.m2/min``); and ``mol`` is
    its own dimension, as in SI and pint (UCUM defines ``mol`` as the number 6.0221367e23).

    Examples
    --------
    >>> parse_ucum("mg/dL").pint_expr
    'milligram / deciliter'
    >>> parse_ucum("mmHg").canonical, parse_ucum("mmHg").is_ucum
    ('mm[Hg]', False)
    >>> parse_ucum("{score}").is_arbitrary
    True
    """
    if not isinstance(code, str):
        raise TypeError(f"a unit code must be a str, not {type(code).__name__}")
    return _parse_cached(code)


# --------------------------------------------------------------------------------------
# Analytes: molar masses and valences
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Analyte:
    """What converting a laboratory analyte between mass, substance and charge needs.

    Attributes
    ----------
    name
        Canonical name (lower case), e.g. ``'glucose'``.
    molar_mass_g_mol
        Molar mass used for mass <-> substance conversions, or ``None``.
    valence
        Charge number used for substance <-> equivalents (``meq``), or ``None``.
    loinc
        LOINC codes whose values are this analyte (mass or substance concentration).
    source
        Where the molar mass / valence / equation comes from.
    formula
        Molecular formula the molar mass was computed from, when there is one.
    synonyms
        Other names accepted by ``analyte=`` (case and spacing are ignored).
    hba1c_master_equation
        True for HbA1c: ``%`` (NGSP/DCCT) <-> ``mmol/mol`` (IFCC) uses the master equation.
    """

    name: str
    molar_mass_g_mol: float | None
    valence: int | None
    loinc: tuple[str, ...]
    source: str
    formula: str | None = None
    synonyms: tuple[str, ...] = ()
    hba1c_master_equation: bool = False


#: IUPAC abridged standard atomic weights 2021 (Prohaska T et al., Pure Appl Chem
#: 2022;94:573-600), the five-figure values used to compute every molar mass below.
ATOMIC_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType(
    {
        "H": 1.0080,
        "C": 12.011,
        "N": 14.007,
        "O": 15.999,
        "Na": 22.990,
        "Mg": 24.305,
        "P": 30.974,
        "Cl": 35.45,
        "K": 39.098,
        "Ca": 40.078,
        "Fe": 55.845,
    }
)

_IUPAC: Final = "IUPAC 2021 abridged standard atomic weights (Prohaska et al. 2022)"
_YOUNG: Final = "cross-check: Young DS, Ann Intern Med 1987;106:114-129, factor"

#: Analytes with their molar masses (g/mol) and valences; every number cites its source.
ANALYTES: Final[Mapping[str, Analyte]] = MappingProxyType(
    {
        analyte.name: analyte
        for analyte in (
            Analyte(
                "glucose",
                180.156,
                None,
                (
                    "2339-0",
                    "2345-7",
                    "1558-6",
                    "41653-7",
                    "15074-8",
                    "14749-6",
                    "99504-3",
                    "105272-9",
                ),
                f"C6H12O6 with {_IUPAC}; PubChem CID 5793; {_YOUNG} 0.05551",
                "C6H12O6",
            ),
            Analyte(
                "cholesterol",
                386.664,
                None,
                (
                    "2093-3",
                    "14647-2",
                    "2085-9",
                    "14646-4",
                    "18262-6",
                    "13457-7",
                    "2089-1",
                    "43396-1",
                    "22748-8",  # LDL, moles/volume
                    "39469-2",  # LDL, moles/volume, calculated
                    "69419-0",  # LDL, moles/volume, direct assay
                ),
                f"C27H46O with {_IUPAC}; PubChem CID 5997; {_YOUNG} 0.02586; used for "
                "total, HDL, LDL and non-HDL cholesterol",
                "C27H46O",
                ("total cholesterol", "hdl cholesterol", "ldl cholesterol", "hdl", "ldl"),
            ),
            Analyte(
                "triglycerides",
                885.7,
                None,
                ("2571-8", "14927-8"),
                "clinical-laboratory convention: triglycerides expressed as triolein at "
                f"885.7 g/mol, i.e. mg/dL x 0.01129 = mmol/L; {_YOUNG} 0.01129",
                None,
                ("triglyceride",),
            ),
            Analyte(
                "creatinine",
                113.120,
                None,
                ("2160-0", "38483-4", "2161-8", "14682-9"),
                f"C4H7N3O with {_IUPAC}; PubChem CID 588; {_YOUNG} 88.4",
                "C4H7N3O",
            ),
            Analyte(
                "albumin/creatinine ratio",
                113.120,
                None,
                ("9318-7", "14959-1"),
                "urine albumin (or microalbumin) per creatinine: the molar mass is the "
                f"denominator's, creatinine C4H7N3O with {_IUPAC}, so mg/mmol x 8.84 = mg/g "
                "(KDIGO 2012 rounds 3 mg/mmol to 30 mg/g)",
                "C4H7N3O",
                ("uacr", "acr", "albumin creatinine ratio", "urine albumin creatinine ratio"),
            ),
            Analyte(
                "urea nitrogen",
                28.014,
                None,
                ("3094-0", "6299-2"),
                f"N2 (two N per urea) with {_IUPAC}: mg/dL BUN x 0.357 = mmol/L urea; "
                f"{_YOUNG} 0.3570",
                "N2",
                ("bun",),
            ),
            Analyte(
                "urea",
                60.056,
                None,
                (),
                f"CH4N2O with {_IUPAC}; PubChem CID 1176",
                "CH4N2O",
            ),
            Analyte(
                "uric acid",
                168.112,
                None,
                ("3084-1", "14933-6"),
                f"C5H4N4O3 with {_IUPAC}; PubChem CID 1175; {_YOUNG} 59.48",
                "C5H4N4O3",
                ("urate",),
            ),
            Analyte(
                "bilirubin",
                584.673,
                None,
                ("1975-2", "14631-6", "1968-7"),
                f"C33H36N4O6 with {_IUPAC}; {_YOUNG} 17.10, which laboratories also apply "
                "to direct (conjugated) bilirubin",
                "C33H36N4O6",
                ("total bilirubin",),
            ),
            Analyte(
                "calcium",
                40.078,
                2,
                ("17861-6", "49765-1", "2000-8"),
                f"Ca, {_IUPAC}; valence 2 (Ca2+); {_YOUNG} 0.2495",
                "Ca",
            ),
            Analyte(
                "magnesium",
                24.305,
                2,
                ("19123-9",),
                f"Mg, {_IUPAC}; valence 2 (Mg2+); {_YOUNG} 0.4114",
                "Mg",
            ),
            Analyte(
                "phosphate",
                30.974,
                None,
                ("2777-1",),
                f"reported as inorganic phosphorus P, {_IUPAC}; {_YOUNG} 0.3229; no single "
                "valence (HPO4 2- / H2PO4- mix), so meq is refused",
                "P",
                ("phosphorus", "inorganic phosphorus"),
            ),
            Analyte(
                "sodium",
                22.990,
                1,
                ("2951-2", "2947-0"),
                f"Na, {_IUPAC}; valence 1 (Na+): mmol/L == meq/L",
                "Na",
            ),
            Analyte(
                "potassium",
                39.098,
                1,
                ("2823-3", "6298-4"),
                f"K, {_IUPAC}; valence 1 (K+): mmol/L == meq/L",
                "K",
            ),
            Analyte(
                "chloride",
                35.45,
                1,
                ("2075-0", "2069-3"),
                f"Cl, {_IUPAC}; valence 1 (Cl-): mmol/L == meq/L",
                "Cl",
            ),
            Analyte(
                "carbon dioxide",
                None,
                1,
                ("2028-9", "20565-8", "1963-8"),
                "total CO2 is reported as bicarbonate, valence 1 (HCO3-): mmol/L == meq/L",
                None,
                ("bicarbonate", "co2", "total co2"),
            ),
            Analyte(
                "iron",
                55.845,
                None,
                ("2498-4",),
                f"Fe, {_IUPAC}; {_YOUNG} 0.1791",
                "Fe",
            ),
            Analyte(
                "hemoglobin",
                16114.5,
                None,
                ("718-7",),
                "haemoglobin monomer Hb(Fe), 16 114.5 g/mol (ICSH standard 1995, "
                "J Clin Pathol 1996;49:271-274): g/dL x 0.6206 = mmol/L",
                None,
                ("haemoglobin", "hb", "hgb"),
            ),
            Analyte(
                "hba1c",
                None,
                None,
                ("4548-4", "17856-6", "59261-8"),
                "IFCC-NGSP master equation (Hoelzel et al., Clin Chem 2004;50:166-174): "
                "HbA1c [mmol/mol] = (HbA1c [%] - 2.15) x 10.929",
                None,
                ("hemoglobin a1c", "haemoglobin a1c", "glycated hemoglobin", "a1c"),
                hba1c_master_equation=True,
            ),
        )
    }
)

#: HbA1c master equation constants [Hoelzel2004]_ (NGSP = 0.09148 IFCC + 2.152, rearranged
#: as published by the IFCC and NGSP: IFCC = (NGSP - 2.15) x 10.929).
_HBA1C_SLOPE: Final = 10.929
_HBA1C_INTERCEPT_PERCENT: Final = 2.15


def _analyte_key(text: str) -> str:
    return re.sub(r"[\s_-]+", " ", text.strip().lower())


_ANALYTE_INDEX: Final[Mapping[str, Analyte]] = MappingProxyType(
    {
        key: analyte
        for analyte in ANALYTES.values()
        for key in (
            analyte.name,
            *(_analyte_key(synonym) for synonym in analyte.synonyms),
            *analyte.loinc,
        )
    }
)


def find_analyte(name_or_loinc: str) -> Analyte | None:
    """Return the :class:`Analyte` for a name, synonym or LOINC code, or ``None``.

    Examples
    --------
    >>> find_analyte("2345-7").name
    'glucose'
    >>> find_analyte("BUN").molar_mass_g_mol
    28.014
    """
    return _ANALYTE_INDEX.get(name_or_loinc) or _ANALYTE_INDEX.get(_analyte_key(name_or_loinc))


# --------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------

_Affine = tuple[float, float]  # value_to = slope * value_from + offset


def _compose(first: _Affine, second: _Affine) -> _Affine:
    return (second[0] * first[0], second[0] * first[1] + second[1])


#: Span used to read the slope of an affine (temperature) conversion from pint: the
#: difference of two conversions 1000 units apart keeps ~16 significant digits, where
#: f(1) - f(0) would lose three or four to cancellation.
_AFFINE_SPAN: Final = 1000.0


def _dimensional(source: UcumUnit, target: UcumUnit, multiplier: Any = None) -> _Affine:
    """Affine map between two units by pint (raises pint's DimensionalityError)."""
    registry = _registry()
    source_unit = source.quantity.units
    target_unit = target.quantity.units
    source_scale = float(source.quantity.magnitude)
    target_scale = float(target.quantity.magnitude)
    if source.is_special or target.is_special:
        if multiplier is not None:
            raise _NoPath
        at_zero = float(registry.Quantity(0.0, source_unit).to(target_unit).magnitude)
        at_span = float(registry.Quantity(_AFFINE_SPAN, source_unit).to(target_unit).magnitude)
        return ((at_span - at_zero) / _AFFINE_SPAN, at_zero)
    quantity = registry.Quantity(source_scale, source_unit)
    if multiplier is not None:
        quantity = quantity * multiplier
    return (float(quantity.to(target_unit).magnitude) / target_scale, 0.0)


class _NoPath(Exception):
    """Internal: this conversion path does not apply."""


def _mentions_mole(unit: UcumUnit) -> bool:
    return "mol" in unit.atoms


def _analyte_paths(analyte: Analyte) -> list[Any]:
    registry = _registry()
    multipliers: list[Any] = []
    mass = analyte.molar_mass_g_mol
    valence = analyte.valence
    if mass is not None:
        multipliers += [registry.Quantity(1.0 / mass, "mole / gram")]
        multipliers += [registry.Quantity(mass, "gram / mole")]
    if valence is not None:
        multipliers += [registry.Quantity(float(valence), "equivalent / mole")]
        multipliers += [registry.Quantity(1.0 / valence, "mole / equivalent")]
    if mass is not None and valence is not None:
        multipliers += [registry.Quantity(valence / mass, "equivalent / gram")]
        multipliers += [registry.Quantity(mass / valence, "gram / equivalent")]
    return multipliers


def _describe(analyte: Analyte) -> str:
    known = []
    if analyte.molar_mass_g_mol is not None:
        known.append(f"molar mass {analyte.molar_mass_g_mol} g/mol")
    if analyte.valence is not None:
        known.append(f"valence {analyte.valence}")
    return ", ".join(known) or "no molar mass or valence"


def _incompatible(
    source: UcumUnit, target: UcumUnit, analyte: str | None, reason: str
) -> IncompatibleUnitsError:
    for_analyte = f" for analyte {analyte!r}" if analyte is not None else ""
    return IncompatibleUnitsError(
        f"cannot convert {source.code!r} ({source.dimension}) to {target.code!r} "
        f"({target.dimension}){for_analyte}: {reason}"
    )


def _significant(unit: UcumUnit) -> frozenset[str]:
    annotation = unit.annotation or ""
    return frozenset(a for a in _SIGNIFICANT_ANNOTATIONS if a in annotation)


def _hba1c_affine(source: UcumUnit, target: UcumUnit) -> _Affine:
    percent, ifcc = parse_ucum("%"), parse_ucum("mmol/mol")
    if _mentions_mole(source) == _mentions_mole(target):
        return _dimensional(source, target)
    if _mentions_mole(target):  # NGSP (%) -> IFCC (mmol/mol)
        to_percent = _dimensional(source, percent)
        master = (_HBA1C_SLOPE, -_HBA1C_INTERCEPT_PERCENT * _HBA1C_SLOPE)
        return _compose(_compose(to_percent, master), _dimensional(ifcc, target))
    to_ifcc = _dimensional(source, ifcc)
    inverse = (1.0 / _HBA1C_SLOPE, _HBA1C_INTERCEPT_PERCENT)
    return _compose(_compose(to_ifcc, inverse), _dimensional(percent, target))


@lru_cache(maxsize=4096)
def _affine(from_unit: str, to_unit: str, analyte: str | None, keep_annotations: bool) -> _Affine:
    import pint

    source, target = parse_ucum(from_unit), parse_ucum(to_unit)
    if keep_annotations and _significant(source) != _significant(target):
        raise _incompatible(
            source,
            target,
            analyte,
            "one value is normalised to 1.73 m2 body surface area and the other is not; "
            "converting needs the patient's body surface area",
        )
    record = None
    if analyte is not None:
        record = find_analyte(analyte)
        if record is None:
            raise UnknownAnalyteError(
                f"unknown analyte {analyte!r}: give one of {sorted(ANALYTES)} or a LOINC "
                "code listed in medtwin.record.units.ANALYTES"
            )
    failures = (pint.DimensionalityError, pint.OffsetUnitCalculusError, _NoPath)
    try:
        if record is not None and record.hba1c_master_equation:
            return _hba1c_affine(source, target)
        return _dimensional(source, target)
    except failures:
        pass
    if record is None:
        hint = (
            "mass, substance (mol) and equivalent (eq) quantities need analyte= (a name "
            "such as 'glucose' or a LOINC code such as '2345-7') to know the molar mass "
            "or valence"
            if _needs_analyte(source, target)
            else "the dimensions differ"
        )
        raise _incompatible(source, target, None, hint) from None
    for multiplier in _analyte_paths(record):
        try:
            return _dimensional(source, target, multiplier)
        except failures:
            continue
    raise _incompatible(
        source,
        target,
        analyte,
        f"no path with the analyte's {_describe(record)} (source: {record.source})",
    ) from None


def _needs_analyte(source: UcumUnit, target: UcumUnit) -> bool:
    """True when the two units differ only by mass, substance or equivalents."""
    if source.is_special or target.is_special:
        return False
    ratio = (source.quantity.units / target.quantity.units).dimensionality
    linking = {"[mass]", "[substance]", "[charge_equivalent]"}
    return bool(ratio) and set(ratio) <= linking


def convert(value: float, from_unit: str, to_unit: str, *, analyte: str | None = None) -> float:
    """Convert ``value`` from one unit to another.

    Parameters
    ----------
    value
        The number, in ``from_unit``.
    from_unit, to_unit
        UCUM codes (or documented aliases), see :func:`parse_ucum`.
    analyte
        Name, synonym or LOINC code of an analyte in :data:`ANALYTES`. Needed for mass <->
        substance (``mg/dL`` <-> ``mmol/L``), substance <-> equivalents (``mmol/L`` <->
        ``meq/L``) and HbA1c ``%`` <-> ``mmol/mol``; ignored for same-dimension conversions.

    Returns
    -------
    float
        ``value`` expressed in ``to_unit``.

    Raises
    ------
    UnknownUnitError
        When either unit cannot be parsed.
    IncompatibleUnitsError
        When no conversion exists (the message names both units and the analyte); also
        between a value per 1.73 m2 body surface area and one that is not.
    UnknownAnalyteError
        When ``analyte`` is neither a known name nor a known LOINC code.

    Notes
    -----
    Without ``analyte``, ``%`` -> ``mmol/mol`` is the plain fraction conversion (x10);
    HbA1c needs ``analyte='hba1c'`` (or its LOINC code) to apply the IFCC master equation
    [Hoelzel2004]_: ``IFCC = (NGSP - 2.15) x 10.929``.

    Examples
    --------
    >>> round(convert(200, "mg/dL", "mmol/L", analyte="2093-3"), 3)
    5.172
    >>> round(convert(120, "mm[Hg]", "kPa"), 3)
    15.999
    >>> round(convert(6.5, "%", "mmol/mol", analyte="hba1c"), 1)
    47.5
    """
    slope, offset = _affine(from_unit, to_unit, analyte, True)
    return slope * value + offset


def convert_many(
    values: Iterable[float], from_unit: str, to_unit: str, *, analyte: str | None = None
) -> list[float]:
    """Convert many values between the same two units (one factor look-up for all).

    Parameters and errors are those of :func:`convert`.

    Examples
    --------
    >>> [round(v, 2) for v in convert_many([70, 72.5], "[in_i]", "cm")]
    [177.8, 184.15]
    """
    slope, offset = _affine(from_unit, to_unit, analyte, True)
    return [slope * value + offset for value in values]


# --------------------------------------------------------------------------------------
# Normalisation to the store's canonical units
# --------------------------------------------------------------------------------------

#: medtwin's canonical UCUM unit per LOINC code: US conventional units, as Synthea and
#: US Core write them (they agree with ``record/data/loinc.csv``; a test checks this).
CANONICAL_UNITS: Final[Mapping[str, str]] = MappingProxyType(
    {
        # vital signs
        "8310-5": "Cel",  # body temperature
        "8331-1": "Cel",  # oral temperature
        "29463-7": "kg",  # body weight
        "3141-9": "kg",  # body weight measured
        "8302-2": "cm",  # body height
        "8306-3": "cm",  # body height lying
        "9843-4": "cm",  # head circumference
        "39156-5": "kg/m2",  # BMI
        "8867-4": "/min",  # heart rate
        "9279-1": "/min",  # respiratory rate
        "59408-5": "%",  # SpO2 by pulse oximetry
        "2708-6": "%",  # SaO2
        "8480-6": "mm[Hg]",  # systolic BP
        "8462-4": "mm[Hg]",  # diastolic BP
        "8478-0": "mm[Hg]",  # mean BP
        # wearables (Apple Health, FIT)
        "40443-4": "/min",  # resting heart rate
        "80404-7": "ms",  # heart rate variability (SDNN)
        "41981-2": "kcal",  # calories burned
        "41982-0": "%",  # body fat
        "55423-8": "{steps}",  # steps
        # glucose
        "2339-0": "mg/dL",
        "2345-7": "mg/dL",
        "1558-6": "mg/dL",
        "41653-7": "mg/dL",
        "15074-8": "mmol/L",
        "14749-6": "mmol/L",
        # lipids
        "2093-3": "mg/dL",
        "2085-9": "mg/dL",
        "14647-2": "mmol/L",  # total cholesterol, moles/volume (European and UK laboratories)
        "14646-4": "mmol/L",  # HDL cholesterol, moles/volume
        "22748-8": "mmol/L",  # LDL cholesterol, moles/volume
        "18262-6": "mg/dL",
        "13457-7": "mg/dL",
        "2089-1": "mg/dL",
        "2571-8": "mg/dL",
        # kidney
        "2160-0": "mg/dL",
        "38483-4": "mg/dL",
        "14682-9": "umol/L",
        "3094-0": "mg/dL",
        "6299-2": "mg/dL",
        "33914-3": "mL/min/{1.73_m2}",
        "62238-1": "mL/min/{1.73_m2}",
        "98979-8": "mL/min/{1.73_m2}",
        "9318-7": "mg/g",  # urine albumin/creatinine (UK and European laboratories: mg/mmol)
        "14959-1": "mg/g",  # urine microalbumin/creatinine
        # electrolytes and minerals
        "2951-2": "mmol/L",
        "2947-0": "mmol/L",
        "2823-3": "mmol/L",
        "6298-4": "mmol/L",
        "2075-0": "mmol/L",
        "2069-3": "mmol/L",
        "2028-9": "mmol/L",
        "20565-8": "mmol/L",
        "17861-6": "mg/dL",
        "49765-1": "mg/dL",
        # other chemistry
        "1975-2": "mg/dL",
        # haematology
        "718-7": "g/dL",
        "4548-4": "%",
        "17856-6": "%",
        "59261-8": "mmol/mol",
        "6690-2": "10*3/uL",
        "777-3": "10*3/uL",
        "789-8": "10*6/uL",
    }
)


@dataclass(frozen=True, slots=True)
class Normalised:
    """A value in medtwin's canonical unit, with what the source said.

    Attributes
    ----------
    value
        The value in ``unit``.
    unit
        The canonical UCUM unit for the LOINC code (:data:`CANONICAL_UNITS`), else the
        parsed canonical spelling of the source unit.
    original_value, original_unit
        Exactly what the source gave.
    """

    value: float
    unit: str
    original_value: float
    original_unit: str


def normalise(value: float, unit: str, *, code: str | None = None) -> Normalised:
    """Express a measured value in medtwin's canonical unit for its LOINC ``code``.

    Parameters
    ----------
    value
        The number as the source gave it.
    unit
        Its unit (UCUM code or documented alias).
    code
        The LOINC code of the observation. When :data:`CANONICAL_UNITS` lists it, the value
        is converted to that unit (with the code as analyte, so ``mmol/L`` glucose becomes
        ``mg/dL``); otherwise the unit is only re-spelled canonically.

    Returns
    -------
    Normalised
        The converted value and unit, plus the original value and unit.

    Raises
    ------
    UnknownUnitError
        When ``unit`` cannot be parsed.
    IncompatibleUnitsError
        When ``unit`` cannot express the quantity that ``code`` names (e.g. ``kg`` for a
        heart rate); the ingest layer quarantines such a value with this message.

    Notes
    -----
    The LOINC code fixes the meaning of the value, so a unit written without the
    ``{1.73_m2}`` annotation for an eGFR code (Synthea writes ``mL/min`` for 33914-3) is
    read as the per-1.73 m2 value the code names.

    Examples
    --------
    >>> round(normalise(98.6, "[degF]", code="8310-5").value, 9)
    37.0
    >>> normalise(5.5, "mmol/L", code="2345-7").unit
    'mg/dL'
    >>> normalise(12, "ml").unit
    'mL'
    """
    slope, offset, target = _normaliser(unit, code)
    return Normalised(slope * value + offset, target, value, unit)


@lru_cache(maxsize=8192)
def _normaliser(unit: str, code: str | None) -> tuple[float, float, str]:
    """Slope, offset and canonical unit for one (unit, LOINC code) pair, cached."""
    target = CANONICAL_UNITS.get(code) if code is not None else None
    if target is None:
        return (1.0, 0.0, parse_ucum(unit).canonical)
    analyte = code if code in _ANALYTE_INDEX else None
    try:
        slope, offset = _affine(unit, target, analyte, False)
    except IncompatibleUnitsError as error:
        raise IncompatibleUnitsError(
            f"LOINC {code} is stored in {target!r}: {error}. Fix the unit at the source or "
            "map the observation to a LOINC code that matches its unit."
        ) from None
    return (slope, offset, target)
