"""The audit log's guard (pure): what may be written as an entry's fields
and detail, and what is replaced by ``redacted``."""

from __future__ import annotations

import pytest

from central.audit.log import REDACTED, safe_detail, safe_text

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "value",
    ["192.168.100.100", "2001:db8:1234:5678:9012:3456::1", "testclient", "cli:root",
     "device:door-01", "staff:sato", "token:ab12cd34", "/api/bookings/b-1/cancel"],
)  # fmt: skip
def test_audit_guard_keeps_addresses_and_ids(value: str) -> None:
    assert safe_text("source", value) == value


@pytest.mark.parametrize("value", ["hanako@example.jp", "member 1234-5678-9012"])
def test_audit_guard_redacts_mail_and_my_number_in_fields(value: str) -> None:
    assert safe_text("subject", value) == REDACTED


@pytest.mark.parametrize(
    "detail",
    [{"email": "x"}, {"name": "Sato"}, {"pin": "1234"}, {"password": "x"}, {"totp_code": "1"},
     {"api_token": "ck_x"}, {"secret": "JBSW"}, {"note": "a@b.jp"}, {"n": 123456789012},
     {"nested": {"phone": "03"}}, {"raw": b"\x01"}],
)  # fmt: skip
def test_audit_guard_redacts_personal_data_and_secrets_in_detail(detail: dict[str, object]) -> None:
    assert list(safe_detail("test", detail)) == [REDACTED]


def test_audit_guard_keeps_ids_codes_and_kinds() -> None:
    detail = {"token_id": "ab12", "code_id": "c1", "code_kind": "totp", "role": "admin",
              "rows": 3, "method": "POST", "status": 401, "door_name": "main"}  # fmt: skip
    assert safe_detail("test", detail) == detail
