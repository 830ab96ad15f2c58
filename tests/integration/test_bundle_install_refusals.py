"""Hostile bundle archives through the real installer (``python -m deploy
install`` into a throwaway root): each is refused with exit code 3 and one
clear error line, and nothing is written, in the root or beside it."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.unit.test_bundle_fuzz import TOP, Member, tar_gz

SOURCE = Path(__file__).resolve().parents[2]


def pax_bomb() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"{TOP}/manifest.json")
        info.pax_headers = {"comment": "0" * (9 << 20)}
        tar.addfile(info, io.BytesIO(b""))
    return gzip.compress(raw.getvalue(), mtime=0)


CASES = {
    "traversal": (tar_gz([Member(f"{TOP}/manifest.json"), Member(f"{TOP}/../../escaped")]),
                  "unsafe member"),
    "symlink": (tar_gz([Member(f"{TOP}/manifest.json"),
                        Member(f"{TOP}/credential.key", type=tarfile.SYMTYPE)]), "unsafe member"),
    "bomb": (pax_bomb(), "unpacks to more than"),
    "corrupt": (b"\x1f\x8b\x08\x00" + bytes(64), "not a readable bundle archive"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_bundle_install_hostile_archive_is_refused_and_writes_nothing(
    tmp_path: Path, case: str
) -> None:
    data, message = CASES[case]
    archive = tmp_path / "in" / f"{TOP}.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(data)
    root = tmp_path / "root"
    root.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "deploy", "install", str(archive), "--root", str(root),
         "--skip-apt", "--release", "r1"],
        check=False, capture_output=True, text=True, cwd=SOURCE, timeout=120,
    )  # fmt: skip
    assert done.returncode == 3, (done.stdout, done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "bundle refused" in errors[0] and message in errors[0], errors
    assert "Traceback" not in done.stderr
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "in", f"in/{TOP}.tar.gz", "root",
    ]  # fmt: skip
