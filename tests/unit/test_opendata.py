"""The open data's pure parts: aggregation, the suppression rule (no
published count below the threshold, nothing withheld recomputable from
what is published), the facility list's columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.config import parse_config
from central.errors import CentralConfigError
from central.opendata import aggregate, datasets
from central.opendata.aggregate import BookingFact, IssuedItem
from central.opendata.source import Facility, Room
from central.opendata.suppress import suppress_row

pytestmark = pytest.mark.unit
START = datetime(2025, 3, 1, tzinfo=UTC)


def _use_row(b_c_n: tuple[int, int], contributors: int, k: int) -> dict[str, float | None]:
    checked_in, no_shows = b_c_n
    return suppress_row(
        {"bookings": checked_in + no_shows, "checked_in": checked_in, "no_shows": no_shows},
        min_count=k, contributors=contributors, identities=(datasets.USE_IDENTITY,),
        figures={"hours_booked": 2.0 * (checked_in + no_shows), "hours_used": 2.0 * checked_in},
        follows=datasets.USE_FOLLOWS,
    )  # fmt: skip


COUNTS = ("bookings", "checked_in", "no_shows")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40), st.integers(0, 60), st.integers(4, 15))
def test_opendata_suppression_publishes_no_small_count(
    checked_in: int, no_shows: int, contributors: int, k: int
) -> None:
    row = _use_row((checked_in, no_shows), contributors, k)
    for name in COUNTS:
        value = row[name]
        assert value is None or value == 0 or value >= k
    if contributors < k:
        assert all(row[name] is None for name in (*COUNTS, "hours_booked", "hours_used"))
    assert (row["hours_booked"] is None) == (row["bookings"] is None)
    assert (row["hours_used"] is None) == (row["checked_in"] is None)
    if row["no_shows"] is None:  # the no-show hours are not booked - used
        assert row["hours_booked"] is None or row["hours_used"] is None


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 30), st.integers(0, 30), st.integers(4, 12))
def test_opendata_suppression_withheld_cells_cannot_be_recomputed(
    checked_in: int, no_shows: int, k: int
) -> None:
    """An attacker who knows the rule, the number of people and every
    published cell enumerates all rows that publish the same: each withheld
    cell keeps at least two possible values."""
    contributors = 100  # the strongest attacker knows it; enough people for counts to show
    published = _use_row((checked_in, no_shows), contributors, k)
    withheld = [n for n in COUNTS if published[n] is None]
    if not withheld:
        return
    candidates: dict[str, set[int]] = {n: set() for n in withheld}
    total = published["bookings"]
    if total is not None:  # c + n is known: only its splits
        worlds = [(c, int(total) - c) for c in range(int(total) + 1)]
    else:
        worlds = [(c, n) for c in range(3 * k + 3) for n in range(3 * k + 3)]
    for c, n in worlds:
        if _use_row((c, n), contributors, k) == published:
            world = {"bookings": c + n, "checked_in": c, "no_shows": n}
            for name in withheld:
                candidates[name].add(world[name])
    assert len(withheld) >= 2
    assert all(len(values) >= 2 for values in candidates.values()), candidates


def test_opendata_suppression_worked_example() -> None:
    """12 bookings by 12 people, 2 no-shows: the no-shows are withheld, and
    so are the check-ins (else 12 - 10 gives them back) and their hours."""
    row = _use_row((10, 2), contributors=12, k=10)
    assert row == {"bookings": 12, "checked_in": None, "no_shows": None,
                   "hours_booked": 24.0, "hours_used": None}  # fmt: skip
    one_person = _use_row((12, 0), contributors=1, k=10)
    assert all(v is None for v in one_person.values())


def test_opendata_room_use_counts_bookings_checkins_no_shows_and_hours() -> None:
    def fact(room: str, member: str | None, hours: int, came: bool) -> BookingFact:
        return BookingFact("fac", room, member, START, START + timedelta(hours=hours), came)

    facts = [fact("a", "m1", 2, True), fact("a", "m1", 1, False), fact("a", None, 3, True),
             fact("a", None, 1, True)]  # fmt: skip
    rows = aggregate.room_use(facts, [("fac", "a"), ("fac", "empty")])
    assert rows == [
        aggregate.RoomUse("fac", "a", bookings=4, checked_in=3, no_shows=1, hours_booked=7.0,
                          hours_used=6.0, contributors=2),
        aggregate.RoomUse("fac", "empty", 0, 0, 0, 0.0, 0.0, 0),
    ]  # fmt: skip


def test_opendata_certificates_count_copies_and_people_per_kind() -> None:
    items = [IssuedItem("juminhyo", 2, "r1"), IssuedItem("juminhyo", 1, "r1"),
             IssuedItem("inkan", 1, "r2")]  # fmt: skip
    assert aggregate.certificates(items) == [
        aggregate.KindCount("inkan", 1, 1), aggregate.KindCount("juminhyo", 3, 1)]  # fmt: skip
    table = datasets.certificates_table("2025-03", aggregate.certificates(items), {}, 10)
    assert [row[4] for row in table.rows] == [None, None]  # one person each: withheld


def test_opendata_availability_counts_hours_with_a_report() -> None:
    end = START + timedelta(days=1)
    samples = {
        "door-1": [START - timedelta(days=3), START + timedelta(minutes=5),
                   START + timedelta(minutes=50), START + timedelta(hours=5)],
        "new-1": [START + timedelta(hours=12, minutes=30), START + timedelta(hours=13)],
        "gone-1": [START - timedelta(days=9)],
    }  # fmt: skip
    rows = aggregate.availability(samples, {"door-1": "fac"}, START, end)
    assert [(r.device, r.facility, r.hours_in_period, r.hours_reporting) for r in rows] == [
        ("door-1", "fac", 24, 2), ("new-1", "", 12, 2)]  # fmt: skip
    assert rows[0].percent == 8.3


def test_opendata_facility_list_has_the_standard_columns_in_order() -> None:
    hours = {"weekly": {"mon": [{"opens": "09:00", "closes": "12:00"},
                                {"opens": "13:00", "closes": "21:00"}],
                        "sat": [{"opens": "10:00", "closes": "17:00"}], "sun": []}}  # fmt: skip
    table = datasets.facility_list(
        [Facility("fac", "みどり市民センター", "みどり市中央1-1", hours)],
        [Room("fac", "a", "会議室A"), Room("fac", "b", "体育館")],
        code="123456", prefecture="東京都", city="みどり市",
    )  # fmt: skip
    names = [c.name for c in table.columns]
    assert names[:5] == [
        "都道府県コード又は市区町村コード",
        "NO",
        "都道府県名",
        "市区町村名",
        "名称",
    ]
    assert names[-1] == "備考" and len(names) == 24
    row = dict(zip(names, table.rows[0], strict=True))
    assert (row["利用可能曜日"], row["開始時間"], row["終了時間"]) == ("月土", "09:00", "21:00")
    assert row["NO"] == "1" and row["説明"] == "予約できる部屋: 会議室A、体育館"


def test_opendata_config_refuses_a_threshold_that_gives_cells_away() -> None:
    with pytest.raises(CentralConfigError, match="min_count"):
        parse_config("[opendata]\nmin_count = 3\n", "central.toml", START_DIR)
    config = parse_config("[opendata]\nfolder = 'od'\n", "central.toml", START_DIR)
    assert config.opendata.min_count == 10 and config.opendata.folder == START_DIR / "od"


START_DIR = __import__("pathlib").Path("/srv/central")
