"""The Store conformance suite: every test runs on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from medtwin.record.batch import Batch, ResourceUnit
from medtwin.record.facts import (
    LOINC,
    SNOMED,
    Coding,
    Condition,
    Demographics,
    Identifier,
    Observation,
    RawResource,
)
from medtwin.store import PatientNotFoundError
from medtwin.store.sql import SqlStore

SRC = "test-src"
PID_SYSTEM = "urn:medtwin:fhir:test-src:Patient"
HR = Coding(LOINC, "8867-4", "Heart rate")
SBP = Coding(LOINC, "8480-6", "Systolic blood pressure")


def patient(pid: str, family: str, given: str, born: str, mrn: str) -> Demographics:
    return Demographics(
        source=SRC,
        source_id=f"Patient/{pid}",
        subject=Identifier(PID_SYSTEM, pid),
        identifiers=(Identifier(PID_SYSTEM, pid), Identifier("urn:hospital:mrn", mrn)),
        family=family,
        given=(given,),
        birth_date=born,
        gender="female",
        raw={"resourceType": "Patient", "id": pid},
    )


def obs(
    pid: str, oid: str, code: Coding, value: float, day: int, status: str = "final"
) -> Observation:
    return Observation(
        source=SRC,
        source_id=f"Observation/{oid}",
        subject=Identifier(PID_SYSTEM, pid),
        code=code,
        status=status,
        effective_start=datetime(2024, 1, day, 8, tzinfo=UTC),
        value_num=value,
        unit="/min" if code == HR else "mm[Hg]",
    )


@pytest.fixture
def loaded(store: SqlStore) -> SqlStore:
    store.append_facts(
        [
            patient("p1", "Curie", "Marie", "1967-11-07", "MRN-1"),
            patient("p2", "Noether", "Emmy", "1982-03-23", "MRN-2"),
            obs("p1", "o1", HR, 70, 1),
            obs("p1", "o2", HR, 75, 3),
            obs("p1", "o3", HR, 80, 5),
            obs("p1", "o4", SBP, 130, 2),
            obs("p2", "o5", HR, 60, 1),
        ],
        source=SRC,
    )
    return store


def test_append_is_idempotent(loaded: SqlStore) -> None:
    before = loaded.counts()
    again = loaded.append_facts(
        [obs("p1", "o1", HR, 70, 1), obs("p1", "o2", HR, 75, 3)], source=SRC
    )
    assert (again.inserted, again.new_versions, again.unchanged) == (0, 0, 2)
    assert loaded.counts() == before


def test_batch_with_two_versions_of_a_fact_is_idempotent(loaded: SqlStore) -> None:
    """A file may carry a resource and its correction; re-sending the file changes nothing."""
    first = loaded.append_facts(
        [obs("p1", "o7", HR, 61, 7), obs("p1", "o7", HR, 66, 7, status="amended")], source=SRC
    )
    assert (first.inserted, first.new_versions) == (1, 1)
    before = loaded.counts()
    again = loaded.append_facts(
        [obs("p1", "o7", HR, 61, 7), obs("p1", "o7", HR, 66, 7, status="amended")], source=SRC
    )
    assert (again.inserted, again.new_versions, again.unchanged) == (0, 0, 2)
    assert loaded.counts() == before
    assert [v.fact.value_num for v in loaded.versions(SRC, "Observation/o7")] == [61, 66]  # type: ignore[attr-defined]
    # the batch's last copy still counts: a batch ending on a value sent before is a revert
    revert = loaded.append_facts(
        [obs("p1", "o7", HR, 66, 7, status="amended"), obs("p1", "o7", HR, 61, 7)], source=SRC
    )
    assert (revert.unchanged, revert.new_versions) == (1, 1)
    history = loaded.versions(SRC, "Observation/o7")
    assert [v.fact.value_num for v in history] == [61, 66, 61]  # type: ignore[attr-defined]
    assert [v.superseded_at is None for v in history] == [False, False, True]


def test_timeline_by_code_and_range(loaded: SqlStore) -> None:
    rows = loaded.timeline("MRN-1", codes=["8867-4"])
    assert [r.fact.value_num for r in rows] == [70, 75, 80]  # type: ignore[attr-defined]
    window = loaded.timeline(
        "MRN-1",
        codes=["8867-4"],
        start=datetime(2024, 1, 2, tzinfo=UTC),
        end=datetime(2024, 1, 5, tzinfo=UTC),
    )
    assert [r.fact.value_num for r in window] == [75]  # type: ignore[attr-defined]
    assert all(r.patient_id == rows[0].patient_id for r in rows)


def test_observation_values_are_the_timelines_columns(loaded: SqlStore) -> None:
    """The columns of a series, without decoding the facts: the same values, units, times and
    order as the timeline; the current version after a correction; a bound's text kept; the
    read logged."""
    loaded.append_facts(
        [
            obs("p1", "o3", HR, 88, 5, status="amended"),
            dataclasses.replace(obs("p1", "o6", HR, 40, 6), value_text="<40"),
        ],
        source=SRC,
    )
    values = loaded.observation_values("MRN-1", codes=["8867-4"])
    facts = [sf.fact for sf in loaded.timeline("MRN-1", codes=["8867-4"])]
    assert [(v.time, v.value, v.unit, v.status, v.text) for v in values] == [
        (f.effective_start, f.value_num, f.unit, f.status, f.value_text)  # type: ignore[attr-defined]
        for f in facts
    ]
    assert [v.value for v in values] == [70, 75, 88, 40] and values[-1].text == "<40"
    window = loaded.observation_values(
        "MRN-1",
        codes=["8867-4", "8480-6"],
        start=datetime(2024, 1, 2, tzinfo=UTC),
        end=datetime(2024, 1, 5, tzinfo=UTC),
    )
    assert [(v.value, v.unit) for v in window] == [(130, "mm[Hg]"), (75, "/min")]
    assert loaded.observation_values("MRN-1", codes=[]) == []
    pid = loaded.resolve_patient("MRN-1")
    reads = [e.what for e in loaded.access_log(patient_id=pid) if e.action == "read"]
    assert "values codes=8867-4,8480-6" in reads


def test_latest_per_code(loaded: SqlStore) -> None:
    latest = loaded.latest("MRN-1")
    assert latest["8867-4"].fact.value_num == 80  # type: ignore[attr-defined]
    assert latest["8480-6"].fact.value_num == 130  # type: ignore[attr-defined]
    # a newer reading of a cancelled test is no result: the latest stays the last real one
    loaded.append_facts([obs("p1", "o-void", HR, 150, 20, status="cancelled")], source=SRC)
    assert loaded.latest("MRN-1")["8867-4"].fact.value_num == 80  # type: ignore[attr-defined]
    assert [r.fact.value_num for r in loaded.timeline("MRN-1", codes=["8867-4"])][-1] == 150  # type: ignore[attr-defined]


def test_deaths_and_counts(loaded: SqlStore) -> None:
    """The patients a record says have died, from their current demographics (a correction
    that records the death counts, the superseded version does not matter); the count of a
    patient's facts, and of those after a date."""
    from dataclasses import replace

    ids = [p.id for p in loaded.patients()]
    assert loaded.deaths(ids) == {}
    died = replace(patient("p2", "Noether", "Emmy", "1982-03-23", "MRN-2"), deceased="2035-04-14")
    assert loaded.append_facts([died], source=SRC).new_versions == 1
    emmy = loaded.resolve_patient("MRN-2")
    assert loaded.deaths(ids) == {emmy: "2035-04-14"}
    marie = loaded.resolve_patient("MRN-1")
    total = len(loaded.timeline(marie))
    assert loaded.count_facts(marie) == total
    after = datetime(2024, 1, 2, 12, tzinfo=UTC)
    dated = [s for s in loaded.timeline(marie, start=after) if s.fact.kind != "Demographics"]
    assert loaded.count_facts(marie, after=after) == len(dated) > 0


def test_correction_is_a_new_version_and_as_of_travels(loaded: SqlStore) -> None:
    before = datetime.now(UTC)
    time.sleep(0.01)
    result = loaded.append_facts([obs("p1", "o3", HR, 88, 5, status="amended")], source=SRC)
    assert result.new_versions == 1
    versions = loaded.versions(SRC, "Observation/o3")
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].superseded_at is not None and versions[1].superseded_at is None
    now_values = [r.fact.value_num for r in loaded.timeline("MRN-1", codes=["8867-4"])]  # type: ignore[attr-defined]
    assert now_values == [70, 75, 88]
    then = [r.fact.value_num for r in loaded.timeline("MRN-1", codes=["8867-4"], as_of=before)]  # type: ignore[attr-defined]
    assert then == [70, 75, 80]


def test_entered_in_error_retracts(loaded: SqlStore) -> None:
    before = datetime.now(UTC)
    time.sleep(0.01)
    result = loaded.append_facts(
        [obs("p1", "o2", HR, 75, 3, status="entered-in-error")], source=SRC
    )
    assert result.retracted == 1
    values = [r.fact.value_num for r in loaded.timeline("MRN-1", codes=["8867-4"])]  # type: ignore[attr-defined]
    assert values == [70, 80]
    earlier = [r.fact.value_num for r in loaded.timeline("MRN-1", codes=["8867-4"], as_of=before)]  # type: ignore[attr-defined]
    assert earlier == [70, 75, 80]
    # re-sending the retraction is a no-op
    again = loaded.append_facts([obs("p1", "o2", HR, 75, 3, status="entered-in-error")], source=SRC)
    assert again.unchanged == 1 and again.retracted == 0


def test_as_of_before_anything_is_empty(loaded: SqlStore) -> None:
    assert loaded.timeline("MRN-1", as_of=datetime(2000, 1, 1, tzinfo=UTC)) == []


def test_patient_search(loaded: SqlStore) -> None:
    assert [p.family for p in loaded.patients()] == ["Curie", "Noether"]
    assert [p.family for p in loaded.patients(search="emmy")] == ["Noether"]
    assert [p.family for p in loaded.patients(search="MRN-1")] == ["Curie"]
    assert [p.family for p in loaded.patients(birth_date="1982")] == ["Noether"]
    assert loaded.patients(search="nobody") == []
    # search words are text: LIKE's wildcards in them match only themselves ("%" listed
    # everyone, "c_rie" found Curie); "MRN-1" and "MRN_1" are not the same identifier
    for literal in ("%", "_", "c_rie", "MRN_1", "\\", "%urie"):
        assert loaded.patients(search=literal) == [], literal
    assert loaded.patients(birth_date="19_2") == [] and loaded.patients(birth_date="%") == []


def test_resolve_patient_by_any_identifier(loaded: SqlStore) -> None:
    pid = loaded.resolve_patient("MRN-1")
    assert pid.startswith("mt-")
    assert loaded.resolve_patient(pid) == pid
    assert loaded.resolve_patient("urn:hospital:mrn|MRN-1") == pid
    assert loaded.resolve_patient("Patient/p1") == pid
    with pytest.raises(PatientNotFoundError, match="MRN-404"):
        loaded.resolve_patient("MRN-404")
    summary = loaded.patient("p1")
    assert Identifier("urn:hospital:mrn", "MRN-1") in summary.identifiers


def test_identity_matching_across_sources(loaded: SqlStore) -> None:
    """A second source naming the same MRN lands on the same patient."""
    other = Demographics(
        source="lab",
        source_id="Patient/L9",
        subject=Identifier("urn:lab:patient", "L9"),
        identifiers=(Identifier("urn:lab:patient", "L9"), Identifier("urn:hospital:mrn", "MRN-1")),
        family="Curie",
        given=("Marie",),
    )
    result = loaded.append_facts([other], source="lab")
    assert result.patients_created == 0
    assert loaded.resolve_patient("L9") == loaded.resolve_patient("MRN-1")


def test_link_merges_patients(loaded: SqlStore) -> None:
    keep = loaded.resolve_patient("MRN-1")
    gone = loaded.resolve_patient("MRN-2")
    assert loaded.link("MRN-1", "MRN-2") == keep
    assert loaded.resolve_patient(gone) == keep
    assert loaded.resolve_patient("MRN-2") == keep
    assert len(loaded.timeline("MRN-1", codes=["8867-4"])) == 4
    assert [p.id for p in loaded.patients()] == [keep]
    # new facts for the merged identifier go to the survivor
    loaded.append_facts([obs("p2", "o9", HR, 61, 9)], source=SRC)
    assert len(loaded.timeline(keep, codes=["8867-4"])) == 5


def test_unknown_subject_waits_in_quarantine_then_resolves(store: SqlStore) -> None:
    result = store.append_facts([obs("p7", "o70", HR, 70, 1)], source=SRC)
    assert result.quarantined == 1 and result.inserted == 0
    [entry] = store.quarantine()
    assert entry.item.waits_for == "Patient/p7" and "p7" in entry.item.reason
    store.append_facts([patient("p7", "Hopper", "Grace", "1906-12-09", "MRN-7")], source=SRC)
    retried = store.append_facts([obs("p7", "o70", HR, 70, 1)], source=SRC)
    assert retried.inserted == 1 and retried.resolved_quarantine == 1
    assert store.quarantine() == []


def test_missing_requirement_and_cascade(loaded: SqlStore) -> None:
    a = obs("p1", "a", HR, 1, 1)
    b = obs("p1", "b", HR, 2, 2)
    batch = Batch(
        source=SRC,
        units=[
            ResourceUnit(key=a.source_id, facts=(a,), requires=("Encounter/none",), content="{}"),
            ResourceUnit(key=b.source_id, facts=(b,), requires=(a.source_id,), content="{}"),
        ],
    )
    result = loaded.append(batch)
    assert result.inserted == 0 and result.quarantined == 2
    reasons = {e.item.resource_id: e.item.reason for e in loaded.quarantine()}
    assert reasons["a"] == "references Encounter/none, which is not in this file or the store"
    assert reasons["b"] == "references Observation/a, which is in quarantine"
    # quarantining the same data again is a no-op
    assert loaded.append(batch).quarantined == 0


def test_requirement_in_store_is_enough(loaded: SqlStore) -> None:
    c = obs("p1", "c", HR, 3, 3)
    unit = ResourceUnit(key=c.source_id, facts=(c,), requires=("Observation/o1", "Patient/p1"))
    assert loaded.append(Batch(source=SRC, units=[unit])).inserted == 1


def test_batch_is_atomic(loaded: SqlStore) -> None:
    before = loaded.counts()
    bad = dataclasses.replace(obs("p1", "bad", HR, 1, 1), raw={"x": object()})
    new_patient = patient("p8", "Lovelace", "Ada", "1815-12-10", "MRN-8")
    with pytest.raises(TypeError):
        loaded.append_facts([new_patient, obs("p8", "ok", HR, 1, 1), bad], source=SRC)
    assert loaded.counts() == before
    with pytest.raises(PatientNotFoundError):
        loaded.resolve_patient("MRN-8")


def test_append_many_is_one_transaction(loaded: SqlStore) -> None:
    """Import workers write a few Bundles per transaction: all of them or none."""
    before = loaded.counts()
    good = Batch(
        source=SRC,
        units=[
            ResourceUnit(
                key="Patient/p9", facts=(patient("p9", "Hopper", "Grace", "1906-12-09", "M9"),)
            ),
            ResourceUnit(key="Observation/g1", facts=(obs("p9", "g1", HR, 64, 2),)),
        ],
    )
    bad_fact = dataclasses.replace(obs("p9", "bad", HR, 1, 1), raw={"x": object()})
    bad = Batch(source=SRC, units=[ResourceUnit(key="Observation/bad", facts=(bad_fact,))])
    with pytest.raises(TypeError):
        loaded.append_many([good, bad])
    assert loaded.counts() == before
    with pytest.raises(PatientNotFoundError):
        loaded.resolve_patient("M9")
    # the second batch needs the patient of the first: the same as appending them in turn
    later = Batch(
        source=SRC, units=[ResourceUnit(key="Observation/g2", facts=(obs("p9", "g2", HR, 66, 3),))]
    )
    results = loaded.append_many([good, later])
    assert [r.inserted for r in results] == [2, 1]
    assert loaded.counts()["facts"] == before["facts"] + 3
    again = loaded.append_many([good, later])
    assert [r.unchanged for r in again] == [2, 1]


def test_access_log_records_reads_and_writes(loaded: SqlStore) -> None:
    pid = loaded.resolve_patient("MRN-1")
    loaded.timeline(pid)
    entries = loaded.access_log(patient_id=pid)
    actions = {e.action for e in entries}
    assert {"write", "read"} <= actions
    assert all(e.actor == "test" for e in entries)
    assert any(e.what == "timeline" for e in entries)
    loaded.patients(search="curie")
    assert loaded.access_log(limit=1)[0].action == "list"


def test_conditions_and_shared_resources(store: SqlStore) -> None:
    store.append_facts([patient("p1", "Curie", "Marie", "1967-11-07", "MRN-1")], source=SRC)
    cond = Condition(
        source=SRC,
        source_id="Condition/c1",
        subject=Identifier(PID_SYSTEM, "p1"),
        code=Coding(SNOMED, "38341003", "Hypertension"),
        clinical_status="active",
        effective_start=datetime(2020, 1, 1, tzinfo=UTC) - timedelta(days=1),
    )
    store.append_facts([cond], source=SRC)
    rows = store.timeline("MRN-1", kinds=["Condition"])
    assert rows[0].fact.code == cond.code
    assert rows[0].fact.effective_start == cond.effective_start


def test_timeline_by_resource_type_of_kept_whole_resources(store: SqlStore) -> None:
    """A resource medtwin does not model (FamilyMemberHistory) is found among the RawResource
    facts by its resource type, with its JSON, and the read is logged with the types."""
    store.append_facts([patient("p1", "Curie", "Marie", "1967-11-07", "MRN-1")], source=SRC)
    kept = [
        RawResource(
            source=SRC,
            source_id=f"{rtype}/r{i}",
            subject=Identifier(PID_SYSTEM, "p1"),
            resource_type=rtype,
            effective_start=datetime(2020, 1, 1 + i, tzinfo=UTC),
            raw={"resourceType": rtype, "id": f"r{i}"},
        )
        for i, rtype in enumerate(("Claim", "FamilyMemberHistory", "Claim"))
    ]
    store.append_facts(kept, source=SRC)
    rows = store.timeline(
        "MRN-1", kinds=["RawResource"], resource_types=["FamilyMemberHistory"], include_raw=True
    )
    assert [r.fact.source_id for r in rows] == ["FamilyMemberHistory/r1"]
    assert rows[0].fact.raw == {"resourceType": "FamilyMemberHistory", "id": "r1"}
    assert len(store.timeline("MRN-1", resource_types=["Claim", "FamilyMemberHistory"])) == 3
    assert store.access_log(limit=1)[0].what == "timeline types=Claim,FamilyMemberHistory"


def test_backends_implement_the_protocol(store: SqlStore) -> None:
    from medtwin.store.base import Store

    assert isinstance(store, Store)
    job = store.start_job("import", {"paths": ["x"]})
    store.finish_job(job, "done", {"inserted": 3})
    [row] = store.jobs()
    assert (row["status"], row["detail"]["inserted"], row["actor"]) == ("done", 3, "test")


def test_older_version_arriving_late_is_kept_but_not_current(loaded: SqlStore) -> None:
    """Bitemporal: a replayed older version (by the source's own recorded time) never wins."""
    newer = dataclasses.replace(
        obs("p1", "late", HR, 90, 6), source_recorded_at=datetime(2024, 1, 6, 12, tzinfo=UTC)
    )
    older = dataclasses.replace(
        obs("p1", "late", HR, 85, 6), source_recorded_at=datetime(2024, 1, 6, 9, tzinfo=UTC)
    )
    loaded.append_facts([newer], source=SRC)
    result = loaded.append_facts([older], source=SRC)
    assert result.stale == 1 and result.new_versions == 0
    [current] = [
        s
        for s in loaded.timeline("MRN-1", codes=["8867-4"])
        if s.fact.source_id == "Observation/late"
    ]
    assert current.fact.value_num == 90  # type: ignore[attr-defined]
    history = loaded.versions(SRC, "Observation/late")
    assert [v.fact.value_num for v in history] == [90, 85]  # type: ignore[attr-defined]
    # never current, so invisible to every "as of" query too
    assert all(
        s.fact.value_num != 85  # type: ignore[attr-defined]
        for s in loaded.timeline("MRN-1", codes=["8867-4"], as_of=datetime.now(UTC))
    )
    again = loaded.append_facts([older], source=SRC)
    assert again.unchanged == 1 and again.stale == 0


def test_a_job_whose_process_is_gone_is_interrupted(store: SqlStore) -> None:
    import subprocess
    import sys

    running = store.start_job("import", {"paths": ["y"]})
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(gone.stdout)
    killed = store.start_job("import", {"paths": ["z"]})
    store._begin()
    store._execute(
        "UPDATE jobs SET detail = ? WHERE id = ?",
        (store.dialect.json(orjson.dumps({**store.jobs()[0]["detail"], "pid": dead_pid})), killed),
    )
    store._commit()
    by_id = {row["id"]: row for row in store.jobs()}
    assert by_id[running]["status"] == "running"  # this process: alive
    assert by_id[killed]["status"] == "interrupted"
    assert by_id[running]["detail"]["paths"] == ["y"] and "pid" in by_id[running]["detail"]
