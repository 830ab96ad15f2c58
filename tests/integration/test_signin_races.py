"""Parallel sign-in attacks on a real database (SQLite and PostgreSQL, the
``central_db`` fixture): every request races on its own connection and
thread, released together by a barrier, the way several API workers would
serve them.

* staff: 12 wrong passwords at once are 12 counted failures and a locked
  account; one TOTP code in 4 parallel sign-ins opens exactly one session;
* residents: 12 wrong codes at once end the sign-in after ``code_attempts``;
  the right code in 4 parallel requests opens exactly one session.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pyotp
import pytest
from sqlalchemy import func, select

from central.booking.signin import Outcome, Policy, SignIns
from central.db.engine import Database
from central.db.tables import member_sessions, member_sign_ins, staff_sessions, staff_users
from central.ops.staff import LOCKOUT, MAX_FAILURES, AccountLocked, SignInFailed, StaffStore
from tests.harness.booking import booking_world

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 7, 1, 0, 10, tzinfo=UTC)
PASSWORD = "correct horse battery"
T = TypeVar("T")
MemberSignIn = tuple[SignIns, str, str, datetime]


def together(count: int, attempt: Callable[[], T]) -> list[T | Exception]:
    """``attempt`` on ``count`` threads released at once; results or errors."""
    barrier = threading.Barrier(count)

    def run() -> T | Exception:
        barrier.wait(timeout=30)
        try:
            return attempt()
        except Exception as exc:  # the outcome under test, not a test failure
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: run(), range(count)))


@pytest.fixture
def staff_db(central_db: Database) -> Database:
    StaffStore(central_db).create("tanaka", PASSWORD, "admin")
    return central_db


def _staff(db: Database) -> tuple[int, datetime | None, int]:
    with db.read() as conn:
        row = conn.execute(select(staff_users).where(staff_users.c.username == "tanaka")).one()
        sessions = conn.execute(select(func.count()).select_from(staff_sessions)).scalar_one()
    return int(row.failed_logins), row.locked_until, int(sessions)


def test_staff_sign_in_parallel_wrong_passwords_are_all_counted(staff_db: Database) -> None:
    store = StaffStore(staff_db)
    code = pyotp.TOTP(_secret(staff_db)).at(NOW)
    outcomes = together(12, lambda: store.sign_in("tanaka", "wrong password!!", code, NOW))
    failures, locked_until, sessions = _staff(staff_db)
    assert failures == 12 and locked_until is not None and sessions == 0
    # Only the attempts within the limit had their password checked.
    assert sum(isinstance(o, SignInFailed) for o in outcomes) == MAX_FAILURES - 1
    assert sum(isinstance(o, AccountLocked) for o in outcomes) == 12 - (MAX_FAILURES - 1)
    with pytest.raises(AccountLocked):  # the right password too, while locked
        store.sign_in("tanaka", PASSWORD, code, NOW)


def test_staff_sign_in_one_totp_code_opens_one_session(staff_db: Database) -> None:
    store = StaffStore(staff_db)
    code = pyotp.TOTP(_secret(staff_db)).at(NOW)
    outcomes = together(4, lambda: store.sign_in("tanaka", PASSWORD, code, NOW))
    accepted = [o for o in outcomes if isinstance(o, tuple)]
    assert len(accepted) == 1, outcomes
    assert all(isinstance(o, SignInFailed) for o in outcomes if not isinstance(o, tuple))
    failures, locked_until, sessions = _staff(staff_db)
    assert sessions == 1 and locked_until is None and failures <= 3


def test_staff_sign_in_lock_runs_out_and_the_count_starts_again(staff_db: Database) -> None:
    store, totp = StaffStore(staff_db), pyotp.TOTP(_secret(staff_db))
    for _ in range(MAX_FAILURES):
        with pytest.raises((SignInFailed, AccountLocked)):
            store.sign_in("tanaka", "wrong password!!", totp.at(NOW), NOW)
    assert _staff(staff_db)[1] is not None
    later = NOW + LOCKOUT + timedelta(seconds=1)
    with pytest.raises(SignInFailed):  # counted afresh: one failure, not a new lock
        store.sign_in("tanaka", "wrong password!!", totp.at(later), later)
    assert _staff(staff_db)[:2] == (1, None)
    store.sign_in("tanaka", PASSWORD, totp.at(later), later)
    assert _staff(staff_db)[:2] == (0, None)


def _secret(db: Database) -> str:
    with db.read() as conn:
        return str(conn.execute(select(staff_users.c.totp_secret)).scalar_one())


@pytest.fixture
def member_sign_in(central_db: Database) -> MemberSignIn:
    world = booking_world(central_db)
    world.member("aki")
    sign_ins = SignIns(central_db, b"k" * 32, Policy(code_attempts=5))
    request_id, issued = sign_ins.request("aki@example.jp", world.clock())
    assert issued is not None
    return sign_ins, request_id, issued.code, world.clock()


def _member_state(db: Database, request_id: str) -> tuple[int, bool, int]:
    with db.read() as conn:
        row = conn.execute(select(member_sign_ins).where(member_sign_ins.c.id == request_id)).one()
        sessions = conn.execute(select(func.count()).select_from(member_sessions)).scalar_one()
    return int(row.attempts), row.used_at is not None, int(sessions)


def test_booking_sign_in_parallel_wrong_codes_end_it_at_the_limit(
    member_sign_in: MemberSignIn, central_db: Database
) -> None:
    sign_ins, request_id, code, now = member_sign_in
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    outcomes = together(12, lambda: sign_ins.redeem_code(request_id, wrong, now))
    attempts, ended, _ = _member_state(central_db, request_id)
    assert attempts == 5 and ended
    assert [o for o, _ in outcomes].count(Outcome.WRONG_CODE) == 4  # type: ignore[misc]
    assert sign_ins.redeem_code(request_id, code, now) == (Outcome.USED, None)


def test_booking_sign_in_one_code_opens_one_session(
    member_sign_in: MemberSignIn, central_db: Database
) -> None:
    sign_ins, request_id, code, now = member_sign_in
    outcomes = together(4, lambda: sign_ins.redeem_code(request_id, code, now))
    tokens = [token for _, token in outcomes if token]  # type: ignore[misc]
    assert len(tokens) == 1, outcomes
    assert _member_state(central_db, request_id)[2] == 1
