"""``python -m central``: ingest worker, HTTP API, tokens, device registry.

Thin adapters over the same objects the services use. Exit codes: 0 ok,
1 failure, 2 usage error, 3 configuration error, 5 database error.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import uvicorn

from central import audit
from central import mqtt as central_mqtt
from central.api.app import create_app
from central.api.tokens import ROLES, TokenStore
from central.cli_common import EXIT_CONFIG, EXIT_DATABASE, EXIT_FAILED, open_db
from central.commands import CommandService, load_signing_key
from central.commands.attachments import mount_attachments
from central.commands.relay import CommandRelay
from central.config import CentralConfig, code_key, load_config, web_options, webhook_secret
from central.db.commands import add_commands as add_db_commands
from central.db.engine import Database
from central.devices.listener import DeviceListener, device_app, make_server
from central.errors import CentralConfigError, CentralError, DatabaseError, NotFoundError
from central.ingest.store import IngestStore
from central.ingest.worker import IngestWorker
from central.issuance.api import create_issuance_app
from central.issuance.cli import add_commands as add_issuance_commands
from central.issuance.server import build_stack
from central.opendata.cli import add_commands as add_opendata_commands
from central.ops.alerts import AlertEngine
from central.ops.notify import EmailNotifier, Notifier, WebhookNotifier
from central.ops.service import OpsLoop
from central.ops.staff import ROLES as STAFF_ROLES
from central.ops.staff import StaffError, StaffStore
from central.ops.staff_admin import StaffAdmin
from central.ops.staffcalls import StaffCallRelay
from central.reservations.cli import add_commands as add_import_commands
from central.reservations.enrolment import EnrolmentService
from central.reservations.enrolment_api import mount_enrolment
from central.reservations.hooks import HooksLoop, WebhookSender
from central.reservations.members import ENROLMENT_KEY_SCOPE
from central.reservations.publisher import DeltaPublisher
from central.reservations.store import ReservationStore
from central.simulate import FleetSimulator, make_fleet
from foundation.logs import configure_logging

# open_db is part of this module's interface: the test harness opens central's
# database through it.
log = logging.getLogger("central.cli")


def cmd_ingest(config: CentralConfig, args: argparse.Namespace) -> int:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with open_db(config) as db:
        worker = IngestWorker(config, db)
        log.info("ingest worker starting", extra={"worker": worker.worker_id,
                                                  "broker": config.broker.host})  # fmt: skip
        worker.run(stop)
        log.info("ingest worker stopped", extra={"counts": dict(worker.counts)})
    return 0


def cmd_serve(config: CentralConfig, args: argparse.Namespace) -> int:
    with open_db(config) as db:
        store = ReservationStore(db, config.reservations.changelog_keep_versions)
        publisher = DeltaPublisher(store, config.broker, central_mqtt.client_id("api"))
        relay = staff_call_relay(config, db)
        commands, command_relay = command_service(config, db)
        site = config.booking if config.booking.enabled else None
        grace = timedelta(minutes=config.reservations.checkin_grace_minutes)
        app = create_app(db, publisher, config.api.page_size_max, code_key=code_key(config),
                         issuance_zone=config.issuance.timezone, booking_site=site,
                         checkin_grace=grace, staff_calls_changed=relay.wake,
                         web=web_options(config),
                         opendata_folder=config.opendata.folder,
                         commands=commands)  # fmt: skip
        enrolment = EnrolmentService(db, store, code_key(config)(ENROLMENT_KEY_SCOPE))
        # First: unusable listener TLS files end the command before any thread runs.
        devices = start_device_listener(config, db, enrolment, publisher.notify, commands)
        ops: OpsLoop | None = None
        hooks: HooksLoop | None = None
        calls: StaffCallRelay | None = None
        sender: CommandRelay | None = None
        try:
            ops = ops_loop(config, db).start()
            calls = relay.start()
            sender = command_relay.start() if command_relay is not None else None
            hooks = hooks_loop(config, db)
            # proxy_headers off: X-Forwarded-For counts only from api.trusted_proxies.
            uvicorn.run(app, host=args.host or config.api.host, port=args.port or config.api.port,
                        log_config=None, access_log=False, proxy_headers=False)  # fmt: skip
        finally:
            for running in (devices, ops, hooks, calls, sender):
                if running is not None:
                    running.close()
    return 0


def start_device_listener(
    config: CentralConfig, db: Database, enrolment: EnrolmentService,
    enrolled: Callable[[], None], commands: CommandService | None = None,
) -> DeviceListener | None:  # fmt: skip
    """``serve``: the mutual-TLS device listener beside the API, with card
    enrolment, certificate issuance and/or command uploads mounted (None
    when all are off); ``enrolled`` runs after a card is enrolled (wakes the
    delta publisher)."""
    listener = config.devices.listener
    uploads = commands is not None and commands.configured and listener is not None
    if not (config.device_listener_enabled or uploads):
        return None
    if listener is None:  # the configuration's validation makes this unreachable
        raise CentralConfigError(config.source, ["devices.listener: required"])
    stack = build_stack(config.issuance, db) if config.issuance.enabled else None
    try:
        app = create_issuance_app(stack.service, stack.orders) if stack else device_app()
        if config.enrolment.enabled:
            mount_enrolment(app, enrolment, enrolled)
        if uploads and commands is not None:
            mount_attachments(app, commands)
        server = make_server(listener, app, source=config.source)
    except BaseException:
        if stack is not None:
            stack.close()
        raise
    flows = {"enrolment": config.enrolment.enabled, "issuance": config.issuance.enabled}
    log.info("device listener starting", extra={"port": listener.port, **flows})
    return DeviceListener(server, stack.close if stack else lambda: None).start()


def hooks_loop(config: CentralConfig, db: Database) -> HooksLoop | None:
    """The booking webhook's no-show sweep and delivery, when configured."""
    secret, hook = webhook_secret(config), config.booking_webhook
    if secret is None or hook is None:
        return None
    sender = WebhookSender(hook.url, secret, hook.timeout_seconds, hook.retry_first_seconds,
                           hook.retry_max_seconds)  # fmt: skip
    grace = timedelta(minutes=config.reservations.checkin_grace_minutes)
    return HooksLoop(db, sender, grace, hook.every_seconds, lambda: datetime.now(UTC)).start()


def notifiers(config: CentralConfig) -> list[Notifier]:
    """The configured alert receivers (webhook, e-mail)."""
    found: list[Notifier] = []
    if config.notify.webhook is not None:
        hook = config.notify.webhook
        found.append(WebhookNotifier(hook.url, hook.timeout_seconds, hook.bearer_token))
    if config.notify.email is not None:
        mail = config.notify.email
        found.append(EmailNotifier(mail.host, mail.port, mail.sender, tuple(mail.recipients),
                                   mail.starttls, mail.username, mail.password))  # fmt: skip
    return found


def staff_call_relay(config: CentralConfig, db: Database) -> StaffCallRelay:
    """Tells devices what staff did with their calls, and notifies people."""
    client = central_mqtt.make_client(config.broker, central_mqtt.client_id("staffcalls"))
    return StaffCallRelay(
        db, client, lambda: central_mqtt.start(client, config.broker),
        lambda: central_mqtt.stop(client), notifiers=notifiers(config),
    )  # fmt: skip


def command_service(
    config: CentralConfig, db: Database
) -> tuple[CommandService, CommandRelay | None]:
    """Remote commands: the service the API and dashboard issue through, and
    its relay (None without a signing key: commands are not configured).
    An unreadable or wrong key file is a configuration error."""
    section = config.commands
    key = None
    if section.signing_key_file is not None:
        try:
            key = load_signing_key(section.signing_key_file)
        except (OSError, ValueError, TypeError) as exc:
            raise CentralConfigError(
                config.source, [f"commands.signing_key_file: unusable ({exc})"]
            ) from None
    holder: list[CommandRelay] = []
    service = CommandService(
        db, key, max_unlock_seconds=section.max_unlock_seconds,
        default_lifetime=timedelta(seconds=section.default_lifetime_seconds),
        wake=lambda: holder[0].wake() if holder else None,
    )  # fmt: skip
    if key is None:
        log.warning("remote commands not configured: commands.signing_key_file is not set")
        return service, None
    client = central_mqtt.make_client(config.broker, central_mqtt.client_id("commands"))
    relay = CommandRelay(service, client, lambda: central_mqtt.start(client, config.broker),
                         lambda: central_mqtt.stop(client))  # fmt: skip
    holder.append(relay)
    return service, relay


def ops_loop(config: CentralConfig, db: Database) -> OpsLoop:
    """The alert rules and history compaction, with the configured notifiers."""
    return OpsLoop(db, AlertEngine(config.ops.thresholds), notifiers(config),
                   config.ops.evaluate_every_seconds, config.ops.compact_every_seconds)  # fmt: skip


def cmd_staff_create(config: CentralConfig, args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass()
    with open_db(config) as db:
        subject = f"staff:{args.username}"
        try:
            secret = StaffStore(db).create(args.username, password, args.role)
        except StaffError as exc:
            audit.record_now(db, audit.cli_actor(), "staff.create", subject,
                             outcome=audit.Outcome.REFUSED, reason="invalid")  # fmt: skip
            print(f"error: {exc}", file=sys.stderr)
            return 1
        audit.record_now(db, audit.cli_actor(), "staff.create", subject,
                         detail={"role": args.role})  # fmt: skip
    uri = pyotp.TOTP(secret).provisioning_uri(name=args.username, issuer_name="City kiosk ops")
    print(f"created {args.username} ({args.role}). Add this to the authenticator app (shown once):")
    print(f"  secret: {secret}")
    print(f"  uri:    {uri}")
    return 0


def cmd_staff_reset(config: CentralConfig, args: argparse.Namespace) -> int:
    with open_db(config) as db:
        try:
            issued = StaffAdmin(db).reset_from_console(args.username, datetime.now(UTC))
        except StaffError as exc:
            audit.record_now(db, audit.cli_actor(), "staff.second_factor.reset",
                             f"staff:{args.username}", source=audit.CLI_SOURCE,
                             outcome=audit.Outcome.REFUSED, reason=exc.reason)  # fmt: skip
            print(f"error: {exc}", file=sys.stderr)
            return 1
    base = config.api.public_url.rstrip("/") or "<dashboard address>"
    print(f"second factor of {args.username} reset; passkeys removed, sessions ended.")
    print(f"one-time enrolment link (24 hours, shown once): {base}/enrol/{issued.enrol_token}")
    return 0


def cmd_simulate(config: CentralConfig, args: argparse.Namespace) -> int:
    broker = config.broker
    tls = (broker.tls.ca_file, broker.tls.cert_file, broker.tls.key_file) if broker.tls else None
    sim = FleetSimulator(broker.host, broker.port, make_fleet(args.devices, seed=args.seed),
                         tls=tls, seed=args.seed)  # fmt: skip
    try:
        sim.run(args.interval, args.rounds)
    except KeyboardInterrupt:
        pass
    finally:
        sim.close()
    print(f"published {sim.published} messages for {args.devices} simulated devices")
    return 0


def cmd_token_create(config: CentralConfig, args: argparse.Namespace) -> int:
    with open_db(config) as db:
        token_id, token = TokenStore(db).create(args.role, args.name)
        audit.record_now(db, audit.cli_actor(), "token.create", f"token:{token_id}",
                         detail={"role": args.role})  # fmt: skip
    print(token)
    print(f"token {token_id} ({args.role}) created; it is shown only now", file=sys.stderr)
    return 0


def cmd_token_list(config: CentralConfig, args: argparse.Namespace) -> int:
    with open_db(config) as db:
        _print(TokenStore(db).list_tokens())
    return 0


def cmd_token_revoke(config: CentralConfig, args: argparse.Namespace) -> int:
    with open_db(config) as db:
        try:
            TokenStore(db).revoke(args.id)
        except NotFoundError:
            audit.record_now(db, audit.cli_actor(), "token.revoke", f"token:{args.id}",
                             outcome=audit.Outcome.REFUSED, reason="unknown_token")  # fmt: skip
            raise
        audit.record_now(db, audit.cli_actor(), "token.revoke", f"token:{args.id}")
    return 0


def cmd_device_add(config: CentralConfig, args: argparse.Namespace) -> int:
    with open_db(config) as db:
        IngestStore(db, "cli").register_device(args.id, args.facility)
    print(f"device {args.id} registered for facility {args.facility}")
    return 0


def cmd_db_init(config: CentralConfig, args: argparse.Namespace) -> int:
    with open_db(config) as db:
        print(f"database ready: {db.dialect}")
    return 0


def cmd_config(config: CentralConfig, args: argparse.Namespace) -> int:
    if args.show:
        _print(config.model_dump(mode="json"))
    else:
        print(f"{config.source}: valid")
    return 0


def _print(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _staff_commands(parent: argparse.ArgumentParser, with_config: Any) -> None:
    ssub = parent.add_subparsers(dest="staff_command", required=True)
    s = with_config(
        ssub.add_parser("create", help="create a staff account (prints the TOTP secret once)")
    )
    s.add_argument("username")
    s.add_argument("--role", choices=STAFF_ROLES, required=True)
    s.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    s.set_defaults(func=cmd_staff_create)
    reset_help = "remove a staff member's passkeys and TOTP; prints an enrolment link once"
    s = with_config(ssub.add_parser("reset", help=reset_help))
    s.add_argument("username")
    s.set_defaults(func=cmd_staff_reset)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m central",
        description="Central: MQTT ingest workers, HTTP API, tokens and device registry.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--config",
            metavar="PATH",
            required=True,
            help="central configuration (TOML; docs/central.md)",
        )
        return p  # fmt: skip

    def command(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if func is not None:
            with_config(p).set_defaults(func=func)
        return p

    command("ingest", "run one ingest worker (run several to share the load)", cmd_ingest)
    p = command(
        "serve",
        "run the HTTP API, the reservation delta publisher and the staff call relay",
        cmd_serve,
    )
    p.add_argument("--host", help="listen address (default: api.host)")
    p.add_argument("--port", type=int, help="listen port (default: api.port)")
    p = command("token", "API bearer tokens", None)
    tsub = p.add_subparsers(dest="token_command", required=True)
    t = with_config(tsub.add_parser("create", help="create a token (printed once)"))
    t.add_argument("--role", choices=ROLES, required=True)
    t.add_argument("--name", default="", help="what the token is for")
    t.set_defaults(func=cmd_token_create)
    t = with_config(tsub.add_parser("list", help="list tokens (never the tokens themselves)"))
    t.set_defaults(func=cmd_token_list)
    t = with_config(tsub.add_parser("revoke", help="revoke a token by its id"))
    t.add_argument("id")
    t.set_defaults(func=cmd_token_revoke)
    p = command("device", "device registry", None)
    dsub = p.add_subparsers(dest="device_command", required=True)
    d = with_config(dsub.add_parser("add", help="register a device for a facility"))
    d.add_argument("--id", required=True)
    d.add_argument("--facility", required=True)
    d.set_defaults(func=cmd_device_add)
    _staff_commands(command("staff", "dashboard staff accounts", None), with_config)
    p = command("simulate", "publish a simulated fleet over MQTT (demo, load)", cmd_simulate)
    p.add_argument("--devices", type=int, default=50)
    p.add_argument("--interval", type=float, default=5.0, help="seconds between rounds")
    p.add_argument(
        "--rounds", type=int, default=None, help="stop after this many (default: run on)"
    )
    p.add_argument("--seed", type=int, default=7)
    add_issuance_commands(sub, with_config)
    add_import_commands(sub, with_config)
    add_db_commands(sub, with_config)
    add_opendata_commands(sub, with_config)
    command("db-init", "create a brand-new database (the services also do it at start)",
            cmd_db_init)  # fmt: skip
    p = command("config", "validate the central configuration (and print it)", cmd_config)
    p.add_argument("--show", action="store_true")
    return parser


# Commands that run a service (the audit source is each request's or device's).
SERVICES = frozenset({"serve", "ingest", "simulate", "issuance"})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command not in SERVICES:  # a service's requests and devices say where they are
        audit.SOURCE.set(audit.CLI_SOURCE)  # whatever this command records comes from here
    configure_logging("WARNING")
    try:
        config = load_config(args.config)
        configure_logging(config.logging.level)
        return int(args.func(config, args))
    except CentralConfigError as exc:
        log.error("configuration invalid", extra={"file": exc.path, "problems": exc.problems})
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except DatabaseError as exc:
        log.error("database unusable", extra={"error": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    except CentralError as exc:
        log.error("command failed", extra={"error": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
