"""The head of an X.509 certificate: serial number and issuer, from as few
bytes of DER as possible (pure logic, no I/O).

A certificate is identified uniquely and stably by its issuer and serial
number (RFC 5280 §4.1.2.2: a CA gives every certificate it issues a
distinct serial). Both sit at the start of the DER::

    30 82 LL LL                 Certificate
       30 82 LL LL              TBSCertificate
          A0 03 02 01 02        version (v3)
          02 nn <serial>        serialNumber
          30 0D …               signature algorithm
          30 nn <RDNs>          issuer        <- the head ends here

so a reader needs about 170 bytes of a 1.2–2 KB certificate. The rest
(validity, subject, key, extensions, signature) is not needed to tell cards
apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from cardreader.errors import CertificateError

# Refuse heads longer than this: a serial is at most 20 octets (RFC 5280)
# and a real issuer name well under 300 bytes, so a larger claim is garbage
# (and would make a hostile card cost many APDUs).
MAX_HEAD = 512


class NeedMore(Exception):
    """The buffer ends before the head does; ``total`` bytes are needed."""

    def __init__(self, total: int) -> None:
        super().__init__(f"{total} bytes needed")
        self.total = total


@dataclass(frozen=True)
class CertHead:
    serial: bytes  # the INTEGER's content octets (two's complement, as encoded)
    issuer: bytes  # the issuer Name's whole DER (tag, length, RDNs)
    end: int  # offset just past the issuer

    def __repr__(self) -> str:
        return f"CertHead(serial={self.serial.hex()}, issuer={len(self.issuer)} bytes)"


def _tlv(buf: bytes, at: int, tag: int, what: str) -> tuple[int, int]:
    """(content offset, content length) of the TLV at ``at``; NeedMore if cut."""
    if len(buf) < at + 2:
        raise NeedMore(at + 2)
    if buf[at] != tag:
        raise CertificateError(f"certificate {what}: tag {buf[at]:02X}, expected {tag:02X}")
    first = buf[at + 1]
    if first < 0x80:
        return at + 2, first
    count = first & 0x7F
    if not 1 <= count <= 3:
        raise CertificateError(f"certificate {what}: bad length form {first:02X}")
    if len(buf) < at + 2 + count:
        raise NeedMore(at + 2 + count)
    size = int.from_bytes(buf[at + 2 : at + 2 + count], "big")
    return at + 2 + count, size


def _whole(buf: bytes, start: int, content: int, size: int) -> tuple[bytes, int]:
    end = content + size
    if end > MAX_HEAD:
        raise CertificateError(f"certificate head would end at byte {end}: not a certificate")
    if len(buf) < end:
        raise NeedMore(end)
    return buf[start:end], end


def parse_head(buf: bytes) -> CertHead:
    """Serial and issuer from the first bytes of a DER certificate.

    Raises :class:`NeedMore` (with the total size needed) when ``buf`` is too
    short, :class:`CertificateError` when it is not a certificate.
    """
    at, _ = _tlv(buf, 0, 0x30, "outer sequence")
    at, _ = _tlv(buf, at, 0x30, "tbsCertificate")
    if len(buf) < at + 1:
        raise NeedMore(at + 1)
    if buf[at] == 0xA0:  # explicit version; absent means v1
        content, size = _tlv(buf, at, 0xA0, "version")
        _, at = _whole(buf, at, content, size)
    content, size = _tlv(buf, at, 0x02, "serial number")
    if not 1 <= size <= 21:
        raise CertificateError(f"certificate serial of {size} bytes")
    _, at = _whole(buf, at, content, size)
    serial = buf[content : content + size]
    content, size = _tlv(buf, at, 0x30, "signature algorithm")
    _, at = _whole(buf, at, content, size)
    start = at
    content, size = _tlv(buf, at, 0x30, "issuer")
    issuer, end = _whole(buf, start, content, size)
    return CertHead(serial=serial, issuer=issuer, end=end)
