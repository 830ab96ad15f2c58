"""Device store, outbox, reservation cache, device configuration, logging and
the MQTT wire protocol.

Every device process (kiosk, lockctl, sync agent) opens the same SQLite store
and appends events to its outbox; only the sync agent owns the MQTT
connection. The exception tree is :mod:`sync.errors`.
"""
