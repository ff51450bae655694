"""HL7 v2 import: ADT, ORU and other messages, through the ``hl7`` library, into facts.

One message is one :class:`~medtwin.record.batch.Batch` (written atomically). Within a
message, each modelled segment is one resource unit:

* ``PID`` -> :class:`~medtwin.record.facts.Demographics` (source id ``Patient/<PID-3>``);
* ``PV1`` (+ ``PV2``) -> :class:`~medtwin.record.facts.Encounter`
  (``Encounter/<PV1-19 visit number>``);
* ``OBX`` under an ``OBR`` -> :class:`~medtwin.record.facts.Observation`
  (``Observation/<OBR-3 filler order>/<OBX-3 code>/<OBX-4 sub-id>``).

Other segments (ORC, NTE, SPM, DG1, FT1, IN1, TXA, SCH ...) are not modelled: they are
neither stored nor quarantined. ``docs/formats/hl7v2.md`` lists every field read.

Source ids are natural keys of the source, not positions in a message, so that a corrected
result (``OBX-11 = C``) sent in a later message is a new *version* of the same fact, an
``A03`` discharge updates the encounter its ``A01`` opened, and re-sending a message changes
nothing.

What cannot be used is quarantined, never dropped, at the smallest unit that fails:

* the file (0 bytes, only white space), or the bytes of one message that are not UTF-8
  (ISO 8859 is accepted only when MSH-18 declares it);
* a whole message (no usable MSH, broken encoding characters, ``hl7.parse`` failure, no
  patient identifier): ``location="message N"``;
* one OBX (missing code, non-numeric NM value, unknown unit, bad time; an NM value written
  as a bound, "<0.5", is stored as the bound an SN value says and flagged):
  ``location="message N, segment M (OBX)"`` with the field (``OBX-5`` ...); the rest of the
  message is imported.

Data that is stored but suspicious (a LOINC code with a wrong check digit, a birth date that
is not a date) is stored as sent, and a quarantine entry *flags* it for review (its
``resource_type`` is the segment name, so storing the fact does not resolve the flag).

Messages damaged in transit are repaired before parsing, in two documented ways: a line that
does not start with a segment id continues the previous segment (text wrapped by an e-mail
client or a PDF copy), and segments glued together with a space (segment separators turned
into spaces) are split before a known segment id.

Examples
--------
>>> import tempfile, pathlib
>>> text = (
...     "MSH|^~\\\\&|LAB|ACME|||20240101120000+0000||ORU^R01|M1|P|2.5.1\\r"
...     "PID|||123^^^ACME^MR||Doe^Jane||19800102|F\\r"
...     "OBR|1||F42^LAB|24323-8^Panel^LN|||20240101110000+0000\\r"
...     "OBX|1|NM|2345-7^Glucose^LN||5.5|mmol/L|3.9-5.5|N|||F\\r"
... )
>>> path = pathlib.Path(tempfile.mkdtemp()) / "m.hl7"
>>> _ = path.write_text(text)
>>> batch = next(Hl7v2Reader().read(path, source=None, tz="UTC"))
>>> batch.source, [unit.key for unit in batch.units]
('hl7v2:ACME', ['Patient/123', 'Observation/F42@LAB/2345-7'])
>>> obs = batch.units[1].facts[0]
>>> round(obs.value_num, 1), obs.unit, obs.original_value, obs.original_unit
(99.1, 'mg/dL', 5.5, 'mmol/L')

References
----------
HL7 Version 2.5.1, chapter 2 (control: message framing, MSH, escape sequences 2.7,
data types 2A), chapter 3 (PID, PV1, PV2), chapter 7 (OBR, OBX; tables 0085 observation
result status and 0125 value type); HL7 table 0211 (character sets); HL7 v2-to-FHIR
mapping IG (patient class -> Encounter.class, OBX-11 -> Observation.status).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from medtwin.ingest.base import Batch, Lookup, QuarantineItem, ResourceUnit
from medtwin.record.codes import NHS_NUMBER_SYSTEM, NHS_NUMBER_SYSTEMS, nhs_number
from medtwin.record.facts import (
    Coding,
    Demographics,
    Encounter,
    Identifier,
    Observation,
)
from medtwin.record.time import InvalidTimeError, ParsedTime, get_zone, parse_hl7_ts

__all__ = [
    "DEFAULT_SOURCE",
    "KNOWN_SEGMENTS",
    "Hl7v2Reader",
    "read_hl7v2_bytes",
    "split_segments",
]

DEFAULT_SOURCE = "hl7v2"

#: Segment ids of HL7 v2.1-v2.8 (plus any ``Zxx``) that may start a segment glued to the
#: previous one by a space; see :func:`split_segments`.
_SEGMENT_IDS = (
    "ABS ACC ADD ADJ AFF AIG AIL AIP AIS AL1 APR ARQ ARV AUT BHS BLC BLG BPO BPX BTS BTX "
    "BUI CDM CDO CER CM0 CM1 CM2 CNS CON CSP CSR CSS CTD CTI DB1 DG1 DMI DON DRG DSC DSP "
    "ECD ECR EDU EQP EQU ERR EVN FAC FHS FT1 FTS GOL GP1 GP2 GT1 IAM IIM ILT IN1 IN2 IN3 "
    "INV IPC IPR ISD ITM IVC IVT LAN LCC LCH LDP LOC LRL MFA MFE MFI MRG MSA MSH NCK NDS "
    "NK1 NPU NSC NST NTE OBR OBX ODS ODT OM1 OM2 OM3 OM4 OM5 OM6 OM7 ORC ORG OVR PAC PCE "
    "PCR PD1 PDA PDC PEO PES PID PKG PMT PR1 PRA PRB PRC PRD PRT PSG PSH PSL PSS PTH PV1 "
    "PV2 PYE QAK QID QPD QRD QRF QRI RCP RDF RDT REL RF1 RFI RGS RMI ROL RQ1 RQD RXA RXC "
    "RXD RXE RXG RXO RXR RXV SAC SCD SCH SCP SDD SFT SHP SID SLT SPM STF STZ TCC TCD TQ1 "
    "TQ2 TXA UAC UB1 UB2 URD URS VAR VND"
)
KNOWN_SEGMENTS: frozenset[str] = frozenset(_SEGMENT_IDS.split())
_KNOWN_ALTERNATION = "|".join(sorted(KNOWN_SEGMENTS)) + "|Z[A-Z0-9]{2}"

_ENVELOPE = ("FHS", "BHS", "BTS", "FTS")
_FRAMING = b"\x0b\x1c"
_BOM = b"\xef\xbb\xbf"
_MSH_AT_LINE_START = re.compile(
    rb"(?:\A|[\r\n])[\x0b\x1c \t\r\n]*(?:\xef\xbb\xbf)?[\x0b\x1c \t]*(MSH)(?![A-Za-z0-9])"
)
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_NM_BOUND = re.compile(r"(<=|>=|<|>)\s*([+-]?(?:\d+\.?\d*|\.\d+))")
"""An NM value written as a bound ("<0.5"): NM does not allow it (SN does: ``<^0.5``), but
laboratories send it; stored as the SN bound it means, and flagged."""
_RANGE = re.compile(
    r"\s*(?:(?P<cmp><=|>=|<|>|≤|≥)\s*(?P<bound>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"|(?P<low>[+-]?(?:\d+\.?\d*|\.\d+))\s*-\s*(?P<high>[+-]?(?:\d+\.?\d*|\.\d+)))"
)
_ISO_8859 = re.compile(r"(?:ISO[-_ ]?)?8859[/_-]?(\d{1,2})")
# HL7 table 0211 ISO-IR names of the ISO 8859 parts -> Python codecs
_ISO_IR = {
    "ISO IR100": "latin_1",
    "ISO IR101": "iso8859_2",
    "ISO IR109": "iso8859_3",
    "ISO IR110": "iso8859_4",
    "ISO IR144": "iso8859_5",
    "ISO IR127": "iso8859_6",
    "ISO IR126": "iso8859_7",
    "ISO IR138": "iso8859_8",
    "ISO IR148": "iso8859_9",
}

# HL7 table 0001 administrative sex -> FHIR AdministrativeGender
_GENDER = {"M": "male", "F": "female", "O": "other", "U": "unknown", "A": "other", "N": "unknown"}
# HL7 table 0004 patient class -> v3 ActCode (HL7 v2-to-FHIR ConceptMap "PatientClass")
_PATIENT_CLASS = {"I": "IMP", "O": "AMB", "E": "EMER", "P": "PRENC", "R": "AMB", "B": "IMP"}
# HL7 table 0085 observation result status -> medtwin / FHIR Observation.status
_RESULT_STATUS = {
    "F": "final",
    "C": "amended",
    "P": "preliminary",
    "R": "preliminary",
    "S": "preliminary",
    "I": "registered",
    "O": "registered",
    "U": "final",
    "X": "cancelled",
    "N": "cancelled",
    "D": "entered-in-error",
    "W": "entered-in-error",
}
# statuses for which OBX-5 may be empty
_NO_VALUE_STATUSES = frozenset({"registered", "cancelled", "entered-in-error"})
# ADT trigger events -> Encounter status (when the event says more than the period does)
_ADT_STATUS = {
    "A05": "planned",
    "A14": "planned",
    "A11": "entered-in-error",
    "A27": "entered-in-error",
    "A38": "entered-in-error",
    "A13": "in-progress",
}
_TEXT_TYPES = frozenset({"ST", "TX", "FT"})
_CODED_TYPES = frozenset({"CWE", "CE", "CNE", "CF"})
_TIME_TYPES = frozenset({"DT", "DTM", "TS"})


class Hl7v2Reader:
    """Reads HL7 v2 message files (``.hl7``, or ``.txt`` starting with ``MSH``).

    A file holds one or more messages, each starting on a line that begins with ``MSH``;
    MLLP framing bytes (0x0b, 0x1c), a UTF-8 byte-order mark, batch envelopes
    (FHS/BHS/BTS/FTS) and blank lines are ignored; segments may end in ``\\r``, ``\\n`` or
    ``\\r\\n``.

    Examples
    --------
    >>> from pathlib import Path
    >>> Hl7v2Reader().can_read(Path("results.hl7"))
    True
    """

    name = "hl7v2"

    def can_read(self, path: Path) -> bool:
        """``.hl7`` files, and ``.txt`` files whose first bytes are an MSH segment.

        A ``.hl7`` file is claimed even when it is empty or damaged, so that the reason is
        reported by this reader (e.g. "empty file") rather than "unrecognised format".
        """
        suffix = path.suffix.lower()
        if suffix == ".hl7":
            return True
        if suffix != ".txt":
            return False
        try:
            with path.open("rb") as handle:
                head = handle.read(256)
        except OSError:
            return False
        return head.lstrip(_FRAMING + _BOM + b" \t\r\n").startswith(b"MSH")

    def read(
        self,
        path: Path,
        *,
        source: str | None,
        tz: str,
        lookup: Lookup | None = None,
        patient: str | None = None,
    ) -> Iterator[Batch]:
        """Yield one batch per message of ``path`` (see :func:`read_hl7v2_bytes`).

        Raises
        ------
        OSError
            When the file cannot be read.
        medtwin.record.time.InvalidTimeError
            When ``tz`` is not a time zone.
        """
        yield from read_hl7v2_bytes(path.read_bytes(), source=source, tz=tz, file=str(path))


# --------------------------------------------------------------------------------------------
# bytes -> messages


@dataclass(frozen=True, slots=True)
class _Chunk:
    number: int
    offset: int
    data: bytes


def read_hl7v2_bytes(
    data: bytes, *, source: str | None = None, tz: str = "UTC", file: str | None = None
) -> Iterator[Batch]:
    """Yield one :class:`~medtwin.record.batch.Batch` per HL7 v2 message in ``data``.

    Parameters
    ----------
    data
        The bytes of a file (or of an MLLP stream) holding one or more messages.
    source
        Source name of the facts; default ``hl7v2:<MSH-4 namespace id>`` per message
        (falling back to the MSH-4 universal id, then MSH-3, then ``hl7v2``).
    tz
        IANA zone in which timestamps without an offset are read.
    file
        File name recorded in units and quarantine items.

    Raises
    ------
    medtwin.record.time.InvalidTimeError
        When ``tz`` is not a time zone. Bad data never raises: it is quarantined.

    Examples
    --------
    >>> batches = list(read_hl7v2_bytes(b""))
    >>> batches[0].quarantine[0].reason
    'empty file: no HL7 v2 message (0 bytes)'
    """
    get_zone(tz)
    fallback_source = source or DEFAULT_SOURCE
    stripped = data.strip(_FRAMING + _BOM + b" \t\r\n\f\v")
    if not stripped:
        what = "0 bytes" if not data else f"{len(data)} bytes of white space or framing only"
        yield _file_batch(fallback_source, file, f"empty file: no HL7 v2 message ({what})", data)
        return
    starts = [match.start(1) for match in _MSH_AT_LINE_START.finditer(data)]
    if not starts:
        yield _file_batch(
            fallback_source,
            file,
            "not an HL7 v2 message: no line starts with an MSH segment",
            data,
            field_name="MSH",
        )
        return
    preamble = data[: starts[0]]
    if _meaningful_preamble(preamble):
        yield _file_batch(
            fallback_source,
            file,
            f"{len(preamble)} bytes before the first MSH segment are not part of a message",
            preamble,
            location="file, before message 1",
        )
    bounds = [*starts, len(data)]
    for number, (start, end) in enumerate(itertools.pairwise(bounds), start=1):
        chunk = _Chunk(number, start, data[start:end])
        yield _MessageReader(chunk, source=source, tz=tz, file=file).batch()


def _meaningful_preamble(preamble: bytes) -> bool:
    for line in re.split(rb"[\r\n]+", preamble):
        text = line.strip(_FRAMING + _BOM + b" \t\f\v")
        if text and not text.startswith((b"FHS", b"BHS")):
            return True
    return False


def _file_batch(
    source: str,
    file: str | None,
    reason: str,
    data: bytes,
    *,
    location: str = "file",
    field_name: str | None = None,
) -> Batch:
    item = QuarantineItem(
        source=source,
        reason=reason,
        content=data.decode("utf-8", "replace"),
        file=file,
        location=location,
        field=field_name,
    )
    return Batch(source=source, file=file, quarantine=[item], resources_read=1)


def _codec(declared: str) -> str | None:
    """Python codec for an HL7 table 0211 ISO 8859 character set name, else ``None``."""
    name = declared.strip().upper()
    if name in _ISO_IR:
        return _ISO_IR[name]
    match = _ISO_8859.fullmatch(name)
    if match and int(match.group(1)) in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15):
        return f"iso8859_{int(match.group(1))}"
    return None


def _msh18(chunk: bytes) -> str:
    """MSH-18 (first repetition) read from raw bytes, before the message is decoded."""
    line = re.split(rb"[\r\n]", chunk, maxsplit=1)[0].decode("latin-1")
    if len(line) < 4:
        return ""
    fields = line.split(line[3])
    if len(fields) <= 17:
        return ""
    encoding = fields[1]
    repetition = encoding[1] if len(encoding) > 1 else "~"
    component = encoding[0] if encoding else "^"
    return fields[17].split(repetition)[0].split(component)[0].strip()


def split_segments(text: str) -> list[str]:
    """Split one message's text into segments, repairing two kinds of transport damage.

    * Segment separators may be ``\\r``, ``\\n`` or ``\\r\\n``; blank lines, MLLP framing
      characters and batch envelope segments (FHS, BHS, BTS, FTS) are dropped.
    * A line that does not start with a segment id (three upper-case letters or digits and
      the field separator) continues the previous segment: it was wrapped. It is joined
      with a space, or with nothing after a ``-`` (a wrapped id or phone number).
    * Segments glued by white space (separators turned into spaces) are split before a
      :data:`KNOWN_SEGMENTS` id (or ``Zxx``) followed by the field separator: anywhere in
      a one-line message, and after a field separator in other messages (a field holding
      only `` PID`` is not plausible, a text ending in `` PID`` might be).

    Examples
    --------
    >>> split_segments("MSH|^~\\\\&|A|B|||||ADT^A01|1|P|2.3||| EVN|A01 PID|1||42")
    ['MSH|^~\\\\&|A|B|||||ADT^A01|1|P|2.3|||', 'EVN|A01', 'PID|1||42']
    >>> split_segments("MSH|^~\\\\&|A\\nOBX|1|TX|C||two\\nlines|\\nNTE|1")
    ['MSH|^~\\\\&|A', 'OBX|1|TX|C||two lines|', 'NTE|1']
    """
    text = text.replace("\x0b", "").replace("\x1c", "").lstrip("\ufeff")
    lines = [line.strip() for line in re.split(r"\r\n|\r|\n", text)]
    lines = [line for line in lines if line]
    if not lines:
        return []
    separator = lines[0][3] if lines[0].startswith("MSH") and len(lines[0]) > 3 else "|"
    sep = re.escape(separator)
    known = _KNOWN_ALTERNATION
    starts_segment = re.compile(rf"[A-Z][A-Z0-9]{{2}}(?:{sep}|$)")
    segments: list[str] = []
    for line in lines:
        if line.startswith(_ENVELOPE) and starts_segment.match(line):
            continue
        if segments and not starts_segment.match(line):
            joiner = "" if segments[-1].endswith("-") else " "
            segments[-1] = segments[-1] + joiner + line
        else:
            segments.append(line)
    glue = re.compile(rf"(?<={sep})[ \t]+(?=(?:{known}){sep})")
    if len(lines) == 1:
        glue = re.compile(rf"[ \t]+(?=(?:{known}){sep})")
    out: list[str] = []
    for segment in segments:
        out.extend(part for part in glue.split(segment) if part)
    return [s for s in out if not (s.startswith(_ENVELOPE) and starts_segment.match(s))]


# --------------------------------------------------------------------------------------------
# parse tree access


def _unescape(text: str, separators: str, esc: str) -> str:
    """Resolve HL7 v2 escape sequences (v2.5.1 section 2.7); unknown ones are dropped.

    ``separators`` is the field, component, repetition, escape, sub-component string
    (``|^~\\&``). A lone escape character without its closing partner is kept as text.
    """
    if not esc or esc not in text:
        return text
    padded = (separators + "|^~\\&"[len(separators) :])[:5]
    plain = {"F": padded[0], "S": padded[1], "R": padded[2], "T": padded[4], "E": esc}
    out: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        end = text.find(esc, position + 1) if char == esc else -1
        if char != esc or end < 0:
            out.append(char)
            position += 1
            continue
        body = text[position + 1 : end]
        position = end + 1
        if body in plain:
            out.append(plain[body])
        elif body in (".br", ".sp") or body.startswith(".sp"):
            out.append("\n")
        elif body[:1] == "X" and re.fullmatch(r"X(?:[0-9A-Fa-f]{2})+", body):
            raw = bytes.fromhex(body[1:])
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(raw.decode("latin-1"))
        elif body == "":
            out.append(esc)
        # \H\ \N\ highlighting, \Zxx\ local, \Cxxyy\ \Mxxyyzz\ charset switches,
        # .in .ti .sk .ce .fi .nf formatting: no text of their own
    return "".join(out)


def _leaf(node: Any) -> str:
    while not isinstance(node, str):
        if not node:
            return ""
        node = node[0]
    return node


class _Segment:
    """One parsed segment with safe 1-based access (missing parts read as ``""``)."""

    __slots__ = ("esc", "index", "name", "raw", "separators", "text")

    def __init__(self, index: int, raw: Any, text: str, separators: str, esc: str) -> None:
        self.index = index
        self.raw = raw
        self.text = text
        self.name = text[:3]
        self.separators = separators
        self.esc = esc

    def _field(self, number: int) -> Any:
        return self.raw[number] if number < len(self.raw) else None

    def raw_get(self, number: int, component: int = 1, sub: int = 1, rep: int = 1) -> str:
        """The escaped text at ``number.rep.component.sub`` (``""`` if absent)."""
        node = self._field(number)
        if node is None:
            return ""
        if self.name == "MSH" and number in (1, 2):
            return _leaf(node)
        for index in (rep, component, sub):
            if isinstance(node, str):
                return node if index == 1 else ""
            if index > len(node):
                return ""
            node = node[index - 1]
        return _leaf(node)

    def get(self, number: int, component: int = 1, sub: int = 1, rep: int = 1) -> str:
        """The unescaped, stripped value at ``number.rep.component.sub``."""
        value = self.raw_get(number, component, sub, rep)
        return _unescape(value, self.separators, self.esc).strip()

    def repetitions(self, number: int) -> int:
        """How many repetitions the field has (1 for an empty or simple field, 0 if absent)."""
        node = self._field(number)
        if node is None:
            return 0
        return len(node) if isinstance(node, list) else 1

    def text_of(self, number: int, rep: int | None = None) -> str:
        """The whole field (or one repetition) as text, unescaped, components kept with ``^``."""
        node = self._field(number)
        if node is None:
            return ""
        if rep is not None:
            if isinstance(node, str):
                node = node if rep == 1 else ""
            else:
                node = node[rep - 1] if rep <= len(node) else ""
        return _unescape(str(node), self.separators, self.esc).strip()

    @property
    def location(self) -> str:
        return f"segment {self.index} ({self.name})"


class _Problem(Exception):
    """A field that stops one segment from becoming a fact."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field_name = field_name
        self.reason = reason


# --------------------------------------------------------------------------------------------
# one message


@dataclass(frozen=True, slots=True)
class _Patient:
    subject: Identifier


@dataclass(slots=True)
class _State:
    units: list[ResourceUnit] = field(default_factory=list)
    quarantine: list[QuarantineItem] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    read: int = 0


class _MessageReader:
    """Turns one message's bytes into one batch."""

    def __init__(self, chunk: _Chunk, *, source: str | None, tz: str, file: str | None) -> None:
        self.chunk = chunk
        self.given_source = source
        self.source = source or DEFAULT_SOURCE
        self.tz = tz
        self.file = file
        self.where = f"message {chunk.number}"
        self.text = ""
        self.control_id = ""
        self.decode_problem = ""
        self.msh: _Segment | None = None
        self.message_time: datetime | None = None
        self.message_type = ""
        self.event = ""

    # -- message-level failures -------------------------------------------------------------
    def _whole(self, reason: str, field_name: str | None, content: str | None = None) -> Batch:
        item = QuarantineItem(
            source=self.source,
            reason=reason,
            content=content if content is not None else self.text,
            file=self.file,
            location=self.where,
            resource_type="message",
            resource_id=self.control_id or None,
            field=field_name,
        )
        return Batch(source=self.source, file=self.file, quarantine=[item], resources_read=1)

    def _decode(self) -> str | None:
        data = self.chunk.data
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            declared = _msh18(data)
            codec = _codec(declared) if declared else None
            if codec is not None:
                return data.decode(codec, "replace")
            bad = self.chunk.offset + exc.start
            said = f"MSH-18 declares {declared!r}" if declared else "MSH-18 declares none"
            self.text = data.decode("utf-8", "replace")
            self.decode_problem = (
                f"not UTF-8 text: invalid byte 0x{data[exc.start]:02x} at byte offset {bad} of "
                f"the file ({said}); send UTF-8, or declare the character set in MSH-18 "
                "(e.g. '8859/1' for Latin-1)"
            )
            return None

    def batch(self) -> Batch:
        """Read the message; never raises for bad data."""
        text = self._decode()
        if text is None:
            self._set_source_from_bytes()
            return self._whole(self.decode_problem, "MSH-18")
        self.text = text
        segments = split_segments(text)
        problem = _check_msh(segments[0] if segments else "")
        if problem is not None:
            self._set_source_from_bytes()
            return self._whole(problem, "MSH-2")
        try:
            import hl7

            message = hl7.parse("\r".join(segments))
        except Exception as exc:  # the hl7 library raises assorted exception types
            self._set_source_from_bytes()
            return self._whole(f"hl7.parse failed: {type(exc).__name__}: {exc}", None)
        # field, component, repetition, escape, sub-component (checked by _check_msh)
        separators = segments[0][3:8]
        esc = separators[3]
        parsed = [
            _Segment(index, raw, segments[index - 1], separators, esc)
            for index, raw in enumerate(message, start=1)
        ]
        return self._read(parsed)

    def _set_source_from_bytes(self) -> None:
        if self.given_source:
            return
        line = re.split(r"[\r\n]", self.chunk.data.decode("latin-1"), maxsplit=1)[0]
        line = line.strip("\x0b\x1c\ufeff \t")
        if len(line) > 8 and line.startswith("MSH"):
            fields = line.split(line[3])
            component = fields[1][:1] or "^"
            candidates = [fields[i].split(component) for i in (3, 2) if len(fields) > i]
            self.source = _source_name([c for parts in candidates for c in parts[:2]])

    # -- the segments -----------------------------------------------------------------------
    def _read(self, segments: list[_Segment]) -> Batch:
        msh = self.msh = segments[0]
        if not self.given_source:
            self.source = _source_name([msh.get(4, 1), msh.get(4, 2), msh.get(3, 1), msh.get(3, 2)])
        self.control_id = (
            msh.get(10) or hashlib.blake2b(self.text.encode("utf-8"), digest_size=8).hexdigest()
        )
        message_type, event = msh.get(9, 1), msh.get(9, 2)
        if not message_type:
            return self._whole(
                "MSH-9 message type is empty: the message is truncated or not HL7 v2", "MSH-9"
            )
        evn = next((s for s in segments if s.name == "EVN"), None)
        if not event and evn is not None:
            event = evn.get(1)
        self.message_time = self._time_or_none(msh.get(7))
        self.message_type = f"{message_type}^{event}" if event else message_type
        self.event = event

        has_pid = any(s.name == "PID" for s in segments)
        modelled = self._modelled(segments)
        if not has_pid:
            if modelled:
                names = sorted({s.name for s in modelled})
                return self._whole(
                    f"no PID segment: the {', '.join(names)} data of this "
                    f"{self.message_type} message cannot be attached to a patient",
                    "PID",
                )
            return Batch(source=self.source, file=self.file)

        state = _State()
        patient: _Patient | None = None
        obr: _Segment | None = None
        obr_count = 0
        for position, segment in enumerate(segments):
            if segment.name == "PID":
                state.read += 1
                try:
                    patient = self._pid(segment, state)
                except _Problem as problem:  # an NHS number whose check digit fails
                    return self._whole(
                        f"{problem.reason}: the message cannot be attached to a patient",
                        problem.field_name,
                    )
                if patient is None:
                    return self._whole(
                        "PID-3 patient identifier list is empty (and PID-2 too): the "
                        "message cannot be attached to a patient",
                        "PID-3",
                    )
                obr = None
            elif segment.name == "PV1":
                state.read += 1
                following = segments[position + 1] if position + 1 < len(segments) else None
                pv2 = following if following is not None and following.name == "PV2" else None
                self._pv1(segment, pv2, patient, state)
            elif segment.name == "OBR":
                obr = segment
                obr_count += 1
            elif segment.name == "OBX" and obr is not None:
                state.read += 1
                self._obx(segment, obr, obr_count, patient, state)
        return Batch(
            source=self.source,
            units=state.units,
            quarantine=state.quarantine,
            file=self.file,
            resources_read=state.read,
        )

    @staticmethod
    def _modelled(segments: Sequence[_Segment]) -> list[_Segment]:
        out: list[_Segment] = []
        in_order = False
        for segment in segments:
            if segment.name == "OBR":
                in_order = True
            elif segment.name == "PV1" or (segment.name == "OBX" and in_order):
                out.append(segment)
        return out

    # -- helpers ----------------------------------------------------------------------------
    def _unit_key(self, key: str, segment: _Segment, state: _State) -> str:
        if key in state.keys:
            key = f"{key}/{segment.name}{segment.index}"
        state.keys.add(key)
        return key

    def _location(self, segment: _Segment) -> str:
        return f"{self.where}, {segment.location}"

    def _block(self, segment: _Segment, key: str, problem: _Problem, state: _State) -> None:
        resource_type, _, resource_id = key.partition("/")
        state.quarantine.append(
            QuarantineItem(
                source=self.source,
                reason=problem.reason,
                content=segment.text,
                file=self.file,
                location=self._location(segment),
                resource_type=resource_type,
                resource_id=resource_id,
                field=problem.field_name,
            )
        )

    def _flag(self, segment: _Segment, key: str, flags: list[_Problem], state: _State) -> None:
        if not flags:
            return
        state.quarantine.append(
            QuarantineItem(
                source=self.source,
                reason="; ".join(flag.reason for flag in flags),
                content=segment.text,
                file=self.file,
                location=self._location(segment),
                resource_type=segment.name,
                resource_id=key.partition("/")[2],
                field=", ".join(dict.fromkeys(flag.field_name for flag in flags)),
            )
        )

    def _time(self, text: str, field_name: str) -> ParsedTime | None:
        if not text:
            return None
        try:
            return parse_hl7_ts(text, default_tz=self.tz)
        except InvalidTimeError as exc:
            raise _Problem(
                field_name, f"{field_name} {text!r} is not an HL7 v2 time: {exc}"
            ) from None

    def _time_or_none(self, text: str) -> datetime | None:
        try:
            parsed = parse_hl7_ts(text, default_tz=self.tz) if text else None
        except InvalidTimeError:
            return None
        return parsed.instant if parsed else None

    def _system(self, name: str) -> str:
        return _coding_system(name, self.source)

    # -- PID --------------------------------------------------------------------------------
    def _pid(self, pid: _Segment, state: _State) -> _Patient | None:
        identifiers = self._identifiers(pid, 3) or self._identifiers(pid, 2)
        if not identifiers:
            return None
        subject = identifiers[0]
        key = self._unit_key(f"Patient/{subject.value}", pid, state)
        flags: list[_Problem] = []
        birth = _partial_date(pid.get(7))
        if pid.get(7) and birth is None:
            flags.append(
                _Problem(
                    "PID-7",
                    f"PID-7 birth date {pid.get(7)!r} is not a date; the patient "
                    "was imported without a birth date",
                )
            )
        deceased = None
        if pid.get(29):
            deceased = _partial_date(pid.get(29))
            if deceased is not None and len(pid.get(29)) > 8:
                instant = self._time_or_none(pid.get(29))
                deceased = instant.isoformat() if instant else None
            if deceased is None:
                flags.append(
                    _Problem(
                        "PID-29",
                        f"PID-29 death time {pid.get(29)!r} is not an HL7 v2 "
                        "time; the patient was imported without it",
                    )
                )
        if deceased is None and pid.get(30).upper() == "Y":
            deceased = "true"
        family, given = _name(pid)
        address = None
        if pid.repetitions(11):
            parts = (pid.get(11, 3), pid.get(11, 4), pid.get(11, 6))
            address = ", ".join(p for p in parts if p) or None
        gender_code = pid.get(8).upper()
        fact = Demographics(
            source=self.source,
            source_id=key,
            subject=subject,
            resource_type="PID",
            identifiers=tuple(dict.fromkeys(identifiers)),
            family=family,
            given=given,
            birth_date=birth,
            gender=_GENDER.get(gender_code, gender_code.lower() or None),
            deceased=deceased,
            address=address,
            telecom=tuple(dict.fromkeys(_telecom(pid, 13) + _telecom(pid, 14))),
        )
        state.units.append(
            ResourceUnit(
                key=key,
                facts=(fact,),
                file=self.file,
                location=self._location(pid),
                content=self.text,
            )
        )
        self._flag(pid, key, flags, state)
        return _Patient(subject)

    def _identifiers(self, pid: _Segment, number: int) -> list[Identifier]:
        out: list[Identifier] = []
        for rep in range(1, pid.repetitions(number) + 1):
            value = pid.get(number, 1, rep=rep)
            if not value:
                continue
            namespace = pid.get(number, 4, 1, rep)
            system = _authority_system(
                namespace, pid.get(number, 4, 2, rep), pid.get(number, 4, 3, rep)
            )
            if system is None:
                id_type = pid.get(number, 5, rep=rep) or "MR"
                system = f"urn:medtwin:hl7v2:{_urn_part(self.source)}:{_urn_part(id_type)}"
            if namespace.upper() == "NHS" or system in NHS_NUMBER_SYSTEMS:
                # the NHS number (UK ITK messages: 9434765919^^^NHS^NH): the system FHIR
                # records use, so a laboratory's results join the GP record's patient
                system, digits = NHS_NUMBER_SYSTEM, nhs_number(value)
                if digits is None:
                    raise _Problem(
                        f"PID-{number}",
                        f"PID-{number} NHS number {value!r} is not valid: 10 digits, the last "
                        "the modulus 11 check digit of the first nine (NHS Data Dictionary)",
                    )
                value = digits
            out.append(Identifier(system, value))
        return out

    # -- PV1 --------------------------------------------------------------------------------
    def _pv1(
        self, pv1: _Segment, pv2: _Segment | None, patient: _Patient | None, state: _State
    ) -> None:
        visit = pv1.get(19)
        patient_class = pv1.get(2).upper()
        admit_text, discharge_text = pv1.get(44), pv1.get(45)
        if not (visit or admit_text or discharge_text) and patient_class in ("", "N"):
            return  # A28/A31 send "PV1|1|N": no visit to record
        if visit:
            key = f"Encounter/{visit}"
        elif admit_text and patient is not None:
            key = f"Encounter/{patient.subject.value}@{admit_text}"
        else:
            key = f"Encounter/{self.control_id}/PV1"
        key = self._unit_key(key, pv1, state)
        if patient is None:
            self._block(pv1, key, _Problem("PID", "PV1 comes before any PID segment"), state)
            return
        try:
            admit = self._time(admit_text, "PV1-44")
            discharge = self._time(discharge_text, "PV1-45")
        except _Problem as problem:
            self._block(pv1, key, problem, state)
            return
        status = _ADT_STATUS.get(self.event) if self.message_type.startswith("ADT") else None
        if status is None:
            if self.message_type.startswith("SIU"):
                status = "planned"
            elif discharge is not None:
                status = "finished"
            elif admit is not None:
                status = "in-progress"
        end = discharge.instant if discharge else None
        if status == "in-progress" and self.event == "A13":
            end = None
        reason = None
        if pv2 is not None:
            reason = pv2.get(3, 2) or pv2.get(3, 1) or None
        fact = Encounter(
            source=self.source,
            source_id=key,
            subject=patient.subject,
            status=status,
            effective_start=admit.instant if admit else None,
            effective_end=end,
            original_time=admit_text or None,
            resource_type="PV1",
            class_code=_PATIENT_CLASS.get(patient_class),
            reason=reason,
        )
        content = pv1.text + ("\r" + pv2.text if pv2 is not None else "")
        state.units.append(
            ResourceUnit(
                key=key,
                facts=(fact,),
                file=self.file,
                location=self._location(pv1),
                content=content,
            )
        )

    # -- OBX --------------------------------------------------------------------------------
    def _obx(
        self, obx: _Segment, obr: _Segment, obr_count: int, patient: _Patient | None, state: _State
    ) -> None:
        order = _order_key(obr) or f"{self.control_id}/OBR{obr_count}"
        code = _coded(obx, 3, self._system)
        sub_id = obx.get(4)
        if code is None:
            key = self._unit_key(f"Observation/{order}/OBX{obx.index}", obx, state)
            self._block(
                obx,
                key,
                _Problem("OBX-3", "OBX-3 observation identifier is empty: the result has no code"),
                state,
            )
            return
        base = f"Observation/{order}/{code.code}" + (f"/{sub_id}" if sub_id else "")
        key = self._unit_key(base, obx, state)
        if patient is None:
            self._block(obx, key, _Problem("PID", "OBX comes before any PID segment"), state)
            return
        try:
            fact, flags = self._observation(obx, obr, code, key, patient)
        except _Problem as problem:
            self._block(obx, key, problem, state)
            return
        state.units.append(
            ResourceUnit(
                key=key,
                facts=(fact,),
                file=self.file,
                location=self._location(obx),
                content=obx.text,
            )
        )
        self._flag(obx, key, flags, state)

    def _observation(
        self, obx: _Segment, obr: _Segment, code: Coding, key: str, patient: _Patient
    ) -> tuple[Observation, list[_Problem]]:
        from medtwin.record import codes

        flags: list[_Problem] = []
        if code.system == codes.SNOMED:  # a UK laboratory's SNOMED CT observable -> LOINC
            from medtwin.ingest.snomed import loinc_for_snomed

            unit = _unit_text(obx)
            mapped = loinc_for_snomed(
                {"coding": [{"system": codes.SNOMED, "code": code.code}]},
                {"value": 1.0, "code": unit} if unit else None,
            )
            code = mapped or code
        loinc = code.code if code.system == codes.LOINC else None
        if (
            loinc is not None
            and not codes.loinc_check_digit_ok(loinc)
            and loinc not in codes.LOINC_KNOWN_INVALID_CHECK_DIGITS
        ):
            flags.append(
                _Problem(
                    "OBX-3",
                    f"OBX-3 LOINC code {loinc!r} is malformed or its check digit is wrong; "
                    "the observation was stored with the code as sent",
                )
            )
        status_code = obx.get(11).upper()
        status = _RESULT_STATUS.get(status_code, status_code.lower() or None)
        retraction = status in _NO_VALUE_STATUSES
        try:
            values = self._value(obx, loinc)
        except _Problem:
            if not retraction:
                raise
            values = {}
        if not values and not retraction:
            raise _Problem(
                "OBX-5", "OBX-5 is empty: the result has no value (or the message is truncated)"
            )
        sent_as_bound = values.pop("_bound_in_nm", None)
        if sent_as_bound is not None:
            flags.append(
                _Problem(
                    "OBX-5",
                    f"OBX-5 NM value {sent_as_bound!r} is a bound, which NM does not allow (SN "
                    "does: <^0.5); the observation was stored as that bound",
                )
            )
        when: ParsedTime | None = None
        text = ""
        assert self.msh is not None
        for segment, number, name in (
            (obx, 14, "OBX-14"),
            (obr, 7, "OBR-7"),
            (self.msh, 7, "MSH-7"),
        ):
            text = segment.get(number)
            if text:
                when = self._time(text, name)
                break
        # OBR-22 (results reported / status changed) is part of the result, unlike MSH-7,
        # which changes with every re-send and would make each re-send a new version
        issued = self._time_or_none(obr.get(22))
        low, high = self._range(obx, loinc, values)
        interpretation = ",".join(
            value for rep in range(1, obx.repetitions(8) + 1) if (value := obx.get(8, 1, rep=rep))
        )
        fact = Observation(
            source=self.source,
            source_id=key,
            subject=patient.subject,
            code=code,
            status=status,
            effective_start=when.instant if when else None,
            effective_end=when.end if when else None,
            source_recorded_at=issued,
            original_time=text or None,
            resource_type="OBX",
            category="laboratory",
            interpretation=interpretation or None,
            reference_low=low,
            reference_high=high,
            **values,
        )
        return fact, flags

    def _value(self, obx: _Segment, loinc: str | None) -> dict[str, Any]:
        value_type = obx.get(2).upper()
        first = obx.get(5)
        whole = obx.text_of(5)
        # empty = only separators; judged on the escaped text, so an escaped \R\ (a literal ~) counts
        escaped = str(obx._field(5) or "")
        if not escaped.replace("^", "").replace("~", "").strip():
            return {}
        if value_type == "NM":
            bound = _NM_BOUND.fullmatch(first.strip())
            if bound is not None:  # "<0.5" in an NM field: the bound an SN value would say
                comparator, num = bound.groups()
                out = self._quantity(_number(num, "OBX-5", "NM"), num, obx, loinc)
                return {**out, "value_text": f"{comparator}{num}", "_bound_in_nm": first}
            number = _number(first, "OBX-5", "NM")
            return self._quantity(number, first, obx, loinc)
        if value_type == "SN":
            comparator, num1, separator, num2 = (obx.get(5, i) for i in (1, 2, 3, 4))
            if not separator and not num2:
                number = _number(num1, "OBX-5", "SN")
                out = self._quantity(number, num1, obx, loinc)
                if comparator:
                    out["value_text"] = f"{comparator}{num1}"
                return out
            text = f"{comparator}{num1}{separator}{num2}".strip()
            return {"value_text": text, "original_unit": _unit_text(obx) or None}
        if value_type in _CODED_TYPES:
            coding = _coded(obx, 5, self._system)
            display = coding.display if coding else (obx.get(5, 2) or obx.get(5, 5) or None)
            return {"value_code": coding, "value_text": display}
        if value_type in _TIME_TYPES:
            try:
                parsed = parse_hl7_ts(first, default_tz=self.tz)
            except InvalidTimeError as exc:
                raise _Problem(
                    "OBX-5", f"OBX-5 {value_type} value {first!r} is not an HL7 v2 date/time: {exc}"
                ) from None
            if parsed.precision == "second":
                return {"value_text": parsed.instant.isoformat()}
            return {"value_text": _partial_date(first)}
        if value_type in _TEXT_TYPES:
            reps = [obx.text_of(5, rep) for rep in range(1, obx.repetitions(5) + 1)]
            return {"value_text": "\n".join(reps).replace("\r\n", "\n").replace("\r", "\n")}
        return {"value_text": whole}

    def _quantity(
        self, number: float, text: str, obx: _Segment, loinc: str | None
    ) -> dict[str, Any]:
        from medtwin.record.units import IncompatibleUnitsError, UnknownUnitError, normalise

        unit = _unit_text(obx)
        if not unit:
            return {"value_num": number, "original_value": number}
        try:
            norm = normalise(number, unit, code=loinc)
        except UnknownUnitError as exc:
            raise _Problem("OBX-6", f"OBX-6 unit {unit!r} is not a UCUM unit: {exc}") from None
        except IncompatibleUnitsError as exc:
            raise _Problem(
                "OBX-6", f"OBX-6 unit {unit!r} does not fit the observation: {exc}"
            ) from None
        return {
            "value_num": norm.value,
            "unit": norm.unit,
            "original_value": float(norm.original_value),
            "original_unit": norm.original_unit,
        }

    def _range(
        self, obx: _Segment, loinc: str | None, values: dict[str, Any]
    ) -> tuple[float | None, float | None]:
        from medtwin.record.units import UnitsError, normalise

        text = obx.get(7)
        match = _RANGE.match(text) if text else None
        if match is None:
            return None, None
        if match["cmp"]:
            bound = float(match["bound"])
            low, high = (None, bound) if match["cmp"] in ("<", "<=", "≤") else (bound, None)
        else:
            low, high = float(match["low"]), float(match["high"])
        unit = values.get("original_unit")
        if unit and values.get("unit"):
            try:
                low = normalise(low, unit, code=loinc).value if low is not None else None
                high = normalise(high, unit, code=loinc).value if high is not None else None
            except UnitsError:
                return None, None
        return low, high


# --------------------------------------------------------------------------------------------
# field helpers


def _check_msh(msh: str) -> str | None:
    """Why the MSH segment cannot be parsed, or ``None``."""
    if not msh.startswith("MSH"):
        return "no MSH segment: a message must start with MSH"
    if len(msh) < 5:
        return f"MSH segment {msh!r} is truncated: no field separator and encoding characters"
    field_sep = msh[3]
    if field_sep.isalnum() or field_sep.isspace():
        return f"MSH-1 field separator {field_sep!r} must be a punctuation character such as '|'"
    end = msh.find(field_sep, 4)
    encoding = msh[4:end] if end >= 0 else msh[4:]
    problems = []
    if end < 0:
        problems.append("MSH-2 is not followed by a field separator")
    if len(encoding) not in (4, 5):
        problems.append(f"MSH-2 has {len(encoding)} characters, HL7 v2 needs 4 ('^~\\&')")
    if any(c.isalnum() or c.isspace() for c in encoding):
        problems.append("MSH-2 holds letters, digits or white space")
    if len(set(encoding + field_sep)) != len(encoding) + 1:
        problems.append("MSH-1/MSH-2 repeat a separator")
    if problems:
        return f"broken encoding characters {msh[3 : 4 + len(encoding) + 1]!r}: " + "; ".join(
            problems
        )
    return None


def _source_name(candidates: Sequence[str]) -> str:
    for candidate in candidates:
        if candidate.strip():
            return f"{DEFAULT_SOURCE}:{candidate.strip()}"
    return DEFAULT_SOURCE


def _urn_part(text: str) -> str:
    return quote(text, safe="-._~!$&'()*+,;=@:")


def _authority_system(namespace: str, universal: str, universal_type: str) -> str | None:
    """Identifier system from an assigning authority (HD): an OID, UUID, URI or a name."""
    kind = universal_type.upper()
    if universal:
        if kind == "ISO" or re.fullmatch(r"[0-2](?:\.\d+)+", universal):
            return f"urn:oid:{universal}"
        if kind == "UUID":
            return f"urn:uuid:{universal.lower()}"
        if kind in ("URI", "URL") or "://" in universal or universal.startswith("urn:"):
            return universal
        return f"urn:medtwin:hl7v2:authority:{_urn_part(universal)}"
    if namespace:
        return f"urn:medtwin:hl7v2:authority:{_urn_part(namespace)}"
    return None


def _coding_system(name: str, source: str) -> str:
    """Canonical system URI for an HL7 v2 coding-system name (table 0396)."""
    from medtwin.record.codes import system_alias

    name = name.strip()
    if not name:
        return f"urn:medtwin:hl7v2:{_urn_part(source)}:local"
    alias = system_alias(name)
    if alias != name:
        return alias
    table = re.fullmatch(r"HL7(\d{4})", name.upper())
    if table:
        return f"http://terminology.hl7.org/CodeSystem/v2-{table.group(1)}"
    if "://" in name or name.startswith(("urn:", "URN:")):
        return name
    return f"urn:medtwin:hl7v2:{_urn_part(source)}:{_urn_part(name)}"


def _coded(segment: _Segment, number: int, system_of: Any) -> Coding | None:
    """A CWE/CE field as one Coding, preferring LOINC in the alternate triplet."""
    from medtwin.record.codes import LOINC

    code, text, system = (segment.get(number, i) for i in (1, 2, 3))
    alt_code, alt_text, alt_system = (segment.get(number, i) for i in (4, 5, 6))
    primary = system_of(system) if code else None
    alternate = system_of(alt_system) if alt_code else None
    if code and primary == LOINC:
        return Coding(LOINC, code, text or alt_text or None)
    if alt_code and alternate == LOINC:
        return Coding(LOINC, alt_code, alt_text or text or None)
    if code and primary is not None:
        return Coding(primary, code, text or None)
    if alt_code and alternate is not None:
        return Coding(alternate, alt_code, alt_text or None)
    return None


def _order_key(obr: _Segment) -> str | None:
    """The order an OBX belongs to: OBR-3 filler order number, else OBR-2 placer's."""
    for number, prefix in ((3, ""), (2, "placer:")):
        entity = obr.get(number, 1)
        if entity:
            namespace = obr.get(number, 2) or obr.get(number, 3)
            return f"{prefix}{entity}@{namespace}" if namespace else f"{prefix}{entity}"
    return None


def _number(text: str, field_name: str, value_type: str) -> float:
    if not _NUMBER.fullmatch(text.strip()):
        raise _Problem(
            field_name,
            f"{field_name} value {text!r} is not a number (OBX-2 value type {value_type})",
        )
    return float(text)


def _unit_text(obx: _Segment) -> str:
    return obx.get(6, 1) or obx.get(6, 2)


def _partial_date(text: str) -> str | None:
    """``YYYY[MM[DD]]...`` as ``YYYY[-MM[-DD]]`` (time and zone ignored), else ``None``."""
    match = re.match(r"(\d{4})(\d{2})?(\d{2})?", text.strip())
    if match is None:
        return None
    try:
        parse_hl7_ts(text.strip()[: len(match.group(0))])
    except InvalidTimeError:
        return None
    rest = text.strip()[len(match.group(0)) :]
    if rest and not re.fullmatch(r"\d{0,6}(?:\.\d{1,4})?(?:[+-]\d{4})?", rest):
        return None
    return "-".join(part for part in match.groups() if part)


def _name(pid: _Segment) -> tuple[str | None, tuple[str, ...]]:
    """PID-5: the legal name (type L) if given, else the first name with text."""
    best: int | None = None
    for rep in range(1, pid.repetitions(5) + 1):
        if not (pid.get(5, 1, rep=rep) or pid.get(5, 2, rep=rep)):
            continue
        if best is None or (
            pid.get(5, 7, rep=rep).upper() == "L" and pid.get(5, 7, rep=best) != "L"
        ):
            best = rep
    if best is None:
        return None, ()
    family = pid.get(5, 1, rep=best) or None
    given = tuple(part for part in (pid.get(5, 2, rep=best), pid.get(5, 3, rep=best)) if part)
    return family, given


def _telecom(pid: _Segment, number: int) -> tuple[str, ...]:
    """XTN repetitions as text: the e-mail, the number as sent, or +country area local xext."""
    out: list[str] = []
    for rep in range(1, pid.repetitions(number) + 1):
        email = pid.get(number, 4, rep=rep)
        written = pid.get(number, 1, rep=rep) or pid.get(number, 12, rep=rep)
        country, area, local, extension = (pid.get(number, i, rep=rep) for i in (5, 6, 7, 8))
        if written:
            out.append(written)
        elif local:
            parts = [f"+{country}" if country else "", area, local]
            text = " ".join(p for p in parts if p)
            out.append(f"{text} x{extension}" if extension else text)
        if email:
            out.append(email)
    return tuple(out)
