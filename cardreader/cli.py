"""``python -m cardreader``: readers, watch, info, auth, sim, testpki, keygen.

Thin adapters over :class:`cardreader.service.CardService`, the virtual
cards and the test PKI. ``--json`` prints machine-readable output. Errors
become one clear line on stderr, a structured log line and an exit code:

== ==================================================================
0  ok
1  other failure reported by the card or reader
2  usage error (bad arguments)
3  configuration invalid
10 pcscd is not running
11 no card reader (or none matching ``reader.name``)
12 no card on the reader, or the card was removed during the command
13 unknown card, or not a My Number Card where one is needed
14 wrong PIN (the message says how many tries are left)
15 PIN blocked (reset at the city office; no PIN was sent)
16 certificate expired or revoked
17 the card answered garbage, an unexpected status word, or not in time
18 the PIN is not 4 digits (nothing was sent to the card)
== ==================================================================
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cardreader import credential, errors
from cardreader.identify import CardKind
from cardreader.service import CardService
from cardreader.watch import CardEvent
from foundation.errors import ConfigError, MissingKeyError

log = logging.getLogger("cardreader.cli")

EXIT_CODES: list[tuple[type[errors.CardReaderError], int]] = [
    (errors.ServiceUnavailableError, 10),
    (errors.NoReaderError, 11),
    (errors.NoCardError, 12),
    (errors.CardRemovedError, 12),
    (errors.UnknownCardError, 13),
    (errors.NotMyNumberCardError, 13),
    (errors.WrongPinError, 14),
    (errors.PinBlockedError, 15),
    (errors.CertificateExpiredError, 16),
    (errors.CertificateRevokedError, 16),
    (errors.MalformedResponseError, 17),
    (errors.StatusWordError, 17),
    (errors.CardTimeoutError, 17),
    (errors.PinFormatError, 18),
]
EXIT_FAILED = 1


def exit_code(exc: errors.CardReaderError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_FAILED


def _out(args: argparse.Namespace, value: dict[str, Any], text: str) -> None:
    print(json.dumps(value, ensure_ascii=False) if args.json else text, flush=True)


KEY_HOW = "the fleet's credential key (python -m cardreader keygen PATH)"


def _service(args: argparse.Namespace) -> CardService:
    from sync.config import load_config

    if args.config is None:
        raise ConfigError("--config", ["the device configuration file is required (TOML)"])
    config = load_config(args.config)
    reader = config.reader
    if reader.credential_key_file is None:
        raise MissingKeyError(config.source, "reader.credential_key_file", how=KEY_HOW)
    return CardService(
        credential_key=credential.load_key(reader.credential_key_file),
        reader_filter=args.reader if args.reader is not None else reader.name,
        apdu_timeout=reader.apdu_timeout_seconds,
        extended_reads=reader.extended_reads,
    )


def cmd_readers(args: argparse.Namespace) -> int:
    with _service(args) as service:
        names = service.readers()
    _out(args, {"readers": names}, "\n".join(names) or "(no readers)")
    return 0 if names else 11


def cmd_watch(args: argparse.Namespace) -> int:
    events: queue.Queue[CardEvent] = queue.Queue(maxsize=100)
    seen = 0
    with _service(args) as service, service.watch(events):
        while args.count == 0 or seen < args.count:
            try:
                event = events.get(timeout=args.timeout or None)
            except queue.Empty:
                return 0
            seen += 1
            record: dict[str, Any] = {"event": event.kind, "reader": event.reader}
            if event.kind == "inserted" and args.identify:
                record.update(_identify_quietly(service, event.reader))
            text = " ".join(f"{k}={v}" for k, v in record.items())
            _out(args, record, text)
    return 0


def _identify_quietly(service: CardService, reader: str) -> dict[str, Any]:
    """The watcher keeps running whatever the card does."""
    try:
        info = service.info(reader)
    except errors.CardReaderError as exc:
        log.warning("card not identified", extra={"reader": reader, "error": str(exc)})
        return {"kind": "error", "error": str(exc)}
    out: dict[str, Any] = {"kind": info.kind.value, "reference": info.reference}
    if info.certificate is not None:
        out["expired"] = info.certificate.expired
        out["pin_tries_left"] = info.pin_tries_left
    return out


def cmd_info(args: argparse.Namespace) -> int:
    with _service(args) as service:
        info = service.info()
    if info.kind is CardKind.UNKNOWN:
        raise errors.UnknownCardError()
    lines = [f"reader: {info.reader}", f"kind: {info.kind.value}", f"reference: {info.reference}"]
    if info.certificate is not None:
        cert = info.certificate
        lines += [
            f"certificate subject: {cert.subject}",
            f"certificate issuer: {cert.issuer}",
            f"certificate serial: {cert.serial}",
            f"valid: {cert.not_before.isoformat()} .. {cert.not_after.isoformat()}"
            + (" (EXPIRED)" if cert.expired else ""),
            f"PIN tries left: {info.pin_tries_left}",
        ]
    _out(args, info.to_json(), "\n".join(lines))
    if info.certificate is not None and info.certificate.expired:
        raise errors.CertificateExpiredError(info.certificate.not_after.date().isoformat())
    return 0


def cmd_auth(args: argparse.Namespace) -> int:
    if not args.pin_stdin:
        print("error: give the PIN on stdin with --pin-stdin (never as an argument)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        challenge = bytes.fromhex(args.challenge)
    except ValueError:
        print("error: --challenge must be hex, e.g. 0011aabb", file=sys.stderr)
        return 2
    pin = sys.stdin.readline().rstrip("\r\n")
    with _service(args) as service:
        outcome = service.authenticate(pin, challenge)
    del pin
    result = outcome.result
    text = "\n".join(
        [
            f"reference: {outcome.reference}",
            f"certificate subject: {result.info.subject}",
            f"certificate serial: {result.info.serial}",
            f"signature: {result.signature.hex()}",
            "certificate (DER, hex): " + result.certificate.hex(),
        ]
    )
    _out(args, outcome.to_json(), text)
    return 0


def cmd_testpki(args: argparse.Namespace) -> int:
    # Like ``sim``, imported on use: the virtual card's material is test material.
    from cardreader.sim import testpki

    pki = testpki.write_test_pki(Path(args.directory))
    users = {v: p.cert.subject.rfc4514_string() for v, p in pki.users.items()}
    text = f"TEST PKI written to {args.directory}"
    _out(args, {"directory": args.directory, "users": users}, text)
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    try:
        credential.write_new_key(Path(args.path))
    except errors.CredentialKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _out(args, {"key_file": args.path}, f"credential key written to {args.path}")
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from cardreader.sim.run import run_sim

    return run_sim(args)


def _common(json_flag: bool = True) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", metavar="PATH", help="device configuration (TOML)")
    parent.add_argument("--reader", help="substring of the reader name (default: reader.name)")
    parent.add_argument("--trace", action="store_true", help="log every APDU (VERIFY masked)")
    if json_flag:
        parent.add_argument("--json", action="store_true", help="print JSON")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cardreader",
        description="Card readers, My Number Card (JPKI) and member cards; virtual cards.",
        epilog="Exit codes: see docs/cardreader.md (0 ok, 10 no pcscd, 11 no reader, "
        "12 no card, 13 unknown card, 14 wrong PIN, 15 PIN blocked, 16 certificate "
        "expired/revoked, 17 bad card answer, 18 PIN not 4 digits).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = _common()
    p = sub.add_parser("readers", parents=[common], help="list connected card readers")
    p.set_defaults(func=cmd_readers)
    p = sub.add_parser("watch", parents=[common], help="print card insertions and removals")
    p.add_argument("--identify", action="store_true", help="identify each inserted card")
    p.add_argument("--count", type=int, default=0, help="stop after N events (0: never)")
    p.add_argument("--timeout", type=float, default=0, help="stop after S quiet seconds")
    p.set_defaults(func=cmd_watch)
    p = sub.add_parser("info", parents=[common], help="card kind, reference, certificate")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("auth", parents=[common], help="verify the PIN and sign a challenge")
    p.add_argument("--pin-stdin", action="store_true", help="read the 4-digit PIN from stdin")
    p.add_argument("--challenge", required=True, help="challenge bytes in hex")
    p.set_defaults(func=cmd_auth)
    p = sub.add_parser("testpki", parents=[common], help="write a JPKI-like TEST PKI")
    p.add_argument("directory")
    p.set_defaults(func=cmd_testpki)
    p = sub.add_parser("keygen", parents=[common], help="create a credential reference key")
    p.add_argument("path")
    p.set_defaults(func=cmd_keygen)
    from cardreader.sim.run import add_sim_arguments

    p = sub.add_parser("sim", parents=[common], help="play a virtual card into pcscd (vpcd)")
    add_sim_arguments(p)
    p.set_defaults(func=cmd_sim)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from foundation.cli import run_cli
    from foundation.logs import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging("INFO" if args.command == "sim" else "WARNING")
    if args.trace:
        logging.getLogger("cardreader.trace").setLevel(logging.DEBUG)
    func: Callable[[argparse.Namespace], int] = args.func

    def body() -> int:
        try:
            return func(args)
        except errors.CardReaderError as exc:
            code = exit_code(exc)
            log.error("card command failed", extra={"error": str(exc), "exit": code})
            print(f"error: {exc}", file=sys.stderr)
            return code

    return run_cli(body)
