"""A real PostgreSQL for tests: ``initdb`` into a fresh folder and the server
on a free loopback port, stopped by pid; or an existing server named by
``KIOSK_TEST_POSTGRES_URL`` (e.g. ``postgresql://user:pw@host:5433/postgres``).

As root, initdb and postgres run as the ``postgres`` OS user (``setpriv``
execs in place, so the pid we hold is the server's) in a folder it owns.
Each test gets its own database (:meth:`Postgres.create_database`).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.services import ServiceError, ServiceProcess, free_port, wait_until

BIN = Path(os.environ.get("KIOSK_PG_BIN", "/usr/lib/postgresql/15/bin"))
ENV_URL = "KIOSK_TEST_POSTGRES_URL"


@dataclass
class Postgres:
    fsync: bool = False
    port: int = 0
    root: Path | None = None
    admin_url: str = ""
    process: ServiceProcess | None = None
    _as_user: list[str] = field(default_factory=list)

    def start(self) -> Postgres:
        existing = os.environ.get(ENV_URL)
        if existing:
            self.admin_url = existing.replace("postgresql://", "postgresql+psycopg://", 1)
            self._check()
            return self
        if not (BIN / "initdb").exists():
            raise ServiceError(f"PostgreSQL binaries not found in {BIN} (run ./scripts/bootstrap)")
        self.root = Path(tempfile.mkdtemp(prefix="kiosk-pg-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                             "--init-groups", "--"]  # fmt: skip
        data = self.root / "data"
        result = subprocess.run(
            [*self._as_user, str(BIN / "initdb"), "-D", str(data), "-A", "trust",
             "-U", "postgres", "-E", "UTF8", "--no-sync"],
            capture_output=True, text=True, check=False, cwd=self.root,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(f"initdb failed: {result.stderr.strip()[-500:]}")
        self.port = free_port()
        fsync = "on" if self.fsync else "off"
        argv = [*self._as_user, str(BIN / "postgres"), "-D", str(data), "-p", str(self.port),
                "-k", str(self.root), "-c", "listen_addresses=127.0.0.1",
                "-c", f"fsync={fsync}", "-c", "max_connections=100"]  # fmt: skip
        log = self.root / "postgres.log"
        self.process = ServiceProcess("postgres", argv, log)
        self.process.start()
        self.admin_url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        wait_until(lambda: self.process is not None and self.process.check_alive()
                   and self._ready(), 30, "postgres to accept connections")  # fmt: skip
        return self

    def _ready(self) -> bool:
        try:
            self._check()
        except ServiceError:
            return False
        return True

    def _check(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self._dsn(self.admin_url), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise ServiceError(f"postgres not reachable: {exc}") from None

    @staticmethod
    def _dsn(url: str) -> str:
        return url.replace("postgresql+psycopg://", "postgresql://", 1)

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self._dsn(self.admin_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base, _ = self.admin_url.rsplit("/", 1)
        return f"{base}/{name}"

    def stop(self) -> None:
        if self.process is not None:
            # SIGTERM = smart shutdown would wait for clients; SIGINT = fast.
            self.process.signal(2)
            self.process.stop(grace=15)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
