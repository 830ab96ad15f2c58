"""Certificate issuance at a counter kiosk (issue 8): flow, orchestrator, ports."""
