"""Offline change points (PELT, BIC-like penalty): known changes found, none on a flat series."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from medtwin.monitor.changepoint import bic_penalty, changepoints, robust_sigma


def _series(means: list[float], lengths: list[int], sd: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = np.concatenate([np.full(n, m) for m, n in zip(means, lengths, strict=True)])
    return level + rng.normal(0.0, sd, level.size)


@pytest.mark.parametrize("seed", range(5))
def test_known_change_points_and_segment_means_are_recovered(seed: int) -> None:
    # weight-like series: 70 kg, +2.5 kg (fluid), back to 71 kg; noise 0.5 kg (5 SD and 3 SD steps)
    values = _series([70.0, 72.5, 71.0], [120, 80, 150], 0.5, seed)
    times = 86_400.0 * np.arange(values.size)
    result = changepoints(times, values)
    assert len(result.breakpoints) == 2, result.breakpoints
    assert abs(result.breakpoints[0] - 120) <= 3 and abs(result.breakpoints[1] - 200) <= 3
    for segment, truth in zip(result.segments, [70.0, 72.5, 71.0], strict=True):
        assert segment.mean == pytest.approx(truth, abs=0.25)
        assert segment.sd == pytest.approx(0.5, rel=0.35)
    assert result.segments[0].start == 0 and result.segments[-1].end == values.size
    assert result.segments[1].start_epoch_s == times[result.breakpoints[0]]
    assert result.sigma == pytest.approx(0.5, rel=0.15)


@pytest.mark.parametrize("seed", range(10))
def test_a_stationary_series_of_500_readings_has_no_change_point(seed: int) -> None:
    values = _series([72.0], [500], 4.0, seed)
    result = changepoints(np.arange(500) * 60.0, values)
    assert result.breakpoints == ()
    assert len(result.segments) == 1 and result.segments[0].mean == pytest.approx(values.mean())


def test_the_penalty_is_bic_scaled_by_the_noise_variance() -> None:
    values = _series([100.0, 130.0], [200, 200], 3.0, 1)
    result = changepoints(np.arange(400.0), values)
    sigma = robust_sigma(values)
    assert result.penalty == pytest.approx(2 * sigma**2 * math.log(400))
    assert result.penalty == bic_penalty(400, sigma)
    # the SD of the series counts the 30-unit step as noise; the difference estimate does not
    assert float(np.std(values)) > 4 * sigma
    assert sigma == pytest.approx(3.0, rel=0.15)


@pytest.mark.parametrize("seed", range(10))
def test_a_one_sd_step_between_two_100_reading_halves_is_found(seed: int) -> None:
    # SSE falls by about 50 * 1^2 = 50 sigma^2, far over the penalty 2 log(200) = 10.6 sigma^2
    values = _series([50.0, 51.0], [100, 100], 1.0, seed)
    result = changepoints(np.arange(200.0), values)
    assert len(result.breakpoints) == 1 and abs(result.breakpoints[0] - 100) <= 12


def test_the_compiled_pelt_gives_the_same_change_points_as_ruptures_pelt_l2() -> None:
    import ruptures

    for seed in range(3):
        values = _series([70.0, 72.5, 71.0], [120, 80, 150], 0.5, 10 + seed)
        result = changepoints(np.arange(350.0), values)
        reference = ruptures.Pelt(model="l2", min_size=5, jump=1).fit(values.reshape(-1, 1))
        assert list(result.breakpoints) == reference.predict(pen=result.penalty)[:-1]


def test_identical_readings_with_one_step_need_the_sd_floor() -> None:
    values = np.array([4.0] * 30 + [4.6] * 30)
    assert changepoints(np.arange(60.0), values).breakpoints == (), "no noise, no penalty: no test"
    result = changepoints(np.arange(60.0), values, sd_floor=0.1)
    assert result.breakpoints == (30,)
    assert [s.mean for s in result.segments] == pytest.approx([4.0, 4.6])


def test_short_series_and_bad_input() -> None:
    assert changepoints([0.0, 1.0, 2.0], [1.0, 5.0, 1.0]).breakpoints == ()
    with pytest.raises(ValueError, match="equal length"):
        changepoints([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        changepoints([0.0, 1.0, 2.0], [1.0, float("nan"), 2.0])


def test_cli_changepoints_on_a_synthea_patient(tmp_path: Path, shared: Path) -> None:
    """`medtwin changepoints` on real (Synthea) weight and systolic BP series of stored patients."""
    import orjson
    from click.testing import CliRunner

    from medtwin.cli import main

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(main, list(args))
        assert result.exit_code == code, result.output
        return result.output

    store = str(tmp_path / "cp.db")
    files = sorted((shared / "fhir" / "synthea-r4").glob("*.json"))[:6]
    run("import", *map(str, files), "--store", store, "--json")
    patients = orjson.loads(run("patients", "--store", store, "--json"))
    checked = 0
    for patient in patients:
        for code in ("29463-7", "8480-6"):
            facts = orjson.loads(
                run("timeline", patient["id"], "--code", code, "--store", store, "--json")
            )
            values = [f["value_num"] for f in facts if f.get("value_num") is not None]
            if len(values) < 10:
                continue
            review = orjson.loads(
                run("changepoints", patient["id"], code, "--store", store, "--json")
            )
            assert review["n"] == len(values)
            assert sum(s["n"] for s in review["segments"]) == len(values)
            start = 0
            for segment in review["segments"]:
                part = values[start : start + segment["n"]]
                assert segment["mean"] == pytest.approx(sum(part) / len(part))
                start += segment["n"]
            assert len(review["changes"]) == len(review["segments"]) - 1
            for change in review["changes"]:
                assert change["shift"] == pytest.approx(
                    change["mean_after"] - change["mean_before"]
                )
            text = run("changepoints", patient["id"], code, "--store", store)
            assert f"[{code}]: {len(values)} readings" in text
            checked += 1
    assert checked >= 2, "some Synthea patients have 10+ weights or blood pressures"
    error = CliRunner().invoke(
        main, ["changepoints", "no-such-patient", "29463-7", "--store", store]
    )
    assert error.exit_code == 1 and "no patient" in error.output
