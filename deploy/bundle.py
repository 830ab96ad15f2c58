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
    command.pub        central's command public key (Ed25519, PEM): the
                       device runs only commands it signed (bundles made
                       before remote commands have none)

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
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
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
COMMAND_KEY = "command.pub"
CONTENT_FILES = (CONFIG, CREDENTIAL_KEY, CODE_KEY, CA, CERT, KEY)
# Listed in the manifest (and checked) when present; older bundles lack them.
OPTIONAL_FILES = (COMMAND_KEY,)
KNOWN_FILES = frozenset(CONTENT_FILES + OPTIONAL_FILES)
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
        except (ValueError, TypeError, RecursionError) as exc:
            raise BundleError(f"{MANIFEST} is not a bundle manifest ({exc})") from None
        wrong = manifest.mistyped()
        if wrong:
            raise BundleError(f"{MANIFEST} is not a bundle manifest (wrong type: {wrong})")
        if manifest.format != FORMAT:
            raise BundleError(f"{MANIFEST}: unknown bundle format {manifest.format!r}")
        return manifest

    def mistyped(self) -> str:
        """The first field of a wrong JSON type ("" when all are right): the
        checks below compare them, and a list or number must not crash them."""
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "broker_port":
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif item.name == "files":
                ok = isinstance(value, dict) and all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items()
                )
            else:
                ok = isinstance(value, str)
            if not ok:
                return item.name
        return ""

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
        files={name: sha256(data) for name, data in files.items() if name in KNOWN_FILES},
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


# A bundle is a few kilobytes: anything far bigger, or with more members, is
# refused while it is read, before it can fill memory or the disk.
MAX_MEMBERS = 32
MAX_TAR_BYTES = 8 << 20  # the unpacked tar stream, headers included
PLAIN_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE)


def read_bundle(path: Path) -> Bundle:
    """Read a bundle folder or archive; refuses unsafe or unexpected members.

    Only plain files are read: a symbolic or hard link, a device, a FIFO, a
    path outside the top folder, a name given twice or an oversized member is
    refused with :class:`BundleError`. Nothing is written anywhere."""
    if path.is_dir():
        files = _read_folder(path)
    elif path.is_file():
        files = _read_archive(path)
    else:
        raise BundleError(f"bundle {path} not found")
    for required in (MANIFEST, SIGNATURE):
        if required not in files:
            raise BundleError(f"{path} is not a device bundle: {required} is missing")
    return Bundle(str(path), files)


def _read_folder(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for entry in sorted(path.rglob("*")):
        name = entry.relative_to(path).as_posix()
        if entry.is_symlink():
            raise BundleError(f"{path}: unsafe member {name!r} refused (a symbolic link)")
        if entry.is_dir():
            continue
        if len(files) == MAX_MEMBERS:
            raise BundleError(f"{path}: more than {MAX_MEMBERS} files, not a device bundle")
        files[name] = _read_plain_file(path, entry, name)
    return files


def _read_plain_file(where: Path, file: Path, name: str) -> bytes:
    # O_NOFOLLOW: a file swapped for a link after the check above is not
    # followed; O_NONBLOCK: a FIFO does not hang the open.
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise BundleError(f"{where}: {name!r} cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BundleError(f"{where}: unsafe member {name!r} refused (not a plain file)")
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise BundleError(f"{where}: member {name!r} is too large")
    return data


class _CappedStream(io.RawIOBase):
    """A read-only stream that fails once more than ``limit`` bytes were read:
    a gzip bomb stops here, whatever tar header it hides in."""

    def __init__(self, inner: io.BufferedIOBase, limit: int, where: Path) -> None:
        self.inner, self.left, self.where = inner, limit, where

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size if size >= 0 else self.left + 1)
        self.left -= len(data)
        if self.left < 0:
            raise BundleError(f"{self.where}: unpacks to more than {MAX_TAR_BYTES} bytes")
        return data


def _read_archive(path: Path) -> dict[str, bytes]:
    """The members of a ``.tar.gz`` bundle, checked one by one as the stream
    is read (tar's stream mode: nothing is looked up ahead or extracted)."""
    try:
        with (
            gzip.open(path, "rb") as unpacked,
            tarfile.open(fileobj=_CappedStream(unpacked, MAX_TAR_BYTES, path), mode="r|") as tar,
        ):
            return _archive_members(path, tar)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BundleError(f"{path} is not a readable bundle archive ({exc})") from None


def _archive_members(path: Path, tar: tarfile.TarFile) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    top = ""
    for count, member in enumerate(tar, start=1):
        if count > MAX_MEMBERS:
            raise BundleError(f"{path}: more than {MAX_MEMBERS} members, not a device bundle")
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts or not name.parts:
            raise BundleError(f"{path}: unsafe member {member.name!r} refused")
        top = top or name.parts[0]
        if name.parts[0] != top:
            raise BundleError(
                f"{path}: expected one top folder, found {sorted({top, name.parts[0]})}"
            )
        if member.isdir():
            continue
        if member.type not in PLAIN_FILE_TYPES or len(name.parts) < 2:
            raise BundleError(f"{path}: unsafe member {member.name!r} refused")
        if member.size > MAX_FILE_BYTES:
            raise BundleError(f"{path}: member {member.name!r} is too large")
        relative = PurePosixPath(*name.parts[1:]).as_posix()
        if relative in files:
            raise BundleError(f"{path}: member {member.name!r} appears twice")
        stream = tar.extractfile(member)
        assert stream is not None  # a regular file always has one
        files[relative] = stream.read()
    return files


def verify_bundle(
    bundle: Bundle, *, now: dt.datetime | None = None, ca_fingerprint_pin: str | None = None
) -> Manifest:
    """Check hashes, signature, certificate chain and expiry; return the manifest."""
    manifest = bundle.manifest
    where = bundle.source
    listed = set(manifest.files)
    present = set(bundle.files) - {MANIFEST, SIGNATURE}
    if not set(CONTENT_FILES) <= listed <= KNOWN_FILES or present != listed:
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
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # TypeError: an encrypted key
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
