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


WARFARIN = "warfarin_hamberg2007"


def _inr_target(text: str | None) -> dict[str, Any] | None:
    """``--target-inr 2-3`` or ``2.5`` as a case target."""
    from medtwin.pharmacology.case import CaseError

    if text is None:
        return None
    try:
        parts = [float(x) for x in text.replace(" ", "").split("-")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        return {"inr": parts[0]}
    if len(parts) == 2:
        return {"inr": parts}
    raise CaseError(f"--target-inr {text!r}: give a range LOW-HIGH (2-3) or a target (2.5)")


def _run(
    kind: str,
    path: str | None,
    as_json: bool,
    patient: str | None = None,
    model: str | None = None,
    store_url: str = "",
    target_inr: str | None = None,
) -> None:
    from medtwin.model.base import ModelError
    from medtwin.pharmacology import case as case_mod

    warfarin = False
    try:
        if (path is None) == (patient is None):
            raise case_mod.CaseError("give either CASE.json or --patient P (with --model)")
        target = _inr_target(target_inr)
        if patient is not None:
            if model is None:
                raise case_mod.CaseError(
                    "--patient needs --model (e.g. vancomycin_goti2018, warfarin_hamberg2007)"
                )
            case_mod.check_dosing_model(model)
            from medtwin.twin.dosing_record import case_from_store, warfarin_case_from_store

            warfarin = model == WARFARIN
            store = _open(store_url)
            try:
                case: Any = (
                    warfarin_case_from_store(store, patient, target=target)
                    if warfarin
                    else case_from_store(store, patient, model)
                )
            finally:
                store.close()
        else:
            assert path is not None
            raw = _peek(path)
            warfarin = isinstance(raw, dict) and raw.get("model") == WARFARIN
            if warfarin:
                from medtwin.pharmacology.warfarin_dosing import parse_warfarin_case

                if target is not None:
                    raw = {**raw, "target": target}
                case = parse_warfarin_case(raw)
            else:
                case = case_mod.load_case(path)
        if target is not None and not warfarin:
            raise case_mod.CaseError(f"--target-inr is for {WARFARIN} only")
        from medtwin.twin.optimise import recommend_case, recommend_warfarin_case

        if warfarin:
            from medtwin.pharmacology import warfarin_dosing as wd

            result: dict[str, Any] = {
                "simulate": wd.simulate_warfarin_case,
                "fit": wd.fit_warfarin_case,
                "recommend": recommend_warfarin_case,
            }[kind](case)
        else:
            result = {
                "simulate": case_mod.simulate_case,
                "fit": case_mod.fit_case,
                "recommend": recommend_case,
            }[kind](case)
    except ModelError as exc:
        click.echo(f"medtwin: error: {exc}", err=True)
        raise click.exceptions.Exit(1) from None
    if as_json:
        _print_json(result)
        return
    if warfarin:
        _echo_warfarin(kind, result)
        return
    if kind == "recommend":
        _echo_recommendation(result, digits=1)
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
        _echo_findings(result, "level's value, unit and time")
    for key in (
        "auc24_first_day_mg_h_l",
        "auc24_steady_state_mg_h_l",
        "peak_steady_state_mg_l",
        "trough_steady_state_mg_l",
    ):
        if key in result:
            click.echo(f"{key}: {result[key]:.1f}")


def _echo_findings(result: dict[str, Any], check: str) -> None:
    """A fit's etas (and levels) past 4 SD of the model's population, else past 3 SD."""
    from medtwin.pharmacology.tdm import OUTSIDE_Z, UNUSUAL_Z

    if result["outside_population"]:
        click.echo(
            f"Outside the model's population (more than {OUTSIDE_Z:g} SD): "
            + "; ".join(result["outside_population"])
            + f". Check each {check} and the doses given; no regimen is recommended from this fit"
        )
    elif result["unusual"]:
        click.echo(
            f"Warning: unusual fit (more than {UNUSUAL_Z:g} SD): "
            + "; ".join(result["unusual"])
            + f". Check each {check} and the doses given"
        )


def _peek(path: str) -> Any:
    """The case file's JSON, or ``None`` when it cannot be read (``load_case`` then says why)."""
    import orjson

    try:
        with open(path, "rb") as fh:
            return orjson.loads(fh.read())
    except (OSError, orjson.JSONDecodeError):
        return None


def _echo_recommendation(result: dict[str, Any], *, digits: int) -> None:
    """The recommendation (or why there is none), the allergy check and each predicted exposure
    with its 5-95 % band."""
    click.echo(("Recommended: " if result["recommended"] else "") + result["reason"])
    for warning in result.get("warnings", []):
        click.echo(f"Warning: {warning}")
    click.echo(f"Allergy check: {result['allergy_check']}")
    start_at = result.get("regimen", {}).get("start_at")
    if start_at and "next_check_at" not in result["regimen"]:  # warfarin prints its own line
        click.echo(f"  first dose {start_at[:16]}")
    for name, v in result["exposure"].items():
        if isinstance(v, dict):
            lo, hi = v["band_5_95"]
            click.echo(
                f"  {name}: {v['predicted']:.{digits}f} (5-95 %: {lo:.{digits}f}-{hi:.{digits}f})"
            )


def _echo_warfarin(kind: str, result: dict[str, Any]) -> None:
    if kind == "recommend":
        _echo_recommendation(result, digits=2)
        if result["recommended"]:
            e = result["exposure"]
            click.echo(
                f"  probability of INR in range at steady state: "
                f"{e['probability_of_target_attainment']:.2f} ({e['source']})"
            )
            reg = result["regimen"]
            if "start_at" in reg:
                click.echo(
                    f"  first dose {reg['start_at'][:16]}, next INR check {reg['next_check_at'][:16]}"
                )
        return
    if kind == "fit":
        click.echo(
            "MAP parameters: " + ", ".join(f"{k} {v:.3g}" for k, v in result["params"].items())
        )
        for lv in result["inrs"]:
            click.echo(
                f"  t {lv['t_h']:g} h: measured INR {lv['inr']:g}, predicted {lv['pred_inr']:.2f}"
            )
        _echo_findings(result, "INR's value and time")
        ss = result["steady_state_inr_of_last_dose"]
        click.echo(
            f"steady-state INR on {ss['dose_mg']:g} mg a day: {ss['predicted']:.2f} "
            f"(5-95 %: {ss['band_5_95'][0]:.2f}-{ss['band_5_95'][1]:.2f})"
        )
        return
    for t, v in zip(result["times_h"], result["inr"], strict=True):
        click.echo(f"  t {t:g} h: INR {v:.2f}")
    click.echo(
        f"steady-state INR on {result['last_dose_mg']:g} mg a day: "
        f"{result['steady_state_inr_of_last_dose']:.2f}"
    )


@main.group("dose")
def dose_group() -> None:
    """Model-informed precision dosing (vancomycin, gentamicin, warfarin) from a case file or
    the record."""


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
@click.option(
    "--target-inr",
    default=None,
    metavar="LOW-HIGH",
    help="Warfarin: target INR range (default 2-3) or a target (2.5 means 2-3).",
)
@_store_option
@_json_option
def recommend_command(
    case_path: str | None,
    patient: str | None,
    model_name: str | None,
    target_inr: str | None,
    store_url: str,
    as_json: bool,
) -> None:
    """The regimen that meets the target, with predicted exposure, band and PTA.

    Warfarin (warfarin_hamberg2007): the daily dose in whole or half tablets, the predicted INR
    at steady state and at the next check (7 days) with 5-95 % bands and the probability of an
    INR in range; without INRs yet, the IWPC 2009 starting dose.
    """
    _run("recommend", case_path, as_json, patient, model_name, store_url, target_inr)
