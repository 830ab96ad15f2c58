"""The counter kiosk's touchscreen for certificate issuance (Kivy)."""
