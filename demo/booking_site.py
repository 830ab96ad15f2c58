"""The residents' booking site in the demo: central's ``[booking]`` section
(mails to the demo's SMTP sink, :mod:`demo.mailsink`) and, for ``--once``,
a check that the site answers and mails a sign-in code to the demo member.
"""

from __future__ import annotations

import re
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

SENDER = "yoyaku@demo.city.example.jp"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def booking_config_text(api_port: int, smtp_port: int) -> str:
    """The ``[booking]`` part of central's configuration: the site on the
    API's port, its mails to the local sink. More sign-in mails per hour than
    the default, so repeated ``--once`` runs on one state folder still get
    their mail."""
    return (
        f'[booking]\nenabled = true\npublic_url = "http://127.0.0.1:{api_port}"\n'
        "mails_per_hour = 50\n"
        f'[booking.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsender = "{SENDER}"\n'
    )


def request_sign_in(api_port: int, email: str) -> int:
    """Open ``/booking/`` (it leads to the sign-in page) and ask for a
    sign-in mail for ``email``, as a browser does (the form token and its
    cookie); returns the status of the answer."""
    base = f"http://127.0.0.1:{api_port}/booking"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with opener.open(f"{base}/", timeout=5) as page:
        token = CSRF.search(page.read().decode())
    if token is None:
        return 0
    form = urllib.parse.urlencode({"email": email, "csrf": token.group(1)}).encode()
    with opener.open(f"{base}/sign-in", data=form, timeout=5) as answer:
        return int(answer.status)


def wait_for_mail(folder: Path, before: set[Path], timeout: float) -> Path | None:
    """The first ``.eml`` in ``folder`` not in ``before``, once it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = sorted(set(folder.glob("*.eml")) - before)
        if new:
            return new[0]
        time.sleep(0.1)
    return None


def check_sign_in_mail(api_port: int, email: str, folder: Path, timeout: float = 10) -> str:
    """Ask the site for a sign-in mail for ``email``; '' when it arrived in
    ``folder``, else what went wrong."""
    before = set(folder.glob("*.eml"))
    try:
        status = request_sign_in(api_port, email)
    except OSError as exc:
        return f"the booking site did not answer ({exc})"
    if status != 200:
        return f"the booking site's sign-in answered {status}"
    if wait_for_mail(folder, before, timeout) is None:
        return f"no sign-in mail arrived in {folder} within {timeout:.0f} s"
    return ""
