"""Target-controlled infusion: the plan, simulated through the ODE path, reaches and holds
its target (Shafer & Gregg 1992 for the effect site, Jacobs 1990 for plasma)."""

from __future__ import annotations

import numpy as np
import pytest

from medtwin.model import ModelError, get_model, parse_scenario, simulate
from medtwin.pharmacology.propofol import (
    PropofolEleveld,
    PropofolMarsh,
    PropofolSchnider,
    params_for,
    time_to_peak_effect_min,
)
from medtwin.pharmacology.tci import MAX_RATE_MG_PER_MIN, tci


def _run(model, p, plan, t_end):  # type: ignore[no-untyped-def]
    return simulate(model, p, parse_scenario(plan.events()), t_end=t_end, dt_out=1 / 60)


@pytest.mark.parametrize("model", [PropofolEleveld, PropofolSchnider, PropofolMarsh])
def test_effect_site_target_reached_without_overshoot(model) -> None:  # type: ignore[no-untyped-def]
    """Effect-site TCI to 3 ug/mL then down to 2 at 20 min: Ce never exceeds the target by more
    than 0.5%, reaches 99% of it within twice the time to peak effect plus one minute (the
    first seconds run at the 200 mg/min pump limit), holds it within 0.5% and comes down to
    the new target without undershoot below 99.5% of it."""
    p = model.preset("eleveld-reference")
    plan = tci(model, p, [(0.0, 3.0), (20.0, 2.0)], t_end_min=40)
    assert plan.rates_mg_per_min.max() <= MAX_RATE_MG_PER_MIN
    assert plan.rates_mg_per_min.min() >= 0
    r = _run(model, p, plan, 40)
    t, ce = r.times, r.observables["ce_ug_ml"][0]
    first = t < 20
    assert ce[first].max() <= 3.0 * 1.005
    t99 = float(t[np.argmax(ce >= 0.99 * 3.0)])
    assert t99 <= 2 * time_to_peak_effect_min(p[0]) + 1.0
    hold = (t >= t99 + 1.0) & first
    assert np.all(np.abs(ce[hold] - 3.0) <= 0.005 * 3.0)
    later = t >= 20
    assert ce[later].min() >= 2.0 * 0.995
    assert abs(ce[-1] - 2.0) <= 0.005 * 2.0
    # the plan's events and its own rates agree
    assert sum(e["amount_mg"] for e in plan.events()) == pytest.approx(plan.total_mg)


def test_plasma_target_held_between_updates() -> None:
    """Plasma TCI (Schnider, 4 ug/mL): Cp is at the target at every 10-s update once reached,
    and within 2% of it in between (sampled every second)."""
    p = PropofolSchnider.preset("schnider-reference")
    plan = tci(PropofolSchnider, p, 4.0, t_end_min=30, site="plasma")
    r = _run(PropofolSchnider, p, plan, 30)
    t, cp = r.times, r.observables["cp_ug_ml"][0]
    on_update = np.isclose((t * 6) % 1, 0, atol=1e-9) | np.isclose((t * 6) % 1, 1, atol=1e-9)
    reached = t >= 1.0
    np.testing.assert_allclose(cp[reached & on_update], 4.0, rtol=1e-6)
    assert np.all(np.abs(cp[reached] - 4.0) <= 0.02 * 4.0)


def test_older_patient_needs_less() -> None:
    """Eleveld: an 80-year-old needs less propofol than a 35-year-old of the same size for
    the same effect-site target over an hour (smaller V2, clearance with opioids)."""
    young = params_for("propofol_eleveld", age_years=35, weight_kg=75, height_cm=175, sex="male")
    old = params_for(
        "propofol_eleveld", age_years=80, weight_kg=75, height_cm=175, sex="male", opioids=True
    )
    m = get_model("propofol_eleveld")
    assert tci(m, old, 3.0, t_end_min=60).total_mg < tci(m, young, 3.0, t_end_min=60).total_mg


def test_bad_options_named() -> None:
    p = PropofolMarsh.preset("eleveld-reference")
    with pytest.raises(ModelError, match="interval_s"):
        tci(PropofolMarsh, p, 3.0, t_end_min=10, interval_s=0)
    with pytest.raises(ModelError, match="site"):
        tci(PropofolMarsh, p, 3.0, t_end_min=10, site="brain")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="start at t_min = 0"):
        tci(PropofolMarsh, p, [(5.0, 3.0)], t_end_min=10)
    with pytest.raises(ModelError, match="one parameter set"):
        tci(PropofolMarsh, np.vstack([p, p]), 3.0, t_end_min=10)
    with pytest.raises(ModelError, match="not a propofol model"):
        tci(get_model("uva_padova_2008"), p, 3.0, t_end_min=10)
