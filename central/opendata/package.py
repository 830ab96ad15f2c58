"""The files of the open data folder:

``YYYY-MM/`` (one CSV per table and ``datapackage.json``, a Frictionless
Data Package validated with ``frictionless`` before it is published) and
``catalog.jsonld`` (a DCAT catalogue of every published month that CKAN's
ckanext-dcat harvester reads).

A month is replaced atomically: it is written and validated in a version
folder under ``.versions/``, then the ``YYYY-MM`` symlink is swapped to it
with one rename, so a reader sees the old files or the new ones, never a
mix, and a failed publish changes nothing.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from central.errors import CentralError
from central.opendata.datasets import Cell, Table

MONTH_NAME = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
FILE_NAME = re.compile(r"^[a-z0-9-]+\.(csv|json)$")
VERSIONS = ".versions"
CATALOG = "catalog.jsonld"
DESCRIPTOR = "datapackage.json"
LICENSE = {
    "name": "CC-BY-4.0",
    "path": "https://creativecommons.org/licenses/by/4.0/",
    "title": "Creative Commons Attribution 4.0",
}
CSV_MEDIA_TYPE = "https://www.iana.org/assignments/media-types/text/csv"


class OpendataError(CentralError):
    """A month that cannot be published (nothing to publish, not over yet,
    a package that does not validate); nothing was changed."""


@dataclass(frozen=True)
class Publisher:
    name: str
    name_en: str
    url: str


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_csv(path: Path, table: Table) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([c.name for c in table.columns])
        writer.writerows([_cell(v) for v in row] for row in table.rows)


def descriptor(
    month: str, tables: Sequence[Table], publisher: Publisher, created: datetime
) -> dict[str, Any]:
    contributor: dict[str, Any] = {"title": publisher.name, "role": "publisher"}
    if publisher.url:
        contributor["path"] = publisher.url
    return {
        "name": f"opendata-{month}",
        "title": f"{publisher.name} 施設利用・証明書交付・端末稼働 {month} / "
        f"{publisher.name_en} facility use, certificates and devices {month}",
        "licenses": [LICENSE],
        "contributors": [contributor],
        "created": created.isoformat(timespec="seconds"),
        "resources": [
            {
                "name": t.name,
                "path": t.path,
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "title": f"{t.title_ja} / {t.title_en}",
                "description": t.description,
                "licenses": [LICENSE],
                "schema": {"fields": [c.field() for c in t.columns], "missingValues": [""]},
            }
            for t in tables
        ],
    }


def validate(folder: Path) -> None:
    """The package in ``folder`` against its descriptor (frictionless)."""
    from frictionless import Package  # heavy; only the publish command needs it

    report = Package(str(folder / DESCRIPTOR), basepath=str(folder)).validate()
    if not report.valid:
        problems = "; ".join(f"{kind}: {note}" for kind, note in report.flatten(["type", "note"]))
        raise OpendataError(f"the data package does not validate: {problems[:500]}")


def publish_month(root: Path, month: str, tables: Sequence[Table], meta: dict[str, Any]) -> Path:
    """Write, validate and swap in ``root/month``; returns the month's path."""
    versions = root / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    link = root / month
    previous = link.resolve() if link.is_symlink() else None
    for orphan in versions.glob(f"{month}-*"):  # left by a publish that was killed
        if orphan.resolve() != previous:
            shutil.rmtree(orphan, ignore_errors=True)
    build = versions / f"{month}-{uuid.uuid4().hex[:12]}"
    build.mkdir()
    try:
        for table in tables:
            write_csv(build / table.path, table)
        (build / DESCRIPTOR).write_text(
            json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        validate(build)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    staged = root / f".link-{uuid.uuid4().hex[:12]}"
    staged.symlink_to(Path(VERSIONS) / build.name)
    staged.replace(link)  # one rename: old or new, never a mix
    if previous is not None and previous != build.resolve():
        shutil.rmtree(previous, ignore_errors=True)
    return link


def published_months(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if MONTH_NAME.match(p.name) and p.is_dir())


def month_period(month: str) -> tuple[date, date]:
    year, mon = (int(p) for p in month.split("-"))
    first = date(year, mon, 1)
    after = date(year + mon // 12, mon % 12 + 1, 1)
    return first, date.fromordinal(after.toordinal() - 1)


def _text(ja: str, en: str) -> list[dict[str, str]]:
    return [{"@value": ja, "@language": "ja"}, {"@value": en, "@language": "en"}]


CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


def catalog(root: Path, base_url: str, publisher: Publisher) -> dict[str, Any]:
    """The DCAT catalogue (JSON-LD) of every month published under ``root``."""
    agent: dict[str, Any] = {
        "@type": "foaf:Agent",
        "foaf:name": _text(publisher.name, publisher.name_en),
    }
    if publisher.url:
        agent["@id"] = publisher.url
    license_ref = {"@id": LICENSE["path"]}
    datasets = []
    for month in published_months(root):
        meta = json.loads((root / month / DESCRIPTOR).read_text(encoding="utf-8"))
        first, last = month_period(month)
        for resource in meta["resources"]:
            url = f"{base_url}{month}/{resource['path']}"
            ja, _, en = resource["title"].partition(" / ")
            datasets.append(
                {
                    "@id": f"{base_url}{month}/{resource['name']}",
                    "@type": "dcat:Dataset",
                    "dct:identifier": f"{month}/{resource['name']}",
                    "dct:title": _text(f"{ja} {month}", f"{en} {month}"),
                    "dct:description": resource.get("description", ""),
                    "dct:issued": {"@value": meta["created"], "@type": "xsd:dateTime"},
                    "dct:temporal": {
                        "@type": "dct:PeriodOfTime",
                        "dcat:startDate": {"@value": first.isoformat(), "@type": "xsd:date"},
                        "dcat:endDate": {"@value": last.isoformat(), "@type": "xsd:date"},
                    },
                    "dct:publisher": agent,
                    "dct:license": license_ref,
                    "dcat:keyword": ["オープンデータ", "open data", resource["name"]],
                    "dcat:distribution": [
                        {
                            "@id": url,
                            "@type": "dcat:Distribution",
                            "dct:title": resource["title"],
                            "dcat:downloadURL": {"@id": url},
                            "dcat:accessURL": {"@id": url},
                            "dcat:mediaType": {"@id": CSV_MEDIA_TYPE},
                            "dct:format": "CSV",
                            "dct:license": license_ref,
                        }
                    ],
                }
            )
    return {
        "@context": CONTEXT,
        "@id": f"{base_url}{CATALOG}",
        "@type": "dcat:Catalog",
        "dct:title": _text(f"{publisher.name} オープンデータ", f"{publisher.name_en} open data"),
        "dct:description": "施設利用・証明書交付・端末稼働の月次統計 / Monthly statistics.",
        "dct:publisher": agent,
        "dct:license": license_ref,
        "dcat:dataset": datasets,
    }


def write_catalog(root: Path, base_url: str, publisher: Publisher) -> None:
    staged = root / f".{CATALOG}-{uuid.uuid4().hex[:12]}"
    text = json.dumps(catalog(root, base_url, publisher), ensure_ascii=False, indent=2)
    staged.write_text(text + "\n", encoding="utf-8")
    staged.replace(root / CATALOG)
