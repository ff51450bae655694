"""Glucose, meals and insulin of a synthetic person on CGM, simulated with the UVA/Padova model.

For each synthetic person with type 1 diabetes :mod:`medtwin.synth.streams` asks this module for
their CGM trace. The person becomes one virtual patient of the UVA/Padova model
(:class:`~medtwin.physiology.uva_padova.UvaPadova2008`) living a randomised daily life:

* **parameters**: one of the 10 parameter sets of the person's age group (child, adolescent or
  adult by age, ``data/glucose.toml`` [age_groups]), picked by the seed, with the body weight
  set to the person's last recorded weight. All other parameters stay: the model's masses and
  volumes are per kg (glucose and insulin masses in mg/kg and pmol/kg, distribution volumes in
  dL/kg and L/kg, basal insulin u2ss in pmol/kg/min), so a heavier person of the same
  physiology needs proportionally more basal insulin (``u2ss x BW``) and a unit of insulin
  lowers their glucose proportionally less (correction factor x preset BW / BW). Meals act
  per kg too, so the carbohydrate that one unit covers (carb ratio) does not change with BW.
  The full parameter vector is the ground truth (``truth.json``: ``glucose_model``);
* **meals**: simglucose's random daily plan (breakfast, lunch, dinner, three possible snacks;
  [meals]);
* **insulin**: pump therapy with rapid-acting insulin: the steady-state basal rate
  (:func:`~medtwin.physiology.uva_padova.steady_state_basal_u_per_min`) and a meal bolus of
  counted carbohydrate / carb ratio (simglucose Quest.csv) with counting errors and, now and
  then, a missed bolus ([therapy]);
* **CGM**: the model's subcutaneous glucose every 5 minutes plus the Dexcom sensor noise model
  (:func:`~medtwin.physiology.uva_padova.cgm_noise_mg_dl`), with sensor warm-ups ([cgm]);
* **glucose heading low** (an onset): a bolus taken by mistake, sized through the model so
  that glucose falls to a drawn nadir, then treated with rescue carbohydrate ([glucose_low]).

The whole window is one call of :func:`medtwin.model.simulate` per person (the model is
integrated with its own tolerances; a patient-day costs about a millisecond); the search for
the mistaken bolus is one batched call over the candidate doses. Every meal, bolus and basal
rate that drives the simulation is what :mod:`medtwin.synth.streams` writes as records
(carbohydrate intake observations and insulin administrations), rounded as recorded before
the simulation, so re-simulating the ground-truth parameters with the records gives the
noise-free trace exactly.

>>> import numpy as np
>>> life = simulate_life(np.random.default_rng(1), age_years=40, weight_kg=80.0, days=1,
...                      utc_offset_min=0.0)
>>> life.glucose_mg_dl.shape, life.age_group, float(life.params[0])
((288,), 'adult', 80.0)

References
----------
.. [1] Kovatchev BP, Breton M, Dalla Man C, Cobelli C. In silico preclinical trials: a proof of
   concept in closed-loop control of type 1 diabetes. J Diabetes Sci Technol 2009;3:44-55.
.. [2] Xie J. simglucose v0.2.11 (MIT): params/Quest.csv, simulation/scenario_gen.py
   (RandomScenario), controller/basal_bolus_ctrller.py (BBController).
.. [3] Brazeau AS, Mircescu H, Desjardins K, et al. Carbohydrate counting accuracy and blood
   glucose variability in adults with type 1 diabetes. Diabetes Res Clin Pract 2013;99:19-23.
.. [4] Olinder AL, Kernell A, Smide B. Missed bolus doses: devastating for metabolic control in
   CSII-treated adolescents with type 1 diabetes. Pediatr Diabetes 2009;10:142-148.
.. [5] Battelino T, Danne T, Bergenstal RM, et al. Clinical targets for continuous glucose
   monitoring data interpretation. Diabetes Care 2019;42:1593-1603.
.. [6] American Diabetes Association. Standards of Care in Diabetes-2024, Section 6.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from medtwin.model import simulate
from medtwin.model.events import Scenario, parse_scenario
from medtwin.physiology.uva_padova import (
    PMOL_PER_U,
    UvaPadova2008,
    cgm_noise_mg_dl,
    steady_state_basal_u_per_min,
)
from medtwin.synth.generator import PopulationFileError

__all__ = [
    "INSULIN_RXNORM",
    "GlucoseLife",
    "age_group",
    "choose_parameters",
    "life_scenario",
    "person_rng",
    "simulate_life",
]

FloatArray = npt.NDArray[np.float64]

INSULIN_RXNORM: Final = ("86009", "insulin lispro")
"""RxNorm ingredient of the pump's rapid-acting insulin (in medtwin's rxnorm.csv)."""

_BW: Final = UvaPadova2008.parameter_names().index("bw_kg")
_ISC1: Final = 10  # state: subcutaneous insulin, non-monomeric (pmol/kg)
_MIN_PER_DAY: Final = 1440

_REQUIRED: Final = {
    "age_groups": ("child_max_years", "adolescent_max_years"),
    "meals": (
        "names",
        "probability",
        "time_mean_h",
        "time_sd_min",
        "time_min_h",
        "time_max_h",
        "carbs_mean_g",
        "carbs_sd_g",
    ),
    "therapy": (
        "basal_step_u_per_h",
        "bolus_step_u",
        "carb_error_log_sd",
        "missed_bolus_probability",
    ),
    "glucose_low": (
        "dose_min_u",
        "dose_max_u",
        "dose_steps",
        "search_min",
        "nadir_min_mg_dl",
        "nadir_max_mg_dl",
        "rescue_carbs_g",
        "heart_rate_rise_per_min",
    ),
    "treatment": ("threshold_mg_dl", "carbs_g", "recheck_min", "settle_min", "max_passes"),
    "cgm": ("sensor", "interval_min", "sensor_days", "warm_up_min", "min_mg_dl", "max_mg_dl"),
}


def person_rng(seed: int, index: int) -> np.random.Generator:
    """The person's own generator for the glucose model (seeded from the text
    ``"medtwin.synth.glucose:<seed>:<index>"``, apart from every other stream).

    The wearable CGM (:mod:`medtwin.synth.streams`) and the record's HbA1c of a person with
    type 1 diabetes (:mod:`medtwin.synth.generator`) both start from it, so both see the same
    virtual patient (its first draw) and the same pump settings.

    >>> float(person_rng(1, 0).random()) == float(person_rng(1, 0).random())
    True
    """
    digest = hashlib.blake2b(f"medtwin.synth.glucose:{seed}:{index}".encode(), digest_size=16)
    return np.random.default_rng(int.from_bytes(digest.digest(), "little"))


@lru_cache(maxsize=1)
def params() -> dict[str, dict[str, Any]]:
    """``data/glucose.toml`` as sections (each checked for its ``source`` and fields)."""
    where = "medtwin/synth/data/glucose.toml"
    text = resources.files("medtwin.synth").joinpath("data", "glucose.toml").read_text("utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PopulationFileError(f"{where}: not valid TOML ({error})") from error
    for name, fields in _REQUIRED.items():
        section = data.get(name)
        if not isinstance(section, dict):
            raise PopulationFileError(f"{where}: missing table [{name}]")
        if not str(section.get("source", "")).strip():
            raise PopulationFileError(f"{where} [{name}]: missing its 'source' string")
        for field in fields:
            if field not in section:
                raise PopulationFileError(f"{where} [{name}]: missing field '{field}'")
    return data


@lru_cache(maxsize=1)
def _quest() -> dict[str, dict[str, float]]:
    """simglucose params/Quest.csv: CR (g/U), CF (mg/dL/U), Age, TDI (U/day) per preset."""
    text = resources.files("medtwin.synth").joinpath("data", "uva_padova_quest.csv")
    rows = csv.DictReader(io.StringIO(text.read_text("utf-8"), newline=""))
    return {row.pop("Name"): {k: float(v) for k, v in row.items()} for row in rows}


def age_group(age_years: float) -> str:
    """``child``, ``adolescent`` or ``adult`` ([age_groups] of ``glucose.toml``).

    >>> age_group(9), age_group(16), age_group(45)
    ('child', 'adolescent', 'adult')
    """
    groups = params()["age_groups"]
    if age_years <= groups["child_max_years"]:
        return "child"
    if age_years <= groups["adolescent_max_years"]:
        return "adolescent"
    return "adult"


def choose_parameters(
    rng: np.random.Generator, age_years: float, weight_kg: float | None
) -> tuple[str, FloatArray, float]:
    """The preset of the person's age group picked by ``rng``, with BW = ``weight_kg``.

    Returns ``(preset name, parameter vector, the preset's own BW)``; without a recorded
    weight the preset's BW stays.

    >>> name, p, bw0 = choose_parameters(np.random.default_rng(0), 30, 90.0)
    >>> name.startswith("adult#"), float(p[0])
    (True, 90.0)
    """
    group = age_group(age_years)
    names = sorted(n for n in UvaPadova2008.presets() if n.startswith(group + "#"))
    name = names[int(rng.integers(len(names)))]
    vector = np.array(UvaPadova2008.preset(name), dtype=np.float64).reshape(-1)
    preset_bw = float(vector[_BW])
    if weight_kg is not None and np.isfinite(weight_kg) and weight_kg > 0:
        vector[_BW] = float(weight_kg)
    return name, vector, preset_bw


@dataclass(frozen=True, slots=True, eq=False)
class GlucoseLife:
    """One person's simulated window: parameters, meals, insulin, glucose (times in minutes
    from the window start, CGM every ``interval_min``)."""

    preset: str
    age_group: str
    params: FloatArray
    """The ground-truth UVA/Padova parameter vector (order of ``UvaPadova2008.parameters``)."""
    preset_weight_kg: float
    basal_u_per_h: float
    carb_ratio_g_per_u: float
    correction_factor_mg_dl_per_u: float
    noise_seed: int
    meal_t_min: FloatArray
    meal_carbs_g: FloatArray
    bolus_t_min: FloatArray
    bolus_u: FloatArray
    missed_boluses: int
    treatments: int
    """Hypoglycaemia treatments (carbohydrate, also in the meal arrays)."""
    mistaken_bolus: tuple[float, float] | None
    """``(t_min, insulin_u)`` of the bolus taken by mistake (also in the bolus arrays)."""
    rescue: tuple[float, float] | None
    """``(t_min, carbs_g)`` of the rescue carbohydrate (also in the meal arrays)."""
    nadir_target_mg_dl: float
    cgm_time_min: FloatArray
    cgm_model_mg_dl: FloatArray
    """The model's noise-free CGM (subcutaneous glucose) at ``cgm_time_min``."""
    bg_mg_dl: FloatArray
    """The model's plasma glucose at ``cgm_time_min``."""
    glucose_mg_dl: FloatArray
    """The CGM readings: model + sensor noise, rounded, clipped; NaN in sensor warm-ups."""

    def truth_record(self, patient: str) -> dict[str, Any]:
        """The ground truth for ``truth.json`` (``glucose_model`` entries)."""
        names = UvaPadova2008.parameter_names()
        return {
            "patient": patient,
            "model": UvaPadova2008.name,
            "model_version": UvaPadova2008.version,
            "preset": self.preset,
            "age_group": self.age_group,
            "preset_weight_kg": self.preset_weight_kg,
            "weight_kg": float(self.params[_BW]),
            "parameters": {n: float(v) for n, v in zip(names, self.params, strict=True)},
            "basal_u_per_h": self.basal_u_per_h,
            "carb_ratio_g_per_u": self.carb_ratio_g_per_u,
            "correction_factor_mg_dl_per_u": round(self.correction_factor_mg_dl_per_u, 4),
            "meals": int(self.meal_t_min.size),
            "boluses": int(self.bolus_t_min.size),
            "missed_boluses": self.missed_boluses,
            "hypo_treatments": self.treatments,
            "mistaken_bolus_u": None if self.mistaken_bolus is None else self.mistaken_bolus[1],
            "rescue_carbs_g": None if self.rescue is None else self.rescue[1],
            "cgm_sensor": str(params()["cgm"]["sensor"]),
            "cgm_noise_seed": self.noise_seed,
        }


def life_scenario(
    basal_u_per_h: float,
    meal_t_min: FloatArray,
    meal_carbs_g: FloatArray,
    bolus_t_min: FloatArray,
    bolus_u: FloatArray,
    *,
    t_end_min: float,
) -> Scenario:
    """The simulation's events: a basal rate from 0, meals and boluses (minutes).

    >>> s = life_scenario(1.0, np.array([60.0]), np.array([50.0]), np.array([60.0]),
    ...                   np.array([5.0]), t_end_min=1440)
    >>> [e.type for e in s.events]
    ['basal', 'meal', 'bolus']
    """
    events: list[dict[str, Any]] = [{"type": "basal", "t_min": 0.0, "u_per_h": basal_u_per_h}]
    events += [
        {"type": "meal", "t_min": float(t), "carbs_g": float(g)}
        for t, g in zip(meal_t_min, meal_carbs_g, strict=True)
    ]
    events += [
        {"type": "bolus", "t_min": float(t), "insulin_u": float(u)}
        for t, u in zip(bolus_t_min, bolus_u, strict=True)
    ]
    return parse_scenario(events, t_end_min=t_end_min)


def _meal_plan(
    rng: np.random.Generator, days: int, utc_offset_min: float
) -> tuple[FloatArray, FloatArray]:
    """Meal times (minutes from the window start, whole minutes) and carbohydrate (g)."""
    m = params()["meals"]
    n_days = days + 2  # local days -1 .. days: a zone west of UTC starts the evening before
    slots = len(m["names"])
    eats = rng.random((n_days, slots)) < np.asarray(m["probability"])
    at_h = np.asarray(m["time_mean_h"]) + np.asarray(m["time_sd_min"]) / 60.0 * (
        rng.standard_normal((n_days, slots))
    )
    at_h = np.clip(at_h, np.asarray(m["time_min_h"]), np.asarray(m["time_max_h"]))
    carbs = np.round(
        np.asarray(m["carbs_mean_g"])
        + np.asarray(m["carbs_sd_g"]) * rng.standard_normal((n_days, slots))
    )
    local = (np.arange(n_days)[:, None] - 1) * _MIN_PER_DAY + np.round(at_h * 60.0)
    t = local - round(utc_offset_min)
    keep = eats & (carbs > 0) & (t >= 0) & (t < days * _MIN_PER_DAY)
    order = np.argsort(t[keep], kind="stable")
    return t[keep][order].astype(np.float64), carbs[keep][order].astype(np.float64)


def simulate_life(
    rng: np.random.Generator,
    *,
    age_years: float,
    weight_kg: float | None,
    days: int,
    utc_offset_min: float,
    low_at_min: int | None = None,
) -> GlucoseLife:
    """Simulate one person's ``days`` (see the module docstring).

    Parameters
    ----------
    rng
        The person's own generator (all draws are made whether or not there is an onset, so
        an onset changes nothing before it).
    age_years, weight_kg
        From the person's record: the age group and the body weight of the parameter set.
    days
        Length of the window (from its start, a UTC midnight).
    utc_offset_min
        The person's mean UTC offset (local = UTC + offset): meals follow the local clock.
    low_at_min
        Minute of a glucose-low onset (rounded down to the CGM interval), or ``None``.

    Returns
    -------
    GlucoseLife
        The inputs, the ground truth and the CGM.
    """
    c = params()["cgm"]
    therapy = params()["therapy"]
    low = params()["glucose_low"]
    treat = params()["treatment"]
    step = int(c["interval_min"])
    t_end = float(days * _MIN_PER_DAY)

    preset, p, preset_bw = choose_parameters(rng, age_years, weight_kg)
    group = age_group(age_years)
    quest = _quest()[preset]
    cr = float(quest["CR"])
    cf = float(quest["CF"]) * preset_bw / float(p[_BW])
    basal_step = float(therapy["basal_step_u_per_h"])
    basal = round(float(steady_state_basal_u_per_min(p)[0]) * 60.0 / basal_step) * basal_step
    basal = round(basal, 6)

    meal_t, meal_g = _meal_plan(rng, days, utc_offset_min)
    # Boluses: counted carbs (log-normal error) / CR, rounded to the pump step; some missed.
    miss_u = rng.random(meal_t.size)
    error = np.exp(therapy["carb_error_log_sd"] * rng.standard_normal(meal_t.size))
    bolus_step = float(therapy["bolus_step_u"])
    dose = np.round(meal_g * error / cr / bolus_step) * bolus_step
    given = (miss_u >= float(therapy["missed_bolus_probability"][group])) & (dose > 0)
    bolus_t, bolus_u = meal_t[given], np.round(dose[given], 4)
    nadir = float(rng.uniform(low["nadir_min_mg_dl"], low["nadir_max_mg_dl"]))
    noise_seed = int(rng.integers(2**31 - 1))
    sensor_first = int(rng.integers(0, int(c["sensor_days"] * _MIN_PER_DAY // step)))

    times = np.arange(0.0, t_end, step)
    params_2d = p[None, :]
    noise = cgm_noise_mg_dl(times, 1, noise_seed, c["sensor"])[0]
    period = int(c["sensor_days"] * _MIN_PER_DAY // step)
    warm = int(c["warm_up_min"] // step)
    no_reading = np.zeros(times.size, dtype=bool)
    for gap in range(sensor_first, times.size, period):
        if low_at_min is not None and abs(gap - low_at_min // step) < period // 4:
            continue  # a sensor change away from a glucose-low onset
        no_reading[gap : gap + warm] = True

    def run(
        meal_t: FloatArray, meal_g: FloatArray, bolus_t: FloatArray, bolus_u: FloatArray
    ) -> Any:
        scenario = life_scenario(basal, meal_t, meal_g, bolus_t, bolus_u, t_end_min=t_end)
        return simulate(UvaPadova2008, params_2d, scenario, t_end=t_end, times=times)

    result = run(meal_t, meal_g, bolus_t, bolus_u)
    mistaken: tuple[float, float] | None = None
    rescue: tuple[float, float] | None = None
    quiet = np.zeros(times.size, dtype=bool)  # no treatment while an onset runs to its nadir
    if low_at_min is not None:
        t_on = float((low_at_min // step) * step)
        k = int(t_on // step)
        doses, pick = _dose_guess(
            p, result.states[0, k], t_on, basal, meal_t, meal_g, bolus_t, bolus_u, nadir, t_end
        )
        # The guess restarts the model at the onset (without the memory of the last meal's
        # size in gastric emptying): confirm it on the whole window, one dose up if need be.
        window = (times >= t_on) & (times <= t_on + low["search_min"])
        for _ in range(8):
            mistaken = (t_on, round(float(doses[pick]), 4))
            with_dose = _insert(bolus_t, bolus_u, *mistaken)
            result = run(meal_t, meal_g, *with_dose)
            cgm = result.observables["cgm_mg_dl"][0][: times.size]
            reached = np.flatnonzero(window & (cgm <= nadir))
            if reached.size or pick == doses.size - 1:
                break
            pick += 1
        assert mistaken is not None
        bolus_t, bolus_u = _insert(bolus_t, bolus_u, *mistaken)
        at = (
            float(times[reached[0]])
            if reached.size
            else float(times[window][np.argmin(cgm[window])])
        )
        if at < t_end:
            rescue = (at, float(low["rescue_carbs_g"]))
            meal_t, meal_g = _insert(meal_t, meal_g, *rescue)
            quiet[(times >= t_on) & (times <= rescue[0] + treat["recheck_min"])] = True
        result = run(meal_t, meal_g, bolus_t, bolus_u)
    # Lows are treated (15-15 rule): re-simulate until every low reading has its treatment.
    treated: list[float] = []
    for _ in range(int(treat["max_passes"])):
        readings = result.observables["cgm_mg_dl"][0][: times.size] + noise
        below = (readings < treat["threshold_mg_dl"]) & ~no_reading & ~quiet
        # a low is confirmed by a second reading below the threshold
        confirmed = below & np.concatenate(([False], below[:-1]))
        new: list[float] = []
        last_new = -np.inf
        done = np.array(sorted(treated))
        for i in np.flatnonzero(confirmed):
            t_i = float(times[i])
            before = done[done <= t_i]
            if before.size and t_i - float(before[-1]) < treat["recheck_min"]:
                continue
            # one new treatment per settle_min in a pass: a treatment changes what follows
            if t_i - last_new >= treat["settle_min"]:
                new.append(t_i)
                last_new = t_i
        if not new:
            break
        treated += new
        for t_i in new:
            meal_t, meal_g = _insert(meal_t, meal_g, t_i, float(treat["carbs_g"]))
        result = run(meal_t, meal_g, bolus_t, bolus_u)

    keep = result.times < t_end
    model_cgm = result.observables["cgm_mg_dl"][0][keep]
    bg = result.observables["bg_mg_dl"][0][keep]
    glucose = np.round(np.clip(model_cgm + noise, c["min_mg_dl"], c["max_mg_dl"]))
    glucose[no_reading] = np.nan
    return GlucoseLife(
        preset=preset,
        age_group=group,
        params=p,
        preset_weight_kg=preset_bw,
        basal_u_per_h=basal,
        carb_ratio_g_per_u=cr,
        correction_factor_mg_dl_per_u=cf,
        noise_seed=noise_seed,
        meal_t_min=meal_t,
        meal_carbs_g=meal_g,
        bolus_t_min=bolus_t,
        bolus_u=bolus_u,
        missed_boluses=int((~given).sum()),
        treatments=len(treated),
        mistaken_bolus=mistaken,
        rescue=rescue,
        nadir_target_mg_dl=nadir,
        cgm_time_min=times,
        cgm_model_mg_dl=model_cgm,
        bg_mg_dl=bg,
        glucose_mg_dl=glucose,
    )


def _insert(t: FloatArray, v: FloatArray, at: float, value: float) -> tuple[FloatArray, FloatArray]:
    order = np.argsort(np.append(t, at), kind="stable")
    return np.append(t, at)[order], np.append(v, value)[order]


def _dose_guess(
    p: FloatArray,
    x_on: FloatArray,
    t_on: float,
    basal: float,
    meal_t: FloatArray,
    meal_g: FloatArray,
    bolus_t: FloatArray,
    bolus_u: FloatArray,
    nadir: float,
    t_end: float,
) -> tuple[FloatArray, int]:
    """The dose grid and the index of the smallest dose whose noise-free CGM reaches
    ``nadir`` within the search window: one batched simulation over the doses, from the
    state at the onset (the candidate bolus put straight into the subcutaneous depot)."""
    low = params()["glucose_low"]
    step = float(params()["therapy"]["bolus_step_u"])
    doses = np.unique(
        np.round(np.geomspace(low["dose_min_u"], low["dose_max_u"], int(low["dose_steps"])) / step)
        * step
    )
    horizon = float(min(low["search_min"], t_end - t_on))
    if horizon < 10.0:
        return doses, doses.size // 2
    rows = doses.size
    x0 = np.repeat(x_on[None, :], rows, axis=0)
    x0[:, _ISC1] += doses * PMOL_PER_U / p[_BW]
    ahead_m = (meal_t >= t_on) & (meal_t < t_on + horizon)
    ahead_b = (bolus_t >= t_on) & (bolus_t < t_on + horizon)
    scenario = life_scenario(
        basal,
        meal_t[ahead_m] - t_on,
        meal_g[ahead_m],
        bolus_t[ahead_b] - t_on,
        bolus_u[ahead_b],
        t_end_min=horizon,
    )
    out = simulate(
        UvaPadova2008,
        np.repeat(p[None, :], rows, axis=0),
        scenario,
        t_end=horizon,
        dt_out=float(params()["cgm"]["interval_min"]),
        x0=x0,
    )
    reach = out.observables["cgm_mg_dl"].min(axis=1) <= nadir
    return doses, int(np.argmax(reach)) if reach.any() else rows - 1
