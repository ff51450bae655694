"""Export: the record in the formats hospitals speak (FHIR R4 Bundle and Bulk NDJSON)."""

from __future__ import annotations

from medtwin.export.fhir import (
    ExportError,
    fact_to_resource,
    patient_bundle,
    write_bulk_ndjson,
    write_patient_bundle,
)

__all__ = [
    "ExportError",
    "fact_to_resource",
    "patient_bundle",
    "write_bulk_ndjson",
    "write_patient_bundle",
]
