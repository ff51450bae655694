"""A dosing case read from the patient's record (``medtwin dose ... --patient P``).

From the store, for one patient and one dosing model:

- covariates: age and sex (demographics), the latest body weight (LOINC 29463-7), height
  (8302-2) and serum creatinine (2160-0 or 14682-9, the newer; umol/L divided by 88.42),
  dialysis when an active condition "dependence on renal dialysis" (SNOMED CT 105502003) or a
  haemodialysis procedure (302497006) in the last 7 days is recorded (not one not done);
- doses: ``MedicationAdministration`` facts whose code names the drug (mg or g), as
  ``infusion`` events (duration from the administration's start and end, 0 = bolus); one not
  given (status not-done, :data:`~medtwin.record.facts.NOT_DONE_STATUSES`) is no dose;
- levels: observations of the model's LOINC codes (mg/L = ug/mL), not cancelled ones; one
  reported as a bound ("<4.0") is fitted as one (the case's ``comparator``);
- allergies: active ``AllergyIntolerance`` facts (code text and reactions), a suspected one
  (verification status unconfirmed) marked "(unconfirmed)", a refuted one left out;
- pregnancy: a patient the record shows pregnant now (a pregnancy condition or status
  observation, :func:`medtwin.risk.context.patient_context`) is ``pregnant``, and the models,
  none of which was derived in pregnancy, refuse her
  (:meth:`~medtwin.pharmacology.antibiotics.PopPKModel.check_patient`).

Hours count from the first dose. Missing covariates are refused naming what is missing.

For ``warfarin_hamberg2007`` (:func:`warfarin_case_from_store`, a
:class:`~medtwin.pharmacology.warfarin_dosing.WarfarinCase`):

- covariates: age (demographics); CYP2C9 diplotype and VKORC1 -1639G>A genotype called from
  the patient's stored ``Genotype`` facts (:func:`medtwin.pharmacology.pgx.call_facts`, then
  :func:`~medtwin.pharmacology.warfarin.covariates_from_calls`); a gene that is not called is
  left missing with the caller's reason (the fit and the recommendation refuse it, never
  assuming the wild type); for the IWPC starting dose: latest weight and height, race (US
  Core race extension, :func:`medtwin.risk.inputs.derive_inputs`; missing: the IWPC
  "missing or mixed" category), enzyme inducer (carbamazepine, phenytoin, rifampin,
  rifampicin) and amiodarone from active ``MedicationRequest`` facts (none: false);
- doses: ``MedicationAdministration`` facts naming warfarin (text or RxNorm 11289) in mg;
- pregnancy: a patient the record shows pregnant now (a pregnancy condition or status
  observation, :func:`medtwin.risk.context.patient_context`) gets no dose: warfarin is
  contraindicated in pregnancy (Coumadin prescribing information, Contraindications);
- INRs: observations of LOINC 6301-6 (INR in platelet-poor plasma) and 34714-6 (INR in
  blood, point of care); the latest INR before the first dose is the baseline (Hamberg 2007
  BASE), later ones are fitted; an INR reported as a bound (">8.0") is refused, naming it;
- allergies: as above.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from medtwin.pharmacology.antibiotics import get_pop_model
from medtwin.pharmacology.case import CaseError, DosingCase, parse_case
from medtwin.record.facts import (
    NOT_DONE_STATUSES,
    VOID_RESULT_STATUSES,
    Demographics,
    death_date,
    value_comparator,
)
from medtwin.store.base import Store
from medtwin.twin.twin import HEIGHT_CODE, WEIGHT_CODE, characteristics

__all__ = ["CREATININE_CODES", "INR_CODES", "case_from_store", "warfarin_case_from_store"]

CREATININE_CODES = ("2160-0", "14682-9")
"""Creatinine [Mass/volume] in Serum or Plasma (mg/dL, a US laboratory's) and Creatinine
[Moles/volume] in Serum or Plasma (umol/L, the SI unit of UK and European laboratories and of
a GP record's "Serum creatinine level"): the newer of the two."""
DIALYSIS_CONDITION = "105502003"
HAEMODIALYSIS_PROCEDURE = "302497006"
UMOL_PER_MG_DL = 88.42
INR_CODES = ("6301-6", "34714-6")
"""INR in Platelet poor plasma by Coagulation assay; INR in Blood by Coagulation assay."""
WARFARIN_RXNORM = "11289"
INR_UNITS = {"", "{inr}", "inr", "{ratio}", "ratio", "1"}
ENZYME_INDUCERS = ("carbamazepine", "phenytoin", "rifampin", "rifampicin")
"""The enzyme inducers of the IWPC 2009 algorithm."""


def _refuse_after_death(store: Store, pid: str, patient: str) -> None:
    """No dose for a patient the record says has died (Patient.deceased, PID-29/30)."""
    died = next(
        (
            sf.fact.deceased
            for sf in reversed(store.timeline(pid, kinds=["Demographics"]))
            if isinstance(sf.fact, Demographics) and sf.fact.deceased
        ),
        None,
    )
    if died:
        day = death_date(died)
        when = f" on {day.isoformat()}" if day else ""
        raise CaseError(f"patient {patient}: the record says the patient died{when}: no dose")


def _refuse_warfarin_in_pregnancy(who: dict[str, Any], patient: str, now: dt.datetime) -> None:
    """No warfarin dose for a patient the record shows pregnant now
    (:func:`medtwin.risk.context.patient_context`): warfarin is contraindicated in pregnancy,
    except for women with mechanical heart valves at high risk of thromboembolism, whose
    anticoagulation is a specialist's decision (Coumadin prescribing information, Bristol-Myers
    Squibb: 4 Contraindications; 8.1 Pregnancy, "can cause fetal harm"), and the Hamberg 2007
    and IWPC 2009 models were not derived in pregnancy."""
    t = now.timestamp()
    for start, end, basis in who.get("pregnancies", ()):
        if start <= t < end:
            raise CaseError(
                f"patient {patient}: pregnant (the record: {basis}): warfarin is contraindicated "
                "in pregnancy except with a mechanical heart valve at high risk of "
                "thromboembolism, a specialist's decision (Coumadin prescribing information: "
                "Contraindications), and its dosing models were not derived in pregnancy: no "
                "dose"
            )


def _hours(t: dt.datetime, t0: dt.datetime) -> float:
    return (t - t0).total_seconds() / 3600.0


def _allergies(store: Store, pid: str) -> list[str]:
    allergies = []
    for sf in store.timeline(pid, kinds=["AllergyIntolerance"]):
        f = sf.fact
        if getattr(f, "clinical_status", None) in {"inactive", "resolved"}:
            continue
        if f.status == "refuted":
            continue  # ruled out: no reason to withhold the drug
        parts = [f.code.display or f.code.code] if f.code is not None else []
        parts += list(getattr(f, "reactions", ()) or ())
        if f.status == "unconfirmed":
            parts.append("(unconfirmed)")  # suspected: still withheld, and said so
        allergies.append(" ".join(p for p in parts if p))
    return allergies


def _text(f: Any) -> str:
    return " ".join(x for x in ((f.code.display or "", f.code.code) if f.code else ()) if x)


def case_from_store(
    store: Store, patient: str, model: str, *, target: dict[str, Any] | None = None
) -> DosingCase:
    """The dosing case of ``patient`` for ``model`` from the record (see the module docstring)."""
    pop = get_pop_model(model)
    pid = store.resolve_patient(patient)
    now = dt.datetime.now(dt.UTC)
    who = characteristics(store, pid, now)
    _refuse_after_death(store, pid, patient)
    latest = store.latest(pid, codes=[WEIGHT_CODE, HEIGHT_CODE, *CREATININE_CODES])
    cov: dict[str, Any] = {}
    if "age_y" in who:
        cov["age_years"] = round(float(who["age_y"]), 2)
    if "sex" in who:
        cov["sex"] = who["sex"]
    if "weight_kg" in who:
        cov["weight_kg"] = who["weight_kg"]
    if "height_m" in who:
        cov["height_cm"] = round(float(who["height_m"]) * 100.0, 1)
    creatinine = [
        sf
        for code in CREATININE_CODES
        if (sf := latest.get(code)) is not None
        and getattr(sf.fact, "value_num", None) is not None
        and sf.fact.effective_start is not None
    ]
    if creatinine:
        sf = max(creatinine, key=lambda s: s.fact.effective_start or dt.datetime.min)
        scr = float(getattr(sf.fact, "value_num", 0.0))
        unit = (getattr(sf.fact, "unit", "") or "").lower()
        cov["creatinine_mg_dl"] = scr / UMOL_PER_MG_DL if "umol" in unit else scr
    missing = [k for k in ("age_years", "sex", "weight_kg", "creatinine_mg_dl") if k not in cov]
    if missing:
        raise CaseError(
            f"patient {patient}: the record has no {', '.join(missing)} "
            "(birth date, gender, body weight LOINC 29463-7, serum creatinine LOINC 2160-0)"
        )
    dialysis = any(c.endswith(f"|{DIALYSIS_CONDITION}") for c in who.get("conditions", ()))
    for sf in store.timeline(pid, kinds=["Procedure"], start=now - dt.timedelta(days=7)):
        if sf.fact.status in NOT_DONE_STATUSES:
            continue
        if sf.fact.code is not None and sf.fact.code.code == HAEMODIALYSIS_PROCEDURE:
            dialysis = True
    cov["dialysis"] = dialysis
    t = now.timestamp()
    if any(start <= t < end for start, end, _ in who.get("pregnancies", ())):
        cov["pregnant"] = True  # a model not made for pregnancy refuses her, saying why
    drug = re.compile(rf"\b{re.escape(pop.drug)}\b", re.IGNORECASE)
    admins = []
    for sf in store.timeline(pid, kinds=["MedicationAdministration"]):
        f = sf.fact
        if f.status in NOT_DONE_STATUSES:
            continue  # a dose not given (status not-done) is no dose
        text = " ".join(x for x in ((f.code.display or "", f.code.code) if f.code else ()) if x)
        dose = getattr(f, "dose_value", None)
        unit = (getattr(f, "dose_unit", "") or "").lower()
        if f.effective_start is None or not drug.search(text) or dose is None:
            continue
        if unit not in {"mg", "g"}:
            raise CaseError(
                f"patient {patient}: {pop.drug} dose {sf.fact.source_id} in {unit!r} (mg or g needed)"
            )
        admins.append(
            (f.effective_start, f.effective_end, float(dose) * (1000.0 if unit == "g" else 1.0))
        )
    if not admins:
        raise CaseError(f"patient {patient}: no {pop.drug} administrations in the record")
    admins.sort(key=lambda x: x[0])
    t0 = admins[0][0]
    events = [
        {
            "type": "infusion",
            "drug": pop.drug,
            "t_h": _hours(start, t0),
            "amount_mg": amount,
            "duration_h": max(_hours(end, start), 0.0) if end is not None else 0.0,
        }
        for start, end, amount in admins
    ]
    codes = [c for o in pop.model.observables for c in o.loinc]
    observations = []
    for sf in store.timeline(pid, codes=codes):
        value = getattr(sf.fact, "value_num", None)
        if sf.fact.effective_start is None or value is None:
            continue
        if sf.fact.status in VOID_RESULT_STATUSES:
            continue  # a cancelled level is no level
        unit = (getattr(sf.fact, "unit", "") or "mg/L").lower()
        if unit not in {"mg/l", "ug/ml", "µg/ml"}:
            raise CaseError(
                f"patient {patient}: level {sf.fact.source_id} in {unit!r} (mg/L needed)"
            )
        level: dict[str, Any] = {
            "t_h": _hours(sf.fact.effective_start, t0),
            "conc_mg_l": float(value),
        }
        comparator = value_comparator(sf.fact)
        if comparator is not None:  # "<4.0": below the assay's limit, fitted as a bound
            level["comparator"] = comparator
        observations.append(level)
    allergies = _allergies(store, pid)
    raw: dict[str, Any] = {
        "model": model,
        "patient": cov,
        "events": events,
        "observations": observations,
        "allergies": allergies,
        "t0": t0.isoformat(),
        "now_h": max(_hours(now, t0), 0.0),
    }
    if target:
        raw["target"] = target
    return parse_case(raw)


def _genotypes(store: Store, pid: str) -> tuple[dict[str, str | None], str, dict[str, Any]]:
    """CYP2C9 and VKORC1 -1639 from the stored Genotype facts (``None``: not called, with the
    reason)."""
    from medtwin.model.base import ModelError
    from medtwin.pharmacology.pgx import call_facts
    from medtwin.pharmacology.warfarin import covariate_from_call

    facts = [sf.fact for sf in store.timeline(pid, kinds=["Genotype"])]
    out: dict[str, str | None] = {"cyp2c9": None, "vkorc1_1639": None}
    if not facts:
        return out, "no genotype facts in the record", {}
    calls = call_facts(facts, ("CYP2C9", "VKORC1"))
    notes = []
    prov: dict[str, Any] = {}
    for call in calls:
        key = "cyp2c9" if call.gene == "CYP2C9" else "vkorc1_1639"
        if call.diplotype is None:
            notes.append(f"{call.gene} not called: {call.uncalled_reason or 'no call'}")
            continue
        try:
            value = covariate_from_call(call.gene, call.diplotype)
        except ModelError as exc:
            notes.append(str(exc))
            continue
        out[key] = value
        prov[key] = {"gene": call.gene, "diplotype": call.diplotype, "source": call.source}
    return out, "; ".join(notes), prov


def _iwpc_inputs(store: Store, pid: str, who: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    from medtwin.risk.inputs import derive_inputs

    iwpc: dict[str, Any] = {}
    if "weight_kg" in who:
        iwpc["weight_kg"] = float(who["weight_kg"])
    if "height_m" in who:
        iwpc["height_cm"] = round(float(who["height_m"]) * 100.0, 1)
    race = derive_inputs(store, pid, now)["race"].value
    iwpc["race"] = race if race in {"white", "asian", "black"} else "mixed_or_missing"
    inducer = False
    amiodarone = False
    for sf in store.timeline(pid, kinds=["MedicationRequest"], end=now):
        f = sf.fact
        if f.status not in {"active", "on-hold"}:
            continue
        text = _text(f).lower()
        inducer |= any(re.search(rf"\b{name}\b", text) for name in ENZYME_INDUCERS)
        amiodarone |= re.search(r"\bamiodarone\b", text) is not None
    iwpc["enzyme_inducer"] = inducer
    iwpc["amiodarone"] = amiodarone
    return iwpc


def warfarin_case_from_store(
    store: Store, patient: str, *, target: dict[str, Any] | None = None
) -> Any:
    """The warfarin dosing case of ``patient`` (a
    :class:`~medtwin.pharmacology.warfarin_dosing.WarfarinCase`; see the module docstring)."""
    from medtwin.pharmacology.warfarin_dosing import WarfarinCase

    pid = store.resolve_patient(patient)
    now = dt.datetime.now(dt.UTC)
    who = characteristics(store, pid, now)
    _refuse_after_death(store, pid, patient)
    _refuse_warfarin_in_pregnancy(who, patient, now)
    if "age_y" not in who:
        raise CaseError(f"patient {patient}: the record has no age_years (birth date)")
    genes, note, prov = _genotypes(store, pid)
    drug = re.compile(r"\bwarfarin\b", re.IGNORECASE)
    admins: list[tuple[dt.datetime, float]] = []
    for sf in store.timeline(pid, kinds=["MedicationAdministration"]):
        f = sf.fact
        if f.status in NOT_DONE_STATUSES or f.effective_start is None:
            continue
        code = f.code.code if f.code is not None else ""
        if not (drug.search(_text(f)) or code == WARFARIN_RXNORM):
            continue
        dose = getattr(f, "dose_value", None)
        unit = (getattr(f, "dose_unit", "") or "").lower()
        if dose is None or unit != "mg":
            raise CaseError(
                f"patient {patient}: warfarin dose {f.source_id} is {dose!r} {unit!r} "
                "(a dose in mg is needed)"
            )
        admins.append((f.effective_start, float(dose)))
    admins.sort(key=lambda x: x[0])
    inrs: list[tuple[dt.datetime, float]] = []
    for sf in store.timeline(pid, codes=list(INR_CODES)):
        f = sf.fact
        value = getattr(f, "value_num", None)
        if f.effective_start is None or value is None or f.status in VOID_RESULT_STATUSES:
            continue
        unit = (getattr(f, "unit", "") or "").lower()
        if unit not in INR_UNITS:
            raise CaseError(
                f"patient {patient}: INR {f.source_id} in {unit!r} (an INR ratio needed)"
            )
        if value_comparator(f) is not None:  # ">8.0": above the analyser's range
            raise CaseError(
                f"patient {patient}: INR {f.source_id} of {f.effective_start:%Y-%m-%d} is "
                f"reported as {getattr(f, 'value_text', None)}, a bound, not a value: the "
                "warfarin model cannot be fitted to it (an INR above the measurable range needs clinical review, "
                "not a dose from the model)"
            )
        inrs.append((f.effective_start, float(value)))
    inrs.sort(key=lambda x: x[0])
    t0 = admins[0][0] if admins else now
    base = [v for t, v in inrs if t < t0] if admins else [v for _, v in inrs]
    after = [(t, v) for t, v in inrs if t > t0] if admins else []
    provenance: dict[str, Any] = {"genotypes": prov}
    if base:
        provenance["base_inr"] = "latest INR before the first warfarin dose"
    return WarfarinCase(
        age_years=round(float(who["age_y"]), 2),
        cyp2c9=genes["cyp2c9"],
        vkorc1_1639=genes["vkorc1_1639"],
        base_inr=base[-1] if base else None,
        doses=tuple((_hours(t, t0), a) for t, a in admins),
        inrs=tuple((_hours(t, t0), v) for t, v in after),
        allergies=tuple(_allergies(store, pid)),
        target=target,
        iwpc=_iwpc_inputs(store, pid, who, now),
        genotype_note=note,
        t0=t0.isoformat(),
        provenance=provenance,
        now_h=max(_hours(now, t0), 0.0),
    )
