"""The patient's context for the monitors (medtwin.risk.context): age and pregnancy from the
record, and the early-warning scores refusing a patient outside their population.

NEWS2 is not validated in pregnancy or under 16 (Royal College of Physicians 2017), qSOFA under
18 (Seymour et al. 2016), MEWS outside adult medical admissions (Subbe et al. 2001). The record
parts are real: a shared Synthea patient's pregnancy (SNOMED 72892002 from 2019-11-13 to
2020-06-17) and the US Core pregnancy status observations (LOINC 82810-3) of the shared bundles.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from medtwin.cli import main
from medtwin.monitor import FactRef, MonitorHub, Reading
from medtwin.monitor.base import PatientContext
from medtwin.monitor.early_warning import MewsMonitor, News2Monitor, QsofaMonitor
from medtwin.risk.context import PREGNANCY_MAX_DAYS, patient_context
from medtwin.store import open_store

BONNIE = "Bonnie_Kemmer_b67d9cf2-bfd2-4461-94a9-8b"  # pregnant 2019-11-13 to 2020-06-17
UTC = dt.UTC
HR, RR, SPO2, SBP, TEMP = "8867-4", "9279-1", "59408-5", "8480-6", "8310-5"


def _t(day: str, minute: float = 0.0) -> float:
    return dt.datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() + 60.0 * minute


def _reading(pid: str, code: str, t: float, value: float) -> Reading:
    return Reading(pid, code, t, value, None, FactRef("icu", f"{code}@{t:.0f}"))


def _deteriorating(pid: str, day: str) -> list[Reading]:
    """A normal set, then RR 26, HR 135, SpO2 91: NEWS2 low-medium, medium, high for an adult."""
    t = _t(day)
    return [
        _reading(pid, HR, t, 80),
        _reading(pid, RR, t, 16),
        _reading(pid, SPO2, t, 97),
        _reading(pid, SBP, t, 125),
        _reading(pid, TEMP, t, 37.0),
        _reading(pid, RR, t + 300, 26),
        _reading(pid, HR, t + 360, 135),
        _reading(pid, SPO2, t + 420, 91),
    ]


PREGNANT = PatientContext(
    birth_date=dt.date(1983, 2, 2),
    pregnancies=((_t("2019-11-13"), _t("2020-06-17"), "72892002 Normal pregnancy (2019-11-13)"),),
)


def test_news2_refuses_a_pregnant_patient_and_scores_her_again_after() -> None:
    m = News2Monitor("p")
    m.set_context(PREGNANT)
    during = m.learn_many(_deteriorating("p", "2020-02-01"))
    assert [a.rule for a in during] == ["news2.not-applicable"]  # once, and no band alert
    notice = during[0]
    assert notice.severity == "info" and notice.key == "news2:population"
    assert notice.message == (
        "NEWS2 not scored: pregnant=true: NEWS2 is not validated in pregnancy (RCP 2017); use a "
        "maternity early warning score (the record: 72892002 Normal pregnancy (2019-11-13)). "
        "No NEWS2 alerts while this holds."
    )
    assert m.learn_many(_deteriorating("p", "2020-03-01")) == []  # said once
    after = m.learn_many(_deteriorating("p", "2020-07-01"))
    assert [a.rule for a in after] == [
        "news2.applies",
        "news2.low-medium",
        "news2.medium",
        "news2.high",
    ]
    assert after[0].clears and after[0].key == "news2:population"
    # the same readings with no context: scored (the context is what refuses)
    plain = News2Monitor("p").learn_many(_deteriorating("p", "2020-02-01"))
    assert [a.rule for a in plain] == ["news2.low-medium", "news2.medium", "news2.high"]


@pytest.mark.parametrize(
    ("cls", "born", "rule", "text"),
    [
        (News2Monitor, dt.date(2010, 3, 2), "news2.not-applicable", "age_years=15: NEWS2 is "
         "validated for adults aged 16 years or over (RCP 2017); use a paediatric early warning "
         "score"),
        (QsofaMonitor, dt.date(2008, 3, 2), "qsofa.not-applicable", "age_years=17: qSOFA"),
        (MewsMonitor, dt.date(2010, 3, 2), "mews.not-applicable", "age_years=15: MEWS"),
    ],
)  # fmt: skip
def test_a_child_is_refused_until_the_birthday(
    cls: type[News2Monitor], born: dt.date, rule: str, text: str
) -> None:
    """Readings on the day before the 16th (qSOFA: 18th) birthday are refused, those on the day
    itself scored: the age is in completed years."""
    m = cls("p")
    m.set_context(PatientContext(birth_date=born))
    rows = [
        _reading("p", RR, _t("2026-03-01", 10), 26),
        _reading("p", SBP, _t("2026-03-01", 11), 95),
        _reading("p", HR, _t("2026-03-01", 12), 135),
        _reading("p", TEMP, _t("2026-03-01", 12), 39.5),
    ]
    first = m.learn_many(rows)
    assert [a.rule for a in first] == [rule] and first[0].message.startswith(
        f"{m.score_name.upper()} not scored: {text}"
    )
    birthday = [
        _reading("p", r.code, r.epoch_s + 86400.0, r.value) for r in rows
    ]  # the same readings a day later: the birthday
    later = m.learn_many(birthday)
    assert [a.rule for a in later][:1] == [f"{m.name}.applies"] and len(later) >= 2
    assert all(a.severity in {"low-medium", "medium", "high"} for a in later[1:])


def test_learn_one_and_learn_many_agree_with_a_context() -> None:
    """The monitor contract: the same alerts and state one reading at a time as in a run."""
    rows = (
        _deteriorating("p", "2019-11-01")
        + _deteriorating("p", "2020-02-01")
        + _deteriorating("p", "2020-07-01")
    )
    one, many = News2Monitor("p"), News2Monitor("p")
    one.set_context(PREGNANT)
    many.set_context(PREGNANT)
    singles = [a for row in rows for a in one.learn_one(row)]
    batch = many.learn_many(rows)
    assert [a.to_dict() for a in singles] == [a.to_dict() for a in batch]
    assert [a.rule for a in batch].count("news2.not-applicable") == 1
    assert one.state_dict() == many.state_dict()
    # the refusal is part of the state: a restarted monitor does not say it again
    restored = News2Monitor("p")
    restored.set_context(PREGNANT)
    restored.load_state(orjson.loads(orjson.dumps(many.state_dict())))
    assert restored.not_scored is None  # July: she is scored again
    paused = News2Monitor("p")
    paused.set_context(PREGNANT)
    paused.learn_many(_deteriorating("p", "2020-02-01"))
    again = News2Monitor("p")
    again.set_context(PREGNANT)
    again.load_state(orjson.loads(orjson.dumps(paused.state_dict())))
    assert again.learn_many(_deteriorating("p", "2020-03-01")) == []
    # a hub with no context knows nothing of it: it scores, and says nothing of the pregnancy
    blind = News2Monitor("p")
    blind.load_state(orjson.loads(orjson.dumps(paused.state_dict())))
    rules = [a.rule for a in blind.learn_many(_deteriorating("p", "2020-03-02"))]
    assert rules == ["news2.low-medium", "news2.medium", "news2.high"]


def _import(db: str, *paths: Path) -> None:
    done = CliRunner().invoke(main, ["import", *map(str, paths), "--store", db])
    assert done.exit_code == 0, done.output


def test_the_context_from_the_shared_records(shared: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    bonnie = next((shared / "fhir" / "synthea-r4").glob(BONNIE + "*.json"))
    _import(db, bonnie, shared / "fhir" / "uscore")
    store = open_store(db, actor="test")
    try:
        pid = store.resolve_patient(_patient_id(bonnie))
        context = patient_context(store, pid)
        assert context.birth_date == dt.date(1983, 2, 2)
        # two pregnancies (2014-08-27 to 2015-03-11, 2019-11-13 to 2020-06-17) and the short
        # ones Synthea records between visits, each from onset to abatement
        assert _t("2019-11-13T00:00:00") <= context.pregnancies[-1][0] < _t("2019-11-14")
        assert context.pregnancy_at(_t("2020-02-01")) is not None
        assert context.pregnancy_at(_t("2020-08-01")) is None
        assert context.age_years(_t("2020-02-01")) == 36
        # US Core pregnancy status: "Pregnant" on 2022-08-24, open: 44 weeks at most
        pregnant = patient_context(store, store.resolve_patient("usqualitycore-patient"))
        ((start, end, basis),) = pregnant.pregnancies
        assert basis == "pregnancy status 82810-3: Pregnant (2022-08-24)"
        assert end - start == PREGNANCY_MAX_DAYS * 86400.0
        # "Not pregnant" on the same day for another patient: no pregnancy
        assert patient_context(store, store.resolve_patient("85")).pregnancies == ()
        # the CGM report reads the same: the pregnancy range for the first, not the second
        from medtwin.monitor.cgm import cgm_targets

        at = dt.datetime(2022, 9, 1, tzinfo=UTC)
        chosen = cgm_targets(store, store.resolve_patient("usqualitycore-patient"), at)
        assert chosen["group"] == "pregnancy-other"
        assert chosen["basis"].startswith("pregnancy in the record: pregnancy status 82810-3")
        assert cgm_targets(store, store.resolve_patient("85"), at)["group"] == "adult"
    finally:
        store.close()


def test_show_says_a_pregnancy_the_record_shows_now(tmp_path: Path) -> None:
    """`medtwin show` of a woman with a pregnancy status "Pregnant" 30 days ago says so; a
    "Not pregnant" since, or one 50 weeks ago, does not."""
    from medtwin.record.facts import Coding, Demographics, Identifier, Observation

    who = Identifier("urn:test", "preg-1")
    now = dt.datetime.now(UTC)

    def status(key: str, days_ago: float, code: str, text: str) -> Observation:
        return Observation(
            source="ehr", source_id=key, subject=who, effective_start=now - dt.timedelta(days_ago),
            code=Coding("http://loinc.org", "82810-3", "Pregnancy status"),
            value_code=Coding("http://snomed.info/sct", code, text), value_text=text,
        )  # fmt: skip

    db = str(tmp_path / "m.db")
    store = open_store(db, actor="test")
    try:
        store.append_facts(
            [
                Demographics(source="reg", source_id="Patient/1", subject=who, identifiers=(who,),
                             birth_date="1994-05-01", gender="female"),
                status("s-1", 30, "77386006", "Pregnant"),
            ],
            source="test",
        )  # fmt: skip
        shown = CliRunner().invoke(main, ["show", "urn:test|preg-1", "--store", db])
        assert shown.exit_code == 0, shown.output
        day = (now - dt.timedelta(30)).date().isoformat()
        assert f"pregnant (the record: pregnancy status 82810-3: Pregnant ({day}))" in shown.output
        out = CliRunner().invoke(main, ["show", "urn:test|preg-1", "--store", db, "--json"])
        assert orjson.loads(out.output)["pregnancy"].startswith("pregnancy status 82810-3")
        store.append_facts([status("s-2", 2, "60001007", "Not pregnant")], source="test")
        shown = CliRunner().invoke(main, ["show", "urn:test|preg-1", "--store", db])
        assert "pregnant (the record" not in shown.output
    finally:
        store.close()


def test_a_pregnancy_status_ends_with_the_pregnancy_the_record_closes() -> None:
    """A "Pregnant" status in the 10th week of a pregnancy whose condition records the delivery
    ends at the delivery, not 44 weeks after the status."""
    from medtwin.record.facts import Coding, Condition, Observation
    from medtwin.risk.context import pregnancies_from
    from medtwin.store.base import StoredFact

    def stored(fact: Any) -> StoredFact:
        return StoredFact(1, "p", 1, dt.datetime.now(UTC), None, "h", fact)

    onset, delivery = dt.datetime(2024, 1, 10, tzinfo=UTC), dt.datetime(2024, 9, 20, tzinfo=UTC)
    condition = Condition(
        source="ehr", source_id="c", code=Coding("http://snomed.info/sct", "72892002"),
        effective_start=onset, effective_end=delivery, clinical_status="resolved",
    )  # fmt: skip
    status = Observation(
        source="ehr", source_id="s", code=Coding("http://loinc.org", "82810-3"),
        effective_start=onset + dt.timedelta(weeks=8),
        value_code=Coding("http://snomed.info/sct", "77386006", "Pregnant"),
    )  # fmt: skip
    established, suspected = pregnancies_from([stored(condition)], [stored(status)])
    assert suspected == ()
    assert [end for _, end, _ in established] == [delivery.timestamp()] * 2
    alone, _ = pregnancies_from([], [stored(status)])
    assert alone[0][1] - alone[0][0] == PREGNANCY_MAX_DAYS * 86400.0


def _patient_id(bundle: Path) -> str:
    entries = orjson.loads(bundle.read_bytes())["entry"]
    return str(
        next(e["resource"]["id"] for e in entries if e["resource"]["resourceType"] == "Patient")
    )


def _vitals_bundle(path: Path, patient: str, day: str) -> Path:
    codes = {HR: "/min", RR: "/min", SPO2: "%", SBP: "mm[Hg]", TEMP: "Cel"}
    entries: list[dict[str, Any]] = []
    for i, reading in enumerate(_deteriorating(patient, day)):
        when = dt.datetime.fromtimestamp(reading.epoch_s, UTC).isoformat()
        entries.append({"resource": {
            "resourceType": "Observation", "id": f"v-{day}-{i}", "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": reading.code}]},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": when,
            "valueQuantity": {"value": reading.value, "unit": codes[reading.code],
                              "system": "http://unitsofmeasure.org",
                              "code": codes[reading.code]},
        }})  # fmt: skip
    path.write_bytes(
        orjson.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})
    )
    return path


def test_monitor_run_reads_the_pregnancy_from_the_record(shared: Path, tmp_path: Path) -> None:
    """`medtwin monitor run` over vital signs imported into Bonnie Kemmer's record: during her
    pregnancy NEWS2 says it does not apply; after the delivery it alerts."""
    db = str(tmp_path / "m.db")
    bonnie = next((shared / "fhir" / "synthea-r4").glob(BONNIE + "*.json"))
    pid = _patient_id(bonnie)
    _import(
        db,
        bonnie,
        _vitals_bundle(tmp_path / "feb.json", pid, "2020-02-01"),
        _vitals_bundle(tmp_path / "jul.json", pid, "2020-07-01"),
    )
    out = CliRunner().invoke(
        main, ["monitor", "run", pid, "--store", db, "--monitors", "news2", "--save", "--json"]
    )
    assert out.exit_code == 0, out.output
    rules = [(a["rule"], a["time"][:10]) for a in orjson.loads(out.output)["alerts"]]
    assert rules == [
        ("news2.not-applicable", "2020-02-01"),
        ("news2.applies", "2020-07-01"),
        ("news2.low-medium", "2020-07-01"),
        ("news2.medium", "2020-07-01"),
        ("news2.high", "2020-07-01"),
    ]
    # in the alert book: the notice was resolved by the second one, the deterioration is open
    book = CliRunner().invoke(main, ["alerts", "--store", db, "--json"])
    assert book.exit_code == 0, book.output
    rows = orjson.loads(book.output)
    by_key = {row["key"]: row["status"] for row in rows}
    assert by_key == {"news2:population": "resolved", "news2": "open"}
    resolved = next(row for row in rows if row["key"] == "news2:population")
    assert resolved["resolved_reason"] == "NEWS2 applies to the patient again: scored from here on"


def test_the_hub_reads_the_context_once_per_patient_then_after_its_time() -> None:
    calls: list[str] = []

    def context(pid: str) -> PatientContext:
        calls.append(pid)
        return PREGNANT

    hub = MonitorHub(["news2", "glucose"], context=context, context_ttl_s=3600.0)
    hub.feed(_deteriorating("a", "2020-02-01"))
    hub.feed(_deteriorating("a", "2020-02-02") + _deteriorating("b", "2020-02-02"))
    assert calls == ["a", "b"]  # the glucose monitor needs none
    assert hub.monitor("news2", "a").not_scored is not None  # type: ignore[attr-defined]
    hub.context_ttl_s = 0.0
    hub.feed(_deteriorating("a", "2020-02-03"))
    assert calls == ["a", "b", "a"]
