"""``python -m cardreader sim``: play a virtual card into pcscd through vpcd.

The card is inserted at start (unless ``--removed``) and stays until SIGINT
or SIGTERM. With ``--control stdin`` the lines ``insert``, ``remove`` and
``quit`` drive it (the demo and scripted tests use this); each is answered
with one line (``inserted`` / ``removed`` / ``error: ...``).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import threading
from pathlib import Path

from cardreader.sim import testpki
from cardreader.sim.faulty import FAULT_MODES
from cardreader.sim.profiles import PROFILES, build_card
from cardreader.sim.vpcd import VpcdLink

log = logging.getLogger(__name__)
DEFAULT_VPCD_PORT = 35963


def add_sim_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILES, default="mynumber")
    p.add_argument("--pin", default="1234", help="the virtual card's PIN (default 1234)")
    p.add_argument(
        "--variant",
        choices=testpki.USER_VARIANTS,
        default="valid",
        help="which TEST certificate the card holds",
    )
    p.add_argument("--tries", type=int, choices=range(4), help="set the PIN counter (0=blocked)")
    p.add_argument("--state", type=Path, help="file that persists the PIN counter")
    p.add_argument("--pki", type=Path, help="TEST PKI folder (created if missing)")
    p.add_argument("--fault", choices=FAULT_MODES, default="garbage", help="faulty profile mode")
    p.add_argument("--uid", help="member card UID / IDm in hex")
    p.add_argument("--host", default="127.0.0.1", help="vpcd host")
    p.add_argument("--port", type=int, default=DEFAULT_VPCD_PORT, help="vpcd reader slot port")
    p.add_argument("--removed", action="store_true", help="start with the card out")
    p.add_argument("--control", choices=("none", "stdin"), default="none")


def _pki(folder: Path | None) -> testpki.TestPki:
    if folder is None:
        folder = Path(tempfile.gettempdir()) / "city-kiosk-TEST-pki"
    try:
        return testpki.load_test_pki(folder)
    except FileNotFoundError:
        log.info("creating TEST PKI", extra={"folder": str(folder)})
        return testpki.write_test_pki(folder)


class _Stopped(Exception):
    """SIGINT / SIGTERM: leave whatever the main thread is waiting in."""


def _raise_stopped(*_: object) -> None:
    raise _Stopped()


def run_sim(args: argparse.Namespace) -> int:
    """Play the card until SIGINT / SIGTERM (or ``quit`` / end of stdin)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_stopped)
    try:
        uid = bytes.fromhex(args.uid) if args.uid else None
    except ValueError:
        print("error: --uid must be hex", file=sys.stderr)
        return 2
    needs_pki = args.profile in ("mynumber", "faulty")
    card = build_card(
        args.profile,
        pki=_pki(args.pki) if needs_pki else None,
        pin=args.pin,
        variant=args.variant,
        state_path=args.state,
        tries=args.tries,
        uid=uid,
        fault=args.fault,
    )
    link = VpcdLink(card, host=args.host, port=args.port)
    try:
        if not args.removed:
            link.insert()
        print(f"{'removed' if args.removed else 'inserted'} {args.profile}", flush=True)
        if args.control == "stdin":
            _control(link)
        else:
            threading.Event().wait()
    except _Stopped:
        pass
    except OSError as exc:
        print(
            f"error: cannot reach the vpcd reader at {args.host}:{args.port} ({exc}); "
            "is pcscd running with vsmartcard-vpcd installed?",
            file=sys.stderr,
        )
        return 10
    finally:
        link.remove()
    return 0


def _control(link: VpcdLink) -> None:
    for line in sys.stdin:
        word = line.strip()
        if word == "insert":
            link.insert()
            print("inserted", flush=True)
        elif word == "remove":
            link.remove()
            print("removed", flush=True)
        elif word == "quit":
            break
        elif word:
            print(f"error: unknown command {word!r} (insert, remove, quit)", flush=True)
