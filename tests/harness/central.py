"""Central services for tests: a config file for a broker + database, an
in-process ingest worker on its own thread, and `python -m central`
subprocesses (ingest workers, the API) stopped by pid."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from central.cli_common import open_db
from central.config import CentralConfig, load_config
from central.ingest.worker import IngestWorker
from tests.harness.mosquitto import Mosquitto
from tests.harness.services import ServiceError, ServiceProcess, wait_until

ROOT = Path(__file__).resolve().parents[2]


def write_config(
    folder: Path, broker: Mosquitto, db_url: str, *, worker_id: str = "", extra: str = ""
) -> Path:
    """A central.toml using the broker's TLS listener with the ``central`` identity."""
    ident = broker.identity("central")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"central-{worker_id or 'main'}.toml"
    path.write_text(
        f'[database]\nurl = "{db_url}"\n\n'
        f'[broker]\nhost = "localhost"\nport = {broker.tls_port}\nreconnect_max_seconds = 2\n\n'
        f'[broker.tls]\nca_file = "{ident.ca}"\ncert_file = "{ident.cert}"\n'
        f'key_file = "{ident.key}"\n\n'
        f'[ingest]\nworker_id = "{worker_id}"\n\n'
        f"{extra}\n"
    )
    return path


@contextmanager
def worker_thread(config_path: Path) -> Iterator[IngestWorker]:
    """An ingest worker in this process, subscribed before this yields."""
    config: CentralConfig = load_config(config_path)
    db = open_db(config)
    worker = IngestWorker(config, db)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name="test-ingest", daemon=True)
    thread.start()
    try:
        wait_until(worker.subscribed.is_set, 15, "the ingest worker to subscribe")
        yield worker
    finally:
        stop.set()
        thread.join(10)
        db.close()
        if thread.is_alive():
            raise ServiceError("ingest worker thread did not stop")


def central_process(name: str, args: list[str], log_path: Path) -> ServiceProcess:
    """``python -m central <args>`` as a background process (not yet started)."""
    return ServiceProcess(
        name, [sys.executable, "-m", "central", *args], log_path, env={"PYTHONPATH": str(ROOT)}
    )
