"""Synthetic demo patients as FHIR R4 transaction Bundles.

medtwin generates its own demonstration data: adults of the United States population aged 18
to 85 (sex 50/50, age as in the 2020 Census), each with 3 to 10 years of yearly check-ups. A
check-up is an ``Encounter`` with vital signs (height, weight, BMI, blood pressure, heart rate),
laboratory results (total, HDL and LDL cholesterol, HbA1c, blood glucose, creatinine and the
CKD-EPI 2021 eGFR) and smoking status. Hypertension, type 2 diabetes, hyperlipidaemia and chronic
kidney disease appear as ``Condition`` resources with onset dates; their treatments
(lisinopril, amlodipine, hydrochlorothiazide, metformin, atorvastatin) as ``MedicationRequest``
resources whose start changes the later results by published effect sizes. About one patient in
ten has a penicillin ``AllergyIntolerance``; many have yearly influenza ``Immunization``.

About one adult in 200 has **type 1 diabetes** (SNOMED 46635009; Xu et al. 2018), diagnosed
before the first check-up and treated with an insulin lispro pump (RxNorm 86009), never
metformin. Their HbA1c is not drawn: it is the ADAG HbA1c of the mean glucose of their own
UVA/Padova simulation (:mod:`medtwin.synth.glucose`), the same virtual patient and pump
settings whose CGM :mod:`medtwin.synth.streams` writes, so record and streams agree. Small
runs are enriched to a minimum number of such people (:func:`type1_enriched_indices`; tagged
``type1-enrichment``).

Every number that shapes the population (means and SDs by sex and age band, prevalences,
correlations, drug effects, visit-to-visit noise) lives in ``data/population.toml`` with its
source. They are approximations taken from the cited publications (NHANES summary tables
published by NCHS, the CDC National Diabetes Statistics Report, MMWR, meta-analyses of drug
effects), rounded; the model card ``docs/models/synthetic-population.md`` lists them and what the
tests check. No record of any real person is used or copied.

How a patient is drawn
----------------------
Traits are drawn for the patient's LAST visit from the tables for their sex and age there, with
a Gaussian copula (correlated standard-normal deviates) so that each trait keeps its table
distribution while BMI pushes blood pressure, HbA1c, triglycerides and heart rate up, HDL down,
and diabetes and hypertension more likely. Blood pressure and HbA1c tables describe the
measured population including people on treatment, so the value drawn for a treated person is
the treated value and the value before treatment is that plus the drug effect; LDL is drawn
without a statin and lowered afterwards. Earlier visits follow from ageing slopes and the
treatment start dates, plus visit-to-visit noise.

Weight, blood pressure and heart rate are not walked back by slopes: each check-up's values are
those of medtwin's models for the person (:mod:`medtwin.synth.physiology`), plus visit-to-visit
noise. The Hall 2011 energy-balance model runs from the first check-up with an intake drift
solved so that it ends at the drawn last weight; the Ursino 1998 circulation's resting steady
state gives the pressures and rate, its parameters solved per check-up to the untreated values
of the slopes, and treatment is its drug effect on the peripheral resistances. All patients of a
batch run through the models together (:func:`_build`). People outside a model's population
keep the slopes. Each Patient carries the US Core race and ethnicity extensions (2020 Census
shares, a generator of their own).

Resource ids are UUID version 5 of ``"<seed>:<index>:<counter>"`` in a fixed medtwin namespace,
so the same ``(seed, index, today)`` always gives the same Bundle, byte for byte (on the same
Python minor version). Entries have ``fullUrl`` ``urn:uuid:<id>`` and request
``PUT <ResourceType>/<id>``: loading a file twice changes nothing, and references between entries
use the ``urn:uuid:`` form.

Examples
--------
>>> import datetime, random
>>> bundle = generate_patient(random.Random(7), 0, today=datetime.date(2026, 1, 1), seed=7)
>>> bundle["type"]
'transaction'
>>> round(ckd_epi_2021_egfr(1.0, 50, "male"), 1)
91.7

References
----------
.. [1] Inker LA, Eneanya ND, Coresh J, et al. New creatinine- and cystatin C-based equations to
   estimate GFR without race. N Engl J Med 2021;385:1737-1749 (the CKD-EPI 2021 creatinine
   equation).
.. [2] Law MR, Wald NJ, Morris JK, Jordan RE. Value of low dose combination treatment with blood
   pressure lowering drugs. BMJ 2003;326:1427; Law MR, Morris JK, Wald NJ. BMJ 2009;338:b1665.
.. [3] Hirst JA, Farmer AJ, Ali R, Roberts NW, Stevens RJ. Quantifying the effect of metformin
   treatment and dose on glycemic control. Diabetes Care 2012;35:446-454.
.. [4] Law MR, Wald NJ, Rudnicka AR. Quantifying effect of statins on low density lipoprotein
   cholesterol, ischaemic heart disease, and stroke. BMJ 2003;326:1423.
.. [5] American Diabetes Association. Standards of Care in Diabetes-2024, Section 2 (HbA1c
   >= 6.5 % diagnoses diabetes).
.. [6] Nathan DM, Kuenen J, Borg R, et al. Translating the A1C assay into estimated average
   glucose values. Diabetes Care 2008;31:1473-1478.
.. [7] KDIGO 2012 Clinical Practice Guideline for the Evaluation and Management of Chronic
   Kidney Disease. Kidney Int Suppl 2013;3:1-150.
.. [8] Xu G, Liu B, Sun Y, et al. Prevalence of diagnosed type 1 and type 2 diabetes among US
   adults in 2016 and 2017: population based study. BMJ 2018;362:k1497 (type 1: 0.5 %).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import pathlib
import random
import tomllib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Final, Literal, cast
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from medtwin.risk.ckd_epi_2021 import egfr_scalar

if TYPE_CHECKING:
    from medtwin.synth.physiology import VitalsPlan, VitalsRequest, WeightPlan, WeightRequest

__all__ = [
    "DEFAULT_TODAY",
    "DEFAULT_TYPE1_MINIMUM",
    "TYPE1_SNOMED",
    "PopulationFileError",
    "ckd_epi_2021_egfr",
    "generate_patient",
    "patient_rng",
    "type1_enriched_indices",
    "write_synthetic_patients",
]

Sex = Literal["female", "male"]
Json = dict[str, object]

DEFAULT_TODAY: Final = dt.date(2026, 1, 1)
"""The default 'today': fixed so that the output does not drift with the clock."""

MRN_SYSTEM: Final = "https://medtwin.org/fhir/sid/synthetic-mrn"
DEVICE_USER_SYSTEM: Final = "urn:medtwin:device-user"
#: The identifier system of a VCF sample (``medtwin.ingest.vcf.VCF_SAMPLE_SYSTEM``).
VCF_SAMPLE_SYSTEM: Final = "urn:medtwin:vcf-sample"
TAG_SYSTEM: Final = "https://medtwin.org/fhir/tags"
TYPE1_SNOMED: Final = "46635009"
"""SNOMED CT 'Diabetes mellitus type 1' (ICD-10 E10)."""
TYPE1_ENRICHMENT_TAG: Final = "type1-enrichment"
"""``meta.tag`` code (system :data:`TAG_SYSTEM`) of a Patient given type 1 diabetes by the
enrichment of small runs (:func:`type1_enriched_indices`), not by the prevalence draw."""
DEFAULT_TYPE1_MINIMUM: Final = 1
"""Default least number of people with type 1 diabetes in a run (see
:func:`type1_enriched_indices`)."""
LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX: Final = "http://hl7.org/fhir/sid/cvx"
UCUM: Final = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ALLERGY_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION: Final = (
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
)
IDENTIFIER_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
US_CORE_RACE: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
RACE_ETHNICITY_SYSTEM: Final = "urn:oid:2.16.840.1.113883.6.238"
"""CDC Race & Ethnicity code system (the OMB categories of the US Core extensions)."""
HISPANIC: Final = ("2135-2", "Hispanic or Latino")
NOT_HISPANIC: Final = ("2186-5", "Not Hispanic or Latino")
DRUG_FORM: Final = "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm"

_ID_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://medtwin.org/synth")
_DAYS_PER_YEAR: Final = 365.25
_STANDARD_NORMAL: Final = NormalDist()


class PopulationFileError(ValueError):
    """``population.toml`` is missing a table or field, or holds a value of the wrong kind."""


# --------------------------------------------------------------------------------------------
# CKD-EPI 2021
# --------------------------------------------------------------------------------------------


def ckd_epi_2021_egfr(creatinine_mg_dl: float, age_years: float, sex: Sex) -> float:
    """Estimated GFR from serum creatinine by the race-free CKD-EPI 2021 equation.

    ``eGFR = 142 x min(Scr/k, 1)^a x max(Scr/k, 1)^-1.200 x 0.9938^age x 1.012 [female]``
    with ``k`` = 0.7 (female) or 0.9 (male) and ``a`` = -0.241 (female) or -0.302 (male);
    Scr in mg/dL, age in years, eGFR in mL/min/1.73 m2.

    Parameters
    ----------
    creatinine_mg_dl
        Serum creatinine (IDMS-traceable), mg/dL; must be positive.
    age_years
        Age in years (the equation was developed in adults, 18 and over).
    sex
        ``"female"`` or ``"male"``.

    Returns
    -------
    float
        eGFR in mL/min/1.73 m2, not rounded.

    Raises
    ------
    ValueError
        For a creatinine that is not positive or an unknown sex.

    Examples
    --------
    >>> round(ckd_epi_2021_egfr(0.8, 60, "female"), 1)
    84.3

    References
    ----------
    .. [1] Inker LA, Eneanya ND, Coresh J, et al. New creatinine- and cystatin C-based
       equations to estimate GFR without race. N Engl J Med 2021;385:1737-1749 (the 2021
       creatinine equation, eGFRcr).
    """
    # the one implementation of the equation lives with the score (medtwin.risk.ckd_epi_2021)
    return egfr_scalar(creatinine_mg_dl, age_years, sex)


# --------------------------------------------------------------------------------------------
# population.toml
# --------------------------------------------------------------------------------------------

_TABLE_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "anthropometry": ("height_cm", "height_sd_cm", "bmi_kg_m2", "bmi_sd_kg_m2", "weight_kg"),
    "blood_pressure": (
        "systolic_mm_hg",
        "systolic_sd_mm_hg",
        "diastolic_mm_hg",
        "diastolic_sd_mm_hg",
    ),
    "heart_rate": ("heart_rate_per_min", "heart_rate_sd_per_min"),
    "hypertension": ("prevalence",),
    "diabetes": ("prevalence",),
    "hba1c": ("nondiabetic_percent", "nondiabetic_sd_percent"),
    "lipids": (
        "ldl_untreated_mg_dl",
        "ldl_sd_mg_dl",
        "hdl_mg_dl",
        "hdl_sd_mg_dl",
        "triglycerides_median_mg_dl",
        "triglycerides_log_sd",
    ),
    "smoking": ("current", "former"),
    "influenza_vaccination": ("coverage",),
}

_SCALAR_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "visits": (
        "min_visits",
        "max_visits",
        "jitter_days",
        "last_visit_min_days_ago",
        "last_visit_max_days_ago",
    ),
    "demographics": ("female_fraction",),
    "hba1c": (
        "nondiabetic_max_percent",
        "diabetic_floor_percent",
        "diabetic_median_percent",
        "diabetic_log_sd",
        "diagnostic_threshold_percent",
        "prediabetes_min_percent",
        "prediagnosis_rise_percent_per_year",
        "adag_slope_mg_dl_per_percent",
        "adag_intercept_mg_dl",
    ),
    "creatinine": (
        "male_at_40_mg_dl",
        "female_at_40_mg_dl",
        "log_rise_per_year",
        "log_sd",
        "diabetes_log_effect",
        "hypertension_log_effect",
        "min_mg_dl",
    ),
    "kidney": ("ckd_threshold_ml_min", "stage4_threshold_ml_min"),
    "smoking": ("male_current_ratio", "female_current_ratio", "max_years_since_quitting"),
    "influenza_vaccination": ("habitual_season_probability", "occasional_season_probability"),
    "allergy": ("penicillin_prevalence",),
    "hypertension_treatment": (
        "treated_if_uncontrolled_fraction",
        "second_drug_fraction",
        "effect_sd_mm_hg",
        "controlled_systolic_mm_hg",
        "controlled_diastolic_mm_hg",
        "max_years_since_diagnosis",
        "min_age_at_diagnosis",
    ),
    "type1_diabetes": (
        "prevalence",
        "onset_age_min_years",
        "onset_age_max_years",
        "reference_days",
    ),
    "diabetes_treatment": (
        "doses_per_day",
        "hba1c_reduction_percent",
        "hba1c_reduction_sd_percent",
        "max_years_since_diagnosis",
        "min_age_at_diagnosis",
    ),
    "lipid_treatment": (
        "doses_per_day",
        "ldl_reduction_fraction",
        "ldl_reduction_sd_fraction",
        "uptake_fraction",
        "very_high_ldl_mg_dl",
        "high_ldl_mg_dl",
        "min_age_years",
        "max_age_years",
        "max_years_since_start",
        "min_age_at_start",
    ),
    "correlations": (
        "bmi_systolic",
        "systolic_diastolic",
        "systolic_hypertension",
        "bmi_diabetes",
        "bmi_hba1c",
        "bmi_ldl",
        "bmi_hdl",
        "bmi_triglycerides",
        "bmi_heart_rate",
    ),
    "within_person": (
        "systolic_sd_mm_hg",
        "diastolic_sd_mm_hg",
        "heart_rate_sd_per_min",
        "weight_sd_kg",
        "height_sd_cm",
        "hba1c_sd_percent",
        "glucose_cv",
        "ldl_cv",
        "hdl_cv",
        "triglycerides_log_sd",
        "creatinine_cv",
        "systolic_rise_mm_hg_per_year",
        "diastolic_rise_mm_hg_per_year_before_50",
        "diastolic_fall_mm_hg_per_year_after_60",
        "weight_gain_kg_per_year_before_55",
        "weight_loss_kg_per_year_after_65",
        "ldl_rise_mg_dl_per_year_before_55",
        "nondiabetic_hba1c_rise_percent_per_year",
    ),
    "physiology": ("physical_activity_level", "weight_trend_sd_fraction_per_year"),
    "race_ethnicity": ("multiracial_share", "hispanic_share"),
}

_MIN_AGE: Final = 18
_MAX_AGE: Final = 85


@dataclass(frozen=True, slots=True)
class _Row:
    sex: str
    age_min: int
    age_max: int
    values: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class _AgeTable:
    name: str
    rows: tuple[_Row, ...]

    def value(self, field: str, sex: Sex, age_years: int) -> float:
        """The ``field`` of the row for ``sex`` (or both sexes) that holds ``age_years``."""
        for row in self.rows:
            if row.sex in (sex, "any") and row.age_min <= age_years <= row.age_max:
                return row.values[field]
        raise LookupError(f"population.toml [{self.name}]: no row for {sex}, age {age_years}")


@dataclass(frozen=True, slots=True)
class _Drug:
    rxnorm: str
    display: str
    doses_per_day: int
    systolic_reduction_mm_hg: float = 0.0
    diastolic_reduction_mm_hg: float = 0.0


@dataclass(frozen=True, slots=True)
class _Place:
    city: str
    state: str
    time_zone: str


@dataclass(frozen=True, slots=True)
class _Population:
    source: str
    tables: Mapping[str, _AgeTable]
    scalars: Mapping[str, Mapping[str, float]]
    age_bands: tuple[tuple[int, int, float], ...]
    antihypertensives: tuple[_Drug, ...]
    metformin: _Drug
    atorvastatin: _Drug
    insulin: _Drug
    given_names: Mapping[str, tuple[str, ...]]
    family_names: tuple[str, ...]
    places: tuple[_Place, ...]
    races: tuple[tuple[str, str, float], ...]

    def scalar(self, section: str, name: str) -> float:
        return self.scalars[section][name]

    def table(self, name: str, field: str, sex: Sex, age_years: int) -> float:
        return self.tables[name].value(field, sex, age_years)


def _number(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PopulationFileError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _section(data: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    section = data.get(name)
    if not isinstance(section, dict):
        raise PopulationFileError(f"{where}: missing table [{name}]")
    source = section.get("source")
    if not isinstance(source, str) or not source.strip():
        raise PopulationFileError(f"{where} [{name}]: missing its 'source' string")
    return section


def _strings(where: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise PopulationFileError(f"{where}: expected a non-empty list of strings")
    return tuple(str(v) for v in value)


def _parse_table(name: str, section: Mapping[str, Any], where: str) -> _AgeTable:
    raw_rows = section.get("rows")
    if not isinstance(raw_rows, list) or not raw_rows:
        raise PopulationFileError(f"{where} [{name}]: missing 'rows'")
    rows = []
    for number, raw in enumerate(raw_rows, start=1):
        at = f"{where} [{name}] row {number}"
        if not isinstance(raw, dict):
            raise PopulationFileError(f"{at}: expected an inline table")
        sex = raw.get("sex", "any")
        if sex not in ("female", "male", "any"):
            raise PopulationFileError(f"{at}: sex must be 'female' or 'male', got {sex!r}")
        values = {}
        for field in _TABLE_FIELDS[name]:
            if field not in raw:
                raise PopulationFileError(f"{at}: missing field '{field}'")
            values[field] = _number(f"{at} field '{field}'", raw[field])
        rows.append(
            _Row(
                sex=sex,
                age_min=int(_number(f"{at} age_min", raw.get("age_min"))),
                age_max=int(_number(f"{at} age_max", raw.get("age_max"))),
                values=values,
            )
        )
    table = _AgeTable(name=name, rows=tuple(rows))
    sexes: tuple[Sex, ...] = ("female", "male")
    for sex_ in sexes:
        for age in range(_MIN_AGE, _MAX_AGE + 1):
            matches = [r for r in rows if r.sex in (sex_, "any") and r.age_min <= age <= r.age_max]
            if len(matches) != 1:
                raise PopulationFileError(
                    f"{where} [{name}]: {len(matches)} rows hold {sex_}, age {age}; "
                    "rows must cover ages 18-85 exactly once for each sex"
                )
    return table


def _parse_drug(where: str, raw: Mapping[str, Any]) -> _Drug:
    rxnorm = raw.get("rxnorm")
    display = raw.get("display")
    if not isinstance(rxnorm, str) or not isinstance(display, str):
        raise PopulationFileError(f"{where}: a drug needs 'rxnorm' and 'display' strings")
    return _Drug(
        rxnorm=rxnorm,
        display=display,
        doses_per_day=int(_number(f"{where} doses_per_day", raw.get("doses_per_day"))),
        systolic_reduction_mm_hg=float(raw.get("systolic_reduction_mm_hg", 0.0)),
        diastolic_reduction_mm_hg=float(raw.get("diastolic_reduction_mm_hg", 0.0)),
    )


def _parse_population(data: Mapping[str, Any], where: str) -> _Population:
    tables = {
        name: _parse_table(name, _section(data, name, where), where) for name in _TABLE_FIELDS
    }
    scalars: dict[str, dict[str, float]] = {}
    for name, fields in _SCALAR_FIELDS.items():
        section = _section(data, name, where)
        scalars[name] = {}
        for field in fields:
            if field not in section:
                raise PopulationFileError(f"{where} [{name}]: missing field '{field}'")
            scalars[name][field] = _number(f"{where} [{name}] {field}", section[field])

    demographics = _section(data, "demographics", where)
    raw_bands = demographics.get("age_bands")
    if not isinstance(raw_bands, list) or not raw_bands:
        raise PopulationFileError(f"{where} [demographics]: missing 'age_bands'")
    bands = tuple(
        (
            int(_number(f"{where} [demographics] age_min", band.get("age_min"))),
            int(_number(f"{where} [demographics] age_max", band.get("age_max"))),
            _number(f"{where} [demographics] population_millions", band.get("population_millions")),
        )
        for band in raw_bands
    )

    treatment = _section(data, "hypertension_treatment", where)
    raw_drugs = treatment.get("drugs")
    if not isinstance(raw_drugs, list) or len(raw_drugs) < 2:
        raise PopulationFileError(f"{where} [hypertension_treatment]: needs >= 2 'drugs'")
    antihypertensives = tuple(
        _parse_drug(f"{where} [hypertension_treatment] drug {i}", raw)
        for i, raw in enumerate(raw_drugs, start=1)
    )
    names = _section(data, "names", where)
    places_section = _section(data, "places", where)
    raw_places = places_section.get("cities")
    if not isinstance(raw_places, list) or not raw_places:
        raise PopulationFileError(f"{where} [places]: missing 'cities'")
    places = []
    for i, raw in enumerate(raw_places, start=1):
        city, state, zone = raw.get("city"), raw.get("state"), raw.get("time_zone")
        if not all(isinstance(v, str) for v in (city, state, zone)):
            raise PopulationFileError(f"{where} [places] city {i}: needs city, state, time_zone")
        places.append(_Place(city=str(city), state=str(state), time_zone=str(zone)))
    race_section = _section(data, "race_ethnicity", where)
    raw_races = race_section.get("races")
    if not isinstance(raw_races, list) or len(raw_races) < 2:
        raise PopulationFileError(f"{where} [race_ethnicity]: needs >= 2 'races'")
    races = []
    for i, raw in enumerate(raw_races, start=1):
        at = f"{where} [race_ethnicity] race {i}"
        code, display = raw.get("code"), raw.get("display")
        if not isinstance(code, str) or not isinstance(display, str):
            raise PopulationFileError(f"{at}: needs 'code' and 'display' strings")
        races.append((code, display, _number(f"{at} share", raw.get("share"))))
    return _Population(
        source=where,
        tables=tables,
        scalars=scalars,
        age_bands=bands,
        antihypertensives=antihypertensives,
        metformin=_parse_drug(
            f"{where} [diabetes_treatment]", _section(data, "diabetes_treatment", where)
        ),
        atorvastatin=_parse_drug(
            f"{where} [lipid_treatment]", _section(data, "lipid_treatment", where)
        ),
        insulin=_parse_drug(f"{where} [type1_diabetes]", _section(data, "type1_diabetes", where)),
        given_names={
            "female": _strings(f"{where} [names] given_female", names.get("given_female")),
            "male": _strings(f"{where} [names] given_male", names.get("given_male")),
        },
        family_names=_strings(f"{where} [names] family", names.get("family")),
        places=tuple(places),
        races=tuple(races),
    )


@lru_cache(maxsize=1)
def _load_population() -> _Population:
    resource = resources.files("medtwin.synth").joinpath("data", "population.toml")
    where = "medtwin/synth/data/population.toml"
    try:
        data = tomllib.loads(resource.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise PopulationFileError(f"{where}: not valid TOML ({error})") from error
    return _parse_population(data, where)


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year + years, day=28)


def _age_on(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _mix(rho: float, shared: float, own: float) -> float:
    """A standard-normal deviate with correlation ``rho`` to the standard-normal ``shared``."""
    return rho * shared + math.sqrt(1.0 - rho * rho) * own


@lru_cache(maxsize=256)
def _upper_threshold(prevalence: float) -> float:
    """The z above which a fraction ``prevalence`` of a standard normal lies."""
    return _STANDARD_NORMAL.inv_cdf(1.0 - min(max(prevalence, 1e-9), 1.0 - 1e-9))


def _lognormal(mean: float, sd: float, z: float) -> float:
    """The value at standard-normal deviate ``z`` of a lognormal with this mean and SD."""
    log_var = math.log1p((sd / mean) ** 2)
    return math.exp(math.log(mean) - log_var / 2.0 + math.sqrt(log_var) * z)


def _person_sd(total_sd: float, within_sd: float) -> float:
    """Between-person SD such that between + within variation gives ``total_sd``."""
    return math.sqrt(max(total_sd**2 - within_sd**2, (0.25 * total_sd) ** 2))


def _piecewise_change(
    age_from: float, age_to: float, rates: Sequence[tuple[float, float]]
) -> float:
    """Change between two ages of a quantity whose rate per year is piecewise constant.

    ``rates`` lists ``(up_to_age, rate_per_year)`` in increasing age; the last one applies
    beyond its age too.
    """
    total = 0.0
    lower = -math.inf
    for index, (upper, rate) in enumerate(rates):
        top = math.inf if index == len(rates) - 1 else upper
        overlap = min(age_to, top) - max(age_from, lower)
        if overlap > 0:
            total += overlap * rate
        lower = upper
    return total


def _coding(system: str, code: str, display: str) -> Json:
    return {"system": system, "code": code, "display": display}


def _concept(system: str, code: str, display: str, text: str | None = None) -> Json:
    concept: Json = {"coding": [_coding(system, code, display)]}
    if text is not None:
        concept["text"] = text
    return concept


def _quantity(value: float, unit: str) -> Json:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _meta() -> Json:
    return {"tag": [_coding(TAG_SYSTEM, "synthetic", "Synthetic data")]}


@dataclass(frozen=True, slots=True)
class _Start:
    """When a condition began or a drug was started.

    ``visit`` is the index of the check-up where it happened, or ``None`` when it happened
    before the first check-up, on ``day``.
    """

    visit: int | None
    day: dt.date

    def active_at(self, visit: int) -> bool:
        """True when in effect AT the check-up ``visit`` (a drug started there acts later)."""
        return self.visit is None or visit > self.visit


# --------------------------------------------------------------------------------------------
# one patient
# --------------------------------------------------------------------------------------------


class _PatientGenerator:
    def __init__(
        self,
        population: _Population,
        rng: random.Random,
        index: int,
        today: dt.date,
        seed: int,
    ) -> None:
        self.pop = population
        self.rng = rng
        self.index = index
        self.today = today
        self.seed = seed
        self.device_user = False
        self.vcf_sample = False
        self.type1_enriched = False
        self._counter = 0
        self._entries: list[tuple[dt.datetime, int, Json]] = []

    # -- plumbing ---------------------------------------------------------------------------

    def _new_id(self) -> str:
        self._counter += 1
        return str(uuid.uuid5(_ID_NAMESPACE, f"{self.seed}:{self.index}:{self._counter}"))

    def _add(self, resource: Json, when: dt.datetime) -> str:
        self._entries.append((when, len(self._entries), resource))
        return f"urn:uuid:{resource['id']}"

    def _gauss(self) -> float:
        return self.rng.gauss(0.0, 1.0)

    def _at(self, day: dt.date, hour: int, minute: int) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=self.zone)

    def _midnight(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(0, 0), tzinfo=self.zone)

    def _start(self, years_before_last_max: float, min_age_years: float) -> _Start:
        """A start no later than the last-but-one check-up (the last one shows its effect).

        Drawn uniformly ``tau`` years before the last check-up, ``tau`` between the last-but-one
        check-up (or a month, when there is only one) and ``years_before_last_max``.
        """
        low = self.taus[-2] if len(self.taus) >= 2 else 0.1
        high = max(low + 0.05, min(years_before_last_max, self.age_last - min_age_years))
        tau = self.rng.uniform(low, high)
        day = self.last_day - dt.timedelta(days=round(tau * _DAYS_PER_YEAR))
        day = max(day, self.birth_date + dt.timedelta(days=1))
        if day < self.visit_days[0]:
            return _Start(visit=None, day=day)
        visit = next(i for i, visit_day in enumerate(self.visit_days) if visit_day >= day)
        return _Start(visit=visit, day=self.visit_days[visit])

    # -- the patient ------------------------------------------------------------------------

    def prepare(self) -> None:
        """Draw everything that the physiology needs (before :func:`_build` runs the models)."""
        self._demographics()
        self._schedule()
        self._type1()
        self._traits()
        self._events()
        self._race_ethnicity()
        self.weight_plan: WeightPlan | None = None
        self.vitals_plan: VitalsPlan | None = None

    def bundle(self) -> Json:
        """The Bundle, once :meth:`prepare` ran and the plans are set."""
        self._resources()
        self._entries.sort(key=lambda item: (item[0], item[1]))
        entries: list[object] = []
        for _, _, resource in self._entries:
            resource_type = str(resource["resourceType"])
            entries.append(
                {
                    "fullUrl": f"urn:uuid:{resource['id']}",
                    "resource": resource,
                    "request": {"method": "PUT", "url": f"{resource_type}/{resource['id']}"},
                }
            )
        bundle_id = uuid.uuid5(_ID_NAMESPACE, f"{self.seed}:{self.index}:bundle")
        return {
            "resourceType": "Bundle",
            "id": str(bundle_id),
            "meta": _meta(),
            "type": "transaction",
            "entry": entries,
        }

    def _demographics(self) -> None:
        rng, pop = self.rng, self.pop
        self.sex: Sex = (
            "female" if rng.random() < pop.scalar("demographics", "female_fraction") else "male"
        )
        band = rng.choices(pop.age_bands, weights=[w for _, _, w in pop.age_bands])[0]
        age = rng.randint(band[0], band[1])
        self.birth_date = _add_years(self.today, -age) - dt.timedelta(days=rng.randrange(365))
        self.place = rng.choice(pop.places)
        self.zone = ZoneInfo(self.place.time_zone)
        self.given = rng.choice(pop.given_names[self.sex])
        self.family = rng.choice(pop.family_names)

    def _schedule(self) -> None:
        rng, pop = self.rng, self.pop
        adult_from = _add_years(self.birth_date, _MIN_AGE)
        last = self.today - dt.timedelta(
            days=rng.randint(
                int(pop.scalar("visits", "last_visit_min_days_ago")),
                int(pop.scalar("visits", "last_visit_max_days_ago")),
            )
        )
        if last < adult_from:
            # a patient who came of age within the visit gap: the last visit falls between
            # the 18th birthday and yesterday (the record ends before 'today'); one who turns
            # 18 today is made a day older, so that such a day exists
            if adult_from >= self.today:
                self.birth_date -= dt.timedelta(days=1)
                adult_from = _add_years(self.birth_date, _MIN_AGE)
            span = (self.today - adult_from).days - 1
            last = adult_from + dt.timedelta(days=rng.randint(0, max(span, 0)))
        wanted = rng.randint(
            int(pop.scalar("visits", "min_visits")), int(pop.scalar("visits", "max_visits"))
        )
        jitter = int(pop.scalar("visits", "jitter_days"))
        days = [last]
        for _ in range(wanted - 1):
            day = days[-1] - dt.timedelta(days=365 + rng.randint(-jitter, jitter))
            if day < adult_from:
                break
            days.append(day)
        days.reverse()
        self.visit_days = days
        self.last_day = last
        self.taus = [(last - day).days / _DAYS_PER_YEAR for day in days]
        self.visit_times = [
            self._at(day, rng.randint(8, 15), rng.choice((0, 15, 30, 45))) for day in days
        ]
        self.age_last = (last - self.birth_date).days / _DAYS_PER_YEAR
        self.age_last_years = _age_on(self.birth_date, last)

    def _type1(self) -> None:
        """Type 1 diabetes (own generator) and its diagnosis, before the first check-up."""
        section = self.pop.scalars["type1_diabetes"]
        draw = _type1_rng(self.seed, self.index)
        natural = draw.random() < section["prevalence"]
        onset_u = draw.random()
        self.type1 = natural or self.type1_enriched
        self.type1_enriched = self.type1_enriched and not natural
        self.type1_start: _Start | None = None
        if self.type1:
            first_age = (self.visit_days[0] - self.birth_date).days / _DAYS_PER_YEAR
            low = section["onset_age_min_years"]
            high = max(low, min(section["onset_age_max_years"], first_age - 0.1))
            onset_age = low + onset_u * (high - low)
            day = self.birth_date + dt.timedelta(days=round(onset_age * _DAYS_PER_YEAR))
            self.type1_start = _Start(visit=None, day=min(day, self.visit_days[0]))

    def _type1_glucose(self) -> float:
        """The HbA1c (%) of the mean of the person's own simulated CGM (type 1 diabetes).

        The UVA/Padova life of :func:`medtwin.synth.glucose.simulate_life`, started from the
        person's glucose generator (:func:`medtwin.synth.glucose.person_rng`, the one the
        wearable CGM of :mod:`medtwin.synth.streams` starts from, so the same virtual patient
        and pump settings), over ``[type1_diabetes] reference_days`` days; the ADAG relation
        (Nathan et al. 2008) turns its mean noise-free sensor glucose into HbA1c.
        """
        from medtwin.synth import glucose  # glucose imports this module

        hba1c = self.pop.scalars["hba1c"]
        noon = dt.datetime.combine(self.today, dt.time(12), tzinfo=self.zone)
        offset = noon.utcoffset()
        life = glucose.simulate_life(
            glucose.person_rng(self.seed, self.index),
            age_years=_age_on(self.birth_date, self.today),
            weight_kg=self.weight_last,
            days=int(self.pop.scalar("type1_diabetes", "reference_days")),
            utc_offset_min=0.0 if offset is None else offset.total_seconds() / 60.0,
        )
        self.type1_basal_u_per_h = life.basal_u_per_h
        self.type1_carb_ratio_g_per_u = life.carb_ratio_g_per_u
        self.type1_mean_glucose_mg_dl = float(np.mean(life.cgm_model_mg_dl))
        return (self.type1_mean_glucose_mg_dl - hba1c["adag_intercept_mg_dl"]) / hba1c[
            "adag_slope_mg_dl_per_percent"
        ]

    def _traits(self) -> None:
        pop, sex, age = self.pop, self.sex, self.age_last_years
        rho = pop.scalars["correlations"]
        within = pop.scalars["within_person"]
        gauss = self._gauss

        # Body size: BMI (lognormal) and height; weight follows.
        z_bmi = gauss()
        self.bmi_last = min(
            max(
                _lognormal(
                    pop.table("anthropometry", "bmi_kg_m2", sex, age),
                    pop.table("anthropometry", "bmi_sd_kg_m2", sex, age),
                    z_bmi,
                ),
                15.0,
            ),
            70.0,
        )
        self.height_cm = (
            pop.table("anthropometry", "height_cm", sex, age)
            + pop.table("anthropometry", "height_sd_cm", sex, age) * gauss()
        )
        self.weight_last = self.bmi_last * (self.height_cm / 100.0) ** 2

        # Blood pressure as measured in the population (treated people at their treated level).
        u_sbp = _mix(rho["bmi_systolic"], z_bmi, gauss())
        u_dbp = _mix(rho["systolic_diastolic"], u_sbp, gauss())
        sbp_sd = _person_sd(
            pop.table("blood_pressure", "systolic_sd_mm_hg", sex, age), within["systolic_sd_mm_hg"]
        )
        dbp_sd = _person_sd(
            pop.table("blood_pressure", "diastolic_sd_mm_hg", sex, age),
            within["diastolic_sd_mm_hg"],
        )
        self.sbp_last = pop.table("blood_pressure", "systolic_mm_hg", sex, age) + sbp_sd * u_sbp
        self.dbp_last = pop.table("blood_pressure", "diastolic_mm_hg", sex, age) + dbp_sd * u_dbp
        liability = _mix(rho["systolic_hypertension"], u_sbp, gauss())
        self.hypertension = liability > _upper_threshold(
            pop.table("hypertension", "prevalence", sex, age)
        )

        hr_sd = _person_sd(
            pop.table("heart_rate", "heart_rate_sd_per_min", sex, age),
            within["heart_rate_sd_per_min"],
        )
        # A resting rate outside 50-105/min would be a finding of its own; not modelled.
        self.heart_rate = min(
            max(
                pop.table("heart_rate", "heart_rate_per_min", sex, age)
                + hr_sd * _mix(rho["bmi_heart_rate"], z_bmi, gauss()),
                50.0,
            ),
            105.0,
        )

        # Diabetes (liability raised by BMI) and HbA1c. Type 1 is drawn on its own generator
        # (``_type1_draw``); type 2 takes the rest of the table's prevalence among the others.
        liability = _mix(rho["bmi_diabetes"], z_bmi, gauss())
        p_all = pop.table("diabetes", "prevalence", sex, age)
        p_type1 = pop.scalar("type1_diabetes", "prevalence")
        p_type2 = max(p_all - p_type1, 0.0) / (1.0 - p_type1)
        self.diabetes = not self.type1 and liability > _upper_threshold(p_type2)
        hba1c = pop.scalars["hba1c"]
        if self.type1:
            # From the person's own simulated glucose (ADAG), see ``_type1_glucose``.
            self.a1c_last = self._type1_glucose()
        elif self.diabetes:
            # Diabetics already carry the BMI association through their diagnosis; their own
            # deviate keeps the treated HbA1c median at the table value.
            floor = hba1c["diabetic_floor_percent"]
            self.a1c_treated = min(
                max(
                    floor
                    + (hba1c["diabetic_median_percent"] - floor)
                    * math.exp(hba1c["diabetic_log_sd"] * gauss()),
                    5.6,
                ),
                14.0,
            )
            effect = max(
                0.2,
                pop.scalar("diabetes_treatment", "hba1c_reduction_percent")
                + pop.scalar("diabetes_treatment", "hba1c_reduction_sd_percent") * gauss(),
            )
            self.a1c_untreated = max(
                self.a1c_treated + effect, hba1c["diagnostic_threshold_percent"] + 0.1
            )
            self.a1c_last = self.a1c_treated
        else:
            sd = _person_sd(
                pop.table("hba1c", "nondiabetic_sd_percent", sex, age), within["hba1c_sd_percent"]
            )
            u_a1c = _mix(rho["bmi_hba1c"], z_bmi, gauss())
            self.a1c_last = min(
                max(pop.table("hba1c", "nondiabetic_percent", sex, age) + sd * u_a1c, 4.2),
                hba1c["nondiabetic_max_percent"],
            )

        # Lipids: LDL without a statin; HDL and triglycerides lognormal.
        ldl_mean = pop.table("lipids", "ldl_untreated_mg_dl", sex, age)
        ldl_sd = _person_sd(
            pop.table("lipids", "ldl_sd_mg_dl", sex, age), within["ldl_cv"] * ldl_mean
        )
        self.ldl_untreated_last = max(
            30.0, ldl_mean + ldl_sd * _mix(rho["bmi_ldl"], z_bmi, gauss())
        )
        self.hdl = min(
            _lognormal(
                pop.table("lipids", "hdl_mg_dl", sex, age),
                pop.table("lipids", "hdl_sd_mg_dl", sex, age),
                _mix(rho["bmi_hdl"], z_bmi, gauss()),
            ),
            100.0,
        )
        self.triglycerides = pop.table("lipids", "triglycerides_median_mg_dl", sex, age) * math.exp(
            pop.table("lipids", "triglycerides_log_sd", sex, age)
            * _mix(rho["bmi_triglycerides"], z_bmi, gauss())
        )

        # Creatinine (lognormal), rising with age, diabetes and hypertension.
        creatinine = pop.scalars["creatinine"]
        base = creatinine["female_at_40_mg_dl" if sex == "female" else "male_at_40_mg_dl"]
        log_sd = _person_sd(creatinine["log_sd"], within["creatinine_cv"])
        self.log_creatinine_last = (
            math.log(base)
            + creatinine["log_rise_per_year"] * (self.age_last - 40.0)
            + creatinine["diabetes_log_effect"] * (self.diabetes or self.type1)
            + creatinine["hypertension_log_effect"] * self.hypertension
            + log_sd * gauss()
        )

    def _events(self) -> None:
        pop, rng, gauss = self.pop, self.rng, self._gauss
        age = self.age_last_years

        # Hypertension and its treatment.
        self.hypertension_start: _Start | None = None
        self.antihypertensives: list[tuple[_Drug, float, float]] = []
        if self.hypertension:
            treat = pop.scalars["hypertension_treatment"]
            self.hypertension_start = self._start(
                treat["max_years_since_diagnosis"], treat["min_age_at_diagnosis"]
            )
            controlled = (
                self.sbp_last < treat["controlled_systolic_mm_hg"]
                and self.dbp_last < treat["controlled_diastolic_mm_hg"]
            )
            if controlled or rng.random() < treat["treated_if_uncontrolled_fraction"]:
                drugs = list(pop.antihypertensives)
                count = 2 if rng.random() < treat["second_drug_fraction"] else 1
                for drug in rng.sample(drugs, count):
                    systolic = max(
                        0.0, drug.systolic_reduction_mm_hg + treat["effect_sd_mm_hg"] * gauss()
                    )
                    diastolic = drug.diastolic_reduction_mm_hg * (
                        systolic / drug.systolic_reduction_mm_hg
                    )
                    self.antihypertensives.append((drug, systolic, diastolic))

        # Diabetes: diagnosed and started on metformin at the same check-up.
        self.diabetes_start: _Start | None = None
        if self.diabetes:
            treat = pop.scalars["diabetes_treatment"]
            self.diabetes_start = self._start(
                treat["max_years_since_diagnosis"], treat["min_age_at_diagnosis"]
            )

        # Statins and hyperlipidaemia.
        lipid = pop.scalars["lipid_treatment"]
        ldl = self.ldl_untreated_last
        in_age = lipid["min_age_years"] <= age <= lipid["max_age_years"]
        high = ldl >= lipid["high_ldl_mg_dl"]
        any_diabetes = self.diabetes or self.type1
        eligible = ldl >= lipid["very_high_ldl_mg_dl"] or (in_age and (any_diabetes or high))
        self.statin_start: _Start | None = None
        self.statin_reduction = 0.0
        self.hyperlipidemia_start: _Start | None = None
        if eligible and rng.random() < lipid["uptake_fraction"]:
            if self.diabetes_start is not None and not high:
                self.statin_start = self.diabetes_start
            else:
                self.statin_start = self._start(
                    lipid["max_years_since_start"], lipid["min_age_at_start"]
                )
            self.statin_reduction = min(
                max(
                    lipid["ldl_reduction_fraction"] + lipid["ldl_reduction_sd_fraction"] * gauss(),
                    0.2,
                ),
                0.65,
            )
        if high:
            # Recorded when the statin was started for it, else at its own diagnosis.
            self.hyperlipidemia_start = (
                self.statin_start
                if self.statin_start is not None
                else self._start(lipid["max_years_since_start"], lipid["min_age_at_start"])
            )

        # Smoking: current, former (quit some years ago) or never.
        smoking = pop.scalars["smoking"]
        ratio = smoking["female_current_ratio" if self.sex == "female" else "male_current_ratio"]
        current = pop.table("smoking", "current", self.sex, age) * ratio
        former = pop.table("smoking", "former", self.sex, age)
        draw = rng.random()
        self.smoking = (
            "current" if draw < current else "former" if draw < current + former else "never"
        )
        self.quit_years_before_last = 0.0
        if self.smoking == "former":
            high_years = max(0.2, min(smoking["max_years_since_quitting"], self.age_last - 18.0))
            self.quit_years_before_last = rng.uniform(0.1, high_years)

        # Influenza vaccination habit and penicillin allergy.
        flu = pop.scalars["influenza_vaccination"]
        coverage = pop.table("influenza_vaccination", "coverage", self.sex, age)
        habitual, occasional = (
            flu["habitual_season_probability"],
            flu["occasional_season_probability"],
        )
        habitual_share = min(max((coverage - occasional) / (habitual - occasional), 0.0), 1.0)
        self.flu_probability = habitual if rng.random() < habitual_share else occasional
        self.penicillin_allergy = rng.random() < pop.scalar("allergy", "penicillin_prevalence")

    def _race_ethnicity(self) -> None:
        """OMB race categories and ethnicity (own generator, so nothing else changes)."""
        pop = self.pop
        draw = random.Random(f"medtwin.synth.race:{self.seed}:{self.index}")
        singles = pop.races
        multiracial = pop.scalar("race_ethnicity", "multiracial_share")
        weights = [share for _, _, share in singles]
        if draw.random() < multiracial / (multiracial + sum(weights)):
            first = draw.choices(range(len(singles)), weights=weights)[0]
            rest = [i for i in range(len(singles)) if i != first]
            second = draw.choices(rest, weights=[weights[i] for i in rest])[0]
            self.races = [singles[first][:2], singles[second][:2]]
        else:
            self.races = [draw.choices(singles, weights=weights)[0][:2]]
        hispanic = draw.random() < pop.scalar("race_ethnicity", "hispanic_share")
        self.ethnicity = HISPANIC if hispanic else NOT_HISPANIC

    def _race_extensions(self) -> list[Json]:
        """US Core race and ethnicity extensions (``ombCategory`` codings and ``text``)."""
        text = (
            self.races[0][1]
            if len(self.races) == 1
            else "Two or more races: " + ", ".join(display for _, display in self.races)
        )
        race: list[Json] = [
            {"url": "ombCategory", "valueCoding": _coding(RACE_ETHNICITY_SYSTEM, code, display)}
            for code, display in self.races
        ]
        race.append({"url": "text", "valueString": text})
        code, display = self.ethnicity
        ethnicity: list[Json] = [
            {"url": "ombCategory", "valueCoding": _coding(RACE_ETHNICITY_SYSTEM, code, display)},
            {"url": "text", "valueString": display},
        ]
        return [
            {"url": US_CORE_RACE, "extension": race},
            {"url": US_CORE_ETHNICITY, "extension": ethnicity},
        ]

    def _visit_offsets(self) -> tuple[int, ...]:
        return tuple((day - self.visit_days[0]).days for day in self.visit_days)

    def _trend_weight_change(self, age_from: float) -> float:
        """Population weight change (kg) from ``age_from`` to the last check-up."""
        within = self.pop.scalars["within_person"]
        return _piecewise_change(
            age_from,
            self.age_last,
            (
                (55.0, within["weight_gain_kg_per_year_before_55"]),
                (65.0, 0.0),
                (math.inf, -within["weight_loss_kg_per_year_after_65"]),
            ),
        )

    def weight_request(self) -> WeightRequest:
        """What the Hall model must reproduce: the population trend plus the person's own."""
        from medtwin.synth.physiology import WeightRequest

        physiology = self.pop.scalars["physiology"]
        years = self.taus[0]
        draw = random.Random(f"medtwin.synth.physiology:{self.seed}:{self.index}")
        own = (
            physiology["weight_trend_sd_fraction_per_year"]
            * self.weight_last
            * years
            * draw.gauss(0.0, 1.0)
        )
        first = self.weight_last - self._trend_weight_change(self.age_last - years) - own
        return WeightRequest(
            sex=self.sex,
            age_years=self.age_last - years,
            height_m=self.height_cm / 100.0,
            first_weight_kg=first,
            last_weight_kg=self.weight_last,
            visit_days=self._visit_offsets(),
            physical_activity_level=physiology["physical_activity_level"],
        )

    def _untreated_pressures(self, visit: int) -> tuple[float, float]:
        """Systolic and diastolic pressure without treatment at check-up ``visit`` (no noise)."""
        within = self.pop.scalars["within_person"]
        tau = self.taus[visit]
        systolic = self.sbp_last - within["systolic_rise_mm_hg_per_year"] * tau
        diastolic = self.dbp_last - _piecewise_change(
            self.age_last - tau,
            self.age_last,
            (
                (50.0, within["diastolic_rise_mm_hg_per_year_before_50"]),
                (60.0, 0.0),
                (math.inf, -within["diastolic_fall_mm_hg_per_year_after_60"]),
            ),
        )
        # the drawn last values of a treated person are the treated ones
        systolic += sum(effect for _, effect, _ in self.antihypertensives)
        diastolic += sum(effect for _, _, effect in self.antihypertensives)
        return systolic, diastolic

    def _treated_from(self) -> int | None:
        """The first check-up at which an antihypertensive acts (``None``: none does)."""
        start = self.hypertension_start
        if start is None or not self.antihypertensives:
            return None
        first = 0 if start.visit is None else start.visit + 1
        return first if first < len(self.visit_days) else None

    def vitals_request(self) -> VitalsRequest:
        """What the circulation model must reproduce at each check-up."""
        from medtwin.synth.physiology import VitalsRequest

        pressures = [self._untreated_pressures(v) for v in range(len(self.visit_days))]
        return VitalsRequest(
            sex=self.sex,
            age_years=self.age_last,
            weight_kg=self.weight_last,
            systolic_mm_hg=tuple(s for s, _ in pressures),
            diastolic_mm_hg=tuple(d for _, d in pressures),
            heart_rate_per_min=self.heart_rate,
            treated_from=self._treated_from(),
            systolic_drop_mm_hg=sum(effect for _, effect, _ in self.antihypertensives),
            diastolic_drop_mm_hg=sum(effect for _, _, effect in self.antihypertensives),
        )

    # -- resources --------------------------------------------------------------------------

    def _resources(self) -> None:
        patient_id = self._new_id()
        self.patient_ref = f"urn:uuid:{patient_id}"
        patient: Json = {
            "resourceType": "Patient",
            "id": patient_id,
            "meta": _meta(),
            "identifier": [
                {
                    "use": "usual",
                    "type": _concept(IDENTIFIER_TYPE, "MR", "Medical record number"),
                    "system": MRN_SYSTEM,
                    "value": f"SYN-{self.seed}-{self.index}",
                }
            ],
            "extension": self._race_extensions(),
            "active": True,
            "name": [{"use": "official", "family": self.family, "given": [self.given]}],
            "gender": self.sex,
            "birthDate": self.birth_date.isoformat(),
            "address": [
                {"use": "home", "city": self.place.city, "state": self.place.state, "country": "US"}
            ],
        }
        if self.type1_enriched:
            tags = cast(list[Json], cast(Json, patient["meta"])["tag"])
            tags.append(
                _coding(TAG_SYSTEM, TYPE1_ENRICHMENT_TAG, "Type 1 diabetes added by enrichment")
            )
        if self.device_user:  # the wearable streams of medtwin.synth.streams name this id
            device: Json = {
                "use": "secondary",
                "system": DEVICE_USER_SYSTEM,
                "value": f"SYN-{self.seed}-{self.index}",
            }
            patient["identifier"] = [*cast(list[Json], patient["identifier"]), device]
        if self.vcf_sample:  # the sample name of medtwin.synth.genotypes' VCF (ingest/vcf.py)
            sample: Json = {
                "use": "secondary",
                "system": VCF_SAMPLE_SYSTEM,
                "value": f"SYN-{self.seed}-{self.index}",
            }
            patient["identifier"] = [*cast(list[Json], patient["identifier"]), sample]
        self._add(patient, dt.datetime.min.replace(tzinfo=dt.UTC))

        encounters = [self._encounter(i) for i in range(len(self.visit_days))]
        conditions = self._conditions(encounters)
        self._medications(encounters, conditions)
        egfrs = [self._visit_observations(i, encounters[i]) for i in range(len(self.visit_days))]
        self._kidney(encounters, egfrs)
        if self.penicillin_allergy:
            self._allergy(encounters[0])
        self._immunizations()

    def _encounter(self, visit: int) -> str:
        start = self.visit_times[visit]
        encounter: Json = {
            "resourceType": "Encounter",
            "id": self._new_id(),
            "meta": _meta(),
            "status": "finished",
            "class": _coding(ACT_CODE, "AMB", "ambulatory"),
            "type": [_concept(SNOMED, "185349003", "Encounter for check up", "Yearly check-up")],
            "subject": {"reference": self.patient_ref},
            "period": {
                "start": start.isoformat(),
                "end": (start + dt.timedelta(minutes=30)).isoformat(),
            },
        }
        return self._add(encounter, start)

    def _condition(self, code: str, display: str, start: _Start, encounters: Sequence[str]) -> str:
        resource: Json = {
            "resourceType": "Condition",
            "id": self._new_id(),
            "meta": _meta(),
            "clinicalStatus": _concept(CONDITION_CLINICAL, "active", "Active"),
            "verificationStatus": _concept(CONDITION_VERIFICATION, "confirmed", "Confirmed"),
            "category": [_concept(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
            "code": _concept(SNOMED, code, display, display),
            "subject": {"reference": self.patient_ref},
        }
        if start.visit is None:
            # Diagnosed before the first check-up here: onset known to the day only, written
            # onto the problem list at the first check-up.
            resource["onsetDateTime"] = start.day.isoformat()
            resource["recordedDate"] = self.visit_times[0].isoformat()
            when = self._midnight(start.day)
        else:
            when = self.visit_times[start.visit] + dt.timedelta(minutes=25)
            resource["encounter"] = {"reference": encounters[start.visit]}
            resource["onsetDateTime"] = when.isoformat()
            resource["recordedDate"] = when.isoformat()
        return self._add(resource, when)

    def _conditions(self, encounters: Sequence[str]) -> dict[str, str]:
        conditions: dict[str, str] = {}
        if self.hypertension_start is not None:
            conditions["hypertension"] = self._condition(
                "38341003",
                "Hypertensive disorder, systemic arterial",
                self.hypertension_start,
                encounters,
            )
        if self.diabetes_start is not None:
            conditions["diabetes"] = self._condition(
                "44054006", "Type 2 diabetes mellitus", self.diabetes_start, encounters
            )
        if self.type1_start is not None:
            conditions["type1_diabetes"] = self._condition(
                TYPE1_SNOMED, "Diabetes mellitus type 1", self.type1_start, encounters
            )
        if self.hyperlipidemia_start is not None:
            conditions["hyperlipidemia"] = self._condition(
                "55822004", "Hyperlipidemia", self.hyperlipidemia_start, encounters
            )
        return conditions

    def _medication(
        self, drug: _Drug, start: _Start, reason: str, encounters: Sequence[str]
    ) -> None:
        per_day = drug.doses_per_day
        text = "Take 1 tablet by mouth " + (
            "once daily" if per_day == 1 else f"{per_day} times daily"
        )
        resource: Json = {
            "resourceType": "MedicationRequest",
            "id": self._new_id(),
            "meta": _meta(),
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": _concept(RXNORM, drug.rxnorm, drug.display, drug.display),
            "subject": {"reference": self.patient_ref},
            "reasonReference": [{"reference": reason}],
            "dosageInstruction": [
                {
                    "sequence": 1,
                    "text": text,
                    "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                    "route": _concept(SNOMED, "26643006", "Oral route"),
                    "doseAndRate": [
                        {
                            "doseQuantity": {
                                "value": 1,
                                "unit": "tablet",
                                "system": DRUG_FORM,
                                "code": "TAB",
                            }
                        }
                    ],
                }
            ],
        }
        if start.visit is None:
            resource["authoredOn"] = start.day.isoformat()
            when = self._midnight(start.day) + dt.timedelta(minutes=1)
        else:
            # Prescribed at the end of the check-up, after that day's measurements.
            when = self.visit_times[start.visit] + dt.timedelta(minutes=30)
            resource["encounter"] = {"reference": encounters[start.visit]}
            resource["authoredOn"] = when.isoformat()
        self._add(resource, when)

    def _insulin(self, start: _Start, reason: str, encounters: Sequence[str]) -> None:
        """Pump insulin lispro for type 1 diabetes, with the pump settings of the simulation."""
        rxnorm, display = self.pop.insulin.rxnorm, self.pop.insulin.display
        basal = self.type1_basal_u_per_h
        ratio = self.type1_carb_ratio_g_per_u
        text = (
            "Insulin pump (continuous subcutaneous insulin infusion): basal "
            f"{basal:.2f} units/hour; meal bolus 1 unit per {ratio:g} g carbohydrate"
        )
        resource: Json = {
            "resourceType": "MedicationRequest",
            "id": self._new_id(),
            "meta": _meta(),
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": _concept(RXNORM, rxnorm, display, display),
            "subject": {"reference": self.patient_ref},
            "reasonReference": [{"reference": reason}],
            "dosageInstruction": [
                {
                    "sequence": 1,
                    "text": text,
                    "route": _concept(SNOMED, "34206005", "Subcutaneous route"),
                    "doseAndRate": [
                        {
                            "rateQuantity": {
                                "value": round(basal, 2),
                                "unit": "U/h",
                                "system": UCUM,
                                "code": "U/h",
                            }
                        }
                    ],
                }
            ],
        }
        # Insulin from the diagnosis (before the first check-up here).
        resource["authoredOn"] = start.day.isoformat()
        self._add(resource, self._midnight(start.day) + dt.timedelta(minutes=1))

    def _medications(self, encounters: Sequence[str], conditions: Mapping[str, str]) -> None:
        if self.hypertension_start is not None:
            for drug, _, _ in self.antihypertensives:
                self._medication(
                    drug, self.hypertension_start, conditions["hypertension"], encounters
                )
        if self.diabetes_start is not None:
            self._medication(
                self.pop.metformin, self.diabetes_start, conditions["diabetes"], encounters
            )
        if self.type1_start is not None:
            self._insulin(self.type1_start, conditions["type1_diabetes"], encounters)
        if self.statin_start is not None:
            reason = conditions.get(
                "hyperlipidemia", conditions.get("diabetes", conditions.get("type1_diabetes"))
            )
            if reason is None:  # LDL >= 190 without a recorded hyperlipidaemia cannot happen
                raise AssertionError("statin without a reason")
            self._medication(self.pop.atorvastatin, self.statin_start, reason, encounters)

    def _observation(
        self,
        encounter: str,
        when: dt.datetime,
        category: str,
        code: str,
        display: str,
    ) -> Json:
        category_display = {
            "vital-signs": "Vital Signs",
            "laboratory": "Laboratory",
            "social-history": "Social History",
        }[category]
        return {
            "resourceType": "Observation",
            "id": self._new_id(),
            "meta": _meta(),
            "status": "final",
            "category": [_concept(OBSERVATION_CATEGORY, category, category_display)],
            "code": _concept(LOINC, code, display, display),
            "subject": {"reference": self.patient_ref},
            "encounter": {"reference": encounter},
            "effectiveDateTime": when.isoformat(),
        }

    def _measure(
        self,
        encounter: str,
        when: dt.datetime,
        category: str,
        code: str,
        display: str,
        value: float,
        unit: str,
    ) -> None:
        observation = self._observation(encounter, when, category, code, display)
        observation["valueQuantity"] = _quantity(value, unit)
        self._add(observation, when)

    def _visit_observations(self, visit: int, encounter: str) -> int:
        """Add the check-up's observations; return its eGFR."""
        pop, gauss, within = self.pop, self._gauss, self.pop.scalars["within_person"]
        tau = self.taus[visit]
        age_here = self.age_last - tau
        vitals_at = self.visit_times[visit] + dt.timedelta(minutes=5)
        labs_at = self.visit_times[visit] + dt.timedelta(minutes=20)

        # Height, weight, BMI (computed from the two measured values, as an EHR does).
        height = round(self.height_cm + within["height_sd_cm"] * gauss(), 1)
        plan = self.weight_plan
        if plan is not None and plan.refused is None:
            true_weight = plan.weights_kg[visit]  # the Hall model's weight on that day
        else:  # outside the Hall model's population: the population trend alone
            true_weight = self.weight_last - self._trend_weight_change(age_here)
        weight = round(max(true_weight + within["weight_sd_kg"] * gauss(), 35.0), 1)
        bmi = round(weight / (height / 100.0) ** 2, 1)
        self._measure(encounter, vitals_at, "vital-signs", "8302-2", "Body height", height, "cm")
        self._measure(encounter, vitals_at, "vital-signs", "29463-7", "Body weight", weight, "kg")
        self._measure(
            encounter,
            vitals_at,
            "vital-signs",
            "39156-5",
            "Body mass index (BMI) [Ratio]",
            bmi,
            "kg/m2",
        )

        # Blood pressure and heart rate: the circulation model's resting steady state at this
        # check-up (ageing and treatment are in its parameters), plus visit-to-visit noise.
        vitals = self.vitals_plan
        if vitals is not None and vitals.refused is None:
            systolic = vitals.systolic_mm_hg[visit]
            diastolic = vitals.diastolic_mm_hg[visit]
            resting_rate = vitals.heart_rate_per_min[visit]
        else:  # outside the model's population: the ageing slopes and drug effects alone
            systolic, diastolic = self._untreated_pressures(visit)
            treated = self._treated_from()
            if treated is not None and visit >= treated:
                systolic -= sum(effect for _, effect, _ in self.antihypertensives)
                diastolic -= sum(effect for _, _, effect in self.antihypertensives)
            resting_rate = self.heart_rate
        systolic_measured = round(
            min(max(systolic + within["systolic_sd_mm_hg"] * gauss(), 85), 230)
        )
        diastolic_measured = round(
            min(max(diastolic + within["diastolic_sd_mm_hg"] * gauss(), 40), systolic_measured - 15)
        )
        panel = self._observation(
            encounter,
            vitals_at,
            "vital-signs",
            "85354-9",
            "Blood pressure panel with all children optional",
        )
        panel["component"] = [
            {
                "code": _concept(LOINC, "8480-6", "Systolic blood pressure"),
                "valueQuantity": _quantity(systolic_measured, "mm[Hg]"),
            },
            {
                "code": _concept(LOINC, "8462-4", "Diastolic blood pressure"),
                "valueQuantity": _quantity(diastolic_measured, "mm[Hg]"),
            },
        ]
        self._add(panel, vitals_at)
        heart_rate = round(
            min(max(resting_rate + within["heart_rate_sd_per_min"] * gauss(), 40), 140)
        )
        self._measure(
            encounter, vitals_at, "vital-signs", "8867-4", "Heart rate", heart_rate, "/min"
        )

        # Smoking status.
        if self.smoking == "former" and tau >= self.quit_years_before_last:
            status = "current"
        else:
            status = self.smoking
        code, display = {
            "never": ("266919005", "Never smoked tobacco"),
            "former": ("8517006", "Ex-smoker"),
            # US Core smoking status: 449868002 is a current (every-day) smoker; 77176002
            # 'Smoker' leaves the current status unknown, so risk scores could not use it
            "current": ("449868002", "Smokes tobacco daily"),
        }[status]
        smoking = self._observation(
            encounter, vitals_at, "social-history", "72166-2", "Tobacco smoking status"
        )
        smoking["valueCodeableConcept"] = _concept(SNOMED, code, display, display)
        self._add(smoking, vitals_at)

        # Lipids: LDL (lowered by a statin once started), HDL, and total = LDL + HDL + TG/5.
        ldl_untreated = self.ldl_untreated_last - _piecewise_change(
            age_here,
            self.age_last,
            ((55.0, within["ldl_rise_mg_dl_per_year_before_55"]), (math.inf, 0.0)),
        )
        if self.statin_start is not None and self.statin_start.active_at(visit):
            ldl_untreated *= 1.0 - self.statin_reduction
        ldl = max(20.0, ldl_untreated * (1.0 + within["ldl_cv"] * gauss()))
        hdl = max(15.0, self.hdl * (1.0 + within["hdl_cv"] * gauss()))
        triglycerides = self.triglycerides * math.exp(within["triglycerides_log_sd"] * gauss())
        total = round(ldl + hdl + triglycerides / 5.0)
        self._measure(
            encounter,
            labs_at,
            "laboratory",
            "2093-3",
            "Cholesterol [Mass/volume] in Serum or Plasma",
            total,
            "mg/dL",
        )
        self._measure(
            encounter,
            labs_at,
            "laboratory",
            "2085-9",
            "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
            round(hdl),
            "mg/dL",
        )
        self._measure(
            encounter,
            labs_at,
            "laboratory",
            "18262-6",
            "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay",
            round(ldl),
            "mg/dL",
        )

        # HbA1c and glucose.
        hba1c = pop.scalars["hba1c"]
        a1c = self._hba1c_level(visit)
        measured = a1c + within["hba1c_sd_percent"] * gauss()
        if self.type1:
            pass  # diagnosed before the first check-up; the level comes from the simulation
        elif self.diabetes_start is not None and self.diabetes_start.visit == visit:
            measured = max(measured, hba1c["diagnostic_threshold_percent"])
        elif self.diabetes_start is None or not self.diabetes_start.active_at(visit):
            measured = min(measured, hba1c["diagnostic_threshold_percent"] - 0.1)
        self._measure(
            encounter,
            labs_at,
            "laboratory",
            "4548-4",
            "Hemoglobin A1c/Hemoglobin.total in Blood",
            round(max(measured, 4.0), 1),
            "%",
        )
        average_glucose = (
            hba1c["adag_slope_mg_dl_per_percent"] * a1c + hba1c["adag_intercept_mg_dl"]
        )
        glucose = round(
            min(max(average_glucose * (1.0 + within["glucose_cv"] * gauss()), 60.0), 450.0)
        )
        self._measure(
            encounter,
            labs_at,
            "laboratory",
            "2339-0",
            "Glucose [Mass/volume] in Blood",
            glucose,
            "mg/dL",
        )

        # Creatinine and the CKD-EPI 2021 eGFR computed from the reported value.
        creatinine_pars = pop.scalars["creatinine"]
        log_creatinine = self.log_creatinine_last - creatinine_pars["log_rise_per_year"] * tau
        creatinine = round(
            max(
                math.exp(log_creatinine) * (1.0 + within["creatinine_cv"] * gauss()),
                creatinine_pars["min_mg_dl"],
            ),
            2,
        )
        age_years = _age_on(self.birth_date, self.visit_days[visit])
        egfr = round(ckd_epi_2021_egfr(creatinine, age_years, self.sex))
        self._measure(
            encounter,
            labs_at,
            "laboratory",
            "2160-0",
            "Creatinine [Mass/volume] in Serum or Plasma",
            creatinine,
            "mg/dL",
        )
        self._measure(
            encounter,
            labs_at,
            "laboratory",
            "98979-8",
            "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, "
            "Plasma or Blood by Creatinine-based formula (CKD-EPI 2021)",
            egfr,
            "mL/min/{1.73_m2}",
        )
        return egfr

    def _hba1c_level(self, visit: int) -> float:
        """HbA1c without measurement noise at check-up ``visit``."""
        hba1c = self.pop.scalars["hba1c"]
        start = self.diabetes_start
        tau = self.taus[visit]
        if self.type1:
            return self.a1c_last
        if start is None:
            rise = self.pop.scalar("within_person", "nondiabetic_hba1c_rise_percent_per_year")
            return self.a1c_last - rise * tau
        if start.active_at(visit):
            return self.a1c_treated
        if start.visit == visit:
            return self.a1c_untreated
        # Before the diagnosis: prediabetes rising towards the value at diagnosis.
        assert start.visit is not None
        years_before = tau - self.taus[start.visit]
        level = self.a1c_untreated - hba1c["prediagnosis_rise_percent_per_year"] * years_before
        return min(max(level, hba1c["prediabetes_min_percent"]), hba1c["nondiabetic_max_percent"])

    def _kidney(self, encounters: Sequence[str], egfrs: Sequence[int]) -> None:
        kidney = self.pop.scalars["kidney"]
        for visit in range(1, len(egfrs)):
            threshold = kidney["ckd_threshold_ml_min"]
            if egfrs[visit - 1] < threshold and egfrs[visit] < threshold:
                # Confirmed at the second low value, more than 3 months after the first (KDIGO).
                if egfrs[visit] < kidney["stage4_threshold_ml_min"]:
                    code, display = "431857002", "Chronic kidney disease stage 4"
                else:
                    code, display = "433144002", "Chronic kidney disease stage 3"
                when = self.visit_times[visit] + dt.timedelta(minutes=28)
                resource: Json = {
                    "resourceType": "Condition",
                    "id": self._new_id(),
                    "meta": _meta(),
                    "clinicalStatus": _concept(CONDITION_CLINICAL, "active", "Active"),
                    "verificationStatus": _concept(
                        CONDITION_VERIFICATION, "confirmed", "Confirmed"
                    ),
                    "category": [
                        _concept(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")
                    ],
                    "code": _concept(SNOMED, code, display, display),
                    "subject": {"reference": self.patient_ref},
                    "encounter": {"reference": encounters[visit]},
                    "onsetDateTime": self.visit_times[visit - 1].isoformat(),
                    "recordedDate": when.isoformat(),
                }
                self._add(resource, when)
                return

    def _allergy(self, first_encounter: str) -> None:
        when = self.visit_times[0] + dt.timedelta(minutes=3)
        resource: Json = {
            "resourceType": "AllergyIntolerance",
            "id": self._new_id(),
            "meta": _meta(),
            "clinicalStatus": _concept(ALLERGY_CLINICAL, "active", "Active"),
            "verificationStatus": _concept(ALLERGY_VERIFICATION, "unconfirmed", "Unconfirmed"),
            "type": "allergy",
            "category": ["medication"],
            "criticality": "low",
            "code": _concept(SNOMED, "764146007", "Penicillin", "Penicillin"),
            "patient": {"reference": self.patient_ref},
            "encounter": {"reference": first_encounter},
            "recordedDate": when.isoformat(),
            "reaction": [
                {
                    "manifestation": [_concept(SNOMED, "126485001", "Urticaria")],
                    "severity": "mild",
                }
            ],
        }
        self._add(resource, when)

    def _immunizations(self) -> None:
        rng = self.rng
        earliest = self.visit_days[0] - dt.timedelta(days=60)
        for year in range(earliest.year, self.today.year + 1):
            if rng.random() >= self.flu_probability:
                continue
            day = dt.date(year, 9, 15) + dt.timedelta(days=rng.randint(0, 90))
            if not earliest <= day < self.today or _age_on(self.birth_date, day) < _MIN_AGE:
                continue
            when = self._at(day, rng.randint(9, 17), rng.choice((0, 10, 20, 30, 40, 50)))
            if year < 2014 or year >= 2024:
                code, display = "140", "Influenza, seasonal, injectable, preservative free"
            else:
                code, display = "150", "Influenza, injectable, quadrivalent, preservative free"
            resource: Json = {
                "resourceType": "Immunization",
                "id": self._new_id(),
                "meta": _meta(),
                "status": "completed",
                "vaccineCode": _concept(CVX, code, display, display),
                "patient": {"reference": self.patient_ref},
                "occurrenceDateTime": when.isoformat(),
                "primarySource": True,
                "doseQuantity": _quantity(0.5, "mL"),
            }
            self._add(resource, when)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def patient_rng(seed: int, index: int) -> random.Random:
    """The random generator :func:`write_synthetic_patients` uses for patient ``index``.

    Each patient has its own stream (seeded from the text ``"medtwin.synth:<seed>:<index>"``),
    so patient 7 is the same whether 10 or 10,000 patients are written.

    Parameters
    ----------
    seed
        The run's seed.
    index
        The patient's index, from 0.

    Returns
    -------
    random.Random
        A freshly seeded generator.

    Examples
    --------
    >>> patient_rng(1, 0).random() == patient_rng(1, 0).random()
    True
    """
    return random.Random(f"medtwin.synth:{seed}:{index}")


def _type1_rng(seed: int, index: int) -> random.Random:
    """The person's own generator for type 1 diabetes (apart from everything else)."""
    return random.Random(f"medtwin.synth.type1:{seed}:{index}")


def type1_enriched_indices(n: int, seed: int, minimum: int) -> frozenset[int]:
    """The patients of a run of ``n`` given type 1 diabetes to reach ``minimum`` (enrichment).

    At the real prevalence (0.5 %, ``population.toml`` [type1_diabetes]) a small run has
    nobody with type 1 diabetes, so nobody on CGM and insulin. When fewer than ``minimum`` of
    patients ``0 .. n-1`` drew type 1, the others with the smallest type-1 draws (each
    person's own generator, so the choice does not depend on the order of generation) are
    given it. They are tagged ``type1-enrichment`` in ``Patient.meta.tag`` and listed in the
    wearables' ``truth.json``. ``minimum`` 0 turns enrichment off.

    Examples
    --------
    >>> sorted(type1_enriched_indices(25, 42, 1))
    [7]
    >>> type1_enriched_indices(25, 42, 0)
    frozenset()
    """
    if minimum < 0:
        raise ValueError(f"type1_minimum must be 0 or more, got {minimum}")
    prevalence = _load_population().scalar("type1_diabetes", "prevalence")
    draws = sorted((_type1_rng(seed, i).random(), i) for i in range(n))
    natural = sum(1 for u, _ in draws if u < prevalence)
    missing = max(0, min(minimum, n) - natural)
    return frozenset(i for _, i in draws[natural : natural + missing])


def generate_patient(
    rng: random.Random,
    index: int,
    *,
    today: dt.date,
    seed: int = 0,
    device_user: bool = False,
    type1_enriched: bool = False,
    vcf_sample: bool = False,
) -> dict[str, object]:
    """One synthetic adult patient as a FHIR R4 transaction Bundle.

    Parameters
    ----------
    rng
        Source of randomness; the Bundle is a pure function of its state and the other
        arguments.
    index
        The patient's number in the run: it goes into the identifier ``SYN-<seed>-<index>``
        and the resource ids.
    today
        The date the data are 'as of': the last check-up lies 2 weeks to 11 months before it
        and nothing lies after it.
    seed
        The run's seed, used for the identifier, the resource ids and the person's own
        type-1 and glucose generators (pass the seed the ``rng`` came from, as
        :func:`write_synthetic_patients` does).
    device_user
        Also give the Patient the identifier ``SYN-<seed>-<index>`` in the device-user system
        ``urn:medtwin:device-user``, which the wearable CSV streams of
        :mod:`medtwin.synth.streams` name in their ``patient`` column (off by default).
    type1_enriched
        Give the patient type 1 diabetes whatever their draw (the enrichment of
        :func:`type1_enriched_indices`; the Patient is tagged ``type1-enrichment``).

    Returns
    -------
    dict[str, object]
        A ``Bundle`` of type ``transaction``: one ``Patient``, its ``Encounter`` check-ups with
        their ``Observation`` results, and ``Condition``, ``MedicationRequest``,
        ``AllergyIntolerance`` and ``Immunization`` resources, in time order. Each entry has
        ``fullUrl`` ``urn:uuid:<id>`` and request ``PUT <type>/<id>``; every resource carries the
        ``synthetic`` tag of ``https://medtwin.org/fhir/tags``.

    Raises
    ------
    PopulationFileError
        When the bundled ``population.toml`` is damaged (names the table and field).

    Examples
    --------
    >>> import datetime, random
    >>> bundle = generate_patient(random.Random(3), 5, today=datetime.date(2026, 1, 1), seed=3)
    >>> patient = bundle["entry"][0]["resource"]
    >>> patient["identifier"][0]["value"]
    'SYN-3-5'
    """
    if isinstance(today, dt.datetime):
        today = today.date()
    generator = _PatientGenerator(_load_population(), rng, index, today, seed)
    generator.device_user = device_user
    generator.type1_enriched = type1_enriched
    generator.vcf_sample = vcf_sample
    return _build([generator])[0]


_BATCH: Final = 256
"""Patients generated together (the models run on all of them at once)."""


def _build(generators: Sequence[_PatientGenerator]) -> list[Json]:
    """Draw the people, run the physiology on all of them at once, write their Bundles.

    Each row is integrated on its own, so who else is in the batch changes a person's numbers
    only where the Hall runs stop at the other people's check-up days too (an adaptive step
    ends there): by the solver's tolerance (about 1e-6 kg), far below the 0.1 kg the record
    rounds to. The circulation's steps are the same for every row.
    """
    from medtwin.synth.physiology import plan_vitals, plan_weights

    for generator in generators:
        generator.prepare()
    weights = plan_weights([g.weight_request() for g in generators])
    for generator, weight_plan in zip(generators, weights, strict=True):
        generator.weight_plan = weight_plan
    vitals = plan_vitals([g.vitals_request() for g in generators])
    for generator, vitals_plan in zip(generators, vitals, strict=True):
        generator.vitals_plan = vitals_plan
    return [generator.bundle() for generator in generators]


def write_synthetic_patients(
    n: int,
    seed: int,
    out_dir: pathlib.Path,
    *,
    today: dt.date | None = None,
    device_user: bool = False,
    type1_minimum: int = DEFAULT_TYPE1_MINIMUM,
    vcf_sample: bool = False,
    form: str = "us",
) -> list[pathlib.Path]:
    """Write ``n`` synthetic patients, one FHIR transaction Bundle per JSON file.

    Files are named ``patient-00000.json``, ``patient-00001.json``, ... in ``out_dir``
    (created when missing; existing files of the same name are replaced). Each file is written
    to a temporary name first and renamed, so no file is ever half-written. The same
    ``(n, seed, today)`` always gives byte-identical files.

    Parameters
    ----------
    n
        Number of patients (0 or more).
    seed
        Seed of the run; patient ``i`` uses :func:`patient_rng` ``(seed, i)``.
    out_dir
        Folder to write into.
    today
        The date the data are 'as of'; default :data:`DEFAULT_TODAY` (2026-01-01), fixed so
        the output does not drift with the clock.
    device_user
        Give each Patient a device-user identifier (see :func:`generate_patient`).
    type1_minimum
        Least number of people with type 1 diabetes (default 1): a smaller run is enriched
        (:func:`type1_enriched_indices`); 0 keeps the prevalence draw alone.
    vcf_sample
        Give each Patient a VCF-sample identifier (see :func:`generate_patient`).
    form
        ``"us"`` (LOINC, US units, RxNorm, US Core race and ethnicity) or ``"uk"``: the same
        people written as UK general practice records them (:func:`medtwin.synth.uk.uk_form`:
        SNOMED CT observables in SI units, dm+d-style drug names, NHS test numbers, the NHS
        ethnic category).

    Returns
    -------
    list[pathlib.Path]
        The files written, in index order.

    Raises
    ------
    ValueError
        When ``n`` is negative or ``out_dir`` exists and is not a folder.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     [p.name for p in write_synthetic_patients(2, 1, pathlib.Path(folder))]
    ['patient-00000.json', 'patient-00001.json']
    """
    if n < 0:
        raise ValueError(f"--patients must be 0 or more, got {n}")
    if form not in ("us", "uk"):
        raise ValueError(f"--form must be us or uk, got {form!r}")
    out = pathlib.Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {out} exists and is not a folder; choose another path")
    out.mkdir(parents=True, exist_ok=True)
    as_of = DEFAULT_TODAY if today is None else today
    enriched = type1_enriched_indices(n, seed, type1_minimum)
    population = _load_population()
    paths: list[pathlib.Path] = []
    if form == "uk":
        from medtwin.synth.uk import nhs_test_numbers, uk_form

        numbers = nhs_test_numbers(seed, n)
    for batch in range(0, n, _BATCH):
        generators = []
        for index in range(batch, min(n, batch + _BATCH)):
            generator = _PatientGenerator(population, patient_rng(seed, index), index, as_of, seed)
            generator.device_user = device_user
            generator.type1_enriched = index in enriched
            generator.vcf_sample = vcf_sample
            generators.append(generator)
        for generator, bundle in zip(generators, _build(generators), strict=True):
            if form == "uk":
                own = random.Random(f"uk-{seed}-{generator.index}")
                bundle = uk_form(bundle, nhs=numbers[generator.index], rng=own)
            path = out / f"patient-{generator.index:05d}.json"
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_bytes(
                orjson.dumps(bundle, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
            )
            os.replace(temporary, path)
            paths.append(path)
    return paths
