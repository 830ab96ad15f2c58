"""Device bundles fuzzed (``deploy/bundle.py``, what the on-device installer
reads before anything else): tar archives with path traversal, absolute
names, links, devices, FIFOs, huge or duplicate members, several top folders,
corrupted gzip, decompression bombs; bundle folders with links and FIFOs;
manifests of any JSON shape. Each is read whole or refused with a
BundleError; reading never writes a file anywhere.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy import bundle, pki
from deploy.errors import BundleError

TOP = "gym-door-1"


@dataclass(frozen=True)
class Member:
    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b"x"
    size: int | None = None  # declared size; None = len(data)


def is_folder(m: Member) -> bool:
    # tar's own rule: an old-style file whose name ends in "/" is a folder.
    return m.type == tarfile.DIRTYPE or (m.type == tarfile.AREGTYPE and m.name.endswith("/"))


def tar_gz(members: list[Member]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = m.type
            if m.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = "/etc/shadow"
            if m.type not in bundle.PLAIN_FILE_TYPES or is_folder(m):
                tar.addfile(info)  # (tar skips no data after a folder's header)
                continue
            info.size = len(m.data) if m.size is None else m.size
            body = m.data if m.size is None else bytes(m.size) if m.size < 1 << 21 else None
            # No body: the header claims a size the archive does not hold.
            tar.addfile(info, None if body is None else io.BytesIO(body))
    return gzip.compress(raw.getvalue(), mtime=0)


def expected(members: list[Member]) -> dict[str, bytes] | None:
    """What a safe reader returns for these members (None: it must refuse)."""
    files: dict[str, bytes] = {}
    tops = set()
    for m in members:
        name = PurePosixPath(m.name)
        if name.is_absolute() or ".." in name.parts or not name.parts:
            return None
        tops.add(name.parts[0])
        if is_folder(m):
            continue
        relative = PurePosixPath(*name.parts[1:]).as_posix()
        if (
            m.type not in bundle.PLAIN_FILE_TYPES
            or len(name.parts) < 2
            or relative in files
            or (m.size if m.size is not None else len(m.data)) > bundle.MAX_FILE_BYTES
        ):
            return None
        files[relative] = m.data
    if len(tops) > 1 or len(members) > bundle.MAX_MEMBERS:
        return None
    return files


def read_archive(tmp: Path, data: bytes) -> dict[str, bytes]:
    """``read_bundle``'s archive reader, in a folder that must stay as it was."""
    sandbox = tmp / "sandbox"
    sandbox.mkdir(exist_ok=True)
    archive = sandbox / "bundle.tar.gz"
    archive.write_bytes(data)
    try:
        return bundle._read_archive(archive)
    finally:
        assert sorted(p.name for p in tmp.rglob("*")) == ["bundle.tar.gz", "sandbox"]
        archive.unlink()


names = st.sampled_from(
    [f"{TOP}/manifest.json", f"{TOP}/manifest.sig", f"{TOP}/device.toml", f"{TOP}/tls/ca.pem",
     f"{TOP}/../../etc/cron.d/evil", "../evil", "/etc/passwd", f"{TOP}/tls/../../x", "other/x",
     TOP, f"./{TOP}/credential.key", f"{TOP}//tls//device.key", f"{TOP}/", "..", "."]
) | st.text(st.sampled_from("ab./\\-"), min_size=1, max_size=12)  # fmt: skip
types = st.sampled_from(
    [tarfile.REGTYPE, tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
     tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE]
)  # fmt: skip
members = st.builds(
    Member,
    name=names,
    type=types,
    data=st.binary(max_size=64),
    size=st.none() | st.sampled_from([bundle.MAX_FILE_BYTES + 1, 1 << 40]),
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(archive=st.lists(members, min_size=1, max_size=6))
def test_bundle_fuzz_archives_are_read_safely_or_refused(
    tmp_path_factory: pytest.TempPathFactory, archive: list[Member]
) -> None:
    tmp = tmp_path_factory.mktemp("bundle")
    want = expected(archive)
    try:
        got = read_archive(tmp, tar_gz(archive))
    except BundleError as exc:
        assert want is None, (archive, exc)
        return
    assert got == want, archive


def test_bundle_fuzz_many_members_are_refused(tmp_path: Path) -> None:
    many = [Member(f"{TOP}/f{i}") for i in range(bundle.MAX_MEMBERS + 1)]
    with pytest.raises(BundleError, match="more than 32 members"):
        read_archive(tmp_path, tar_gz(many))


def test_bundle_fuzz_decompression_bomb_stops_at_the_cap(tmp_path: Path) -> None:
    # 9 MB of zeros in a pax header (tar reads a header whole): 9 KB packed.
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"{TOP}/manifest.json")
        info.pax_headers = {"comment": "0" * (9 << 20)}
        tar.addfile(info, io.BytesIO(b""))
    packed = gzip.compress(raw.getvalue(), mtime=0)
    assert len(packed) < 100_000
    with pytest.raises(BundleError, match="unpacks to more than"):
        read_archive(tmp_path, packed)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cuts=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    truncate=st.booleans(),
)
def test_bundle_fuzz_corrupted_gzip_is_refused_or_read_safely(
    tmp_path_factory: pytest.TempPathFactory, cuts: list[tuple[int, int]], truncate: bool
) -> None:
    good = tar_gz([Member(f"{TOP}/manifest.json", data=os.urandom(3000)),
                   Member(f"{TOP}/manifest.sig", data=os.urandom(3000))])  # fmt: skip
    data = bytearray(good)
    for at, value in cuts:
        data[at % len(data)] = value
    if truncate:
        data = data[: cuts[0][0] % len(data)]
    try:
        got = read_archive(tmp_path_factory.mktemp("corrupt"), bytes(data))
    except BundleError as exc:
        assert "not a readable bundle archive" in str(exc) or "unsafe" in str(exc), exc
        return
    assert set(got) <= {"manifest.json", "manifest.sig"}  # a flip inside the data


def test_bundle_fuzz_other_compressions_and_plain_tar_are_refused(tmp_path: Path) -> None:
    import bz2
    import lzma

    plain = gzip.decompress(tar_gz([Member(f"{TOP}/manifest.json")]))
    for data in (plain, bz2.compress(plain), lzma.compress(plain), b"", b"\x1f\x8b"):
        with pytest.raises(BundleError, match="not a readable bundle archive"):
            read_archive(tmp_path, data)


def test_bundle_fuzz_folder_with_links_or_fifo_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / TOP
    (folder / "tls").mkdir(parents=True)
    for name in ("manifest.json", "manifest.sig", "device.toml"):
        (folder / name).write_text("x")
    secret = tmp_path / "root-only"
    secret.write_text("secret")
    (folder / "credential.key").symlink_to(secret)
    with pytest.raises(BundleError, match="symbolic link"):
        bundle.read_bundle(folder)
    (folder / "credential.key").unlink()
    (folder / "tls").rmdir()
    (folder / "tls").symlink_to("/etc")  # a linked folder is refused too
    with pytest.raises(BundleError, match="symbolic link"):
        bundle.read_bundle(folder)
    (folder / "tls").unlink()
    os.mkfifo(folder / "credential.key")
    with pytest.raises(BundleError, match="not a plain file"):
        bundle.read_bundle(folder)  # refused at once, not hanging on the FIFO
    (folder / "credential.key").unlink()
    (folder / "credential.key").write_bytes(bytes(bundle.MAX_FILE_BYTES + 1))
    with pytest.raises(BundleError, match="too large"):
        bundle.read_bundle(folder)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def valid_manifest() -> dict[str, Any]:
    return {"device": TOP, "facility": "gym", "role": "door", "created": "2026-01-01",
            "expires": "2028-01-01", "certificate_serial": "1f", "broker_host": "broker",
            "broker_port": 8883, "files": {"device.toml": "00"},
            "format": bundle.FORMAT}  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(field=st.sampled_from(sorted(valid_manifest())), value=json_values)
def test_bundle_fuzz_manifest_of_wrong_shape_is_a_bundle_error(field: str, value: Any) -> None:
    raw = valid_manifest() | {field: value}
    try:
        manifest = bundle.Manifest.from_json(json.dumps(raw).encode())
    except BundleError as exc:
        assert "manifest" in str(exc)
        return
    assert manifest.mistyped() == ""  # a value of the right type (or format) was drawn
    set(manifest.files)  # what verify_bundle does with it


@pytest.mark.parametrize(
    "data",
    [b"[" * 100_000, b"\xff\xfe", b"null", b"[]", b'{"device": "x"}', b"1e999"],
)
def test_bundle_fuzz_manifest_garbage_is_a_bundle_error(data: bytes) -> None:
    with pytest.raises(BundleError, match="not a bundle manifest"):
        bundle.Manifest.from_json(data)


def consistent_files(key_pem: Callable[[ec.EllipticCurvePrivateKey], bytes]) -> dict[str, bytes]:
    """Files whose hashes match their (unsigned-by-the-fleet) manifest."""
    ca = pki.create_ca("Someone's CA")
    device = pki.issue(ca, TOP)
    pem = serialization.Encoding.PEM
    files = dict.fromkeys(bundle.CONTENT_FILES, b"00" * 32)
    files |= {bundle.CONFIG: b'[device]\nid = "gym-door-1"\n',
              bundle.CA: ca.cert.public_bytes(pem), bundle.CERT: device.cert.public_bytes(pem),
              bundle.KEY: key_pem(device.key)}  # fmt: skip
    manifest = bundle.make_manifest(
        files, facility="gym", role="door", broker=("broker", 8883), created="2026-01-01"
    )
    return bundle.signed_files(files, manifest, ca.key)


def test_bundle_fuzz_encrypted_key_is_a_bundle_error() -> None:
    def encrypted(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"password"),
        )

    # Before: TypeError out of cryptography, a traceback from the installer.
    with pytest.raises(BundleError, match="unreadable certificate or key"):
        bundle.verify_bundle(bundle.Bundle("b", consistent_files(encrypted)))
