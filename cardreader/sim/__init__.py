"""Virtual cards for tests and demos, played into pcscd through vsmartcard's
vpcd driver. Never part of a production kiosk (vpcd is not installed there)."""
