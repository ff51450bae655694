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

import codecs
import gc
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medtwin.ingest.base import (
    Batch,
    IngestError,
    QuarantineItem,
    Reader,
    ResourceUnit,
    StoreLookup,
)

if TYPE_CHECKING:
    from medtwin.store.base import AppendResult, QuarantineEntry
    from medtwin.store.sql import SqlStore

__all__ = [
    "DEVICE_USER_SYSTEM",
    "Batch",
    "ImportReport",
    "IngestError",
    "QuarantineItem",
    "Reader",
    "ResourceUnit",
    "default_workers",
    "discover",
    "import_paths",
    "no_cyclic_gc",
    "reader_for",
    "readers",
    "register_device_user",
    "retry_quarantine",
    "retry_waiting",
]

DEVICE_USER_SYSTEM = "urn:medtwin:device-user"
"""The identifier system of a device user: ``--patient`` of the device formats."""


def register_device_user(store: SqlStore, device_user: str) -> tuple[str, bool]:
    """The patient of ``device_user`` (``urn:medtwin:device-user|<id>``), registered with a
    record of its own when no patient has that identifier yet: ``(medtwin id, created)``.

    What a device export needs before its readings can be stored (they wait in quarantine
    for their patient otherwise). The new patient holds the identifier and nothing else: a
    device does not say who its wearer is. Merge it into the patient's record with ``medtwin
    link PATIENT 'urn:medtwin:device-user|<id>'``.
    """
    from medtwin.record.facts import Demographics, Identifier

    ref = f"{DEVICE_USER_SYSTEM}|{device_user}"
    try:
        return store.resolve_patient(ref), False
    except LookupError:
        pass
    who = Identifier(DEVICE_USER_SYSTEM, device_user)
    store.append_facts(
        [
            Demographics(
                source="medtwin:import",
                source_id=f"Device-user/{device_user}",
                subject=who,
                identifiers=(who,),
            )
        ],
        source="medtwin:import",
    )
    return store.resolve_patient(ref), True


_DATA_SUFFIXES = (".json", ".ndjson", ".hl7", ".csv", ".fit", ".hea", ".vcf", ".bgz")


def readers() -> list[Reader]:
    """The registered format readers, in the order they are asked."""
    from medtwin.ingest.apple_health import AppleHealthReader
    from medtwin.ingest.csv import CsvReader
    from medtwin.ingest.dexcom import DexcomClarityReader
    from medtwin.ingest.fhir import FhirReader
    from medtwin.ingest.fit import FitReader
    from medtwin.ingest.hl7v2 import Hl7v2Reader
    from medtwin.ingest.libre import LibreViewReader
    from medtwin.ingest.openmhealth import OpenMHealthReader
    from medtwin.ingest.vcf import VcfReader
    from medtwin.ingest.wfdb import WfdbReader

    # Open mHealth first: the FHIR reader claims every .json file.
    return [
        OpenMHealthReader(),
        FhirReader(),
        Hl7v2Reader(),
        DexcomClarityReader(),
        LibreViewReader(),
        CsvReader(),
        AppleHealthReader(),
        FitReader(),
        WfdbReader(),
        VcfReader(),
    ]


def _sniff(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError:
        return None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    head = head.lstrip(b"\xef\xbb\xbf\x0b \t\r\n")
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
    if path.is_file() and path.stat().st_size == 0:
        raise IngestError(f"{path}: empty file (0 bytes)")
    if sniffed == "utf-16":
        raise IngestError(
            f"{path}: UTF-16 text (it starts with a UTF-16 byte order mark): medtwin reads "
            "UTF-8 files; save it as UTF-8 (a FHIR .json file is read either way)"
        )
    raise IngestError(
        f"{path}: unrecognised format (expected FHIR .json/.ndjson, Open mHealth .json, HL7 v2 .hl7 "
        "or a time,metric,value,unit .csv, a Dexcom Clarity or LibreView export .csv, an Apple Health "
        "export.xml, a Garmin .fit file, "
        "a VCF or a 23andMe/AncestryDNA raw file)"
    )


def _order(path: Path) -> tuple[int, str]:
    from medtwin.ingest.fhir import TYPE_ORDER

    stem = path.name.split(".", 1)[0]
    return (TYPE_ORDER.get(stem, len(TYPE_ORDER)), str(path))


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """Files to import under ``paths`` and files skipped (unknown extensions and links to
    nothing in folders).

    Files named on the command line are always imported; inside folders, only
    ``.json``, ``.ndjson`` and ``.hl7`` files are. Bulk Data NDJSON files are
    ordered so that referenced types (Patient, Practitioner ...) come first.
    """
    found: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        if path.is_dir():
            children = sorted(path.rglob("*"))
            # a link to nothing (a moved export) is named among the skipped, not passed over
            skipped += [p for p in children if p.is_symlink() and not p.exists()]
            for child in (p for p in children if p.is_file()):
                if child.name.startswith("."):
                    continue
                # an Apple Health export folder: export.xml, not the CDA copy of the same data
                if (
                    child.suffix.lower() in _DATA_SUFFIXES
                    or child.name == "export.xml"
                    or child.name.lower().endswith(".vcf.gz")
                ):
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
        self.add_counts(result.as_dict())

    def add_counts(self, counts: dict[str, int]) -> None:
        """Accumulate counts given as a dict."""
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value


def _batches(
    path: Path,
    source: str | None,
    tz: str,
    store: SqlStore | None = None,
    patient: str | None = None,
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
    from medtwin.ingest.fhir import DEFAULT_SOURCE

    lookup = None
    if store is not None:
        name = source or DEFAULT_SOURCE
        lookup = StoreLookup(store, name)
    yield from reader.read(path, source=source, tz=tz, lookup=lookup, patient=patient)


_WORKER_STORES: dict[str, SqlStore] = {}
_WRITE_LOCK: Any = None
_TURNS: _Turns | None = None


@dataclass(slots=True)
class _Turns:
    """The order in which the parts of NDJSON files are written: tickets 0, 1, 2 ...

    Parts are parsed in parallel but written one after the other in file order, so an
    import in parts stores exactly what reading the files line by line would (a later
    version of a resource wins, a reference to an earlier line is found). ``turn`` is the
    ticket whose write is next; ``failed`` the lowest ticket that raised (parts after it
    are not written: the import fails as a serial one would, and a re-run completes it).
    """

    turn: Any  # multiprocessing Value("q"), guarded by changed's lock
    failed: Any
    changed: Any  # multiprocessing Condition

    def wait(self, ticket: int) -> None:
        with self.changed:
            while self.turn.value != ticket:
                if self.failed.value < ticket:
                    raise IngestError(
                        "not written: an earlier part of this import failed (see its error)"
                    )
                self.changed.wait(1.0)

    def done(self, ticket: int) -> None:
        with self.changed:
            self.turn.value = ticket + 1
            self.changed.notify_all()

    def fail(self, ticket: int) -> None:
        with self.changed:
            self.failed.value = min(self.failed.value, ticket)
            self.changed.notify_all()


def _init_worker(lock: Any, turns: _Turns | None = None, parent: int | None = None) -> None:
    """Pool initializer: the lock that hands the store from one Bundle writer to the next,
    and the turns of NDJSON parts.

    SQLite's own busy handler would also serialise the writers, but it polls with
    sleeps of up to 100 ms; a lock wakes the next writer at once.
    """
    global _WRITE_LOCK, _TURNS
    _WRITE_LOCK = lock
    _TURNS = turns
    _die_with(parent)
    from medtwin.ingest.fhir_schema import learned_shapes

    learned_shapes()  # what the parent compiled itself it has already: report only our own


def _die_with(parent: int | None) -> None:
    """Linux: the kernel kills this worker when the importing process dies (``prctl``
    ``PR_SET_PDEATHSIG``), so a killed import stops writing at once instead of leaving
    workers that go on writing parts (a re-run would then race them)."""
    if parent is None or sys.platform != "linux":
        return
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the call above
        os._exit(1)


def _worker_store(url: str, actor: str) -> SqlStore:
    """This worker's connection to the store (opened once, kept for the life of the worker)."""
    store = _WORKER_STORES.get(url)
    if store is None:
        from medtwin.store import open_store

        store = _WORKER_STORES[url] = open_store(url, actor=actor)
        store.bulk().__enter__()  # for the life of the worker; the parent checkpoints at the end
    return store


_WorkerResult = tuple[list[tuple[dict[str, int], str, int]], list[tuple[str, tuple[str, ...]]]]


def _prepare_and_write(
    inputs: Sequence[Iterable[Batch]],
    source: str | None,
    write: Callable[[list[Batch]], Sequence[AppendResult]],
) -> list[tuple[dict[str, int], str, int]]:
    """Read every input's batches, encode and hash their facts, then ``write`` them all (one
    transaction): only the writing itself is serialised between the workers. Returns each
    input's counts, source name and resources read."""
    batches: list[Batch] = []
    owner: list[int] = []
    names: list[str] = []
    reads: list[int] = []
    counts = [AppendResultDict() for _ in inputs]
    for index, read_batches in enumerate(inputs):
        name = source
        read = 0
        for batch in read_batches:
            name = name or batch.source  # the file's own source, not that of its score results
            read += batch.resources_read
            counts[index].add(batch.counts)  # the reader's own counts (missing samples ...)
            batch.units = [unit.prepared_copy() for unit in batch.units]
            batches.append(batch)
            owner.append(index)
        names.append(name or "")
        reads.append(read)
    for index, result in zip(owner, write(batches), strict=True):
        counts[index].add(result.as_dict())
    return [(counts[i], names[i], reads[i]) for i in range(len(inputs))]


def _import_files_in_worker(
    paths: list[Path], source: str | None, tz: str, url: str, actor: str, patient: str | None = None
) -> _WorkerResult:
    """Worker: read Bundle files and append them with the worker's own connection.

    Runs in a child process. The files are parsed first, then written in one
    transaction (:meth:`~medtwin.store.sql.SqlStore.append_many`, all or none); the
    store serialises writers (SQLite's write lock, a PostgreSQL advisory lock), so
    parsing overlaps with the other workers' writes. Returns each file's counts, source
    name and resources read, and the validator shapes this worker compiled
    (:func:`~medtwin.ingest.fhir_schema.learned_shapes`) for the parent to keep.
    """
    from medtwin.ingest.fhir_schema import learned_shapes

    gc.disable()  # see no_cyclic_gc
    store = _worker_store(url, actor)

    def write(batches: list[Batch]) -> Sequence[AppendResult]:
        if _WRITE_LOCK is None:
            return store.append_many(batches)
        with _WRITE_LOCK:
            return store.append_many(batches)

    inputs = [_batches(path, source, tz, store, patient) for path in paths]
    return _prepare_and_write(inputs, source, write), learned_shapes()


_Part = tuple[Path, tuple[int, int, int]]
"""An NDJSON file and one part of it: ``(start, end, first line number)``."""


def _import_parts_in_worker(
    parts: list[_Part], ticket: int, source: str | None, tz: str, url: str, actor: str
) -> _WorkerResult:
    """Worker: parse parts of NDJSON files (one part of a large file, or several small
    files), then write them in one transaction when the task's turn comes (:class:`_Turns`).
    Returns each part's counts, source name and resources read, and the validator shapes this
    worker compiled."""
    from medtwin.ingest.fhir import DEFAULT_SOURCE, read_ndjson_part
    from medtwin.ingest.fhir_schema import learned_shapes

    assert _TURNS is not None
    turns = _TURNS
    gc.disable()  # see no_cyclic_gc
    try:
        store = _worker_store(url, actor)
        name = source or DEFAULT_SOURCE
        lookup = StoreLookup(store, name)

        def write(batches: list[Batch]) -> Sequence[AppendResult]:
            turns.wait(ticket)
            return store.append_many(batches)

        inputs = [
            read_ndjson_part(path, part, source=source, tz=tz, lookup=lookup)
            for path, part in parts
        ]
        result = _prepare_and_write(inputs, source, write)
    except BaseException:
        turns.fail(ticket)
        raise
    turns.done(ticket)
    return result, learned_shapes()


_NDJSON_PART_BYTES = 4 * 1024 * 1024
"""Parts of a Bulk Data NDJSON file for the import workers: about 2,000-4,000 resources,
each task one transaction (the serial reader's batches are 2,000 lines); smaller files are
grouped into tasks of about this size."""


def _ndjson_parts(path: Path, size: int | None = None) -> Iterator[tuple[int, int, int]]:
    """``(start, end, first line number)`` of consecutive parts of a file, as many as parts of
    ``size`` bytes (default :data:`_NDJSON_PART_BYTES`) would make but of equal size (a short
    last part would leave its worker waiting for the other's write), each ending at the end
    of a line; one empty part for an empty file (which the reader quarantines)."""
    total = path.stat().st_size
    with path.open("rb") as handle:
        utf16 = handle.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    if total == 0 or utf16:
        yield (0, total, 1)  # the reader quarantines an empty file or UTF-16 text whole
        return
    count = -(-total // (size or _NDJSON_PART_BYTES))
    size = -(-total // count)
    start, line = 0, 1
    with path.open("rb") as handle:
        while start < total:
            block = handle.read(size)
            if start + len(block) < total and not block.endswith(b"\n"):
                block += handle.readline()  # to the end of the line
            yield (start, start + len(block), line)
            line += block.count(b"\n")
            start += len(block)


def _parts_of(path: Path) -> bool:
    """Whether ``path`` is a FHIR Bulk Data NDJSON file (imported in parts by the workers)."""
    if path.suffix.lower() != ".ndjson":
        return False
    try:
        return reader_for(path).name == "fhir"
    except IngestError:
        return False


def _chunks(files: list[Path], workers: int) -> Iterator[list[Path]]:
    """Consecutive runs of Bundle files for one worker task: larger first, single files at the end.

    A run is written in one transaction (fewer commits); the runs shrink towards the
    end so that no worker is left with a long run while the others idle.
    """
    start = 0
    while start < len(files):
        size = max(1, min(_CHUNK_MAX, (len(files) - start) // (workers * 4)))
        yield files[start : start + size]
        start += size


_CHUNK_MAX = 6
_CHECKPOINT_EVERY = 4
"""Worker tasks (of up to :data:`_CHUNK_MAX` Bundles) between passive checkpoints of an import."""


class AppendResultDict(dict[str, int]):
    """Counts that add up (an AppendResult as a plain dict, cheap to pickle)."""

    def add(self, other: dict[str, int]) -> None:
        """Accumulate ``other``."""
        for key, value in other.items():
            self[key] = self.get(key, 0) + value


def _warm_up() -> None:
    """Load what every worker needs once, before forking them.

    The validator schema, the unit registry, every reader's module (``reader_for`` asks
    them all) and the risk module that FHIR RiskAssessments go through: imported in the
    parent, the forked workers share them instead of each importing some 40 modules
    (about 80 ms of each worker's time per import).
    """
    import medtwin.risk.from_record  # noqa: F401  (split_score_results)
    from medtwin.ingest.fhir_schema import validate_resource
    from medtwin.ingest.openmhealth import supported_versions
    from medtwin.record.units import normalise

    readers()
    validate_resource({"resourceType": "Basic", "id": "warm-up", "code": {"text": "warm-up"}})
    supported_versions("heart-rate")
    normalise(1.0, "mg/dL", code="2339-0")


def _single_batch(path: Path) -> bool:
    return path.suffix.lower() == ".json"


def default_workers() -> int:
    """Import processes for Bundle files: the number of cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def _import_files(
    files: list[Path],
    source: str | None,
    tz: str,
    workers: int,
    store: SqlStore,
    report: ImportReport,
    on_batch: Callable[[Path, Batch], None] | None,
    patient: str | None = None,
) -> set[str]:
    """Import ``files`` in order; returns the source names seen.

    Bundle files (one transaction each, independent of each other) are parsed and
    written by ``workers`` child processes, and so are FHIR NDJSON files: cut into parts
    of about 4 MB (the parts of small files grouped into tasks of about that size), parsed
    in parallel and written in file order (:class:`_Turns`). Other formats (HL7 v2, Open
    mHealth ...) stream in this process. Bundles after NDJSON files, NDJSON files after
    Bundles and the other formats start after every earlier file is written, so references
    keep pointing backwards.
    """
    sources: set[str] = set()

    def here(path: Path) -> None:
        report.files += 1
        for batch in _batches(path, source, tz, store, patient):
            sources.add(batch.source)
            report.add_counts(store.append(batch).as_dict())
            report.add_counts(batch.counts)
            if on_batch is not None:
                on_batch(path, batch)

    in_parts = {f for f in files if _parts_of(f)} if workers > 1 else set()
    tasks = sum(1 for f in files if _single_batch(f)) + sum(
        max(1, f.stat().st_size // _NDJSON_PART_BYTES) for f in in_parts
    )
    if workers <= 1 or tasks < 4:
        for path in files:
            here(path)
        return sources
    from medtwin.ingest.fhir_schema import compile_shapes

    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    _warm_up()
    lock = context.Lock()
    turns = _Turns(
        context.Value("q", 0, lock=False),
        context.Value("q", 2**62, lock=False),
        context.Condition(),
    )
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(lock, turns, os.getpid()),
    ) as pool:
        # (files, whether the task ends each of them, the future)
        pending: deque[tuple[list[Path], list[bool], Future[_WorkerResult]]] = deque()

        done = [0]

        def finish(paths: list[Path], last: list[bool], future: Future[_WorkerResult]) -> None:
            result, shapes = future.result()
            if shapes:
                # this process keeps them: the next import's workers start with them
                compile_shapes(shapes)
            done[0] += 1
            if done[0] % _CHECKPOINT_EVERY == 0:
                # while the workers parse: the disk writes of the checkpoint overlap their
                # work instead of all waiting for the end of the import
                store.checkpoint()
            for path, ends, (counts, name, read) in zip(paths, last, result, strict=True):
                report.files += ends  # a file in parts counts once, with its last part
                report.add_counts(counts)
                sources.add(name)
                if on_batch is not None:
                    on_batch(path, Batch(source=name, file=str(path), resources_read=read))

        def drain() -> None:
            while pending:
                finish(*pending.popleft())

        def queue(paths: list[Path], last: list[bool], future: Future[_WorkerResult]) -> None:
            pending.append((paths, last, future))
            while len(pending) > workers * 4:
                finish(*pending.popleft())

        def submit(run: list[Path]) -> None:
            future = pool.submit(
                _import_files_in_worker, run, source, tz, store.url, store.actor, patient
            )
            queue(run, [True] * len(run), future)

        ticket = 0
        group: list[tuple[_Part, bool]] = []  # NDJSON parts of the next task, last of a file?
        group_bytes = 0

        def send_parts() -> None:
            nonlocal ticket, group, group_bytes
            if group:
                future = pool.submit(
                    _import_parts_in_worker,
                    [part for part, _ in group],
                    ticket,
                    source,
                    tz,
                    store.url,
                    store.actor,
                )
                queue([path for (path, _), _ in group], [ends for _, ends in group], future)
                ticket += 1
                group, group_bytes = [], 0

        bundles: list[Path] = []
        todo: list[Path | None] = [*files, None]  # None: the end
        kind = "bundles"  # of the tasks pending
        for item in todo:
            if item is not None and _single_batch(item):
                send_parts()
                if kind != "bundles":
                    drain()  # NDJSON parts before: written first
                    kind = "bundles"
                bundles.append(item)
                continue
            for run in _chunks(bundles, workers):
                submit(run)
            bundles = []
            if item is not None and item in in_parts:
                if kind != "parts":
                    drain()  # Bundles (written in any order) before: written first
                    kind = "parts"
                # parts are sent as the file is scanned, one behind to know the last; a task
                # takes parts (of small files) until it holds about _NDJSON_PART_BYTES
                ahead: tuple[int, int, int] | None = None
                for part in chain(_ndjson_parts(item), (None,)):
                    if ahead is not None:
                        if group and group_bytes + ahead[1] - ahead[0] > _NDJSON_PART_BYTES:
                            send_parts()
                        group.append(((item, ahead), part is None))
                        group_bytes += ahead[1] - ahead[0]
                    ahead = part
                continue
            send_parts()
            if item is None:
                break
            drain()
            here(item)
        drain()
    return sources


def import_paths(
    store: SqlStore,
    paths: Iterable[Path],
    *,
    source: str | None = None,
    tz: str = "UTC",
    on_batch: Callable[[Path, Batch], None] | None = None,
    retry: bool = True,
    workers: int | None = None,
    patient: str | None = None,
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
    patient
        Open mHealth data points without ``header.user_id`` belong to this device-user
        identifier (``urn:medtwin:device-user``).
    workers
        Processes for Bundle files (default :func:`default_workers`); 0 or 1 imports
        everything in this process. Each worker writes with its own connection; the
        store serialises the writes.
    """
    files, skipped = discover(paths)
    report = ImportReport(skipped=[str(p) for p in skipped])
    count = default_workers() if workers is None else workers
    job = store.start_job(
        "import",
        {"paths": [str(p) for p in paths], "files": len(files), "source": source, "tz": tz},
    )
    try:
        with no_cyclic_gc(), store.bulk():
            sources = _import_files(files, source, tz, count, store, report, on_batch, patient)
            if retry:
                for name in sorted(sources):
                    retry_waiting(store, name, tz, report, patient)
    except BaseException as exc:
        store.finish_job(
            job, "failed", {"error": str(exc), "files_done": report.files, **report.counts}
        )
        raise
    store.finish_job(job, "done", {"files": report.files, **report.counts})
    return report


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (and restore it after).

    Parsing JSON allocates millions of dicts and lists, and each allocation burst
    triggers a full cyclic collection: with it running, ``orjson.loads`` of the
    Synthea bundles takes 4x longer. Import code makes no reference cycles, so
    reference counting frees everything; memory stays bounded (the 1 GB NDJSON
    benchmark in docs/benchmarks.md runs with the collector paused).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _reread(
    store: SqlStore, item: QuarantineItem, source: str, tz: str, patient: str | None = None
) -> Batch:
    """Re-read one quarantined resource from its stored content, in its own format."""
    from medtwin.ingest.fhir import read_resource_text
    from medtwin.ingest.openmhealth import read_openmhealth_bytes

    if item.resource_type == "DataPoint":
        batches = list(
            read_openmhealth_bytes(
                item.content.encode(), source=source, tz=tz, file=item.file, patient=patient
            )
        )
        merged = Batch(source=source, file=item.file)
        for batch in batches:
            merged.units += batch.units
            merged.quarantine += batch.quarantine
            merged.resources_read += batch.resources_read
        return merged
    return read_resource_text(
        item.content,
        source=source,
        tz=tz,
        file=item.file,
        location=item.location,
        lookup=StoreLookup(store, source),
    )


def retry_waiting(
    store: SqlStore, source: str, tz: str, report: ImportReport, patient: str | None = None
) -> None:
    """Retry quarantined resources of ``source`` that wait for a reference, until none resolves."""
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
            batch = _reread(store, entry.item, source, tz, patient)
            batch.resources_read = 0  # counted when its file was read, not again
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
        batch = _reread(store, entry.item, entry.item.source, tz)
        sources.add(batch.source)
        report.add(store.append(batch))
    for name in sorted(sources):
        retry_waiting(store, name, tz, report)
    return report


def _source_of(entries: Sequence[QuarantineEntry], file: str) -> str | None:
    for entry in entries:
        name = entry.item.source
        defaults = ("fhir", "unknown", "hl7v2", "openmhealth")
        if entry.item.file == file and name not in defaults and not name.startswith("openmhealth:"):
            return name
    return None
