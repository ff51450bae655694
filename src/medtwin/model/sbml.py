"""SBML models as medtwin Models: bring a published model (BioModels, a paper's supplement)
and simulate it batched over N parameter sets with medtwin's solver.

:func:`load_sbml` reads an SBML Level 2 or 3 file with libSBML (the reference parser of the
SBML project; Bornstein BJ et al., *Bioinformatics* 2008;24:880-881), lets libSBML promote
local parameters and expand function definitions, and builds a :class:`~medtwin.model.base.Model`
subclass from it:

- **parameters**: the constant global parameters (local ones promoted to ``reaction_param``),
  the constant compartments' sizes and the constant or boundary species that nothing changes,
  with the file's values as the one preset ``"file"``; fixed (bounds ``[0, inf)`` for values
  >= 0, else unbounded) unless the file states a population spread with the ``distrib``
  package (:func:`distrib_priors`) or ``priors=`` gives one (:func:`read_priors`; it takes
  precedence), which a twin then fits;
- **states**: the species that reactions or rate rules change and the parameters with rate
  rules, each holding the value its symbol has in the file's mathematics (a concentration
  unless the species has only substance units), plus the constants set by initial
  assignments (held constant) and, where a rule reads the time, the time itself;
- **right-hand side** (SBML L3V2 specification, section 4.11.7): for a species changed by
  reactions, ``d[S]/dt = sum(stoichiometry x rate) / compartment size`` (``dS/dt`` without the
  division for amounts); rate rules as written; assignment rules and reaction rates are
  evaluated in the order their dependencies give; the time scaled to the model's unit;
- **observables**: every species, and every parameter set by a rule, as the file names
  them; ``loinc`` maps names to LOINC codes where the caller knows them.

The right-hand side is generated as Python source from the file's MathML and compiled with
numba like every medtwin model, so the model runs through :func:`~medtwin.model.solver.simulate`
unchanged. SBML events triggered by the time passing a value set by constants (doses, changes
at a time; with delays, priorities and ``initialValue``) are the model's inputs, one per
event, stepping from 0 to 1 at its execution time, and the jump kernel applies their
assignments there (section 4.12). What the solver cannot honour is refused with the element
and the reason: events triggered by the state, algebraic rules, ``delay``, ``rateOf``, fast
reactions, compartments that change, variable stoichiometry, conversion factors. Scenario
events are not taken; a what-if is a parameter set (a row of the ``[N, P]`` array).

The time unit comes from the file (Level 3 ``timeUnits``; Level 2's default is the second)
or from ``time_unit=`` when the file does not say. medtwin's time units are min, h and d: a
model in seconds runs in minutes (its rates multiplied by 60).

>>> from importlib.resources import files
>>> import numpy as np
>>> from medtwin.model import parse_scenario, simulate
>>> m = load_sbml(files("medtwin.model").joinpath("data/sbml/bergman_1979_core.xml"))
>>> m.time_unit, m.parameter_names()[3:6], m.state_names()
('min', ['p1', 'p2', 'p3'], ['G', 'I', 'S1', 'S2', 'u_basal', 'X'])
>>> r = simulate(m, m.preset("file"), parse_scenario([]), t_end=180, dt_out=30)
>>> np.round(r.observables["G"][0], 1).tolist()
[200.0, 98.8, 73.7, 72.1, 74.7, 77.2, 78.9]
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from medtwin.model.base import (
    TIME_UNIT_MIN,
    FloatArray,
    InputSchedule,
    Model,
    ModelError,
    Observable,
    Parameter,
    Prior,
    Variable,
)
from medtwin.model.events import Event

__all__ = ["SbmlError", "SbmlModel", "cache_dir", "load_sbml", "read_priors"]


class SbmlError(ModelError):
    """An SBML file medtwin cannot use: the message names the file, the element and why."""


_SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PACKAGES = frozenset({"comp", "distrib", "l3v2extendedmath"})
"""SBML Level 3 packages a file may require: hierarchical models (``comp``, flattened by
libSBML), the extended mathematics of L3V2 (max, min, rem ... as far as translated) and
distributions (``distrib``: the parameters' uncertainties become priors, see
:func:`distrib_priors`; a random draw in the model's mathematics is refused)."""
_MODEL_UNIT = {"s": "min", "min": "min", "h": "h", "d": "d"}


class SbmlModel(Model):
    """Base of the classes :func:`load_sbml` builds (one per file)."""

    event_types: ClassVar[frozenset[str]] = frozenset()
    dose_drugs: ClassVar[tuple[str, ...]] = ()
    """The drugs whose ``oral`` and ``infusion`` events go into a species (``doses=``), lower
    case: a twin reads their administrations from the record."""
    inputs: ClassVar[tuple[Variable, ...]] = ()
    default_rtol: ClassVar[float] = 1e-8
    default_atol: ClassVar[float] = 1e-10
    source_file: ClassVar[str] = ""
    sbml_time_unit: ClassVar[str] = "s"
    prior_notes: ClassVar[tuple[str, ...]] = ()
    """Uncertainties of the file (SBML ``distrib``) medtwin could not take as priors, one line
    per parameter (see :func:`distrib_priors`)."""
    _preset: ClassVar[FloatArray]
    _init_row: ClassVar[Callable[[FloatArray], FloatArray]]

    @classmethod
    def presets(cls) -> Mapping[str, FloatArray]:
        """The one preset: the values written in the file (``"file"``)."""
        return {"file": cls._preset}

    @classmethod
    def initial_state(cls, params: FloatArray) -> FloatArray:
        """The file's initial values and initial assignments, for each parameter set."""
        p = np.atleast_2d(np.asarray(params, dtype=np.float64))
        return np.stack([cls._init_row(row) for row in p])

    _event_times: ClassVar[Callable[[FloatArray], FloatArray] | None] = None

    @classmethod
    def schedule(cls, events: Sequence[Event], params: FloatArray, t_end: float) -> InputSchedule:
        """The file's own events as inputs, one per event: 0 before its execution time (for
        each parameter set), 1 from then on; the jump kernel applies its assignments where
        the input steps. An SBML model takes no scenario events (see the module's notes)."""
        p = np.atleast_2d(np.asarray(params, dtype=np.float64))
        n_file = cls._n_file_events
        if cls._event_times is not None:
            times = np.stack([cls._event_times(row) for row in p])  # [N, E]
        else:
            times = np.zeros((p.shape[0], 0))
        per_min = 1.0 / TIME_UNIT_MIN[cls.time_unit]
        doses = cls._dose_spans(events, per_min)
        cuts = {0.0, float(t_end)}
        cuts.update(float(v) for v in times[(times >= 0.0) & (times < t_end)])
        for _, start, end, _ in doses:
            cuts.update(c for c in (start, end) if c < t_end)
        bounds = np.array(sorted(cuts))
        starts = bounds[:-1]
        values = np.zeros((len(starts), p.shape[0], len(cls.inputs)))
        values[:, :, :n_file] = starts[:, None, None] >= times[None, :, :]
        species = sorted({sid for sid, _ in cls._doses.values()})
        counted = np.zeros(len(starts), dtype=bool)
        for column, start, end, amount in doses:
            rate, bolus = n_file + 2 * species.index(column), n_file + 2 * species.index(column) + 1
            if end > start:
                values[(starts >= start) & (starts < end), :, rate] += amount / (end - start)
            else:
                at = int(np.searchsorted(starts, start))
                if at < len(starts):
                    values[at, :, bolus] += amount
                    counted[at] = True
        if cls._doses:
            values[:, :, -1] = np.cumsum(counted)[:, None]
        return InputSchedule(bounds, values)

    _doses: ClassVar[dict[str, tuple[str, float]]] = {}
    _n_file_events: ClassVar[int] = 0

    @classmethod
    def _dose_spans(
        cls, events: Sequence[Event], per_min: float
    ) -> list[tuple[str, float, float, float]]:
        """``(species, start, end, amount in its substance units)`` of each dose (model
        time unit; end == start for a dose given at once)."""
        out = []
        for e in events:
            drug = str(e["drug"]).lower()
            if drug not in cls._doses:
                known = ", ".join(cls._doses) or "none"
                raise ModelError(
                    f"event {e.index} ({e.type}): drug {e['drug']!r} is not dosed into model "
                    f"{cls.name!r} (its doses: {known})"
                )
            if e.get("steady_state"):
                raise ModelError(
                    f"event {e.index} ({e.type}): field 'steady_state' is not supported for an "
                    "SBML model (simulate the regimen from its start)"
                )
            sid, factor = cls._doses[drug]
            for start, duration in e.doses():
                span = duration if e.type == "infusion" else 0.0
                out.append(
                    (sid, start * per_min, (start + span) * per_min, float(e["amount_mg"]) * factor)
                )
        return out

    generated_rhs: ClassVar[str] = ""
    """The generated source of ``rhs_row`` (Python)."""
    generated_source: ClassVar[str] = ""
    """All the generated Python (right-hand side, initial values, observables), to read."""
    generated_jump: ClassVar[str] = ""
    """The generated source of ``jump_row`` (the file's events; empty without events)."""

    @classmethod
    def compiled_kernels(cls) -> tuple[Any, Any, Any]:
        """The kernels compiled with numba and cached on disk: the generated ``rhs_row`` is
        written to a module in :func:`cache_dir` named by its hash, so that a file simulated
        again compiles in no time; where the folder cannot be written, compiled in memory."""
        cached = cls.__dict__.get("_compiled")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        try:
            module = _kernel_module(cls.generated_rhs, cls.generated_jump)
        except OSError:
            return super().compiled_kernels()
        cached = (module.rhs_row, module.jump_row, module.drive)
        cls._compiled = cached
        return cached


def cache_dir() -> Path:
    """Where compiled SBML kernels are kept: ``MEDTWIN_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/medtwin`` (default ``~/.cache/medtwin``), then ``sbml/``."""
    base = os.environ.get("MEDTWIN_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = str(Path(xdg) / "medtwin")
    return Path(base) / "sbml"


_KERNEL_MODULE = """\
# Generated by medtwin.model.sbml {version} from an SBML file: the compiled kernels of one
# model, cached on disk by numba (delete the folder to recompile).
import math

import numba
import numpy as np

from medtwin.model._rk4 import METHODS, bind, no_jump

{rhs}


{jump}


rhs_row = numba.njit(cache=True, nogil=True, error_model="numpy")(rhs_row)
jump_row = (
    no_jump if jump_row is None else numba.njit(cache=True, nogil=True, error_model="numpy")(jump_row)
)
drive = {{m: bind(rhs_row, jump_row, globals(), method=m, cache=True) for m in METHODS}}
"""


def _kernel_module(rhs_source: str, jump_source: str = "") -> Any:
    """Import (writing it first if new) the kernel module of ``rhs_source`` and
    ``jump_source`` (none: no events)."""
    import importlib.util
    import sys

    from medtwin import __version__

    jump = jump_source or "jump_row = None"
    text = _KERNEL_MODULE.format(version=__version__, rhs=rhs_source, jump=jump)
    name = "medtwin_sbml_" + hashlib.sha256(text.encode()).hexdigest()[:20]
    if name in sys.modules:
        return sys.modules[name]
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)  # whole or not at all, for concurrent first runs
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has one
        raise OSError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


# ------------------------------------------------------------------------------------------
# reading


def _libsbml() -> Any:
    try:
        import libsbml  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise SbmlError(
            "reading SBML needs libSBML: pip install 'medtwin[sbml]' (python-libsbml)"
        ) from exc
    return libsbml


def _read(source: Path | Traversable) -> tuple[Any, str, bytes]:
    libsbml = _libsbml()
    label = str(source)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise SbmlError(f"{label}: cannot read the file ({exc.strerror or exc})") from exc
    doc = libsbml.readSBMLFromString(data.decode("utf-8", "replace"))
    problems = []
    for i in range(doc.getNumErrors()):
        err = doc.getError(i)
        if err.getErrorId() == libsbml.MissingXMLEncoding:
            continue  # no encoding in the XML declaration: UTF-8, XML's default (as libRoadRunner)
        if err.getSeverity() >= libsbml.LIBSBML_SEV_ERROR:
            problems.append(f"line {err.getLine()}: {' '.join(err.getMessage().split())}")
    if problems or doc.getModel() is None:
        shown = "; ".join(problems[:3]) or "no <model> element"
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise SbmlError(f"{label}: not a valid SBML file: {shown}{more}")
    for i in range(doc.getNumPlugins() if doc.getLevel() >= 3 else 0):
        package = doc.getPlugin(i).getPackageName()
        if doc.getPackageRequired(package) and package not in _PACKAGES:
            raise SbmlError(
                f"{label}: the file requires the SBML package {package!r}, which medtwin does "
                f"not read (it reads: {', '.join(sorted(_PACKAGES))})"
            )
    if b"drawFromDistribution" in data:
        # the draft distrib format (libSBML drops its elements silently): a function that
        # draws at random, whose fallback body (often a constant) would stand in for every draw
        text = data.decode("utf-8", "replace")
        found = re.search(
            r'<functionDefinition\b[^>]*\bid="([^"]+)"(?:(?!</functionDefinition>).)*?'
            r"drawFromDistribution",
            text,
            re.DOTALL,
        )
        raise SbmlError(
            f"{label}: function {found.group(1) if found else '?'!r} draws from a distribution "
            "(SBML distrib drawFromDistribution): medtwin simulates deterministic models; give "
            "the draw as a parameter (a what-if is a parameter set)"
        )
    options: tuple[str, ...] = ("promoteLocalParameters", "expandFunctionDefinitions")
    if doc.isPackageEnabled("comp"):
        options = ("flatten comp", *options)  # submodels into one model (ids prefixed)
    for option in options:
        props = libsbml.ConversionProperties()
        props.addOption(option, True)
        if doc.convert(props) != libsbml.LIBSBML_OPERATION_SUCCESS:
            raise SbmlError(f"{label}: libSBML could not apply {option!r} to the model")
    return doc, label, data


def _time_unit(model: Any, doc: Any, label: str, given: str | None) -> str:
    """The unit of the file's time: ``time_unit=`` if given, else what the file says."""
    if given is not None:
        if given not in _SECONDS:
            raise SbmlError(f"time_unit must be one of {', '.join(_SECONDS)}, got {given!r}")
        return given
    unit = model.getTimeUnits() if doc.getLevel() >= 3 else "time"
    if doc.getLevel() >= 3 and not model.isSetTimeUnits():
        raise SbmlError(
            f"{label}: the model does not say its unit of time (Level 3 timeUnits): "
            "give it (time_unit='s', 'min', 'h' or 'd')"
        )
    if unit == "second":
        return "s"
    definition = model.getUnitDefinition(unit)
    if definition is None:
        if doc.getLevel() < 3:
            return "s"  # SBML Level 2: the built-in 'time' is the second
    elif definition.getNumUnits() == 1:
        u = definition.getUnit(0)
        libsbml = _libsbml()
        if u.getKind() == libsbml.UNIT_KIND_SECOND and u.getExponent() == 1:
            seconds = u.getMultiplier() * 10.0 ** u.getScale()
            for name, value in _SECONDS.items():
                if math.isclose(seconds, value, rel_tol=1e-12):
                    return name
    raise SbmlError(
        f"{label}: the unit of time {unit!r} is not the second, minute, hour or day: give "
        "time_unit= to say which it is"
    )


# ------------------------------------------------------------------------------------------
# mathematics -> Python source

_FUNCTIONS = {
    "exp": ("math.exp", "np.exp"),
    "ln": ("math.log", "np.log"),
    "abs": ("abs", "np.abs"),
    "floor": ("math.floor", "np.floor"),
    "ceiling": ("math.ceil", "np.ceil"),
    "sin": ("math.sin", "np.sin"),
    "cos": ("math.cos", "np.cos"),
    "tan": ("math.tan", "np.tan"),
    "arcsin": ("math.asin", "np.arcsin"),
    "arccos": ("math.acos", "np.arccos"),
    "arctan": ("math.atan", "np.arctan"),
    "sinh": ("math.sinh", "np.sinh"),
    "cosh": ("math.cosh", "np.cosh"),
    "tanh": ("math.tanh", "np.tanh"),
    "arcsinh": ("math.asinh", "np.arcsinh"),
    "arccosh": ("math.acosh", "np.arccosh"),
    "arctanh": ("math.atanh", "np.arctanh"),
    "rem": ("np.fmod", "np.fmod"),  # (numba has no math.fmod)
}
_RECIPROCAL = {  # f(x) = 1 / g(x), or g(1 / x) for the inverse functions
    "sec": ("cos", False),
    "csc": ("sin", False),
    "cot": ("tan", False),
    "sech": ("cosh", False),
    "csch": ("sinh", False),
    "coth": ("tanh", False),
    "arcsec": ("arccos", True),
    "arccsc": ("arcsin", True),
    "arccot": ("arctan", True),
    "arcsech": ("arccosh", True),
    "arccsch": ("arcsinh", True),
    "arccoth": ("arctanh", True),
}


@dataclass
class _Translator:
    """Writes one SBML math tree as a Python expression, for the compiled row kernel
    (``vector=False``: floats) or for the observables over ``[N, T]`` arrays (``vector=True``)."""

    names: Mapping[str, str]
    label: str
    time: str
    vector: bool = False

    def __call__(self, node: Any, where: str) -> str:
        if node is None:
            raise SbmlError(f"{self.label}: {where}: no mathematics")
        return self._expr(node, where)

    def _expr(self, node: Any, where: str) -> str:
        libsbml = _libsbml()
        t = node.getType()
        kids = [node.getChild(i) for i in range(node.getNumChildren())]

        def sub(k: Any) -> str:
            return self._expr(k, where)

        def fn(name: str) -> str:
            return _FUNCTIONS[name][1 if self.vector else 0]

        if t == libsbml.AST_NAME:
            name = node.getName()
            if name not in self.names:
                raise SbmlError(f"{self.label}: {where}: unknown symbol {name!r}")
            return self.names[name]
        if t == libsbml.AST_NAME_TIME:
            return self.time
        if t == libsbml.AST_NAME_AVOGADRO:
            return repr(6.02214076e23)
        if t in (libsbml.AST_INTEGER, libsbml.AST_REAL, libsbml.AST_REAL_E, libsbml.AST_RATIONAL):
            return repr(float(node.getValue()))
        if t == libsbml.AST_CONSTANT_E:
            return repr(math.e)
        if t == libsbml.AST_CONSTANT_PI:
            return repr(math.pi)
        if t == libsbml.AST_CONSTANT_TRUE:
            return "True"
        if t == libsbml.AST_CONSTANT_FALSE:
            return "False"
        if t == libsbml.AST_PLUS:
            return "(" + " + ".join(sub(k) for k in kids) + ")" if kids else "0.0"
        if t == libsbml.AST_TIMES:
            return "(" + " * ".join(sub(k) for k in kids) + ")" if kids else "1.0"
        if t == libsbml.AST_MINUS:
            return f"(-{sub(kids[0])})" if len(kids) == 1 else f"({sub(kids[0])} - {sub(kids[1])})"
        if t == libsbml.AST_DIVIDE:
            return f"({sub(kids[0])} / {sub(kids[1])})"
        if t in (libsbml.AST_POWER, libsbml.AST_FUNCTION_POWER):
            return f"({sub(kids[0])} ** {sub(kids[1])})"
        if t == libsbml.AST_FUNCTION_ROOT:
            degree, base = (sub(kids[0]), sub(kids[1])) if len(kids) == 2 else ("2.0", sub(kids[0]))
            return f"({base} ** (1.0 / {degree}))"
        if t == libsbml.AST_FUNCTION_LOG:
            base, arg = (sub(kids[0]), sub(kids[1])) if len(kids) == 2 else ("10.0", sub(kids[0]))
            return f"({fn('ln')}({arg}) / {fn('ln')}({base}))"
        simple = {
            libsbml.AST_FUNCTION_EXP: "exp",
            libsbml.AST_FUNCTION_LN: "ln",
            libsbml.AST_FUNCTION_ABS: "abs",
            libsbml.AST_FUNCTION_FLOOR: "floor",
            libsbml.AST_FUNCTION_CEILING: "ceiling",
            libsbml.AST_FUNCTION_SIN: "sin",
            libsbml.AST_FUNCTION_COS: "cos",
            libsbml.AST_FUNCTION_TAN: "tan",
            libsbml.AST_FUNCTION_ARCSIN: "arcsin",
            libsbml.AST_FUNCTION_ARCCOS: "arccos",
            libsbml.AST_FUNCTION_ARCTAN: "arctan",
            libsbml.AST_FUNCTION_SINH: "sinh",
            libsbml.AST_FUNCTION_COSH: "cosh",
            libsbml.AST_FUNCTION_TANH: "tanh",
        }
        simple.update(
            {
                libsbml.AST_FUNCTION_ARCSINH: "arcsinh",
                libsbml.AST_FUNCTION_ARCCOSH: "arccosh",
                libsbml.AST_FUNCTION_ARCTANH: "arctanh",
            }
        )
        if t == libsbml.AST_FUNCTION_FACTORIAL:  # n! = Gamma(n + 1)
            arg = sub(kids[0])
            return f"_gamma_v({arg} + 1.0)" if self.vector else f"math.gamma({arg} + 1.0)"
        if t in simple:
            return f"{fn(simple[t])}({sub(kids[0])})"
        reciprocal = {getattr(libsbml, f"AST_FUNCTION_{k.upper()}"): k for k in _RECIPROCAL}
        if t in reciprocal:
            base, inverse = _RECIPROCAL[reciprocal[t]]
            arg = sub(kids[0])
            return f"{fn(base)}(1.0 / {arg})" if inverse else f"(1.0 / {fn(base)}({arg}))"
        if t == libsbml.AST_FUNCTION_REM:
            return f"{fn('rem')}({sub(kids[0])}, {sub(kids[1])})"
        if t == libsbml.AST_FUNCTION_QUOTIENT:
            ratio = f"({sub(kids[0])} / {sub(kids[1])})"
            return f"np.trunc({ratio})"
        if t == libsbml.AST_LOGICAL_IMPLIES:
            a, b = sub(kids[0]), sub(kids[1])
            if self.vector:
                return f"np.logical_or(np.logical_not({a}), {b})"
            return f"((not {a}) or {b})"
        relational = {
            libsbml.AST_RELATIONAL_EQ: "==",
            libsbml.AST_RELATIONAL_NEQ: "!=",
            libsbml.AST_RELATIONAL_GT: ">",
            libsbml.AST_RELATIONAL_GEQ: ">=",
            libsbml.AST_RELATIONAL_LT: "<",
            libsbml.AST_RELATIONAL_LEQ: "<=",
        }
        if t in relational:
            op = relational[t]
            parts = [f"({sub(a)} {op} {sub(b)})" for a, b in itertools.pairwise(kids)]
            return self._all(parts)
        if t == libsbml.AST_LOGICAL_AND:
            return self._all([sub(k) for k in kids])
        if t == libsbml.AST_LOGICAL_OR:
            parts = [sub(k) for k in kids]
            if self.vector:
                return "np.logical_or.reduce([" + ", ".join(parts) + "])" if parts else "False"
            return "(" + " or ".join(parts) + ")" if parts else "False"
        if t == libsbml.AST_LOGICAL_NOT:
            return f"np.logical_not({sub(kids[0])})" if self.vector else f"(not {sub(kids[0])})"
        if t == libsbml.AST_LOGICAL_XOR:
            parts = [sub(k) for k in kids]
            if self.vector:
                return (
                    "(np.sum(["
                    + ", ".join(f"np.asarray({p}, dtype=np.int64)" for p in parts)
                    + "], axis=0) % 2 == 1)"
                )
            return "((" + " + ".join(f"int({p})" for p in parts) + ") % 2 == 1)"
        if t == libsbml.AST_FUNCTION_PIECEWISE:
            pieces = [(sub(kids[i]), sub(kids[i + 1])) for i in range(0, len(kids) - 1, 2)]
            otherwise = sub(kids[-1]) if len(kids) % 2 == 1 else "math.nan"
            out = otherwise if not self.vector else otherwise.replace("math.nan", "np.nan")
            for value, cond in reversed(pieces):
                if self.vector:
                    out = f"np.where({cond}, {value}, {out})"
                else:
                    out = f"({value} if {cond} else {out})"
            return out
        names = {
            getattr(libsbml, "AST_FUNCTION_MAX", -1): ("max", "np.maximum"),
            getattr(libsbml, "AST_FUNCTION_MIN", -2): ("min", "np.minimum"),
        }
        if t in names:
            scalar, vec = names[t]
            parts = [sub(k) for k in kids]
            if self.vector:
                out = parts[0]
                for p in parts[1:]:
                    out = f"{vec}({out}, {p})"
                return out
            return f"{scalar}(" + ", ".join(parts) + ")"
        what = node.getName() or libsbml.formulaToL3String(node)
        if t == libsbml.AST_FUNCTION_DELAY:
            what = "delay"
        draws = {getattr(libsbml, n) for n in dir(libsbml) if n.startswith("AST_DISTRIB_FUNCTION_")}
        if t in draws:
            raise SbmlError(
                f"{self.label}: {where}: {what!r} draws from a distribution (SBML distrib): "
                "medtwin simulates deterministic models; give the draw as a parameter"
            )
        raise SbmlError(
            f"{self.label}: {where}: the MathML function {what!r} is not supported "
            "(delay, rateOf and user functions left after expansion are not)"
        )

    def _all(self, parts: list[str]) -> str:
        if not parts:
            return "True"
        if len(parts) == 1:
            return parts[0]
        if self.vector:
            return "np.logical_and.reduce([" + ", ".join(parts) + "])"
        return "(" + " and ".join(parts) + ")"


# ------------------------------------------------------------------------------------------
# the model


@dataclass
class _Symbol:
    id: str
    kind: Literal["parameter", "state", "computed", "frozen"]
    index: int = -1
    value: float = math.nan
    unit: str = ""
    description: str = ""
    given: str = ""  # species: whether the file gives an amount or a concentration


def _python_name(sbml_id: str) -> str:
    """A Python local for an SBML id (SBML ids are ``[A-Za-z_][A-Za-z0-9_]*``)."""
    return "v_" + re.sub(r"\W", "_", sbml_id)


def _unit_text(model: Any, unit_id: str) -> str:
    if not unit_id:
        return ""
    libsbml = _libsbml()
    definition = model.getUnitDefinition(unit_id)
    if definition is None:
        return unit_id  # a base unit (mole, litre, second ...)
    return str(libsbml.UnitDefinition.printUnits(definition, True)) or unit_id


def _order(
    exprs: Mapping[str, tuple[Any, str]], deps: Mapping[str, set[str]], label: str
) -> list[str]:
    """The computed symbols in an order where each comes after what it reads."""
    done: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, chain: list[str]) -> None:
        mark = state.get(name, 0)
        if mark == 2:
            return
        if mark == 1:
            loop = " -> ".join([*chain[chain.index(name) :], name])
            raise SbmlError(
                f"{label}: the rules and reactions depend on each other in a loop: {loop}"
            )
        state[name] = 1
        for other in sorted(deps[name]):
            if other in exprs:
                visit(other, [*chain, name])
        state[name] = 2
        done.append(name)

    for name in exprs:
        visit(name, [])
    return done


def _math_symbols(node: Any) -> set[str]:
    libsbml = _libsbml()
    return {n.getName() for n in _nodes(node) if n.getType() == libsbml.AST_NAME}


def load_sbml(
    source: str | Path | Traversable,
    *,
    name: str | None = None,
    time_unit: str | None = None,
    loinc: Mapping[str, Sequence[str]] | None = None,
    doses: Mapping[str, str] | None = None,
    units_per_mg: Mapping[str, float] | None = None,
    priors: Mapping[str, Mapping[str, Any]] | str | Path | None = None,
    units: Mapping[str, str] | None = None,
) -> type[SbmlModel]:
    """A :class:`~medtwin.model.base.Model` class for the SBML file ``source``.

    ``name`` (default: the model's id, else the file's stem) names the model in results;
    ``time_unit`` (``s``, ``min``, ``h``, ``d``) gives the unit of the file's time when the
    file does not say it (or overrides it); ``loinc`` maps observable names (SBML ids) to
    LOINC codes. ``doses`` maps drug names to species: the scenario's ``oral`` and
    ``infusion`` events of that drug put their ``amount_mg`` into the species (an oral dose
    and an infusion of duration 0 at once, an infusion at a constant rate over its
    duration), converted to the species' substance units by ``units_per_mg[drug]``, or by
    its unit when that is a mass (a species in moles needs ``units_per_mg``: 1 / the molar
    mass). ``priors`` (a mapping, or a TOML file of tables by parameter id; see
    :func:`read_priors`) gives parameters population priors, so that a twin can fit them to a
    patient (the file's own values are fixed otherwise); ``units`` gives observables their
    UCUM unit (``{"C": "mg/L"}``), which SBML's unit definitions do not carry, so that the
    record's readings can be converted to it. The version recorded with every result
    is the file's SHA-256 (first 12 hex digits), and the priors' when given. Raises
    :class:`SbmlError` naming the file, the element and the reason.
    """
    path = Path(source) if isinstance(source, str) else source
    doc, label, data = _read(path)
    model = doc.getModel()
    unit = _time_unit(model, doc, label, time_unit)
    model_unit = _MODEL_UNIT[unit]
    # SBML time units per medtwin time unit (a model in seconds runs in minutes: 60)
    scale = _SECONDS[model_unit] / _SECONDS[unit]

    def refuse(element: str, reason: str) -> SbmlError:
        return SbmlError(f"{label}: {element}: {reason}")

    events = [_read_event(model.getEvent(i), i, doc, refuse) for i in range(model.getNumEvents())]
    dosed = {drug.lower(): sid for drug, sid in (doses or {}).items()}
    event_targets = {target for ev in events for target, _ in ev.assignments} | set(dosed.values())
    rules: dict[str, Any] = {}
    rate_rules: dict[str, Any] = {}
    for i in range(model.getNumRules()):
        rule = model.getRule(i)
        if rule.isAlgebraic():
            raise refuse(f"rule {i}", "algebraic rules are not supported")
        (rate_rules if rule.isRate() else rules)[rule.getVariable()] = rule.getMath()
    initial: dict[str, Any] = {
        model.getInitialAssignment(i).getSymbol(): model.getInitialAssignment(i).getMath()
        for i in range(model.getNumInitialAssignments())
    }
    if doc.getLevel() >= 3 and model.isSetConversionFactor():
        raise refuse("model", "conversion factors are not supported")

    symbols: dict[str, _Symbol] = {}
    params: list[_Symbol] = []
    states: list[_Symbol] = []

    def add(sym: _Symbol) -> None:
        if sym.kind == "parameter":
            sym.index = len(params)
            params.append(sym)
        elif sym.kind in ("state", "frozen"):
            sym.index = len(states)
            states.append(sym)
        symbols[sym.id] = sym

    def classify(sid: str, changed: bool) -> Literal["parameter", "state", "computed", "frozen"]:
        if sid in rules:
            return "computed"
        if sid in rate_rules or changed or sid in event_targets:
            return "state"
        if sid in initial:
            return "frozen"  # set once at t = 0 from other values, constant afterwards
        return "parameter"

    # compartments
    for i in range(model.getNumCompartments()):
        c = model.getCompartment(i)
        cid = c.getId()
        if cid in rules or cid in rate_rules or cid in event_targets:
            raise refuse(f"compartment {cid!r}", "compartments that change size are not supported")
        if cid in initial:
            raise refuse(
                f"compartment {cid!r}", "a size set by an initial assignment is not supported"
            )
        size = c.getSize() if c.isSetSize() else (1.0 if doc.getLevel() < 3 else math.nan)
        if math.isnan(size):
            raise refuse(f"compartment {cid!r}", "no size")
        add(
            _Symbol(
                cid,
                "parameter",
                value=size,
                unit=_unit_text(model, c.getUnits()) if c.isSetUnits() else "",
                description=f"size of compartment {c.getName() or cid}",
            )
        )
    # which species reactions change
    changed: set[str] = set()
    stoich_ids: dict[str, float] = {}
    for i in range(model.getNumReactions()):
        r = model.getReaction(i)
        if r.isSetFast() and r.getFast():
            raise refuse(f"reaction {r.getId()!r}", "fast reactions are not supported")
        if not r.isSetKineticLaw() or not r.getKineticLaw().isSetMath():
            raise refuse(f"reaction {r.getId()!r}", "no kinetic law")
        for ref in [
            *(r.getReactant(j) for j in range(r.getNumReactants())),
            *(r.getProduct(j) for j in range(r.getNumProducts())),
        ]:
            if doc.getLevel() < 3 and ref.isSetStoichiometryMath():
                raise refuse(f"reaction {r.getId()!r}", "stoichiometryMath is not supported")
            if doc.getLevel() >= 3 and ref.isSetId():
                if not ref.getConstant() or ref.getId() in rules or ref.getId() in rate_rules:
                    raise refuse(
                        f"reaction {r.getId()!r}",
                        f"variable stoichiometry {ref.getId()!r} is not supported",
                    )
                stoich_ids[ref.getId()] = _stoichiometry(ref, doc)
            species = model.getSpecies(ref.getSpecies())
            if species is not None and not species.getBoundaryCondition():
                changed.add(species.getId())
    # species
    conc: dict[str, str] = {}  # species whose symbol is a concentration -> compartment id
    for i in range(model.getNumSpecies()):
        s = model.getSpecies(i)
        sid = s.getId()
        if doc.getLevel() >= 3 and s.isSetConversionFactor():
            raise refuse(f"species {sid!r}", "conversion factors are not supported")
        compartment = model.getCompartment(s.getCompartment())
        is_conc = (
            not s.getHasOnlySubstanceUnits() and compartment.getSpatialDimensionsAsDouble() != 0
        )
        if is_conc:
            conc[sid] = compartment.getId()
        if s.isSetInitialConcentration():
            value = s.getInitialConcentration()
            given = "concentration"
        elif s.isSetInitialAmount():
            value = s.getInitialAmount()
            given = "amount"
        else:
            value, given = math.nan, ""
            if sid not in initial and sid not in rules:
                raise refuse(f"species {sid!r}", "no initial amount or concentration")
        kind = classify(sid, sid in changed)
        if kind == "parameter" and given == "amount" and is_conc:
            value = value / compartment.getSize()  # the symbol is the concentration
        elif kind == "parameter" and given == "concentration" and not is_conc:
            value = value * compartment.getSize()
        substance = _unit_text(model, s.getSubstanceUnits()) if s.isSetSubstanceUnits() else ""
        volume = _unit_text(model, compartment.getUnits()) if compartment.isSetUnits() else ""
        add(
            _Symbol(
                sid,
                kind,
                value=value,
                unit=f"{substance}/{volume}" if is_conc and substance and volume else substance,
                description=(
                    f"{s.getName() or sid} ({'concentration' if is_conc else 'amount'} in "
                    f"compartment {compartment.getId()})"
                ),
                given=given,
            )
        )
    # parameters
    for i in range(model.getNumParameters()):
        p = model.getParameter(i)
        pid = p.getId()
        value = p.getValue() if p.isSetValue() else math.nan
        if math.isnan(value) and pid not in initial and pid not in rules:
            raise refuse(f"parameter {pid!r}", "no value and no rule or initial assignment")
        add(
            _Symbol(
                pid,
                classify(pid, False),
                value=value,
                unit=_unit_text(model, p.getUnits()) if p.isSetUnits() else "",
                description=p.getName() or pid,
            )
        )
    for sid, value in stoich_ids.items():
        symbols[sid] = _Symbol(sid, "parameter", index=-1, value=value)
    for target in [*rules, *rate_rules, *initial]:
        if target not in symbols:
            raise refuse(
                f"rule or initial assignment of {target!r}",
                "its target is not a compartment, species or parameter",
            )

    # computed symbols: assignment rules and reaction rates (in the order they read each other)
    reactions = {
        model.getReaction(i).getId(): model.getReaction(i) for i in range(model.getNumReactions())
    }
    exprs: dict[str, tuple[Any, str]] = {
        sid: (rules[sid], f"assignment rule of {sid!r}") for sid in rules
    }
    for rid, r in reactions.items():
        if rid in exprs or (rid in symbols and rid not in reactions):
            raise refuse(f"reaction {rid!r}", "its id is used twice")
        exprs[rid] = (r.getKineticLaw().getMath(), f"kinetic law of reaction {rid!r}")
    uses_time = any(_uses_time(m) for m, _ in exprs.values()) or any(
        _uses_time(m) for m in rate_rules.values()
    )
    if uses_time or not states:
        # the time as a state, for observables that read it (and so that a model whose
        # quantities are all set by rules still has a state to integrate)
        add(_Symbol("__time__", "state", value=0.0, unit=model_unit, description="time"))
    deps = {k: _math_symbols(m) for k, (m, _) in exprs.items()}
    order = _order(exprs, deps, label)

    # names in the row kernel (p[i], x[j]) and in the vectorised observables
    def symbol_name(sid: str, vector: bool = False) -> str:
        if sid in exprs:
            return _python_name(sid)
        sym = symbols[sid]
        if sym.index < 0:
            return repr(sym.value)  # a constant (a species reference's stoichiometry)
        if sym.kind == "parameter":
            return f"p[:, None, {sym.index}]" if vector else f"p[{sym.index}]"
        return f"x[:, :, {sym.index}]" if vector else f"x[{sym.index}]"

    def row_name(sid: str) -> str:
        return symbol_name(sid)

    def vec_name(sid: str) -> str:
        return symbol_name(sid, vector=True)

    all_ids = [*symbols, *exprs]
    row = _Translator({k: row_name(k) for k in all_ids}, label, time=f"(t * {scale!r})")
    vec = _Translator(
        {k: vec_name(k) for k in all_ids},
        label,
        time=f"(tt * {scale!r})",
        vector=True,
    )

    # the row kernel
    lines = ["def rhs_row(t, x, p, u, dx):"]
    for sid in order:
        node, where = exprs[sid]
        lines.append(f"    {_python_name(sid)} = {row(node, where)}")
    flux: dict[str, list[str]] = {}
    for rid, r in reactions.items():
        for refs, sign in (
            ((r.getReactant(j) for j in range(r.getNumReactants())), -1.0),
            ((r.getProduct(j) for j in range(r.getNumProducts())), 1.0),
        ):
            for ref in refs:
                sid = ref.getSpecies()
                if sid not in changed:
                    continue
                nu = sign * _stoichiometry(ref, doc)
                flux.setdefault(sid, []).append(f"{nu!r} * {_python_name(rid)}")
    for sym in states:
        target = f"dx[{sym.index}]"
        if sym.id == "__time__":
            lines.append(f"    {target} = 1.0")
        elif sym.id in rate_rules:
            lines.append(
                f"    {target} = {scale!r} * {row(rate_rules[sym.id], f'rate rule of {sym.id!r}')}"
            )
        elif sym.kind == "frozen":
            lines.append(f"    {target} = 0.0")
        else:
            total = " + ".join(flux.get(sym.id, [])) or "0.0"
            if sym.id in conc:
                total = f"({total}) / {row_name(conc[sym.id])}"
            lines.append(f"    {target} = {scale!r} * ({total})")
    dose_inputs, dose_lines, dose_jump, factors = _dose_code(
        model, dosed, units_per_mg or {}, symbols, conc, row_name, len(events), refuse
    )
    lines.extend(dose_lines)
    lines.append("    return None")
    rhs_source = "\n".join(lines)
    preset = np.array([s.value for s in params], dtype=np.float64)
    jump_source, times_source, event_names = _event_code(
        events, symbols, preset, lines[1 : 1 + len(order)], row, scale, label
    )
    if dose_jump:
        body = jump_source.splitlines()[1:-1] if events else []
        jump_source = "\n".join(
            ["def jump_row(x, p, u0, u1):", *body, *dose_jump, "    return None"]
        )

    # initial values (plain Python over one parameter row)
    init_lines = ["def init_row(p):", f"    x = np.empty({len(states)})"]
    init_names: dict[str, str] = {}
    for sym in symbols.values():
        if sym.kind == "parameter":
            init_names[sym.id] = row_name(sym.id)
    pending_values: list[tuple[str, str]] = []
    init_exprs: dict[str, tuple[Any, str]] = {}
    for sym in states:
        if sym.id in initial:
            init_exprs[sym.id] = (initial[sym.id], f"initial assignment of {sym.id!r}")
        elif sym.id == "__time__":
            pending_values.append((sym.id, "0.0"))
        else:
            given = sym.given
            value = repr(sym.value)
            if sym.id in conc and given == "amount":
                value = f"({value} / {row_name(conc[sym.id])})"
            elif sym.id not in conc and given == "concentration":
                value = f"({value} * {row_name(model.getSpecies(sym.id).getCompartment())})"
            pending_values.append((sym.id, value))
    for sid in rules:
        init_exprs.setdefault(sid, exprs[sid])
    for rid in reactions:
        init_exprs.setdefault(rid, exprs[rid])
    init_translator = _Translator(
        {
            k: (
                _python_name(k)
                if (k in init_exprs or (symbols.get(k) and symbols[k].kind in ("state", "frozen")))
                else row_name(k)
            )
            for k in all_ids
        },
        label,
        time="0.0",
    )
    init_deps = {k: _math_symbols(m) for k, (m, _) in init_exprs.items()}
    init_lines += [f"    {_python_name(sid)} = {value}" for sid, value in pending_values]
    for sid in _order(init_exprs, init_deps, label):
        node, where = init_exprs[sid]
        init_lines.append(f"    {_python_name(sid)} = {init_translator(node, where)}")
    for sym in states:
        init_lines.append(f"    x[{sym.index}] = {_python_name(sym.id)}")
    init_lines.append("    return x")
    init_source = "\n".join(init_lines)

    # observables: species and rule-set parameters, as their symbols read
    observed: list[str] = []
    for i in range(model.getNumSpecies()):
        observed.append(model.getSpecies(i).getId())
    for i in range(model.getNumParameters()):
        pid = model.getParameter(i).getId()
        if pid in rules or pid in rate_rules or pid in event_targets:
            observed.append(pid)
    obs_lines = ["def observe(x, p, times=None):", "    out = {}"]
    if uses_time:
        index = symbols["__time__"].index
        obs_lines.append(
            f"    tt = x[:, :, {index}] if times is None else np.asarray(times)[None, :]"
        )
    for sid in order:
        node, where = exprs[sid]
        obs_lines.append(f"    {_python_name(sid)} = {vec(node, where)}")
    for sid in observed:
        obs_lines.append(
            f"    out[{sid!r}] = np.broadcast_to({vec_name(sid)}, (x.shape[0], x.shape[1])).astype(np.float64)"
        )
    obs_lines.append("    return out")
    obs_source = "\n".join(obs_lines)

    namespace: dict[str, Any] = {"math": math, "np": np, **_HELPERS}
    try:
        exec(compile(rhs_source, f"<sbml rhs {label}>", "exec"), namespace)
        exec(compile(init_source, f"<sbml init {label}>", "exec"), namespace)
        exec(compile(obs_source, f"<sbml observables {label}>", "exec"), namespace)
        if events or dose_jump:
            exec(compile(jump_source, f"<sbml events {label}>", "exec"), namespace)
        if events:
            exec(compile(times_source, f"<sbml event times {label}>", "exec"), namespace)
    except SyntaxError as exc:  # pragma: no cover - a translator bug, not a user error
        raise SbmlError(f"{label}: medtwin generated invalid code ({exc})") from exc
    observe = namespace["observe"]

    def observable(sid: str) -> Observable:
        sym = symbols[sid]

        def function(
            x: FloatArray, p: FloatArray, times: FloatArray | None = None, _sid: str = sid
        ) -> FloatArray:
            return observe(x, p, times)[_sid]  # type: ignore[no-any-return]

        return Observable(
            name=sid,
            unit=(units or {}).get(sid, sym.unit),
            description=sym.description,
            loinc=tuple((loinc or {}).get(sid, ())),
            function=function,
            timed=uses_time,
        )

    for sym in params:
        if not math.isfinite(sym.value):
            raise refuse(f"{sym.id!r}", "has no finite value in the file")
    for sid in [*(units or {}), *(loinc or {})]:
        if sid not in observed:
            raise SbmlError(
                f"{label}: {sid!r} is not an observable of the model (its observables: "
                f"{', '.join(observed)})"
            )
    prior_specs, prior_label, prior_digest = read_priors(priors, [s.id for s in params])
    file_specs, distrib_notes = distrib_priors(model, params, label)
    distrib_label = f"{Path(label).name} (SBML distrib)"
    labels = {sid: distrib_label for sid in file_specs} | {sid: prior_label for sid in prior_specs}
    prior_specs = file_specs | prior_specs  # a priors file overrides the SBML file's own
    for sym in params:
        if sym.id in prior_specs:
            _, lower, upper = prior_specs[sym.id]
            if not lower <= sym.value <= upper:
                raise SbmlError(
                    f"{labels[sym.id]}: [{sym.id}]: the file's value {sym.value!r} is outside "
                    f"the prior's bounds [{lower!r}, {upper!r}]"
                )
    model_id = model.getId() or ""
    title = model.getName() or model_id or Path(label).stem
    digest = hashlib.sha256(data).hexdigest()[:12]
    attrs: dict[str, Any] = {
        "name": name or model_id or Path(label).stem,
        "version": f"sbml-{digest}" + (f"+priors-{prior_digest}" if prior_digest else ""),
        "title": f"{title} (SBML L{doc.getLevel()}V{doc.getVersion()})",
        "time_unit": model_unit,
        "references": (f"SBML file {Path(label).name} (sha256 {digest}...)",),
        "parameters": tuple(
            _parameter(s, Path(label).name, prior_specs.get(s.id), labels.get(s.id, ""))
            for s in params
        ),
        "states": tuple(Variable(s.id, s.unit, s.description) for s in states),
        "observables": tuple(observable(sid) for sid in observed),
        "source_file": label,
        "prior_notes": tuple(distrib_notes),
        "sbml_time_unit": unit,
        "rhs_row": staticmethod(namespace["rhs_row"]),
        "_preset": preset,
        "_init_row": staticmethod(namespace["init_row"]),
        "generated_source": "\n\n".join([rhs_source, init_source, obs_source]),
        "generated_rhs": rhs_source,
        "generated_jump": jump_source if events or dose_jump else "",
        "inputs": (
            *(
                Variable(
                    f"event_{name}", "", f"SBML event {name!r} executed (0 before, 1 from then)"
                )
                for name in event_names
            ),
            *dose_inputs,
        ),
        "jump_row": staticmethod(namespace["jump_row"]) if events or dose_jump else None,
        "event_types": frozenset({"oral", "infusion"}) if dosed else frozenset(),
        "_doses": {drug: (sid, factors[drug]) for drug, sid in dosed.items()},
        "dose_drugs": tuple(dosed),
        "_n_file_events": len(events),
        "_event_times": staticmethod(namespace["event_times"]) if events else None,
    }
    cls = type(f"Sbml_{_python_name(str(attrs['name']))}", (SbmlModel,), attrs)
    return cls


def read_priors(
    priors: Mapping[str, Mapping[str, Any]] | str | Path | None, names: Sequence[str]
) -> tuple[dict[str, tuple[Prior, float, float]], str, str]:
    """Population priors of an SBML model's parameters: ``{id: (prior, lower, upper)}``, the
    label of where they came from and a hash of their content ('' without priors).

    ``priors`` maps parameter ids to tables (or is a TOML file of them)::

        [p1]                        # log-normal: a positive quantity
        median = 0.028
        cv = 0.4                    # coefficient of variation (log SD sqrt(log(1 + cv^2)))
        lower = 0.001               # calibration bounds (default: median / 100 .. x 100)
        upper = 0.5
        source = "Bergman RN et al. 1979, Table 2 (healthy volunteers)"

        [Gb]                        # normal
        mean = 90.0
        sd = 10.0
        lower = 40.0
        upper = 200.0
        source = "..."

    Every prior names its ``source`` (where the population spread comes from). A calibration
    searches in the logarithms of the parameters, so the bounds of a prior must be positive.
    Raises :class:`SbmlError` naming the parameter and the field.
    """
    if priors is None:
        return {}, "", ""
    if isinstance(priors, str | Path):
        label = str(priors)
        try:
            text = Path(priors).read_text(encoding="utf-8")
        except OSError as exc:
            raise SbmlError(f"{label}: cannot read the priors ({exc.strerror or exc})") from exc
        import tomllib

        try:
            table: Mapping[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SbmlError(f"{label}: not a TOML file of priors ({exc})") from exc
    else:
        label, table = "priors", priors
    out: dict[str, tuple[Prior, float, float]] = {}
    for name, spec in table.items():
        where = f"{label}: [{name}]"
        if name not in names:
            raise SbmlError(
                f"{where}: not a parameter of the model (its parameters: {', '.join(names)})"
            )
        if not isinstance(spec, Mapping):
            raise SbmlError(f"{where}: expected a table of fields")
        source = str(spec.get("source", "")).strip()
        if not source:
            raise SbmlError(f"{where}: field 'source' is missing: say where the spread comes from")

        def number(field: str, spec: Mapping[str, Any] = spec, where: str = where) -> float:
            value = spec.get(field)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SbmlError(f"{where}: field {field!r} must be a number, got {value!r}")
            if not math.isfinite(float(value)):
                raise SbmlError(f"{where}: field {field!r} must be finite")
            return float(value)

        if "median" in spec:
            median, cv = number("median"), number("cv")
            if median <= 0 or cv <= 0:
                raise SbmlError(f"{where}: fields 'median' and 'cv' must be > 0")
            prior = Prior("lognormal", math.log(median), math.sqrt(math.log(1.0 + cv * cv)), source)
            centre = median
        elif "mean" in spec:
            mean, sd = number("mean"), number("sd")
            if sd <= 0:
                raise SbmlError(f"{where}: field 'sd' must be > 0")
            prior = Prior("normal", mean, sd, source)
            centre = mean
        else:
            raise SbmlError(f"{where}: give 'median' and 'cv' (log-normal) or 'mean' and 'sd'")
        lower = number("lower") if "lower" in spec else centre / 100.0
        upper = number("upper") if "upper" in spec else centre * 100.0
        if not 0.0 < lower < centre < upper:
            raise SbmlError(
                f"{where}: need 0 < lower < the prior's centre < upper (a calibration searches "
                f"the logarithms), got {lower!r}, {centre!r}, {upper!r}"
            )
        unknown = set(spec) - {"median", "cv", "mean", "sd", "lower", "upper", "source"}
        if unknown:
            raise SbmlError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        out[name] = (prior, lower, upper)
    digest = hashlib.sha256(repr(sorted(out.items())).encode()).hexdigest()[:8] if out else ""
    return out, label, digest


def _not_positive(sid: str, centre: float) -> str:
    return (
        f"{sid}: its distrib prior is centred at {centre:g}; medtwin fits positive parameters "
        "only (a calibration searches the logarithms), so it stays fixed at the file's value"
    )


def _bounded(
    where: str, prior: Prior, centre: float, span: tuple[float, float] | None
) -> tuple[Prior, float, float]:
    """A prior with its calibration bounds (the span given, else centre / 100 .. x 100)."""
    lower, upper = span if span is not None else (centre / 100.0, centre * 100.0)
    if not 0.0 < lower < centre < upper:
        raise SbmlError(
            f"{where}: need 0 < lower < the prior's centre < upper (a calibration searches the "
            f"logarithms), got {lower!r}, {centre!r}, {upper!r}"
        )
    return prior, lower, upper


def _constant(ast: Any, values: Mapping[str, float], label: str, where: str) -> float:
    """The value of a distrib argument: its MathML as the model's own translator writes it,
    with the constant parameters' values (any other symbol is refused, naming it)."""
    expression = _Translator({k: repr(v) for k, v in values.items()}, label, time="0.0")(ast, where)
    # medtwin's own generated Python (numbers, helpers), as the model kernels are
    return float(eval(expression, {"math": math, "np": np, **_HELPERS}))


def distrib_priors(
    model: Any, symbols: Sequence[_Symbol], label: str
) -> tuple[dict[str, tuple[Prior, float, float]], list[str]]:
    """Population priors an SBML file states itself, with the Distributions package.

    SBML Level 3 ``distrib`` (version 1; Smith LP, Moraru II, Keating SM et al., "SBML Level
    3 package: Distributions, Version 1, Release 1", *J Integr Bioinform* 2020;17:20200018)
    lets an element carry an ``uncertainty``: a distribution (``normal(mean, sd)``, optionally
    truncated ``normal(mean, sd, lower, upper)``; ``lognormal(mu, sigma)``, the mean and SD of
    the value's logarithm) or summary statistics of the population (``mean`` with
    ``standardDeviation``, ``variance`` or ``coefficientOfVariation``; the mean defaults to the
    file's value), and a ``range`` (the bounds a calibration searches; default the prior's
    centre / 100 .. x 100, as for :func:`read_priors`). They become medtwin priors: normal, or
    log-normal (a mean ``m`` with coefficient of variation ``cv`` is the log-normal of that
    mean and CV: ``sigma^2 = ln(1 + cv^2)``, ``mu = ln m - sigma^2 / 2``). Other
    distributions (uniform, gamma ...), statistics alone (a median, an interval) and a normal
    centred at zero or below (a calibration searches the logarithms) cannot be stated as
    medtwin's priors: the parameter stays fixed at the file's value and the second element of
    the result says so, one line per parameter. A malformed uncertainty (a standard deviation
    of zero, a range that leaves out its centre) is refused, naming the parameter. Only an element's first
    uncertainty is read.
    """
    libsbml = _libsbml()
    values = {sym.id: sym.value for sym in symbols}
    out: dict[str, tuple[Prior, float, float]] = {}
    notes: list[str] = []
    file_name = Path(label).name
    for sym in symbols:
        element = model.getElementBySId(sym.id)
        plugin = element.getPlugin("distrib") if element is not None else None
        if plugin is None or plugin.getNumUncertainties() == 0:
            continue
        where = f"{label}: {sym.id!r}: distrib uncertainty"
        uncertainty = plugin.getUncertainty(0)
        stats: dict[int, float] = {}
        span: tuple[float, float] | None = None
        distribution: Any = None
        for i in range(uncertainty.getNumUncertParameters()):
            item = uncertainty.getUncertParameter(i)
            kind = item.getType()
            if kind == libsbml.DISTRIB_UNCERTTYPE_DISTRIBUTION:
                distribution = item.getMath()
            elif kind == libsbml.DISTRIB_UNCERTTYPE_RANGE:
                if not (item.isSetValueLower() and item.isSetValueUpper()):
                    raise SbmlError(f"{where}: a range needs valueLower and valueUpper")
                span = (float(item.getValueLower()), float(item.getValueUpper()))
            elif item.isSetValue():
                stats[kind] = float(item.getValue())
            elif item.isSetVar() and item.getVar() in values:
                stats[kind] = float(values[item.getVar()])
        source = f"the distrib uncertainty of {sym.id} in {file_name}"
        mean = stats.get(libsbml.DISTRIB_UNCERTTYPE_MEAN, sym.value)
        if distribution is not None:
            args = [
                _constant(
                    distribution.getChild(i), values, label, f"{sym.id!r} distrib uncertainty"
                )
                for i in range(distribution.getNumChildren())
            ]
            kind = distribution.getType()
            if kind == libsbml.AST_DISTRIB_FUNCTION_NORMAL and len(args) in (2, 4):
                if args[1] <= 0:
                    raise SbmlError(f"{where}: the normal's standard deviation must be > 0")
                if len(args) == 4:
                    span = span or (args[2], args[3])
                if args[0] <= 0:
                    notes.append(_not_positive(sym.id, args[0]))
                    continue
                out[sym.id] = _bounded(
                    where, Prior("normal", args[0], args[1], source), args[0], span
                )
            elif kind == libsbml.AST_DISTRIB_FUNCTION_LOGNORMAL and len(args) == 2:
                if args[1] <= 0:
                    raise SbmlError(f"{where}: the log-normal's sigma must be > 0")
                prior = Prior("lognormal", args[0], args[1], source)
                out[sym.id] = _bounded(where, prior, math.exp(args[0]), span)
            else:
                notes.append(
                    f"{sym.id}: {libsbml.formulaToL3String(distribution)} is not a normal or "
                    "log-normal distribution; the parameter stays fixed at the file's value"
                )
            continue
        sd = stats.get(libsbml.DISTRIB_UNCERTTYPE_STANDARDDEVIATION)
        variance = stats.get(libsbml.DISTRIB_UNCERTTYPE_VARIANCE)
        cv = stats.get(libsbml.DISTRIB_UNCERTTYPE_COEFFIENTOFVARIATION)
        if sd is None and variance is not None:
            if variance <= 0:
                raise SbmlError(f"{where}: the variance must be > 0")
            sd = math.sqrt(variance)
        if sd is not None:
            if sd <= 0:
                raise SbmlError(f"{where}: the standard deviation must be > 0")
            if mean <= 0:
                notes.append(_not_positive(sym.id, mean))
                continue
            out[sym.id] = _bounded(where, Prior("normal", mean, sd, source), mean, span)
        elif cv is not None:
            if cv <= 0 or mean <= 0:
                raise SbmlError(f"{where}: a coefficient of variation needs a mean > 0 and cv > 0")
            sigma = math.sqrt(math.log1p(cv * cv))
            prior = Prior("lognormal", math.log(mean) - sigma * sigma / 2.0, sigma, source)
            out[sym.id] = _bounded(where, prior, math.exp(prior.loc), span)
        else:
            notes.append(
                f"{sym.id}: its distrib uncertainty gives no distribution, standard deviation, "
                "variance or coefficient of variation; the parameter stays fixed at the file's "
                "value"
            )
    return out, notes


def _parameter(
    sym: _Symbol, file_name: str, prior: tuple[Prior, float, float] | None, label: str
) -> Parameter:
    """A parameter of an SBML model: fixed at the file's value, or with the prior given."""
    if prior is None:
        spec = Prior("fixed", sym.value, 0.0, "the value in the SBML file")
        lower, upper = (0.0 if sym.value >= 0 else -math.inf), math.inf
        source = f"SBML file {file_name}"
    else:
        spec, lower, upper = prior
        source = f"SBML file {file_name}; prior: {label} ({spec.source})"
    return Parameter(
        name=sym.id,
        unit=sym.unit,
        description=sym.description,
        lower=lower,
        upper=upper,
        prior=spec,
        source=source,
    )


@dataclass
class _Event:
    """An SBML event whose trigger is the time passing a constant (``time >= c``)."""

    name: str
    index: int
    threshold: Any
    initial_value: bool
    delay: Any
    priority: Any
    trigger_values: bool
    assignments: list[tuple[str, Any]]


def _read_event(ev: Any, index: int, doc: Any, refuse: Callable[[str, str], SbmlError]) -> _Event:
    """Read one event; refuse triggers other than the time passing a constant."""
    libsbml = _libsbml()
    name = ev.getId() or str(index)
    where = f"event {name!r}"
    trigger = ev.getTrigger()
    node = trigger.getMath() if trigger is not None else None
    threshold = None
    if node is not None and node.getNumChildren() == 2:
        a, b = node.getChild(0), node.getChild(1)
        kind = node.getType()
        if kind in (libsbml.AST_RELATIONAL_GEQ, libsbml.AST_RELATIONAL_GT):
            if a.getType() == libsbml.AST_NAME_TIME and not _uses_time(b):
                threshold = b
        elif (
            kind in (libsbml.AST_RELATIONAL_LEQ, libsbml.AST_RELATIONAL_LT)
            and b.getType() == libsbml.AST_NAME_TIME
            and not _uses_time(a)
        ):
            threshold = a
    if threshold is None:
        shown = libsbml.formulaToL3String(node) if node is not None else "none"
        raise refuse(
            where,
            f"its trigger {shown!r} is not supported: only the time passing a value set by "
            "constants (time >= expression) is (medtwin's solver does not locate state events)",
        )
    initial_value = bool(trigger.getInitialValue()) if doc.getLevel() >= 3 else True
    delay = ev.getDelay().getMath() if ev.isSetDelay() else None
    priority = ev.getPriority().getMath() if ev.isSetPriority() else None
    trigger_values = (
        bool(ev.getUseValuesFromTriggerTime()) if ev.isSetUseValuesFromTriggerTime() else True
    )
    assignments = []
    for j in range(ev.getNumEventAssignments()):
        assignment = ev.getEventAssignment(j)
        if assignment.getMath() is not None:  # (without mathematics it assigns nothing: L3V2)
            assignments.append((assignment.getVariable(), assignment.getMath()))
    return _Event(
        name, index, threshold, initial_value, delay, priority, trigger_values, assignments
    )


def _event_code(
    events: list[_Event],
    symbols: Mapping[str, _Symbol],
    preset: FloatArray,
    local_lines: list[str],
    row: _Translator,
    scale: float,
    label: str,
) -> tuple[str, str, list[str]]:
    """Source of ``jump_row`` (the events' assignments, applied where their input steps from 0
    to 1) and of ``event_times`` (each event's execution time, model unit, for one parameter
    row; inf: never), and the events' names in input order."""

    def constant(node: Any, what: str, ev: _Event) -> str:
        for sid in _math_symbols(node):
            sym = symbols.get(sid)
            if sym is None or sym.kind != "parameter":
                raise SbmlError(
                    f"{label}: event {ev.name!r}: its {what} reads {sid!r}, which changes: "
                    "only values set by constants are supported there"
                )
        return row(node, f"{what} of event {ev.name!r}")

    def priority(ev: _Event) -> float:
        if ev.priority is None:
            return -math.inf
        # the priority as the file's values give it (generated from its MathML)
        value = eval(constant(ev.priority, "priority", ev), {"math": math, "p": preset})
        return float(value)

    times = ["def event_times(p):", f"    out = np.empty({len(events)})"]
    # Events due at the same time run by priority (highest first), else in the file's order.
    # An event that uses the values of its trigger time computes its assignments before any
    # event of that instant runs (as libRoadRunner does: so the last one run wins with what it
    # computed); one that does not computes them when it runs, after those before it.
    jump = ["def jump_row(x, p, u0, u1):"]
    early = ["    # the assignments computed at the trigger time, before any event runs"]
    later: list[str] = []
    temporaries: list[str] = []
    for ev in sorted(events, key=lambda e: (-priority(e), e.index)):
        c = constant(ev.threshold, "trigger", ev)
        delay = constant(ev.delay, "delay", ev) if ev.delay is not None else "0.0"
        true_at_start = f"(0.0 >= {c})" if ev.initial_value else "False"
        execute = f"((max({c}, 0.0) + {delay}) / {scale!r})"
        times.append(f"    out[{ev.index}] = math.inf if {true_at_start} else {execute}")
        reads_state = any(
            symbols.get(sid) is None or symbols[sid].kind != "parameter"
            for _, node in ev.assignments
            for sid in _math_symbols(node)
        )
        if ev.delay is not None and ev.trigger_values and reads_state:
            raise SbmlError(
                f"{label}: event {ev.name!r}: a delayed event whose assignments read values "
                "at the trigger time is not supported"
            )
        when = f"(max({c}, 0.0) / {scale!r})" if ev.trigger_values else execute
        fires = f"    if u1[{ev.index}] > u0[{ev.index}]:"
        compute = [fires, f"        t = {when}", *("    " + line for line in local_lines)]
        assign = [fires]
        for j, (target, node) in enumerate(ev.assignments):
            sym = symbols.get(target)
            if sym is None or sym.kind not in ("state", "frozen"):
                raise SbmlError(
                    f"{label}: event {ev.name!r}: cannot assign {target!r} (not a species or "
                    "parameter that may change)"
                )
            value = f"a{ev.index}_{j}"
            temporaries.append(value)
            where = f"assignment to {target!r} in event {ev.name!r}"
            compute.append(f"        {value} = {row(node, where)}")
            assign.append(f"        x[{sym.index}] = {value}")
        if len(assign) == 1:
            continue  # assigns nothing
        if ev.trigger_values:
            early.extend(compute)
            later.extend(assign)
        else:
            later.extend([*compute, *assign[1:]])
    jump.extend(f"    {value} = 0.0" for value in temporaries)
    jump.extend([*early, "    # the events run", *later, "    return None"])
    times.append("    return out")
    return "\n".join(jump), "\n".join(times), [ev.name for ev in events]


def _gamma_v(x: Any) -> Any:
    """The Gamma function over arrays (MathML factorial in the observables)."""
    from scipy.special import gamma

    return gamma(np.asarray(x, dtype=np.float64))


_HELPERS: dict[str, Any] = {"_gamma_v": _gamma_v}


def _dose_code(
    model: Any,
    dosed: Mapping[str, str],
    units_per_mg: Mapping[str, float],
    symbols: Mapping[str, _Symbol],
    conc: Mapping[str, str],
    row_name: Callable[[str], str],
    first_input: int,
    refuse: Callable[[str, str], SbmlError],
) -> tuple[list[Variable], list[str], list[str], dict[str, float]]:
    """The inputs, right-hand-side lines and jump lines of scenario doses into species:
    per dosed species a rate (substance units per model time unit, from infusions) and a
    bolus (substance units, in the segment that starts at the dose), and one counter of
    dose segments, so that the jump adds each bolus once (as the glucose models' impulses)."""
    if not dosed:
        return [], [], [], {}
    libsbml = _libsbml()
    inputs: list[Variable] = []
    rhs: list[str] = []
    jump: list[str] = []
    factors: dict[str, float] = {}
    species = sorted(set(dosed.values()))
    counter = first_input + 2 * len(species)
    for k, sid in enumerate(species):
        s = model.getSpecies(sid)
        if s is None or symbols[sid].kind != "state":
            raise refuse(f"doses into {sid!r}", "not a species that may change")
        rate, bolus = first_input + 2 * k, first_input + 2 * k + 1
        per_volume = f" / {row_name(conc[sid])}" if sid in conc else ""
        rhs.append(f"    dx[{symbols[sid].index}] += u[{rate}]{per_volume}")
        jump.append(f"    if u1[{counter}] != u0[{counter}]:")
        jump.append(f"        x[{symbols[sid].index}] += u1[{bolus}]{per_volume}")
        inputs.append(Variable(f"dose_rate_{sid}", "", f"doses into {sid} per time unit"))
        inputs.append(Variable(f"dose_bolus_{sid}", "", f"a dose into {sid} at this time"))
    inputs.append(Variable("dose_segments", "", "segments that start with a dose so far"))
    for drug, sid in dosed.items():
        if drug in {d.lower() for d in units_per_mg}:
            factor = float({d.lower(): v for d, v in units_per_mg.items()}[drug])
        else:
            s = model.getSpecies(sid)
            unit = s.getSubstanceUnits() or (
                model.getSubstanceUnits() if model.getLevel() >= 3 else "mole"
            )
            definition = model.getUnitDefinition(unit)
            grams = None
            if unit == "gram":
                grams = 1.0
            elif definition is not None and definition.getNumUnits() == 1:
                u = definition.getUnit(0)
                if u.getKind() == libsbml.UNIT_KIND_GRAM and u.getExponent() == 1:
                    grams = u.getMultiplier() * 10.0 ** u.getScale()
            if grams is None:
                raise refuse(
                    f"doses of {drug!r} into {sid!r}",
                    f"the species' substance unit {unit or '(none)'!r} is not a mass: give "
                    "units_per_mg (e.g. 1 / molar mass for a unit of mmol)",
                )
            factor = 1e-3 / grams
        if not (math.isfinite(factor) and factor > 0):
            raise refuse(f"doses of {drug!r}", f"units_per_mg must be > 0, got {factor!r}")
        factors[drug] = factor
    return inputs, rhs, jump, factors


def _stoichiometry(ref: Any, doc: Any) -> float:
    if doc.getLevel() >= 3:
        return float(ref.getStoichiometry()) if ref.isSetStoichiometry() else 1.0
    return float(ref.getStoichiometry())


def _uses_time(node: Any) -> bool:
    libsbml = _libsbml()
    return any(n.getType() == libsbml.AST_NAME_TIME for n in _nodes(node))


def _nodes(node: Any) -> Iterator[Any]:
    """Every node of a math tree (``node`` included; none for ``None``)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if n is not None:
            yield n
            stack.extend(n.getChild(i) for i in range(n.getNumChildren()))
