"""Synthetic wearable streams with known onsets, for evaluating early-warning detectors.

For each synthetic patient of :mod:`medtwin.synth.generator` (same seed, same index, so sex,
age, home time zone, diabetes and HbA1c agree with the patient's FHIR record) this module draws
``days`` days of device data ending at 'today':

* minute-level **heart rate** and **steps** from a wrist device: a resting heart rate per person
  (Quer et al. 2020), day-to-day variation, a circadian cosine with a nocturnal trough and a
  lower rate asleep (Speed et al. 2023), walking bouts whose cadence raises the heart rate
  towards a share of the heart-rate reserve (Tudor-Locke et al. 2018; Garber et al. 2011;
  Tanaka et al. 2001) with a first-order lag, daily step totals in the published range
  (Tudor-Locke et al. 2011), charging gaps, unworn days and motion artefacts;
* one **SpO2** and one **respiratory rate** summary per night (Gries and Brooks 1996);
* for people with **type 1 diabetes** (SNOMED 46635009 in the record; the record's insulin
  lispro pump and HbA1c come from the same simulation, :mod:`medtwin.synth.generator`),
  **CGM glucose** every 5 minutes from the UVA/Padova type 1 model
  (:mod:`medtwin.synth.glucose`): a virtual patient of the person's age group with their
  recorded body weight, a random meal plan, pump therapy (steady-state basal, meal boluses by
  carb ratio with counting errors and missed boluses, treated lows) and the Dexcom sensor noise
  model, with sensor changes every 10 days and a 2-hour warm-up; the carbohydrate and insulin
  that drove the simulation are written as records (LOINC 9059-7 observations and insulin
  lispro MedicationAdministrations) and the parameter vector as ground truth;
* for a share of people, one **onset at a known time**: an infection (resting heart rate rising
  from 3 days before symptom onset, Mishra et al. 2020, Alavi et al. 2022), a respiratory
  deterioration (nightly SpO2 falling, respiratory rate rising) or glucose heading low (a
  bolus taken by mistake, simulated through the model).

Every number lives in ``data/streams.toml`` with its source; the model card
``docs/models/synthetic-streams.md`` lists them, the tolerances the tests check and the limits.
Everything is vectorised numpy; each patient has its own random stream (seeded from
``"medtwin.synth.streams:<seed>:<index>"``), so patient 7 is the same whether 10 or 1,000
patients are drawn, and the same arguments always give the same arrays and files.

Files (:func:`write_streams`): one CSV per patient per stream in medtwin's device CSV format
``time,metric,value,unit,patient`` (read by :mod:`medtwin.ingest.csv`; the ``patient`` column
is the device-user identifier ``SYN-<seed>-<index>`` that :func:`~medtwin.synth.generator.
generate_patient` adds with ``device_user=True``), for people with type 1 diabetes also
``carbs.csv`` (LOINC 9059-7, g) and ``insulin.ndjson`` (FHIR MedicationAdministration), and
the ground truth as ``truth.json`` and ``truth.csv`` beside the ``streams/`` folder.

Examples
--------
>>> streams = generate_streams(2, seed=1, days=2, onset_fraction=0.0)
>>> [p.profile.patient for p in streams.patients]
['SYN-1-0', 'SYN-1-1']
>>> streams.patients[0].heart_rate_per_min.shape
(2880,)

References
----------
.. [1] Quer G, Gouda P, Galarnyk M, Topol EJ, Steinhubl SR. Inter- and intraindividual
   variability in daily resting heart rate and its associations with age, sex, sleep, BMI, and
   time of year. PLoS One 2020;15(2):e0227709.
.. [2] Speed C, Arneil T, Harle R, et al. Measure by measure: resting heart rate across the
   24-hour cycle. PLOS Digit Health 2023;2(4):e0000236.
.. [3] Tudor-Locke C, Craig CL, Brown WJ, et al. How many steps/day are enough? For adults.
   Int J Behav Nutr Phys Act 2011;8:79.
.. [4] Tudor-Locke C, Han H, Aguiar EJ, et al. How fast is fast enough? Walking cadence
   (steps/min) as a practical estimate of intensity in adults. Br J Sports Med
   2018;52:776-788.
.. [5] Garber CE, Blissmer B, Deschenes MR, et al. American College of Sports Medicine position
   stand. Med Sci Sports Exerc 2011;43:1334-1359 (Table 1: moderate = 40-59 % HRR).
.. [6] Tanaka H, Monahan KD, Seals DR. Age-predicted maximal heart rate revisited. J Am Coll
   Cardiol 2001;37:153-156 (HRmax = 208 - 0.7 x age).
.. [7] Gries RE, Brooks LJ. Normal oxyhemoglobin saturation during sleep. Chest
   1996;110:1489-1492.
.. [8] Battelino T, Danne T, Bergenstal RM, et al. Clinical targets for continuous glucose
   monitoring data interpretation. Diabetes Care 2019;42:1593-1603.
.. [9] Danne T, Nimri R, Battelino T, et al. International consensus on use of continuous
   glucose monitoring. Diabetes Care 2017;40:1631-1640.
.. [10] Nathan DM, Kuenen J, Borg R, et al. Translating the A1C assay into estimated average
   glucose values. Diabetes Care 2008;31:1473-1478.
.. [11] Monnier L, Colette C, Dejager S, Owens D. Magnitude of the dawn phenomenon and its
   impact on the overall glucose exposure in type 2 diabetes. Diabetes Care 2013;36:4057-4062.
.. [12] Mishra T, Wang M, Metwally AA, et al. Pre-symptomatic detection of COVID-19 from
   smartwatch data. Nat Biomed Eng 2020;4:1208-1220.
.. [13] Alavi A, Bogu GK, Wang M, et al. Real-time alerting system for COVID-19 and other stress
   events using wearable data. Nat Med 2022;28:175-184.
.. [14] Royal College of Physicians. National Early Warning Score (NEWS) 2. London: RCP, 2017.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import os
import pathlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from importlib import resources
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import orjson

from medtwin.synth.generator import (
    DEFAULT_TODAY,
    DEFAULT_TYPE1_MINIMUM,
    DEVICE_USER_SYSTEM,
    TAG_SYSTEM,
    TYPE1_ENRICHMENT_TAG,
    TYPE1_SNOMED,
    PopulationFileError,
    _load_population,
    generate_patient,
    patient_rng,
    type1_enriched_indices,
)
from medtwin.synth.glucose import INSULIN_RXNORM, GlucoseLife, person_rng, simulate_life
from medtwin.synth.glucose import params as glucose_params

__all__ = [
    "CARBS_CODE",
    "CGM_CODE",
    "STEPS_CODE",
    "STREAM_FILES",
    "Onset",
    "OnsetKind",
    "PatientStreams",
    "Profile",
    "StreamSet",
    "generate_patient_streams",
    "generate_streams",
    "profile_from_bundle",
    "write_streams",
    "write_wearable_streams",
]

OnsetKind = Literal["infection", "respiratory", "glucose_low"]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

STEPS_CODE: Final = "55423-8"
"""LOINC 'Number of steps in unspecified time Pedometer' (the code the Open mHealth step-count
schema cites); written as the metric of the steps stream."""
CGM_CODE: Final = "99504-3"
"""LOINC 'Glucose [Mass/volume] in Interstitial fluid' (the code of the HL7 CGM
implementation guide); written as the metric of the CGM stream."""

CARBS_CODE: Final = "9059-7"
"""LOINC 'Carbohydrate intake Estimated' (g): the carbohydrate of each meal, snack and
hypoglycaemia treatment, written as ``carbs.csv``."""

STREAM_FILES: Final[Mapping[str, tuple[str, str]]] = {
    "heart_rate": ("heart_rate", "/min"),
    "steps": (STEPS_CODE, "{steps}"),
    "spo2_nightly": ("spo2", "%"),
    "respiratory_rate_nightly": ("respiratory_rate", "/min"),
    "glucose_cgm": (CGM_CODE, "mg/dL"),
    "carbs": (CARBS_CODE, "g"),
}
"""File stem -> (metric written in the CSV, unit)."""

_MIN_PER_DAY: Final = 1440
_DIABETES_SNOMED: Final = "44054006"
_HBA1C_LOINC: Final = "4548-4"
_WEIGHT_LOINC: Final = "29463-7"
_ARTEFACT_SPIKE: Final = 1
_ARTEFACT_HALF: Final = 2


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _params() -> dict[str, dict[str, Any]]:
    """``streams.toml`` as sections of numbers (each section checked for its ``source``)."""
    where = "medtwin/synth/data/streams.toml"
    text = resources.files("medtwin.synth").joinpath("data", "streams.toml").read_text("utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PopulationFileError(f"{where}: not valid TOML ({error})") from error
    sections: dict[str, dict[str, Any]] = {}
    for name, section in data.items():
        if not isinstance(section, dict):
            continue
        source = section.get("source")
        if not isinstance(source, str) or not source.strip():
            raise PopulationFileError(f"{where} [{name}]: missing its 'source' string")
        sections[name] = section
    for name in _REQUIRED:
        if name not in sections:
            raise PopulationFileError(f"{where}: missing table [{name}]")
        for field in _REQUIRED[name]:
            if field not in sections[name]:
                raise PopulationFileError(f"{where} [{name}]: missing field '{field}'")
    return sections


_REQUIRED: Final[Mapping[str, tuple[str, ...]]] = {
    "resting_heart_rate": (
        "mean_per_min",
        "sd_per_min",
        "min_per_min",
        "max_per_min",
        "day_to_day_sd_per_min",
        "day_to_day_autocorrelation",
    ),
    "circadian": (
        "amplitude_per_min",
        "trough_hour",
        "sleep_offset_per_min",
        "wake_offset_per_min",
        "bedtime_hour",
        "bedtime_sd_h",
        "sleep_duration_h",
        "sleep_duration_sd_h",
        "minute_noise_sd_per_min",
    ),
    "activity": (
        "median_steps_per_day",
        "between_person_log_sd",
        "day_to_day_log_sd",
        "decline_per_year_after_60",
        "diabetes_factor",
        "bout_share",
        "bout_median_min",
        "bout_log_sd",
        "bout_cadence_per_min",
        "bout_cadence_sd_per_min",
        "incidental_minute_fraction",
        "sedentary_fraction",
        "sedentary_block_min",
        "moderate_cadence_per_min",
        "moderate_reserve_fraction",
        "hr_time_constant_min",
        "max_cadence_per_min",
    ),
    "wear": (
        "gap_probability_per_day",
        "gap_min_min",
        "gap_max_min",
        "unworn_day_probability",
        "artefact_probability_per_min",
    ),
    "night": (
        "spo2_mean_percent",
        "spo2_sd_percent",
        "spo2_night_sd_percent",
        "spo2_max_percent",
        "respiratory_rate_mean_per_min",
        "respiratory_rate_sd_per_min",
        "respiratory_rate_night_sd_per_min",
    ),
    "onsets": ("first_day", "last_days_before_end", "weights"),
    "infection": (
        "peak_min_per_min",
        "peak_max_per_min",
        "rise_start_days",
        "peak_days",
        "decay_days",
        "steps_drop_fraction",
        "respiratory_rise_per_min",
    ),
    "respiratory": (
        "decline_min_days",
        "decline_max_days",
        "spo2_drop_min_percent",
        "spo2_drop_max_percent",
        "respiratory_rise_min_per_min",
        "respiratory_rise_max_per_min",
        "heart_rate_rise_per_min",
        "steps_drop_fraction",
    ),
}


# --------------------------------------------------------------------------------------------
# data classes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """What the streams take from the patient's synthetic FHIR record.

    Examples
    --------
    >>> Profile("SYN-1-0", 0, "female", 54, False, 5.4, "America/Chicago").diabetes
    False
    """

    patient: str
    """Device-user identifier ``SYN-<seed>-<index>`` (the CSV ``patient`` column)."""
    index: int
    sex: str
    age_years: int
    diabetes: bool
    """Any diabetes (type 1 or type 2) in the record (fewer steps)."""
    hba1c_percent: float | None
    """The last HbA1c of the record."""
    time_zone: str
    """IANA zone of the patient's home city: sleep, meals and walks follow local time."""
    weight_kg: float | None = None
    """The last body weight of the record (the UVA/Padova BW of people with type 1 diabetes)."""
    type1: bool = False
    """Type 1 diabetes (SNOMED 46635009) in the record: a CGM wearer on an insulin pump."""
    type1_enriched: bool = False
    """Type 1 diabetes given by the enrichment of a small run (Patient ``meta.tag``)."""


@dataclass(frozen=True, slots=True)
class Onset:
    """One known event: the ground truth a detector is scored against.

    ``onset_time`` is what a detector should be judged by: symptom onset for ``infection``
    (the physiological change starts earlier, at ``change_start_time``), the start of the
    decline for ``respiratory`` and the start of the fall for ``glucose_low`` (whose
    ``threshold_time`` is the first CGM reading below 70 mg/dL). ``magnitude`` is the peak
    change of ``metric`` in ``unit`` (positive = up).

    Examples
    --------
    >>> t = dt.datetime(2025, 12, 20, tzinfo=dt.UTC)
    >>> Onset("SYN-1-0", "infection", t, t, t, None, "heart_rate", 5.0, "/min").as_record()["kind"]
    'infection'
    """

    patient: str
    kind: OnsetKind
    onset_time: dt.datetime
    change_start_time: dt.datetime
    peak_time: dt.datetime
    threshold_time: dt.datetime | None
    metric: str
    magnitude: float
    unit: str

    def as_record(self) -> dict[str, object]:
        """A JSON-ready dict (times as ISO 8601 UTC with ``Z``)."""

        def iso(value: dt.datetime | None) -> str | None:
            return None if value is None else value.isoformat().replace("+00:00", "Z")

        return {
            "patient": self.patient,
            "kind": self.kind,
            "onset_time": iso(self.onset_time),
            "change_start_time": iso(self.change_start_time),
            "peak_time": iso(self.peak_time),
            "threshold_time": iso(self.threshold_time),
            "metric": self.metric,
            "magnitude": round(self.magnitude, 2),
            "unit": self.unit,
        }


@dataclass(frozen=True, slots=True, eq=False)
class PatientStreams:
    """One patient's streams as numpy arrays (the Python API; no files).

    Minute arrays have ``days x 1440`` entries from ``start`` (UTC, minute ``i`` at
    ``start + i min``); heart rate is ``NaN`` where the device was not worn. CGM arrays have one
    entry every 5 minutes from ``start`` (``NaN`` in sensor warm-ups), or are ``None`` for people
    without diabetes. Nightly arrays have one entry per night, at ``night_time``.
    """

    profile: Profile
    start: dt.datetime
    heart_rate_per_min: FloatArray
    steps_per_min: FloatArray
    worn: BoolArray
    asleep: BoolArray
    artefact: BoolArray
    resting_heart_rate_per_min: float
    """The person's own mean resting heart rate (drawn; before day-to-day variation)."""
    resting_shift_per_min: FloatArray
    """Per minute, the change of the resting rate caused by an onset (0 without one)."""
    night_time: npt.NDArray[np.datetime64]
    spo2_percent: FloatArray
    respiratory_rate_per_min: FloatArray
    cgm_time: npt.NDArray[np.datetime64] | None
    glucose_mg_dl: FloatArray | None
    onsets: tuple[Onset, ...]
    glucose_life: GlucoseLife | None = None
    """For people with type 1 diabetes (CGM wearers): the simulated meals, insulin, ground-truth parameters."""

    @property
    def minute_time(self) -> npt.NDArray[np.datetime64]:
        """UTC time of each minute sample (``datetime64[m]``, naive = UTC)."""
        base = np.datetime64(self.start.replace(tzinfo=None), "m")
        return base + np.arange(self.heart_rate_per_min.size).astype("timedelta64[m]")


@dataclass(frozen=True, slots=True)
class StreamSet:
    """All patients' streams and the ground truth (every onset of every patient)."""

    patients: tuple[PatientStreams, ...]
    truth: tuple[Onset, ...]
    start: dt.datetime
    days: int
    seed: int
    type1_minimum: int = DEFAULT_TYPE1_MINIMUM
    """The least number of people with type 1 diabetes asked of the run (enrichment)."""


# --------------------------------------------------------------------------------------------
# the patient's profile, from their FHIR bundle
# --------------------------------------------------------------------------------------------


def profile_from_bundle(bundle: Mapping[str, Any], *, today: dt.date) -> Profile:
    """The :class:`Profile` of a synthetic patient's Bundle (sex, age, diabetes, HbA1c, zone).

    Parameters
    ----------
    bundle
        A Bundle of :func:`~medtwin.synth.generator.generate_patient`.
    today
        The date ages are taken at.

    Returns
    -------
    Profile
        The patient's identifier is the ``SYN-<seed>-<index>`` medical record number.

    Examples
    --------
    >>> import datetime
    >>> from medtwin.synth import generate_patient, patient_rng
    >>> b = generate_patient(patient_rng(1, 0), 0, today=datetime.date(2026, 1, 1), seed=1)
    >>> profile_from_bundle(b, today=datetime.date(2026, 1, 1)).patient
    'SYN-1-0'
    """
    places = {place.city: place.time_zone for place in _load_population().places}
    patient: Mapping[str, Any] = {}
    diabetes = type1 = False
    hba1c: tuple[str, float] | None = None
    weight: tuple[str, float] | None = None
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        kind = resource.get("resourceType")
        if kind == "Patient":
            patient = resource
        elif kind == "Condition":
            codes = {c.get("code") for c in resource["code"].get("coding", [])}
            diabetes = diabetes or _DIABETES_SNOMED in codes or TYPE1_SNOMED in codes
            type1 = type1 or TYPE1_SNOMED in codes
        elif kind == "Observation":
            codes = {c.get("code") for c in resource["code"].get("coding", [])}
            if _HBA1C_LOINC in codes and "valueQuantity" in resource:
                when = str(resource.get("effectiveDateTime", ""))
                if hba1c is None or when >= hba1c[0]:
                    hba1c = (when, float(resource["valueQuantity"]["value"]))
            if _WEIGHT_LOINC in codes and "valueQuantity" in resource:
                when = str(resource.get("effectiveDateTime", ""))
                if weight is None or when >= weight[0]:
                    weight = (when, float(resource["valueQuantity"]["value"]))
    identifier = str(patient["identifier"][0]["value"])
    birth = dt.date.fromisoformat(str(patient["birthDate"]))
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    city = str(patient.get("address", [{}])[0].get("city", ""))
    parts = identifier.split("-")
    tags = patient.get("meta", {}).get("tag", [])
    enriched = any(
        tag.get("system") == TAG_SYSTEM and tag.get("code") == TYPE1_ENRICHMENT_TAG for tag in tags
    )
    return Profile(
        patient=identifier,
        index=int(parts[-1]) if parts[-1].isdigit() else 0,
        sex=str(patient.get("gender", "unknown")),
        age_years=age,
        diabetes=diabetes,
        hba1c_percent=None if hba1c is None else hba1c[1],
        time_zone=places.get(city, "UTC"),
        weight_kg=None if weight is None else weight[1],
        type1=type1,
        type1_enriched=enriched,
    )


# --------------------------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------------------------


def _stream_rng(seed: int, index: int) -> np.random.Generator:
    digest = hashlib.blake2b(f"medtwin.synth.streams:{seed}:{index}".encode(), digest_size=16)
    return np.random.default_rng(int.from_bytes(digest.digest(), "little"))


def _local_offsets_min(zone: ZoneInfo, start: dt.datetime, hours: int) -> FloatArray:
    """UTC offset (minutes) of ``zone`` at each hour from ``start``."""
    offsets = np.empty(hours, dtype=np.float64)
    for hour in range(hours):
        moment = start + dt.timedelta(hours=hour)
        delta = moment.astimezone(zone).utcoffset()
        offsets[hour] = 0.0 if delta is None else delta.total_seconds() / 60.0
    return offsets


def _ramp_add(
    length: int, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64], values: FloatArray
) -> FloatArray:
    """Sum of ``values[k]`` over the index ranges ``[starts[k], ends[k])`` (a difference array)."""
    diff = np.zeros(length + 1, dtype=np.float64)
    lo = np.clip(starts, 0, length)
    hi = np.clip(ends, 0, length)
    keep = hi > lo
    np.add.at(diff, lo[keep], values[keep])
    np.add.at(diff, hi[keep], -values[keep])
    return np.cumsum(diff[:-1])


def _causal_filter(signal: FloatArray, kernel: FloatArray) -> FloatArray:
    """``signal`` convolved with a causal ``kernel`` (same length as the signal)."""
    return np.convolve(signal, kernel)[: signal.size]


def _infection_shape(x_days: FloatArray, rise: float, peak: float, decay: float) -> FloatArray:
    """0 -> 1 -> 0: linear from ``-rise`` days to ``peak`` days, then exponential decay."""
    up = np.clip((x_days + rise) / (rise + peak), 0.0, 1.0)
    down = np.exp(-np.clip(x_days - peak, 0.0, None) / decay)
    return np.where(x_days < peak, up, down)


def _draw_onset(
    rng: np.random.Generator, profile: Profile, minutes: int, onset_fraction: float
) -> tuple[OnsetKind | None, int]:
    params = _params()["onsets"]
    # Both draws are always made, so the rest of the stream does not depend on the fraction.
    has = rng.random() < onset_fraction
    pick = rng.random()
    when_u = rng.random()
    weights = {str(k): float(v) for k, v in params["weights"].items()}
    if not profile.type1:  # only CGM wearers on insulin
        weights.pop("glucose_low", None)
    total = sum(weights.values())
    kind: OnsetKind | None = None
    if has and total > 0:
        cumulative = 0.0
        for name, weight in weights.items():
            cumulative += weight / total
            if pick < cumulative:
                kind = name  # type: ignore[assignment]
                break
        else:
            kind = list(weights)[-1]  # type: ignore[assignment]
    lo = min(int(params["first_day"]) * _MIN_PER_DAY, minutes // 2)
    hi = max(minutes - int(params["last_days_before_end"]) * _MIN_PER_DAY, lo + 1)
    return kind, lo + int(when_u * (hi - lo))


def generate_patient_streams(
    profile: Profile,
    *,
    seed: int,
    days: int,
    onset_fraction: float = 0.3,
    today: dt.date = DEFAULT_TODAY,
) -> PatientStreams:
    """Draw one patient's streams (see the module docstring for the model).

    Parameters
    ----------
    profile
        The patient (from :func:`profile_from_bundle`).
    seed
        The run's seed; with ``profile.index`` it seeds this patient's own generator.
    days
        Length of the window, ending at midnight UTC of ``today``.
    onset_fraction
        Probability that this patient has an onset in the window.
    today
        End of the window (exclusive).

    Returns
    -------
    PatientStreams
        Arrays and the patient's onsets (zero or one).

    Raises
    ------
    ValueError
        For ``days`` < 1 or ``onset_fraction`` outside [0, 1].

    Examples
    --------
    >>> p = Profile("SYN-9-0", 0, "male", 40, False, 5.3, "UTC")
    >>> s = generate_patient_streams(p, seed=9, days=1, onset_fraction=0.0)
    >>> int(np.nansum(s.steps_per_min)) > 0
    True
    """
    if days < 1:
        raise ValueError(f"--wearables-days must be 1 or more, got {days}")
    if not 0.0 <= onset_fraction <= 1.0:
        raise ValueError(f"--onset-fraction must be between 0 and 1, got {onset_fraction}")
    p = _params()
    rng = _stream_rng(seed, profile.index)
    start = dt.datetime.combine(today - dt.timedelta(days=days), dt.time(0), tzinfo=dt.UTC)
    n = days * _MIN_PER_DAY
    t = np.arange(n, dtype=np.float64)
    zone = ZoneInfo(profile.time_zone)

    kind, onset_minute = _draw_onset(rng, profile, n, onset_fraction)

    # Local clock: minutes since local midnight of the window's first UTC day.
    offsets = _local_offsets_min(zone, start, days * 24)
    offset_per_min = np.repeat(offsets, 60)
    local = t + offset_per_min
    local_hour = np.mod(local / 60.0, 24.0)
    # Local days -1 .. days (a US zone starts the window on the evening before).
    day_index = np.floor(local / _MIN_PER_DAY).astype(np.int64) + 1
    n_days = days + 2
    mean_offset = float(offsets.mean())

    # -- sleep --------------------------------------------------------------------------------
    circ = p["circadian"]
    bedtime_h = circ["bedtime_hour"] + circ["bedtime_sd_h"] * rng.standard_normal(n_days)
    sleep_h = np.clip(
        circ["sleep_duration_h"] + circ["sleep_duration_sd_h"] * rng.standard_normal(n_days),
        4.0,
        11.0,
    )
    local_day_start = (np.arange(n_days) - 1) * _MIN_PER_DAY  # local minute of each midnight
    sleep_start = (local_day_start + bedtime_h * 60.0 - mean_offset).astype(np.int64)
    sleep_end = (sleep_start + sleep_h * 60.0).astype(np.int64)
    asleep = _ramp_add(n, sleep_start, sleep_end, np.ones(n_days)) > 0
    # Waking window of each local day: from the end of last night to tonight's bedtime.
    wake_start = np.concatenate(([sleep_end[0] - _MIN_PER_DAY], sleep_end[:-1]))
    wake_end = sleep_start

    # -- onset effects (shape 0..1 per minute) ---------------------------------------------------
    onset_shape = np.zeros(n)
    onsets: list[Onset] = []
    magnitude = 0.0
    x_days = (t - onset_minute) / _MIN_PER_DAY
    if kind == "infection":
        inf = p["infection"]
        magnitude = float(rng.uniform(inf["peak_min_per_min"], inf["peak_max_per_min"]))
        onset_shape = _infection_shape(
            x_days, inf["rise_start_days"], inf["peak_days"], inf["decay_days"]
        )
    elif kind == "respiratory":
        resp = p["respiratory"]
        decline_days = float(rng.uniform(resp["decline_min_days"], resp["decline_max_days"]))
        onset_shape = np.clip(x_days / decline_days, 0.0, 1.0)
    else:
        rng.uniform()  # the same number of draws whatever the kind: an onset changes nothing else

    # -- steps --------------------------------------------------------------------------------
    act = p["activity"]
    person_steps = act["median_steps_per_day"] * math.exp(
        act["between_person_log_sd"] * rng.standard_normal()
    )
    if profile.age_years > 60:
        person_steps *= max(0.3, 1.0 - act["decline_per_year_after_60"] * (profile.age_years - 60))
    if profile.diabetes:
        person_steps *= act["diabetes_factor"]
    daily_steps = person_steps * np.exp(act["day_to_day_log_sd"] * rng.standard_normal(n_days))
    max_bouts = 48
    bout_len = act["bout_median_min"] * np.exp(
        act["bout_log_sd"] * rng.standard_normal((n_days, max_bouts))
    )
    cadence = np.clip(
        act["bout_cadence_per_min"]
        + act["bout_cadence_sd_per_min"] * rng.standard_normal((n_days, max_bouts)),
        60.0,
        act["max_cadence_per_min"],
    )
    bout_u = rng.random((n_days, max_bouts))
    bout_minutes_wanted = act["bout_share"] * daily_steps / act["bout_cadence_per_min"]
    before = np.cumsum(bout_len, axis=1) - bout_len
    bout_len = np.clip(np.minimum(bout_len, bout_minutes_wanted[:, None] - before), 0.0, None)
    window = np.clip(wake_end - wake_start, 60, None).astype(np.float64)
    bout_start = wake_start[:, None] + bout_u * np.clip(window[:, None] - bout_len, 1.0, None)
    bout_start_i = bout_start.astype(np.int64).ravel()
    bout_end_i = (bout_start + np.round(bout_len)).astype(np.int64).ravel()
    walking = _ramp_add(n, bout_start_i, bout_end_i, cadence.ravel())
    walking = np.minimum(walking, act["max_cadence_per_min"])
    walking = np.where(walking > 0, walking + 4.0 * rng.standard_normal(n), 0.0)
    awake = ~asleep
    incidental_mean = (
        (1.0 - act["bout_share"]) * daily_steps / (act["incidental_minute_fraction"] * window)
    )
    lam = incidental_mean[day_index]
    # Light movement comes in blocks: in a sedentary block (Matthews 2008: about 55 % of waking
    # time) there are no steps at all, so that long still stretches exist as in real life.
    block = int(act["sedentary_block_min"])
    light_block = rng.random(n // block + 1) >= act["sedentary_fraction"]
    in_light = np.repeat(light_block, block)[:n]
    share = min(1.0, act["incidental_minute_fraction"] / (1.0 - act["sedentary_fraction"]))
    moving = (rng.random(n) < share) & in_light
    incidental = rng.poisson(np.clip(lam, 0.0, None)).astype(np.float64) * moving
    steps = np.clip(np.round(walking + incidental), 0.0, None) * awake
    if kind == "infection":
        steps *= 1.0 - p["infection"]["steps_drop_fraction"] * onset_shape
    elif kind == "respiratory":
        steps *= 1.0 - p["respiratory"]["steps_drop_fraction"] * onset_shape
    steps = np.round(steps)

    # -- heart rate ---------------------------------------------------------------------------
    rhr = p["resting_heart_rate"]
    person_rhr = float(
        np.clip(
            rhr["mean_per_min"] + rhr["sd_per_min"] * rng.standard_normal(),
            rhr["min_per_min"],
            rhr["max_per_min"],
        )
    )
    rho = rhr["day_to_day_autocorrelation"]
    innovations = rng.standard_normal(n_days) * rhr["day_to_day_sd_per_min"]
    daily_dev = np.empty(n_days)
    daily_dev[0] = innovations[0]
    for d in range(1, n_days):  # n_days is small (days + 2): a loop is fine here
        daily_dev[d] = rho * daily_dev[d - 1] + math.sqrt(1.0 - rho * rho) * innovations[d]
    shift = np.zeros(n)
    if kind == "infection":
        shift = magnitude * onset_shape
    elif kind == "respiratory":
        shift = p["respiratory"]["heart_rate_rise_per_min"] * onset_shape
    resting = person_rhr + daily_dev[day_index] + shift
    circadian = circ["amplitude_per_min"] * -np.cos(
        2.0 * math.pi * (local_hour - circ["trough_hour"]) / 24.0
    )
    state = np.where(asleep, circ["sleep_offset_per_min"], circ["wake_offset_per_min"])
    hr_max = 208.0 - 0.7 * profile.age_years
    reserve_fraction = np.clip(
        steps / act["moderate_cadence_per_min"] * act["moderate_reserve_fraction"], 0.0, 0.85
    )
    tau = act["hr_time_constant_min"]
    kernel = np.exp(-np.arange(int(8 * tau) + 1) / tau)
    kernel /= kernel.sum()
    response = _causal_filter(reserve_fraction * np.clip(hr_max - resting, 20.0, None), kernel)
    heart_rate = (
        resting
        + circadian
        + state
        + response
        + circ["minute_noise_sd_per_min"] * rng.standard_normal(n)
    )

    # -- CGM (type 1 diabetes), from the UVA/Padova type 1 model ------------------------------
    # People with type 2 diabetes have no CGM: the UVA/Padova model is a type 1 model (no
    # endogenous insulin), and the synthetic type 2 patients are on metformin alone. The skip
    # keeps their other streams as they were when everyone with diabetes had a CGM.
    cgm_time: npt.NDArray[np.datetime64] | None = None
    glucose: FloatArray | None = None
    life: GlucoseLife | None = None
    if profile.diabetes:
        _skip_former_cgm_draws(rng, days)
    if profile.type1:
        life = simulate_life(
            person_rng(seed, profile.index),
            age_years=profile.age_years,
            weight_kg=profile.weight_kg,
            days=days,
            utc_offset_min=mean_offset,
            low_at_min=onset_minute if kind == "glucose_low" else None,
        )
        glucose = life.glucose_mg_dl
        base = np.datetime64(start.replace(tzinfo=None), "m")
        cgm_time = base + life.cgm_time_min.astype(np.int64).astype("timedelta64[m]")
        if life.mistaken_bolus is not None:
            onsets.append(_glucose_low_onset(profile, start, life, heart_rate))

    # -- wear, gaps, artefacts ----------------------------------------------------------------
    wear = p["wear"]
    gap_on = rng.random(n_days) < wear["gap_probability_per_day"]
    gap_len = rng.uniform(wear["gap_min_min"], wear["gap_max_min"], n_days)
    gap_at = wake_start + rng.random(n_days) * np.clip(window - gap_len, 1.0, None)
    unworn_day = rng.random(n_days) < wear["unworn_day_probability"]
    off = (
        _ramp_add(
            n,
            np.where(gap_on, gap_at, 0).astype(np.int64),
            np.where(gap_on, gap_at + gap_len, 0).astype(np.int64),
            np.ones(n_days),
        )
        > 0
    )
    off |= unworn_day[day_index]
    if kind is not None:
        # Keep the device on for the day of the onset, so that the truth is observable.
        around = np.abs(t - onset_minute) < _MIN_PER_DAY / 2
        off &= ~around
    worn = ~off
    artefact_kind = np.where(
        rng.random(n) < wear["artefact_probability_per_min"], rng.integers(1, 3, n), 0
    ) * (worn & awake)
    spikes = rng.uniform(30.0, 80.0, n)
    heart_rate = np.where(artefact_kind == _ARTEFACT_SPIKE, heart_rate + spikes, heart_rate)
    heart_rate = np.where(artefact_kind == _ARTEFACT_HALF, heart_rate * 0.5, heart_rate)
    heart_rate = np.round(np.clip(heart_rate, 30.0, 220.0))
    heart_rate = np.where(worn, heart_rate, np.nan)
    steps = np.where(worn, steps, np.nan)

    # -- nightly summaries --------------------------------------------------------------------
    night = p["night"]
    spo2_person = night["spo2_mean_percent"] + night["spo2_sd_percent"] * rng.standard_normal()
    rr_person = (
        night["respiratory_rate_mean_per_min"]
        + night["respiratory_rate_sd_per_min"] * rng.standard_normal()
    )
    spo2_noise = night["spo2_night_sd_percent"] * rng.standard_normal(n_days)
    rr_noise = night["respiratory_rate_night_sd_per_min"] * rng.standard_normal(n_days)
    wake_minutes = sleep_end
    inside = (wake_minutes >= 0) & (wake_minutes < n)
    nights = np.flatnonzero(
        inside & ~unworn_day[np.clip(day_index[np.clip(wake_minutes, 0, n - 1)], 0, n_days - 1)]
    )
    at = wake_minutes[nights]
    mid_night = np.clip(at - (sleep_h[nights] * 30.0).astype(np.int64), 0, n - 1)
    night_shape = onset_shape[mid_night]
    spo2 = spo2_person + spo2_noise[nights]
    rr = rr_person + rr_noise[nights]
    if kind == "respiratory":
        resp = p["respiratory"]
        drop = float(rng.uniform(resp["spo2_drop_min_percent"], resp["spo2_drop_max_percent"]))
        rise = float(
            rng.uniform(resp["respiratory_rise_min_per_min"], resp["respiratory_rise_max_per_min"])
        )
        spo2 = spo2 - drop * night_shape
        rr = rr + rise * night_shape
        end_minute = onset_minute + int(decline_days * _MIN_PER_DAY)
        onsets.append(
            Onset(
                patient=profile.patient,
                kind="respiratory",
                onset_time=start + dt.timedelta(minutes=onset_minute),
                change_start_time=start + dt.timedelta(minutes=onset_minute),
                peak_time=start + dt.timedelta(minutes=min(end_minute, n - 1)),
                threshold_time=None,
                metric="spo2",
                magnitude=-drop,
                unit="%",
            )
        )
    elif kind == "infection":
        inf = p["infection"]
        rr = rr + inf["respiratory_rise_per_min"] * night_shape
        onsets.append(
            Onset(
                patient=profile.patient,
                kind="infection",
                onset_time=start + dt.timedelta(minutes=onset_minute),
                change_start_time=start
                + dt.timedelta(minutes=onset_minute - inf["rise_start_days"] * _MIN_PER_DAY),
                peak_time=start
                + dt.timedelta(minutes=onset_minute + inf["peak_days"] * _MIN_PER_DAY),
                threshold_time=None,
                metric="heart_rate",
                magnitude=magnitude,
                unit="/min",
            )
        )
    spo2 = np.round(np.clip(spo2, 70.0, night["spo2_max_percent"]), 1)
    rr = np.round(np.clip(rr, 6.0, 40.0), 1)
    base = np.datetime64(start.replace(tzinfo=None), "m")
    night_time = base + at.astype("timedelta64[m]")

    return PatientStreams(
        profile=profile,
        start=start,
        heart_rate_per_min=heart_rate,
        steps_per_min=steps,
        worn=worn,
        asleep=asleep,
        artefact=artefact_kind > 0,
        resting_heart_rate_per_min=person_rhr,
        resting_shift_per_min=shift,
        night_time=night_time,
        spo2_percent=spo2,
        respiratory_rate_per_min=rr,
        cgm_time=cgm_time,
        glucose_mg_dl=glucose,
        onsets=tuple(onsets),
        glucose_life=life,
    )


def _skip_former_cgm_draws(rng: np.random.Generator, days: int) -> None:
    """Make the draws the former statistical CGM made from the person's stream generator.

    The CGM now comes from its own generator (:func:`medtwin.synth.glucose.person_rng`); skipping the same draws
    here keeps every other stream of a person with diabetes (wear, artefacts, SpO2 and
    respiratory rate, onset sizes) exactly as before, so the detector evaluations on them stay
    comparable. The shapes are those of the former generator: one CV, 3 meal times and 3 meal
    sizes per local day (days + 2), one noise value per 5-min reading, a nadir, 6 nadir wobbles
    and the first sensor change within 10 days.
    """
    n_days = days + 2
    rng.standard_normal()
    rng.standard_normal((n_days, 3))
    rng.standard_normal(n_days * 3)
    rng.standard_normal(days * _MIN_PER_DAY // 5)
    rng.uniform(45.0, 62.0)
    rng.normal(0.0, 1.5, 6)
    rng.integers(0, 10 * _MIN_PER_DAY // 5)


def _glucose_low_onset(
    profile: Profile, start: dt.datetime, life: GlucoseLife, heart_rate: FloatArray
) -> Onset:
    """The truth of a glucose-low onset (the mistaken bolus); raises the heart rate while the
    CGM is below 70 mg/dL after it (in place)."""
    assert life.mistaken_bolus is not None
    g = glucose_params()
    t_on = life.mistaken_bolus[0]
    times = life.cgm_time_min
    k = int(np.searchsorted(times, t_on))
    # the nadir is reached within search_min; the glucose goes on falling a little after the
    # rescue carbohydrate (eaten then) takes effect
    after_min = g["glucose_low"]["search_min"] + 60
    horizon = k + int(after_min // g["cgm"]["interval_min"]) + 1
    readings = life.glucose_mg_dl[k:horizon]
    below = np.flatnonzero(readings < 70.0)
    threshold = None if below.size == 0 else k + int(below[0])
    nadir_i = k + int(np.nanargmin(readings)) if np.isfinite(readings).any() else k
    if threshold is not None:
        end = threshold
        while end + 1 < times.size and life.glucose_mg_dl[end + 1] < 70.0:
            end += 1
        lo, hi = int(times[threshold]), int(times[end]) + int(g["cgm"]["interval_min"])
        heart_rate[lo:hi] += g["glucose_low"]["heart_rate_rise_per_min"]
    g_start = float(life.cgm_model_mg_dl[k])
    return Onset(
        patient=profile.patient,
        kind="glucose_low",
        onset_time=start + dt.timedelta(minutes=t_on),
        change_start_time=start + dt.timedelta(minutes=t_on),
        peak_time=start + dt.timedelta(minutes=float(times[nadir_i])),
        threshold_time=None
        if threshold is None
        else start + dt.timedelta(minutes=float(times[threshold])),
        metric=CGM_CODE,
        magnitude=float(np.nanmin(readings)) - g_start,
        unit="mg/dL",
    )


def generate_streams(
    n: int,
    seed: int,
    *,
    days: int = 14,
    onset_fraction: float = 0.3,
    today: dt.date | None = None,
    type1_minimum: int = DEFAULT_TYPE1_MINIMUM,
) -> StreamSet:
    """Wearable streams for synthetic patients ``0 .. n-1`` of run ``seed``, with the truth.

    Patient ``i`` is the same person as in :func:`~medtwin.synth.generator.
    write_synthetic_patients` ``(n, seed)``: the profile is read from that Bundle.

    Parameters
    ----------
    n
        Number of patients (0 or more).
    seed
        Seed of the run.
    days
        Days of data, ending at midnight UTC of ``today``.
    onset_fraction
        Share of people with one onset (each person has it with this probability).
    today
        End of the window; default :data:`~medtwin.synth.generator.DEFAULT_TODAY`.
    type1_minimum
        As :func:`~medtwin.synth.generator.write_synthetic_patients` (the same people get
        type 1 diabetes, so the same people wear a CGM).

    Returns
    -------
    StreamSet
        Per-patient arrays and the ground truth.

    Raises
    ------
    ValueError
        For ``n`` < 0, ``days`` < 1 or a fraction outside [0, 1].

    Examples
    --------
    >>> s = generate_streams(3, seed=2, days=20, onset_fraction=1.0)
    >>> len(s.truth)
    3
    """
    if n < 0:
        raise ValueError(f"--patients must be 0 or more, got {n}")
    as_of = DEFAULT_TODAY if today is None else today
    patients = []
    enriched = type1_enriched_indices(n, seed, type1_minimum)
    for index in range(n):
        bundle = generate_patient(
            patient_rng(seed, index),
            index,
            today=as_of,
            seed=seed,
            type1_enriched=index in enriched,
        )
        profile = profile_from_bundle(bundle, today=as_of)
        patients.append(
            generate_patient_streams(
                profile, seed=seed, days=days, onset_fraction=onset_fraction, today=as_of
            )
        )
    truth = tuple(onset for patient in patients for onset in patient.onsets)
    start = dt.datetime.combine(as_of - dt.timedelta(days=days), dt.time(0), tzinfo=dt.UTC)
    return StreamSet(
        patients=tuple(patients),
        truth=truth,
        start=start,
        days=days,
        seed=seed,
        type1_minimum=type1_minimum,
    )


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


def _time_bytes(times: npt.NDArray[np.datetime64]) -> npt.NDArray[np.uint8]:
    """``YYYY-MM-DDTHH:MM:SSZ`` of each (naive UTC) time, as a (n, 20) byte matrix."""
    text = np.datetime_as_string(times.astype("datetime64[s]"), unit="s").astype("S19")
    matrix = text.view(np.uint8).reshape(-1, 19)
    return np.hstack([matrix, np.full((matrix.shape[0], 1), ord("Z"), dtype=np.uint8)])


def _integer_bytes(values: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.uint8]:
    """Decimal digits of non-negative integers, leading zeros as 0 bytes (removed later)."""
    out = np.zeros((values.size, width), dtype=np.uint8)
    for k in range(width):
        place = 10 ** (width - 1 - k)
        digit = (values // place) % 10 + 48
        out[:, k] = digit if k == width - 1 else np.where(values >= place, digit, 0)
    return out


def _csv_bytes(
    times: npt.NDArray[np.datetime64],
    values: FloatArray,
    metric: str,
    unit: str,
    patient: str,
    decimals: int,
) -> bytes:
    """Rows ``time,metric,value,unit,patient`` for the finite values, built without a loop."""
    header = b"time,metric,value,unit,patient\n"
    keep = np.isfinite(values)
    times, values = times[keep], values[keep]
    if values.size == 0:
        return header
    scaled = np.round(values * 10**decimals).astype(np.int64)
    width = max(len(str(int(scaled.max()))), decimals + 1)
    digits = _integer_bytes(scaled, width)
    if decimals:
        # Split off the decimals and keep a leading "0" before the point.
        whole = digits[:, : width - decimals].copy()
        whole[:, -1] = np.where(whole[:, -1] == 0, ord("0"), whole[:, -1])
        point = np.full((values.size, 1), ord("."), dtype=np.uint8)
        digits = np.hstack([whole, point, digits[:, width - decimals :]])
    rows = values.size

    def constant(text: str) -> npt.NDArray[np.uint8]:
        return np.broadcast_to(np.frombuffer(text.encode(), dtype=np.uint8), (rows, len(text)))

    matrix = np.hstack(
        [
            _time_bytes(times),
            constant(f",{metric},"),
            digits,
            constant(f",{unit},{patient}\n"),
        ]
    )
    flat = matrix.ravel()
    return header + bytes(flat[flat != 0].tobytes())


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _insulin_ndjson(patient: PatientStreams, life: GlucoseLife, days: int) -> bytes:
    """The insulin that drove the simulation, as FHIR R4 MedicationAdministration lines.

    One per bolus (``effectiveDateTime``, ``dosage.dose`` in [iU]) and one per day of basal
    (``effectivePeriod``, ``dosage.rateQuantity`` in [iU]/h), of insulin lispro (RxNorm
    86009), subcutaneous (SNOMED CT 263887005), for the device user ``SYN-<seed>-<index>``.
    """
    who = patient.profile.patient
    code, display = INSULIN_RXNORM
    medication = {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": code,
                "display": display,
            }
        ]
    }
    subject = {"identifier": {"system": DEVICE_USER_SYSTEM, "value": who}}
    route = {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "263887005", "display": "Subcutaneous"}
        ]
    }
    lines: list[bytes] = []
    for t, units in zip(life.bolus_t_min, life.bolus_u, strict=True):
        at = patient.start + dt.timedelta(minutes=float(t))
        resource = {
            "resourceType": "MedicationAdministration",
            "id": f"{who}-bolus-{int(t)}",
            "status": "completed",
            "medicationCodeableConcept": medication,
            "subject": subject,
            "effectiveDateTime": _iso(at),
            "dosage": {
                "text": "bolus",
                "route": route,
                "dose": {
                    "value": float(units),
                    "unit": "U",
                    "system": "http://unitsofmeasure.org",
                    "code": "[iU]",
                },
            },
        }
        lines.append(orjson.dumps(resource))
    for day in range(days):
        begin = patient.start + dt.timedelta(days=day)
        resource = {
            "resourceType": "MedicationAdministration",
            "id": f"{who}-basal-{day}",
            "status": "completed",
            "medicationCodeableConcept": medication,
            "subject": subject,
            "effectivePeriod": {"start": _iso(begin), "end": _iso(begin + dt.timedelta(days=1))},
            "dosage": {
                "text": "basal",
                "route": route,
                "rateQuantity": {
                    "value": life.basal_u_per_h,
                    "unit": "U/h",
                    "system": "http://unitsofmeasure.org",
                    "code": "[iU]/h",
                },
            },
        }
        lines.append(orjson.dumps(resource))
    return b"\n".join(lines) + b"\n"


def _write_atomic(path: pathlib.Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def write_streams(streams: StreamSet, out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Write every patient's streams as CSV, and the truth as ``truth.json`` and ``truth.csv``.

    Layout: ``out_dir/streams/patient-00000/heart_rate.csv`` (and ``steps.csv``,
    ``spo2_nightly.csv``, ``respiratory_rate_nightly.csv``; for people with type 1 diabetes
    ``glucose_cgm.csv``, ``carbs.csv`` and ``insulin.ndjson``), ``out_dir/truth.json`` (the
    onsets, and under ``glucose_model`` each CGM wearer's ground-truth UVA/Padova parameters and
    therapy), ``out_dir/truth.csv`` (the onsets). Import the streams with
    ``medtwin import out_dir/streams`` (not ``out_dir``: the truth files are not device data).
    Steps are written for minutes with at least one step; minutes without the device have no
    rows. Each file is written to a temporary name and renamed.

    Parameters
    ----------
    streams
        From :func:`generate_streams`.
    out_dir
        Folder to write into (created when missing).

    Returns
    -------
    list[pathlib.Path]
        The files written (the truth files last).

    Raises
    ------
    ValueError
        When ``out_dir`` exists and is not a folder.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     paths = write_streams(generate_streams(1, 1, days=1), pathlib.Path(folder))
    ...     sorted(p.name for p in paths)[:3]  # a run of 1 is enriched: type 1, on CGM
    ['carbs.csv', 'glucose_cgm.csv', 'heart_rate.csv']
    """
    out = pathlib.Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {out} exists and is not a folder; choose another path")
    written: list[pathlib.Path] = []
    for patient in streams.patients:
        folder = out / "streams" / f"patient-{patient.profile.index:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        who = patient.profile.patient
        minute_time = patient.minute_time
        steps = np.where(patient.steps_per_min > 0, patient.steps_per_min, np.nan)
        series: list[tuple[str, npt.NDArray[np.datetime64], FloatArray, int]] = [
            ("heart_rate", minute_time, patient.heart_rate_per_min, 0),
            ("steps", minute_time, steps, 0),
            ("spo2_nightly", patient.night_time, patient.spo2_percent, 1),
            ("respiratory_rate_nightly", patient.night_time, patient.respiratory_rate_per_min, 1),
        ]
        if patient.glucose_mg_dl is not None and patient.cgm_time is not None:
            series.append(("glucose_cgm", patient.cgm_time, patient.glucose_mg_dl, 0))
        life = patient.glucose_life
        if life is not None:
            base = np.datetime64(patient.start.replace(tzinfo=None), "m")
            carb_times = base + life.meal_t_min.astype(np.int64).astype("timedelta64[m]")
            series.append(("carbs", carb_times, life.meal_carbs_g, 0))
            path = folder / "insulin.ndjson"
            _write_atomic(path, _insulin_ndjson(patient, life, streams.days))
            written.append(path)
        for stem, times, values, decimals in series:
            metric, unit = STREAM_FILES[stem]
            path = folder / f"{stem}.csv"
            _write_atomic(path, _csv_bytes(times, values, metric, unit, who, decimals))
            written.append(path)
    out.mkdir(parents=True, exist_ok=True)
    records = [onset.as_record() for onset in streams.truth]
    document = {
        "generator": "medtwin.synth.streams",
        "seed": streams.seed,
        "start": streams.start.isoformat().replace("+00:00", "Z"),
        "days": streams.days,
        "patients": [p.profile.patient for p in streams.patients],
        "device_user_system": DEVICE_USER_SYSTEM,
        "onsets": records,
        "type1_enrichment": {
            "minimum": streams.type1_minimum,
            "patients": [p.profile.patient for p in streams.patients if p.profile.type1_enriched],
            "note": "type 1 diabetes given beyond the prevalence draw so that a small run has "
            "a CGM wearer; see docs/models/synthetic-population.md",
        },
        "glucose_model": [
            p.glucose_life.truth_record(p.profile.patient)
            for p in streams.patients
            if p.glucose_life is not None
        ],
    }
    truth_json = out / "truth.json"
    _write_atomic(
        truth_json, orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    )
    buffer = io.StringIO()
    columns = [f.name for f in fields(Onset)]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: "" if record[k] is None else record[k] for k in columns})
    truth_csv = out / "truth.csv"
    _write_atomic(truth_csv, buffer.getvalue().encode())
    written += [truth_json, truth_csv]
    return written


def write_wearable_streams(
    n: int,
    seed: int,
    out_dir: pathlib.Path,
    *,
    days: int,
    onset_fraction: float = 0.3,
    today: dt.date | None = None,
    type1_minimum: int = DEFAULT_TYPE1_MINIMUM,
) -> StreamSet:
    """:func:`generate_streams` then :func:`write_streams`; returns the streams written.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     s = write_wearable_streams(1, 1, pathlib.Path(folder), days=1)
    ...     (pathlib.Path(folder) / "truth.json").is_file()
    True
    """
    streams = generate_streams(
        n,
        seed,
        days=days,
        onset_fraction=onset_fraction,
        today=today,
        type1_minimum=type1_minimum,
    )
    write_streams(streams, out_dir)
    return streams
