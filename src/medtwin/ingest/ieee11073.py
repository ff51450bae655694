"""IEEE 11073 (MDC) device codes -> LOINC, for FHIR Observations from personal health devices.

Personal health devices (pulse oximeters, blood-pressure cuffs, thermometers, glucose meters,
scales) code what they measure in the ISO/IEEE 11073-10101 nomenclature, system
``urn:iso:std:iso:11073:10101`` (:data:`MDC`). The HL7 Personal Health Device (PHD)
implementation guide sends those codes in ``Observation.code`` and, for vital signs, adds
the LOINC code of the FHIR Vital Signs profile; many gateways send the MDC code alone.

:func:`loinc_for_mdc` gives the LOINC coding for a ``CodeableConcept`` whose MDC coding is in
the table ``medtwin/record/data/mdc_loinc.csv`` (one row per MDC code, each citing its
source). The FHIR reader asks it only when an Observation (or a component) carries no LOINC
coding: a LOINC coding sent by the device always wins. The fact then has the LOINC code
and the value in the LOINC code's canonical UCUM unit; the original MDC coding stays in the
stored resource (``raw``), which export sends back unchanged.

An MDC code that is not in the table (battery level, signal quality, device status ...) is
not an error: the Observation is stored with its MDC code, as FHIR allows.

A value whose unit cannot express the LOINC quantity (a "body weight" in mmHg) keeps its
MDC code rather than being forced into LOINC.

Examples
--------
>>> concept = {"coding": [{"system": MDC, "code": "160368"}]}
>>> loinc_for_mdc(concept, {"value": 5.5, "code": "mmol/L"})
Coding(system='http://loinc.org', code='2345-7', display='Glucose [Mass/volume] in Serum or Plasma')
>>> loinc_for_mdc({"coding": [{"system": MDC, "code": "67996"}]}) is None  # battery charge
True
>>> loinc_for_mdc(concept, {"value": 5.5, "code": "mm[Hg]"}) is None  # unit does not fit
True

References
----------
.. [10101] ISO/IEEE 11073-10101 Health informatics - Point-of-care medical device
   communication - Nomenclature. A code is ``partition * 65536 + term code``: partition 2
   (SCADA) term 19384 MDC_PULS_OXIM_SAT_O2 is 150456.
.. [PHD] HL7 FHIR Implementation Guide: Personal Health Device (PHD), examples in
   https://github.com/HL7/phd ``input/examples`` (commit 5af8412).
.. [VS] HL7 FHIR R4 Vital Signs profiles, http://hl7.org/fhir/R4/observation-vitalsigns.html
.. [LOINC-IEEE] LOINC's IEEE 11073 mapping (the ``IEEE_REFID`` and ``IEEE_CF_CODE10``
   properties of LOINC terms, LOINC 2.66 and later).
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any, Final

from medtwin.record.facts import LOINC, Coding

__all__ = ["MDC", "MdcMapping", "loinc_for_mdc", "mdc_table"]

#: The FHIR system URI of the ISO/IEEE 11073-10101 nomenclature.
MDC: Final = "urn:iso:std:iso:11073:10101"


@dataclass(frozen=True, slots=True)
class MdcMapping:
    """One row of ``mdc_loinc.csv``: an MDC code, its reference id, its LOINC code and the source."""

    mdc_code: str
    mdc_refid: str
    loinc: str
    loinc_display: str
    source: str


@functools.cache
def mdc_table() -> Mapping[str, MdcMapping]:
    """The shipped MDC -> LOINC table (read once), keyed by MDC code.

    Examples
    --------
    >>> mdc_table()["150020"].loinc, mdc_table()["150020"].mdc_refid
    ('85354-9', 'MDC_PRESS_BLD_NONINV')
    """
    from medtwin.record.codes import CodeTableError, lookup

    where = "medtwin/record/data/mdc_loinc.csv"
    text = resources.files("medtwin.record").joinpath("data", "mdc_loinc.csv").read_text("utf-8")
    rows: dict[str, MdcMapping] = {}
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for row in reader:
        code = (row.get("mdc_code") or "").strip()
        loinc = (row.get("loinc") or "").strip()
        info = lookup(LOINC, loinc)
        if not code.isdigit() or code in rows or info is None or not row.get("source"):
            raise CodeTableError(
                f"{where}, line {reader.line_num}: bad row {row} (MDC codes are numeric and "
                "unique, the LOINC code must be in loinc.csv, every row cites a source)"
            )
        rows[code] = MdcMapping(code, row["mdc_refid"], loinc, info.display, row["source"])
    return MappingProxyType(rows)


def _unit_fits(loinc: str, quantity: Any) -> bool:
    """Whether ``quantity``'s unit can express the quantity ``loinc`` names (no unit: yes)."""
    from medtwin.ingest.base import quantity_unit
    from medtwin.record.units import UnitsError, normalise

    unit = quantity_unit(quantity)
    if unit is None:
        return True
    try:
        normalise(float(quantity["value"]), unit, code=loinc)
    except (UnitsError, TypeError, ValueError):
        return False
    return True


def loinc_for_mdc(concept: Any, quantity: Any = None) -> Coding | None:
    """The LOINC coding for a FHIR ``CodeableConcept`` with a mapped MDC coding, else ``None``.

    Parameters
    ----------
    concept
        ``Observation.code`` or ``Observation.component.code`` (a JSON dict).
    quantity
        The ``valueQuantity`` that goes with it, if any: a unit that cannot express the
        LOINC quantity leaves the MDC code in place (returns ``None``).

    Returns
    -------
    Coding or None
        ``None`` when the concept has no MDC coding in :func:`mdc_table`.
    """
    if not isinstance(concept, dict):
        return None
    for coding in concept.get("coding") or ():
        if not isinstance(coding, dict) or coding.get("system") != MDC:
            continue
        row = mdc_table().get(str(coding.get("code", "")).strip())
        if row is None:
            continue
        if not _unit_fits(row.loinc, quantity):
            return None
        return Coding(LOINC, row.loinc, row.loinc_display)
    return None
