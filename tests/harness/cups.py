"""A private CUPS scheduler with a file-backed print queue, for tests.

``cupsd`` runs in the foreground with its own configuration, spool and state
under a temporary folder, listening on a free loopback port (never 631) and
a socket of its own; clients reach it with ``lp -h``/``lpstat -h`` or
``CUPS_SERVER``. Its ``ServerBin`` mirrors Debian's, plus one backend,
``testfile``, that writes each job to ``<out>/job-<id>.pdf`` -- or, when
``<out>/printer-state`` says ``out_of_paper`` or ``jammed``, reports the
standard ``media-empty``/``media-jam`` printer-state-reasons and stops the
queue the way a real printer's backend does. So the kiosk's printer adapter
is tested through the real scheduler, ``lp`` and ``lpstat``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.services import (
    ServiceError,
    ServiceProcess,
    free_port,
    port_open,
    require_binary,
    wait_until,
)

SYSTEM_SERVER_BIN = Path("/usr/lib/cups")

# A CUPS backend: no arguments = discovery line; else job user title copies
# options [file]. Exit 4 = CUPS_BACKEND_STOP (queue stopped, job held).
BACKEND = """#!/bin/sh
if [ $# -eq 0 ]; then echo 'direct testfile "Unknown" "Test file printer"'; exit 0; fi
dir=${DEVICE_URI#testfile:}
state=$(cat "$dir/printer-state" 2>/dev/null || echo ok)
case "$state" in
  out_of_paper) echo "STATE: +media-empty" >&2; echo "ERROR: out of paper" >&2; exit 4;;
  jammed) echo "STATE: +media-jam" >&2; echo "ERROR: paper jam" >&2; exit 4;;
esac
echo "STATE: -media-empty,media-jam" >&2
if [ -n "$6" ]; then cat "$6" > "$dir/job-$1.tmp"; else cat > "$dir/job-$1.tmp"; fi
mv "$dir/job-$1.tmp" "$dir/job-$1.pdf"
printf '%s' "$3" > "$dir/job-$1.title"
exit 0
"""

CUPSD_CONF = """Listen 127.0.0.1:{port}
Listen {socket}
LogLevel info
WebInterface No
DefaultAuthType None
MaxJobs 100
PreserveJobHistory Yes
<Location />
  Order allow,deny
  Allow all
</Location>
<Location /admin>
  Order allow,deny
  Allow all
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""

FILES_CONF = """ServerRoot {root}/etc
RequestRoot {root}/spool
CacheDir {root}/cache
StateDir {root}/state
TempDir {root}/tmp
ErrorLog {root}/log/error_log
AccessLog {root}/log/access_log
PageLog {root}/log/page_log
ServerBin {root}/bin
DataDir /usr/share/cups
FileDevice No
"""


@dataclass
class PrivateCups:
    root: Path
    queue: str = "kiosk"
    port: int = 0
    process: ServiceProcess | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def out(self) -> Path:
        """Where the queue's printer puts finished jobs."""
        return self.root / "out"

    def start(self) -> PrivateCups:
        cupsd = require_binary("cupsd")
        require_binary("lpadmin")
        if os.geteuid() != 0:
            raise ServiceError("the private cupsd needs root (its backends run as root)")
        self._write_tree()
        self.port = free_port()
        etc = self.root / "etc"
        (etc / "cupsd.conf").write_text(
            CUPSD_CONF.format(port=self.port, socket=self.root / "cups.sock")
        )
        (etc / "cups-files.conf").write_text(FILES_CONF.format(root=self.root))
        self.process = ServiceProcess(
            "cupsd",
            [cupsd, "-f", "-c", str(etc / "cupsd.conf"), "-s", str(etc / "cups-files.conf")],
            self.root / "cupsd.out",
        )
        self.process.start()
        wait_until(
            lambda: (
                self.process is not None and self.process.check_alive() and port_open(self.port)
            ),
            15,
            "cupsd to listen",
        )
        self.env = {"CUPS_SERVER": self.server}
        self.admin("lpadmin", "-p", self.queue, "-v", f"testfile:{self.out}", "-E")
        return self

    def _write_tree(self) -> None:
        for sub in ("etc", "spool", "cache", "state", "tmp", "log", "bin/backend", "out"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "spool").chmod(0o710)
        for sub in ("filter", "daemon", "cgi-bin", "notifier", "monitor"):
            link = self.root / "bin" / sub
            if not link.exists() and (SYSTEM_SERVER_BIN / sub).exists():
                link.symlink_to(SYSTEM_SERVER_BIN / sub)
        backend = self.root / "bin" / "backend" / "testfile"
        backend.write_text(BACKEND)
        # Owned by root and not group/world writable, or cupsd will not run it.
        backend.chmod(0o700)

    def admin(self, *argv: str) -> str:
        """Run a CUPS client command against this scheduler."""
        result = subprocess.run(
            [argv[0], "-h", self.server, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(f"{' '.join(argv)}: {result.stderr.strip()}")
        return result.stdout

    def set_printer(self, state: str) -> None:
        """What the simulated printer reports next: ok, out_of_paper or jammed."""
        (self.out / "printer-state").write_text(state)

    def resume(self) -> None:
        """Paper loaded / jam cleared: the printer works again (like cupsenable)."""
        self.set_printer("ok")
        self.admin("cupsenable", self.queue)

    def printed(self) -> list[Path]:
        return sorted(self.out.glob("job-*.pdf"))

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
