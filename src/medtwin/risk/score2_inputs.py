"""The ESC risk region of SCORE2, read from the record: the country of the patient's address.

SCORE2 (:mod:`medtwin.risk.score2`) is recalibrated to four ESC cardiovascular risk regions,
each a list of countries (``risk/data/esc_risk_regions.toml``, with its source). From the
Patient's address (the home address that has not ended, else the first with a country; FHIR
``address.country``: an ISO 3166 alpha-2 or alpha-3 code or a name, resolved with ``pycountry``
and a few common names) :func:`score2_inputs` derives

- ``esc_country``: yes when the country has an ESC region, no when it has none (the United
  States: SCORE2 is then "not applicable", ``Score.record_population``), not known without an
  address country;
- ``risk_region``: the region (``low``, ``moderate``, ``high``, ``very_high``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medtwin.risk.inputs import DerivedInput, _Reader

__all__ = ["country_code", "regions", "score2_inputs"]


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
        said = f"address country {country} ({code}): ESC {region.replace('_', ' ')} risk region"
        return {
            "esc_country": DerivedInput("esc_country", True, "ok", said, None, None, prov),
            "risk_region": DerivedInput("risk_region", region, "ok", said, None, None, prov),
        }
    said = "no address country on the Patient"
    return {
        "esc_country": DerivedInput("esc_country", None, "missing", said),
        "risk_region": DerivedInput("risk_region", None, "missing", said),
    }
