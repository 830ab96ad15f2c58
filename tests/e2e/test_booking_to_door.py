"""Facility reservations end to end, through real components only.

Central runs as processes (``python -m central serve`` with the booking site,
the delta publisher and the mutual-TLS device listener; ``python -m central
ingest``) over one SQLite file, mailing through a local SMTP server
(aiosmtpd) and publishing to the fleet's own mosquitto (mutual TLS, the fleet
ACL and CRL, as ``python -m deploy fleet init`` writes them). The door device
runs the real sync agent, lockctl on gpiozero MockFactory pins and the
headless door terminal reading cards through the test pcscd with vpcd
virtual cards. Its enrolment client (``kiosk.enrolment``: session, worker and
HTTPS client with the device's fleet certificate) is driven in this process.

The story: a resident signs in on the booking site in headless Chromium
(code from the mail), asks for an enrolment code under "My cards"; the device
redeems it and enrols the virtual member card (its reference computed by the
card feed check-in uses); the resident books the room for a slot starting
within the door's early-entry window and gets the mail with its ``.ics``;
once the device's cache holds the booking with that reference, the card
opens the door. Staff then revoke the card on the dashboard (password +
TOTP); once the cache has dropped the reference, the same card is denied.
No card UID, e-mail address, name or enrolment code may appear in the
device's events (outbox and what central ingested) or in its logs. The time
from the booking click and from the revoke click to the device's cache is
printed (docs/performance.md)."""

from __future__ import annotations

import json
import logging
import queue
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import icalendar
import pyotp
import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from cardreader.credential import load_key, member_reference
from cardreader.sim.cards import UidCard
from cardreader.sim.testpki import write_test_pki
from central.reservations.rules import BookingRules, Facility, OpeningHours, Room
from contracts.reservations_hash import facility_code_key
from demo.central_issuance import prepare
from deploy.fleet import add_device, init_fleet
from kiosk.cards import CardFeed, CardSeen
from kiosk.enrolment.flow import EnrolmentStep
from kiosk.enrolment.wiring import build_enrolment
from kiosk.reader import card_service_for
from lockctl.client import LockClient
from sync.config import load_config
from sync.reservations import SYNCED_AT_KEY
from tests.harness import clockrun
from tests.harness.booking_site import SENDER, Mailbox, smtp_server
from tests.harness.cards import inserted
from tests.harness.keys import TEST_KEY, write_test_key
from tests.harness.mosquitto import start_fleet_broker
from tests.harness.pcscd import Pcscd
from tests.harness.services import ServiceProcess, free_port, port_open, wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
JST = ZoneInfo("Asia/Tokyo")
FACILITY, ROOM, DOOR, DEVICE = "fac-1", "gym-a", "gym-a-door", "door-1"
EMAIL, NAME = "hanako.yamada@example.jp", "山田 花子"
UID = bytes.fromhex("04A1B2C3D4E5F6A7")
PASSWORD = "correct horse battery"
EARLY_ENTRY_MINUTES = 10
SLOT_MINUTES = 5
# The loggers of the device code run in this process (the enrolment flow).
SYNCED = "SELECT 1 FROM sync_state WHERE key = ?"  # the agent has caught up once
PRODUCT = {"kiosk", "cardreader", "sync", "lockctl", "contracts", "foundation"}


def run_central(config: Path, *args: str, stdin: str = "") -> str:
    """A one-shot ``python -m central`` command; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "central", *args, "--config", str(config)], input=stdin,
        capture_output=True, text=True, timeout=60, env=_env(), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT), **(extra or {})}


@dataclass
class Central:
    api: str  # the API, dashboard and booking site (http)
    listener: str  # the device listener (https, mutual TLS)
    token: str  # an operator bearer token
    staff_secret: str  # TOTP secret of staff "sato"
    mailbox: Mailbox
    processes: list[ServiceProcess] = field(default_factory=list)

    def call(self, method: str, path: str, body: object = None) -> requests.Response:
        answer = requests.request(method, self.api + path, json=body, timeout=10,
                                  headers={"Authorization": f"Bearer {self.token}"})  # fmt: skip
        assert answer.status_code < 300, (path, answer.status_code, answer.text)
        return answer

    def logs(self) -> str:
        return "\n".join(p.log_tail(100000) for p in self.processes)


@dataclass
class Device:
    config: Path
    db: Path
    lock_socket: Path
    env: dict[str, str] = field(default_factory=dict)  # pcscd's, for the terminal
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], ready: Callable[[], bool]) -> ServiceProcess:
        process = ServiceProcess(name, argv, self.db.parent / f"{name}.log", env={
            "PYTHONPATH": str(ROOT)} | self.env)  # fmt: skip
        self.processes[name] = process
        process.start()
        wait_until(lambda: process.check_alive() and ready(), 30, name)
        return process

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        if not self.db.exists():
            return []
        try:
            with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as conn:
                return list(conn.execute(sql, args))
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # the store's migrations are still running
                return []
            raise

    def holds(self, reservation: str, ref: str) -> bool:
        return bool(self.query(
            "SELECT 1 FROM reservations r JOIN reservation_credentials c"
            " ON c.reservation_id = r.id WHERE r.id = ? AND c.credential_ref = ?"
            " AND r.door = ?", reservation, ref, DOOR))  # fmt: skip

    def outbox(self) -> list[tuple[str, dict[str, object]]]:
        return [(str(t), json.loads(str(d))) for t, d in
                self.query("SELECT type, data FROM outbox ORDER BY seq")]  # fmt: skip

    def relay_highs(self) -> int:
        with LockClient(self.lock_socket) as lock:
            history = lock.status()["doors"][0]["mock_relay_history"]
        return sum(1 for _, level in history if level)

    def logs(self) -> str:
        return "\n".join(p.log_tail(100000) for p in self.processes.values())


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Path, Path, int]]:
    """A fleet folder with the door device, and the fleet's own broker running."""
    root = tmp_path / "fleet"
    init_fleet(root, broker_host="localhost")
    device_dir = add_device(root, DEVICE, FACILITY)
    broker, process = start_fleet_broker(root)
    yield root, device_dir, broker.tls_port
    process.stop()


@pytest.fixture
def central(tmp_path: Path, fleet: tuple[Path, Path, int]) -> Iterator[Central]:
    fleet_dir, _device_dir, broker_port = fleet
    write_test_pki(tmp_path / "jpki")
    paths = prepare(tmp_path / "central", fleet_dir, tmp_path / "jpki", port=free_port())
    api_port = free_port()
    key = fleet_dir / "secrets" / "code-master.key"  # as the Ansible central role copies it
    with smtp_server() as (mailbox, smtp_port):
        # A city with a counter kiosk: certificate issuance is for it alone,
        # while every registered device (the door too) may enrol cards.
        text = paths.config.read_text().replace(
            "enabled = true\n", 'enabled = true\nallowed_devices = ["counter-1"]\n', 1
        )
        paths.config.write_text(text + "\n".join([
            "", "[logging]", 'level = "INFO"',
            "[broker]", 'host = "localhost"', f"port = {broker_port}",
            "reconnect_max_seconds = 2",
            "[broker.tls]", f'ca_file = "{fleet_dir / "central" / "ca.pem"}"',
            f'cert_file = "{fleet_dir / "central" / "central.pem"}"',
            f'key_file = "{fleet_dir / "central" / "central.key"}"',
            "[ingest]", 'worker_id = "e2e"', "register_unknown_devices = false",
            "[reservations]", f'code_key_file = "{key}"',
            "[api]", 'host = "127.0.0.1"', f"port = {api_port}",
            "[booking]", "enabled = true", f'public_url = "http://127.0.0.1:{api_port}"',
            "[booking.smtp]", 'host = "127.0.0.1"', f"port = {smtp_port}", f'sender = "{SENDER}"',
            "",
        ]))  # fmt: skip
        config = paths.config
        run_central(config, "device", "add", "--id", DEVICE, "--facility", FACILITY)
        token = run_central(config, "token", "create", "--role", "operator").strip()
        created = run_central(config, "staff", "create", "sato", "--role", "operator",
                              "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
        secret = re.search(r"secret: (\S+)", created)
        assert secret, created
        processes = []
        for name, args in (("central-serve", ["serve"]), ("central-ingest", ["ingest"])):
            process = ServiceProcess(
                name, [sys.executable, "-m", "central", *args, "--config", str(config)],
                tmp_path / f"{name}.log", env={"PYTHONPATH": str(ROOT)},
            )  # fmt: skip
            process.start()
            processes.append(process)
        ready = lambda: all(p.check_alive() for p in processes) and port_open(api_port)  # noqa: E731
        wait_until(ready, 30, "central serve and ingest")
        wait_until(lambda: port_open(paths.port), 30, "central's device listener")
        yield Central(f"http://127.0.0.1:{api_port}", f"https://localhost:{paths.port}",
                      token, secret.group(1), mailbox, processes)  # fmt: skip
        for process in processes:
            process.stop()


@pytest.fixture
def device(
    tmp_path: Path, fleet: tuple[Path, Path, int], central: Central, pcscd: Pcscd
) -> Iterator[Device]:
    """The door device's configuration and its sync agent and lockctl running."""
    fleet_dir, device_dir, broker_port = fleet
    folder = tmp_path / "device"
    folder.mkdir()
    # The facility's code key, as provisioning puts it into the bundle.
    master = load_key(fleet_dir / "secrets" / "code-master.key")
    (folder / "code.key").write_text(facility_code_key(master, FACILITY).hex())
    config = folder / "device.toml"
    config.write_text("\n".join([
        "[device]", f'id = "{DEVICE}"', f'facility = "{FACILITY}"', 'name = "Sports centre"',
        "[logging]", 'level = "INFO"',
        "[store]", f'path = "{folder / "device.db"}"',
        "[reader]", f'credential_key_file = "{write_test_key(folder / "credential.key")}"',
        f'code_key_file = "{folder / "code.key"}"',
        "[lock]", f'socket = "{folder / "lockctl.sock"}"', 'pin_factory = "mock"',
        "[[doors]]", f'id = "{DOOR}"', 'name = "Gym A"', "relay_pin = 17", "contact_pin = 27",
        "[broker]", 'host = "localhost"', f"port = {broker_port}", "keepalive_seconds = 5",
        "[broker.tls]", f'ca_file = "{device_dir / "ca.pem"}"',
        f'cert_file = "{device_dir / "device.pem"}"', f'key_file = "{device_dir / "device.key"}"',
        "[central]", f'url = "{central.listener}"', "timeout_seconds = 10",
        "[enrolment]", "enabled = true",
        "[sync]", "health_interval_seconds = 1", "reconnect_min_seconds = 0.1",
        "reconnect_max_seconds = 1", "poll_interval_seconds = 0.2", "resync_timeout_seconds = 2",
        "[policy]", f"early_entry_minutes = {EARLY_ENTRY_MINUTES}",
        "",
    ]))  # fmt: skip
    dev = Device(config, folder / "device.db", folder / "lockctl.sock", env=pcscd.env)
    dev.start("lockctl", [sys.executable, "-m", "lockctl", "serve", "--config", str(config)],
              dev.lock_socket.exists)  # fmt: skip
    dev.start("sync-agent", clockrun.argv(True, "sync", "run", "--config", str(config)),
              lambda: bool(dev.query(SYNCED, SYNCED_AT_KEY)))  # fmt: skip
    yield dev
    for process in reversed(dev.processes.values()):
        process.stop()


def chromium(profile: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,800",
                 f"--user-data-dir={profile}", "--lang=ja"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


@pytest.fixture
def browsers(tmp_path: Path) -> Iterator[tuple[webdriver.Chrome, webdriver.Chrome]]:
    """The resident's browser and the staff member's."""
    resident = chromium(tmp_path / "chrome-resident")
    try:
        staff = chromium(tmp_path / "chrome-staff")
    except Exception:
        resident.quit()
        raise
    yield resident, staff
    staff.quit()
    resident.quit()


def furnish(central: Central) -> str:
    """Facility open all day, the room on the device's door with 5-minute
    slots, the resident as a member (operator API); the member's id."""
    hours = OpeningHours.every_day("00:00", "24:00")
    facility = Facility(id=FACILITY, name="Sports centre", opening_hours=hours)
    central.call("PUT", f"/api/facilities/{FACILITY}/settings", facility.model_dump(mode="json"))
    rules = BookingRules(slot_minutes=SLOT_MINUTES, min_duration_minutes=SLOT_MINUTES,
                         max_duration_minutes=60)  # fmt: skip
    room = Room(id=ROOM, facility_id=FACILITY, door_id=DOOR, name="Gym A", rules=rules,
                fee_per_slot_yen=100)  # fmt: skip
    central.call("POST", f"/api/facilities/{FACILITY}/rooms", room.model_dump(mode="json"))
    member = central.call("POST", "/api/members",
                          {"display_name": NAME, "email": EMAIL, "language": "en"})  # fmt: skip
    return str(member.json()["id"])


def next_slot(now: datetime) -> tuple[datetime, int]:
    """The first slot start at least 2 minutes ahead (so it is not past when
    the resident clicks) and its length (30 minutes, less before midnight)."""
    local = now.astimezone(JST) + timedelta(minutes=2)
    base = local.replace(second=0, microsecond=0)
    start = base + timedelta(minutes=-base.minute % SLOT_MINUTES)
    if start < local:
        start += timedelta(minutes=SLOT_MINUTES)
    midnight = (start + timedelta(days=1)).replace(hour=0, minute=0)
    return start, min(30, int((midnight - start).total_seconds() // 60))


class Enroller:
    """The device's enrolment flow without a screen: the session and its
    worker over the real HTTPS client, results run on this thread (the UI
    loop's job), cards from the same card feed check-in uses."""

    def __init__(self, config: Path) -> None:
        self.config = load_config(config)
        self.posted: queue.Queue[Callable[[], None]] = queue.Queue()
        self.kit = build_enrolment(self.config, self.posted.put, clock_trusted=lambda: True)
        self.session = self.kit.session
        self.seen: list[CardSeen] = []
        self.screens: tuple[str, str] = ("", "")
        self.clock = time.monotonic()

    def now(self) -> float:
        self.clock += 1.0  # a second between touches: no double-tap guard
        return self.clock

    def until(self, step: EnrolmentStep, timeout: float = 20) -> None:
        def reached() -> bool:
            while not self.posted.empty():
                self.posted.get()()
            return self.session.step in (step, EnrolmentStep.REFUSED)

        wait_until(reached, timeout, f"enrolment step {step}")
        assert self.session.step == step, (self.session.flow.refusal, self.session.screen)

    def enrol(self, code: str, pcscd: Pcscd) -> str:
        """Type the code, tap the card; the reference the device sent."""
        self.session.open("ja", False, self.now())
        for key in [*code, "ok"]:
            self.session.key(key, self.now())
        self.until(EnrolmentStep.TAP_CARD)

        def sink(seen: CardSeen) -> None:
            self.seen.append(seen)
            self.posted.put(lambda: self.session.card(seen, self.now()))

        feed = CardFeed(card_service_for(self.config), sink).start()
        try:
            with inserted(UidCard(uid=UID), pcscd):
                self.until(EnrolmentStep.ENROLLED)
        finally:
            feed.close()
        assert self.session.flow.status == "enrolled"
        self.screens = (self.session.language, self.session.screen.title)
        [seen] = self.seen
        assert seen.ref is not None
        return seen.ref

    def close(self) -> None:
        self.session.done(self.now())
        self.kit.close()


def test_booking_to_door_enrol_book_open_revoke_deny(
    central: Central,
    device: Device,
    browsers: tuple[webdriver.Chrome, webdriver.Chrome],
    pcscd: Pcscd,
    caplog: pytest.LogCaptureFixture,
    artifacts_dir: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    resident, staff = browsers
    member = furnish(central)
    shots = artifacts_dir / "booking-to-door"
    shots.mkdir(exist_ok=True)

    def page(browser: webdriver.Chrome) -> str:
        return browser.page_source or ""

    # 1. The resident signs in with the code from the mail.
    resident.get(f"{central.api}/booking/sign-in")
    resident.find_element(By.ID, "email").send_keys(EMAIL)
    resident.find_element(By.ID, "send").click()
    wait_until(lambda: 'id="code"' in page(resident), 10, "the code form")
    _link, code = Mailbox.sign_in(central.mailbox.wait(1))
    resident.find_element(By.ID, "code").send_keys(code)
    resident.find_element(By.ID, "code-submit").click()
    wait_until(lambda: "Sports centre" in page(resident), 10, "the facilities")
    # A Japanese browser, but signed in the site follows the member's language.
    assert '<html lang="en"' in page(resident)

    # 2. "My cards" -> "Enrol a new card": the 8-digit code on the page.
    resident.find_element(By.CSS_SELECTOR, "a[href$='/booking/cards']").click()
    wait_until(lambda: 'id="enrol"' in page(resident), 10, "my cards")
    resident.find_element(By.ID, "enrol").click()
    wait_until(lambda: 'id="enrolment-code"' in page(resident), 10, "the enrolment code")
    enrolment_code = resident.find_element(By.ID, "enrolment-code").text.replace(" ", "")
    assert re.fullmatch(r"\d{8}", enrolment_code), enrolment_code
    resident.save_screenshot(str(shots / "enrolment-code.png"))

    # 3. The device redeems it over mutual TLS and enrols the card on pcscd.
    enroller = Enroller(device.config)
    try:
        ref = enroller.enrol(enrolment_code, pcscd)
    finally:
        enroller.close()
    assert ref == member_reference(TEST_KEY, UID)  # what check-in computes for it
    # Opened in Japanese, it speaks the member's language once the code is taken.
    assert enroller.screens == ("en", "Your card is enrolled")
    [card] = central.call("GET", f"/api/members/{member}/cards").json()
    assert card["credential_ref"] == ref and card["status"] == "active"
    assert card["enrolled_by"] == f"device:{DEVICE}"

    # The door terminal starts once the card is enrolled (the tap above is
    # the enrolment's, not a check-in).
    terminal = device.start(
        "door-terminal", clockrun.argv(True, "kiosk", "--config", str(device.config),
                                       "--headless"),
        lambda: "door terminal ready" in device.processes["door-terminal"].log_tail(50),
    )  # fmt: skip

    # 4. The resident books a slot starting within the early-entry window.
    start, minutes = next_slot(datetime.now(JST))
    resident.get(f"{central.api}/booking/rooms/{ROOM}?day={start.date().isoformat()}")
    wanted = start.isoformat()

    def slot_link() -> object:
        for link in resident.find_elements(By.CSS_SELECTOR, "a.slot"):
            query = parse_qs(urlsplit(link.get_attribute("href") or "").query)
            if query.get("start") == [wanted]:
                return link
        return None

    wait_until(lambda: slot_link() is not None, 10, f"the slot at {wanted}")
    slot_link().click()  # type: ignore[attr-defined]
    wait_until(lambda: 'id="confirm"' in page(resident), 10, "the booking form")
    resident.find_element(By.ID, f"minutes-{minutes}").click()
    booked_at = time.monotonic()
    resident.find_element(By.ID, "confirm").click()
    wait_until(lambda: 'id="reservation-code"' in page(resident), 10, "the confirmation")
    reservation_code = resident.find_element(By.ID, "reservation-code").text
    assert re.fullmatch(r"\d{6}", reservation_code)
    resident.save_screenshot(str(shots / "confirmed.png"))
    [booking] = central.call("GET", f"/api/bookings?member_id={member}").json()
    reservation = str(booking["reservation_id"])

    wait_until(lambda: device.holds(reservation, ref), 30, "the booking in the device's cache")
    booking_to_cache = time.monotonic() - booked_at

    mail = next(m for m in _wait_mails(central.mailbox, 2) if reservation_code in Mailbox.text(m))
    [attachment] = [p for p in mail.iter_attachments() if p.get_filename() == "booking.ics"]
    calendar = icalendar.Calendar.from_ical(attachment.get_content())
    [event] = calendar.walk("VEVENT")
    assert event.decoded("DTSTART") == start
    assert event.decoded("DTEND") == start + timedelta(minutes=minutes)
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(mail["Subject"]).startswith("Booking confirmed: Gym A")
    assert reservation_code in str(event["DESCRIPTION"])

    # 5. At the door: the enrolled card opens it.
    assert start - datetime.now(JST) <= timedelta(minutes=EARLY_ENTRY_MINUTES)
    before = device.relay_highs()
    with inserted(UidCard(uid=UID), pcscd):
        wait_until(
            lambda: bool(_events(central, device, "checkin.granted")), 15, "a granted check-in"
        )
    assert device.relay_highs() > before  # the relay was energised
    [granted] = _events(central, device, "checkin.granted")
    assert granted["reason"] == "reservation" and granted["reservation"] == reservation

    # 6. Staff revoke the card on the dashboard; the door refuses it.
    staff.get(f"{central.api}/login?lang=ja")
    staff.find_element(By.ID, "username").send_keys("sato")
    staff.find_element(By.ID, "password").send_keys(PASSWORD)
    staff.find_element(By.ID, "code").send_keys(pyotp.TOTP(central.staff_secret).now())
    staff.find_element(By.ID, "signin").click()
    wait_until(lambda: "端末一覧" in page(staff), 10, "the fleet page")
    staff.get(f"{central.api}/members?q={EMAIL}")
    staff.find_element(By.LINK_TEXT, NAME).click()
    wait_until(lambda: f"revoke-{card['id']}" in page(staff), 10, "the member page")
    revoked_at = time.monotonic()
    staff.find_element(By.ID, f"revoke-{card['id']}").click()
    wait_until(lambda: not device.holds(reservation, ref), 30, "the card gone from the cache")
    revoke_to_cache = time.monotonic() - revoked_at
    wait_until(lambda: f"revoke-{card['id']}" not in page(staff), 10, "the revoked card")
    # The revocation window closes once the device's health reports the version.
    member_page = staff.current_url.split("#")[0]  # a fragment alone would not reload

    def window_closed() -> bool:
        staff.get(member_page)
        html = page(staff)
        return 'class="behind"' in html and f'id="behind-{DEVICE}"' not in html

    wait_until(window_closed, 15, "the device to report the revocation's version", interval=0.5)
    staff.save_screenshot(str(shots / "staff-revoked.png"))
    assert device.query("SELECT status FROM reservations WHERE id = ?", reservation) != []

    wait_until(lambda: device.relay_highs() == 0 or _relay_low(device), 15, "the door relocked")
    highs = device.relay_highs()
    with inserted(UidCard(uid=UID), pcscd):
        wait_until(
            lambda: bool(_events(central, device, "checkin.denied")), 15, "a denied check-in"
        )
    [denied] = _events(central, device, "checkin.denied")
    assert denied["reason"] == "not_registered" and denied.get("ref") == ref
    assert device.relay_highs() == highs and _relay_low(device)  # stayed locked

    # 7. Privacy: nothing personal in the device's events or logs.
    terminal.stop()
    recorded = json.dumps([*_central_events(central), *device.outbox()], ensure_ascii=False)
    ours = [r.__dict__ for r in caplog.records if r.name.split(".")[0] in PRODUCT]
    logs = device.logs() + "\n" + json.dumps(ours, default=str, ensure_ascii=False)
    for secret in (UID.hex(), UID.hex().upper(), EMAIL, NAME, enrolment_code):
        assert secret not in recorded, secret
        assert secret not in logs, secret
    assert "Traceback" not in device.logs()

    print(f"\nbooking click -> device cache: {booking_to_cache:.2f} s")
    print(f"revoke click -> device cache: {revoke_to_cache:.2f} s")


def _wait_mails(mailbox: Mailbox, count: int) -> list[EmailMessage]:
    mailbox.wait(count)
    return list(mailbox.messages)


def _relay_low(device: Device) -> bool:
    with LockClient(device.lock_socket) as lock:
        history = lock.status()["doors"][0]["mock_relay_history"]
    return not history or not history[-1][1]


def _central_events(central: Central) -> list[dict[str, object]]:
    answer = central.call("GET", f"/api/events?device={DEVICE}&limit=1000")
    return list(answer.json()["items"])


def _events(central: Central, device: Device, kind: str) -> list[dict[str, object]]:
    """The data of the device's events of ``kind``: in its outbox, or already
    at central (the sync agent deletes what central acknowledged)."""
    found = {str(e["event_id"]): e["data"] for e in _central_events(central) if e["type"] == kind}
    rows = device.query("SELECT id, data FROM outbox WHERE type = ?", kind)
    found.update({str(i): json.loads(str(d)) for i, d in rows})
    return [dict(d) for d in found.values()]  # type: ignore[call-overload]
