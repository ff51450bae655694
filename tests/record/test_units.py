"""Tests for medtwin.record.units: UCUM parsing, conversion and normalisation.

Expected values are published ones: UCUM's own definitions (ucum-essence.xml), the SI
conversion factors of Young 1987 (Ann Intern Med 106:114-129), the IFCC-NGSP HbA1c master
equation (Hoelzel et al., Clin Chem 2004) and textbook identities (98.6 degF = 37 Cel).
Every unit string in the shared test data (``MEDTWIN_SHARED_DATA``, default
``<repo>/../shared/data``) must parse.
"""

from __future__ import annotations

import csv
import math
import re
import subprocess
import sys
import timeit
from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medtwin.record import units
from medtwin.record.units import (
    ANALYTES,
    ATOM_ALIASES,
    ATOMIC_WEIGHTS,
    CANONICAL_UNITS,
    STRING_ALIASES,
    IncompatibleUnitsError,
    Normalised,
    UnknownAnalyteError,
    UnknownUnitError,
    convert,
    convert_many,
    find_analyte,
    normalise,
    parse_ucum,
)

REPO = Path(__file__).resolve().parents[2]
UCUM_SYSTEM = "http://unitsofmeasure.org"


# --------------------------------------------------------------------------------------
# Shared data: every unit string in it
# --------------------------------------------------------------------------------------


from conftest import shared_data_dir  # noqa: E402


def _quantities(node: Any) -> Iterator[tuple[str | None, str | None]]:
    """(unit display, UCUM code) of every Quantity-like object in a FHIR resource."""
    if isinstance(node, dict):
        unit, code, system = node.get("unit"), node.get("code"), node.get("system")
        ucum_code = code if system == UCUM_SYSTEM and isinstance(code, str) else None
        if isinstance(unit, str) or ucum_code is not None:
            yield (unit if isinstance(unit, str) else None, ucum_code)
        for value in node.values():
            yield from _quantities(value)
    elif isinstance(node, list):
        for value in node:
            yield from _quantities(value)


def _obx6_units(path: Path) -> Iterator[str]:
    """OBX-6 (units, a CWE ``code^text^system``) of an HL7 v2 file: the code, else the text."""
    field_sep, component_sep = "|", "^"
    for segment in re.split(r"\r\n|\r|\n", path.read_text(encoding="utf-8", errors="replace")):
        if segment.startswith("MSH") and len(segment) > 4:
            field_sep, component_sep = segment[3], segment[4]
        elif segment.startswith("OBX"):
            fields = segment.split(field_sep)
            if len(fields) > 6 and fields[6]:
                components = fields[6].split(component_sep)
                text = components[1] if len(components) > 1 else ""
                if components[0] or text:
                    yield components[0] or text


@cache
def _collect(root: Path) -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """Unit strings -> files they occur in; and (display, UCUM code) pairs."""
    found: dict[str, set[str]] = defaultdict(set)
    pairs: set[tuple[str, str]] = set()

    def add(resource: Any, where: str) -> None:
        for unit, code in _quantities(resource):
            for text in (unit, code):
                if text is not None:
                    found[text].add(where)
            if unit is not None and code is not None:
                pairs.add((unit, code))

    json_files = sorted((root / "fhir").rglob("*.json"))
    json_files += sorted((root / "wearables" / "hl7-phd").glob("*.json"))
    for path in json_files:
        add(orjson.loads(path.read_bytes()), path.name)
    for path in sorted((root / "fhir").rglob("*.ndjson")):
        for line in path.read_bytes().splitlines():
            if line.strip():
                add(orjson.loads(line), path.name)
    for path in sorted((root / "hl7v2").glob("*.hl7")):
        for unit in _obx6_units(path):
            found[unit].add(path.name)
    return dict(found), pairs


@pytest.fixture(scope="module")
def shared_units() -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    return _collect(shared_data_dir())


def test_collector_sees_the_data(
    shared_units: tuple[dict[str, set[str]], set[tuple[str, str]]],
) -> None:
    found, pairs = shared_units
    # One string from each kind of source, so the parse test below cannot pass vacuously.
    for expected in ("mg/dL", "mm[Hg]", "10*3/uL", "mL/min/{1.73_m2}", "kg/m2"):  # Synthea
        assert expected in found
    assert "{beat}/min" in found  # US Core / HL7 PHD
    assert "ug/dL" in found and "iU/mL" in found  # HL7 v2 OBX-6
    assert "Day" in found  # bulk NDJSON (MedicationRequest.daysSupply display)
    assert ("mmHg", "mm[Hg]") in pairs


def test_every_unit_string_in_the_shared_data_parses(
    shared_units: tuple[dict[str, set[str]], set[tuple[str, str]]],
) -> None:
    found, _ = shared_units
    failures = []
    for text, files in sorted(found.items()):
        try:
            parse_ucum(text)
        except UnknownUnitError as error:
            failures.append(f"{text!r} (in {sorted(files)[:3]}): {error}")
    assert not failures, "\n".join(failures)


#: Display texts that are valid UCUM with another meaning than the code beside them.
#: "C" is the coulomb in UCUM; as a display next to code "Cel" it means degree Celsius,
#: which is why ingest must read Quantity.code, not Quantity.unit, when both are given.
DISPLAYS_THAT_ARE_OTHER_UCUM = {("C", "Cel")}


def test_display_text_means_the_same_as_the_ucum_code(
    shared_units: tuple[dict[str, set[str]], set[tuple[str, str]]],
) -> None:
    _, pairs = shared_units
    mismatches = [
        (display, code, parse_ucum(display).dimension, parse_ucum(code).dimension)
        for display, code in sorted(pairs)
        if (display, code) not in DISPLAYS_THAT_ARE_OTHER_UCUM
        and parse_ucum(display).dimension != parse_ucum(code).dimension
    ]
    assert not mismatches
    for display, code in pairs - DISPLAYS_THAT_ARE_OTHER_UCUM:
        assert convert(1.0, display, code) == pytest.approx(1.0), (display, code)


def test_canonical_spelling_reparses_to_itself(
    shared_units: tuple[dict[str, set[str]], set[tuple[str, str]]],
) -> None:
    found, _ = shared_units
    for text in found:
        unit = parse_ucum(text)
        again = parse_ucum(unit.canonical)
        assert again.is_ucum, text
        assert again.canonical == unit.canonical
        assert again.dimension == unit.dimension


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------

LENGTH3 = "[length] ** 3"


@pytest.mark.parametrize(
    ("code", "canonical", "dimension"),
    [
        ("mg/dL", "mg/dL", f"[mass] / {LENGTH3}"),
        ("10*3/uL", "10*3/uL", f"1 / {LENGTH3}"),
        ("10*9/L", "10*9/L", f"1 / {LENGTH3}"),
        ("10*12/L", "10*12/L", f"1 / {LENGTH3}"),
        ("10^3/uL", "10*3/uL", f"1 / {LENGTH3}"),
        ("mm[Hg]", "mm[Hg]", "[mass] / [length] / [time] ** 2"),
        ("cm[H2O]", "cm[H2O]", "[mass] / [length] / [time] ** 2"),
        ("/min", "/min", "1 / [time]"),
        ("{beats}/min", "{beats}/min", "1 / [time]"),
        ("{score}", "{score}", "dimensionless"),
        ("{#}", "{#}", "dimensionless"),
        ("1", "1", "dimensionless"),
        ("%", "%", "dimensionless"),
        ("Cel", "Cel", "[temperature]"),
        ("[degF]", "[degF]", "[temperature]"),
        ("[lb_av]", "[lb_av]", "[mass]"),
        ("[in_i]", "[in_i]", "[length]"),
        ("[ft_i]", "[ft_i]", "[length]"),
        ("[oz_av]", "[oz_av]", "[mass]"),
        ("kg/m2", "kg/m2", "[mass] / [length] ** 2"),
        ("mmol/L", "mmol/L", f"[substance] / {LENGTH3}"),
        ("g/dL", "g/dL", f"[mass] / {LENGTH3}"),
        ("mL/min/{1.73_m2}", "mL/min/{1.73_m2}", f"{LENGTH3} / [time]"),
        ("mL/min/1.73.m2", "mL/min/{1.73_m2}", f"{LENGTH3} / [time]"),
        ("[IU]/L", "[IU]/L", f"[international_unit] / {LENGTH3}"),
        ("U/L", "U/L", f"[substance] / [time] / {LENGTH3}"),
        ("meq/L", "meq/L", f"[charge_equivalent] / {LENGTH3}"),
        ("meq", "meq", "[charge_equivalent]"),
        ("ng/mL", "ng/mL", f"[mass] / {LENGTH3}"),
        ("pg/mL", "pg/mL", f"[mass] / {LENGTH3}"),
        ("fL", "fL", LENGTH3),
        ("pg", "pg", "[mass]"),
        ("L/min", "L/min", f"{LENGTH3} / [time]"),
        ("mosm/kg", "mosm/kg", "[osmole] / [mass]"),
        ("s", "s", "[time]"),
        ("min", "min", "[time]"),
        ("h", "h", "[time]"),
        ("d", "d", "[time]"),
        ("wk", "wk", "[time]"),
        ("mo", "mo", "[time]"),
        ("a", "a", "[time]"),
        ("[ppth]", "[ppth]", "dimensionless"),
        ("[ppm]", "[ppm]", "dimensionless"),
        ("g.m", "g.m", "[length] * [mass]"),
        ("m2", "m2", "[length] ** 2"),
        ("s-1", "s-1", "1 / [time]"),
        ("m+2", "m2", "[length] ** 2"),
        ("m/(6.min)", "m/(6.min)", "[length] / [time]"),
        ("(kg.m)/s2", "(kg.m)/s2", "[length] * [mass] / [time] ** 2"),
        ("mg{total}/dL", "mg{total}/dL", f"[mass] / {LENGTH3}"),
        ("ml", "mL", LENGTH3),
        ("ug/dl", "ug/dL", f"[mass] / {LENGTH3}"),
        ("[pH]", "[pH]", "[acidity]"),
        ("Cel{oral}", "Cel{oral}", "[temperature]"),
    ],
)
def test_parse(code: str, canonical: str, dimension: str) -> None:
    unit = parse_ucum(code)
    assert unit.code == code
    assert unit.canonical == canonical
    assert set(unit.dimension.replace("*", " ").split()) == set(dimension.replace("*", " ").split())
    assert parse_ucum(code) is unit  # cached


def test_parse_fields() -> None:
    egfr = parse_ucum("mL/min/{1.73_m2}")
    assert egfr.annotation == "{1.73_m2}"
    assert egfr.atoms == ("L", "min")
    assert egfr.is_ucum and not egfr.is_arbitrary and not egfr.is_special
    assert parse_ucum("mL/min/1.73.m2").is_ucum is False  # rewritten: see the module notes
    assert parse_ucum("{score}").is_arbitrary
    assert parse_ucum("[IU]/L").is_arbitrary
    assert not parse_ucum("1").is_arbitrary
    assert parse_ucum("Cel").is_special and parse_ucum("[degF]").is_special
    assert parse_ucum("mg/dL").pint_expr == "milligram / deciliter"
    assert parse_ucum("10*3/uL").pint_expr == "1000.0 / microliter"
    assert parse_ucum("10*3/uL").quantity.magnitude == 1000.0
    assert parse_ucum("{beats}/min").annotation == "{beats}"
    assert parse_ucum("mg").annotation is None


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("mmHg", "mm[Hg]"),
        ("mcg", "ug"),
        ("mcg/dL", "ug/dL"),
        ("bpm", "{beats}/min"),
        ("degF", "[degF]"),
        ("lbs", "[lb_av]"),
        ("in", "[in_i]"),
        ("in2", "[in_i]2"),
        ("iU/mL", "[iU]/mL"),
        ("mIU/L", "m[IU]/L"),
        ("mEq/L", "meq/L"),
        ("(score)", "{score}"),
        ("{beat}/min}", "{beat}/min"),
        ("{unitless} 1", "1"),
        ("%O2", "%"),
        ("breaths per minute", "{breaths}/min"),
        ("beats/min", "{beats}/min"),
        ("Day", "d"),
        ("yr", "a"),
        ("pack-years", "{pack-years}"),
        ("score", "{score}"),
        ("kg/m^2", "kg/m2"),
        ("kg/m²", "kg/m2"),
        ("µg/L", "ug/L"),
        (" mg/dL ", "mg/dL"),
        ("mL/min/1.73m2", "mL/min/{1.73_m2}"),
        ("mL/min/1.73 m2", "mL/min/{1.73_m2}"),
        ("mL/min/(1.73.m2)", "mL/min/{1.73_m2}"),
    ],
)
def test_aliases(alias: str, canonical: str) -> None:
    unit = parse_ucum(alias)
    assert unit.canonical == canonical
    assert unit.is_ucum is False
    assert parse_ucum(canonical).is_ucum


def test_alias_tables_never_shadow_ucum() -> None:
    for alias, target in [*STRING_ALIASES.items(), *ATOM_ALIASES.items()]:
        assert parse_ucum(alias).is_ucum is False, f"{alias!r} is valid UCUM: drop the alias"
        assert parse_ucum(target).is_ucum, f"alias target {target!r} is not UCUM"
        assert parse_ucum(alias).dimension == parse_ucum(target).dimension


@pytest.mark.parametrize(
    "text",
    ["C", "ft", "F", "min", "l"],
)
def test_ucum_symbols_keep_their_ucum_meaning(text: str) -> None:
    # C = coulomb, ft = femtotonne, F = farad: valid UCUM, so no alias applies.
    assert parse_ucum(text).is_ucum


@pytest.mark.parametrize(
    ("code", "fragments"),
    [
        ("mg/dX", ["'mg/dX'", "'dX' is not a UCUM unit", "position 3"]),
        ("", ["''", "empty", "'1'"]),
        ("mg//dL", ["'mg//dL'", "missing"]),
        ("mg/", ["'mg/'", "missing"]),
        ("(mg", ["'(mg'", "never closed"]),
        ("mg)", ["'mg)'", "unbalanced ')'"]),
        ("mg{", ["never closed"]),
        ("{a{b}}", ["nested"]),
        ("[lb_av", ["'[' is never closed"]),
        ("kmin", ["'min' is not a metric unit"]),
        ("k[degF]", ["not a metric unit"]),
        ("Cel/h", ["special unit 'Cel'", "cannot be combined"]),
        ("/Cel", ["special unit 'Cel'", "divisor"]),
        ("mCel", ["special unit 'Cel'", "prefix"]),
        ("Cel2", ["special unit 'Cel'", "exponent"]),
        ("mg dL", ["whitespace"]),
        ("MG/DL", ["'MG' is not a UCUM unit", "case-sensitive"]),
        ("m0", ["exponent 0"]),
        ("furlongs", ["'furlongs' is not a UCUM unit"]),
    ],
)
def test_unknown_units(code: str, fragments: list[str]) -> None:
    with pytest.raises(UnknownUnitError) as info:
        parse_ucum(code)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        parse_ucum(None)  # type: ignore[arg-type]


def test_suggestion_for_a_near_miss() -> None:
    with pytest.raises(UnknownUnitError, match="did you mean"):
        parse_ucum("mmHG")


UCUM_PIECES = st.sampled_from(
    [*"mgLdu/.()[]{}*^0123456789-+ %_'kKCelHgIUa\n", "10*", "mm[Hg]", "{x}", "Cel", "[IU]"]
)


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(st.text(max_size=12), st.lists(UCUM_PIECES, max_size=8).map("".join)))
def test_any_text_parses_or_raises_unknown_unit(text: str) -> None:
    try:
        unit = parse_ucum(text)
    except UnknownUnitError as error:
        assert repr(text) in str(error)
    else:
        assert parse_ucum(unit.canonical).canonical == unit.canonical


# --------------------------------------------------------------------------------------
# UCUM definitions (ucum-essence.xml) reproduced through pint
# --------------------------------------------------------------------------------------

UCUM_PREFIXES = {
    "Y": 1e24,
    "Z": 1e21,
    "E": 1e18,
    "P": 1e15,
    "T": 1e12,
    "G": 1e9,
    "M": 1e6,
    "k": 1e3,
    "h": 1e2,
    "da": 1e1,
    "d": 1e-1,
    "c": 1e-2,
    "m": 1e-3,
    "u": 1e-6,
    "n": 1e-9,
    "p": 1e-12,
    "f": 1e-15,
    "a": 1e-18,
    "z": 1e-21,
    "y": 1e-24,
}


def test_every_prefix_on_every_metric_atom() -> None:
    metric = [
        code
        for code, atom in units._ATOMS.items()
        if atom.flags & units._METRIC and not atom.flags & units._SPECIAL
    ]
    assert {"g", "L", "mol", "eq", "osm", "U", "[IU]", "m[Hg]", "Pa"} <= set(metric)
    for atom in metric:
        for prefix, value in UCUM_PREFIXES.items():
            prefixed = f"{prefix}{atom}"
            if prefixed in units._ATOMS:
                continue  # an atom of its own (e.g. 'cd', 'Pa'): UCUM reads it so
            assert math.isclose(convert(1.0, prefixed, atom), value, rel_tol=1e-12), prefixed


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (1, "[lb_av]", "g", 453.59237),
        (1, "[gr]", "mg", 64.79891),
        (1, "[lb_av]", "[gr]", 7000),
        (1, "[oz_av]", "[lb_av]", 1 / 16),
        (1, "[stone_av]", "[lb_av]", 14),
        (1, "[in_i]", "cm", 2.54),
        (1, "[ft_i]", "[in_i]", 12),
        (1, "[yd_i]", "[ft_i]", 3),
        (1, "[mi_i]", "[ft_i]", 5280),
        (1, "[gal_us]", "[in_i]3", 231),
        (1, "[qt_us]", "[gal_us]", 1 / 4),
        (1, "[pt_us]", "[qt_us]", 1 / 2),
        (1, "[foz_us]", "[pt_us]", 1 / 16),
        (1, "[tbs_us]", "[foz_us]", 1 / 2),
        (1, "[tsp_us]", "[tbs_us]", 1 / 3),
        (1, "[cup_us]", "[tbs_us]", 16),
        (1, "mm[Hg]", "Pa", 133.3220),
        (1, "cm[H2O]", "Pa", 98.0665),
        (1, "[in_i'Hg]", "Pa", 133.3220 * 25.4),
        (1, "atm", "Pa", 101325),
        (1, "bar", "Pa", 1e5),
        (1, "[psi]", "Pa", 6894.757293168361),
        (1, "a", "d", 365.25),
        (1, "a_g", "d", 365.2425),
        (1, "mo", "d", 365.25 / 12),
        (1, "mo_g", "d", 365.2425 / 12),
        (1, "wk", "d", 7),
        (1, "d", "h", 24),
        (1, "h", "min", 60),
        (1, "min", "s", 60),
        (1, "cal", "J", 4.184),
        (1, "[Cal]", "kcal", 1),
        (1, "cal_IT", "J", 4.1868),
        (1, "U", "umol/min", 1),
        (1, "kat", "mol/s", 1),
        (1, "[MET]", "mL/min/kg", 3.5),
        (1, "%", "1", 1e-2),
        (1, "[ppth]", "1", 1e-3),
        (1, "[ppm]", "1", 1e-6),
        (1, "[ppb]", "1", 1e-9),
        (1, "g%", "g/dL", 1),
        (1, "[LPF]", "[HPF]", 100),
        (1, "L", "dm3", 1),
        (1, "l", "L", 1),
        (1, "ar", "m2", 100),
        (1, "t", "kg", 1000),
        (1, "Ao", "nm", 0.1),
        (1, "Ci", "Bq", 3.7e10),
        (1, "[IU]", "[iU]", 1),
        (0, "Cel", "K", 273.15),
        (32, "[degF]", "Cel", 0),
        (212, "[degF]", "Cel", 100),
    ],
)
def test_ucum_definitions(value: float, source: str, target: str, expected: float) -> None:
    assert math.isclose(convert(value, source, target), expected, rel_tol=1e-9, abs_tol=1e-12)


# --------------------------------------------------------------------------------------
# Published conversions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "source", "target", "analyte", "expected", "tolerance"),
    [
        (100, "mg/dL", "mmol/L", "glucose", 5.551, 0.01),
        (100, "mg/dL", "mmol/L", "2345-7", 5.551, 0.01),
        (5.551, "mmol/L", "mg/dL", "15074-8", 100, 0.1),
        (200, "mg/dL", "mmol/L", "cholesterol", 5.172, 0.01),
        (200, "mg/dL", "mmol/L", "2093-3", 5.172, 0.01),
        (1, "mg/dL", "umol/L", "creatinine", 88.4, 0.05),
        (1, "mg/dL", "umol/L", "38483-4", 88.4, 0.05),
        (150, "mg/dL", "mmol/L", "triglycerides", 1.694, 0.002),
        (10, "mg/dL", "mmol/L", "urea nitrogen", 3.570, 0.002),
        (1, "mg/dL", "umol/L", "bilirubin", 17.10, 0.01),
        (10, "mg/dL", "mmol/L", "calcium", 2.495, 0.001),
        (10, "mg/dL", "meq/L", "calcium", 4.990, 0.002),
        (2.5, "mmol/L", "meq/L", "calcium", 5.0, 1e-9),
        (140, "mmol/L", "meq/L", "sodium", 140, 1e-9),
        (4.0, "meq/L", "mmol/L", "potassium", 4.0, 1e-9),
        (14, "g/dL", "mmol/L", "hemoglobin", 8.688, 0.002),
        # urine albumin/creatinine: 1 mg/mmol = 8.84 mg/g (creatinine 113.12 g/mol)
        (1, "mg/mmol", "mg/g", "albumin/creatinine ratio", 8.84, 0.001),
        (3, "mg/mmol", "mg/g", "9318-7", 26.52, 0.01),
        (98.6, "[degF]", "Cel", None, 37.0, 1e-9),
        (150, "[lb_av]", "kg", None, 68.039, 0.001),
        (70, "[in_i]", "cm", None, 177.8, 1e-9),
        (120, "mm[Hg]", "kPa", None, 15.999, 0.001),
        (5.2, "10*3/uL", "10*9/L", None, 5.2, 1e-12),
        (4.5, "10*6/uL", "10*12/L", None, 4.5, 1e-12),
        (72, "{beats}/min", "/min", None, 72, 1e-12),
        (1, "/min", "Hz", None, 1 / 60, 1e-15),
    ],
)
def test_published_conversions(
    value: float,
    source: str,
    target: str,
    analyte: str | None,
    expected: float,
    tolerance: float,
) -> None:
    assert convert(value, source, target, analyte=analyte) == pytest.approx(expected, abs=tolerance)


#: SI conversion factors (conventional -> SI) of Young 1987, Ann Intern Med 106:114-129, as
#: reprinted in the AMA/JAMA "SI units for clinical data" table.
YOUNG_1987 = [
    ("glucose", "mg/dL", "mmol/L", 0.05551),
    ("cholesterol", "mg/dL", "mmol/L", 0.02586),
    ("triglycerides", "mg/dL", "mmol/L", 0.01129),
    ("creatinine", "mg/dL", "umol/L", 88.4),
    ("urea nitrogen", "mg/dL", "mmol/L", 0.3570),
    ("uric acid", "mg/dL", "umol/L", 59.48),
    ("bilirubin", "mg/dL", "umol/L", 17.10),
    ("calcium", "mg/dL", "mmol/L", 0.2495),
    ("magnesium", "mg/dL", "mmol/L", 0.4114),
    ("phosphate", "mg/dL", "mmol/L", 0.3229),
    ("iron", "ug/dL", "umol/L", 0.1791),
    # Hb(Fe) monomer convention (ICSH 1995): 10 / 16 114.5 g/mol.
    ("hemoglobin", "g/dL", "mmol/L", 0.6206),
]


@pytest.mark.parametrize(("analyte", "source", "target", "factor"), YOUNG_1987)
def test_molar_masses_reproduce_clinical_si_factors(
    analyte: str, source: str, target: str, factor: float
) -> None:
    # The published factors carry four significant figures.
    assert convert(1.0, source, target, analyte=analyte) == pytest.approx(factor, rel=5e-4)


def test_molar_masses_follow_from_formula_and_atomic_weights() -> None:
    for analyte in ANALYTES.values():
        if analyte.formula is None:
            continue
        mass = sum(
            ATOMIC_WEIGHTS[element] * (int(count) if count else 1)
            for element, count in re.findall(r"([A-Z][a-z]?)(\d*)", analyte.formula)
        )
        assert analyte.molar_mass_g_mol == pytest.approx(mass, abs=6e-4), analyte.name
        assert analyte.source


def test_every_analyte_cites_a_source_and_has_unique_loinc_codes() -> None:
    seen: dict[str, str] = {}
    for analyte in ANALYTES.values():
        assert analyte.source
        for code in analyte.loinc:
            assert re.fullmatch(r"\d{1,7}-\d", code), code
            assert code not in seen, f"{code} in {seen.get(code)} and {analyte.name}"
            seen[code] = analyte.name
            assert find_analyte(code) is analyte


def test_find_analyte() -> None:
    assert find_analyte("Glucose") is ANALYTES["glucose"]
    assert find_analyte("BUN") is ANALYTES["urea nitrogen"]
    assert find_analyte("HDL cholesterol") is ANALYTES["cholesterol"]
    assert find_analyte("hemoglobin_a1c") is ANALYTES["hba1c"]
    assert find_analyte("vitamin q") is None


@pytest.mark.parametrize(
    ("percent", "mmol_mol"),
    # IFCC/NGSP conversion table (ngsp.org): 6.0 % = 42, 6.5 % = 48, 7.0 % = 53,
    # 8.0 % = 64, 9.0 % = 75, 10.0 % = 86 mmol/mol.
    [(6.0, 42), (6.5, 48), (7.0, 53), (8.0, 64), (9.0, 75), (10.0, 86)],
)
def test_hba1c_master_equation(percent: float, mmol_mol: float) -> None:
    assert convert(percent, "%", "mmol/mol", analyte="hba1c") == pytest.approx(mmol_mol, abs=1)
    assert convert(percent, "%", "mmol/mol", analyte="4548-4") == pytest.approx(
        (percent - 2.15) * 10.929
    )
    assert convert(mmol_mol, "mmol/mol", "%", analyte="59261-8") == pytest.approx(percent, abs=0.1)
    # Without the analyte, % -> mmol/mol is the plain fraction conversion.
    assert convert(percent, "%", "mmol/mol") == pytest.approx(percent * 10)


def test_convert_many_matches_convert() -> None:
    values = [0.0, 1.0, 98.6, 104.0]
    assert convert_many(values, "[degF]", "Cel") == [convert(v, "[degF]", "Cel") for v in values]
    assert convert_many((100, 126), "mg/dL", "mmol/L", analyte="glucose") == [
        convert(100, "mg/dL", "mmol/L", analyte="glucose"),
        convert(126, "mg/dL", "mmol/L", analyte="glucose"),
    ]
    assert convert_many([], "kg", "g") == []


# --------------------------------------------------------------------------------------
# Conversion errors
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "analyte", "fragments"),
    [
        ("mg/dL", "mmol/L", None, ["'mg/dL'", "'mmol/L'", "analyte="]),
        ("kg", "cm", None, ["'kg'", "'cm'", "the dimensions differ"]),
        ("mg/dL", "kg", "glucose", ["'mg/dL'", "'kg'", "'glucose'", "180.156 g/mol"]),
        ("mg/dL", "meq/L", "phosphate", ["'phosphate'", "meq is refused"]),
        ("mg/dL", "mmol/L", "hemoglobin a1c", ["'hemoglobin a1c'"]),
        ("[IU]/L", "U/L", None, ["'[IU]/L'", "'U/L'"]),
        ("[IU]", "[arb'U]", None, ["the dimensions differ"]),
        ("Cel", "mg", "glucose", ["'Cel'", "'mg'", "'glucose'"]),
        ("mL/min/{1.73_m2}", "mL/min", None, ["1.73 m2", "body surface area"]),
        ("%", "mg/dL", "hba1c", ["'%'", "'mg/dL'", "'hba1c'"]),
    ],
)
def test_incompatible_conversions(
    source: str, target: str, analyte: str | None, fragments: list[str]
) -> None:
    with pytest.raises(IncompatibleUnitsError) as info:
        convert(1.0, source, target, analyte=analyte)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unknown_analyte() -> None:
    with pytest.raises(UnknownAnalyteError, match=r"unknown analyte 'glucsoe'.*glucose"):
        convert(1.0, "mg/dL", "mmol/L", analyte="glucsoe")


def test_unknown_unit_in_convert() -> None:
    with pytest.raises(UnknownUnitError, match="'mg/dX'"):
        convert(1.0, "mg/dX", "g/L")


# --------------------------------------------------------------------------------------
# Round trips (Hypothesis)
# --------------------------------------------------------------------------------------

#: Groups of mutually convertible units, with the analyte the conversion needs.
LINEAR_GROUPS: list[tuple[str | None, list[str]]] = [
    (None, ["kg", "g", "mg", "ug", "[lb_av]", "[oz_av]", "[gr]"]),
    (None, ["m", "cm", "mm", "[in_i]", "[ft_i]", "[yd_i]"]),
    (None, ["mm[Hg]", "kPa", "Pa", "cm[H2O]", "[psi]", "atm"]),
    (None, ["mg/dL", "g/L", "ug/mL", "mg/L", "g/dL", "ng/mL", "pg/mL"]),
    (None, ["10*3/uL", "10*9/L", "/uL", "10*6/mL"]),
    (None, ["/min", "/s", "/h", "{beats}/min", "Hz"]),
    (None, ["s", "min", "h", "d", "wk", "mo", "a"]),
    (None, ["L", "mL", "dL", "uL", "fL", "[foz_us]", "[cup_us]"]),
    (None, ["L/min", "mL/min", "mL/s"]),
    (None, ["%", "1", "[ppth]", "[ppm]", "mg/g"]),
    (None, ["[IU]/L", "m[IU]/mL", "u[IU]/mL"]),
    ("glucose", ["mg/dL", "mmol/L", "g/L", "umol/L", "mg/L"]),
    ("creatinine", ["mg/dL", "umol/L", "mmol/L"]),
    ("cholesterol", ["mg/dL", "mmol/L"]),
    ("triglycerides", ["mg/dL", "mmol/L"]),
    ("calcium", ["mg/dL", "mmol/L", "meq/L"]),
    ("sodium", ["mmol/L", "meq/L", "mg/dL"]),
    ("hemoglobin", ["g/dL", "mmol/L", "g/L"]),
    ("2345-7", ["mg/dL", "mmol/L"]),
]
AFFINE_GROUPS: list[tuple[str | None, list[str]]] = [
    (None, ["Cel", "[degF]", "K"]),
    ("hba1c", ["%", "mmol/mol", "1"]),
]


def _pair(groups: list[tuple[str | None, list[str]]]) -> Any:
    return st.sampled_from(groups).flatmap(
        lambda group: st.tuples(
            st.just(group[0]), st.sampled_from(group[1]), st.sampled_from(group[1])
        )
    )


POSITIVE = st.floats(min_value=1e-9, max_value=1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(pair=_pair(LINEAR_GROUPS), value=POSITIVE)
def test_round_trip_linear(pair: tuple[str | None, str, str], value: float) -> None:
    analyte, source, target = pair
    there = convert(value, source, target, analyte=analyte)
    back = convert(there, target, source, analyte=analyte)
    assert there > 0
    assert math.isclose(back, value, rel_tol=1e-9)


@settings(max_examples=200, deadline=None)
@given(pair=_pair(AFFINE_GROUPS), value=POSITIVE)
def test_round_trip_affine(pair: tuple[str | None, str, str], value: float) -> None:
    # An affine map (offset) loses absolute precision of about ulp(offset), so values near
    # zero are compared with an absolute tolerance as well.
    analyte, source, target = pair
    there = convert(value, source, target, analyte=analyte)
    back = convert(there, target, source, analyte=analyte)
    assert math.isclose(back, value, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=100, deadline=None)
@given(value=POSITIVE)
def test_convert_many_round_trip(value: float) -> None:
    there = convert_many([value, 2 * value], "mg/dL", "mmol/L", analyte="glucose")
    back = convert_many(there, "mmol/L", "mg/dL", analyte="glucose")
    assert back == pytest.approx([value, 2 * value], rel=1e-9)


# --------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "code", "expected_value", "expected_unit"),
    [
        (98.6, "[degF]", "8310-5", 37.0, "Cel"),
        (37.2, "Cel", "8310-5", 37.2, "Cel"),
        (150, "[lb_av]", "29463-7", 68.0388555, "kg"),
        (150, "lbs", "29463-7", 68.0388555, "kg"),
        (70, "[in_i]", "8302-2", 177.8, "cm"),
        (5.5, "mmol/L", "2345-7", 99.0858, "mg/dL"),
        (5.5, "mmol/L", "2339-0", 99.0858, "mg/dL"),
        (99.0858, "mg/dL", "15074-8", 5.5, "mmol/L"),
        (120, "mmHg", "8480-6", 120, "mm[Hg]"),
        (16, "kPa", "8480-6", 120.01, "mm[Hg]"),
        (72, "{beat}/min", "8867-4", 72, "/min"),
        (16, "breaths per minute", "9279-1", 16, "/min"),
        (0.97, "1", "59408-5", 97, "%"),
        (48, "mmol/mol", "4548-4", 6.542, "%"),
        (6.5, "%", "59261-8", 47.54, "mmol/mol"),
        (60, "mL/min", "33914-3", 60, "mL/min/{1.73_m2}"),  # Synthea's spelling
        (88.4, "umol/L", "2160-0", 1.0, "mg/dL"),
        (140, "meq/L", "2951-2", 140, "mmol/L"),
        (5.2, "10*9/L", "6690-2", 5.2, "10*3/uL"),
        (3, "ml", None, 3, "mL"),
        (3, "mmHg", None, 3, "mm[Hg]"),
        (7, "{score}", "72514-3", 7, "{score}"),  # no canonical unit listed: re-spelled only
    ],
)
def test_normalise(
    value: float, unit: str, code: str | None, expected_value: float, expected_unit: str
) -> None:
    result = normalise(value, unit, code=code)
    assert isinstance(result, Normalised)
    assert result.value == pytest.approx(expected_value, abs=0.01)
    assert result.unit == expected_unit
    assert result.original_value == value
    assert result.original_unit == unit


def test_normalise_refuses_a_unit_that_cannot_express_the_code() -> None:
    with pytest.raises(IncompatibleUnitsError) as info:
        normalise(70, "kg", code="8867-4")
    message = str(info.value)
    assert "LOINC 8867-4" in message and "'/min'" in message and "'kg'" in message
    with pytest.raises(UnknownUnitError):
        normalise(1, "furlongs", code="8302-2")


def test_canonical_units_parse_and_are_ucum() -> None:
    for code, unit in CANONICAL_UNITS.items():
        assert re.fullmatch(r"\d{1,7}-\d", code), code
        parsed = parse_ucum(unit)
        assert parsed.is_ucum and parsed.canonical == unit, (code, unit)


def test_canonical_units_agree_with_the_loinc_table() -> None:
    table = REPO / "src" / "medtwin" / "record" / "data" / "loinc.csv"
    if not table.is_file():
        pytest.skip(f"{table} not present")
    with table.open(encoding="utf-8", newline="") as handle:
        rows = {row["code"]: row["canonical_unit"] for row in csv.DictReader(handle)}
    for unit in rows.values():
        if unit:
            parse_ucum(unit)  # every canonical unit of the code table is parseable
    disagreements = {
        code: (unit, rows[code])
        for code, unit in CANONICAL_UNITS.items()
        if rows.get(code) and rows[code] != unit
    }
    assert not disagreements


# --------------------------------------------------------------------------------------
# Speed and import cost
# --------------------------------------------------------------------------------------


def test_cached_calls_are_fast() -> None:
    # Budget per the design: a cached parse well under 1 us on a developer machine. The
    # bounds here are 5-10x looser so that a slow CI runner does not flake; losing the
    # cache (a real parse is ~50-100 us) still fails them.
    parse_ucum("mg/dL")
    normalise(98.6, "[degF]", code="8310-5")
    number = 20_000
    parse_us = min(timeit.repeat(lambda: parse_ucum("mg/dL"), number=number, repeat=3))
    normalise_us = min(
        timeit.repeat(lambda: normalise(98.6, "[degF]", code="8310-5"), number=number, repeat=3)
    )
    assert parse_us / number * 1e6 < 5
    assert normalise_us / number * 1e6 < 20


def test_importing_the_module_does_not_import_pint() -> None:
    code = "import sys, medtwin.record.units; sys.exit('pint' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
