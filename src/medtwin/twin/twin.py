"""The Twin: one patient's record plus a calibrated model, asked "what next?" and "what if?".

Typical use (the tests run it on a store of their own: ``tests/twin/test_twin.py``)::

    twin = Twin.from_store(store, "SYN-42-3", model="uva_padova_2008", days=7)
    twin.fit()                                  # MAP + Laplace on the patient's own CGM
    twin.save(store)                            # kept in the store's twins table
    f = twin.forecast(2.0)                      # the next 2 hours, with bands
    c = twin.whatif({"smaller dinner": [...]})  # a Comparison with bands and metrics

Reading the record (:func:`patient_data`): every model observable is read from the facts whose
LOINC codes it lists (``Observable.loinc``), converted to the observable's unit; events are
read by :data:`EVENT_READERS` (carbohydrate intake observations -> ``meal``; insulin
administrations -> ``bolus`` (a dose) or ``basal`` (a rate)). What did not happen is not read:
a cancelled reading (:data:`~medtwin.record.facts.VOID_RESULT_STATUSES`), a dose not given
(:data:`~medtwin.record.facts.NOT_DONE_STATUSES`). A reading sent as a bound (a CGM's "LOW"
as "<40", "HIGH" as ">400") is kept as one (``PatientData.censored``), for calibration and
assimilation to fit as censored. Times become minutes from the start of the window. Before fitting, the model's :meth:`~medtwin.model.Model.check_population`
sees what the record says about the patient (:func:`characteristics`), so a twin refuses a
patient its model was not built for.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from medtwin.model.base import FloatArray, Model
from medtwin.model.events import Scenario, parse_scenario
from medtwin.model.registry import get_model
from medtwin.record.facts import NOT_DONE_STATUSES, VOID_RESULT_STATUSES, value_comparator
from medtwin.twin.data import (
    CENSORED_BY_COMPARATOR,
    EXACT,
    DataError,
    IntArray,
    PatientData,
)

if TYPE_CHECKING:
    from medtwin.store.base import Store, StoredFact
    from medtwin.twin.assimilate import Forecast
    from medtwin.twin.scenario import Comparison

__all__ = [
    "CARB_INTAKE_CODES",
    "EVENT_READERS",
    "INSULIN_PATTERN",
    "INTRAVENOUS_ROUTES",
    "NOT_RAPID_INSULIN",
    "ORAL_ROUTES",
    "Twin",
    "characteristics",
    "dose_events",
    "patient_data",
]

CARB_INTAKE_CODES: tuple[str, ...] = ("9059-7",)
"""LOINC codes of carbohydrate eaten (grams), read as ``meal`` events."""

INSULIN_PATTERN = re.compile(
    r"insulin|humalog|novolog|novorapid|fiasp|apidra|lyumjev|admelog|actrapid|afrezza|"
    r"humulin|novolin|lantus|levemir|tresiba|toujeo|basaglar|semglee|rezvoglar|mixtard|"
    r"novomix|insulatard|ryzodeg",
    re.IGNORECASE,
)
"""Medication administrations whose code display matches are insulin: the word, or a brand
written alone ("Humalog KwikPen", as a ward's administration record may name it)."""

NOT_RAPID_INSULIN = re.compile(
    r"glargine|detemir|degludec|icodec|lantus|levemir|tresiba|toujeo|basaglar|abasaglar|"
    r"semglee|rezvoglar|isophane|\bNPH\b|humulin\s*n\b|novolin\s*n\b|insulatard|protaphane|"
    r"long[- ]acting|intermediate[- ]acting|ultra[- ]long|premix|\bmix\b|mixtard|novomix|"
    r"ryzodeg|"
    r"\d+\s*/\s*\d+",
    re.IGNORECASE,
)
"""Insulins that are not rapid- or short-acting, by name: the long-acting analogues (glargine,
detemir, degludec, icodec and their brands), intermediate-acting NPH (isophane) and premixed
insulins ("70/30", "Humalog Mix 75/25"). The UVA/Padova model's subcutaneous insulin is
monomeric and non-monomeric insulin absorbed with one set of rate constants (kd, ka1, ka2:
Dalla Man C, Raimondo DM, Rizza RA, Cobelli C. GIM, simulation software of meal glucose-insulin
model. J Diabetes Sci Technol 2007;1(3):323-330), the insulin of a pump given as a basal rate
and boluses in the T1D simulator (Kovatchev BP et al. J Diabetes Sci Technol 2009;3(1):44-55).
A basal analogue is absorbed over about 24 h (glargine: Lepore M et al. Diabetes
2000;49(12):2142-2148), which those constants do not describe, so a record with such an
injection in the window is refused (:func:`_refuse_other_insulin`), not read as a bolus of
rapid insulin."""

INTRAVENOUS_ROUTES = ("intravenous", "47625008", "iv")
"""Routes of insulin given into a vein (text, SNOMED CT 47625008 Intravenous route): not the
subcutaneous insulin of the model, refused like a long-acting injection."""

FILTER_DEFAULTS: dict[str, dict[str, Any]] = {
    "uva_padova_2008": {
        "process_noise": {"gp_mg_per_kg": 0.3},
        "rejuvenate": ("vmx_mg_per_kg_min_per_pmol_l",),
    },
}
"""Particle-filter options per model for :meth:`Twin.forecast`. UVA/Padova: relative process
noise 0.3 per sqrt(hour) on plasma glucose mass (the best of 0.1-0.5 by likelihood on the
synthetic day of ``tests/twin/test_assimilate.py``; not yet checked on real data) and
rejuvenation of insulin sensitivity, which drifts day to day."""

EVENT_LOOKBACK = dt.timedelta(days=2)
"""How far before the window events are read, for standing events (basal rates, diets)."""

WEIGHT_CODE = "29463-7"
HEIGHT_CODE = "8302-2"


def _minutes(t: dt.datetime, start: dt.datetime) -> float:
    return (t - start).total_seconds() / 60.0


def _meal_events(facts: Sequence[StoredFact], start: dt.datetime) -> list[dict[str, Any]]:
    out = []
    for sf in facts:
        f = sf.fact
        grams = getattr(f, "value_num", None)
        if f.effective_start is None or grams is None or grams <= 0:
            continue
        if f.status in VOID_RESULT_STATUSES:
            continue  # an intake recorded in error is no meal
        out.append({"type": "meal", "t_min": _minutes(f.effective_start, start), "carbs_g": grams})
    return out


def _insulin_events(facts: Sequence[StoredFact], start: dt.datetime) -> list[dict[str, Any]]:
    out = []
    for sf in facts:
        f = sf.fact
        if f.kind != "MedicationAdministration" or f.effective_start is None:
            continue
        if f.status in NOT_DONE_STATUSES:
            continue  # a bolus not given
        display = (f.code.display or "") if f.code is not None else ""
        if not INSULIN_PATTERN.search(display):
            continue
        _refuse_other_insulin(f, display)
        t = _minutes(f.effective_start, start)
        rate = getattr(f, "rate_value", None)
        dose = getattr(f, "dose_value", None)
        if rate is not None and (getattr(f, "rate_unit", "") or "").lower() in {"u/h", "[iu]/h"}:
            out.append({"type": "basal", "t_min": max(t, 0.0), "u_per_h": rate})
        elif dose is not None and (getattr(f, "dose_unit", "") or "").lower() in {"u", "[iu]"}:
            out.append({"type": "bolus", "t_min": t, "insulin_u": dose})
    return out


def _refuse_other_insulin(f: Any, display: str) -> None:
    """Refuse (:class:`DataError` naming the fact) an insulin the model does not take: a
    long-acting, intermediate-acting or premixed insulin (:data:`NOT_RAPID_INSULIN`), or any
    insulin into a vein (:data:`INTRAVENOUS_ROUTES`). Left out, the insulin given would be
    missing from the fit; read as a bolus, 20 U of glargine would act as 20 U of lispro."""
    when = f"{f.effective_start:%Y-%m-%d %H:%M}" if f.effective_start is not None else "?"
    route = (getattr(f, "route", "") or "").lower()
    if NOT_RAPID_INSULIN.search(display):
        raise DataError(
            f"MedicationAdministration {f.source_id} ({when}): {display!r} is not a rapid- or "
            "short-acting insulin. The model takes subcutaneous rapid-acting insulin only (a "
            "pump's basal rate and boluses), so a twin cannot be fitted over a window with a "
            "long-acting, intermediate or premixed insulin injection: choose a window without "
            "one (--until / --days), or a patient on a pump"
        )
    if "afrezza" in display.lower() or "inhal" in route:
        raise DataError(
            f"MedicationAdministration {f.source_id} ({when}): {display!r} is inhaled "
            "insulin; the model takes subcutaneous insulin only"
        )
    words = set(re.split(r"[^a-z0-9]+", route))
    if any(r in words for r in INTRAVENOUS_ROUTES) or "intravenous" in route:
        raise DataError(
            f"MedicationAdministration {f.source_id} ({when}): {display!r} was given "
            f"intravenously (route {route!r}); the model takes subcutaneous insulin only"
        )


ORAL_ROUTES = ("oral", "mouth", "26643006")
"""Routes read as an ``oral`` dose (text, or SNOMED CT 26643006 Oral route); others are
``infusion`` events (a bolus when the administration has no end)."""


def dose_events(
    facts: Sequence[StoredFact], start: dt.datetime, drugs: Sequence[str]
) -> list[dict[str, Any]]:
    """Administrations of ``drugs`` (their code's display or code names one, as a word) as
    ``oral`` or ``infusion`` events in mg; a dose of one of them in another unit is refused
    (:class:`DataError` naming the fact), since a dose left out would bias the fit."""
    patterns = [(d, re.compile(rf"\b{re.escape(d)}\b", re.IGNORECASE)) for d in drugs]
    out: list[dict[str, Any]] = []
    for sf in facts:
        f = sf.fact
        if f.kind != "MedicationAdministration" or f.effective_start is None or f.code is None:
            continue
        if f.status in NOT_DONE_STATUSES:
            continue  # a dose not given is no dose
        text = " ".join(x for x in (f.code.display or "", f.code.code or "") if x)
        drug = next((d for d, pattern in patterns if pattern.search(text)), None)
        if drug is None:
            continue
        value = getattr(f, "dose_value", None)
        unit = (getattr(f, "dose_unit", "") or "").lower()
        if value is None or unit not in {"mg", "g"}:
            raise DataError(
                f"MedicationAdministration {f.source_id}: the {drug} dose is "
                f"{value!r} {unit!r}: the model needs it in mg or g"
            )
        amount = float(value) * (1000.0 if unit == "g" else 1.0)
        t = _minutes(f.effective_start, start)
        route = (getattr(f, "route", "") or "").lower()
        if any(r in route for r in ORAL_ROUTES):
            out.append({"type": "oral", "t_min": t, "drug": drug, "amount_mg": amount})
        else:
            end = f.effective_end
            minutes = 0.0 if end is None else max(_minutes(end, f.effective_start), 0.0)
            out.append(
                {
                    "type": "infusion",
                    "t_min": t,
                    "drug": drug,
                    "amount_mg": amount,
                    "duration_min": minutes,
                }
            )
    return out


@dataclass(frozen=True)
class EventReader:
    """Reads one kind of event from the record: which facts, and how they become events."""

    name: str
    codes: tuple[str, ...]
    kinds: tuple[str, ...]
    read: Callable[[Sequence[StoredFact], dt.datetime], list[dict[str, Any]]]


EVENT_READERS: dict[str, EventReader] = {
    "meal": EventReader("meal", CARB_INTAKE_CODES, ("Observation",), _meal_events),
    "insulin": EventReader("insulin", (), ("MedicationAdministration",), _insulin_events),
}
"""Event readers by name; a model takes the events its ``event_types`` list."""


def characteristics(store: Store, patient_id: str, at: dt.datetime) -> dict[str, Any]:
    """What the record says about the patient at ``at``: age, sex, weight, height, conditions,
    medication orders.

    Keys are present only when the record has them (``age_y``, ``sex``, ``weight_kg``,
    ``height_m``, ``conditions`` as ``system|code`` strings of active conditions, the system
    as its canonical URL, e.g. ``http://snomed.info/sct|46635009``); ``at`` is the time they
    describe (the age is at that time). ``pregnancies``: the pregnancies the record shows, as
    ``(start, end, basis)`` intervals in UTC epoch seconds
    (:func:`medtwin.risk.context.patient_context`), when there are any (a body-weight fit leaves
    them out). ``medication_orders`` (always present, perhaps empty)
    holds every medication order of the record as a
    :class:`~medtwin.record.medications.MedicationOrder`, also those after ``at`` (a renewal
    shows an earlier order was still taken), so a fit can tell readings apart by the
    treatment they were taken under.
    """
    from medtwin.record.codes import system_alias
    from medtwin.record.medications import order_from_fact

    out: dict[str, Any] = {"at": at}
    summary = store.patient(patient_id)
    if summary.birth_date:
        try:
            born = dt.date.fromisoformat(summary.birth_date[:10])
            out["age_y"] = (at.date() - born).days / 365.25
            out["birth_date"] = born
        except ValueError:
            pass
    if summary.gender in {"female", "male"}:
        out["sex"] = summary.gender
    latest = store.latest(patient_id, codes=[WEIGHT_CODE, HEIGHT_CODE], as_of=None)
    weight = latest.get(WEIGHT_CODE)
    if weight is not None and getattr(weight.fact, "value_num", None) is not None:
        out["weight_kg"] = float(weight.fact.value_num)  # type: ignore[attr-defined]
    height = latest.get(HEIGHT_CODE)
    if height is not None and getattr(height.fact, "value_num", None) is not None:
        value = float(height.fact.value_num)  # type: ignore[attr-defined]
        out["height_m"] = value / 100.0 if value > 3 else value
    conditions = set()
    recorded = store.timeline(patient_id, kinds=["Condition"], include_raw=True)
    for sf in recorded:
        f = sf.fact
        if f.effective_start is None or f.effective_start >= at:
            continue  # begun after the time described
        status = getattr(f, "clinical_status", None)
        if f.code is None or status in {"resolved", "inactive", "remission"}:
            continue
        if getattr(f, "verification_status", None) in {"refuted", "entered-in-error"}:
            continue  # ruled out: not the patient's condition
        conditions.add(f"{system_alias(f.code.system)}|{f.code.code}")
    out["conditions"] = conditions
    from medtwin.risk.context import patient_context

    pregnancies = patient_context(store, patient_id, conditions=recorded).pregnancies
    if pregnancies:
        out["pregnancies"] = pregnancies
    orders = []
    for sf in store.timeline(patient_id, kinds=["MedicationRequest"]):
        order = order_from_fact(sf.fact, sf.recorded_at, sf.id)
        if order is not None:
            orders.append(order)
    out["medication_orders"] = tuple(orders)
    return out


def patient_data(
    store: Store,
    patient_id: str,
    model: type[Model],
    *,
    start: dt.datetime,
    end: dt.datetime,
    as_of: dt.datetime | None = None,
) -> PatientData:
    """The patient's observations (the model's observables, by LOINC) and events in
    ``[start, end]``, on a minute axis from ``start``.

    Events are read from :data:`EVENT_LOOKBACK` earlier, so that a standing event recorded
    before ``start`` (the basal rate a pump set yesterday) is in force at minute 0.
    """
    from medtwin.record.units import convert

    requested = start
    start = requested - EVENT_LOOKBACK
    observations: dict[str, tuple[FloatArray, FloatArray]] = {}
    censored: dict[str, IntArray] = {}
    fact_ids: list[int] = []
    skipped: list[str] = []
    end = end + dt.timedelta(microseconds=1)  # the store's end is exclusive; ours includes it
    for obs in model.observables:
        if not obs.loinc:
            continue
        facts = store.timeline(
            patient_id, codes=list(obs.loinc), start=requested, end=end, as_of=as_of
        )
        if not obs.unit and any(getattr(sf.fact, "unit", None) for sf in facts):
            raise DataError(
                f"model {model.name!r}: observable {obs.name!r} has no unit, so readings of "
                f"LOINC {', '.join(obs.loinc)} cannot be converted to it: give its unit (an "
                "SBML model: units={name: UCUM}, 'medtwin ... --unit NAME=UCUM')"
            )
        times, values, bounds = [], [], []
        for sf in facts:
            f = sf.fact
            value = getattr(f, "value_num", None)
            if value is None or f.effective_start is None or f.status in VOID_RESULT_STATUSES:
                continue
            unit = getattr(f, "unit", None)
            if unit and unit != obs.unit:
                try:
                    analyte = f.code.code if f.code is not None else None
                    value = convert(float(value), unit, obs.unit, analyte=analyte)
                except ValueError as exc:
                    # kept in the store, not used: said with the data (and the calibration)
                    skipped.append(f"{f.kind} {f.source_id}: {obs.name}: {exc}")
                    continue
            times.append(_minutes(f.effective_start, start))
            values.append(float(value))
            # "<40" (a sensor's LOW): a bound, fitted as one (censored), never as 40
            bounds.append(CENSORED_BY_COMPARATOR.get(value_comparator(f) or "", EXACT))
            fact_ids.append(sf.id)
        if times:
            observations[obs.name] = (np.asarray(times), np.asarray(values))
            if any(bounds):
                censored[obs.name] = np.asarray(bounds, dtype=np.int64)
    raw_events: list[dict[str, Any]] = []
    for reader in EVENT_READERS.values():
        facts = store.timeline(
            patient_id,
            codes=list(reader.codes),
            kinds=list(reader.kinds),
            start=start,
            end=end,
            as_of=as_of,
        )
        events = reader.read(facts, start)
        raw_events += [e for e in events if e["type"] in model.event_types]
        fact_ids += [sf.id for sf in facts]
    drugs = tuple(getattr(model, "dose_drugs", ()))
    if drugs:  # a model that doses named drugs (an SBML model loaded with doses=)
        facts = store.timeline(
            patient_id, kinds=["MedicationAdministration"], start=start, end=end, as_of=as_of
        )
        raw_events += dose_events(facts, start, drugs)
        fact_ids += [sf.id for sf in facts]
    scenario = parse_scenario(raw_events) if raw_events else Scenario(events=())
    whole = PatientData(
        observations=observations,
        scenario=scenario,
        start=start,
        patient=patient_id,
        fact_ids=tuple(fact_ids),
        skipped=tuple(skipped),
        censored=censored,
    )
    offset = _minutes(requested, start)
    return whole.window(offset, _minutes(end, start))


@dataclass
class Twin:
    """One patient's data and a model, calibrated (or not yet) to them."""

    model: type[Model]
    data: PatientData
    characteristics: Mapping[str, Any] = field(default_factory=dict)
    calibration: Any = None
    """A :class:`medtwin.twin.calibrate.Calibration` once fitted or loaded."""
    stored_id: int | None = None

    @classmethod
    def from_store(
        cls,
        store: Store,
        patient: str,
        *,
        model: str | type[Model] = "uva_padova_2008",
        days: float = 7.0,
        end: dt.datetime | None = None,
        as_of: dt.datetime | None = None,
        load: bool = True,
    ) -> Twin:
        """The twin of ``patient`` over the last ``days`` of data up to ``end`` (default: the
        patient's latest reading of the model's observables); with ``load``, the patient's
        latest stored calibration of the model is attached when there is one.

        Raises :class:`~medtwin.model.base.OutsidePopulationError` when the model is not valid
        for the patient, and :class:`DataError` when the record has none of the model's
        observables.
        """
        m = get_model(model) if isinstance(model, str) else model
        pid = store.resolve_patient(patient)
        if end is None:
            codes = [c for o in m.observables for c in o.loinc]
            latest = store.latest(pid, codes=codes, as_of=as_of)
            times = [sf.fact.effective_start for sf in latest.values() if sf.fact.effective_start]
            if not times:
                raise DataError(
                    f"patient {patient}: no readings of {', '.join(o.name for o in m.observables)}"
                    f" (LOINC {', '.join(codes)}) in the record"
                )
            end = max(times)
        start = end - dt.timedelta(days=days)
        who = characteristics(store, pid, end)
        m.check_population(who)
        stored = store.latest_twin(pid, m.name) if load else None
        calibration = None
        if stored is not None:
            from medtwin.twin.calibrate import Calibration, fit_spec

            calibration = Calibration.from_dict(stored.calibration, model=m)
            begun = calibration.provenance.get("start")
            if fit_spec(m).anchored and begun:
                # the model's initial state is the patient's at the calibration's start
                start = dt.datetime.fromisoformat(str(begun))
                if start >= end:
                    raise DataError(
                        f"patient {patient}: the stored {m.name} twin #{stored.id} starts at "
                        f"{start.isoformat()}, after the end of the data asked for"
                    )
        data = patient_data(store, pid, m, start=start, end=end, as_of=as_of)
        twin = cls(model=m, data=data, characteristics=who)
        if stored is not None:
            twin.calibration = calibration
            twin.stored_id = stored.id
        return twin

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, **options: Any) -> Any:
        """Calibrate the model to the data (:func:`medtwin.twin.calibrate.calibrate`).

        Where the model's :class:`~medtwin.twin.calibrate.FitSpec` personalises (the body
        weight model: sex, age and height from the record) and no ``base`` is given, the base
        parameters come from the patient's characteristics and the data may be cut to what
        the model can start from (the first weight); :attr:`data` becomes that data.
        """
        from medtwin.twin.calibrate import calibrate, fit_spec

        spec = fit_spec(self.model)
        if spec.personalise is not None and "base" not in options:
            base, data, fit = spec.personalise(self.model, self.characteristics, self.data)
            options["base"] = base
            if fit is not None and options.get("fit") is None:
                options["fit"] = fit
            self.data = data
        self.calibration = calibrate(self.model, self.data, **options)
        self.stored_id = None
        return self.calibration

    def save(self, store: Store) -> int:
        """Keep the fitted twin in the store; returns its id."""
        cal = self._fitted()
        start = self.data.start
        end = None if start is None else start + dt.timedelta(minutes=self.data.span_min)
        self.stored_id = store.save_twin(
            self.data.patient or "?",
            self.model.name,
            self.model.version,
            cal.to_dict(),
            data_start=start,
            data_end=end,
            facts_used=len(self.data.fact_ids),
        )
        return self.stored_id

    def _fitted(self) -> Any:
        if self.calibration is None:
            raise DataError(
                f"the twin of {self.data.patient or 'this patient'} is not fitted yet "
                f"(run 'medtwin twin fit' or Twin.fit())"
            )
        return self.calibration

    def ensemble(self, n: int = 200, seed: int = 0) -> FloatArray:
        """``n`` posterior parameter sets ``[n, P]``."""
        samples: FloatArray = self._fitted().sample(n, seed)
        return samples

    # -- questions -------------------------------------------------------------------------
    def states_at(self, t_min: float, params: FloatArray) -> FloatArray:
        """Each parameter set's state at minute ``t_min`` of the data window, simulated from
        the start with the recorded events (``[n, S]``)."""
        from medtwin.model.solver import simulate
        from medtwin.twin.calibrate import fit_spec

        if t_min <= 0 or fit_spec(self.model).steady:
            # a twin of a resting steady state (a circulation fitted to clinic pressures) is
            # at rest whenever it is asked
            return self.model.initial_state(params)
        per_unit = _per_minute(self.model)
        events = [e for e in self.data.scenario.events if e.t_min <= t_min]
        r = simulate(
            self.model,
            params,
            Scenario(events=tuple(events)),
            t_end=t_min * per_unit,
            times=[0.0, t_min * per_unit],
        )
        out: FloatArray = r.states[:, -1, :]
        return out

    def recorded(self, t0_min: float, t1_min: float) -> list[dict[str, Any]]:
        """The recorded events in ``[t0, t1)`` re-based to ``t0`` (the basal in force at
        ``t0`` included), as event dicts."""
        window = self.data.window(t0_min, t1_min)
        return [e.to_dict() for e in window.scenario.events if e.t_min < t1_min - t0_min]

    def forecast(
        self,
        hours: float = 2.0,
        *,
        scenario: Sequence[Mapping[str, Any]] | Scenario | None = None,
        assimilate_hours: float = 6.0,
        n: int = 500,
        seed: int = 0,
        sensor_noise: bool = True,
        unannounced: bool = True,
    ) -> Forecast:
        """The next ``hours`` from the patient's latest reading, with bands.

        ``n`` posterior samples start ``assimilate_hours`` before the latest reading (their
        states simulated from the window's start with the recorded events); a particle filter
        (:class:`~medtwin.twin.assimilate.ParticleFilter`, options :data:`FILTER_DEFAULTS`)
        absorbs the readings since then, and runs on under ``scenario`` (planned events,
        minutes from now). ``sensor_noise`` gives bands of future readings rather than of the
        true glucose. ``unannounced``: each particle may also eat meals nobody records, drawn
        as the calibration estimated them from the patient's data
        (:class:`~medtwin.twin.calibrate.UnannouncedMeals`; a forecast is of what will
        happen, recorded or not).
        """
        from medtwin.twin.assimilate import ParticleFilter
        from medtwin.twin.calibrate import fit_spec

        if not (hours > 0 and assimilate_hours >= 0):
            raise DataError("hours must be > 0 and assimilate_hours >= 0")
        if fit_spec(self.model).steady:
            raise DataError(
                f"{self.model.name}: this twin is fitted to a resting steady state (clinic "
                "readings), which it stays in: ask what an event would do with whatif(..., "
                "ahead=True) ('medtwin whatif --ahead') instead of a forecast"
            )
        span = self.data.span_min
        self._check_period(span, span + hours * 60.0)
        t0 = max(0.0, span - assimilate_hours * 60.0)
        params = self.ensemble(n, seed)
        x0 = self.states_at(t0, params)
        options: dict[str, Any] = dict(FILTER_DEFAULTS.get(self.model.name, {}))
        cal = self._fitted()
        if cal.observable != "cgm_mg_dl" and "observable" not in options:
            # readings of another observable: independent errors with the calibration's
            # scale (its Student-t scale as a standard deviation, sigma sqrt(nu / (nu - 2)))
            options["observable"] = cal.observable
            options["noise"] = cal.noise_scale * math.sqrt(cal.noise_df / (cal.noise_df - 2.0))
        pf = ParticleFilter(self.model, params, x0=x0, t0_min=t0, seed=seed, **options)
        standing = [
            {**e.to_dict(), "t_min": t0}
            for e in self.data.window(t0, span).scenario.events
            if e.t_min == 0.0 and e.type in {"basal", "diet", "activity", "weight"}
        ]
        if standing:
            pf.absorb(np.empty(0), np.empty(0), standing)
        pf.absorb_data(self.data)
        planned = None
        if scenario is not None:
            parsed = scenario if isinstance(scenario, Scenario) else parse_scenario(scenario)
            planned = [{**e.to_dict(), "t_min": e.t_min + pf.t_min} for e in parsed.events]
        meals = getattr(cal, "unannounced", None) if unannounced else None
        return pf.forecast(
            hours,
            planned,
            sensor_noise=sensor_noise,
            seed=seed,
            unannounced=meals,
            every_min=_OUTPUT_MIN[self.model.time_unit],
        )

    def _check_period(self, t0_min: float, t1_min: float) -> None:
        """The model's check of a simulated period (minutes from the data's start) against what
        the record says of that time (:meth:`~medtwin.model.Model.check_period`: a pregnancy
        for the body-weight model)."""
        if self.data.start is None:
            return
        self.model.check_period(
            self.characteristics,
            self.data.start + dt.timedelta(minutes=t0_min),
            self.data.start + dt.timedelta(minutes=t1_min),
        )

    def whatif(
        self,
        alternatives: Mapping[str, Sequence[Mapping[str, Any]] | Scenario],
        *,
        hours: float = 24.0,
        mode: str = "add",
        n: int = 200,
        seed: int = 0,
        ahead: bool = False,
    ) -> Comparison:
        """What would the last ``hours`` of the data window have looked like with other events?

        The baseline is what was recorded (the patient's own meals, insulin, ...); each
        alternative's events are added to it (``mode="add"``) or replace it
        (``mode="replace"``), with times relative to the start of that period. Every arm
        starts from the same posterior states at the start of the period. No unannounced
        meals are drawn (unlike :meth:`forecast`): the period is recorded, its unrecorded
        meals are in its readings, and drawing them would blur the difference between arms.

        ``ahead=True`` asks about the next ``hours`` instead: the period starts at the end of
        the data, the baseline is the patient going on as now (what the calibration found,
        e.g. the habitual intake of a body-weight twin, with the standing events still in
        force), and each alternative's events (times from now) are added to it.
        """
        from medtwin.twin.calibrate import fit_spec
        from medtwin.twin.scenario import compare

        if mode not in {"add", "replace"}:
            raise DataError(f"mode must be 'add' or 'replace', got {mode!r}")
        if not (math.isfinite(hours) and hours > 0):
            raise DataError(f"hours must be a positive number, got {hours!r}")
        if fit_spec(self.model).steady and not ahead:
            raise DataError(
                f"{self.model.name}: this twin is fitted to a resting steady state, not to a "
                "recorded period: ask about what comes next (ahead=True, 'medtwin whatif "
                "--ahead')"
            )
        span = self.data.span_min
        minutes = hours * 60.0
        if span <= 0:
            raise DataError("the twin's data window is empty")
        first = self.data.first_reading_min
        if not ahead and first is not None and span - minutes < first - UNCOVERED_MIN:
            covered = (span - first) / 60.0
            since = (
                ""
                if self.data.start is None
                else f" ({self.data.start + dt.timedelta(minutes=first):%Y-%m-%d %H:%M} UTC)"
            )
            raise DataError(
                f"the last {hours:g} h reach back before the first reading of the twin's "
                f"data{since}: they cover {covered:.4g} h ({covered / 24.0:.3g} d); ask about "
                "at most that (a recorded period without readings has no recorded events "
                "either, and its simulation says nothing of the patient)"
            )
        self._check_period(span if ahead else max(0.0, span - minutes), span + minutes * ahead)
        if ahead:
            t0 = span
            params = self.ensemble(n, seed)
            x0 = self.states_at(t0, params)
            standing = {"basal", "diet", "activity", "weight"}
            baseline_events = [
                {**e.to_dict(), "t_min": 0.0}
                for e in self.data.window(max(0.0, span - 1.0), span).scenario.events
                if e.t_min == 0.0 and e.type in standing
            ]
        else:
            t0 = max(0.0, span - minutes)
            minutes = span - t0
            params = self.ensemble(n, seed)
            x0 = self.states_at(t0, params)
            baseline_events = self.recorded(t0, span)
        arms: dict[str, Scenario] = {}
        for name, alt in alternatives.items():
            extra = alt.to_dict()["events"] if isinstance(alt, Scenario) else list(alt)
            events = extra if mode == "replace" else baseline_events + extra
            arms[name] = parse_scenario(events, t_end_min=minutes)
        per_unit = _per_minute(self.model)
        return compare(
            self.model,
            params,
            parse_scenario(baseline_events, t_end_min=minutes),
            arms,
            t_end=minutes * per_unit,
            x0=x0,
            baseline_name="as now" if ahead else "recorded",
            provenance={
                "patient": self.data.patient,
                "twin": self.stored_id,
                "period_start": None
                if self.data.start is None
                else (self.data.start + dt.timedelta(minutes=t0)).isoformat(),
                "members": n,
                "seed": seed,
                "mode": mode,
                "ahead": ahead,
            },
        )


UNCOVERED_MIN = 60.0
"""How much of a recorded what-if period may lie before the data's first reading (minutes):
an hour, so that a period of the data's whole length (its first reading a few minutes after
the window's start) is accepted."""

_OUTPUT_MIN = {"min": 5.0, "h": 60.0, "d": 1440.0}
"""Forecast output interval by the model's time unit (minutes)."""


def _per_minute(model: type[Model]) -> float:
    from medtwin.model.base import TIME_UNIT_MIN

    return 1.0 / TIME_UNIT_MIN[model.time_unit]
