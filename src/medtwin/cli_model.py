"""``medtwin simulate`` and ``medtwin model list``: run a mechanistic model over a scenario.

A part of the ``medtwin`` command (:mod:`medtwin.cli` imports it, and it registers itself on
:func:`medtwin.cli.main`). Models, events and the solver live in :mod:`medtwin.model`; these
commands only read options, call them and print.
"""

from __future__ import annotations

import math
from typing import Any

import click

from medtwin.cli import _json_option, _print_json, main

__all__ = ["model_group", "simulate_command"]


def _fail(exc: Exception) -> None:
    click.echo(f"medtwin: error: {exc}", err=True)
    raise click.exceptions.Exit(1)


def _pairs(option: str, texts: tuple[str, ...]) -> dict[str, str]:
    """``NAME=VALUE`` options as a dict (a ModelError naming the option otherwise)."""
    from medtwin.model import ModelError

    out = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ModelError(f"{option} {text!r}: expected NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def _model(
    name: str,
    time_unit: str | None,
    doses: tuple[str, ...] = (),
    units_per_mg: tuple[str, ...] = (),
    priors: str | None = None,
    loinc: tuple[str, ...] = (),
    units: tuple[str, ...] = (),
) -> Any:
    """A registered model by name, or the model of an SBML file (a path ending .xml/.sbml)."""
    from pathlib import Path

    from medtwin.model import ModelError, get_model

    if name.lower().endswith((".xml", ".sbml")) or Path(name).is_file():
        from medtwin.model.sbml import load_sbml

        factors = {}
        for drug, value in _pairs("--units-per-mg", units_per_mg).items():
            try:
                factors[drug] = float(value)
            except ValueError:
                raise ModelError(f"--units-per-mg {drug}={value}: not a number") from None
        codes: dict[str, list[str]] = {}
        for observable, code in _pairs("--loinc", loinc).items():
            codes.setdefault(observable, []).extend(c.strip() for c in code.split(","))
        return load_sbml(
            Path(name),
            time_unit=time_unit,
            doses=_pairs("--dose", doses),
            units_per_mg=factors,
            priors=priors,
            loinc=codes,
            units=_pairs("--unit", units),
        )
    if time_unit is not None or doses or units_per_mg or priors or loinc or units:
        raise ModelError(
            "--time-unit, --dose, --units-per-mg, --priors, --loinc and --unit are for SBML "
            "files only"
        )
    return get_model(name)


def sbml_options(command: Any) -> Any:
    """The options that turn an SBML file into a model (for the twin commands)."""
    for option in reversed(
        (
            _TIME_UNIT,
            click.option(
                "--dose",
                "doses",
                multiple=True,
                metavar="DRUG=SPECIES",
                help="SBML file: DRUG's oral and infusion doses (events, or the record's "
                "administrations) go into SPECIES (repeatable).",
            ),
            click.option(
                "--units-per-mg",
                multiple=True,
                metavar="DRUG=FACTOR",
                help="SBML file: DRUG's substance units per mg (a species not in a mass unit).",
            ),
            click.option(
                "--priors",
                default=None,
                help="SBML file: a TOML file of population priors of the parameters to fit "
                "(median and cv, or mean and sd; lower, upper; source).",
            ),
            click.option(
                "--loinc",
                multiple=True,
                metavar="OBSERVABLE=CODE[,CODE]",
                help="SBML file: the LOINC codes of the record's readings of an observable "
                "(repeatable).",
            ),
            click.option(
                "--unit",
                "units",
                multiple=True,
                metavar="OBSERVABLE=UCUM",
                help="SBML file: the UCUM unit of an observable (e.g. C=mg/L), to which the "
                "record's readings are converted (repeatable).",
            ),
        )
    ):
        command = option(command)
    return command


def _with_assignments(model: Any, params: Any, assignments: tuple[str, ...]) -> Any:
    """``params`` (``[1, P]``) with each ``NAME=VALUE`` of ``--set`` applied (checked)."""
    from medtwin.model import ModelError

    names = model.parameter_names()
    params = params.copy()
    for text in assignments:
        name, sep, value = text.partition("=")
        if not sep:
            raise ModelError(f"--set {text!r}: expected NAME=VALUE")
        if name.strip() not in names:
            raise ModelError(
                f"--set {text!r}: model {model.name!r} has no parameter {name.strip()!r} "
                f"(known: {', '.join(names)})"
            )
        try:
            params[:, names.index(name.strip())] = float(value)
        except ValueError:
            raise ModelError(f"--set {text!r}: {value!r} is not a number") from None
    model.check_params(params)
    return params


_TIME_UNIT = click.option(
    "--time-unit",
    type=click.Choice(["s", "min", "h", "d"]),
    default=None,
    help="SBML file: the unit of its time, where the file does not say it.",
)


@main.command("simulate")
@click.option(
    "--model",
    "model_name",
    required=True,
    help="Model name (see 'medtwin model list'), or an SBML file (.xml, .sbml).",
)
@click.option(
    "--preset",
    default=None,
    help="Parameter preset, e.g. adolescent#001 (default: the model's only one, e.g. an SBML "
    "file's 'file').",
)
@click.option(
    "--scenario",
    "scenario_path",
    default=None,
    help='Scenario JSON file ({"events": [...]}), or - for standard input; none: no events.',
)
@click.option("--hours", default=24.0, show_default=True, help="Simulated time, hours.")
@click.option("--every-min", default=5.0, show_default=True, help="Output interval, minutes.")
@click.option(
    "--cgm-noise-seed",
    type=int,
    default=None,
    help="Add the CGM sensor noise model (Dexcom) with this seed (default: no noise).",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="Change one parameter of the preset (repeatable), e.g. --set p1=0.02.",
)
@_TIME_UNIT
@click.option(
    "--dose",
    "doses",
    multiple=True,
    metavar="DRUG=SPECIES",
    help="SBML file: the scenario's oral and infusion doses of DRUG go into SPECIES (repeatable).",
)
@click.option(
    "--units-per-mg",
    multiple=True,
    metavar="DRUG=FACTOR",
    help="SBML file: DRUG's substance units per mg, where the species is not in a mass unit "
    "(e.g. 1/molar mass for mmol).",
)
@_json_option
def simulate_command(
    model_name: str,
    preset: str | None,
    scenario_path: str | None,
    hours: float,
    every_min: float,
    cgm_noise_seed: int | None,
    assignments: tuple[str, ...],
    time_unit: str | None,
    doses: tuple[str, ...],
    units_per_mg: tuple[str, ...],
    as_json: bool,
) -> None:
    """Simulate one preset patient through a scenario; print a summary (or --json)."""
    import numpy as np

    from medtwin.model import ModelError, load_scenario, parse_scenario, simulate
    from medtwin.model.base import TIME_UNIT_MIN

    try:
        for option, value in (("--hours", hours), ("--every-min", every_min)):
            if not (math.isfinite(value) and value > 0):
                raise ModelError(f"{option} must be a positive number, got {value:g}")
        model = _model(model_name, time_unit, doses, units_per_mg)
        if preset is None:
            names = model.preset_names()
            if len(names) != 1:
                raise ModelError(
                    f"model {model.name!r} has {len(names)} presets: choose one with --preset "
                    f"({', '.join(names[:5])}{' ...' if len(names) > 5 else ''})"
                )
            preset = names[0]
        params = _with_assignments(model, model.preset(preset), assignments)
        per_unit = 1.0 / TIME_UNIT_MIN[model.time_unit]
        t_end = hours * 60.0 * per_unit
        if scenario_path is None:
            scenario = parse_scenario([], t_end_min=hours * 60.0)
        else:
            scenario = load_scenario(scenario_path, t_end_min=hours * 60.0)
        result = simulate(model, params, scenario, t_end=t_end, dt_out=every_min * per_unit)
    except ModelError as exc:
        _fail(exc)
        return
    series = {name: values[0] for name, values in result.observables.items()}
    if cgm_noise_seed is not None and "cgm_mg_dl" in series:
        from medtwin.physiology.uva_padova import cgm_noise_mg_dl

        times_min = result.times / per_unit
        noisy = series["cgm_mg_dl"] + cgm_noise_mg_dl(times_min, 1, cgm_noise_seed, "Dexcom")[0]
        series["cgm_mg_dl"] = np.clip(noisy, 39.0, 600.0)
    note = None
    if "basal" in model.event_types and not any(e.type == "basal" for e in scenario.events):
        note = (
            'no basal event, so no basal insulin (a {"type": "basal"} event at minute 0 gives '
            "the patient's own basal rate)"
        )
    summary: dict[str, Any] | None = None
    glucose = series.get("cgm_mg_dl", series.get("bg_mg_dl"))
    if glucose is not None:
        from medtwin.physiology.glycemia import glycemic_summary

        summary = glycemic_summary(glucose)
    if as_json:
        _print_json(
            {
                "model": result.model,
                "version": result.version,
                "preset": preset,
                "parameters": dict(
                    zip(result.parameter_names, result.params[0].tolist(), strict=True)
                ),
                f"times_{model.time_unit}": result.times.tolist(),
                **{name: [round(float(v), 4) for v in vals] for name, vals in series.items()},
                "summary": summary,
                "note": note,
                "provenance": result.provenance(),
            }
        )
        return
    click.echo(
        f"{result.model} {result.version}, {preset}, {hours:g} h, "
        f"{len(scenario.events)} events, output every {every_min:g} min"
    )
    if note is not None:
        click.echo(f"note: {note}")
    if summary is None:
        for name, values in series.items():
            unit = model.observable(name).unit
            click.echo(
                f"{name}{f' ({unit})' if unit else ''}: start {float(values[0]):.6g}, end "
                f"{float(values[-1]):.6g}, min {float(values.min()):.6g}, max {float(values.max()):.6g}"
            )
    if summary is not None:
        which = "CGM" if "cgm_mg_dl" in series else "plasma"
        click.echo(
            f"{which} glucose: mean {summary['mean_mg_dl']} mg/dL, min {summary['min_mg_dl']}, "
            f"max {summary['max_mg_dl']}; time in range 70-180 "
            f"{summary['time_in_range_70_180_pct']}%, below 70 {summary['time_below_70_pct']}%, "
            f"above 180 {summary['time_above_180_pct']}%; GMI {summary['gmi_pct']}%"
        )


@main.group("model")
def model_group() -> None:
    """Mechanistic models: list what is installed, describe one (or an SBML file)."""


@model_group.command("describe")
@click.argument("model_name", metavar="MODEL")
@_TIME_UNIT
@click.option("--priors", default=None, help="SBML file: a TOML file of parameter priors.")
@_json_option
def model_describe_command(
    model_name: str, time_unit: str | None, priors: str | None, as_json: bool
) -> None:
    """Describe MODEL (a registered name, or an SBML file): parameters, states, observables."""
    from medtwin.model import ModelError

    try:
        model = _model(model_name, time_unit, priors=priors)
    except ModelError as exc:
        _fail(exc)
        return
    described = model.describe()
    if as_json:
        _print_json(described)
        return
    click.echo(f"{model.name} {model.version}: {model.title}")
    click.echo(
        f"  time unit: {model.time_unit}; events: {', '.join(described['event_types']) or 'none'}"
    )
    for ref in model.references:
        click.echo(f"  source: {ref}")
    click.echo(f"  parameters ({len(model.parameters)}):")
    for p in model.parameters:
        unit = f" {p.unit}" if p.unit else ""
        if p.prior.kind == "fixed":
            click.echo(f"    {p.name} = {p.prior.loc:g}{unit}: {p.description}")
            continue
        if p.prior.kind == "lognormal":
            spread = f"log-normal, median {math.exp(p.prior.loc):.4g}, log-SD {p.prior.scale:.3g}"
        else:
            spread = f"normal, mean {p.prior.loc:.4g}, SD {p.prior.scale:.4g}"
        click.echo(
            f"    {p.name} ~ {spread}, in [{p.lower:.4g}, {p.upper:.4g}]{unit}: {p.description}"
        )
        if p.prior.source:
            click.echo(f"      prior: {p.prior.source}")
    for note in getattr(model, "prior_notes", ()):
        click.echo(f"  no prior: {note}")
    click.echo(f"  states: {', '.join(model.state_names())}")
    click.echo(f"  observables: {', '.join(o.name for o in model.observables)}")
    click.echo(f"  presets: {', '.join(model.preset_names())}")


@model_group.command("list")
@_json_option
def model_list_command(as_json: bool) -> None:
    """List the registered models with their presets, events and observables."""
    from medtwin.model import all_models

    models = all_models()
    if as_json:
        _print_json([m.describe() for m in models])
        return
    for m in models:
        presets = m.preset_names()
        shown = ", ".join(presets[:3]) + (f" ... ({len(presets)})" if len(presets) > 3 else "")
        click.echo(f"{m.name} {m.version}: {m.title}")
        click.echo(f"  events: {', '.join(sorted(m.event_types))}")
        click.echo(f"  observables: {', '.join(o.name for o in m.observables)}")
        click.echo(f"  presets: {shown}")
