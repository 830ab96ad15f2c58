"""The device listener: central's mutual-TLS HTTPS server for kiosks and
doors (fleet client certificates, device id = certificate CN). Certificate
issuance and card enrolment mount their APIs onto it; neither owns it."""
