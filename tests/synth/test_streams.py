"""Tests of the synthetic wearable streams (``medtwin.synth.streams``).

Groups: (1) the streams against the published numbers in ``streams.toml``, each with the
tolerance stated next to it; (2) the known onsets really change what they say, by the stated
amount, and nothing before they start; (3) determinism; (4) files: the CSV is medtwin's device
CSV and round-trips through ``medtwin import`` into a SQLite store, and the CLI writes it.

Statistics are measured on the STREAMS (what a detector sees), not read back from the drawn
parameters. Populations come from fixed seeds, so the checks are deterministic; the tolerances
are set so that a correct generator would fail by chance far less than once in 1,000 seeds
(means within 4 standard errors).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pytest
from click.testing import CliRunner

from medtwin.cli import main
from medtwin.ingest import import_paths
from medtwin.store.sql import SqlStore
from medtwin.synth import write_synthetic_patients
from medtwin.synth.glucose import params as glucose_params
from medtwin.synth.streams import (
    CARBS_CODE,
    CGM_CODE,
    STEPS_CODE,
    PatientStreams,
    Profile,
    StreamSet,
    generate_patient_streams,
    generate_streams,
    write_streams,
)

STREAMS_TOML = (
    Path(__file__).resolve().parents[2] / "src" / "medtwin" / "synth" / "data" / "streams.toml"
)
SEED = 20260102
N_POPULATION = 160
DAYS = 21
TODAY = dt.date(2026, 1, 1)


def params() -> dict[str, Any]:
    with STREAMS_TOML.open("rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="module")
def population() -> StreamSet:
    """People without onsets: the background statistics."""
    return generate_streams(N_POPULATION, SEED, days=DAYS, onset_fraction=0.0)


@pytest.fixture(scope="module")
def with_onsets() -> StreamSet:
    """The same kind of people, every one with an onset; 15 with type 1 diabetes (enriched, so
    that several glucose lows are drawn: at the real 0.55 % there would be none or one)."""
    return generate_streams(120, SEED + 1, days=DAYS, onset_fraction=1.0, type1_minimum=15)


def clean(p: PatientStreams) -> npt.NDArray[np.bool_]:
    """Minutes with the device worn and no artefact."""
    return p.worn & ~p.artefact


def inactive(p: PatientStreams, minutes: int = 10) -> npt.NDArray[np.bool_]:
    """Clean minutes with no step in the last ``minutes`` minutes (Speed et al. 2023 use >= 4)."""
    steps = np.nan_to_num(p.steps_per_min)
    recent = np.convolve(steps, np.ones(minutes))[: steps.size]
    return clean(p) & (recent == 0)


# --------------------------------------------------------------------------------------------
# (1) statistics
# --------------------------------------------------------------------------------------------


def test_resting_heart_rate_matches_quer_2020(population: StreamSet) -> None:
    """Mean HR over inactive minutes per person: 65.5 +- 7.7 bpm across people (Quer 2020).

    Tolerance: the population mean within 4 standard errors of 65.5; the SD within 25 % of 7.7
    (the SE of an SD from 160 people is about 6 %); every person within 40-109 bpm, the range
    Quer et al. observed.
    """
    target = params()["resting_heart_rate"]
    rest = np.array([np.nanmean(p.heart_rate_per_min[inactive(p)]) for p in population.patients])
    se = target["sd_per_min"] / math.sqrt(rest.size)
    assert abs(rest.mean() - target["mean_per_min"]) < 4 * se, rest.mean()
    assert abs(rest.std() / target["sd_per_min"] - 1.0) < 0.25, rest.std()
    assert rest.min() >= 38.0 and rest.max() <= 111.0


def test_day_night_difference(population: StreamSet) -> None:
    """HR at rest is lower asleep than awake: about 4 bpm (Speed 2023: 54.5 vs 50.5 bpm).

    Tolerance: the population mean of (awake inactive - asleep) within 4 +- 1.5 bpm; every
    person lower asleep. The whole-day difference (activity included) is larger: 5-15 bpm on
    average, and the lowest hour of the local day falls in 00:00-08:00 for most people.
    """
    rest_gap, whole_gap = [], []
    for p in population.patients:
        still, hr = inactive(p), p.heart_rate_per_min
        awake = np.nanmean(hr[still & ~p.asleep])
        asleep = np.nanmean(hr[still & p.asleep])
        rest_gap.append(awake - asleep)
        whole_gap.append(np.nanmean(hr[clean(p) & ~p.asleep]) - np.nanmean(hr[clean(p) & p.asleep]))
    rest, whole = np.array(rest_gap), np.array(whole_gap)
    assert abs(rest.mean() - 4.0) < 1.5, rest.mean()
    assert (rest > 0).all()
    assert 5.0 < whole.mean() < 15.0, whole.mean()


def test_steps_per_day_in_the_published_range(population: StreamSet) -> None:
    """Steps/day on fully worn days: median person 4,000-8,000 (Bassett 2010: mean 5,117;
    Tudor-Locke 2011: healthy adults 4,000-18,000); at least 85 % of people 2,000-18,000;
    steps are taken only while awake."""
    per_person = []
    for p in population.patients:
        days = p.steps_per_min.reshape(-1, 1440)
        full = p.worn.reshape(-1, 1440).all(axis=1)
        if full.any():
            per_person.append(np.nansum(days, axis=1)[full].mean())
        assert np.nansum(p.steps_per_min[p.asleep]) == 0
    steps = np.array(per_person)
    assert 4000 <= np.median(steps) <= 8000, np.median(steps)
    assert np.mean((steps >= 2000) & (steps <= 18000)) >= 0.85


def test_heart_rate_follows_activity(population: StreamSet) -> None:
    """Walking at >= 100 steps/min (moderate intensity, Tudor-Locke 2018) raises HR to 40-59 %
    of the heart-rate reserve (Garber 2011, Table 1; HRmax = 208 - 0.7 age, Tanaka 2001).

    Tolerance: the population mean share of the reserve in 0.35-0.65 (the rise lags the
    cadence, so the first minutes of a bout are lower); HR and steps correlate (r > 0.4) in
    every person's waking minutes.
    """
    shares = []
    for p in population.patients:
        ok = clean(p) & ~p.asleep
        steps, hr = p.steps_per_min, p.heart_rate_per_min
        walking = ok & (np.nan_to_num(steps) >= 100)
        if walking.sum() < 30:
            continue
        rest = np.nanmean(hr[inactive(p) & ~p.asleep])
        reserve = 208.0 - 0.7 * p.profile.age_years - rest
        shares.append((np.nanmean(hr[walking]) - rest) / reserve)
        assert np.corrcoef(hr[ok], steps[ok])[0, 1] > 0.4
    assert len(shares) > 0.8 * N_POPULATION
    assert 0.35 < float(np.mean(shares)) < 0.65, np.mean(shares)


def test_gaps_and_artefacts(population: StreamSet) -> None:
    """The device is off some of the time (charging gaps, unworn days) and artefacts are rare.

    Expected from streams.toml: worn 90-99 % of minutes on average; artefacts about 1 in 1,000
    worn waking minutes (0.0003-0.003); heart rate is missing exactly where not worn.
    """
    worn = np.array([p.worn.mean() for p in population.patients])
    assert 0.90 < worn.mean() < 0.99
    assert (worn < 1.0).mean() > 0.5  # most people have at least one gap
    artefacts = sum(int(p.artefact.sum()) for p in population.patients)
    waking = sum(int((p.worn & ~p.asleep).sum()) for p in population.patients)
    assert 0.0003 < artefacts / waking < 0.003
    for p in population.patients[:20]:
        assert np.array_equal(np.isnan(p.heart_rate_per_min), ~p.worn)


def test_nightly_spo2_and_respiratory_rate(population: StreamSet) -> None:
    """One SpO2 and one RR per worn night; SpO2 96.5 +- 1.5 % asleep (Gries and Brooks 1996).

    Tolerance: population mean SpO2 within 4 SE of 96.5 (between-person SD 1.0 as drawn, plus
    the night-to-night SD); RR mean within 4 SE of 15/min; all values physiologically sane.
    """
    night = params()["night"]
    spo2 = np.array([p.spo2_percent.mean() for p in population.patients])
    rr = np.array([p.respiratory_rate_per_min.mean() for p in population.patients])
    for p in population.patients:
        assert DAYS - 3 <= p.spo2_percent.size <= DAYS + 1
        assert p.spo2_percent.size == p.respiratory_rate_per_min.size == p.night_time.size
    se_spo2 = night["spo2_sd_percent"] / math.sqrt(spo2.size)
    se_rr = night["respiratory_rate_sd_per_min"] / math.sqrt(rr.size)
    assert abs(spo2.mean() - night["spo2_mean_percent"]) < 4 * se_spo2 + 0.1
    assert abs(rr.mean() - night["respiratory_rate_mean_per_min"]) < 4 * se_rr
    assert spo2.max() <= 100.0 and spo2.min() > 90.0 and rr.min() > 8.0 and rr.max() < 25.0


def _cgm_metrics(glucose: npt.NDArray[np.float64]) -> dict[str, float]:
    """Mean, CV, and times in ranges as the international consensus defines them."""
    g = glucose[np.isfinite(glucose)]
    return {
        "mean": float(g.mean()),
        "cv": float(g.std() / g.mean()),
        "tir": float(np.mean((g >= 70) & (g <= 180))),
        "tbr": float(np.mean(g < 70)),
        "tbr54": float(np.mean(g < 54)),
        "tar250": float(np.mean(g > 250)),
    }


@pytest.fixture(scope="module")
def cgm_people() -> list[tuple[dict[str, float], PatientStreams]]:
    """People with type 1 diabetes aged 14-79, 50-120 kg, 28 days of model-based CGM each."""
    out = []
    ages = np.linspace(14, 79, 30).round().astype(int)
    weights = np.linspace(50.0, 120.0, 30)[::-1]
    for index, (age, weight) in enumerate(zip(ages, weights, strict=True)):
        profile = Profile(
            f"SYN-0-{index}", index, "male", int(age), True, 7.0, "UTC", float(weight), type1=True
        )
        streams = generate_patient_streams(profile, seed=SEED, days=28, onset_fraction=0.0)
        assert streams.glucose_mg_dl is not None
        out.append((_cgm_metrics(streams.glucose_mg_dl), streams))
    return out


def test_cgm_population_against_the_consensus_and_real_world(
    cgm_people: list[tuple[dict[str, float], PatientStreams]],
) -> None:
    """CGM metrics of the model-based population (Battelino 2019 definitions).

    * TIR 70-180 mg/dL: population median 50-95 %. Real-world flash-CGM users average about
      50-63 % (Dunn TC, Xu Y, Hayter G, Ajjan RA. Diabetes Res Clin Pract 2018;137:37-46:
      about 12-15 h/day in range by scanning frequency; approximate reading); the consensus
      target is > 70 %. The synthetic people bolus with their own carb ratio at an exact basal
      rate, so they sit at the well-controlled end (stated in the model card);
    * TBR < 70 mg/dL: median < 4 % (consensus target; lows are treated), nobody above 10 %;
    * CV: median <= 36 % (Danne 2017: 'stable'), everyone below 50 %;
    * mean glucose of everyone 100-200 mg/dL (HbA1c about 5.1-8.6 % by ADAG).
    """
    tir = np.array([m["tir"] for m, _ in cgm_people])
    tbr = np.array([m["tbr"] for m, _ in cgm_people])
    cv = np.array([m["cv"] for m, _ in cgm_people])
    mean = np.array([m["mean"] for m, _ in cgm_people])
    assert 0.50 <= float(np.median(tir)) <= 0.95, tir
    assert float(np.median(tbr)) < 0.04 and tbr.max() < 0.10, tbr
    assert float(np.median(cv)) <= 0.36 and cv.max() < 0.50, cv
    assert mean.min() > 100.0 and mean.max() < 200.0, mean


def test_cgm_meals_and_sensor_changes(
    cgm_people: list[tuple[dict[str, float], PatientStreams]],
) -> None:
    """Glucose is higher after lunch than at night, and has a 2-hour warm-up gap every 10
    days (glucose.toml [cgm])."""
    cgm = glucose_params()["cgm"]
    post_meal, night = [], []
    for _, s in cgm_people:
        assert s.glucose_mg_dl is not None and s.cgm_time is not None
        g = s.glucose_mg_dl.reshape(-1, 288)  # days x 5-min slots; zone UTC: slot = local time
        post_meal.append(np.nanmean(g[:, 13 * 12 : 14 * 12]))  # 13:00-14:00
        night.append(np.nanmean(g[:, 3 * 12 : 4 * 12]))  # 03:00-04:00
        gaps = np.isnan(s.glucose_mg_dl)
        expected = cgm["warm_up_min"] // cgm["interval_min"]
        assert gaps.sum() in (2 * expected, 3 * expected)  # 28 days: 2 or 3 sensor changes
    assert np.mean(np.array(post_meal) > np.array(night)) > 0.8


def test_cgm_wearers_are_exactly_the_people_with_type_1_diabetes(population: StreamSet) -> None:
    """CGM, carbs and insulin for type 1 diabetes only: not for type 2 (metformin; the
    UVA/Padova model is a type 1 model) and not for people without diabetes."""
    type2 = [p for p in population.patients if p.profile.diabetes and not p.profile.type1]
    type1 = [p for p in population.patients if p.profile.type1]
    assert type2, "the population should hold people with type 2 diabetes"
    assert type1, "the population should hold people with type 1 diabetes (enrichment: 1)"
    for p in population.patients:
        assert (p.glucose_mg_dl is not None) == p.profile.type1
        assert (p.glucose_life is not None) == p.profile.type1
        if p.profile.type1:
            assert p.profile.diabetes and p.profile.hba1c_percent is not None


# --------------------------------------------------------------------------------------------
# (2) onsets
# --------------------------------------------------------------------------------------------


def _minute(p: PatientStreams, when: dt.datetime) -> int:
    return int((when - p.start).total_seconds() // 60)


def _sleep_hr(p: PatientStreams, lo: int, hi: int) -> float:
    """Mean HR asleep and still in minutes [lo, hi)."""
    mask = inactive(p) & p.asleep
    mask[: max(lo, 0)] = False
    mask[hi:] = False
    return float(np.nanmean(p.heart_rate_per_min[mask])) if mask.any() else math.nan


def test_truth_lists_every_onset(with_onsets: StreamSet) -> None:
    """With onset_fraction 1 everyone has exactly one onset; glucose lows only with type 1;
    onsets lie between day 14 and 7 days before the end (streams.toml [onsets])."""
    assert len(with_onsets.truth) == len(with_onsets.patients)
    kinds = {o.kind for o in with_onsets.truth}
    assert kinds == {"infection", "respiratory", "glucose_low"}
    first = with_onsets.start + dt.timedelta(days=min(14, DAYS // 2))
    last = with_onsets.start + dt.timedelta(days=DAYS - 7)
    for p in with_onsets.patients:
        [onset] = p.onsets
        assert onset.patient == p.profile.patient
        assert first <= onset.onset_time <= last
        if onset.kind == "glucose_low":
            assert p.profile.type1


def test_infection_shifts_resting_heart_rate_by_the_stated_amount(with_onsets: StreamSet) -> None:
    """Sleeping HR around the peak minus the person's own baseline equals the truth's magnitude.

    The magnitude is drawn from 4-8 bpm (streams.toml [infection]). Measured: mean sleeping,
    still HR in the 24 h around the peak minus the mean over the days before the rise. The
    day-to-day SD of resting HR is 2.5 bpm, so a single person can differ by a few bpm; over
    all infected people the mean difference (measured - magnitude x shape) is within 1.0 bpm,
    and 1 day before symptom onset (during the rise) the shift is 0.3-0.7 of the magnitude.
    """
    inf = params()["infection"]
    errors, early, positive = [], [], []
    for p in with_onsets.patients:
        [onset] = p.onsets
        if onset.kind != "infection":
            continue
        assert inf["peak_min_per_min"] <= onset.magnitude <= inf["peak_max_per_min"]
        start = _minute(p, onset.change_start_time)
        baseline = _sleep_hr(p, 0, start - 1440)
        peak = _minute(p, onset.peak_time)
        at_peak = _sleep_hr(p, peak - 720, peak + 720)
        shape = p.resting_shift_per_min[peak - 720 : peak + 720].mean() / onset.magnitude
        errors.append((at_peak - baseline) - onset.magnitude * shape)
        before = _minute(p, onset.onset_time) - 1440
        early.append((_sleep_hr(p, before - 720, before + 720) - baseline) / onset.magnitude)
        positive.append(at_peak > baseline)
    assert len(errors) >= 30
    assert np.mean(positive) >= 0.85  # one person's night can hide the shift, most cannot
    assert abs(float(np.nanmean(errors))) < 1.0, np.nanmean(errors)
    assert 0.3 < float(np.nanmean(early)) < 0.7, np.nanmean(early)


def test_respiratory_deterioration(with_onsets: StreamSet) -> None:
    """Nightly SpO2 falls by the truth's magnitude (3-6 points) and RR rises by 4-8/min.

    Measured: mean of the nights after the decline ended minus the mean of the nights before
    the onset; tolerance 1.0 point (night-to-night SD 0.5 %)."""
    seen = 0
    for p in with_onsets.patients:
        [onset] = p.onsets
        if onset.kind != "respiratory":
            continue
        times = p.night_time.astype("datetime64[m]").astype(object)
        when = [t.replace(tzinfo=dt.UTC) for t in times]
        before = np.array([t < onset.onset_time for t in when])
        after = np.array([t > onset.peak_time for t in when])
        if after.sum() < 1:
            continue
        seen += 1
        drop = p.spo2_percent[after].mean() - p.spo2_percent[before].mean()
        assert abs(drop - onset.magnitude) < 1.0, (drop, onset.magnitude)
        rise = p.respiratory_rate_per_min[after].mean() - p.respiratory_rate_per_min[before].mean()
        assert 3.0 < rise < 9.0
    assert seen >= 15


def test_glucose_heading_low(with_onsets: StreamSet) -> None:
    """A bolus taken by mistake at the onset (in the insulin records) makes the CGM fall below
    70 mg/dL within the search window (glucose.toml [glucose_low]: 2 h, + 1 h); the truth's
    threshold time is the first reading below 70, the nadir lies near the drawn 45-62 mg/dL
    (model nadir; readings carry sensor noise) before the rescue carbohydrate."""
    seen = 0
    for p in with_onsets.patients:
        [onset] = p.onsets
        if onset.kind != "glucose_low":
            continue
        seen += 1
        life = p.glucose_life
        assert life is not None and life.mistaken_bolus is not None and life.rescue is not None
        assert p.glucose_mg_dl is not None and onset.threshold_time is not None
        t_on, dose = life.mistaken_bolus
        assert onset.onset_time == p.start + dt.timedelta(minutes=t_on)
        assert dose in life.bolus_u[life.bolus_t_min == t_on]
        index = int((onset.threshold_time - p.start).total_seconds() // 300)
        start = int(t_on // 5)
        assert p.glucose_mg_dl[index] < 70.0
        assert np.all(~(p.glucose_mg_dl[start:index] < 70.0))
        assert 0 <= index - start <= 36  # within the 2 h search and the hour after the rescue
        nadir = float(np.nanmin(life.cgm_model_mg_dl[start : start + 37]))
        assert 39.0 <= nadir <= life.nadir_target_mg_dl + 1.0, (nadir, life.nadir_target_mg_dl)
        assert onset.magnitude < -20.0
    assert seen >= 3


def test_an_onset_changes_nothing_before_it_starts() -> None:
    """Same seed with and without onsets: identical streams before the change starts (the
    random draws do not depend on the onset), different after."""
    quiet = generate_streams(40, SEED + 2, days=DAYS, onset_fraction=0.0)
    loud = generate_streams(40, SEED + 2, days=DAYS, onset_fraction=1.0)
    for a, b in zip(quiet.patients, loud.patients, strict=True):
        [onset] = b.onsets
        cut = _minute(b, onset.change_start_time) - 720  # the device is kept on near onsets
        assert np.array_equal(
            a.heart_rate_per_min[:cut], b.heart_rate_per_min[:cut], equal_nan=True
        )
        assert np.array_equal(a.steps_per_min[:cut], b.steps_per_min[:cut], equal_nan=True)
        if onset.kind == "infection":
            assert np.nanmean(b.heart_rate_per_min[cut + 720 :]) > np.nanmean(
                a.heart_rate_per_min[cut + 720 :]
            )


# --------------------------------------------------------------------------------------------
# (3) determinism
# --------------------------------------------------------------------------------------------


def test_same_seed_same_streams() -> None:
    first = generate_streams(4, 11, days=3, onset_fraction=0.5)
    again = generate_streams(4, 11, days=3, onset_fraction=0.5)
    more = generate_streams(6, 11, days=3, onset_fraction=0.5)
    other = generate_streams(4, 12, days=3, onset_fraction=0.5)
    assert first.truth == again.truth
    for a, b, c, d in zip(
        first.patients, again.patients, more.patients[:4], other.patients, strict=True
    ):
        for name in ("heart_rate_per_min", "steps_per_min", "spo2_percent"):
            assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True)
            assert np.array_equal(getattr(a, name), getattr(c, name), equal_nan=True)
            assert not np.array_equal(getattr(a, name), getattr(d, name), equal_nan=True)


def test_bad_arguments_are_refused() -> None:
    profile = Profile("SYN-0-0", 0, "female", 30, False, 5.2, "UTC")
    with pytest.raises(ValueError, match="wearables-days"):
        generate_patient_streams(profile, seed=0, days=0)
    with pytest.raises(ValueError, match="onset-fraction"):
        generate_patient_streams(profile, seed=0, days=1, onset_fraction=1.5)
    with pytest.raises(ValueError, match="patients"):
        generate_streams(-1, 0)


# --------------------------------------------------------------------------------------------
# (4) files
# --------------------------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def written(tmp_path: Path) -> Iterator[tuple[Path, Path, StreamSet]]:
    """Two patients (FHIR, with device-user ids) and 2 days of their streams, onsets for all."""
    patients = tmp_path / "patients"
    write_synthetic_patients(3, 4, patients, device_user=True)
    streams = generate_streams(3, 4, days=2, onset_fraction=1.0)
    write_streams(streams, tmp_path / "wearables")
    yield patients, tmp_path / "wearables", streams


def test_csv_is_the_device_format(written: tuple[Path, Path, StreamSet]) -> None:
    """Header ``time,metric,value,unit,patient``; one row per finite value; truth beside."""
    _, folder, streams = written
    for p in streams.patients:
        base = folder / "streams" / f"patient-{p.profile.index:05d}"
        hr = read_rows(base / "heart_rate.csv")
        assert list(hr[0]) == ["time", "metric", "value", "unit", "patient"]
        assert len(hr) == int(np.isfinite(p.heart_rate_per_min).sum())
        values = p.heart_rate_per_min[np.isfinite(p.heart_rate_per_min)]
        assert [float(r["value"]) for r in hr] == values.tolist()
        first = dt.datetime.fromisoformat(hr[0]["time"])
        assert first.tzinfo is not None and first >= p.start
        assert {r["patient"] for r in hr} == {p.profile.patient}
        steps = read_rows(base / "steps.csv")
        assert sum(int(r["value"]) for r in steps) == int(np.nansum(p.steps_per_min))
        assert {r["metric"] for r in steps} == {STEPS_CODE}
        spo2 = read_rows(base / "spo2_nightly.csv")
        assert [float(r["value"]) for r in spo2] == p.spo2_percent.tolist()
        has_cgm = (base / "glucose_cgm.csv").exists()
        assert has_cgm == p.profile.type1
    truth = orjson.loads((folder / "truth.json").read_bytes())
    assert [o["patient"] for o in truth["onsets"]] == [o.patient for o in streams.truth]
    table = read_rows(folder / "truth.csv")
    assert [r["onset_time"] for r in table] == [o["onset_time"] for o in truth["onsets"]]


def test_csv_round_trips_through_import(
    sqlite_store: SqlStore, written: tuple[Path, Path, StreamSet]
) -> None:
    """Import the patients, then the streams: every reading is stored, none quarantined, on
    the right patient with the right code, value and time; importing again changes nothing."""
    patients, folder, streams = written
    first = import_paths(sqlite_store, [patients])
    assert first.counts.get("quarantined", 0) == 0
    report = import_paths(sqlite_store, [folder / "streams"])
    rows = sum(len(read_rows(f)) for f in (folder / "streams").rglob("*.csv"))
    rows += sum(len(f.read_bytes().splitlines()) for f in (folder / "streams").rglob("*.ndjson"))
    assert report.counts.get("quarantined", 0) == 0
    assert report.counts["inserted"] == rows
    for p in streams.patients:
        ref = p.profile.patient
        # (the FHIR check-ups hold heart rates too: only the window of the streams)
        hr = sqlite_store.timeline(ref, codes=["8867-4"], start=p.start)
        finite = np.isfinite(p.heart_rate_per_min)
        assert len(hr) == int(finite.sum())
        assert [s.fact.value_num for s in hr[:50]] == p.heart_rate_per_min[finite][:50].tolist()  # type: ignore[attr-defined]
        first_time = p.start + dt.timedelta(minutes=int(np.flatnonzero(finite)[0]))
        assert hr[0].fact.effective_start == first_time
        steps = sqlite_store.timeline(ref, codes=[STEPS_CODE])
        assert sum(s.fact.value_num for s in steps) == np.nansum(p.steps_per_min)  # type: ignore[attr-defined]
        assert len(sqlite_store.timeline(ref, codes=["59408-5"])) == p.spo2_percent.size
        assert len(sqlite_store.timeline(ref, codes=["9279-1"])) == p.night_time.size
        cgm = sqlite_store.timeline(ref, codes=[CGM_CODE])
        expected = 0 if p.glucose_mg_dl is None else int(np.isfinite(p.glucose_mg_dl).sum())
        assert len(cgm) == expected
        if cgm:
            assert cgm[0].fact.unit == "mg/dL"
        carbs = sqlite_store.timeline(ref, codes=[CARBS_CODE])
        doses = sqlite_store.timeline(ref, kinds=["MedicationAdministration"], start=p.start)
        life = p.glucose_life
        if life is None:
            assert carbs == [] and doses == []
            continue
        assert [c.fact.value_num for c in carbs] == life.meal_carbs_g.tolist()  # type: ignore[attr-defined]
        assert {c.fact.unit for c in carbs} == {"g"}
        boluses = [d.fact for d in doses if d.fact.dose_value is not None]  # type: ignore[attr-defined]
        basal = [d.fact for d in doses if d.fact.rate_value is not None]  # type: ignore[attr-defined]
        assert [b.dose_value for b in boluses] == life.bolus_u.tolist()  # type: ignore[attr-defined]
        assert {b.code.code for b in boluses + basal} == {"86009"}
        assert len(basal) == streams.days
        assert {b.rate_value for b in basal} == {life.basal_u_per_h}  # type: ignore[attr-defined]
    again = import_paths(sqlite_store, [folder / "streams"])
    assert again.counts.get("inserted", 0) == 0 and again.counts.get("new_versions", 0) == 0


def test_cli_writes_patients_streams_and_truth(tmp_path: Path) -> None:
    out = tmp_path / "syn"
    result = CliRunner().invoke(
        main,
        ["synth", "--patients", "2", "--seed", "3", str(out), "--wearables-days", "1"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / "syn-wearables"
    assert (folder / "truth.json").is_file() and (folder / "truth.csv").is_file()
    assert sorted(p.name for p in (folder / "streams").iterdir()) == [
        "patient-00000",
        "patient-00001",
    ]
    bundle = orjson.loads((out / "patient-00000.json").read_bytes())
    identifiers = bundle["entry"][0]["resource"]["identifier"]
    assert {"urn:medtwin:device-user"} <= {i["system"] for i in identifiers}
    bad = CliRunner().invoke(main, ["synth", str(out), "--onset-fraction", "2"])
    assert bad.exit_code != 0 and "onset-fraction" in bad.output


def test_default_synth_is_unchanged(tmp_path: Path) -> None:
    """Without --wearables-days no streams and no device-user identifier (make demo as before)."""
    out = tmp_path / "plain"
    CliRunner().invoke(main, ["synth", "--patients", "1", str(out)], catch_exceptions=False)
    assert not (tmp_path / "plain-wearables").exists()
    bundle = orjson.loads((out / "patient-00000.json").read_bytes())
    assert [i["system"] for i in bundle["entry"][0]["resource"]["identifier"]] == [
        "https://medtwin.org/fhir/sid/synthetic-mrn"
    ]
