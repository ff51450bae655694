"""List the LOINC, SNOMED CT and RxNorm codes that occur in the shared FHIR test data.

The code tables shipped in ``src/medtwin/record/data/`` must cover every code that the
shared test data uses. This script walks that data and prints, for each code, the displays
and units seen there, so that a maintainer can add missing rows to the CSV tables.

What is collected
-----------------
- LOINC: ``Observation.code`` and ``Observation.component.code`` in
  ``fhir/synthea-r4/*.json``, ``fhir/uscore/*.json`` and ``wearables/hl7-phd/*.json``, with the
  UCUM codes of ``valueQuantity`` seen for each.
- SNOMED CT: ``Condition.code`` in ``fhir/synthea-r4``, ``fhir/uscore`` and
  ``fhir/bulk-10-patients/Condition.000.ndjson``.
- RxNorm: ``MedicationRequest.medicationCodeableConcept`` (and ``Medication.code``, for
  requests that reference a Medication) in the same three FHIR folders, plus
  ``fhir/bulk-10-patients/MedicationRequest.000.ndjson``.

Usage
-----
``python tools/collect_codes.py [--data DIR] [--json] [--missing]``

``--data`` defaults to ``$MEDTWIN_SHARED_DATA`` or ``<repo>/../shared/data``. ``--missing``
prints only the codes that are not yet in the shipped tables (needs ``src`` importable).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Seen:
    """Displays, units and resource kinds seen for one (system, code)."""

    displays: Counter[str] = field(default_factory=Counter)
    units: Counter[str] = field(default_factory=Counter)
    where: Counter[str] = field(default_factory=Counter)


def default_data_dir() -> Path:
    """Return the shared data folder from ``MEDTWIN_SHARED_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("MEDTWIN_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def resources(obj: Any) -> Iterator[dict[str, Any]]:
    """Yield every FHIR resource nested anywhere in ``obj`` (bundles, contained resources)."""
    if isinstance(obj, dict):
        if "resourceType" in obj:
            yield obj
        for value in obj.values():
            yield from resources(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from resources(value)


def load(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the resources of one ``.json`` or ``.ndjson`` file."""
    raw = path.read_bytes()
    if path.suffix == ".ndjson":
        for line in raw.splitlines():
            if line.strip():
                yield from resources(orjson.loads(line))
    else:
        yield from resources(orjson.loads(raw))


def codings(concept: Any) -> Iterator[dict[str, Any]]:
    """Yield the codings of a CodeableConcept (tolerating malformed input)."""
    if isinstance(concept, dict):
        for coding in concept.get("coding", []) or []:
            if isinstance(coding, dict) and coding.get("code"):
                yield coding


def data_files(data: Path) -> list[Path]:
    """Return the shared data files that this script reads."""
    fhir = data / "fhir"
    files = sorted((fhir / "synthea-r4").glob("*.json"))
    files += sorted((fhir / "uscore").glob("*.json"))
    files += sorted((data / "wearables" / "hl7-phd").glob("*.json"))
    files += [
        fhir / "bulk-10-patients" / "Condition.000.ndjson",
        fhir / "bulk-10-patients" / "MedicationRequest.000.ndjson",
    ]
    return [path for path in files if path.exists()]


def collect(data: Path) -> dict[tuple[str, str], Seen]:
    """Collect every relevant (system, code) in the shared data with what was seen for it."""
    seen: dict[tuple[str, str], Seen] = defaultdict(Seen)

    def note(coding: dict[str, Any], where: str, unit: str | None = None) -> None:
        system = str(coding.get("system", ""))
        if system not in (LOINC, SNOMED, RXNORM):
            return
        entry = seen[(system, str(coding["code"]))]
        if coding.get("display"):
            entry.displays[str(coding["display"])] += 1
        if unit:
            entry.units[unit] += 1
        entry.where[where] += 1

    for path in data_files(data):
        label = path.parent.name
        for resource in load(path):
            kind = resource.get("resourceType")
            if kind == "Observation":
                unit = (resource.get("valueQuantity") or {}).get("code")
                for coding in codings(resource.get("code")):
                    note(coding, f"{label}:Observation", unit)
                for component in resource.get("component", []) or []:
                    unit = (component.get("valueQuantity") or {}).get("code")
                    for coding in codings(component.get("code")):
                        note(coding, f"{label}:Observation.component", unit)
            elif kind == "Condition":
                for coding in codings(resource.get("code")):
                    note(coding, f"{label}:Condition")
            elif kind == "MedicationRequest":
                for coding in codings(resource.get("medicationCodeableConcept")):
                    note(coding, f"{label}:MedicationRequest")
            elif kind == "Medication":
                for coding in codings(resource.get("code")):
                    note(coding, f"{label}:Medication")
    return dict(seen)


def main(argv: list[str] | None = None) -> int:
    """Print the codes found in the shared data (tab-separated, or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--missing", action="store_true", help="only codes not in the tables")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: shared data folder {args.data} not found (set MEDTWIN_SHARED_DATA)")
        return 1
    seen = collect(args.data)
    keys = sorted(seen)
    if args.missing:
        sys.path.insert(0, str(REPO_ROOT / "src"))
        from medtwin.record import codes

        keys = [key for key in keys if codes.lookup(*key) is None]
    if args.json:
        out = [
            {
                "system": system,
                "code": code,
                "displays": dict(seen[(system, code)].displays.most_common()),
                "units": dict(seen[(system, code)].units.most_common()),
                "where": dict(seen[(system, code)].where.most_common()),
            }
            for system, code in keys
        ]
        sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    for system, code in keys:
        entry = seen[(system, code)]
        displays = " | ".join(entry.displays)
        units = ",".join(entry.units)
        where = ",".join(entry.where)
        print(f"{system}\t{code}\t{displays}\t{units}\t{where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
