"""Event ingest: the MQTT worker (:mod:`.worker`), what it writes
(:mod:`.store`), per-device seq tracking (:mod:`.seqtrack`).
"""
