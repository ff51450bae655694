"""Score inputs from the patient record, each with its provenance and age.

:func:`derive_inputs` reads a patient's record in a :class:`~medtwin.store.base.Store` at an
evaluation date and derives the common inputs of the scores in :mod:`medtwin.risk`
(``age_years``, ``sex``, ``race``, lipids, blood pressure, BMI, HbA1c, kidney function, smoking,
diabetes, treatment). Every input says where it came from (``source``, ``source_id``), the date of
that fact and how old it is; the validity window of each measured input is a data file,
``risk/data/record_inputs.toml``, with the basis of each window (mostly medtwin's assumptions,
stated as such). The newest fact older than its window is **stale**: reported, and treated as
missing, never replaced by a default.

Some inputs are "absence means no": ``diabetes`` (no active diabetes condition), the medication
groups (:data:`MEDICATION_GROUPS`: ``bp_treated``, ``statin`` ...: no active medication of the
class) and the condition items of the atrial fibrillation scores (:mod:`medtwin.risk.af_inputs`).
Their ``status`` is ``"absent"`` so that a reader sees the value was inferred from the absence
of a record.

Only facts whose valid time is at or before the evaluation date are read, so a risk "as of" a
past date uses what was known to have happened by then.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from medtwin.record.context import PUERPERIUM_DAYS, PatientContext
from medtwin.record.facts import (
    SNOMED,
    VOID_RESULT_STATUSES,
    Coding,
    death_date,
    value_comparator,
)
from medtwin.record.medications import (
    ANTIHYPERTENSIVE_ATC,
    MedicationOrder,
    atc_classes,
    not_counted,
    order_from_fact,
    order_state,
)
from medtwin.record.smoking import smoking_table

if TYPE_CHECKING:
    from medtwin.store.base import Store, StoredFact

__all__ = [
    "ADMINISTRATION_DAYS",
    "ANTIHYPERTENSIVE_ATC",
    "ANTIPLATELET_ATC",
    "DERIVABLE",
    "MEDICATION_GROUPS",
    "NSAID_ATC",
    "STATIN_ATC",
    "VKA_ATC",
    "YES_NO",
    "DerivedInput",
    "Provenance",
    "derive_inputs",
    "validity",
]

US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
YES_NO: tuple[bool, ...] = (False, True)
"""The alternatives of a yes/no input the record cannot settle."""


STATIN_ATC = ("C10AA", "C10BA", "C10BX")
"""ATC HMG-CoA reductase inhibitors (C10AA) and their combinations (C10BA, C10BX)."""
ANTIPLATELET_ATC = ("B01AC",)
"""ATC platelet aggregation inhibitors excluding heparin (B01AC: aspirin, clopidogrel ...);
HAS-BLED D (drugs): antiplatelet agents (Pisters et al. 2010)."""
NSAID_ATC = ("M01AA", "M01AB", "M01AC", "M01AE", "M01AG", "M01AH")
"""ATC non-steroidal anti-inflammatory drugs: butylpyrazolidines, acetic acid derivatives,
oxicams, propionic acid derivatives, fenamates, coxibs (M01AX, "other", holds glucosamine and is
left out); HAS-BLED D (drugs): NSAIDs (Pisters et al. 2010)."""
VKA_ATC = ("B01AA",)
"""ATC vitamin K antagonists (warfarin, acenocoumarol, phenprocoumon): HAS-BLED L (labile INR)
applies only to a patient on one."""

SMOKER_SNOMED = "77176002"
"""SNOMED CT "Smoker": a current smoker as SNOMED CT and UK primary care use it, but displayed by
the US ONC / US Core smoking-status value set as "Smoker, current status unknown" (current or
former), which is read as not known (yes or no); "Unknown if ever smoked" (266927001) too."""
# The smoking findings that say current or not (US Core's answers, UK general practice's
# findings), from medtwin/record/data/smoking_status.csv (medtwin.record.smoking).
CURRENT_SMOKER_SNOMED = frozenset(
    code for code, row in smoking_table().items() if row.current is True and code != SMOKER_SNOMED
)
NON_SMOKER_SNOMED = frozenset(code for code, row in smoking_table().items() if row.current is False)
_CURRENT_SMOKER_TEXT = ("smokes tobacco", "every day smoker", "some day smoker", "current")
_NON_SMOKER_TEXT = ("never", "former", "ex-smoker", "non-smoker", "nonsmoker")

_VOID_RESULT = VOID_RESULT_STATUSES

_RACE_OMB = {
    "2106-3": "white",
    "2054-5": "black",
    "2028-9": "asian",
    "1002-5": "american_indian_or_alaska_native",
    "2076-8": "native_hawaiian_or_pacific_islander",
    "2131-1": "other",
}

DERIVABLE = (
    "age_years",
    "sex",
    "race",
    "deceased",  # every score refuses a patient who had died by the date
    "pregnant",  # NEWS2's population; weight what-ifs are refused in pregnancy
    "total_cholesterol_mg_dl",
    "hdl_mg_dl",
    "ldl_mg_dl",
    "systolic_bp_mm_hg",
    "bmi_kg_m2",
    "weight_kg",
    "height_cm",
    "hba1c_percent",
    "creatinine_mg_dl",
    "egfr_ml_min_1_73m2",
    "uacr_mg_g",
    "smoker",
    "diabetes",
    "bp_treated",
    "statin",
    "antiplatelet_or_nsaid",
    "vitamin_k_antagonist",
    # who the primary-prevention scores apply to, and the atrial fibrillation scores
    # (medtwin.risk.af_inputs)
    "clinical_ascvd",
    "severe_hypercholesterolaemia",
    "atrial_fibrillation",
    "mitral_stenosis",
    "congestive_heart_failure",
    "hypertension",
    "stroke_tia_thromboembolism",
    "vascular_disease",
    "hypertension_uncontrolled",
    "abnormal_renal_function",
    "abnormal_liver_function",
    "stroke_history",
    "bleeding_history_or_predisposition",
    "labile_inr",
    "alcohol_excess",
    # QRISK3 (medtwin.risk.qrisk3_inputs)
    "cholesterol_hdl_ratio",
    "smoking_category",
    "diabetes_type",
    "systolic_bp_sd_mm_hg",
    "ethnicity",
    "townsend_score",
    "prior_cvd",
    "ckd_stage_3_5",
    "migraine",
    "rheumatoid_arthritis",
    "sle",
    "severe_mental_illness",
    "erectile_dysfunction",
    "atypical_antipsychotic",
    "corticosteroids",
    "family_history_chd",
    # the SCORE2 family: ESC risk region, and SCORE2-Diabetes' diabetes
    # (medtwin.risk.score2_inputs)
    "esc_country",
    "risk_region",
    "type_2_diabetes",
    "age_at_diabetes_diagnosis_years",
)
"""The inputs :func:`derive_inputs` knows how to read from a record."""


@dataclass(frozen=True, slots=True)
class Provenance:
    """One fact an input was read from: source, source id, code, value and date."""

    source: str
    source_id: str
    code: str | None
    display: str | None
    date: str | None
    age_days: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "source": self.source,
            "source_id": self.source_id,
            "code": self.code,
            "display": self.display,
            "date": self.date,
            "age_days": self.age_days,
        }


@dataclass(frozen=True, slots=True)
class DerivedInput:
    """One score input derived from the record.

    ``status`` is ``"ok"`` (read from a fact within its window), ``"computed"`` (calculated
    from other valid inputs: BMI from weight and height, eGFR from creatinine), ``"absent"``
    (``False`` because the record has no such condition or medication), ``"given"`` (given by
    the user for this evaluation, ``medtwin risk --set``: not from the record), ``"stale"`` (the newest
    fact is older than ``valid_days``; ``value`` is ``None`` and ``stale_value`` keeps what it
    said) or ``"missing"`` (nothing in the record).

    ``alternatives``: for an input that cannot be used, the values the record leaves possible
    (a daily smoker whose amount is not recorded: QRISK3's light, moderate or heavy; a statin
    order whose end is not recorded: yes or no). A score that needs it then gives its range
    over them (:func:`medtwin.risk.from_record.range_outcome`) instead of no answer.
    """

    name: str
    value: str | float | bool | None
    status: str
    detail: str = ""
    valid_days: int | None = None
    stale_value: str | float | bool | None = None
    provenance: tuple[Provenance, ...] = field(default_factory=tuple)
    alternatives: tuple[str | float | bool, ...] = ()
    since: dt.date | None = None
    """When what the input says began (a drug group's first order by the date), where known:
    the untreated estimate of a score refused for a statin is taken the day before
    (:func:`medtwin.risk.from_record.untreated_outcomes`)."""

    @property
    def usable(self) -> bool:
        """True when the value may be used in a score."""
        return self.value is not None and self.status in ("ok", "computed", "absent", "given")

    @property
    def age_days(self) -> int | None:
        """Age in days of the oldest fact it rests on."""
        ages = [p.age_days for p in self.provenance if p.age_days is not None]
        return max(ages) if ages else None

    def reason(self) -> str:
        """Why it cannot be used, for "cannot compute: missing X (...)"."""
        if self.status == "stale":
            date = self.provenance[0].date if self.provenance else "?"
            said = f"latest {date} is older than {self.valid_days} days"
            return f"{said} ({self.detail})" if self.detail else said
        return self.detail or "not in the record"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "name": self.name,
            "value": self.value,
            "status": self.status,
            "detail": self.detail,
            "valid_days": self.valid_days,
            "age_days": self.age_days,
            **({"stale_value": self.stale_value} if self.status == "stale" else {}),
            **({"alternatives": list(self.alternatives)} if self.alternatives else {}),
            **({"since": self.since.isoformat()} if self.since is not None else {}),
            "provenance": [p.to_dict() for p in self.provenance],
        }


@cache
def table_codes(name: str) -> Mapping[str, Mapping[str, str]]:
    """A code table of ``risk/data`` (CSV with a ``code`` column), keyed by code, read once.

    Raises
    ------
    ValueError
        For a SNOMED CT code whose check digit fails or a code given twice (a packaging bug).
    """
    import csv
    import io

    from medtwin.record.codes import snomed_check_digit_ok

    text = resources.files("medtwin.risk").joinpath("data", name).read_text("utf-8")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows: dict[str, Mapping[str, str]] = {}
    for row in reader:
        code = (row.get("code") or "").strip()
        if not snomed_check_digit_ok(code) or code in rows:
            raise ValueError(f"medtwin/risk/data/{name}, line {reader.line_num}: bad code {code!r}")
        rows[code] = row
    return rows


@cache
def validity() -> Mapping[str, Mapping[str, Any]]:
    """The derivation table ``risk/data/record_inputs.toml``: codes, unit, window, basis.

    >>> validity()["hdl_mg_dl"]["valid_days"]
    365
    """
    text = resources.files("medtwin.risk").joinpath("data/record_inputs.toml").read_text("utf-8")
    return tomllib.loads(text)


def _date(value: dt.datetime | None) -> str | None:
    return value.date().isoformat() if value is not None else None


def _prov(sf: StoredFact, at: dt.datetime) -> Provenance:
    f = sf.fact
    start = f.effective_start
    age = (at - start).days if start is not None else None
    return Provenance(
        source=f.source,
        source_id=f.source_id,
        code=f.code.code if f.code else None,
        display=f.code.display if f.code else None,
        date=_date(start),
        age_days=age,
    )


def _convert(value: float, unit: str | None, target: str, code: str) -> float:
    if not unit or unit == target:
        return value
    from medtwin.record.units import convert

    return float(convert(value, unit, target, analyte=code))


class _Reader:
    def __init__(self, store: Store, patient_id: str, at: dt.datetime) -> None:
        self.store = store
        self.patient_id = patient_id
        self.at = at
        self.end = at + dt.timedelta(microseconds=1)  # timeline's end is exclusive
        self._obs: list[StoredFact] | None = None
        self._kinds: dict[tuple[str, ...], list[StoredFact]] = {}
        self._orders: list[StoredFact] | None = None
        self._demographics: list[StoredFact] | None = None
        self._kept: dict[str, list[StoredFact]] = {}
        self._pregnancies: PatientContext | None = None

    def demographics(self) -> list[StoredFact]:
        """The Demographics facts with their Patient resources (extensions), read once."""
        if self._demographics is None:
            self._demographics = self.store.timeline(
                self.patient_id, kinds=("Demographics",), include_raw=True
            )
        return self._demographics

    def kept_whole(self, resource_type: str) -> list[StoredFact]:
        """The resources of ``resource_type`` medtwin keeps whole (``RawResource`` facts with
        their JSON: ``FamilyMemberHistory``) dated by the date or undated, read once."""
        if resource_type not in self._kept:
            facts = self.store.timeline(
                self.patient_id, kinds=("RawResource",), resource_types=(resource_type,),
                include_raw=True,
            )  # fmt: skip
            self._kept[resource_type] = [
                sf for sf in facts
                if sf.fact.effective_start is None or sf.fact.effective_start < self.end
            ]  # fmt: skip
        return self._kept[resource_type]

    def facts_of(self, kinds: Sequence[str]) -> list[StoredFact]:
        """Every fact of ``kinds`` (Condition, Procedure ...) begun by the date, read once, with
        its source resource (a condition's other codings: :func:`medtwin.risk.af_inputs
        .matches`)."""
        key = tuple(kinds)
        if key not in self._kinds:
            self._kinds[key] = self.store.timeline(
                self.patient_id, kinds=key, end=self.end, include_raw=True
            )
        return self._kinds[key]

    def orders(self) -> list[StoredFact]:
        """Every MedicationRequest, also those begun after the date (a renewal after it shows
        an earlier order was still taken), read once."""
        if self._orders is None:
            self._orders = self.store.timeline(self.patient_id, kinds=("MedicationRequest",))
        return self._orders

    def observations(self) -> list[StoredFact]:
        if self._obs is None:
            codes: list[str] = []
            for spec in validity().values():
                codes.extend(spec.get("codes", ()))
                if "codes_table" in spec:
                    codes.extend(table_codes(spec["codes_table"]))
            self._obs = [
                sf
                for sf in self.store.timeline(
                    self.patient_id, codes=codes, kinds=("Observation",), end=self.end
                )
                if sf.fact.status not in _VOID_RESULT
            ]
        return self._obs

    def pregnancies(self) -> PatientContext:
        """The established pregnancies the record shows by the date
        (:func:`medtwin.risk.context.pregnancies_from`), read once."""
        if self._pregnancies is None:
            from medtwin.risk.context import pregnancies_from

            established, _ = pregnancies_from(self.facts_of(("Condition",)), self.observations())
            self._pregnancies = PatientContext(pregnancies=established)
        return self._pregnancies

    def in_pregnancy(self, sf: StoredFact) -> str | None:
        """What the record says of a pregnancy when ``sf`` was measured, counting the
        :data:`~medtwin.record.context.PUERPERIUM_DAYS` after it, or None."""
        when = sf.fact.effective_start
        if when is None or not self.pregnancies().pregnancies:
            return None
        return self.pregnancies().pregnancy_at(when.timestamp(), after_days=PUERPERIUM_DAYS)

    def newest(
        self, codes: Sequence[str], *, numeric: bool = True, usual: bool = False
    ) -> StoredFact | None:
        """The newest observation with one of ``codes`` (a value, when ``numeric``); ``usual``:
        not one measured in a pregnancy or the weeks after it (:meth:`in_pregnancy`)."""
        best: StoredFact | None = None
        for sf in self.observations():
            f = sf.fact
            if f.code is None or f.code.code not in codes or f.effective_start is None:
                continue
            if numeric and getattr(f, "value_num", None) is None:
                continue
            if usual and self.in_pregnancy(sf) is not None:
                continue
            if best is None or f.effective_start >= best.fact.effective_start:  # type: ignore[operator]
                best = sf
        return best

    def measured(
        self, name: str, *, spec_name: str | None = None, current: bool = False
    ) -> DerivedInput:
        """The newest measurement of input ``name`` in its window; one taken in a pregnancy
        (or the weeks after it) is left out where pregnancy changes it (``in_pregnancy``)
        unless ``current``: the state now, not the usual level (HAS-BLED's uncontrolled
        blood pressure and renal function, a bleeding risk whatever its cause)."""
        spec = validity()[spec_name or name]
        codes = list(spec["codes"])
        window = int(spec["valid_days"])
        sf = self.newest(codes)
        note = ""
        left_out: tuple[Provenance, ...] = ()
        if (
            sf is not None
            and not current
            and "in_pregnancy" in spec
            and (basis := self.in_pregnancy(sf))
        ):
            f = sf.fact
            note = (
                f"LOINC {f.code.code} of {f.effective_start:%Y-%m-%d} left out: in a pregnancy "  # type: ignore[union-attr]
                f"or the {PUERPERIUM_DAYS} days after it ({basis}), not the usual level"
            )
            left_out = (_prov(sf, self.at),)
            sf = self.newest(codes, usual=True)
            if sf is None:
                return DerivedInput(
                    name, None, "missing", f"{note}; no other in the record",
                    window, None, left_out,
                )  # fmt: skip
        if sf is None:
            return DerivedInput(
                name, None, "missing", f"no {' / '.join(codes)} in the record", window
            )
        from medtwin.record.units import UnitsError

        f = sf.fact
        prov = _prov(sf, self.at)
        code, unit = f.code.code, getattr(f, "unit", None)  # type: ignore[union-attr]
        try:
            value = _convert(float(f.value_num), unit, spec["unit"], code)  # type: ignore[attr-defined]
        except UnitsError as exc:  # a unit this input cannot be read in: said, not guessed
            return DerivedInput(
                name, None, "missing",
                f"LOINC {code} in {unit!r} cannot be read as {spec['unit']} ({exc})",
                window, None, (prov,),
            )  # fmt: skip
        if prov.age_days is not None and prov.age_days > window:
            return DerivedInput(name, None, "stale", note, window, value, (prov, *left_out))
        comparator = value_comparator(f)
        if comparator is not None:
            sent = f"{f.value_text} {getattr(f, 'original_unit', None) or unit or ''}".rstrip()  # type: ignore[attr-defined]
            return _bounded(name, spec, code, comparator, value, window, prov, sent)
        said = f"LOINC {f.code.code}" + (f" ({note})" if note else "")  # type: ignore[union-attr]
        return DerivedInput(name, value, "ok", said, window, None, (prov, *left_out))


def _bounded(
    name: str,
    spec: Mapping[str, Any],
    code: str,
    comparator: str,
    bound: float,
    window: int,
    prov: Provenance,
    sent: str,
) -> DerivedInput:
    """A result reported as a bound (an eGFR ">90", a UACR "<3 mg/mmol") is not a value: the
    input is missing, open from the bound to the end of its ``bounded_range`` in
    ``record_inputs.toml`` where it has one (a score then gives its range over both ends),
    else left missing. Never the bound taken as the value."""
    said = f"LOINC {code} reported as {sent}: a bound, not a value"
    low, high = spec.get("bounded_range", (None, None))
    end = high if comparator.startswith(">") else low
    if end is None or (end - bound) * (1 if comparator.startswith(">") else -1) <= 0:
        return DerivedInput(name, None, "missing", said, window, None, (prov,))
    ends = (bound, float(end)) if end > bound else (float(end), bound)
    return DerivedInput(name, None, "missing", said, window, None, (prov,), alternatives=ends)


def _age_sex_race(reader: _Reader) -> list[DerivedInput]:
    summary = reader.store.patient(reader.patient_id)
    out: list[DerivedInput] = []
    prov = Provenance("patient", reader.patient_id, None, "Patient", None, None)
    if summary.birth_date:
        born = dt.date.fromisoformat(summary.birth_date[:10])
        day = reader.at.date()
        years = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
        out.append(
            DerivedInput(
                "age_years",
                float(years),
                "ok",
                f"born {born.isoformat()}, completed years at {day.isoformat()}",
                None,
                None,
                (prov,),
            )
        )
    else:
        out.append(DerivedInput("age_years", None, "missing", "no birth date recorded"))
    if summary.gender in ("female", "male"):
        out.append(
            DerivedInput("sex", summary.gender, "ok", "administrative gender", None, None, (prov,))
        )
    else:
        out.append(
            DerivedInput(
                "sex", None, "missing", f"administrative gender {summary.gender or 'not recorded'}"
            )
        )
    out.append(_race(reader))
    return out


def _pregnant(reader: _Reader) -> DerivedInput:
    """Whether the record shows the patient pregnant at the date
    (:func:`medtwin.risk.context.patient_context`: a pregnancy condition from onset to
    abatement, or a pregnancy status observation, LOINC 82810-3); none: "no" (status
    ``absent``), as for conditions. NEWS2 refuses a pregnant patient (RCP 2017); the prevention
    what-if refuses weight, BMI, diet and activity changes in pregnancy."""
    basis = reader.pregnancies().pregnancy_at(reader.at.timestamp())
    if basis is None:
        return DerivedInput("pregnant", False, "absent", "no pregnancy in the record at the date")
    return DerivedInput("pregnant", True, "ok", basis)


def _deceased(reader: _Reader) -> DerivedInput:
    """Whether the patient had died by the date: Patient.deceasedDateTime (HL7 v2 PID-29) on
    or before it; a death recorded without a date (deceasedBoolean, PID-30 Y) from the day
    medtwin learned of it. Every score refuses a patient who had died
    (:func:`medtwin.risk.from_record.record_refusal`): a risk of what is to come is for the
    living, and a record that goes on after a death has errors in it."""
    day = reader.at.date()
    for sf in reversed(reader.demographics()):
        said = getattr(sf.fact, "deceased", None)
        if not said:
            continue
        prov = Provenance("patient", reader.patient_id, None, "Patient", None, None)
        died = death_date(said)
        if died is not None:
            if died <= day:
                return DerivedInput("deceased", True, "ok", f"died {died.isoformat()}", None,
                                    None, (prov,))  # fmt: skip
            return DerivedInput(
                "deceased", False, "ok", f"alive at the date (died {died.isoformat()})", None,
                None, (prov,),
            )  # fmt: skip
        learned = sf.recorded_at.date()
        if learned <= day:
            return DerivedInput(
                "deceased", True, "ok",
                f"recorded as deceased (no date given; known since {learned.isoformat()})",
                None, None, (prov,),
            )  # fmt: skip
        return DerivedInput("deceased", False, "absent", "no death recorded by the date")
    return DerivedInput("deceased", False, "absent", "no death recorded")


def _race(reader: _Reader) -> DerivedInput:
    for sf in reversed(reader.demographics()):
        raw = sf.fact.raw or {}
        for ext in raw.get("extension", ()) or ():
            if ext.get("url") != US_CORE_RACE:
                continue
            for sub in ext.get("extension", ()) or ():
                coding = sub.get("valueCoding") or {}
                if sub.get("url") == "ombCategory" and coding.get("code") in _RACE_OMB:
                    return DerivedInput(
                        "race",
                        _RACE_OMB[coding["code"]],
                        "ok",
                        f"US Core race, OMB category {coding['code']} {coding.get('display', '')}".strip(),
                        None,
                        None,
                        (_prov_nodate(sf),),
                    )
    return DerivedInput(
        "race", None, "missing", "no US Core race extension on the Patient",
        alternatives=("white", "black"),
    )  # fmt: skip


def _prov_nodate(sf: StoredFact) -> Provenance:
    f = sf.fact
    return Provenance(f.source, f.source_id, None, "Patient", None, None)


def _bmi(reader: _Reader) -> DerivedInput:
    direct = reader.measured("bmi_kg_m2")
    if direct.usable:
        return direct
    weight = reader.measured("weight_kg")
    height = reader.measured("height_cm")
    if weight.usable and height.usable:
        w, h = float(weight.value), float(height.value) / 100.0  # type: ignore[arg-type]
        return DerivedInput(
            "bmi_kg_m2",
            w / (h * h),
            "computed",
            f"weight {w:g} kg / height {h:.2f} m squared",
            direct.valid_days,
            None,
            weight.provenance + height.provenance,
        )
    if direct.status == "stale":
        return direct
    if weight.status == "stale" or height.status == "stale":
        worst = weight if weight.status == "stale" else height
        return DerivedInput(
            "bmi_kg_m2",
            None,
            "stale",
            "",
            worst.valid_days,
            None,
            worst.provenance,
        )
    if direct.provenance:  # a BMI that cannot be used (left out in a pregnancy): says why
        return direct
    return DerivedInput(
        "bmi_kg_m2", None, "missing", "no BMI (39156-5) nor weight and height in the record"
    )


def _egfr(reader: _Reader, done: Mapping[str, DerivedInput]) -> DerivedInput:
    creat, age, sex = done["creatinine_mg_dl"], done["age_years"], done["sex"]
    recorded = reader.measured("egfr_ml_min_1_73m2")
    if creat.usable and age.usable and sex.usable:
        from medtwin.risk.registry import get

        try:
            score = get("ckd_epi_2021")
        except LookupError:  # pragma: no cover - the score is built in
            return recorded
        result = score.compute_one(
            {"creatinine_mg_dl": creat.value, "age_years": age.value, "sex": sex.value}
        )
        if result.value is not None:
            return DerivedInput(
                "egfr_ml_min_1_73m2",
                float(result.value),
                "computed",
                f"CKD-EPI 2021 (ckd_epi_2021) from creatinine {float(creat.value):.3g} mg/dL",  # type: ignore[arg-type]
                creat.valid_days,
                None,
                creat.provenance,
            )
    return recorded


def smoking_answer(reader: _Reader) -> tuple[StoredFact, Coding | None] | None:
    """The newest smoking status and its answer: an Observation of LOINC 72166-2 (a UK
    finding recorded as the code is stored so at import), else, only when the record has
    none, the newest smoking finding recorded as a Condition (a problem list's "Ex-smoker"; not
    refuted or entered in error), the finding being the answer; ``None`` without either."""
    sf = reader.newest(list(validity()["smoker"]["codes"]), numeric=False)
    if sf is not None:
        return sf, getattr(sf.fact, "value_code", None)
    findings = [
        c for c in reader.facts_of(("Condition",))
        if c.fact.code is not None and c.fact.code.system == SNOMED
        and c.fact.code.code in smoking_table() and c.fact.effective_start is not None
        and not c.fact.retracted
        and getattr(c.fact, "verification_status", None) not in ("refuted", "entered-in-error")
    ]  # fmt: skip
    if not findings:
        return None
    newest = max(findings, key=lambda c: c.fact.effective_start)  # type: ignore[arg-type,return-value]
    return newest, newest.fact.code


def _smoker(reader: _Reader) -> DerivedInput:
    spec = validity()["smoker"]
    window = int(spec["valid_days"])
    found = smoking_answer(reader)
    if found is None:
        return DerivedInput(
            "smoker", None, "missing", "no smoking status (72166-2) recorded", window,
            alternatives=YES_NO,
        )  # fmt: skip
    sf, answer = found
    f = sf.fact
    text = (getattr(f, "value_text", None) or (answer.display if answer else None) or "").lower()
    value: bool | None = None
    snomed = answer.code if answer is not None and answer.system == SNOMED else ""
    unknown = "unknown" in text  # "Smoker, current status unknown", "Unknown if ever smoked"
    if snomed in CURRENT_SMOKER_SNOMED:
        value = True
    elif snomed in NON_SMOKER_SNOMED or any(word in text for word in _NON_SMOKER_TEXT):
        value = False
    elif snomed == SMOKER_SNOMED and not unknown:
        value = True  # "Smoker" (SNOMED CT's own term; UK primary care's current smoker)
    elif not unknown and any(word in text for word in _CURRENT_SMOKER_TEXT):
        value = True
    prov = _prov(sf, reader.at)
    said = f"{answer.code} {answer.display or ''}".strip() if answer else text
    if value is None:
        return DerivedInput(
            "smoker", None, "missing", f"smoking status {said!r} does not say current or not",
            window, None, (prov,), YES_NO,
        )  # fmt: skip
    if prov.age_days is not None and prov.age_days > window:
        return DerivedInput("smoker", None, "stale", said, window, value, (prov,), YES_NO)
    return DerivedInput("smoker", value, "ok", said, window, None, (prov,))


def _diabetes(reader: _Reader) -> DerivedInput:
    """An active diabetes diagnosis (code list ``diabetes`` of ``risk/data/record_conditions
    .toml``); none is "no", shown as inferred."""
    from medtwin.risk.af_inputs import condition_input

    return condition_input(reader, "diabetes")


MEDICATION_GROUPS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("bp_treated", ANTIHYPERTENSIVE_ATC, "antihypertensive (ATC C02, C03, C07, C08, C09)"),
    ("statin", STATIN_ATC, "statin (ATC C10AA)"),
    (
        "antiplatelet_or_nsaid",
        ANTIPLATELET_ATC + NSAID_ATC,
        "antiplatelet (ATC B01AC) or NSAID (M01AA-M01AH)",
    ),
    ("vitamin_k_antagonist", VKA_ATC, "vitamin K antagonist (ATC B01AA)"),
)
"""The "on a drug of this group" inputs: (input, WHO ATC prefixes, the group in words)."""

ADMINISTRATION_DAYS = 7
"""A dose of a group's drug given (a completed MedicationAdministration) in the 7 days before
the date counts as taking it, as an active order does: medtwin's assumption, made for daily oral
drugs (the groups hold no drug dosed less often than daily); aspirin's effect on platelets lasts
their lifetime, 7-10 days."""


def _medications(reader: _Reader) -> dict[str, DerivedInput]:
    # every order, also those after ``at``: a renewal shows an earlier order was still taken
    classified: list[tuple[StoredFact, MedicationOrder]] = []
    ingredients_of: dict[int, str] = {}  # stored fact id -> its order's ingredients
    for sf in reader.orders():
        order = order_from_fact(sf.fact, sf.recorded_at, sf.id)
        if order is not None:
            classified.append((sf, order))
            ingredients_of[sf.id] = order.ingredients
    starts: dict[str, list[dt.datetime]] = {}
    for _, order in classified:
        if order.classes:
            starts.setdefault(order.ingredients, []).append(order.start)
    # (order, its ingredients' names) taken at ``at`` or of unknown state, per input
    found: dict[str, dict[str, list[tuple[StoredFact, str]]]] = {
        name: {"active": [], "unknown": []} for name, _, _ in MEDICATION_GROUPS
    }
    unknown_class = 0
    # a product of a group's ingredient for another use (ADHD clonidine): said, not counted
    other_use: dict[str, set[str]] = {name: set() for name, _, _ in MEDICATION_GROUPS}
    for sf, order in classified:
        state = order_state(order, starts.get(order.ingredients, ()), reader.at)
        if state == "ended":
            continue  # also: ordered after ``at``
        label, classes = order.ingredients, order.classes
        if not classes:
            unknown_class += state == "active"
            continue
        for name, prefixes, _ in MEDICATION_GROUPS:
            if any(c.startswith(prefixes) for c in classes):
                if order.not_counted:
                    other_use[name].add(f"{order.display} ({order.not_counted})")
                else:
                    found[name][state].append((sf, label))
    # doses given (MedicationAdministration) in the days before the date: taking the drug then
    recent = reader.at - dt.timedelta(days=ADMINISTRATION_DAYS)
    latest: dict[tuple[str, str], StoredFact] = {}  # the last dose per group and drug
    for sf in reader.facts_of(("MedicationAdministration",)):
        f = sf.fact
        if f.effective_start is None or f.effective_start < recent:
            continue
        if f.status not in ("completed", "in-progress") or not_counted(f):
            continue
        given, given_classes = atc_classes(f)
        for name, prefixes, _ in MEDICATION_GROUPS:
            if any(c.startswith(prefixes) for c in given_classes):
                latest[(name, given)] = sf  # facts come in time order
    for (name, label), sf in latest.items():
        if not any(ordered == label for _, ordered in found[name]["active"]):  # the order says it
            found[name]["active"].append((sf, f"{label} (given {_date(sf.fact.effective_start)})"))
    note = (
        f"; {unknown_class} active medication(s) with no ATC class in medtwin's table"
        if unknown_class
        else ""
    )
    out: dict[str, DerivedInput] = {}
    for name, _, what in MEDICATION_GROUPS:
        said = note + (
            f"; not counted: {', '.join(sorted(other_use[name]))}" if other_use[name] else ""
        )
        active, unknown = found[name]["active"], found[name]["unknown"]
        if active:
            # when the first order of these drugs began (by the date): how long on treatment
            began = [
                t for sf, _ in active if sf.fact.kind == "MedicationRequest"
                for t in starts.get(ingredients_of.get(sf.id, ""), ()) if t <= reader.at
            ]  # fmt: skip
            first = f", first ordered {_date(min(began))}" if began else ""
            detail = f"active {', '.join(sorted({label for _, label in active}))}{first}{said}"
            provs = tuple(_prov(sf, reader.at) for sf, _ in active)
            since = min(began).date() if began else None
            out[name] = DerivedInput(name, True, "ok", detail, None, None, provs, since=since)
        elif unknown:
            orders_text = ", ".join(
                sorted(f"{label} ordered {_date(sf.fact.effective_start)}" for sf, label in unknown)
            )
            detail = (
                f"{what} order stopped on a date the record does not give ({orders_text}): "
                f"whether it was taken on {_date(reader.at)} is not known"
            )
            provs = tuple(_prov(sf, reader.at) for sf, _ in unknown)
            out[name] = DerivedInput(name, None, "missing", detail, None, None, provs, YES_NO)
        else:
            out[name] = DerivedInput(name, False, "absent", f"no active {what} order{said}")
    return out


def derive_inputs(
    store: Store,
    patient_id: str,
    at: dt.datetime | dt.date | None = None,
    *,
    given: Mapping[str, DerivedInput] | None = None,
) -> dict[str, DerivedInput]:
    """Every input in :data:`DERIVABLE`, read from ``patient_id``'s record at ``at``.

    Parameters
    ----------
    store
        The store; every read is logged by it.
    patient_id
        A medtwin patient id.
    at
        The evaluation time (a date means the end of that day, UTC); default now.
    given
        Inputs the user gives for this evaluation (status ``"given"``, :func:`given_input`):
        each replaces what the record says as soon as it is derived, so that the inputs
        computed from it (the cholesterol ratio from total cholesterol, eGFR from creatinine,
        QRISK3's smoking group from the smoking status) follow the given value; the detail says
        what the record said.

    Returns
    -------
    dict[str, DerivedInput]
        Keyed by input name, in :data:`DERIVABLE` order; unusable inputs have ``value=None``
        and a :meth:`DerivedInput.reason`.
    """
    if at is None:
        at = dt.datetime.now(dt.UTC)
    elif not isinstance(at, dt.datetime):
        at = dt.datetime.combine(at, dt.time(23, 59, 59), dt.UTC)
    elif at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    reader = _Reader(store, patient_id, at)
    done: dict[str, DerivedInput] = {}
    given = given or {}

    def put(*items: DerivedInput) -> None:
        for item in items:
            mine = given.get(item.name)
            done[item.name] = item if mine is None else _replacing(mine, item)

    put(*_age_sex_race(reader), _deceased(reader), _pregnant(reader))
    for name in ("total_cholesterol_mg_dl", "hdl_mg_dl", "ldl_mg_dl", "systolic_bp_mm_hg"):
        put(reader.measured(name))
    put(_bmi(reader), reader.measured("weight_kg"), reader.measured("height_cm"))
    for name in ("hba1c_percent", "creatinine_mg_dl"):
        put(reader.measured(name))
    put(_egfr(reader, done), reader.measured("uacr_mg_g"), _smoker(reader), _diabetes(reader))
    put(*_medications(reader).values())
    from medtwin.risk.af_inputs import af_inputs

    put(*af_inputs(reader, done).values())
    from medtwin.risk.qrisk3_inputs import qrisk3_inputs

    put(*qrisk3_inputs(reader, done).values())
    from medtwin.risk.score2_inputs import diabetes_inputs, score2_inputs

    put(*score2_inputs(reader).values())
    put(*diabetes_inputs(reader, done).values())
    return {name: done[name] for name in DERIVABLE}


def given_input(name: str, value: str | float | bool, text: str) -> DerivedInput:
    """An input the user gives for one evaluation (``medtwin risk --set NAME=VALUE``).

    ``text`` is what was typed; the record's own reading is added to the detail when the given
    value replaces it (:func:`derive_inputs`)."""
    return DerivedInput(name, value, "given", f"given (--set {name}={text})")


def _said(value: str | float | bool | None) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _replacing(mine: DerivedInput, record: DerivedInput) -> DerivedInput:
    if record.usable:
        said = f"{_said(record.value)}: {record.detail}" if record.detail else _said(record.value)
        if record.provenance:
            first = record.provenance[0]
            said += f" [{first.source}:{first.source_id}" + (
                f", {first.date}]" if first.date else "]"
            )
    else:
        said = f"{record.status}: {record.reason()}"
    return replace(mine, detail=f"{mine.detail}; the record: {said}")
