"""``/opendata/``: the published files, public and read only (no sign-in).

Only names the publisher writes are served: a month ``YYYY-MM`` and a file
name of lowercase letters, digits and dashes ending ``.csv`` or ``.json``,
which must exist in that month's folder after resolving, inside the open
data folder; anything else is 404. The security headers of the app apply.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from central.opendata.package import CATALOG, FILE_NAME, MONTH_NAME, published_months

MEDIA = {".csv": "text/csv; charset=utf-8", ".json": "application/json"}
CACHE = "public, max-age=3600"


def add_opendata(app: FastAPI, folder: Path) -> None:
    @app.get("/opendata/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(index_page(folder), headers={"Cache-Control": CACHE})

    @app.get("/opendata/" + CATALOG, include_in_schema=False)
    def catalog() -> FileResponse:
        return _file(folder, folder / CATALOG, "application/ld+json")

    @app.get("/opendata/{month}/{name}", include_in_schema=False)
    def month_file(month: str, name: str) -> FileResponse:
        if not MONTH_NAME.match(month) or not FILE_NAME.match(name):
            raise HTTPException(404, "not found")
        return _file(folder, folder / month / name, MEDIA[Path(name).suffix])


def _file(folder: Path, path: Path, media_type: str) -> FileResponse:
    try:
        real = path.resolve(strict=True)
        inside = real.is_relative_to(folder.resolve(strict=True))
    except OSError:
        raise HTTPException(404, "not found") from None
    if not inside or not real.is_file():
        raise HTTPException(404, "not found")
    return FileResponse(real, media_type=media_type, headers={"Cache-Control": CACHE})


def index_page(folder: Path) -> str:
    months = list(reversed(published_months(folder)))
    items = []
    for month in months:
        files = sorted(p.name for p in (folder / month).iterdir() if FILE_NAME.match(p.name))
        links = "".join(
            f'<li><a href="{escape(month)}/{escape(n)}">{escape(n)}</a></li>' for n in files
        )
        items.append(
            f'<section aria-labelledby="m-{escape(month)}"><h2 id="m-{escape(month)}">'
            f"{escape(month)}</h2><ul>{links}</ul></section>"
        )
    body = "".join(items) or "<p>まだ公開されたデータはありません。 No data published yet.</p>"
    return (
        '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>オープンデータ / Open data</title></head><body><main>"
        "<h1>オープンデータ / Open data</h1>"
        "<p>月ごとの統計（CSV、UTF-8）。ライセンス: "
        '<a href="https://creativecommons.org/licenses/by/4.0/deed.ja" rel="license">'
        "CC BY 4.0</a>。少数の値は秘匿しています（空欄）。 Monthly statistics (CSV, UTF-8) "
        "under CC BY 4.0; small counts are withheld (empty cells).</p>"
        f'<p><a href="{CATALOG}">DCAT カタログ / catalogue (JSON-LD)</a></p>'
        f"{body}</main></body></html>"
    )
