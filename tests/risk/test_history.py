"""Risk over time (medtwin.risk.history): the vectorised table equals single-date evaluations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medtwin.ingest import import_paths
from medtwin.record.facts import LOINC, Coding, Condition, Demographics, Identifier, Observation
from medtwin.risk.base import Score
from medtwin.risk.from_record import RISK_SOURCE, SCORE_SYSTEM, evaluate
from medtwin.risk.history import (
    HistoryError,
    history_dates,
    history_facts,
    parse_every,
    record_span,
    risk_history,
    score_table,
)
from medtwin.risk.inputs import derive_inputs
from medtwin.store import open_store
from medtwin.store.sql import SqlStore

# A 65-year-old man on verapamil and simvastatin with labs from 2012 to 2020 (Synthea R4 sample).
AUSTIN = "Austin_Spencer_29195483-ce99-4a73-9cee-2d6728078472.json"
WHO = Identifier("urn:test", "h1")


@pytest.fixture(scope="module")
def austin(
    shared: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SqlStore, str]]:
    store = open_store(str(tmp_path_factory.mktemp("history") / "medtwin.db"), actor="test")
    import_paths(store, [shared / "fhir" / "synthea-r4" / AUSTIN], workers=0)
    yield store, store.resolve_patient("29195483-ce99-4a73-9cee-2d6728078472")
    store.close()


def test_every_and_dates() -> None:
    assert parse_every("1y") == (1, "y") and parse_every(" 6M ") == (6, "m")
    for bad in ("", "y", "0m", "1.5y", "6 months", "-1y"):
        with pytest.raises(HistoryError, match="--every"):
            parse_every(bad)
    # month ends clamp (31 Jan + 1 month = 29 Feb 2024) without drifting afterwards
    assert history_dates(dt.date(2024, 1, 31), dt.date(2024, 4, 30), "1m") == [
        dt.date(2024, 1, 31),
        dt.date(2024, 2, 29),
        dt.date(2024, 3, 31),
        dt.date(2024, 4, 30),
    ]
    assert history_dates(dt.date(2020, 2, 29), dt.date(2023, 1, 1), "1y") == [
        dt.date(2020, 2, 29),
        dt.date(2021, 2, 28),
        dt.date(2022, 2, 28),
        dt.date(2023, 1, 1),
    ]
    assert history_dates(dt.date(2024, 1, 1), dt.date(2024, 1, 1), "1y") == [dt.date(2024, 1, 1)]
    with pytest.raises(HistoryError, match="before --from"):
        history_dates(dt.date(2024, 1, 2), dt.date(2024, 1, 1))


def test_trajectory_equals_single_date_evaluations(austin: tuple[SqlStore, str]) -> None:
    store, pid = austin
    assert record_span(store, pid) == (dt.date(1992, 8, 4), dt.date(2020, 7, 7))
    table = risk_history(store, pid, every="1y", variation=False)
    assert len(table) == 29  # 1992-08-04 .. 2019-08-04 yearly, then 2020-07-07
    assert table.points[-1][1] == dt.datetime(2020, 7, 7, 23, 59, 59, tzinfo=dt.UTC)
    computed = 0
    for i, (_, at) in enumerate(table.points):
        single = evaluate(store, pid, at, variation=False)
        # the same outcomes; a single date's report adds a statin user's untreated estimate
        # (and, unless variation=False, each risk's interval over measurement variation)
        assert [
            {k: v for k, v in s.to_dict().items() if k != "untreated"} for s in single.scores
        ] == [o.to_dict() for o in table.outcomes[i]]
        assert single.inputs == table.inputs[i]
        computed += sum(o.status == "computed" for o in table.outcomes[i])
    assert computed >= 40
    prevent = table.column("prevent_10y")
    # no cholesterol before 2012 in this record: the early years cannot be computed
    assert prevent[0].status == "missing" and prevent[0].message.startswith("cannot compute")
    assert prevent[-1].status == "computed" and prevent[-1].value is not None
    assert 5.0 < prevent[-1].value < 40.0
    # the 30-year equations stop at 59 (he turns 60 in 2015)
    assert table.column("prevent_30y")[-1].status == "refused"


def test_each_risk_of_a_history_has_the_interval_of_a_single_evaluation(
    austin: tuple[SqlStore, str],
) -> None:
    """A history shows uncertainty as a single date does: each computed percent risk carries
    its interval over measurement variation, the same as ``evaluate`` gives at that date."""
    store, pid = austin
    table = risk_history(store, pid, every="4y", start=dt.date(2012, 1, 1))
    intervals = 0
    for i, (_, at) in enumerate(table.points):
        single = {s.name: s for s in evaluate(store, pid, at).scores}
        for outcome in table.outcomes[i]:
            assert outcome.variation == single[outcome.name].variation, outcome.name
            if outcome.status == "computed" and outcome.unit == "%":
                assert outcome.variation is not None, outcome.name
                assert outcome.variation.low <= outcome.value <= outcome.variation.high  # type: ignore[operator]
                intervals += 1
    assert intervals >= 8
    assert table.to_dict()["scores"]["prevent_10y"]["variation"][-1]["level"] == 0.9


def test_one_compute_many_call_per_score(
    austin: tuple[SqlStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from medtwin.risk.registry import all_scores

    store, pid = austin
    calls: list[tuple[str, int]] = []
    # each class that defines compute_many, once: Score (which reads the columns and calls the
    # score's compute_data) and PREVENT (10y and 30y share a class), which overrides it
    owners = {c for s in all_scores() for c in type(s).__mro__ if "compute_many" in vars(c)}
    assert Score in owners
    for cls in owners:
        original = cls.compute_many

        def counting(self: Score, columns: Any, *, _original: Any = original, **kw: Any) -> Any:
            out = _original(self, columns, **kw)
            calls.append((self.name, len(out)))
            return out

        monkeypatch.setattr(cls, "compute_many", counting)
    days = history_dates(dt.date(2012, 1, 1), dt.date(2020, 7, 7), "6m")
    names = ["prevent_10y", "framingham_cvd_10y"]
    table = score_table(store, [(pid, d) for d in days], scores=names)
    # eGFR is derived per date with CKD-EPI (one row each); each score is one call for all the
    # rows that have its needed inputs, and those that lack one (to see whether what they have
    # already puts them outside the score's population)
    rows = [sum(o.result is not None for o in table.column(name)) for name in names]
    lacking = [sum(o.status == "missing" for o in table.column(name)) for name in names]
    expected = [(n, r + m) for n, r, m in zip(names, rows, lacking, strict=True)]
    assert [c for c in calls if c[0] in names] == expected
    assert len(days) == 19 and rows[0] >= 15 and rows[1] >= 15


def _record(store: SqlStore, until: dt.datetime | None = None) -> str:
    """A man born 1960 with HDL 40 in 2018 and 60 in 2021 and diabetes diagnosed in 2020 (only
    the facts that began by ``until``, when given)."""

    def obs(code: str, value: float, unit: str, day: dt.date) -> Observation:
        return Observation(
            source="lab",
            source_id=f"{code}-{day.isoformat()}",
            subject=WHO,
            code=Coding(LOINC, code),
            status="final",
            effective_start=dt.datetime.combine(day, dt.time(9), dt.UTC),
            value_num=value,
            unit=unit,
        )

    def never_smoked(day: dt.date) -> Observation:
        return Observation(
            source="ehr",
            source_id=f"smoking-{day.isoformat()}",
            subject=WHO,
            code=Coding(LOINC, "72166-2"),
            status="final",
            effective_start=dt.datetime.combine(day, dt.time(9), dt.UTC),
            value_code=Coding("http://snomed.info/sct", "266919005", "Never smoked tobacco"),
        )

    facts = [
        Demographics(
            source="reg",
            source_id="Patient/h1",
            subject=WHO,
            identifiers=(WHO,),
            birth_date="1960-03-01",
            gender="male",
            raw={
                "resourceType": "Patient",
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                        "extension": [{"url": "ombCategory", "valueCoding": {"code": "2106-3"}}],
                    }
                ],
            },
        ),
        never_smoked(dt.date(2018, 6, 1)),
        never_smoked(dt.date(2021, 6, 1)),
        obs("39156-5", 27.0, "kg/m2", dt.date(2018, 6, 1)),
        obs("39156-5", 28.0, "kg/m2", dt.date(2021, 6, 1)),
        obs("2160-0", 1.0, "mg/dL", dt.date(2018, 6, 1)),
        obs("2160-0", 1.1, "mg/dL", dt.date(2021, 6, 1)),
        obs("2085-9", 40.0, "mg/dL", dt.date(2018, 6, 1)),
        obs("2085-9", 60.0, "mg/dL", dt.date(2021, 6, 1)),
        obs("2093-3", 200.0, "mg/dL", dt.date(2018, 6, 1)),
        obs("2093-3", 190.0, "mg/dL", dt.date(2021, 6, 1)),
        obs("8480-6", 140.0, "mm[Hg]", dt.date(2018, 6, 1)),
        obs("8480-6", 130.0, "mm[Hg]", dt.date(2021, 6, 1)),
        Condition(
            source="ehr",
            source_id="dm",
            subject=WHO,
            code=Coding("http://snomed.info/sct", "44054006", "Diabetes mellitus type 2"),
            clinical_status="active",
            effective_start=dt.datetime(2020, 1, 15, tzinfo=dt.UTC),
        ),
        # resolved in 2022: its status is news of 2022, so it was active at the end of 2021
        Condition(
            source="ehr",
            source_id="dm-old",
            subject=WHO,
            code=Coding("http://snomed.info/sct", "73211009", "Diabetes mellitus"),
            clinical_status="resolved",
            effective_start=dt.datetime(2019, 1, 1, tzinfo=dt.UTC),
            effective_end=dt.datetime(2022, 3, 1, tzinfo=dt.UTC),
        ),
    ]
    if until is not None:
        facts = [f for f in facts if f.effective_start is None or f.effective_start <= until]
    store.append_facts(facts, source="test")
    return store.resolve_patient("urn:test|h1")


def test_as_of_excludes_later_data(sqlite_store: SqlStore, tmp_path: Path) -> None:
    pid = _record(sqlite_store)
    table = score_table(
        sqlite_store,
        [(pid, dt.date(2018, 12, 31)), (pid, dt.date(2019, 12, 31)), (pid, dt.date(2021, 12, 31))],
        scores=["pce_ascvd_10y"],
    )
    first, second, third = table.inputs
    assert (
        first["hdl_mg_dl"].value == 40.0 and first["hdl_mg_dl"].provenance[0].date == "2018-06-01"
    )
    assert third["hdl_mg_dl"].value == 60.0 and third["hdl_mg_dl"].provenance[0].age_days == 213
    assert first["diabetes"].value is False  # neither condition had begun
    assert second["diabetes"].value is True  # dm-old: resolved only in 2022
    assert [p.source_id for p in second["diabetes"].provenance] == ["dm-old"]
    assert third["diabetes"].value is True
    assert {p.source_id for p in third["diabetes"].provenance} == {"dm", "dm-old"}
    after = evaluate(sqlite_store, pid, dt.date(2023, 1, 1))
    assert [p.source_id for p in after.inputs["diabetes"].provenance] == ["dm"]
    # the 2018 row is what a record holding only the facts up to 2018 gives
    end_2018 = dt.datetime(2018, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    early = open_store(str(tmp_path / "early.db"), actor="test")
    early_pid = _record(early, until=end_2018)
    alone = evaluate(early, early_pid, end_2018, scores=["pce_ascvd_10y"], variation=False)
    early.close()
    assert [o.to_dict() for o in alone.scores] == [o.to_dict() for o in table.outcomes[0]]
    pce = table.column("pce_ascvd_10y")
    assert pce[0].status == "computed" and pce[2].status == "computed"
    assert pce[0].value is not None and pce[2].value is not None
    assert pce[2].value > pce[0].value  # older and diabetic, despite the better HDL


def test_history_is_stored_once(sqlite_store: SqlStore) -> None:
    pid = _record(sqlite_store)
    table = risk_history(sqlite_store, pid, every="1y", scores=["pce_ascvd_10y", "prevent_10y"])
    assert [at.date() for _, at in table.points] == [
        dt.date(2018, 6, 1), dt.date(2019, 6, 1), dt.date(2020, 6, 1), dt.date(2021, 6, 1),
    ]  # fmt: skip
    facts = history_facts(sqlite_store, table)
    cells = sum(o.status == "computed" for row in table.outcomes for o in row)
    assert len(facts) == cells >= 6
    first = sqlite_store.append_facts(facts, source=RISK_SOURCE)
    assert len(first.changed) == cells
    again = sqlite_store.append_facts(history_facts(sqlite_store, table), source=RISK_SOURCE)
    assert again.unchanged == cells and not again.changed
    stored = [
        s.fact for s in sqlite_store.timeline(pid, kinds=("Observation",), include_raw=True)
        if s.fact.code is not None and s.fact.code.system == SCORE_SYSTEM
    ]  # fmt: skip
    assert len(stored) == cells
    prevent = [f for f in stored if f.code and f.code.code == "prevent_10y"]
    # in mid-2020 the 2018 labs are over 365 days old: that year says why and stores nothing
    assert [f.effective_start.date() for f in prevent if f.effective_start] == [
        dt.date(2018, 6, 1), dt.date(2019, 6, 1), dt.date(2021, 6, 1),
    ]  # fmt: skip
    gap = table.column("prevent_10y")[2]
    assert gap.status == "missing"
    assert "total_cholesterol_mg_dl (latest 2018-06-01 is older than 365 days)" in gap.message
    assert all(f.raw and f.raw["resourceType"] == "RiskAssessment" for f in stored)
    # record_span ignores the stored results themselves
    assert record_span(sqlite_store, pid) == (dt.date(2018, 6, 1), dt.date(2021, 6, 1))


def test_plot_has_a_trace_per_computed_score(austin: tuple[SqlStore, str], tmp_path: Path) -> None:
    store, pid = austin
    table = risk_history(store, pid, every="2y", start=dt.date(2010, 1, 1))
    out = table.write_html(tmp_path / "risk.html", title="Austin")
    html = out.read_text()
    assert table.computed() == [
        "cha2ds2_vasc", "ckd_epi_2021", "framingham_cvd_10y", "prevent_10y", "prevent_10y_ascvd",
        "prevent_10y_hf", "prevent_30y", "prevent_30y_ascvd", "prevent_30y_hf",
    ]  # fmt: skip
    # the PCE and QRISK3 were derived without statin users: he takes simvastatin throughout
    for name in ("pce_ascvd_10y", "pce_ascvd_10y_2018", "qrisk3_10y"):
        for o in table.column(name):
            assert o.status in ("refused", "missing"), (name, o.message)
        assert table.column(name)[-1].message.startswith("not applicable: on a statin")
    for name in table.computed():
        assert f'"name":"{name}"' in html
    assert '"name":"qsofa"' not in html
    assert "plotly.js" in html and "cdn.plot.ly" not in html.split("<body>")[0]
    empty = score_table(store, [(pid, dt.date(1995, 1, 1))], scores=["prevent_10y"])
    with pytest.raises(HistoryError, match="nothing to plot"):
        empty.write_html(tmp_path / "none.html")


def test_record_read_once_for_all_dates(austin: tuple[SqlStore, str]) -> None:
    store, pid = austin

    def reads() -> int:
        return sum(e.action == "read" for e in store.access_log(patient_id=pid, limit=100_000))

    before = reads()
    derive_inputs(store, pid, dt.date(2020, 1, 1))
    one_date = reads() - before
    before = reads()
    days = history_dates(dt.date(2010, 1, 1), dt.date(2020, 1, 1), "1y")
    score_table(store, [(pid, d) for d in days])
    assert len(days) == 11 and one_date >= 4
    assert reads() - before == one_date  # each record query once, cut at each date in memory
