"""HL7 v2 import: the shared public messages, damaged input, versions, and the store."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medtwin.ingest.base import Batch, QuarantineItem
from medtwin.ingest.hl7v2 import Hl7v2Reader, read_hl7v2_bytes, split_segments
from medtwin.record.facts import (
    LOINC,
    SNOMED,
    Demographics,
    Encounter,
    Identifier,
    Observation,
    content_hash,
)
from medtwin.store.sql import SqlStore

NIST_MPI = "urn:oid:2.16.840.1.113883.19.3.2.1"


# --------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def hl7_dir(shared: Path) -> Path:
    """``<shared data>/hl7v2`` (``shared`` comes from tests/conftest.py: it skips, or fails
    under ``CI=true``, when ``MEDTWIN_SHARED_DATA`` / ``../shared/data`` is absent)."""
    folder = shared / "hl7v2"
    if not folder.is_dir():
        reason = f"HL7 v2 test messages not found at {folder} (see ../shared/data/README.md)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return folder


def read(path: Path, tz: str = "UTC", source: str | None = None) -> list[Batch]:
    return list(Hl7v2Reader().read(path, source=source, tz=tz))


def read_text(text: str, tz: str = "UTC") -> list[Batch]:
    return list(read_hl7v2_bytes(text.encode("utf-8"), tz=tz, file="test.hl7"))


def facts_of(batches: list[Batch]) -> list[object]:
    return [fact for batch in batches for unit in batch.units for fact in unit.facts]


def observations(batches: list[Batch]) -> list[Observation]:
    return [f for f in facts_of(batches) if isinstance(f, Observation)]


def demographics(batches: list[Batch]) -> list[Demographics]:
    return [f for f in facts_of(batches) if isinstance(f, Demographics)]


def encounters(batches: list[Batch]) -> list[Encounter]:
    return [f for f in facts_of(batches) if isinstance(f, Encounter)]


def quarantined(batches: list[Batch]) -> list[QuarantineItem]:
    return [item for batch in batches for item in batch.quarantine]


def message(*segments: str, control_id: str = "MSG1", msh18: str = "") -> str:
    """A small ORU^R01 (MSH + the given segments), segments ended by CR."""
    msh = f"MSH|^~\\&|LIS|ACME LAB|EHR|WARD|20240301101500-0500||ORU^R01|{control_id}|P|2.5.1"
    if msh18:
        msh += "||||||" + msh18
    return "\r".join([msh, *segments]) + "\r"


PID = "PID|1||P1001^^^ACME&2.16.840.1.113883.999.1&ISO^MR||Doe^Jane^Q||19800102|F"
OBR = "OBR|1||LAB-77^LIS|24323-8^Metabolic panel^LN|||20240301080000-0500"
GLUCOSE = "OBX|1|NM|2345-7^Glucose^LN|1|5.5|mmol/L|3.9-5.5|N|||F|||20240301081500-0500"
SODIUM = "OBX|2|NM|2951-2^Sodium^LN|1|140|mmol/L|135-145|N|||F"


# --------------------------------------------------------------------------------------------
# the shared files


def test_every_valid_file_yields_batches(hl7_dir: Path) -> None:
    files = sorted(hl7_dir.glob("valid__*.hl7"))
    assert len(files) == 24
    for path in files:
        assert Hl7v2Reader().can_read(path)
        batches = read(path)
        assert batches, path.name
        for batch in batches:
            assert batch.file == str(path)
            for unit in batch.units:
                assert unit.key == unit.facts[0].source_id
                assert unit.location and unit.location.startswith("message ")
                assert unit.content


def test_yield_per_shared_file(hl7_dir: Path) -> None:
    """What each shared file becomes.

    Tuples: batches, Demographics, Encounters, Observations, quarantine items.
    """
    expected = {
        "invalid__misc__bad-phone-example.hl7": (1, 1, 0, 0, 0),
        "valid__athena-health__oru-example.hl7": (1, 1, 0, 0, 0),  # OBR without OBX
        "valid__catalyze-io__orm-example.hl7": (1, 1, 1, 0, 0),
        "valid__cerner__cerner_bordetella.hl7": (1, 1, 0, 1, 0),
        "valid__cerner__cerner_en.hl7": (1, 1, 0, 1, 0),
        "valid__cerner__cerner_lead.hl7": (1, 1, 0, 1, 0),
        "valid__cerner__cerner_sequential.hl7": (1, 1, 0, 1, 0),
        "valid__corepoint-health__siu-example.hl7": (1, 1, 1, 0, 0),
        "valid__health-standards__bar-example.hl7": (1, 1, 1, 0, 0),
        "valid__healthcare-it-systems__adt-example.hl7": (1, 1, 1, 0, 0),
        "valid__mieweb__dft-example.hl7": (2, 2, 0, 0, 0),
        "valid__mirthproject__mfn-example.hl7": (1, 0, 0, 0, 0),  # master file: no patient
        "valid__nist__ORU_R01_2.5.1_SampleTestCase1.hl7": (1, 1, 0, 1, 0),
        "valid__nist__ORU_R01_2.5.1_SampleTestCase2.hl7": (1, 1, 0, 1, 0),
        "valid__nist__ORU_R01_2.5.1_SampleTestCase3.hl7": (1, 1, 0, 1, 0),
        "valid__nist__ORU_R01_2.5.1_SampleTestCase4.hl7": (1, 1, 0, 1, 0),
        "valid__nist__ORU_R01_2.5.1_SampleTestCase5.hl7": (1, 1, 0, 1, 0),
        # 20995-1 fails the LOINC check digit: stored as sent and flagged
        "valid__nist__ORU_R01_2.5.1_SampleTestCase6.hl7": (1, 1, 0, 3, 1),
        "valid__realm__realm-animal-rabies.hl7": (1, 1, 0, 1, 0),
        "valid__realm__realm-campylobacter-jejuni.hl7": (1, 1, 1, 1, 0),
        "valid__realm__realm-cj-badloinc.hl7": (1, 1, 1, 1, 1),  # flag for xx625-4
        "valid__realm__realm-cj-joeslab.hl7": (1, 1, 1, 2, 0),
        "valid__realm__realm-cj.hl7": (1, 1, 1, 1, 0),
        # the SN result is shifted two fields right (OBX-5 empty): quarantined
        "valid__realm__realm-hepatitis-c-virus.hl7": (1, 1, 1, 2, 1),
        "valid__remote-operations__mdm-example.hl7": (1, 1, 1, 0, 0),  # TXA/OBX not modelled
    }
    seen = {}
    for path in sorted(hl7_dir.glob("*.hl7")):
        batches = read(path)
        seen[path.name] = (
            len(batches),
            len(demographics(batches)),
            len(encounters(batches)),
            len(observations(batches)),
            len(quarantined(batches)),
        )
    assert seen == expected


def test_nist_case1_lead_result(hl7_dir: Path) -> None:
    batches = read(hl7_dir / "valid__nist__ORU_R01_2.5.1_SampleTestCase1.hl7")
    assert [b.source for b in batches] == ["hl7v2:EHR Facility"]
    (patient,) = demographics(batches)
    assert patient.source_id == "Patient/9817566735"
    assert patient.subject == Identifier(NIST_MPI, "9817566735")
    assert (patient.family, patient.given) == ("Johnson", ("Philip",))
    assert (patient.birth_date, patient.gender) == ("2007-05-26", "male")
    assert patient.address == "Aurora, Colorado, USA"
    (lead,) = observations(batches)
    assert lead.source_id == "Observation/9700123@Lab/10368-9/1"
    assert lead.subject == patient.subject
    assert (lead.code.system, lead.code.code) == (LOINC, "10368-9")  # type: ignore[union-attr]
    assert (lead.value_num, lead.unit) == (50.0, "ug/dL")
    assert (lead.original_value, lead.original_unit) == (50.0, "ug/dL")
    assert (lead.status, lead.interpretation, lead.category) == ("final", "H", "laboratory")
    # OBX-7 "<9 mcg/dL:  Acceptable background lead exposure"
    assert (lead.reference_low, lead.reference_high) == (None, 9.0)
    # OBX-14 200808151030-0700 carries its offset
    assert lead.effective_start == datetime(2008, 8, 15, 17, 30, tzinfo=UTC)
    assert lead.original_time == "200808151030-0700"
    assert lead.source_recorded_at == datetime(2008, 8, 19, 1, 0, tzinfo=UTC)  # OBR-22


def test_nist_case3_is_a_correction_of_case1(hl7_dir: Path) -> None:
    first = observations(read(hl7_dir / "valid__nist__ORU_R01_2.5.1_SampleTestCase1.hl7"))[0]
    corrected = observations(read(hl7_dir / "valid__nist__ORU_R01_2.5.1_SampleTestCase3.hl7"))[0]
    assert corrected.source_id == first.source_id  # same order, code and sub-id
    assert (corrected.status, corrected.value_num) == ("amended", 25.0)
    assert corrected.original_unit == "ug/dl" and corrected.unit == "ug/dL"


def test_nist_cases_4_to_6(hl7_dir: Path) -> None:
    (anthrax,) = observations(read(hl7_dir / "valid__nist__ORU_R01_2.5.1_SampleTestCase4.hl7"))
    assert anthrax.code.code == "11469-4"  # type: ignore[union-attr]
    assert (anthrax.value_text, anthrax.value_num) == ("Isolated", None)
    (hcv,) = observations(read(hl7_dir / "valid__nist__ORU_R01_2.5.1_SampleTestCase5.hl7"))
    assert (hcv.value_num, hcv.unit, hcv.original_unit) == (850000.0, "[iU]/mL", "iU/mL")
    batches = read(hl7_dir / "valid__nist__ORU_R01_2.5.1_SampleTestCase6.hl7")
    # three OBX all with set id 1: told apart by their codes
    assert [(o.code.code, o.value_text) for o in observations(batches)] == [  # type: ignore[union-attr]
        ("6331-3", "Isolated"),
        ("20995-1", "Isolated"),
        ("17576-0", "Not Isolated"),
    ]
    (flag,) = quarantined(batches)
    assert (flag.field, flag.resource_type, flag.location) == (
        "OBX-3",
        "OBX",
        "message 1, segment 7 (OBX)",
    )


def test_adt_example_with_space_separated_segments(hl7_dir: Path) -> None:
    """The ADT file's segment separators became spaces: it is repaired and read."""
    batches = read(
        hl7_dir / "valid__healthcare-it-systems__adt-example.hl7", tz="America/Los_Angeles"
    )
    (patient,) = demographics(batches)
    assert (patient.family, patient.given) == ("DUCK", ("DONALD", "D"))
    assert (patient.birth_date, patient.gender) == ("1924-10-10", "male")
    assert patient.subject == Identifier("urn:medtwin:hl7v2:authority:1", "10006579")
    (visit,) = encounters(batches)
    assert visit.source_id == "Encounter/40007716"  # PV1-19 visit number
    assert (visit.class_code, visit.status) == ("IMP", "in-progress")
    # PV1-44 20050110045253 read in the declared zone (PST, UTC-8)
    assert visit.effective_start == datetime(2005, 1, 10, 12, 52, 53, tzinfo=UTC)


def test_other_message_types_keep_pid_and_pv1(hl7_dir: Path) -> None:
    orm = read(hl7_dir / "valid__catalyze-io__orm-example.hl7")
    assert demographics(orm)[0].telecom == ("(608)123-4567", "(608)123-5678")
    assert encounters(orm)[0].source_id == "Encounter/610613"
    (siu,) = encounters(read(hl7_dir / "valid__corepoint-health__siu-example.hl7"))
    assert (siu.status, siu.class_code) == ("planned", "AMB")
    dft = read(hl7_dir / "valid__mieweb__dft-example.hl7")
    assert [d.source_id for d in demographics(dft)] == ["Patient/10476", "Patient/10476"]
    assert demographics(dft)[0].identifiers[0] == Identifier(
        "urn:oid:1.3.6.1.4.1.21367.2005.1.1", "10476"
    )
    mfn = read(hl7_dir / "valid__mirthproject__mfn-example.hl7")
    assert [(b.units, b.quarantine) for b in mfn] == [([], [])]
    mdm = read(hl7_dir / "valid__remote-operations__mdm-example.hl7")
    # MSH-10 was wrapped after a hyphen: the continuation line is joined back
    assert encounters(mdm)[0].source_id == "Encounter/{6AF4DC6C-5BF1-4563-8EBD-F54B880B3613}/PV1"


def test_bad_phone_message(hl7_dir: Path) -> None:
    """What is wrong: PID-13 '(123) 123-1234' breaks the v2.3.1 TN pattern (a space after the
    area code), PID-3 (required) is empty with the id in PID-2, and the SIU^S12 has no SCH.

    medtwin does not police phone formats: the number is kept as sent, PID-2 identifies the
    patient when PID-3 is empty, and unmodelled segments are simply absent; nothing is lost.
    """
    batches = read(hl7_dir / "invalid__misc__bad-phone-example.hl7")
    assert quarantined(batches) == []
    (patient,) = demographics(batches)
    assert patient.subject == Identifier("urn:medtwin:hl7v2:hl7v2:gMed:MR", "1434768")
    assert (patient.family, patient.given) == ("Someone", ("Gloria", "A"))
    assert (patient.birth_date, patient.gender) == ("1950-11-04", "female")
    assert patient.telecom == ("(123) 123-1234", "someemailaddress@yahoo.com")
    assert encounters(batches) == [] and observations(batches) == []


def test_bad_loinc_is_kept_as_sent_and_flagged(hl7_dir: Path) -> None:
    """Decision: the observation is stored with the code as sent (nothing is lost, and the
    lab may fix it by a corrected re-send); a quarantine entry flags the code for review."""
    batches = read(hl7_dir / "valid__realm__realm-cj-badloinc.hl7")
    (obs,) = observations(batches)
    assert obs.code is not None and (obs.code.system, obs.code.code) == (LOINC, "xx625-4")
    assert obs.value_code is not None
    assert (obs.value_code.system, obs.value_code.code) == (SNOMED, "66543000")
    assert obs.status == "preliminary"
    (flag,) = quarantined(batches)
    assert flag.field == "OBX-3" and "xx625-4" in flag.reason
    # the flag is filed under the segment, so storing the observation does not close it
    assert (flag.resource_type, flag.resource_id) == ("OBX", "9700123@Lab/xx625-4/1")


def test_hepatitis_c_structured_numeric_shifted_is_quarantined(hl7_dir: Path) -> None:
    batches = read(hl7_dir / "valid__realm__realm-hepatitis-c-virus.hl7")
    (problem,) = quarantined(batches)
    assert (problem.field, problem.location) == ("OBX-5", "message 1, segment 8 (OBX)")
    assert problem.content.startswith("OBX|1|SN|5198-7^")
    age, job = observations(batches)
    assert (age.value_num, age.unit) == (29.0, "a")
    assert job.value_text == "food handler"


def test_rabies_message_coded_value_and_death(hl7_dir: Path) -> None:
    batches = read(hl7_dir / "valid__realm__realm-animal-rabies.hl7")
    (patient,) = demographics(batches)
    assert (patient.family, patient.given, patient.deceased) == (
        "Everyman",
        ("Fluffy",),
        "2008-08-17",
    )
    (obs,) = observations(batches)
    assert obs.value_code is not None and obs.value_code.code == "260373001"
    assert obs.value_text == "Detected"


def test_naive_timestamp_read_in_declared_zone(hl7_dir: Path) -> None:
    path = hl7_dir / "valid__cerner__cerner_lead.hl7"
    (utc,) = observations(read(path, tz="UTC"))
    (new_york,) = observations(read(path, tz="America/New_York"))
    assert utc.original_time == new_york.original_time == "201011041640"
    assert utc.effective_start == datetime(2010, 11, 4, 16, 40, tzinfo=UTC)
    assert new_york.effective_start == datetime(2010, 11, 4, 20, 40, tzinfo=UTC)  # EDT, UTC-4
    # a timestamp with an offset ignores the declared zone
    path = hl7_dir / "valid__nist__ORU_R01_2.5.1_SampleTestCase1.hl7"
    (lead,) = observations(read(path, tz="America/New_York"))
    assert lead.effective_start == datetime(2008, 8, 15, 17, 30, tzinfo=UTC)


def test_source_argument_overrides_sending_facility(hl7_dir: Path) -> None:
    batches = read(hl7_dir / "valid__cerner__cerner_lead.hl7", source="county-lab")
    assert {b.source for b in batches} == {"county-lab"}
    assert all(f.source == "county-lab" for f in facts_of(batches))  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# the store, end to end


def test_the_shared_messages_round_trip_through_fhir_export(hl7_dir: Path, tmp_path: Path) -> None:
    """Every fact from the shared HL7 v2 messages, exported as Bulk NDJSON, imports again with
    nothing quarantined. The sending facilities have spaces ("EHR Facility"): ``meta.source``
    is a FHIR uri, so the export percent-encodes the source name (before, all 19 resources of
    such sources failed validation on the way back) and the import decodes it."""
    import orjson

    from medtwin.export.fhir import write_bulk_ndjson
    from medtwin.ingest import import_paths
    from medtwin.store import open_store

    first = open_store(str(tmp_path / "a.db"), actor="test")
    import_paths(first, sorted(hl7_dir.glob("*.hl7")), workers=0)
    sources = {s.fact.source for s in first.iter_facts(include_raw=False)}
    assert any(" " in name for name in sources)  # e.g. hl7v2:EHR Facility
    write_bulk_ndjson(first, tmp_path / "out")
    lines = [
        orjson.loads(line)
        for file in (tmp_path / "out").glob("*.ndjson")
        for line in file.read_bytes().splitlines()
    ]
    assert {r["meta"]["source"] for r in lines} >= {"hl7v2:EHR%20Facility"}
    second = open_store(str(tmp_path / "b.db"), actor="test")
    report = import_paths(second, [tmp_path / "out"], workers=0)
    assert report.counts["quarantined"] == 0
    # one patient's demographics from two facilities (PID-3 36363636 from both): two resources
    # with ids of their own, not one id twice, so nothing is lost on the way back
    assert len({(r["resourceType"], r["id"]) for r in lines}) == len(lines)
    assert second.counts()["facts"] == len(lines) == first.counts()["facts"]
    first.close()
    second.close()


def test_import_all_shared_files_into_store(hl7_dir: Path, sqlite_store: SqlStore) -> None:
    store = sqlite_store
    files = sorted(hl7_dir.glob("*.hl7"))
    totals: dict[str, int] = {}
    history: dict[tuple[str, str], list[str]] = {}
    for path in files:
        for batch in read(path):
            result = store.append(batch)
            for name, value in result.as_dict().items():
                totals[name] = totals.get(name, 0) + value
            again = store.append(batch)  # the same message sent twice: a no-op
            assert (again.inserted, again.new_versions, again.quarantined) == (0, 0, 0), path.name
            for unit in batch.units:
                for fact in unit.facts:
                    history.setdefault((fact.source, fact.source_id), []).append(content_hash(fact))
    assert totals["resources_read"] == 56
    assert totals["inserted"] == 40  # distinct (source, source id) pairs
    assert totals["quarantined"] == 3  # two LOINC flags, one shifted SN result
    assert totals["patients_created"] == 14
    assert store.counts() == {"patients": 14, "facts": 40, "quarantine_open": 3}

    # timeline by PID-3 id: the NIST patient's lead result, corrected by case 3
    timeline = store.timeline("9817566735")
    lead = [s.fact for s in timeline if isinstance(s.fact, Observation)]
    assert [(o.code.code, o.value_num, o.status) for o in lead] == [  # type: ignore[union-attr]
        ("10368-9", 25.0, "amended")
    ]
    versions = store.versions("hl7v2:EHR Facility", "Observation/9700123@Lab/10368-9/1")
    assert [v.fact.value_num for v in versions] == [50.0, 25.0]  # type: ignore[attr-defined]
    cerner = store.timeline("9339683996", kinds=("Observation",))
    assert sorted(s.fact.code.code for s in cerner) == ["10368-9", "548-8"]  # type: ignore[union-attr]

    # Replaying every file: nothing is duplicated. A fact is re-versioned only where two
    # files say different things under one id (the store keeps the last one sent).
    flips = {key for key, hashes in history.items() if len(set(hashes)) > 1}
    assert flips == {
        ("hl7v2:EHR Facility", "Patient/9817566735"),  # case 2 writes the state as "CO"
        ("hl7v2:EHR Facility", "Observation/9700123@Lab/10368-9/1"),  # 50, 50, corrected 25
        # the rabid dog shares Adam's MPI id; the hepatitis C PID truncates his work phone
        ("hl7v2:1234", "Patient/36363636"),
        ("hl7v2:Joe's Lab", "Observation/9700123@Lab/625-4/1"),  # OBR-22 differs
    }
    expected_versions = sum(
        sum(1 for i, h in enumerate(hashes) if h != hashes[i - 1]) for hashes in history.values()
    )
    replay: dict[str, int] = {}
    for path in files:
        for batch in read(path):
            for name, value in store.append(batch).as_dict().items():
                replay[name] = replay.get(name, 0) + value
    assert replay["inserted"] == 0 and replay["quarantined"] == 0
    # The Joe's Lab pair carries the source's recorded time (OBR-22): the older result is
    # kept in the history but never becomes current again, so it no longer flips on replay.
    assert replay["new_versions"] == expected_versions - 2
    assert store.counts() == {"patients": 14, "facts": 40, "quarantine_open": 3}
    joes = store.versions("hl7v2:Joe's Lab", "Observation/9700123@Lab/625-4/1")
    current = [v for v in joes if v.superseded_at is None]
    assert len(current) == 1
    newest = max(v.fact.source_recorded_at for v in joes if v.fact.source_recorded_at)
    assert current[0].fact.source_recorded_at == newest


def test_consistent_files_reimport_is_a_no_op(hl7_dir: Path, sqlite_store: SqlStore) -> None:
    """Without the files that contradict others (see above), re-importing changes nothing."""
    store = sqlite_store
    contradicting = ("SampleTestCase2", "SampleTestCase3", "rabies", "hepatitis", "joeslab")
    files = [
        p for p in sorted(hl7_dir.glob("*.hl7")) if not any(c in p.name for c in contradicting)
    ]
    for path in files:
        for batch in read(path):
            store.append(batch)
    for path in files:
        for batch in read(path):
            result = store.append(batch)
            assert (result.inserted, result.new_versions) == (0, 0), path.name


def test_correction_deletion_and_discharge_versions(sqlite_store: SqlStore) -> None:
    store = sqlite_store
    store.append(read_text(message(PID, OBR, GLUCOSE, control_id="A"))[0])
    corrected = GLUCOSE.replace("|5.5|", "|6.1|").replace("|N|||F|", "|H|||C|")
    result = store.append(read_text(message(PID, OBR, corrected, control_id="B"))[0])
    assert (result.inserted, result.new_versions, result.unchanged) == (0, 1, 1)
    (stored,) = store.timeline("P1001", kinds=("Observation",))
    assert stored.version == 2 and stored.fact.status == "amended"
    deleted = GLUCOSE.replace("|5.5|", "||").replace("|N|||F|", "||||D|")
    result = store.append(read_text(message(PID, OBR, deleted, control_id="C"))[0])
    assert result.retracted == 1
    assert store.timeline("P1001", kinds=("Observation",)) == []

    admit = (
        "MSH|^~\\&|ADT|ACME|||20240301||ADT^A01|D1|P|2.5\rEVN|A01\r"
        + PID
        + ("\rPV1|1|I|W1^101^1||||||||||||||||V555|||||||||||||||||||||||||20240301080000")
    )
    discharge = admit.replace("ADT^A01|D1", "ADT^A03|D2").replace(
        "20240301080000", "20240301080000|20240305120000"
    )
    store.append(read_text(admit)[0])
    result = store.append(read_text(discharge)[0])
    assert result.new_versions == 1
    (visit,) = store.timeline("P1001", kinds=("Encounter",))
    assert visit.fact.source_id == "Encounter/V555"
    assert visit.fact.status == "finished"
    assert visit.fact.effective_end == datetime(2024, 3, 5, 12, tzinfo=UTC)


def test_quarantined_result_is_resolved_by_a_fixed_resend(sqlite_store: SqlStore) -> None:
    store = sqlite_store
    bad = GLUCOSE.replace("mmol/L", "mmol/xyz")
    first = store.append(read_text(message(PID, OBR, bad, control_id="A"))[0])
    assert (first.inserted, first.quarantined) == (1, 1)  # the patient in, the result out
    fixed = store.append(read_text(message(PID, OBR, GLUCOSE, control_id="B"))[0])
    assert (fixed.inserted, fixed.resolved_quarantine) == (1, 1)
    assert store.quarantine() == []


def test_a_uk_laboratorys_snomed_ct_result_is_stored_under_loinc() -> None:
    """UK laboratories code results in SNOMED CT observables (OBX-3 ...^SCT): mapped to the LOINC
    code the unit names (``medtwin.ingest.snomed``), the source id kept on the code as sent."""
    chol = "OBX|1|NM|1005671000000105^Serum cholesterol level^SCT|1|5.4|mmol/L||N|||F"
    creat = "OBX|2|NM|1000731000000107^Serum creatinine level^SCT|1|91|umol/L||N|||F"
    hb = "OBX|3|NM|1022431000000105^Haemoglobin estimation^SCT|1|138|g/L||N|||F"
    other = "OBX|4|NM|999999999^Local test^SCT|1|3|mmol/L||N|||F"  # not in the table: as sent
    facts = {o.source_id.split("/")[-2]: o for o in observations(
        read_text(message(PID, OBR, chol, creat, hb, other))
    )}  # fmt: skip
    assert (facts["1005671000000105"].code.code, facts["1005671000000105"].unit) == (
        "14647-2", "mmol/L",
    )  # fmt: skip
    assert facts["1000731000000107"].code.code == "14682-9"
    assert facts["1022431000000105"].code.code == "718-7"
    assert facts["1022431000000105"].value_num == pytest.approx(13.8)
    assert facts["999999999"].code.system == "http://snomed.info/sct"


def test_a_uk_laboratorys_message_joins_the_gp_records_patient_by_nhs_number(
    sqlite_store: SqlStore,
) -> None:
    """PID-3 ``9990001235^^^NHS^NH`` (UK ITK messages) is the NHS number, in the system FHIR
    records use: the result lands on the GP record's patient; a number whose check digit fails
    quarantines the message (it cannot be attached to a patient)."""
    import json

    from conftest import REPO
    from medtwin.ingest import import_paths

    gp = REPO / "examples" / "records" / "uk-gp-record.json"
    assert json.loads(gp.read_text())["entry"][0]["resource"]["identifier"][0]["value"] == (
        "9990001235"
    )
    import_paths(sqlite_store, [gp], workers=0)
    pid = sqlite_store.resolve_patient("9990001235")
    uk_pid = "PID|1||9990001235^^^NHS^NH||Patel^Ravi||19630211|M"
    chol = "OBX|1|NM|1005671000000105^Serum cholesterol level^SCT|1|4.9|mmol/L||N|||F"
    obr = "OBR|1||LAB-UK-1^LIS|ZZZ^Lipids^L|||20250901093000+0100"
    sqlite_store.append(read_text(message(uk_pid, obr, chol, control_id="UK1"))[0])
    assert sqlite_store.resolve_patient("https://fhir.nhs.uk/Id/nhs-number|9990001235") == pid
    cholesterol = sqlite_store.timeline(pid, codes=["14647-2"])
    assert [f.fact.value_num for f in cholesterol] == [5.6, 4.9]  # the GP's, then the lab's
    bad = read_text(message(uk_pid.replace("1235", "1234"), obr, chol, control_id="UK2"))
    (item,) = quarantined(bad)
    assert item.field == "PID-3" and "NHS number '9990001234' is not valid" in item.reason
    assert not facts_of(bad)


# --------------------------------------------------------------------------------------------
# damaged and odd input


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.hl7"
    path.write_bytes(b"")
    assert Hl7v2Reader().can_read(path)
    (batch,) = read(path)
    (item,) = batch.quarantine
    assert (item.location, item.file, item.source) == ("file", str(path), "hl7v2")
    assert item.reason == "empty file: no HL7 v2 message (0 bytes)"
    assert batch.units == []


def test_non_utf8_bytes_quarantine_only_that_message(tmp_path: Path) -> None:
    latin = message(PID.replace("Doe", "D\xe9sir\xe9e"), control_id="BAD").encode("latin-1")
    good = message(PID, OBR, GLUCOSE, control_id="GOOD").encode()
    path = tmp_path / "mixed.hl7"
    path.write_bytes(latin + good)
    first, second = read(path)
    (item,) = first.quarantine
    assert item.field == "MSH-18" and item.location == "message 1"
    offset = latin.index(b"\xe9")
    assert f"invalid byte 0xe9 at byte offset {offset}" in item.reason
    assert first.source == "hl7v2:ACME LAB"
    assert [u.key for u in second.units] == ["Patient/P1001", "Observation/LAB-77@LIS/2345-7/1"]


def test_latin1_accepted_when_msh18_declares_it() -> None:
    data = message(PID.replace("Doe", "D\xe9sir\xe9e"), msh18="8859/1").encode("latin-1")
    (batch,) = read_hl7v2_bytes(data)
    assert batch.quarantine == []
    assert demographics([batch])[0].family == "Désirée"


def test_truncated_messages() -> None:
    text = message(PID, OBR, GLUCOSE, "OBX|2|NM|2951-2^Sodium^LN|1|") + (
        "MSH|^~\\&|LIS|ACME LAB|EHR|WARD|2024030"
    )
    first, second = read_text(text)
    assert [u.key for u in first.units] == ["Patient/P1001", "Observation/LAB-77@LIS/2345-7/1"]
    (cut_obx,) = first.quarantine
    assert (cut_obx.field, cut_obx.location) == ("OBX-5", "message 1, segment 5 (OBX)")
    assert (cut_obx.resource_type, cut_obx.resource_id) == ("Observation", "LAB-77@LIS/2951-2/1")
    (cut_msh,) = second.quarantine
    assert (cut_msh.field, cut_msh.location) == ("MSH-9", "message 2")
    assert second.units == []


def test_bad_obx_fields_quarantine_only_that_obx() -> None:
    obx = [
        "OBX|1|NM|2345-7^Glucose^LN|1|high|mg/dL|||||F",
        "OBX|2|NM|2160-0^Creatinine^LN|1|1.1|xyz|||||F",
        "OBX|3|ST|^no code||text|||||||F",
        "OBX|4|NM|8867-4^Heart rate^LN|1|72|kg|||||F",
        "OBX|5|ST|8251-1^Comment^LN|1|fine||||||F|||2024-03-01",
        SODIUM,
    ]
    (batch,) = read_text(message(PID, OBR, *obx))
    assert [u.key for u in batch.units] == ["Patient/P1001", "Observation/LAB-77@LIS/2951-2/1"]
    problems = {(q.field, q.location) for q in batch.quarantine}
    assert problems == {
        ("OBX-5", "message 1, segment 4 (OBX)"),
        ("OBX-6", "message 1, segment 5 (OBX)"),
        ("OBX-3", "message 1, segment 6 (OBX)"),
        ("OBX-6", "message 1, segment 7 (OBX)"),
        ("OBX-14", "message 1, segment 8 (OBX)"),
    }
    reasons = {q.field: q.reason for q in batch.quarantine}
    assert reasons["OBX-5"].startswith("OBX-5 value 'high' is not a number")
    unit_reasons = [q.reason for q in batch.quarantine if q.field == "OBX-6"]
    assert any(r.startswith("OBX-6 unit 'xyz' is not a UCUM unit") for r in unit_reasons)
    assert all(q.content.startswith("OBX|") for q in batch.quarantine)
    assert batch.resources_read == 7


def test_message_level_failures() -> None:
    no_pid = (
        "MSH|^~\\&|A|B|||20240101||ORU^R01|X1|P|2.5\rOBR|1||F1\rOBX|1|ST|8251-1^C^LN||v||||||F\r"
    )
    no_id = "MSH|^~\\&|A|B|||20240101||ADT^A04|X2|P|2.5\rPID|||||Doe^Jo\r"
    broken = "MSH|^~|A|B|||20240101||ADT^A04|X3|P|2.5\rPID|||9\r"
    good = message(PID, control_id="X4")
    batches = read_text(no_pid + no_id + broken + good)
    assert [(q.location, q.field) for q in quarantined(batches)] == [
        ("message 1", "PID"),
        ("message 2", "PID-3"),
        ("message 3", "MSH-2"),
    ]
    assert demographics(batches)[0].source_id == "Patient/P1001"
    assert "broken encoding characters" in quarantined(batches)[2].reason


def test_framing_bom_and_line_endings(tmp_path: Path) -> None:
    one = message(PID, OBR, GLUCOSE, control_id="F1").replace("\r", "\n")
    two = message(PID, OBR, SODIUM, control_id="F2").replace("\r", "\r\n")
    data = b"\xef\xbb\xbf\x0b" + one.encode() + b"\x1c\r\n\x0b" + two.encode() + b"\x1c\r"
    path = tmp_path / "stream.txt"
    path.write_bytes(data)
    assert Hl7v2Reader().can_read(path)
    first, second = read(path)
    assert (first.quarantine, second.quarantine) == ([], [])
    assert [o.code.code for o in observations([first, second])] == ["2345-7", "2951-2"]  # type: ignore[union-attr]
    assert not Hl7v2Reader().can_read(tmp_path / "notes.csv")


def test_value_types_and_code_preference() -> None:
    obx = [
        "OBX|1|CWE|600-7^Bacteria identified^LN||3092008^Staphylococcus aureus^SCT||||||F",
        "OBX|2|SN|2345-7^Glucose^LN||>^300|mg/dL|||||F",
        "OBX|3|SN|5196-1^HBsAg titer^LN||1^:^128||||||F",
        "OBX|4|DT|11778-8^Delivery date^LN||20240415||||||F",
        "OBX|5|TS|8251-1^Time^LN||202403011030||||||F",
        "OBX|6|FT|8251-1^Note^LN|2|first\\.br\\second \\T\\ third\\S\\x~next||||||F",
        "OBX|7|NM|GLU^Glucose^L^2345-7^Glucose^LN||90|mg/dL||||||F",
        "OBX|8|NM|K^Potassium^99LAB||4.1|mmol/L||||||F",
        "OBX|9|ST|2951-2^Sodium^LN|1|||||||X",
    ]
    (batch,) = read_text(message(PID, OBR, *obx), tz="America/New_York")
    assert batch.quarantine == []
    found = {o.source_id.removeprefix("Observation/LAB-77@LIS/"): o for o in observations([batch])}
    coded = found["600-7"]
    assert coded.value_code is not None and (coded.value_code.system, coded.value_code.code) == (
        SNOMED,
        "3092008",
    )
    assert coded.value_text == "Staphylococcus aureus"
    assert (found["2345-7"].value_num, found["2345-7"].value_text) == (300.0, ">300")
    # exported, the bound stays a bound (FHIR Quantity.comparator), and reads back as one
    import orjson

    from medtwin.export.fhir import fact_to_resource
    from medtwin.ingest.fhir import read_resource_text
    from medtwin.record.facts import value_comparator

    exported = fact_to_resource(found["2345-7"])
    assert exported["valueQuantity"]["comparator"] == ">"
    assert exported["valueQuantity"]["value"] == 300.0
    exported["subject"] = {"reference": "Patient/p"}
    back = next(
        f
        for u in read_resource_text(orjson.dumps(exported).decode(), source="fhir").units
        for f in u.facts
    )
    assert value_comparator(back) == ">" and back.value_num == 300.0  # type: ignore[attr-defined]
    assert (found["5196-1"].value_num, found["5196-1"].value_text) == (None, "1:128")
    assert found["11778-8"].value_text == "2024-04-15"
    assert found["8251-1"].value_text == "2024-03-01T15:30:00+00:00"
    assert found["8251-1/2"].value_text == "first\nsecond & third^x\nnext"
    # the LOINC code in the alternate triplet wins over the local one
    alternate = next(o for o in observations([batch]) if o.value_num == 90.0)
    assert alternate.code is not None and (alternate.code.system, alternate.code.code) == (
        LOINC,
        "2345-7",
    )
    local = found["K"]
    assert local.code is not None
    assert local.code.system == "urn:medtwin:hl7v2:hl7v2:ACME%20LAB:99LAB"
    cancelled = found["2951-2/1"]
    assert (cancelled.status, cancelled.value_num, cancelled.value_text) == (
        "cancelled",
        None,
        None,
    )


def test_reference_range_is_normalised_with_the_value() -> None:
    (batch,) = read_text(message(PID, OBR, GLUCOSE))
    (glucose,) = observations([batch])
    assert glucose.unit == "mg/dL" and glucose.original_unit == "mmol/L"
    assert glucose.value_num == pytest.approx(99.09, abs=0.01)
    assert glucose.reference_low == pytest.approx(70.27, abs=0.01)
    assert glucose.reference_high == pytest.approx(99.09, abs=0.01)
    assert glucose.effective_start == datetime(2024, 3, 1, 13, 15, tzinfo=UTC)  # OBX-14


def test_split_segments_repairs() -> None:
    glued = "MSH|^~\\&|A|B|||20240101||ADT^A01|1|P|2.3||| EVN|A01| PID|1||42||X^Y NK1|1"
    assert [s[:3] for s in split_segments(glued)] == ["MSH", "EVN", "PID", "NK1"]
    # in a multi-line message only a space right after a field separator splits
    text = "MSH|^~\\&|A\rOBX|1|TX|C||see PID|\rNTE|1||a| OBX|2"
    assert split_segments(text) == ["MSH|^~\\&|A", "OBX|1|TX|C||see PID|", "NTE|1||a|", "OBX|2"]
    wrapped = "MSH|^~\\&|A|B|||||MDM^T02|{AB-\nCD}|P|2.3\nOBX|1|TX|C||one\ntwo|"
    assert split_segments(wrapped) == [
        "MSH|^~\\&|A|B|||||MDM^T02|{AB-CD}|P|2.3",
        "OBX|1|TX|C||one two|",
    ]


def _escape(text: str) -> str:
    out = text.replace("\\", "\\E\\")
    for char, code in (("|", "F"), ("^", "S"), ("&", "T"), ("~", "R")):
        out = out.replace(char, f"\\{code}\\")
    return out.replace("\n", "\\.br\\")


@settings(max_examples=60, deadline=None)
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x85")
        | st.sampled_from("|^&~\\\n"),
        min_size=1,
        max_size=40,
    )
)
def test_text_values_round_trip_through_escaping(value: str) -> None:
    expected = "\n".join(line for line in value.split("\n")).strip()
    if not expected:
        return
    obx = f"OBX|1|TX|8251-1^Note^LN|1|{_escape(value)}||||||F"
    (batch,) = read_text(message(PID, OBR, obx))
    assert batch.quarantine == []
    (note,) = observations([batch])
    assert note.value_text == expected


def test_reading_is_deterministic(hl7_dir: Path) -> None:
    for path in sorted(hl7_dir.glob("*.hl7")):
        first, second = read(path), read(path)
        assert [u.facts for b in first for u in b.units] == [
            u.facts for b in second for u in b.units
        ]
        assert quarantined(first) == quarantined(second)


def test_invalid_time_zone_raises(tmp_path: Path) -> None:
    path = tmp_path / "m.hl7"
    path.write_text(message(PID))
    from medtwin.record.time import InvalidTimeError

    with pytest.raises(InvalidTimeError, match="Mars/Olympus"):
        read(path, tz="Mars/Olympus")


def test_an_nm_value_written_as_a_bound_is_stored_as_one_and_flagged() -> None:
    """Laboratories write a result below the limit as "<0.5" in an NM field (NM does not
    allow it; SN does, as <^0.5): it is stored as the bound it means, so dosing fits it as
    one, and a quarantine entry flags the message for review. Text that is no number at all
    is still quarantined."""
    from medtwin.record.facts import value_comparator

    obx = [
        "OBX|1|NM|3665-7^Gentamicin trough^LN||<0.5|mg/L|||||F",
        "OBX|2|NM|20578-1^Vancomycin^LN||>= 80|mg/L|||||F",
        "OBX|3|NM|2345-7^Glucose^LN||high|mg/dL|||||F",
    ]
    (batch,) = read_text(message(PID, OBR, *obx))
    found = {o.code.code: o for o in observations([batch])}  # type: ignore[union-attr]
    trough, vanco = found["3665-7"], found["20578-1"]
    assert (trough.value_num, value_comparator(trough), trough.value_text) == (0.5, "<", "<0.5")
    assert (vanco.value_num, value_comparator(vanco)) == (80.0, ">=")
    assert "2345-7" not in found
    reasons = {(q.field, q.reason) for q in batch.quarantine}
    assert ("OBX-5", "OBX-5 value 'high' is not a number (OBX-2 value type NM)") in reasons
    flagged = [r for f, r in reasons if "is a bound, which NM does not allow" in r]
    assert len(flagged) == 2 and any("'<0.5'" in r for r in flagged)
