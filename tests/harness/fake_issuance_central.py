"""An in-process central for the issuance unit tests and the kiosk e2e test.

It keeps the contract of :mod:`contracts.issuance`: single-use challenges,
the card's signature over :func:`signed_message` verified with the
certificate's key, sessions, idempotent orders, confirmation with small PDF
documents, outcomes. ``fail_next(operation, error)`` scripts a refusal or an
outage for the next call of one operation ("challenge", "open_session",
"create_order", "confirm", "report_outcome", "close_session").
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from contracts.issuance import (
    CHALLENGE_BYTES,
    CatalogueOut,
    ChallengeOut,
    ConfirmIn,
    ConfirmOut,
    DocumentOut,
    HoursOut,
    KindOut,
    OptionOut,
    OrderIn,
    OrderItemOut,
    OrderOut,
    OutcomeIn,
    SessionIn,
    SessionOut,
    signed_message,
)
from kiosk.errors import CentralError, CentralRefused


def demo_kinds() -> list[KindOut]:
    """住民票 (household or self, relationship and 本籍 off by default), 印鑑, 所得."""
    household = OptionOut(
        id="household", label_ja="世帯", label_en="Household", kind="choice", default="self",
        choices=["self", "all"],
        choice_labels_ja={"self": "本人のみ", "all": "世帯全員"},
        choice_labels_en={"self": "Only me", "all": "Whole household"},
    )  # fmt: skip
    relationship = OptionOut(
        id="relationship", label_ja="世帯主・続柄", label_en="Head of household and relationship",
        kind="toggle", default="false",
    )  # fmt: skip
    honseki = OptionOut(
        id="honseki", label_ja="本籍・筆頭者", label_en="Registered domicile (honseki)",
        kind="toggle", default="false",
    )  # fmt: skip
    return [
        KindOut(id="juminhyo", label_ja="住民票の写し", label_en="Certificate of residence",
                fee_yen=200, max_copies=5, options=[household, relationship, honseki]),
        KindOut(id="inkan", label_ja="印鑑登録証明書", label_en="Seal registration certificate",
                fee_yen=200, max_copies=5),
        KindOut(id="shotoku_kazei", label_ja="所得・課税証明書",
                label_en="Income and tax certificate", fee_yen=300, max_copies=3),
    ]  # fmt: skip


def fake_pdf(kind: str, issue_number: str) -> bytes:
    return f"%PDF-1.4\n% {kind} {issue_number}\n%%EOF\n".encode()


@dataclass
class FakeCentral:
    device_id: str
    kinds: list[KindOut] = field(default_factory=demo_kinds)
    failures: dict[str, CentralError] = field(default_factory=dict)
    sessions: dict[str, SessionOut] = field(default_factory=dict)
    closed_sessions: list[str] = field(default_factory=list)
    orders: dict[str, OrderOut] = field(default_factory=dict)
    outcomes: list[tuple[str, OutcomeIn]] = field(default_factory=list)
    confirmations: list[tuple[str, str]] = field(default_factory=list)  # order, payment ref
    _challenges: dict[str, bytes] = field(default_factory=dict)
    _keys: dict[str, str] = field(default_factory=dict)  # idempotency key -> order
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, operation: str, error: CentralError) -> None:
        self.failures[operation] = error

    def _maybe_fail(self, operation: str) -> None:
        error = self.failures.pop(operation, None)
        if error is not None:
            raise error

    def catalogue(self) -> CatalogueOut:
        self._maybe_fail("catalogue")
        return CatalogueOut(
            municipality_ja="テスト市", municipality_en="Test City",
            hours=HoursOut(open_now=True), kinds=self.kinds,
        )  # fmt: skip

    def challenge(self) -> ChallengeOut:
        self._maybe_fail("challenge")
        with self._lock:
            challenge_id = f"ch{next(self._ids)}"
            self._challenges[challenge_id] = secrets.token_bytes(CHALLENGE_BYTES)
            value = self._challenges[challenge_id]
        expires = datetime.now(UTC) + timedelta(seconds=60)
        return ChallengeOut(challenge_id=challenge_id, challenge=value.hex(), expires_at=expires)

    def open_session(self, body: SessionIn) -> SessionOut:
        self._maybe_fail("open_session")
        with self._lock:
            challenge = self._challenges.pop(body.challenge_id, None)
        if challenge is None:
            raise CentralRefused("challenge_invalid")
        certificate = x509.load_der_x509_certificate(bytes.fromhex(body.certificate))
        key = certificate.public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        try:
            key.verify(
                bytes.fromhex(body.signature),
                signed_message(challenge, self.device_id),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            raise CentralRefused("signature_invalid") from None
        session = SessionOut(
            session_id=f"s{next(self._ids)}",
            expires_at=datetime.now(UTC) + timedelta(minutes=10),
            kinds=self.kinds,
        )
        self.sessions[session.session_id] = session
        return session

    def close_session(self, session_id: str) -> None:
        self._maybe_fail("close_session")
        if self.sessions.pop(session_id, None) is not None:
            self.closed_sessions.append(session_id)

    def create_order(self, body: OrderIn) -> OrderOut:
        self._maybe_fail("create_order")
        if body.session_id not in self.sessions:
            raise CentralRefused("session_invalid")
        if body.idempotency_key in self._keys:
            return self.orders[self._keys[body.idempotency_key]]
        kinds = {k.id: k for k in self.sessions[body.session_id].kinds}
        items = []
        for item in body.items:
            kind = kinds.get(item.kind)
            if kind is None:
                raise CentralRefused("kind_unavailable")
            if item.copies > kind.max_copies:
                raise CentralRefused("order_invalid")
            options = {o.id: item.options.get(o.id, o.default) for o in kind.options}
            items.append(OrderItemOut(kind=kind.id, copies=item.copies, fee_yen=kind.fee_yen,
                                      options=options))  # fmt: skip
        order = OrderOut(
            order_id=f"o{next(self._ids)}",
            status="pending",
            total_fee_yen=sum(i.fee_yen * i.copies for i in items),
            items=items,
        )
        self.orders[order.order_id] = order
        self._keys[body.idempotency_key] = order.order_id
        return order

    def confirm(self, order_id: str, body: ConfirmIn) -> ConfirmOut:
        self._maybe_fail("confirm")
        order = self.orders.get(order_id)
        if order is None or order.status != "pending":
            raise CentralRefused("order_state")
        self.orders[order_id] = order.model_copy(update={"status": "confirmed"})
        self.confirmations.append((order_id, body.payment_ref))
        documents = []
        for item in order.items:
            for copy in range(1, item.copies + 1):
                number = f"{order_id}-{item.kind}-{copy}"
                pdf = fake_pdf(item.kind, number)
                documents.append(DocumentOut(
                    kind=item.kind, issue_number=number, copy_index=copy,
                    pdf=base64.b64encode(pdf).decode(), sha256=hashlib.sha256(pdf).hexdigest(),
                ))  # fmt: skip
        return ConfirmOut(order_id=order_id, issued_at=datetime.now(UTC), documents=documents)

    def report_outcome(self, order_id: str, body: OutcomeIn) -> OrderOut:
        self._maybe_fail("report_outcome")
        order = self.orders[order_id]
        self.outcomes.append((order_id, body))
        self.orders[order_id] = order.model_copy(update={"status": body.status})
        return self.orders[order_id]

    def close(self) -> None:
        pass
