"""The CSV import from a city's existing booking system (公共施設予約システム):
members keyed by their external number, reservations keyed by their external
id. Pure parsers and validators: text in, good rows and row errors out.

A row is either good (every field valid) or reported, with its line number,
once for each problem it has; nothing is half-parsed. A file that cannot be
read as CSV at all, lacks a required column or has a My Number column gives
file-level errors (line 1, or the line where the CSV broke) and no rows.
An id that appears on several rows makes each of those rows an error: the
file does not say which one is right. Applying the good rows (idempotently,
keyed by the external ids) is the database layer's work.

The columns are documented in docs/booking.md.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

from foundation.logs import twelve_digit_spans
from foundation.privacy import key_words

RESERVATION_COLUMNS = ("external_id", "room_id", "starts_at", "ends_at", "member_number", "status")
MEMBER_COLUMNS = ("external_number", "display_name", "email", "status")
MEMBER_OPTIONAL_COLUMNS = ("language",)
DEFAULT_LANGUAGE = "ja"
MAX_ID_LENGTH = 64
MAX_NAME_LENGTH = 100
MAX_EMAIL_LENGTH = 254

ImportErrorCode = Literal[
    "unreadable",  # not CSV (e.g. an unterminated quote)
    "empty_file",  # no header line
    "missing_column",
    "duplicate_column",
    "my_number_column",  # a column that names the My Number: the whole file is refused
    "field_count",  # a row with more or fewer fields than the header
    "missing_value",
    "bad_value",
    "bad_time",
    "end_not_after_start",
    "unknown_status",
    "duplicate_id",
    "looks_like_my_number",  # a 12-digit number where a member is identified
]
ReservationStatus = Literal["booked", "cancelled"]
ImportedMemberStatus = Literal["active", "suspended"]
_MY_NUMBER_HEADERS = frozenset({"mynumber", "kojinbango", "マイナンバー", "個人番号"})
_ROOM_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TIME = re.compile(
    r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})[T ](\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)


@dataclass(frozen=True)
class RowError:
    line: int  # 1 is the header line
    code: ImportErrorCode
    message: str
    column: str | None = None


@dataclass(frozen=True)
class ImportedReservation:
    line: int
    external_id: str
    room_id: str
    starts_at: datetime
    ends_at: datetime
    member_number: str
    status: ReservationStatus


@dataclass(frozen=True)
class ImportedMember:
    line: int
    external_number: str
    display_name: str
    email: str
    language: str
    status: ImportedMemberStatus


Row = TypeVar("Row")
_Record = tuple[int, dict[str, str]]


def decode_csv(data: bytes) -> str:
    """The text of an exported file: UTF-8 (with or without the BOM Excel
    writes), else Windows-31J (cp932), the Shift_JIS most Japanese systems
    export."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932")
    except UnicodeDecodeError as exc:
        raise ValueError("the file is neither UTF-8 nor Shift_JIS (cp932) text") from exc


def _header_problems(header: list[str], required: tuple[str, ...]) -> list[RowError]:
    problems = [
        RowError(1, "my_number_column", "A My Number column is not allowed; remove it.", name)
        for name in header
        if name in _MY_NUMBER_HEADERS or "".join(key_words(name)) in _MY_NUMBER_HEADERS
    ]
    problems += [
        RowError(1, "duplicate_column", f"The column {name!r} appears more than once.", name)
        for name in sorted({n for n in header if header.count(n) > 1})
    ]
    problems += [
        RowError(1, "missing_column", f"The required column {name!r} is missing.", name)
        for name in required
        if name not in header
    ]
    return problems


def _read_records(text: str, required: tuple[str, ...]) -> tuple[list[_Record], list[RowError]]:
    """The data rows as (first line, {column: stripped value}), or file-level
    errors. Column names are matched trimmed and case-insensitively; columns
    this format does not know are ignored; blank lines are skipped."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        if not any(header):
            return [], [RowError(1, "empty_file", "The file has no header line.")]
        problems = _header_problems(header, required)
        if problems:
            return [], problems
        records: list[_Record] = []
        errors: list[RowError] = []
        last_line = reader.line_num
        for fields in reader:
            line, last_line = last_line + 1, reader.line_num
            if not fields:
                continue
            if len(fields) != len(header):
                message = f"The row has {len(fields)} fields; the header has {len(header)}."
                errors.append(RowError(line, "field_count", message))
                continue
            records.append((line, {n: v.strip() for n, v in zip(header, fields, strict=True)}))
    except csv.Error as exc:
        message = f"The file is not valid CSV here ({exc}); nothing was imported."
        return [], [RowError(reader.line_num, "unreadable", message)]
    return records, errors


class _RowCheck:
    """Collects the problems of one row while its fields are read."""

    def __init__(self, line: int, values: Mapping[str, str]) -> None:
        self.line = line
        self.values = values
        self.errors: list[RowError] = []

    def fail(self, code: ImportErrorCode, column: str, message: str) -> None:
        self.errors.append(RowError(self.line, code, message, column))

    def required(self, column: str) -> str:
        value = self.values.get(column, "")
        if not value:
            self.fail("missing_value", column, f"The column {column!r} is empty.")
        return value

    def identifier(self, column: str, *, member: bool = False) -> str:
        value = self.required(column)
        if len(value) > MAX_ID_LENGTH or _CONTROL.search(value):
            self.fail(
                "bad_value", column, f"{column!r} must be at most {MAX_ID_LENGTH} characters."
            )
        elif member and twelve_digit_spans(value):
            # A 12-digit number cannot be told apart from a My Number.
            self.fail(
                "looks_like_my_number", column,
                f"{column!r} holds a 12-digit number; a My Number must never be imported.",
            )  # fmt: skip
        return value

    def choice(self, column: str, allowed: tuple[str, ...]) -> str:
        value = self.required(column).lower()
        if value and value not in allowed:
            self.fail(
                "unknown_status", column,
                f"{column!r} is {value!r}; expected one of {', '.join(allowed)}.",
            )  # fmt: skip
        return value

    def time(self, column: str, zone: tzinfo) -> datetime | None:
        value = self.required(column)
        if not value:
            return None
        try:
            return parse_time(value, zone)
        except ValueError:
            self.fail(
                "bad_time", column,
                f"{column!r} is {value!r}; expected a date and time like 2026-04-06 09:00.",
            )  # fmt: skip
            return None


def parse_time(value: str, zone: tzinfo) -> datetime:
    """``YYYY-MM-DD HH:MM[:SS]`` (or ``/`` between the date's parts, ``T``
    before the time, months, days and hours without a leading zero), with an
    optional ``Z`` or ``±HH:MM`` offset; without one, the time is local to
    ``zone``."""
    match = _TIME.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a date and time")
    year, month, day, hour, minute = (int(match[i]) for i in range(1, 6))
    second = int(match[6] or 0)
    offset = match[7]
    moment_zone = zone if offset is None else _offset_zone(offset)
    return datetime(year, month, day, hour, minute, second, tzinfo=moment_zone)


def _offset_zone(offset: str) -> tzinfo:
    if offset == "Z":
        return UTC
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError(f"{offset!r} is not a UTC offset")
    sign = -1 if offset[0] == "-" else 1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _refuse_duplicates(
    records: list[_Record], key: str, parse: Callable[[_RowCheck], Row | None]
) -> tuple[list[Row], list[RowError]]:
    """Parse every record; a key on several rows makes each of them an error."""
    lines_of: dict[str, list[int]] = {}
    for line, values in records:
        if values.get(key):
            lines_of.setdefault(values[key], []).append(line)
    rows: list[Row] = []
    errors: list[RowError] = []
    for line, values in records:
        check = _RowCheck(line, values)
        row = parse(check)
        others = [n for n in lines_of.get(values.get(key, ""), []) if n != line]
        if others:
            listed = ", ".join(str(n) for n in others)
            check.fail("duplicate_id", key, f"{key!r} is also on line(s) {listed}.")
        if check.errors or row is None:
            errors.extend(check.errors)
        else:
            rows.append(row)
    return rows, errors


def parse_reservations_csv(
    text: str, *, timezone_name: str = "Asia/Tokyo"
) -> tuple[list[ImportedReservation], list[RowError]]:
    """Reservations of the external system; times without an offset are local
    to ``timezone_name`` (the facility's time zone)."""
    zone = ZoneInfo(timezone_name)

    def parse(check: _RowCheck) -> ImportedReservation | None:
        external_id = check.identifier("external_id")
        room_id = check.required("room_id")
        if room_id and not _ROOM_ID.match(room_id):
            check.fail("bad_value", "room_id", f"'room_id' {room_id!r} is not a room id.")
        starts_at, ends_at = check.time("starts_at", zone), check.time("ends_at", zone)
        if starts_at and ends_at and ends_at <= starts_at:
            check.fail("end_not_after_start", "ends_at", "The end is not after the start.")
        member_number = check.identifier("member_number", member=True)
        status = check.choice("status", ("booked", "cancelled"))
        if check.errors or starts_at is None or ends_at is None:
            return None
        return ImportedReservation(
            check.line, external_id, room_id, starts_at, ends_at, member_number,
            "cancelled" if status == "cancelled" else "booked",
        )  # fmt: skip

    records, errors = _read_records(text, RESERVATION_COLUMNS)
    rows, row_errors = _refuse_duplicates(records, "external_id", parse)
    return rows, sorted(errors + row_errors, key=lambda e: e.line)


def _parse_member(check: _RowCheck) -> ImportedMember | None:
    external_number = check.identifier("external_number", member=True)
    display_name = check.required("display_name")
    if len(display_name) > MAX_NAME_LENGTH or _CONTROL.search(display_name):
        check.fail(
            "bad_value",
            "display_name",
            f"The name must be at most {MAX_NAME_LENGTH} characters on one line.",
        )
    elif twelve_digit_spans(display_name):
        check.fail("looks_like_my_number", "display_name", "The name holds a 12-digit number.")
    email = check.required("email")
    if email and (len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email)):
        check.fail("bad_value", "email", f"{email!r} is not an e-mail address.")
    language = check.values.get("language") or DEFAULT_LANGUAGE
    if not _LANGUAGE.match(language):
        check.fail("bad_value", "language", f"{language!r} is not a language tag such as ja or en.")
    status = check.choice("status", ("active", "suspended"))
    if check.errors:
        return None
    return ImportedMember(
        check.line, external_number, display_name, email, language,
        "suspended" if status == "suspended" else "active",
    )  # fmt: skip


def parse_members_csv(text: str) -> tuple[list[ImportedMember], list[RowError]]:
    """Members of the external system (no My Number, ever)."""
    records, errors = _read_records(text, MEMBER_COLUMNS)
    rows, row_errors = _refuse_duplicates(records, "external_number", _parse_member)
    return rows, sorted(errors + row_errors, key=lambda e: e.line)
