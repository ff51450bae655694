"""Tests for medtwin.record.codes: the shipped LOINC, SNOMED CT and RxNorm tables.

The shared FHIR test data (``MEDTWIN_SHARED_DATA``, default ``<repo>/../shared/data``) must be
fully covered by the tables: every code its Observations, Conditions and MedicationRequests use
is found, with the display the data gives it.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import shared_data_dir
from medtwin.record import codes
from medtwin.record.codes import (
    CVX,
    ICD10CM,
    LOINC,
    RXNORM,
    SNOMED,
    UCUM,
    VITAL_SIGNS,
    canonical_unit,
    display,
    ingredient,
    ingredients,
    is_vital_sign,
    loinc_check_digit_ok,
    lookup,
    snomed_check_digit_ok,
    system_alias,
)

REPO = Path(__file__).resolve().parents[2]
ZERO_WIDTH_SPACE = "\u200b"  # some LOINC displays in the data carry one after "/"

COLUMNS = {
    "loinc.csv": ["code", "display", "short_name", "category", "canonical_unit", "property"],
    "snomed.csv": ["code", "display", "semantic_tag", "category"],
    "rxnorm.csv": [
        "rxcui",
        "display",
        "tty",
        "ingredient_rxcui",
        "ingredient",
        "atc_class",
        "drug_class",
    ],
}
TABLE_SYSTEM = {"loinc.csv": LOINC, "snomed.csv": SNOMED, "rxnorm.csv": RXNORM}

# (system, code) -> displays seen in the data
Seen = dict[tuple[str, str], Counter[str]]


def _shared_data() -> Path:
    return shared_data_dir()


def _resources(obj: Any) -> Iterator[dict[str, Any]]:
    if isinstance(obj, dict):
        if "resourceType" in obj:
            yield obj
        for value in obj.values():
            yield from _resources(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _resources(value)


def _load(path: Path) -> Iterator[dict[str, Any]]:
    raw = path.read_bytes()
    if path.suffix == ".ndjson":
        for line in raw.splitlines():
            if line.strip():
                yield from _resources(orjson.loads(line))
    else:
        yield from _resources(orjson.loads(raw))


def _codings(concept: Any) -> Iterator[dict[str, Any]]:
    if isinstance(concept, dict):
        for coding in concept.get("coding") or []:
            if isinstance(coding, dict) and coding.get("code") and coding.get("system"):
                yield coding


def _collect(paths: list[Path]) -> Seen:
    """Codes of Observation(.component).code, Condition.code, MedicationRequest medication."""
    seen: Seen = defaultdict(Counter)
    for path in paths:
        for resource in _load(path):
            kind = resource.get("resourceType")
            concepts: list[Any] = []
            if kind == "Observation":
                concepts.append(resource.get("code"))
                concepts += [c.get("code") for c in resource.get("component") or []]
            elif kind == "Condition":
                concepts.append(resource.get("code"))
            elif kind == "MedicationRequest":
                concepts.append(resource.get("medicationCodeableConcept"))
            elif kind == "Medication":  # referenced by a MedicationRequest
                concepts.append(resource.get("code"))
            for concept in concepts:
                for coding in _codings(concept):
                    system = coding["system"]
                    if system in (LOINC, SNOMED, RXNORM):
                        entry = seen[(system, str(coding["code"]))]
                        entry[str(coding.get("display") or "")] += 1
    return dict(seen)


@pytest.fixture(scope="module")
def synthea_codes() -> Seen:
    data = _shared_data()
    return _collect(sorted((data / "fhir" / "synthea-r4").glob("*.json")))


@pytest.fixture(scope="module")
def other_codes() -> Seen:
    data = _shared_data()
    paths = sorted((data / "fhir" / "uscore").glob("*.json"))
    paths += sorted((data / "wearables" / "hl7-phd").glob("*.json"))
    bulk = data / "fhir" / "bulk-10-patients"
    paths += [bulk / "Condition.000.ndjson", bulk / "MedicationRequest.000.ndjson"]
    return _collect([path for path in paths if path.exists()])


def _rows(filename: str) -> list[dict[str, str]]:
    text = resources.files("medtwin.record").joinpath("data", filename).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


# --- coverage of the shared data ------------------------------------------------------------


def test_every_synthea_code_is_in_the_tables(synthea_codes: Seen) -> None:
    assert len(synthea_codes) > 200, "expected some 250 distinct codes in synthea-r4"
    missing = sorted(key for key in synthea_codes if lookup(*key) is None)
    assert not missing, f"codes in shared synthea-r4 data missing from the tables: {missing}"


def test_every_uscore_phd_and_bulk_code_is_in_the_tables(other_codes: Seen) -> None:
    assert other_codes
    missing = sorted(key for key in other_codes if lookup(*key) is None)
    assert not missing, f"codes in shared uscore/hl7-phd/bulk data missing from tables: {missing}"


def test_display_matches_the_shared_data(synthea_codes: Seen, other_codes: Seen) -> None:
    merged: Seen = defaultdict(Counter)
    for seen in (synthea_codes, other_codes):
        for key, displays in seen.items():
            merged[key].update(displays)
    wrong = []
    for (system, code), displays in merged.items():
        given = {d.replace(ZERO_WIDTH_SPACE, "") for d in displays if d}
        info = lookup(system, code)
        if given and info is not None and info.display not in given:
            wrong.append((system, code, info.display, sorted(given)))
    assert not wrong, f"table displays that the data never uses: {wrong}"


def test_known_displays() -> None:
    assert display(LOINC, "8867-4") == "Heart rate"
    assert display(LOINC, "4548-4") == "Hemoglobin A1c/Hemoglobin.total in Blood"
    assert display(SNOMED, "44054006") == "Diabetes mellitus type 2 (disorder)"
    assert display(RXNORM, "860975") == (
        "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet"
    )
    assert display(LOINC, "0000-0") is None
    assert display(LOINC, "0000-0", "unknown") == "unknown"
    assert display(ICD10CM, "E11.9") is None


# --- the tables themselves --------------------------------------------------------------------


@pytest.mark.parametrize("filename", sorted(COLUMNS))
def test_table_columns_and_no_duplicates(filename: str) -> None:
    rows = _rows(filename)
    assert rows
    assert list(rows[0]) == COLUMNS[filename]
    key = COLUMNS[filename][0]
    counts = Counter(row[key] for row in rows)
    duplicates = sorted(code for code, n in counts.items() if n > 1)
    assert not duplicates, f"{filename}: duplicate codes {duplicates}"
    assert all(row[key] == row[key].strip() and row[key] for row in rows)
    assert all(row["display"].strip() for row in rows), f"{filename}: empty display"
    assert len(codes.all_codes(TABLE_SYSTEM[filename])) == len(rows)


def test_loinc_codes_pass_the_mod10_check_digit() -> None:
    bad = [row["code"] for row in _rows("loinc.csv") if not loinc_check_digit_ok(row["code"])]
    assert not bad, f"LOINC codes failing the Mod 10 check digit: {bad}"


def test_snomed_ids_pass_the_verhoeff_check_digit() -> None:
    rows = _rows("snomed.csv")
    bad = [row["code"] for row in rows if not snomed_check_digit_ok(row["code"])]
    assert not bad, f"SNOMED CT ids failing the Verhoeff check digit: {bad}"
    # concept ids: partition identifier 00 (short format) or 10 (extension namespace)
    assert all(row["code"][-3:-1] in ("00", "10") for row in rows)


def test_rxcuis_are_numeric_and_ingredients_resolve() -> None:
    rows = _rows("rxnorm.csv")
    by_id = {row["rxcui"]: row for row in rows}
    for row in rows:
        assert row["rxcui"].isdigit(), row
        assert row["tty"] in {"", "IN", "SCD", "SBD", "SCDC", "SBDC", "BPCK", "GPCK"}, row
        if row["tty"] == "IN":
            assert row["ingredient_rxcui"] == row["rxcui"], row
            assert row["ingredient"] == row["display"], row
        for part in filter(None, row["ingredient_rxcui"].split(";")):
            assert by_id[part]["tty"] == "IN", (row["rxcui"], part)
        if row["ingredient_rxcui"]:
            assert len(row["ingredient_rxcui"].split(";")) == len(row["ingredient"].split(";"))


UCUM_LIKE = re.compile(r"^[A-Za-z0-9.*/%\[\]{}()_^+\-]+$")


def _balanced(unit: str) -> bool:
    depth: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in unit:
        if char in "([{":
            depth.append(char)
        elif char in pairs and (not depth or depth.pop() != pairs[char]):
            return False
    return not depth


def test_canonical_units_look_like_ucum() -> None:
    units = {row["code"]: row["canonical_unit"] for row in _rows("loinc.csv")}
    bad = {c: u for c, u in units.items() if u and not (UCUM_LIKE.match(u) and _balanced(u))}
    assert not bad, f"canonical units that are not UCUM-looking: {bad}"
    assert canonical_unit("8480-6") == "mm[Hg]"
    assert canonical_unit("2339-0") == "mg/dL"
    assert canonical_unit("8310-5") == "Cel"
    assert canonical_unit("33914-3") == "mL/min/{1.73_m2}"
    assert canonical_unit("85354-9") is None  # a panel has no unit
    assert canonical_unit("0000-0") is None


def test_categories_are_from_the_documented_sets() -> None:
    loinc = {row["category"] for row in _rows("loinc.csv")}
    assert loinc <= {
        "vital-signs",
        "laboratory",
        "survey",
        "social-history",
        "imaging",
        "exam",
        "procedure",
        "clinical-test",
        "activity",
    }
    tags = {row["semantic_tag"] for row in _rows("snomed.csv")}
    assert tags <= {
        "disorder",
        "finding",
        "situation",
        "observable entity",
        "morphologic abnormality",
    }


# --- API ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("LN", LOINC),
        ("ln", LOINC),
        ("LOINC", LOINC),
        ("urn:oid:2.16.840.1.113883.6.1", LOINC),
        ("2.16.840.1.113883.6.1", LOINC),
        ("http://loinc.org", LOINC),
        ("http://loinc.org/", LOINC),
        ("SCT", SNOMED),
        ("SNM", SNOMED),
        ("SNOMEDCT_US", SNOMED),
        ("urn:oid:2.16.840.1.113883.6.96", SNOMED),
        ("http://snomed.info/sct", SNOMED),
        ("RXNORM", RXNORM),
        ("urn:oid:2.16.840.1.113883.6.88", RXNORM),
        ("I10", ICD10CM),
        ("I10C", ICD10CM),
        ("ICD10CM", ICD10CM),
        ("urn:oid:2.16.840.1.113883.6.90", ICD10CM),
        ("CVX", CVX),
        ("urn:oid:2.16.840.1.113883.12.292", CVX),
        ("UCUM", UCUM),
        (" LN ", LOINC),
        ("http://example.org/local", "http://example.org/local"),
    ],
)
def test_system_alias(alias: str, expected: str) -> None:
    assert system_alias(alias) == expected


def test_lookup_through_aliases() -> None:
    info = lookup("LN", " 8480-6 ")
    assert info is not None
    assert info.system == LOINC and info.code == "8480-6"
    assert info.extra["category"] == "vital-signs"
    assert lookup("urn:oid:2.16.840.1.113883.6.96", "38341003") == lookup(SNOMED, "38341003")
    assert lookup(CVX, "208") is None  # no CVX table is shipped
    assert lookup("http://example.org/local", "x") is None


def test_code_info_is_immutable_and_hashable() -> None:
    info = lookup(LOINC, "8867-4")
    assert info is not None
    with pytest.raises(AttributeError):
        info.display = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        info.extra["category"] = "x"  # type: ignore[index]
    assert {info: 1}[info] == 1


def test_vital_signs_mapping() -> None:
    assert VITAL_SIGNS["heart_rate"] == "8867-4"
    assert VITAL_SIGNS["respiratory_rate"] == "9279-1"
    assert VITAL_SIGNS["spo2"] == "59408-5"
    assert VITAL_SIGNS["body_temperature"] == "8310-5"
    assert VITAL_SIGNS["systolic_bp"] == "8480-6"
    assert VITAL_SIGNS["diastolic_bp"] == "8462-4"
    assert VITAL_SIGNS["body_height"] == "8302-2"
    assert VITAL_SIGNS["body_weight"] == "29463-7"
    assert VITAL_SIGNS["bmi"] == "39156-5"
    assert VITAL_SIGNS["bp_panel"] == "85354-9"
    for name, code in VITAL_SIGNS.items():
        assert lookup(LOINC, code) is not None, name
        assert is_vital_sign(code), name
    assert not is_vital_sign("2339-0")
    assert not is_vital_sign("0000-0")


def test_ingredients() -> None:
    metformin = ingredient("860975")  # 24 HR metformin 500 MG ER tablet (SCD)
    assert metformin is not None
    assert (metformin.code, metformin.display) == ("6809", "metformin")
    assert metformin.extra["atc_class"] == "A10BA02"
    assert ingredient("6809") == metformin  # an ingredient is its own ingredient
    assert ingredient("866414") == lookup(RXNORM, "6918")  # Toprol (SBD) -> metoprolol
    assert ingredient("562251") is None  # amoxicillin / clavulanate: two ingredients
    assert [i.code for i in ingredients("562251")] == ["723", "48203"]
    assert ingredients("999999999") == ()
    assert ingredient("999999999") is None


@pytest.mark.parametrize(
    ("rxcui", "name"),
    [
        ("6809", "metformin"),
        ("274783", "insulin glargine"),
        ("86009", "insulin lispro"),
        ("29046", "lisinopril"),
        ("17767", "amlodipine"),
        ("5487", "hydrochlorothiazide"),
        ("52175", "losartan"),
        ("83367", "atorvastatin"),
        ("36567", "simvastatin"),
        ("301542", "rosuvastatin"),
        ("11289", "warfarin"),
        ("32968", "clopidogrel"),
        ("1364430", "apixaban"),
        ("11124", "vancomycin"),
        ("1191", "aspirin"),
        ("161", "acetaminophen"),
        ("5640", "ibuprofen"),
        ("2670", "codeine"),
        ("10689", "tramadol"),
        ("42316", "tacrolimus"),
        ("4492", "fluorouracil"),
        ("194000", "capecitabine"),
        ("103", "mercaptopurine"),
        ("1256", "azathioprine"),
        ("10485", "thioguanine"),
        ("2556", "citalopram"),
        ("321988", "escitalopram"),
        ("36437", "sertraline"),
        ("26225", "ondansetron"),
        ("6918", "metoprolol"),
        ("8787", "propranolol"),
    ],
)
def test_core_ingredients_are_shipped(rxcui: str, name: str) -> None:
    info = lookup(RXNORM, rxcui)
    assert info is not None
    assert info.display == name
    assert info.extra["tty"] == "IN"


# --- check digits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("12345-5", True),  # LOINC Users' Guide 12 C worked example
        ("8480-6", True),
        ("8462-4", True),
        ("2339-0", True),
        ("100-8", True),
        ("8480-5", False),
        ("8480", False),
        ("LP12345-6", False),
        ("", False),
        ("84a0-6", False),
    ],
)
def test_loinc_check_digit(code: str, ok: bool) -> None:
    assert loinc_check_digit_ok(code) is ok


def test_loinc_known_invalid_check_digits_fail() -> None:
    assert len(codes.LOINC_KNOWN_INVALID_CHECK_DIGITS) == 14
    assert not any(loinc_check_digit_ok(c) for c in codes.LOINC_KNOWN_INVALID_CHECK_DIGITS)


@pytest.mark.parametrize(
    ("sctid", "ok"),
    [
        ("138875005", True),  # SNOMED CT root concept
        ("44054006", True),
        ("10939881000119105", True),  # US extension, 17 digits
        ("44054007", False),
        ("04054006", False),  # leading zero
        ("12345", False),  # too short
        ("1234567890123456789", False),  # too long
        ("4405400a", False),
    ],
)
def test_snomed_check_digit(sctid: str, ok: bool) -> None:
    assert snomed_check_digit_ok(sctid) is ok


def test_every_single_digit_error_is_caught() -> None:
    sctid = "431855005"
    for position in range(len(sctid)):
        for digit in "0123456789":
            if digit != sctid[position] and not (position == 0 and digit == "0"):
                mutated = sctid[:position] + digit + sctid[position + 1 :]
                assert not snomed_check_digit_ok(mutated), mutated


# --- antihypertensive ingredients ---------------------------------------------------------------

# The systemic ingredients of two VSAC value sets (eCQM Update 2025-05-08): "ACE Inhibitor or
# ARB or ARNI Ingredient" (OID 2.16.840.1.113883.3.526.3.1489) and "Beta Blocker Therapy
# Ingredient" (2.16.840.1.113883.3.526.3.1493), with their WHO ATC codes. Left out of the
# table: sacubitril (given only with valsartan, which is in it), the ophthalmic beta blockers
# (timolol, betaxolol, carteolol, levobunolol, metipranolol: eye drops for glaucoma, ATC S01ED),
# esmolol (intravenous, peri-operative) and sotalol (an antiarrhythmic).
VSAC_ANTIHYPERTENSIVE_INGREDIENTS = {
    "1091643": ("azilsartan", "C09CA09"),
    "18867": ("benazepril", "C09AA07"),
    "1998": ("captopril", "C09AA01"),
    "214354": ("candesartan", "C09CA06"),
    "29046": ("lisinopril", "C09AA03"),
    "30131": ("moexipril", "C09AA13"),
    "321064": ("olmesartan", "C09CA08"),
    "35208": ("quinapril", "C09AA06"),
    "35296": ("ramipril", "C09AA05"),
    "3827": ("enalapril", "C09AA02"),
    "38454": ("trandolapril", "C09AA10"),
    "50166": ("fosinopril", "C09AA09"),
    "52175": ("losartan", "C09CA01"),
    "54552": ("perindopril", "C09AA04"),
    "69749": ("valsartan", "C09CA03"),
    "73494": ("telmisartan", "C09CA07"),
    "83515": ("eprosartan", "C09CA02"),
    "83818": ("irbesartan", "C09CA04"),
    "1202": ("atenolol", "C07AB03"),
    "149": ("acebutolol", "C07AB04"),
    "19484": ("bisoprolol", "C07AB07"),
    "20352": ("carvedilol", "C07AG02"),
    "31555": ("nebivolol", "C07AB12"),
    "6185": ("labetalol", "C07AG01"),
    "6918": ("metoprolol", "C07AB02"),
    "7226": ("nadolol", "C07AA12"),
    "8332": ("pindolol", "C07AA03"),
    "8787": ("propranolol", "C07AA05"),
}


# Other antihypertensive ingredients, with their WHO ATC codes. RxCUIs: bumetanide, torsemide
# and eplerenone as a heart-failure app's FHIR Medication list gives them (Stanford ENGAGE-HF,
# whose 18 other ingredient codes all agree with VSAC's and medtwin's); torsemide also in a
# second public mapping. The rest from a public ATC-to-RxNorm ingredient listing (RxNav's
# classes) that agrees with medtwin's table on all 50 ingredients both hold; hydralazine and
# methyldopa also as CPIC's drug table and a Brazilian formulary give them. Left out: clevidipine
# and nitroprusside (intravenous only), nimodipine (subarachnoid haemorrhage), guanfacine (today
# mostly for ADHD), minoxidil (mostly topical, for hair loss), diazoxide (oral for
# hypoglycaemia) and bosentan/ambrisentan/macitentan (pulmonary arterial hypertension).
# Indapamide, metolazone, amiloride and triamterene as an OHDSI concept set of antihypertensive
# ingredients gives them (OMOP RxNorm concept codes; it agrees with the table on every other
# diuretic, calcium channel blocker, ACE inhibitor and ARB it lists).
OTHER_ANTIHYPERTENSIVE_INGREDIENTS = {
    "1808": ("bumetanide", "C03CA02"),
    "38413": ("torsemide", "C03CA04"),
    "298869": ("eplerenone", "C03DA04"),
    "49276": ("doxazosin", "C02CA04"),
    "5470": ("hydralazine", "C02DB02"),
    "6876": ("methyldopa", "C02AB01"),
    "30257": ("moxonidine", "C02AC05"),
    "4316": ("felodipine", "C08CA02"),
    "33910": ("isradipine", "C08CA03"),
    "7396": ("nicardipine", "C08CA04"),
    "7435": ("nisoldipine", "C08CA07"),
    "325646": ("aliskiren", "C09XA02"),
    "5764": ("indapamide", "C03BA11"),
    "6916": ("metolazone", "C03BA08"),
    "644": ("amiloride", "C03DB01"),
    "10763": ("triamterene", "C03DB02"),
}


@pytest.mark.parametrize(
    ("rxcui", "expected"),
    sorted({**VSAC_ANTIHYPERTENSIVE_INGREDIENTS, **OTHER_ANTIHYPERTENSIVE_INGREDIENTS}.items()),
)
def test_the_antihypertensive_ingredients_are_shipped_with_their_atc_class(
    rxcui: str, expected: tuple[str, str]
) -> None:
    name, atc = expected
    info = lookup(RXNORM, rxcui)
    assert info is not None, f"{name} ({rxcui}) missing from rxnorm.csv"
    assert (info.display, info.extra["tty"], info.extra["atc_class"]) == (name, "IN", atc)


@pytest.mark.parametrize(
    ("display", "ingredient"),
    [
        ("olmesartan medoxomil 40 MG Oral Tablet", "olmesartan"),
        ("bisoprolol fumarate 5 MG / hydrochlorothiazide 6.25 MG Oral Tablet", None),
        ("24 HR nebivolol 10 MG Extended Release Oral Capsule", "nebivolol"),
        ("clonidine hydrochloride 0.1 MG Oral Tablet", "clonidine"),
        ("apraclonidine 5 MG/ML Ophthalmic Solution", ""),
        ("hydralazine hydrochloride 25 MG Oral Tablet", "hydralazine"),
        ("24 HR felodipine 5 MG Extended Release Oral Tablet", "felodipine"),
        ("indapamide 1.25 MG Oral Tablet", "indapamide"),
        ("hydrochlorothiazide 25 MG / triamterene 37.5 MG Oral Tablet", None),
    ],
)
def test_a_drug_missing_from_the_table_is_named_by_its_ingredients(
    display: str, ingredient: str | None
) -> None:
    """Strengths and forms not in the table are read by the ingredients their RxNorm name
    names, as whole words (apraclonidine, an eye drop, is not clonidine)."""
    names = [i.display for i in codes.ingredients_named(display)]
    if ingredient is None:  # a combination: every ingredient the name names
        other = "triamterene" if "triamterene" in display else "bisoprolol"
        assert sorted(names) == sorted([other, "hydrochlorothiazide"])
    else:
        assert names == ([ingredient] if ingredient else [])


@pytest.mark.parametrize(
    ("text", "names", "expected"),
    [
        ("Insulin Glargine 100 UNT/ML", ["insulin", "insulin glargine"], ("insulin glargine",)),
        # the shorter name counts where it stands on its own
        (
            "insulin glargine / insulin lispro",
            ["insulin", "insulin glargine"],
            ("insulin glargine", "insulin"),
        ),
        ("nor-clonidine 1 MG", ["clonidine"], ()),
        ("clonidine-0.1 MG", ["clonidine"], ()),
        ("(clonidine) 0.1 MG", ["clonidine"], ("clonidine",)),
        ("SIMVASTATIN 40mg tab", ["simvastatin", "statin"], ("simvastatin",)),
        ("", ["clonidine"], ()),
    ],
)
def test_names_are_found_as_whole_words_each_stretch_once(
    text: str, names: list[str], expected: tuple[str, ...]
) -> None:
    """The one rule both medication readers share (risk inputs and the PGx report)."""
    assert codes.names_in(text, names) == expected


def test_the_pgx_report_reads_drug_names_by_the_same_rule() -> None:
    from medtwin.pharmacology.pgx.report import drug_names
    from medtwin.record.facts import Coding, MedicationRequest

    def named(display: str) -> tuple[tuple[str, ...], bool]:
        fact = MedicationRequest(source="s", source_id="m", code=Coding("local", "x", display))
        return drug_names(fact)

    assert named("Hydralazine HCl 25 mg tab") == (("hydralazine",), True)
    assert named("apraclonidine 0.5 % eye drops") == (("apraclonidine 0.5 % eye drops",), False)
    assert named("CLOPIDOGREL 75 mg / aspirin 81 mg") == (("clopidogrel", "aspirin"), True)
