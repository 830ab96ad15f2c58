"""Central: ingest workers, HTTP API, ops dashboard and issuance service.
(Built in the sync, ops and issuance issues.)"""
