"""Smoking status in SNOMED CT: which answers say a current smoker, and how much.

Records say a patient's smoking status in two ways:

- as an answer: the Observation ``code`` is LOINC 72166-2 (tobacco smoking status) and the
  ``valueCodeableConcept`` a SNOMED CT finding, as US Core, the International Patient Summary
  and Synthea write it;
- as the finding itself: the Observation ``code`` is the SNOMED CT finding ("Light cigarette
  smoker (1-9 cigs/day)", "Ex-smoker") with no value, as UK general practice systems record
  it and GP Connect sends it.

The FHIR reader turns the second into the first (:func:`medtwin.ingest.snomed.smoking_answer`),
so one reader of the record sees one shape. The table ``record/data/smoking_status.csv``
(one row per SNOMED CT finding, each citing its source) says for each finding whether it
means a current smoker (``yes``, ``no``, or not said) and, where its term says how much, the
QRISK3 smoking group (Hippisley-Cox J et al. BMJ 2017;357:j2099: non-smoker, ex-smoker,
light under 10 a day, moderate 10-19, heavy 20 or more). The UK findings and their current /
ex / light / moderate / heavy reading are those of the BHF Data Science Centre's smoking
status codelist (CVD-COVID-UK), the US ones the US Core smoking status value set.

Examples
--------
>>> smoking_table()["160604004"].qrisk3
'moderate'
>>> smoking_table()["8517006"].current
False
>>> smoking_table()["266927001"].current is None  # unknown if ever smoked
True
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

__all__ = ["QRISK3_GROUPS", "SMOKING_STATUS_LOINC", "SmokingFinding", "smoking_table"]

SMOKING_STATUS_LOINC: Final = "72166-2"
"""LOINC Tobacco smoking status: the question whose answer is one of the findings."""

QRISK3_GROUPS: Final = ("non_smoker", "ex_smoker", "light", "moderate", "heavy")
"""QRISK3's smoking groups, in its order."""

_CURRENT = {"yes": True, "no": False, "": None}


@dataclass(frozen=True, slots=True)
class SmokingFinding:
    """One row of ``smoking_status.csv``.

    Attributes
    ----------
    code, display
        The SNOMED CT concept and its term.
    current
        ``True`` a current smoker, ``False`` not (never or ex), ``None`` not said.
    qrisk3
        The QRISK3 group the term names, or ``None`` when it does not say (a current smoker
        of unsaid amount, a "current non-smoker" who may or may not have smoked before).
    source
        Where the reading comes from.
    """

    code: str
    display: str
    current: bool | None
    qrisk3: str | None
    source: str


@functools.cache
def smoking_table() -> Mapping[str, SmokingFinding]:
    """The shipped smoking findings (read once), keyed by SNOMED CT code.

    Raises
    ------
    medtwin.record.codes.CodeTableError
        When a row is malformed: a SNOMED CT code whose check digit fails, a duplicate, an
        unknown ``current`` or QRISK3 value, a group that contradicts ``current`` (a light
        smoker who is not current), or a row without a source.
    """
    from medtwin.record.codes import CodeTableError, data_table, snomed_check_digit_ok

    where, reader = data_table("smoking_status.csv")
    rows: dict[str, SmokingFinding] = {}
    for row in reader:
        code = (row.get("code") or "").strip()
        current_text = (row.get("current") or "").strip()
        group = (row.get("qrisk3") or "").strip() or None
        known = current_text in _CURRENT
        current = _CURRENT.get(current_text)
        consistent = (
            group is None
            or (group in ("light", "moderate", "heavy") and current is True)
            or (group in ("non_smoker", "ex_smoker") and current is False)
        )
        if (
            not snomed_check_digit_ok(code)
            or code in rows
            or not known
            or (group is not None and group not in QRISK3_GROUPS)
            or not consistent
            or not (row.get("source") or "").strip()
            or not (row.get("display") or "").strip()
        ):
            raise CodeTableError(
                f"{where}, line {reader.line_num}: bad row {row} (SNOMED CT codes valid and "
                f"unique; current yes/no/empty; qrisk3 one of {QRISK3_GROUPS} agreeing with "
                "current, or empty; a display and a source)"
            )
        rows[code] = SmokingFinding(
            code, row["display"].strip(), current, group, row["source"].strip()
        )
    return MappingProxyType(rows)
