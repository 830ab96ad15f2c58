"""Central, the city's side: event ingest, reservations and bookings, the HTTP
API and ops dashboard, and the certificate issuance service. Sub-packages by
subsystem (db, ingest, reservations, api, ops, issuance); docs/central.md has
the map."""
