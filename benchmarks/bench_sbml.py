"""An SBML model simulated for many parameter sets: medtwin (batched) against libRoadRunner.

The model is ``src/medtwin/model/data/sbml/bergman_1979_core.xml`` (glucose, remote insulin
action, plasma insulin, subcutaneous depot); each parameter set changes the insulin action
gain p3 (drawn lognormal, SD 0.3) and runs 24 h with output every 5 min. medtwin:
``load_sbml`` + one batched ``simulate`` (numba, threads over the rows). Reference, in the
same run: libRoadRunner 2.10 (LLVM-compiled model, CVODE) in its fast path: one
``RoadRunner``, p3 set, ``reset()`` and ``simulate`` per parameter set, at the same
tolerances (rtol 1e-8, atol 1e-10). (Changing a value that initial assignments read, the
insulin volume, needs ``init(...)`` and ``resetAll()`` in libRoadRunner, 44 ms a set here;
medtwin evaluates initial assignments per row at no extra cost; not timed.) Both are timed after one untimed run (compilation); the largest glucose
difference between the two is printed as well.

Run: ``.venv/bin/python benchmarks/bench_sbml.py [--sets 1000] [--repeat 3]``

``--chain N`` instead times the first load and compilation of a generated model of N
species in a chain (``S{i} -> S{i+1}`` at rate ``k{i} S{i} / (1 + S{i})``) against
libRoadRunner's load, with an empty kernel cache.
"""

from __future__ import annotations

import argparse
import statistics
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine

from medtwin.model import parse_scenario, simulate
from medtwin.model.sbml import load_sbml

FILE = Path(str(files("medtwin.model").joinpath("data/sbml/bergman_1979_core.xml")))
HOURS = 24


def parameter_sets(model: Any, n: int) -> Any:
    rng = np.random.default_rng(7)
    names = model.parameter_names()
    params = np.repeat(model.preset("file"), n, axis=0)
    params[:, names.index("p3")] *= np.exp(rng.normal(0.0, 0.3, n))
    return params


def run_medtwin(model: Any, params: Any, threads: int | None = None) -> tuple[float, Any]:
    start = time.perf_counter()
    r = simulate(
        model,
        params,
        parse_scenario([]),
        t_end=HOURS * 60,
        dt_out=5,
        rtol=1e-8,
        atol=1e-10,
        threads=threads,
    )
    return time.perf_counter() - start, r.observables["G"]


def run_roadrunner(model: Any, params: Any) -> tuple[float, Any]:
    import roadrunner

    names = model.parameter_names()
    rr = roadrunner.RoadRunner(str(FILE))
    rr.integrator.relative_tolerance = 1e-8
    rr.integrator.absolute_tolerance = 1e-10
    points = HOURS * 12 + 1
    out = np.empty((params.shape[0], points))
    start = time.perf_counter()
    rr.timeCourseSelections = ["[G]"]
    p3 = names.index("p3")
    for row in range(params.shape[0]):
        rr["p3"] = params[row, p3]  # a global parameter: reset() keeps it
        rr.reset()
        out[row] = np.asarray(rr.simulate(0, HOURS * 60, points))[:, 0]
    return time.perf_counter() - start, out


def chain(n: int, folder: Path) -> Path:
    """An SBML file of ``n`` species in a chain of saturable reactions."""
    math_ns = 'xmlns="http://www.w3.org/1998/Math/MathML"'
    species = "".join(
        f'<species id="S{i}" compartment="c" initialConcentration="{1.0 if i == 0 else 0.0}" '
        'hasOnlySubstanceUnits="false" boundaryCondition="false" constant="false"/>'
        for i in range(n)
    )
    params = "".join(
        f'<parameter id="k{i}" value="{0.5 + (i % 7) * 0.1}" constant="true"/>' for i in range(n)
    )
    reactions = "".join(
        f'<reaction id="r{i}" reversible="false"><listOfReactants><speciesReference '
        f'species="S{i}" stoichiometry="1" constant="true"/></listOfReactants><listOfProducts>'
        f'<speciesReference species="S{i + 1}" stoichiometry="1" constant="true"/>'
        f"</listOfProducts><kineticLaw><math {math_ns}><apply><divide/><apply><times/>"
        f"<ci>k{i}</ci><ci>S{i}</ci></apply><apply><plus/><cn>1</cn><ci>S{i}</ci></apply>"
        "</apply></math></kineticLaw></reaction>"
        for i in range(n - 1)
    )
    path = folder / f"chain{n}.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><sbml xmlns="http://www.sbml.org/sbml/level3/'
        'version2/core" level="3" version="2"><model id="chain" timeUnits="second">'
        '<listOfCompartments><compartment id="c" spatialDimensions="3" size="1" '
        'constant="true"/></listOfCompartments>'
        f"<listOfSpecies>{species}</listOfSpecies><listOfParameters>{params}"
        f"</listOfParameters><listOfReactions>{reactions}</listOfReactions></model></sbml>"
    )
    return path


def time_chain(n: int) -> None:
    import os
    import tempfile

    import roadrunner

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MEDTWIN_CACHE_DIR"] = tmp  # an empty kernel cache
        os.environ["NUMBA_CACHE_DIR"] = tmp  # and the solver loops compiled afresh too
        path = chain(n, Path(tmp))
        start = time.perf_counter()
        model = load_sbml(path)
        simulate(model, model.preset("file"), parse_scenario([]), t_end=1.0, dt_out=0.1)
        ours = time.perf_counter() - start
        start = time.perf_counter()
        roadrunner.RoadRunner(str(path))
        theirs = time.perf_counter() - start
    print(f"chain of {n} species: medtwin load + first simulation {ours:.1f} s")
    print(f"libRoadRunner load (LLVM compilation) {theirs:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chain", type=int, default=0, help="time compiling a chain model")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if args.chain:
        time_chain(args.chain)
        return
    model = load_sbml(FILE)
    params = parameter_sets(model, args.sets)
    run_medtwin(model, params[:2])
    run_roadrunner(model, params[:2])
    ours, one, theirs = [], [], []
    for _ in range(args.repeat):
        t, g_ours = run_medtwin(model, params)
        ours.append(t)
        one.append(run_medtwin(model, params, threads=1)[0])
        t, g_theirs = run_roadrunner(model, params)
        theirs.append(t)
    a, b, c = statistics.median(ours), statistics.median(theirs), statistics.median(one)
    diff = float(np.max(np.abs(g_ours - g_theirs)))
    print(f"parameter sets: {args.sets} x {HOURS} h, output every 5 min")
    print(f"medtwin simulate (batched, 2 threads): {args.sets / a:,.0f} sets/s (median {a:.3f} s)")
    print(f"medtwin simulate (batched, 1 thread): {args.sets / c:,.0f} sets/s (median {c:.3f} s)")
    print(f"libRoadRunner reset + simulate per set: {args.sets / b:,.0f} sets/s (median {b:.3f} s)")
    print(
        f"ratio: {b / a:.1f}x (1 thread: {b / c:.1f}x); largest glucose difference {diff:.2e} mg/dL"
    )


if __name__ == "__main__":
    main()
