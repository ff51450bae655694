"""The inputs of QRISK3 read from the record, so that ``medtwin risk`` computes it.

QRISK3 (Hippisley-Cox J, Coupland C, Brindle P. Development and validation of QRISK3 risk
prediction algorithms to estimate future risk of cardiovascular disease: prospective cohort
study. BMJ 2017;357:j2099) needs, beyond the common inputs (age, sex, BMI, systolic pressure,
antihypertensive treatment, atrial fibrillation):

- ``cholesterol_hdl_ratio``: the total / HDL cholesterol ratio of the two valid lipid inputs;
- ``smoking_category``: the smoking status answer (LOINC 72166-2) as QRISK3's five groups: never
  (266919005) and non-smoker (8392000) are ``non_smoker``, ex-smoker (8517006) ``ex_smoker``,
  light (428061000124105) and occasional (428041000124106) ``light`` (under 10 a day), moderate
  (56578002) ``moderate``, heavy (428071000124103) ``heavy``; a current smoker whose amount the
  answer does not say (daily smoker, cigarette, cigar or pipe smoker) and a "current
  non-smoker" (ever smoked?) are not known;
- ``diabetes_type``: ``type1`` (SNOMED 46635009, ICD-10 E10) or ``type2`` (44054006, E11) from
  an active diabetes condition; diabetes of an unrecorded type (73211009) is not known; none:
  ``none``;
- ``systolic_bp_sd_mm_hg``: the standard deviation of the systolic readings of the last five
  years, when there are at least two (QRISK3's definition);
- ``ethnicity``: only what the US Core race category says unambiguously (white: "white or not
  stated"); the other OMB categories do not tell QRISK3's groups apart (Black: Caribbean or
  African; Asian: Indian, Pakistani, Bangladeshi, Chinese or other) and stay missing, which
  QRISK3 scores as white or not stated and the report lists;
- ``townsend_score``: never in a record (it is the deprivation of the UK census output area of
  the postcode); missing, scored 0 by QRISK3's rule and listed;
- the conditions (``ckd_stage_3_5``, ``migraine``, ``rheumatoid_arthritis``, ``sle``,
  ``severe_mental_illness``, ``erectile_dysfunction``) from the code lists of
  ``risk/data/record_conditions.toml``, and the treatments (``atypical_antipsychotic``,
  ``corticosteroids``; a PDE5 inhibitor for erectile dysfunction) from the drug names an active
  order names; none recorded is "no", as QRISK3 itself counts recorded conditions;
- ``prior_cvd``: coronary heart disease, stroke or TIA recorded (QRISK3 refuses them);
- ``family_history_chd``: not read (no coded family history in the data medtwin imports);
  missing, scored as absent by QRISK3 and listed.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import TYPE_CHECKING

from medtwin.record.facts import SNOMED

if TYPE_CHECKING:
    from medtwin.risk.inputs import DerivedInput, _Reader

__all__ = ["DIABETES_TYPES", "SMOKING_SNOMED", "qrisk3_inputs"]


SMOKING_SNOMED: Mapping[str, str | None] = {
    "266919005": "non_smoker",  # Never smoked tobacco
    "8392000": "non_smoker",  # Non-smoker
    "8517006": "ex_smoker",  # Ex-smoker
    "428061000124105": "light",  # Light tobacco smoker (under 10 a day)
    "428041000124106": "light",  # Occasional tobacco smoker (not daily)
    "56578002": "moderate",  # Moderate smoker (10-19 a day)
    "428071000124103": "heavy",  # Heavy tobacco smoker (20 or more a day)
    "449868002": None,  # Smokes tobacco daily: how many a day is not said
    "65568007": None,  # Cigarette smoker
    "59978006": None,  # Cigar smoker
    "82302008": None,  # Pipe smoker
    "405746006": None,  # Current non-smoker: ever smoked is not said
    "160618006": None,  # Current non-smoker (historical code)
}
"""Smoking status answers as QRISK3's groups; ``None``: the answer does not say which."""

SBP_SD_DAYS = 5 * 365
"""QRISK3: the standard deviation of at least two systolic readings of the last five years."""

DIABETES_TYPES: Mapping[str, Mapping[str, list[str]]] = {
    "type1": {"snomed": ["46635009"], "icd10": ["E10"]},
    "type2": {"snomed": ["44054006"], "icd10": ["E11"]},
}
"""QRISK3's diabetes types as code lists (:func:`medtwin.risk.af_inputs.matches`)."""


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
        f"total cholesterol {float(tc.value):g} / HDL {float(hdl.value):g} mg/dL",  # type: ignore[arg-type]
        tc.valid_days, None, tc.provenance + hdl.provenance,
    )  # fmt: skip


def _smoking(reader: _Reader, done: Mapping[str, DerivedInput]) -> DerivedInput:
    from medtwin.risk.inputs import DerivedInput

    smoker = done["smoker"]
    name = "smoking_category"
    if smoker.status in ("missing", "stale") and not smoker.provenance:
        return DerivedInput(name, None, "missing", smoker.reason(), smoker.valid_days)
    # the same answer the smoker input read (newest, in its window)
    sf = reader.newest(["72166-2"], numeric=False)
    answer = getattr(sf.fact, "value_code", None) if sf is not None else None
    code = answer.code if answer is not None and answer.system == SNOMED else ""
    said = f"{code} {answer.display or ''}".strip() if answer is not None else smoker.detail
    if smoker.status == "stale":
        return DerivedInput(
            name, None, "stale", said, smoker.valid_days, SMOKING_SNOMED.get(code),
            smoker.provenance,
        )  # fmt: skip
    category = SMOKING_SNOMED.get(code)
    if category is None and code not in SMOKING_SNOMED and smoker.value is False:
        text = said.lower()
        category = "ex_smoker" if ("former" in text or "ex-" in text) else None
        category = "non_smoker" if "never" in text else category
    if category is None:
        why = (
            "a current smoker; QRISK3 needs how many a day (light under 10, moderate 10-19, "
            "heavy 20 or more), which the answer does not say"
            if smoker.value is True
            else "the answer does not say never or ex-smoker"
        )
        return DerivedInput(
            name, None, "missing", f"smoking status {said!r}: {why}", smoker.valid_days, None,
            smoker.provenance,
        )  # fmt: skip
    return DerivedInput(name, category, "ok", said, smoker.valid_days, None, smoker.provenance)


def _diabetes_type(reader: _Reader, done: Mapping[str, DerivedInput]) -> DerivedInput:
    from medtwin.risk.af_inputs import matches
    from medtwin.risk.inputs import DerivedInput, _prov

    name = "diabetes_type"
    diabetes = done["diabetes"]
    if diabetes.value is not True:
        if diabetes.value is False:
            return DerivedInput(name, "none", "absent", diabetes.detail)
        return DerivedInput(name, None, "missing", diabetes.reason())
    ids = {p.source_id for p in diabetes.provenance}
    facts = [sf for sf in reader.facts_of(("Condition",)) if sf.fact.source_id in ids]
    types = {
        kind for sf in facts for kind, spec in DIABETES_TYPES.items() if matches(sf.fact, spec)
    }
    provs = tuple(_prov(sf, reader.at) for sf in facts)
    if len(types) == 1:
        (kind,) = types
        return DerivedInput(name, kind, "ok", diabetes.detail, None, None, provs)
    why = "both type 1 and type 2 recorded" if types else "diabetes of an unrecorded type"
    return DerivedInput(name, None, "missing", f"{why} ({diabetes.detail})", None, None, provs)


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
    if len(readings) < 2:
        return DerivedInput(
            name, None, "missing",
            f"{len(readings)} systolic reading(s) in the last 5 years, at least 2 needed",
        )  # fmt: skip
    values = [float(sf.fact.value_num) for sf in readings]  # type: ignore[attr-defined]
    sd = statistics.stdev(values)
    return DerivedInput(
        name, sd, "computed", f"SD of {len(values)} systolic readings in the last 5 years",
        SBP_SD_DAYS, None, tuple(_prov(sf, reader.at) for sf in readings),
    )  # fmt: skip


def _ethnicity(done: Mapping[str, DerivedInput]) -> DerivedInput:
    from medtwin.risk.inputs import DerivedInput

    race = done["race"]
    if race.value == "white":
        return DerivedInput(
            "ethnicity", "white_or_not_stated", "ok", race.detail, None, None, race.provenance
        )
    if race.value is None:
        return DerivedInput("ethnicity", None, "missing", race.reason())
    return DerivedInput(
        "ethnicity", None, "missing",
        f"US Core race {race.value!r} does not say which of QRISK3's ethnic groups",
        None, None, race.provenance,
    )  # fmt: skip


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
        if spec.get("oral") and not (
            "oral" in text.lower() or (getattr(f, "route", None) or "").lower() == "oral"
        ):
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
        "ethnicity": _ethnicity(done),
        "townsend_score": DerivedInput(
            "townsend_score",
            None,
            "missing",
            "no UK census output area (postcode) deprivation score in the record",
        ),
        "family_history_chd": DerivedInput(
            "family_history_chd",
            None,
            "missing",
            "family history is not read from the record",
        ),
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
