"""A small, real, read-only FHIR R4 server over Bundle files, for tests.

It loads transaction Bundles (the shared Synthea patients) the way a FHIR server
stores a transaction: ``urn:uuid`` references become literal ``Type/id``, and
conditional references (``Practitioner?identifier=sys|val``) become the
``Type/id`` of the resource with that identifier. It then answers, over HTTP on
127.0.0.1 (stdlib :class:`http.server.ThreadingHTTPServer`, a background thread):

- ``GET /metadata``: a CapabilityStatement;
- ``GET /Patient?_count=N``: a searchset with ``total`` and ``self``/``next`` links;
- ``GET /{Type}/{id}``: a read;
- ``GET /Patient/{id}/$everything?_count=N``: the Patient, every resource whose
  ``subject``/``patient``/``beneficiary`` is that patient, then the resources they
  reference (Practitioner, Organization ...), paged, so referenced resources land on
  later pages than the resources that reference them;
- ``GET /{Type}?patient={id}&_count=N``: a compartment search;
- anything else: 404 with an OperationOutcome.

Paging uses an ``_offset`` parameter in the ``next`` link, or, with ``hapi_links``,
HAPI FHIR's ``[base]?_getpages=<token>`` links. Switches make
``$everything`` unsupported (``everything_status``), some searches unsupported
(``unsupported_searches``), every request fail (``fail_status``), answer HTML
(``html``) or need ``Authorization: Bearer <token>`` (``token``); ``requests``
records the paths asked for.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import orjson

_SUBJECT_KEYS = ("subject", "patient", "beneficiary")
DEFAULT_COUNT = 50
MAX_COUNT = 1000


def _walk_references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "reference" and isinstance(value, str):
                yield value
            else:
                yield from _walk_references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_references(value)


def _rewrite(
    node: Any, resolve: dict[str, str], by_identifier: dict[tuple[str, str, str], str]
) -> Any:
    if isinstance(node, dict):
        out = {}
        for name, value in node.items():
            if name == "reference" and isinstance(value, str):
                out[name] = _literal(value, resolve, by_identifier)
            else:
                out[name] = _rewrite(value, resolve, by_identifier)
        return out
    if isinstance(node, list):
        return [_rewrite(value, resolve, by_identifier) for value in node]
    return node


def _literal(
    reference: str, resolve: dict[str, str], by_identifier: dict[tuple[str, str, str], str]
) -> str:
    if reference in resolve:
        return resolve[reference]
    if "?identifier=" in reference:
        rtype, _, value = reference.partition("?identifier=")
        system, bar, ident = value.partition("|")
        if not bar:
            system, ident = "", value
        found = by_identifier.get((rtype, system, ident))
        if found is None:
            raise ValueError(f"conditional reference {reference!r} matches no loaded resource")
        return found
    return reference


class FhirData:
    """The resources of some Bundle files, as a FHIR server would store them."""

    def __init__(self, files: Iterable[Path]) -> None:
        bundles = [orjson.loads(path.read_bytes()) for path in files]
        resolve: dict[str, str] = {}
        by_identifier: dict[tuple[str, str, str], str] = {}
        for bundle in bundles:
            for entry in bundle.get("entry") or ():
                resource = entry["resource"]
                rtype = resource["resourceType"]
                rid = resource.get("id") or entry["fullUrl"].rsplit(":", 1)[-1]
                key = f"{rtype}/{rid}"
                if entry.get("fullUrl"):
                    resolve[entry["fullUrl"]] = key
                for ident in resource.get("identifier") or ():
                    if "value" in ident:
                        by_identifier[(rtype, ident.get("system", ""), ident["value"])] = key
                        by_identifier[(rtype, "", ident["value"])] = key
        #: ``Type/id`` -> resource, references literal.
        self.resources: dict[str, dict[str, Any]] = {}
        for bundle in bundles:
            for entry in bundle.get("entry") or ():
                resource = _rewrite(entry["resource"], resolve, by_identifier)
                rtype = resource["resourceType"]
                rid = resource.get("id") or entry["fullUrl"].rsplit(":", 1)[-1]
                resource["id"] = rid
                self.resources[f"{rtype}/{rid}"] = resource
        self.patients = [key[8:] for key in self.resources if key.startswith("Patient/")]
        #: patient id -> keys of its compartment (the Patient first).
        self.compartment: dict[str, list[str]] = {pid: [f"Patient/{pid}"] for pid in self.patients}
        for key, resource in self.resources.items():
            for name in _SUBJECT_KEYS:
                ref = resource.get(name)
                if isinstance(ref, dict) and str(ref.get("reference", "")).startswith("Patient/"):
                    pid = ref["reference"][8:]
                    if pid in self.compartment and key != f"Patient/{pid}":
                        self.compartment[pid].append(key)
                    break
        #: patient id -> ``$everything``: the compartment, then what it references (last).
        self.everything: dict[str, list[tuple[str, str]]] = {}
        for pid, keys in self.compartment.items():
            members = set(keys)
            included: list[str] = []
            queue = list(keys)
            while queue:
                for ref in _walk_references(self.resources[queue.pop(0)]):
                    if (
                        ref in self.resources
                        and ref not in members
                        and not ref.startswith("Patient/")
                    ):
                        members.add(ref)
                        included.append(ref)
                        queue.append(ref)
            self.everything[pid] = [(k, "match") for k in keys] + [(k, "include") for k in included]


class FhirTestServer:
    """The HTTP server; ``base_url`` once started. Use as a context manager."""

    def __init__(self, data: FhirData) -> None:
        self.data = data
        self.everything_status: int | None = None
        self.unsupported_searches: set[str] = set()
        self.fail_status: int | None = None
        self.html = False
        self.hapi_links = False
        self.token: str | None = None
        self.page_tokens: dict[str, tuple[str, dict[str, str]]] = {}
        self.requests: list[str] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def reset(self) -> None:
        """Back to a well-behaved server with an empty request log."""
        self.everything_status = None
        self.unsupported_searches = set()
        self.fail_status = None
        self.html = False
        self.hapi_links = False
        self.token = None
        self.requests.clear()

    def start(self) -> FhirTestServer:
        handler = type("Handler", (_Handler,), {"app": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FhirTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answers ---------------------------------------------------------------------------
    def capability(self) -> dict[str, Any]:
        types = sorted({key.split("/", 1)[0] for key in self.data.resources})
        resources = []
        for rtype in types:
            item: dict[str, Any] = {
                "type": rtype,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
            }
            if rtype == "Patient" and self.everything_status is None:
                item["operation"] = [
                    {
                        "name": "everything",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                    }
                ]
            resources.append(item)
        return {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2024-01-01",
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [{"mode": "server", "resource": resources}],
        }

    def searchset(
        self, path: str, params: dict[str, str], keys: list[tuple[str, str]]
    ) -> dict[str, Any]:
        count = min(int(params.get("_count", DEFAULT_COUNT)), MAX_COUNT)
        offset = int(params.get("_offset", 0))
        page = keys[offset : offset + count]

        def link(at: int) -> str:
            if self.hapi_links:  # HAPI FHIR style: the base URL and an opaque page token
                token = uuid.uuid4().hex
                self.page_tokens[token] = (path, {**params, "_offset": str(at)})
                return f"{self.base_url}?_getpages={token}&_bundletype=searchset"
            return f"{self.base_url}{path}?{urlencode({**params, '_offset': at})}"

        links = [{"relation": "self", "url": link(offset)}]
        if offset + count < len(keys):
            links.append({"relation": "next", "url": link(offset + count)})
        return {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "type": "searchset",
            "total": len(keys),
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{self.base_url}/{key}",
                    "resource": self.data.resources[key],
                    "search": {"mode": mode},
                }
                for key, mode in page
            ],
        }

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        data = self.data
        if not parts and "_getpages" in params:
            if params["_getpages"] not in self.page_tokens:
                return _outcome(410, "not-found", "Search results have expired")
            return self.answer(*self.page_tokens[params["_getpages"]])
        if parts == ["metadata"]:
            return 200, self.capability()
        if len(parts) == 1 and parts[0] == "Patient" and "patient" not in params:
            keys = [(f"Patient/{pid}", "match") for pid in data.patients]
            return 200, self.searchset(path, params, keys)
        if len(parts) == 1 and "patient" in params:
            rtype = parts[0]
            if rtype in self.unsupported_searches:
                return _outcome(
                    400, "not-supported", f"search of {rtype} by patient is not supported"
                )
            pid = params["patient"].removeprefix("Patient/")
            keys = [
                (key, "match")
                for key in data.compartment.get(pid, ())
                if key.startswith(f"{rtype}/") and key != f"Patient/{pid}"
            ]
            return 200, self.searchset(path, params, keys)
        if len(parts) == 2:
            resource = data.resources.get("/".join(parts))
            if resource is None:
                return _outcome(404, "not-found", f"Resource {'/'.join(parts)} is not known")
            return 200, resource
        if len(parts) == 3 and parts[0] == "Patient" and parts[2] == "$everything":
            if self.everything_status is not None:
                return _outcome(
                    self.everything_status,
                    "not-supported",
                    "Invalid request: this server does not know how to handle GET operation "
                    f"[Patient/{parts[1]}/$everything]",
                )
            if parts[1] not in data.everything:
                return _outcome(404, "not-found", f"Resource Patient/{parts[1]} is not known")
            return 200, self.searchset(path, params, data.everything[parts[1]])
        return _outcome(404, "not-found", f"Unknown path {path}")


def _outcome(status: int, code: str, diagnostics: str) -> tuple[int, dict[str, Any]]:
    return status, {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }


class _Handler(BaseHTTPRequestHandler):
    app: FhirTestServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``app.requests`` instead."""

    def do_GET(self) -> None:
        app = self.app
        app.requests.append(self.path)
        split = urlsplit(self.path)
        params = {name: values[-1] for name, values in parse_qs(split.query).items()}
        if app.html:
            self._send(200, b"<html><body>Welcome to nginx!</body></html>", "text/html")
            return
        if app.token is not None and self.headers.get("Authorization") != f"Bearer {app.token}":
            status, body = _outcome(401, "login", "Authentication required")
        elif app.fail_status is not None:
            status, body = _outcome(
                app.fail_status, "exception", "simulated failure: database unavailable"
            )
        else:
            try:
                status, body = app.answer(split.path, params)
            except ValueError as exc:
                status, body = _outcome(400, "invalid", str(exc))
        self._send(status, orjson.dumps(body), "application/fhir+json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
