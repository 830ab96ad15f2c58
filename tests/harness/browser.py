"""Headless Chromium (Debian's chromium + chromedriver, driven by Selenium)
and an ASGI app served by uvicorn in a thread, for the browser tests.

The ``chromium`` fixture (``tests/conftest.py``) starts drivers with
:func:`start_chromium` and quits them after the test."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.harness.services import free_port, port_open, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync",
)  # fmt: skip


def start_chromium(
    profile: Path, *, window: tuple[int, int] = (1280, 800), flags: Sequence[str] = ()
) -> webdriver.Chrome:
    """Headless Chromium with its profile in ``profile``, the window at
    ``window`` (width, height) and any further command-line ``flags``."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    width, height = window
    for flag in (*FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}",
                 *flags):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


@contextmanager
def serve_app(app: Callable[..., Any], what: str, port: int | None = None) -> Iterator[str]:
    """``app`` served on a loopback port (free unless given) by uvicorn in a
    thread; yields its ``http://127.0.0.1:<port>`` URL and stops it after."""
    port = port or free_port()
    http = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=http.run, daemon=True)
    thread.start()
    wait_until(lambda: port_open(port), 10, f"{what} to listen")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        http.should_exit = True
        thread.join(10)
