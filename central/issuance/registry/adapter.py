"""The resident registry adapter: certificate -> resident ->
eligibility -> the lines of a certificate.

:class:`ResidentRegistry` is what central asks; a city connects its
standard-spec (標準準拠) resident, tax and family-register systems by
implementing it (docs/issuance.md). :mod:`central.issuance.registry.sqlite` is the
reference implementation for the demo and tests.

Eligibility is answered as :class:`Eligibility`: ``eligible`` or not, and a
coarse ``reason`` code for the central log only (never sent to the kiosk,
never personal data). The pure rules of the reference registry are here
(:func:`decide`, :func:`certificate_lines`) so they are tested without I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol

from central.issuance.config import KindSection

Status = Literal["resident", "moving_out", "moved_out", "deceased"]
REASONS = (
    "ok", "under_age", "moved", "support_measures", "deceased", "honseki_elsewhere",
    "no_seal", "household_moving", "other",
)  # fmt: skip


@dataclass(frozen=True)
class CertificateKey:
    """How a certificate is linked to a resident (renewal = a new link)."""

    issuer: str
    serial: str  # lower-case hex
    fingerprint: str  # SHA-256 of the DER, hex


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reason: str  # one of REASONS; logged only


@dataclass(frozen=True)
class Resident:
    """A synthetic resident record of the reference registry."""

    ref: str  # opaque reference (what the audit log keeps)
    name: str
    birth_date: date
    sex: str  # "" = not recorded (printed as NOT_RECORDED, never guessed)
    address: str
    household: str  # household id
    relationship: str  # 続柄, e.g. 世帯主, 妻, 子; "" = not recorded
    moved_in: date
    status: Status = "resident"
    support_measures: bool = False  # 支援措置 (DV protection etc.)
    honseki: str = ""  # 本籍 (empty: not recorded)
    hittousha: str = ""  # 筆頭者
    honseki_here: bool = False
    seal_number: str = ""  # 印鑑登録番号 (empty: no registered seal)
    income_yen: int = 0
    tax_yen: int = 0


class ResidentRegistry(Protocol):
    """What central needs from a resident registry. Implementations must not
    return or log a My Number, and must answer ``eligibility`` for every kind
    in the catalogue (an unknown kind is simply not eligible)."""

    def resident_for(self, key: CertificateKey) -> str | None:
        """The opaque reference of the resident linked to this certificate."""
        ...

    def eligibilities(
        self, resident_ref: str, kinds: Sequence[KindSection], today: date
    ) -> list[Eligibility]:
        """One answer per kind, in order (a session asks for the whole
        catalogue at once: one registry lookup, not one per kind)."""
        ...

    def certificate_lines(
        self, resident_ref: str, kind: KindSection, options: Mapping[str, str], today: date
    ) -> list[str]:
        """The printed lines for the chosen options (already validated)."""
        ...

    def close(self) -> None: ...


def age_on(birth: date, today: date) -> int:
    years = today.year - birth.year
    return years - ((today.month, today.day) < (birth.month, birth.day))


def decide(
    resident: Resident,
    household: Sequence[Resident],
    kind: KindSection,
    today: date,
    min_age: int,
) -> Eligibility:
    """The reference rules (kiosk-ux.md §1.5): who is sent to the counter."""
    if resident.status == "deceased":
        return Eligibility(False, "deceased")
    if resident.status != "resident":
        return Eligibility(False, "moved")
    if resident.support_measures:
        return Eligibility(False, "support_measures")
    if age_on(resident.birth_date, today) < min_age:
        return Eligibility(False, "under_age")
    if resident.moved_in >= today:  # the day of moving in
        return Eligibility(False, "moved")
    if kind.id == "juminhyo" and any(m.status != "resident" or m.support_measures
                                     for m in household):  # fmt: skip
        return Eligibility(False, "household_moving")
    if kind.requires == "honseki_here" and not resident.honseki_here:
        return Eligibility(False, "honseki_elsewhere")
    if kind.requires == "seal_registered" and not resident.seal_number:
        return Eligibility(False, "no_seal")
    return Eligibility(True, "ok")


# What a certificate prints for a field the record does not hold: the
# registry never fills in a value (a sex, a head of household) it was not given.
NOT_RECORDED = "（記録なし）"


def recorded(value: str) -> str:
    return value or NOT_RECORDED


def _printed_date(day: date) -> str:
    """A date as printed (Gregorian: an era table is left to the city's own system)."""
    return f"{day.year}年{day.month}月{day.day}日"


def _person(resident: Resident, options: Mapping[str, str]) -> list[str]:
    lines = [f"氏名　{resident.name}",
             f"生年月日　{_printed_date(resident.birth_date)}　性別　{recorded(resident.sex)}",
             f"住民となった日　{_printed_date(resident.moved_in)}"]  # fmt: skip
    if options.get("relationship") == "true":
        lines.append(f"続柄　{recorded(resident.relationship)}")
    return lines


def certificate_lines(
    resident: Resident,
    household: Sequence[Resident],
    kind: KindSection,
    options: Mapping[str, str],
    fiscal_year: int,
) -> list[str]:
    """The reference layout of each kind. Options are off unless chosen; the
    individual number is never part of a record, so it is never printed."""
    if kind.id == "juminhyo":
        members = list(household) if options.get("household") == "all" else [resident]
        lines = [f"住所　{resident.address}"]
        if options.get("relationship") == "true":
            head = next((m.name for m in household if m.relationship == "世帯主"), "")
            lines.append(f"世帯主　{recorded(head)}")
        for member in members:
            lines += _person(member, options)
            if options.get("honseki") == "true":
                lines.append(f"本籍　{member.honseki}　筆頭者　{member.hittousha}")
        return lines
    if kind.id == "inkan":
        return [f"登録番号　{resident.seal_number}", f"氏名　{resident.name}",
                f"生年月日　{_printed_date(resident.birth_date)}", f"住所　{resident.address}",
                "印影　（登録された印影）"]  # fmt: skip
    if kind.id == "shotoku_kazei":
        return [f"{fiscal_year}年度（{fiscal_year - 1}年中の所得）", f"氏名　{resident.name}",
                f"住所　{resident.address}", f"総所得金額　{resident.income_yen:,}円",
                f"市町村民税・県民税　{resident.tax_yen:,}円"]  # fmt: skip
    if kind.id.startswith("koseki"):
        return [f"本籍　{resident.honseki}", f"筆頭者　{resident.hittousha}",
                f"氏名　{resident.name}", f"生年月日　{_printed_date(resident.birth_date)}",
                f"続柄　{recorded(resident.relationship)}"]  # fmt: skip
    return [f"氏名　{resident.name}", f"住所　{resident.address}"]
