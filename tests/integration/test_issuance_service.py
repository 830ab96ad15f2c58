"""The central issuance service over a real database (SQLite and PostgreSQL):
challenges, sessions, orders, confirmation, outcome, audit and statistics."""

from __future__ import annotations

import base64
import io
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from central.db.engine import Database
from central.db.tables import (
    issuance_audit,
    issuance_challenges,
    issuance_documents,
    issuance_orders,
)
from central.errors import IssuanceRefused, RegistryError
from central.issuance.orders import OrderDesk, allocate_issue_numbers, issuance_stats
from central.issuance.registry.sqlite import SqliteRegistry
from central.issuance.server import IssuancePurger
from central.issuance.service import IssuanceService
from contracts.issuance import ConfirmIn, OrderIn, OrderItemIn, OutcomeIn, SessionOut
from tests.harness.issuance import (
    ALWAYS_OPEN,
    JST,
    MovableClock,
    build,
    issuance_pki,
    seeded_registry,
    session_in,
    settings_for,
    weekday_at,
)
from tests.harness.services import wait_until

DEVICE = "kiosk-1"
KEY = "a" * 32


@dataclass
class Desk:
    service: IssuanceService
    orders: OrderDesk
    clock: MovableClock
    registry: SqliteRegistry
    db: Database

    def session(self, variant: str = "valid", device: str = DEVICE) -> SessionOut:
        material = issuance_pki()
        user = {"ineligible": material.ineligible, "unknown": material.unknown,
                "stranger": material.stranger}.get(variant) or material.user(variant)  # fmt: skip
        challenge = self.service.new_challenge(device)
        return self.service.open_session(device, session_in(user, challenge, device))

    def order(
        self, session: SessionOut, key: str = KEY, copies: int = 1, **options: str
    ) -> OrderIn:
        item = OrderItemIn(kind="juminhyo", copies=copies, options=options)
        return OrderIn(session_id=session.session_id, idempotency_key=key, items=[item])


@pytest.fixture
def desk(central_db: Database, tmp_path: Path) -> Iterator[Desk]:
    settings = settings_for(tmp_path)
    registry = seeded_registry(settings)
    clock = MovableClock(weekday_at(10))
    service, orders = build(central_db, settings, registry, clock)
    yield Desk(service, orders, clock, registry, central_db)
    registry.close()


def code_of(call: object, *args: object) -> str:
    try:
        call(*args)  # type: ignore[operator]
    except IssuanceRefused as exc:
        return exc.code
    return "ok"


def test_session_opens_with_a_good_signature_and_lists_kinds(desk: Desk) -> None:
    session = desk.session()
    assert [k.id for k in session.kinds] == ["juminhyo", "inkan", "shotoku_kazei", "koseki_zenbu"]
    assert (session.expires_at - desk.clock()).total_seconds() == 600


def test_session_refusals(desk: Desk) -> None:
    assert code_of(desk.session, "expired") == "certificate_expired"
    assert code_of(desk.session, "revoked") == "certificate_revoked"
    assert code_of(desk.session, "stranger") == "certificate_untrusted"
    assert code_of(desk.session, "unknown") == "resident_unknown"
    assert code_of(desk.session, "ineligible") == "use_counter"


def test_session_signature_for_another_device_refused(desk: Desk) -> None:
    user = issuance_pki().user("valid")
    challenge = desk.service.new_challenge(DEVICE)
    made_elsewhere = session_in(user, challenge, "kiosk-2")
    assert code_of(desk.service.open_session, DEVICE, made_elsewhere) == "signature_invalid"


def test_challenge_single_use_bound_to_device_and_expiring(desk: Desk) -> None:
    user = issuance_pki().user("valid")
    challenge = desk.service.new_challenge(DEVICE)
    body = session_in(user, challenge, DEVICE)
    assert code_of(desk.service.open_session, "kiosk-2", session_in(user, challenge, "kiosk-2")) \
        == "challenge_invalid"  # fmt: skip
    desk.service.open_session(DEVICE, body)
    assert code_of(desk.service.open_session, DEVICE, body) == "challenge_invalid"
    late = desk.service.new_challenge(DEVICE)
    desk.clock.advance(121)
    assert code_of(desk.service.open_session, DEVICE, session_in(user, late, DEVICE)) \
        == "challenge_invalid"  # fmt: skip


def test_challenge_is_consumed_by_a_failed_attempt(desk: Desk) -> None:
    material = issuance_pki()
    challenge = desk.service.new_challenge(DEVICE)
    wrong = session_in(material.user("valid"), challenge, "kiosk-2")
    assert code_of(desk.service.open_session, DEVICE, wrong) == "signature_invalid"
    right = session_in(material.user("valid"), challenge, DEVICE)
    assert code_of(desk.service.open_session, DEVICE, right) == "challenge_invalid"


def test_session_outside_hours_gives_the_next_opening(desk: Desk) -> None:
    desk.clock.moment = weekday_at(23, 30)
    with pytest.raises(IssuanceRefused) as err:
        desk.service.new_challenge(DEVICE)
    assert err.value.code == "outside_hours"
    # The Thursday after that Wednesday (not the helper's next Thursday,
    # which is a week earlier when the suite runs on a Monday or Tuesday).
    following = desk.clock.moment + timedelta(days=1)
    assert err.value.opens_at == following.replace(hour=6, minute=30)


def test_session_koseki_not_offered_after_1700(desk: Desk) -> None:
    desk.clock.moment = weekday_at(18)
    assert "koseki_zenbu" not in [k.id for k in desk.session().kinds]


def test_session_close_and_expiry(desk: Desk) -> None:
    session = desk.session()
    desk.service.close_session(DEVICE, session.session_id)
    assert code_of(desk.orders.create, DEVICE, desk.order(session)) == "session_invalid"
    other = desk.session()
    desk.clock.advance(601)
    assert code_of(desk.orders.create, DEVICE, desk.order(other)) == "session_invalid"
    third = desk.session()
    assert code_of(desk.orders.create, "kiosk-2", desk.order(third)) == "session_invalid"


def test_order_idempotent_on_key_and_fee_computed_centrally(desk: Desk) -> None:
    session = desk.session()
    first = desk.orders.create(DEVICE, desk.order(session, copies=2))
    assert first.total_fee_yen == 400 and first.status == "pending"
    assert first.items[0].options == {"household": "self", "relationship": "false",
                                      "honseki": "false"}  # fmt: skip
    assert desk.orders.create(DEVICE, desk.order(session, copies=2)) == first
    assert code_of(desk.orders.create, DEVICE, desk.order(session, copies=3)) == "order_invalid"
    second = desk.orders.create(DEVICE, desk.order(session, key="b" * 32))
    assert second.order_id != first.order_id


def test_order_validation(desk: Desk) -> None:
    session = desk.session()
    assert code_of(desk.orders.create, DEVICE, desk.order(session, copies=11)) == "order_invalid"
    bad_choice = desk.order(session, household="everyone")
    assert code_of(desk.orders.create, DEVICE, bad_choice) == "order_invalid"
    mynumber = desk.order(session, key="c" * 32, kojin_bango="true")
    assert code_of(desk.orders.create, DEVICE, mynumber) == "order_invalid"
    unknown = OrderIn(session_id=session.session_id, idempotency_key="d" * 32,
                      items=[OrderItemIn(kind="fishing_licence", copies=1)])  # fmt: skip
    assert code_of(desk.orders.create, DEVICE, unknown) == "kind_unavailable"


def _pdf_text(document_b64: str) -> str:
    return "".join(
        p.extract_text() for p in PdfReader(io.BytesIO(base64.b64decode(document_b64))).pages
    )


def test_confirm_issues_numbered_pdfs_idempotently(desk: Desk) -> None:
    session = desk.session()
    order = desk.orders.create(DEVICE, desk.order(session, copies=2, relationship="true"))
    confirmed = desk.orders.confirm(DEVICE, order.order_id, ConfirmIn(payment_ref="pay-1"))
    year = desk.clock().astimezone(JST).year
    numbers = [d.issue_number for d in confirmed.documents]
    assert numbers == [f"{year}-000001", f"{year}-000002"]
    assert [d.copy_index for d in confirmed.documents] == [1, 2]
    again = desk.orders.confirm(DEVICE, order.order_id, ConfirmIn(payment_ref="pay-1"))
    assert again == confirmed
    text = _pdf_text(confirmed.documents[0].pdf)
    assert "住民票の写し" in text and numbers[0] in text and "みどり市" in text
    assert "続柄" in text and "本籍" not in text
    assert not re.search(r"(?<!\d)\d{12}(?!\d)", text.replace(" ", ""))
    other = desk.orders.create(DEVICE, desk.order(session, key="e" * 32))
    following = desk.orders.confirm(DEVICE, other.order_id, ConfirmIn(payment_ref="pay-2"))
    assert following.documents[0].issue_number == f"{year}-000003"


def test_confirm_needs_an_open_session_and_a_pending_order(desk: Desk) -> None:
    session = desk.session()
    order = desk.orders.create(DEVICE, desk.order(session))
    assert code_of(desk.orders.confirm, "kiosk-2", order.order_id, ConfirmIn(payment_ref="p")) \
        == "order_invalid"  # fmt: skip
    desk.service.close_session(DEVICE, session.session_id)
    assert code_of(desk.orders.confirm, DEVICE, order.order_id, ConfirmIn(payment_ref="p")) \
        == "session_invalid"  # fmt: skip
    voided = desk.orders.outcome(DEVICE, order.order_id, OutcomeIn(status="voided"))
    assert voided.status == "voided"
    assert code_of(desk.orders.confirm, DEVICE, order.order_id, ConfirmIn(payment_ref="p")) \
        == "order_state"  # fmt: skip


def test_confirm_again_after_the_session_closed_is_refused(desk: Desk) -> None:
    """The attack: a second confirm of a confirmed order to fetch the PDFs
    again once the resident has gone (session closed, no outcome yet)."""
    session = desk.session()
    order = desk.orders.create(DEVICE, desk.order(session))
    desk.orders.confirm(DEVICE, order.order_id, ConfirmIn(payment_ref="p"))
    desk.service.close_session(DEVICE, session.session_id)
    assert code_of(desk.orders.confirm, DEVICE, order.order_id, ConfirmIn(payment_ref="p")) \
        == "session_invalid"  # fmt: skip


def _pdfs_kept(db: Database) -> int:
    with db.read() as conn:
        query = select(func.count()).where(issuance_documents.c.pdf.is_not(None))
        return int(conn.execute(query).scalar_one())


def test_documents_purged_after_document_seconds_without_an_outcome(desk: Desk) -> None:
    session = desk.session()
    order = desk.orders.create(DEVICE, desk.order(session, copies=2))
    desk.orders.confirm(DEVICE, order.order_id, ConfirmIn(payment_ref="p"))
    assert desk.orders.purge_documents() == 0 and _pdfs_kept(desk.db) == 2
    desk.clock.advance(desk.service.settings.document_seconds)  # the session still lives
    assert code_of(desk.orders.confirm, DEVICE, order.order_id, ConfirmIn(payment_ref="p")) \
        == "order_state"  # fmt: skip
    assert desk.orders.purge_documents() == 2 and _pdfs_kept(desk.db) == 0
    # The kiosk may still report what became of it.
    assert desk.orders.outcome(DEVICE, order.order_id, OutcomeIn(status="printed")).status \
        == "printed"  # fmt: skip


def _challenges_kept(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(issuance_challenges)).scalar_one())


def test_purger_thread_purges_documents_and_old_challenges_with_no_request(desk: Desk) -> None:
    session = desk.session()  # one challenge, used
    desk.service.new_challenge(DEVICE)  # one never used
    order = desk.orders.create(DEVICE, desk.order(session))
    desk.orders.confirm(DEVICE, order.order_id, ConfirmIn(payment_ref="p"))
    assert _challenges_kept(desk.db) == 2
    purger = IssuancePurger(desk.orders, interval=0.02).start()
    try:
        desk.clock.advance(desk.service.settings.document_seconds + 1)
        wait_until(lambda: _pdfs_kept(desk.db) == 0, 10, "the purge thread")
        assert _challenges_kept(desk.db) == 2  # expired, but not yet for an hour
        fresh = desk.service.new_challenge(DEVICE)
        desk.clock.advance(3600 + desk.service.settings.challenge_seconds - 1)
        wait_until(lambda: _challenges_kept(desk.db) == 1, 10, "the challenge purge")
    finally:
        purger.stop()
    body = session_in(issuance_pki().user("valid"), fresh, DEVICE)
    assert code_of(desk.service.open_session, DEVICE, body) == "challenge_invalid"  # expired


def test_outcome_drops_the_pdfs_audits_and_counts(desk: Desk) -> None:
    session = desk.session()
    printed = desk.orders.create(DEVICE, desk.order(session, copies=2))
    desk.orders.confirm(DEVICE, printed.order_id, ConfirmIn(payment_ref="p1"))
    assert desk.orders.outcome(DEVICE, printed.order_id, OutcomeIn(status="printed")).status \
        == "printed"  # fmt: skip
    assert desk.orders.outcome(DEVICE, printed.order_id, OutcomeIn(status="printed")).status \
        == "printed"  # fmt: skip
    assert code_of(desk.orders.outcome, DEVICE, printed.order_id, OutcomeIn(status="failed")) \
        == "order_state"  # fmt: skip
    jammed = desk.orders.create(DEVICE, desk.order(session, key="f" * 32))
    desk.orders.confirm(DEVICE, jammed.order_id, ConfirmIn(payment_ref="p2"))
    desk.orders.outcome(DEVICE, jammed.order_id, OutcomeIn(status="failed", reason="jammed"))
    desk.orders.outcome(DEVICE, jammed.order_id, OutcomeIn(status="refunded"))
    assert _pdfs_kept(desk.db) == 0
    with desk.db.read() as conn:
        audit = [dict(r._mapping) for r in conn.execute(select(issuance_audit))]
    assert {a["action"] for a in audit} >= {"session_opened", "issued", "outcome"}
    for row in audit:
        assert set(row) == {"pk", "at", "device", "resident_ref", "action", "order_id", "kind",
                            "copies", "fee_yen", "outcome"}  # fmt: skip
        assert "試験" not in str(row)
    month = desk.clock().astimezone(JST).strftime("%Y-%m")
    stats = issuance_stats(desk.db, month, JST)
    assert [(s.kind, s.issued, s.printed, s.not_handed_out, s.fees_yen) for s in stats] == [
        ("juminhyo", 3, 2, 1, 400)
    ]


def test_ineligible_reason_never_stored(desk: Desk) -> None:
    assert code_of(desk.session, "ineligible") == "use_counter"
    with desk.db.read() as conn:
        outcomes = [r.outcome for r in conn.execute(select(issuance_audit))]
    assert outcomes == ["use_counter"]


def test_issue_numbers_with_two_concurrent_workers_on_postgresql(postgres_url: str) -> None:
    """Two engines (as two API processes would have) allocate at once."""
    first, second = Database(postgres_url), Database(postgres_url)
    got: list[int] = []
    lock = threading.Lock()

    def worker(db: Database) -> None:
        for _ in range(40):
            with db.write() as conn:
                numbers = list(allocate_issue_numbers(db, conn, 2099, 2))
            with lock:
                got.extend(numbers)

    threads = [threading.Thread(target=worker, args=(db,)) for db in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first.close()
    second.close()
    assert sorted(got) == list(range(1, 161))


def test_always_open_hours_accepts_sessions_at_night(central_db: Database, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, hours=ALWAYS_OPEN)
    registry = seeded_registry(settings)
    service, _orders = build(central_db, settings, registry, MovableClock(weekday_at(3)))
    assert service.catalogue().hours.open_now
    registry.close()


def record_writes(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """From now on, each write transaction of ``db`` appends whether it is durable."""
    writes: list[bool] = []
    write = db.write

    @contextmanager
    def recording(*, durable: bool = True) -> Iterator[Connection]:
        writes.append(durable)
        with write(durable=durable) as conn:
            yield conn

    monkeypatch.setattr(db, "write", recording)
    return writes


def test_order_not_flushed_alone_and_its_confirmation_durable(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pending order commits without a flush of its own; the confirmation
    is durable (its flush carries the order); a lost order refuses."""
    session = desk.session()
    writes = record_writes(desk.db, monkeypatch)
    order = desk.orders.create(DEVICE, desk.order(session))
    assert writes == [False]
    desk.orders.confirm(DEVICE, order.order_id, ConfirmIn(payment_ref="p"))
    assert writes == [False, True]
    lost = desk.orders.create(DEVICE, desk.order(session, key="b" * 32))
    with desk.db.engine.begin() as conn:  # what a power loss would undo
        conn.execute(issuance_orders.delete().where(issuance_orders.c.id == lost.order_id))
    assert code_of(desk.orders.confirm, DEVICE, lost.order_id, ConfirmIn(payment_ref="p")) \
        == "order_invalid"  # fmt: skip


def test_session_attempt_ends_durably_whatever_its_outcome(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The challenge and its consumption commit without a flush of their
    own; every attempt's last write is durable, so the consumption is on
    disk before the answer leaves, an error included."""
    writes = record_writes(desk.db, monkeypatch)
    outcomes = {"valid": "ok", "expired": "certificate_expired",
                "unknown": "resident_unknown", "ineligible": "use_counter"}  # fmt: skip
    for variant, code in outcomes.items():
        writes.clear()
        assert code_of(desk.session, variant) == code
        assert writes[:2] == [False, False] and writes[2:] == [True], variant

    def registry_down(_key: object) -> None:
        raise RegistryError("down")

    user = issuance_pki().user("valid")
    body = session_in(user, desk.service.new_challenge(DEVICE), DEVICE)
    writes.clear()
    with monkeypatch.context() as patch:
        patch.setattr(desk.service.registry, "resident_for", registry_down)
        with pytest.raises(RegistryError):
            desk.service.open_session(DEVICE, body)
    assert writes == [False, True]
    assert code_of(desk.service.open_session, DEVICE, body) == "challenge_invalid"
