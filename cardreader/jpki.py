"""JPKI operations on the My Number Card's public-key application.

Only the JPKI application is ever selected (``apdu.check_allowed`` enforces
it in the transport): the input-support and visual applications, which hold
the 12-digit number, are never touched. Only the user-authentication side is
used: its certificate (EF 000A, no PIN), its CA certificate (EF 000B), its
PIN (EF 0018, 4 digits, 3 tries) and its key (EF 0017).

PIN rules: the PIN is checked locally (4 ASCII digits) before anything is
sent; the retry counter is read first (a VERIFY without data consumes no
try) and a blocked PIN is never sent; one VERIFY per call, never retried;
the card is powered down after PIN work (:func:`authenticate`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cardreader import apdu, certref, certs
from cardreader.errors import (
    MalformedResponseError,
    NotMyNumberCardError,
    PinBlockedError,
    PinFormatError,
    SecurityStatusError,
    StatusWordError,
    WrongPinError,
)
from cardreader.pcsc import CardSession, Pcsc, Response

log = logging.getLogger(__name__)

PIN_LENGTH = 4
MAX_PIN_TRIES = 3
SIGN_TIMEOUT = 15.0  # RSA-2048 on the card takes seconds on slow readers
CHUNK = 256
# First read of a tap: enough for version, serial, algorithm and a J-LIS-shaped
# issuer (about 170 bytes) in one APDU; a longer issuer costs one more read
# of exactly what is missing.
HEAD_BLOCK = 192
SFI_AUTH_CERT = apdu.EF_AUTH_CERT  # short EF identifier = the FID's low bits


def encode_pin(pin: str) -> bytearray:
    """The PIN as ASCII bytes after the local check (no APDU on failure)."""
    if len(pin) != PIN_LENGTH or not (pin.isascii() and pin.isdigit()):
        raise PinFormatError()
    return bytearray(pin.encode("ascii"))


def _fail(command: str, response: Response) -> StatusWordError:
    if response.sw == apdu.SW_SECURITY:
        return SecurityStatusError(command, response.sw, apdu.sw_meaning(response.sw))
    return StatusWordError(command, response.sw, apdu.sw_meaning(response.sw))


class Jpki:
    """The JPKI application of the card in ``session``."""

    def __init__(self, session: CardSession, *, extended_reads: bool = False) -> None:
        self.session = session
        self.extended_reads = extended_reads

    def select(self) -> None:
        response = self.session.transmit(apdu.select_aid(apdu.JPKI_AID))
        if response.sw == apdu.SW_NOT_FOUND:
            raise NotMyNumberCardError("a card without the JPKI application")
        if not response.ok:
            raise _fail("SELECT JPKI", response)

    def _select_ef(self, fid: int) -> None:
        response = self.session.transmit(apdu.select_ef(fid))
        if not response.ok:
            raise _fail(f"SELECT EF {fid:04X}", response)

    # -- certificates ----------------------------------------------------

    def read_auth_certificate(self) -> bytes:
        """DER of the user-authentication certificate (no PIN needed)."""
        return self._read_der_file(apdu.EF_AUTH_CERT)

    def read_ca_certificate(self) -> bytes:
        """DER of the CA certificate that issued the user-auth certificate."""
        return self._read_der_file(apdu.EF_AUTH_CA_CERT)

    def read_auth_head(self) -> tuple[certref.CertHead, bytes]:
        """Serial and issuer of the user-auth certificate from its first bytes
        (one READ BINARY by short EF identifier, two if the issuer is long),
        and the bytes read (a legacy full read continues from them)."""
        data = self._read_sfi_or_select(SFI_AUTH_CERT, 0, HEAD_BLOCK)
        try:
            return certref.parse_head(data), data
        except certref.NeedMore as more:
            # One more read of exactly what is missing, never a loop: a card
            # answering a few bytes at a time gets no second chance.
            if len(data) < HEAD_BLOCK:
                raise MalformedResponseError("certificate file ends inside its head") from None
            data += self._read_sfi_or_select(SFI_AUTH_CERT, len(data), more.total - len(data))
        try:
            return certref.parse_head(data), data
        except certref.NeedMore:
            raise MalformedResponseError("certificate file ends inside its head") from None

    def _read_sfi_or_select(self, sfi: int, offset: int, length: int) -> bytes:
        """READ BINARY by short EF id; SELECT + READ on a card that refuses it."""
        if offset <= 0xFF:
            response = self.session.transmit(apdu.read_binary_sfi(sfi, offset, length))
            if response.sw in (apdu.SW_OK, *apdu.SW_END_OF_FILE) and response.data:
                if len(response.data) > length:
                    raise MalformedResponseError("READ BINARY returned more than asked")
                return response.data
            if response.sw not in apdu.SW_NO_SFI:
                raise _fail(f"READ BINARY SFI {sfi:02X}", response)
            log.info("READ BINARY by short EF id refused", extra={"sw": f"{response.sw:04X}"})
        self._select_ef(sfi)
        return self._read(offset, length)

    def read_auth_certificate_rest(self, head: bytes) -> bytes:
        """The whole user-auth certificate, continuing after ``head`` (bytes
        already read from offset 0): the legacy reference needs all of it."""
        return self._read_der_file(apdu.EF_AUTH_CERT, head)

    def _read_der_file(self, fid: int, head: bytes = b"") -> bytes:
        self._select_ef(fid)
        if len(head) < 4:
            head = self._read(0, 4)
        total = apdu.der_total_length(head)
        data = bytearray(head[:total])
        if self.extended_reads:
            rest = self._try_extended(len(data), total - len(data))
            if rest is not None:
                return bytes(data + rest)
        while len(data) < total:
            asked = min(CHUNK, total - len(data))
            chunk = self._read(len(data), asked)
            data += chunk
            # A short answer means the file ended; a hostile card answering a
            # byte at a time would otherwise cost thousands of APDUs.
            if len(chunk) < asked:
                raise MalformedResponseError(
                    f"certificate file ends after {len(data)} of {total} bytes"
                )
        return bytes(data)

    def _read(self, offset: int, length: int) -> bytes:
        response = self.session.transmit(apdu.read_binary(offset, length))
        if response.sw not in (apdu.SW_OK, *apdu.SW_END_OF_FILE):
            raise _fail("READ BINARY", response)
        if len(response.data) > length:
            raise MalformedResponseError(
                f"READ BINARY returned {len(response.data)} bytes for {length} asked"
            )
        if len(response.data) < min(length, 4) and offset == 0:
            raise MalformedResponseError("certificate file shorter than its header")
        return response.data

    def _try_extended(self, offset: int, length: int) -> bytes | None:
        """One extended-Le read; None (fall back to short reads) if refused."""
        response = self.session.transmit(apdu.read_binary_extended(offset, length))
        if response.ok and len(response.data) == length:
            return response.data
        log.info(
            "extended READ BINARY refused, using short reads",
            extra={"sw": f"{response.sw:04X}", "got": len(response.data)},
        )
        return None

    # -- PIN -------------------------------------------------------------

    def pin_tries_left(self) -> int | None:
        """Tries left for the user-auth PIN; consumes none.

        None means the PIN is already verified in this power cycle.
        """
        self._select_ef(apdu.EF_AUTH_PIN)
        response = self.session.transmit(apdu.verify_status())
        tries = apdu.pin_tries(response.sw)
        if tries is not None:
            return tries
        if response.sw in apdu.SW_BLOCKED:
            return 0
        if response.ok:
            return None
        raise _fail("PIN STATUS", response)

    def verify_pin(self, pin: str) -> None:
        """Verify the user-auth PIN once. Raises on every outcome but success.

        :class:`PinFormatError` (nothing sent), :class:`PinBlockedError`
        (blocked before: no VERIFY sent; or blocked by this try),
        :class:`WrongPinError` with ``tries_left``.
        """
        secret = encode_pin(pin)
        try:
            if self.pin_tries_left() == 0:
                raise PinBlockedError()
            response = self.session.transmit(apdu.verify(bytes(secret)))
        finally:
            secret[:] = bytes(len(secret))
        tries = apdu.pin_tries(response.sw)
        if response.ok:
            log.info("PIN verified", extra={"reader": self.session.reader})
            return
        if tries == 0 or response.sw in apdu.SW_BLOCKED:
            log.warning("PIN blocked", extra={"reader": self.session.reader})
            raise PinBlockedError()
        if tries is not None:
            log.info("wrong PIN", extra={"reader": self.session.reader, "tries_left": tries})
            raise WrongPinError(tries)
        raise _fail("VERIFY", response)

    # -- signature -------------------------------------------------------

    def sign(self, challenge: bytes) -> bytes:
        """Sign SHA-256(challenge) with the user-auth key (PKCS#1 v1.5).

        Needs a verified PIN. The host builds the DigestInfo; the card pads.
        """
        self._select_ef(apdu.EF_AUTH_KEY)
        command = apdu.compute_signature(apdu.sha256_digest_info(challenge))
        response = self.session.transmit(
            command, timeout=max(SIGN_TIMEOUT, self.session.timeout or 0)
        )
        if not response.ok:
            raise _fail("COMPUTE DIGITAL SIGNATURE", response)
        if len(response.data) not in (128, 256, 384, 512):
            raise MalformedResponseError(f"signature of {len(response.data)} bytes")
        return response.data


@dataclass(frozen=True)
class AuthResult:
    certificate: bytes  # DER of the user-auth certificate
    info: certs.CertificateInfo
    challenge: bytes
    signature: bytes
    apdu_count: int


def authenticate(
    pcsc: Pcsc,
    reader: str,
    pin: str,
    challenge: bytes,
    *,
    extended_reads: bool = False,
    allow_expired: bool = False,
) -> AuthResult:
    """The full user-authentication flow on an exclusive connection.

    Read the certificate (expired → :class:`CertificateExpiredError` before
    any PIN is sent), check the counter, VERIFY once, sign, and power the
    card down whatever happens.
    """
    encode_pin(pin)  # local check before touching the card

    def flow(session: CardSession) -> AuthResult:
        card = Jpki(session, extended_reads=extended_reads)
        card.select()
        der = card.read_auth_certificate()
        info = certs.describe(der)
        if not allow_expired:
            certs.check_valid(info)
        card.verify_pin(pin)
        signature = card.sign(challenge)
        return AuthResult(der, info, challenge, signature, session.apdu_count)

    with pcsc.connect(reader, exclusive=True) as session:
        return session.run(flow)
