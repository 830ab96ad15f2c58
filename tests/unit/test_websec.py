"""The pure parts of central.websec: who the client is behind proxies, and
the Secure-cookie rule."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from central.websec import client_address, parse_networks, secure_cookies

pytestmark = pytest.mark.unit
TRUSTED = parse_networks(["10.0.0.0/8", "fd00::/8"])


def _request(peer: str, forwarded: str | None = None, scheme: str = "http") -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return Request({"type": "http", "client": (peer, 1234), "headers": headers,
                    "scheme": scheme, "server": ("testserver", 80), "path": "/",
                    "query_string": b""})  # fmt: skip


@pytest.mark.parametrize(("peer", "forwarded", "client"), [
    ("203.0.113.5", None, "203.0.113.5"),
    ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not a proxy: header ignored
    ("10.0.0.1", "198.51.100.1", "198.51.100.1"),
    ("10.0.0.1", "1.2.3.4, 198.51.100.1", "198.51.100.1"),  # the client wrote 1.2.3.4
    ("10.0.0.1", "198.51.100.1, 10.0.0.2", "198.51.100.1"),  # two proxies
    ("10.0.0.1", "garbage, 10.0.0.2", "10.0.0.2"),
    ("10.0.0.1", "", "10.0.0.1"),
    ("fd00::1", "2001:db8::7", "2001:db8::7"),
])  # fmt: skip
def test_websec_client_address_believes_only_trusted_proxies(
    peer: str, forwarded: str | None, client: str
) -> None:
    assert client_address(_request(peer, forwarded), TRUSTED) == client


def test_websec_secure_cookies_from_public_url_or_scheme() -> None:
    assert secure_cookies(_request("1.1.1.1"), "https://ops.city.example")
    assert secure_cookies(_request("1.1.1.1", scheme="https"), "")
    assert not secure_cookies(_request("1.1.1.1"), "http://ops.city.example")


def test_websec_bad_trusted_proxy_is_refused() -> None:
    with pytest.raises(ValueError, match="not-an-ip"):
        parse_networks(["not-an-ip"])
