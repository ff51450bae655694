"""Ingest: one module per source format, each turning bytes into facts.

:func:`import_paths` is the main entry: it finds the files under the given paths,
picks a reader per file (FHIR JSON/NDJSON, HL7 v2), appends each batch to the
store in its own transaction, and finally retries resources that waited for
others (references that point forward in Bulk Data files).

>>> from medtwin.ingest import reader_for
>>> from pathlib import Path
>>> reader_for(Path("Observation.000.ndjson")).name
'fhir'
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from medtwin.ingest.base import Batch, IngestError, QuarantineItem, Reader, ResourceUnit

if TYPE_CHECKING:
    from medtwin.store.base import AppendResult, QuarantineEntry
    from medtwin.store.sql import SqlStore

__all__ = [
    "Batch",
    "ImportReport",
    "IngestError",
    "QuarantineItem",
    "Reader",
    "ResourceUnit",
    "default_workers",
    "discover",
    "import_paths",
    "reader_for",
    "readers",
    "retry_quarantine",
    "retry_waiting",
]

_DATA_SUFFIXES = (".json", ".ndjson", ".hl7")


def readers() -> list[Reader]:
    """The registered format readers, in the order they are asked."""
    from medtwin.ingest.fhir import FhirReader
    from medtwin.ingest.hl7v2 import Hl7v2Reader

    return [FhirReader(), Hl7v2Reader()]


def _sniff(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            head = handle.read(64).lstrip(b"\xef\xbb\xbf\x0b \t\r\n")
    except OSError:
        return None
    if head.startswith(b"MSH"):
        return "hl7v2"
    if head.startswith((b"{", b"[")):
        return "fhir"
    return None


def reader_for(path: Path) -> Reader:
    """The reader for ``path`` by extension, else by its first bytes.

    Raises
    ------
    IngestError
        When no reader recognises the file.
    """
    sniffed = None
    for reader in readers():
        if reader.can_read(path):
            return reader
    sniffed = _sniff(path)
    for reader in readers():
        if reader.name == sniffed:
            return reader
    raise IngestError(f"{path}: unrecognised format (expected FHIR .json/.ndjson or HL7 v2 .hl7)")


def _order(path: Path) -> tuple[int, str]:
    from medtwin.ingest.fhir import TYPE_ORDER

    stem = path.name.split(".", 1)[0]
    return (TYPE_ORDER.get(stem, len(TYPE_ORDER)), str(path))


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """Files to import under ``paths`` and files skipped (unknown extensions in folders).

    Files named on the command line are always imported; inside folders, only
    ``.json``, ``.ndjson`` and ``.hl7`` files are. Bulk Data NDJSON files are
    ordered so that referenced types (Patient, Practitioner ...) come first.
    """
    found: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.name.startswith("."):
                    continue
                if child.suffix.lower() in _DATA_SUFFIXES:
                    found.append(child)
                else:
                    skipped.append(child)
        elif path.exists():
            found.append(path)
        else:
            raise IngestError(f"{path}: no such file or folder")
    found.sort(key=_order)
    return found, skipped


@dataclass(slots=True)
class ImportReport:
    """What an import did: counts, files, and the quarantine lines it produced."""

    files: int = 0
    skipped: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, result: AppendResult) -> None:
        """Accumulate one append's counts."""
        for name, value in result.as_dict().items():
            self.counts[name] = self.counts.get(name, 0) + value


def _batches(
    path: Path, source: str | None, tz: str, store: SqlStore | None = None
) -> Iterator[Batch]:
    try:
        reader = reader_for(path)
    except IngestError as exc:
        data = path.read_bytes()
        yield Batch(
            source=source or "unknown",
            file=str(path),
            quarantine=[
                QuarantineItem(
                    source=source or "unknown",
                    reason=str(exc),
                    content=data.decode("utf-8", "replace"),
                    file=str(path),
                    location="file",
                )
            ],
        )
        return
    from medtwin.ingest.fhir import DEFAULT_SOURCE, FhirReader

    if isinstance(reader, FhirReader) and store is not None:
        name = source or DEFAULT_SOURCE
        yield from reader.read(
            path, source=source, tz=tz, lookup=lambda t, s, v: store.find_resource(name, t, s, v)
        )
        return
    yield from reader.read(path, source=source, tz=tz)


def _bundle_batch(path: Path, source: str | None, tz: str) -> Batch:
    """Worker: read one single-batch file and prepare its units (runs in a child process)."""
    [batch] = list(_batches(path, source, tz))
    batch.units = [unit.prepared_copy() for unit in batch.units]
    return batch


def _single_batch(path: Path) -> bool:
    return path.suffix.lower() == ".json"


def default_workers() -> int:
    """Parser processes beside the writer: one less than the cores, at most 3, at least 0."""
    return max(0, min(3, (os.cpu_count() or 1) - 1))


def _file_batches(
    files: list[Path], source: str | None, tz: str, workers: int, store: SqlStore
) -> Iterator[tuple[Path, Batch]]:
    """Batches in file order. JSON bundles are parsed by ``workers`` child processes
    (a few files ahead of the writer); NDJSON and HL7 v2 stream in this process."""
    if workers <= 0 or sum(1 for f in files if _single_batch(f)) < 4:
        for path in files:
            for batch in _batches(path, source, tz, store):
                yield path, batch
        return
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[tuple[Path, Future[Batch] | None]] = deque()
        queue = iter(files)
        ahead = workers * 3

        def fill() -> None:
            while len(pending) < ahead:
                path = next(queue, None)
                if path is None:
                    return
                if _single_batch(path):
                    pending.append((path, pool.submit(_bundle_batch, path, source, tz)))
                else:
                    pending.append((path, None))

        fill()
        while pending:
            path, future = pending.popleft()
            if future is None:
                for batch in _batches(path, source, tz, store):
                    yield path, batch
            else:
                yield path, future.result()
            fill()


def import_paths(
    store: SqlStore,
    paths: Iterable[Path],
    *,
    source: str | None = None,
    tz: str = "UTC",
    on_batch: Callable[[Path, Batch], None] | None = None,
    retry: bool = True,
    workers: int | None = None,
) -> ImportReport:
    """Import every file under ``paths`` into ``store``; each batch is one transaction.

    Parameters
    ----------
    source
        Source name for the facts (default: per format, e.g. ``fhir``, or the
        HL7 v2 sending facility).
    tz
        Zone in which naive source timestamps are read.
    on_batch
        Called after each batch is written (progress bars).
    retry
        After all files, retry quarantined resources that waited for a reference
        that a later file supplied.
    workers
        Parser processes (default :func:`default_workers`); 0 parses in this process.
        The store is written by this process only, in file order.
    """
    files, skipped = discover(paths)
    report = ImportReport(skipped=[str(p) for p in skipped])
    sources: set[str] = set()
    seen: set[Path] = set()
    count = default_workers() if workers is None else workers
    for path, batch in _file_batches(files, source, tz, count, store):
        if path not in seen:
            seen.add(path)
            report.files += 1
        sources.add(batch.source)
        report.add(store.append(batch))
        if on_batch is not None:
            on_batch(path, batch)
    if retry:
        for name in sorted(sources):
            retry_waiting(store, name, tz, report)
    return report


def retry_waiting(store: SqlStore, source: str, tz: str, report: ImportReport) -> None:
    """Retry quarantined resources of ``source`` that wait for a reference, until none resolves."""
    from medtwin.ingest.fhir import read_resource_text

    while True:
        waiting = [
            e
            for e in store.quarantine(status="open")
            if e.item.source == source and e.item.waits_for and e.item.content.startswith("{")
        ]
        if not waiting:
            return
        resolved_before = report.counts.get("resolved_quarantine", 0)
        for entry in waiting:
            batch = read_resource_text(
                entry.item.content,
                source=source,
                tz=tz,
                file=entry.item.file,
                location=entry.item.location,
                lookup=lambda t, s, v: store.find_resource(source, t, s, v),
            )
            report.add(store.append(batch))
        if report.counts.get("resolved_quarantine", 0) == resolved_before:
            return


def retry_quarantine(
    store: SqlStore, *, ids: Iterable[int] | None = None, tz: str = "UTC"
) -> ImportReport:
    """Re-import quarantined data after a fix.

    Entries whose file still exists are retried by re-importing that file (so a
    corrected file is picked up); entries whose file is gone are retried from the
    stored content. The old entries are closed; whatever still fails is
    quarantined again, with its current reason.
    """
    from medtwin.ingest.fhir import read_resource_text

    wanted = set(ids) if ids is not None else None
    entries = [e for e in store.quarantine(status="open") if wanted is None or e.id in wanted]
    report = ImportReport()
    files = sorted({e.item.file for e in entries if e.item.file and Path(e.item.file).exists()})
    store.resolve_quarantine([e.id for e in entries])
    sources: set[str] = set()
    for name in files:
        report.files += 1
        for batch in _batches(Path(name), _source_of(entries, name), tz, store):
            sources.add(batch.source)
            report.add(store.append(batch))
    for entry in entries:
        if entry.item.file and entry.item.file in files:
            continue
        batch = read_resource_text(
            entry.item.content,
            source=entry.item.source,
            tz=tz,
            file=entry.item.file,
            location=entry.item.location,
        )
        sources.add(batch.source)
        report.add(store.append(batch))
    for name in sorted(sources):
        retry_waiting(store, name, tz, report)
    return report


def _source_of(entries: Sequence[QuarantineEntry], file: str) -> str | None:
    for entry in entries:
        if entry.item.file == file and entry.item.source not in ("fhir", "unknown", "hl7v2"):
            return entry.item.source
    return None
