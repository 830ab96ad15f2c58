"""The ``[issuance]`` section of the central configuration.

The catalogue (kinds, labels, fees, copies, options, hours), the trust
anchors (JPKI user-authentication roots and CRLs), the reference registry
(the mutual-TLS listener is central's device listener, ``[devices.listener]``,
:mod:`central.devices.config`). The defaults make the demo work; every key is
listed in ``docs/configuration.md`` (central ``[issuance]``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Self, TypeVar
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from foundation.config import Section, known_zone

HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
MonthDay = Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
IsoDate = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
KindId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]

# The options central knows how to apply (lines of the certificate); a kind
# lists the ones it offers. 個人番号 is never an option.
OptionId = Literal["household", "relationship", "honseki"]
# What a kind needs beyond being a resident: 本籍 in this municipality
# (戸籍), a registered seal (印鑑), nothing.
Requirement = Literal["resident", "honseki_here", "seal_registered"]


W = TypeVar("W")


def minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


def _ordered_window(section: W, opens: str, closes: str) -> W:
    if minutes(closes) <= minutes(opens):
        raise ValueError("closes must be after opens")
    return section


class HoursSection(Section):
    """Service hours (local time): daily window, yearly closed days, one-off dates."""

    opens: HHMM = "06:30"
    closes: HHMM = "23:00"
    # Closed every year (MM-DD): the New Year break by default.
    closed_days: list[MonthDay] = Field(
        default_factory=lambda: ["12-29", "12-30", "12-31", "01-01", "01-02", "01-03"]
    )
    # Announced maintenance days (YYYY-MM-DD): the whole service is closed.
    maintenance_dates: list[IsoDate] = Field(default_factory=list)
    # Public holidays (YYYY-MM-DD): kinds with weekday-only hours are closed.
    holidays: list[IsoDate] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        return _ordered_window(self, self.opens, self.closes)


class KindHoursSection(Section):
    """A kind's own, shorter hours (戸籍: weekdays 09:00-17:00)."""

    opens: HHMM = "09:00"
    closes: HHMM = "17:00"
    weekdays_only: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        return _ordered_window(self, self.opens, self.closes)


class KindSection(Section):
    id: KindId
    label_ja: str = Field(min_length=1, max_length=64)
    label_en: str = Field(min_length=1, max_length=64)
    fee_yen: int = Field(ge=0, le=100_000)
    max_copies: int = Field(default=10, ge=1, le=20)
    options: list[OptionId] = Field(default_factory=list)
    requires: Requirement = "resident"
    hours: KindHoursSection | None = None  # None = the service hours

    @field_validator("options")
    @classmethod
    def _unique(cls, options: list[OptionId]) -> list[OptionId]:
        if len(set(options)) != len(options):
            raise ValueError("an option is listed twice")
        return options


def _default_kinds() -> list[KindSection]:
    koseki_hours = KindHoursSection()
    return [
        KindSection(id="juminhyo", label_ja="住民票の写し", label_en="Certificate of residence",
                    fee_yen=200, options=["household", "relationship", "honseki"]),
        KindSection(id="inkan", label_ja="印鑑登録証明書", label_en="Seal registration certificate",
                    fee_yen=200, requires="seal_registered"),
        KindSection(id="shotoku_kazei", label_ja="所得・課税証明書",
                    label_en="Income and tax certificate", fee_yen=200),
        KindSection(id="koseki_zenbu", label_ja="戸籍全部事項証明書",
                    label_en="Family register (full)", fee_yen=350, max_copies=5,
                    requires="honseki_here", hours=koseki_hours),
    ]  # fmt: skip


class IssuanceSection(Section):
    enabled: bool = False
    municipality_ja: str = Field(default="みどり市", min_length=1, max_length=64)
    municipality_en: str = Field(default="Midori City", min_length=1, max_length=64)
    timezone: str = "Asia/Tokyo"
    challenge_seconds: int = Field(default=120, ge=10, le=600)
    session_seconds: int = Field(default=600, ge=60, le=3600)
    # How long central keeps a confirmed order's PDFs, outcome or not.
    document_seconds: int = Field(default=300, ge=30, le=3600)
    min_age: int = Field(default=15, ge=0, le=120)
    # JPKI user-authentication root certificates (PEM) and their CRLs (PEM/DER).
    jpki_roots: list[Path] = Field(default_factory=lambda: [Path("issuance/jpki-root.pem")])
    crl_files: list[Path] = Field(default_factory=lambda: [Path("issuance/jpki-crl.pem")])
    # The reference registry (SQLite file; python -m central registry ...).
    registry_file: Path = Path("issuance/registry.db")
    # Counter devices allowed to issue (client certificate CN); empty = any
    # fleet certificate provisioned with the counter role.
    allowed_devices: list[str] = Field(default_factory=list)
    hours: HoursSection = HoursSection()
    kinds: list[KindSection] = Field(default_factory=_default_kinds, min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        return known_zone(name)

    @field_validator("kinds")
    @classmethod
    def _unique_kinds(cls, kinds: list[KindSection]) -> list[KindSection]:
        ids = [k.id for k in kinds]
        if len(set(ids)) != len(ids):
            raise ValueError("a kind id is listed twice")
        return kinds

    @field_validator("allowed_devices")
    @classmethod
    def _device_ids(cls, devices: list[str]) -> list[str]:
        for device in devices:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", device):
                raise ValueError(f"{device!r} is not a device id")
        return devices

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def kind(self, kind_id: str) -> KindSection | None:
        return next((k for k in self.kinds if k.id == kind_id), None)

    def resolved(self, base_dir: Path) -> IssuanceSection:
        """Relative paths made absolute against the configuration's folder."""

        def absolute(p: Path) -> Path:
            return p if p.is_absolute() else base_dir / p

        return self.model_copy(update={
            "jpki_roots": [absolute(p) for p in self.jpki_roots],
            "crl_files": [absolute(p) for p in self.crl_files],
            "registry_file": absolute(self.registry_file),
        })  # fmt: skip
