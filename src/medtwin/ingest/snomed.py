"""SNOMED CT-coded observations -> LOINC, for records from UK general practice and others.

LOINC codes vital signs and laboratory results in US records; UK general practice records
code them in SNOMED CT observable entities ("Systolic arterial pressure" 72313002, "Serum
creatinine level" 1000731000000107), and GP Connect and the NHS Health Check send FHIR
Observations with only those codes. Everything in medtwin that reads a measurement (the
patient summary, timelines, risk scores, the monitors) asks for LOINC codes, so the FHIR
reader maps them, as it maps IEEE 11073 device codes (:mod:`medtwin.ingest.ieee11073`):

- :func:`loinc_for_snomed` gives the LOINC coding of a ``CodeableConcept`` whose SNOMED CT
  coding is in ``medtwin/record/data/snomed_loinc.csv`` (one row per SNOMED CT code, each
  citing its source). It is asked only when the concept has no LOINC coding: a LOINC coding
  sent with it always wins. A SNOMED CT observable does not say whether a result is a mass or
  a substance concentration ("Serum cholesterol level" is either), LOINC does (2093-3 mg/dL,
  14647-2 mmol/L), so a row may list several LOINC codes and the value's unit picks one: the
  first whose canonical unit is the value's unit, else the first of the same dimension, else
  the first that can express the value (through the analyte's molar mass); a unit none can
  express leaves the SNOMED CT code in place, and the value is stored as sent.
- :func:`smoking_answer` turns a smoking status recorded as its finding (the Observation's
  code is "Light cigarette smoker (1-9 cigs/day)", with no value) into the question and
  answer that US Core and the International Patient Summary use (LOINC 72166-2, the finding
  as the value), from ``medtwin/record/data/smoking_status.csv``
  (:mod:`medtwin.record.smoking`).

The fact then has the LOINC code and the value in its canonical unit; the SNOMED CT coding
stays in the stored resource (``raw``), which export sends back unchanged.

Examples
--------
>>> concept = {"coding": [{"system": SNOMED, "code": "1005671000000105"}]}
>>> loinc_for_snomed(concept, {"value": 5.2, "unit": "mmol/L"}).code
'14647-2'
>>> loinc_for_snomed(concept, {"value": 201, "code": "mg/dL"}).code
'2093-3'
>>> loinc_for_snomed({"coding": [{"system": SNOMED, "code": "22298006"}]}) is None
True
>>> smoking_answer({"coding": [{"system": SNOMED, "code": "160603005"}]}).code
'160603005'
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from medtwin.ingest.base import quantity_unit
from medtwin.record.codes import YES_ANSWERS
from medtwin.record.facts import LOINC, SNOMED, Coding

__all__ = ["SnomedMapping", "affirmed", "loinc_for_snomed", "smoking_answer", "snomed_table"]


@dataclass(frozen=True, slots=True)
class SnomedMapping:
    """One row of ``snomed_loinc.csv``: a SNOMED CT code, its LOINC candidates, the source."""

    snomed: str
    snomed_display: str
    loinc: tuple[str, ...]
    source: str


@functools.cache
def snomed_table() -> Mapping[str, SnomedMapping]:
    """The shipped SNOMED CT -> LOINC table (read once), keyed by SNOMED CT code.

    Raises
    ------
    medtwin.record.codes.CodeTableError
        A SNOMED CT code with a wrong check digit or twice, a LOINC code not in
        ``loinc.csv``, or a row without a source.

    Examples
    --------
    >>> snomed_table()["72313002"].loinc
    ('8480-6',)
    """
    from medtwin.record.codes import (
        CodeTableError,
        data_table,
        lookup,
        snomed_check_digit_ok,
    )

    where, reader = data_table("snomed_loinc.csv")
    rows: dict[str, SnomedMapping] = {}
    for row in reader:
        code = (row.get("snomed") or "").strip()
        loincs = tuple((row.get("loinc") or "").split())
        if (
            not snomed_check_digit_ok(code)
            or code in rows
            or not loincs
            or any(lookup(LOINC, loinc) is None for loinc in loincs)
            or not (row.get("source") or "").strip()
        ):
            raise CodeTableError(
                f"{where}, line {reader.line_num}: bad row {row} (SNOMED CT codes valid and "
                "unique, every LOINC code in loinc.csv, every row cites a source)"
            )
        rows[code] = SnomedMapping(code, row["snomed_display"], loincs, row["source"])
    return MappingProxyType(rows)


def _choose(candidates: tuple[str, ...], quantity: Any) -> str | None:
    """The LOINC code of ``candidates`` that the value's unit fits best (see the module)."""
    from medtwin.record.codes import canonical_unit
    from medtwin.record.units import UnitsError, normalise, parse_ucum

    unit = quantity_unit(quantity)
    if unit is None:
        return candidates[0]
    try:
        parsed = parse_ucum(unit)
    except UnitsError:
        return None  # the reader quarantines an unreadable unit with its own message
    by_unit = [code for code in candidates if canonical_unit(code) == parsed.canonical]
    if by_unit:
        return by_unit[0]
    by_dimension = []
    for code in candidates:
        target = canonical_unit(code)
        if target and parse_ucum(target).dimension == parsed.dimension:
            by_dimension.append(code)
    if by_dimension:
        return by_dimension[0]
    for code in candidates:
        try:
            normalise(float(quantity["value"]), unit, code=code)
        except (UnitsError, TypeError, ValueError):
            continue
        return code
    return None


def loinc_for_snomed(concept: Any, quantity: Any = None) -> Coding | None:
    """The LOINC coding for a FHIR ``CodeableConcept`` with a mapped SNOMED CT coding.

    Parameters
    ----------
    concept
        ``Observation.code`` or ``Observation.component.code`` (a JSON dict).
    quantity
        The ``valueQuantity`` that goes with it, if any: its unit picks the LOINC code of a
        SNOMED CT observable that several LOINC codes split by property (mass or substance
        concentration, % or mmol/mol); a unit none of them can express gives ``None``.

    Returns
    -------
    Coding or None
        ``None`` when the concept has no SNOMED CT coding in :func:`snomed_table`.
    """
    if not isinstance(concept, dict):
        return None
    from medtwin.record.codes import lookup

    for coding in concept.get("coding") or ():
        if not isinstance(coding, dict) or coding.get("system") != SNOMED:
            continue
        row = snomed_table().get(str(coding.get("code", "")).strip())
        if row is None:
            continue
        loinc = _choose(row.loinc, quantity)
        if loinc is None:
            return None
        info = lookup(LOINC, loinc)
        return Coding(LOINC, loinc, info.display if info is not None else None)
    return None


def affirmed(resource: Mapping[str, Any]) -> bool:
    """Whether a finding used as an Observation's code is asserted: no ``value[x]`` at all,
    ``valueBoolean`` true, or a yes (HL7 v2-0532 ``Y``, SNOMED CT 373066001) as the value, as
    the NHS Health Check online sends a smoking status ("Light cigarette smoker", Y)."""
    values = [key for key in resource if key.startswith("value")]
    if not values:
        return True
    if values != ["valueBoolean"] and values != ["valueCodeableConcept"]:
        return False
    if resource.get("valueBoolean") is True:
        return True
    concept = resource.get("valueCodeableConcept")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return any(
        isinstance(c, dict) and (c.get("system"), c.get("code")) in YES_ANSWERS
        for c in codings or ()
    )


def smoking_answer(concept: Any) -> Coding | None:
    """The SNOMED CT smoking finding an Observation's ``code`` records, or ``None``.

    A finding such as "Ex-smoker" (8517006) used as the code is the answer to LOINC 72166-2;
    the caller stores it that way when the Observation asserts it (:func:`affirmed`).
    """
    if not isinstance(concept, dict):
        return None
    from medtwin.record.smoking import smoking_table

    for coding in concept.get("coding") or ():
        if not isinstance(coding, dict) or coding.get("system") != SNOMED:
            continue
        row = smoking_table().get(str(coding.get("code", "")).strip())
        if row is not None:
            return Coding(SNOMED, row.code, coding.get("display") or row.display)
    return None
