"""Certificate issuance at a counter kiosk: flow, orchestrator, ports."""
