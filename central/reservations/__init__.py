"""Reservations at central: versions and change log (:mod:`.store`) and the
MQTT publisher (:mod:`.publisher`).
"""
