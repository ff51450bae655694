"""SBML import (``medtwin.model.sbml``) against libRoadRunner, an independent SBML simulator
(CVODE, tight tolerances), on the SBML files libRoadRunner's wheel carries and on medtwin's
own files, and against medtwin's hand-written Bergman model."""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from medtwin.cli import main
from medtwin.model import ModelError, get_model, parse_scenario, simulate
from medtwin.model.sbml import SbmlError, load_sbml

roadrunner = pytest.importorskip("roadrunner", reason="libroadrunner is a dev dependency")

BERGMAN = Path(str(files("medtwin.model").joinpath("data/sbml/bergman_1979_core.xml")))
EVENTS = Path(__file__).parent / "data" / "sbml_events.xml"
COMP = Path(__file__).parent / "data" / "sbml_comp.xml"
RR_TESTS = Path(roadrunner.__file__).parent / "tests"
NONE = parse_scenario([])


def reference(path: Path, ids: list[str], amounts: set[str], t_end_s: float, points: int) -> Any:
    """libRoadRunner's solution: concentrations as ``[S]``, amounts and parameters by id."""
    rr = roadrunner.RoadRunner(str(path))
    rr.integrator.relative_tolerance = 1e-10
    rr.integrator.absolute_tolerance = 1e-14
    species = set(rr.model.getFloatingSpeciesIds()) | set(rr.model.getBoundarySpeciesIds())
    selections = ["time"] + [f"[{i}]" if i in species and i not in amounts else i for i in ids]
    return np.asarray(rr.simulate(0, t_end_s, points, selections=selections))


def compare(
    path: Path, *, time_unit: str | None = None, minutes: float = 1.0, rtol: float = 1e-6
) -> None:
    """Every observable agrees with libRoadRunner over ``minutes``, within ``rtol`` (and 1e-8
    of each series' largest value, for values that decay to zero)."""
    model = load_sbml(path, time_unit=time_unit)
    per_min = {"min": 1.0, "h": 1 / 60, "d": 1 / 1440}[model.time_unit]
    t_end = minutes * per_min
    ours = simulate(model, model.preset("file"), NONE, t_end=t_end, dt_out=t_end / 20)
    ids = [o.name for o in model.observables]
    amounts = {o.name for o in model.observables if "(amount" in o.description}
    seconds = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}[model.sbml_time_unit]
    ref = reference(path, ids, amounts, minutes * 60.0 / seconds, 21)
    np.testing.assert_allclose(ref[:, 0] * seconds / 60.0 * per_min, ours.times, rtol=1e-12)
    for j, name in enumerate(ids):
        expected, got = ref[:, j + 1], ours.observables[name][0]
        scale = float(np.abs(expected).max())
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-8 * scale, err_msg=name)


# -- agreement ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "time_unit"),
    [
        ("feedback.xml", None),  # Level 2: seconds
        ("test_1.xml", None),
        ("linearPathwayClosed.xml", "s"),
        ("linearPathwayOpen.xml", "s"),
        ("named_stoic_in_kinetic_law.xml", "s"),  # species references' ids in a kinetic law
        ("test_data/Test_2.xml", "s"),
        ("test_data/Test_3.xml", "s"),
        ("test_data/species_hosu1.xml", "s"),
        ("test_data/species_conc.xml", "s"),
        ("test_data/mole_unit.xml", "s"),
        ("test_data/eventassignment_nomath.xml", "s"),  # an event assignment without math
    ],
)
def test_roadrunner_test_models_agree(name: str, time_unit: str | None) -> None:
    compare(RR_TESTS / name, time_unit=time_unit)


def test_medtwin_bergman_file_agrees_with_roadrunner_and_the_built_in_model() -> None:
    compare(BERGMAN, minutes=600.0)
    model = load_sbml(BERGMAN)
    ours = simulate(model, model.preset("file"), NONE, t_end=600, dt_out=10)
    # the same equations hand-written in medtwin.physiology.bergman (from 200 mg/dL, 60 mU/L)
    built_in = get_model("bergman_1979")
    p = built_in.preset("t1d_mean")
    x0 = built_in.initial_state(p)
    names = built_in.state_names()
    x0[0, names.index("g_mg_dl")], x0[0, names.index("i_mu_l")] = 200.0, 60.0
    basal = parse_scenario([{"type": "basal"}])
    theirs = simulate(built_in, p, basal, t_end=600, dt_out=10, x0=x0, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        ours.observables["G"][0], theirs.observables["bg_mg_dl"][0], atol=1e-4
    )
    assert ours.observables["G"][0].min() < 75  # the insulin excess pulls glucose below basal
    assert abs(ours.observables["G"][0][-1] - 81.0) < 0.1  # and it settles at Gb


def test_mathml_functions_agree_with_roadrunner() -> None:
    """Reciprocal and inverse trigonometric and hyperbolic functions, factorial, rem,
    quotient, implies, min/max, log, root (4 s: the model leaves arctanh's domain at 6 s; the
    implies switch is not located: 1e-5)."""
    compare(Path(__file__).parent / "data" / "sbml_functions.xml", minutes=4 / 60, rtol=1e-5)


PK = Path(__file__).parent / "data" / "sbml_pk.xml"
PK_DOSES = [
    {"type": "oral", "drug": "paracetamol", "t_h": 1, "amount_mg": 100, "every_h": 6, "count": 2},
    {"type": "infusion", "drug": "Cefazolin", "t_h": 3, "amount_mg": 50, "duration_h": 0.5},
    {"type": "infusion", "drug": "cefazolin", "t_h": 10, "amount_mg": 20, "duration_h": 0},
]


def test_scenario_doses_go_into_the_mapped_species() -> None:
    """Oral doses into the gut amount, an infusion at a rate and one at once into the central
    concentration; the reference is libRoadRunner stepped by hand (the amounts added between
    runs, the file's infusion reaction switched on for 30 min)."""
    model = load_sbml(PK, doses={"paracetamol": "A_gut", "cefazolin": "C"})
    assert model.event_types == frozenset({"oral", "infusion"})
    times = [0.5, 2, 3.25, 5, 8, 11, 12]
    ours = simulate(model, model.preset("file"), parse_scenario(PK_DOSES), t_end=12, times=times)
    rr = roadrunner.RoadRunner(str(PK))
    rr.integrator.relative_tolerance = 1e-10
    rr.integrator.absolute_tolerance = 1e-12
    plan: list[Any] = [(0, 0.5), (0.5, 1), ("A_gut", 100), (1, 2), (2, 3), ("R", 100.0)]
    plan += [(3, 3.25), (3.25, 3.5), ("R", 0.0), (3.5, 5), (5, 7), ("A_gut", 100), (7, 8)]
    plan += [(8, 10), ("[C]", 2.0), (10, 11), (11, 12)]
    reference = {}
    for step in plan:
        if isinstance(step[0], str):
            name, value = step
            rr[name] = value if name == "R" else rr[name] + value
            continue
        end = np.asarray(rr.simulate(step[0], step[1], 2, selections=["A_gut", "[C]"]))[-1]
        reference[float(step[1])] = end
    for t in times:
        j = list(ours.times).index(t)
        assert ours.observables["A_gut"][0][j] == pytest.approx(reference[t][0], rel=1e-6, abs=1e-8)
        assert ours.observables["C"][0][j] == pytest.approx(reference[t][1], rel=1e-6, abs=1e-8)
    assert ours.observables["C"][0][list(ours.times).index(11)] > 7  # the 20 mg at 10 h


def test_doses_need_a_known_drug_and_a_mass_or_a_conversion(tmp_path: Path) -> None:
    model = load_sbml(PK, doses={"paracetamol": "A_gut"})
    with pytest.raises(
        ModelError,
        match=r"drug 'Cefazolin' is not dosed into model 'oral_pk' \(its doses: paracetamol\)",
    ):
        simulate(model, model.preset("file"), parse_scenario(PK_DOSES), t_end=12)
    steady = [{**PK_DOSES[0], "steady_state": True}]
    with pytest.raises(ModelError, match="'steady_state' is not supported for an SBML model"):
        simulate(model, model.preset("file"), parse_scenario(steady), t_end=12)
    in_moles = tmp_path / "moles.xml"
    in_moles.write_text(
        PK.read_text().replace(
            'kind="gram" exponent="1" scale="-3"', 'kind="mole" exponent="1" scale="-3"'
        )
    )
    with pytest.raises(
        SbmlError, match=r"substance unit 'mg_unit' is not a mass: give units_per_mg"
    ):
        load_sbml(in_moles, doses={"paracetamol": "A_gut"})
    # 151.16 g/mol: 1 mg = 1/151.16 mmol
    per_mg = load_sbml(
        in_moles, doses={"paracetamol": "A_gut"}, units_per_mg={"paracetamol": 1 / 151.16}
    )
    oral = [{"type": "oral", "drug": "paracetamol", "t_h": 0, "amount_mg": 151.16}]
    r = simulate(per_mg, per_mg.preset("file"), parse_scenario(oral), t_end=1, dt_out=1)
    assert r.observables["A_gut"][0][0] == pytest.approx(1.0)  # 1 mmol at t = 0
    with pytest.raises(SbmlError, match=r"doses into 'ka': not a species that may change"):
        load_sbml(PK, doses={"x": "ka"})


def test_hierarchical_models_are_flattened() -> None:
    """A comp model with two instances of one submodel, one of its parameters replaced."""
    model = load_sbml(COMP)
    assert model.state_names() == ["fast__S", "slow__S"]
    assert {"k_slow", "fast__k"} <= set(model.parameter_names())
    compare(COMP, minutes=0.5)
    r = simulate(model, model.preset("file"), NONE, t_end=0.5, dt_out=0.5)
    fast, slow = r.observables["fast__S"][0][-1], r.observables["slow__S"][0][-1]
    assert fast == pytest.approx(5 * np.exp(-0.4 * 30), rel=1e-6)  # d[S]/dt = -k [S], 30 s
    assert slow == pytest.approx(5 * np.exp(-0.05 * 30), rel=1e-6)


def test_time_events_agree_with_roadrunner() -> None:
    """Doses with a delay, a change at t = 0, an event true at t = 0 that never fires, two
    events of one instant by priority (with the values of their trigger time), the time read
    in an assignment; output times between the events (14.7 h / 20)."""
    compare(EVENTS, minutes=14.7 * 60)
    model = load_sbml(EVENTS)
    r = simulate(model, model.preset("file"), NONE, t_end=14.7, dt_out=0.1)
    ke, ka = r.observables["ke"][0], r.observables["ka"][0]
    assert set(ke) == {0.15} and set(ka) == {1.2}  # 'never' never ran; 'faster_at_start' at 0
    mark = r.observables["mark"][0]
    assert mark[r.times < 12].max() == 0 and mark[-1] > 12  # 12 h + C at 12 h
    c = r.observables["C"][0]
    before, after = c[np.searchsorted(r.times, 10.0) - 1], c[np.searchsorted(r.times, 10.0)]
    assert after - before == pytest.approx(1.0, abs=0.05)  # 'double' ran first, 'add' last


def test_event_times_follow_each_parameter_set() -> None:
    model = load_sbml(EVENTS)
    names = model.parameter_names()
    params = np.repeat(model.preset("file"), 2, axis=0)
    params[:, names.index("t_dose")] = [1.5, 3.25]
    params[:, names.index("tau")] = [4.0, 7.5]
    ours = simulate(model, params, NONE, t_end=14.7, dt_out=0.735)
    for row in range(2):
        rr = roadrunner.RoadRunner(str(EVENTS))
        rr.integrator.relative_tolerance = 1e-10
        rr.integrator.absolute_tolerance = 1e-14
        rr["t_dose"], rr["tau"] = (
            params[row, names.index("t_dose")],
            params[row, names.index("tau")],
        )
        ref = np.asarray(rr.simulate(0, 14.7, 21, selections=["time", "A_gut", "[C]"]))
        np.testing.assert_allclose(ours.observables["A_gut"][row], ref[:, 1], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(ours.observables["C"][row], ref[:, 2], rtol=1e-6, atol=1e-8)


def test_parameter_sets_run_batched_like_separate_runs() -> None:
    model = load_sbml(BERGMAN)
    names = model.parameter_names()
    params = np.repeat(model.preset("file"), 3, axis=0)
    params[:, names.index("p3")] = [2e-5, 5.035e-5, 1e-4]
    params[:, names.index("plasma")] = [10.0, 12.0, 14.0]
    batched = simulate(model, params, NONE, t_end=300, dt_out=30)
    for row in range(3):
        rr = roadrunner.RoadRunner(str(BERGMAN))
        rr.integrator.relative_tolerance = 1e-10
        rr.integrator.absolute_tolerance = 1e-14
        rr["init(p3)"] = params[row, names.index("p3")]
        rr["init(plasma)"] = params[row, names.index("plasma")]
        rr.resetAll()  # initial assignments (u_basal = n Ib VI) from the new values
        ref = np.asarray(rr.simulate(0, 300, 11, selections=["time", "[G]", "S1"]))
        np.testing.assert_allclose(batched.observables["G"][row], ref[:, 1], rtol=1e-6)
        np.testing.assert_allclose(batched.observables["S1"][row], ref[:, 2], rtol=1e-6)
    # the initial assignment follows each row's parameters: S1 = n Ib VI tmax
    s1 = batched.observables["S1"][:, 0]
    np.testing.assert_allclose(s1, params[:, names.index("n")] * 15.0 * params[:, 0] * 55.0)


FEATURES = """<?xml version="1.0" encoding="UTF-8"?>
<sbml xmlns="http://www.sbml.org/sbml/level3/version2/core" level="3" version="2">
  <model id="features" timeUnits="hour_unit">
    <listOfUnitDefinitions>
      <unitDefinition id="hour_unit">
        <listOfUnits><unit kind="second" exponent="1" scale="0" multiplier="3600"/></listOfUnits>
      </unitDefinition>
    </listOfUnitDefinitions>
    <listOfCompartments>
      <compartment id="cell" spatialDimensions="3" size="2.5" constant="true"/>
    </listOfCompartments>
    <listOfSpecies>
      <species id="A" compartment="cell" initialAmount="10" hasOnlySubstanceUnits="false"
               boundaryCondition="false" constant="false"/>
      <species id="B" compartment="cell" initialConcentration="0.4" hasOnlySubstanceUnits="true"
               boundaryCondition="false" constant="false"/>
      <species id="E" compartment="cell" initialConcentration="1.5" hasOnlySubstanceUnits="false"
               boundaryCondition="true" constant="true"/>
    </listOfSpecies>
    <listOfParameters>
      <parameter id="k" value="0.8" constant="true"/>
      <parameter id="drive" constant="false"/>
      <parameter id="level" value="1" constant="false"/>
    </listOfParameters>
    <listOfRules>
      <assignmentRule variable="drive">
        <math xmlns="http://www.w3.org/1998/Math/MathML">
          <piecewise>
            <piece>
              <apply><max/><cn>0.5</cn><apply><log/><logbase><cn>2</cn></logbase><ci> E </ci></apply></apply>
              <apply><and/><apply><geq/><csymbol encoding="text"
                  definitionURL="http://www.sbml.org/sbml/symbols/time"> t </csymbol><cn>1</cn></apply>
                <apply><lt/><csymbol encoding="text"
                  definitionURL="http://www.sbml.org/sbml/symbols/time"> t </csymbol><cn>3</cn></apply></apply>
            </piece>
            <otherwise><apply><root/><degree><cn>3</cn></degree><cn>0.001</cn></apply></otherwise>
          </piecewise>
        </math>
      </assignmentRule>
      <rateRule variable="level">
        <math xmlns="http://www.w3.org/1998/Math/MathML">
          <apply><minus/><ci> drive </ci><apply><times/><cn>0.3</cn><ci> level </ci></apply></apply>
        </math>
      </rateRule>
    </listOfRules>
    <listOfReactions>
      <reaction id="conversion" reversible="false">
        <listOfReactants><speciesReference species="A" stoichiometry="2" constant="true"/></listOfReactants>
        <listOfProducts><speciesReference species="B" stoichiometry="1" constant="true"/></listOfProducts>
        <listOfModifiers><modifierSpeciesReference species="E"/></listOfModifiers>
        <kineticLaw>
          <math xmlns="http://www.w3.org/1998/Math/MathML">
            <apply><times/><ci> k </ci><ci> E </ci><ci> A </ci><ci> cell </ci><ci> level </ci></apply>
          </math>
        </kineticLaw>
      </reaction>
    </listOfReactions>
  </model>
</sbml>
"""


def test_rules_time_piecewise_units_and_amounts(tmp_path: Path) -> None:
    path = tmp_path / "features.xml"
    path.write_text(FEATURES)
    model = load_sbml(path)
    assert model.time_unit == "h" and model.sbml_time_unit == "h"
    assert "E" in model.parameter_names()  # a constant boundary species is a parameter
    # (the piecewise switches at 1 h and 3 h are not located by either solver: 1e-5)
    compare(path, minutes=300.0, rtol=1e-5)
    # the assignment rule reads the time: its observable switches on at 1 h and off at 3 h
    r = simulate(model, model.preset("file"), NONE, t_end=5, dt_out=0.5)
    drive = r.observables["drive"][0]
    np.testing.assert_allclose(drive[r.times < 1], 0.1)
    np.testing.assert_allclose(drive[(r.times >= 1) & (r.times < 3)], np.log2(1.5).clip(0.5))
    # A is a concentration (10 mol in 2.5 L), B an amount (0.4 mol/L x 2.5 L)
    assert r.observables["A"][0][0] == pytest.approx(4.0)
    assert r.observables["B"][0][0] == pytest.approx(1.0)


# -- refusals ----------------------------------------------------------------------------------


def _write(tmp_path: Path, body: str, *, extra: str = 'timeUnits="second"') -> Path:
    path = tmp_path / "m.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<sbml xmlns="http://www.sbml.org/sbml/level3/version2/core" level="3" version="2">\n'
        f'<model id="m" {extra}>\n{body}\n</model>\n</sbml>\n'
    )
    return path


PARAMS = '<listOfParameters><parameter id="x" value="1" constant="false"/>' + (
    '<parameter id="y" value="1" constant="false"/></listOfParameters>'
)
MATH = '<math xmlns="http://www.w3.org/1998/Math/MathML">{}</math>'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            PARAMS
            + "<listOfRules><algebraicRule>"
            + MATH.format("<apply><minus/><ci> x </ci><ci> y </ci></apply>")
            + "</algebraicRule></listOfRules>",
            "rule 0: algebraic rules are not supported",
        ),
        (
            PARAMS
            + '<listOfRules><rateRule variable="x">'
            + MATH.format(
                '<apply><csymbol encoding="text" definitionURL="http://www.sbml.org/sbml/'
                'symbols/delay"> delay </csymbol><ci> y </ci><cn> 1 </cn></apply>'
            )
            + "</rateRule></listOfRules>",
            "rate rule of 'x': the MathML function 'delay' is not supported",
        ),
        (
            PARAMS
            + '<listOfRules><assignmentRule variable="x">'
            + MATH.format("<apply><plus/><ci> y </ci><cn> 1 </cn></apply>")
            + '</assignmentRule><assignmentRule variable="y">'
            + MATH.format("<apply><plus/><ci> x </ci><cn> 1 </cn></apply>")
            + "</assignmentRule></listOfRules>",
            "in a loop: x -> y -> x",
        ),
    ],
)
def test_what_the_solver_cannot_honour_is_refused(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(SbmlError) as caught:
        load_sbml(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


def test_events_the_solver_cannot_time_are_refused(tmp_path: Path) -> None:
    text = EVENTS.read_text()
    state_trigger = text.replace(
        '<apply><geq/><csymbol encoding="text" definitionURL="http://www.sbml.org/sbml/symbols/'
        'time"> t </csymbol><cn> 10 </cn></apply>',
        "<apply><geq/><ci> C </ci><cn> 10 </cn></apply>",
    )
    assert state_trigger != text
    path = tmp_path / "state.xml"
    path.write_text(state_trigger)
    with pytest.raises(SbmlError, match=r"event 'double': its trigger 'C >= 10' is not supported"):
        load_sbml(path)
    on_trigger_values = text.replace(
        '<event id="second_dose" useValuesFromTriggerTime="false">',
        '<event id="second_dose" useValuesFromTriggerTime="true">',
    )
    path.write_text(on_trigger_values)
    with pytest.raises(SbmlError, match="event 'second_dose': a delayed event whose assignments"):
        load_sbml(path)
    changing = text.replace(
        "<ci> t_dose </ci></apply></math></trigger>", "<ci> ka </ci></apply></math></trigger>", 1
    )
    path.write_text(changing)
    with pytest.raises(
        SbmlError, match="event 'first_dose': its trigger reads 'ka', which changes"
    ):
        load_sbml(path)


def test_files_it_cannot_read_are_refused_with_the_file_and_the_reason(tmp_path: Path) -> None:
    # a random draw (draft distrib): the function's fallback body would give 0 for every draw
    with pytest.raises(SbmlError, match="function 'normal' draws from a distribution"):
        load_sbml(RR_TESTS / "test_data/normalDistrib.xml", time_unit="s")
    # and one of the final distrib package, in a rule
    import libsbml

    doc = libsbml.readSBMLFromFile(str(Path(__file__).parent / "data" / "sbml_pk.xml"))
    doc.enablePackage(libsbml.DistribExtension.getXmlnsL3V1V1(), "distrib", True)
    doc.setPackageRequired("distrib", True)
    model = doc.getModel()
    settings = libsbml.L3ParserSettings()
    settings.setModel(model)
    noise = model.createParameter()
    noise.setId("noise")
    noise.setConstant(False)
    noise.setValue(0.0)
    rule = model.createAssignmentRule()
    rule.setVariable("noise")
    rule.setMath(libsbml.parseL3FormulaWithSettings("normal(0, 1)", settings))
    drawn = tmp_path / "draw.xml"
    libsbml.writeSBMLToFile(doc, str(drawn))
    with pytest.raises(SbmlError, match="of 'noise': 'normal' draws from a distribution"):
        load_sbml(drawn)
    with pytest.raises(SbmlError, match="species 'srr': no initial amount or concentration"):
        load_sbml(RR_TESTS / "test_data/output_testmodel.xml", time_unit="s")
    with pytest.raises(
        SbmlError,
        match=r"does not say its unit of time \(Level 3 timeUnits\): give it \(time_unit=",
    ):
        load_sbml(RR_TESTS / "linearPathwayClosed.xml")
    # (an XML declaration without its encoding is UTF-8 by XML's default: read, not refused)
    bare = tmp_path / "bare.xml"
    bare.write_text(
        PK.read_text().replace('<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0"?>')
    )
    assert load_sbml(bare).state_names() == ["A_gut", "C"]
    broken = tmp_path / "broken.xml"
    broken.write_text('<?xml version="1.0"?>\n<sbml level="3" version="2">\n<model id="m">\n')
    with pytest.raises(SbmlError, match=rf"{broken}: not a valid SBML file: line \d+"):
        load_sbml(broken)
    with pytest.raises(SbmlError, match=r"missing\.xml: cannot read the file"):
        load_sbml(tmp_path / "missing.xml")
    odd = _write(tmp_path, "", extra='timeUnits="mole"')
    with pytest.raises(SbmlError, match="unit of time 'mole' is not the second"):
        load_sbml(odd)


def test_models_take_no_scenario_events_and_check_their_parameters() -> None:
    model = load_sbml(BERGMAN)
    with pytest.raises(ModelError, match=r"does not take 'meal' events \(it takes: none\)"):
        simulate(
            model,
            model.preset("file"),
            parse_scenario([{"type": "meal", "t_min": 0, "carbs_g": 5}]),
            t_end=60,
        )
    bad = model.preset("file")
    bad[0, model.parameter_names().index("p1")] = -1.0
    with pytest.raises(ModelError, match=r"p1 = -1\.0 is outside"):
        simulate(model, bad, NONE, t_end=60)
    assert (
        model.version.startswith("sbml-")
        and simulate(model, model.preset("file"), NONE, t_end=10).provenance()["model"]
        == "bergman_1979_core"
    )


def test_kernels_are_cached_on_disk_and_compiled_in_memory_where_they_cannot_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medtwin.model import sbml

    monkeypatch.setenv("MEDTWIN_CACHE_DIR", str(tmp_path / "cache"))
    for name in [k for k in sys.modules if k.startswith("medtwin_sbml_")]:
        monkeypatch.delitem(sys.modules, name)  # loaded by earlier tests from another folder
    first = load_sbml(BERGMAN)
    expected = simulate(first, first.preset("file"), NONE, t_end=60).observables["G"]
    [module] = (tmp_path / "cache" / "sbml").glob("medtwin_sbml_*.py")
    assert "def rhs_row(t, x, p, u, dx):" in module.read_text()
    again = load_sbml(BERGMAN)  # another class of the same file: the same compiled module
    assert again.compiled_kernels()[0] is first.compiled_kernels()[0]
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("MEDTWIN_CACHE_DIR", str(blocked))
    monkeypatch.setattr(sbml, "_kernel_module", _fails_like_a_read_only_folder)
    fallback = load_sbml(BERGMAN)
    got = simulate(fallback, fallback.preset("file"), NONE, t_end=60).observables["G"]
    np.testing.assert_array_equal(got, expected)


def _fails_like_a_read_only_folder(rhs: str, jump: str = "") -> Any:
    from medtwin.model.sbml import cache_dir

    cache_dir().mkdir(parents=True)  # the cache path is a file: FileExistsError (an OSError)
    raise AssertionError("unreachable")


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_simulates_and_describes_an_sbml_file(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(
        main,
        ["simulate", "--model", str(BERGMAN), "--hours", "3", "--every-min", "60", "--json"],
    )
    assert out.exit_code == 0, out.output
    data = orjson.loads(out.output)
    assert data["model"] == "bergman_1979_core" and data["preset"] == "file"
    assert [round(v, 1) for v in data["G"]] == [200.0, 73.7, 74.7, 78.9]
    faster = runner.invoke(
        main,
        [
            "simulate",
            "--model",
            str(BERGMAN),
            "--hours",
            "3",
            "--every-min",
            "60",
            "--set",
            "p3=1e-4",
            "--json",
        ],
    )
    assert orjson.loads(faster.output)["G"][1] < 73.7  # more insulin action, lower glucose
    text = runner.invoke(main, ["simulate", "--model", str(BERGMAN), "--hours", "1"])
    assert "G: start 200, end" in text.output and "insulin_excess: start 45" in text.output
    described = runner.invoke(main, ["model", "describe", str(BERGMAN)])
    assert "p3 = 5.035e-05: insulin action gain" in described.output
    assert "states: G, I, S1, S2, u_basal, X" in described.output
    wrong = runner.invoke(main, ["simulate", "--model", str(BERGMAN), "--set", "q=1"])
    assert wrong.exit_code == 1 and "has no parameter 'q' (known: plasma," in wrong.output
    unknown_unit = runner.invoke(
        main, ["model", "describe", str(RR_TESTS / "linearPathwayOpen.xml")]
    )
    assert unknown_unit.exit_code == 1 and "give it (time_unit=" in unknown_unit.output
    given = runner.invoke(
        main, ["model", "describe", str(RR_TESTS / "linearPathwayOpen.xml"), "--time-unit", "s"]
    )
    assert given.exit_code == 0 and "time unit: min" in given.output
    registered = runner.invoke(main, ["model", "describe", "bergman_1979", "--json"])
    assert registered.exit_code == 0 and orjson.loads(registered.output)["name"] == "bergman_1979"
    scenario = tmp_path / "doses.json"
    scenario.write_bytes(orjson.dumps({"events": PK_DOSES}))
    dosed = runner.invoke(
        main,
        [
            "simulate",
            "--model",
            str(PK),
            "--dose",
            "paracetamol=A_gut",
            "--dose",
            "cefazolin=C",
            "--scenario",
            str(scenario),
            "--hours",
            "12",
            "--every-min",
            "60",
            "--json",
        ],
    )
    assert dosed.exit_code == 0, dosed.output
    assert (
        max(orjson.loads(dosed.output)["C"]) > 7 and orjson.loads(dosed.output)["times_h"][-1] == 12
    )
    undosed = runner.invoke(
        main, ["simulate", "--model", str(PK), "--scenario", str(scenario), "--hours", "12"]
    )
    assert (
        undosed.exit_code == 1 and "does not take 'oral' events (it takes: none)" in undosed.output
    )
    registered_dose = runner.invoke(main, ["simulate", "--model", "bergman_1979", "--dose", "a=b"])
    assert registered_dose.exit_code == 1 and "are for SBML files only" in registered_dose.output
    several = runner.invoke(main, ["simulate", "--model", "uva_padova_2008"])
    assert several.exit_code == 1 and "choose one with --preset" in several.output
