"""The statements of a session, an order and its confirmation, built once.

Building a SQLAlchemy Core statement costs several times running it
(about 0.1 ms against 0.02 ms on the benchmark machine: the expression
objects and their cache key), and one resident's session, order and
confirmation run about twenty. Built here with bound parameters, each
statement keeps its cache key and compiled form for the process.
Parameter names carry a prefix: SQLAlchemy reserves a column's own name
for the VALUES/SET of an insert or update.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert, Select, Update, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from central.db.tables import (
    issuance_audit,
    issuance_challenges,
    issuance_counters,
    issuance_documents,
    issuance_orders,
    issuance_sessions,
)

challenges = issuance_challenges.c
sessions = issuance_sessions.c
orders = issuance_orders.c

INSERT_CHALLENGE = issuance_challenges.insert()
DELETE_OLD_CHALLENGES = issuance_challenges.delete().where(
    challenges.expires_at < bindparam("p_before")
)
# Single use: only an unused, unexpired challenge of this device is taken.
CONSUME_CHALLENGE = (
    update(issuance_challenges)
    .where(
        challenges.id == bindparam("p_id"),
        challenges.device == bindparam("p_device"),
        challenges.used_at.is_(None),
        challenges.expires_at > bindparam("p_now"),
    )
    .values(used_at=bindparam("p_now"))
    .returning(challenges.challenge)
)

INSERT_SESSION = issuance_sessions.insert()
SESSION: Select[Any] = select(issuance_sessions).where(
    sessions.id == bindparam("p_id"), sessions.device == bindparam("p_device")
)
INSERT_AUDIT = issuance_audit.insert()

INSERT_ORDER = issuance_orders.insert()
ORDER_BY_KEY: Select[Any] = select(issuance_orders).where(
    orders.device == bindparam("p_device"), orders.idempotency_key == bindparam("p_key")
)
ORDER: Select[Any] = select(issuance_orders).where(
    orders.id == bindparam("p_id"), orders.device == bindparam("p_device")
)
ORDER_LOCKED: Select[Any] = ORDER.with_for_update()  # PostgreSQL's row lock
# The columns to set are the parameters given (besides p_id).
UPDATE_ORDER: Update = update(issuance_orders).where(orders.id == bindparam("p_id"))
INSERT_DOCUMENT = issuance_documents.insert()


def _counter_upsert(dialect: Any) -> Insert:
    stmt = dialect.insert(issuance_counters).values(
        year=bindparam("p_year"), last=bindparam("p_count")
    )
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=["year"],
        set_={"last": issuance_counters.c.last + bindparam("p_count")},
    ).returning(issuance_counters.c.last)


# Reserve p_count issue numbers of p_year; returns the last one reserved.
ALLOCATE_NUMBERS: dict[str, Insert] = {
    "postgresql": _counter_upsert(postgresql),
    "sqlite": _counter_upsert(sqlite),
}
