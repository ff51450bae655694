"""Synthetic patients written the way UK general practice records them (``medtwin synth --form
uk``).

The people are the generator's (:mod:`medtwin.synth.generator`: their ages, physiology,
conditions and treatment drawn from its population tables, which are NHANES-based, a US
population); only the *recording* is British, so that the UK path of medtwin (SNOMED CT
observables, SI units, dm+d product names, NHS numbers, the NHS ethnic category, QRISK3 and
SCORE2) can be tried and tested at scale without real records:

- every result whose LOINC code a SNOMED CT observable of ``record/data/snomed_loinc.csv`` maps
  back to is coded in that observable only and given in the unit a UK laboratory reports it in
  (cholesterol and glucose in mmol/L, creatinine in umol/L, HbA1c in IFCC mmol/mol; converted with
  the molar masses and the HbA1c master equation of :mod:`medtwin.record.units`); results
  without a UK observable keep their LOINC code;
- blood pressure as GP Connect's panel (SNOMED CT 75367002 with systolic 72313002 and diastolic
  1091811000000102 components);
- the smoking status as the finding itself (the Observation's code, no value), as the NHS
  Health Check online sends it;
- every prescription by its product name only, in dm+d's style ("Atorvastatin 20mg tablets"
  for RxNorm's "atorvastatin 20 MG Oral Tablet"): no RxNorm code;
- times at the same clock time in England (the offset of Europe/London on that day: +00:00 or
  +01:00, for the US form's -05:00 ...), so a check-up at 14:50 stays at 14:50;
- an NHS number from the test range (999 000 0000 to 999 999 9999, NHS England's numbers for
  testing, with a valid modulus 11 check digit) beside the generator's identifier;
- the NHS ethnic category (UK Core ``Extension-UKCore-EthnicCategory``) drawn from the 2021
  census shares of England and Wales (:data:`ETHNIC_CATEGORIES`), in place of the US Core race
  and ethnicity; a home address in an English city, country GB.

The same seed gives the same people in either form (the ethnic category and the city come from
a generator of their own), so the two forms can be compared.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import re
from collections.abc import Iterator, Sequence
from typing import Any, Final
from zoneinfo import ZoneInfo

from medtwin.record.codes import NHS_NUMBER_SYSTEM, canonical_unit, nhs_number
from medtwin.record.facts import LOINC, SNOMED
from medtwin.record.units import convert, find_analyte
from medtwin.synth.generator import UCUM

__all__ = [
    "ETHNIC_CATEGORIES",
    "UK_ETHNIC_CATEGORY",
    "dmd_style_name",
    "london_time",
    "nhs_test_numbers",
    "uk_form",
]

UK_ETHNIC_CATEGORY: Final = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
)
UK_ETHNIC_CATEGORY_SYSTEM: Final = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland"
_US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-"

ETHNIC_CATEGORIES: Final[tuple[tuple[str, str, float], ...]] = (
    ("A", "White - British", 74.4),
    ("B", "White - Irish", 0.9),
    ("C", "White - Any other White background", 6.5),
    ("D", "Mixed - White and Black Caribbean", 0.8),
    ("E", "Mixed - White and Black African", 0.4),
    ("F", "Mixed - White and Asian", 0.8),
    ("G", "Mixed - Any other mixed background", 0.8),
    ("H", "Asian or Asian British - Indian", 3.1),
    ("J", "Asian or Asian British - Pakistani", 2.7),
    ("K", "Asian or Asian British - Bangladeshi", 1.1),
    ("L", "Asian or Asian British - Any other Asian background", 1.6),
    ("M", "Black or Black British - Caribbean", 1.0),
    ("N", "Black or Black British - African", 2.5),
    ("P", "Black or Black British - Any other Black background", 0.5),
    ("R", "Other Ethnic Groups - Chinese", 0.7),
    ("S", "Other Ethnic Groups - Any other ethnic group", 2.2),
)
"""NHS ethnic categories (NHS Data Dictionary, the 2001 census classification England's GP
systems record) with their percent of usual residents of England and Wales at the 2021 census
(Office for National Statistics, "Ethnic group, England and Wales: Census 2021", 29 November
2022; the GOV.UK "Ethnicity facts and figures" page "Population of England and Wales"). The
five high-level groups (White 81.7 %, Asian 9.3 %, Black 4.0 %, Mixed 2.9 %, Other 2.1 %) and
White British 74.4 %, other White 6.2 % and Indian 3.1 % were checked against those pages here;
the other subgroups are the census table's rounded shares, not re-checked here. The 2021
classification's new groups are filed where the 2001 codes put them: Roma (0.2 %) and Gypsy or
Irish Traveller (0.1 %) under C, Arab (0.6 %) under S. Rounding leaves the White total 0.1
above and Other 0.1 above the bulletin's; the weights sum to 100."""

_CITIES: Final = (
    "Birmingham", "Bristol", "Leeds", "Leicester", "Liverpool", "London", "Manchester",
    "Newcastle upon Tyne", "Norwich", "Nottingham", "Plymouth", "Sheffield",
)  # fmt: skip
_SI_UNITS: Final = ("mmol/L", "umol/L", "mmol/mol")
"""The units a UK laboratory reports what a US one reports in mg/dL or % (HbA1c)."""
_LAB_DECIMALS: Final = {"mmol/L": 1, "umol/L": 0, "mmol/mol": 0}
"""Decimals a UK laboratory reports a converted result to (cholesterol 5.2 mmol/L, creatinine
88 umol/L, HbA1c 48 mmol/mol)."""
_BP_PANEL: Final = "85354-9"
_SMOKING: Final = "72166-2"
_DATETIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?)(?:Z|[+-]\d\d:\d\d)$")
_LONDON: Final = ZoneInfo("Europe/London")
_DOSE_FORM = re.compile(
    r"^(?P<name>.+?) (?P<amount>\d+(?:\.\d+)?) MG (?:Oral )?(?P<form>Tablet|Capsule)$",
    re.IGNORECASE,
)


def nhs_test_numbers(seed: int, count: int) -> list[str]:
    """``count`` distinct NHS numbers of the test range for a run's ``seed``: 999 followed by
    six digits and a valid modulus 11 check digit (:func:`medtwin.record.codes.nhs_number`),
    counting up from ``999 000 000`` plus 1,000 times ``seed`` modulo 900 (so different seeds
    of small runs differ), skipping the nine-digit stems whose check digit would be 10.

    >>> nhs_test_numbers(0, 3)
    ['9990000018', '9990000026', '9990000034']
    """
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")
    start = 999_000_000 + (seed % 900) * 1_000
    if start + count * 11 // 10 + 10 > 999_999_999:
        raise ValueError(f"{count} patients do not fit the NHS test number range after {start}")
    found: list[str] = []
    for stem in itertools.count(start):
        total = sum(int(d) * w for d, w in zip(str(stem), range(10, 1, -1), strict=True))
        check = (11 - total % 11) % 11
        if check == 10:
            continue
        number = f"{stem}{check}"
        assert nhs_number(number) == number
        found.append(number)
        if len(found) == count:
            break
    return found


def dmd_style_name(display: str) -> str:
    """An RxNorm clinical drug name written as a dm+d product is named.

    >>> dmd_style_name("atorvastatin 20 MG Oral Tablet")
    'Atorvastatin 20mg tablets'
    >>> dmd_style_name("Insulin Glargine 100 UNT/ML Injectable Solution")
    'Insulin Glargine 100 UNT/ML Injectable Solution'
    """
    found = _DOSE_FORM.match(display.strip())
    if found is None:
        return display[:1].upper() + display[1:]
    name = found["name"][:1].upper() + found["name"][1:]
    amount = found["amount"].removesuffix(".0")
    return f"{name} {amount}mg {found['form'].lower()}s"


_RECORDED_AS: Final = {"18262-6": "1022191000000100", "98979-8": "1011481000000105"}
"""US results a UK practice records under a broader observable: a direct-assay LDL (the
generator's 18262-6) is "Serum LDL cholesterol level", as UK laboratories report LDL whatever
the method (read back as LOINC 22748-8, LDL in mmol/L); the CKD-EPI 2021 eGFR (98979-8) is
"Estimated glomerular filtration rate using creatinine Chronic Kidney Disease Epidemiology
Collaboration equation per 1.73 square metres" (read back as 62238-1, CKD-EPI)."""


def _snomed_for(loinc: str) -> tuple[str, str] | None:
    """The SNOMED CT observable whose LOINC candidates include ``loinc`` (or that records it,
    :data:`_RECORDED_AS`), and the unit a UK laboratory gives it in (its SI candidate's, where
    the US unit is mg/dL or %)."""
    from medtwin.ingest.snomed import snomed_table

    for code, row in snomed_table().items():
        if loinc in row.loinc or _RECORDED_AS.get(loinc) == code:
            unit = canonical_unit(loinc) or ""
            if unit in ("mg/dL", "%"):
                si = [u for c in row.loinc if (u := canonical_unit(c)) in _SI_UNITS]
                if si:
                    unit = si[0]
                elif unit == "mg/dL" and find_analyte(loinc) is not None:
                    unit = "mmol/L"  # glucose: one LOINC code, given in mmol/L by its molar mass
            return code, unit
    return None


def _uk_quantity(
    loinc: str, quantity: dict[str, Any], rounding: bool
) -> tuple[str, dict[str, Any]] | None:
    mapped = _snomed_for(loinc)
    if mapped is None:
        return None
    snomed, unit = mapped
    source_unit = quantity.get("code") or quantity.get("unit")
    value = quantity["value"]
    if unit and source_unit != unit:
        value = float(convert(float(value), str(source_unit), unit, analyte=loinc))
        if rounding and unit in _LAB_DECIMALS:
            value = round(value, _LAB_DECIMALS[unit])
            value = int(value) if _LAB_DECIMALS[unit] == 0 else value
    return snomed, {"value": value, "unit": unit, "system": UCUM, "code": unit}


def london_time(text: str) -> str:
    """A FHIR dateTime with a zone offset at the same clock time in England (Europe/London's
    offset that day); anything else unchanged.

    >>> london_time("2025-10-10T14:50:00-05:00"), london_time("2025-01-10T09:00:00Z")
    ('2025-10-10T14:50:00+01:00', '2025-01-10T09:00:00+00:00')
    >>> london_time("2025-10-10")
    '2025-10-10'
    """
    found = _DATETIME.match(text)
    if found is None:
        return text
    wall = dt.datetime.fromisoformat(found[1]).replace(tzinfo=_LONDON)
    offset = wall.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    return (
        f"{found[1]}{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    )


def _in_london(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _in_london(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_in_london(value) for value in node]
    if isinstance(node, str) and len(node) > 16 and node[10:11] == "T":
        return london_time(node)
    return node


def _entries(bundle: dict[str, Any], kind: str) -> Iterator[dict[str, Any]]:
    for entry in bundle.get("entry", ()):
        resource = entry["resource"]
        if resource["resourceType"] == kind:
            yield resource


def _patient(patient: dict[str, Any], number: str, rng: random.Random) -> None:
    codes: Sequence[tuple[str, str, float]] = ETHNIC_CATEGORIES
    code, display, _ = rng.choices(codes, weights=[w for _, _, w in codes])[0]
    extensions = [e for e in patient.get("extension", ()) if not e["url"].startswith(_US_CORE)]
    extensions.append({
        "url": UK_ETHNIC_CATEGORY,
        "valueCodeableConcept": {
            "coding": [{"system": UK_ETHNIC_CATEGORY_SYSTEM, "code": code, "display": display}]
        },
    })  # fmt: skip
    patient["extension"] = extensions
    patient["identifier"] = [
        {"use": "official", "system": NHS_NUMBER_SYSTEM, "value": number},
        *patient.get("identifier", ()),
    ]
    patient["address"] = [{"use": "home", "city": rng.choice(_CITIES), "country": "GB"}]


def _observation(resource: dict[str, Any], rounding: bool) -> None:
    coding = resource["code"]["coding"][0]
    if coding.get("system") != LOINC:
        return
    if coding["code"] == _SMOKING and "valueCodeableConcept" in resource:
        answer = resource.pop("valueCodeableConcept")["coding"][0]
        resource["code"] = {"coding": [{
            "system": SNOMED, "code": answer["code"], "display": answer.get("display")}]}  # fmt: skip
        return
    if coding["code"] == _BP_PANEL:
        parts = []
        for component in resource.get("component", ()):
            code = component["code"]["coding"][0]["code"]
            mapped = _uk_quantity(code, component["valueQuantity"], rounding)
            if mapped is None:
                return  # a component without a UK observable: the panel stays LOINC
            parts.append((component, mapped))
        resource["code"] = {"coding": [{"system": SNOMED, "code": "75367002",
                                        "display": "Blood pressure"}]}  # fmt: skip
        for component, (snomed, quantity) in parts:
            component["code"] = {"coding": [{"system": SNOMED, "code": snomed}]}
            component["valueQuantity"] = quantity
        return
    if "valueQuantity" in resource:
        mapped = _uk_quantity(coding["code"], resource["valueQuantity"], rounding)
        if mapped is not None:
            resource["code"] = {"coding": [{"system": SNOMED, "code": mapped[0]}]}
            resource["valueQuantity"] = mapped[1]


def uk_form(
    bundle: dict[str, Any], *, nhs: str, rng: random.Random, lab_rounding: bool = True
) -> dict[str, Any]:
    """``bundle`` (one patient of :func:`medtwin.synth.generator.generate_patient`) as UK
    general practice would record it (see the module); a new Bundle, ``bundle`` is untouched.

    Parameters
    ----------
    nhs
        The patient's NHS number (:func:`nhs_test_numbers`).
    rng
        Draws the ethnic category and the city (give each patient its own, so the rest of the
        record is the US form's).
    lab_rounding
        Round converted results as a UK laboratory reports them (:data:`_LAB_DECIMALS`); off,
        the exact conversion (what the tests compare with the US form).
    """
    if nhs_number(nhs) != nhs:
        raise ValueError(f"{nhs!r} is not an NHS number (10 digits, valid check digit)")
    out: dict[str, Any] = _in_london(bundle)  # a new Bundle: the input is untouched
    for patient in _entries(out, "Patient"):
        _patient(patient, nhs, rng)
    for request in _entries(out, "MedicationRequest"):
        concept = request.get("medicationCodeableConcept")
        if concept:
            name = concept.get("text") or concept["coding"][0].get("display") or ""
            request["medicationCodeableConcept"] = {"text": dmd_style_name(name)}
    for observation in _entries(out, "Observation"):
        _observation(observation, lab_rounding)
    return out
