"""Time handling for the patient record.

medtwin stores every instant as a timezone-aware UTC :class:`datetime.datetime`.
Sources speak many dialects: FHIR ``dateTime`` values with an offset, FHIR dates
with only a day (or a month, or a year), HL7 v2 ``TS`` values with no zone at all.
A naive source timestamp is read in a declared source time zone (``--tz``,
default UTC) and the original text is always kept beside the normalised value.

Examples
--------
>>> parse_fhir_datetime("2021-03-04T10:20:30-05:00").instant.isoformat()
'2021-03-04T15:20:30+00:00'
>>> parse_fhir_datetime("2021-03", default_tz="UTC").precision
'month'
>>> parse_hl7_ts("20210304102030", default_tz="America/New_York").instant.isoformat()
'2021-03-04T15:20:30+00:00'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "InvalidTimeError",
    "ParsedTime",
    "format_utc",
    "get_zone",
    "parse_fhir_datetime",
    "parse_hl7_ts",
    "parse_utc",
    "utc_now",
]


class InvalidTimeError(ValueError):
    """A date or time string that cannot be read; the message names the text and the rule."""


@dataclass(frozen=True, slots=True)
class ParsedTime:
    """A source time normalised to UTC, with the text it came from.

    Attributes
    ----------
    instant
        Start of the period the text denotes, timezone-aware UTC.
    end
        End (exclusive) of that period for partial dates (a day, month or year);
        ``None`` for a full timestamp.
    precision
        One of ``year``, ``month``, ``day``, ``second``.
    original
        The text exactly as the source wrote it.
    zone_assumed
        True when the text carried no offset and the declared source zone was applied.
    """

    instant: datetime
    end: datetime | None
    precision: str
    original: str
    zone_assumed: bool


_FHIR_DT = re.compile(
    r"(?P<y>[0-9]{4})(?:-(?P<m>[0-9]{2})(?:-(?P<d>[0-9]{2})"
    r"(?:T(?P<H>[0-9]{2}):(?P<M>[0-9]{2}):(?P<S>[0-9]{2})(?P<f>\.[0-9]+)?"
    r"(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?"
)


@lru_cache(maxsize=64)
def get_zone(name: str) -> tzinfo:
    """Return the IANA time zone ``name`` (``UTC`` and offsets like ``+02:00`` allowed).

    Raises
    ------
    InvalidTimeError
        If the zone is unknown; the message names it.
    """
    if name.upper() in ("UTC", "Z"):
        return UTC
    match = re.fullmatch(r"([+-])([0-9]{2}):?([0-9]{2})", name)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidTimeError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/London' or 'UTC'"
        ) from exc


def _offset(text: str) -> tzinfo:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 14 or minutes > 59:
        raise InvalidTimeError(f"time-zone offset {text!r} is out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _add_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    return date(day.year + year, month + 1, 1)


def parse_fhir_datetime(
    text: str, *, default_tz: str = "UTC", require_zone: bool = True
) -> ParsedTime:
    """Parse a FHIR R4 ``date``, ``dateTime`` or ``instant``.

    Parameters
    ----------
    text
        The value as written, e.g. ``2019``, ``2019-05``, ``2019-05-01``,
        ``2019-05-01T10:00:00+02:00``.
    default_tz
        Zone in which a partial date (year, month or day) is read.
    require_zone
        FHIR R4 requires an offset when a time is given; when ``True`` (the default)
        a time without an offset is an error, otherwise it is read in ``default_tz``.

    References
    ----------
    HL7 FHIR R4, section 2.24.0.1 "Primitive Types": ``dateTime`` regular expression
    and the rule "If hours and minutes are specified, a time zone SHALL be populated".
    """
    match = _FHIR_DT.fullmatch(text)
    if match is not None and match["tz"] is not None and match["S"] != "60":
        # fast path: a full timestamp with an offset (the common case); C parser
        try:
            value = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InvalidTimeError(f"{text!r} is not a real date or time: {exc}") from exc
        return ParsedTime(value.astimezone(UTC), None, "second", text, False)
    if match is None:
        raise InvalidTimeError(
            f"{text!r} is not a FHIR date/dateTime (expected YYYY-MM-DDThh:mm:ss+zz:zz)"
        )
    year = int(match["y"])
    try:
        if match["H"] is None:
            zone = get_zone(default_tz)
            if match["m"] is None:
                start_day, precision = date(year, 1, 1), "year"
                end_day = date(year + 1, 1, 1)
            elif match["d"] is None:
                start_day, precision = date(year, int(match["m"]), 1), "month"
                end_day = _add_months(start_day, 1)
            else:
                start_day, precision = date(year, int(match["m"]), int(match["d"])), "day"
                end_day = start_day + timedelta(days=1)
            start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=zone)
            end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=zone)
            return ParsedTime(start.astimezone(UTC), end.astimezone(UTC), precision, text, True)
        assumed = match["tz"] is None
        if assumed and require_zone:
            raise InvalidTimeError(
                f"{text!r} has a time but no time-zone offset (FHIR R4 requires one, e.g. '+00:00')"
            )
        zone = get_zone(default_tz) if assumed else _offset(match["tz"])
        fraction = match["f"]
        micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
        second = int(match["S"])
        # FHIR allows a leap second "60"; represent it as the last representable microsecond.
        if second == 60:
            second, micro = 59, 999999
        value = datetime(
            year,
            int(match["m"]),
            int(match["d"]),
            int(match["H"]),
            int(match["M"]),
            second,
            micro,
            tzinfo=zone,
        )
    except ValueError as exc:
        raise InvalidTimeError(f"{text!r} is not a real date or time: {exc}") from exc
    return ParsedTime(value.astimezone(UTC), None, "second", text, assumed)


_HL7_TS = re.compile(
    r"(?P<y>[0-9]{4})(?P<m>[0-9]{2})?(?P<d>[0-9]{2})?(?P<H>[0-9]{2})?(?P<M>[0-9]{2})?"
    r"(?P<S>[0-9]{2})?(?P<f>\.[0-9]{1,4})?(?P<tz>[+-][0-9]{4})?"
)


def parse_hl7_ts(text: str, *, default_tz: str = "UTC") -> ParsedTime:
    """Parse an HL7 v2 ``TS``/``DTM`` value such as ``20210304102030-0500``.

    A value without an offset is read in ``default_tz`` (the declared source zone).

    References
    ----------
    HL7 v2.5.1, chapter 2A.74 "TS - time stamp" and 2A.22 "DTM - date/time":
    ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``.
    """
    text = text.strip()
    match = _HL7_TS.fullmatch(text)
    if match is None:
        raise InvalidTimeError(
            f"{text!r} is not an HL7 v2 timestamp (expected YYYYMMDDHHMMSS[+/-ZZZZ])"
        )
    assumed = match["tz"] is None
    if assumed:
        zone = get_zone(default_tz)
    else:
        tz_text = match["tz"]
        zone = _offset(f"{tz_text[0]}{tz_text[1:3]}:{tz_text[3:5]}")
    try:
        year = int(match["y"])
        month = int(match["m"] or 1)
        day = int(match["d"] or 1)
        if match["H"] is None:
            precision = "day" if match["d"] else ("month" if match["m"] else "year")
            start = datetime(year, month, day, tzinfo=zone)
            if precision == "day":
                end = start + timedelta(days=1)
            elif precision == "month":
                nxt = _add_months(date(year, month, 1), 1)
                end = datetime(nxt.year, nxt.month, 1, tzinfo=zone)
            else:
                end = datetime(year + 1, 1, 1, tzinfo=zone)
            return ParsedTime(start.astimezone(UTC), end.astimezone(UTC), precision, text, assumed)
        fraction = match["f"]
        micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
        value = datetime(
            year,
            month,
            day,
            int(match["H"]),
            int(match["M"] or 0),
            int(match["S"] or 0),
            micro,
            tzinfo=zone,
        )
    except ValueError as exc:
        raise InvalidTimeError(f"{text!r} is not a real date or time: {exc}") from exc
    return ParsedTime(value.astimezone(UTC), None, "second", text, assumed)


def utc_now() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC)


def format_utc(value: datetime) -> str:
    """Format an aware datetime as fixed-width UTC ISO 8601 text (sorts lexicographically).

    >>> format_utc(datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC))
    '2020-01-02T03:04:05.000000+00:00'
    """
    if value.tzinfo is None:
        raise InvalidTimeError(f"naive datetime {value!r}: medtwin stores only aware UTC times")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_utc(text: str) -> datetime:
    """Read a value written by :func:`format_utc` (or any ISO 8601 text with an offset)."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise InvalidTimeError(f"{text!r} has no time-zone offset")
    return value.astimezone(UTC)
