"""Card enrolment at a device: a one-time code, then the card (device side of
``contracts.enrolment``)."""
