"""Device store, outbox, reservation cache, device configuration, logging and
the MQTT wire protocol.

Every device process (kiosk, lockctl, sync agent) opens the same SQLite store
and appends events to its outbox; only the sync agent owns the MQTT
connection.
"""

from sync.errors import (
    ConfigError,
    PersonalDataError,
    StoreCorruptError,
    StoreError,
    StoreTooNewError,
    StoreUnavailableError,
    SyncError,
)

__all__ = [
    "ConfigError",
    "PersonalDataError",
    "StoreCorruptError",
    "StoreError",
    "StoreTooNewError",
    "StoreUnavailableError",
    "SyncError",
]
