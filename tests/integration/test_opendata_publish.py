"""Open data end to end on an SQLite central database: a month of bookings,
check-ins, certificates and device reports is published with the real
command line; the real ``frictionless validate`` passes; the DCAT catalogue
parses and names files that ``/opendata/`` serves (with the security
headers, no sign-in); small counts are withheld; an empty, unfinished or
malformed month is refused and audited with nothing written; path
traversal is refused."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from pyld import jsonld
from sqlalchemy import insert

from central.api.app import create_app
from central.cli import main
from central.db.engine import Database, utc
from central.db.tables import (
    bookings,
    devices,
    events,
    facility_settings,
    health_samples,
    issuance_orders,
    rooms,
)
from central.opendata.package import OpendataError, validate
from central.reservations.audit import entries
from tests.harness.keys import fixed_code_key

pytestmark = pytest.mark.integration
JST = ZoneInfo("Asia/Tokyo")
MONTH = "2025-03"
BASE = "https://city.example/opendata/"
FRICTIONLESS = Path(sys.executable).with_name("frictionless")


def _at(day: int, hour: int) -> datetime:
    return utc(datetime(2025, 3, day, hour, tzinfo=JST))


def _seed(db: Database) -> None:
    now = _at(1, 0)
    hours = {"weekly": {d: [{"opens": "09:00", "closes": "21:00"}]
                        for d in ("mon", "tue", "wed", "thu", "fri")}}  # fmt: skip
    with db.write() as conn:
        conn.execute(insert(facility_settings).values(
            id="fac-1", name="みどり市民センター", address="みどり市中央1-1",
            timezone="Asia/Tokyo", opening_hours=hours, created_at=now,
            updated_at=now))  # fmt: skip
        for room, name in (("room-a", "会議室A"), ("room-b", "和室")):
            conn.execute(insert(rooms).values(
                id=room, facility="fac-1", door=f"{room}-door", name=name, rules={},
                fee_per_slot_yen=0, created_at=now, updated_at=now))  # fmt: skip
        # room-a: 12 members book, 10 come (2 no-shows); room-b: 3 bookings.
        for i in range(15):
            room = "room-a" if i < 12 else "room-b"
            starts = _at(3 + i, 10)
            conn.execute(insert(bookings).values(
                id=f"b{i}", facility="fac-1", room=room, door=f"{room}-door",
                member_id=f"member-{i}", starts_at=starts, ends_at=starts + timedelta(hours=2),
                status="booked", source="site", created_by="test", reservation_id=f"r{i}",
                created_at=now, updated_at=now))  # fmt: skip
            if i not in (4, 7):
                conn.execute(insert(events).values(
                    event_id=f"00000000-0000-0000-0000-{i:012d}", device=f"{room}-door", seq=i + 1,
                    type="checkin.granted", at=starts, clock_trusted=True,
                    data={"door": f"{room}-door", "reservation": f"r{i}", "via": "card"},
                    received_at=starts, worker="test"))  # fmt: skip
        # 12 residents get a 住民票 each; 2 get 印鑑登録証明書 (withheld).
        for i in range(14):
            kind = "juminhyo" if i < 12 else "inkan"
            conn.execute(insert(issuance_orders).values(
                id=f"o{i}", device="counter-1", session_id=f"s{i}", idempotency_key=f"k{i}",
                request_hash="h", resident_ref=f"resident-{i}",
                items=[{"kind": kind, "copies": 1, "fee_yen": 200, "options": []}],
                total_fee_yen=200, status="printed", created_at=_at(5, 9), issued_at=_at(5, 9),
                updated_at=_at(5, 9)))  # fmt: skip
        conn.execute(insert(devices).values(id="room-a-door", facility="fac-1", status="online",
                                            session=1, versions={}))  # fmt: skip
        for hour in range(0, 31 * 24, 2):  # a report every other hour
            at = utc(datetime(2025, 3, 1, tzinfo=JST) + timedelta(hours=hour, minutes=5))
            conn.execute(insert(health_samples).values(device="room-a-door", at=at,
                                                       resolution=3600, figures={}))  # fmt: skip


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, Database, Path]]:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    config = tmp_path / "central.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n[logging]\nlevel = "ERROR"\n'
        f'[opendata]\nfolder = "opendata"\nbase_url = "{BASE}"\nmunicipality_code = "123456"\n'
        'prefecture = "東京都"\n', encoding="utf-8")  # fmt: skip
    db = Database(url)
    _seed(db)
    yield config, db, tmp_path / "opendata"
    db.close()


RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
DCAT, DCT = "http://www.w3.org/ns/dcat#", "http://purl.org/dc/terms/"


def _triples(document: dict[str, object]) -> set[tuple[str, str, str]]:
    """The catalogue as RDF, by a JSON-LD processor (what a harvester reads)."""
    quads = jsonld.to_rdf(document, {"format": "application/n-quads"})
    found = set()
    for line in quads.splitlines():
        subject, predicate, rest = line.split(" ", 2)
        found.add((subject, predicate, rest.rsplit(" .", 1)[0]))
    return found


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _publish(config: Path, month: str) -> int:
    return main(["opendata", "publish", "--config", str(config), "--month", month])


def test_opendata_publish_validates_suppresses_and_is_served(
    world: tuple[Path, Database, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, db, folder = world
    assert _publish(config, MONTH) == 0
    month = folder / MONTH
    checked = subprocess.run([str(FRICTIONLESS), "validate", "datapackage.json"], cwd=month,
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr

    use = {r["room"]: r for r in _rows(month / "facility-use.csv")}
    assert use["room-a"]["bookings"] == "12" and use["room-a"]["hours_booked"] == "24.0"
    assert use["room-a"]["no_shows"] == use["room-a"]["checked_in"] == ""  # 2 and 10: withheld
    assert all(use["room-b"][c] == "" for c in ("bookings", "checked_in", "no_shows"))
    certificates = {r["kind"]: r for r in _rows(month / "certificates-issued.csv")}
    assert certificates["juminhyo"]["copies"] == "12"
    assert certificates["inkan"]["copies"] == "" and certificates["inkan"]["suppressed"] == "true"
    assert certificates["juminhyo"]["kind_name"] == "住民票の写し"
    (device,) = _rows(month / "device-availability.csv")
    assert (device["hours_in_period"], device["availability_percent"]) == ("744", "50.0")
    (facility,) = _rows(month / "facilities.csv")
    assert facility["都道府県コード又は市区町村コード"] == "123456"
    assert facility["利用可能曜日"] == "月火水木金"
    everything = "".join(p.read_text(encoding="utf-8") for p in month.iterdir())
    assert "member-" not in everything and "resident-" not in everything

    package = json.loads((month / "datapackage.json").read_text(encoding="utf-8"))
    assert package["licenses"][0]["name"] == "CC-BY-4.0"
    fields = package["resources"][1]["schema"]["fields"]
    assert {"name": "no_shows", "type": "integer", "title": "無断不使用件数 / No-shows",
            "constraints": {"minimum": 0}} in fields  # fmt: skip

    catalog = json.loads((folder / "catalog.jsonld").read_text(encoding="utf-8"))
    assert catalog["@type"] == "dcat:Catalog" and "dcat" in catalog["@context"]
    datasets = catalog["dcat:dataset"]
    assert len(datasets) == 4
    triples = _triples(catalog)
    for name in ("certificates-issued", "facility-use", "device-availability", "facilities"):
        dataset, csv_url = f"<{BASE}{MONTH}/{name}>", f"<{BASE}{MONTH}/{name}.csv>"
        assert (dataset, RDF_TYPE, f"<{DCAT}Dataset>") in triples
        assert (
            dataset,
            f"<{DCT}license>",
            "<https://creativecommons.org/licenses/by/4.0/>",
        ) in triples
        assert (dataset, f"<{DCAT}distribution>", csv_url) in triples
        assert (csv_url, f"<{DCAT}downloadURL>", csv_url) in triples
        assert (csv_url, f"<{DCAT}mediaType>",
                "<https://www.iana.org/assignments/media-types/text/csv>") in triples  # fmt: skip
    app = create_app(db, code_key=fixed_code_key, opendata_folder=folder)
    with TestClient(app) as client:
        for dataset in datasets:
            assert dataset["dct:license"]["@id"] == "https://creativecommons.org/licenses/by/4.0/"
            assert dataset["dct:temporal"]["dcat:startDate"]["@value"] == "2025-03-01"
            assert dataset["dct:temporal"]["dcat:endDate"]["@value"] == "2025-03-31"
            (dist,) = dataset["dcat:distribution"]
            assert dist["dcat:mediaType"]["@id"].endswith("/text/csv")
            url = dist["dcat:downloadURL"]["@id"]
            assert url.startswith(BASE)
            got = client.get("/opendata/" + url.removeprefix(BASE))
            assert got.status_code == 200
            assert got.headers["content-type"] == "text/csv; charset=utf-8"
            assert got.content == (folder / url.removeprefix(BASE)).read_bytes()
        index = client.get("/opendata/")
        assert index.status_code == 200 and 'href="2025-03/facility-use.csv"' in index.text
        assert "script-src 'self'" in index.headers["content-security-policy"]
        assert index.headers["x-content-type-options"] == "nosniff"
        assert client.get("/opendata/catalog.jsonld").json()["@id"] == BASE + "catalog.jsonld"
    assert "published 2025-03" in capsys.readouterr().out
    (entry,) = entries(db, subject=f"opendata:{MONTH}")
    assert (entry.actor, entry.action, entry.detail["outcome"]) == ("cli", "opendata.publish",
                                                                    "published")  # fmt: skip


def test_opendata_republish_replaces_the_month_atomically(
    world: tuple[Path, Database, Path],
) -> None:
    config, _db, folder = world
    assert _publish(config, MONTH) == 0
    first = (folder / MONTH).resolve()
    (folder / ".versions" / f"{MONTH}-killedbuild").mkdir()  # a publish killed half way
    assert _publish(config, MONTH) == 0
    second = (folder / MONTH).resolve()
    assert first != second and not first.exists()
    assert [p.name for p in (folder / ".versions").iterdir()] == [second.name]
    assert sorted(p.name for p in folder.iterdir()) == [".versions", MONTH, "catalog.jsonld"]


@pytest.mark.parametrize(
    ("month", "says"),
    [("2025-01", "has no data"), ("2999-01", "not over yet"), ("2025-13", "YYYY-MM")],
)
def test_opendata_publish_refuses_and_audits_without_writing(
    world: tuple[Path, Database, Path], capsys: pytest.CaptureFixture[str], month: str, says: str
) -> None:
    config, db, folder = world
    assert _publish(config, month) == 1
    assert says in capsys.readouterr().err
    assert not folder.exists() or not any(folder.iterdir())
    (entry,) = entries(db, subject=f"opendata:{month}")
    assert entry.detail["outcome"] == "refused" and says in entry.detail["reason"]


def test_opendata_invalid_package_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("n\r\nseven\r\n", encoding="utf-8")
    schema = {"fields": [{"name": "n", "type": "integer"}]}
    resource = {"name": "t", "path": "t.csv", "schema": schema}
    (tmp_path / "datapackage.json").write_text(json.dumps({"name": "x", "resources": [resource]}))
    with pytest.raises(OpendataError, match="type-error"):
        validate(tmp_path)


def test_opendata_route_refuses_path_traversal(
    world: tuple[Path, Database, Path], tmp_path: Path
) -> None:
    config, db, folder = world
    assert _publish(config, MONTH) == 0
    secret = tmp_path / "secret.csv"
    secret.write_text("secret\r\n", encoding="utf-8")
    # A link planted in a month folder that points outside is not followed out.
    ((folder / MONTH).resolve() / "planted.csv").symlink_to(secret)
    app = create_app(db, code_key=fixed_code_key, opendata_folder=folder)
    attacks = [
        "/opendata/2025-03/..%2F..%2Fcentral.db", "/opendata/..%2Fcentral.toml/x.csv",
        "/opendata/2025-03/%2e%2e%2fcatalog.jsonld", "/opendata/2025-03/planted.csv",
        "/opendata/.versions/datapackage.json", "/opendata/2025-03/../../central.db",
        "/opendata/2025-03/datapackage.json%00.csv", "/opendata/2025-03/DATAPACKAGE.JSON",
    ]  # fmt: skip
    with TestClient(app) as client:
        for path in attacks:
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert b"secret" not in answer.content and b"SQLite" not in answer.content
        assert client.get("/opendata/2025-03/datapackage.json").status_code == 200
