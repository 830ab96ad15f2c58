"""The demo: every landed part on simulated hardware, embedded configuration.

It starts, each as its own process with its log under ``<state>/logs``:

* a local MQTT broker (mosquitto, plain listener on a free loopback port);
* central: the ingest worker and the API with the staff dashboard (SQLite in
  the state folder), a dashboard account, and a simulated fleet publishing
  health and events;
* the device: the lock controller on gpiozero's mock pins, the sync agent
  connected to the local broker (the demo booking -- facility, room, member
  with the demo cards enrolled, a booking covering now -- is made at central
  with its services, ``demo/bookings.py``, and reaches the device as a
  delta), a private pcscd with the
  virtual card reader, and the check-in touchscreen with its developer panel
  (F5 member card, F6 My Number Card, F7 unknown card, F8 remove, F9 a new
  member card) and card enrolment -- or, without a display, the headless
  door terminal;
* the residents' booking site on central's API port, its mails to a local
  SMTP sink in this process (``demo/mailsink.py``).

It prints where to look (dashboard URL and sign-in, booking site, staff
pages), then runs until Ctrl-C, showing the events the device records and a
line for each mail. ``--once`` starts everything, checks it is up (and that
the site mails a sign-in code), reports and stops (CI runs it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

import pyotp

from cardreader.credential import member_reference
from cardreader.service import jpki_reference
from cardreader.sim.pcscd import PcscdError, PrivatePcscd
from cardreader.sim.profiles import DEMO_FELICA_IDM
from cardreader.sim.testpki import TestPki, load_test_pki, write_test_pki
from contracts.enrolment import CardKind
from demo.booking_site import booking_config_text, check_sign_in_mail
from demo.bookings import DEMO_EMAIL, DemoBooking, seed_booking
from demo.config import (
    default_state_dir,
    demo_config_text,
    ensure_code_master,
    ensure_command_key,
    ensure_key,
    write_demo_config,
)
from demo.mailsink import MailSink
from foundation.errors import MissingKeyError
from foundation.supervisor import ProcessError, Supervisor, free_port, port_open
from kiosk.reader import credential_key
from sync.config import DeviceConfig, load_config
from sync.outbox import Outbox
from sync.reservations import ReservationCache
from sync.store import SCHEMA_VERSION, Store, open_store

STAFF_USER, STAFF_PASSWORD = "demo", "demo-password-123"
COUNTER_ID, COUNTER_FACILITY = "demo-counter-01", "demo-city-hall"


def run_demo(
    config_path: str | None = None, state_dir: str | None = None, once: bool = False
) -> int:
    state = Path(state_dir).resolve() if state_dir else default_state_dir()
    state.mkdir(parents=True, exist_ok=True)
    sup = Supervisor(state / "logs")
    # SIGTERM (systemd, timeout, a closed terminal) must stop the children too:
    # turn it into SystemExit so the finally below runs.
    signal.signal(signal.SIGTERM, lambda _s, _f: sys.exit(0))
    # The booking site's mails go to this sink (in this process, so that its
    # lines reach this console): it starts first and stops last.
    sink = MailSink(state / "mail", free_port()).start()
    try:
        ports, booking = start_services(sup, state, config_path, sink.port)
        synced = wait_synced(state, booking, timeout=40 if once else 5)
        print(status_report(state, ports, booking))
        if once:
            return 0 if once_checks(sup, state, ports, synced) else 1
        follow(sup, state)
        return 0
    except ProcessError as exc:
        print(f"error: the demo could not start: {exc}")
        return 1
    finally:
        sup.stop_all()
        sink.stop()


def once_checks(sup: Supervisor, state: Path, ports: dict[str, int], synced: bool) -> bool:
    """``--once``: every process still up, the booking synced, and the
    booking site mails the demo member a sign-in code."""
    failed = sup.failed()
    for name in failed:
        print(f"  ! {name} stopped:\n{sup.tail(name)}")
    problem = check_sign_in_mail(ports["api"], DEMO_EMAIL, state / "mail")
    if problem:
        print(f"  ! booking site: {problem}")
    return synced and not failed and not problem


def device_config_path(state: Path, ports: dict[str, int], config_path: str | None) -> Path:
    """The device configuration: ``demo/device.toml`` (or ``--config``) with
    the broker port of this run, written into the state folder beside the
    demo's credential key. The demo's own adds card enrolment."""
    text = Path(config_path).read_text() if config_path else demo_config_text()
    text = text.replace("port = 8883", f"port = {ports['broker']}")
    if not config_path:  # the first virtual reader slot; the counter kiosk has the second
        text = text.replace(
            '[reader]\nbackend = "sim"\n', '[reader]\nbackend = "sim"\nname = "Virtual PCD 00 00"\n'
        )
        # A demo runs on laptops and containers whose kernel may never call its
        # clock synchronised: the running demo's door opens anyway (its events
        # still say clock_trusted = false); the file keeps the real default.
        text = text.replace("[policy]\n", '[policy]\non_untrusted_clock = "allow"\n')
        text += door_enrolment_text(state, tomllib.loads(text)["device"]["id"], ports)
    path = write_demo_config(state, text)
    config = load_config(path)  # validate now, with the file named in the message
    if config.reader.credential_key_file is None:
        raise MissingKeyError(str(path), "reader.credential_key_file", how="the demo needs one")
    return path


def door_enrolment_text(state: Path, device_id: str, ports: dict[str, int]) -> str:
    """Card enrolment at the door touchscreen: central's device listener over
    mutual TLS with the door's fleet certificate, as the counter kiosk has."""
    identity = state / "fleet" / "devices" / device_id
    return (
        f'\n[central]\nurl = "https://127.0.0.1:{ports["issuance"]}"\n'
        f'[central.tls]\nca_file = "{state / "issuance-setup" / "issuance" / "fleet-ca.pem"}"\n'
        f'cert_file = "{identity / "device.pem"}"\nkey_file = "{identity / "device.key"}"\n'
        "\n[enrolment]\nenabled = true\n"
    )


def start_services(
    sup: Supervisor, state: Path, config_path: str | None, smtp_port: int
) -> tuple[dict[str, int], DemoBooking]:
    ports = {"broker": free_port(), "api": free_port(), "issuance": free_port(), "smtp": smtp_port,
             "metadata": free_port()}  # fmt: skip
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(mosquitto).exists():
        raise ProcessError("mosquitto is not installed (run ./scripts/bootstrap)")
    conf = state / "mosquitto.conf"
    conf.write_text(
        f"listener {ports['broker']} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "log_dest stdout\nuser root\n"
    )
    sup.start("mosquitto", [mosquitto, "-c", str(conf)])
    sup.wait_for("mosquitto", lambda: port_open(ports["broker"]))

    pki = state / "test-pki"
    if not pki.exists():
        write_test_pki(pki)
    device = device_config_path(state, ports, config_path)
    config = load_config(device)
    issuance = prepare_issuance(state, pki, ports, config)
    central = state / "central.toml"
    central.write_text(
        f'[database]\nurl = "sqlite:///{state / "central.db"}"\n'
        f'[broker]\nhost = "127.0.0.1"\nport = {ports["broker"]}\nreconnect_max_seconds = 2\n'
        f'[api]\nhost = "127.0.0.1"\nport = {ports["api"]}\nmetadata_port = {ports["metadata"]}\n'
        f'[reservations]\ncode_key_file = "{ensure_code_master(state)}"\n'
        f'[commands]\nsigning_key_file = "{ensure_command_key(state)}"\n'
        # The simulator's devices have no certificates: the demo registers on first request.
        "[ingest]\nregister_unknown_devices = true\n"
        "[ops]\nevaluate_every_seconds = 5\n"
        "[ops.thresholds]\nfire_after_s = 10\nclear_after_s = 20\noffline_after_s = 10\n\n"
        + booking_config_text(ports["api"], ports["smtp"])
        + issuance
    )
    upgrade_demo_database(central)
    ensure_staff(central, state)
    sup.python("central-ingest", ["-m", "central", "ingest", "--config", str(central)])
    sup.python("central-api", ["-m", "central", "serve", "--config", str(central)])
    sup.wait_for("central-api", lambda: _http_ok(f"http://127.0.0.1:{ports['api']}/healthz"), 30)
    sup.python("fleet-simulator", ["-m", "central", "simulate", "--config", str(central),
                                   "--devices", "30", "--interval", "5"])  # fmt: skip

    with open_store(config.store.path) as store:
        Outbox(store).append("device.started", {"component": "demo"})
    sup.python("lockctl", ["-m", "lockctl", "serve", "--config", str(device)])
    sup.wait_for("lockctl", config.lock.socket.exists, 20)
    booking = seed_central(central, config, load_test_pki(pki))
    sup.python("sync-agent", ["-m", "sync", "run", "--config", str(device)])
    pcscd = PrivatePcscd(state / "pcscd", apdu_log=False)
    try:
        pcscd.start()
    except PcscdError as exc:
        raise ProcessError(f"virtual card reader: {exc}") from None
    if pcscd.process is not None:
        sup.adopt(pcscd.process)
    ports["vpcd"] = pcscd.port
    counter = counter_config_path(state, ports)
    sup.python("counter-sync-agent", ["-m", "sync", "run", "--config", str(counter)])
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        # The product's touchscreens with the developer panel (demo/touch.py);
        # the counter kiosk reads the second virtual reader slot.
        touch = ["-m", "demo.touch", "--pki-dir", str(pki), "--config"]
        kivy_env = {**pcscd.env, "KIVY_NO_ARGS": "1"}
        sup.python("touchscreen", [*touch, str(device), "--vpcd-port", str(pcscd.port)], kivy_env)
        counter_args = [*touch, str(counter), "--vpcd-port", str(pcscd.port + 1)]
        sup.python("counter-touchscreen", counter_args, kivy_env)
    else:
        kiosk_args = ["-m", "kiosk", "--config", str(device), "--headless"]
        sup.python("door-terminal", kiosk_args, env=pcscd.env)
    sup.wait_for("central-api", lambda: port_open(ports["issuance"]), 30)
    return ports, booking


def prepare_issuance(state: Path, pki: Path, ports: dict[str, int], door: DeviceConfig) -> str:
    """The fleet (CA, the counter's and the door device's certificates), the
    issuance listener's certificate, the reference registry seeded with the
    demo resident; returns the ``[issuance]`` part of central's configuration.
    Open around the clock, so the demo works at any hour."""
    from demo.central_issuance import issuance_config_text, prepare
    from deploy import pki as fleet_pki
    from deploy.fleet import add_device, init_fleet, load_fleet

    fleet = state / "fleet"
    if not (fleet / "fleet.json").exists():
        init_fleet(fleet, broker_host="127.0.0.1")
    for device_id, facility, role in ((COUNTER_ID, COUNTER_FACILITY, "counter"),
                                      (door.device.id, door.device.facility, "door")):  # fmt: skip
        if device_id not in load_fleet(fleet).devices:
            add_device(fleet, device_id, facility, role=role)
        folder = fleet / "devices" / device_id
        cert, key = folder / "device.pem", folder / "device.key"
        if role not in fleet_pki.roles_of(fleet_pki.load_issued(cert, key).cert):
            # A demo state from before roles: the same device, issued again with its role.
            fleet_pki.issue(load_fleet(fleet).ca(), device_id, role=role).write(cert, key)
    paths = prepare(state / "issuance-setup", fleet, pki, port=ports["issuance"])
    return issuance_config_text(paths.issuance_dir, ports["issuance"], always_open=True)


def counter_config_path(state: Path, ports: dict[str, int]) -> Path:
    """The counter kiosk's configuration: certificates at the city hall."""
    identity = state / "fleet" / "devices" / COUNTER_ID
    path = state / "counter.toml"
    path.write_text(
        f'[device]\nid = "{COUNTER_ID}"\nfacility = "{COUNTER_FACILITY}"\nrole = "counter"\n'
        'name = "Demo city hall, counter 1"\ntimezone = "Asia/Tokyo"\n'
        '[store]\npath = "counter.db"\n'
        '[reader]\nbackend = "sim"\nname = "Virtual PCD 00 01"\n'
        f'credential_key_file = "{ensure_key(state)}"\n'
        f'[broker]\nhost = "127.0.0.1"\nport = {ports["broker"]}\n'
        f'[central]\nurl = "https://127.0.0.1:{ports["issuance"]}"\n'
        f'[central.tls]\nca_file = "{state / "issuance-setup" / "issuance" / "fleet-ca.pem"}"\n'
        f'cert_file = "{identity / "device.pem"}"\nkey_file = "{identity / "device.key"}"\n'
        '[issuance]\npayment_backend = "sim"\nprinter_backend = "file"\n'
        'spool = "issuance-spool"\nsound = true\n'
        "[enrolment]\nenabled = true\n"
        '[staff_call]\nwhere = "1F 総合案内"\nphone = "0xx-xxx-xxxx"\n'
    )
    load_config(path)  # validate now, with the file named in the message
    return path


def demo_cards(config: DeviceConfig, pki: TestPki) -> dict[str, CardKind]:
    """The references of the demo member card (F5) and the demo My Number Card
    (F6), computed with the demo's credential key exactly as the device does."""
    key = credential_key(config)
    return {
        member_reference(key, DEMO_FELICA_IDM): "member_card",
        jpki_reference(key, pki.users["valid"].der): "mynumber_card",
    }


def seed_central(central: Path, config: DeviceConfig, pki: TestPki) -> DemoBooking:
    """The counter in central's registry; the facility, the demo member and a
    booking covering now at the door (demo/bookings.py), made with central's
    services so that it reaches the device through the publisher and the agent."""
    from central.config import load_config as load_central
    from central.db.engine import Database
    from central.ingest.store import IngestStore

    db = Database(load_central(central).database.url)
    try:
        IngestStore(db, "demo").register_device(COUNTER_ID, COUNTER_FACILITY)
    finally:
        db.close()
    return seed_booking(str(central), config, demo_cards(config, pki))


def upgrade_demo_database(central: Path) -> None:
    """The demo's own database follows the code: a state folder from an older
    version is upgraded in place (a city's central is upgraded by its
    operators, docs/operations.md)."""
    from central.config import load_config as load_central
    from central.db.engine import Database

    db = Database(load_central(central).database.url, check_schema=False)
    try:
        db.upgrade_schema()
    finally:
        db.close()


def ensure_staff(central: Path, state: Path) -> None:
    """A dashboard account for the demo; its TOTP secret is kept in the state folder."""
    secret_file = state / "dashboard-totp-secret"
    if secret_file.exists():
        return
    from central.config import load_config as load_central
    from central.db.engine import Database
    from central.ops.staff import StaffStore

    db = Database(load_central(central).database.url)
    try:
        secret_file.write_text(StaffStore(db).create(STAFF_USER, STAFF_PASSWORD, "operator"))
    finally:
        db.close()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own loopback URL
            return bool(response.status == 200)
    except OSError:
        return False


def wait_synced(state: Path, booking: DemoBooking, timeout: float) -> bool:
    """Until the demo booking reached the device through central and the sync
    agent, and central confirmed the device's events (outbox empty)."""
    config = load_config(state / "device.toml")
    deadline = time.monotonic() + timeout
    with open_store(config.store.path) as store:
        outbox = Outbox(store)
        while time.monotonic() < deadline:
            if cached(store, booking.reservation_id) and outbox.depth() == 0:
                return True
            time.sleep(0.2)
    return False


def cached(store: Store, reservation_id: str) -> bool:
    """Whether the device's reservation cache holds this active reservation."""
    sql = "SELECT 1 FROM reservations WHERE id = ? AND status = 'active'"
    return bool(store.query(sql, (reservation_id,)))


def status_report(state: Path, ports: dict[str, int], booking: DemoBooking) -> str:
    config = load_config(state / "device.toml")
    secret = (state / "dashboard-totp-secret").read_text().strip()
    with open_store(config.store.path) as store:
        depth = Outbox(store).depth()
        cache = ReservationCache(store, config.device.facility)
        reservations, version = cache.count(), cache.version()
        problems = store.integrity_problems()
        arrived = cached(store, booking.reservation_id)
    on_device = "on the device" if arrived else "NOT yet on the device"
    lines = [
        f"City kiosk demo — device {config.device.id} at facility {config.device.facility}",
        f"  state folder   : {state} (logs in {state / 'logs'})",
        f"  broker         : mosquitto on 127.0.0.1:{ports['broker']}",
        f"  door           : {', '.join(d.id for d in config.doors)} on mock GPIO pins (lockctl)",
        f"  card reader    : virtual (pcscd + vpcd on port {ports['vpcd']});"
        " on the touchscreen F5 member card, F6 My Number Card, F7 unknown, F8 remove,"
        " F9 a new member card to enrol",
        f"  device store   : schema {SCHEMA_VERSION}, {depth} event(s) not yet confirmed"
        f" by central, integrity {problems or 'ok'}",
        f"  reservations   : {reservations} on the device (version {version}, synced from central);"
        f" the demo booking is {on_device}",
        *booking.summary(ZoneInfo(config.device.timezone)),
        f"  counter kiosk  : {COUNTER_ID}, certificates over HTTPS (mutual TLS) from central's"
        f" issuance listener on 127.0.0.1:{ports['issuance']}; on its touchscreen F6 puts the"
        " demo resident's My Number Card on the second reader (PIN 1234), F7 an expired card,"
        " F9 a resident who must use the counter, F8 takes it away; printed certificates are"
        f" PDFs in {state / 'issuance-spool'}",
        f"  dashboard      : http://127.0.0.1:{ports['api']}/  (30 simulated devices)",
        f"    sign in as   : {STAFF_USER} / {STAFF_PASSWORD}, code now {pyotp.TOTP(secret).now()}",
        "    codes later  : .venv/bin/python -c"
        f" \"import pyotp; print(pyotp.TOTP('{secret}').now())\"",
        f"  metrics, docs  : http://127.0.0.1:{ports['metadata']}/metrics and /openapi.json:"
        " a separate listener (not on the dashboard's port: docs/security.md)",
        f"  remote commands: http://127.0.0.1:{ports['api']}/devices/{config.device.id}"
        " (Commands panel): unlock a door (confirmed with a passkey from My account, or a"
        " fresh authenticator code), relock, lockdown and release, a screenshot of the"
        " attract screen, diagnostics; the device verifies each signed command; pushed settings"
        f" at http://127.0.0.1:{ports['api']}/config (an admin account edits them)",
        "  call staff     : press 係員を呼ぶ on either touchscreen: the call shows on the"
        " dashboard at once (banner and tone); 向かいます there, and the touchscreen says staff"
        " are on the way; 対応完了 ends the call",
        "  accessibility  : Language / 言語 offers 12 languages (やさしい日本語 among them);"
        " every screen is spoken (voice cache in the state folder; silent without a sound"
        " card); the top bar has larger text, high contrast and more time; a numeric"
        " keypad drives both touchscreens (2/8 move, 5 or Enter choose, + read again,"
        " - back, * call staff)",
        *bookings_report(state, ports, booking, config.device.facility),
    ]
    return "\n".join(lines)


def bookings_report(
    state: Path, ports: dict[str, int], booking: DemoBooking, facility: str
) -> list[str]:
    """Where to try the booking site, card enrolment and the staff pages."""
    base = f"http://127.0.0.1:{ports['api']}"
    return [
        f"  booking site   : {base}/booking/  sign in as {DEMO_EMAIL}: the code is printed"
        f' here ("@ mail to ..."), every mail is saved in {state / "mail"}',
        '  enrol a card   : on the site "My cards" > "Enrol a new card"; on the door'
        ' touchscreen "カード登録 / Enrol a card", type the code, F9; then F9 opens the door'
        " (central re-publishes the member's bookings with the new card)",
        f"  staff bookings : {base}/bookings (signed in as above): the grid /facilities/{facility},"
        f" this booking /bookings/{booking.booking_id}, the member /members/{booking.member_id},"
        " /use, /audit",
    ]


def follow(sup: Supervisor, state: Path, interval: float = 1.0) -> None:
    """Show the device's events as they are recorded, until Ctrl-C."""
    config = load_config(state / "device.toml")
    print("\nRunning (Ctrl-C to stop). Device events as they are recorded:")
    with open_store(config.store.path) as store:
        outbox = Outbox(store)
        seen = max((e.seq for e in outbox.pending(limit=100000)), default=0)
        try:
            while True:
                for event in outbox.pending(limit=100, after_seq=seen):
                    print(f"  + {json.dumps(event.to_wire(), ensure_ascii=False)}", flush=True)
                    seen = event.seq
                for name in sup.failed():
                    print(f"  ! {name} stopped:\n{sup.tail(name)}")
                    sup.procs.pop(name)
                time.sleep(interval)
        except KeyboardInterrupt:
            print("\nDemo stopped.")
