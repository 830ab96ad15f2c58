"""The device bundle: what a technician carries to one device.

A bundle is a folder (and the same content as one ``<device>.tar.gz`` with a
single top folder ``<device>/``)::

    manifest.json      device id, facility, role, created, certificate serial and
                       expiry, broker address, sha256 of every other file
    manifest.sig       ECDSA-SHA256 signature of manifest.json by the fleet CA key
    device.toml        the complete device configuration (relative paths below)
    credential.key     the fleet's key for credential references (hex)
    code.key           this facility's reservation-code key (hex), derived from
                       the fleet's code master key (never in a bundle)
    tls/ca.pem         the fleet CA
    tls/device.pem     the device certificate (CN = device id)
    tls/device.key     its private key

:func:`read_bundle` and :func:`verify_bundle` are what the on-device
installer runs; they need only the standard library and ``cryptography``
(Debian's ``python3-cryptography`` 38 is enough), because they run before
the project's virtual environment exists.

The signature proves the manifest was made with the key of the CA in
``tls/ca.pem``. That CA is only trusted when it is the one already installed
on the device, or the one named by ``--ca-fingerprint``; otherwise the check
catches corruption and edits, not a forged bundle with a forged CA.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import shutil
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from deploy import pki
from deploy.errors import BundleError

FORMAT = "city-kiosk-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
CONFIG = "device.toml"
CREDENTIAL_KEY = "credential.key"
CODE_KEY = "code.key"
CA = "tls/ca.pem"
CERT = "tls/device.pem"
KEY = "tls/device.key"
CONTENT_FILES = (CONFIG, CREDENTIAL_KEY, CODE_KEY, CA, CERT, KEY)
SECRET_FILES = frozenset({CREDENTIAL_KEY, CODE_KEY, KEY})
MAX_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class Manifest:
    device: str
    facility: str
    role: str
    created: str
    expires: str
    certificate_serial: str
    broker_host: str
    broker_port: int
    files: dict[str, str]
    format: str = FORMAT

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            raw = json.loads(data)
            manifest = cls(**raw)
        except (ValueError, TypeError) as exc:
            raise BundleError(f"{MANIFEST} is not a bundle manifest ({exc})") from None
        if manifest.format != FORMAT:
            raise BundleError(f"{MANIFEST}: unknown bundle format {manifest.format!r}")
        return manifest

    def same_content(self, other: Manifest) -> bool:
        """Equal apart from the creation time."""
        return asdict(self) | {"created": ""} == asdict(other) | {"created": ""}


@dataclass(frozen=True)
class Bundle:
    """A bundle read into memory (relative POSIX path -> bytes)."""

    source: str
    files: dict[str, bytes]

    @property
    def manifest(self) -> Manifest:
        return Manifest.from_json(self.files[MANIFEST])

    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.files[CERT])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ca_fingerprint(ca_pem: bytes) -> str:
    """SHA-256 of the CA certificate (DER), as printed by ``provision``."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    return sha256(cert.public_bytes(serialization.Encoding.DER))


def make_manifest(
    files: dict[str, bytes], *, facility: str, role: str, broker: tuple[str, int], created: str
) -> Manifest:
    cert = x509.load_pem_x509_certificate(files[CERT])
    return Manifest(
        device=pki.common_name(cert),
        facility=facility,
        role=role,
        created=created,
        expires=pki.not_after(cert).isoformat(),
        certificate_serial=format(cert.serial_number, "x"),
        broker_host=broker[0],
        broker_port=broker[1],
        files={name: sha256(files[name]) for name in CONTENT_FILES},
    )


def signed_files(
    files: dict[str, bytes], manifest: Manifest, ca_key: ec.EllipticCurvePrivateKey
) -> dict[str, bytes]:
    """``files`` plus the manifest and its signature."""
    data = manifest.to_json()
    return {**files, MANIFEST: data, SIGNATURE: pki.sign(ca_key, data)}


def write_folder(folder: Path, files: dict[str, bytes]) -> None:
    """Write a bundle folder (replacing one at the same place); secrets mode 0600."""
    staging = folder.with_name(folder.name + ".new")
    if staging.exists():
        shutil.rmtree(staging)
    for name, data in files.items():
        path = staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o600 if name in SECRET_FILES else 0o644)
    if folder.exists():
        shutil.rmtree(folder)
    staging.replace(folder)


def write_archive(archive: Path, top: str, files: dict[str, bytes], mtime: float) -> None:
    """A reproducible tar.gz: sorted members, root-owned, fixed times, mode 0600."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime, info.mode = len(files[name]), int(mtime), 0o600
            tar.addfile(info, io.BytesIO(files[name]))
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".tmp")
    tmp.touch(mode=0o600)
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(archive)


def read_bundle(path: Path) -> Bundle:
    """Read a bundle folder or archive; refuses unsafe or unexpected members."""
    if path.is_dir():
        files = {
            p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*"))
            if p.is_file()
        }
    elif path.is_file():
        files = _read_archive(path)
    else:
        raise BundleError(f"bundle {path} not found")
    for required in (MANIFEST, SIGNATURE):
        if required not in files:
            raise BundleError(f"{path} is not a device bundle: {required} is missing")
    return Bundle(str(path), files)


def _read_archive(path: Path) -> dict[str, bytes]:
    try:
        with tarfile.open(path, mode="r:*") as tar:
            members = tar.getmembers()
            tops = {PurePosixPath(m.name).parts[0] for m in members if m.name}
            if len(tops) != 1:
                raise BundleError(f"{path}: expected one top folder, found {sorted(tops)}")
            files: dict[str, bytes] = {}
            for member in members:
                name = PurePosixPath(member.name)
                if member.isdir():
                    continue
                if not member.isfile() or name.is_absolute() or ".." in name.parts:
                    raise BundleError(f"{path}: unsafe member {member.name!r} refused")
                if member.size > MAX_FILE_BYTES:
                    raise BundleError(f"{path}: member {member.name!r} is too large")
                stream = tar.extractfile(member)
                assert stream is not None  # a regular file always has one
                files[PurePosixPath(*name.parts[1:]).as_posix()] = stream.read()
            return files
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"{path} is not a readable bundle archive ({exc})") from None


def verify_bundle(
    bundle: Bundle, *, now: dt.datetime | None = None, ca_fingerprint_pin: str | None = None
) -> Manifest:
    """Check hashes, signature, certificate chain and expiry; return the manifest."""
    manifest = bundle.manifest
    where = bundle.source
    listed = set(manifest.files)
    present = set(bundle.files) - {MANIFEST, SIGNATURE}
    if listed != set(CONTENT_FILES) or present != listed:
        extra, missing = sorted(present - listed), sorted(set(CONTENT_FILES) - present)
        raise BundleError(
            f"{where}: files do not match the manifest (extra {extra}, missing {missing})"
        )
    for name, digest in sorted(manifest.files.items()):
        if sha256(bundle.files[name]) != digest:
            raise BundleError(f"{where}: {name} was changed after provisioning (sha256 mismatch)")
    try:
        ca = x509.load_pem_x509_certificate(bundle.files[CA])
        cert = bundle.certificate()
        key = serialization.load_pem_private_key(bundle.files[KEY], password=None)
    except ValueError as exc:
        raise BundleError(f"{where}: unreadable certificate or key ({exc})") from None
    if not pki.verify_signature(ca, bundle.files[MANIFEST], bundle.files[SIGNATURE]):
        raise BundleError(f"{where}: manifest signature does not match the fleet CA (tampered?)")
    if ca_fingerprint_pin and ca_fingerprint(bundle.files[CA]) != ca_fingerprint_pin.lower():
        raise BundleError(f"{where}: the fleet CA is not the expected one (fingerprint mismatch)")
    _check_identity(where, manifest, ca, cert, key)
    moment = now or dt.datetime.now(dt.UTC)
    if pki.not_after(cert) <= moment:
        raise BundleError(
            f"{where}: the certificate of {manifest.device} expired on "
            f"{pki.not_after(cert):%Y-%m-%d} (check the clock, or provision again with --rotate)"
        )
    return manifest


def _check_identity(
    where: str, manifest: Manifest, ca: x509.Certificate, cert: x509.Certificate, key: object
) -> None:
    if not pki.issued_by(cert, ca):
        raise BundleError(f"{where}: the device certificate was not issued by the bundle's CA")
    if pki.common_name(cert) != manifest.device:
        raise BundleError(f"{where}: certificate CN does not match device {manifest.device!r}")
    if format(cert.serial_number, "x") != manifest.certificate_serial:
        raise BundleError(f"{where}: certificate serial does not match the manifest")
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not pki.same_key(key, cert):
        raise BundleError(f"{where}: the private key does not belong to the certificate")
