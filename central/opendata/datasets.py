"""The published tables of one month, pure: their columns (Japanese and
English titles, Table Schema types) and their rows, suppressed
(:mod:`.suppress`). The facility list follows the column layout of
「公共施設一覧」 (docs/opendata.md names the version)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from central.opendata.aggregate import DeviceAvailability, KindCount, RoomUse
from central.opendata.source import Facility, Room
from central.opendata.suppress import Identity, suppress_row

Cell = str | int | float | bool | None


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Table Schema type
    title_ja: str
    title_en: str

    def field(self) -> dict[str, Any]:
        field: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "title": f"{self.title_ja} / {self.title_en}",
        }
        if self.type in ("integer", "number"):
            field["constraints"] = {"minimum": 0}
        return field


@dataclass(frozen=True)
class Table:
    name: str  # the resource name; the file is name + ".csv"
    title_ja: str
    title_en: str
    description: str
    columns: tuple[Column, ...]
    rows: list[tuple[Cell, ...]]

    @property
    def path(self) -> str:
        return f"{self.name}.csv"


MONTH = Column("month", "yearmonth", "年月", "Month")
WITHHELD = Column("suppressed", "boolean", "秘匿あり", "Cells withheld")
SUPPRESSION_NOTE = (
    "空欄は秘匿（少数のため非公表）。Empty count cells are withheld: fewer than "
    "{k} people or a count from 1 to {k1} (docs/opendata.md)."
)

CERTIFICATE_COLUMNS = (
    MONTH,
    Column("kind", "string", "証明書の種類コード", "Certificate kind code"),
    Column("kind_name", "string", "証明書の種類", "Certificate kind"),
    Column("kind_name_en", "string", "証明書の種類（英語）", "Certificate kind (English)"),
    Column("copies", "integer", "交付枚数", "Copies issued"),
    WITHHELD,
)
USE_COLUMNS = (
    MONTH,
    Column("facility", "string", "施設コード", "Facility code"),
    Column("facility_name", "string", "施設名", "Facility"),
    Column("room", "string", "部屋コード", "Room code"),
    Column("room_name", "string", "部屋名", "Room"),
    Column("bookings", "integer", "予約件数", "Bookings"),
    Column("checked_in", "integer", "入室件数", "Bookings checked in"),
    Column("no_shows", "integer", "無断不使用件数", "No-shows"),
    Column("hours_booked", "number", "予約時間（時間）", "Hours booked"),
    Column("hours_used", "number", "利用時間（時間）", "Hours used"),
    WITHHELD,
)
USE_IDENTITY = Identity("bookings", ("checked_in", "no_shows"))
USE_FOLLOWS = {"hours_booked": "bookings", "hours_used": "checked_in"}
DEVICE_COLUMNS = (
    MONTH,
    Column("facility", "string", "施設コード", "Facility code"),
    Column("device", "string", "端末コード", "Device"),
    Column("hours_in_period", "integer", "対象時間数", "Hours in the period"),
    Column("hours_reporting", "integer", "稼働時間数", "Hours reporting"),
    Column("availability_percent", "number", "稼働率（％）", "Availability (%)"),
)

# 「公共施設一覧」 (推奨データセット / 自治体標準オープンデータセット), in order.
FACILITY_LIST_COLUMNS = (
    "都道府県コード又は市区町村コード",
    "NO",
    "都道府県名",
    "市区町村名",
    "名称",
    "名称_カナ",
    "名称_通称",
    "POIコード",
    "住所",
    "方書",
    "緯度",
    "経度",
    "電話番号",
    "内線番号",
    "法人番号",
    "団体名",
    "利用可能曜日",
    "開始時間",
    "終了時間",
    "利用可能日時特記事項",
    "説明",
    "バリアフリー情報",
    "URL",
    "備考",
)
WEEKDAY_JA = {
    "mon": "月",
    "tue": "火",
    "wed": "水",
    "thu": "木",
    "fri": "金",
    "sat": "土",
    "sun": "日",
}


def certificates_table(
    month: str, counts: Sequence[KindCount], labels: Mapping[str, tuple[str, str]], min_count: int
) -> Table:
    rows: list[tuple[Cell, ...]] = []
    for count in counts:
        shown = suppress_row(
            {"copies": count.copies}, min_count=min_count, contributors=count.contributors
        )
        ja, en = labels.get(count.kind, (count.kind, count.kind))
        rows.append((month, count.kind, ja, en, _int(shown["copies"]), shown["copies"] is None))
    return Table(
        "certificates-issued",
        "証明書の交付枚数（種類別）",
        "Certificates issued per kind",
        SUPPRESSION_NOTE.format(k=min_count, k1=min_count - 1),
        CERTIFICATE_COLUMNS,
        rows,
    )


def use_table(
    month: str,
    rooms: Sequence[RoomUse],
    names: Mapping[tuple[str, str], tuple[str, str]],
    min_count: int,
) -> Table:
    rows: list[tuple[Cell, ...]] = []
    for use in rooms:
        shown = suppress_row(
            {"bookings": use.bookings, "checked_in": use.checked_in, "no_shows": use.no_shows},
            min_count=min_count,
            contributors=use.contributors,
            identities=(USE_IDENTITY,),
            figures={"hours_booked": use.hours_booked, "hours_used": use.hours_used},
            follows=USE_FOLLOWS,
        )
        facility_name, room_name = names.get((use.facility, use.room), ("", ""))
        rows.append(
            (
                month,
                use.facility,
                facility_name,
                use.room,
                room_name,
                _int(shown["bookings"]),
                _int(shown["checked_in"]),
                _int(shown["no_shows"]),
                shown["hours_booked"],
                shown["hours_used"],
                any(v is None for v in shown.values()),
            )
        )
    return Table(
        "facility-use",
        "施設の利用状況（部屋別）",
        "Facility use per room",
        SUPPRESSION_NOTE.format(k=min_count, k1=min_count - 1),
        USE_COLUMNS,
        rows,
    )


def device_table(month: str, found: Sequence[DeviceAvailability]) -> Table:
    rows: list[tuple[Cell, ...]] = [
        (month, d.facility, d.device, d.hours_in_period, d.hours_reporting, d.percent)
        for d in found
    ]
    return Table(
        "device-availability",
        "端末の稼働率",
        "Device availability",
        "端末が1時間に1回以上稼働報告を送った時間の割合。Share of the month's hours in "
        "which the device sent a health report.",
        DEVICE_COLUMNS,
        rows,
    )


def facility_list(
    facilities: Sequence[Facility],
    rooms: Sequence[Room],
    *,
    code: str,
    prefecture: str,
    city: str,
) -> Table:
    rows: list[tuple[Cell, ...]] = []
    for number, place in enumerate(facilities, start=1):
        days, opens, closes = opening_summary(place.opening_hours)
        room_names = "、".join(r.name for r in rooms if r.facility == place.id)
        values = {
            "都道府県コード又は市区町村コード": code,
            "NO": str(number),
            "都道府県名": prefecture,
            "市区町村名": city,
            "名称": place.name,
            "住所": place.address,
            "団体名": city,
            "利用可能曜日": days,
            "開始時間": opens,
            "終了時間": closes,
            "説明": f"予約できる部屋: {room_names}" if room_names else "",
            "備考": f"施設コード {place.id}",
        }
        rows.append(tuple(values.get(c, "") for c in FACILITY_LIST_COLUMNS))
    columns = tuple(
        Column(c, "number" if c in ("緯度", "経度") else "string", c, c)
        for c in FACILITY_LIST_COLUMNS
    )
    return Table(
        "facilities",
        "公共施設一覧",
        "Public facilities",
        "自治体標準オープンデータセット「公共施設一覧」の項目順。Column layout of the "
        "standard public facility list.",
        columns,
        rows,
    )


def opening_summary(hours: Mapping[str, Any]) -> tuple[str, str, str]:
    """利用可能曜日, 開始時間, 終了時間 from stored opening hours (weekday ->
    windows): the open days, the earliest opening and latest closing."""
    weekly = hours.get("weekly") or {}
    open_days = [d for d in WEEKDAY_JA if weekly.get(d)]
    windows = [w for d in open_days for w in weekly[d]]
    if not windows:
        return "", "", ""
    opens = min(str(w["opens"])[:5] for w in windows)
    closes = max(str(w["closes"])[:5] for w in windows)
    return "".join(WEEKDAY_JA[d] for d in open_days), opens, closes


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)
