"""The residents' booking site under ``/booking/`` (docs/booking.md)."""
