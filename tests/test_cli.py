"""The ``medtwin`` command, end to end: every command, ``--json`` output, and clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from medtwin.cli import main

MEDTWIN = Path(sys.executable).with_name("medtwin")


def run(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def db(tmp_path: Path, shared: Path) -> str:
    store = str(tmp_path / "cli.db")
    files = sorted((shared / "fhir" / "synthea-r4").glob("*.json"))[:3]
    out = run("import", *map(str, files), "--store", store, "--json")
    summary = orjson.loads(out)
    assert summary["files"] == 3 and summary["quarantined"] == 0
    assert summary["store"]["patients"] == 3
    return store


def _uk_summary(tmp_path: Path, bundle: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    """``bundle`` (the UK example record, added to) imported into the store ``name``: the
    store and ``medtwin show --json`` of its patient."""
    import json

    file = tmp_path / "uk.json"
    file.write_text(json.dumps(bundle), encoding="utf-8")
    db = str(tmp_path / name)
    run("import", str(file), "--store", db)
    return db, orjson.loads(run("show", "9990001235", "--store", db, "--json"))


def _condition(
    rid: str,
    code: str,
    display: str,
    verification: str,
    *,
    clinical: str = "active",
    onset: str = "2024-01-10",
    abated: str | None = None,
) -> dict[str, Any]:
    """A SNOMED CT-coded Condition of the UK example's patient, as a Bundle entry."""
    from tests.risk.test_uk_record import SCT, _entry

    return _entry(rid, {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": clinical}]},
        "verificationStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": verification}]},
        "code": {"coding": [{"system": SCT, "code": code, "display": display}]},
        "subject": {"reference": "Patient/uk-1"}, "onsetDateTime": onset,
        **({"abatementDateTime": abated} if abated else {}),
    })  # fmt: skip


def test_patients_show_timeline(db: str, shared: Path) -> None:
    patients = orjson.loads(run("patients", "--store", db, "--json"))
    assert len(patients) == 3
    first = patients[0]
    text = run("show", first["id"], "--store", db)
    assert first["name"] in text and "Latest vital signs" in text and "mmHg" in text
    assert first["deceased"] is None  # no "died" column when nobody listed has died
    assert "died" not in run("patients", "--store", db).splitlines()[0]
    summary = orjson.loads(run("show", first["id"], "--store", db, "--json"))
    assert summary["id"] == first["id"]
    assert {"problems", "medications", "allergies", "vital_signs", "labs"} <= set(summary)
    assert all(v["unit"] is None or "[" not in v["value"] for v in summary["vital_signs"])
    timeline = orjson.loads(
        run("timeline", first["id"], "--code", "8480-6", "--store", db, "--json")
    )
    assert timeline and all(f["code"]["code"] == "8480-6" for f in timeline)
    days = [f["effective_start"] for f in timeline]
    assert days == sorted(days)
    plain = run("timeline", first["id"], "--code", "8480-6", "--store", db)
    assert "Systolic" in plain and "mmHg" in plain
    searched = orjson.loads(
        run("patients", "--store", db, "--search", first["name"].split()[-1], "--json")
    )
    assert first["id"] in {p["id"] for p in searched}


def test_show_by_linked_identifier(db: str, shared: Path) -> None:
    file = sorted((shared / "fhir" / "synthea-r4").glob("*.json"))[0]
    bundle = orjson.loads(file.read_bytes())
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    ssn = next(i["value"] for i in patient["identifier"] if "ssn" in i.get("system", ""))
    summary = orjson.loads(run("show", ssn, "--store", db, "--json"))
    assert summary["birth_date"] == patient["birthDate"]
    # national identifiers are shown masked
    assert ssn not in orjson.dumps(summary).decode()


def test_export_and_reimport(db: str, tmp_path: Path) -> None:
    pid = orjson.loads(run("patients", "--store", db, "--json"))[0]["id"]
    out = tmp_path / "p.json"
    run("export", "fhir", "--patient", pid, str(out), "--store", db)
    bundle = orjson.loads(out.read_bytes())
    assert (
        bundle["resourceType"] == "Bundle"
        and bundle["entry"][0]["resource"]["resourceType"] == "Patient"
    )
    run("export", "fhir", str(tmp_path / "bulk"), "--store", db)
    assert (tmp_path / "bulk" / "Patient.ndjson").read_bytes().count(b"\n") == 3
    again = orjson.loads(run("import", str(tmp_path / "bulk"), "--store", db, "--json"))
    assert again["inserted"] == 0 and again["new_versions"] == 0
    # the same Bulk NDJSON into a fresh store, in parts by two workers and in one process
    counts = []
    for workers in ("2", "1"):
        fresh = str(tmp_path / f"fresh-{workers}.db")
        out = run(
            "import", str(tmp_path / "bulk"), "--store", fresh, "--workers", workers, "--json"
        )
        counts.append(orjson.loads(out))
    assert counts[0] == counts[1] and counts[0]["inserted"] > 0


def test_jobs(db: str) -> None:
    jobs = orjson.loads(run("jobs", "--store", db, "--json"))
    assert jobs[0]["kind"] == "import" and jobs[0]["status"] == "done"
    assert jobs[0]["detail"]["files"] == 3 and jobs[0]["detail"]["inserted"] > 0
    assert "import" in run("jobs", "--store", db)


def test_link_and_access_log(db: str) -> None:
    a, b = (p["id"] for p in orjson.loads(run("patients", "--store", db, "--json"))[:2])
    run("link", a, b, "--store", db)
    assert orjson.loads(run("show", b, "--store", db, "--json"))["id"] == a
    assert len(orjson.loads(run("patients", "--store", db, "--json"))) == 2
    log = orjson.loads(run("access-log", "--patient", a, "--store", db, "--json"))
    assert {"write", "read", "link"} <= {row["action"] for row in log}


def test_linking_a_patient_to_itself_says_so(db: str) -> None:
    a, b = (p["id"] for p in orjson.loads(run("patients", "--store", db, "--json"))[:2])
    text = run("link", a, a, "--store", db)
    assert text == f"nothing to link: {a} and {a} are one patient already ({a})\n"
    run("link", a, b, "--store", db)
    assert "nothing to link" in run("link", b, a, "--store", db)  # b resolves to a now


def test_a_birth_date_that_is_not_one_is_refused(db: str) -> None:
    born = orjson.loads(run("patients", "--store", db, "--json"))[0]["birth_date"]
    assert (
        len(orjson.loads(run("patients", "--birth-date", born[:7], "--store", db, "--json"))) >= 1
    )
    for bad in ("1999-13-45", "1999-02-30", "1999-13", "1999-1", "19", "19__"):
        result = CliRunner().invoke(main, ["patients", "--birth-date", bad, "--store", db])
        assert result.exit_code == 2
        assert f"'{bad}' is not a date or its prefix (YYYY, YYYY-MM or YYYY-MM-DD)" in result.output


def test_an_empty_timeline_says_what_was_asked(db: str) -> None:
    a = orjson.loads(run("patients", "--store", db, "--json"))[0]["id"]
    args = ["timeline", a, "--code", "XYZ", "--since", "2020-01-01", "--store", db]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0
    assert result.output == f"no facts of {a} with code XYZ since 2020-01-01\n"
    before = CliRunner().invoke(main, ["timeline", a, "--as-of", "1900-01-01", "--store", db])
    assert before.output == f"no facts of {a} as recorded at 1900-01-01\n"
    bogus = CliRunner().invoke(main, ["timeline", a, "--kind", "Bogus", "--store", db])
    assert (
        bogus.exit_code == 2 and "unknown kind 'Bogus' (kinds: AllergyIntolerance," in bogus.output
    )
    assert orjson.loads(run(*args, "--json")) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["monitor", "run", "{a}", "--monitors", ""], "name at least one monitor"),
        (
            ["monitor", "run", "{a}", "--since", "2026-01-01", "--until", "2025-01-01"],
            "--since 2026-01-01 is not before --until 2025-01-01",
        ),
        (
            ["timeline", "{a}", "--since", "2020-01-01", "--until", "2020-01-01"],
            "--since 2020-01-01 is not before --until 2020-01-01",
        ),
        (["patients", "--limit", "0"], "'--limit': 0 is not in the range x>=1"),
        (["access-log", "--limit", "-1"], "'--limit': -1 is not in the range x>=1"),
        (["alerts", "--limit", "-1"], "'--limit': -1 is not in the range x>=1"),
        (["cgm", "{a}", "--days", "1e9"], "1e9 is not a number of days from above 0 to 36,525"),
        (["changepoints", "{a}", "8867-4", "--beta", "nan"], "nan is not a positive number"),
        (["changepoints", "{a}", "8867-4", "--min-size", "0"], "0 is not in the range x>=1"),
        (["import", "--fhir-server", "http://127.0.0.1:9", "--page-size", "0"], "x>=1"),
    ],
)
def test_options_out_of_their_range_are_refused(db: str, args: list[str], message: str) -> None:
    """An empty monitor list or time range, a limit below 1 (SQLite reads -1 as "no limit",
    PostgreSQL refuses it), a period over 100 years (an OverflowError), a penalty of nan, or a
    page of 0 resources (a ValueError) is refused naming the option instead of running on."""
    a = orjson.loads(run("patients", "--store", db, "--json"))[0]["id"]
    result = CliRunner().invoke(main, [*(x.format(a=a) for x in args), "--store", db])
    assert result.exit_code == 2 and message in result.output, result.output


def test_errors_of_every_command_read_alike(db: str) -> None:
    """cgm (and the risk history) used click's "Error: ..." where every other command says
    "medtwin: error: ..."."""
    for args in (["cgm", "nobody"], ["show", "nobody"], ["timeline", "nobody"]):
        proc = subprocess.run(
            [str(MEDTWIN), *args, "--store", db], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr.startswith("medtwin: error: no patient with id or identifier 'nobody'")


def test_quarantine_and_retry(tmp_path: Path) -> None:
    db = str(tmp_path / "q.db")
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": "Patient", "id": "x", "birthDate": "1970-13-01"}')
    summary = orjson.loads(run("import", str(bad), "--store", db, "--json"))
    assert summary["quarantined"] == 1
    entries = orjson.loads(run("quarantine", "--store", db, "--json"))
    assert entries[0]["file"] == str(bad) and "birthDate" in (entries[0]["field"] or "")
    empty = tmp_path / "empty.fit"  # a file-level entry: no resource id ("FIT/None" before)
    empty.write_bytes(b"")
    other = str(tmp_path / "fit.db")
    run("import", str(empty), "--patient", "dev-1", "--store", other)
    listed = CliRunner().invoke(main, ["quarantine", "--store", other]).output
    line = next(x for x in listed.splitlines() if "empty.fit" in x)
    assert line.endswith("empty file (0 bytes): not a FIT file FIT") and "None" not in listed
    bad.write_text('{"resourceType": "Patient", "id": "x", "birthDate": "1970-12-01"}')
    missing = CliRunner().invoke(main, ["quarantine", "retry", "99", "--store", db])
    assert missing.exit_code == 1 and "no open quarantine entry #99" in missing.output
    text = run("quarantine", "retry", "--store", db)
    assert "0 open entries left" in text
    again = CliRunner().invoke(main, ["quarantine", "retry", str(entries[0]["id"]), "--store", db])
    assert again.exit_code == 1 and f"no open quarantine entry #{entries[0]['id']}" in again.output
    assert orjson.loads(run("quarantine", "--store", db, "--json")) == []
    assert len(orjson.loads(run("quarantine", "--all", "--store", db, "--json"))) == 1


def test_a_link_to_nothing_in_a_folder_is_named(tmp_path: Path, shared: Path) -> None:
    """A moved file's link was passed over without a word."""
    import shutil

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(shared / "fhir" / "uscore" / "uscore_bundle_patient_85.json", folder)
    (folder / "moved.json").symlink_to(tmp_path / "gone.json")
    (folder / "notes.txt").write_text("not data")
    done = subprocess.run(
        [str(MEDTWIN), "import", str(folder), "--store", str(tmp_path / "l.db")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "skipped 1 files with unknown extensions" in done.stderr
    assert f"skipped 1 link(s) to nothing: {folder / 'moved.json'}" in done.stderr


def test_synth_wants_a_patient_at_least(tmp_path: Path) -> None:
    for n in ("0", "-1"):  # -1 was a ValueError traceback; 0 wrote nothing
        result = CliRunner().invoke(main, ["synth", "--patients", n, str(tmp_path / "syn")])
        assert result.exit_code == 2 and "is not in the range x>=1" in result.output
    assert not (tmp_path / "syn").exists()


def test_synth_writes_bundles(tmp_path: Path) -> None:
    run("synth", "--patients", "3", "--seed", "5", str(tmp_path / "syn"))
    files = sorted((tmp_path / "syn").glob("*.json"))
    assert len(files) == 3
    db = str(tmp_path / "syn.db")
    summary = orjson.loads(run("import", str(tmp_path / "syn"), "--store", db, "--json"))
    assert summary["quarantined"] == 0 and summary["store"]["patients"] == 3


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    db = str(tmp_path / "e.db")
    cases = [
        (["show", "nobody", "--store", db], "no patient with id or identifier 'nobody'"),
        (
            ["import", str(tmp_path / "missing.json"), "--store", db],
            "missing.json: no such file or folder",
        ),
        (
            ["import", str(tmp_path), "--store", db, "--tz", "Mars/Olympus"],
            "unknown time zone 'Mars/Olympus'",
        ),
        (["patients", "--store", str(tmp_path / "no-such-dir" / "x.db")], "does not exist"),
        (
            [
                "patients",
                "--store",
                "mysql://127.0.0.1/medtwin",
            ],  # was "folder mysql:/... does not exist"
            "store 'mysql://127.0.0.1/medtwin': unknown kind 'mysql' (a SQLite file path",
        ),
        (
            ["import", "--fhir-server", "http://127.0.0.1:9/r4", "--workers", "2", "--store", db],
            "--workers goes with files",
        ),
    ]
    for args, message in cases:
        done = subprocess.run([str(MEDTWIN), *args], capture_output=True, text=True, check=False)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert message in done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_score_command(tmp_path: Path) -> None:
    vitals = {
        "respiratory_rate_per_min": 24,
        "spo2_percent": 93,
        "on_oxygen": False,
        "systolic_bp_mm_hg": 105,
        "pulse_per_min": 115,
        "consciousness": "A",
        "temperature_c": 38.5,
    }
    # RR 24: 2, SpO2 93 scale 1: 2, air: 0, SBP 105: 1, HR 115: 2, alert: 0, 38.5: 1 -> 8, high
    result = orjson.loads(run("score", "news2", orjson.dumps(vitals).decode(), "--json"))
    assert (result["value"], result["band"], result["missing"]) == (8, "high", [])
    file = tmp_path / "v.json"
    file.write_bytes(orjson.dumps({k: v for k, v in vitals.items() if k != "temperature_c"}))
    partial = orjson.loads(run("score", "news2", str(file), "--json"))
    assert partial["partial"] and partial["missing"] == ["temperature_c"] and partial["value"] == 7
    listing = orjson.loads(run("score", "list", "--json"))
    assert {"news2", "qsofa", "mews"} <= {s["name"] for s in listing}
    done = subprocess.run(
        [str(MEDTWIN), "score", "nope", "{}"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1 and "unknown score 'nope'" in done.stderr


def test_openmhealth_import_with_patient_and_retry(tmp_path: Path, shared: Path) -> None:
    from medtwin.record.facts import Demographics, Identifier
    from medtwin.store import open_store

    body = orjson.loads(
        (
            shared
            / "wearables/openmhealth/test-data/omh/heart-rate/1.0/shouldPass/with-time-frame.json"
        ).read_bytes()
    )
    point = {
        "header": {
            "id": "3b6b3b5e-8e2c-4c55-9d3f-0f1f6f0e6a11",
            "creation_date_time": "2024-03-01T08:00:00Z",
            "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "1.0"},
        },
        "body": body,
    }
    file = tmp_path / "hr.json"
    file.write_bytes(orjson.dumps(point))
    db = str(tmp_path / "omh.db")
    # the device user is not known yet: the data point waits in quarantine, nothing is lost
    first = orjson.loads(run("import", str(file), "--patient", "watch-7", "--store", db, "--json"))
    assert first["inserted"] == 0 and first["store"]["quarantine_open"] == 1
    [entry] = orjson.loads(run("quarantine", "--store", db, "--json"))
    assert entry["resource_type"] == "DataPoint" and "watch-7" in entry["reason"]
    store = open_store(db, actor="test")
    user = Identifier("urn:medtwin:device-user", "watch-7")
    store.append_facts(
        [
            Demographics(
                source="registry", source_id="Patient/w7", subject=user, identifiers=(user,)
            )
        ],
        source="registry",
    )
    store.close()
    second = orjson.loads(run("import", str(file), "--patient", "watch-7", "--store", db, "--json"))
    assert second["inserted"] == 1 and second["store"]["quarantine_open"] == 0
    timeline = orjson.loads(run("timeline", "watch-7", "--code", "8867-4", "--store", db, "--json"))
    assert timeline[0]["value_num"] == body["heart_rate"]["value"]


def test_synth_today_moves_the_record_up_to_that_date(tmp_path: Path) -> None:
    """``--today`` is the date the synthetic record runs up to (default 2026-01-01, fixed);
    the same seed with another date gives a record that ends just before it."""
    import re

    def latest_encounter(folder: Path) -> str:
        starts = []
        for file in folder.glob("*.json"):
            for entry in orjson.loads(file.read_bytes())["entry"]:
                resource = entry["resource"]
                if resource["resourceType"] == "Encounter":
                    starts.append(resource["period"]["start"][:10])
        return max(starts)

    run("synth", "--patients", "3", "--seed", "5", str(tmp_path / "fixed"))
    run(
        "synth", "--patients", "3", "--seed", "5", "--today", "2026-12-01",
        "--vancomycin", "1", str(tmp_path / "now"),
    )  # fmt: skip
    assert "2025-01-01" < latest_encounter(tmp_path / "fixed") < "2026-01-01"
    assert "2025-12-01" < latest_encounter(tmp_path / "now") < "2026-12-01"
    # the vancomycin course starts 3 days before that date
    doses = [
        e["resource"]["effectivePeriod"]["start"][:10]
        for f in (tmp_path / "now-pharmacy" / "fhir").glob("*.json")
        for e in orjson.loads(f.read_bytes())["entry"]
        if e["resource"]["resourceType"] == "MedicationAdministration"
    ]
    assert min(doses) == "2026-11-28"
    bad = CliRunner().invoke(main, ["synth", "--today", "1.12.2026", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--today: '1.12.2026' is not a date (YYYY-MM-DD)" in bad.output
    assert re.search(r"--today YYYY-MM-DD", run("synth", "--help"))


def test_show_marks_a_suspected_diagnosis_and_leaves_a_ruled_out_one_off_the_problems(
    tmp_path: Path,
) -> None:
    """A provisional heart failure is listed as not confirmed; a refuted atrial fibrillation is
    not an active problem of the patient's (it is named on a line of its own)."""

    from tests.risk.test_uk_record import _bundle

    bundle = _bundle()
    for rid, code, display, verification in (
        ("htn", "59621000", "Essential hypertension", "confirmed"),
        ("hf", "84114007", "Heart failure", "provisional"),
        ("af", "49436004", "Atrial fibrillation", "refuted"),
    ):
        bundle["entry"].append(_condition(rid, code, display, verification))
    db, summary = _uk_summary(tmp_path, bundle, "show.db")
    problems = {p["name"]: p for p in summary["problems"]}
    assert set(problems) == {"Essential hypertension", "Heart failure"}
    assert problems["Heart failure"]["suspected"] is True
    assert problems["Essential hypertension"]["suspected"] is False
    assert [p["name"] for p in summary["ruled_out_problems"]] == ["Atrial fibrillation"]
    text = run("show", "9990001235", "--store", db)
    assert "Heart failure (provisional, not confirmed)" in text
    assert "ruled out or recorded in error: Atrial fibrillation" in text


def test_show_lists_only_the_allergies_that_stand(tmp_path: Path) -> None:
    """An allergy ruled out (verification refuted) or no longer active (clinical status
    inactive or resolved) is not listed among the patient's allergies; a confirmed one is, and
    a suspected one (unconfirmed) is, marked so. Dosing reads the same: a refuted vancomycin
    allergy does not stop a vancomycin dose, an unconfirmed one does, saying so."""

    from tests.risk.test_uk_record import SCT, _bundle, _entry

    from medtwin.store import open_store
    from medtwin.twin.dosing_record import _allergies
    from medtwin.twin.optimise import _allergy_check

    bundle = _bundle()
    for rid, code, display, clinical, verification in (
        ("a1", "91936005", "Allergy to penicillin", "active", "confirmed"),
        ("a2", "91935009", "Allergy to peanut", "active", "refuted"),
        ("a3", "300916003", "Latex allergy", "inactive", "confirmed"),
        ("a4", "294546009", "Allergy to vancomycin", "active", "refuted"),
        ("a5", "294505008", "Allergy to amoxicillin", "active", "unconfirmed"),
    ):
        bundle["entry"].append(_entry(rid, {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "code": clinical}]},
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "code": verification}]},
            "code": {"coding": [{"system": SCT, "code": code, "display": display}]},
            "patient": {"reference": "Patient/uk-1"}, "recordedDate": "2020-03-01",
        }))  # fmt: skip
    db, summary = _uk_summary(tmp_path, bundle, "allergies.db")
    assert [(a["name"], a["unconfirmed"]) for a in summary["allergies"]] == [
        ("Allergy to penicillin", False),
        ("Allergy to amoxicillin", True),
    ]
    assert "Allergy to amoxicillin (unconfirmed)" in run("show", "9990001235", "--store", db)
    store = open_store(db, actor="test")
    listed = _allergies(store, store.resolve_patient("9990001235"))
    store.close()
    assert sorted(listed) == ["Allergy to amoxicillin (unconfirmed)", "Allergy to penicillin"]
    assert _allergy_check("vancomycin", listed)[0] is False
    blocked, why = _allergy_check("amoxicillin", listed)
    assert blocked and "(unconfirmed)" in why


def test_import_summary_counts_waiting_resources_stored(tmp_path: Path, shared: Path) -> None:
    """A Bulk export's Conditions come before the Encounters they name: they wait in
    quarantine and are stored when the Encounters arrive. The summary says so, so that
    "quarantined" alone does not read as data lost."""
    import re

    folder = str(shared / "fhir" / "bulk-10-patients")
    db = str(tmp_path / "a.db")
    text = run("import", folder, "--store", db)
    quarantined = int(re.search(r"(\d+) quarantined,", text).group(1))  # type: ignore[union-attr]
    stored = re.search(r"(\d+) quarantined resources were stored once what they referenced", text)
    assert stored is not None, text
    waited = int(stored.group(1))
    entries = orjson.loads(run("quarantine", "--all", "--store", db, "--json"))
    assert len(entries) == quarantined and waited > 1000
    assert sum(e["status"] == "resolved" for e in entries) == waited
    assert sum(e["status"] == "open" for e in entries) == quarantined - waited
    again = run("import", folder, "--store", db)
    assert "were stored once" not in again


def test_show_leaves_out_what_did_not_happen(tmp_path: Path, shared: Path) -> None:
    """The US Core bundle's immunization "not-done" (product out of stock, vaccine "Unknown")
    is no vaccine given. A cancelled test is no result, even with a value; a planned or a
    cancelled encounter is not among those that happened."""

    from tests.risk.test_uk_record import SCT, _bundle, _entry, _observation, _quantity

    db = str(tmp_path / "uscore.db")
    folder = shared / "fhir" / "uscore"
    run("import", str(folder / "uscore_bundle_patient_355.json"), "--store", db)
    (patient,) = orjson.loads(run("patients", "--store", db, "--json"))
    summary = orjson.loads(run("show", patient["id"], "--store", db, "--json"))
    names = {i["name"] for i in summary["immunizations"]}
    assert "Unknown" not in names
    assert "Influenza, seasonal, injectable, preservative free" in names and len(names) == 2
    assert f"{len(names)} vaccines on record" in run("show", patient["id"], "--store", db)
    bundle = _bundle()
    bundle["entry"] += [
        _observation("a1c-void", "999791000000106", "HbA1c level - IFCC standardised",
                     "2025-06-02T09:00:00+01:00", status="cancelled", **_quantity(88, "mmol/mol")),
        *(
            _entry(rid, {
                "resourceType": "Encounter", "status": status,
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                          "code": "AMB"},
                "type": [{"coding": [{"system": SCT, "code": "185389009",
                                      "display": "Follow-up visit"}]}],
                "subject": {"reference": "Patient/uk-1"},
                "period": {"start": when},
            })
            for rid, status, when in (
                ("e1", "finished", "2025-05-20T10:00:00+01:00"),
                ("e2", "cancelled", "2025-06-01T10:00:00+01:00"),
                ("e3", "planned", "2026-01-10T10:00:00+00:00"),
            )
        ),
    ]  # fmt: skip
    _, summary = _uk_summary(tmp_path, bundle, "uk.db")
    a1c = next(r for r in summary["labs"] if r["code"] == "LOINC 59261-8")
    assert (a1c["value"], a1c["date"]) == ("39 mmol/mol", "2025-05-20")
    assert summary["encounter_count"] == 1
    assert [e["date"] for e in summary["recent_encounters"]] == ["2025-05-20"]


def test_show_lists_each_problem_and_allergy_once(tmp_path: Path, shared: Path) -> None:
    """The US Quality Core bundle records the patient's cashew nut allergy 21 times (dup1 to
    dup20, as records merged from several sources do): `show` lists it once, with every
    reaction and the highest criticality. A diagnosis recorded twice (provisional, then
    confirmed) is one confirmed problem from its first date; a problem that came back is one
    entry, and its past episodes are not resolved problems."""

    from tests.risk.test_uk_record import _bundle

    db = str(tmp_path / "quality.db")
    run("import", str(shared / "fhir/uscore/us_quality_core_bundle_patient.json"), "--store", db)
    (patient,) = orjson.loads(run("patients", "--store", db, "--json"))
    (cashew,) = orjson.loads(run("show", patient["id"], "--store", db, "--json"))["allergies"]
    assert (cashew["name"], cashew["criticality"], cashew["records"]) == ("Cashew nuts", "high", 21)
    assert cashew["reactions"] == ["Anaphylactic reaction", "Choroidal hemorrhage"]

    bundle = _bundle()
    conditions = (
        ("c1", "38341003", "Hypertensive disorder", "active", "provisional", "2019-03-01", None),
        ("c2", "38341003", "Hypertensive disorder", "active", "confirmed", "2020-05-01", None),
        ("c3", "195662009", "Acute viral pharyngitis", "resolved", "confirmed", "2018-01-02",
         "2018-01-12"),
        ("c4", "195662009", "Acute viral pharyngitis", "resolved", "confirmed", "2021-02-03",
         "2021-02-10"),
        ("c5", "195967001", "Asthma", "resolved", "confirmed", "2010-01-01", "2012-01-01"),
        ("c6", "195967001", "Asthma", "active", "confirmed", "2024-09-01", None),
    )  # fmt: skip
    for rid, code, display, clinical, verification, onset, abated in conditions:
        bundle["entry"].append(
            _condition(rid, code, display, verification, clinical=clinical, onset=onset,
                       abated=abated)
        )  # fmt: skip
    uk, summary = _uk_summary(tmp_path, bundle, "uk.db")
    active = {p["name"]: p for p in summary["problems"]}
    assert set(active) == {"Hypertensive disorder", "Asthma"}
    hypertension = active["Hypertensive disorder"]
    assert (hypertension["onset"], hypertension["suspected"], hypertension["records"]) == (
        "2019-03-01", False, 2,
    )  # fmt: skip
    assert active["Asthma"]["records"] == 1  # the old episode is history, this one is active
    (pharyngitis,) = summary["past_problems"]
    assert (pharyngitis["records"], pharyngitis["onset"], pharyngitis["abated"]) == (
        2, "2018-01-02", "2021-02-10",
    )  # fmt: skip
    text = run("show", "9990001235", "--store", uk)
    assert "1 resolved problem; 0 vaccines on record" in text
    assert "(provisional, not confirmed)" not in text


def test_show_flags_a_record_that_goes_on_after_death(tmp_path: Path, shared: Path) -> None:
    """The US Core bundle's patient 85 died on 1977-07-14, yet the bundle holds 23
    Observations dated after it (2005 to 2023; read here from the file) besides a Media, a
    Coverage and a DocumentReference: `show` says so, counting the facts (one Observation has
    a component: 27), and no score gives him a risk today."""
    file = shared / "fhir" / "uscore" / "uscore_bundle_patient_85.json"
    bundle = orjson.loads(file.read_bytes())
    later = [
        r
        for r in (e["resource"] for e in bundle["entry"])
        if r["resourceType"] == "Observation"
        and (r.get("effectiveDateTime") or r.get("effectivePeriod", {}).get("start", ""))[:10]
        > "1977-07-14"
    ]
    assert len(later) == 23
    db = str(tmp_path / "dead.db")
    run("import", str(file), "--store", db)
    (patient,) = orjson.loads(run("patients", "--store", db, "--json"))
    assert patient["deceased"] == "1977-07-14T04:17:45-04:00"
    listing = run("patients", "--store", db)
    assert "died" in listing.splitlines()[0] and "1977-07-14" in listing
    summary = orjson.loads(run("show", patient["id"], "--store", db, "--json"))
    assert summary["deceased"][:10] == "1977-07-14" and summary["facts_after_death"] == 27
    assert "27 facts are dated after the recorded death (1977-07-14)" in run(
        "show", patient["id"], "--store", db
    )
    report = orjson.loads(run("risk", patient["id"], "--store", db, "--json"))
    assert report["inputs"]["deceased"]["value"] is True
    assert {s["status"] for s in report["scores"]} == {"refused"}
    assert all("had died by the date (died 1977-07-14)" in s["message"] for s in report["scores"])


def test_show_drops_invisible_characters_from_names(tmp_path: Path, shared: Path) -> None:
    """9 of the Synthea bundles name a test "Globulin [Mass/\u200bvolume] ..." with a zero-width
    space: the summary shows the words without it (the stored display is kept as sent)."""
    file = (
        shared
        / "fhir"
        / "synthea-r4"
        / ("Barrett_Douglas_d21c38f7-9fc7-4729-b414-3e0fe5ce3d8b.json")
    )
    assert "\u200b" in file.read_text(encoding="utf-8")
    db = str(tmp_path / "zw.db")
    run("import", str(file), "--store", db)
    (patient,) = orjson.loads(run("patients", "--store", db, "--json"))
    summary = orjson.loads(run("show", patient["id"], "--store", db, "--json"))
    names = [row["name"] for row in summary["labs"]]
    assert any(n.startswith("Globulin [Mass/volume]") for n in names), names
    assert not any("\u200b" in n for n in names)
    assert "\u200b" not in run("show", patient["id"], "--store", db)


@pytest.mark.parametrize(
    ("message", "encounter"),
    [
        ("valid__catalyze-io__orm-example.hl7", "encounter"),  # PV1 without a patient class
        ("valid__health-standards__bar-example.hl7", "inpatient encounter"),  # PV1-2 I
        ("valid__remote-operations__mdm-example.hl7", "ambulatory"),  # PV1-2 O
    ],
)
def test_show_names_an_hl7_visit_by_its_class(
    tmp_path: Path, shared: Path, message: str, encounter: str
) -> None:
    """An HL7 v2 visit (PV1) has no type: `show` names it by its patient class (PV1-2, as the
    FHIR encounter class), else "encounter"; never by the segment ("PV1", as it did)."""
    store = str(tmp_path / "v2.db")
    run("import", str(shared / "hl7v2" / message), "--store", store)
    (patient,) = orjson.loads(run("patients", "--store", store, "--json"))
    summary = orjson.loads(run("show", patient["id"], "--store", store, "--json"))
    assert [e["type"] for e in summary["recent_encounters"]] == [encounter]
