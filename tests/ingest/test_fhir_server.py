"""Import from a FHIR server: paging, $everything and its fallback, errors, idempotence.

The server is real (``fhir_test_server``: stdlib HTTP on 127.0.0.1) and serves the
first Synthea patients of the shared data; what it gives must equal importing the
same Bundle files from disk.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fhir_test_server import FhirData, FhirTestServer

from medtwin.ingest import IngestError, import_paths
from medtwin.ingest.fhir_server import FhirServerError, import_server
from medtwin.record.batch import Batch
from medtwin.store import open_store
from medtwin.store.sql import SqlStore

PATIENTS = 5
PAGE = 20


def fact_keys(store: SqlStore) -> set[tuple[str, str, str]]:
    """``(kind, source_id, content hash)`` of every current fact, components included."""
    return {
        (s.fact.kind, s.fact.source_id, s.content_hash)
        for s in store.iter_facts(include_raw=False, derived=True)
    }


@pytest.fixture(scope="module")
def files(shared: Path) -> list[Path]:
    return sorted((shared / "fhir" / "synthea-r4").glob("*.json"))[:PATIENTS]


@pytest.fixture(scope="module")
def running(files: list[Path]) -> Iterator[FhirTestServer]:
    with FhirTestServer(FhirData(files)) as server:
        yield server


@pytest.fixture
def server(running: FhirTestServer) -> Iterator[FhirTestServer]:
    """The module's server, well-behaved and with an empty request log for each test."""
    running.reset()
    yield running
    running.reset()


@pytest.fixture(scope="module")
def from_files(files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    """The same Bundles imported from disk: what the server import must equal."""
    store = open_store(str(tmp_path_factory.mktemp("files") / "medtwin.db"), actor="test")
    import_paths(store, files, workers=0)
    yield store
    store.close()


def test_served_references_are_literal(server: FhirTestServer) -> None:
    served = server.data.resources
    assert len(server.data.patients) == PATIENTS
    assert not any("urn:uuid" in str(resource) for resource in served.values())
    # some Practitioner/Organization is served on a later $everything page than its referrer
    order = [key for key, _ in server.data.everything[server.data.patients[0]]]
    first_encounter = next(i for i, k in enumerate(order) if k.startswith("Encounter/"))
    last_practitioner = max(i for i, k in enumerate(order) if k.startswith("Practitioner/"))
    assert last_practitioner // PAGE > first_encounter // PAGE


def test_import_matches_file_import_and_is_idempotent(
    server: FhirTestServer, sqlite_store: SqlStore, from_files: SqlStore
) -> None:
    batches: list[tuple[str, int]] = []

    def on_batch(url: str, batch: Batch) -> None:
        batches.append((url, batch.resources_read))

    report = import_server(sqlite_store, server.base_url, page_size=PAGE, on_batch=on_batch)
    counts = sqlite_store.counts()
    assert counts["patients"] == PATIENTS
    assert counts == from_files.counts()
    assert counts["quarantine_open"] == 0
    assert fact_keys(sqlite_store) == fact_keys(from_files)
    # paging was followed; the pages of each patient were written together
    everything_pages = [p for p in server.requests if "$everything" in p]
    assert any("_offset=" in p for p in everything_pages)
    assert report.files == len(everything_pages)  # the pages imported (not the patient list)
    assert len(batches) == PATIENTS and all("$everything" in url for url, _ in batches)
    assert (
        sum(n for _, n in batches) == report.counts["resources_read"] == len(server.data.resources)
    )
    assert report.counts["quarantined"] == 0

    again = import_server(sqlite_store, server.base_url, page_size=PAGE)
    assert again.counts["inserted"] == 0 and again.counts["new_versions"] == 0
    assert again.counts["quarantined"] == 0
    assert sqlite_store.counts() == counts


def test_page_by_page_waits_and_retries(
    server: FhirTestServer, sqlite_store: SqlStore, from_files: SqlStore
) -> None:
    """Written page by page, resources whose references come later wait, then are retried."""
    pages: list[str] = []
    report = import_server(
        sqlite_store,
        server.base_url,
        page_size=PAGE,
        max_batch_resources=PAGE,
        on_batch=lambda url, batch: pages.append(url),
    )
    assert pages == [
        p for p in (server.base_url + r for r in server.requests) if "$everything" in p
    ]
    assert report.counts["quarantined"] > 0
    assert report.counts["resolved_quarantine"] == report.counts["quarantined"]
    assert sqlite_store.counts() == from_files.counts()
    assert sqlite_store.counts()["quarantine_open"] == 0
    assert fact_keys(sqlite_store) == fact_keys(from_files)


def test_patient_listing_pages(server: FhirTestServer, sqlite_store: SqlStore) -> None:
    import_server(sqlite_store, server.base_url, page_size=4)
    listing = [p for p in server.requests if p.startswith("/Patient?")]
    assert len(listing) == 2  # 5 patients, 4 a page
    everything = [p for p in server.requests if "$everything" in p]
    assert {p.split("/$everything")[0][9:] for p in everything} == set(server.data.patients)
    assert sqlite_store.counts()["patients"] == PATIENTS
    assert sqlite_store.counts()["quarantine_open"] == 0


def test_hapi_style_next_links(
    server: FhirTestServer, sqlite_store: SqlStore, from_files: SqlStore
) -> None:
    """HAPI FHIR's next links point at the base URL itself: ``[base]?_getpages=...``."""
    server.hapi_links = True
    import_server(sqlite_store, server.base_url + "/", page_size=50)
    assert any(p.startswith("/?_getpages=") for p in server.requests)
    assert fact_keys(sqlite_store) == fact_keys(from_files)


def test_server_import_on_both_backends(
    server: FhirTestServer, store: SqlStore, from_files: SqlStore
) -> None:
    report = import_server(store, server.base_url, page_size=50)
    assert report.counts["quarantined"] == 0
    assert store.counts() == from_files.counts()
    assert fact_keys(store) == fact_keys(from_files)


def test_one_patient(
    server: FhirTestServer, sqlite_store: SqlStore, files: list[Path], tmp_path: Path
) -> None:
    pid = server.data.patients[2]
    [file] = [
        f for f in files if f'"id": "{pid}"' in f.read_text() or f'"id":"{pid}"' in f.read_text()
    ]
    import_server(sqlite_store, server.base_url, patient=f"Patient/{pid}", page_size=PAGE)
    assert not any(p.startswith("/Patient?") for p in server.requests)
    assert all(pid in p for p in server.requests)
    expected = open_store(str(tmp_path / "one.db"), actor="test")
    import_paths(expected, [file], workers=0)
    assert sqlite_store.counts() == expected.counts()
    assert sqlite_store.counts()["patients"] == 1
    assert fact_keys(sqlite_store) == fact_keys(expected)
    expected.close()


@pytest.mark.parametrize("status", [400, 404])
def test_fallback_without_everything(
    status: int, server: FhirTestServer, sqlite_store: SqlStore, from_files: SqlStore
) -> None:
    server.everything_status = status
    server.unsupported_searches = {"Provenance"}
    import_server(sqlite_store, server.base_url, page_size=PAGE)
    assert sqlite_store.counts() == from_files.counts()
    assert fact_keys(sqlite_store) == fact_keys(from_files)
    # $everything is asked once; then the compartment is searched and referenced resources read
    assert sum(1 for p in server.requests if "$everything" in p) == 1
    assert any(p.startswith("/Observation?patient=") for p in server.requests)
    assert any(p.startswith("/Practitioner/") for p in server.requests)
    assert sum(1 for p in server.requests if p.startswith("/Provenance?")) == 1


def test_unknown_patient(server: FhirTestServer, sqlite_store: SqlStore) -> None:
    with pytest.raises(FhirServerError, match="HTTP 404") as info:
        import_server(sqlite_store, server.base_url, patient="no-such-patient")
    assert f"{server.base_url}/Patient/no-such-patient" in str(info.value)
    assert "is not known" in str(info.value)


def test_server_down(sqlite_store: SqlStore) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(IngestError, match="connection refused") as info:
        import_server(sqlite_store, url, timeout_s=5)
    assert f"{url}/Patient?_count=100" in str(info.value)
    assert info.value.__cause__ is None  # one clear line, not a chained traceback


def test_server_error(server: FhirTestServer, sqlite_store: SqlStore) -> None:
    server.fail_status = 500
    with pytest.raises(IngestError) as info:
        import_server(sqlite_store, server.base_url, page_size=PAGE)
    message = str(info.value)
    assert f"{server.base_url}/Patient?_count={PAGE}" in message
    assert "HTTP 500" in message and "simulated failure: database unavailable" in message
    assert isinstance(info.value, FhirServerError) and info.value.status == 500
    assert sqlite_store.counts()["facts"] == 0


def test_headers_carry_credentials(server: FhirTestServer, sqlite_store: SqlStore) -> None:
    server.token = "s3cret"
    pid = server.data.patients[0]
    with pytest.raises(FhirServerError, match="HTTP 401") as info:
        import_server(sqlite_store, server.base_url, patient=pid)
    assert "Authorization" in str(info.value) and "s3cret" not in str(info.value)
    headers = {"Authorization": "Bearer s3cret"}
    import_server(sqlite_store, server.base_url, patient=pid, headers=headers)
    assert sqlite_store.counts()["patients"] == 1


def test_not_json(server: FhirTestServer, sqlite_store: SqlStore) -> None:
    server.html = True
    with pytest.raises(IngestError, match=r"not JSON \(text/html\)") as info:
        import_server(sqlite_store, server.base_url)
    assert server.base_url in str(info.value)


def test_bad_arguments(sqlite_store: SqlStore) -> None:
    with pytest.raises(IngestError, match="http"):
        import_server(sqlite_store, "localhost:8080/fhir")
    with pytest.raises(ValueError, match="page_size"):
        import_server(sqlite_store, "http://localhost:8080/fhir", page_size=0)
    with pytest.raises(ValueError, match="max_batch_resources"):
        import_server(sqlite_store, "http://localhost:8080/fhir", max_batch_resources=0)


def test_cli_import_from_server(
    server: FhirTestServer, tmp_path: Path, from_files: SqlStore
) -> None:
    import orjson
    from click.testing import CliRunner

    from medtwin.cli import main

    db = str(tmp_path / "cli.db")
    result = CliRunner().invoke(
        main,
        ["import", "--fhir-server", server.base_url, "--page-size", "20", "--store", db, "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.output)
    assert summary["store"]["patients"] == PATIENTS and summary["store"]["quarantine_open"] == 0
    store = open_store(db, actor="test")
    assert fact_keys(store) == fact_keys(from_files)
    store.close()
    both = CliRunner().invoke(
        main, ["import", "x.json", "--fhir-server", server.base_url, "--store", db]
    )
    assert both.exit_code == 1 and "not both" in both.output
