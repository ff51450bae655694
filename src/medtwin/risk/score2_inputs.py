"""The inputs of the ESC SCORE2 family read from the record: the risk region of the patient's
address country, and SCORE2-Diabetes' type of diabetes and age at its diagnosis.

SCORE2, SCORE2-OP and SCORE2-Diabetes (:mod:`medtwin.risk.score2`) are recalibrated to four ESC cardiovascular risk regions,
each a list of countries (``risk/data/esc_risk_regions.toml``, with its source). From the
Patient's address (the home address that has not ended, else the first with a country; FHIR
``address.country``: an ISO 3166 alpha-2 or alpha-3 code or a name, resolved with ``pycountry``
and a few common names) :func:`score2_inputs` derives

- ``esc_country``: yes when the country has an ESC region, no when it has none (the United
  States: SCORE2 is then "not applicable", ``Score.record_population``), not known without an
  address country;
- ``risk_region``: the region (``low``, ``moderate``, ``high``, ``very_high``).

and :func:`diabetes_inputs`

- ``type_2_diabetes``: the ``diabetes_type`` input (:mod:`medtwin.risk.qrisk3_inputs`) is
  ``type2``; no for type 1 or no diabetes; not known for diabetes of an unrecorded type (who
  SCORE2-Diabetes applies to is then not known);
- ``age_at_diabetes_diagnosis_years``: completed years at the earliest onset of the diabetes
  diagnoses the ``diabetes`` input found (a Condition's onset, its valid time); not known when
  none of them has an onset; not applicable without diabetes.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medtwin.risk.inputs import DerivedInput, _Reader

__all__ = ["country_code", "diabetes_inputs", "regions", "score2_inputs"]


@cache
def regions() -> Mapping[str, Any]:
    """``risk/data/esc_risk_regions.toml``: ISO alpha-2 codes per region, and name aliases.

    >>> regions()["moderate"][:4]
    ['AT', 'CY', 'FI', 'DE']
    """
    text = resources.files("medtwin.risk").joinpath("data/esc_risk_regions.toml").read_text("utf-8")
    return tomllib.loads(text)


@cache
def _region_of() -> Mapping[str, str]:
    """ISO alpha-2 code -> ESC risk region."""
    table = regions()
    return {code: name for name in ("low", "moderate", "high", "very_high") for code in table[name]}


def country_code(text: str) -> str | None:
    """ISO 3166-1 alpha-2 code of an address country (code or name), or ``None``.

    >>> country_code("DEU"), country_code("Germany"), country_code("UK"), country_code("Narnia")
    ('DE', 'DE', 'GB', None)
    """
    import pycountry

    key = text.strip()
    alias = regions()["aliases"].get(key.lower())
    if alias is not None:
        return str(alias)
    try:
        found = pycountry.countries.lookup(key)
    except LookupError:
        return None
    return str(found.alpha_2)


def _label(country: str, code: str | None) -> str | None:
    """The country's name where the record gave its code ("GB": "United Kingdom"), else the
    code ("Germany": "DE")."""
    import pycountry

    if code is None or country.strip().upper() not in (code, _alpha_3(code)):
        return code
    found = pycountry.countries.get(alpha_2=code)
    return str(found.name) if found is not None else code


def _alpha_3(code: str) -> str | None:
    import pycountry

    found = pycountry.countries.get(alpha_2=code)
    return str(found.alpha_3) if found is not None else None


def _address_country(raw: Mapping[str, Any]) -> str | None:
    addresses = [
        a for a in raw.get("address", ()) or () if isinstance(a, dict) and a.get("country")
    ]
    current = [a for a in addresses if not (a.get("period") or {}).get("end")]
    home = [a for a in current if a.get("use") == "home"]
    chosen = home or current or addresses
    return str(chosen[0]["country"]) if chosen else None


def score2_inputs(reader: _Reader) -> dict[str, DerivedInput]:
    """``esc_country`` and ``risk_region`` from the newest Patient resource with an address
    country."""
    from medtwin.risk.inputs import DerivedInput, _prov_nodate

    region_of = _region_of()
    for sf in reversed(reader.demographics()):
        country = _address_country(sf.fact.raw or {})
        if country is None:
            continue
        prov = (_prov_nodate(sf),)
        code = country_code(country)
        region = region_of.get(code or "")
        if region is None:
            said = f"address country {country!r} has no ESC cardiovascular risk region"
            return {
                "esc_country": DerivedInput("esc_country", False, "ok", said, None, None, prov),
                "risk_region": DerivedInput("risk_region", None, "missing", said, None, None, prov),
            }
        said = (
            f"address country {country} ({_label(country, code)}): "
            f"ESC {region.replace('_', ' ')} risk region"
        )
        return {
            "esc_country": DerivedInput("esc_country", True, "ok", said, None, None, prov),
            "risk_region": DerivedInput("risk_region", region, "ok", said, None, None, prov),
        }
    said = "no address country on the Patient"
    return {
        "esc_country": DerivedInput("esc_country", None, "missing", said),
        "risk_region": DerivedInput("risk_region", None, "missing", said),
    }


def diabetes_inputs(reader: _Reader, done: Mapping[str, DerivedInput]) -> dict[str, DerivedInput]:
    """``type_2_diabetes`` and ``age_at_diabetes_diagnosis_years`` (SCORE2-Diabetes), from the
    ``diabetes_type`` and ``diabetes`` inputs already derived (``done``)."""
    from medtwin.risk.inputs import DerivedInput

    kind = done["diabetes_type"]
    if kind.value is None:
        t2 = DerivedInput(
            "type_2_diabetes", None, "missing", kind.reason(), None, None, kind.provenance
        )
    elif kind.value == "none":
        t2 = DerivedInput("type_2_diabetes", False, "absent", kind.detail)
    else:
        said = f"{'type 2' if kind.value == 'type2' else 'type 1'} diabetes: {kind.detail}"
        t2 = DerivedInput(
            "type_2_diabetes", kind.value == "type2", "ok", said, None, None, kind.provenance
        )
    return {
        "type_2_diabetes": t2,
        "age_at_diabetes_diagnosis_years": _age_at_diagnosis(reader, done),
    }


_ONSET_KEYS = ("onsetDateTime", "onsetPeriod", "onsetAge", "onsetRange", "onsetString")


def _age_at_diagnosis(reader: _Reader, done: Mapping[str, DerivedInput]) -> DerivedInput:
    """Completed years at the earliest start of the diabetes diagnoses the ``diabetes`` input
    rests on. A Condition's valid time starts at its onset, or at its recorded date when the
    source gave no onset (:mod:`medtwin.ingest.fhir`); the second is said, as the diagnosis may
    be older than its recording (the age then too high, the risk too low)."""
    import datetime as dt

    from medtwin.risk.inputs import DerivedInput, _prov

    name = "age_at_diabetes_diagnosis_years"
    diabetes = done["diabetes"]
    if diabetes.value is not True:
        if diabetes.value is False:
            return DerivedInput(name, None, "absent", diabetes.detail)
        return DerivedInput(name, None, "missing", diabetes.reason())
    ids = {p.source_id for p in diabetes.provenance}
    dated = [
        (sf.fact.effective_start, sf)
        for sf in reader.store.timeline(
            reader.patient_id, kinds=("Condition",), end=reader.end, include_raw=True
        )
        if sf.fact.source_id in ids and sf.fact.effective_start is not None
    ]
    born_text = reader.store.patient(reader.patient_id).birth_date
    if not dated or not born_text:
        why = "no birth date recorded" if dated else "no date on the diabetes diagnosis"
        return DerivedInput(name, None, "missing", why, None, None, diabetes.provenance)
    start, first = min(dated, key=lambda pair: pair[0])
    onset = start.date()
    born = dt.date.fromisoformat(born_text[:10])
    years = onset.year - born.year - ((onset.month, onset.day) < (born.month, born.day))
    raw = first.fact.raw or {}
    if raw and not any(key in raw for key in _ONSET_KEYS):
        said = (
            f"diabetes recorded {onset.isoformat()} without an onset (diagnosed then or "
            f"earlier), born {born.isoformat()}"
        )
    else:
        said = f"diabetes diagnosed {onset.isoformat()} (onset), born {born.isoformat()}"
    return DerivedInput(name, float(years), "ok", said, None, None, (_prov(first, reader.at),))
