"""``[opendata]`` of central's configuration (docs/opendata.md)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from foundation.config import Section, known_zone


class OpendataSection(Section):
    # Where `python -m central opendata publish` writes YYYY-MM/ folders and
    # catalog.jsonld, and where `serve` reads them for /opendata/.
    folder: Path = Path("opendata")
    # Counts of people's actions below this are not published (NDB open data
    # practice: under 10 is withheld). 4 at least: below that, knowing the
    # rule gives withheld cells back (with 3, bookings = check-ins + no-shows
    # all withheld can only be 2 = 1 + 1).
    min_count: int = Field(default=10, ge=4, le=1000)
    # Months are the city's calendar months in this zone.
    timezone: str = "Asia/Tokyo"
    # The publisher (the city) as the descriptor and the catalogue name it.
    publisher: str = Field(default="みどり市", min_length=1, max_length=100)
    publisher_en: str = Field(default="Midori City", min_length=1, max_length=100)
    publisher_url: str = Field(default="", pattern=r"^(https?://\S+)?$")
    # 全国地方公共団体コード (6 digits) and the prefecture, for the facility list.
    municipality_code: str = Field(default="", pattern=r"^([0-9]{6})?$")
    prefecture: str = Field(default="", max_length=20)
    # The public address of /opendata/ (download URLs in the catalogue);
    # empty: api.public_url + "/opendata/".
    base_url: str = Field(default="", pattern=r"^(https?://\S+)?$")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        return known_zone(name)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
