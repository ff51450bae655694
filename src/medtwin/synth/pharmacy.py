"""Synthetic vancomycin courses: dosing records and measured levels from the population model.

For a synthetic patient (a FHIR Bundle of :mod:`medtwin.synth.generator`), a course of IV
vancomycin is simulated with medtwin's own population model ``vancomycin_goti2018``
(Goti V et al. Ther Drug Monit 2018;40:212-221, Table 2; :mod:`medtwin.pharmacology.antibiotics`):

1. **Covariates** from the Bundle, as ``medtwin dose --patient`` reads them from the record
   (:func:`medtwin.twin.dosing_record.case_from_store`): sex, age at the course, latest body
   weight (LOINC 29463-7), height (8302-2) and serum creatinine (2160-0). A patient outside
   the model's population (:meth:`PopPKModel.check_patient`) gets no course.
2. **The patient's own parameters**: typical values with the covariate equations, times
   ``exp(eta)``, ``eta ~ N(0, Omega)`` (the model's Omega).
3. **The regimen** a prescriber would start before any level (ASHP/IDSA/PIDS/SIDP consensus,
   Rybak MJ et al. Am J Health Syst Pharm 2020;77:835-864): a loading dose of 25 mg/kg total
   body weight (capped at 3000 mg), then 15 mg/kg every 12 h (every 24 h when the
   Cockcroft-Gault creatinine clearance is below 50 mL/min), rounded to 250 mg steps and
   infused at no more than 1 g/h (at least 1 h): the model's ``[dosing]`` table.
   Three administrations (0, tau, 2 tau h).
4. **Two levels**: a random level (LOINC 20578-1) 1 h after the end of the second infusion
   and a trough (4092-3) 0.5 h before the third dose, from the closed-form two-compartment
   solution (:func:`medtwin.pharmacology.pk.concentrations`) with the model's combined
   residual error ``y = f (1 + eps_prop) + eps_add`` (Table 2: 22.7 %, 3.4 mg/L). A draw
   below 1 mg/L (an assay's usual lower limit) is drawn again; levels are rounded to 0.1 mg/L.

The course is written as a FHIR transaction Bundle of ``MedicationAdministration`` and
``Observation`` resources whose subject is the patient's medical-record number (a logical
reference), imported after the patients with ``medtwin import``. The truth (etas,
individual parameters, noise-free concentrations) goes to ``truth.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import pathlib
import random
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medtwin.model.base import OutsidePopulationError
from medtwin.pharmacology.antibiotics import get_pop_model
from medtwin.pharmacology.covariates import PatientCovariates
from medtwin.pharmacology.pk import Dose, concentrations

__all__ = [
    "MODEL",
    "VancomycinCourse",
    "course_bundle",
    "vancomycin_course",
    "warfarin_bundle",
    "warfarin_course",
    "write_pharmacy",
]

MODEL = "vancomycin_goti2018"
MRN_SYSTEM = "https://medtwin.org/fhir/sid/synthetic-mrn"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
TAG_SYSTEM = "https://medtwin.org/fhir/tags"
VANCOMYCIN_RXNORM = "11124"
RANDOM_LOINC = ("20578-1", "Vancomycin [Mass/volume] in Serum or Plasma")
TROUGH_LOINC = ("4092-3", "Vancomycin [Mass/volume] in Serum or Plasma --trough")
MAINTENANCE_MG_PER_KG = 15.0  # Rybak 2020: 15-20 mg/kg every 8-12 h
SLOW_INTERVAL_BELOW_CRCL = 50.0  # every 24 h below this CrCL (mL/min)
LLOQ_MG_L = 1.0
_NS = uuid.UUID("1b0e8a40-2f55-4c1e-9a55-3d0f4a7c6e21")
SNOMED = "http://snomed.info/sct"
_CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
WARFARIN_ORDER_RXNORM = "855332"
"""Warfarin Sodium 5 MG Oral Tablet (RxNorm SCD), the warfarin start's order."""

Json = dict[str, Any]
VancomycinCourse = dict[str, Any]


def _latest(bundle: Mapping[str, Any], code: str) -> tuple[float, str] | None:
    best: tuple[str, float, str] | None = None
    for entry in bundle.get("entry", ()):
        r = entry["resource"]
        if r.get("resourceType") != "Observation" or "valueQuantity" not in r:
            continue
        if not any(c.get("code") == code for c in r["code"].get("coding", ())):
            continue
        when = str(r.get("effectiveDateTime", ""))
        if best is None or when > best[0]:
            best = (when, float(r["valueQuantity"]["value"]), str(r["valueQuantity"].get("unit")))
    return None if best is None else (best[1], best[2])


def _round_step(x: float, step: float) -> float:
    return max(step, step * round(x / step))


def vancomycin_course(
    bundle: Mapping[str, Any], seed: int, index: int, start: dt.datetime
) -> VancomycinCourse | None:
    """The simulated course of one patient starting at ``start`` (``None``: outside the model).

    Returns the truth (covariates, etas, parameters, doses, levels) as a JSON-ready dict.
    """
    pop = get_pop_model(MODEL)
    patient = bundle["entry"][0]["resource"]
    birth = dt.date.fromisoformat(patient["birthDate"])
    age = (start.date() - birth).days / 365.25
    weight = _latest(bundle, "29463-7")
    height = _latest(bundle, "8302-2")
    scr = _latest(bundle, "2160-0")
    if weight is None or scr is None or patient.get("gender") not in ("male", "female"):
        return None
    creatinine = scr[0] / 88.42 if "umol" in scr[1].lower() else scr[0]
    cov: dict[str, Any] = {
        "age_years": round(age, 2),
        "sex": patient["gender"],
        "weight_kg": weight[0],
        "creatinine_mg_dl": creatinine,
    }
    if height is not None:
        cov["height_cm"] = height[0]
    pt = PatientCovariates.from_dict(cov)
    try:
        crcl = pop.check_patient(pt)
        typical = pop.typical(pt)
    except OutsidePopulationError:
        return None
    rng = np.random.default_rng(
        random.Random(f"medtwin.synth.pharmacy:{seed}:{index}").getrandbits(64)
    )
    etas = rng.multivariate_normal(np.zeros(len(pop.eta_names)), pop.omega)
    params = pop.from_typical(typical, etas)
    a, lam = pop.modes(params)
    d = pop.dosing
    weight_kg = pop.dosing_weight_kg(pt)
    step = float(d["dose_step_mg"])
    loading = min(
        _round_step(float(d["loading_mg_per_kg"]) * weight_kg, step), float(d["loading_max_mg"])
    )
    maintenance = min(_round_step(MAINTENANCE_MG_PER_KG * weight_kg, step), float(d["dose_max_mg"]))
    tau = 24.0 if crcl < SLOW_INTERVAL_BELOW_CRCL else 12.0

    def infusion_h(amount: float) -> float:
        hours = max(float(d["min_infusion_h"]), amount / float(d["max_rate_mg_per_h"]))
        return float(d["infusion_step_h"]) * math.ceil(hours / float(d["infusion_step_h"]) - 1e-9)

    doses = [Dose(0.0, loading, infusion_h(loading))] + [
        Dose(k * tau, maintenance, infusion_h(maintenance)) for k in (1, 2)
    ]
    t_random = tau + doses[1].duration_h + 1.0
    t_trough = 2 * tau - 0.5
    true = concentrations(a, lam, doses, np.array([t_random, t_trough]))[0]
    res = pop.residual
    measured = []
    for f in true:
        while True:
            y = f * (1.0 + rng.normal(0.0, res.proportional)) + rng.normal(0.0, res.additive_mg_l)
            if y >= LLOQ_MG_L:
                break
        measured.append(round(float(y), 1))
    return {
        "index": index,
        "mrn": f"SYN-{seed}-{index}",
        "model": MODEL,
        "start": start.isoformat(),
        "covariates": cov,
        "crcl_ml_min": round(float(crcl), 2),
        "etas": {n: float(e) for n, e in zip(pop.eta_names, etas, strict=True)},
        "parameters": dict(zip(pop.model.parameter_names(), params[0].tolist(), strict=True)),
        "doses": [
            {"t_h": x.t_h, "amount_mg": x.amount_mg, "duration_h": x.duration_h} for x in doses
        ],
        "levels": [
            {
                "t_h": t_random,
                "loinc": RANDOM_LOINC[0],
                "true_mg_l": float(true[0]),
                "conc_mg_l": measured[0],
            },
            {
                "t_h": t_trough,
                "loinc": TROUGH_LOINC[0],
                "true_mg_l": float(true[1]),
                "conc_mg_l": measured[1],
            },
        ],
    }


def _iso(start: dt.datetime, hours: float) -> str:
    return (start + dt.timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def course_bundle(course: VancomycinCourse) -> Json:
    """The course as a FHIR R4 transaction Bundle (subject: the MRN, a logical reference)."""
    start = dt.datetime.fromisoformat(course["start"])
    subject = {"identifier": {"system": MRN_SYSTEM, "value": course["mrn"]}}
    meta = {"tag": [{"system": TAG_SYSTEM, "code": "synthetic", "display": "Synthetic data"}]}
    resources: list[Json] = []
    for k, dose in enumerate(course["doses"]):
        amount = dose["amount_mg"]
        resources.append(
            {
                "resourceType": "MedicationAdministration",
                "id": str(uuid.uuid5(_NS, f"{course['mrn']}:dose:{k}")),
                "meta": meta,
                "status": "completed",
                "medicationCodeableConcept": {
                    "coding": [
                        {"system": RXNORM, "code": VANCOMYCIN_RXNORM, "display": "vancomycin"}
                    ],
                    "text": f"vancomycin {amount:g} mg IV",
                },
                "subject": subject,
                "effectivePeriod": {
                    "start": _iso(start, dose["t_h"]),
                    "end": _iso(start, dose["t_h"] + dose["duration_h"]),
                },
                "dosage": {
                    "route": {"text": "intravenous"},
                    "dose": {"value": amount, "unit": "mg", "system": UCUM, "code": "mg"},
                },
            }
        )
    for k, level in enumerate(course["levels"]):
        code, display = RANDOM_LOINC if level["loinc"] == RANDOM_LOINC[0] else TROUGH_LOINC
        resources.append(
            {
                "resourceType": "Observation",
                "id": str(uuid.uuid5(_NS, f"{course['mrn']}:level:{k}")),
                "meta": meta,
                "status": "final",
                "category": [{"coding": [{"system": _OBSERVATION_CATEGORY, "code": "laboratory"}]}],
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                "subject": subject,
                "effectiveDateTime": _iso(start, level["t_h"]),
                "valueQuantity": {
                    "value": level["conc_mg_l"],
                    "unit": "mg/L",
                    "system": UCUM,
                    "code": "mg/L",
                },
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


def write_pharmacy(
    patient_files: Sequence[pathlib.Path],
    seed: int,
    out_dir: pathlib.Path,
    *,
    count: int,
    today: dt.date,
    warfarin: int = 0,
) -> list[pathlib.Path]:
    """Give the first ``count`` patients inside the model's population a vancomycin course,
    and the first ``warfarin`` patients inside Hamberg 2007's a warfarin start.

    Writes ``out_dir/fhir/vancomycin-XXXXX.json`` / ``warfarin-XXXXX.json`` (one Bundle per
    course; import them after the patients) and ``out_dir/truth.json``. The vancomycin course
    starts 3 days before ``today`` at 08:00 UTC, the warfarin start 15 days before at 18:00.
    Returns the files written (truth last).
    """
    if count < 0 or warfarin < 0:
        raise ValueError(f"--vancomycin / --warfarin must be 0 or more, got {count}, {warfarin}")
    folder = pathlib.Path(out_dir) / "fhir"
    folder.mkdir(parents=True, exist_ok=True)
    start = dt.datetime.combine(today - dt.timedelta(days=3), dt.time(8, 0), tzinfo=dt.UTC)
    written: list[pathlib.Path] = []
    courses: list[VancomycinCourse] = []
    for path in patient_files:
        if len(courses) >= count:
            break
        bundle = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
        index = int(pathlib.Path(path).stem.split("-")[-1])
        course = vancomycin_course(bundle, seed, index, start)
        if course is None:
            continue
        target = folder / f"vancomycin-{index:05d}.json"
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(json.dumps(course_bundle(course), indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, target)
        written.append(target)
        courses.append(course)
    w_start = dt.datetime.combine(today - dt.timedelta(days=15), dt.time(18, 0), tzinfo=dt.UTC)
    starts: list[VancomycinCourse] = []
    for path in patient_files:
        if len(starts) >= warfarin:
            break
        bundle = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
        index = int(pathlib.Path(path).stem.split("-")[-1])
        w_course = warfarin_course(bundle, seed, index, w_start)
        if w_course is None:
            continue
        target = folder / f"warfarin-{index:05d}.json"
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(
            json.dumps(warfarin_bundle(w_course), indent=1) + "\n", encoding="utf-8"
        )
        os.replace(temporary, target)
        written.append(target)
        starts.append(w_course)
    truth = pathlib.Path(out_dir) / "truth.json"
    document = {
        "model": MODEL,
        "courses": courses,
        "warfarin_model": WARFARIN_MODEL,
        "warfarin": starts,
    }
    truth.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    written.append(truth)
    return written


# ------------------------------------------------------------------------------- warfarin
WARFARIN_MODEL = "warfarin_hamberg2007"
WARFARIN_RXNORM = "11289"
INR_LOINC = ("6301-6", "INR in Platelet poor plasma by Coagulation assay")
WARFARIN_DAILY_MG = 5.0  # ACCP 2012 (Holbrook A et al. Chest 2012;141:e152S): start 5-10 mg
WARFARIN_DAYS = 14
INR_DAYS = (3, 5, 7, 10, 14)  # INR mornings (08:00) after the first evening dose


def warfarin_course(
    bundle: Mapping[str, Any], seed: int, index: int, start: dt.datetime
) -> VancomycinCourse | None:
    """A simulated warfarin start (Hamberg 2007 PK/PD with the patient's drawn genotype).

    5 mg every evening for 14 days (``start`` is the first dose), INR measured at 08:00 on
    days 3, 5, 7, 10 and 14 with [Hamberg 2007 Table 4]'s residual error. CYP2C9 and VKORC1
    come from :func:`medtwin.synth.genotypes.patient_genotype` (the same draw as the VCF);
    ``None`` when the patient is outside 18-95 years or the CYP2C9 diplotype is not one of
    the model's six (``*1``, ``*2``, ``*3`` combinations).
    """
    from medtwin.model import parse_scenario, simulate
    from medtwin.model.base import ModelError
    from medtwin.pharmacology.warfarin import WarfarinHamberg2007, observe, sample_population
    from medtwin.synth.genotypes import patient_genotype

    patient = bundle["entry"][0]["resource"]
    age = (start.date() - dt.date.fromisoformat(patient["birthDate"])).days / 365.25
    genotype = patient_genotype(seed, index)
    cyp = "/".join(sorted(genotype.diplotypes["CYP2C9"]))
    n_a = sum("variant" in a for a in genotype.diplotypes["VKORC1"])
    vk = ("GG", "GA", "AA")[n_a]
    draw = random.Random(f"medtwin.synth.warfarin:{seed}:{index}")
    try:
        params = sample_population(1, age, cyp, vk, seed=draw.getrandbits(63))
    except (ModelError, OutsidePopulationError):
        return None
    scenario = parse_scenario(
        [
            {
                "type": "oral",
                "drug": "warfarin",
                "t_h": 0,
                "amount_mg": WARFARIN_DAILY_MG,
                "every_h": 24,
                "count": WARFARIN_DAYS,
            }
        ]
    )
    first_morning = 14.0  # 18:00 dose -> 08:00 next day
    times = [first_morning + 24.0 * (d - 1) for d in INR_DAYS]
    result = simulate(WarfarinHamberg2007, params, scenario, t_end=max(times), times=times)
    inr = np.asarray(result.observables["inr"][0], dtype=np.float64)
    true = inr[np.searchsorted(np.asarray(result.times), times)]  # 0 is always in the output
    measured = observe(true, "inr", seed=draw.getrandbits(63))
    return {
        "index": index,
        "mrn": f"SYN-{seed}-{index}",
        "model": WARFARIN_MODEL,
        "start": start.isoformat(),
        "age_years": round(age, 2),
        "cyp2c9": cyp,
        "vkorc1_1639": vk,
        "parameters": dict(
            zip([p.name for p in WarfarinHamberg2007.parameters], params[0].tolist(), strict=True)
        ),
        "doses": [{"t_h": 24.0 * k, "amount_mg": WARFARIN_DAILY_MG} for k in range(WARFARIN_DAYS)],
        "levels": [
            {"t_h": t, "loinc": INR_LOINC[0], "true_inr": float(f), "inr": round(float(y), 1)}
            for t, f, y in zip(times, true, measured, strict=True)
        ],
    }


def warfarin_bundle(course: VancomycinCourse) -> Json:
    """The warfarin course as a FHIR R4 transaction Bundle: its indication, the order, the oral
    doses and the INR results.

    The indication is atrial fibrillation (SNOMED CT 49436004), diagnosed two days before the
    first dose: the most common reason for long-term warfarin (medtwin's choice for the demo;
    it lets ``medtwin risk`` show the patient's CHA2DS2-VASc and HAS-BLED). The order is
    warfarin sodium 5 mg every evening (RxNorm 855332), active from the first dose.
    """
    start = dt.datetime.fromisoformat(course["start"])
    subject = {"identifier": {"system": MRN_SYSTEM, "value": course["mrn"]}}
    meta = {"tag": [{"system": TAG_SYSTEM, "code": "synthetic", "display": "Synthetic data"}]}
    diagnosed = (start - dt.timedelta(days=2)).isoformat()
    af_id = str(uuid.uuid5(_NS, f"{course['mrn']}:warfarin:indication"))
    resources: list[Json] = [
        {
            "resourceType": "Condition",
            "id": af_id,
            "meta": meta,
            "clinicalStatus": {"coding": [{"system": _CONDITION_CLINICAL, "code": "active"}]},
            "verificationStatus": {
                "coding": [{"system": _CONDITION_VERIFICATION, "code": "confirmed"}]
            },
            "category": [
                {"coding": [{"system": _CONDITION_CATEGORY, "code": "problem-list-item"}]}
            ],
            "code": {
                "coding": [
                    {"system": SNOMED, "code": "49436004", "display": "Atrial fibrillation"}
                ],
                "text": "Atrial fibrillation",
            },
            "subject": subject,
            "onsetDateTime": diagnosed,
            "recordedDate": diagnosed,
        },
        {
            "resourceType": "MedicationRequest",
            "id": str(uuid.uuid5(_NS, f"{course['mrn']}:warfarin:order")),
            "meta": meta,
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [
                    {
                        "system": RXNORM,
                        "code": WARFARIN_ORDER_RXNORM,
                        "display": "Warfarin Sodium 5 MG Oral Tablet",
                    }
                ],
                "text": "warfarin 5 mg every evening",
            },
            "subject": subject,
            "authoredOn": start.isoformat(),
            "reasonReference": [{"reference": f"urn:uuid:{af_id}"}],
            "dosageInstruction": [{"text": "5 mg by mouth every evening"}],
        },
    ]
    for k, dose in enumerate(course["doses"]):
        resources.append(
            {
                "resourceType": "MedicationAdministration",
                "id": str(uuid.uuid5(_NS, f"{course['mrn']}:warfarin:{k}")),
                "meta": meta,
                "status": "completed",
                "medicationCodeableConcept": {
                    "coding": [{"system": RXNORM, "code": WARFARIN_RXNORM, "display": "warfarin"}],
                    "text": f"warfarin {dose['amount_mg']:g} mg oral",
                },
                "subject": subject,
                "effectiveDateTime": _iso(start, dose["t_h"]),
                "dosage": {
                    "route": {"text": "oral"},
                    "dose": {
                        "value": dose["amount_mg"],
                        "unit": "mg",
                        "system": UCUM,
                        "code": "mg",
                    },
                },
            }
        )
    for k, level in enumerate(course["levels"]):
        resources.append(
            {
                "resourceType": "Observation",
                "id": str(uuid.uuid5(_NS, f"{course['mrn']}:inr:{k}")),
                "meta": meta,
                "status": "final",
                "category": [{"coding": [{"system": _OBSERVATION_CATEGORY, "code": "laboratory"}]}],
                "code": {
                    "coding": [{"system": LOINC, "code": INR_LOINC[0], "display": INR_LOINC[1]}]
                },
                "subject": subject,
                "effectiveDateTime": _iso(start, level["t_h"]),
                "valueQuantity": {
                    "value": level["inr"],
                    "unit": "{INR}",
                    "system": UCUM,
                    "code": "{INR}",
                },
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }
