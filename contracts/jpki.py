"""The My Number Card's proof of possession, checked the same way by the card
layer (:mod:`cardreader.certs`) and by central (:mod:`central.issuance.jpki_verify`).

The card signs a challenge with the user-authentication key: RSA PKCS#1 v1.5
over SHA-256 of the message. Pure function, no I/O.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def verify_signature(der: bytes, message: bytes, signature: bytes) -> bool:
    """True if ``signature`` is the certificate key's RSA PKCS#1 v1.5 SHA-256
    signature over ``message`` (what the card makes from a challenge).

    Raises ``ValueError`` when ``der`` is not a certificate."""
    key = x509.load_der_x509_certificate(der).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
