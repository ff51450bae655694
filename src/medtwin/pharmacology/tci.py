"""Target-controlled infusion (TCI) for the propofol models: the infusion schedule that
reaches and holds a target plasma or effect-site concentration.

The pump changes its rate every ``interval_s`` (10 s, as in the Diprifusor and STANPUMP);
the rate over each interval is computed from the exact discrete-time solution of the linear
model (``x(t + dt) = Phi x(t) + Gamma r``, ``Phi = exp(K dt)``), so the plan needs no
simulation:

- **plasma targeting** (Jacobs 1990; Bailey & Shafer 1991): the rate that brings Cp to the
  target at the end of the interval, ``r = (target - Cp_free(t + dt)) / Cp_unit(dt)``;
- **effect-site targeting** (Shafer & Gregg 1992): the rate over the interval such that the
  *peak* of the effect-site concentration that follows (the pump then stopping) equals the
  target. The future Ce is linear in ``r`` at every time ``tau`` of a horizon grid,
  ``Ce(tau) = a(tau) + r c(tau)`` with ``c > 0``, so the largest admissible rate is exactly
  ``min over tau of (target - a(tau)) / c(tau)``. Once at the target the same rule gives the
  maintenance rates; when the target falls, the rate is 0 until Ce has come down.

Rates are clipped to ``[0, max_rate_mg_per_min]`` (default 200 mg/min: a syringe driver's
1200 mL/h of 10 mg/mL propofol, the Diprifusor's maximum; Glen 1998).

>>> from medtwin.pharmacology.propofol import PropofolEleveld, params_for
>>> p = params_for("propofol_eleveld", age_years=35, weight_kg=70, height_cm=170, sex="male")
>>> plan = tci(PropofolEleveld, p, 3.0, t_end_min=20)
>>> round(plan.total_mg), len(plan.events()) > 0
(305, True)

References
----------
.. [1] Shafer SL, Gregg KM. Algorithms to rapidly achieve and maintain stable drug
   concentrations at the site of drug effect with a computer-controlled infusion pump.
   J Pharmacokinet Biopharm 1992;20:147-169.
.. [2] Jacobs JR. Algorithm for optimal linear model-based control with application to
   pharmacokinetic model-driven drug delivery. IEEE Trans Biomed Eng 1990;37:107-109.
.. [3] Bailey JM, Shafer SL. A simple analytical solution to the three-compartment
   pharmacokinetic model suitable for computer-controlled infusion pumps. IEEE Trans Biomed
   Eng 1991;38:522-525.
.. [4] Glen JB. The development of 'Diprifusor': a TCI system for propofol. Anaesthesia
   1998;53(Suppl 1):13-21.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from medtwin.model.base import FloatArray, Model, ModelError

__all__ = ["TciPlan", "tci"]

MAX_RATE_MG_PER_MIN = 200.0
"""1200 mL/h of propofol 10 mg/mL (the Diprifusor's maximum rate; Glen 1998)."""


@dataclass(frozen=True)
class TciPlan:
    """A TCI schedule: ``rates_mg_per_min[k]`` holds on ``[starts_min[k], starts_min[k] +
    interval_min)``; ``targets_ug_ml[k]`` is the target then in force."""

    model: str
    site: str
    interval_min: float
    starts_min: FloatArray
    rates_mg_per_min: FloatArray
    targets_ug_ml: FloatArray

    @property
    def total_mg(self) -> float:
        """Propofol given by the plan, mg."""
        return float(self.rates_mg_per_min.sum() * self.interval_min)

    def events(self) -> list[dict[str, Any]]:
        """The plan as ``infusion`` events of the shared format (runs of equal rate merged)."""
        out: list[dict[str, Any]] = []
        k, n = 0, len(self.starts_min)
        while k < n:
            j = k
            while j + 1 < n and self.rates_mg_per_min[j + 1] == self.rates_mg_per_min[k]:
                j += 1
            rate = float(self.rates_mg_per_min[k])
            if rate > 0:
                duration = (j - k + 1) * self.interval_min
                out.append(
                    {
                        "type": "infusion",
                        "drug": "propofol",
                        "t_min": float(self.starts_min[k]),
                        "amount_mg": rate * duration,
                        "duration_min": duration,
                    }
                )
            k = j + 1
        return out


def _system(p: FloatArray) -> tuple[FloatArray, FloatArray]:
    v1, v2, v3, cl, q2, q3, ke0 = (float(x) for x in p[:7])
    k = np.array(
        [
            [-(cl + q2 + q3) / v1, q2 / v2, q3 / v3, 0.0],
            [q2 / v1, -q2 / v2, 0.0, 0.0],
            [q3 / v1, 0.0, -q3 / v3, 0.0],
            [ke0 / v1, 0.0, 0.0, -ke0],
        ]
    )
    return k, np.array([1.0, 0.0, 0.0, 0.0])


def tci(
    model: type[Model],
    params: FloatArray,
    targets: float | Sequence[tuple[float, float]],
    *,
    t_end_min: float,
    site: Literal["effect", "plasma"] = "effect",
    interval_s: float = 10.0,
    max_rate_mg_per_min: float = MAX_RATE_MG_PER_MIN,
    horizon_min: float = 20.0,
) -> TciPlan:
    """The TCI infusion schedule for one parameter set of a propofol model.

    ``targets``: one concentration (ug/mL) from t = 0, or ``[(t_min, target), ...]`` (a
    target holds from its time until the next). ``site``: ``"effect"`` (Shafer & Gregg 1992)
    or ``"plasma"`` (Jacobs 1990). ``horizon_min``: how far ahead the effect-site peak is
    looked for (it must cover the time to peak effect). Raises :class:`ModelError` for bad
    options, naming them.
    """
    from scipy.linalg import expm

    if not model.name.startswith("propofol_"):
        raise ModelError(f"tci: model {model.name!r} is not a propofol model")
    p = model.check_params(params)
    if p.shape[0] != 1:
        raise ModelError(f"tci: give one parameter set, got {p.shape[0]}")
    if site not in ("effect", "plasma"):
        raise ModelError(f"tci: site must be 'effect' or 'plasma', got {site!r}")
    for name, value in (
        ("t_end_min", t_end_min),
        ("interval_s", interval_s),
        ("max_rate_mg_per_min", max_rate_mg_per_min),
        ("horizon_min", horizon_min),
    ):
        if isinstance(value, bool) or not (
            isinstance(value, int | float) and math.isfinite(value) and value > 0
        ):
            raise ModelError(f"tci: {name} must be a positive number, got {value!r}")
    steps: list[tuple[float, float]]
    if isinstance(targets, int | float) and not isinstance(targets, bool):
        steps = [(0.0, float(targets))]
    else:
        steps = sorted((float(t), float(c)) for t, c in targets)  # type: ignore[union-attr]
    if not steps or steps[0][0] != 0.0:
        raise ModelError("tci: targets must start at t_min = 0")
    for t, c in steps:
        if not (math.isfinite(t) and math.isfinite(c) and t >= 0 and c >= 0):
            raise ModelError(f"tci: target ({t!r}, {c!r}) must be finite and >= 0")
    dt = interval_s / 60.0
    n = math.ceil(t_end_min / dt - 1e-9)
    starts = np.arange(n, dtype=np.float64) * dt
    wanted = np.array([c for t0 in starts for t, c in [max(s for s in steps if s[0] <= t0)]])
    k_mat, b = _system(p[0])
    phi = expm(k_mat * dt)
    gamma = np.linalg.solve(k_mat, (phi - np.eye(4)) @ b)
    v1 = float(p[0, 0])
    if site == "effect":
        m = math.ceil(horizon_min / dt)
        powers = [np.eye(4)]
        for _ in range(m):
            powers.append(phi @ powers[-1])
        # Ce at tau_j = j dt (j = 1..m): free a_j = (Phi^j x)[3], unit c_j = (Phi^(j-1) Gamma)[3]
        free_rows = np.array([powers[j][3] for j in range(1, m + 1)])
        unit = np.array([(powers[j - 1] @ gamma)[3] for j in range(1, m + 1)])
        if np.any(unit <= 0):
            raise ModelError("tci: the effect-site response to an infusion is not positive")
    x = np.zeros(4)
    rates = np.zeros(n)
    for i in range(n):
        target = wanted[i]
        if site == "plasma":
            r = (target * v1 - (phi @ x)[0]) / gamma[0]
        else:
            a = free_rows @ x
            r = float(np.min((target - a) / unit))
        r = min(max(r, 0.0), max_rate_mg_per_min)
        rates[i] = r
        x = phi @ x + gamma * r
    return TciPlan(model.name, site, dt, starts, rates, wanted)
