"""Code systems as compact tables: the LOINC, SNOMED CT and RxNorm codes medtwin uses.

medtwin does not ship whole terminologies. It ships three small CSV tables in
``medtwin/record/data/`` that hold the codes medtwin reasons about (vital signs, common
laboratory tests, the chronic conditions its models and scores use, the drugs it doses or
checks) plus every code that occurs in the public test data medtwin is tested against.
``docs/codes.md`` says what is in each table, where the codes come from and under which
licence they are used.

The tables are read once, on first use (``importlib.resources`` + :mod:`csv`); every look-up
after that is a dictionary hit.

Examples
--------
>>> from medtwin.record import codes
>>> codes.display(codes.LOINC, "8867-4")
'Heart rate'
>>> codes.canonical_unit(codes.VITAL_SIGNS["systolic_bp"])
'mm[Hg]'
>>> codes.lookup("LN", "8480-6").system == codes.LOINC
True
>>> codes.ingredient("314076").display
'lisinopril'
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType

__all__ = [
    "CVX",
    "ICD10CM",
    "LOINC",
    "LOINC_KNOWN_INVALID_CHECK_DIGITS",
    "NHS_NUMBER_SYSTEM",
    "NHS_NUMBER_SYSTEMS",
    "NO_ANSWERS",
    "RXNORM",
    "SNOMED",
    "UCUM",
    "VITAL_SIGNS",
    "YES_ANSWERS",
    "CodeInfo",
    "CodeTableError",
    "all_codes",
    "canonical_unit",
    "data_table",
    "display",
    "drug_name_aliases",
    "ingredient",
    "ingredients",
    "ingredients_named",
    "is_vital_sign",
    "loinc_check_digit_ok",
    "lookup",
    "names_in",
    "nhs_number",
    "snomed_check_digit_ok",
    "system_alias",
]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CVX = "http://hl7.org/fhir/sid/cvx"

# table file, name of its code column, name of its display column
_TABLES: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {
        LOINC: ("loinc.csv", "code", "display"),
        SNOMED: ("snomed.csv", "code", "display"),
        RXNORM: ("rxnorm.csv", "rxcui", "display"),
    }
)

# Aliases seen in HL7 v2 (table 0396 coding-system names), CDA / v3 (OIDs) and hand-written
# files. Keys are compared upper-cased, so "ln" and "LN" both work.
_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        # LOINC: OID 2.16.840.1.113883.6.1
        "LN": LOINC,
        "LOINC": LOINC,
        "2.16.840.1.113883.6.1": LOINC,
        "URN:OID:2.16.840.1.113883.6.1": LOINC,
        "HTTP://LOINC.ORG": LOINC,
        "HTTPS://LOINC.ORG": LOINC,
        # SNOMED CT: OID 2.16.840.1.113883.6.96 ("SNM" is the older HL7 v2 name)
        "SCT": SNOMED,
        "SNM": SNOMED,
        "SNOMED": SNOMED,
        "SNOMEDCT": SNOMED,
        "SNOMED CT": SNOMED,
        "SNOMED-CT": SNOMED,
        "SNOMEDCT_US": SNOMED,
        "2.16.840.1.113883.6.96": SNOMED,
        "URN:OID:2.16.840.1.113883.6.96": SNOMED,
        "HTTP://SNOMED.INFO/SCT": SNOMED,
        "HTTPS://SNOMED.INFO/SCT": SNOMED,
        # RxNorm: OID 2.16.840.1.113883.6.88
        "RXNORM": RXNORM,
        "RXN": RXNORM,
        "2.16.840.1.113883.6.88": RXNORM,
        "URN:OID:2.16.840.1.113883.6.88": RXNORM,
        "HTTP://WWW.NLM.NIH.GOV/RESEARCH/UMLS/RXNORM": RXNORM,
        # ICD-10-CM: OID 2.16.840.1.113883.6.90 (HL7 v2: "I10" ICD-10, "I10C" ICD-10-CM)
        "I10": ICD10CM,
        "I10C": ICD10CM,
        "ICD10": ICD10CM,
        "ICD10CM": ICD10CM,
        "ICD-10-CM": ICD10CM,
        "2.16.840.1.113883.6.90": ICD10CM,
        "URN:OID:2.16.840.1.113883.6.90": ICD10CM,
        "HTTP://HL7.ORG/FHIR/SID/ICD-10-CM": ICD10CM,
        # CVX vaccines: OID 2.16.840.1.113883.12.292
        "CVX": CVX,
        "2.16.840.1.113883.12.292": CVX,
        "URN:OID:2.16.840.1.113883.12.292": CVX,
        "HTTP://HL7.ORG/FHIR/SID/CVX": CVX,
        # UCUM: OID 2.16.840.1.113883.6.8
        "UCUM": UCUM,
        "2.16.840.1.113883.6.8": UCUM,
        "URN:OID:2.16.840.1.113883.6.8": UCUM,
        "HTTP://UNITSOFMEASURE.ORG": UCUM,
    }
)

VITAL_SIGNS: Mapping[str, str] = MappingProxyType(
    {
        "vital_signs_panel": "85353-1",
        "heart_rate": "8867-4",
        "respiratory_rate": "9279-1",
        "spo2": "59408-5",
        "spo2_arterial": "2708-6",
        "inhaled_oxygen_concentration": "3150-0",
        "inhaled_oxygen_flow_rate": "3151-8",
        "body_temperature": "8310-5",
        "oral_temperature": "8331-1",
        "body_height": "8302-2",
        "body_length": "8306-3",
        "body_weight": "29463-7",
        "bmi": "39156-5",
        "bmi_percentile": "59576-9",
        "weight_for_length_percentile": "77606-2",
        "head_circumference": "9843-4",
        "head_circumference_percentile": "8289-1",
        "bp_panel": "85354-9",
        "bp_panel_systolic_diastolic": "55284-4",
        "systolic_bp": "8480-6",
        "diastolic_bp": "8462-4",
        "mean_bp": "8478-0",
        "pain_score": "72514-3",
    }
)
"""Semantic name -> LOINC code of the vital signs medtwin reads and writes.

The codes are those of the HL7 FHIR R4 vital signs profiles
(http://hl7.org/fhir/R4/observation-vitalsigns.html) and the US Core pediatric profiles, plus
the mean arterial pressure and the pain score that Synthea records with them.
"""

LOINC_KNOWN_INVALID_CHECK_DIGITS: frozenset[str] = frozenset(
    {
        "11491-6",
        "11501-6",
        "5895-7",
        "5896-5",
        "5897-3",
        "5928-1",
        "6028-3",
        "6415-5",
        "6580-7",
        "6645-7",
        "6646-5",
        "6647-3",
        "6648-1",
        "6649-9",
    }
)
"""The 14 (deprecated) LOINC codes whose published check digit is wrong.

References
----------
LOINC Users' Guide, section 12 C "Calculating Mod 10 Check Digits", table "Terms with
invalid check digits" (Regenstrief Institute, 2023).
"""


class CodeTableError(ValueError):
    """A shipped code table is malformed (a packaging bug, not bad user input)."""


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """One code of a code system with its display and the other columns of its table row.

    Parameters
    ----------
    system
        The canonical FHIR system URI, e.g. ``"http://loinc.org"``.
    code
        The code, e.g. ``"8867-4"``.
    display
        The human-readable name.
    extra
        The other columns of the table row (read-only; empty cells are ``""``). LOINC:
        ``short_name``, ``category``, ``canonical_unit``, ``property``. SNOMED CT:
        ``semantic_tag``, ``category``. RxNorm: ``tty``, ``ingredient_rxcui``,
        ``ingredient``, ``atc_class``, ``drug_class`` (several ingredients are separated
        by ``;``).

    Examples
    --------
    >>> info = lookup(SNOMED, "44054006")
    >>> info.display, info.extra["category"]
    ('Diabetes mellitus type 2 (disorder)', 'metabolic')
    """

    system: str
    code: str
    display: str
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)


def system_alias(system: str) -> str:
    """Return the canonical FHIR system URI for a coding-system name, OID or URI.

    Recognised aliases: HL7 v2 coding-system names (``LN``, ``SCT``, ``SNM``, ``RXNORM``,
    ``I10``, ``I10C``, ``CVX``, ``UCUM``), OIDs with or without ``urn:oid:``, and the
    FHIR URIs themselves (case-insensitive, trailing ``/`` ignored). Anything else is
    returned stripped but otherwise unchanged, so unknown systems pass through.

    Parameters
    ----------
    system
        The system name as written by the source.

    Returns
    -------
    str
        The canonical URI (one of :data:`LOINC`, :data:`SNOMED`, :data:`RXNORM`,
        :data:`ICD10CM`, :data:`CVX`, :data:`UCUM`) or the stripped input.

    Examples
    --------
    >>> system_alias("LN")
    'http://loinc.org'
    >>> system_alias("urn:oid:2.16.840.1.113883.6.96")
    'http://snomed.info/sct'
    >>> system_alias("http://example.org/local")
    'http://example.org/local'
    """
    text = system.strip()
    key = text.rstrip("/").upper()
    return _ALIASES.get(key, text)


@functools.cache
def _table(system: str) -> Mapping[str, CodeInfo]:
    """Load one shipped table (once) into a read-only ``code -> CodeInfo`` mapping."""
    filename, code_column, display_column = _TABLES[system]
    resource = resources.files("medtwin.record").joinpath("data", filename)
    where = f"medtwin/record/data/{filename}"
    rows: dict[str, CodeInfo] = {}
    # newline="" so that the csv module sees the file's own line ends (csv docs, footnote 1)
    reader = csv.DictReader(io.StringIO(resource.read_text(encoding="utf-8"), newline=""))
    columns = reader.fieldnames or []
    if code_column not in columns or display_column not in columns:
        raise CodeTableError(
            f"{where}: header {columns} lacks {code_column!r} or {display_column!r}; "
            "reinstall medtwin"
        )
    for row in reader:
        code = (row.get(code_column) or "").strip()
        line = reader.line_num
        if not code:
            raise CodeTableError(f"{where}, line {line}: empty {code_column!r}")
        if code in rows:
            raise CodeTableError(f"{where}, line {line}: duplicate {code_column} {code!r}")
        extra = {
            key: (value or "").strip()
            for key, value in row.items()
            if key not in (code_column, display_column) and key is not None
        }
        rows[code] = CodeInfo(
            system=system,
            code=code,
            display=(row.get(display_column) or "").strip(),
            extra=MappingProxyType(extra),
        )
    return MappingProxyType(rows)


def all_codes(system: str) -> Mapping[str, CodeInfo]:
    """Return every shipped code of one system as a read-only ``code -> CodeInfo`` mapping.

    Parameters
    ----------
    system
        A system URI or alias (see :func:`system_alias`).

    Returns
    -------
    Mapping[str, CodeInfo]
        Empty for a system medtwin ships no table for (ICD-10-CM, CVX, UCUM, others).

    Examples
    --------
    >>> "8867-4" in all_codes("LN")
    True
    """
    canonical = system_alias(system)
    if canonical not in _TABLES:
        return MappingProxyType({})
    return _table(canonical)


def lookup(system: str, code: str) -> CodeInfo | None:
    """Return the table entry for a code, or ``None`` when medtwin does not ship it.

    Parameters
    ----------
    system
        A system URI or alias (see :func:`system_alias`).
    code
        The code; surrounding white space is ignored.

    Returns
    -------
    CodeInfo or None

    Examples
    --------
    >>> lookup(LOINC, "29463-7").extra["canonical_unit"]
    'kg'
    >>> lookup(LOINC, "0000-0") is None
    True
    """
    return all_codes(system).get(code.strip())


def display(system: str, code: str, default: str | None = None) -> str | None:
    """Return the display of a code, or ``default`` when the code is not in the tables.

    Parameters
    ----------
    system
        A system URI or alias.
    code
        The code.
    default
        What to return for an unknown code.

    Returns
    -------
    str or None

    Examples
    --------
    >>> display("RXNORM", "6809")
    'metformin'
    >>> display(LOINC, "0000-0", "unknown")
    'unknown'
    """
    info = lookup(system, code)
    return info.display if info is not None and info.display else default


def canonical_unit(loinc_code: str) -> str | None:
    """Return the UCUM unit medtwin stores a LOINC observation in, or ``None``.

    ``None`` means the code is unknown or has no unit (panels, coded and narrative results).

    Parameters
    ----------
    loinc_code
        A LOINC code such as ``"2339-0"``.

    Returns
    -------
    str or None
        A UCUM case-sensitive unit code, e.g. ``"mg/dL"`` or ``"mL/min/{1.73_m2}"``.

    Examples
    --------
    >>> canonical_unit("2339-0")
    'mg/dL'
    >>> canonical_unit("85354-9") is None
    True
    """
    info = lookup(LOINC, loinc_code)
    if info is None:
        return None
    return info.extra.get("canonical_unit") or None


def is_vital_sign(loinc_code: str) -> bool:
    """Return whether a LOINC code is in medtwin's ``vital-signs`` category.

    Parameters
    ----------
    loinc_code
        A LOINC code.

    Returns
    -------
    bool
        ``False`` for unknown codes.

    Examples
    --------
    >>> is_vital_sign("8867-4"), is_vital_sign("2339-0")
    (True, False)
    """
    info = lookup(LOINC, loinc_code)
    return info is not None and info.extra.get("category") == "vital-signs"


def ingredients(rxcui: str) -> tuple[CodeInfo, ...]:
    """Return the ingredient (RxNorm ``IN``) entries of a drug, in table order.

    Parameters
    ----------
    rxcui
        An RxNorm concept id of any term type (an ingredient returns itself).

    Returns
    -------
    tuple[CodeInfo, ...]
        Empty when the drug is unknown or its ingredients are not all in the table.

    Examples
    --------
    >>> [info.display for info in ingredients("562251")]
    ['amoxicillin', 'clavulanate']
    """
    info = lookup(RXNORM, rxcui)
    if info is None:
        return ()
    ids = [part.strip() for part in info.extra.get("ingredient_rxcui", "").split(";")]
    found = [lookup(RXNORM, part) for part in ids if part]
    if not found or any(item is None for item in found):
        return ()
    return tuple(item for item in found if item is not None)


def _word_pattern(name: str) -> re.Pattern[str]:
    # a whole word: no letter, digit, underscore or hyphen either side ("apraclonidine" and
    # "nor-clonidine" do not name clonidine)
    return re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])", re.IGNORECASE)


@functools.cache
def _longest_first(names: frozenset[str]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((n, _word_pattern(n)) for n in sorted(names, key=lambda n: (-len(n), n)))


def names_in(text: str, names: Iterable[str]) -> tuple[str, ...]:
    """Return the ``names`` that ``text`` names as whole words (any case), longest first.

    Each stretch of ``text`` counts once: a name found within a longer one's match ("insulin"
    in "insulin glargine") is not found again. The one rule medtwin matches drug names by
    (:func:`ingredients_named`, the pharmacogenomic report's medication list).

    Examples
    --------
    >>> names_in("Insulin Glargine 100 UNT/ML", ["insulin", "insulin glargine"])
    ('insulin glargine',)
    >>> names_in("apraclonidine 0.5 % / timolol", ["clonidine", "timolol"])
    ('timolol',)
    """
    found: list[str] = []
    for name, pattern in _longest_first(
        names if isinstance(names, frozenset) else frozenset(names)
    ):
        match = pattern.search(text)
        if match is None:
            continue
        found.append(name)
        # blank the match out, so that a shorter name inside it is not found again
        text = text[: match.start()] + " " * (match.end() - match.start()) + text[match.end() :]
    return tuple(found)


def data_table(filename: str) -> tuple[str, csv.DictReader[str]]:
    """A shipped table of ``medtwin/record/data`` as (its path for messages, a CSV reader of its
    rows); the reader's ``line_num`` names a bad row's line."""
    text = resources.files("medtwin.record").joinpath("data", filename).read_text("utf-8")
    # newline="" so that the csv module sees the file's own line ends (csv docs, footnote 1)
    return f"medtwin/record/data/{filename}", csv.DictReader(io.StringIO(text, newline=""))


@functools.cache
def drug_name_aliases() -> Mapping[str, tuple[CodeInfo, ...]]:
    """Other names of the RxNorm table's ingredients, from ``record/data/drug_names.csv``.

    RxNorm names drugs by their US adopted names; records from the UK and elsewhere name them
    by the international nonproprietary name and the British Approved Name (BNF), which differ
    for a few ("chlortalidone" is chlorthalidone, "paracetamol" acetaminophen), and the BNF
    names some combinations ("co-amilozide" is amiloride with hydrochlorothiazide). Each row
    gives the name, its ingredients' RxCUIs (``IN`` entries of ``rxnorm.csv``) and the source.

    Examples
    --------
    >>> [i.display for i in drug_name_aliases()["co-tenidone"]]
    ['atenolol', 'chlorthalidone']
    """
    where, reader = data_table("drug_names.csv")
    table = _table(RXNORM)
    out: dict[str, tuple[CodeInfo, ...]] = {}
    for row in reader:
        name = (row.get("name") or "").strip().lower()
        found = tuple(table.get(code) for code in (row.get("ingredients") or "").split())
        if (
            not name
            or name in out
            or not found
            or any(info is None or info.extra.get("tty") != "IN" for info in found)
            or not (row.get("source") or "").strip()
        ):
            raise CodeTableError(
                f"{where}, line {reader.line_num}: bad row {row} (a new name, RxCUIs of "
                "ingredients (IN) of rxnorm.csv, a source)"
            )
        out[name] = found  # type: ignore[assignment]
    return MappingProxyType(out)


@functools.cache
def _ingredient_names() -> tuple[dict[str, tuple[CodeInfo, ...]], dict[str, int], frozenset[str]]:
    found: dict[str, tuple[CodeInfo, ...]] = {
        info.display: (info,)
        for info in _table(RXNORM).values()
        if info.extra.get("tty") == "IN" and info.display
    }
    found.update(drug_name_aliases())
    order = {code: i for i, code in enumerate(_table(RXNORM))}
    return found, order, frozenset(found)


def ingredients_named(name: str) -> tuple[CodeInfo, ...]:
    """Return the ingredients (RxNorm ``IN`` entries of the table) a drug's name names.

    For an RxNorm code medtwin's table lacks (another strength or form of a drug it knows):
    RxNorm's normalised names of clinical and branded drugs (term types SCD, SBD, SCDC ...)
    begin with their ingredients' names ("lisinopril 20 MG Oral Tablet", "24 HR metoprolol
    succinate 100 MG Extended Release Oral Tablet [Toprol]"; RxNorm Technical Documentation,
    "Normalized names"), so each ingredient of the table named as whole words (any case,
    :func:`names_in`) is returned, in table order; a name within a longer ingredient's name
    counts once. The other names of :func:`drug_name_aliases` (INN and British Approved Names,
    BNF combination names) are read too, so a UK record's "Chlortalidone 50mg tablets" is
    chlorthalidone.

    Parameters
    ----------
    name
        The drug's name (a FHIR ``Coding.display`` or ``text``).

    Returns
    -------
    tuple[CodeInfo, ...]
        Empty when no ingredient of the table is named.

    Examples
    --------
    >>> [i.display for i in ingredients_named("lisinopril 20 MG Oral Tablet")]
    ['lisinopril']
    >>> [i.display for i in ingredients_named("hydrochlorothiazide 12.5 MG / Lisinopril 10 MG")]
    ['hydrochlorothiazide', 'lisinopril']
    >>> ingredients_named("Camila 28 Day Pack")
    ()
    >>> [i.display for i in ingredients_named("Co-amilozide 2.5mg/25mg tablets")]  # BNF name
    ['amiloride', 'hydrochlorothiazide']
    """
    table, order, names = _ingredient_names()
    found = {info.code: info for n in names_in(name, names) for info in table[n]}
    return tuple(sorted(found.values(), key=lambda info: order.get(info.code, 0)))


def ingredient(rxcui: str) -> CodeInfo | None:
    """Return the single ingredient of a drug, or ``None`` (unknown or several ingredients).

    Parameters
    ----------
    rxcui
        An RxNorm concept id (SCD, SBD, SCDC ... or an ingredient itself).

    Returns
    -------
    CodeInfo or None
        The RxNorm ``IN`` entry; use :func:`ingredients` for combination products.

    Examples
    --------
    >>> ingredient("860975").display
    'metformin'
    >>> ingredient("562251") is None
    True
    """
    found = ingredients(rxcui)
    return found[0] if len(found) == 1 else None


_LOINC_CODE = re.compile(r"^(\d{1,7})-(\d)$")


def loinc_check_digit_ok(code: str) -> bool:
    """Return whether a LOINC code is well formed and its Mod 10 check digit is right.

    The algorithm (a Luhn variant) doubles the digits in odd positions counted from the
    right, adds the digits of the result to the digits in even positions, and takes the
    distance to the next multiple of ten. LOINC Parts and Answers (``LP``/``LA``
    prefixes) use another variant and are reported as not ok.

    Parameters
    ----------
    code
        A LOINC code such as ``"8480-6"``.

    Returns
    -------
    bool
        ``False`` also for malformed codes. The 14 deprecated codes in
        :data:`LOINC_KNOWN_INVALID_CHECK_DIGITS` genuinely fail.

    References
    ----------
    LOINC Users' Guide, section 12 C "Calculating Mod 10 Check Digits" (Regenstrief
    Institute, 2023), https://loinc.org/kb/users-guide/calculating-mod-10-check-digits/

    Examples
    --------
    >>> loinc_check_digit_ok("8480-6"), loinc_check_digit_ok("8480-5")
    (True, False)
    >>> loinc_check_digit_ok("12345-5")  # the Users' Guide example
    True
    """
    match = _LOINC_CODE.match(code.strip())
    if match is None:
        return False
    body, check = match.groups()
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:  # 1st, 3rd, 5th ... digit from the right
            digit *= 2
            digit = digit // 10 + digit % 10
        total += digit
    return (10 - total % 10) % 10 == int(check)


# Verhoeff's dihedral group D5 tables: multiplication, permutation F, as printed in the
# SNOMED CT specification (tables 6.4.2-1 and 6.4.2-2).
_D5 = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_F = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
YES_ANSWERS = frozenset(
    {
        ("http://terminology.hl7.org/CodeSystem/v2-0532", "Y"),  # HL7 v2 yes/no indicator
        (SNOMED, "373066001"),  # Yes (qualifier value)
    }
)
"""A coded yes, as (system, code): HL7 v2-0532 ``Y``, SNOMED CT 373066001."""
NO_ANSWERS = frozenset(
    {
        ("http://terminology.hl7.org/CodeSystem/v2-0532", "N"),
        (SNOMED, "373067005"),  # No (qualifier value)
    }
)
"""A coded no, as (system, code): HL7 v2-0532 ``N``, SNOMED CT 373067005."""

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
"""The NHS number's identifier system in UK Core (and GP Connect)."""
NHS_NUMBER_SYSTEMS = frozenset(
    {
        "https://fhir.nhs.uk/Id/nhs-number",  # UK Core, GP Connect
        "http://fhir.nhs.net/Id/nhs-number",  # CareConnect (STU3)
        "urn:oid:2.16.840.1.113883.2.1.4.1",  # the NHS number's OID (HL7 v3, CDA)
    }
)
"""Identifier systems of the NHS number (England, Wales, Isle of Man)."""


def nhs_number(value: str) -> str | None:
    """The NHS number ``value`` names, as its 10 digits, or ``None`` when it is not one.

    Spaces and hyphens are ignored (it is written 3-3-4: "943 476 5919"). The tenth digit is a
    modulus 11 check digit over the first nine, weighted 10 down to 2: 11 minus the remainder of
    the weighted sum, 11 read as 0; a number whose check would be 10 is never issued (NHS Data
    Dictionary, "NHS Number", check digit validation).

    Examples
    --------
    >>> nhs_number("943 476 5919"), nhs_number("9434765918"), nhs_number("94347659")
    ('9434765919', None, None)
    """
    digits = value.replace(" ", "").replace("-", "")
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return None
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return digits if check != 10 and check == int(digits[9]) else None


_SCTID = re.compile(r"^[1-9]\d{5,17}$")


def snomed_check_digit_ok(sctid: str) -> bool:
    """Return whether a SNOMED CT identifier is well formed and its Verhoeff check digit is right.

    An SCTID has 6 to 18 digits without a leading zero; its last digit is a Verhoeff
    (dihedral group D5) check digit over all the digits before it.

    Parameters
    ----------
    sctid
        A SNOMED CT identifier such as ``"44054006"``.

    Returns
    -------
    bool
        ``False`` also for malformed identifiers.

    References
    ----------
    SNOMED International, SNOMED CT Technical Implementation Guide, now the Release File
    Specification, section 6.4 "Check-digit" and 6.4.2 "Check-digit Computation" (Verhoeff's
    dihedral group D5 check, tables 6.4.2-1 to 6.4.2-3).
    Verhoeff J. Error detecting decimal codes. Mathematical Centre Tract 29, Amsterdam, 1969.

    Examples
    --------
    >>> snomed_check_digit_ok("44054006"), snomed_check_digit_ok("44054007")
    (True, False)
    """
    text = sctid.strip()
    if _SCTID.match(text) is None:
        return False
    check = 0
    for position, char in enumerate(reversed(text)):
        check = _D5[check][_F[position % 8][int(char)]]
    return check == 0
