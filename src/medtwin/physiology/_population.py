"""Population checks shared by the type 1 diabetes models.

The UVA/Padova simulator's virtual subjects (Kovatchev et al. 2009; Dalla Man et al. 2007) and
Hovorka's model (Hovorka et al. 2004) describe people with type 1 diabetes: no endogenous
insulin secretion, insulin given subcutaneously. A record that says type 2 diabetes (and not
type 1) is outside that population: its endogenous secretion and insulin resistance are not
in these models. A record that says nothing about diabetes is not refused (data may come from
a device alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medtwin.model.base import OutsidePopulationError

__all__ = ["TYPE1", "TYPE2", "require_type1_diabetes"]

TYPE1 = frozenset({"http://snomed.info/sct|46635009"})
"""Type 1 diabetes: SNOMED CT 46635009; ICD-10 E10.* (matched by prefix)."""
TYPE2 = frozenset({"http://snomed.info/sct|44054006"})
"""Type 2 diabetes: SNOMED CT 44054006; ICD-10 E11.* (matched by prefix)."""
_ICD10 = ("http://hl7.org/fhir/sid/icd-10|", "http://hl7.org/fhir/sid/icd-10-cm|")


def _has(conditions: set[str], snomed: frozenset[str], icd_prefix: str) -> bool:
    if conditions & snomed:
        return True
    return any(c.startswith(s + icd_prefix) for c in conditions for s in _ICD10)


def require_type1_diabetes(model: str, patient: Mapping[str, Any], source: str) -> None:
    """Refuse a patient whose record codes type 2 diabetes and not type 1.

    >>> require_type1_diabetes("m", {"conditions": {"http://snomed.info/sct|46635009"}}, "s")
    >>> require_type1_diabetes("m", {"conditions": {"http://snomed.info/sct|44054006"}}, "s")
    Traceback (most recent call last):
    ...
    medtwin.model.base.OutsidePopulationError: model 'm' describes type 1 diabetes (s); the record codes type 2 diabetes (SNOMED 44054006 / ICD-10 E11) and not type 1, so its insulin secretion and resistance are outside the model
    """
    conditions = set(patient.get("conditions") or ())
    if _has(conditions, TYPE2, "E11") and not _has(conditions, TYPE1, "E10"):
        raise OutsidePopulationError(
            f"model {model!r} describes type 1 diabetes ({source}); the record codes type 2 "
            "diabetes (SNOMED 44054006 / ICD-10 E11) and not type 1, so its insulin secretion "
            "and resistance are outside the model"
        )
