"""The device's attachment uploads against a real HTTPS server with mutual
TLS: the device certificate is presented, transient failures (5xx, no
server) are tried three times, a 4xx is final, the size limit holds."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.commands import ATTACHMENT_PATH, MAX_ATTACHMENT_BYTES
from sync.upload import ATTEMPTS, AttachmentUploader, UploadError
from tests.harness.commands import AttachmentServer
from tests.harness.mosquitto import Mosquitto
from tests.harness.services import free_port

CID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def uploader(broker: Mosquitto, url: str, waits: list[float]) -> AttachmentUploader:
    identity = broker.identity("dev-a")
    return AttachmentUploader(
        url, ca_file=identity.ca, cert_file=identity.cert, key_file=identity.key,
        timeout=5, sleep=waits.append,
    )  # fmt: skip


@pytest.fixture
def server(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[AttachmentServer]:
    with contextlib.closing(AttachmentServer(mosquitto, tmp_path / "listener")) as running:
        yield running


def test_sync_upload_retries_transient_failures_then_succeeds(
    mosquitto: Mosquitto, server: AttachmentServer
) -> None:
    server.scripted = [(503, b"{}"), (502, b"")]
    waits: list[float] = []
    done = uploader(mosquitto, server.url, waits).upload(CID, "screen.capture", b"png")
    assert done.bytes == 3 and len(done.sha256) == 64
    assert [u.path for u in server.uploads] == [ATTACHMENT_PATH.format(command_id=CID)] * 3
    assert {(u.peer, u.content_type) for u in server.uploads} == {("dev-a", "image/png")}
    assert waits == [1.0, 2.0]


def test_sync_upload_refusal_is_final_and_named(
    mosquitto: Mosquitto, server: AttachmentServer
) -> None:
    server.answer = (403, b'{"error": "wrong_device"}')
    with pytest.raises(UploadError) as caught:
        uploader(mosquitto, server.url, []).upload(CID, "diagnostics.collect", b"{}")
    assert caught.value.code == "upload_failed" and "wrong_device" in caught.value.message
    assert len(server.uploads) == 1


def test_sync_upload_unreachable_central_fails_after_the_attempts(mosquitto: Mosquitto) -> None:
    waits: list[float] = []
    with pytest.raises(UploadError) as caught:
        uploader(mosquitto, f"https://localhost:{free_port()}", waits).upload(
            CID, "diagnostics.collect", b"{}"
        )
    assert "unreachable" in caught.value.message and len(waits) == ATTEMPTS - 1


def test_sync_upload_refuses_an_oversized_attachment_before_sending(
    mosquitto: Mosquitto, server: AttachmentServer
) -> None:
    big = b"\0" * (MAX_ATTACHMENT_BYTES["screen.capture"] + 1)
    with pytest.raises(UploadError, match="limit"):
        uploader(mosquitto, server.url, []).upload(CID, "screen.capture", big)
    assert server.uploads == []
