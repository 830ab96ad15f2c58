"""Facility check-in: access decisions (pure), the check-in service, the card
feed, the headless door terminal and the touchscreen (:mod:`.ui`).
"""
