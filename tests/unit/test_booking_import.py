"""The CSV import from an existing booking system (central/reservations/imports.py)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import get_args
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.reservations.imports import (
    ImportedMember,
    ImportedReservation,
    ImportErrorCode,
    RowError,
    decode_csv,
    parse_members_csv,
    parse_reservations_csv,
    parse_time,
)

JST = ZoneInfo("Asia/Tokyo")
HEADER = "external_id,room_id,starts_at,ends_at,member_number,status\n"
GOOD = "R-1,hall-a,2026-04-06 09:00,2026-04-06 11:00,M-0001,booked\n"
MEMBERS = "external_number,display_name,email,language,status\n"


def codes(errors: list[RowError]) -> list[tuple[int, str]]:
    return [(e.line, e.code) for e in errors]


def test_import_reservations_reads_good_rows() -> None:
    text = HEADER + GOOD + "R-2,hall-b,2026/4/7 9:30,2026/4/7 10:30,M-0002,Cancelled\n"
    rows, errors = parse_reservations_csv(text)
    assert errors == []
    assert rows == [
        ImportedReservation(2, "R-1", "hall-a", datetime(2026, 4, 6, 9, tzinfo=JST),
                            datetime(2026, 4, 6, 11, tzinfo=JST), "M-0001", "booked"),
        ImportedReservation(3, "R-2", "hall-b", datetime(2026, 4, 7, 9, 30, tzinfo=JST),
                            datetime(2026, 4, 7, 10, 30, tzinfo=JST), "M-0002", "cancelled"),
    ]  # fmt: skip
    assert rows[0].starts_at.astimezone(UTC) == datetime(2026, 4, 6, 0, 0, tzinfo=UTC)


def test_import_reservations_report_each_bad_row_with_its_line() -> None:
    text = (
        HEADER
        + GOOD
        + "R-2,hall-a,tomorrow,2026-04-06 11:00,M-1,booked\n"
        + "R-3,hall-a,2026-04-06 11:00,2026-04-06 10:00,M-1,booked\n"
        + "R-4,hall-a,2026-04-06 10:00,2026-04-06 10:00,M-1,booked\n"
        + "R-5,hall-a,2026-04-06 10:00,2026-04-06 11:00,M-1,reserved\n"
        + "R-6,hall-a,2026-04-06 10:00,2026-04-06 11:00,,booked\n"
        + "R-7,hall-a,2026-04-06 10:00\n"
        + "R-8,Hall A,2026-02-30 10:00,2026-04-06 11:00,M-1,booked\n"
    )
    rows, errors = parse_reservations_csv(text)
    assert [r.external_id for r in rows] == ["R-1"]
    assert codes(errors) == [
        (3, "bad_time"), (4, "end_not_after_start"), (5, "end_not_after_start"),
        (6, "unknown_status"), (7, "missing_value"), (8, "field_count"),
        (9, "bad_value"), (9, "bad_time"),
    ]  # fmt: skip
    assert errors[0].column == "starts_at" and "2026-04-06 09:00" in errors[0].message
    assert errors[3].message == "'status' is 'reserved'; expected one of booked, cancelled."
    assert errors[4].column == "member_number"


def test_import_reservations_refuse_every_row_of_a_duplicate_id() -> None:
    text = HEADER + GOOD + GOOD.replace("M-0001", "M-0002") + GOOD.replace("R-1", "R-9")
    rows, errors = parse_reservations_csv(text)
    assert [r.external_id for r in rows] == ["R-9"]
    assert codes(errors) == [(2, "duplicate_id"), (3, "duplicate_id")]
    assert errors[0].message == "'external_id' is also on line(s) 3."


def test_import_reservations_refuse_a_missing_column_and_import_nothing() -> None:
    text = HEADER.replace(",status", "") + GOOD.removesuffix(",booked\n") + "\n"
    rows, errors = parse_reservations_csv(text)
    assert rows == []
    assert errors == [
        RowError(1, "missing_column", "The required column 'status' is missing.", "status")
    ]


def test_import_header_is_trimmed_case_insensitive_and_may_have_more_columns() -> None:
    header = "\ufeffStatus, External_ID ,room_id,starts_at,ends_at,member_number,note\r\n"
    row = "booked,R-1,hall-a,2026-04-06T09:00:00+09:00,2026-04-06T11:00Z,M-1,2 名で利用\r\n"
    rows, errors = parse_reservations_csv(header + "\r\n" + row)
    assert errors == []
    assert rows[0].line == 3
    assert rows[0].starts_at == datetime(2026, 4, 6, 0, 0, tzinfo=UTC)
    assert rows[0].ends_at == datetime(2026, 4, 6, 11, 0, tzinfo=UTC)


def test_import_line_numbers_count_quoted_line_breaks() -> None:
    text = HEADER + '"R-1\nsecond line",hall-a,2026-04-06 09:00,2026-04-06 10:00,M-1,booked\n'
    text += "R-2,hall-a,2026-04-06 09:00,x,M-1,booked\n"
    _, errors = parse_reservations_csv(text)
    assert codes(errors) == [(2, "bad_value"), (4, "bad_time")]


def test_import_refuses_unreadable_or_empty_files() -> None:
    rows, errors = parse_reservations_csv(HEADER + GOOD + 'R-2,"hall-a"x,a,b,c,booked\n')
    assert rows == []
    assert codes(errors) == [(3, "unreadable")]
    assert codes(parse_reservations_csv("")[1]) == [(1, "empty_file")]
    assert codes(parse_reservations_csv("\n\n")[1]) == [(1, "empty_file")]


def test_import_refuses_duplicate_and_my_number_columns() -> None:
    rows, errors = parse_members_csv(MEMBERS.replace("status", "status,マイナンバー,status"))
    assert rows == []
    assert {e.code for e in errors} == {"my_number_column", "duplicate_column"}
    _, errors = parse_members_csv(MEMBERS.replace("language", "My_Number"))
    assert codes(errors) == [(1, "my_number_column")]


def test_import_reservations_times_without_offset_use_the_facility_zone() -> None:
    rows, _ = parse_reservations_csv(HEADER + GOOD, timezone_name="Europe/Berlin")
    assert rows[0].starts_at.astimezone(UTC) == datetime(2026, 4, 6, 7, 0, tzinfo=UTC)


def test_import_time_formats() -> None:
    assert parse_time("2026-04-06 09:00", JST) == datetime(2026, 4, 6, 9, tzinfo=JST)
    assert parse_time("2026/4/6 9:05:30", JST) == datetime(2026, 4, 6, 9, 5, 30, tzinfo=JST)
    assert parse_time("2026-04-06T09:00-0330", JST) == datetime(
        2026, 4, 6, 9, tzinfo=timezone(-timedelta(hours=3, minutes=30))
    )
    bad_times = (
        "2026-04-06",
        "09:00",
        "2026-13-01 09:00",
        "2026-04-06 24:00",
        "2026-04-06 09:00+25:00",
        "2026-04-06 09:00 JST",
        "令和8年4月6日 9:00",
    )
    for bad in bad_times:
        with pytest.raises(ValueError):
            parse_time(bad, JST)


def test_import_members_reads_good_rows() -> None:
    text = (
        MEMBERS
        + "M-0001,山田 花子,hanako@example.jp,ja,active\n"
        + "M-0002,John Smith,john@example.com,,Suspended\n"
    )
    rows, errors = parse_members_csv(text)
    assert errors == []
    assert rows == [
        ImportedMember(2, "M-0001", "山田 花子", "hanako@example.jp", "ja", "active"),
        ImportedMember(3, "M-0002", "John Smith", "john@example.com", "ja", "suspended"),
    ]


def test_import_members_language_column_is_optional() -> None:
    text = "external_number,display_name,email,status\nM-1,Ann,ann@example.org,active\n"
    rows, errors = parse_members_csv(text)
    assert errors == [] and rows[0].language == "ja"


def test_import_members_report_each_bad_row() -> None:
    text = (
        MEMBERS
        + "M-1,山田 花子,not-an-address,ja,active\n"
        + "M-2,,b@example.jp,ja,active\n"
        + "M-3,Bob,b@example.jp,日本語,active\n"
        + "M-4,Bob,b@example.jp,en,deleted\n"
        + "1234 5678 9012,Bob,b@example.jp,en,active\n"
        + "M-6,Bob 123456789012,b@example.jp,en,active\n"
        + "M-7,"
        + "長" * 101
        + ",b@example.jp,en,active\n"
        + "M-1,山田 花子,hanako@example.jp,ja,active\n"
        + "M-9,Good,good@example.jp,en,active\n"
    )
    rows, errors = parse_members_csv(text)
    assert [r.external_number for r in rows] == ["M-9"]
    assert codes(errors) == [
        (2, "bad_value"), (2, "duplicate_id"), (3, "missing_value"), (4, "bad_value"),
        (5, "unknown_status"), (6, "looks_like_my_number"), (7, "looks_like_my_number"),
        (8, "bad_value"), (9, "duplicate_id"),
    ]  # fmt: skip


def test_import_reservations_refuse_a_member_number_that_looks_like_my_number() -> None:
    _, errors = parse_reservations_csv(HEADER + GOOD.replace("M-0001", "123456789012"))
    assert codes(errors) == [(2, "looks_like_my_number")]


def test_import_refuses_overlong_ids() -> None:
    _, errors = parse_reservations_csv(HEADER + GOOD.replace("R-1", "R" * 65))
    assert codes(errors) == [(2, "bad_value")]


def test_import_error_codes_are_all_used_in_these_tests() -> None:
    tests_above = Path(__file__).read_text("utf-8").split("def test_import_error_codes")[0]
    assert [c for c in get_args(ImportErrorCode) if f'"{c}"' not in tests_above] == []


def test_import_decodes_utf8_with_bom_and_shift_jis() -> None:
    text = MEMBERS + "M-1,山田 花子,hanako@example.jp,ja,active\n"
    assert decode_csv(b"\xef\xbb\xbf" + text.encode()) == text
    assert decode_csv(text.encode("cp932")) == text
    with pytest.raises(ValueError, match="neither"):
        decode_csv(b"external_number\n\x81 ")


ROWS = st.lists(
    st.tuples(
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
        st.sampled_from(["hall-a", "Hall A", ""]),
        st.sampled_from(["2026-04-06 09:00", "2026/4/6 10:00", "bad", ""]),
        st.sampled_from(["2026-04-06 10:00", "2026-04-06 09:00", ""]),
        st.sampled_from(["M-1", "123456789012", ""]),
        st.sampled_from(["booked", "cancelled", "gone", ""]),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(ROWS)
def test_import_every_row_is_either_good_or_reported(rows: list[tuple[str, ...]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)  # CRLF: a CR inside a field gets quoted
    writer.writerow(HEADER.strip().split(","))
    writer.writerows(rows)
    good, errors = parse_reservations_csv(out.getvalue())
    reported = {e.line for e in errors}
    assert not reported & {r.line for r in good}
    assert len(good) + len(reported) == len(rows)
    assert len({r.external_id for r in good}) == len(good)
    for row in good:
        assert row.ends_at > row.starts_at and row.status in ("booked", "cancelled")


def test_import_every_error_code_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "booking.md").read_text("utf-8")
    assert [c for c in get_args(ImportErrorCode) if f"| `{c}` |" not in docs] == []
