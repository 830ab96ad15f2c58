"""Bookings benchmark: ``python bench/booking.py [--quick] [--json]``.

Every figure is compared with a raw baseline measured in the same run:

1. **Availability** of a random room on a random day (the next 30) for one
   facility with 20 rooms and 100,000 bookings over about a year (1-4
   half-hour slots each, some cancelled, members and walk-ins), on SQLite and
   on PostgreSQL: ``BookingService.availability`` and the operator API's
   ``GET /api/rooms/{id}/availability`` (HTTP through the ASGI stack; no
   residents' booking page exists on this branch). Baseline: the bare SQL
   query on the driver's own connection fetching the same room's booked rows
   of that local day. Target: p95 <= 100 ms.
2. **Bookings per second under contention** on PostgreSQL (fsync on): N
   processes each run ``BookingService.create`` for every contested slot
   (requests of the N processes pairwise overlap: exactly one wins each, which
   is asserted) and for their own uncontested slots; accepted + refused per
   second. Baseline: the same requests as plain INSERTs into the same table
   with its exclusion constraint, same processes, one transaction each.
3. **Booking or revocation at central to the device's cache**: a real
   mosquitto (mutual TLS, fleet ACL), central's ``DeltaPublisher`` and ingest
   worker (catch-up) on PostgreSQL, the real sync agent (``python -m sync
   run``); a booking is timed from ``BookingService.create`` until the
   reservation is in the device's SQLite cache, a card revocation from
   ``MemberService.revoke_card`` until the card's reference is gone from it.
   Baseline: a raw paho publish of the same delta payload to a raw paho
   subscriber that commits it to SQLite (same pragmas), polled the same way.
   Target: p95 <= 1 s.

``--quick`` runs small sizes (about a minute).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import sqlite3
import ssl
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# fastapi's TestClient import warns about httpx in every (spawned) process.
warnings.filterwarnings("ignore", message="Using `httpx`")

import paho.mqtt.client as mqtt  # noqa: E402
import psycopg  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from cardreader.credential import member_reference  # noqa: E402
from central.api.app import create_app  # noqa: E402
from central.api.tokens import TokenStore  # noqa: E402
from central.config import load_config  # noqa: E402
from central.db.engine import Database, now_utc, utc  # noqa: E402
from central.db.tables import bookings, member_cards, members, reservation_changes  # noqa: E402
from central.errors import BookingRefused  # noqa: E402
from central.reservations.bookings import BookingService  # noqa: E402
from central.reservations.members import ENROLMENT_KEY_SCOPE, MemberService  # noqa: E402
from central.reservations.places import Places  # noqa: E402
from central.reservations.publisher import DeltaPublisher  # noqa: E402
from central.reservations.rules import BookingRules, Facility, OpeningHours, Room  # noqa: E402
from central.reservations.store import ReservationStore  # noqa: E402
from contracts.mqtt import ReservationDelta, encode, facility_reservations_topic  # noqa: E402
from tests.harness.central import worker_thread, write_config  # noqa: E402
from tests.harness.keys import TEST_KEY, fixed_code_key  # noqa: E402
from tests.harness.mosquitto import Mosquitto  # noqa: E402
from tests.harness.postgres import Postgres  # noqa: E402
from tests.harness.services import wait_until  # noqa: E402
from tests.harness.syncdev import agent_process, write_device_config  # noqa: E402

ZONE = ZoneInfo("Asia/Tokyo")
FACILITY = "bench-fac"
ROOMS = [f"room-{i:02d}" for i in range(1, 21)]
SLOT = 30  # minutes
OPENS, CLOSES = 6, 24  # local hours, every day
RULES = BookingRules(slot_minutes=SLOT, min_duration_minutes=SLOT, max_duration_minutes=120)
AVAILABILITY_TARGET_MS = 100.0
LATENCY_TARGET_S = 1.0


def pct(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def summary_ms(samples: Sequence[float]) -> dict[str, float]:
    return {"p50_ms": statistics.median(samples) * 1e3, "p95_ms": pct(samples, 0.95) * 1e3}


def local(day: date, minutes: int) -> datetime:
    return datetime.combine(day, datetime.min.time(), ZONE) + timedelta(minutes=minutes)


def setup_places(db: Database, rooms: Sequence[str] = ROOMS) -> None:
    places = Places(db)
    hours = OpeningHours.every_day(f"{OPENS:02d}:00", f"{CLOSES:02d}:00")
    places.put_facility(Facility(id=FACILITY, name="Bench sports centre", opening_hours=hours),
                        "bench")  # fmt: skip
    for room in rooms:
        places.put_room(Room(id=room, facility_id=FACILITY, door_id=f"{room}-door",
                             name=room, rules=RULES, fee_per_slot_yen=500), "bench")  # fmt: skip


# 1. availability --------------------------------------------------------------


def booking_row(room: str, starts: datetime, ends: datetime, rng: random.Random) -> dict[str, Any]:
    bid = f"{rng.getrandbits(128):032x}"
    now = now_utc()
    walk_in = rng.random() < 0.1
    return {
        "id": bid, "external_id": None, "facility": FACILITY, "room": room,
        "door": f"{room}-door", "member_id": None if walk_in else f"m{rng.randrange(3000):05d}",
        "starts_at": utc(starts), "ends_at": utc(ends),
        "status": "cancelled" if rng.random() < 0.08 else "booked",
        "code_hash": None, "source": rng.choice(("site", "site", "staff", "import")),
        "created_by": "bench", "reservation_id": bid, "created_at": now, "updated_at": now,
    }  # fmt: skip


def day_bookings(room: str, day: date, rng: random.Random) -> Iterator[dict[str, Any]]:
    """A realistic day of one room: 1-4 slots each, gaps of 0-2 slots."""
    minute = OPENS * 60 + SLOT * rng.choice((0, 0, 1, 2))
    while True:
        length = SLOT * rng.choice((1, 2, 2, 2, 3, 4))
        if minute + length > CLOSES * 60:
            return
        yield booking_row(room, local(day, minute), local(day, minute + length), rng)
        minute += length + SLOT * rng.choice((0, 0, 0, 1, 2))


def seed_bookings(db: Database, total: int, rng: random.Random) -> int:
    """``total`` bookings, the next 30 days first, then back in time (about a
    year for 100,000 over 20 rooms)."""
    today, made, chunk = datetime.now(ZONE).date(), 0, []
    offset = 30
    while made < total:
        for room in ROOMS:
            for row in day_bookings(room, today + timedelta(days=offset), rng):
                if made < total:
                    chunk.append(row)
                    made += 1
        offset -= 1
        if len(chunk) >= 5000 or made >= total:
            with db.write() as conn:
                conn.execute(insert(bookings), chunk)
            chunk = []
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("COMMIT")
            conn.exec_driver_sql("ANALYZE")
    return 30 - offset  # days covered


RAW_ROOM_DAY = (
    "SELECT * FROM bookings WHERE room = {p} AND status = 'booked'"
    " AND starts_at < {p} AND ends_at > {p}"
)


def availability_bench(db: Database, requests: int, rng: random.Random) -> dict[str, Any]:
    """Service call, HTTP and the bare query, interleaved, on random room/days."""
    service = BookingService(db, ReservationStore(db), fixed_code_key)
    _, token = TokenStore(db).create("reader", "bench")
    raw = db.engine.raw_connection()
    sql = RAW_ROOM_DAY.format(p="?" if db.dialect == "sqlite" else "%s")
    today = datetime.now(ZONE).date()
    times: dict[str, list[float]] = {"service": [], "http": [], "raw_sql": []}
    slots, rows = [], []
    with TestClient(create_app(db, code_key=fixed_code_key)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(requests):
            room, day = rng.choice(ROOMS), today + timedelta(days=rng.randrange(31))
            t0 = time.perf_counter()
            slots.append(len(service.availability(room, day)))
            t1 = time.perf_counter()
            response = client.get(f"/api/rooms/{room}/availability", params={"day": str(day)},
                                  headers=headers)  # fmt: skip
            t2 = time.perf_counter()
            cursor = raw.cursor()
            cursor.execute(sql, (room, utc(local(day, 24 * 60)), utc(local(day, 0))))
            rows.append(len(cursor.fetchall()))
            t3 = time.perf_counter()
            cursor.close()
            assert response.status_code == 200, response.text
            times["service"].append(t1 - t0)
            times["http"].append(t2 - t1)
            times["raw_sql"].append(t3 - t2)
    raw.close()
    out: dict[str, Any] = {k: summary_ms(v) for k, v in times.items()}
    out["mean_free_slots"] = statistics.mean(slots)
    out["mean_booked_rows"] = statistics.mean(rows)
    return out


def availability_case(url: str, total: int, requests: int) -> dict[str, Any]:
    rng = random.Random(7)
    db = Database(url)
    try:
        setup_places(db)
        t0 = time.perf_counter()
        days = seed_bookings(db, total, rng)
        seeded = time.perf_counter() - t0
        with db.read() as conn:
            count = conn.execute(select(func.count()).select_from(bookings)).scalar()
        result = availability_bench(db, requests, rng)
        return {"bookings": count, "days": days, "seed_s": seeded, **result}
    finally:
        db.close()


# 2. contention ----------------------------------------------------------------

# Requests of one contested group, as (start, end) minutes after its base: all
# contain [30, 60), so any two overlap and exactly one may win.
VARIANTS = ((0, 60), (30, 90), (0, 90), (30, 60))
CONTESTED_ROOMS, OWN_ROOMS = ROOMS[:10], ROOMS[10:]


@dataclass(frozen=True)
class Request:
    key: str  # "g<n>" for a contested group, "o<worker>-<n>" for an own slot
    room: str
    starts_at: datetime
    ends_at: datetime
    member_id: str


def slot_base(index: int, rooms: Sequence[str], spacing: int) -> tuple[str, datetime]:
    """The index-th (room, start) on a grid of ``spacing`` minutes, days 1-30."""
    per_day = (CLOSES - OPENS) * 60 // spacing
    room = rooms[index % len(rooms)]
    position = index // len(rooms)
    day = datetime.now(ZONE).date() + timedelta(days=1 + position // per_day)
    return room, local(day, OPENS * 60 + (position % per_day) * spacing)


def contention_plan(workers: int, groups: int, own: int) -> list[list[Request]]:
    plans: list[list[Request]] = []
    for w in range(workers):
        plan = []
        for g in range(groups):
            room, base = slot_base(g, CONTESTED_ROOMS, 120)
            start, end = VARIANTS[(w + g) % len(VARIANTS)]
            plan.append(Request(f"g{g}", room, base + timedelta(minutes=start),
                                base + timedelta(minutes=end), f"b{w}g{g}"))  # fmt: skip
        for n in range(own):
            room, base = slot_base(w * own + n, OWN_ROOMS, 60)
            plan.append(Request(f"o{w}-{n}", room, base, base + timedelta(minutes=60),
                                f"b{w}o{n}"))  # fmt: skip
        random.Random(w).shuffle(plan)
        plans.append(plan)
    return plans


def add_members(db: Database, plans: list[list[Request]]) -> None:
    now = now_utc()
    rows = [{"id": r.member_id, "external_number": None, "display_name": "Bench member",
             "email": f"{r.member_id}@bench.invalid", "language": "ja", "status": "active",
             "created_at": now, "updated_at": now} for plan in plans for r in plan]  # fmt: skip
    with db.write() as conn:
        conn.execute(insert(members), rows)


Outcome = tuple[str, str]  # request key, "ok" or the refusal code


def ours_worker(url: str, plan: list[Request], barrier: Any, results: Any) -> None:
    db = Database(url, pool_size=1)
    service = BookingService(db, ReservationStore(db), fixed_code_key)
    out: list[Outcome] = []
    barrier.wait()
    for r in plan:
        try:
            service.create(r.room, r.starts_at, r.ends_at, member_id=r.member_id, actor="bench")
            out.append((r.key, "ok"))
        except BookingRefused as exc:
            out.append((r.key, exc.code))
    results.put((out, time.perf_counter()))
    db.close()


RAW_INSERT = (
    "INSERT INTO bookings (id, facility, room, door, member_id, starts_at, ends_at, status,"
    " source, created_by, reservation_id, created_at, updated_at) VALUES"
    " (%s, %s, %s, %s, %s, %s, %s, 'booked', 'staff', 'bench', %s, %s, %s)"
)


def raw_worker(url: str, plan: list[Request], barrier: Any, results: Any) -> None:
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    out: list[Outcome] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        barrier.wait()
        for r in plan:
            bid, now = f"{random.getrandbits(128):032x}", now_utc()
            try:
                values = (bid, FACILITY, r.room, f"{r.room}-door", r.member_id,
                          utc(r.starts_at), utc(r.ends_at), bid, now, now)  # fmt: skip
                conn.execute(RAW_INSERT, values)
                out.append((r.key, "ok"))
            except psycopg.errors.ExclusionViolation:
                out.append((r.key, "slot_taken"))
    results.put((out, time.perf_counter()))


def run_workers(
    target: Callable[..., None], url: str, plans: list[list[Request]]
) -> dict[str, Any]:
    """Start one process per plan, release them together; attempts per second."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(len(plans) + 1), ctx.Queue()
    procs = [ctx.Process(target=target, args=(url, plan, barrier, results)) for plan in plans]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)
    t0 = time.perf_counter()
    gathered = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(30)
    outcomes = [o for out, _ in gathered for o in out]
    elapsed = max(end for _, end in gathered) - t0
    return {"outcomes": outcomes, "elapsed_s": elapsed, "per_s": len(outcomes) / elapsed}


def check_outcomes(outcomes: list[Outcome], groups: int) -> dict[str, int]:
    """Exactly one winner per contested group; every own slot accepted; every
    refusal a ``slot_taken``."""
    won: dict[str, int] = {}
    for key, result in outcomes:
        if key.startswith("g"):
            won[key] = won.get(key, 0) + (result == "ok")
            assert result in ("ok", "slot_taken"), (key, result)
        else:
            assert result == "ok", (key, result)
    assert len(won) == groups and all(n == 1 for n in won.values()), won
    accepted = sum(1 for _, r in outcomes if r == "ok")
    return {"attempts": len(outcomes), "accepted": accepted, "refused": len(outcomes) - accepted}


def booked_rows(url: str) -> int:
    db = Database(url)
    try:
        with db.read() as conn:
            query = select(func.count()).select_from(bookings).where(bookings.c.status == "booked")
            return int(conn.execute(query).scalar() or 0)
    finally:
        db.close()


def contention_case(pg: Postgres, workers: int, groups: int, own: int) -> dict[str, Any]:
    plans = contention_plan(workers, groups, own)
    out: dict[str, Any] = {"workers": workers, "contested_groups": groups, "own_per_worker": own}
    for name, target in (("raw_insert", raw_worker), ("ours", ours_worker)):
        url = pg.create_database()
        db = Database(url)
        setup_places(db)
        add_members(db, plans)
        db.close()
        run = run_workers(target, url, plans)
        counts = check_outcomes(run["outcomes"], groups)
        assert booked_rows(url) == counts["accepted"], "the database disagrees with the outcomes"
        out[name] = {**counts, "elapsed_s": run["elapsed_s"], "per_s": run["per_s"]}
    return out


# 3. central to the device's cache --------------------------------------------

DEVICE, RAW_DEVICE, RAW_FACILITY = "bench-door", "bench-raw", "bench-raw-fac"


def poll_until(check: Callable[[], bool], timeout: float = 30.0) -> float:
    """Poll every 2 ms; the time at which ``check`` was first true."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if check():
            return time.perf_counter()
        time.sleep(0.002)
    raise TimeoutError("not seen in time")


def query_one(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> bool:
    return conn.execute(sql, params).fetchone() is not None


def query_none(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> bool:
    return not query_one(conn, sql, params)


def add_cards(db: Database, count: int) -> list[tuple[str, str, str]]:
    """Members with one card each (setup, straight into the tables): (member,
    card id, reference computed as a device does)."""
    now, out = now_utc(), []
    with db.write() as conn:
        for i in range(count):
            member, card = f"lat{i:04d}", f"card{i:04d}"
            ref = member_reference(TEST_KEY, i.to_bytes(8, "big"))
            conn.execute(insert(members).values(
                id=member, external_number=None, display_name="Bench member",
                email=f"{member}@bench.invalid", language="ja", status="active",
                created_at=now, updated_at=now))  # fmt: skip
            conn.execute(insert(member_cards).values(
                id=card, member_id=member, credential_ref=ref, kind="member_card",
                label="", status="active", enrolled_at=now, enrolled_by="staff:bench"))  # fmt: skip
            out.append((member, card, ref))
    return out


@dataclass
class Central:
    db: Database
    store: ReservationStore
    publisher: DeltaPublisher
    bookings: BookingService = field(init=False)
    members: MemberService = field(init=False)

    def __post_init__(self) -> None:
        self.bookings = BookingService(self.db, self.store, fixed_code_key)
        self.members = MemberService(self.db, self.store, fixed_code_key(ENROLMENT_KEY_SCOPE))


@contextmanager
def device_online(broker: Mosquitto, root: Path, url: str) -> Iterator[tuple[Central, Path]]:
    """Central (publisher + ingest worker for catch-up) and the real agent,
    caught up with central's version."""
    config_path = write_config(root / "central", broker, url)
    db = Database(url)
    store = ReservationStore(db)
    publisher = DeltaPublisher(store, load_config(config_path).broker, "bench-publisher")
    publisher.start()
    device = write_device_config(broker, root / "device", DEVICE, FACILITY)
    agent = agent_process(device, root / "device" / "agent.log")
    try:
        with worker_thread(config_path):
            agent.start()
            cache = root / "device" / "device.db"
            wait_until(lambda: cache.exists() and device_version(cache) == store.version(FACILITY),
                       60, "the device to catch up")  # fmt: skip
            yield Central(db, store, publisher), cache
    finally:
        agent.stop()
        publisher.close()
        db.close()


def device_version(path: Path) -> int:
    sql = "SELECT value FROM sync_state WHERE key = 'reservations.version'"
    try:
        with sqlite3.connect(path, timeout=10) as conn:
            row = conn.execute(sql).fetchone()
    except sqlite3.OperationalError:  # the agent has not created its store yet
        return -1
    return int(row[0]) if row else -1


def latency_rounds(central: Central, cache: Path, rounds: int) -> dict[str, Any]:
    """Book, then revoke, one member at a time; each until the device shows it."""
    people = add_cards(central.db, rounds)
    first = central.store.version(FACILITY)
    conn = sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=10)
    booked, revoked = [], []
    for i, (member, _, _) in enumerate(people):
        room, starts = slot_base(i, ROOMS, 60)
        t0 = time.perf_counter()
        made = central.bookings.create(room, starts, starts + timedelta(minutes=60),
                                       member_id=member, actor="bench")  # fmt: skip
        central.publisher.notify()  # what the API does after a change
        rid = made.booking.reservation_id
        in_cache = partial(query_one, conn, "SELECT 1 FROM reservations WHERE id = ?", (rid,))
        booked.append(poll_until(in_cache) - t0)
    for member, card, ref in people:
        t0 = time.perf_counter()
        central.members.revoke_card(member, card, "staff:bench")
        central.publisher.notify()
        sql = "SELECT 1 FROM reservation_credentials WHERE credential_ref = ?"
        revoked.append(poll_until(partial(query_none, conn, sql, (ref,))) - t0)
    conn.close()
    payloads = recorded_deltas(central.db, first)
    return {"booking": summary_ms(booked), "revocation": summary_ms(revoked),
            "payloads": payloads}  # fmt: skip


def recorded_deltas(db: Database, after: int) -> list[bytes]:
    """The deltas the rounds published (one per version), as sent on the wire."""
    with db.read() as conn:
        rows = conn.execute(
            select(reservation_changes.c.version, reservation_changes.c.changes)
            .where(reservation_changes.c.facility == FACILITY,
                   reservation_changes.c.version > after)
            .order_by(reservation_changes.c.version)
        ).all()  # fmt: skip
    return [encode(ReservationDelta.model_validate({
        "facility": FACILITY, "prev_version": v - 1, "version": v, "changes": changes}))
        for v, changes in rows]  # fmt: skip


def raw_client(broker: Mosquitto, name: str) -> mqtt.Client:
    ident = broker.identity(name)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-raw",
                         protocol=mqtt.MQTTv5)  # fmt: skip
    client.tls_set(ca_certs=str(ident.ca), certfile=str(ident.cert), keyfile=str(ident.key),
                   tls_version=ssl.PROTOCOL_TLS_CLIENT)  # fmt: skip
    return client


def raw_latency(broker: Mosquitto, root: Path, payloads: list[bytes]) -> dict[str, float]:
    """paho publish (central's identity, QoS 1) -> paho subscriber (a device's
    identity) commits the payload to SQLite (WAL, synchronous=FULL) -> seen."""
    path = root / "raw.db"
    sink = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    sink.execute("PRAGMA journal_mode=WAL")
    sink.execute("PRAGMA synchronous=FULL")
    sink.execute("CREATE TABLE msgs (n INTEGER PRIMARY KEY, payload BLOB)")
    subscribed = threading.Event()
    sub, pub = raw_client(broker, RAW_DEVICE), raw_client(broker, "central")
    topic = facility_reservations_topic(RAW_FACILITY)

    def on_message(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        n = int.from_bytes(message.properties.CorrelationData, "big")  # type: ignore[union-attr]
        sink.execute("BEGIN")
        sink.execute("INSERT INTO msgs VALUES (?, ?)", (n, bytes(message.payload)))
        sink.execute("COMMIT")

    sub.on_message = on_message
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.connect("localhost", broker.tls_port)
    sub.loop_start()
    sub.subscribe(topic, qos=1)
    pub.connect("localhost", broker.tls_port)
    pub.loop_start()
    subscribed.wait(10)
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    samples = []
    try:
        for n, payload in enumerate(payloads):
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = n.to_bytes(4, "big")
            t0 = time.perf_counter()
            pub.publish(topic, payload, qos=1, properties=props)
            committed = partial(query_one, reader, "SELECT 1 FROM msgs WHERE n = ?", (n,))
            samples.append(poll_until(committed) - t0)
    finally:
        reader.close()
        for c in (pub, sub):
            c.disconnect()
            c.loop_stop()
        sink.close()
    return summary_ms(samples)


def latency_case(pg: Postgres, root: Path, rounds: int) -> dict[str, Any]:
    broker = Mosquitto(root / "broker", devices={DEVICE: FACILITY, RAW_DEVICE: RAW_FACILITY})
    broker.start()
    try:
        url = pg.create_database()
        db = Database(url)
        setup_places(db)
        db.close()
        with device_online(broker, root, url) as (central, cache):
            ours = latency_rounds(central, cache, rounds)
        payloads = ours.pop("payloads")
        return {**ours, "raw_mqtt_to_sqlite": raw_latency(broker, root, payloads),
                "payload_bytes": statistics.median(len(p) for p in payloads)}  # fmt: skip
    finally:
        broker.stop()


# report -----------------------------------------------------------------------


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "NOT met"


def print_availability(name: str, r: dict[str, Any]) -> None:
    print(f"availability, {name}: {r['bookings']} bookings, 20 rooms, {r['days']} days"
          f" (seeded in {r['seed_s']:.1f} s); random room / day of the next 31,"
          f" mean {r['mean_booked_rows']:.1f} booked rows,"
          f" {r['mean_free_slots']:.1f} free slots")  # fmt: skip
    for key, label in (("service", "BookingService.availability"),
                       ("http", "GET /api/rooms/{id}/availability"),
                       ("raw_sql", "raw baseline: bare SQL, the room's day")):  # fmt: skip
        f = r[key]
        print(f"  {label:<40} p50 {f['p50_ms']:7.2f} ms   p95 {f['p95_ms']:7.2f} ms")
    p95 = max(r["service"]["p95_ms"], r["http"]["p95_ms"])
    print(
        f"  target p95 <= {AVAILABILITY_TARGET_MS:.0f} ms: {verdict(p95, AVAILABILITY_TARGET_MS)}"
    )


def print_contention(r: dict[str, Any]) -> None:
    print(f"bookings under contention, PostgreSQL (fsync on): {r['workers']} processes,"
          f" {r['contested_groups']} contested slots (every process asks for each; requests"
          f" pairwise overlap) + {r['own_per_worker']} own slots per process")  # fmt: skip
    for key, label in (("ours", "BookingService.create"), ("raw_insert", "raw baseline: INSERT")):
        f = r[key]
        print(f"  {label:<24} {f['per_s']:7.1f} attempts/s ({f['accepted']} accepted +"
              f" {f['refused']} refused in {f['elapsed_s']:.2f} s)")  # fmt: skip
    print(
        f"  ours / raw: {r['ours']['per_s'] / r['raw_insert']['per_s']:.0%};"
        " exactly one winner per contested slot: asserted for both"
    )


def print_latency(r: dict[str, Any]) -> None:
    print("central -> device cache (mosquitto mTLS, DeltaPublisher, real sync agent),"
          f" deltas of ~{r['payload_bytes']:.0f} bytes")  # fmt: skip
    for key, label in (("booking", "booking: create -> in the cache"),
                       ("revocation", "revocation: revoke -> ref gone"),
                       ("raw_mqtt_to_sqlite", "raw baseline: publish -> committed")):  # fmt: skip
        f = r[key]
        print(f"  {label:<36} p50 {f['p50_ms']:7.1f} ms   p95 {f['p95_ms']:7.1f} ms")
    p95 = max(r["booking"]["p95_ms"], r["revocation"]["p95_ms"]) / 1e3
    print(f"  target p95 <= {LATENCY_TARGET_S:.0f} s online: {verdict(p95, LATENCY_TARGET_S)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    size = (
        {"bookings": 10_000, "requests": 60, "workers": 4, "groups": 20, "own": 10, "rounds": 15}
        if args.quick else
        {"bookings": 100_000, "requests": 400, "workers": 8, "groups": 60, "own": 30, "rounds": 100}
    )  # fmt: skip
    pg = Postgres(fsync=True).start()
    results: dict[str, Any] = {"sizes": size}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-booking-") as tmp:
            root = Path(tmp)
            for name, url in (("SQLite", f"sqlite:///{root / 'avail.db'}"),
                              ("PostgreSQL", pg.create_database())):  # fmt: skip
                results[f"availability_{name}"] = availability_case(
                    url, size["bookings"], size["requests"])  # fmt: skip
            results["contention"] = contention_case(pg, size["workers"], size["groups"],
                                                    size["own"])  # fmt: skip
            results["latency"] = latency_case(pg, root, size["rounds"])
    finally:
        pg.stop()
    if args.json:
        print(json.dumps(results, indent=2, default=str))
        return 0
    print_availability("SQLite", results["availability_SQLite"])
    print_availability("PostgreSQL", results["availability_PostgreSQL"])
    print_contention(results["contention"])
    print_latency(results["latency"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
