"""FHIR R4 import from a server's REST API: ``Patient/{id}/$everything``, paged.

:func:`import_server` reads a FHIR server with :class:`fhirpy.SyncFHIRClient` and
writes what it reads into a store, the same way :func:`medtwin.ingest.import_paths`
writes files:

1. Without ``patient``: page through ``GET [base]/Patient?_count=N`` (following
   ``Bundle.link`` with ``relation = next``) to list the patients.
2. For each patient: ``GET [base]/Patient/{id}/$everything?_count=N``, following its
   ``next`` links. The pages (``searchset`` Bundles) of one patient are joined, up to
   ``max_batch_resources`` resources, into one batch
   (:func:`medtwin.ingest.fhir.bundle_batch`, ``file`` = the URL of its first page)
   and written in one transaction, like a patient's Bundle file. Memory stays
   bounded, and an interrupted import is completed, without duplicates, by running
   it again.
3. A resource whose reference arrives in a later batch (an Encounter on page 1
   whose Practitioner is on page 3, when the pages are written separately) waits
   in quarantine; after the last page the waiting resources are retried, so a
   complete server leaves none waiting.

Why join pages: servers order ``$everything`` as they like, and almost every
resource references an Encounter, which references a Practitioner. Written page by
page, a Practitioner on a late page makes its Encounters wait, and with them
everything that references those Encounters: with 20 resources a page, 877 of the
954 resources of five Synthea patients went through quarantine and were retried
one transaction each (4 s instead of 0.4 s on PostgreSQL). ``max_batch_resources``
at most ``page_size`` gives that page-by-page behaviour.

**Same facts as file import.** The default source is ``"fhir"``, the default of
file import too, and references end up as literal ``Type/id`` either way (a server
stores ``urn:uuid`` references of a transaction as ``Type/id``; file import
rewrites them the same way). So a resource imported from a Bundle file and the
same resource read from a server that loaded that Bundle are the *same fact*:
importing both adds nothing the second time. Pass another ``source`` to keep a
server's data apart.

**Servers without $everything.** When the first ``$everything`` request is refused
(HTTP 400, 404, 405 or 501, as servers answer an operation they do not implement)
and the patient exists (``GET Patient/{id}`` works), that patient and every later
one is read by searching the patient compartment instead: the Patient read, then
``GET [base]/{Type}?patient={id}`` for each type of :data:`COMPARTMENT_TYPES`
(Encounter, Condition, Observation, MedicationRequest, Procedure, Immunization,
AllergyIntolerance, and the other common compartment types such as
DiagnosticReport, CarePlan, Claim and ExplanationOfBenefit), with paging. A type
the server refuses to search (400 or 404) is skipped from then on. Resources outside
the compartment that those resources reference (Practitioner, Organization,
Location, Medication ...) are read one by one (``GET [base]/{Type}/{id}``) and
written in the same batch; one the server does not have leaves the referencing
resource waiting in quarantine, with the reason.

**Errors.** A server that cannot be reached, an HTTP error status, or a response
that is not a FHIR JSON Bundle raises :class:`FhirServerError` (an
:class:`~medtwin.ingest.base.IngestError`) naming the request URL, the status and
the OperationOutcome diagnostics. Header values (credentials) never appear in
messages.

References
----------
HL7 FHIR R4 (4.0.1): RESTful API, search and paging (http.html#search,
search.html#count, Bundle.link "next"); operation ``Patient/$everything``
(patient-operation-everything.html); patient compartment
(compartmentdefinition-patient.html).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urljoin

import orjson

from medtwin.ingest.base import Batch, IngestError

if TYPE_CHECKING:
    from fhirpy import SyncFHIRClient

    from medtwin.ingest import ImportReport
    from medtwin.store.sql import SqlStore

__all__ = ["COMPARTMENT_TYPES", "DEFAULT_MAX_BATCH", "FhirServerError", "import_server"]

#: Most resources written in one transaction (as for Bulk Data NDJSON files).
DEFAULT_MAX_BATCH = 2000

#: Resource types searched with ``?patient={id}`` when a server has no ``$everything``,
#: in the order in which they usually reference each other (referenced types first).
COMPARTMENT_TYPES: tuple[str, ...] = (
    "Device",
    "Coverage",
    "Encounter",
    "EpisodeOfCare",
    "Condition",
    "Specimen",
    "ServiceRequest",
    "Observation",
    "DiagnosticReport",
    "MedicationRequest",
    "MedicationDispense",
    "MedicationAdministration",
    "MedicationStatement",
    "Procedure",
    "Immunization",
    "AllergyIntolerance",
    "FamilyMemberHistory",
    "Goal",
    "CareTeam",
    "CarePlan",
    "DocumentReference",
    "ImagingStudy",
    "Claim",
    "ExplanationOfBenefit",
    "Provenance",
)

# Statuses with which servers refuse an operation or search they do not implement.
_EVERYTHING_UNSUPPORTED = frozenset({400, 404, 405, 501})
_SEARCH_UNSUPPORTED = frozenset({400, 404})
_LITERAL_REFERENCE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})")
_HINTS = {
    401: " (the server wants credentials: send an Authorization header)",
    403: " (the credentials given may not read this)",
}


class FhirServerError(IngestError):
    """A FHIR server request that failed: the URL, the HTTP status (if any), the reason.

    Attributes
    ----------
    url
        The request URL.
    status
        The HTTP status code; ``None`` when no response came (connection refused,
        time-out).
    """

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


@dataclass(slots=True)
class _LastResponse:
    """A ``requests`` response hook that keeps the last response.

    fhirpy raises exceptions without the HTTP status and parses JSON into attribute
    dicts; the hook gives the status and headers for error messages and the body
    for parsing into plain dicts (what the FHIR validator expects).
    """

    response: Any = None

    def __call__(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.response = response
        return response


class _Server:
    """GET requests to one FHIR base URL through fhirpy, with clear errors."""

    def __init__(self, base_url: str, headers: Mapping[str, str] | None, timeout_s: float) -> None:
        from fhirpy import SyncFHIRClient

        if not base_url.startswith(("http://", "https://")):
            raise IngestError(f"{base_url}: a FHIR server base URL starts with http:// or https://")
        self.base = base_url.rstrip("/")
        self.last = _LastResponse()
        self.client: SyncFHIRClient = SyncFHIRClient(
            self.base,
            extra_headers=dict(headers) if headers else None,
            requests_config={"timeout": timeout_s, "hooks": {"response": [self.last]}},
        )

    def url(self, path: str, params: Mapping[str, str | int] | None = None) -> str:
        """The absolute URL of ``path`` (relative to the base) with query ``params``."""
        query = f"?{urlencode(params, safe=':,|/')}" if params else ""
        return f"{self.base}/{path}{query}"

    def absolute(self, link: str, came_from: str) -> str:
        """A ``Bundle.link`` URL as an absolute URL on this server."""
        url = urljoin(f"{self.base}/", link)
        # HAPI FHIR links to the base itself: ``[base]?_getpages=...``
        if url != self.base and not url.startswith((f"{self.base}/", f"{self.base}?")):
            raise FhirServerError(
                f"GET {came_from}: the next-page link {link!r} is not under the base URL "
                f"{self.base}; use the server's public base URL",
                url=came_from,
            )
        return url

    def get(self, url: str) -> dict[str, Any]:
        """GET ``url`` and return the JSON object it answers; raise :class:`FhirServerError`."""
        from fhirpy.base.exceptions import BaseFHIRError

        self.last.response = None
        try:
            self.client.execute(url, method="get")
        except BaseFHIRError:
            raise self._status_error(url) from None
        except OSError as exc:  # requests' errors (refused, time-out, DNS) are OSErrors
            raise FhirServerError(
                f"GET {url}: cannot reach the FHIR server ({_network_reason(exc)}); check the URL "
                "and that the server is running",
                url=url,
            ) from None
        except ValueError:  # fhirpy could not parse the body as JSON
            raise self._not_json(url) from None
        response = self.last.response
        if response is None or not response.content:
            status = response.status_code if response is not None else None
            raise FhirServerError(
                f"GET {url}: HTTP {status} with an empty body", url=url, status=status
            )
        try:
            document = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise self._not_json(url) from None
        if not isinstance(document, dict):
            raise FhirServerError(
                f"GET {url}: expected a FHIR resource (a JSON object), found {type(document).__name__}",
                url=url,
                status=response.status_code,
            )
        return document

    def bundle(self, url: str) -> dict[str, Any]:
        """GET ``url``, which must answer a Bundle."""
        document = self.get(url)
        if document.get("resourceType") != "Bundle":
            raise FhirServerError(
                f"GET {url}: expected a Bundle, found {document.get('resourceType')!r}",
                url=url,
                status=self.last.response.status_code,
            )
        return document

    def pages(
        self, url: str, first: dict[str, Any] | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(url, Bundle)`` for ``url`` and each page its ``next`` links lead to."""
        seen = {url}
        page = first if first is not None else self.bundle(url)
        while True:
            yield url, page
            link = _next_link(page)
            if link is None:
                return
            following = self.absolute(link, url)
            if following in seen:
                raise FhirServerError(
                    f"GET {url}: the next-page link leads back to a page already read ({following})",
                    url=url,
                )
            seen.add(following)
            url = following
            page = self.bundle(url)

    def _status_error(self, url: str) -> FhirServerError:
        response = self.last.response
        if response is None:
            return FhirServerError(f"GET {url}: the request failed without a response", url=url)
        status = int(response.status_code)
        reason = f" {response.reason}" if getattr(response, "reason", None) else ""
        detail = _diagnostics(response.content)
        message = f"GET {url}: HTTP {status}{reason}"
        if detail:
            message += f": {detail}"
        return FhirServerError(message + _HINTS.get(status, ""), url=url, status=status)

    def _not_json(self, url: str) -> FhirServerError:
        response = self.last.response
        status = response.status_code if response is not None else None
        kind = (
            response.headers.get("Content-Type", "no content type") if response is not None else "?"
        )
        return FhirServerError(
            f"GET {url}: HTTP {status} but the response is not JSON ({kind}); is {self.base} "
            "the FHIR base URL?",
            url=url,
            status=status,
        )


def _network_reason(exc: BaseException) -> str:
    """A short reason for a failed connection (requests' own messages are long)."""
    text = str(exc)
    for marker, reason in (
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("Name or service not known", "unknown host name"),
        ("nodename nor servname", "unknown host name"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
    ):
        if marker in text:
            return reason
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _diagnostics(content: bytes) -> str:
    """The OperationOutcome diagnostics of an error body, else the start of its text."""
    try:
        document = orjson.loads(content)
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, dict) and document.get("resourceType") == "OperationOutcome":
        parts = []
        for issue in document.get("issue") or ():
            if not isinstance(issue, dict):
                continue
            details = issue.get("details")
            detail = issue.get("diagnostics") or (
                details.get("text") if isinstance(details, dict) else None
            )
            if isinstance(detail, str) and detail:
                code = issue.get("code")
                parts.append(f"{code}: {detail}" if isinstance(code, str) else detail)
        return "; ".join(parts) or "OperationOutcome without diagnostics"
    text = " ".join(content.decode("utf-8", "replace").split())
    return text[:200] + ("..." if len(text) > 200 else "")


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or ():
        if (
            isinstance(link, dict)
            and link.get("relation") == "next"
            and isinstance(link.get("url"), str)
        ):
            return str(link["url"])
    return None


def _resources(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for entry in bundle.get("entry") or ():
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            out.append(entry["resource"])
    return out


def _data_entries(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The entries of a page without ``search.mode = outcome`` ones (server messages, not data).

    An entry that is not an object, or has no resource, is kept: the batch quarantines it.
    """
    entries = bundle.get("entry") or []
    return [e for e in entries if not _is_outcome(e)]


def _search_mode(entry: Mapping[str, Any]) -> str | None:
    search = entry.get("search")
    mode = search.get("mode") if isinstance(search, dict) else None
    return mode if isinstance(mode, str) else None


def _is_outcome(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    resource = entry.get("resource")
    return _search_mode(entry) == "outcome" or (
        isinstance(resource, dict) and resource.get("resourceType") == "OperationOutcome"
    )


def _literal_references(node: Any) -> Iterator[tuple[str, str]]:
    """``(type, id)`` of every relative literal reference (``Type/id``) in a resource."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "reference" and isinstance(value, str):
                match = _LITERAL_REFERENCE.fullmatch(value)
                if match:
                    yield match.group(1), match.group(2)
            elif isinstance(value, dict | list):
                yield from _literal_references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _literal_references(value)


@dataclass(slots=True)
class _Importer:
    store: SqlStore
    server: _Server
    source: str
    tz: str
    page_size: int
    max_batch: int
    report: ImportReport
    on_batch: Callable[[str, Batch], None] | None
    #: ``True`` once ``$everything`` worked, ``False`` once it was refused for a patient that exists.
    everything: bool | None = None
    unsearchable: set[str] = field(default_factory=set)
    #: Resources outside the compartment already read (or known missing) in fallback mode.
    fetched: set[str] = field(default_factory=set)
    #: Bundle entries of the current patient not written yet, and the URL of their first page.
    pending: list[dict[str, Any]] = field(default_factory=list)
    pending_url: str = ""

    def patient_ids(self) -> list[str]:
        ids: dict[str, None] = {}
        for _, page in self.server.pages(self.server.url("Patient", {"_count": self.page_size})):
            for entry in page.get("entry") or ():
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if (
                    isinstance(resource, dict)
                    and resource.get("resourceType") == "Patient"
                    and isinstance(resource.get("id"), str)
                    and _search_mode(entry) in (None, "match")
                ):
                    ids[resource["id"]] = None
        return list(ids)

    def add(self, url: str, bundle: Mapping[str, Any]) -> None:
        """Queue the entries of one page; write when ``max_batch`` resources are queued."""
        self.report.files += 1
        if not isinstance(bundle.get("entry") or [], list):
            raise FhirServerError(f"GET {url}: Bundle.entry is not a list", url=url)
        entries = _data_entries(bundle)
        if self.pending and len(self.pending) + len(entries) > self.max_batch:
            self.flush()
        if not self.pending:
            self.pending_url = url
        self.pending.extend(entries)
        if len(self.pending) >= self.max_batch:
            self.flush()

    def flush(self) -> None:
        """Write the queued entries as one batch (one transaction)."""
        from medtwin.ingest.fhir import bundle_batch

        if not self.pending:
            return
        if self.everything is False:
            self.pending.extend(self.referenced(_resources({"entry": self.pending})))
        store, source = self.store, self.source
        batch = bundle_batch(
            {"resourceType": "Bundle", "type": "collection", "entry": self.pending},
            source=source,
            tz=self.tz,
            file=self.pending_url,
            lookup=lambda t, s, v: store.find_resource(source, t, s, v),
        )
        self.pending = []
        self.report.add(store.append(batch))
        if self.on_batch is not None:
            self.on_batch(batch.file or "", batch)

    def patient(self, patient_id: str) -> None:
        if self.everything is False:
            self.compartment(patient_id)
        else:
            url = self.server.url(
                f"Patient/{quote(patient_id, safe='')}/$everything", {"_count": self.page_size}
            )
            try:
                first = self.server.bundle(url)
            except FhirServerError as exc:
                if self.everything or exc.status not in _EVERYTHING_UNSUPPORTED:
                    raise
                self.compartment(patient_id)
            else:
                self.everything = True
                for page_url, page in self.server.pages(url, first):
                    self.add(page_url, page)
        self.flush()

    def compartment(self, patient_id: str) -> None:
        """The fallback: the Patient read, then a search per compartment type."""
        url = self.server.url(f"Patient/{quote(patient_id, safe='')}")
        resource = self.server.get(url)
        if resource.get("resourceType") != "Patient":
            raise FhirServerError(
                f"GET {url}: expected a Patient, found {resource.get('resourceType')!r}", url=url
            )
        self.everything = False
        self.add(url, _collection([(url, resource)]))
        for rtype in COMPARTMENT_TYPES:
            if rtype in self.unsearchable:
                continue
            url = self.server.url(rtype, {"patient": patient_id, "_count": self.page_size})
            try:
                first = self.server.bundle(url)
            except FhirServerError as exc:
                if exc.status not in _SEARCH_UNSUPPORTED:
                    raise
                self.unsearchable.add(rtype)
                continue
            for page_url, page in self.server.pages(url, first):
                self.add(page_url, page)

    def referenced(self, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Entries for the resources outside the compartment that ``resources`` reference.

        Read one by one, and what they reference in turn; each is read once per import.
        """
        searched = {*COMPARTMENT_TYPES, "Patient"} - self.unsearchable
        read: list[dict[str, Any]] = []
        queue = list(resources)
        while queue:
            for rtype, rid in _literal_references(queue.pop()):
                key = f"{rtype}/{rid}"
                if rtype in searched or key in self.fetched:
                    continue
                self.fetched.add(key)
                url = self.server.url(f"{rtype}/{quote(rid, safe='')}")
                try:
                    resource = self.server.get(url)
                except FhirServerError as exc:
                    if exc.status in (404, 410):
                        continue  # the referencing resource waits in quarantine, with the reason
                    raise
                self.report.files += 1
                read.append({"fullUrl": url, "resource": resource})
                queue.append(resource)
        return read


def _collection(resources: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in resources],
    }


def import_server(
    store: SqlStore,
    base_url: str,
    *,
    patient: str | None = None,
    source: str | None = None,
    tz: str = "UTC",
    page_size: int = 100,
    headers: Mapping[str, str] | None = None,
    on_batch: Callable[[str, Batch], None] | None = None,
    timeout_s: float = 60.0,
    max_batch_resources: int = DEFAULT_MAX_BATCH,
) -> ImportReport:
    """Import every patient of a FHIR R4 server (or one) into ``store``.

    The pages of one patient are written together, up to ``max_batch_resources``
    resources a transaction; see the module docstring for the requests made, the
    fallback for servers without ``$everything``, and why the facts equal those of
    importing the same Bundles from files.

    Parameters
    ----------
    store
        The store to write to.
    base_url
        The server's FHIR base URL, e.g. ``https://hapi.fhir.org/baseR4``.
    patient
        Import only this patient (its logical id on the server, or ``Patient/{id}``).
    source
        Source name for the facts (default ``"fhir"``, as for file import).
    tz
        Zone in which naive source timestamps are read.
    page_size
        ``_count`` asked of the server for every search and ``$everything`` page.
    headers
        Extra HTTP headers for every request (e.g. ``Authorization``).
    on_batch
        Called after each batch is written, with the URL of its first page and the batch.
    timeout_s
        Seconds to wait for the server to connect or answer, per request.
    max_batch_resources
        Most resources written in one transaction. The pages of one patient are
        joined up to this many (so references between pages resolve at once); a
        value of at most ``page_size`` writes every page on its own.

    Returns
    -------
    ImportReport
        As :func:`medtwin.ingest.import_paths`; ``files`` counts the server's
        answers that were imported (pages, and single resources read).

    Raises
    ------
    FhirServerError
        The server cannot be reached, answers an HTTP error, or answers something
        that is not FHIR JSON; the message names the URL, the status and the
        server's OperationOutcome diagnostics.

    Examples
    --------
    >>> from medtwin.store import open_store
    >>> store = open_store("medtwin.db")  # doctest: +SKIP
    >>> report = import_server(store, "http://localhost:8080/fhir", page_size=200)  # doctest: +SKIP
    >>> store.counts()["quarantine_open"]  # doctest: +SKIP
    0
    """
    from medtwin.ingest import ImportReport, no_cyclic_gc, retry_waiting
    from medtwin.ingest.fhir import DEFAULT_SOURCE

    if page_size < 1 or max_batch_resources < 1:
        raise ValueError(
            f"page_size and max_batch_resources must be at least 1, got {page_size} and "
            f"{max_batch_resources}"
        )
    name = source or DEFAULT_SOURCE
    report = ImportReport()
    server = _Server(base_url, headers, timeout_s)
    importer = _Importer(store, server, name, tz, page_size, max_batch_resources, report, on_batch)
    job = store.start_job("import", {"fhir_server": base_url, "patient": patient, "source": name})
    try:
        with no_cyclic_gc(), store.bulk():
            ids = (
                [patient.removeprefix("Patient/")]
                if patient is not None
                else importer.patient_ids()
            )
            for patient_id in ids:
                importer.patient(patient_id)
            retry_waiting(store, name, tz, report)
    except BaseException as exc:
        store.finish_job(job, "failed", {"error": str(exc), **report.counts})
        raise
    store.finish_job(job, "done", {"pages": report.files, **report.counts})
    return report
