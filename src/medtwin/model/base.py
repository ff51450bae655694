"""The Model contract shared by every mechanistic model (physiology and pharmacology).

A :class:`Model` declares, as data:

- its **parameters** (:class:`Parameter`: a name with its unit, bounds and a population prior),
- its **states** and **inputs** (:class:`Variable`: a name with its unit),
- its **observables** (:class:`Observable`: a function of the state, mapped to LOINC codes),
- the **event types** it accepts (see :mod:`medtwin.model.events`),
- **presets** (named parameter sets shipped as data files with their citation),

and provides a pure, batched right-hand side ``rhs(t, state[N, S], params[N, P], inputs[N, I])``.
Solving lives in :mod:`medtwin.model.solver`; calibration and assimilation (later) work on the
same arrays: a parameter set is one row of a ``[N, P]`` array, so N patients, N particles or N
posterior samples run through the same code.

For speed a model also gives the same right-hand side as a per-row kernel compiled with numba
(:attr:`Model.rhs_row`), which the solver's fast path calls; :meth:`Model.rhs` is that kernel
looped over the rows, so there is one implementation of the equations.

>>> from medtwin.model import get_model
>>> m = get_model("uva_padova_2008")
>>> m.parameter_names()[:3]
['bw_kg', 'kabs_per_min', 'kmax_per_min']
>>> m.observable("bg_mg_dl").loinc
('2339-0', '2345-7')
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from datetime import datetime

    from medtwin.model.events import Event, Scenario

__all__ = [
    "FloatArray",
    "InputSchedule",
    "Model",
    "ModelError",
    "Observable",
    "Parameter",
    "Prior",
    "UnknownModelError",
    "UnknownPresetError",
    "Variable",
]

FloatArray = npt.NDArray[np.float64]

TIME_UNIT_MIN: dict[str, float] = {"min": 1.0, "h": 60.0, "d": 1440.0}
"""Minutes in each model time unit (events are normalised to minutes; a model whose
``time_unit`` is ``h`` or ``d`` converts event times in its ``schedule``)."""


class ModelError(ValueError):
    """Bad model input (parameters, scenario, options); the message names what and where."""


class UnknownModelError(ModelError, LookupError):
    """No model of that name; the message lists the known ones."""


class UnknownPresetError(ModelError, LookupError):
    """No preset of that name for the model; the message lists the known ones."""


class OutsidePopulationError(ModelError):
    """The patient is outside the population the model was built and validated for; the
    message says which characteristic and the model's range, with the source."""


@dataclass(frozen=True)
class Prior:
    """A population prior of one parameter.

    ``kind`` is ``"lognormal"`` (``log(value) ~ Normal(loc, scale)``), ``"normal"``
    (``value ~ Normal(loc, scale)``) or ``"fixed"`` (``value == loc``, not estimated).

    >>> Prior("lognormal", 0.0, 0.1).sample(np.random.default_rng(0), 2).shape
    (2,)
    """

    kind: Literal["lognormal", "normal", "fixed"]
    loc: float
    scale: float = 0.0
    source: str = ""

    def sample(self, rng: np.random.Generator, n: int) -> FloatArray:
        """``n`` draws from the prior."""
        if self.kind == "fixed" or self.scale == 0.0:
            value = math.exp(self.loc) if self.kind == "lognormal" else self.loc
            return np.full(n, value)
        draws = rng.normal(self.loc, self.scale, n)
        return np.exp(draws) if self.kind == "lognormal" else draws

    def log_density(self, value: FloatArray) -> FloatArray:
        """Log prior density (up to a constant for ``"fixed"``: 0 everywhere)."""
        value = np.asarray(value, dtype=np.float64)
        if self.kind == "fixed" or self.scale == 0.0:
            return np.zeros_like(value)
        if self.kind == "lognormal":
            with np.errstate(divide="ignore", invalid="ignore"):
                z = (np.log(value) - self.loc) / self.scale
                out = -0.5 * z * z - np.log(value * self.scale * math.sqrt(2.0 * math.pi))
            return np.where(value > 0, out, -np.inf)
        z = (value - self.loc) / self.scale
        return -0.5 * z * z - math.log(self.scale * math.sqrt(2.0 * math.pi))


@dataclass(frozen=True)
class Parameter:
    """One model parameter: its name carries its unit (``kabs_per_min``, ``vg_dl_per_kg``).

    ``lower``/``upper`` are the bounds a calibration may search (inclusive); ``prior`` is the
    population prior; ``source`` cites where the parameter (and its meaning) comes from.
    """

    name: str
    unit: str
    description: str
    lower: float
    upper: float
    prior: Prior
    source: str = ""
    symbol: str = ""


@dataclass(frozen=True)
class Variable:
    """A state or an input: a name (with its unit) and a description.

    ``nonnegative`` (states): the quantity cannot go below zero (a mass, an amount); the
    solver projects it back to zero should a step overshoot (as CVODE's inequality
    constraints do), so that a model that stops a mass at zero keeps it there exactly.
    """

    name: str
    unit: str
    description: str
    symbol: str = ""
    nonnegative: bool = False


@dataclass(frozen=True)
class Observable:
    """Something that can be measured, computed from the state.

    ``loinc`` lists the LOINC codes whose observations this observable predicts (in the unit
    ``unit``); ``function`` maps ``(state[N, T, S], params[N, P])`` to ``[N, T]``.
    """

    name: str
    unit: str
    description: str
    loinc: tuple[str, ...]
    function: Callable[..., FloatArray] = field(repr=False, compare=False)
    timed: bool = False
    """``function`` also takes ``times=`` (the output times ``[T]``, model unit), which the
    solver passes: an observable that reads the time (an SBML rule) uses them exactly."""

    def evaluate(self, states: FloatArray, params: FloatArray, times: FloatArray) -> FloatArray:
        """The observable ``[N, T]`` of ``states [N, T, S]`` at ``times [T]`` (model unit)."""
        if self.timed:
            return self.function(states, params, times=times)
        return self.function(states, params)


@dataclass(frozen=True)
class InputSchedule:
    """Piecewise-constant inputs: ``values[k]`` (shape ``[N, I]``) holds on
    ``[boundaries[k], boundaries[k + 1])``, in the model's time unit.
    """

    boundaries: FloatArray
    values: FloatArray

    def __post_init__(self) -> None:
        b, v = self.boundaries, self.values
        if b.ndim != 1 or v.ndim != 3 or v.shape[0] != b.shape[0] - 1:
            raise ModelError(f"schedule shapes do not fit: boundaries {b.shape}, values {v.shape}")
        if np.any(np.diff(b) <= 0):
            raise ModelError("schedule boundaries must increase strictly")


class Model(ABC):
    """A mechanistic model: declared parameters, states, inputs, observables and a batched rhs.

    Subclasses set the class attributes and implement :meth:`schedule` (events -> inputs),
    :meth:`initial_state`, :attr:`rhs_row` (a numba-compilable per-row kernel
    ``rhs_row(t, x[S], p[P], u[I], dx[S]) -> None``) and may override :attr:`jump_row`
    (``jump_row(x[S], p[P], u_before[I], u_after[I]) -> None``, applied in place at every
    input boundary; for hybrid models whose discrete memory is a state, e.g. the gastric
    emptying of UVA/Padova).
    """

    name: ClassVar[str]
    version: ClassVar[str]
    title: ClassVar[str]
    time_unit: ClassVar[Literal["min", "h", "d"]]
    references: ClassVar[tuple[str, ...]]
    event_types: ClassVar[frozenset[str]]
    parameters: ClassVar[tuple[Parameter, ...]]
    states: ClassVar[tuple[Variable, ...]]
    inputs: ClassVar[tuple[Variable, ...]]
    observables: ClassVar[tuple[Observable, ...]]
    default_rtol: ClassVar[float] = 1e-7
    """Relative tolerance of the adaptive solver unless the caller gives one."""
    default_atol: ClassVar[float] = 1e-7
    """Absolute tolerance (in the states' own units) unless the caller gives one."""

    # ------------------------------------------------------------------ declared data
    @classmethod
    def parameter_names(cls) -> list[str]:
        """Parameter names in column order of a ``[N, P]`` parameter array."""
        return [p.name for p in cls.parameters]

    @classmethod
    def state_names(cls) -> list[str]:
        """State names in column order of a ``[N, S]`` state array."""
        return [s.name for s in cls.states]

    @classmethod
    def state_floor(cls) -> FloatArray:
        """Lowest value of each state: 0 for non-negative states, -inf for the others."""
        return np.array([0.0 if v.nonnegative else -np.inf for v in cls.states])

    @classmethod
    def input_names(cls) -> list[str]:
        """Input names in column order of a ``[N, I]`` input array."""
        return [u.name for u in cls.inputs]

    @classmethod
    def observable(cls, name: str) -> Observable:
        """The observable called ``name``."""
        for obs in cls.observables:
            if obs.name == name:
                return obs
        known = ", ".join(o.name for o in cls.observables)
        raise ModelError(f"model {cls.name!r} has no observable {name!r} (known: {known})")

    @classmethod
    def lower_bounds(cls) -> FloatArray:
        """Lower bounds of the parameters, ``[P]``."""
        return np.array([p.lower for p in cls.parameters])

    @classmethod
    def upper_bounds(cls) -> FloatArray:
        """Upper bounds of the parameters, ``[P]``."""
        return np.array([p.upper for p in cls.parameters])

    @classmethod
    def sample_prior(cls, n: int, seed: int | None = None) -> FloatArray:
        """``n`` parameter sets drawn from the population priors, clipped to the bounds."""
        rng = np.random.default_rng(seed)
        cols = [p.prior.sample(rng, n) for p in cls.parameters]
        return np.clip(np.stack(cols, axis=1), cls.lower_bounds(), cls.upper_bounds())

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Everything declared, as plain data (for ``medtwin model list --json``)."""
        return {
            "name": cls.name,
            "version": cls.version,
            "title": cls.title,
            "time_unit": cls.time_unit,
            "references": list(cls.references),
            "event_types": sorted(cls.event_types),
            "parameters": [
                {
                    "name": p.name,
                    "unit": p.unit,
                    "description": p.description,
                    "lower": p.lower,
                    "upper": p.upper,
                    "prior": {"kind": p.prior.kind, "loc": p.prior.loc, "scale": p.prior.scale},
                }
                for p in cls.parameters
            ],
            "states": [{"name": s.name, "unit": s.unit} for s in cls.states],
            "inputs": [{"name": u.name, "unit": u.unit} for u in cls.inputs],
            "observables": [
                {"name": o.name, "unit": o.unit, "loinc": list(o.loinc)} for o in cls.observables
            ],
            "presets": cls.preset_names(),
        }

    # ------------------------------------------------------------------ presets
    @classmethod
    @abstractmethod
    def presets(cls) -> Mapping[str, FloatArray]:
        """Named parameter sets (``[P]`` each), read from the model's data files."""

    @classmethod
    def preset_names(cls) -> list[str]:
        """Names of the shipped presets."""
        return list(cls.presets())

    @classmethod
    def preset(cls, names: str | Sequence[str]) -> FloatArray:
        """Parameters of one preset (``[1, P]``) or several (``[N, P]``).

        Raises :class:`UnknownPresetError` listing the known names.
        """
        table = cls.presets()
        wanted = [names] if isinstance(names, str) else list(names)
        rows = []
        for name in wanted:
            if name not in table:
                raise UnknownPresetError(
                    f"unknown preset {name!r} for model {cls.name!r} (known: {', '.join(table)})"
                )
            rows.append(table[name])
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(cls.parameters))

    # ------------------------------------------------------------------ dynamics
    @classmethod
    def check_params(cls, params: FloatArray) -> FloatArray:
        """``params`` as a float ``[N, P]`` array; raises :class:`ModelError` if out of bounds."""
        p = np.atleast_2d(np.asarray(params, dtype=np.float64))
        if p.ndim != 2 or p.shape[1] != len(cls.parameters):
            raise ModelError(
                f"model {cls.name!r} takes parameters of shape [N, {len(cls.parameters)}], "
                f"got {p.shape}"
            )
        bad = ~np.isfinite(p) | (p < cls.lower_bounds()) | (p > cls.upper_bounds())
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            par = cls.parameters[col]
            raise ModelError(
                f"parameter set {row}: {par.name} = {float(p[row, col])!r} is outside "
                f"[{par.lower}, {par.upper}]"
            )
        return p

    @classmethod
    def check_population(cls, patient: Mapping[str, Any]) -> None:
        """Refuse (:class:`OutsidePopulationError`) a patient the model is not valid for.

        ``patient`` holds what the record says, where known: ``age_y``, ``sex``
        (``female``/``male``), ``weight_kg``, ``height_m``, ``conditions`` (a set of
        ``system|code`` strings with canonical system URLs, e.g.
        ``http://snomed.info/sct|46635009``). A missing characteristic is not a
        refusal unless the model needs it. The default accepts everyone; models override it
        with their source's population.
        """
        del patient

    @classmethod
    def check_period(cls, patient: Mapping[str, Any], start: datetime, end: datetime) -> None:
        """Refuse (:class:`OutsidePopulationError`) a simulated period ``[start, end]`` of a
        patient's twin that runs through a time the record shows the model is not valid for
        (``patient`` as :meth:`check_population` gets it; a pregnancy for the body-weight
        model). The default accepts every period."""
        del patient, start, end

    @classmethod
    @abstractmethod
    def initial_state(cls, params: FloatArray) -> FloatArray:
        """The state at t = 0 (``[N, S]``) for parameters ``[N, P]``."""

    @classmethod
    @abstractmethod
    def schedule(cls, events: Sequence[Event], params: FloatArray, t_end: float) -> InputSchedule:
        """Turn validated events into piecewise-constant inputs over ``[0, t_end]``
        (model time unit), for every parameter set.
        """

    rhs_row: ClassVar[Any]
    """Per-row right-hand side kernel (numba-compiled), ``(t, x, p, u, dx) -> None``."""

    jump_row: ClassVar[Any] = None
    """Optional per-row jump kernel applied at input boundaries, ``(x, p, u0, u1) -> None``."""

    compiled_module: ClassVar[str | None] = None
    """Optional module exporting numba ``rhs_row``, ``jump_row`` and ``drive`` compiled with
    ``cache=True`` (compiled once per installation instead of once per process)."""

    @classmethod
    def compiled_kernels(cls) -> tuple[Any, Any, Any]:
        """``(rhs_row, jump_row, drive)`` compiled with numba (once per class and process).

        ``drive`` maps each method (``"dopri5"``, ``"rk4"``) to the solver loop of
        :mod:`medtwin.model._rk4` bound to the model's kernels.
        """
        cached = cls.__dict__.get("_compiled")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        import importlib

        if cls.compiled_module is not None:
            module = importlib.import_module(cls.compiled_module)
            cached = (module.rhs_row, module.jump_row, module.drive)
        else:
            import numba

            from medtwin.model._rk4 import bind, no_jump

            rhs = numba.njit(cls.rhs_row, nogil=True)
            jump = numba.njit(cls.jump_row, nogil=True) if cls.jump_row is not None else no_jump
            from medtwin.model._rk4 import METHODS

            drive = {
                method: bind(
                    rhs, jump, {"__name__": f"{cls.__module__}.{cls.__name__}"}, method=method
                )
                for method in METHODS
            }
            cached = (rhs, jump, drive)
        cls._compiled = cached
        return cached

    _compiled: ClassVar[tuple[Any, Any, Any] | None] = None

    @classmethod
    def rhs(cls, t: float, state: FloatArray, params: FloatArray, inputs: FloatArray) -> FloatArray:
        """The pure batched right-hand side: ``dstate[N, S]``.

        ``state`` is ``[N, S]``, ``params`` ``[N, P]``, ``inputs`` ``[N, I]``; nothing is
        modified.
        """
        x = np.ascontiguousarray(state, dtype=np.float64)
        p = np.ascontiguousarray(params, dtype=np.float64)
        u = np.ascontiguousarray(inputs, dtype=np.float64)
        out = np.empty_like(x)
        kernel = cls.compiled_kernels()[0]
        for i in range(x.shape[0]):
            kernel(float(t), x[i], p[i], u[i], out[i])
        return out

    @classmethod
    def accepts(cls, scenario: Scenario) -> None:
        """Raise :class:`ModelError` if the scenario has an event type this model ignores."""
        for i, ev in enumerate(scenario.events):
            if ev.type not in cls.event_types:
                takes = ", ".join(sorted(cls.event_types)) or "none"
                raise ModelError(
                    f"event {i}: model {cls.name!r} does not take {ev.type!r} events "
                    f"(it takes: {takes})"
                )
