"""The Model contract, the event/scenario format and the batched solver.

Shared by every mechanistic model (:mod:`medtwin.physiology`, :mod:`medtwin.pharmacology`).
See ``docs/model.md``.

>>> from medtwin.model import get_model, parse_scenario, simulate
>>> m = get_model("uva_padova_2008")
>>> s = parse_scenario({"events": [{"type": "basal", "u_per_h": 1.0}]})
>>> r = simulate(m, m.preset("adult#001"), s, t_end=60)
>>> r.model, r.states.shape
('uva_padova_2008', (1, 61, 14))

Importing ``medtwin.model`` loads no model module and does not import numba.
"""

from __future__ import annotations

from medtwin.model.base import (
    FloatArray,
    InputSchedule,
    Model,
    ModelError,
    Observable,
    OutsidePopulationError,
    Parameter,
    Prior,
    UnknownModelError,
    UnknownPresetError,
    Variable,
)
from medtwin.model.events import (
    EVENT_TYPES,
    Event,
    EventSpec,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_scenario,
)
from medtwin.model.registry import ENTRY_POINT_GROUP, all_models, get_model, names
from medtwin.model.solver import SimulationResult, refine_schedule, simulate

__all__ = [
    "ENTRY_POINT_GROUP",
    "EVENT_TYPES",
    "Event",
    "EventSpec",
    "FloatArray",
    "InputSchedule",
    "Model",
    "ModelError",
    "Observable",
    "OutsidePopulationError",
    "Parameter",
    "Prior",
    "Scenario",
    "ScenarioError",
    "SimulationResult",
    "UnknownModelError",
    "UnknownPresetError",
    "Variable",
    "all_models",
    "get_model",
    "load_scenario",
    "names",
    "parse_scenario",
    "refine_schedule",
    "simulate",
]
