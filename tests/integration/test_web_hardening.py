"""Central's web side under attack, through FastAPI's test client on real
databases: the per-address sign-in limit shared by two app instances (two
workers) on one PostgreSQL, X-Forwarded-For believed only from a trusted
proxy, the metadata endpoints closed without the token (or only on their
own listener), Secure cookies and the security headers behind a TLS proxy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from central.api.app import create_app
from central.config import parse_config, web_options
from central.db.engine import Database
from central.errors import CentralConfigError
from central.websec import CSP, WebOptions
from tests.harness.keys import fixed_code_key
from tests.harness.services import free_port
from tests.harness.web import METADATA_AUTH, METADATA_TOKEN

pytestmark = pytest.mark.integration
ATTACKER, PROXY = "203.0.113.5", "10.0.0.1"
LIMITED = WebOptions(attempts_per_address=3, trusted_proxies=(PROXY,))


def _app(db: Database, web: WebOptions) -> FastAPI:
    return create_app(db, code_key=fixed_code_key, web=web)


def _guess(client: TestClient, forwarded: str | None = None) -> int:
    """One wrong sign-in; the answer's status (401 wrong, 429 limited)."""
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    data = {"username": "nobody", "password": "guess", "code": "123456", "csrf": csrf.group(1)}
    return int(client.post("/login", data=data, headers=headers).status_code)


@pytest.fixture
def two_workers(postgres_url: str) -> Iterator[tuple[FastAPI, FastAPI]]:
    """Two app instances, each with its own engine, on one PostgreSQL."""
    first, second = Database(postgres_url), Database(postgres_url)
    yield _app(first, LIMITED), _app(second, LIMITED)
    first.close()
    second.close()


def test_dashboard_address_limit_is_shared_by_two_workers(
    two_workers: tuple[FastAPI, FastAPI],
) -> None:
    one, two = (TestClient(app, client=(ATTACKER, 40000)) for app in two_workers)
    assert [_guess(one), _guess(two), _guess(one)] == [401, 401, 401]
    assert _guess(two) == 429 and _guess(one) == 429
    # A made-up X-Forwarded-For from the attacker itself does not reset it.
    assert _guess(two, forwarded="198.51.100.77") == 429


def test_dashboard_forwarded_for_only_from_a_trusted_proxy(
    two_workers: tuple[FastAPI, FastAPI],
) -> None:
    app, _ = two_workers
    direct = TestClient(app, client=(ATTACKER, 40000))
    proxied = TestClient(app, client=(PROXY, 40001))
    for _ in range(3):
        assert _guess(proxied, forwarded=ATTACKER) == 401  # the proxy names the attacker
    assert _guess(direct) == 429  # ... the same address as connecting directly
    # Through the proxy, a hop the attacker wrote in front is not believed.
    assert _guess(proxied, forwarded=f"198.51.100.9, {ATTACKER}") == 429
    assert _guess(proxied, forwarded="198.51.100.9") == 401  # another client behind the proxy


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'central.db'}")
    yield database
    database.close()


METADATA = ("/metrics", "/docs", "/openapi.json")


def test_api_metadata_closed_without_configuration(db: Database) -> None:
    with TestClient(_app(db, WebOptions())) as client:
        for path in METADATA:
            assert client.get(path, headers=METADATA_AUTH).status_code == 404, path


def test_api_metadata_needs_the_token(db: Database) -> None:
    with TestClient(_app(db, WebOptions(metadata_token=METADATA_TOKEN))) as client:
        for path in METADATA:
            assert client.get(path).status_code == 401, path
            wrong = {"Authorization": "Bearer not-the-token"}
            assert client.get(path, headers=wrong).status_code == 401, path
            assert client.get(path, headers=METADATA_AUTH).status_code == 200, path


def test_api_metadata_only_on_its_own_listener(db: Database) -> None:
    port = free_port()
    web = WebOptions(metadata_listener=("127.0.0.1", port))
    with TestClient(_app(db, web)) as client:
        for path in METADATA:
            assert client.get(path).status_code == 404, path
            on_listener = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
            assert on_listener.status_code == 200, path
        spec = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10).json()
        assert "/api/reservations" in spec["paths"]


def test_api_metadata_listener_port_taken_stops_the_start(db: Database) -> None:
    with TestClient(_app(db, WebOptions(metadata_listener=("127.0.0.1", free_port())))):
        pass  # the free port is now released again; a taken one:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        web = WebOptions(metadata_listener=("127.0.0.1", taken.getsockname()[1]))
        with pytest.raises(RuntimeError, match="did not start"), TestClient(_app(db, web)):
            pass


def test_dashboard_behind_tls_proxy_cookies_secure_and_headers(db: Database) -> None:
    from central.ops.staff import StaffStore

    secret = StaffStore(db).create("tanaka", "correct horse battery", "viewer")
    web = WebOptions(public_url="https://ops.city.example")
    with TestClient(_app(db, web), base_url="http://testserver") as client:
        page = client.get("/login")
        assert "secure" in page.headers["set-cookie"].lower()
        assert page.headers["content-security-policy"] == CSP
        assert "frame-ancestors 'none'" in CSP and "script-src 'self'" in CSP
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["strict-transport-security"].startswith("max-age=")
        import pyotp

        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf
        data = {"username": "tanaka", "password": "correct horse battery",
                "code": pyotp.TOTP(secret).now(), "csrf": csrf.group(1)}  # fmt: skip
        # The Secure cookie is not sent back over plain http by the client: send it.
        sent = {"Cookie": f"kiosk_login_csrf={page.cookies['kiosk_login_csrf']}"}
        signed_in = client.post("/login", data=data, headers=sent, follow_redirects=False)
        cookie = signed_in.headers["set-cookie"].lower()
        assert "kiosk_session=" in cookie and "secure" in cookie and "httponly" in cookie
        session = {"Cookie": f"kiosk_session={signed_in.cookies['kiosk_session']}"}
        fleet = client.get("/", headers=session)
        assert fleet.status_code == 200 and fleet.headers["cache-control"] == "no-store"
        static = client.get("/static/dashboard/dashboard.css")
        assert static.status_code == 200 and "cache-control" not in static.headers


def test_config_web_keys(tmp_path: Path) -> None:
    token = tmp_path / "metadata.token"
    token.write_text(METADATA_TOKEN + "\n")
    config = parse_config(
        '[api]\npublic_url = "https://ops.city.example"\ntrusted_proxies = ["10.0.0.0/8"]\n'
        'metadata_token_file = "metadata.token"\nmetadata_port = 9100\n',
        "central.toml", tmp_path,
    )  # fmt: skip
    web = web_options(config)
    assert web.https and web.metadata_token == METADATA_TOKEN
    assert web.metadata_listener == ("127.0.0.1", 9100) and web.trusted_proxies == ("10.0.0.0/8",)
    token.write_text("short")
    with pytest.raises(CentralConfigError, match="metadata_token_file"):
        web_options(config)
    with pytest.raises(CentralConfigError, match="trusted_proxies"):
        parse_config('[api]\ntrusted_proxies = ["not-an-address"]\n', "central.toml", tmp_path)
