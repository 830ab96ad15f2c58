"""docs/issuance.md states the contract an outside implementer needs: every
refusal code with its HTTP status, the signed bytes; and the role string
deploy writes is the one central reads."""

from __future__ import annotations

from pathlib import Path

from central.devices.listener import ROLE_UNIT_PREFIX
from central.issuance.service import COUNTER_ROLE
from contracts.issuance import ERROR_CODES, SIGNATURE_CONTEXT, signed_message
from deploy import pki
from deploy.provision import ROLES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "issuance.md"


def test_issuance_docs_list_every_refusal_with_its_status() -> None:
    text = DOCS.read_text()
    for code, status in ERROR_CODES.items():
        assert f"| `{code}` | {status} |" in text, code
    assert "`/openapi.json`" in text and "Base path `/api/issuance`" in text


def test_issuance_docs_signed_bytes_match_signed_message() -> None:
    text = DOCS.read_text()
    assert f'b"{SIGNATURE_CONTEXT.decode()}"      {len(SIGNATURE_CONTEXT)} ASCII bytes' in text
    challenge = bytes(range(32))
    assert signed_message(challenge, "kiosk-1") == (
        SIGNATURE_CONTEXT + b"\x00" + challenge + b"\x00" + b"kiosk-1"
    )


def test_issuance_role_written_by_deploy_is_the_one_central_reads() -> None:
    assert ROLE_UNIT_PREFIX == pki.ROLE_UNIT_PREFIX and COUNTER_ROLE in ROLES
    issued = pki.issue(pki.create_ca("fleet"), "counter-1", role=COUNTER_ROLE)
    assert pki.roles_of(issued.cert) == [COUNTER_ROLE]
