"""Every table of central's database, on one :data:`metadata` (SQLAlchemy Core).

The schema's history is in :mod:`central.db.migrations`: a change here needs a
new revision there (``tests/unit/test_central_schema.py`` fails otherwise).
:class:`central.db.engine.Database` creates a brand-new database from this
metadata and stamps it with the newest revision.

No table holds a resident's name, address, birth date or My Number: residents
of certificate issuance appear only by the registry's opaque reference.
Facility members (who book rooms) have a display name and an e-mail address
for staff and confirmations, nothing more; cards appear only as the opaque
references devices compute. Certificate PDFs are kept
only while an order is ``confirmed`` (so a retried confirm gets the same
documents) and dropped when its outcome is recorded.
"""

from __future__ import annotations

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.dialects import postgresql

metadata = MetaData()
Json = JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("device", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("type", String(128), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("clock_trusted", Boolean, nullable=False),
    Column("data", Json, nullable=False),
    Column("received_at", DateTime, nullable=False),
    Column("worker", String(64), nullable=False),
    Index("ix_events_device_seq", "device", "seq"),
    Index("ix_events_type_at", "type", "at"),
    Index("ix_events_at", "at"),
)

# A valid envelope whose content central refused (kept for people, still acked).
event_quarantine = Table(
    "event_quarantine",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("device", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("type", String(128), nullable=False),
    Column("envelope", Json, nullable=False),
    Column("reason", Text, nullable=False),
    Column("received_at", DateTime, nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("facility", String(64), nullable=True),
    Column("status", String(16), nullable=False, default="unknown"),
    Column("session", BigInteger, nullable=False, default=-1),
    Column("status_at", DateTime, nullable=True),
    Column("last_seen", DateTime, nullable=True),
    Column("versions", Json, nullable=False, default=dict),
    Column("health", Json, nullable=True),
    Column("health_at", DateTime, nullable=True),
)

device_seq = Table(
    "device_seq",
    metadata,
    Column("device", String(64), primary_key=True),
    Column("contiguous_seq", BigInteger, nullable=False),
    Column("max_seq", BigInteger, nullable=False),
    Column("gaps", Json, nullable=False),
    Column("events_total", BigInteger, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

reservations = Table(
    "reservations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("facility", String(64), nullable=False),
    Column("door", String(64), nullable=False),
    Column("starts_at", DateTime, nullable=False),
    Column("ends_at", DateTime, nullable=False),
    Column("credential_refs", Json, nullable=False),
    Column("code_hash", String(200), nullable=True),
    Column("status", String(16), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_reservations_facility_status", "facility", "status"),
)

facilities = Table(
    "facilities",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

reservation_changes = Table(
    "reservation_changes",
    metadata,
    Column("facility", String(64), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("changes", Json, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("published_at", DateTime, nullable=True),
    PrimaryKeyConstraint("facility", "version"),
    Index("ix_reservation_changes_unpublished", "published_at"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
)

# Certificate issuance (docs/issuance.md).

issuance_challenges = Table(
    "issuance_challenges",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("device", String(64), nullable=False),
    Column("challenge", String(64), nullable=False),  # hex
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("used_at", DateTime, nullable=True),
    Index("ix_issuance_challenges_expires_at", "expires_at"),
)

issuance_sessions = Table(
    "issuance_sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("device", String(64), nullable=False),
    Column("resident_ref", String(64), nullable=False),
    Column("cert_fingerprint", String(64), nullable=False),
    Column("kinds", Json, nullable=False),  # kind ids offered at opening
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("closed_at", DateTime, nullable=True),
)

issuance_orders = Table(
    "issuance_orders",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("device", String(64), nullable=False),
    Column("session_id", String(32), nullable=False),
    Column("idempotency_key", String(32), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("resident_ref", String(64), nullable=False),
    Column("items", Json, nullable=False),  # [{kind, copies, fee_yen, options}]
    Column("total_fee_yen", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("payment_ref", String(64), nullable=True),
    Column("outcome_reason", String(64), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("issued_at", DateTime, nullable=True),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("device", "idempotency_key", name="uq_issuance_orders_device_key"),
    Index("ix_issuance_orders_issued_at", "issued_at"),
)

issuance_documents = Table(
    "issuance_documents",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("order_id", String(32), nullable=False, index=True),
    Column("item_index", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("copy_index", Integer, nullable=False),
    Column("issue_number", String(32), nullable=False, unique=True),
    Column("sha256", String(64), nullable=False),
    Column("pdf", LargeBinary, nullable=True),  # dropped once the outcome is known
)

# The last issue number handed out per (local) year.
issuance_counters = Table(
    "issuance_counters",
    metadata,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("last", BigInteger, nullable=False),
)

# Who (device, opaque resident ref), when, what kind, copies, fee, outcome.
issuance_audit = Table(
    "issuance_audit",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("device", String(64), nullable=False),
    Column("resident_ref", String(64), nullable=True),
    Column("action", String(32), nullable=False),  # session_opened, session_refused, issued, ...
    Column("order_id", String(32), nullable=True),
    Column("kind", String(32), nullable=True),
    Column("copies", Integer, nullable=False, default=0),
    Column("fee_yen", Integer, nullable=False, default=0),
    Column("outcome", String(32), nullable=True),  # refusal code or order status
    Index("ix_issuance_audit_at", "at"),
)

# Central ops: health history, alerts, staff accounts and sessions (docs/ops.md).

# Health history: raw samples for ``raw_days``, then one averaged sample per
# device and hour (``resolution = 3600``) for ``hourly_days``; older rows go.
health_samples = Table(
    "health_samples",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("device", String(64), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("resolution", Integer, nullable=False),  # 0 = raw, 3600 = hourly mean
    Column("figures", Json, nullable=False),
    Index("ix_health_samples_device_at", "device", "at"),
    Index("ix_health_samples_resolution_at", "resolution", "at"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("device", String(64), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("state", String(16), nullable=False),  # open | acknowledged | resolved
    Column("opened_at", DateTime, nullable=False),
    Column("acknowledged_by", String(64), nullable=True),
    Column("acknowledged_at", DateTime, nullable=True),
    Column("resolved_at", DateTime, nullable=True),
    Column("notified", Integer, nullable=False, default=0),
    # Staff calls (rule "staff_requested"): the device's call id, and who
    # finished it (a staff user name, or "device" when the person left).
    Column("ref", String(64), nullable=True),
    Column("resolved_by", String(64), nullable=True),
    Index("ix_alerts_state", "state"),
    Index("ix_alerts_device_rule", "device", "rule"),
)

staff_users = Table(
    "staff_users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", String(256), nullable=False),
    Column("totp_secret", String(64), nullable=False),
    Column("role", String(16), nullable=False),  # viewer | operator | admin
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime, nullable=True),
    Column("last_totp_step", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False),
    # An admin disabled the account: no sign-in, its sessions are gone.
    Column("disabled", Boolean, nullable=False, default=False, server_default=false()),
)
# totp_secret "" means no authenticator app: a new account or one whose second
# factor an admin reset signs in only through its one-time enrolment link.

# Staff passkeys (WebAuthn, central/ops/passkeys.py). ``credential_id`` is the
# authenticator's id in base64url; ``public_key`` its COSE key. A credential
# whose signature counter did not increase (a cloned authenticator) is kept
# but ``disabled_at`` is set, so it can never sign in again.
staff_passkeys = Table(
    "staff_passkeys",
    metadata,
    Column("credential_id", String(512), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("sign_count", BigInteger, nullable=False, default=0),
    Column("transports", String(128), nullable=False, default=""),  # comma-separated
    Column("label", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime, nullable=True),
    Column("disabled_at", DateTime, nullable=True),
    Index("ix_staff_passkeys_username", "username"),
)

# Pending single-use steps of staff sign-in: a WebAuthn challenge (sign-in
# after the password, or registering a passkey) and one-time enrolment links.
# Only the SHA-256 of the token (cookie or link) is stored; a step is used by
# ``DELETE ... RETURNING``, so of parallel uses exactly one gets it.
staff_challenges = Table(
    "staff_challenges",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("purpose", String(16), nullable=False),  # signin | register | enrol
    Column("challenge", String(128), nullable=False),  # base64url; "" for enrol
    Column("expires_at", DateTime, nullable=False),
    Index("ix_staff_challenges_expires", "expires_at"),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)

# Facility reservations: members, their cards, rooms and bookings (docs/booking.md).
# A member's name and e-mail address live here (staff need them); they are
# never logged, and devices only ever see the cards' opaque references.

members = Table(
    "members",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("external_number", String(64), nullable=True, unique=True),  # the import key
    Column("display_name", String(100), nullable=False),
    Column("email", String(254), nullable=False, unique=True),  # lower-cased
    Column("language", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # active | suspended
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

# A card reference is unique among active cards only: a revoked card may be
# enrolled again (by its member or, after a hand-over, by someone else).
member_cards = Table(
    "member_cards",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("member_id", String(32), nullable=False),
    Column("credential_ref", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # member_card | mynumber_card
    Column("label", String(40), nullable=False),
    Column("status", String(16), nullable=False),  # active | revoked
    Column("enrolled_at", DateTime, nullable=False),
    Column("enrolled_by", String(80), nullable=False),  # device:<id> | staff:<who>
    Column("revoked_at", DateTime, nullable=True),
    Column("revoked_by", String(80), nullable=True),
    Index("ix_member_cards_member", "member_id"),
    Index(
        "uq_member_cards_active_ref",
        "credential_ref",
        unique=True,
        sqlite_where=text("status = 'active'"),
        postgresql_where=text("status = 'active'"),
    ),
)

# One-time enrolment codes, kept only as a keyed hash (8 digits are guessed in
# seconds under a plain hash).
enrolment_codes = Table(
    "enrolment_codes",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("code_hash", String(64), nullable=False),
    Column("member_id", String(32), nullable=False),
    Column("issued_by", String(80), nullable=False),  # staff:<who> | self
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("used_at", DateTime, nullable=True),
    Column("used_by", String(80), nullable=True),  # device:<id>
    Column("attempts", Integer, nullable=False, default=0),  # redemptions tried
    Index("ix_enrolment_codes_hash", "code_hash"),
)

# A redeemed code's short-lived ticket, bound to one device (stored hashed).
enrolment_tickets = Table(
    "enrolment_tickets",
    metadata,
    Column("ticket_hash", String(64), primary_key=True),
    Column("member_id", String(32), nullable=False),
    Column("device", String(64), nullable=False),
    Column("code_id", String(32), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("closed_at", DateTime, nullable=True),
)

# Wrong codes typed per device: the attempt limit counts the recent ones.
enrolment_failures = Table(
    "enrolment_failures",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("device", String(64), nullable=False),
    Column("at", DateTime, nullable=False),
    Index("ix_enrolment_failures_device_at", "device", "at"),
)

# What the booking rules need of a facility (the version row in `facilities`
# stays the reservation log's).
facility_settings = Table(
    "facility_settings",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("address", String(300), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("opening_hours", Json, nullable=False),  # rules.OpeningHours
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

rooms = Table(
    "rooms",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("facility", String(64), nullable=False),
    Column("door", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("rules", Json, nullable=False),  # rules.BookingRules
    Column("fee_per_slot_yen", Integer, nullable=False),
    Column("opening_hours", Json, nullable=True),  # None: the facility's
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_rooms_facility", "facility"),
)

closures = Table(
    "closures",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("facility", String(64), nullable=False),
    Column("room", String(64), nullable=True),  # None: the whole facility
    Column("starts_at", DateTime, nullable=False),
    Column("ends_at", DateTime, nullable=False),
    Column("kind", String(16), nullable=False),  # maintenance | holiday | other
    Column("created_by", String(80), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index("ix_closures_facility_ends", "facility", "ends_at"),
)

# No two booked rows of one door overlap: on PostgreSQL an exclusion
# constraint (created with the table, see below, and by revision 0002); on
# SQLite the booking service checks and inserts in one BEGIN IMMEDIATE
# transaction, which SQLite runs one writer at a time.
bookings = Table(
    "bookings",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("external_id", String(64), nullable=True, unique=True),  # the import key
    Column("facility", String(64), nullable=False),
    Column("room", String(64), nullable=False),
    Column("door", String(64), nullable=False),
    Column("member_id", String(32), nullable=True),  # None: a walk-in
    Column("starts_at", DateTime, nullable=False),
    Column("ends_at", DateTime, nullable=False),
    Column("status", String(16), nullable=False),  # booked | cancelled
    Column("code_hash", String(200), nullable=True),
    Column("source", String(16), nullable=False),  # site | staff | import
    Column("created_by", String(80), nullable=False),
    Column("reservation_id", String(64), nullable=True),  # the devices' copy
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_bookings_door_starts", "door", "starts_at"),
    Index("ix_bookings_member_starts", "member_id", "starts_at"),
    Index("ix_bookings_room_starts", "room", "starts_at"),
)

BOOKINGS_NO_OVERLAP = "ex_bookings_door_no_overlap"
# Stored times are naive UTC (timestamp without time zone), so the range is a
# tsrange: tstzrange over them would depend on the session's time zone and is
# not immutable, which an index refuses.
BOOKINGS_NO_OVERLAP_DDL = (
    f"ALTER TABLE bookings ADD CONSTRAINT {BOOKINGS_NO_OVERLAP} EXCLUDE USING gist "
    "(door WITH =, tsrange(starts_at, ends_at, '[)') WITH &&) WHERE (status = 'booked')"
)
for _ddl in ("CREATE EXTENSION IF NOT EXISTS btree_gist", BOOKINGS_NO_OVERLAP_DDL):
    event.listen(
        bookings,
        "after_create",
        DDL(_ddl).execute_if(dialect="postgresql"),  # type: ignore[no-untyped-call]
    )

# Central's one audit log (docs/ops.md, "Audit log"): every staff, API and
# command-line action with who (``actor``), when (``at``), from where
# (``source``: client address, ``cli``, ``device:<id>``) and the outcome
# (``ok``/``refused``/``failed`` and a reason code). ``detail`` holds ids,
# times and codes, never a name, an e-mail address or a secret
# (``central.audit`` checks it before writing). Append-only: the triggers below
# refuse UPDATE and DELETE, for the application and anyone without the right
# to drop them (pruning after the retention period: docs/ops.md).
audit_log = Table(
    "audit_log",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("actor", String(80), nullable=False),  # staff:<who> | token:<id> | device:<id> | cli:..
    Column("action", String(48), nullable=False),  # booking.created, staff.sign_in, ...
    Column("subject", String(80), nullable=False),  # booking:<id>, member:<id>, ...
    Column("detail", Json, nullable=False),
    Column("source", String(64), nullable=False, server_default=""),
    Column("outcome", String(8), nullable=False, server_default="ok"),  # ok | refused | failed
    Column("reason", String(48), nullable=False, server_default=""),  # wrong_code, http_403, ..
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_subject", "subject"),
    Index("ix_audit_log_actor", "actor"),
)
# The same statements are in migration 0007 (frozen there).
AUDIT_LOG_APPEND_ONLY_SQLITE = tuple(
    f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
    for verb in ("UPDATE", "DELETE")
)
AUDIT_LOG_APPEND_ONLY_POSTGRESQL = (
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = '42501'; END $$",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)
for _dialect, _statements in (("sqlite", AUDIT_LOG_APPEND_ONLY_SQLITE),
                              ("postgresql", AUDIT_LOG_APPEND_ONLY_POSTGRESQL)):  # fmt: skip
    for _ddl in _statements:
        event.listen(
            audit_log,
            "after_create",
            DDL(_ddl).execute_if(dialect=_dialect),  # type: ignore[no-untyped-call]
        )

# The booking site's password-less sign-in (docs/booking.md): a one-time link
# and a 6-digit code per request. The link token is stored as SHA-256 (it is
# 256 random bits); the code as a keyed HMAC, since a plain hash of 6 digits is
# reversed in a second. ``id`` names the request in the code form.
member_sign_ins = Table(
    "member_sign_ins",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("member_id", String(32), nullable=False),
    Column("link_hash", String(64), nullable=False, unique=True),
    Column("code_hash", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("used_at", DateTime, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),  # wrong codes typed
    Index("ix_member_sign_ins_member_created", "member_id", "created_at"),
)

# Signed-in residents: the cookie's token as SHA-256, the CSRF token of forms.
member_sessions = Table(
    "member_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("member_id", String(32), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Index("ix_member_sessions_member", "member_id"),
)


# Messages to the city's existing booking system (a check-in of, or a no-show
# at, an imported booking), kept until the receiver took them: the outbox of
# central.reservations.hooks. ``delivery_id`` is derived from the booking and
# the kind, so the same fact is queued (and received) once.
booking_webhook_outbox = Table(
    "booking_webhook_outbox",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("delivery_id", String(64), nullable=False, unique=True),
    Column("booking_id", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # checked_in | no_show
    Column("body", Json, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("delivered_at", DateTime, nullable=True),
    Column("last_error", String(200), nullable=True),
    Index("ix_booking_webhook_outbox_due", "delivered_at", "next_attempt_at"),
    Index("ix_booking_webhook_outbox_booking", "booking_id"),
)


# Sign-in attempts per client address (and per site), counted in fixed
# windows so every API worker shares one limit: ``central.websec``'s
# ``AttemptLimiter`` adds one with an atomic upsert and refuses past the limit.
# The address is what the trusted-proxy rules make of the request; rows of
# windows long past are deleted as new windows open.
sign_in_attempts = Table(
    "sign_in_attempts",
    metadata,
    Column("scope", String(16), nullable=False),  # dashboard | booking
    Column("address", String(64), nullable=False),
    Column("window_start", DateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    PrimaryKeyConstraint("scope", "address", "window_start"),
    Index("ix_sign_in_attempts_window", "window_start"),
)


# Pushed device configuration (central.configpush, docs/ops.md "Configuration
# push"): every saved desired configuration of a facility or a device is a
# new row, never changed; ``version`` is one sequence for all of central, so
# the merge of a facility's latest and a device's latest (whose version is
# the greater of the two) only ever grows. ``settings`` holds only keys of
# contracts.configpush's allowlist (timings, texts, tuning), no personal data.
device_config_versions = Table(
    "device_config_versions",
    metadata,
    Column("version", BigId, primary_key=True, autoincrement=True),
    Column("scope", String(8), nullable=False),  # facility | device
    Column("target", String(64), nullable=False),  # the facility or device id
    Column("settings", Json, nullable=False),
    Column("created_by", String(80), nullable=False),  # staff:<user> | token:<id> | cli:..
    Column("created_at", DateTime, nullable=False),
    Column("note", String(200), nullable=False, server_default=""),
    Index("ix_device_config_versions_target", "scope", "target", "version"),
)

# The last configuration pushed to each device and what became of it
# (pending until the device's result or health says applied / refused).
device_config_state = Table(
    "device_config_state",
    metadata,
    Column("device", String(64), primary_key=True),
    Column("pushed_version", BigInteger, nullable=False),
    Column("command_id", String(36), nullable=False),
    Column("state", String(16), nullable=False),  # pending | applied | refused | failed
    Column("code", String(48), nullable=False, server_default=""),
    Column("message", String(500), nullable=False, server_default=""),
    Column("pushed_by", String(80), nullable=False),
    Column("pushed_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)


# Remote commands to devices (central/commands, docs/protocol.md "Commands").
# ``args`` holds door, seconds, service, version, the staff-written reason
# (checked by the personal-data guard before it is stored); ``detail`` the
# device's result figures. State: queued -> sent (PUBACK) -> delivered ->
# done | failed | refused | expired; a final state never changes again.
device_commands = Table(
    "device_commands",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("device", String(64), nullable=False),
    Column("facility", String(64), nullable=True),
    Column("name", String(32), nullable=False),
    Column("args", Json, nullable=False),
    Column("issued_by", String(80), nullable=False),
    Column("source", String(64), nullable=False),
    Column("payload", LargeBinary, nullable=False),  # the signed command as published
    Column("issued_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("code", String(48), nullable=False, default=""),
    Column("message", String(500), nullable=False, default=""),
    Column("detail", Json, nullable=False),
    Column("sent_at", DateTime, nullable=True),
    Column("delivered_at", DateTime, nullable=True),
    Column("finished_at", DateTime, nullable=True),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_device_commands_device_issued", "device", "issued_at"),
    Index("ix_device_commands_state", "state"),
)

# What a command collected (diagnostics JSON, a screenshot PNG), uploaded
# once by the command's device over the mutual-TLS listener.
device_command_files = Table(
    "device_command_files",
    metadata,
    Column("command_id", String(36), primary_key=True),
    Column("content_type", String(32), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("received_at", DateTime, nullable=False),
)
