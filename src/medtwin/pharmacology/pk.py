"""Closed-form solutions of linear one- and two-compartment models with IV doses.

Exact concentrations and areas under the curve by superposition of the single-dose responses
(Gibaldi M, Perrier D. Pharmacokinetics, 2nd ed. 1982, ch. 1-2; the same closed forms as
Bertrand J, Mentre F. Mathematical expressions of the pharmacokinetic and pharmacodynamic
models implemented in the Monolix software, 2008, sections 1.1 and 1.2, "infusion" and
"bolus" with "steady state"). A dose of ``D`` mg into the central compartment gives

    C(t) = D * sum_i a_i exp(-lambda_i t)

with, for one compartment, ``a = 1/V``, ``lambda = CL/V``, and for two compartments
(k10 = CL/V1, k12 = Q/V1, k21 = Q/V2; alpha > beta the roots of
``l^2 - (k10 + k12 + k21) l + k10 k21 = 0``):
``a_alpha = (alpha - k21) / (V1 (alpha - beta))``, ``a_beta = (k21 - beta) / (V1 (alpha - beta))``.
An infusion of ``D`` over ``T`` h is the integral of boluses at rate ``R = D / T``:
during it ``R a / lambda (1 - exp(-lambda s))``, after it that value at ``T`` decaying as
``exp(-lambda (s - T))``. A ``steady_state`` dose adds the infinite history of doses every
``tau`` h before it: ``sum_k>=1 exp(-lambda k tau) = r / (1 - r)``, ``r = exp(-lambda tau)``
(for ``T <= tau``).

The ODE path (the Model contract, :mod:`medtwin.pharmacology.antibiotics`) solves the same
models numerically; ``tests/pharmacology/test_pk_models.py`` checks that they agree.

>>> a, lam = modes(cl=np.array([5.0]), v1=np.array([50.0]))
>>> c = concentrations(a, lam, [Dose(0.0, 1000.0, 1.0)], np.array([1.0, 13.0]))
>>> [round(float(x), 3) for x in c[0]]
[19.033, 5.732]
>>> round(float(auc(a, lam, [Dose(0.0, 1000.0, 1.0)], 0.0, 1e4)[0]), 3)  # D / CL
200.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from medtwin.model.base import FloatArray, ModelError
from medtwin.model.events import Event

__all__ = [
    "Dose",
    "auc",
    "concentrations",
    "doses_from_events",
    "first_dose_h",
    "modes",
    "steady_state_profile",
]


@dataclass(frozen=True)
class Dose:
    """One IV dose (or a repeated regimen): start ``t_h``, ``amount_mg`` over ``duration_h``
    (0: bolus), repeated ``count`` times ``every_h``; ``steady_state``: the regimen had been
    given long enough before ``t_h`` to be at steady state."""

    t_h: float
    amount_mg: float
    duration_h: float = 0.0
    every_h: float = 0.0
    count: int = 1
    steady_state: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.t_h) and self.t_h >= 0):
            raise ModelError(f"dose: t_h must be >= 0, got {self.t_h!r}")
        if not (math.isfinite(self.amount_mg) and self.amount_mg >= 0):
            raise ModelError(f"dose: amount_mg must be >= 0, got {self.amount_mg!r}")
        if not (math.isfinite(self.duration_h) and self.duration_h >= 0):
            raise ModelError(f"dose: duration_h must be >= 0, got {self.duration_h!r}")
        if self.count < 1:
            raise ModelError(f"dose: count must be >= 1, got {self.count!r}")
        if (self.count > 1 or self.steady_state) and not self.every_h > 0:
            raise ModelError("dose: a repeated or steady-state dose needs every_h > 0")
        if self.every_h > 0 and self.duration_h > self.every_h:
            raise ModelError(
                f"dose: duration_h ({self.duration_h:g}) longer than every_h ({self.every_h:g})"
            )

    def starts(self) -> list[float]:
        """Start time of every administration (h)."""
        return [self.t_h + k * self.every_h for k in range(self.count)]


def doses_from_events(events: Iterable[Event]) -> list[Dose]:
    """The ``infusion`` events of a parsed scenario as :class:`Dose` (hours).

    Raises :class:`ModelError` for any other event type.
    """
    out = []
    for ev in events:
        if ev.type != "infusion":
            raise ModelError(
                f"event {ev.index}: a linear IV model takes 'infusion' events, got {ev.type!r}"
            )
        out.append(
            Dose(
                t_h=ev.t_min / 60.0,
                amount_mg=float(ev["amount_mg"]),
                duration_h=float(ev.get("duration_min", 0.0)) / 60.0,
                every_h=float(ev.get("every_min", 0.0)) / 60.0,
                count=int(ev.get("count", 1)),
                steady_state=bool(ev.get("steady_state", False)),
            )
        )
    return out


def first_dose_h(doses: Sequence[Dose]) -> float:
    """Start of the first dose (h); ``inf`` without doses."""
    return min((d.t_h for d in doses), default=math.inf)


def modes(
    cl: FloatArray,
    v1: FloatArray,
    q: FloatArray | None = None,
    v2: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Coefficients ``a`` (1/L) and rate constants ``lambda`` (1/h), each ``[N, M]``
    (M = 1 or 2 compartments), of the unit-bolus response ``sum_i a_i exp(-lambda_i t)``."""
    cl = np.atleast_1d(np.asarray(cl, dtype=np.float64))
    v1 = np.atleast_1d(np.asarray(v1, dtype=np.float64))
    if q is None or v2 is None:
        return (1.0 / v1)[:, None], (cl / v1)[:, None]
    q = np.atleast_1d(np.asarray(q, dtype=np.float64))
    v2 = np.atleast_1d(np.asarray(v2, dtype=np.float64))
    k10, k12, k21 = cl / v1, q / v1, q / v2
    s = k10 + k12 + k21
    disc = np.sqrt(np.maximum(s * s - 4.0 * k10 * k21, 0.0))
    alpha = 0.5 * (s + disc)
    beta = k10 * k21 / alpha  # = (s - disc) / 2 without cancellation
    a_alpha = (alpha - k21) / (v1 * (alpha - beta))
    a_beta = (k21 - beta) / (v1 * (alpha - beta))
    return np.stack([a_alpha, a_beta], axis=1), np.stack([alpha, beta], axis=1)


def _single(a: FloatArray, lam: FloatArray, amount: float, dur: float, s: FloatArray) -> FloatArray:
    """Concentration ``[N, T]`` of one administration at times ``s`` after its start."""
    s3 = s[None, :, None]
    a3, l3 = a[:, None, :], lam[:, None, :]
    if dur <= 0.0:
        val = amount * a3 * np.exp(-l3 * np.maximum(s3, 0.0))
    else:
        rate = amount / dur
        sc = np.clip(s3, 0.0, dur)
        tail = np.maximum(s3 - dur, 0.0)
        val = rate * a3 / l3 * (-np.expm1(-l3 * sc)) * np.exp(-l3 * tail)
    return np.asarray(np.where(s3 >= 0.0, val, 0.0).sum(axis=2), dtype=np.float64)


def _history_coef(
    a: FloatArray, lam: FloatArray, amount: float, dur: float, tau: float
) -> FloatArray:
    """``c_i`` such that the steady-state history before a dose adds ``sum_i c_i
    exp(-lambda_i s)`` at ``s >= 0`` after it (``[N, M]``)."""
    r = np.exp(-lam * tau)
    geo = r / (-np.expm1(-lam * tau))
    if dur <= 0.0:
        return np.asarray(amount * a * geo, dtype=np.float64)
    rate = amount / dur
    return np.asarray(rate * a / lam * np.expm1(lam * dur) * geo, dtype=np.float64)


def steady_state_profile(
    a: FloatArray, lam: FloatArray, amount: float, dur: float, tau: float, u: FloatArray
) -> FloatArray:
    """Steady-state concentration ``[N, T]`` at ``u`` in ``[0, tau]`` h after a dose start."""
    u = np.asarray(u, dtype=np.float64)
    hist = _history_coef(a, lam, amount, dur, tau)
    tail = np.einsum("nm,ntm->nt", hist, np.exp(-lam[:, None, :] * u[None, :, None]))
    return np.asarray(_single(a, lam, amount, dur, u) + tail, dtype=np.float64)


def concentrations(
    a: FloatArray, lam: FloatArray, doses: Sequence[Dose], times: FloatArray
) -> FloatArray:
    """Central concentrations (mg/L) ``[N, T]`` at ``times`` (h) for the doses."""
    t = np.atleast_1d(np.asarray(times, dtype=np.float64))
    out = np.zeros((a.shape[0], t.size))
    for d in doses:
        for start in d.starts():
            out += _single(a, lam, d.amount_mg, d.duration_h, t - start)
        if d.steady_state:
            s = t - d.t_h
            after = s >= 0.0
            if after.any():
                hist = _history_coef(a, lam, d.amount_mg, d.duration_h, d.every_h)
                e = np.exp(-lam[:, None, :] * s[None, after, None])
                out[:, after] += np.einsum("nm,ntm->nt", hist, e)
            if (~after).any():  # before the flagged dose: the periodic steady state itself
                u = np.mod(s[~after], d.every_h)
                out[:, ~after] += steady_state_profile(
                    a, lam, d.amount_mg, d.duration_h, d.every_h, u
                )
    return out


def _cumulative(a: FloatArray, lam: FloatArray, amount: float, dur: float, s: float) -> FloatArray:
    """Integral (mg h/L, ``[N]``) of one administration's concentration from its start to ``s``."""
    if s <= 0.0:
        return np.zeros(a.shape[0])
    if dur <= 0.0:
        return np.asarray((amount * a * (-np.expm1(-lam * s)) / lam).sum(axis=1), dtype=np.float64)
    rate = amount / dur
    sc = min(s, dur)
    during = rate * a / lam * (sc + np.expm1(-lam * sc) / lam)
    after: FloatArray | float = 0.0
    if s > dur:
        after = rate * a / lam * (-np.expm1(-lam * dur)) * (-np.expm1(-lam * (s - dur))) / lam
    return np.asarray((during + after).sum(axis=1), dtype=np.float64)


def auc(a: FloatArray, lam: FloatArray, doses: Sequence[Dose], t0: float, t1: float) -> FloatArray:
    """Exact area under the concentration curve (mg h/L, ``[N]``) from ``t0`` to ``t1`` h."""
    if t1 < t0:
        raise ModelError(f"auc: t1 ({t1:g}) before t0 ({t0:g})")
    out = np.zeros(a.shape[0])
    for d in doses:
        for start in d.starts():
            out += _cumulative(a, lam, d.amount_mg, d.duration_h, t1 - start)
            out -= _cumulative(a, lam, d.amount_mg, d.duration_h, t0 - start)
        if d.steady_state:
            hist = _history_coef(a, lam, d.amount_mg, d.duration_h, d.every_h)
            s0, s1 = t0 - d.t_h, t1 - d.t_h
            lo = max(s0, 0.0)
            if s1 > lo:
                out += (hist / lam * (np.exp(-lam * lo) - np.exp(-lam * s1))).sum(axis=1)
            if s0 < 0.0:  # before the flagged dose: integrate the periodic profile
                hi = min(s1, 0.0)
                grid = np.linspace(s0, hi, 2001)
                u = np.mod(grid, d.every_h)
                prof = steady_state_profile(a, lam, d.amount_mg, d.duration_h, d.every_h, u)
                out += np.trapezoid(prof, grid, axis=1)
    return out
