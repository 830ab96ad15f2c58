"""Shared fixtures: real services started by the test run, on free ports,
stopped by pid. A service that cannot start fails the tests that need it
(it is never skipped), so a green run means the real thing was exercised.

Tiers are markers given by folder: tests/unit -> unit, tests/integration ->
integration, tests/e2e -> e2e. Run one tier with ``-m unit``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver

from central.db.engine import Database
from tests.harness.browser import start_chromium
from tests.harness.cups import PrivateCups
from tests.harness.mosquitto import Mosquitto
from tests.harness.pcscd import Pcscd
from tests.harness.postgres import Postgres
from tests.harness.services import ServiceError
from tests.harness.xvfb import Xvfb

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("KIOSK_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _cli_logging_removed() -> Iterator[None]:
    """A command run in-process installs its JSON log handler on the stderr
    of that moment (``capsys``'s, closed after the test); a later test's
    threads (an SMTP server dropping a connection) would then write to a
    closed file. The handlers a test installed go with it."""
    root = logging.getLogger()
    before, level = set(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in before]:
        if getattr(handler, "_kiosk_json", False):
            root.removeHandler(handler)
    root.setLevel(level)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in ("unit", "integration", "e2e"):
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


def start_service(what: str, start: Callable[[], T]) -> T:
    """Start a service or fail loudly (never skip: see module docstring)."""
    try:
        return start()
    except ServiceError as exc:
        pytest.fail(f"{what} could not be started: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests keep screenshots and logs for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Callable[..., webdriver.Chrome]]:
    """Starts headless Chromium (``tests/harness/browser.py``: ``start_chromium``'s
    ``window`` and ``flags``), its profile under the test's tmp_path; every
    one started is quit after the test."""
    drivers: list[webdriver.Chrome] = []

    def start(
        *, window: tuple[int, int] = (1280, 800), flags: Sequence[str] = ()
    ) -> webdriver.Chrome:
        drivers.append(start_chromium(tmp_path / "chrome", window=window, flags=flags))
        return drivers[-1]

    yield start
    for driver in drivers:
        driver.quit()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A session-wide broker; devices dev-a (facility fac-1) and dev-b (fac-2)."""
    broker = Mosquitto(
        tmp_path_factory.mktemp("mosquitto"), devices={"dev-a": "fac-1", "dev-b": "fac-2"}
    )
    start_service("mosquitto", broker.start)
    yield broker
    broker.stop()


@pytest.fixture
def fresh_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of the test's own, for tests that restart, freeze or kill it."""
    broker = Mosquitto(tmp_path / "mosquitto", devices={"dev-a": "fac-1", "dev-b": "fac-2"})
    start_service("mosquitto", broker.start)
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pcscd]:
    """pcscd with two vpcd reader slots; this process is pointed at it."""
    daemon = Pcscd(tmp_path_factory.mktemp("pcscd"))
    start_service("pcscd", daemon.start)
    # libpcsclite reads this on its first connection in this process.
    os.environ.update(daemon.env)
    yield daemon
    daemon.stop()


@pytest.fixture
def cups(tmp_path: Path) -> Iterator[PrivateCups]:
    """A private cupsd with queue "kiosk" printing to files (tests/harness/cups.py)."""
    scheduler = PrivateCups(tmp_path / "cups")
    start_service("cupsd", scheduler.start)
    yield scheduler
    scheduler.stop()


@pytest.fixture(scope="session")
def xvfb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Xvfb]:
    server = Xvfb(tmp_path_factory.mktemp("xvfb"))
    start_service("Xvfb", server.start)
    yield server
    server.stop()


@pytest.fixture
def kivy_env(tmp_path: Path, xvfb: Xvfb) -> dict[str, str]:
    """Environment for a Kivy subprocess on our Xvfb, with no files in ~."""
    home = tmp_path / "kivy-home"
    home.mkdir()
    return {
        **os.environ,
        **xvfb.env,
        "KIVY_NO_ARGS": "1",
        # Console log stays on: Kivy otherwise swallows stderr, tracebacks too.
        "KIVY_NO_FILELOG": "1",
        "KIVY_HOME": str(home),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL cluster of the test run (initdb + postgres on a free port),
    or the server named by KIOSK_TEST_POSTGRES_URL."""
    server = Postgres()
    start_service("PostgreSQL", server.start)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres: Postgres) -> str:
    """A fresh, empty database of the test's own (SQLAlchemy URL)."""
    return postgres.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def central_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """Central's database, once on an SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'central.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database = Database(url)
    yield database
    database.close()
