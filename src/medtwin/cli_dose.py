"""``medtwin dose simulate|fit|recommend CASE.json``: model-informed precision dosing.

A part of the ``medtwin`` command (:mod:`medtwin.cli` imports it). The case format is
described in :mod:`medtwin.pharmacology.case`; models in :mod:`medtwin.pharmacology.antibiotics`,
the MAP fit in :mod:`medtwin.pharmacology.tdm`, the optimiser in :mod:`medtwin.twin.optimise`.
"""

from __future__ import annotations

from typing import Any

import click

from medtwin.cli import _json_option, _open, _print_json, _store_option, main

__all__ = ["dose_group"]


def _run(
    kind: str,
    path: str | None,
    as_json: bool,
    patient: str | None = None,
    model: str | None = None,
    store_url: str = "",
) -> None:
    from medtwin.model.base import ModelError
    from medtwin.pharmacology import case as case_mod

    try:
        if (path is None) == (patient is None):
            raise case_mod.CaseError("give either CASE.json or --patient P (with --model)")
        if patient is not None:
            if model is None:
                raise case_mod.CaseError("--patient needs --model (e.g. vancomycin_goti2018)")
            from medtwin.pharmacology.record import case_from_store

            store = _open(store_url)
            try:
                case = case_from_store(store, patient, model)
            finally:
                store.close()
        else:
            assert path is not None
            case = case_mod.load_case(path)
        result: dict[str, Any] = {
            "simulate": case_mod.simulate_case,
            "fit": case_mod.fit_case,
            "recommend": case_mod.recommend_case,
        }[kind](case)
    except ModelError as exc:
        click.echo(f"medtwin: error: {exc}", err=True)
        raise click.exceptions.Exit(1) from None
    if as_json:
        _print_json(result)
        return
    if kind == "recommend":
        click.echo(("Recommended: " if result["recommended"] else "") + result["reason"])
        click.echo(f"Allergy check: {result['allergy_check']}")
        for name, v in result["exposure"].items():
            if isinstance(v, dict):
                lo, hi = v["band_5_95"]
                click.echo(f"  {name}: {v['predicted']:.1f} (5-95 %: {lo:.1f}-{hi:.1f})")
        if result["recommended"]:
            pta = result["exposure"]["probability_of_target_attainment"]
            click.echo(f"  probability of target attainment: {pta:.2f}")
        return
    if kind == "fit":
        click.echo(
            "MAP parameters: " + ", ".join(f"{k} {v:.3g}" for k, v in result["params"].items())
        )
        for lv in result["levels"]:
            click.echo(
                f"  t {lv['t_h']:g} h: measured {lv['conc_mg_l']:g}, predicted {lv['pred_mg_l']:.2f} mg/L"
            )
    for key in (
        "auc24_first_day_mg_h_l",
        "auc24_steady_state_mg_h_l",
        "peak_steady_state_mg_l",
        "trough_steady_state_mg_l",
    ):
        if key in result:
            click.echo(f"{key}: {result[key]:.1f}")


@main.group("dose")
def dose_group() -> None:
    """Model-informed precision dosing (vancomycin, gentamicin) from a case file."""


@dose_group.command("simulate")
@click.argument("case_path", metavar="[CASE.json]", required=False)
@click.option("--patient", default=None, help="Take covariates, doses and levels from the record.")
@click.option("--model", "model_name", default=None, help="Dosing model (with --patient).")
@_store_option
@_json_option
def simulate_command(
    case_path: str | None,
    patient: str | None,
    model_name: str | None,
    store_url: str,
    as_json: bool,
) -> None:
    """Concentrations of the typical patient, AUC24 (first day, steady state), peak, trough."""
    _run("simulate", case_path, as_json, patient, model_name, store_url)


@dose_group.command("fit")
@click.argument("case_path", metavar="[CASE.json]", required=False)
@click.option("--patient", default=None, help="Take covariates, doses and levels from the record.")
@click.option("--model", "model_name", default=None, help="Dosing model (with --patient).")
@_store_option
@_json_option
def fit_command(
    case_path: str | None,
    patient: str | None,
    model_name: str | None,
    store_url: str,
    as_json: bool,
) -> None:
    """MAP fit of the patient's parameters to the measured levels, with predictions."""
    _run("fit", case_path, as_json, patient, model_name, store_url)


@dose_group.command("recommend")
@click.argument("case_path", metavar="[CASE.json]", required=False)
@click.option("--patient", default=None, help="Take covariates, doses and levels from the record.")
@click.option("--model", "model_name", default=None, help="Dosing model (with --patient).")
@_store_option
@_json_option
def recommend_command(
    case_path: str | None,
    patient: str | None,
    model_name: str | None,
    store_url: str,
    as_json: bool,
) -> None:
    """The regimen that meets the target, with predicted exposure, band and PTA."""
    _run("recommend", case_path, as_json, patient, model_name, store_url)
