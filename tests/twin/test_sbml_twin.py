"""A model brought as an SBML file, fitted to a patient: priors from a file, readings by LOINC,
doses from the record's administrations, through the store and the command line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tests.twin.records import person, reading

from medtwin.cli import main
from medtwin.model import parse_scenario, simulate
from medtwin.model.sbml import SbmlError, load_sbml
from medtwin.record.facts import Coding, Identifier, MedicationAdministration
from medtwin.store.sql import SqlStore
from medtwin.twin import DataError
from medtwin.twin.twin import Twin, dose_events

PK = Path(__file__).parents[1] / "model" / "data" / "sbml_pk.xml"
WHO = Identifier("urn:test:mrn", "PK-1")
T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
LEVEL = "3298-9"  # Acetaminophen [Mass/volume] in Serum or Plasma
PRIORS = """
[CL]
median = 2.5
cv = 0.4
source = "test: a population spread of clearance"

[ka]
median = 1.1
cv = 0.5
lower = 0.1
upper = 10.0
source = "test: a population spread of absorption"
"""


def _model(tmp_path: Path) -> type:
    priors = tmp_path / "priors.toml"
    priors.write_text(PRIORS, encoding="utf-8")
    return load_sbml(
        PK,
        doses={"acetaminophen": "A_gut"},
        priors=priors,
        loinc={"C": [LEVEL]},
        units={"C": "mg/L"},
    )


def _record(store: SqlStore, model: type) -> float:
    """Four oral doses of 1 g every 6 h and six levels, simulated with CL = 3.6 L/h."""
    truth = model.preset("file").copy()
    names = model.parameter_names()
    truth[0, names.index("CL")] = 3.6
    doses = [
        {"type": "oral", "t_h": 6 * k, "amount_mg": 1000, "drug": "acetaminophen"} for k in range(4)
    ]
    hours = np.array([1.0, 3.0, 5.5, 13.0, 19.0, 23.0])
    r = simulate(model, truth, parse_scenario(doses), t_end=24.0, times=hours)
    levels = r.observables["C"][0, np.searchsorted(r.times, hours)]
    rng = np.random.default_rng(5)
    facts: list[object] = [person(WHO, "1980-06-01", "female")]
    for k in range(4):
        facts.append(
            MedicationAdministration(
                source="mar",
                source_id=f"dose/{k}",
                subject=WHO,
                code=Coding("http://www.nlm.nih.gov/research/umls/rxnorm", "161", "Acetaminophen"),
                effective_start=T0 + timedelta(hours=6 * k),
                dose_value=1.0,
                dose_unit="g",
                route="Oral route",
            )
        )
    for i, (h, c) in enumerate(zip(hours, levels, strict=True)):
        when = T0 + timedelta(hours=float(h))
        value = float(c) * float(np.exp(rng.normal(0, 0.05)))
        facts.append(reading(WHO, f"level/{i}", LEVEL, when, value, "mg/L", source="lab"))
    store.append_facts(facts, source="test")  # type: ignore[arg-type]
    return 3.6


def test_an_sbml_model_is_fitted_to_the_record(store: SqlStore, tmp_path: Path) -> None:
    model = _model(tmp_path)
    assert "+priors-" in model.version
    true_cl = _record(store, model)
    twin = Twin.from_store(store, "urn:test:mrn|PK-1", model=model, days=2, load=False)
    oral = twin.data.scenario.of_type("oral")
    assert [e["amount_mg"] for e in oral] == [1000.0] * 4  # 1 g read as 1000 mg, by mouth
    cal = twin.fit(starts=2)
    assert cal.fitted == ("ka", "CL")  # the parameters with priors
    lo, hi = (cal.values["CL"] * np.exp(s * 1.645 * cal.log_sd["CL"]) for s in (-1, 1))
    assert lo < true_cl < hi and abs(cal.values["CL"] / true_cl - 1) < 0.1
    twin.save(store)
    again = Twin.from_store(store, "urn:test:mrn|PK-1", model=model, days=2)
    assert (
        again.calibration is not None and again.calibration.params.tolist() == cal.params.tolist()
    )


def test_doses_in_another_unit_and_unitless_observables_are_refused(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    wrong = MedicationAdministration(
        source="mar",
        source_id="dose/x",
        subject=WHO,
        code=Coding("http://www.nlm.nih.gov/research/umls/rxnorm", "161", "Acetaminophen"),
        effective_start=T0,
        dose_value=10.0,
        dose_unit="mL",
    )
    sqlite_store.append_facts([person(WHO, "1980-06-01", "female"), wrong], source="test")
    stored = sqlite_store.timeline(sqlite_store.resolve_patient("urn:test:mrn|PK-1"))
    with pytest.raises(DataError, match=r"dose/x: the acetaminophen dose is 10.0 'ml'"):
        dose_events(stored, T0, ("acetaminophen",))
    no_unit = load_sbml(PK, loinc={"C": [LEVEL]})
    sqlite_store.append_facts(
        [reading(WHO, "level/0", LEVEL, T0, 12.0, "mg/L", source="lab")], source="test"
    )
    with pytest.raises(DataError, match=r"observable 'C' has no unit"):
        Twin.from_store(sqlite_store, "urn:test:mrn|PK-1", model=no_unit, days=1)


def test_priors_are_checked_with_their_source(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[CL]\nmedian = 2.5\ncv = 0.4\n", encoding="utf-8")
    with pytest.raises(SbmlError, match=r"\[CL\]: field 'source' is missing"):
        load_sbml(PK, priors=bad)
    with pytest.raises(SbmlError, match=r"\[Vmax\]: not a parameter of the model"):
        load_sbml(PK, priors={"Vmax": {"median": 1.0, "cv": 0.2, "source": "x"}})
    with pytest.raises(SbmlError, match=r"the file's value 2.5 is outside the prior's bounds"):
        load_sbml(PK, priors={"CL": {"median": 10, "cv": 0.2, "lower": 5, "source": "x"}})
    with pytest.raises(SbmlError, match=r"'Q' is not an observable"):
        load_sbml(PK, units={"Q": "mg/L"})


def test_twin_fit_command_fits_an_sbml_file(sqlite_store: SqlStore, tmp_path: Path) -> None:
    _record(sqlite_store, _model(tmp_path))
    url = sqlite_store.url
    sqlite_store.close()
    options = [
        "--model",
        str(PK),
        "--priors",
        str(tmp_path / "priors.toml"),
        "--dose",
        "acetaminophen=A_gut",
        "--loinc",
        f"C={LEVEL}",
        "--unit",
        "C=mg/L",
        "--store",
        url,
    ]
    runner = CliRunner()
    out = runner.invoke(main, ["twin", "fit", "urn:test:mrn|PK-1", "--days", "2", *options])
    assert out.exit_code == 0, out.output
    assert "CL = 3." in out.output and "converged" in out.output
    ahead = runner.invoke(main, ["forecast", "urn:test:mrn|PK-1", "--hours", "6", *options])
    assert ahead.exit_code == 0, ahead.output
    assert "C forecast" in ahead.output


def _with_uncertainties(tmp_path: Path, stated: dict[str, list[tuple[str, object]]]) -> Path:
    """A copy of the PK file whose parameters state their uncertainty with SBML distrib:
    ``{id: [(type, value or formula)]}``; type ``distribution`` takes a formula, ``range`` a
    pair, the others a number."""
    import libsbml

    doc = libsbml.readSBMLFromFile(str(PK))
    assert doc.enablePackage(libsbml.DistribExtension.getXmlnsL3V1V1(), "distrib", True) == 0
    doc.setPackageRequired("distrib", True)
    model = doc.getModel()
    settings = libsbml.L3ParserSettings()
    settings.setModel(model)
    for sid, items in stated.items():
        uncertainty = model.getParameter(sid).getPlugin("distrib").createUncertainty()
        for kind, value in items:
            if kind == "range":
                span = uncertainty.createUncertSpan()
                span.setType(libsbml.DISTRIB_UNCERTTYPE_RANGE)
                lower, upper = value  # type: ignore[misc]
                span.setValueLower(lower)
                span.setValueUpper(upper)
                continue
            item = uncertainty.createUncertParameter()
            # libSBML 5.21 names the coefficient of variation "coeffientOfVariation"
            constant = {"coefficientOfVariation": "COEFFIENTOFVARIATION"}.get(kind, kind.upper())
            item.setType(getattr(libsbml, f"DISTRIB_UNCERTTYPE_{constant}"))
            if kind == "distribution":
                item.setMath(libsbml.parseL3FormulaWithSettings(str(value), settings))
            else:
                item.setValue(float(value))  # type: ignore[arg-type]
    out = tmp_path / "pk_distrib.xml"
    assert libsbml.writeSBMLToFile(doc, str(out)) == 1
    return out


def test_an_sbml_file_that_states_its_priors_is_fitted_without_a_priors_file(
    store: SqlStore, tmp_path: Path
) -> None:
    """SBML distrib uncertainties become the parameters' priors: a log-normal clearance and an
    absorption rate given as mean and coefficient of variation with a range; the twin fits
    them to the record as with a priors file."""
    path = _with_uncertainties(
        tmp_path,
        {
            "CL": [("distribution", "lognormal(0.916, 0.385)")],
            "ka": [("mean", 1.1), ("coefficientOfVariation", 0.5), ("range", (0.1, 10.0))],
        },
    )
    model = load_sbml(
        path, doses={"acetaminophen": "A_gut"}, loinc={"C": [LEVEL]}, units={"C": "mg/L"}
    )
    params = {p.name: p for p in model.parameters}
    cl, ka = params["CL"].prior, params["ka"].prior
    assert (cl.kind, cl.loc, cl.scale) == ("lognormal", 0.916, 0.385)
    assert (params["CL"].lower, params["CL"].upper) == pytest.approx((2.5 / 100, 2.5 * 100), 0.01)
    # mean 1.1, CV 0.5 as a log-normal: sigma^2 = ln 1.25, mu = ln 1.1 - sigma^2 / 2
    assert ka.kind == "lognormal" and ka.scale == pytest.approx(np.sqrt(np.log(1.25)))
    assert np.exp(ka.loc + ka.scale**2 / 2) == pytest.approx(1.1)
    assert (params["ka"].lower, params["ka"].upper) == (0.1, 10.0)
    assert "distrib uncertainty of CL in pk_distrib.xml" in cl.source
    assert params["central"].prior.kind == "fixed" and model.prior_notes == ()
    true_cl = _record(store, model)
    twin = Twin.from_store(store, "urn:test:mrn|PK-1", model=model, days=2, load=False)
    cal = twin.fit(starts=2)
    assert cal.fitted == ("ka", "CL")
    assert abs(cal.values["CL"] / true_cl - 1) < 0.1
    # a priors file overrides the file's own, parameter by parameter
    given = load_sbml(path, priors={"CL": {"mean": 2.5, "sd": 0.5, "source": "a study"}})
    over = {p.name: p for p in given.parameters}
    assert over["CL"].prior.kind == "normal" and over["ka"].prior.kind == "lognormal"
    assert "prior: priors (a study)" in over["CL"].source


def test_sbml_uncertainties_medtwin_cannot_state_are_named_not_guessed(tmp_path: Path) -> None:
    path = _with_uncertainties(
        tmp_path,
        {
            "CL": [("distribution", "uniform(1, 5)")],
            "ka": [("mean", 1.1), ("standardDeviation", 0.3), ("range", (0.5, 3.0))],
        },
    )
    model = load_sbml(path)
    params = {p.name: p for p in model.parameters}
    assert params["CL"].prior.kind == "fixed"
    assert model.prior_notes == (
        "CL: uniform(1, 5) is not a normal or log-normal distribution; the parameter stays "
        "fixed at the file's value",
    )
    ka = params["ka"]
    assert (ka.prior.kind, ka.prior.loc, ka.prior.scale, ka.lower, ka.upper) == (
        "normal",
        1.1,
        0.3,
        0.5,
        3.0,
    )
    described = CliRunner().invoke(main, ["model", "describe", str(path)])
    assert described.exit_code == 0, described.output
    assert "ka ~ normal, mean 1.1, SD 0.3, in [0.5, 3]" in described.output
    assert "no prior: CL: uniform(1, 5)" in described.output
    bad = _with_uncertainties(tmp_path, {"CL": [("standardDeviation", -1.0)]})
    with pytest.raises(SbmlError, match=r"'CL': distrib uncertainty: the standard deviation"):
        load_sbml(bad)
    outside = _with_uncertainties(
        tmp_path, {"CL": [("mean", 2.5), ("variance", 0.25), ("range", (3.0, 9.0))]}
    )
    with pytest.raises(SbmlError, match=r"need 0 < lower < the prior's centre < upper"):
        load_sbml(outside)
    negative = _with_uncertainties(tmp_path, {"CL": [("distribution", "normal(-1, 0.5)")]})
    assert load_sbml(negative).prior_notes == (
        "CL: its distrib prior is centred at -1; medtwin fits positive parameters only (a "
        "calibration searches the logarithms), so it stays fixed at the file's value",
    )
