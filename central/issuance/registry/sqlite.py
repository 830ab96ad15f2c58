"""The reference resident registry: an SQLite file of synthetic residents.

Its own file (``issuance.registry_file``), never the central database: a
city replaces it with an adapter to its standard-spec systems. Managed with
``python -m central registry add|list|link-cert``; :func:`seed_demo` fills it
for the demo and tests from the test PKI.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from datetime import date
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    select,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from central.errors import RegistryError
from central.issuance.config import KindSection
from central.issuance.registry.adapter import (
    CertificateKey,
    Eligibility,
    Resident,
    certificate_lines,
    decide,
)

registry_metadata = MetaData()

residents = Table(
    "residents",
    registry_metadata,
    Column("ref", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("birth_date", Date, nullable=False),
    Column("sex", String(8), nullable=False),
    Column("address", String(256), nullable=False),
    Column("household", String(32), nullable=False, index=True),
    Column("relationship", String(32), nullable=False),
    Column("moved_in", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("support_measures", Boolean, nullable=False),
    Column("honseki", String(256), nullable=False),
    Column("hittousha", String(128), nullable=False),
    Column("honseki_here", Boolean, nullable=False),
    Column("seal_number", String(32), nullable=False),
    Column("income_yen", Integer, nullable=False),
    Column("tax_yen", Integer, nullable=False),
)

# One row: the key of this registry's resident references (see reference_for).
registry_keys = Table(
    "registry_keys",
    registry_metadata,
    Column("name", String(32), primary_key=True),
    Column("key_hex", String(64), nullable=False),
)

certificate_links = Table(
    "certificate_links",
    registry_metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("issuer", String(512), nullable=False),
    Column("serial", String(64), nullable=False),
    Column("resident_ref", String(32), nullable=False, index=True),
)

# Built once (what a session asks twice): building a statement costs more
# than running it.
LINKED_RESIDENT = select(certificate_links.c.resident_ref).where(
    certificate_links.c.fingerprint == bindparam("p_fingerprint"),
    certificate_links.c.issuer == bindparam("p_issuer"),
    certificate_links.c.serial == bindparam("p_serial"),
)
_HOUSEHOLD = select(residents.c.household).where(residents.c.ref == bindparam("p_ref"))
HOUSEHOLD_OF = (
    select(residents)
    .where(residents.c.household == _HOUSEHOLD.scalar_subquery())
    .order_by(residents.c.ref)
)


def certificate_key(cert: x509.Certificate) -> CertificateKey:
    return CertificateKey(
        issuer=cert.issuer.rfc4514_string(),
        serial=f"{cert.serial_number:x}",
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
    )


class SqliteRegistry:
    """:class:`central.issuance.registry.adapter.ResidentRegistry` over an SQLite file."""

    def __init__(self, path: Path, *, min_age: int = 15, create: bool = True) -> None:
        if not create and not path.exists():
            raise RegistryError(f"no registry at {path}: run 'python -m central registry add'")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.min_age = min_age
        self.engine = create_engine(f"sqlite:///{path}")
        try:
            registry_metadata.create_all(self.engine)
            self.reference_key = self._reference_key()
        except SQLAlchemyError as exc:
            raise RegistryError(f"registry {path} unusable: {type(exc).__name__}") from None

    def _reference_key(self) -> bytes:
        """This registry's reference key, made at first use. It lives beside the
        names it keys: whoever has only the references (the audit log, a
        ``registry list``) cannot test candidates against them."""
        with self.engine.begin() as conn:
            query = select(registry_keys.c.key_hex).where(registry_keys.c.name == "reference")
            found = conn.execute(query).scalar()
            if found is None:
                found = secrets.token_hex(32)
                conn.execute(registry_keys.insert().values(name="reference", key_hex=found))
        return bytes.fromhex(found)

    def reference_for(self, name: str, birth_date: date, household: str) -> str:
        """A new resident's opaque reference: keyed, so a list of candidate
        names, birth dates and households cannot be matched against it."""
        return keyed_ref(self.reference_key, f"{name}|{birth_date.isoformat()}|{household}")

    def add(self, resident: Resident) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(residents.insert().values(**asdict(resident)))
        except IntegrityError:
            raise RegistryError(f"resident {resident.ref} already exists") from None

    def link(self, resident_ref: str, key: CertificateKey) -> None:
        """Link a certificate to a resident (again after a renewal)."""
        with self.engine.begin() as conn:
            known = select(residents.c.ref).where(residents.c.ref == resident_ref)
            if conn.execute(known).first() is None:
                raise RegistryError(f"no resident {resident_ref}")
            conn.execute(certificate_links.delete().where(
                certificate_links.c.fingerprint == key.fingerprint))  # fmt: skip
            conn.execute(certificate_links.insert().values(
                fingerprint=key.fingerprint, issuer=key.issuer, serial=key.serial,
                resident_ref=resident_ref))  # fmt: skip

    def residents(self) -> list[Resident]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(residents).order_by(residents.c.ref))
            return [_resident(r._mapping) for r in rows]

    def get(self, resident_ref: str) -> Resident | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(residents).where(residents.c.ref == resident_ref)).first()
        return _resident(row._mapping) if row else None

    def household(self, resident: Resident) -> list[Resident]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(residents).where(
                residents.c.household == resident.household).order_by(residents.c.ref))  # fmt: skip
            return [_resident(r._mapping) for r in rows]

    # ResidentRegistry

    def resident_for(self, key: CertificateKey) -> str | None:
        """The link must match issuer and serial as well as the fingerprint."""
        params = {"p_fingerprint": key.fingerprint, "p_issuer": key.issuer, "p_serial": key.serial}
        with self.engine.connect() as conn:
            row = conn.execute(LINKED_RESIDENT, params).first()
        return str(row.resident_ref) if row else None

    def with_household(self, resident_ref: str) -> tuple[Resident, list[Resident]] | None:
        """The resident and their household (themselves included), in one
        query: a session asks this for every kind of the catalogue."""
        with self.engine.connect() as conn:
            rows = conn.execute(HOUSEHOLD_OF, {"p_ref": resident_ref})
            household = [_resident(r._mapping) for r in rows]
        resident = next((r for r in household if r.ref == resident_ref), None)
        return None if resident is None else (resident, household)

    def eligibilities(
        self, resident_ref: str, kinds: Sequence[KindSection], today: date
    ) -> list[Eligibility]:
        found = self.with_household(resident_ref)
        if found is None:
            return [Eligibility(False, "other") for _ in kinds]
        return [decide(found[0], found[1], kind, today, self.min_age) for kind in kinds]

    def certificate_lines(
        self, resident_ref: str, kind: KindSection, options: Mapping[str, str], today: date
    ) -> list[str]:
        found = self.with_household(resident_ref)
        if found is None:
            raise RegistryError("the resident is no longer in the registry")
        fiscal_year = today.year if today.month >= 6 else today.year - 1  # 年度 of the tax notice
        return certificate_lines(found[0], found[1], kind, options, fiscal_year)

    def close(self) -> None:
        self.engine.dispose()


def _resident(row: Any) -> Resident:
    return Resident(**{f.name: row[f.name] for f in fields(Resident)})


def keyed_ref(key: bytes, seed: str) -> str:
    """An opaque resident reference: HMAC-SHA256 under the registry's key."""
    return "R" + hmac.new(key, seed.encode(), hashlib.sha256).hexdigest()[:20].upper()


def synthetic_ref(seed: str) -> str:
    """A fixed reference for the demo's synthetic residents, from a label
    (never from personal data: those go through :meth:`SqliteRegistry.reference_for`)."""
    return "R" + hashlib.sha256(seed.encode()).hexdigest()[:11].upper()


DEMO_ADDRESS = "みどり市中央一丁目2番3号"


def demo_household(ref: str, household: str = "H0001") -> list[Resident]:
    """A synthetic household: a head (the card holder) and a spouse."""
    common: dict[str, Any] = {"address": DEMO_ADDRESS, "household": household,
                              "moved_in": date(2015, 4, 1), "honseki": DEMO_ADDRESS,
                              "hittousha": "試験　太郎", "honseki_here": True}  # fmt: skip
    return [
        Resident(ref=ref, name="試験　太郎", birth_date=date(1980, 5, 17), sex="男",
                 relationship="世帯主", seal_number="A-1024", income_yen=4_200_000,
                 tax_yen=215_000, **common),
        Resident(ref=synthetic_ref(ref + "-spouse"), name="試験　花子",
                 birth_date=date(1982, 11, 3), sex="女", relationship="妻", **common),
    ]  # fmt: skip


def seed_demo(
    registry: SqliteRegistry,
    valid: x509.Certificate,
    ineligible: x509.Certificate | None = None,
) -> dict[str, str]:
    """Register the test PKI's ``valid`` user (eligible for everything) and,
    optionally, an ineligible one (支援措置): returns label -> resident ref."""
    refs = {}
    existing = {r.ref for r in registry.residents()}
    ref = synthetic_ref("demo-valid")
    if ref not in existing:
        for resident in demo_household(ref):
            registry.add(resident)
    registry.link(ref, certificate_key(valid))
    refs["valid"] = ref
    if ineligible is not None:
        other = synthetic_ref("demo-ineligible")
        if other not in existing:
            registry.add(Resident(
                ref=other, name="保護　一郎", birth_date=date(1975, 1, 9), sex="男",
                address="みどり市西町五丁目6番7号", household="H0002", relationship="世帯主",
                moved_in=date(2020, 7, 1), support_measures=True))  # fmt: skip
        registry.link(other, certificate_key(ineligible))
        refs["ineligible"] = other
    return refs
