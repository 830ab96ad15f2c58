"""The kiosk: Kivy touchscreen (certificate issuance, facility check-in) or a
headless door terminal, plus the demo that runs every landed part on
simulated hardware."""
