"""Inputs the user gives for one evaluation (`medtwin risk --set NAME=VALUE`): what the record
cannot hold (QRISK3's Townsend score) or does not say yet; checked against the scores that
declare them, shown as given with what the record said, followed by the inputs computed from
them, and named in a stored result."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.risk.test_uk_record import AT, _bundle, imported

from medtwin.cli import main
from medtwin.risk.from_record import evaluate, parse_given, store_results
from medtwin.risk.qrisk3 import QRISK3
from medtwin.store.sql import SqlStore


@pytest.fixture
def uk(sqlite_store: SqlStore, tmp_path: Path) -> str:
    return imported(sqlite_store, tmp_path, _bundle())


def test_parse_given_checks_each_value_against_the_scores_inputs() -> None:
    given = parse_given(["townsend_score=3.2", "smoker=No", "ethnicity=Indian", "sex=female"])
    assert {k: v.value for k, v in given.items()} == {
        "townsend_score": 3.2, "smoker": False, "ethnicity": "indian", "sex": "female",
    }  # fmt: skip
    assert all(v.status == "given" and v.usable for v in given.values())
    for bad, words in [
        ("townsend_score", "NAME=VALUE"),
        ("shoe_size=9", "not an input medtwin reads"),
        ("smoker=sometimes", "yes or no"),
        ("ethnicity=martian", "one of white_or_not_stated"),
        ("total_cholesterol_mg_dl=high", "a number (mg/dL)"),
        ("townsend_score=nan", "finite"),
    ]:
        with pytest.raises(ValueError, match=re.escape(words)):
            parse_given([bad])
    with pytest.raises(ValueError, match="given twice"):
        parse_given(["smoker=yes", "smoker=no"])


def test_a_given_townsend_score_replaces_qrisk3s_substitute(
    sqlite_store: SqlStore, uk: str
) -> None:
    plain = evaluate(sqlite_store, uk, AT, scores=["qrisk3_10y"], variation=False)
    given = evaluate(
        sqlite_store, uk, AT, scores=["qrisk3_10y"], variation=False,
        given=parse_given(["townsend_score=5"]),
    )  # fmt: skip
    (before,), (after,) = plain.scores, given.scores
    assert "townsend" in before.message.lower() and "townsend" not in after.message.lower()
    t = given.inputs["townsend_score"]
    assert (t.value, t.status) == (5.0, "given")
    assert t.detail.startswith("given (--set townsend_score=5); the record: missing: no UK census")
    # the same as QRISK3 on the same row with the Townsend score in it
    row: dict[str, Any] = {n: d.value for n, d in given.inputs.items() if d.usable}
    expected = QRISK3.compute_one({k: row[k] for k in (i.name for i in QRISK3.inputs) if k in row})
    assert after.value == pytest.approx(expected.value, rel=1e-12)
    assert after.value > before.value  # a deprived area raises the risk (Townsend > 0)


def test_inputs_computed_from_a_given_one_follow_it(sqlite_store: SqlStore, uk: str) -> None:
    given = parse_given(["total_cholesterol_mg_dl=180", "creatinine_mg_dl=2.0", "smoker=no"])
    d = evaluate(sqlite_store, uk, AT, scores=["qrisk3_10y"], given=given).inputs
    assert d["cholesterol_hdl_ratio"].value == pytest.approx(180 / d["hdl_mg_dl"].value)
    assert "the record: 216.532: LOINC 14647-2 [fhir:Observation/chol, 2025-05-20]" in (
        d["total_cholesterol_mg_dl"].detail
    )
    assert d["egfr_ml_min_1_73m2"].status == "computed"
    assert d["egfr_ml_min_1_73m2"].value < 40  # CKD-EPI 2021 of 2.0 mg/dL at 62
    # the record says a moderate smoker; given not a current smoker, QRISK3's group is open
    s = d["smoking_category"]
    assert s.value is None and s.alternatives == ("non_smoker", "ex_smoker")
    assert "given (--set smoker=no); the record: yes: 160604004" in s.detail


def test_a_stored_result_names_the_given_inputs(sqlite_store: SqlStore, uk: str) -> None:
    report = evaluate(
        sqlite_store, uk, AT, scores=["qrisk3_10y"], given=parse_given(["townsend_score=-2.5"])
    )
    assert store_results(sqlite_store, report).changed
    [stored] = [sf for sf in sqlite_store.timeline(uk, codes=["qrisk3_10y"], include_raw=True)]
    note = stored.fact.raw["note"][0]["text"]  # type: ignore[index]
    assert note.endswith("Inputs given by the user, not from the record: townsend_score=-2.5")


def test_the_cli(sqlite_store: SqlStore, uk: str) -> None:
    runner = CliRunner()
    base = ["risk", uk, "--store", sqlite_store.url, "--date", AT.isoformat(), "--no-save"]
    out = runner.invoke(main, [*base, "--score", "qrisk3_10y", "--set", "townsend_score=4.5"])
    assert out.exit_code == 0, out.output
    assert "townsend_score" in out.output and "given (--set townsend_score=4.5)" in out.output
    bad = runner.invoke(main, [*base, "--set", "smoker=perhaps"])
    assert bad.exit_code == 2 and "--set" in bad.output and "smoker is yes or no" in bad.output
    hist = runner.invoke(main, [*base, "--history", "--set", "smoker=no"])
    assert hist.exit_code == 2 and "not with --history" in hist.output
    as_json = runner.invoke(main, [*base, "--score", "qrisk3_10y", "--set", "sex=male", "--json"])
    inputs = json.loads(as_json.output)["inputs"]
    assert inputs["sex"]["status"] == "given"
