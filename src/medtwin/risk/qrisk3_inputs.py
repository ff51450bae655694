"""The inputs of QRISK3 read from the record, so that ``medtwin risk`` computes it.

QRISK3 (Hippisley-Cox J, Coupland C, Brindle P. Development and validation of QRISK3 risk
prediction algorithms to estimate future risk of cardiovascular disease: prospective cohort
study. BMJ 2017;357:j2099) needs, beyond the common inputs (age, sex, BMI, systolic pressure,
antihypertensive treatment, atrial fibrillation):

- ``cholesterol_hdl_ratio``: the total / HDL cholesterol ratio of the two valid lipid inputs;
- ``smoking_category``: the smoking status answer (LOINC 72166-2, or the finding recorded as the
  Observation's code, as UK general practice does) as QRISK3's five groups, by the table
  ``record/data/smoking_status.csv``: never (266919005) and non-smoker (8392000) are
  ``non_smoker``, ex-smoker (8517006 and the UK "Ex-light cigarette smoker (1-9/day)" ...)
  ``ex_smoker``, light (428061000124105, occasional 428041000124106, "Light cigarette smoker
  (1-9 cigs/day)" 160603005, trivial) ``light`` (under 10 a day), moderate (56578002, 160604004
  10-19 a day) ``moderate``, heavy (428071000124103, 160605003 20-39, 160606002 40+, 56771006
  over 20) ``heavy``; a current smoker whose amount the answer does not say (daily smoker,
  cigarette, cigar or pipe smoker) takes it from a
  cigarettes-a-day answer of the year (LOINC 64218-1, or 8663-7 in packs a day); without one,
  and for a "current non-smoker" (ever smoked?), it is not known (a range over the groups left);
- ``diabetes_type``: ``type1`` (SNOMED 46635009, ICD-10 E10) or ``type2`` (44054006, E11) from
  an active diabetes condition; diabetes of an unrecorded type (73211009) is not known; none:
  ``none``;
- ``systolic_bp_sd_mm_hg``: the standard deviation of the systolic readings of the last five
  years, when there are at least two (QRISK3's definition);
- ``ethnicity``: the UK Core ethnic category (the NHS ethnic category QRISK3's groups come
  from: :data:`UK_ETHNIC_QRISK3`), else US Core race: white; a detailed code naming a group
  (Asian Indian, Pakistani, Bangladeshi, Chinese, another Asian nation; African nations;
  Caribbean islands: :data:`CDC_RACE_QRISK3`); American Indian or Alaska Native, Pacific
  Islander, "other race" and two or more categories are QRISK3's "other" (which includes mixed).
  Asian or Black without a detail that names a group (African American) is not known, with the
  groups left as alternatives (QRISK3 is then a range over them, :data:`OMB_GROUPS`); no race
  or ethnic category at all stays missing, which QRISK3 scores as white or not stated, listed;
- ``townsend_score``: never in a record (it is the deprivation of the UK census output area of
  the postcode); missing, scored 0 by QRISK3's rule and listed;
- the conditions (``ckd_stage_3_5``, ``migraine``, ``rheumatoid_arthritis``, ``sle``,
  ``severe_mental_illness``, ``erectile_dysfunction``) from the code lists of
  ``risk/data/record_conditions.toml``, and the treatments (``atypical_antipsychotic``,
  ``corticosteroids``; a PDE5 inhibitor for erectile dysfunction) from the drug names an active
  order names; none recorded is "no", as QRISK3 itself counts recorded conditions;
- ``prior_cvd``: coronary heart disease, stroke or TIA recorded (QRISK3 refuses them);
- ``family_history_chd``: angina or heart attack (code list ``family_history_chd``) in a
  first-degree relative (:data:`FIRST_DEGREE_ROLES`) before 60, from the FamilyMemberHistory
  resources medtwin keeps whole: yes with the relative and age; such a relative without an
  onset age: not known (a range over yes and no); family history recorded without one: no; no
  family history in the record: missing, scored as absent by QRISK3 and listed.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from medtwin.record.context import PUERPERIUM_DAYS
from medtwin.record.facts import SNOMED
from medtwin.record.smoking import smoking_table

if TYPE_CHECKING:
    from medtwin.risk.inputs import DerivedInput, _Reader
    from medtwin.store.base import StoredFact

__all__ = ["SMOKING_SNOMED", "diabetes_types", "qrisk3_inputs"]


CATEGORIES = ("non_smoker", "ex_smoker", "light", "moderate", "heavy")
"""QRISK3's smoking groups (what a record without a usable smoking answer leaves possible)."""
CURRENT = ("light", "moderate", "heavy")
"""QRISK3's groups of a current smoker (under 10, 10-19, 20 or more a day)."""

SMOKING_SNOMED: Mapping[str, str | None] = {
    code: row.qrisk3 for code, row in smoking_table().items() if row.current is not None
}
"""Smoking findings as QRISK3's groups (``medtwin/record/data/smoking_status.csv``); ``None``:
the finding does not say which (a current smoker of unsaid amount, a "current non-smoker")."""

SBP_SD_DAYS = 5 * 365
"""QRISK3: the standard deviation of at least two systolic readings of the last five years."""


def diabetes_types() -> Mapping[str, Mapping[str, Any]]:
    """QRISK3's diabetes types as code lists (:func:`medtwin.risk.af_inputs.matches`): the
    ``diabetes_type1`` and ``diabetes_type2`` lists of ``risk/data/record_conditions.toml``
    (read once, on first use)."""
    from medtwin.risk.af_inputs import condition_sets

    sets = condition_sets()
    return {"type1": sets["diabetes_type1"], "type2": sets["diabetes_type2"]}


def _ratio(done: Mapping[str, DerivedInput]) -> DerivedInput:
    from medtwin.risk.inputs import DerivedInput

    tc, hdl = done["total_cholesterol_mg_dl"], done["hdl_mg_dl"]
    for part in (tc, hdl):
        if not part.usable:
            return DerivedInput(
                "cholesterol_hdl_ratio", None, "missing",
                f"{part.name}: {part.reason()}", part.valid_days, None, part.provenance,
            )  # fmt: skip
    value = float(tc.value) / float(hdl.value)  # type: ignore[arg-type]
    return DerivedInput(
        "cholesterol_hdl_ratio", value, "computed",
        f"total cholesterol {float(tc.value):.4g} / HDL {float(hdl.value):.4g} mg/dL",  # type: ignore[arg-type]
        tc.valid_days, None, tc.provenance + hdl.provenance,
    )  # fmt: skip


def _smoking(reader: _Reader, done: Mapping[str, DerivedInput]) -> DerivedInput:
    from medtwin.risk.inputs import DerivedInput, _prov

    smoker = done["smoker"]
    name = "smoking_category"
    if smoker.status in ("missing", "stale") and not smoker.provenance:
        return DerivedInput(
            name, None, "missing", smoker.reason(), smoker.valid_days, alternatives=CATEGORIES
        )  # fmt: skip
    # the same answer the smoker input read (newest, in its window)
    from medtwin.risk.inputs import smoking_answer

    found = smoking_answer(reader)
    answer = found[1] if found is not None else None
    code = answer.code if answer is not None and answer.system == SNOMED else ""
    said = f"{code} {answer.display or ''}".strip() if answer is not None else smoker.detail
    if smoker.status == "stale":
        return DerivedInput(
            name, None, "stale", said, smoker.valid_days, SMOKING_SNOMED.get(code),
            smoker.provenance, CATEGORIES,
        )  # fmt: skip
    category = SMOKING_SNOMED.get(code)
    if category is None and code not in SMOKING_SNOMED and smoker.value is False:
        text = said.lower()
        category = "ex_smoker" if ("former" in text or "ex-" in text) else None
        category = "non_smoker" if "never" in text else category
    if smoker.status == "given":  # the user's yes or no; the record's group only if it agrees
        agrees = CURRENT if smoker.value else ("non_smoker", "ex_smoker")
        category = category if category in agrees else None
        said = smoker.detail
    amount = _cigarettes_per_day(reader) if category is None and smoker.value is True else None
    if amount is not None:
        per_day, sf = amount
        category = "light" if per_day < 10 else ("moderate" if per_day < 20 else "heavy")
        return DerivedInput(
            name, category, "ok", f"{said}; {per_day:g} cigarettes a day (LOINC {sf.fact.code.code})",  # type: ignore[union-attr]
            smoker.valid_days, None, (*smoker.provenance, _prov(sf, reader.at)),
        )  # fmt: skip
    if category is None:
        why = (
            "a current smoker; QRISK3 needs how many a day (light under 10, moderate 10-19, "
            "heavy 20 or more), which the answer does not say"
            if smoker.value is True
            else "the answer does not say never or ex-smoker"
        )
        possible = CURRENT if smoker.value is True else ("non_smoker", "ex_smoker")
        if smoker.status == "given":
            why = "which QRISK3 group the record does not say" + (
                " (light, moderate or heavy)" if smoker.value else " (never or ex-smoker)"
            )
            text = f"{said}: {why}"
        else:
            text = f"smoking status {said!r}: {why}"
        return DerivedInput(
            name, None, "missing", text, smoker.valid_days, None,
            smoker.provenance, possible if smoker.value is not None else CATEGORIES,
        )  # fmt: skip
    return DerivedInput(name, category, "ok", said, smoker.valid_days, None, smoker.provenance)


def _cigarettes_per_day(reader: _Reader) -> tuple[float, StoredFact] | None:
    """The newest cigarettes-a-day answer in the smoking status's window (packs of 20 for
    8663-7, read only with a per-day unit), or ``None``."""
    from medtwin.risk.inputs import validity

    spec = validity()["cigarettes_per_day"]
    packs = set(spec["packs_codes"])
    sf = reader.newest(list(spec["codes"]))
    if sf is None or sf.fact.effective_start is None:
        return None
    if (reader.at - sf.fact.effective_start).days > int(spec["valid_days"]):
        return None
    f = sf.fact
    value = float(f.value_num)  # type: ignore[attr-defined]
    if f.code.code in packs:  # type: ignore[union-attr]
        unit = (getattr(f, "unit", None) or "").lower()
        if "/d" not in unit:
            return None  # pack-years or no unit: not an amount a day
        value *= 20.0
    return (value, sf) if value > 0 else None


def _diabetes_type(reader: _Reader, done: Mapping[str, DerivedInput]) -> DerivedInput:
    from medtwin.risk.af_inputs import matches
    from medtwin.risk.inputs import DerivedInput, _prov

    name = "diabetes_type"
    diabetes = done["diabetes"]
    if diabetes.value is False:
        return DerivedInput(name, "none", "absent", diabetes.detail)
    if diabetes.value is None and not diabetes.provenance:
        return DerivedInput(name, None, "missing", diabetes.reason())
    ids = {p.source_id for p in diabetes.provenance}
    facts = [sf for sf in reader.facts_of(("Condition",)) if sf.fact.source_id in ids]
    types = {
        kind for sf in facts for kind, spec in diabetes_types().items() if matches(sf.fact, spec)
    }
    provs = tuple(_prov(sf, reader.at) for sf in facts)
    if diabetes.value is None:  # only suspected: none, or the type it would be
        kinds = tuple(sorted(types)) if len(types) == 1 else ("type1", "type2")
        return DerivedInput(
            name, None, "missing", diabetes.reason(), None, None, provs, ("none", *kinds)
        )
    if len(types) == 1:
        (kind,) = types
        return DerivedInput(name, kind, "ok", diabetes.detail, None, None, provs)
    why = "both type 1 and type 2 recorded" if types else "diabetes of an unrecorded type"
    return DerivedInput(
        name, None, "missing", f"{why} ({diabetes.detail})", None, None, provs,
        ("type1", "type2"),
    )  # fmt: skip


def _sbp_sd(reader: _Reader) -> DerivedInput:
    from medtwin.risk.inputs import DerivedInput, _prov

    name = "systolic_bp_sd_mm_hg"
    readings = [
        sf
        for sf in reader.observations()
        if sf.fact.code is not None
        and sf.fact.code.code == "8480-6"
        and getattr(sf.fact, "value_num", None) is not None
        and sf.fact.effective_start is not None
        and 0 <= (reader.at - sf.fact.effective_start).days <= SBP_SD_DAYS
    ]
    usual = [sf for sf in readings if reader.in_pregnancy(sf) is None]
    left = len(readings) - len(usual)
    # a pregnancy's readings are not the usual blood pressure (record_inputs.toml, in_pregnancy)
    note = (
        f" ({left} taken in a pregnancy or the {PUERPERIUM_DAYS} days after it left out)"
        if left
        else ""
    )
    if len(usual) < 2:
        return DerivedInput(
            name, None, "missing",
            f"{len(usual)} systolic reading(s) in the last 5 years{note}, at least 2 needed",
        )  # fmt: skip
    values = [float(sf.fact.value_num) for sf in usual]  # type: ignore[attr-defined]
    sd = statistics.stdev(values)
    return DerivedInput(
        name, sd, "computed", f"SD of {len(values)} systolic readings in the last 5 years{note}",
        SBP_SD_DAYS, None, tuple(_prov(sf, reader.at) for sf in usual),
    )  # fmt: skip


UK_CORE_ETHNIC_CATEGORY = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
)
UK_ETHNIC_SYSTEMS = (
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland",
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryWales",
)
UK_ETHNIC_QRISK3: Mapping[str, str | None] = {
    "A": "white_or_not_stated",  # White - British (Wales: any White background)
    "B": "white_or_not_stated",  # White - Irish (Wales: Gypsy or Irish Traveller)
    "C": "white_or_not_stated",  # White - any other White background
    "D": "other",  # Mixed - White and Black Caribbean
    "E": "other",  # Mixed - White and Black African
    "F": "other",  # Mixed - White and Asian
    "G": "other",  # Mixed - any other mixed background
    "H": "indian",
    "J": "pakistani",
    "K": "bangladeshi",
    "L": "other_asian",
    "M": "black_caribbean",
    "N": "black_african",
    "P": None,  # Black - any other Black background: none of QRISK3's groups
    "R": "chinese",
    "S": "other",  # any other ethnic group
    "T": "other",  # Wales: Arab
    "Z": "white_or_not_stated",  # not stated: QRISK3's "white or not stated"
    "99": "white_or_not_stated",  # not known
}
"""The NHS ethnic category (UK Core ``Extension-UKCore-EthnicCategory``: the NHS Data
Dictionary's 2001 census categories, England and Wales code systems) as QRISK3's nine groups:
white or not stated, Indian, Pakistani, Bangladeshi, other Asian, black Caribbean, black African,
Chinese, other (including mixed) (Hippisley-Cox 2017, the groups QResearch records)."""

CDC_RACE_QRISK3: Mapping[str, str] = {
    "2029-7": "indian",  # Asian Indian
    "2044-6": "pakistani",
    "2030-5": "bangladeshi",
    "2034-7": "chinese",
    **dict.fromkeys(
        (
            "2031-3", "2032-1", "2033-9", "2035-4", "2036-2", "2037-0", "2038-8", "2039-6",
            "2040-4", "2041-2", "2042-0", "2043-8", "2045-3", "2046-1", "2047-9", "2048-7",
            "2049-5", "2050-3", "2051-1", "2052-9",
        ),
        "other_asian",
    ),  # Bhutanese, Burmese, Cambodian, Taiwanese, Filipino, Hmong ... Sri Lankan, Nepalese
    **dict.fromkeys(
        ("2060-2", "2061-0", "2062-8", "2063-6", "2064-4", "2065-1", "2066-9"),
        "black_african",
    ),  # African, Botswanan, Ethiopian, Liberian, Namibian, Nigerian, Zairean
    **dict.fromkeys(
        (
            "2067-7", "2068-5", "2069-3", "2070-1", "2071-9", "2072-7", "2073-5", "2074-3",
            "2075-0",
        ),
        "black_caribbean",
    ),  # Bahamian, Barbadian, Dominican, Dominica Islander, Haitian, Jamaican, Tobagoan,
    # Trinidadian, West Indian
}  # fmt: skip
"""US Core race's ``detailed`` codes (CDC Race & Ethnicity Code Set, urn:oid:2.16.840.1.113883
.6.238) that name one of QRISK3's groups. Black (2056-0) and African American (2058-6) do not
say Caribbean or African, and stay missing."""

OMB_GROUPS: Mapping[str, tuple[str, ...]] = {
    "2028-9": ("indian", "pakistani", "bangladeshi", "chinese", "other_asian"),
    "2054-5": ("black_caribbean", "black_african"),
}
"""QRISK3's groups an OMB category without a naming detail leaves possible (a range over them,
not QRISK3's "white or not stated" substitute, which the record contradicts)."""

OMB_QRISK3: Mapping[str, str | None] = {
    "2106-3": "white_or_not_stated",  # White
    "1002-5": "other",  # American Indian or Alaska Native: "any other ethnic group"
    "2076-8": "other",  # Native Hawaiian or Other Pacific Islander
    "2131-1": "other",  # Other Race
    "2028-9": None,  # Asian: Indian, Pakistani, Bangladeshi, Chinese or other: the detail says
    "2054-5": None,  # Black or African American: Caribbean or African: the detail says
}
"""US Core race's OMB categories as QRISK3's groups, where one category names one group; a
person of two or more categories is QRISK3's "other" (which includes mixed)."""


def _us_core_race(raw: Mapping[str, Any]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """({OMB category code: display}, [(detailed code, display)]) of a Patient's US Core race."""
    from medtwin.risk.inputs import US_CORE_RACE

    omb: dict[str, str] = {}
    detailed: list[tuple[str, str]] = []
    for ext in raw.get("extension", ()) or ():
        if ext.get("url") != US_CORE_RACE:
            continue
        for sub in ext.get("extension", ()) or ():
            coding = sub.get("valueCoding") or {}
            code = coding.get("code")
            if not isinstance(code, str):
                continue
            if sub.get("url") == "ombCategory" and code in OMB_QRISK3:
                omb[code] = str(coding.get("display") or code)
            elif sub.get("url") == "detailed":
                detailed.append((code, str(coding.get("display") or code)))
    return omb, detailed


def _ethnic_group(raw: Mapping[str, Any]) -> tuple[str | None, str] | None:
    """(QRISK3 group or None when the record cannot say it, why) from a Patient resource's
    UK Core ethnic category or US Core race; ``None`` when it has neither."""
    for ext in raw.get("extension", ()) or ():
        if ext.get("url") != UK_CORE_ETHNIC_CATEGORY:
            continue
        for coding in (ext.get("valueCodeableConcept") or {}).get("coding", ()) or ():
            code = coding.get("code")
            if coding.get("system") in UK_ETHNIC_SYSTEMS and code in UK_ETHNIC_QRISK3:
                said = f"UK Core ethnic category {code} {coding.get('display') or ''}".strip()
                group = UK_ETHNIC_QRISK3[code]
                return group, said if group else f"{said}: none of QRISK3's ethnic groups"
    omb, detailed = _us_core_race(raw)
    if not omb and not detailed:
        return None
    named = sorted({CDC_RACE_QRISK3[c] for c, _ in detailed if c in CDC_RACE_QRISK3})
    words = ", ".join(f"{c} {d}" for c, d in [*sorted(omb.items()), *detailed])
    said = f"US Core race {words}"
    if len(omb) > 1 or len(named) > 1:
        return "other", f"{said} (more than one group: QRISK3's other, which includes mixed)"
    if named:
        return named[0], said
    if len(omb) == 1:
        (category,) = omb
        group = OMB_QRISK3[category]
        if group is not None:
            return group, said
    return None, f"{said} does not say which of QRISK3's ethnic groups"


def _possible(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """The QRISK3 groups a Patient's single US Core OMB category leaves possible."""
    omb, _ = _us_core_race(raw)
    return OMB_GROUPS.get(next(iter(omb)), ()) if len(omb) == 1 else ()


NHS_CATEGORY_OF_GROUP = "ABCDEFGHJKLMNPRS"
"""The 16 groups of the census ethnic category concepts (``risk/data/snomed_ethnicity.csv``, 1 to
16) as the NHS ethnic category letters A to S (the NHS Data Dictionary's 2001 census
categories, as :data:`UK_ETHNIC_QRISK3` reads them)."""


def _ethnicity_finding(reader: _Reader) -> DerivedInput | None:
    """QRISK3's group from the newest ethnic category recorded as an Observation's SNOMED CT
    code (UK general practice), or ``None`` when there is none."""
    from medtwin.risk.inputs import DerivedInput, _prov, table_codes, validity

    spec = validity()["ethnic_category_finding"]
    table = table_codes(spec["codes_table"])
    sf = reader.newest(list(table), numeric=False)
    if sf is None or sf.fact.code is None:
        return None
    row = table[sf.fact.code.code]
    letter = NHS_CATEGORY_OF_GROUP[int(row["group"]) - 1]
    group = UK_ETHNIC_QRISK3[letter]
    said = f"{sf.fact.code.code} {row['display']} (NHS ethnic category {letter})"
    if group is None:
        return DerivedInput(
            "ethnicity", None, "missing", f"{said}: none of QRISK3's ethnic groups", None, None,
            (_prov(sf, reader.at),),
        )  # fmt: skip
    return DerivedInput("ethnicity", group, "ok", said, None, None, (_prov(sf, reader.at),))


def _ethnicity(reader: _Reader) -> DerivedInput:
    from medtwin.risk.inputs import DerivedInput, _prov_nodate

    finding = _ethnicity_finding(reader)
    for sf in reversed(reader.demographics()):
        found = _ethnic_group(sf.fact.raw or {})
        if found is None:
            continue
        group, said = found
        if group is None:
            return DerivedInput(
                "ethnicity", None, "missing", said, None, None, (_prov_nodate(sf),),
                _possible(sf.fact.raw or {}) if said.startswith("US Core") else (),
            )  # fmt: skip
        return DerivedInput("ethnicity", group, "ok", said, None, None, (_prov_nodate(sf),))
    if finding is not None:
        return finding
    return DerivedInput(
        "ethnicity", None, "missing",
        "no UK Core ethnic category or US Core race on the Patient, and no ethnic category "
        "recorded (SNOMED CT census categories)",
    )  # fmt: skip


FIRST_DEGREE_ROLES = frozenset(
    {
        "FTH", "MTH", "PRN", "NFTH", "NMTH", "NPRN",  # father, mother, parent (natural)
        "BRO", "SIS", "SIB", "NBRO", "NSIS", "NSIB",  # brother, sister, sibling (natural)
        "TWIN", "TWINBRO", "TWINSIS", "FTWIN", "FTWINBRO", "FTWINSIS", "ITWIN", "ITWINBRO",
        "ITWINSIS",  # twins
        "SON", "DAU", "SONC", "DAUC", "CHILD", "NCHILD",  # son, daughter, child (natural)
    }
)  # fmt: skip
"""HL7 v3 RoleCode relationships of a first-degree (blood) relative: parents, full siblings and
twins, children. Step, foster, adoptive, half and in-law codes are not in it."""
FAMILY_HISTORY_AGE = 60.0
"""QRISK3: angina or heart attack in a first-degree relative aged under 60 (Hippisley-Cox 2017)."""

_AGE_YEARS = {
    "a": 1.0, "yr": 1.0, "year": 1.0, "years": 1.0, "mo": 1 / 12, "wk": 7 / 365.25,
    "d": 1 / 365.25,
}  # fmt: skip
"""Years per unit of a FHIR Age (UCUM a, mo, wk, d; the human-readable yr/years)."""


def _age_years(age: Any) -> float | None:
    if not isinstance(age, Mapping) or not isinstance(age.get("value"), int | float):
        return None
    unit = str(age.get("code") or age.get("unit") or "a").lower()
    factor = _AGE_YEARS.get(unit)
    return None if factor is None else float(age["value"]) * factor


def _before_60(condition: Mapping[str, Any]) -> bool | None:
    """Whether a family member's condition began before 60: from onsetAge, or an onsetRange
    wholly on one side of 60; ``None`` when the record does not say."""
    age = _age_years(condition.get("onsetAge"))
    if age is not None:
        return age < FAMILY_HISTORY_AGE
    span = condition.get("onsetRange")
    if isinstance(span, Mapping):
        high, low = _age_years(span.get("high")), _age_years(span.get("low"))
        if high is not None and high < FAMILY_HISTORY_AGE:
            return True
        if low is not None and low >= FAMILY_HISTORY_AGE:
            return False
    return None


def _family_history(reader: _Reader) -> DerivedInput:
    """QRISK3's ``family_history_chd`` from the FamilyMemberHistory resources medtwin keeps."""
    from medtwin.record.facts import Coding
    from medtwin.risk.af_inputs import coding_matches, condition_sets
    from medtwin.risk.inputs import YES_NO, DerivedInput, _prov

    name = "family_history_chd"
    spec = condition_sets()[name]
    histories = [
        sf for sf in reader.kept_whole("FamilyMemberHistory")
        if (sf.fact.raw or {}).get("status") not in ("entered-in-error", "health-unknown")
    ]  # fmt: skip
    finding = _family_history_finding(reader)
    if finding is not None and (finding.value is True or not histories):
        return finding
    if not histories:
        return DerivedInput(
            name, None, "missing", "no family history (FamilyMemberHistory) in the record"
        )
    early: list[tuple[StoredFact, str]] = []
    unknown_age: list[tuple[StoredFact, str]] = []
    for sf in histories:
        raw = sf.fact.raw or {}
        roles = [
            (c.get("code"), c.get("display") or c.get("code"))
            for c in (raw.get("relationship") or {}).get("coding", ()) or ()
        ]
        role = next(((c, d) for c, d in roles if c in FIRST_DEGREE_ROLES), None)
        if role is None:
            continue
        for condition in raw.get("condition", ()) or ():
            codings = (condition.get("code") or {}).get("coding", ()) or ()
            hit = next(
                (
                    c for c in codings
                    if coding_matches(Coding(str(c.get("system")), str(c.get("code"))), spec)
                ),
                None,
            )  # fmt: skip
            if hit is None:
                continue
            label = f"{str(role[1]).lower()}: {hit.get('code')} {hit.get('display') or ''}".strip()
            when = _before_60(condition)
            if when is True:
                age = _age_years(condition.get("onsetAge"))
                early.append(
                    (sf, label + (f" at {age:g} years" if age is not None else " before 60"))
                )
            elif when is None:
                unknown_age.append((sf, label))
    if early:
        return DerivedInput(
            name, True, "ok", "; ".join(text for _, text in early), None, None,
            tuple(_prov(sf, reader.at) for sf, _ in early),
        )  # fmt: skip
    if unknown_age:
        return DerivedInput(
            name, None, "missing",
            "; ".join(text for _, text in unknown_age)
            + ": age at onset not recorded (QRISK3 counts one before 60)",
            None, None, tuple(_prov(sf, reader.at) for sf, _ in unknown_age), YES_NO,
        )  # fmt: skip
    return DerivedInput(
        name, False, "absent",
        f"no angina or heart attack before 60 in a parent, sibling or child in the family "
        f"history ({len(histories)} FamilyMemberHistory)",
    )  # fmt: skip


def _affirmed(fact: Any) -> bool | None:
    """A yes/no finding's answer: no value or yes is ``True``, no is ``False``, anything else
    (a value that is not yes or no) ``None``."""
    code = getattr(fact, "value_code", None)
    text = (getattr(fact, "value_text", None) or "").strip().lower()
    if code is None and not text and getattr(fact, "value_num", None) is None:
        return True
    from medtwin.record.codes import NO_ANSWERS, YES_ANSWERS

    coded = (code.system, code.code) if code is not None else None
    if coded in YES_ANSWERS or text in ("true", "yes", "y"):
        return True
    if coded in NO_ANSWERS or text in ("false", "no", "n"):
        return False
    return None


def _family_history_finding(reader: _Reader) -> DerivedInput | None:
    """QRISK3's family history from a UK family history finding (SNOMED CT 266895004 as an
    Observation's code, yes/no or no value), the newest; ``None`` when there is none."""
    from medtwin.risk.inputs import DerivedInput, _prov, validity

    sf = reader.newest(list(validity()["family_history_chd_finding"]["codes"]), numeric=False)
    if sf is None:
        return None
    f = sf.fact
    answer = _affirmed(f)
    said = (
        f"{f.code.code} {f.code.display or 'family history of ischaemic heart disease before 60'}"  # type: ignore[union-attr]
    )
    if answer is None:
        return None
    if answer:
        return DerivedInput(
            "family_history_chd", True, "ok", said, None, None, (_prov(sf, reader.at),)
        )
    return DerivedInput(
        "family_history_chd", False, "absent", f"{said}: no", None, None, (_prov(sf, reader.at),)
    )


_ORAL_ROUTES = frozenset({"oral", "oral route", "oral use", "by mouth", "po", "26643006"})
"""Routes read as by mouth: the word, SNOMED CT 26643006 |Oral route| (its code or display),
EDQM's "Oral use" and the prescriber's "PO"."""
_ORAL_FORM = re.compile(
    r"(?<![\w-])(oral|orally|by mouth|tablets?|caplets?|capsules?)(?![\w-])", re.IGNORECASE
)
_NOT_SWALLOWED = re.compile(
    r"(?<![\w-])(buccal|sublingual|muco-adhesive|vaginal|pessar(y|ies)|rectal|"
    r"suppositor(y|ies)|enema|foam|inhal\w*|nebuli\w*|injection|infusion|cream|ointment|"
    r"gel|lotion|eye|ear|nasal|topical|cutaneous)(?![\w-])",
    re.IGNORECASE,
)


def taken_by_mouth(text: str, route: str | None) -> bool:
    """Whether an order is for a drug swallowed: its route says so, or, without a route, its
    name or dose instruction names an oral form (RxNorm's "Oral Tablet", a UK dm+d product's
    "tablets", "gastro-resistant tablets", "capsules", "oral solution") and no local one
    (buccal, vaginal, rectal, inhaled, topical ...: "muco-adhesive buccal tablets" are not).

    >>> taken_by_mouth("Prednisolone 5mg tablets", None)
    True
    >>> taken_by_mouth("Hydrocortisone 2.5mg muco-adhesive buccal tablets", None)
    False
    >>> taken_by_mouth("prednisolone", "Oral route")
    True
    """
    if route:
        return route.strip().lower() in _ORAL_ROUTES
    return bool(_ORAL_FORM.search(text)) and not _NOT_SWALLOWED.search(text)


def _on_drug(reader: _Reader, item: str, as_name: str) -> DerivedInput:
    """An active order naming one of the item's drugs (oral only, where the list says so)."""
    from medtwin.record.codes import names_in
    from medtwin.record.medications import order_from_fact, order_state
    from medtwin.risk.af_inputs import condition_sets
    from medtwin.risk.inputs import DerivedInput, _prov

    spec = condition_sets()["qrisk3_drugs"][item]
    names = list(spec["names"])
    found = []
    for sf in reader.orders():
        f = sf.fact
        text = " ".join(
            t for t in (f.code.display if f.code else None, getattr(f, "dosage_text", None)) if t
        )
        named = names_in(text, names)
        if not named:
            continue
        if spec.get("oral") and not taken_by_mouth(text, getattr(f, "route", None)):
            continue
        order = order_from_fact(f, sf.recorded_at, sf.id)
        if order is not None and order_state(order, (), reader.at) == "active":
            found.append((sf, named[0]))
    if found:
        return DerivedInput(
            as_name, True, "ok", f"active {', '.join(sorted({n for _, n in found}))}", None,
            None, tuple(_prov(sf, reader.at) for sf, _ in found),
        )  # fmt: skip
    return DerivedInput(as_name, False, "absent", f"no active order of {spec['what']}")


def qrisk3_inputs(reader: _Reader, done: Mapping[str, DerivedInput]) -> dict[str, DerivedInput]:
    """The QRISK3 inputs, given the common and condition inputs already derived (``done``)."""
    from medtwin.risk.af_inputs import condition_input
    from medtwin.risk.inputs import DerivedInput

    out: dict[str, DerivedInput] = {
        "cholesterol_hdl_ratio": _ratio(done),
        "smoking_category": _smoking(reader, done),
        "diabetes_type": _diabetes_type(reader, done),
        "systolic_bp_sd_mm_hg": _sbp_sd(reader),
        "ethnicity": _ethnicity(reader),
        "townsend_score": DerivedInput(
            "townsend_score",
            None,
            "missing",
            "no UK census output area (postcode) deprivation score in the record",
        ),
        "family_history_chd": _family_history(reader),
        "prior_cvd": condition_input(reader, "qrisk3_prior_cvd", as_name="prior_cvd"),
        "atypical_antipsychotic": _on_drug(
            reader, "atypical_antipsychotic", "atypical_antipsychotic"
        ),
        "corticosteroids": _on_drug(reader, "corticosteroids", "corticosteroids"),
    }
    for name in ("ckd_stage_3_5", "migraine", "rheumatoid_arthritis", "sle"):
        out[name] = condition_input(reader, name)
    out["severe_mental_illness"] = condition_input(reader, "severe_mental_illness")
    diagnosed = condition_input(reader, "erectile_dysfunction")
    treated = _on_drug(reader, "erectile_dysfunction", "erectile_dysfunction")
    out["erectile_dysfunction"] = diagnosed if diagnosed.value or not treated.value else treated
    return out
