"""Orders of the issuance service: create (idempotent), confirm (issue
numbers and PDFs, idempotent while the session lives), outcome, the purge
of PDFs after ``document_seconds``; and the monthly statistics.

Issue numbers are ``YYYY-NNNNNN``: sequential per local year, allocated by
an atomic upsert on ``issuance_counters`` inside the confirming transaction
(PostgreSQL row lock; SQLite ``BEGIN IMMEDIATE``), so two workers never
hand out the same number and a failed confirm leaves no gap committed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from central.db.engine import Database, aware, utc
from central.db.tables import issuance_documents, issuance_orders
from central.errors import IssuanceRefused
from central.issuance import queries as q
from central.issuance.config import KindSection
from central.issuance.pdf import CertificateDocument, render_certificate
from central.issuance.service import OPTIONS, IssuanceService, new_id, refuse_closed
from contracts.issuance import (
    ConfirmIn,
    ConfirmOut,
    DocumentOut,
    OrderIn,
    OrderItemIn,
    OrderItemOut,
    OrderOut,
    OutcomeIn,
)

log = logging.getLogger(__name__)

# What may follow each status (the same status again is an idempotent no-op).
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"voided"}),
    "confirmed": frozenset({"printed", "failed", "voided", "refunded"}),
    "failed": frozenset({"voided", "refunded"}),
    "printed": frozenset(),
    "voided": frozenset(),
    "refunded": frozenset(),
}
NOT_HANDED_OUT = ("failed", "voided", "refunded")
CERTIFICATION: dict[str, str] = {
    "juminhyo": "この写しは、住民票の原本と相違ないことを証明する。",
    "inkan": "この写しは、登録されている印影と相違ないことを証明する。",
    "koseki_zenbu": "これは、戸籍に記録されている事項の全部を証明した書面である。",
}
Renderer = Callable[[CertificateDocument], bytes]


class OrderDesk:
    """Orders over the same database and settings as the sessions."""

    def __init__(self, service: IssuanceService, render: Renderer = render_certificate) -> None:
        self.service = service
        self.db: Database = service.db
        self.settings = service.settings
        self.render = render

    # Create

    def create(self, device: str, body: OrderIn) -> OrderOut:
        try:
            return self._create(device, body)
        except IntegrityError:  # another worker stored the same key first
            with self.db.read() as conn:
                existing = self._by_key(conn, device, body.idempotency_key)
            if existing is None:
                raise
            return self._same_request(existing, body)

    def _create(self, device: str, body: OrderIn) -> OrderOut:
        moment = self.service.now()
        # A pending order commits without a flush of its own: if a power loss
        # undoes it, its confirmation is refused (order_invalid) and the kiosk
        # voids the charge; the confirmation's durable commit flushes it with
        # everything before it. Nothing is issued or kept against it alone.
        with self.db.write(durable=False) as conn:
            existing = self._by_key(conn, device, body.idempotency_key)
            if existing is not None:
                return self._same_request(existing, body)
            session = self.service.session(conn, device, body.session_id, moment)
            items = [self._item(item, session.kinds, moment) for item in body.items]
            order_id, total = new_id(), sum(i.fee_yen * i.copies for i in items)
            conn.execute(q.INSERT_ORDER, {
                "id": order_id, "device": device, "session_id": session.id,
                "idempotency_key": body.idempotency_key, "request_hash": _request_hash(body),
                "resident_ref": session.resident_ref, "items": [i.model_dump() for i in items],
                "total_fee_yen": total, "status": "pending", "created_at": utc(moment),
                "updated_at": utc(moment)})  # fmt: skip
        return OrderOut(order_id=order_id, status="pending", total_fee_yen=total, items=items)

    def _by_key(self, conn: Connection, device: str, key: str) -> Row[Any] | None:
        return conn.execute(q.ORDER_BY_KEY, {"p_device": device, "p_key": key}).first()

    def _same_request(self, existing: Row[Any], body: OrderIn) -> OrderOut:
        if existing.request_hash != _request_hash(body):
            raise IssuanceRefused(
                "order_invalid", "this idempotency key was used for another order"
            )
        return _order_out(existing)

    def _item(self, item: OrderItemIn, offered: list[str], moment: datetime) -> OrderItemOut:
        kind = self.settings.kind(item.kind)
        if kind is None or item.kind not in offered:
            raise IssuanceRefused("kind_unavailable", f"{item.kind} cannot be ordered here")
        if item.copies > kind.max_copies:
            raise IssuanceRefused("order_invalid", f"at most {kind.max_copies} copies of {kind.id}")
        if not self.service.kind_open(kind, moment):
            raise refuse_closed(self.service.kind_opens_at(kind, moment), kind.id)
        return OrderItemOut(kind=kind.id, copies=item.copies, fee_yen=kind.fee_yen,
                            options=_options(kind, item.options))  # fmt: skip

    # Confirm

    def confirm(self, device: str, order_id: str, body: ConfirmIn) -> ConfirmOut:
        moment = self.service.now()
        with self.db.write() as conn:
            order = self._locked(conn, device, order_id)
            if order.status not in ("pending", "confirmed"):
                raise IssuanceRefused("order_state", f"the order is {order.status}")
            # A repeated confirm (a retry after a lost answer) needs the same
            # live session: a closed one never gets the certificates again.
            self.service.session(conn, device, order.session_id, moment)
            if order.status == "confirmed":
                return self._confirmed(conn, order, moment)
            documents = self._issue(conn, order, moment)
            conn.execute(q.UPDATE_ORDER, {
                "p_id": order_id, "status": "confirmed", "payment_ref": body.payment_ref,
                "issued_at": utc(moment), "updated_at": utc(moment)})  # fmt: skip
            self._audit_items(conn, order, "issued", "confirmed")
        log.info("issuance order confirmed", extra={"device": device, "documents": len(documents)})
        return ConfirmOut(order_id=order_id, issued_at=moment, documents=documents)

    def _locked(self, conn: Connection, device: str, order_id: str) -> Row[Any]:
        query = q.ORDER_LOCKED if self.db.lock_clause() else q.ORDER
        order = conn.execute(query, {"p_id": order_id, "p_device": device}).first()
        if order is None:
            raise IssuanceRefused("order_invalid", "no such order for this device")
        return order

    def _issue(self, conn: Connection, order: Row[Any], moment: datetime) -> list[DocumentOut]:
        local = moment.astimezone(self.service.zone)
        copies = sum(int(item["copies"]) for item in order.items)
        number = allocate_issue_numbers(self.db, conn, local.year, copies)
        documents = []
        for index, item in enumerate(order.items):
            kind = self.settings.kind(item["kind"])
            if kind is None:
                raise IssuanceRefused("kind_unavailable", f"{item['kind']} is no longer offered")
            lines = self.service.registry.certificate_lines(
                order.resident_ref, kind, item["options"], local.date()
            )
            for copy_index in range(1, int(item["copies"]) + 1):
                issue_number = f"{local.year}-{next(number):06d}"
                pdf = self.render(CertificateDocument(
                    kind_label=kind.label_ja, issue_number=issue_number, issued_on=local.date(),
                    municipality=self.settings.municipality_ja, lines=lines,
                    copies_note=CERTIFICATION.get(kind.id, "上記のとおり証明する。")))  # fmt: skip
                digest = hashlib.sha256(pdf).hexdigest()
                conn.execute(q.INSERT_DOCUMENT, {
                    "order_id": order.id, "item_index": index, "kind": kind.id,
                    "copy_index": copy_index, "issue_number": issue_number, "sha256": digest,
                    "pdf": pdf})  # fmt: skip
                documents.append(_document(kind.id, issue_number, copy_index, pdf, digest))
        return documents

    def _confirmed(self, conn: Connection, order: Row[Any], moment: datetime) -> ConfirmOut:
        query = select(issuance_documents).where(issuance_documents.c.order_id == order.id)
        rows = list(conn.execute(query.order_by(issuance_documents.c.pk)))
        if self._past_retention(order, moment) or any(r.pdf is None for r in rows):
            raise IssuanceRefused("order_state", "the certificates of this order are not kept")
        documents = [_document(r.kind, r.issue_number, r.copy_index, r.pdf, r.sha256) for r in rows]
        return ConfirmOut(order_id=order.id, issued_at=aware(order.issued_at), documents=documents)

    def _past_retention(self, order: Row[Any], moment: datetime) -> bool:
        kept = timedelta(seconds=self.settings.document_seconds)
        return order.issued_at is None or aware(order.issued_at) + kept <= moment

    def purge_documents(self) -> int:
        """Delete the PDFs of orders confirmed more than ``document_seconds``
        ago, whatever the kiosk reported (or did not); returns how many."""
        cutoff = self.service.now() - timedelta(seconds=self.settings.document_seconds)
        expired = select(issuance_orders.c.id).where(issuance_orders.c.issued_at <= utc(cutoff))
        with self.db.write() as conn:
            purged = conn.execute(update(issuance_documents).where(
                issuance_documents.c.pdf.is_not(None),
                issuance_documents.c.order_id.in_(expired)).values(pdf=None))  # fmt: skip
        if purged.rowcount:
            log.info("issuance documents purged", extra={"documents": purged.rowcount})
        return int(purged.rowcount)

    # Outcome

    def outcome(self, device: str, order_id: str, body: OutcomeIn) -> OrderOut:
        moment = self.service.now()
        with self.db.write() as conn:
            order = self._locked(conn, device, order_id)
            if order.status == body.status:
                return _order_out(order)
            if body.status not in TRANSITIONS[order.status]:
                raise IssuanceRefused("order_state", f"the order is {order.status}")
            conn.execute(update(issuance_orders).where(issuance_orders.c.id == order_id).values(
                status=body.status, outcome_reason=body.reason or None,
                updated_at=utc(moment)))  # fmt: skip
            # The certificates' content is not kept once the kiosk is done with it.
            conn.execute(update(issuance_documents).where(
                issuance_documents.c.order_id == order_id).values(pdf=None))  # fmt: skip
            self._audit_items(conn, order, "outcome", body.status)
            order = self._locked(conn, device, order_id)
        extra = {"device": device, "status": body.status, "reason": body.reason}
        log.info("issuance order outcome", extra=extra)
        return _order_out(order)

    def _audit_items(self, conn: Connection, order: Row[Any], action: str, outcome: str) -> None:
        """One audit row per item: kind, copies, fee; never the content."""
        for item in order.items:
            copies, fee = int(item["copies"]), int(item["fee_yen"])
            self.service.audit(
                conn, order.device, order.resident_ref, action, order_id=order.id,
                kind=item["kind"], copies=copies, fee_yen=fee * copies, outcome=outcome,
            )  # fmt: skip


def allocate_issue_numbers(db: Database, conn: Connection, year: int, count: int) -> Any:
    """Reserve ``count`` consecutive numbers of ``year``; an iterator over them."""
    upsert = q.ALLOCATE_NUMBERS[db.dialect]
    last = int(conn.execute(upsert, {"p_year": year, "p_count": count}).scalar_one())
    return iter(range(last - count + 1, last + 1))


def _options(kind: KindSection, chosen: dict[str, str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for option_id in kind.options:
        spec = OPTIONS[option_id]
        value = chosen.get(option_id, spec.default)
        allowed = spec.choices if spec.kind == "choice" else ["false", "true"]
        if value not in allowed:
            raise IssuanceRefused("order_invalid", f"{option_id} cannot be {value!r}")
        options[option_id] = value
    unknown = set(chosen) - set(kind.options)
    if unknown:
        raise IssuanceRefused("order_invalid", f"{kind.id} has no option {sorted(unknown)[0]}")
    return options


def _request_hash(body: OrderIn) -> str:
    content = {"session": body.session_id, "items": [i.model_dump() for i in body.items]}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _order_out(row: Row[Any]) -> OrderOut:
    return OrderOut(order_id=row.id, status=row.status, total_fee_yen=row.total_fee_yen,
                    items=[OrderItemOut(**item) for item in row.items])  # fmt: skip


def _document(kind: str, number: str, copy_index: int, pdf: bytes, digest: str) -> DocumentOut:
    return DocumentOut(kind=kind, issue_number=number, copy_index=copy_index,
                       pdf=base64.b64encode(pdf).decode("ascii"), sha256=digest)  # fmt: skip


@dataclass(frozen=True)
class KindStats:
    kind: str
    issued: int  # copies confirmed this month
    printed: int
    not_handed_out: int  # failed, voided or refunded
    fees_yen: int  # of the printed copies


def issuance_stats(db: Database, month: str, zone: Any) -> list[KindStats]:
    """Certificates issued per kind in a local calendar month (``YYYY-MM``)."""
    year, mon = (int(part) for part in month.split("-"))
    start = datetime(year, mon, 1, tzinfo=zone)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=zone)
    with db.read() as conn:
        issued = issuance_orders.c.issued_at
        query = select(issuance_orders.c["items"], issuance_orders.c.status)
        rows = conn.execute(query.where(issued >= utc(start), issued < utc(end)))
        counts: dict[str, list[int]] = {}
        for row in rows:
            for item in row.items:
                figures = counts.setdefault(item["kind"], [0, 0, 0, 0])
                figures[0] += item["copies"]
                if row.status == "printed":
                    figures[1] += item["copies"]
                    figures[3] += item["copies"] * item["fee_yen"]
                elif row.status in NOT_HANDED_OUT:
                    figures[2] += item["copies"]
    return [KindStats(kind, *figures) for kind, figures in sorted(counts.items())]
