"""Monthly open data (docs/opendata.md): certificates issued per kind,
facility use per room, device availability and the facility list, as CSV
with a Frictionless Data Package descriptor and a DCAT catalogue, small
counts withheld. Pure parts: :mod:`.aggregate`, :mod:`.suppress`,
:mod:`.datasets`; I/O: :mod:`.source` (reads), :mod:`.package` (files),
:mod:`.publish`, :mod:`.cli`, :mod:`.web` (``/opendata/``)."""
